//! Bridge throughput, with the anchors measured side by side in one run.
//!
//! The parts the targets name are measured interleaved (each
//! variant once per round, in turn, 15 rounds; medians and ratios printed
//! with the load average), because this 2-core machine's speed drifts by
//! 2x while others compile:
//!
//! - `threaded/u64`: a million u64 through `threaded` into a summing sink,
//!   for a sweep of batch sizes and capacities, against raw
//!   crossbeam-channel (one item per message, and batches of 256) and
//!   against no bridge at all.
//! - `records`: a million real bus records (from the 30 MB feed, sent
//!   again and again) inline into a counter (the anchor), through
//!   `threaded_ref` (from a set of 1000 that stays in cache, as the one
//!   reused record of a real pipeline does, and from all 70k records, which
//!   do not), with a batch/capacity sweep, through `threaded_flat`, and
//!   through the wire to a
//!   `copipe worker buses` child that decodes and filters them (its start
//!   included).
//! - `bus pipeline, 30 MB`: the seed's pipeline (expat-style parse ->
//!   records -> [bridge] -> route 22 -> North Bound -> bus_locations ->
//!   a line-counting null writer) inline, threaded (`threaded_ref`, and
//!   `threaded_flat` with a batch sweep) and in a subprocess, on the XML
//!   contest's 30 MB feed held in memory.
//!
//! Then criterion:
//!
//! - `threaded/record`: an 80-byte plain struct moved by value, and
//!   ~60-byte lines lent by reference (`threaded_ref`, slots reused).
//! - `wire`: bincode frames encoded into memory (the encoder alone), and
//!   through an OS pipe to a decoding child (the `wire_worker seq` example).
//! - `latency`: send + flush through a thread bridge until the target has
//!   the item, and `copipe tail -F` from append to output, inline and with
//!   `--bridge thread`.
//!
//! `bridges --count FLAVOUR N` (the bench executable, for callgrind) sends
//! N items through one bridge flavour and exits: see `count_mode`.
//!
//! `cargo bench --bench bridges -- FILTER` runs the interleaved parts whose
//! name contains FILTER and the criterion benches it matches. Every
//! iteration checks its result (sum or count), so a broken bench cannot
//! silently measure nothing.

#[path = "../tests/common/examples.rs"]
mod examples;

use copipe::Lifecycle;
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use copipe::bridge::{
    threaded, threaded_flat, threaded_ref, FrameWriter, ThreadBridgeBuilder, DEFAULT_BATCH_SIZE,
    DEFAULT_CAPACITY, DEFAULT_FLAT_BATCH_SIZE, SMALL_BATCH_BYTES,
};
use copipe::sinks::Collect;
use copipe::xml::{
    bus_locations, expat_parse, filter_on_field, generate_buses, records, Record, XmlInput,
};
use copipe::{Flow, ProcessBridge, Result, Stage};
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use serde::Serialize;

const N: u64 = 1_000_000;

/// Sums what it receives; publishes the sum at close.
struct Sum {
    sum: u64,
    out: Arc<AtomicU64>,
}

impl Sum {
    fn new() -> (Sum, Arc<AtomicU64>) {
        let out = Arc::new(AtomicU64::new(0));
        (
            Sum {
                sum: 0,
                out: out.clone(),
            },
            out,
        )
    }
}

impl<T: Weigh> Stage<T> for Sum {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        self.sum = self.sum.wrapping_add(item.weigh());
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Sum {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        self.out.store(self.sum, Ordering::Relaxed);
        Ok(())
    }
}

/// Something cheap to fold every kind of item into.
trait Weigh {
    fn weigh(&self) -> u64;
}

impl Weigh for u64 {
    fn weigh(&self) -> u64 {
        *self
    }
}

impl Weigh for Bus {
    fn weigh(&self) -> u64 {
        self.id as u64
    }
}

impl Weigh for &str {
    fn weigh(&self) -> u64 {
        self.len() as u64
    }
}

