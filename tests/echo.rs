//! `copipe echo` (issue 6), the real binary on 127.0.0.1: many concurrent
//! clients, clients that vanish mid-message, and running out of file
//! descriptors. Every wait has a timeout.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use copipe::sched::{Chan, Scheduler, Socket};

const BIN: &str = env!("CARGO_BIN_EXE_copipe");
const TIMEOUT: Duration = Duration::from_secs(20);

/// A running `copipe echo`, killed when dropped. Its stderr lines arrive
/// on `stderr` with the time they were read.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: mpsc::Receiver<(Instant, String)>,
}

impl Server {
    /// Starts `copipe echo --port 0` through `sh -c` with `prefix` (for
    /// `ulimit`) and reads the address it prints.
    fn start(prefix: &str) -> Server {
        let script = format!("{prefix} exec \"$0\" echo --port 0");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(BIN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start copipe echo");
        let addr = common::read_listen_addr(&mut child, TIMEOUT);
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        Server {
            child,
            addr,
            stderr: rx,
        }
    }

    fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().expect("try_wait").is_none(),
            "the server exited"
        );
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One blocking round trip with a fresh connection.
fn round_trip(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    s.read_exact(&mut got).expect("echo within the timeout");
    got
}

/// User + system CPU seconds of a process, from /proc/PID/stat (assuming
/// the usual 100 clock ticks per second).
fn server_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the command name: state is field 3; utime 14, stime 15.
    let ticks: f64 =
        fields[14 - 3].parse::<f64>().unwrap() + fields[15 - 3].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Raises this process's soft fd limit to its hard limit (the server,
/// started afterwards, inherits it).
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill, and
    // setrlimit only reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur
}

#[test]
fn echoes_what_it_is_sent() {
    let mut server = Server::start("");
    let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert!(round_trip(server.addr, &msg) == msg);
    server.assert_alive();
}

#[test]
fn serves_2000_concurrent_clients() {
    const N: usize = 2000;
    if raise_fd_limit() < (N as u64 + 100) {
        panic!("RLIMIT_NOFILE hard limit too low for {N} clients");
    }
    let mut server = Server::start("");
    let addr = server.addr;
    let (fds_tx, fds_rx) = mpsc::channel::<()>();
    let (fds_done_tx, fds_done_rx) = mpsc::channel::<usize>();
    let server_pid = server.child.id();
    // Counts the server's fds when told that every client is connected.
    std::thread::spawn(move || {
        if fds_rx.recv().is_ok() {
            let n = std::fs::read_dir(format!("/proc/{server_pid}/fd"))
                .map(|d| d.count())
                .unwrap_or(0);
            let _ = fds_done_tx.send(n);
        }
    });
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The clients are tasks on copipe's own scheduler: all connected
        // at once, each checks its own echo, then waits until every
        // client has had its echo before a second round and close.
        let mut s = Scheduler::new().unwrap();
        let echoed = Rc::new(std::cell::Cell::new(0usize));
        let release: Chan<()> = Chan::new(0);
        for i in 0..N {
            let (echoed, release) = (Rc::clone(&echoed), release.clone());
            let fds_tx = fds_tx.clone();
            s.spawn(async move {
                let sock = Socket::connect(addr).await?;
                let msg = vec![(i % 256) as u8; 1024];
                let mut got = vec![0; 1024];
                for round in 0..2 {
                    sock.send_all(&msg).await?;
                    sock.recv_exact(&mut got).await?;
                    assert!(got == msg, "client {i} got another's bytes");
                    if round == 0 {
                        echoed.set(echoed.get() + 1);
                        if echoed.get() == N {
                            let _ = fds_tx.send(());
                            release.close();
                        } else {
                            release.recv().await;
                        }
                    }
                }
                sock.close().await
            });
        }
        s.on_failure(|tid, e| panic!("client {tid}: {e}"));
        s.run().unwrap();
        let _ = done_tx.send(echoed.get());
    });
    let echoed = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("2000 clients finish within 60 s");
    assert_eq!(echoed, N);
    let fds = fds_done_rx.recv_timeout(TIMEOUT).unwrap();
    assert!(
        fds >= N,
        "server held only {fds} fds with {N} clients connected"
    );
    server.assert_alive();
}

#[test]
fn clients_that_vanish_mid_message_do_not_hurt_the_server() {
    let mut server = Server::start("");
    let addr = server.addr;
    for _ in 0..20 {
        // Half a message, then a reset (SO_LINGER 0) instead of a close.
        let s = TcpStream::connect(addr).unwrap();
        (&s).write_all(&[b'x'; 512]).unwrap();
        let s = socket2::Socket::from(s);
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
        // A client that sends much more than it reads, then goes away
        // while the server is blocked sending the echo back.
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let big = vec![b'y'; 1 << 20];
        let _ = s.write_all(&big); // may time out: the server stops reading
        drop(s);
    }
    // Still serving, and not leaking a connection per vanished client:
    // wait (bounded) until the server has closed them all.
    let msg = b"still here".to_vec();
    assert_eq!(round_trip(addr, &msg), msg);
    let deadline = Instant::now() + TIMEOUT;
    while server.open_fds() > 16 {
        assert!(
            Instant::now() < deadline,
            "server kept {} fds",
            server.open_fds()
        );
        // Each round trip lets the server's loop run: no sleep needed.
        assert_eq!(round_trip(addr, &msg), msg);
    }
    server.assert_alive();
}

#[test]
fn out_of_file_descriptors_backs_off_instead_of_spinning() {
    // 24 fds: 0-2, epoll (x2), eventfd, listener, and room for ~17 clients.
    let mut server = Server::start("ulimit -n 24 &&");
    let addr = server.addr;
    let mut clients = Vec::new();
    for i in 0..40u8 {
        let mut s = TcpStream::connect(addr).expect("connect lands in the backlog");
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.write_all(&[i; 16]).unwrap();
        clients.push(s);
    }
    // The server says it is out of fds and waits longer each time: 10 ms,
    // 20 ms, 40 ms, ... (the pause is in the notice).
    let mut pauses = Vec::new();
    while pauses.len() < 5 {
        let (_, line) = server
            .stderr
            .recv_timeout(TIMEOUT)
            .expect("the server reports EMFILE");
        if let Some(pause) = line.split("accepting again in ").nth(1) {
            assert!(line.contains("Too many open files"), "{line}");
            pauses.push(pause.to_string());
        }
    }
    assert_eq!(pauses, ["10ms", "20ms", "40ms", "80ms", "160ms"]);
    // No busy loop: over those 150 ms and more of EMFILE, the server used
    // little CPU (a spinning accept loop would use all of it).
    let cpu = server_cpu_seconds(server.child.id());
    assert!(cpu < 0.1, "server used {cpu} s of CPU while out of fds");
    // The clients it did accept are served.
    let mut got = [0u8; 16];
    clients[0].read_exact(&mut got).unwrap();
    assert_eq!(got, [0; 16]);
    // Free the fds (all but the last client hang up): the waiting
    // clients are accepted, the last one is served.
    clients.drain(..39);
    let last = clients.last_mut().unwrap();
    last.read_exact(&mut got)
        .expect("a waiting client is served once fds free up");
    assert_eq!(got, [39; 16]);
    server.assert_alive();
}
