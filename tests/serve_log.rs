//! `copipe serve-log` (issues 6 and 13): tail -f | grep over TCP, with the
//! real binary, real files and real sockets on 127.0.0.1. The selection is
//! `copipe tail`'s; `--from-start` gives each client the file from its
//! start, then the live lines, with none lost or twice; a slow client is
//! dropped with a last whole line saying why, and never stalls the others.

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

/// A client, its reads bounded by [`TIMEOUT`].
fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    BufReader::new(s)
}

/// Reads byte lines from `s` until `n` have arrived (bounded by the
/// socket's read timeout) or the stream ends.
fn read_byte_lines(s: &mut BufReader<TcpStream>, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < n {
        let mut line = Vec::new();
        match s.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => out.push(line),
            Err(e) => panic!("after {} lines: {e}", out.len()),
        }
    }
    out
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

/// `copipe tail -n +1 FILE ARGS`'s output, split into lines.
fn tail_lines(path: &std::path::Path, args: &[&str]) -> Vec<Vec<u8>> {
    let out = Command::new(BIN)
        .args(["tail", "-n", "+1"])
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "tail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn the_selection_options_select_as_tail_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let patterns = dir.path().join("patterns");
    std::fs::write(&patterns, "a.b\nFATAL\n").unwrap();
    // Before the server starts (the catch-up reads these) and after the
    // client is live (the follower sends those): both paths select.
    let mut before = Vec::new();
    let mut after = Vec::new();
    for i in 0..300 {
        let line: Vec<u8> = match i % 10 {
            0 => format!("ERROR request {i} failed\n").into_bytes(),
            1 => format!("error: lower case {i}\n").into_bytes(),
            2 => format!("GET /healthcheck {i}\n").into_bytes(),
            3 => format!("ERROR healthcheck {i} slow\n").into_bytes(),
            4 => format!("request{i} is not a word match\n").into_bytes(),
            5 => format!("a.b literal {i}\r\n").into_bytes(),
            6 => format!("axb regex only {i}\n").into_bytes(),
            7 => [
                b"bad utf-8 \xff\xfe ERROR ".to_vec(),
                format!("{i}\n").into_bytes(),
            ]
            .concat(),
            8 => b"FATAL\n".to_vec(),
            _ => format!("INFO request {i} ok\n").into_bytes(),
        };
        if i < 150 {
            before.extend_from_slice(&line);
        } else {
            after.extend_from_slice(&line);
        }
    }
    let pattern_file = patterns.to_str().unwrap();
    let cases: [&[&str]; 9] = [
        &["-e", "ERROR"],
        &["-e", "error", "-i"],
        &["-e", "ERROR", "-e", "^GET"],
        &["-v", "-e", "request"],
        &["-w", "-e", "request"],
        &["-x", "-e", "FATAL"],
        &["--fixed-strings", "-e", "a.b"],
        &["-i", "-e", "error", "--drop", "healthcheck"],
        &["--file", pattern_file, "--fixed-strings"],
    ];
    for args in cases {
        std::fs::write(&path, &before).unwrap();
        let mut server_args = vec![path.to_str().unwrap(), "--port", "0", "--from-start"];
        server_args.extend_from_slice(args);
        let server = start(&server_args);
        let mut client = connect(server.addr);
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        log.write_all(&after).unwrap();
        let want = tail_lines(&path, args);
        assert!(!want.is_empty(), "{args:?} selects something");
        let got = read_byte_lines(&mut client, want.len());
        assert!(got == want, "serve-log {args:?} differs from tail");
    }
}

