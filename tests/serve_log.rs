//! `copipe serve-log` (issue 6): tail -f | grep over TCP, with the real
//! binary, a real file and real sockets. A slow client is dropped and
//! never stalls the others.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_copipe");
const TIMEOUT: Duration = Duration::from_secs(20);

struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .arg("serve-log")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start copipe serve-log");
    let addr = common::read_listen_addr(&mut child, TIMEOUT);
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
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

/// Reads lines from `s` until `n` have arrived (bounded by the socket's
/// read timeout).
fn read_lines(s: &mut BufReader<TcpStream>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let mut line = String::new();
        match s.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => out.push(line),
            Err(e) => panic!("after {} lines: {e}", out.len()),
        }
    }
    out
}

#[test]
fn matching_lines_reach_every_client_and_a_slow_one_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "ERROR before the server started\n").unwrap();
    let server = start(&[
        path.to_str().unwrap(),
        "-e",
        "ERROR",
        "-e",
        "^FATAL",
        "--port",
        "0",
        "--queue",
        "128",
    ]);
    // A slow client that reads nothing with a tiny receive buffer, then a
    // fast client that reads everything. The server accepts in order, so
    // once the fast one gets a line, the slow one is registered too.
    let slow = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    slow.set_recv_buffer_size(4096).unwrap();
    slow.connect(&server.addr.into()).unwrap();
    let mut slow = TcpStream::from(slow);
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let fast = TcpStream::connect(server.addr).unwrap();
    let mut fast = BufReader::new(fast);

    // Lines written before the server has registered a client are not
    // sent to it: write markers until one arrives (bounded).
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    fast.get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut registered = false;
    for i in 0..100 {
        writeln!(log, "ERROR marker {i}").unwrap();
        let mut line = String::new();
        if fast.read_line(&mut line).is_ok() {
            assert!(line.starts_with("ERROR marker"), "{line}");
            registered = true;
            break;
        }
    }
    assert!(registered, "the fast client never got a line");
    fast.get_ref().set_read_timeout(Some(TIMEOUT)).unwrap();
    // Skip the other markers that may follow.
    writeln!(log, "FATAL sync").unwrap();
    loop {
        let mut line = String::new();
        fast.read_line(&mut line).unwrap();
        if line == "FATAL sync\n" {
            break;
        }
        assert!(line.starts_with("ERROR marker"), "{line}");
    }

    // Lots of lines, two thirds of them matching: the slow client falls
    // behind and is dropped; the fast one, read by its own thread, gets
    // every match, in order.
    const LINES: usize = 30_000;
    let mut want = Vec::new();
    let mut text = String::new();
    for i in 0..LINES {
        let line = match i % 3 {
            0 => format!("ERROR request {i} failed {}\n", "x".repeat(300)),
            1 => format!("INFO request {i} ok\n"),
            _ => format!("FATAL request {i} crashed\n"),
        };
        if !line.starts_with("INFO") {
            want.push(line.clone());
        }
        text.push_str(&line);
    }
    let n = want.len();
    let want_bytes: usize = want.iter().map(String::len).sum();
    let reader = std::thread::spawn(move || {
        let got = read_lines(&mut fast, n);
        (got, fast)
    });
    for part in text.as_bytes().chunks(100_000) {
        log.write_all(part).unwrap();
    }
    let (got, mut fast) = reader.join().unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the fast client lost or reordered lines");

    // The server said it dropped the slow client...
    let notice = loop {
        let line = server
            .stderr
            .recv_timeout(TIMEOUT)
            .expect("serve-log reports the dropped client");
        if line.contains("dropping client") {
            break line;
        }
    };
    assert!(notice.contains("reads too slowly"), "{notice}");
    // ...and closed it: the slow client reads what fit, then end of stream.
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest)
        .expect("the slow client's connection is closed");
    assert!(
        rest.len() < want_bytes,
        "the slow client got {} of {want_bytes} bytes: it was not dropped early",
        rest.len()
    );

    // The fast client is still served.
    writeln!(log, "FATAL after the drop").unwrap();
    assert_eq!(read_lines(&mut fast, 1), ["FATAL after the drop\n"]);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["serve-log", "/nonexistent/app.log", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/app.log"), "{err}");
}

#[test]
fn a_bad_pattern_is_reported_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "").unwrap();
    let out = Command::new(BIN)
        .args([
            "serve-log",
            path.to_str().unwrap(),
            "-e",
            "(",
            "--port",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "it must not start listening");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid pattern `(`"), "{err}");
}