/// A bus record's worth of plain data (80 bytes, no heap).
// Read through `Debug` only: the bench moves them, it does not look.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy)]
struct Bus {
    id: u32,
    route: [u8; 4],
    direction: [u8; 16],
    latitude: f64,
    longitude: f64,
    pattern: u32,
    run: [u8; 8],
    destination: [u8; 20],
}

/// A bus record with text fields, borrowed (encode side only).
#[derive(Debug, Clone, Copy, Serialize)]
struct BusText<'a> {
    id: &'a str,
    route: &'a str,
    direction: &'a str,
    latitude: f64,
    longitude: f64,
    run: &'a str,
    destination: &'a str,
    pattern: &'a str,
}

fn bus(i: u64) -> Bus {
    Bus {
        id: i as u32,
        route: *b"22\0\0",
        direction: *b"North Bound\0\0\0\0\0",
        latitude: 41.88,
        longitude: -87.62,
        pattern: 5,
        run: *b"P227\0\0\0\0",
        destination: *b"Howard\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    }
}

/// A named run of one benchmark variant.
type Variant<'a> = (String, Box<dyn Fn() + 'a>);

/// Runs every variant once per round, in turn, for `rounds` rounds, so the
/// machine's drift (other jobs, frequency) hits all alike; prints each
/// variant's median time, its items/s at the median, and its ratio to the
/// first variant (of the medians, and the median of per-round ratios).
fn interleaved(title: &str, items: u64, variants: &[Variant<'_>]) {
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds = if benching { 15 } else { 1 };
    for (_, run) in variants {
        run(); // warm up
    }
    let mut times = vec![Vec::new(); variants.len()];
    for _ in 0..rounds {
        for (v, (_, run)) in variants.iter().enumerate() {
            let t = std::time::Instant::now();
            run();
            times[v].push(t.elapsed().as_secs_f64());
        }
    }
    let median = |xs: &[f64]| {
        let mut xs = xs.to_vec();
        xs.sort_by(f64::total_cmp);
        xs[xs.len() / 2]
    };
    println!(
        "{title}: {items} items per run, interleaved, {rounds} rounds (load average {})",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let base = median(&times[0]);
    for (v, (name, _)) in variants.iter().enumerate() {
        let ratios: Vec<f64> = times[v].iter().zip(&times[0]).map(|(t, b)| t / b).collect();
        let m = median(&times[v]);
        println!(
            "  {name:<58} {:>9.2} ms {:>8.2} M/s  x first {:>7.3} (per round {:.3})",
            m * 1e3,
            items as f64 / m / 1e6,
            m / base,
            median(&ratios),
        );
    }
}

/// Whether the interleaved part named `name` runs: `cargo bench --bench
/// bridges -- FILTER` runs those whose name contains FILTER (or that FILTER
/// contains), all without one.
fn selected(name: &str) -> bool {
    match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        None => true,
        Some(f) => name.contains(f.as_str()) || f.contains(name),
    }
}

fn threaded_u64() {
    if !selected("threaded/u64") {
        return;
    }
    let n = if std::env::args().any(|a| a == "--bench") {
        N
    } else {
        10_000
    };
    let want = n * (n - 1) / 2;
    let mut variants: Vec<Variant<'static>> = vec![
        (
            "inline (no bridge)".into(),
            Box::new(move || {
                let (mut sum, out) = Sum::new();
                for i in 0..n {
                    let _ = sum.send(black_box(i));
                }
                let _ = Lifecycle::close(&mut sum);
                assert_eq!(out.load(Ordering::Relaxed), want);
            }),
        ),
        (
            "anchor: crossbeam bounded(1024), one per message".into(),
            Box::new(move || {
                let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
                let h = std::thread::spawn(move || rx.iter().fold(0u64, |a, x| a.wrapping_add(x)));
                for i in 0..n {
                    tx.send(black_box(i)).unwrap();
                }
                drop(tx);
                assert_eq!(h.join().unwrap(), want);
            }),
        ),
        (
            "anchor: crossbeam bounded(16), batches of 256".into(),
            Box::new(move || {
                let (tx, rx) = crossbeam_channel::bounded::<Vec<u64>>(16);
                let h = std::thread::spawn(move || {
                    rx.iter()
                        .flatten()
                        .fold(0u64, |a: u64, x: u64| a.wrapping_add(x))
                });
                let mut batch = Vec::with_capacity(256);
                for i in 0..n {
                    batch.push(black_box(i));
                    if batch.len() == 256 {
                        tx.send(std::mem::replace(&mut batch, Vec::with_capacity(256)))
                            .unwrap();
                    }
                }
                tx.send(batch).unwrap();
                drop(tx);
                assert_eq!(h.join().unwrap(), want);
            }),
        ),
    ];
    // `threaded` of u64 (8 bytes) gathers SMALL_BATCH_BYTES per batch.
    variants.push((
        format!(
            "threaded(), default (batch {}, capacity {DEFAULT_CAPACITY})",
            SMALL_BATCH_BYTES / 8
        ),
        Box::new(move || {
            let (sum, out) = Sum::new();
            let mut bridge = threaded::<u64, _>(sum);
            for i in 0..n {
                let _ = bridge.send(black_box(i)).unwrap();
            }
            bridge.close().unwrap();
            assert_eq!(out.load(Ordering::Relaxed), want);
        }),
    ));
    for (batch, capacity) in [
        (16, 16),
        (64, 16),
        (256, 16),
        (4096, 16),
        (256, 4),
        (1024, 4),
    ] {
        variants.push((
            format!("threaded, batch {batch}, capacity {capacity}"),
            Box::new(move || {
                let (sum, out) = Sum::new();
                let mut bridge = ThreadBridgeBuilder::new()
                    .batch_size(batch)
                    .capacity(capacity)
                    .spawn::<u64, _>(sum)
                    .unwrap();
                for i in 0..n {
                    let _ = bridge.send(black_box(i)).unwrap();
                }
                bridge.close().unwrap();
                assert_eq!(out.load(Ordering::Relaxed), want);
            }),
        ));
    }
    interleaved("threaded/u64", n, &variants);
}

