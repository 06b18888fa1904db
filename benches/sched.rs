//! Scheduler benchmarks (issue 6), side by side with tokio's
//! current_thread runtime measured in the same run:
//!
//! - `switch`: two tasks yielding to each other, ns per switch, with I/O
//!   and timers enabled (a task parked on a pipe, a timer pending);
//! - `spawn`: spawn and complete 1,000,000 tasks;
//! - `parked`: heap bytes per parked task with 100,000 tasks (a counting
//!   global allocator);
//! - `echo`: the seed's test, 3 client processes x 300 connections,
//!   1024-byte messages, against `copipe echo`, a tokio current_thread
//!   echo server (tokio's usual one, with a buffer per client, and one
//!   with `copipe echo`'s shared buffer) and a hand-written mio loop;
//!   server CPU time (user and system, from `wait4`'s rusage) per round
//!   trip;
//! - `c10k`: 10,000 concurrent connections against `copipe echo`.
//!
//! `cargo bench --bench sched [-- switch spawn parked echo c10k]`. The
//! same binary is its own load generator and comparison servers
//! (`sched load|tokio-echo|tokio-echo-shared|mio-echo ...`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use copipe::sched::{self, Chan, Scheduler, Socket};

// ---------------------------------------------------------------------
// A counting allocator, for bytes per parked task.

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's own
// arguments, which satisfy `System`'s contract because they satisfy ours;
// the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

const SWITCHES: u64 = 1_000_000;

/// ns per switch, two tasks yielding, with a task parked on a pipe and a
/// timer pending so the poller and timer paths are live.
fn copipe_switch() -> f64 {
    let (rx, _tx) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut s = Scheduler::new().unwrap();
    let done = Rc::new(Cell::new(0));
    let d = Rc::clone(&done);
    let parked = s.spawn(async move {
        sched::read_wait(rx.as_raw_fd()).await?;
        Ok::<(), std::io::Error>(())
    });
    let timer = s.spawn(async { sched::sleep(Duration::from_secs(3600)).await });
    let start = Rc::new(Cell::new(None));
    for _ in 0..2 {
        let (d, start) = (Rc::clone(&d), Rc::clone(&start));
        s.spawn(async move {
            start.set(start.get().or(Some(Instant::now())));
            for _ in 0..SWITCHES / 2 {
                sched::yield_now().await;
            }
            d.set(d.get() + 1);
            if d.get() == 2 {
                let t: Instant = start.get().unwrap();
                d.set(t.elapsed().as_nanos() as u64 + 2);
                sched::kill(parked).await;
                sched::kill(timer).await;
            }
        });
    }
    s.run().unwrap();
    (done.get() - 2) as f64 / SWITCHES as f64
}

fn tokio_switch() -> f64 {
    let rt = tokio_rt();
    rt.block_on(async {
        let (rx, _tx) = std::os::unix::net::UnixStream::pair().unwrap();
        rx.set_nonblocking(true).unwrap();
        let rx = tokio::net::UnixStream::from_std(rx).unwrap();
        let parked = tokio::spawn(async move {
            let _ = rx.readable().await;
        });
        let timer = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
        let start = Instant::now();
        let a = tokio::spawn(async {
            for _ in 0..SWITCHES / 2 {
                tokio::task::yield_now().await;
            }
        });
        let b = tokio::spawn(async {
            for _ in 0..SWITCHES / 2 {
                tokio::task::yield_now().await;
            }
        });
        a.await.unwrap();
        b.await.unwrap();
        let ns = start.elapsed().as_nanos() as f64 / SWITCHES as f64;
        parked.abort();
        timer.abort();
        ns
    })
}

const SPAWNS: usize = 1_000_000;

/// Seconds to spawn and complete 1M tasks (spawned by a task).
fn copipe_spawn() -> f64 {
    let mut s = Scheduler::new().unwrap();
    // `COPIPE_SEED_ORDER=1`: the seed's order (the parent requeued behind
    // each child it spawns), to measure what `Scheduler::seed_order` costs.
    s.seed_order(std::env::var_os("COPIPE_SEED_ORDER").is_some());
    let done = Rc::new(Cell::new(0usize));
    let d = Rc::clone(&done);
    let start = Instant::now();
    s.spawn(async move {
        for _ in 0..SPAWNS {
            let d = Rc::clone(&d);
            sched::spawn(async move { d.set(d.get() + 1) }).await;
        }
    });
    s.run().unwrap();
    let t = start.elapsed().as_secs_f64();
    assert_eq!(done.get(), SPAWNS);
    t
}

