//! The thread bridge through the public API: order and counts over a
//! million items, panics and errors downstream, `Stop`, the drop policies,
//! and no thread left behind after any of them.
//!
//! Each test names its worker thread uniquely and checks afterwards that no
//! task of this process has that name (`/proc/self/task/*/comm`), which
//! stays exact while other tests run in parallel.

use copipe::Lifecycle;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use copipe::bridge::{Policy, ThreadBridge, ThreadBridgeBuilder};
use copipe::xml::Record;
use copipe::{from_fn, pipe, threaded, Error, ErrorKind, Flow, Result, Stage, StageExt};

/// Threads of this process whose name is `name` (names are cut to 15
/// bytes by the kernel, so keep them short).
fn threads_named(name: &str) -> usize {
    let comms = std::fs::read_dir("/proc/self/task")
        .expect("/proc is mounted")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok());
    // `Iterator::filter` by name: copipe's `StageExt::filter` is in scope.
    comms.filter(|comm| comm.trim_end() == name).count()
}

/// True once no thread of this process is named `name`, waiting up to 5 s:
/// a joined thread's `/proc/self/task` entry can outlive `join` by a moment
/// (the kernel wakes the joiner before it drops the exited task).
fn threads_gone(name: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if threads_named(name) == 0 {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn bridge<T: Send + 'static, S>(name: &str, batch: usize, target: S) -> ThreadBridge<T>
where
    S: Stage<T> + Send + 'static,
{
    ThreadBridgeBuilder::new()
        .name(name)
        .batch_size(batch)
        .spawn(target)
        .expect("thread starts")
}

/// Wraps a stage so that its first item checks, from inside the worker,
/// that exactly one thread has the worker's name: the "no thread left"
/// checks after close are then known to be looking for the right name.
struct SeesOwnThread<S> {
    name: &'static str,
    seen: Arc<AtomicU64>,
    target: S,
}

impl<T, S: Stage<T>> Stage<T> for SeesOwnThread<S> {
    fn send(&mut self, item: T) -> Result<Flow> {
        if self.seen.load(Ordering::Relaxed) == 0 {
            assert_eq!(std::thread::current().name(), Some(self.name));
            assert_eq!(threads_named(self.name), 1);
            self.seen.store(1, Ordering::Relaxed);
        }
        self.target.send(item)
    }
}

impl<S: Lifecycle> Lifecycle for SeesOwnThread<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

fn sees_own_thread<S>(name: &'static str, target: S) -> (Arc<AtomicU64>, SeesOwnThread<S>) {
    let seen = Arc::new(AtomicU64::new(0));
    let s = SeesOwnThread {
        name,
        seen: seen.clone(),
        target,
    };
    (seen, s)
}

#[path = "common/seq_check.rs"]
mod seq_check;
use seq_check::SeqCheck;

#[test]
fn a_million_items_arrive_in_order_and_none_is_lost() {
    for batch in [1, 256] {
        let check = SeqCheck::default();
        let n = if batch == 1 { 100_000 } else { 1_000_000 };
        let (seen, target) = sees_own_thread("t-million", check.clone());
        let mut b = bridge("t-million", batch, target);
        for i in 0..n {
            assert_eq!(b.send(i).unwrap(), Flow::Continue);
        }
        b.close().unwrap();
        assert_eq!(check.count(), n, "batch {batch}");
        assert_eq!(check.closes(), 1);
        assert_eq!(seen.load(Ordering::Relaxed), 1);
        assert!(threads_gone("t-million"), "joined at close");
    }
}

#[test]
fn a_panic_downstream_is_an_error_at_the_next_send() {
    let mut b = bridge(
        "t-panic-send",
        4,
        from_fn(|x: u64| {
            if x == 10 {
                panic!("bus 10 is on fire");
            }
            Ok(Flow::Continue)
        }),
    );
    let mut failed = None;
    for i in 0..10_000_000 {
        match b.send(i) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => panic!("a panic is not a stop"),
            Err(e) => {
                failed = Some((i, e));
                break;
            }
        }
    }
    let (at, err) = failed.expect("the panic reaches the producer");
    assert!(at > 10, "reported after the item that panicked");
    match err.kind() {
        ErrorKind::Panic(m) => assert!(m.contains("bus 10 is on fire"), "{m}"),
        other => panic!("not a panic error: {other:?}"),
    }
    assert!(err.to_string().contains("t-panic-send"), "{err}");
    assert!(
        threads_gone("t-panic-send"),
        "a thread named t-panic-send is left"
    );
    // Reported once; after that the bridge is simply stopped.
    assert_eq!(b.send(1).unwrap(), Flow::Stop);
    b.close().unwrap();
}

#[test]
fn a_panic_downstream_is_an_error_at_close() {
    // The batch is bigger than what is sent, so the worker sees the items
    // only when `close` sends the last batch.
    let mut b = bridge(
        "t-panic-close",
        1000,
        from_fn(|x: u64| {
            if x == 3 {
                panic!("three");
            }
            Ok(Flow::Continue)
        }),
    );
    for i in 0..5 {
        assert_eq!(b.send(i).unwrap(), Flow::Continue);
    }
    let err = b.close().unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Panic(m) if m.contains("three")),
        "{err}"
    );
    assert!(
        threads_gone("t-panic-close"),
        "a thread named t-panic-close is left"
    );
}