fn threaded_records(c: &mut Criterion) {
    let mut g = c.benchmark_group("threaded/record");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));

    let want: u64 = (0..N).map(|i| i as u32 as u64).sum();
    g.bench_function("inline, 80-byte struct", |b| {
        b.iter(|| {
            let (mut sum, out) = Sum::new();
            for i in 0..N {
                let _ = sum.send(black_box(bus(i)));
            }
            let _ = Lifecycle::close(&mut sum);
            assert_eq!(out.load(Ordering::Relaxed), want);
        })
    });
    g.bench_function("threaded, 80-byte struct by value", |b| {
        b.iter(|| {
            let (sum, out) = Sum::new();
            let mut bridge = ThreadBridgeBuilder::new().spawn::<Bus, _>(sum).unwrap();
            for i in 0..N {
                let _ = bridge.send(black_box(bus(i))).unwrap();
            }
            bridge.close().unwrap();
            assert_eq!(out.load(Ordering::Relaxed), want);
        })
    });

    let lines: Vec<String> = (0..1000)
        .map(|i| format!("{i},22,\"North Bound\",41.{i:05},-87.{i:05},P227,Howard,5"))
        .collect();
    let per_round: u64 = lines.iter().map(|l| l.len() as u64).sum();
    let rounds = N / lines.len() as u64;
    g.bench_function("threaded_ref, ~60-byte lines lent", |b| {
        b.iter(|| {
            let (sum, out) = Sum::new();
            let mut bridge = threaded_ref::<str, _>(sum);
            for _ in 0..rounds {
                for l in &lines {
                    let _ = bridge.send(black_box(l.as_str())).unwrap();
                }
            }
            bridge.close().unwrap();
            assert_eq!(out.load(Ordering::Relaxed), per_round * rounds);
        })
    });
    g.finish();
}

