//! The bridges' hot paths allocate nothing per item once warm: records
//! decoded from the wire into one reused record (what the process
//! bridge's worker does), and records encoded onto the wire; records
//! flattened into a batch's bytes and rebuilt from them (a `threaded_flat`
//! bridge's producer and worker), and sent in flat frames and read back
//! (the process bridge's parent and `copipe worker buses`). Allocations
//! are counted per thread by a global allocator, so tests running in
//! parallel do not disturb each other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use copipe::bridge::{recvfrom_flat, Flat, FlatBuf, FrameReader, FrameWriter, ThreadBridgeBuilder};
use copipe::xml::Record;
use copipe::{Flow, Lifecycle, Result, Stage};

#[path = "common/alloc.rs"]
mod alloc;
use alloc::allocations as allocs;

#[global_allocator]
static GLOBAL: alloc::CountingAlloc = alloc::CountingAlloc;

fn bus(i: usize) -> Record {
    Record::from_iter([
        ("id", format!("{}", 1000 + i).as_str()),
        ("route", ["22", "9", "X9"][i % 3]),
        ("direction", "North Bound"),
        ("latitude", "41.904886736427905"),
        ("longitude", "-87.81447107333047"),
        ("finalStop", "Paulina & Howard Terminal"),
    ])
}

#[test]
fn records_decode_into_one_record_without_allocating() {
    let records: Vec<Record> = (0..1000).map(bus).collect();
    let mut w = FrameWriter::new(Vec::with_capacity(1 << 20));
    for r in &records {
        w.write(r).unwrap();
    }
    let bytes = w.into_inner().unwrap();

    let mut frames = FrameReader::new(&bytes[..]);
    let mut place = Record::new();
    // Warm up: the reader's buffer and the record's buffers grow.
    for r in &records[..10] {
        assert!(frames.read_into(&mut place).unwrap());
        assert_eq!(&place, r);
    }
    let before = allocs();
    for r in &records[10..] {
        assert!(frames.read_into(&mut place).unwrap());
        assert_eq!(place.get("id"), r.get("id"));
    }
    assert!(!frames.read_into(&mut place).unwrap());
    assert_eq!(
        allocs() - before,
        0,
        "allocations while decoding 990 records"
    );
}

#[test]
fn records_encode_without_allocating() {
    let records: Vec<Record> = (0..1000).map(bus).collect();
    let mut w = FrameWriter::new(std::io::sink());
    w.write(&records[0]).unwrap();
    let before = allocs();
    for r in &records {
        w.write(r).unwrap();
    }
    w.flush().unwrap();
    assert_eq!(
        allocs() - before,
        0,
        "allocations while encoding 1000 records"
    );
}

#[test]
fn records_flatten_and_unflatten_without_allocating() {
    let records: Vec<Record> = (0..1000).map(bus).collect();
    // Room for every batch: the bridge's batch buffers keep their memory.
    let mut out = FlatBuf::with_capacity(1 << 20, 1 << 20);
    let mut place = Record::new();
    // Warm up: the record's buffers grow.
    let mut memo = Default::default();
    records[0].flatten(&mut memo, &mut out);
    Record::unflatten(&mut out.src(), &mut place).unwrap();
    out.clear();

    let before = allocs();
    for batch in records.chunks(256) {
        let mut memo = Default::default();
        out.clear();
        for r in batch {
            r.flatten(&mut memo, &mut out);
        }
        let mut src = out.src();
        for r in batch {
            let got = Record::unflatten(&mut src, &mut place).unwrap();
            assert_eq!(got.get("id"), r.get("id"));
        }
    }
    assert_eq!(
        allocs() - before,
        0,
        "allocations while flattening and rebuilding 1000 records"
    );
}

/// Counts its records and, from the worker thread, the allocations that
/// thread makes from record `warm` on.
struct WorkerAllocs {
    seen: Arc<AtomicU64>,
    warm: u64,
    at_warm: u64,
    out: Arc<AtomicU64>,
}

impl Stage<&Record> for WorkerAllocs {
    fn send(&mut self, r: &Record) -> Result<Flow> {
        let seen = self.seen.load(Ordering::SeqCst) + 1;
        if seen == self.warm {
            self.at_warm = allocs();
        }
        assert!(r.get("id").is_some());
        self.seen.store(seen, Ordering::SeqCst);
        Ok(Flow::Continue)
    }
}

impl Lifecycle for WorkerAllocs {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        self.out.store(allocs() - self.at_warm, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_flat_thread_bridge_worker_allocates_nothing_once_warm() {
    // The worker rebuilds every record into one reused record. (The
    // producer's batch buffers are recycled, at most `capacity + 3` of
    // them, and grow only while the bridge warms up, as in `ByRef` mode:
    // how many are made depends on how far the worker falls behind, so
    // they are not counted here; `flatten` itself is, above.)
    let records: Vec<Record> = (0..1000).map(bus).collect();
    let (seen, out) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(u64::MAX)),
    );
    let mut bridge = ThreadBridgeBuilder::new()
        .batch_size(64)
        .spawn_flat::<Record, _>(WorkerAllocs {
            seen: seen.clone(),
            warm: 1001,
            at_warm: 0,
            out: out.clone(),
        })
        .unwrap();
    for r in &records {
        let _ = bridge.send(r).unwrap();
    }
    // Warm-up ends with the worker waiting for a batch: the channel
    // allocates once, the first time its receiver waits (the waker's list
    // of waiting threads). The worker gets there microseconds after the
    // last record; the sleep leaves it ample time even on a loaded machine.
    bridge.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while seen.load(Ordering::SeqCst) < 1000 {
        assert!(std::time::Instant::now() < deadline, "the worker is stuck");
        std::thread::yield_now();
    }
    std::thread::sleep(std::time::Duration::from_millis(250));
    for _ in 0..19 {
        for r in &records {
            let _ = bridge.send(r).unwrap();
        }
    }
    bridge.close().unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 20_000);
    assert_eq!(
        out.load(Ordering::SeqCst),
        0,
        "worker allocations for 19000 records"
    );
}

#[test]
fn records_in_flat_frames_encode_and_decode_without_allocating() {
    let records: Vec<Record> = (0..1000).map(bus).collect();
    let mut w = FrameWriter::new(Vec::with_capacity(4 << 20));
    let mut memo = Default::default();
    for r in &records[..10] {
        w.write_flat::<Record>(r, &mut memo).unwrap();
    }
    let before = allocs();
    for _ in 0..10 {
        for r in &records {
            w.write_flat::<Record>(r, &mut memo).unwrap();
        }
    }
    assert_eq!(
        allocs() - before,
        0,
        "allocations while writing 10000 records in flat frames"
    );
    let bytes = w.into_inner().unwrap();

    // The reader runs on this thread: count from inside the target, from
    // the 1001st record (the reader's buffer and the record are grown).
    let (seen, out) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(u64::MAX)),
    );
    recvfrom_flat::<Record, _, _>(
        &bytes[..],
        WorkerAllocs {
            seen: seen.clone(),
            warm: 1001,
            at_warm: 0,
            out: out.clone(),
        },
    )
    .unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 10_010);
    assert_eq!(
        out.load(Ordering::SeqCst),
        0,
        "allocations while reading 9009 records from flat frames"
    );
}
