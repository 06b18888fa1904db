//! pyos5: system calls to create and kill tasks (`NewTask`, `KillTask`).
//!
//! [`Scheduler::seed_order`](copipe::sched::Scheduler::seed_order) makes
//! system calls trap as the seed's do (the caller goes behind the ready
//! tasks), which decides how many times foo speaks before it is killed.
//!
//! Run with `cargo run --example pyos5`.

use copipe::sched::{self, Scheduler};

async fn foo() {
    let mytid = sched::get_tid().await;
    loop {
        println!("I'm foo {mytid}");
        sched::yield_now().await;
    }
}

async fn main_task() {
    let child = sched::spawn(foo()).await; // Launch new task
    for _ in 0..5 {
        sched::yield_now().await;
    }
    sched::kill(child).await; // Kill the task
    println!("main done");
}

fn main() -> copipe::Result<()> {
    let mut s = Scheduler::new()?;
    s.seed_order(true);
    s.on_exit(|tid| println!("Task {tid} terminated"));
    s.spawn(main_task());
    s.run()
}