fn wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(4));

    g.bench_function("encode u64 frames into memory", |b| {
        b.iter(|| {
            let mut w = FrameWriter::new(std::io::sink());
            for i in 0..N {
                w.write(&black_box(i)).unwrap();
            }
            w.flush().unwrap();
            assert_eq!(w.frames(), N);
        })
    });
    let ids: Vec<String> = (0..1000).map(|i| (1000 + i).to_string()).collect();
    g.bench_function("encode bus-like records (6 text fields, 2 floats)", |b| {
        b.iter(|| {
            let mut w = FrameWriter::new(std::io::sink());
            for i in 0..N {
                let r = BusText {
                    id: &ids[(i % 1000) as usize],
                    route: "22",
                    direction: "North Bound",
                    latitude: 41.88,
                    longitude: -87.62,
                    run: "P227",
                    destination: "Howard",
                    pattern: "5",
                };
                w.write(&black_box(r)).unwrap();
            }
            w.flush().unwrap();
            assert_eq!(w.frames(), N);
        })
    });
    let worker = examples::example("wire_worker");
    g.bench_function("u64 through a pipe to a decoding child", |b| {
        b.iter(|| {
            let mut cmd = Command::new(&worker);
            cmd.arg("seq").stdout(Stdio::piped());
            let out = tempfile::tempfile().unwrap();
            cmd.stdout(out.try_clone().unwrap());
            let mut bridge = ProcessBridge::spawn(cmd).unwrap();
            for i in 0..N {
                let _ = bridge.send(black_box(i)).unwrap();
            }
            bridge.close().unwrap();
            let mut s = String::new();
            use std::io::{Read, Seek};
            let mut out = out;
            out.rewind().unwrap();
            out.read_to_string(&mut s).unwrap();
            assert_eq!(s, format!("{N}\n"));
        })
    });
    g.finish();
}

