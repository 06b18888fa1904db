//! The task scheduler (issue 6): tasks, system calls, errors, I/O
//! readiness over pipes and sockets, channels, alt, timers, blocking
//! calls, procs, hosted stages and follow.
//!
//! Readiness is controlled with pipes and sockets; no test sleeps to wait
//! for a condition. Every test runs under a watchdog (`bounded`).

use copipe::Lifecycle;
use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use copipe::sched::{
    self, alt, host, Chan, FollowOptions, Listener, Outlet, Proc, Scheduler, Socket, TryRecvError,
    TrySendError,
};
use copipe::{from_fn, ErrorKind, Flow, Stage};

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `secs` (a hang is a failure, not a stuck CI job).
fn bounded<F: FnOnce() + Send + 'static>(secs: u64, f: F) {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => t.join().expect("test thread"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked: re-raise its panic here.
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {secs} s"),
    }
}

/// A real pipe, both ends non-blocking: (read end, write end).
fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody
    // else; each File takes sole ownership of one.
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// A value whose destructor records that it ran.
struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn two_tasks_take_turns_and_finish() {
    bounded(10, || {
        // pyos3: foo runs 4 times, bar 2; each ends on its own.
        let out = log();
        let mut s = Scheduler::new().unwrap();
        for (name, n) in [("foo", 4), ("bar", 2)] {
            let out = Rc::clone(&out);
            s.spawn(async move {
                let me = sched::get_tid().await;
                for _ in 0..n {
                    out.borrow_mut().push(format!("{name} {me}"));
                    sched::yield_now().await;
                }
            });
        }
        s.run().unwrap();
        assert_eq!(
            *out.borrow(),
            ["foo 1", "bar 2", "foo 1", "bar 2", "foo 1", "foo 1"]
        );
        assert!(s.is_empty());
    });
}

#[test]
fn spawn_kill_wait_as_pyos6() {
    bounded(10, || {
        let out = log();
        let dropped = Rc::new(Cell::new(false));
        let mut s = Scheduler::new().unwrap();
        let (o, d) = (Rc::clone(&out), Rc::clone(&dropped));
        s.spawn(async move {
            let flag = DropFlag(d);
            let o2 = Rc::clone(&o);
            let child = sched::spawn(async move {
                let _flag = flag;
                for _ in 0.. {
                    o2.borrow_mut().push("child".into());
                    sched::yield_now().await;
                }
            })
            .await;
            for _ in 0..3 {
                sched::yield_now().await;
            }
            assert!(sched::kill(child).await);
            o.borrow_mut().push("killed".into());
            // Killed: gone, its destructors ran, waiting returns at once.
            assert!(!sched::kill(child).await);
            assert!(!sched::wait(child).await.unwrap());
            let short = sched::spawn(async { sched::yield_now().await }).await;
            assert!(sched::wait(short).await.unwrap());
            o.borrow_mut().push("main done".into());
        });
        s.run().unwrap();
        assert!(dropped.get(), "kill must drop the task");
        assert_eq!(
            *out.borrow(),
            ["child", "child", "child", "killed", "main done"]
        );
    });
}

#[test]
fn a_panicking_task_leaves_the_others_running() {
    bounded(10, || {
        let failures = log();
        let progress = Rc::new(Cell::new(0));
        let mut s = Scheduler::new().unwrap();
        let f = Rc::clone(&failures);
        s.on_failure(move |tid, err| f.borrow_mut().push(format!("{tid}: {err}")));
        let p = Rc::clone(&progress);
        s.spawn(async move {
            for _ in 0..100 {
                p.set(p.get() + 1);
                sched::yield_now().await;
            }
        });
        let bad = s.spawn(async {
            sched::yield_now().await;
            if true {
                panic!("task exploded");
            }
        });
        let bad_err = s.spawn(async {
            sched::yield_now().await;
            Err(copipe::Error::usage("bad request"))
        });
        let result = Rc::new(RefCell::new(Vec::new()));
        for tid in [bad, bad_err] {
            let r = Rc::clone(&result);
            s.spawn(async move {
                let e = sched::wait(tid).await.unwrap_err();
                assert!(matches!(e.kind(), ErrorKind::Task(_)));
                r.borrow_mut().push(e.to_string());
            });
        }
        s.run().unwrap();
        assert_eq!(progress.get(), 100, "the healthy task ran to its end");
        assert_eq!(s.failures(), 2);
        assert_eq!(
            *result.borrow(),
            [
                "task failed: task 2: panicked: task exploded",
                "task failed: task 3: bad request"
            ]
        );
        assert_eq!(failures.borrow().len(), 2);
        assert!(failures.borrow()[0].starts_with("2: task failed: panicked: task exploded"));
    });
}

