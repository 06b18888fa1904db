//! pyos3: the scheduler handles task termination, and says so.
//!
//! The seed's `exit` prints `Task N terminated`; copipe's scheduler calls
//! the hook set with [`Scheduler::on_exit`](copipe::sched::Scheduler::on_exit).
//!
//! Run with `cargo run --example pyos3`.

use copipe::sched::{self, Scheduler};

async fn foo() {
    for _ in 0..10 {
        println!("I'm foo");
        sched::yield_now().await;
    }
}

async fn bar() {
    for _ in 0..5 {
        println!("I'm bar");
        sched::yield_now().await;
    }
}

fn main() -> copipe::Result<()> {
    let mut s = Scheduler::new()?;
    s.on_exit(|tid| println!("Task {tid} terminated"));
    s.spawn(foo());
    s.spawn(bar());
    s.run()
}