#[test]
fn an_error_from_the_targets_close_is_returned_by_close() {
    struct FailsAtClose;
    impl Stage<u64> for FailsAtClose {
        fn send(&mut self, _: u64) -> Result<Flow> {
            Ok(Flow::Continue)
        }
    }

    impl Lifecycle for FailsAtClose {
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            Err(Error::usage("disk full at close"))
        }
    }

    let mut b = bridge("t-close-err", 8, FailsAtClose);
    assert_eq!(b.send(1).unwrap(), Flow::Continue);
    assert_eq!(b.close().unwrap_err().to_string(), "disk full at close");
    assert!(
        threads_gone("t-close-err"),
        "a thread named t-close-err is left"
    );
}

#[test]
fn a_stop_downstream_reaches_the_producer() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let closes = Arc::new(AtomicU64::new(0));
    let (s, c) = (seen.clone(), closes.clone());
    struct Sink(Arc<Mutex<Vec<u64>>>, Arc<AtomicU64>);
    impl Stage<u64> for Sink {
        fn send(&mut self, x: u64) -> Result<Flow> {
            self.0.lock().unwrap().push(x);
            Ok(Flow::Continue)
        }
    }

    impl Lifecycle for Sink {
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            self.1.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    let mut b = bridge("t-stop", 16, Sink(s, c).with_take(10));
    let mut stopped_at = None;
    for i in 0..10_000_000 {
        if b.send(i).unwrap() == Flow::Stop {
            stopped_at = Some(i);
            break;
        }
    }
    assert!(stopped_at.is_some(), "Stop reached the producer");
    assert!(threads_gone("t-stop"), "the worker ended at the stop");
    b.close().unwrap();
    assert_eq!(*seen.lock().unwrap(), (0..10).collect::<Vec<_>>());
    assert_eq!(
        closes.load(Ordering::Relaxed),
        1,
        "the worker closed its target once"
    );
}

#[test]
fn flush_delivers_a_partial_batch_without_close() {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut b = bridge(
        "t-flush",
        1024,
        from_fn(move |x: u64| {
            tx.send(x).unwrap();
            Ok(Flow::Continue)
        }),
    );
    assert_eq!(b.send(7).unwrap(), Flow::Continue);
    b.flush().unwrap();
    // A generous bound so a loaded machine cannot fail it; without the
    // flush the item would never arrive before close.
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(7));
    b.close().unwrap();
}

#[test]
fn dropping_without_close_stops_and_joins_the_thread() {
    let check = SeqCheck::default();
    let (seen, target) = sees_own_thread("t-drop", check.clone());
    let mut b = bridge("t-drop", 64, target);
    for i in 0..100_000 {
        assert_eq!(b.send(i).unwrap(), Flow::Continue);
    }
    // Make sure the worker has run (and named itself) before the drop.
    b.flush().unwrap();
    while seen.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    drop(b);
    assert!(threads_gone("t-drop"), "a thread named t-drop is left");
    assert_eq!(check.closes(), 0, "abandoned, not closed");
}