#[test]
fn read_wait_on_a_pipe_wakes_when_written() {
    bounded(10, || {
        let (mut rx, mut tx) = pipe();
        let out = log();
        let mut s = Scheduler::new().unwrap();
        let o = Rc::clone(&out);
        s.spawn(async move {
            o.borrow_mut().push("reader waits".into());
            sched::read_wait(rx.as_raw_fd()).await?;
            let mut buf = [0; 3];
            rx.read_exact(&mut buf)?;
            o.borrow_mut()
                .push(format!("read {}", String::from_utf8_lossy(&buf)));
            Ok::<(), std::io::Error>(())
        });
        let o = Rc::clone(&out);
        s.spawn(async move {
            // The reader is parked: other tasks run meanwhile.
            for i in 0..3 {
                o.borrow_mut().push(format!("writer {i}"));
                sched::yield_now().await;
            }
            tx.write_all(b"abc")
        });
        s.run().unwrap();
        assert_eq!(
            *out.borrow(),
            [
                "reader waits",
                "writer 0",
                "writer 1",
                "writer 2",
                "read abc"
            ]
        );
    });
}

#[test]
fn read_wait_is_level_triggered_as_select() {
    bounded(10, || {
        // Data already waiting: read_wait returns at once, and again after
        // a partial read, as select() would.
        let (mut rx, mut tx) = pipe();
        tx.write_all(b"xy").unwrap();
        let mut s = Scheduler::new().unwrap();
        s.spawn(async move {
            for _ in 0..2 {
                sched::read_wait(rx.as_raw_fd()).await?;
                let mut b = [0; 1];
                rx.read_exact(&mut b)?;
            }
            drop(tx);
            sched::read_wait(rx.as_raw_fd()).await?; // end of file is readable
            assert_eq!(rx.read(&mut [0; 1])?, 0);
            Ok::<(), std::io::Error>(())
        });
        s.run().unwrap();
    });
}

#[test]
fn kill_while_blocked_in_io() {
    bounded(10, || {
        let (rx, mut tx) = pipe();
        let dropped = Rc::new(Cell::new(false));
        let mut s = Scheduler::new().unwrap();
        let d = Rc::clone(&dropped);
        let blocked = s.spawn(async move {
            let _flag = DropFlag(d);
            sched::read_wait(rx.as_raw_fd()).await?;
            unreachable!("killed before the pipe became readable");
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        });
        // A socket reader too: a client connected to a listener that never
        // sends.
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let sock_dropped = Rc::new(Cell::new(false));
        let d = Rc::clone(&sock_dropped);
        let blocked_sock = s.spawn(async move {
            let _flag = DropFlag(d);
            let sock = Socket::connect(addr).await?;
            let mut buf = [0; 16];
            sock.recv(&mut buf).await?;
            unreachable!("killed before anything arrived");
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        });
        s.spawn(async move {
            let (_conn, _) = listener.accept().await?;
            // Both are parked in I/O by now (the reader ran first).
            for _ in 0..3 {
                sched::yield_now().await;
            }
            assert!(sched::kill(blocked).await);
            assert!(sched::kill(blocked_sock).await);
            // The pipe's read end was dropped with the killed task.
            let e = tx.write_all(b"late").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
            sched::yield_now().await;
            Ok::<(), std::io::Error>(())
        });
        s.on_failure(|tid, e| panic!("task {tid} failed: {e}"));
        s.run().unwrap();
        assert!(dropped.get() && sock_dropped.get());
        assert_eq!(s.failures(), 0);
    });
}

#[test]
fn socket_echo_round_trip_and_peer_reset() {
    bounded(10, || {
        let mut s = Scheduler::new().unwrap();
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let server_saw = log();
        let o = Rc::clone(&server_saw);
        s.spawn(async move {
            let (client, _) = listener.accept().await?;
            let mut buf = vec![0; 4096];
            loop {
                match client.recv(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => client.send_all(&buf[..n]).await?,
                    Err(e) => {
                        o.borrow_mut().push(format!("{:?}", e.kind()));
                        break;
                    }
                }
            }
            o.borrow_mut().push("closed".into());
            Ok::<(), std::io::Error>(())
        });
        s.spawn(async move {
            let sock = Socket::connect(addr).await?;
            // Bigger than a socket buffer: send_all must wait for room
            // while the server echoes.
            let msg: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
            let reader = async {
                let mut got = vec![0; msg.len()];
                sock.recv_exact(&mut got).await?;
                Ok::<_, std::io::Error>(got)
            };
            let writer = sock.send_all(&msg);
            let (w, r) = join(writer, reader).await;
            w?;
            assert!(r? == msg);
            sock.close().await
        });
        s.run().unwrap();
        assert_eq!(*server_saw.borrow(), ["closed"]);
    });
}

