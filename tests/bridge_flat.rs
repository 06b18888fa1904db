//! The flat form of items ([`Flat`]) through `threaded_flat` and through
//! flat wire frames (`FrameWriter::write_flat`, `recvfrom_flat`, what the
//! process bridge sends records in): records survive it unchanged and in
//! order, whatever their names, values, shapes and batch sizes, including
//! records built by `records` on a template of names; any bytes decode to
//! items or an error (with a byte offset, on the wire), never a panic,
//! leaving a record that is safe to use.

use copipe::bridge::{
    recvfrom_flat, Flat, FlatBuf, FlatSrc, FrameWriter, ThreadBridgeBuilder, HEADER_LEN,
};
use copipe::xml::{expat_parse, records, Record, XmlInput};
use copipe::{from_fn, Flow, Stage};
use proptest::prelude::*;

type Fields = Vec<(String, String)>;

fn fields(r: &Record) -> Fields {
    r.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Collects the fields of the records it is lent into `got`.
fn gather(got: std::sync::Arc<std::sync::Mutex<Vec<Fields>>>) -> impl for<'a> Stage<&'a Record> {
    from_fn(move |r: &Record| {
        got.lock().unwrap().push(fields(r));
        Ok(Flow::Continue)
    })
}

/// Records through a `threaded_flat` bridge of batches of `batch`.
fn through_bridge(built: &[Record], batch: usize) -> Vec<Fields> {
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut b = ThreadBridgeBuilder::new()
        .batch_size(batch)
        .spawn_flat::<Record, _>(gather(got.clone()))
        .unwrap();
    for r in built {
        assert_eq!(b.send(r).unwrap(), Flow::Continue);
    }
    b.close().unwrap();
    let got = got.lock().unwrap().clone();
    got
}

/// Records made of `(name, value)` lists, repeated names replacing values.
fn build(lists: &[Fields]) -> Vec<Record> {
    lists
        .iter()
        .map(|list| {
            let mut r = Record::new();
            for (k, v) in list {
                r.set(k, v);
            }
            r
        })
        .collect()
}

/// Field lists drawn mostly from a few shapes (so records share names with
/// the one before, as in a feed), sometimes of any names.
fn field_lists() -> impl Strategy<Value = Vec<Fields>> {
    let shapes: Vec<Vec<&'static str>> = vec![
        vec!["id", "route", "direction"],
        vec!["route", "id"],
        vec!["id", "route", "direction", "é"],
        vec![],
    ];
    let shaped =
        (0..shapes.len(), proptest::collection::vec(".{0,12}", 4)).prop_map(move |(s, values)| {
            shapes[s]
                .iter()
                .zip(values)
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Fields>()
        });
    let any = proptest::collection::vec((".{0,6}", ".{0,16}"), 0..10);
    proptest::collection::vec(prop_oneof![3 => shaped, 1 => any], 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Records cross a flat bridge unchanged and in order, count in ==
    /// count out, for any batch size.
    #[test]
    fn records_round_trip_through_a_flat_bridge(lists in field_lists(), batch in 1usize..8) {
        let built = build(&lists);
        let want: Vec<Fields> = built.iter().map(fields).collect();
        prop_assert_eq!(through_bridge(&built, batch), want);
    }

    /// The same by hand: batches flattened with a fresh memo each, all
    /// read back into one reused record, every byte used.
    #[test]
    fn records_round_trip_through_flat_bytes(lists in field_lists(), batch in 1usize..8) {
        let built = build(&lists);
        let mut place = Record::new();
        for chunk in built.chunks(batch) {
            let mut out = FlatBuf::new();
            let mut memo = Default::default();
            for r in chunk {
                r.flatten(&mut memo, &mut out);
            }
            let mut src = out.src();
            for r in chunk {
                let got = Record::unflatten(&mut src, &mut place).unwrap();
                prop_assert_eq!(fields(got), fields(r));
            }
            prop_assert!(src.is_empty());
        }
    }

    /// Records built by `records` from XML (names kept from the record
    /// before, laid anywhere in its names buffer) cross a flat bridge
    /// exactly as they arrive inline.
    #[test]
    fn parsed_records_cross_a_flat_bridge_as_inline(
        buses in proptest::collection::vec(
            proptest::collection::vec(("[a-c]{1,2}", "[a-z0-9 é]{0,8}"), 0..6),
            0..30,
        ),
        batch in 1usize..6,
    ) {
        let mut xml = String::from("<buses>");
        for bus in &buses {
            xml.push_str("<bus>");
            for (k, v) in bus {
                xml.push_str(&format!("<{k}>{v}</{k}>"));
            }
            xml.push_str("</bus>");
        }
        xml.push_str("</buses>");
        let inline = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        expat_parse(XmlInput::from_bytes(xml.as_bytes()), records("bus", gather(inline.clone())))
            .unwrap();
        let flat = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let bridge = ThreadBridgeBuilder::new()
            .batch_size(batch)
            .spawn_flat::<Record, _>(gather(flat.clone()))
            .unwrap();
        expat_parse(XmlInput::from_bytes(xml.as_bytes()), records("bus", bridge)).unwrap();
        let (inline, flat) = (inline.lock().unwrap().clone(), flat.lock().unwrap().clone());
        prop_assert_eq!(inline.len(), buses.len());
        prop_assert_eq!(flat, inline);
    }

    /// Records cross the wire in flat frames unchanged and in order, read
    /// back in chunks of any size, into one reused record.
    #[test]
    fn records_round_trip_through_flat_frames(lists in field_lists(), chunk in 1usize..64) {
        let built = build(&lists);
        let mut w = FrameWriter::new(Vec::new());
        let mut memo = Default::default();
        for r in &built {
            w.write_flat::<Record>(r, &mut memo).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        recvfrom_flat::<Record, _, _>(Chunked(&bytes, chunk), gather(got.clone())).unwrap();
        let want: Vec<Fields> = built.iter().map(fields).collect();
        prop_assert_eq!(got.lock().unwrap().clone(), want);
    }

    /// Any bytes after a valid header, or a valid stream of flat frames
    /// with a byte changed: records and a clean end, or a decode error
    /// with a byte offset inside the stream; never a panic.
    #[test]
    fn bad_flat_frames_are_decode_errors(
        lists in field_lists(),
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
        flip in any::<(usize, u8)>(),
    ) {
        let built = build(&lists);
        let mut w = FrameWriter::new(Vec::new());
        let mut memo = Default::default();
        for r in &built {
            w.write_flat::<Record>(r, &mut memo).unwrap();
        }
        let valid = w.into_inner().unwrap();
        let mut flipped = valid.clone();
        if flipped.len() > HEADER_LEN {
            let at = HEADER_LEN + flip.0 % (flipped.len() - HEADER_LEN);
            flipped[at] ^= flip.1.max(1);
        }
        let mut garbled = valid[..HEADER_LEN.min(valid.len())].to_vec();
        garbled.extend_from_slice(&garbage);
        for input in [garbled, flipped] {
            let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            match recvfrom_flat::<Record, _, _>(&input[..], gather(got.clone())) {
                Ok(()) => {}
                Err(e) => match e.kind() {
                    copipe::ErrorKind::Decode { byte_offset, .. } => {
                        prop_assert!(*byte_offset <= input.len() as u64, "{e}");
                    }
                    other => prop_assert!(false, "not a decode error: {other:?}"),
                },
            }
        }
    }

    /// Any bytes, or a valid batch with a byte changed or cut short, give
    /// records or an error: never a panic, and the record read into stays
    /// safe to use (empty after an error).
    #[test]
    fn bad_bytes_are_an_error_not_a_panic(
        lists in field_lists(),
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
        flip in any::<(usize, u8)>(),
        cut in any::<usize>(),
    ) {
        let built = build(&lists);
        let mut valid = FlatBuf::new();
        let mut memo = Default::default();
        for r in &built {
            r.flatten(&mut memo, &mut valid);
        }
        let (bytes, text) = (valid.bytes(), valid.text());
        let mut flipped = bytes.to_vec();
        if !flipped.is_empty() {
            let at = flip.0 % flipped.len();
            flipped[at] ^= flip.1.max(1);
        }
        let garbage_text = String::from_utf8_lossy(&garbage).into_owned();
        // Cut anywhere in the text too: on a character boundary.
        let mut text_cut = cut % (text.len() + 1);
        while !text.is_char_boundary(text_cut) {
            text_cut -= 1;
        }
        let inputs = [
            FlatSrc::new(&garbage, ""),
            FlatSrc::new(&garbage, &garbage_text),
            FlatSrc::new(&garbage, text),
            FlatSrc::new(&flipped, text),
            FlatSrc::new(&bytes[..cut % (bytes.len() + 1)], text),
            FlatSrc::new(bytes, &text[..text_cut]),
        ];
        for input in inputs {
            let mut place = Record::new();
            let mut src = input;
            let mut n = 0;
            while !src.is_empty() && n < 1000 {
                let before = src.bytes().len() + src.text().len();
                match Record::unflatten(&mut src, &mut place) {
                    Ok(r) => {
                        // Every field can be read and looked up.
                        for (k, v) in r.iter() {
                            prop_assert!(r.get(k).is_some());
                            let _ = v.len();
                        }
                        prop_assert!(src.bytes().len() + src.text().len() < before);
                    }
                    Err(_) => {
                        prop_assert!(place.is_empty());
                        break;
                    }
                }
                n += 1;
            }
            let mut s = input;
            while <str>::unflatten(&mut s, &mut ()).is_ok() && !s.is_empty() {}
        }
    }
}

#[path = "common/chunked.rs"]
mod chunked;
use chunked::Chunked;

/// The wire bytes of `records` in flat frames.
fn flat_stream(records: &[Record]) -> Vec<u8> {
    let mut w = FrameWriter::new(Vec::new());
    let mut memo = Default::default();
    for r in records {
        w.write_flat::<Record>(r, &mut memo).unwrap();
    }
    w.into_inner().unwrap()
}

#[test]
fn flat_frames_hold_many_records_and_carry_names_once_a_frame() {
    let records: Vec<Record> = (0..3000)
        .map(|i| Record::from_iter([("id", i.to_string()), ("route", "22".to_string())]))
        .collect();
    let bytes = flat_stream(&records);
    // Per record: a shape byte, two value lengths, the values.
    let values: usize = records
        .iter()
        .map(|r| r.iter().map(|(_, v)| v.len()).sum::<usize>())
        .sum();
    assert!(
        bytes.len() < HEADER_LEN + 3 * records.len() + values + 200,
        "{}",
        bytes.len()
    );
    let mut got = copipe::sinks::Collect::<Record>::new();
    recvfrom_flat::<Record, _, _>(&bytes[..], copipe::StageExt::with_owned(&mut got)).unwrap();
    assert!(got.is_closed());
    assert_eq!(got.into_items(), records);
}

#[test]
fn a_flat_frame_that_claims_more_items_than_it_holds_is_an_error_at_its_offset() {
    let records: Vec<Record> = (0..3)
        .map(|i| Record::from_iter([("id", i.to_string())]))
        .collect();
    let mut bytes = flat_stream(&records);
    // The count, after the header and the frame's length: 3 -> 4.
    assert_eq!(bytes[HEADER_LEN + 4], 3);
    bytes[HEADER_LEN + 4] = 4;
    let err = recvfrom_flat::<Record, _, _>(&bytes[..], copipe::sinks::Null::new()).unwrap_err();
    match err.kind() {
        copipe::ErrorKind::Decode {
            byte_offset,
            message,
        } => {
            // The end of the frame's byte region (its text follows).
            let at = HEADER_LEN + 8;
            let bytes_len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
            assert_eq!(*byte_offset, (at + 4) as u64 + bytes_len, "{message}");
            assert!(*byte_offset < bytes.len() as u64, "{message}");
            assert!(message.contains("flat frame"), "{message}");
        }
        other => panic!("not a decode error: {other:?}"),
    }
    // And one that holds more than it claims: the bytes left over.
    bytes[HEADER_LEN + 4] = 2;
    let err = recvfrom_flat::<Record, _, _>(&bytes[..], copipe::sinks::Null::new()).unwrap_err();
    assert!(err.to_string().contains("left over"), "{err}");
}

#[test]
fn an_item_over_the_maximum_frame_is_an_error_and_the_items_before_it_stay() {
    let mut w = FrameWriter::new(Vec::new()).with_max_frame(64);
    let mut memo = ();
    w.write_flat::<str>("small", &mut memo).unwrap();
    let big = "x".repeat(100);
    let err = w.write_flat::<str>(&big, &mut memo).unwrap_err();
    assert!(
        err.to_string().contains("over the maximum frame size"),
        "{err}"
    );
    w.write_flat::<str>("after", &mut memo).unwrap();
    let bytes = w.into_inner().unwrap();
    let mut got = copipe::sinks::Collect::<String>::new();
    recvfrom_flat::<str, _, _>(
        &bytes[..],
        copipe::StageExt::with_map(&mut got, |s: &str| s.to_string()),
    )
    .unwrap();
    assert_eq!(got.items(), ["small", "after"]);
}

#[test]
fn a_bad_batch_is_a_decode_error_at_close_with_its_byte_offset() {
    // A type whose flat form is wrong on purpose: the worker's error
    // reaches the producer as a decode error with the offset in the batch.
    #[derive(Default)]
    struct Liar;
    impl Flat for Liar {
        type Place = ();
        type Memo = ();
        fn flatten(&self, _: &mut (), out: &mut FlatBuf) {
            out.bytes_mut().extend_from_slice(&[3, b'a']); // claims 3 bytes, has 1
        }
        fn unflatten<'p, 'b: 'p>(
            src: &mut FlatSrc<'b>,
            _: &'p mut (),
        ) -> std::result::Result<&'p Liar, copipe::bridge::FlatError> {
            <[u8]>::unflatten(src, &mut ()).map(|_| &Liar)
        }
    }
    let mut b = ThreadBridgeBuilder::new()
        .batch_size(4)
        .spawn_flat::<Liar, _>(copipe::from_fn(|_: &Liar| Ok(Flow::Continue)))
        .unwrap();
    let _ = b.send(&Liar).unwrap();
    let err = b.close().unwrap_err();
    match err.kind() {
        copipe::ErrorKind::Decode {
            byte_offset,
            message,
        } => {
            assert_eq!(*byte_offset, 1, "{message}");
            assert!(message.contains("past the end"), "{message}");
        }
        other => panic!("not a decode error: {other:?}"),
    }
}
