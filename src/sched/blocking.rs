//! Blocking calls on helper threads (libtask9's `IOProc`): [`blocking`].

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::error::panic_message;
use crate::{Error, ErrorKind, Result};

/// At most this many helper threads run blocking calls at once; more calls
/// queue. Each is a plain OS thread, started on demand and kept.
const MAX_THREADS: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// The process-wide helper pool, shared by every scheduler.
struct Pool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    threads: AtomicUsize,
    idle: AtomicUsize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = unbounded();
        Pool {
            tx,
            rx,
            threads: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
        }
    })
}

impl Pool {
    fn submit(&'static self, job: Job) -> Result<()> {
        if self.idle.load(Ordering::SeqCst) == 0 {
            let n = self.threads.load(Ordering::SeqCst);
            if n < MAX_THREADS
                && self
                    .threads
                    .compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                let rx = self.rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("copipe-blocking-{n}"))
                    .spawn(move || {
                        let pool = pool();
                        loop {
                            pool.idle.fetch_add(1, Ordering::SeqCst);
                            let job = rx.recv();
                            pool.idle.fetch_sub(1, Ordering::SeqCst);
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    });
                if let Err(e) = spawned {
                    self.threads.fetch_sub(1, Ordering::SeqCst);
                    if n == 0 {
                        return Err(e.into());
                    }
                }
            }
        }
        // The pool owns a receiver, so the channel is never disconnected.
        self.tx
            .send(job)
            .map_err(|_| Error::new(ErrorKind::Task("blocking pool is gone".into())))
    }
}

struct Shared<T> {
    result: Option<std::thread::Result<T>>,
    waker: Option<Waker>,
}

/// Runs a blocking closure on a helper thread and waits for its result
/// without blocking the scheduler (libtask9's `IOProc.iocall`).
///
/// Other tasks keep running meanwhile. When the closure returns, the
/// helper wakes the task through the scheduler's poller waker. Helper
/// threads (at most 8, started on demand) are shared by every scheduler
/// in the process; if the task is killed, the closure still runs to its
/// end and its result is dropped.
///
/// # Errors
///
/// If the closure panics (an [`ErrorKind::Task`] with the panic message),
/// or no helper thread can be started.
///
/// # Examples
///
/// ```
/// use copipe::sched::{self, Scheduler};
///
/// let mut s = Scheduler::new()?;
/// s.spawn(async {
///     let n = sched::blocking(|| std::fs::read_dir(".").map(|d| d.count())).await??;
///     assert!(n > 0);
///     Ok::<(), copipe::Error>(())
/// });
/// s.run()?;
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn blocking<T, F>(f: F) -> Blocking<T>
where
    T: std::marker::Send + 'static,
    F: FnOnce() -> T + std::marker::Send + 'static,
{
    Blocking {
        job: Some(Box::new(f)),
        shared: Arc::new(Mutex::new(Shared {
            result: None,
            waker: None,
        })),
    }
}

/// The future of [`blocking`].
#[must_use = "a blocking call does nothing unless awaited"]
pub struct Blocking<T> {
    job: Option<Box<dyn FnOnce() -> T + std::marker::Send>>,
    shared: Arc<Mutex<Shared<T>>>,
}

impl<T> fmt::Debug for Blocking<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blocking")
            .field("started", &self.job.is_none())
            .finish()
    }
}

impl<T> Unpin for Blocking<T> {}

impl<T: std::marker::Send + 'static> Future for Blocking<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        {
            let mut sh = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = sh.result.take() {
                return Poll::Ready(r.map_err(|p| {
                    Error::new(ErrorKind::Task(format!(
                        "blocking call panicked: {}",
                        panic_message(&*p)
                    )))
                }));
            }
            if !sh.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                sh.waker = Some(cx.waker().clone());
            }
        }
        if let Some(job) = self.job.take() {
            let shared = Arc::clone(&self.shared);
            pool().submit(Box::new(move || {
                let r = catch_unwind(AssertUnwindSafe(job));
                let waker = {
                    let mut sh = shared.lock().unwrap_or_else(|e| e.into_inner());
                    sh.result = Some(r);
                    sh.waker.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            }))?;
        }
        Poll::Pending
    }
}
