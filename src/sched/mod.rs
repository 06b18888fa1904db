//! The task scheduler: the seed's coroutine "operating system" (pyos1 ..
//! pyos8), grown with libtask9's channels, `alt`, timers and helper
//! threads.
//!
//! A [`Scheduler`] runs tasks on one thread; a task is a future. Tasks
//! never see the scheduler: they *await system calls*, the Rust form of
//! the seed's `yield SystemCall()` trap:
//!
//! | seed (pyos)            | copipe                                  |
//! |------------------------|-----------------------------------------|
//! | `yield GetTid()`       | [`get_tid`]`().await`                   |
//! | `yield NewTask(t)`     | [`spawn`]`(t).await`                    |
//! | `yield KillTask(tid)`  | [`kill`]`(tid).await`                   |
//! | `yield WaitTask(tid)`  | [`wait`]`(tid).await`                   |
//! | `yield`                | [`yield_now`]`().await`                 |
//! | `yield ReadWait(f)`    | [`read_wait`]`(fd).await`               |
//! | `yield WriteWait(f)`   | [`write_wait`]`(fd).await`              |
//! | `yield Accept(sock)`   | [`Listener::accept`]`().await`          |
//! | `yield Recv(sock, n)`  | [`Socket::recv`]`(&mut buf).await`      |
//! | `yield Send(sock, b)`  | [`Socket::send_all`]`(b).await`         |
//! | libtask9 `sleep`       | [`sleep`]`(dur).await`                  |
//! | libtask9 `Channel`     | [`Chan`], [`xchan`] across threads      |
//! | libtask9 `alt`/`after` | [`alt`] (local and [`xchan`] ends), [`after`] |
//! | libtask9 `canblock=False` | [`Alt::nonblocking`]                 |
//! | libtask9 `Second`, ... | [`SECOND`], [`MILLISECOND`], ...        |
//! | libtask9 `IOProc`      | [`blocking`]`(closure).await`           |
//! | libtask9 procs         | [`Proc`]                                |
//!
//! # Subroutines: the trampoline is built in
//!
//! pyos8 needs a call stack in its `Task` to let a coroutine call another
//! ("trampolining"): `r = yield add(2, 2)` pushes `main`, runs `add`, and
//! sends its result back. In Rust the compiler builds that stack: an
//! `async fn` awaited inside a task *is* the subroutine call, and `await`
//! passes suspensions (system calls) through to the scheduler and the
//! return value back.
//!
//! ```text
//! # pyos8 / trampoline.py           // copipe
//! def add(x, y):                     async fn add(x: i32, y: i32) -> i32 {
//!     yield x + y                        x + y
//!                                    }
//! def main():                        async fn main_task() {
//!     r = yield add(2, 2)                let r = add(2, 2).await;
//!     print(r)                           println!("{r}");
//!     yield                              sched::yield_now().await;
//!                                    }
//! ```
//!
//! ```
//! use copipe::sched::{self, Scheduler};
//!
//! async fn add(x: i32, y: i32) -> i32 {
//!     sched::yield_now().await; // a subroutine may suspend, too
//!     x + y
//! }
//!
//! let mut s = Scheduler::new()?;
//! s.spawn(async {
//!     let r = add(2, 2).await;
//!     assert_eq!(r, 4);
//! });
//! s.run()?;
//! # Ok::<(), copipe::Error>(())
//! ```
//!
//! # Files
//!
//! - `scheduler.rs`: [`Scheduler`], the run loop, the thread-local context
//!   system calls go through, failure reports
//! - `task.rs`: [`Tid`], the task table (a slab) and the per-slot waker
//! - `syscall.rs`: [`get_tid`], [`spawn`], [`kill`], [`wait`], [`yield_now`]
//! - `timer.rs`: the timer heap, [`sleep`], [`after`]
//! - `poll.rs`: readiness from epoll (mio), [`read_wait`], [`write_wait`]
//! - `chan.rs`: [`Chan`], rendezvous and buffered channels
//! - `alt.rs`: [`alt`] over several channel operations, with a timeout
//! - `blocking.rs`: [`blocking`] calls on a small helper thread pool
//! - `procs.rs`: [`Proc`] (a scheduler on its own thread) and [`xchan`]
//!   cross-thread channels
//! - `host.rs`: [`host`] a [`Stage`](crate::Stage) in a task fed by a
//!   channel, and [`Outlet`] into a channel, so graphs can have cycles
//! - `net.rs`: [`Listener`] and [`Socket`], the seed's sockwrap
//! - `follow.rs`: [`follow`], [`follow_files`], [`follow_lines_at`]: tail -F
//!   as a task woken by inotify, on the same follow core as `text::Follow`

mod alt;
mod blocking;
mod chan;
mod follow;
mod host;
mod net;
mod poll;
mod procs;
mod scheduler;
mod syscall;
mod task;
mod timer;

pub use alt::{alt, Alt};
pub use blocking::{blocking, Blocking};
pub use chan::{Chan, Recv, Send, SendError, TryRecvError, TrySendError};
pub use follow::{follow, follow_files, follow_lines_at, FollowOptions};
pub use host::{host, Outlet};
pub use net::{Listener, Readable, SendAll, Socket, SocketRecv, SocketSend};
pub use poll::{read_wait, write_wait, IoWait};
pub use procs::{xchan, Proc, XReceiver, XSender};
pub use scheduler::Scheduler;
pub use syscall::{get_tid, kill, spawn, wait, yield_now, Wait, YieldNow};
pub use task::{TaskOutput, Tid};
pub use timer::{after, sleep, Sleep, HOUR, MICROSECOND, MILLISECOND, MINUTE, NANOSECOND, SECOND};