/// Spawns a server on 127.0.0.1 that accepts one connection and sends it
/// `msg` once told to through the returned channel; returns its address.
fn server_sending_when_told(
    s: &mut Scheduler,
    msg: &'static [u8],
) -> (std::net::SocketAddr, Chan<()>) {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let go: Chan<()> = Chan::new(0);
    let g = go.clone();
    s.spawn(async move {
        let (conn, _) = listener.accept().await?;
        g.recv().await;
        conn.send_all(msg).await
    });
    (addr, go)
}

/// A receive that starts waiting and is then dropped (as when `alt` or a
/// `join` gives up on it) leaves nothing behind: the next receive on the
/// socket gets the data, and the run ends (no phantom waiter keeps the
/// scheduler from seeing that all is done).
#[test]
fn a_dropped_recv_leaves_the_socket_usable() {
    bounded(10, || {
        let mut s = Scheduler::new().unwrap();
        let (addr, go) = server_sending_when_told(&mut s, b"late");
        let got = log();
        let o = Rc::clone(&got);
        s.spawn(async move {
            let sock = Socket::connect(addr).await?;
            let mut buf = [0; 16];
            {
                let mut first = std::pin::pin!(sock.recv(&mut buf));
                let polled = PollOnce(first.as_mut()).await;
                assert!(polled.is_none(), "nothing was sent yet");
            }
            go.send(()).await.unwrap();
            let n = sock.recv(&mut buf).await?;
            o.borrow_mut()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            Ok::<(), std::io::Error>(())
        });
        s.run().unwrap();
        assert_eq!(*got.borrow(), ["late"]);
    });
}

/// `readable` waits (the task is suspended, so the peer's task can run)
/// until data is there, after `try_recv` said `WouldBlock`; `try_recv`
/// then reads it, and later sees the end of stream. A `readable` that
/// did not wait would spin here forever and trip the watchdog.
#[test]
fn readable_waits_and_try_recv_reads_without_waiting() {
    bounded(10, || {
        let mut s = Scheduler::new().unwrap();
        let (addr, go) = server_sending_when_told(&mut s, b"one");
        let got = log();
        let o = Rc::clone(&got);
        s.spawn(async move {
            let sock = Socket::connect(addr).await?;
            let mut buf = [0; 16];
            let e = sock.try_recv(&mut buf).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
            go.send(()).await.unwrap();
            loop {
                sock.readable().await?;
                match sock.try_recv(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Ok(0) => break,
                    Ok(n) => o
                        .borrow_mut()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(e) => return Err(e),
                }
            }
            o.borrow_mut().push("end".into());
            Ok::<(), std::io::Error>(())
        });
        s.run().unwrap();
        assert_eq!(*got.borrow(), ["one", "end"]);
    });
}

/// Data and the end of stream that arrive together come in one epoll
/// edge: the short read that takes the data must not make the next
/// `recv` wait for an edge that never comes (it returns 0 at once).
#[test]
fn recv_sees_the_end_of_stream_that_came_with_the_last_data() {
    bounded(10, || {
        let mut s = Scheduler::new().unwrap();
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let go: Chan<()> = Chan::new(0);
        let g = go.clone();
        let got = log();
        let o = Rc::clone(&got);
        s.spawn(async move {
            let (conn, _) = listener.accept().await?;
            let mut buf = [0; 64];
            // Start waiting (the socket is registered with epoll), then
            // let the peer send and close, both before the next poll.
            let n = {
                let mut first = std::pin::pin!(conn.recv(&mut buf));
                assert!(PollOnce(first.as_mut()).await.is_none());
                g.send(()).await.unwrap();
                first.await?
            };
            o.borrow_mut()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let n = conn.recv(&mut buf).await?;
            o.borrow_mut()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            Ok::<(), std::io::Error>(())
        });
        s.spawn(async move {
            let mut peer = std::net::TcpStream::connect(addr)?;
            go.recv().await;
            peer.write_all(b"bye")?;
            drop(peer);
            Ok::<(), std::io::Error>(())
        });
        s.run().unwrap();
        assert_eq!(*got.borrow(), ["bye", ""]);
    });
}

