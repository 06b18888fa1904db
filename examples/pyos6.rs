//! pyos6: waiting for a task to exit (`WaitTask`).
//!
//! With [`Scheduler::seed_order`](copipe::sched::Scheduler::seed_order)
//! the child runs before its parent resumes, as the seed's `NewTask` does,
//! so `I'm foo` comes before `Waiting for child`.
//!
//! Run with `cargo run --example pyos6`.

use copipe::sched::{self, Scheduler};

async fn foo() {
    for _ in 0..5 {
        println!("I'm foo");
        sched::yield_now().await;
    }
}

async fn main_task() -> copipe::Result<()> {
    let child = sched::spawn(foo()).await;
    println!("Waiting for child");
    sched::wait(child).await?;
    println!("Child done");
    Ok(())
}

fn main() -> copipe::Result<()> {
    let mut s = Scheduler::new()?;
    s.seed_order(true);
    s.on_exit(|tid| println!("Task {tid} terminated"));
    s.spawn(main_task());
    s.run()
}