fn tokio_spawn() -> f64 {
    let rt = tokio_rt();
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let d = Arc::clone(&done);
    rt.block_on(async move {
        for _ in 0..SPAWNS {
            let d = Arc::clone(&d);
            tokio::spawn(async move {
                d.fetch_add(1, Ordering::Relaxed);
            });
        }
        while d.load(Ordering::Relaxed) < SPAWNS {
            tokio::task::yield_now().await;
        }
    });
    let t = start.elapsed().as_secs_f64();
    assert_eq!(done.load(Ordering::Relaxed), SPAWNS);
    t
}

const PARKED: usize = 100_000;

/// Heap bytes per task parked on a channel receive.
fn copipe_parked() -> f64 {
    let mut s = Scheduler::new().unwrap();
    let ch: Chan<u32> = Chan::new(0);
    let before = live();
    for _ in 0..PARKED {
        let ch = ch.clone();
        s.spawn(async move {
            ch.recv().await;
        });
    }
    let bytes = Rc::new(Cell::new(0isize));
    let b = Rc::clone(&bytes);
    let c = ch.clone();
    s.spawn(async move {
        // Every other task has run once and parked by now (FIFO).
        b.set(live() - before);
        c.close();
    });
    s.run().unwrap();
    drop(ch);
    bytes.get() as f64 / PARKED as f64
}

fn tokio_parked() -> f64 {
    let rt = tokio_rt();
    let before = live();
    let bytes = rt.block_on(async move {
        let mut handles = Vec::with_capacity(PARKED);
        let base = live();
        for _ in 0..PARKED {
            handles.push(tokio::spawn(std::future::pending::<()>()));
        }
        // Let every task run once and park.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        // The handles vector is ours, not tokio's: leave it out.
        let b = live() - base - (handles.capacity() * std::mem::size_of_val(&handles[0])) as isize;
        for h in handles {
            h.abort();
        }
        b
    });
    let _ = before;
    bytes as f64 / PARKED as f64
}

/// The same, for copipe tasks parked on a future that never wakes (what
/// the tokio side parks on).
fn copipe_parked_pending() -> f64 {
    let mut s = Scheduler::new().unwrap();
    let before = live();
    let mut tids = Vec::with_capacity(PARKED);
    for _ in 0..PARKED {
        tids.push(s.spawn(std::future::pending::<()>()));
    }
    let tids_bytes = (tids.capacity() * std::mem::size_of_val(&tids[0])) as isize;
    let bytes = Rc::new(Cell::new(0isize));
    let b = Rc::clone(&bytes);
    s.spawn(async move {
        b.set(live() - before - tids_bytes);
        for t in tids {
            sched::kill(t).await;
        }
    });
    s.run().unwrap();
    bytes.get() as f64 / PARKED as f64
}

// ---------------------------------------------------------------------
// Echo: servers, load generator, CPU accounting.

fn start_server(cmd: &mut Command) -> (Child, SocketAddr) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

struct EchoResult {
    wall: f64,
    round_trips: u64,
    user: f64,
    sys: f64,
}

fn run_echo(server: &mut Command, procs: usize, conns: usize, rounds: usize) -> EchoResult {
    let (child, addr) = start_server(server);
    let me = std::env::current_exe().unwrap();
    let start = Instant::now();
    let loaders: Vec<Child> = (0..procs)
        .map(|_| {
            Command::new(&me)
                .args([
                    "load",
                    &addr.to_string(),
                    &conns.to_string(),
                    &rounds.to_string(),
                ])
                .stdout(Stdio::piped())
                .spawn()
                .expect("load generator")
        })
        .collect();
    let mut round_trips = 0;
    for l in loaders {
        let out = l.wait_with_output().unwrap();
        assert!(out.status.success(), "load generator failed");
        round_trips += String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0);
    }
    let wall = start.elapsed().as_secs_f64();
    let (user, sys) = kill_and_reap(child);
    EchoResult {
        wall,
        round_trips,
        user,
        sys,
    }
}