/// What a live `tail -F --bridge thread` adds between an appended line and
/// its output: one item, then `flush` (as a following source does before
/// it waits), until the worker's target has it. The persistent bridge and
/// worker are reused across iterations, as in a long-running tail.
fn flush_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("latency");
    g.sample_size(50);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    struct Signal(crossbeam_channel::Sender<usize>);
    impl Stage<&str> for Signal {
        fn send(&mut self, line: &str) -> Result<Flow> {
            self.0.send(line.len()).unwrap();
            Ok(Flow::Continue)
        }
    }

    impl Lifecycle for Signal {
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            Ok(())
        }
    }

    let (tx, rx) = crossbeam_channel::bounded::<usize>(1);
    let mut bridge = threaded_ref::<str, _>(Signal(tx));
    let line = "127.0.0.1 - - [22/Nov/2026:03:00:00 +0000] \"GET /python/ HTTP/1.1\" 200 512";
    g.bench_function("thread bridge: send + flush until the target has it", |b| {
        b.iter(|| {
            let _ = bridge.send(line).unwrap();
            bridge.flush().unwrap();
            assert_eq!(rx.recv().unwrap(), line.len());
        })
    });
    bridge.close().unwrap();

    // End to end: append a line to a file followed by `copipe tail -F`,
    // until it comes out of tail's stdout; inline and with the printer
    // behind a thread bridge. The difference is what the bridge adds.
    for bridge in ["none", "thread"] {
        use std::io::{BufRead, BufReader, Write};
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_copipe"))
            .args(["tail", "-F", "-n", "+1", "--bridge", bridge])
            .arg(log.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap();
        // The file starts empty and tail prints from line 1, so the first
        // line comes out whether it was appended before or after tail
        // started watching.
        writeln!(f, "{line}").unwrap();
        let mut got = String::new();
        out.read_line(&mut got).unwrap();
        g.bench_function(
            BenchmarkId::new("tail -F: append to output, --bridge", bridge),
            |b| {
                b.iter(|| {
                    writeln!(f, "{line}").unwrap();
                    got.clear();
                    out.read_line(&mut got).unwrap();
                    assert_eq!(got.len(), line.len() + 1);
                })
            },
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    g.finish();
}

// ---- bus records and the bus pipeline (30 MB feed) -----------------------

const FEED_BYTES: u64 = 30_000_000;

/// The 30 MB feed of the XML contest bench (`benches/contest.rs`), made by
/// the same generator with the same seed at the same path, once. Under
/// `cargo test` (which runs each bench once, in a debug build, to check it
/// works) a 1 MB feed stands in.
fn feed() -> Vec<u8> {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("contest");
    std::fs::create_dir_all(&dir).expect("target dir");
    let benching = std::env::args().any(|a| a == "--bench");
    let (path, size) = if benching {
        (dir.join("allroutes-30mb.xml"), FEED_BYTES)
    } else {
        (dir.join("allroutes-1mb-test.xml"), 1_000_000)
    };
    if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < size {
        eprintln!("generating {} ...", path.display());
        let f = std::fs::File::create(&path).expect("create feed");
        generate_buses(std::io::BufWriter::new(f), size, 1).expect("write feed");
    }
    std::fs::read(&path).expect("read feed")
}

/// A writer that counts the lines written through it.
#[derive(Clone)]
struct LineCount(Arc<AtomicU64>);

impl std::io::Write for LineCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.iter().filter(|&&b| b == b'\n').count() as u64;
        self.0.fetch_add(n, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The seed's stages after `records`: route 22, North Bound, printed.
fn stages<W: std::io::Write + Send + 'static>(out: W) -> impl for<'a> Stage<&'a Record> + Send {
    filter_on_field(
        "route",
        "22",
        filter_on_field("direction", "North Bound", bus_locations(out)),
    )
}

/// A `copipe worker buses` child fed flat frames of records (what `copipe
/// buses --bridge process` runs).
fn worker_buses(
    args: &[&str],
    stdout: std::fs::File,
) -> ProcessBridge<copipe::bridge::FlatFrames<Record>> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_copipe"));
    cmd.args(["worker", "buses"]).args(args).stdout(stdout);
    ProcessBridge::spawn_flat(cmd).expect("worker starts")
}

fn lines_in(mut f: std::fs::File) -> u64 {
    use std::io::{Read, Seek};
    f.rewind().unwrap();
    let mut s = Vec::new();
    f.read_to_end(&mut s).unwrap();
    s.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Counts records; publishes the count at close.
struct Tally(u64, Arc<AtomicU64>);

impl Stage<&Record> for Tally {
    #[inline]
    fn send(&mut self, r: &Record) -> Result<Flow> {
        black_box(r.len());
        self.0 += 1;
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Tally {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        self.1.store(self.0, Ordering::Relaxed);
        Ok(())
    }
}

/// The feed's bus records, owned.
fn feed_records(bytes: &[u8]) -> Vec<Record> {
    let mut all = Collect::<Record>::new();
    expat_parse(
        XmlInput::from_bytes(bytes),
        records("bus", copipe::StageExt::with_owned(&mut all)),
    )
    .unwrap();
    all.into_items()
}

/// Records per iteration of the `records` benches: the feed's records
/// sent again and again.
const RECORDS: u64 = 1_000_000;

fn bus_records() {
    if !selected("records") {
        return;
    }
    let all = feed_records(&feed());
    let n = if std::env::args().any(|a| a == "--bench") {
        RECORDS
    } else {
        10_000
    };
    // The first 1000 records, 0.5 MB: in cache, as the one record that
    // `records` fills again and again is in a real pipeline.
    let hot = all[..1000.min(all.len())].to_vec();
    let cycle = |set: &[Record]| -> Vec<usize> { (0..n as usize).map(|i| i % set.len()).collect() };
    let (hot_order, all_order) = (cycle(&hot), cycle(&all));
    let (hot, all) = (&hot, &all);
    let (hot_order, all_order) = (&hot_order, &all_order);

    let inline = |set: &'static str| -> Variant<'_> {
        let (set, order) = if set == "hot" {
            (hot, hot_order)
        } else {
            (all, all_order)
        };
        (
            format!("inline, {}", label(set.len())),
            Box::new(move || {
                let out = Arc::new(AtomicU64::new(0));
                let mut tally = Tally(0, out.clone());
                for &i in order {
                    let _ = tally.send(&set[i]).unwrap();
                }
                Lifecycle::close(&mut tally).unwrap();
                assert_eq!(out.load(Ordering::Relaxed), n);
            }),
        )
    };
    fn label(len: usize) -> &'static str {
        if len <= 1000 {
            "1000 records (in cache)"
        } else {
            "70k records (in memory)"
        }
    }
    let threaded = |set: &'static str, batch: usize, capacity: usize| -> Variant<'_> {
        let (set, order) = if set == "hot" {
            (hot, hot_order)
        } else {
            (all, all_order)
        };
        let default = (batch, capacity) == (DEFAULT_BATCH_SIZE, DEFAULT_CAPACITY);
        (
            format!(
                "threaded_ref, {}, batch {batch}, capacity {capacity}{}",
                label(set.len()),
                if default { " (default)" } else { "" }
            ),
            Box::new(move || {
                let out = Arc::new(AtomicU64::new(0));
                let mut bridge = ThreadBridgeBuilder::new()
                    .batch_size(batch)
                    .capacity(capacity)
                    .spawn_ref::<Record, _>(Tally(0, out.clone()))
                    .unwrap();
                for &i in order {
                    let _ = bridge.send(&set[i]).unwrap();
                }
                bridge.close().unwrap();
                assert_eq!(out.load(Ordering::Relaxed), n);
            }),
        )
    };
    let flat = |set: &'static str| -> Variant<'_> {
        let (set, order) = if set == "hot" {
            (hot, hot_order)
        } else {
            (all, all_order)
        };
        (
            format!(
                "threaded_flat, {}, batch {DEFAULT_FLAT_BATCH_SIZE} (default)",
                label(set.len())
            ),
            Box::new(move || {
                let out = Arc::new(AtomicU64::new(0));
                let mut bridge = threaded_flat::<Record, _>(Tally(0, out.clone()));
                for &i in order {
                    let _ = bridge.send(&set[i]).unwrap();
                }
                bridge.close().unwrap();
                assert_eq!(out.load(Ordering::Relaxed), n);
            }),
        )
    };
    let mut variants = vec![inline("hot")];
    variants.push(threaded("hot", DEFAULT_BATCH_SIZE, DEFAULT_CAPACITY));
    variants.push(flat("hot"));
    for (batch, capacity) in [
        (64, 16),
        (256, 16),
        (1024, 16),
        (64, 4),
        (256, 4),
        (1024, 4),
    ] {
        if (batch, capacity) != (DEFAULT_BATCH_SIZE, DEFAULT_CAPACITY) {
            variants.push(threaded("hot", batch, capacity));
        }
    }
    variants.push(inline("all"));
    variants.push(threaded("all", DEFAULT_BATCH_SIZE, DEFAULT_CAPACITY));
    variants.push(flat("all"));
    // The child decodes and filters every record and prints none (no bus
    // runs route NONE): the wire's and the decoder's cost, and the
    // child's start (a few ms, spread over the million records).
    fn subprocess<'a, B>(
        frames: &str,
        spawn: fn(&[&str], std::fs::File) -> B,
        set: &'a [Record],
        order: &'a [usize],
    ) -> Variant<'a>
    where
        B: for<'r> Stage<&'r Record> + Lifecycle + 'a,
    {
        (
            format!("subprocess, {frames} frames, {}", label(set.len())),
            Box::new(move || {
                let out = tempfile::tempfile().unwrap();
                let mut bridge = spawn(&["--route", "NONE"], out.try_clone().unwrap());
                for &i in order {
                    let _ = bridge.send(&set[i]).unwrap();
                }
                Lifecycle::close(&mut bridge).unwrap();
                assert_eq!(lines_in(out), 0);
            }),
        )
    }
    for (set, order) in [(hot, hot_order), (all, all_order)] {
        variants.push(subprocess("flat", worker_buses, set, order));
    }
    interleaved("records", n, &variants);
}

/// The bus pipeline inline, threaded and in a subprocess, measured
/// interleaved (one run of each variant per round, in turn) so that the
/// machine's drift hits all of them alike: prints each variant's median,
/// and its ratio to inline (of the medians, and the median of the
/// per-round ratios).
fn bus_pipeline() {
    if !selected("bus pipeline") {
        return;
    }
    let bytes = feed();
    let want = {
        let lines = Arc::new(AtomicU64::new(0));
        expat_parse(
            XmlInput::from_bytes(&bytes),
            records("bus", stages(LineCount(lines.clone()))),
        )
        .unwrap();
        lines.load(Ordering::Relaxed)
    };
    assert!(want > 5, "the feed has too few North Bound 22s");

    let inline = || {
        let lines = Arc::new(AtomicU64::new(0));
        expat_parse(
            XmlInput::from_bytes(&bytes),
            records("bus", stages(LineCount(lines.clone()))),
        )
        .unwrap();
        assert_eq!(lines.load(Ordering::Relaxed), want);
    };
    let threaded = || {
        let lines = Arc::new(AtomicU64::new(0));
        let bridge = threaded_ref::<Record, _>(stages(LineCount(lines.clone())));
        expat_parse(XmlInput::from_bytes(&bytes), records("bus", bridge)).unwrap();
        assert_eq!(lines.load(Ordering::Relaxed), want);
    };
    let flat = || {
        let lines = Arc::new(AtomicU64::new(0));
        let bridge = threaded_flat::<Record, _>(stages(LineCount(lines.clone())));
        expat_parse(XmlInput::from_bytes(&bytes), records("bus", bridge)).unwrap();
        assert_eq!(lines.load(Ordering::Relaxed), want);
    };
    let flat_batch = |batch: usize| {
        let bytes = &bytes;
        move || {
            let lines = Arc::new(AtomicU64::new(0));
            let bridge = ThreadBridgeBuilder::new()
                .batch_size(batch)
                .spawn_flat::<Record, _>(stages(LineCount(lines.clone())))
                .unwrap();
            expat_parse(XmlInput::from_bytes(bytes), records("bus", bridge)).unwrap();
            assert_eq!(lines.load(Ordering::Relaxed), want);
        }
    };
    let subprocess = || {
        let out = tempfile::tempfile().unwrap();
        let bridge = worker_buses(
            &["--route", "22", "--direction", "North Bound"],
            out.try_clone().unwrap(),
        );
        expat_parse(XmlInput::from_bytes(&bytes), records("bus", bridge)).unwrap();
        assert_eq!(lines_in(out), want);
    };
    let variants: Vec<Variant<'_>> = vec![
        ("inline".into(), Box::new(inline)),
        ("threaded (threaded_ref)".into(), Box::new(threaded)),
        (
            format!("threaded_flat (default, batch {DEFAULT_FLAT_BATCH_SIZE})"),
            Box::new(flat),
        ),
        ("threaded_flat, batch 64".into(), Box::new(flat_batch(64))),
        ("threaded_flat, batch 256".into(), Box::new(flat_batch(256))),
        (
            "threaded_flat, batch 4096".into(),
            Box::new(flat_batch(4096)),
        ),
        ("subprocess (flat frames)".into(), Box::new(subprocess)),
    ];
    interleaved(
        &format!(
            "bus pipeline, {} MB (items: bytes)",
            bytes.len() / 1_000_000
        ),
        bytes.len() as u64,
        &variants,
    );
}

