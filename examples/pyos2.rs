//! pyos2: a scheduler alternating between two tasks whenever they yield.
//!
//! Both tasks loop forever, as in the seed (stop it with Ctrl-C).
//!
//! Run with `cargo run --example pyos2`.

use copipe::sched::{self, Scheduler};

async fn foo() {
    loop {
        println!("I'm foo");
        sched::yield_now().await;
    }
}

async fn bar() {
    loop {
        println!("I'm bar");
        sched::yield_now().await;
    }
}

fn main() -> copipe::Result<()> {
    let mut s = Scheduler::new()?;
    s.spawn(foo());
    s.spawn(bar());
    s.run()
}
