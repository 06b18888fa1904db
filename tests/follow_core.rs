//! The one follow core, through both of its drivers: the scheduler task
//! (`sched::follow_files`) gets what `text::Follow` has: several files,
//! files waited for, late lines of a rotated file, a held partial line sent
//! on truncation, over-long lines skipped. The scheduler runs on a thread
//! of its own; the test writes the files and waits on a channel with a
//! deadline.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use copipe::sched::{follow_files, FollowOptions, Scheduler};
use copipe::text::Start;
use copipe::{Flow, Lifecycle, Result, Stage};

const DEADLINE: Duration = Duration::from_secs(10);

/// Sends each line on a channel; stops after `want` lines.
struct Lines {
    tx: mpsc::Sender<String>,
    want: usize,
}

impl Stage<&[u8]> for Lines {
    fn send(&mut self, line: &[u8]) -> Result<Flow> {
        let _ = self.tx.send(String::from_utf8_lossy(line).into_owned());
        self.want -= 1;
        Ok(if self.want == 0 {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

impl Lifecycle for Lines {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Runs `follow_files` on a scheduler thread until `want` lines came.
fn run(paths: Vec<PathBuf>, opts: FollowOptions, want: usize) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut s = Scheduler::new().unwrap();
        s.spawn(async move { follow_files(paths, opts, Lines { tx, want }).await });
        let _ = s.run();
    });
    rx
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn next(rx: &Receiver<String>) -> String {
    rx.recv_timeout(DEADLINE)
        .expect("no line within the deadline")
}

#[test]
fn sched_follow_reads_several_files_and_waits_for_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.log");
    let b = dir.path().join("b.log");
    fs::write(&a, "a1\n").unwrap();
    let rx = run(
        vec![a.clone(), b.clone()],
        FollowOptions::new().start(Start::From(1)),
        3,
    );
    assert_eq!(next(&rx), "a1\n");
    fs::write(&b, "b1\n").unwrap();
    assert_eq!(next(&rx), "b1\n");
    append(&a, b"a2\n");
    assert_eq!(next(&rx), "a2\n");
}

#[test]
fn sched_follow_reads_late_lines_of_the_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let old = dir.path().join("log.1");
    fs::write(&log, "one\n").unwrap();
    let rx = run(
        vec![log.clone()],
        FollowOptions::new().start(Start::From(1)),
        4,
    );
    assert_eq!(next(&rx), "one\n");
    fs::rename(&log, &old).unwrap();
    fs::write(&log, "new\n").unwrap();
    assert_eq!(next(&rx), "new\n");
    // A writer that still has the old file open writes late.
    append(&old, b"late\n");
    assert_eq!(next(&rx), "late\n");
    append(&log, b"new 2\n");
    assert_eq!(next(&rx), "new 2\n");
}

#[test]
fn sched_follow_sends_the_held_partial_line_on_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    fs::write(&log, "whole\npart").unwrap();
    let rx = run(
        vec![log.clone()],
        FollowOptions::new().start(Start::From(1)),
        3,
    );
    // "whole\n" and "part" came in one read: the partial line is held.
    assert_eq!(next(&rx), "whole\n");
    fs::write(&log, "").unwrap();
    append(&log, b"fresh\n");
    assert_eq!(next(&rx), "part");
    assert_eq!(next(&rx), "fresh\n");
}

#[test]
fn sched_follow_skips_an_over_long_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mut content = b"short 1\n".to_vec();
    content.extend(std::iter::repeat_n(b'x', 5000));
    content.extend_from_slice(b"\nshort 2\n");
    fs::write(&log, &content).unwrap();
    let rx = run(
        vec![log.clone()],
        FollowOptions::new()
            .start(Start::From(1))
            .max_line_len(1000),
        2,
    );
    assert_eq!(next(&rx), "short 1\n");
    assert_eq!(next(&rx), "short 2\n");
}