#[test]
fn drop_newest_counts_what_it_drops() {
    // The worker holds the first item until the producer has overfilled
    // the channel, so drops are certain.
    let (started_tx, started_rx) = crossbeam_channel::bounded::<()>(1);
    let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let mut first = true;
    let mut b = ThreadBridgeBuilder::new()
        .name("t-drop-new")
        .batch_size(1)
        .capacity(2)
        .policy(Policy::DropNewest)
        .warn_on_drop(false)
        .spawn(from_fn(move |x: u64| {
            if first {
                first = false;
                started_tx.send(()).unwrap();
                gate_rx.recv().unwrap();
            }
            g.lock().unwrap().push(x);
            Ok(Flow::Continue)
        }))
        .unwrap();
    assert_eq!(b.send(0).unwrap(), Flow::Continue);
    started_rx.recv().unwrap();
    for i in 1..=10 {
        assert_eq!(b.send(i).unwrap(), Flow::Continue);
    }
    gate_tx.send(()).unwrap();
    b.close().unwrap();
    // Items 1 and 2 filled the channel; 3..=10 were dropped.
    assert_eq!(*got.lock().unwrap(), [0, 1, 2]);
    assert_eq!(b.dropped(), 8);
    assert!(
        threads_gone("t-drop-new"),
        "a thread named t-drop-new is left"
    );
}

#[test]
fn the_seed_cothread_shape_runs_filters_on_the_worker() {
    // threaded(filter_on_field(..., printer())) over owned lines.
    let out = Arc::new(Mutex::new(Vec::<String>::new()));
    let o = out.clone();
    let sink = from_fn(move |line: String| {
        o.lock().unwrap().push(line);
        Ok(Flow::Continue)
    });
    let mut pipeline = pipe().owned().into(threaded(
        pipe().filter(|l: &String| l.contains("22")).into(sink),
    ));
    for line in ["22,North Bound", "9,South Bound", "22,South Bound"] {
        assert_eq!(pipeline.send(line).unwrap(), Flow::Continue);
    }
    Lifecycle::close(&mut pipeline).unwrap();
    assert_eq!(*out.lock().unwrap(), ["22,North Bound", "22,South Bound"]);
}

#[test]
fn a_million_borrowed_items_arrive_in_order_through_reused_slots() {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let mut next = 0u64;
    struct Check<F>(F);
    impl<F: FnMut(&str) -> Result<Flow>> Stage<&str> for Check<F> {
        fn send(&mut self, s: &str) -> Result<Flow> {
            (self.0)(s)
        }
    }

    impl<F: FnMut(&str) -> Result<Flow>> Lifecycle for Check<F> {
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            Ok(())
        }
    }

    let check = Check(move |s: &str| {
        // Lengths vary, so each slot is overwritten with longer and
        // shorter text.
        let want = format!("{}{next}", "#".repeat((next % 5) as usize));
        if s != want {
            return Err(Error::usage(format!("got {s:?}, wanted {want:?}")));
        }
        next += 1;
        c.store(next, Ordering::Relaxed);
        Ok(Flow::Continue)
    });
    let mut b = ThreadBridgeBuilder::new()
        .name("t-by-ref")
        .spawn_ref::<str, _>(check)
        .unwrap();
    let mut line = String::new();
    for i in 0..1_000_000u64 {
        line.clear();
        line.push_str(&"#".repeat((i % 5) as usize));
        line.push_str(&i.to_string());
        assert_eq!(b.send(line.as_str()).unwrap(), Flow::Continue);
    }
    b.close().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 1_000_000);
    assert!(threads_gone("t-by-ref"), "a thread named t-by-ref is left");
}

// ---- `threaded_flat`: records (and strings) flattened (bytes and text) --

