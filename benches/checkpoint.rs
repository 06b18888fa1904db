//! What `--checkpoint` costs a follow (`text::Follow` with
//! `FollowBuilder::checkpoint`, the code behind `copipe tail -F
//! --checkpoint`), each beside the same follow without a checkpoint:
//!
//! - `checkpoint/one flush`: one line appended to a log, then a follow run
//!   that resumes from the checkpoint, takes that line and ends. The run's
//!   end waits for the checkpoint's write, so the difference to the anchor
//!   is one checkpoint load and one atomic write (temporary file, write,
//!   fsync, rename, fsync of the directory), which is what each flush of a
//!   running follow hands to its writer thread.
//! - `checkpoint/100k lines`: 100,000 lines of about 100 bytes read from the
//!   start of a file at full speed, with the default flush policy: the
//!   follow flushes its target (and hands the checkpoint to its writer
//!   thread) when it has read everything there is, before it waits, and
//!   once more at the end, which waits for the write. A new checkpoint
//!   each iteration. The difference to the anchor, divided by the lines,
//!   is the cost per line of a file read in one go; the number of flushes
//!   during a run is printed once before the timing.
//!
//! The files live in a temporary directory on the disk the benchmark runs
//! from (`TMPDIR`): fsync costs what that disk costs.

use std::io::Write;
use std::path::Path;

use copipe::text::{Follow, LineAt, Start};
use copipe::{Flow, Lifecycle, Stage};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const LINES: u64 = 100_000;

/// Counts lines and flushes, and stops after `limit` lines.
struct Count {
    lines: u64,
    flushes: u64,
    limit: u64,
}

impl Count {
    fn new(limit: u64) -> Count {
        Count {
            lines: 0,
            flushes: 0,
            limit,
        }
    }
}

impl Stage<LineAt<'_>> for Count {
    fn send(&mut self, line: LineAt<'_>) -> copipe::Result<Flow> {
        assert!(!line.bytes.is_empty());
        self.lines += 1;
        Ok(if self.lines >= self.limit {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

impl Lifecycle for Count {
    fn flush(&mut self) -> copipe::Result<()> {
        self.flushes += 1;
        Ok(())
    }
    fn close(&mut self) -> copipe::Result<()> {
        Ok(())
    }
}

/// A follow of `log` taking `limit` lines; with a checkpoint at `ck`, or
/// from `start` without one. Returns the stage (its counts).
fn follow(log: &Path, ck: Option<&Path>, start: Start, limit: u64) -> Count {
    let mut count = Count::new(limit);
    let b = Follow::builder([log]);
    let b = match ck {
        Some(ck) => b.checkpoint(ck),
        None => b.start(start),
    };
    b.build().unwrap().run_at(&mut count).unwrap();
    assert_eq!(count.lines, limit);
    count
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let dir = tmp.path();

    // One flush: a line appended, a run that resumes and takes it.
    let log = dir.join("one.log");
    let ck = dir.join("one.ck");
    std::fs::write(&log, "first line\n").unwrap();
    follow(&log, Some(&ck), Start::From(1), 1);
    let mut g = c.benchmark_group("checkpoint/one flush");
    g.sample_size(30);
    let mut n = 0u64;
    let mut append = |log: &Path| {
        n += 1;
        let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
        writeln!(f, "line {n} appended to the log").unwrap();
    };
    g.bench_function("without checkpoint (tail -n 1)", |b| {
        b.iter(|| {
            append(&log);
            follow(&log, None, Start::Last(1), 1)
        })
    });
    g.bench_function("with checkpoint (resume, write, fsync, rename)", |b| {
        b.iter(|| {
            append(&log);
            follow(&log, Some(&ck), Start::From(1), 1)
        })
    });
    g.finish();

    // 100k lines at full speed.
    let log = dir.join("big.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
    for i in 0..LINES {
        writeln!(
            f,
            "10.0.{}.{} - - [03/Dec/2026:09:00:00 +0000] \"GET /item/{i} HTTP/1.1\" 200 {} \"-\"",
            i % 250,
            i % 200,
            i % 9000
        )
        .unwrap();
    }
    drop(f);
    let ck = dir.join("big.ck");
    let flushes = follow(&log, Some(&ck), Start::From(1), LINES).flushes;
    println!(
        "checkpoint/100k lines: {flushes} flushes during a run (and one at its end, waited for)"
    );
    let mut g = c.benchmark_group("checkpoint/100k lines");
    g.sample_size(10);
    g.throughput(Throughput::Elements(LINES));
    g.bench_function("without checkpoint", |b| {
        b.iter(|| follow(&log, None, Start::From(1), LINES))
    });
    g.bench_function("with checkpoint", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(&ck);
            follow(&log, Some(&ck), Start::From(1), LINES)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
