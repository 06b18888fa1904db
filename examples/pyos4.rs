//! pyos2..pyos4: two tasks taking turns, each learning its task id.
//!
//! ```text
//! # pyos4.py                          // copipe
//! def foo():                          async fn foo() {
//!     mytid = yield GetTid()              let mytid = sched::get_tid().await;
//!     for i in range(5):                  for _ in 0..5 {
//!         print("I'm foo", mytid)             println!("I'm foo {mytid}");
//!         yield                               sched::yield_now().await;
//!                                         }
//!                                     }
//! ```
//!
//! Run with `cargo run --example pyos_turns`.

use copipe::sched::{self, Scheduler};

async fn foo() {
    let mytid = sched::get_tid().await;
    for _ in 0..5 {
        println!("I'm foo {mytid}");
        sched::yield_now().await;
    }
}

async fn bar() {
    let mytid = sched::get_tid().await;
    for _ in 0..10 {
        println!("I'm bar {mytid}");
        sched::yield_now().await;
    }
}

fn main() -> copipe::Result<()> {
    let mut s = Scheduler::new()?;
    s.spawn(foo());
    s.spawn(bar());
    s.run()
}
