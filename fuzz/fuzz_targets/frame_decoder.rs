//! Fuzzes the wire's frame decoder: any bytes must give values, a clean
//! end, or a `Decode`/I/O error, never a panic, a hang or a huge
//! allocation. To check the last, run with a small AddressSanitizer
//! quarantine, or the freed memory it holds back (256 MB by default)
//! counts against the limit:
//!
//! ```text
//! ASAN_OPTIONS=quarantine_size_mb=8 cargo +nightly fuzz run frame_decoder -- -rss_limit_mb=256
//! ```
//!
//! Frames are decoded as a serde struct, as [`Record`]s (their flat
//! binary form), and as flat frames of records (`recvfrom_flat`, what the
//! process bridge sends records in: a byte region and a text region, the
//! text checked as UTF-8 once per frame). The input is used twice: as a whole stream (header included, so the
//! fuzzer can reach the header checks), and after a valid header (so it
//! spends its time on length prefixes and frame bodies).

#![no_main]

use copipe::bridge::{recvfrom_flat, FrameReader, MAGIC, WIRE_VERSION};
use copipe::{from_fn, Flow};
use copipe::xml::Record;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// A record shaped like a bus record, with the kinds of fields a decoder
/// can be fooled by: strings, floats, a sequence, an option, an enum.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Bus {
    id: String,
    route: String,
    latitude: f64,
    fields: Vec<(String, String)>,
    note: Option<Vec<u8>>,
    kind: Kind,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
enum Kind {
    Bus,
    Train { line: u32 },
}

fn drain(bytes: &[u8]) {
    let mut frames = FrameReader::new(bytes);
    while let Ok(Some(_)) = frames.read::<Bus>() {}
    // Records in their flat form, decoded into one reused record, whose
    // fields must then be readable without a panic.
    let mut frames = FrameReader::new(bytes);
    let mut record = Record::new();
    while let Ok(true) = frames.read_into(&mut record) {
        for (name, value) in record.iter() {
            assert_eq!(record.get(name), Some(value));
        }
    }
    // Flat frames of records, rebuilt into one reused record.
    let _ = recvfrom_flat::<Record, _, _>(
        bytes,
        from_fn(|record: &Record| {
            for (name, value) in record.iter() {
                assert_eq!(record.get(name), Some(value));
            }
            Ok(Flow::Continue)
        }),
    );
}

fuzz_target!(|data: &[u8]| {
    drain(data);
    let mut stream = MAGIC.to_vec();
    stream.extend_from_slice(&WIRE_VERSION.to_le_bytes());
    stream.extend_from_slice(data);
    drain(&stream);
});
