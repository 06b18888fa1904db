//! The bridges' hot paths allocate nothing per item once warm: records
//! decoded from the wire into one reused record (what the process
//! bridge's worker does), and records encoded onto the wire. Allocations
//! are counted per thread by a global allocator, so tests running in
//! parallel do not disturb each other.

use copipe::bridge::{FrameReader, FrameWriter};
use copipe::xml::Record;

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