#[test]
fn from_start_gives_each_client_the_file_then_the_live_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    // Enough lines that a catch-up takes many reads of the file.
    const EXISTING: usize = 5_000;
    const TOTAL: usize = 20_000;
    let line = |i: usize| format!("line {i:06} {}\n", "x".repeat(i % 150));
    let text: String = (0..EXISTING).map(line).collect();
    std::fs::write(&path, text).unwrap();
    let server = start(&[
        path.to_str().unwrap(),
        "--port",
        "0",
        "--from-start",
        "--queue",
        "1000000",
    ]);
    let addr = server.addr;
    // A client that connects and goes away at once changes nothing.
    drop(TcpStream::connect(addr).unwrap());
    // Clients connect while lines are appended: each reads all TOTAL
    // lines on its own thread.
    let readers: Vec<_> = (0..3)
        .map(|k| {
            let (tx, rx) = mpsc::channel::<()>();
            let handle = std::thread::spawn(move || {
                rx.recv().unwrap();
                let mut c = connect(addr);
                (k, read_lines(&mut c, TOTAL))
            });
            (tx, handle)
        })
        .collect();
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let mut next = EXISTING;
    let mut readers = readers.into_iter();
    let mut handles = Vec::new();
    while next < TOTAL {
        // A client connects before the first append, one a third of the
        // way in, one two thirds in.
        if (next - EXISTING).is_multiple_of(5_000) {
            if let Some((tx, h)) = readers.next() {
                tx.send(()).unwrap();
                handles.push(h);
            }
        }
        let burst: String = (next..next + 250).map(line).collect();
        log.write_all(burst.as_bytes()).unwrap();
        next += 250;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(handles.len(), 3);
    let want: Vec<String> = (0..TOTAL).map(line).collect();
    for h in handles {
        let (k, got) = h.join().unwrap();
        assert_eq!(got.len(), TOTAL, "client {k} got {} lines", got.len());
        if let Some(i) = (0..TOTAL).find(|&i| got[i] != want[i]) {
            panic!(
                "client {k}: line {i} is {:?}, not {:?}",
                got[i].trim_end(),
                want[i].trim_end()
            );
        }
    }
    // A client connecting now still gets the whole file.
    let mut late = connect(addr);
    assert!(read_lines(&mut late, TOTAL) == want, "the late client");
}

#[test]
fn after_a_truncation_a_new_client_gets_the_new_file_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let old: String = (0..2_000).map(|i| format!("old line {i}\n")).collect();
    std::fs::write(&path, &old).unwrap();
    let server = start(&[path.to_str().unwrap(), "--port", "0", "--from-start"]);
    // A client that is live before the truncation: the follower has read
    // the new lines once it has them.
    let mut first = connect(server.addr);
    assert_eq!(read_lines(&mut first, 2_000).len(), 2_000);
    // Truncated, then written again, shorter than before.
    let new: Vec<String> = (0..100).map(|i| format!("new {i}\n")).collect();
    std::fs::write(&path, new.concat()).unwrap();
    let got = read_lines(&mut first, 100);
    assert!(got == new, "the live client gets the new lines");
    // A client connecting now gets the new file from its start, then the
    // live lines.
    let mut second = connect(server.addr);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(log, "new live").unwrap();
    let mut want = new.clone();
    want.push("new live\n".to_string());
    let got = read_lines(&mut second, want.len());
    assert!(got == want, "the new client: {got:?}");
    assert_eq!(read_lines(&mut first, 1), ["new live\n"]);
}

#[test]
fn after_a_rotation_a_new_client_gets_the_new_file_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    std::fs::write(&path, "old 0\nold 1\n").unwrap();
    let server = start(&[path.to_str().unwrap(), "--port", "0", "--from-start"]);
    let mut first = connect(server.addr);
    assert_eq!(read_lines(&mut first, 2), ["old 0\n", "old 1\n"]);
    // Rotated: renamed away, a new file in its place.
    std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    std::fs::write(&path, "new 0\nnew 1\nnew 2\n").unwrap();
    assert_eq!(
        read_lines(&mut first, 3),
        ["new 0\n", "new 1\n", "new 2\n"],
        "the live client follows the name"
    );
    let mut second = connect(server.addr);
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(log, "new live").unwrap();
    assert_eq!(
        read_lines(&mut second, 4),
        ["new 0\n", "new 1\n", "new 2\n", "new live\n"]
    );
    assert_eq!(read_lines(&mut first, 1), ["new live\n"]);
}

#[test]
fn a_truncation_during_a_catch_up_goes_on_with_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    // Far more than the socket buffers hold: a client that does not read
    // stalls its catch-up part way.
    const OLD: usize = 200_000;
    let old_line = |i: usize| format!("old line {i:06} {}\n", "y".repeat(80));
    let old: String = (0..OLD).map(old_line).collect();
    std::fs::write(&path, &old).unwrap();
    let server = start(&[path.to_str().unwrap(), "--port", "0", "--from-start"]);
    let slow = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    slow.set_recv_buffer_size(4096).unwrap();
    slow.connect(&server.addr.into()).unwrap();
    let slow = TcpStream::from(slow);
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut slow = BufReader::new(slow);
    // Time for its catch-up to start (not a condition of the test: the
    // lines it gets must have the same shape at any point of the catch-up).
    std::thread::sleep(Duration::from_millis(300));
    let new: Vec<String> = (0..100).map(|i| format!("new {i}\n")).collect();
    std::fs::write(&path, new.concat()).unwrap();
    // A client connecting after the truncation gets the new file only.
    let mut watcher = connect(server.addr);
    assert!(read_lines(&mut watcher, 100) == new, "the watcher");
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    writeln!(log, "new live").unwrap();
    assert_eq!(read_lines(&mut watcher, 1), ["new live\n"]);
    // The slow client: old lines from the start, whole and in order, then
    // the new file from its start, then the live line.
    let mut got = Vec::new();
    loop {
        let line = read_lines(&mut slow, 1);
        assert_eq!(line.len(), 1, "after {} lines the stream ended", got.len());
        let done = line[0] == "new live\n";
        got.push(line.into_iter().next().unwrap());
        if done {
            break;
        }
    }
    let k = got.iter().take_while(|l| l.starts_with("old")).count();
    assert!(
        k < OLD,
        "the catch-up was cut by the truncation ({k} old lines)"
    );
    for (i, l) in got[..k].iter().enumerate() {
        assert_eq!(*l, old_line(i), "old line {i}");
    }
    let mut want = new.clone();
    want.push("new live\n".to_string());
    assert!(got[k..] == want[..], "after the old lines: {:?}", &got[k..]);
}

