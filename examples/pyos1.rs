//! pyos1: a task is a wrapper around a coroutine, run one step at a time.
//!
//! pyos1 has no scheduler yet, so this has none either: `Task::run` polls
//! the task's future once, as the seed's `run` sends into its generator
//! once. (copipe's [`Scheduler`](copipe::sched::Scheduler) does this for
//! many tasks from pyos2 on.)
//!
//! Run with `cargo run --example pyos1`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

static TASKID: AtomicU64 = AtomicU64::new(0);

/// A running task: an id and the coroutine it runs.
struct Task {
    #[allow(dead_code)] // the seed keeps the id without reading it yet
    tid: u64,
    target: Pin<Box<dyn Future<Output = ()>>>,
}

impl Task {
    fn new(target: impl Future<Output = ()> + 'static) -> Task {
        Task {
            tid: TASKID.fetch_add(1, Ordering::Relaxed) + 1,
            target: Box::pin(target),
        }
    }

    /// Runs the task until it hits the next suspension.
    fn run(&mut self) -> Poll<()> {
        self.target
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    }
}

/// The bare `yield`: suspends once.
async fn suspend() {
    let mut yielded = false;
    std::future::poll_fn(|_| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            Poll::Pending
        }
    })
    .await
}

async fn foo() {
    println!("Part 1");
    suspend().await;
    println!("Part 2");
    suspend().await;
}

fn main() {
    let mut t1 = Task::new(foo());
    println!("Running foo()");
    let _ = t1.run();
    println!("Resuming foo()");
    let _ = t1.run();
}
