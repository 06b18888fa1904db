//! pyos4: system calls; each task learns its id with `GetTid`.
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
//! Run with `cargo run --example pyos4`.

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
    s.seed_order(true);
    s.on_exit(|tid| println!("Task {tid} terminated"));
    s.spawn(foo());
    s.spawn(bar());
    s.run()
}