/// A record of shape `round % 5`: names change now and then, as in a feed
/// with optional fields, so batches start with, carry and change shapes.
fn shaped_record(i: u64) -> Record {
    let shapes: [&[&str]; 5] = [
        &["id", "route", "direction", "lat"],
        &["id", "route", "direction", "lat"],
        &["route", "id"],
        &["id", "route", "direction", "lat", "finalStop"],
        &[],
    ];
    let shape = shapes[(i / 7 % 5) as usize];
    let mut r = Record::new();
    for (k, name) in shape.iter().enumerate() {
        r.set(name, &format!("{i}-{k}{}", "é".repeat((i % 3) as usize)));
    }
    if i.is_multiple_of(11) && !shape.is_empty() {
        // A replaced value: the record's text is not back to back.
        r.set(shape[0], "replaced");
    }
    r
}

#[test]
fn a_million_records_arrive_in_order_through_a_flat_bridge() {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let mut next = 0u64;
    let check = from_fn(move |r: &Record| {
        let want = shaped_record(next);
        if *r != want {
            return Err(Error::usage(format!(
                "record {next}: {r:?}, wanted {want:?}"
            )));
        }
        next += 1;
        c.store(next, Ordering::Relaxed);
        Ok(Flow::Continue)
    });
    let mut b = ThreadBridgeBuilder::new()
        .name("t-flat")
        .batch_size(100)
        .spawn_flat::<Record, _>(check)
        .unwrap();
    for i in 0..1_000_000u64 {
        assert_eq!(b.send(&shaped_record(i)).unwrap(), Flow::Continue);
    }
    b.close().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 1_000_000);
    assert!(threads_gone("t-flat"), "a thread named t-flat is left");
}

// ---- `copipe tail --bridge thread`: the real binary --------------------

const COPIPE: &str = env!("CARGO_BIN_EXE_copipe");

fn log_file() -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    let status = std::process::Command::new(COPIPE)
        .args(["gen", "log", "--lines", "20000", "-o"])
        .arg(f.path())
        .status()
        .unwrap();
    assert!(status.success());
    f
}

fn tail(args: &[&str], bridge: &str) -> std::process::Output {
    let out = std::process::Command::new(COPIPE)
        .arg("tail")
        .args(args)
        .args(["--bridge", bridge])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn tail_through_a_thread_bridge_is_byte_identical() {
    let log = log_file();
    let path = log.path().to_str().unwrap();
    for args in [
        vec!["-n", "+1", path],
        vec!["-n", "+1", "-e", "python", path],
        vec!["-n", "100", "-v", "-e", "GET", path, path],
    ] {
        let inline = tail(&args, "none");
        let bridged = tail(&args, "thread");
        assert!(!inline.stdout.is_empty());
        assert!(inline.stdout == bridged.stdout, "{args:?}: outputs differ");
    }
}

#[test]
fn tail_follow_through_a_thread_bridge_delivers_live_lines() {
    use std::io::{BufRead, BufReader, Write};
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = std::process::Command::new(COPIPE)
        .args([
            "tail", "-F", "-n", "0", "-e", "python", "--bridge", "thread",
        ])
        .arg(log.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = crossbeam_channel::unbounded();
    let lines = std::thread::spawn(move || {
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let _ = tx.send(std::mem::take(&mut line));
        }
    });
    // Appended until the follower has started watching; each line is its
    // own write, and only the partial batch a flush carries can deliver
    // it (a batch holds 256 lines).
    let deadline = Duration::from_secs(30);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(log.path())
        .unwrap();
    let mut got = None;
    for i in 0..300 {
        writeln!(f, "GET /python/{i} HTTP/1.1").unwrap();
        writeln!(f, "GET /ply/{i} HTTP/1.1").unwrap();
        f.flush().unwrap();
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            got = Some(line);
            break;
        }
    }
    let first = got.expect("a live line came through the bridge");
    assert!(first.starts_with("GET /python/"), "{first}");
    // A line appended now arrives on its own, without 255 more behind it.
    writeln!(f, "GET /python/last HTTP/1.1").unwrap();
    f.flush().unwrap();
    loop {
        let line = rx.recv_timeout(deadline).expect("the last line arrives");
        assert!(line.starts_with("GET /python/"), "{line}");
        if line == "GET /python/last HTTP/1.1\n" {
            break;
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15));
    lines.join().unwrap();
}
