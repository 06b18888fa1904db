//! The `Follow` source through the library API, on real files: polling
//! fallback, stop handle, notices, flush before each wait, several files,
//! over-long lines skipped. Waits are channel receives with a deadline.

use copipe::Lifecycle;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use copipe::text::{Block, Follow, FollowBuilder, FollowMode, NoticeKind, Start};
use copipe::{Flow, Result, Stage};

const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq)]
enum Ev {
    Line(usize, String),
    Flush,
    Close,
}

/// Reports every block's lines (with their file index), flush and close.
struct Report(Sender<Ev>);

impl Stage<Block<'_>> for Report {
    fn send(&mut self, block: Block<'_>) -> Result<Flow> {
        for line in block.lines() {
            let _ = self.0.send(Ev::Line(
                block.file(),
                String::from_utf8_lossy(line).into_owned(),
            ));
        }
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Report {
    fn flush(&mut self) -> Result<()> {
        let _ = self.0.send(Ev::Flush);
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        let _ = self.0.send(Ev::Close);
        Ok(())
    }
}

struct Running {
    events: Receiver<Ev>,
    stop: copipe::text::StopHandle,
    done: Receiver<Result<()>>,
    _thread: JoinHandle<()>,
}

fn start(builder: FollowBuilder) -> Running {
    let mut follow = builder.build().unwrap();
    let stop = follow.stop_handle();
    let (tx, events) = mpsc::channel();
    let (dtx, done) = mpsc::channel();
    let thread = thread::spawn(move || {
        let _ = dtx.send(follow.run_blocks(Report(tx)));
    });
    Running {
        events,
        stop,
        done,
        _thread: thread,
    }
}

impl Running {
    /// The next line, skipping flushes.
    fn line(&self) -> (usize, String) {
        loop {
            match self
                .events
                .recv_timeout(DEADLINE)
                .expect("no line within the deadline")
            {
                Ev::Line(f, l) => return (f, l),
                Ev::Flush => continue,
                Ev::Close => panic!("closed"),
            }
        }
    }

    /// Stops the follow and checks it closed its target and returned Ok.
    fn stop(self) {
        self.stop.stop();
        self.done
            .recv_timeout(DEADLINE)
            .expect("follow did not stop")
            .unwrap();
        let rest: Vec<Ev> = self.events.try_iter().collect();
        assert_eq!(rest.last(), Some(&Ev::Close), "{rest:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.stop();
    }
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

#[test]
fn polling_fallback_sees_appends_and_partial_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "old\n").unwrap();
    let builder = Follow::builder([&path])
        .start(Start::Last(0))
        .inotify(false)
        .poll_interval(Duration::from_millis(10));
    let follow = builder.build().unwrap();
    assert!(!follow.uses_inotify());
    drop(follow);
    let r = start(
        Follow::builder([&path])
            .start(Start::Last(0))
            .inotify(false)
            .poll_interval(Duration::from_millis(10)),
    );
    append(&path, b"one\ntw");
    assert_eq!(r.line(), (0, "one\n".into()));
    append(&path, b"o\n");
    assert_eq!(r.line(), (0, "two\n".into()));
    r.stop();
}

#[test]
fn flushes_its_target_before_each_wait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "a\nb\n").unwrap();
    let r = start(Follow::builder([&path]).start(Start::From(1)));
    let first = [
        r.events.recv_timeout(DEADLINE).unwrap(),
        r.events.recv_timeout(DEADLINE).unwrap(),
        r.events.recv_timeout(DEADLINE).unwrap(),
    ];
    assert_eq!(
        first,
        [
            Ev::Line(0, "a\n".into()),
            Ev::Line(0, "b\n".into()),
            Ev::Flush
        ]
    );
    append(&path, b"c\n");
    assert_eq!(
        r.events.recv_timeout(DEADLINE).unwrap(),
        Ev::Line(0, "c\n".into())
    );
    assert_eq!(r.events.recv_timeout(DEADLINE).unwrap(), Ev::Flush);
    r.stop();
}

