//! The five programs of issue 16, written against the crate from its docs
//! (`examples/`), run as real processes on real data, each output checked
//! against a figure computed here independently:
//!
//! - `top_talkers`: the byte total is the sum of the log's 10th field (what
//!   `awk '{s+=$10}'` gives), the ten counts are the clients' own counts;
//! - `sessionizer`: sessions split by a 30-minute gap, on a log made here
//!   with known gaps and on the shipped log;
//! - `bus_feed_threaded`: the same lines as the pipeline run inline;
//! - `live_grep`: matches of lines appended while it follows, to stdout and
//!   the copy, and it ends by itself after N;
//! - `line_server`: two TCP clients on 127.0.0.1 each receive every
//!   matching line, and the server ends by itself.
//!
//! Every wait is bounded (a stuck program is killed and the test fails).

mod common;
#[path = "common/examples.rs"]
mod examples;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data");
/// How long any one program may take before the test gives up on it.
const BOUND: Duration = Duration::from_secs(120);

fn run(example: &str, args: &[&str]) -> Output {
    let out = Command::new(examples::example(example))
        .args(args)
        .output()
        .expect("the example runs");
    assert!(
        out.status.success(),
        "{example} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Waits for `child` to exit, at most `BOUND`; kills it and panics after.
fn wait_bounded(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn top_talkers_counts_and_sums_as_an_independent_pass_does() {
    let log = format!("{DATA}/access-log");
    let out = run("top_talkers", &[&log]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // The log is not all UTF-8; the example reads it lossily too.
    let content = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    let mut total = 0u64;
    let mut by_client: HashMap<&str, u64> = HashMap::new();
    for line in content.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // awk '{s+=$10}': "-" (no body) adds 0.
        total += fields.get(9).and_then(|f| f.parse().ok()).unwrap_or(0);
        *by_client.entry(fields[0]).or_default() += 1;
    }
    assert!(total > 0);
    assert_eq!(
        lines.last().copied(),
        Some(&*format!("{total} bytes served"))
    );

    // Most requests first; ties in key order.
    let mut want: Vec<(u64, &str)> = by_client.iter().map(|(c, n)| (*n, *c)).collect();
    want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let want: Vec<String> = want
        .iter()
        .take(10)
        .map(|(n, c)| format!("{n:6} {c}"))
        .collect();
    assert_eq!(lines[..lines.len() - 1], want[..]);
}

/// Sessions as the sessionizer defines them, computed here: a client's
/// request more than 30 minutes after its previous one starts a session.
fn sessions(log: &str) -> (u64, usize) {
    let mut last: HashMap<&str, u64> = HashMap::new();
    let mut sessions = 0;
    for line in log.lines() {
        let client = line.split(' ').next().unwrap();
        let stamp = line.split('[').nth(1).unwrap();
        let hms: Vec<u64> = stamp[12..20]
            .split(':')
            .map(|x| x.parse().unwrap())
            .collect();
        let at = hms[0] * 3600 + hms[1] * 60 + hms[2];
        match last.insert(client, at) {
            Some(prev) if at - prev <= 30 * 60 => {}
            _ => sessions += 1,
        }
    }
    (sessions, last.len())
}

#[test]
fn sessionizer_splits_sessions_at_a_30_minute_gap() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gaps.log");
    let line = |client: &str, hms: &str| {
        format!("{client} - - [24/Feb/2008:{hms} -0600] \"GET / HTTP/1.1\" 200 10 \"-\" \"t\"\n")
    };
    let text = [
        line("10.0.0.1", "06:00:00"),
        line("10.0.0.2", "06:00:00"),
        line("10.0.0.3", "06:05:00"),
        line("10.0.0.1", "06:10:00"),
        line("10.0.0.2", "06:30:00"), // exactly 30 minutes: same session
        line("10.0.0.3", "06:35:01"), // 30 min 1 s: a new session
        line("10.0.0.1", "07:00:00"), // 50 minutes: a new session
    ]
    .concat();
    std::fs::write(&log, &text).unwrap();
    assert_eq!(sessions(&text), (5, 3));
    let out = run("sessionizer", &[log.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "5 sessions from 3 clients\n"
    );

    let shipped = format!("{DATA}/access-log");
    let (n, clients) = sessions(&String::from_utf8_lossy(&std::fs::read(&shipped).unwrap()));
    let out = run("sessionizer", &[&shipped]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{n} sessions from {clients} clients\n")
    );
}

#[test]
fn bus_feed_threaded_prints_what_the_inline_pipeline_prints() {
    use copipe::xml::{bus_locations, expat_parse, filter_on_field, records, XmlInput};
    let feed = format!("{DATA}/allroutes.xml");
    let mut inline = Vec::new();
    expat_parse(
        XmlInput::from_path(&feed).unwrap(),
        records(
            "bus",
            filter_on_field(
                "route",
                "22",
                filter_on_field("direction", "North Bound", bus_locations(&mut inline)),
            ),
        ),
    )
    .unwrap();
    assert!(!inline.is_empty(), "the feed has #22 North Bound buses");
    let out = run("bus_feed_threaded", &[&feed]);
    assert!(out.stdout == inline, "outputs differ");
}

/// The lines `child` prints, as they come, through a channel.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn live_grep_follows_broadcasts_and_stops_after_n() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let copy = dir.path().join("copy.txt");
    std::fs::write(&file, "start\nERROR one\nok\nERROR two\n").unwrap();
    let mut child = Command::new(examples::example("live_grep"))
        .args(["ERROR", "4"])
        .arg(&file)
        .arg(&copy)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    let mut got = Vec::new();
    // The two matches already there, while it follows.
    for _ in 0..2 {
        got.push(lines.recv_timeout(BOUND).expect("a match on stdout"));
    }
    // Then lines appended while it follows: three more matches, of which
    // it takes two and stops.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    for line in ["ok", "ERROR three", "ok", "ERROR four", "ERROR five"] {
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let status = wait_bounded(&mut child, "live_grep");
    assert!(status.success(), "{status}");
    got.extend(lines.iter());
    let want = ["ERROR one", "ERROR two", "ERROR three", "ERROR four"];
    assert_eq!(got, want);
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        want.map(|l| format!("{l}\n")).concat()
    );
}

#[test]
fn line_server_feeds_every_client_every_matching_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("feed.log");
    let mut text = String::new();
    let mut want = String::new();
    for i in 0..1000 {
        let line = if i % 7 == 0 {
            format!("{i} match")
        } else {
            format!("{i} other")
        };
        if line.contains("match") {
            want.push_str(&line);
            want.push('\n');
        }
        text.push_str(&line);
        text.push('\n');
    }
    // Lines past the first 1000 are not served.
    text.push_str("1000 match, but past the end\n");
    std::fs::write(&file, &text).unwrap();
    let mut child = Command::new(examples::example("line_server"))
        .arg(&file)
        .args(["match", "2", "1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = common::read_listen_addr(&mut child, BOUND);
    // Both clients read at once: the server waits for room in each one's
    // channel, so reading one to its end first could stall.
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut sock = std::net::TcpStream::connect(addr).expect("connect");
            sock.set_read_timeout(Some(BOUND)).unwrap();
            std::thread::spawn(move || {
                let mut got = String::new();
                sock.read_to_string(&mut got).map(|_| got)
            })
        })
        .collect();
    let status = wait_bounded(&mut child, "line_server");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    for r in readers {
        let got = r.join().unwrap().expect("the client reads to the end");
        assert_eq!(got.lines().count(), 143);
        assert!(got == want, "a client got other lines");
    }
}
