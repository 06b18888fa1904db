//! trampoline.py and pyos8: subroutines. In the seed a task's `run()`
//! keeps a call stack so that `r = yield add(2, 2)` can call a coroutine
//! and get its value back. In Rust an `async fn` awaited inside a task is
//! that call: the compiler keeps the stack, and system calls made deep
//! inside pass through to the scheduler.
//!
//! ```text
//! # trampoline.py                      // copipe
//! def add(x, y):                       async fn add(x: i32, y: i32) -> i32 {
//!     yield x + y                          x + y
//!                                      }
//! def main():                          async fn main_task() {
//!     r = yield add(2, 2)                  let r = add(2, 2).await;
//!     print(r)                             println!("{r}");
//!     yield                                sched::yield_now().await;
//!                                      }
//! ```
//!
//! Run with `cargo run --example trampoline`.

use copipe::sched::{self, Scheduler};

/// A subroutine.
async fn add(x: i32, y: i32) -> i32 {
    x + y
}

/// A function that calls a subroutine.
async fn main_task() {
    let r = add(2, 2).await;
    println!("{r}");
    sched::yield_now().await;
}

fn main() -> copipe::Result<()> {
    let mut s = Scheduler::new()?;
    s.spawn(main_task());
    s.run()
}