/// Polls a future once: `Some(output)` if it was ready.
struct PollOnce<'a, F: std::future::Future>(std::pin::Pin<&'a mut F>);

impl<F: std::future::Future> std::future::Future for PollOnce<'_, F> {
    type Output = Option<F::Output>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<F::Output>> {
        std::task::Poll::Ready(match self.0.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    }
}

/// Polls two futures in one task until both are done.
async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(move |cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

#[test]
fn rendezvous_channel_hands_over_in_order() {
    bounded(10, || {
        let out = log();
        let mut s = Scheduler::new().unwrap();
        let ch: Chan<u32> = Chan::new(0);
        assert_eq!(
            ch.try_send(1),
            Err(TrySendError::Full(1)),
            "nobody receives"
        );
        let (tx, o) = (ch.clone(), Rc::clone(&out));
        s.spawn(async move {
            for i in 0..3 {
                tx.send(i).await.unwrap();
                o.borrow_mut().push(format!("sent {i}"));
            }
            tx.close();
        });
        let o = Rc::clone(&out);
        s.spawn(async move {
            while let Some(v) = ch.recv().await {
                o.borrow_mut().push(format!("got {v}"));
            }
            o.borrow_mut().push("closed".into());
        });
        s.run().unwrap();
        let out = out.borrow();
        let got: Vec<_> = out.iter().filter(|l| l.starts_with("got")).collect();
        assert_eq!(got, ["got 0", "got 1", "got 2"]);
        assert_eq!(out.last().unwrap(), "closed");
    });
}

#[test]
fn buffered_channel_and_close_wake_waiters() {
    bounded(10, || {
        let mut s = Scheduler::new().unwrap();
        let ch: Chan<u32> = Chan::new(2);
        assert!(ch.try_send(1).is_ok() && ch.try_send(2).is_ok());
        assert_eq!(ch.try_send(3), Err(TrySendError::Full(3)));
        let results = log();
        // A sender blocked on the full buffer, and receivers blocked on an
        // empty channel, are all woken by close.
        let (c, r) = (ch.clone(), Rc::clone(&results));
        s.spawn(async move {
            let e = c.send(3).await;
            r.borrow_mut().push(format!("send: {e:?}"));
        });
        let empty: Chan<u32> = Chan::new(4);
        for _ in 0..2 {
            let (c, r) = (empty.clone(), Rc::clone(&results));
            s.spawn(async move {
                let v = c.recv().await;
                r.borrow_mut().push(format!("recv: {v:?}"));
            });
        }
        s.spawn(async move {
            sched::yield_now().await;
            ch.close();
            empty.close();
            // Values buffered before the close are still received.
            assert_eq!(ch.try_recv(), Ok(1));
            assert_eq!(ch.recv().await, Some(2));
            assert_eq!(ch.try_recv(), Err(TryRecvError::Closed));
        });
        s.run().unwrap();
        let mut got = results.borrow().clone();
        got.sort();
        assert_eq!(got, ["recv: None", "recv: None", "send: Err(SendError(3))"]);
    });
}

#[test]
fn alt_takes_the_ready_operation_and_withdraws_the_others() {
    bounded(10, || {
        #[derive(Debug, PartialEq)]
        enum Got {
            A(Option<u32>),
            B(Option<&'static str>),
            Sent,
            Timeout,
        }
        let mut s = Scheduler::new().unwrap();
        let a: Chan<u32> = Chan::new(0);
        let b: Chan<&'static str> = Chan::new(0);
        let c: Chan<u32> = Chan::new(0);
        let (a2, b2, c2) = (a.clone(), b.clone(), c.clone());
        s.spawn(async move {
            // Blocks on all three; b's sender completes it.
            let got = alt()
                .recv(&a2, Got::A)
                .recv(&b2, Got::B)
                .send(&c2, 7, |_| Got::Sent)
                .await;
            assert_eq!(got, Got::B(Some("hello")));
            // The withdrawn send did not deliver: nobody can receive 7.
            assert_eq!(c2.try_recv(), Err(TryRecvError::Empty));
            // A timeout when nothing happens.
            let t0 = Instant::now();
            let got = alt()
                .recv(&a2, Got::A)
                .after(Duration::from_millis(20), || Got::Timeout)
                .await;
            assert_eq!(got, Got::Timeout);
            assert!(t0.elapsed() >= Duration::from_millis(20));
            // A send op completes when a receiver arrives.
            let got = alt().recv(&a2, Got::A).send(&c2, 9, |_| Got::Sent).await;
            assert_eq!(got, Got::Sent);
            // Close wakes a blocked alt.
            let got = alt().recv(&a2, Got::A).await;
            assert_eq!(got, Got::A(None));
        });
        s.spawn(async move {
            sched::yield_now().await;
            b.send("hello").await.unwrap();
            // Receive the 9 once the alt has blocked on it.
            assert_eq!(c.recv().await, Some(9));
            sched::yield_now().await;
            a.close();
        });
        s.run().unwrap();
    });
}

#[test]
fn sleeping_tasks_wake_in_deadline_order() {
    bounded(10, || {
        let out = log();
        let mut s = Scheduler::new().unwrap();
        for ms in [30u64, 10, 20] {
            let o = Rc::clone(&out);
            s.spawn(async move {
                sched::sleep(Duration::from_millis(ms)).await;
                o.borrow_mut().push(ms.to_string());
            });
        }
        s.run().unwrap();
        assert_eq!(*out.borrow(), ["10", "20", "30"]);
    });
}

#[test]
fn blocking_call_does_not_block_the_scheduler() {
    bounded(10, || {
        let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(1);
        let mut s = Scheduler::new().unwrap();
        let out = log();
        let o = Rc::clone(&out);
        s.spawn(async move {
            // Blocks its helper thread until the other task says go: if
            // the scheduler were blocked too, this would never finish.
            let v = sched::blocking(move || {
                go_rx.recv().unwrap();
                42
            })
            .await
            .unwrap();
            o.borrow_mut().push(format!("blocking returned {v}"));
            let e = sched::blocking(|| -> u32 { panic!("helper exploded") })
                .await
                .unwrap_err();
            o.borrow_mut().push(e.to_string());
        });
        let o = Rc::clone(&out);
        s.spawn(async move {
            o.borrow_mut().push("other task runs".into());
            go_tx.send(()).unwrap();
        });
        s.run().unwrap();
        assert_eq!(
            *out.borrow(),
            [
                "other task runs",
                "blocking returned 42",
                "task failed: blocking call panicked: helper exploded"
            ]
        );
    });
}

#[test]
fn procs_play_ping_pong_across_threads() {
    bounded(20, || {
        let (ping_tx, ping_rx) = sched::xchan::<u32>(1);
        let (pong_tx, pong_rx) = sched::xchan::<u32>(1);
        let echo = Proc::spawn("pong", move || async move {
            while let Some(v) = ping_rx.recv().await {
                pong_tx.send(v + 1).await.unwrap();
            }
        })
        .unwrap();
        let mut s = Scheduler::new().unwrap();
        s.spawn(async move {
            let mut v = 0;
            for _ in 0..1000 {
                ping_tx.send(v).await.unwrap();
                v = pong_rx.recv().await.unwrap();
            }
            assert_eq!(v, 1000);
        });
        s.run().unwrap();
        echo.join().unwrap();
    });
}

#[test]
fn xchan_ends_see_the_other_side_go_away() {
    bounded(20, || {
        // Senders on a plain thread; the receiving task sees every value,
        // then None once all senders are gone.
        let (tx, rx) = sched::xchan::<u32>(4);
        let tx2 = tx.clone();
        let producer = std::thread::spawn(move || {
            for i in 0..100 {
                let t = if i % 2 == 0 { &tx } else { &tx2 };
                t.send_blocking(i).unwrap();
            }
        });
        let mut s = Scheduler::new().unwrap();
        let sum = Rc::new(Cell::new(0));
        let total = Rc::clone(&sum);
        s.spawn(async move {
            while let Some(v) = rx.recv().await {
                total.set(total.get() + v);
            }
        });
        s.run().unwrap();
        producer.join().unwrap();
        assert_eq!(sum.get(), (0..100).sum::<u32>());

        // A task blocked sending into a full channel fails once the
        // receiver, on another thread, is dropped.
        let (tx, rx) = sched::xchan::<u32>(1);
        let (dropped_tx, dropped_rx) = mpsc::channel::<()>();
        let mut s = Scheduler::new().unwrap();
        s.spawn(async move {
            tx.send(1).await.unwrap();
            // Full now; let the other thread drop the receiver.
            dropped_tx.send(()).unwrap();
            assert_eq!(tx.send(2).await, Err(2));
        });
        let holder = std::thread::spawn(move || {
            dropped_rx.recv().unwrap();
            drop(rx);
        });
        s.run().unwrap();
        holder.join().unwrap();
    });
}

#[test]
fn a_deadlock_is_reported_not_a_hang() {
    bounded(10, || {
        let mut s = Scheduler::new().unwrap();
        let a: Chan<u32> = Chan::new(0);
        let b: Chan<u32> = Chan::new(0);
        let (a2, b2) = (a.clone(), b.clone());
        s.spawn(async move { a2.recv().await.map(drop).unwrap_or(()) });
        s.spawn(async move { b2.recv().await.map(drop).unwrap_or(()) });
        let err = s.run().unwrap_err();
        assert!(err.to_string().contains("deadlock: task(s) 1, 2"), "{err}");
        assert!(s.is_empty());
        drop((a, b));
    });
}

#[test]
fn hosted_stages_form_a_working_cycle() {
    bounded(10, || {
        // collatz: `step` sends n/2 or 3n+1 back to itself through
        // `route`, which sends 1 to `done`. A direct-send graph would
        // re-enter `step`; hosted stages talk through channels instead.
        let mut s = Scheduler::new().unwrap();
        let step_in: Chan<u64> = Chan::new(1);
        let route_in: Chan<u64> = Chan::new(1);
        let done: Chan<u64> = Chan::new(16);
        let path = Rc::new(RefCell::new(Vec::new()));
        let p = Rc::clone(&path);
        let mut to_route = Outlet::new(route_in.clone());
        s.spawn(host(
            step_in.clone(),
            from_fn(move |n: u64| {
                p.borrow_mut().push(n);
                to_route.send(if n.is_multiple_of(2) {
                    n / 2
                } else {
                    3 * n + 1
                })
            }),
        ));
        let mut back = Outlet::new(step_in.clone());
        let mut out = Outlet::new(done.clone());
        s.spawn(host(
            route_in.clone(),
            from_fn(move |n: u64| if n == 1 { out.send(n) } else { back.send(n) }),
        ));
        // Several tasks push into the same pipeline.
        for start in [6u64, 7] {
            let tx = step_in.clone();
            s.spawn(async move { tx.send(start).await.unwrap() });
        }
        s.spawn(async move {
            assert_eq!(done.recv().await, Some(1));
            assert_eq!(done.recv().await, Some(1));
            step_in.close();
            route_in.close();
        });
        s.run().unwrap();
        let mut seen = path.borrow().clone();
        seen.sort();
        seen.dedup();
        // 6 -> 3 -> 10 -> 5 -> 16 -> 8 -> 4 -> 2; 7 -> 22 -> 11 -> 34 -> 17 -> 52 -> 26 -> 13 -> 40 -> 20 -> 10 ...
        for n in [
            6, 3, 10, 5, 16, 8, 4, 2, 7, 22, 11, 34, 17, 52, 26, 13, 40, 20,
        ] {
            assert!(seen.contains(&n), "{n} missing from {seen:?}");
        }
        assert_eq!(s.failures(), 0);
    });
}

#[test]
fn hosted_stage_error_fails_its_task_and_closes_its_inbox() {
    bounded(10, || {
        let mut s = Scheduler::new().unwrap();
        s.on_failure(|_, _| {});
        let inbox: Chan<u32> = Chan::new(0);
        let stage = from_fn(|n: u32| {
            if n == 3 {
                Err(copipe::Error::usage("three is bad"))
            } else {
                Ok(Flow::Continue)
            }
        });
        let hosted = s.spawn(host(inbox.clone(), stage));
        s.spawn(async move {
            let e = sched::wait(hosted).await.unwrap_err();
            assert!(e.to_string().contains("three is bad"), "{e}");
        });
        s.spawn(async move {
            let mut sent = 0;
            for n in 1..10 {
                if inbox.send(n).await.is_err() {
                    break;
                }
                sent += 1;
            }
            assert_eq!(sent, 3);
        });
        s.run().unwrap();
        assert_eq!(s.failures(), 1);
    });
}

/// A sink for `follow` that records lines, stops after `want`, and says
/// on a channel each time the follower is about to wait (`flush`).
struct Lines {
    lines: Rc<RefCell<Vec<String>>>,
    want: usize,
    waiting: Chan<()>,
}

impl<'a> Stage<&'a [u8]> for Lines {
    fn send(&mut self, line: &'a [u8]) -> copipe::Result<Flow> {
        let mut lines = self.lines.borrow_mut();
        lines.push(String::from_utf8_lossy(line).into_owned());
        Ok(if lines.len() == self.want {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

impl Lifecycle for Lines {
    fn flush(&mut self) -> copipe::Result<()> {
        let _ = self.waiting.try_send(());
        Ok(())
    }
    fn close(&mut self) -> copipe::Result<()> {
        Ok(())
    }
}

/// Waits until the follower has read everything written so far and is
/// waiting again: the notices before this call are stale (the write
/// happened after them, in this same poll of the calling task).
async fn follower_caught_up(waiting: &Chan<()>) {
    while waiting.try_recv().is_ok() {}
    waiting.recv().await;
}

#[test]
fn follow_waits_on_inotify_and_joins_split_lines() {
    bounded(10, || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "old line\n").unwrap();
        let mut s = Scheduler::new().unwrap();
        let lines = Rc::new(RefCell::new(Vec::new()));
        let waiting: Chan<()> = Chan::new(64);
        let sink = Lines {
            lines: Rc::clone(&lines),
            want: 3,
            waiting: waiting.clone(),
        };
        let p = path.clone();
        let follower =
            s.spawn(async move { copipe::sched::follow(&p, FollowOptions::new(), sink).await });
        let p = path.clone();
        s.spawn(async move {
            waiting.recv().await;
            let mut f = std::fs::OpenOptions::new().append(true).open(&p)?;
            // A line written in two parts, the follower reading in between.
            f.write_all(b"first ")?;
            follower_caught_up(&waiting).await;
            f.write_all(b"half\nsecond\n")?;
            follower_caught_up(&waiting).await;
            // Truncation: reading restarts at 0.
            f.set_len(0)?;
            follower_caught_up(&waiting).await;
            f.write_all(b"after truncate\n")?;
            sched::wait(follower).await?;
            Ok::<(), copipe::Error>(())
        });
        s.run().unwrap();
        assert_eq!(s.failures(), 0);
        assert_eq!(
            *lines.borrow(),
            ["first half\n", "second\n", "after truncate\n"]
        );
    });
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the capacity, the number of producers and how they
        /// interleave (yields), each producer's values arrive once, in
        /// the order it sent them, and close ends the receiver.
        #[test]
        fn chan_delivers_everything_in_order(
            cap in 0usize..4,
            plans in proptest::collection::vec(
                proptest::collection::vec(0u8..3, 0..20), 1..4),
        ) {
            let mut s = Scheduler::new().unwrap();
            let ch: Chan<(usize, usize)> = Chan::new(cap);
            let producers = Rc::new(Cell::new(plans.len()));
            for (p, plan) in plans.iter().cloned().enumerate() {
                let (tx, left) = (ch.clone(), Rc::clone(&producers));
                s.spawn(async move {
                    for (i, yields) in plan.into_iter().enumerate() {
                        for _ in 0..yields {
                            sched::yield_now().await;
                        }
                        tx.send((p, i)).await.unwrap();
                    }
                    left.set(left.get() - 1);
                    if left.get() == 0 {
                        tx.close();
                    }
                });
            }
            let got = Rc::new(RefCell::new(Vec::new()));
            let g = Rc::clone(&got);
            s.spawn(async move {
                while let Some(v) = ch.recv().await {
                    g.borrow_mut().push(v);
                }
            });
            s.run().unwrap();
            let got = got.borrow();
            prop_assert_eq!(got.len(), plans.iter().map(Vec::len).sum::<usize>());
            for (p, plan) in plans.iter().enumerate() {
                let mine: Vec<usize> = got.iter().filter(|(q, _)| *q == p).map(|(_, i)| *i).collect();
                prop_assert_eq!(mine, (0..plan.len()).collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn follow_reads_a_rotated_file_to_its_end_then_the_new_one() {
    bounded(10, || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let rotated = dir.path().join("app.log.1");
        std::fs::write(&path, "old\n").unwrap();
        let mut s = Scheduler::new().unwrap();
        let lines = Rc::new(RefCell::new(Vec::new()));
        let waiting: Chan<()> = Chan::new(64);
        let sink = Lines {
            lines: Rc::clone(&lines),
            want: 3,
            waiting: waiting.clone(),
        };
        let p = path.clone();
        let follower =
            s.spawn(async move { copipe::sched::follow(&p, FollowOptions::new(), sink).await });
        s.spawn(async move {
            waiting.recv().await;
            let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
            f.write_all(b"before rotation\n")?;
            follower_caught_up(&waiting).await;
            // logrotate: rename, and the writer still appends to the old
            // file for a while.
            std::fs::rename(&path, &rotated)?;
            f.write_all(b"late, into the rotated file\n")?;
            follower_caught_up(&waiting).await;
            std::fs::write(&path, "first of the new file\n")?;
            sched::wait(follower).await?;
            Ok::<(), copipe::Error>(())
        });
        s.run().unwrap();
        assert_eq!(s.failures(), 0);
        assert_eq!(
            *lines.borrow(),
            [
                "before rotation\n",
                "late, into the rotated file\n",
                "first of the new file\n"
            ]
        );
    });
}

/// Issue 15: a task in one proc waits in `alt` on values sent by a task of
/// another proc, beside a local channel nobody sends on.
#[test]
fn alt_waits_on_a_cross_proc_channel_beside_a_local_one() {
    bounded(20, || {
        let (tx, rx) = sched::xchan::<u32>(1);
        let producer = Proc::spawn("producer", move || async move {
            for v in 1..=3 {
                tx.send(v).await.unwrap();
                sched::yield_now().await;
            }
        })
        .unwrap();
        let mut s = Scheduler::new().unwrap();
        s.spawn(async move {
            let local: Chan<u32> = Chan::new(0);
            let mut got = Vec::new();
            loop {
                let r = alt()
                    .recv(&local, |v| v.map(|v| v + 100))
                    .xrecv(&rx, |v| v)
                    .await;
                match r {
                    Some(v) => got.push(v),
                    None => break, // the producer is gone
                }
            }
            assert_eq!(got, [1, 2, 3]);
        });
        s.run().unwrap();
        producer.join().unwrap();
    });
}

/// Issue 15: the local side of a mixed alt wins when it is the one sent
/// on, and the cross-proc side is withdrawn.
#[test]
fn a_mixed_alt_takes_the_local_value_when_it_comes_first() {
    bounded(20, || {
        let (tx, rx) = sched::xchan::<u32>(1);
        let mut s = Scheduler::new().unwrap();
        s.spawn(async move {
            let local: Chan<u32> = Chan::new(0);
            let l = local.clone();
            sched::spawn(async move { l.send(7).await.unwrap() }).await;
            let r = alt()
                .recv(&local, |v| ("local", v))
                .xrecv(&rx, |v| ("xchan", v))
                .await;
            assert_eq!(r, ("local", Some(7)));
            tx.send(8).await.unwrap();
            let r = alt()
                .recv(&local, |v| ("local", v))
                .xrecv(&rx, |v| ("xchan", v))
                .await;
            assert_eq!(r, ("xchan", Some(8)));
        });
        s.run().unwrap();
    });
}

/// Issue 15: a non-blocking alt (libtask9's `canblock=False`) returns at
/// once when nothing is ready, over local and cross-proc channels alike.
#[test]
fn a_nonblocking_alt_returns_at_once() {
    bounded(20, || {
        let (tx, rx) = sched::xchan::<u32>(1);
        let mut s = Scheduler::new().unwrap();
        s.spawn(async move {
            let local: Chan<u32> = Chan::new(1);
            let r = alt()
                .recv(&local, Some)
                .xrecv(&rx, Some)
                .nonblocking(|| None)
                .await;
            assert_eq!(r, None);
            tx.send(5).await.unwrap();
            let r = alt()
                .recv(&local, Some)
                .xrecv(&rx, Some)
                .nonblocking(|| None)
                .await;
            assert_eq!(r, Some(Some(5)));
            assert_eq!(2 * sched::SECOND, Duration::from_secs(2));
            assert_eq!(sched::MILLISECOND * 1000, sched::SECOND);
        });
        s.run().unwrap();
    });
}

/// Issue 15: with `seed_order`, the seed's pyos6 order (the child runs
/// before its parent resumes) and the exit hook's `Task N terminated`;
/// without, copipe's default (the parent keeps running).
#[test]
fn seed_order_runs_the_child_first_and_on_exit_reports_each_end() {
    bounded(20, || {
        for seed in [true, false] {
            let log = Rc::new(RefCell::new(Vec::<String>::new()));
            let mut s = Scheduler::new().unwrap();
            s.seed_order(seed);
            let l = Rc::clone(&log);
            s.on_exit(move |tid| l.borrow_mut().push(format!("Task {tid} terminated")));
            let l = Rc::clone(&log);
            s.spawn(async move {
                let c = Rc::clone(&l);
                let child = sched::spawn(async move {
                    for _ in 0..2 {
                        c.borrow_mut().push("I'm foo".into());
                        sched::yield_now().await;
                    }
                })
                .await;
                l.borrow_mut().push("Waiting for child".into());
                sched::wait(child).await.unwrap();
                l.borrow_mut().push("Child done".into());
            });
            s.run().unwrap();
            let first = if seed { "I'm foo" } else { "Waiting for child" };
            let log = log.borrow();
            assert_eq!(log[0], first, "seed_order({seed})");
            assert_eq!(
                log[log.len() - 3..],
                ["Task 2 terminated", "Child done", "Task 1 terminated"]
            );
        }
    });
}