/// Kills a server and returns its (user, system) CPU seconds from
/// `wait4`'s rusage, in microseconds, instead of /proc's 10 ms clock
/// ticks. (The kernel still splits user from system time by sampling at
/// its tick rate, so a short run's user time is noisy: hence the long
/// runs and medians.) The server's start-up (binding one socket) is
/// included and negligible.
fn kill_and_reap(mut child: Child) -> (f64, f64) {
    let _ = child.kill();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child, and `status` and `ru` are
    // valid for wait4 to write.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4 on the server");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// The load generator: `conns` connections on copipe's scheduler, each
/// doing `rounds` round trips of 1024 bytes. Prints the round trips done.
fn load(addr: SocketAddr, conns: usize, rounds: usize) {
    let mut s = Scheduler::new().unwrap();
    let total = Rc::new(Cell::new(0u64));
    for i in 0..conns {
        let total = Rc::clone(&total);
        s.spawn(async move {
            let sock = Socket::connect(addr).await?;
            sock.set_nodelay(true)?;
            let msg = vec![(i % 251) as u8; 1024];
            let mut got = vec![0u8; 1024];
            for _ in 0..rounds {
                sock.send_all(&msg).await?;
                sock.recv_exact(&mut got).await?;
                total.set(total.get() + 1);
            }
            Ok::<(), std::io::Error>(())
        });
    }
    s.run().unwrap();
    println!("{}", total.get());
}

fn tokio_echo() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio_rt().block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("tokio echo: listening on {}", l.local_addr().unwrap());
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

/// tokio with `copipe echo`'s design: every client reads into one shared
/// buffer (`readable` + `try_read`, then `try_write`; what the socket does
/// not take is kept per client and written before the client is read
/// again). The kernel then copies into a buffer that stays in the CPU
/// cache, which is most of what that design saves, so this is the
/// like-for-like comparison; `tokio_echo` is tokio's usual per-client
/// buffer.
fn tokio_echo_shared() {
    use std::cell::RefCell;
    use std::io::ErrorKind::WouldBlock;
    use tokio::io::AsyncWriteExt;
    let local = tokio::task::LocalSet::new();
    local.block_on(&tokio_rt(), async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("tokio echo: listening on {}", l.local_addr().unwrap());
        let scratch = Rc::new(RefCell::new(vec![0u8; 8192]));
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                continue;
            };
            let scratch = Rc::clone(&scratch);
            tokio::task::spawn_local(async move {
                let mut unsent = Vec::new();
                loop {
                    if c.readable().await.is_err() {
                        return;
                    }
                    {
                        let mut buf = scratch.borrow_mut();
                        let n = match c.try_read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => n,
                            Err(e) if e.kind() == WouldBlock => continue,
                            Err(_) => return,
                        };
                        let sent = match c.try_write(&buf[..n]) {
                            Ok(k) => k,
                            Err(e) if e.kind() == WouldBlock => 0,
                            Err(_) => return,
                        };
                        unsent.extend_from_slice(&buf[sent..n]);
                    }
                    if !unsent.is_empty() {
                        if c.write_all(&unsent).await.is_err() {
                            return;
                        }
                        unsent.clear();
                    }
                }
            });
        }
    });
}

/// A hand-written mio echo loop: the floor a scheduler is measured against.
fn mio_echo() {
    use mio::net::TcpListener;
    use mio::{Events, Interest, Poll, Token};
    use std::collections::HashMap;
    let mut poll = Poll::new().unwrap();
    let mut l = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    println!("mio echo: listening on {}", l.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    poll.registry()
        .register(&mut l, Token(0), Interest::READABLE)
        .unwrap();
    let mut conns: HashMap<usize, (mio::net::TcpStream, Vec<u8>)> = HashMap::new();
    let mut next = 1;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 8192];
    loop {
        poll.poll(&mut events, None).unwrap();
        for ev in events.iter() {
            if ev.token() == Token(0) {
                while let Ok((mut c, _)) = l.accept() {
                    poll.registry()
                        .register(&mut c, Token(next), Interest::READABLE | Interest::WRITABLE)
                        .unwrap();
                    conns.insert(next, (c, Vec::new()));
                    next += 1;
                }
                continue;
            }
            let key = ev.token().0;
            let mut close = false;
            if let Some((c, pending)) = conns.get_mut(&key) {
                loop {
                    if !pending.is_empty() {
                        match c.write(pending) {
                            Ok(n) => {
                                pending.drain(..n);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(_) => {
                                close = true;
                                break;
                            }
                        }
                        if !pending.is_empty() {
                            continue;
                        }
                    }
                    match c.read(&mut buf) {
                        Ok(0) => {
                            close = true;
                            break;
                        }
                        Ok(n) => match c.write(&buf[..n]) {
                            Ok(m) => pending.extend_from_slice(&buf[m..n]),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                pending.extend_from_slice(&buf[..n])
                            }
                            Err(_) => {
                                close = true;
                                break;
                            }
                        },
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            close = true;
                            break;
                        }
                    }
                }
            }
            if close {
                conns.remove(&key);
            }
        }
    }
}