#[test]
fn start_from_line_n_and_several_files_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fs::write(&a, "a1\na2\na3\n").unwrap();
    fs::write(&b, "b1\nb2\n").unwrap();
    let r = start(Follow::builder([&a, &b]).start(Start::From(2)));
    assert_eq!(r.line(), (0, "a2\n".into()));
    assert_eq!(r.line(), (0, "a3\n".into()));
    assert_eq!(r.line(), (1, "b2\n".into()));
    append(&b, b"b3\n");
    assert_eq!(r.line(), (1, "b3\n".into()));
    append(&a, b"a4\n");
    assert_eq!(r.line(), (0, "a4\n".into()));
    r.stop();
}

#[test]
fn truncation_is_a_notice_and_reading_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "0123456789\npartial").unwrap();
    let (ntx, notices) = mpsc::channel();
    let r = start(
        Follow::builder([&path])
            .start(Start::From(1))
            .on_notice(move |n| {
                let _ = ntx.send((n.kind(), n.to_string()));
            }),
    );
    assert_eq!(r.line(), (0, "0123456789\n".into()));
    File::create(&path).unwrap();
    let (kind, text) = notices.recv_timeout(DEADLINE).unwrap();
    assert_eq!(kind, NoticeKind::Truncated);
    assert!(text.ends_with("log: file truncated"), "{text}");
    // The partial line held from before is not lost.
    assert_eq!(r.line(), (0, "partial".into()));
    append(&path, b"x\n");
    assert_eq!(r.line(), (0, "x\n".into()));
    r.stop();
}

#[test]
fn rotation_by_name_gives_up_the_old_file_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "").unwrap();
    let (ntx, notices) = mpsc::channel();
    let r = start(
        Follow::builder([&path])
            .mode(FollowMode::Name)
            .rotate_grace(Duration::from_millis(50))
            .on_notice(move |n| {
                let _ = ntx.send(n.kind());
            }),
    );
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    old.write_all(b"old\nunfinished").unwrap();
    assert_eq!(r.line(), (0, "old\n".into()));
    fs::rename(&path, dir.path().join("log.1")).unwrap();
    fs::write(&path, "new\n").unwrap();
    assert_eq!(r.line(), (0, "new\n".into()));
    // After the grace the old file is let go, and its unfinished last line
    // is sent rather than lost.
    assert_eq!(r.line(), (0, "unfinished".into()));
    assert!(notices.try_iter().any(|k| k == NoticeKind::Replaced));
    r.stop();
}

#[test]
fn an_over_long_line_is_reported_with_its_offset_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let mut content = b"fine\n".to_vec();
    content.extend(std::iter::repeat_n(b'x', 1000));
    fs::write(&path, &content).unwrap();
    let (ntx, notices) = mpsc::channel();
    let r = start(
        Follow::builder([&path])
            .start(Start::From(1))
            .max_line_len(100)
            .on_notice(move |n| {
                let _ = ntx.send((n.kind(), n.byte_offset(), n.to_string()));
            }),
    );
    assert_eq!(r.line(), (0, "fine\n".into()));
    let (kind, offset, text) = notices.recv_timeout(DEADLINE).unwrap();
    assert_eq!((kind, offset), (NoticeKind::LongLine, Some(5)));
    assert!(text.contains("log: line at byte offset 5"), "{text}");
    // The rest of the long line arrives later; the next line is read.
    append(&path, b"yyy\nafter\n");
    assert_eq!(r.line(), (0, "after\n".into()));
    // A second long line is reported too, once.
    append(&path, &[b'z'; 300]);
    append(&path, b"\nlast\n");
    assert_eq!(r.line(), (0, "last\n".into()));
    let (kind, offset, _) = notices.recv_timeout(DEADLINE).unwrap();
    assert_eq!((kind, offset), (NoticeKind::LongLine, Some(1015)));
    assert!(notices.try_recv().is_err());
    r.stop();
}

#[test]
fn stop_handle_ends_a_waiting_follow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "").unwrap();
    let r = start(Follow::builder([&path]));
    assert_eq!(r.events.recv_timeout(DEADLINE).unwrap(), Ev::Flush);
    assert!(!r.stop.is_stopped());
    r.stop();
}