#[test]
fn a_slow_client_is_dropped_with_a_whole_last_line_and_the_others_get_everything() {
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
    // A slow client that reads nothing with a tiny receive buffer, then two
    // fast clients that read everything (and one that goes away). The
    // server accepts in order, so once the last fast one gets a line, the
    // others are live too.
    let slow = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    slow.set_recv_buffer_size(4096).unwrap();
    slow.connect(&server.addr.into()).unwrap();
    let mut slow = TcpStream::from(slow);
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut other = connect(server.addr);
    // A client that goes away while live (closed before the bulk below).
    let gone = TcpStream::connect(server.addr).unwrap();
    let mut fast = connect(server.addr);

    // Lines written before the server has made a client live are not sent
    // to it: write markers until one arrives (bounded).
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
    // Skip the other markers that may follow, on both fast clients.
    writeln!(log, "FATAL sync").unwrap();
    for c in [&mut fast, &mut other] {
        loop {
            let mut line = String::new();
            c.read_line(&mut line).unwrap();
            if line == "FATAL sync\n" {
                break;
            }
            assert!(line.starts_with("ERROR marker"), "{line}");
        }
    }

    drop(gone);
    // Lots of lines, two thirds of them selected: the slow client falls
    // behind and is dropped, the vanished one fails its writes; the fast
    // ones, read by their own threads, get every selected line, in order.
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
    let readers: Vec<_> = [fast, other]
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                let got = read_lines(&mut c, n);
                (got, c)
            })
        })
        .collect();
    for part in text.as_bytes().chunks(100_000) {
        log.write_all(part).unwrap();
    }
    let mut fast_clients = Vec::new();
    for r in readers {
        let (got, c) = r.join().unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "a fast client lost or reordered lines");
        fast_clients.push(c);
    }

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
    // Issue 13 item 5: every message starts `copipe: `.
    assert!(notice.starts_with("copipe: dropping client "), "{notice}");
    // ...and the slow client reads whole lines, then the notice as its last
    // line, then end of stream.
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest)
        .expect("the slow client's connection is closed");
    assert!(
        rest.len() < want_bytes,
        "the slow client got {} of {want_bytes} bytes: it was not dropped early",
        rest.len()
    );
    assert!(rest.ends_with(b"\n"), "the last line is whole");
    let text = String::from_utf8(rest).expect("whole lines are UTF-8");
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let last = lines.pop().unwrap();
    assert!(
        last.starts_with("copipe: dropped: client too slow (")
            && last.ends_with(" bytes behind)\n"),
        "the last line says why: {last:?}"
    );
    let behind: u64 = last["copipe: dropped: client too slow (".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .expect("a byte count");
    assert!(behind > 0);
    // Every other line is one of the lines written, whole, and the bulk
    // lines come in order, none missing, up to the drop.
    let bulk: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("request"))
        .collect();
    for l in &lines {
        assert!(
            l.starts_with("ERROR marker")
                || *l == "FATAL sync\n"
                || *l == "ERROR before the server started\n"
                || l.contains("request"),
            "a cut or unknown line: {l:?}"
        );
    }
    assert!(
        bulk.iter().zip(&want).all(|(g, w)| *g == w.as_str()),
        "the slow client's lines are the first ones, whole and in order"
    );

    // The fast clients are still served.
    writeln!(log, "FATAL after the drop").unwrap();
    for mut c in fast_clients {
        assert_eq!(read_lines(&mut c, 1), ["FATAL after the drop\n"]);
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["serve-log", "/nonexistent/app.log", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // `copipe: PATH: reason`, the OS reason once.
    assert_eq!(
        err, "copipe: /nonexistent/app.log: No such file or directory\n",
        "{err}"
    );
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
