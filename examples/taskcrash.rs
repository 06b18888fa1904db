//! taskcrash: pyos2's scheduler with a task that ends.
//!
//! Deliberate difference: the seed's scheduler crashes (`StopIteration`)
//! when foo ends after its ten turns; copipe's handles a task's end
//! (pyos3), so bar goes on alone, forever (stop it with Ctrl-C).
//!
//! Run with `cargo run --example taskcrash`.

use copipe::sched::{self, Scheduler};

async fn foo() {
    for _ in 0..10 {
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
