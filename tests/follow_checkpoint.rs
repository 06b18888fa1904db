//! The checkpointed follow through the real binary, stdout as the sink:
//! `copipe tail -F FILE... --checkpoint PATH` stopped (SIGTERM or
//! `kill -9`), files rotated and truncated while it is down, restarted.
//! Every line carries a content id (`<file> <seq>`); the tests count the
//! ids lost and repeated across runs. Waits are bounded by a deadline.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

#[path = "common/tail_proc.rs"]
mod tail_proc;
use tail_proc::Tail;

impl Tail {
    /// Reads lines until `done` says enough, within the deadline.
    fn until(&self, seen: &mut Vec<String>, done: impl Fn(&[String]) -> bool) {
        let end = Instant::now() + DEADLINE;
        while !done(seen) {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => seen.push(l),
                Err(_) => panic!("not done within the deadline; seen {} lines", seen.len()),
            }
        }
    }

    /// `kill -9`, then whatever it had printed.
    fn kill9(mut self, seen: &mut Vec<String>) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        seen.extend(self.lines.iter());
        self.notices.try_iter().collect()
    }

    /// SIGTERM, then whatever it had printed; checks it ended by the signal.
    fn term(mut self, seen: &mut Vec<String>) -> Vec<String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + 15), "{status:?}");
        seen.extend(self.lines.iter());
        self.notices.iter().collect()
    }
}

fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// Lines `name a..b`, each with its newline.
fn lines(name: &str, a: u32, b: u32) -> String {
    (a..b).map(|i| format!("{name} {i}\n")).collect()
}

/// Counts of each line seen.
fn counts(seen: &[String]) -> HashMap<&str, u32> {
    let mut m = HashMap::new();
    for l in seen {
        *m.entry(l.as_str()).or_insert(0) += 1;
    }
    m
}

fn has(seen: &[String], line: &str) -> bool {
    seen.iter().any(|l| l == line)
}

#[test]
fn restart_resumes_after_the_last_line_printed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("log"), lines("log", 0, 100)).unwrap();
    let mut seen = Vec::new();
    let t = Tail::start(d, &["-F", "log", "--checkpoint", "ck"]);
    t.until(&mut seen, |s| has(s, "log 99"));
    t.term(&mut seen);
    append(&d.join("log"), &lines("log", 100, 150));
    let t = Tail::start(d, &["-F", "log", "--checkpoint", "ck"]);
    t.until(&mut seen, |s| has(s, "log 149"));
    t.term(&mut seen);
    let c = counts(&seen);
    // A first run reads the file from its start, without -n.
    for i in 0..150 {
        assert_eq!(c.get(format!("log {i}").as_str()), Some(&1), "log {i}");
    }
    assert_eq!(seen.len(), 150);
}

#[test]
fn truncated_while_down_is_read_from_zero_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("log"), lines("old", 0, 50)).unwrap();
    let mut seen = Vec::new();
    let t = Tail::start(d, &["-F", "log", "--checkpoint", "ck"]);
    t.until(&mut seen, |s| has(s, "old 49"));
    t.term(&mut seen);
    fs::write(d.join("log"), lines("new", 0, 10)).unwrap();
    let t = Tail::start(d, &["-F", "log", "--checkpoint", "ck"]);
    t.until(&mut seen, |s| has(s, "new 9"));
    let notices = t.term(&mut seen);
    assert!(
        notices
            .iter()
            .any(|n| n.contains("truncated while copipe was down")),
        "{notices:?}"
    );
    assert_eq!(seen.len(), 60, "{seen:?}");
}

#[test]
fn rotated_while_down_drains_the_old_file_then_reads_the_new() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("log"), lines("a", 0, 20)).unwrap();
    let mut seen = Vec::new();
    let t = Tail::start(d, &["-F", "log", "--checkpoint", "ck"]);
    t.until(&mut seen, |s| has(s, "a 19"));
    t.term(&mut seen);
    append(&d.join("log"), &lines("a", 20, 30));
    fs::rename(d.join("log"), d.join("log.1")).unwrap();
    fs::write(d.join("log"), lines("b", 0, 10)).unwrap();
    let t = Tail::start(d, &["-F", "log", "--checkpoint", "ck"]);
    t.until(&mut seen, |s| has(s, "b 9"));
    let notices = t.term(&mut seen);
    let expected: Vec<String> = lines("a", 0, 30)
        .lines()
        .chain(lines("b", 0, 10).lines())
        .map(String::from)
        .collect();
    // In order: the rest of the rotated file, then the new one.
    assert_eq!(seen, expected, "{notices:?}");
    assert!(
        notices.iter().any(|n| n.contains("rotated to")),
        "{notices:?}"
    );
}

