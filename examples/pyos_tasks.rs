//! pyos5 and pyos6: creating, killing and waiting for tasks, and (beyond
//! the seed) a task that panics without taking the scheduler down.
//!
//! Run with `cargo run --example pyos_tasks`.

use copipe::sched::{self, Scheduler};

async fn foo() {
    let mytid = sched::get_tid().await;
    for _ in 0.. {
        println!("I'm foo {mytid}");
        sched::yield_now().await;
    }
}

async fn counted(n: u32) {
    for i in 0..n {
        println!("counted {i}");
        sched::yield_now().await;
    }
}

async fn crasher() {
    sched::yield_now().await;
    let v: Vec<u32> = Vec::new();
    println!("{}", v[3]); // panics: index out of bounds
}

async fn main_task() -> copipe::Result<()> {
    // pyos5: NewTask / KillTask.
    let child = sched::spawn(foo()).await;
    for _ in 0..5 {
        sched::yield_now().await;
    }
    sched::kill(child).await;
    println!("main killed task {child}");

    // pyos6: WaitTask.
    let child = sched::spawn(counted(3)).await;
    println!("Waiting for child");
    sched::wait(child).await?;
    println!("Child done");

    // curio's TaskError: the failure comes back from wait.
    let bad = sched::spawn(crasher()).await;
    match sched::wait(bad).await {
        Ok(_) => println!("crasher finished?"),
        Err(e) => println!("wait says: {e}"),
    }
    Ok(())
}

fn main() -> copipe::Result<()> {
    let mut s = Scheduler::new()?;
    s.on_failure(|tid, err| eprintln!("(scheduler) task {tid} failed: {err}"));
    s.spawn(main_task());
    s.run()
}