/// 10,000 connections held open at once, each doing one round trip.
fn c10k(copipe: &str) -> (usize, f64, u64) {
    let (child, addr) = start_server(Command::new(copipe).args(["echo", "--port", "0"]));
    let pid = child.id();
    let rss_kib = Rc::new(Cell::new(0u64));
    let start = Instant::now();
    let mut s = Scheduler::new().unwrap();
    const N: usize = 10_000;
    let ok = Rc::new(Cell::new(0usize));
    let release: Chan<()> = Chan::new(0);
    for i in 0..N {
        let (ok, release) = (Rc::clone(&ok), release.clone());
        let rss = Rc::clone(&rss_kib);
        s.spawn(async move {
            let sock = Socket::connect(addr).await?;
            let msg = [(i % 251) as u8; 64];
            let mut got = [0u8; 64];
            sock.send_all(&msg).await?;
            sock.recv_exact(&mut got).await?;
            assert_eq!(got, msg);
            ok.set(ok.get() + 1);
            if ok.get() == N {
                // All 10,000 connected at once: the server's memory now.
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let kib = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                rss.set(kib);
                release.close();
            } else {
                release.recv().await;
            }
            Ok::<(), std::io::Error>(())
        });
    }
    s.run().unwrap();
    let t = start.elapsed().as_secs_f64();
    kill_and_reap(child);
    (ok.get(), t, rss_kib.get())
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill and setrlimit
    // to read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("load") => {
            raise_fd_limit();
            return load(
                args[1].parse().unwrap(),
                args[2].parse().unwrap(),
                args[3].parse().unwrap(),
            );
        }
        Some("tokio-echo") => return tokio_echo(),
        Some("tokio-echo-shared") => return tokio_echo_shared(),
        Some("mio-echo") => return mio_echo(),
        _ => {}
    }
    raise_fd_limit();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs this binary without `--bench`:
        // a quick smoke run that the benchmarks work, not a measurement.
        let ns = copipe_switch();
        let bytes = copipe_parked_pending();
        assert!(ns > 0.0 && bytes > 0.0);
        println!("sched bench smoke run ok (run `cargo bench --bench sched` to measure)");
        return;
    }
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| wanted.is_empty() || wanted.contains(&name);
    println!(
        "machine: 2 cores shared with other jobs (noisy); medians of runs alternated side by side"
    );

    if want("switch") {
        let (mut c, mut t) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            c.push(copipe_switch());
            t.push(tokio_switch());
        }
        let (c, t) = (median(c), median(t));
        println!(
            "switch (2 tasks yielding, I/O + timers on): copipe {c:.1} ns, tokio current_thread {t:.1} ns, ratio {:.2}",
            c / t
        );
    }
    if want("spawn") {
        let (mut c, mut t) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            c.push(copipe_spawn());
            t.push(tokio_spawn());
        }
        let (c, t) = (median(c), median(t));
        println!(
            "spawn+complete 1M tasks: copipe {c:.3} s, tokio current_thread {t:.3} s, ratio {:.2}",
            c / t
        );
    }
    if want("parked") {
        let (mut c, mut p, mut t) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            c.push(copipe_parked());
            p.push(copipe_parked_pending());
            t.push(tokio_parked());
        }
        let (c, p, t) = (median(c), median(p), median(t));
        println!(
            "bytes per parked task (100k): copipe {p:.0} B (pending future), {c:.0} B (blocked in Chan::recv); tokio current_thread {t:.0} B (pending future); ratio {:.2}",
            p / t
        );
    }
    let copipe = env!("CARGO_BIN_EXE_copipe");
    let me = std::env::current_exe().unwrap();
    if want("echo") {
        // Rounds per connection: the kernel samples user time at 250 Hz,
        // so a run needs a few hundred samples of the mio loop's small
        // user time for the ratio to mean something.
        let rounds: usize = std::env::var("COPIPE_ECHO_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let reps: usize = std::env::var("COPIPE_ECHO_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5);
        let (procs, conns) = (3, 300);
        let mut rows: Vec<(&str, Vec<EchoResult>)> = vec![
            ("copipe echo", vec![]),
            ("tokio current_thread", vec![]),
            ("mio loop", vec![]),
            ("tokio, shared buffer", vec![]),
        ];
        for rep in 0..reps {
            // Rotate the order each repetition, so that no server always
            // runs first (or last) on the noisy machine.
            for k in 0..rows.len() {
                let which = (rep + k) % rows.len();
                let r = match which {
                    0 => run_echo(
                        Command::new(copipe).args(["echo", "--port", "0"]),
                        procs,
                        conns,
                        rounds,
                    ),
                    1 => run_echo(Command::new(&me).arg("tokio-echo"), procs, conns, rounds),
                    2 => run_echo(Command::new(&me).arg("mio-echo"), procs, conns, rounds),
                    _ => run_echo(
                        Command::new(&me).arg("tokio-echo-shared"),
                        procs,
                        conns,
                        rounds,
                    ),
                };
                rows[which].1.push(r);
            }
        }
        println!("echo {procs} procs x {conns} conns x {rounds} round trips of 1024 B:");
        let mut meds = Vec::new();
        for (name, rs) in &rows {
            let per = |f: &dyn Fn(&EchoResult) -> f64| {
                median(
                    rs.iter()
                        .map(|r| f(r) / r.round_trips as f64 * 1e6)
                        .collect(),
                )
            };
            let total = per(&|r| r.user + r.sys);
            let user = per(&|r| r.user);
            let wall = median(rs.iter().map(|r| r.wall).collect());
            let rt = rs[0].round_trips;
            println!(
                "  {name:22} server CPU {total:6.2} us/round trip (user {user:5.2} us), wall {wall:5.2} s, {rt} round trips"
            );
            meds.push((total, user));
        }
        println!(
            "  ratios of medians: copipe/tokio CPU {:.2}; copipe/(tokio, shared buffer) CPU {:.2}; copipe/mio user {:.2}",
            meds[0].0 / meds[1].0,
            meds[0].0 / meds[3].0,
            meds[0].1 / meds[2].1
        );
        // The same ratios within each repetition (its three runs are
        // neighbours in time), then their median.
        let per_rt = |r: &EchoResult, t: f64| t / r.round_trips as f64;
        let cpu: Vec<f64> = (0..reps)
            .map(|i| {
                let (c, t) = (&rows[0].1[i], &rows[1].1[i]);
                per_rt(c, c.user + c.sys) / per_rt(t, t.user + t.sys)
            })
            .collect();
        let user: Vec<f64> = (0..reps)
            .map(|i| {
                let (c, m) = (&rows[0].1[i], &rows[2].1[i]);
                per_rt(c, c.user) / per_rt(m, m.user)
            })
            .collect();
        let show = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let cpu_shared: Vec<f64> = (0..reps)
            .map(|i| {
                let (c, t) = (&rows[0].1[i], &rows[3].1[i]);
                per_rt(c, c.user + c.sys) / per_rt(t, t.user + t.sys)
            })
            .collect();
        println!(
            "  per repetition: copipe/tokio CPU [{}] median {:.2}; copipe/(tokio, shared buffer) CPU [{}] median {:.2}; copipe/mio user [{}] median {:.2}",
            show(&cpu),
            median(cpu.clone()),
            show(&cpu_shared),
            median(cpu_shared.clone()),
            show(&user),
            median(user.clone())
        );
    }
    if want("c10k") {
        let (ok, t, rss) = c10k(copipe);
        println!(
            "c10k: {ok} of 10000 concurrent connections served by copipe echo in {t:.2} s; server RSS {:.1} MiB with all connected",
            rss as f64 / 1024.0
        );
    }
}