criterion_group!(benches, threaded_records, wire, flush_latency);

fn main() {
    if count_mode() {
        return;
    }
    threaded_u64();
    bus_records();
    bus_pipeline();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

// ---------------------------------------------------------------------------
// Instruction counts per item: figures the machine's load cannot move.

/// `bridges --count FLAVOUR N`: sends N items through one bridge flavour
/// and exits, for `valgrind --tool=callgrind` (with `--trace-children=yes`
/// for the process flavours). Run it at two N and divide the difference of
/// the totals by the difference of the N: the per-item count, without the
/// setup (the feed's parse, the thread's or the child's start).
///
/// - `value`: u64 through `threaded` into a sum;
/// - `ref`: records (the first 1000 of the test feed, cycled) through
///   `threaded_ref` into a counter;
/// - `flat`: the same records through `threaded_flat`;
/// - `process`: u64 in serde frames to a `wire_worker seq` child;
/// - `process-flat`: the records in flat frames to a `worker buses --route
///   NONE` child (decodes and filters each, prints none).
fn count_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(at) = args.iter().position(|a| a == "--count") else {
        return false;
    };
    let flavour = args[at + 1].as_str();
    let n: u64 = args[at + 2].parse().expect("--count FLAVOUR N");
    let records = || {
        let all = feed_records(&feed());
        let hot: Vec<Record> = all[..1000.min(all.len())].to_vec();
        hot
    };
    match flavour {
        "value" => {
            let (sum, out) = Sum::new();
            let mut bridge = threaded::<u64, _>(sum);
            for i in 0..n {
                let _ = bridge.send(black_box(i)).unwrap();
            }
            bridge.close().unwrap();
            assert_eq!(out.load(Ordering::Relaxed), n * (n - 1) / 2);
        }
        "ref" | "flat" => {
            let set = records();
            let out = Arc::new(AtomicU64::new(0));
            let tally = Tally(0, out.clone());
            fn send_all<B: for<'r> Stage<&'r Record>>(mut bridge: B, set: &[Record], n: u64) {
                for i in 0..n as usize {
                    let _ = bridge.send(&set[i % set.len()]).unwrap();
                }
                Lifecycle::close(&mut bridge).unwrap();
            }
            if flavour == "ref" {
                send_all(threaded_ref::<Record, _>(tally), &set, n);
            } else {
                send_all(threaded_flat::<Record, _>(tally), &set, n);
            }
            assert_eq!(out.load(Ordering::Relaxed), n);
        }
        "process" => {
            let out = tempfile::tempfile().unwrap();
            let mut cmd = Command::new(examples::example("wire_worker"));
            cmd.arg("seq").stdout(out.try_clone().unwrap());
            let mut bridge = ProcessBridge::spawn(cmd).unwrap();
            for i in 0..n {
                let _ = bridge.send(black_box(i)).unwrap();
            }
            bridge.close().unwrap();
            let mut s = String::new();
            use std::io::{Read, Seek};
            let mut out = out;
            out.rewind().unwrap();
            out.read_to_string(&mut s).unwrap();
            assert_eq!(s, format!("{n}\n"));
        }
        "process-flat" => {
            let set = records();
            let out = tempfile::tempfile().unwrap();
            let mut bridge = worker_buses(&["--route", "NONE"], out.try_clone().unwrap());
            for i in 0..n as usize {
                let _ = bridge.send(&set[i % set.len()]).unwrap();
            }
            Lifecycle::close(&mut bridge).unwrap();
            assert_eq!(lines_in(out), 0);
        }
        other => panic!("--count: no flavour {other}"),
    }
    true
}