/// `kill -9` mid-stream, then while it is down: more lines, a rotation
/// with late lines in the rotated file, and a second file truncated and
/// rewritten; then a restart. Counted by content id: none lost, and none
/// repeated beyond what was printed after the last checkpoint.
#[test]
fn kill9_mid_stream_with_rotation_and_truncation_while_down_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("log");
    let other = d.join("other");
    fs::write(&log, lines("log", 0, 1000)).unwrap();
    fs::write(&other, lines("other", 0, 100)).unwrap();
    let args = ["-F", "log", "other", "--checkpoint", "ck"];
    let mut seen = Vec::new();
    let t = Tail::start(d, &args);
    t.until(&mut seen, |s| has(s, "other 99") && has(s, "log 999"));
    // A writer keeps appending while the follower is killed.
    let writer = {
        let log = log.clone();
        thread::spawn(move || {
            for burst in 0..20 {
                let a = 1000 + burst * 100;
                append(&log, &lines("log", a, a + 100));
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    thread::sleep(Duration::from_millis(40));
    let notices = t.kill9(&mut seen);
    writer.join().unwrap();
    // While down: a rotation with late lines in the rotated file...
    fs::rename(&log, d.join("log.1")).unwrap();
    append(&d.join("log.1"), &lines("log", 3000, 3010));
    fs::write(&log, lines("log", 3010, 3100)).unwrap();
    // ... and the other file truncated and rewritten.
    fs::write(&other, lines("other", 100, 130)).unwrap();
    let t = Tail::start(d, &args);
    append(&log, &lines("log", 3100, 3200));
    t.until(&mut seen, |s| {
        has(s, "log 3199") && has(s, "other 129") && has(s, "log 3009")
    });
    let notices2 = t.term(&mut seen);
    let c = counts(&seen);
    let mut lost = Vec::new();
    let mut dup = 0;
    for want in lines("log", 0, 3200)
        .lines()
        .chain(lines("other", 0, 130).lines())
    {
        match c.get(want) {
            None => lost.push(want.to_string()),
            Some(&n) => dup += n - 1,
        }
    }
    assert!(
        lost.is_empty(),
        "lost {}: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    // Lines printed after the last checkpoint write can come again: what
    // one flush carried, so they are consecutive lines of one file.
    // (Headers `==> log <==` and blank lines between files are not lines
    // of the files.)
    let mut again: Vec<u32> = c
        .iter()
        .filter(|(l, &n)| n > 1 && !l.starts_with("==>") && !l.is_empty())
        .map(|(l, _)| {
            assert!(l.starts_with("log "), "{l} repeated");
            l[4..].parse().unwrap()
        })
        .collect();
    again.sort();
    if let (Some(a), Some(b)) = (again.first(), again.last()) {
        assert_eq!(
            (b - a + 1) as usize,
            again.len(),
            "not one batch: {again:?}"
        );
    }
    assert!(dup < 2000, "{dup} repeated; {notices:?} {notices2:?}");
    eprintln!("kill -9 with rotation and truncation while down: 0 lost, {dup} repeated");
}

#[test]
fn a_closed_stdout_ends_the_checkpointed_follow() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("log"), lines("log", 0, 3)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_copipe"))
        .current_dir(d)
        .args(["tail", "-F", "log", "--checkpoint", "ck"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "log 0\n");
    drop(out);
    let end = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "still running after stdout closed");
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// The same inode, rewritten while copipe was down with other content,
/// longer than the saved offset: the fingerprint of its first bytes tells
/// it from the file checkpointed, and it is read from its start.
#[test]
fn rewritten_while_down_past_the_offset_is_told_by_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("log"), lines("old", 0, 5)).unwrap();
    let mut seen = Vec::new();
    let t = Tail::start(d, &["-F", "log", "--checkpoint", "ck"]);
    t.until(&mut seen, |s| has(s, "old 4"));
    t.term(&mut seen);
    // Truncated and refilled in place (same inode), past the old offset.
    fs::write(d.join("log"), lines("new", 0, 20)).unwrap();
    let t = Tail::start(d, &["-F", "log", "--checkpoint", "ck"]);
    t.until(&mut seen, |s| has(s, "new 19"));
    let notices = t.term(&mut seen);
    assert!(has(&seen, "new 0"), "{seen:?}");
    assert_eq!(seen.len(), 25, "{seen:?}");
    assert!(
        notices.iter().any(|n| n.contains("first bytes differ")),
        "{notices:?}"
    );
}
