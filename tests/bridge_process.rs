//! The wire and the process bridge, with a real child (the crate's
//! `wire_worker` example; `copipe worker buses` for the CLI's bridge): a
//! million items in order, a child killed mid-stream, a child that
//! fails, a child that stops early, corrupt / oversize / truncated streams
//! fed to the real worker, and `frame_roundtrip` (proptest). After each,
//! the child's pid must be reaped (no `/proc/<pid>` left, not even a
//! zombie).

use copipe::Lifecycle;
use std::io::Write;
use std::process::{Command, Stdio};

use copipe::bridge::{FrameReader, FrameWriter, HEADER_LEN, MAGIC, WIRE_VERSION};
use copipe::{recvfrom, sendto, ErrorKind, Flow, ProcessBridge, Stage};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

const COPIPE: &str = env!("CARGO_BIN_EXE_copipe");

#[path = "common/examples.rs"]
mod examples;

/// The test helper that decodes what the bridge sends (`seq`, `lines`).
fn wire_worker() -> std::path::PathBuf {
    examples::example("wire_worker")
}

fn worker(args: &[&str], stdout: impl Into<Stdio>) -> ProcessBridge {
    let mut cmd = Command::new(wire_worker());
    cmd.args(args).stdout(stdout);
    ProcessBridge::spawn(cmd).expect("wire_worker starts")
}

fn assert_reaped(pid: u32) {
    // A process with this pid whose parent is not us is another one: the
    // pid was freed and reused (pid_max is small; the machine is busy).
    let ours = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // pid (comm) state ppid ...; comm may hold spaces and parentheses.
        let after_comm = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
        after_comm.split_whitespace().nth(1) == Some(&std::process::id().to_string())
    });
    assert!(!ours, "child {pid} is still there (running or a zombie)");
}

fn read_file(f: &tempfile::NamedTempFile) -> String {
    std::fs::read_to_string(f.path()).unwrap()
}

#[test]
fn a_million_items_reach_the_child_in_order() {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut b = worker(&["seq"], out.reopen().unwrap());
    let pid = b.id();
    for i in 0..1_000_000u64 {
        assert_eq!(b.send(i).unwrap(), Flow::Continue);
    }
    b.close().unwrap();
    assert_eq!(
        read_file(&out),
        "1000000\n",
        "the worker counted them all, in order"
    );
    assert_reaped(pid);
}

#[test]
fn lines_through_the_child_are_byte_identical() {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut b = worker(&["lines"], out.reopen().unwrap());
    let mut want = Vec::new();
    for i in 0..20_000u32 {
        let line = format!("line {i} \u{e9}t\u{e9} \u{1F68C}").into_bytes();
        want.extend_from_slice(&line);
        want.push(b'\n');
        assert_eq!(b.send(&line).unwrap(), Flow::Continue);
    }
    // Invalid UTF-8 is carried as bytes.
    assert_eq!(b.send(&b"\xff\xfe raw"[..]).unwrap(), Flow::Continue);
    want.extend_from_slice(b"\xff\xfe raw\n");
    b.close().unwrap();
    assert_eq!(std::fs::read(out.path()).unwrap(), want);
}

#[test]
fn a_child_killed_mid_stream_is_an_error_naming_the_signal() {
    let mut b = worker(&["seq"], Stdio::null());
    let pid = b.id();
    for i in 0..1000u64 {
        assert_eq!(b.send(i).unwrap(), Flow::Continue);
    }
    b.flush().unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Keep sending: the error comes at a send (the pipe breaks, or the
    // buffer check sees the child gone) or, at the latest, at close.
    let mut err = None;
    for i in 1000..50_000_000u64 {
        match b.send(i) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => panic!("a killed child is not a stop"),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("the death is noticed while sending");
    assert!(matches!(err.kind(), ErrorKind::Process(_)), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("was killed by signal 9 (SIGKILL)"),
        "{err}"
    );
    assert!(err.to_string().contains("wire_worker seq"), "{err}");
    assert_reaped(pid);
    assert_eq!(b.send(1u64).unwrap(), Flow::Stop);
    b.close().unwrap();
}

#[test]
fn a_child_that_fails_is_an_error_with_its_exit_status() {
    // Strings where the worker expects u64: the worker's decode fails
    // (on stderr, with its byte offset) and it exits 2.
    let mut b = worker(&["seq"], Stdio::null());
    let pid = b.id();
    let mut res = Ok(Flow::Continue);
    for _ in 0..100_000 {
        res = b.send("not a number");
        if !matches!(res, Ok(Flow::Continue)) {
            break;
        }
    }
    let err = match res {
        Err(e) => e,
        Ok(_) => b.close().unwrap_err(),
    };
    assert!(err.to_string().ends_with("exited with status 2"), "{err}");
    assert_reaped(pid);
}

#[test]
fn a_stop_in_the_child_is_a_stop_in_the_parent() {
    // The worker prints into `head -1`, which exits after one line: the
    // worker's printer sees a broken pipe, stops, and the worker exits 0
    // before reading everything.
    let mut cmd = Command::new("sh");
    let worker = wire_worker();
    cmd.args(["-c", &format!("'{}' lines | head -1", worker.display())])
        .stdout(Stdio::null());
    let mut b = ProcessBridge::spawn(cmd).unwrap();
    let pid = b.id();
    let mut stopped = false;
    for i in 0..50_000_000u64 {
        if b.send(format!("line {i}").as_bytes()).unwrap() == Flow::Stop {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "the stop reached the parent");
    b.close().unwrap();
    assert_reaped(pid);
}

#[test]
fn dropping_without_close_kills_and_reaps_the_child() {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut b = worker(&["seq"], out.reopen().unwrap());
    let pid = b.id();
    for i in 0..10_000u64 {
        assert_eq!(b.send(i).unwrap(), Flow::Continue);
    }
    drop(b);
    assert_reaped(pid);
    assert_eq!(read_file(&out), "", "an abandoned stream is not completed");
}

#[test]
fn the_parents_death_ends_the_child() {
    // The parent's death closes the child's stdin; here the test plays the
    // parent and closes it at a frame boundary.
    let mut child = Command::new(wire_worker())
        .arg("seq")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = FrameWriter::new(child.stdin.take().unwrap());
    for i in 0..3u64 {
        w.write(&i).unwrap();
    }
    drop(w.into_inner().unwrap());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"3\n");
}

fn header() -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&WIRE_VERSION.to_le_bytes());
    assert_eq!(h.len(), HEADER_LEN);
    h
}

fn frames(values: &[u64]) -> Vec<u8> {
    let mut w = sendto(Vec::new());
    for v in values {
        assert_eq!(w.send(*v).unwrap(), Flow::Continue);
    }
    w.into_inner().unwrap()
}

// Offsets: the header is 8 bytes; a frame of a small u64 is 4 + 1 bytes,
// so frames start at 8, 13, 18, ...

/// Bad streams fed to the real worker: `(name, bytes, byte offset named in
/// the error, words the message must contain, items counted before it)`.
macro_rules! bad_stream {
    ($($name:ident: $bytes:expr => $offset:expr, $words:expr, $count:expr;)*) => {$(
        #[test]
        fn $name() {
            let mut child = Command::new(wire_worker())
                .arg("seq")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let bytes: Vec<u8> = $bytes;
            stdin.write_all(&bytes).unwrap();
            drop(stdin);
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains(&format!("decode error at byte offset {}", $offset)),
                "{stderr}"
            );
            assert!(stderr.contains($words), "{stderr}");
            // What decoded before the bad frame was delivered and closed.
            assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\n", $count));
        }
    )*};
}

bad_stream! {
    bad_magic: b"<?xml version=\"1.0\"?>".to_vec() => 0, "not a copipe wire stream", 0;
    wrong_version: [&MAGIC[..], &[9, 0]].concat() => 6, "wire version 9", 0;
    truncated_header: MAGIC[..4].to_vec() => 0, "inside the 8-byte header", 0;
    oversize_length_prefix: [frames(&[0, 1]), u32::MAX.to_le_bytes().to_vec()].concat()
        => 18, "over the maximum", 2;
    truncated_length_prefix: [frames(&[0]), vec![1, 0]].concat() => 13, "length prefix", 1;
    truncated_final_frame: {
        let mut b = frames(&[0, 1, 1 << 40]);
        b.pop();
        b
    } => 18, "inside a frame", 2;
    corrupt_frame_body: [header(), vec![1, 0, 0, 0, 0xFF]].concat() => 8, "does not decode", 0;
    leftover_bytes_in_frame: [header(), vec![2, 0, 0, 0, 0, 0]].concat() => 8, "left over", 0;
}

/// A record the size and shape of a bus record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bus {
    id: String,
    route: String,
    direction: String,
    latitude: f64,
    longitude: f64,
    fields: Vec<(String, String)>,
    note: Option<Vec<u8>>,
}

fn bus() -> impl Strategy<Value = Bus> {
    (
        "[0-9]{1,5}",
        "[0-9A-Z]{1,3}",
        ".{0,20}",
        any::<f64>(),
        -180.0f64..180.0,
        proptest::collection::vec((".{0,8}", ".{0,12}"), 0..6),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
    )
        .prop_map(
            |(id, route, direction, latitude, longitude, fields, note)| Bus {
                id,
                route,
                direction,
                latitude,
                longitude,
                fields,
                note,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Records survive the wire unchanged and in order, read back in
    /// chunks of any size; NaN compares by bits.
    #[test]
    fn frame_roundtrip(records in proptest::collection::vec(bus(), 0..50), chunk in 1usize..64) {
        let mut wire = sendto(Vec::new());
        for r in &records {
            prop_assert_eq!(wire.send(r).unwrap(), Flow::Continue);
        }
        let bytes = wire.into_inner().unwrap();

        let mut got = copipe::sinks::Collect::<Bus>::new();
        recvfrom(Chunked(&bytes, chunk), &mut got).unwrap();
        prop_assert!(got.is_closed());
        let got = got.into_items();
        prop_assert_eq!(got.len(), records.len());
        for (g, r) in got.iter().zip(&records) {
            prop_assert_eq!(g.latitude.to_bits(), r.latitude.to_bits());
            prop_assert_eq!(&g.id, &r.id);
            prop_assert_eq!(&g.fields, &r.fields);
            prop_assert_eq!(&g.note, &r.note);
            prop_assert_eq!(&g.direction, &r.direction);
        }
    }

    /// Any bytes after a valid header give values, a clean end, or a
    /// decode error: never a panic, and the reader's buffer stays bounded
    /// by what arrived.
    #[test]
    fn garbage_is_an_error_not_a_panic(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let bytes = [header(), tail].concat();
        let mut r = FrameReader::new(&bytes[..]);
        loop {
            match r.read::<Bus>() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    prop_assert!(matches!(e.kind(), ErrorKind::Decode { .. }), "{:?}", e);
                    break;
                }
            }
        }
    }
}

// ---- `copipe buses --bridge thread|process`: the real binary -------------

fn buses_feed() -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new(COPIPE)
        .args(["gen", "buses", "--mb", "1", "-o"])
        .arg(f.path())
        .status()
        .unwrap();
    assert!(status.success());
    f
}

fn buses(args: &[&str], bridge: &str) -> std::process::Output {
    Command::new(COPIPE)
        .arg("buses")
        .args(args)
        .args(["--bridge", bridge])
        .output()
        .unwrap()
}

#[test]
fn buses_through_either_bridge_are_byte_identical() {
    let feed = buses_feed();
    let path = feed.path().to_str().unwrap();
    for args in [
        vec![path, "--route", "22", "--direction", "North Bound"],
        vec![path, "--format", "json"],
        vec![path, "--parser", "sax", "--where", "route=9"],
        vec![path, "--parser", "iterparse", "--route", "X9"],
        vec![], // the built-in sample
    ] {
        let inline = buses(&args, "none");
        assert!(inline.status.success());
        for bridge in ["thread", "process"] {
            let out = buses(&args, bridge);
            assert!(out.status.success(), "{args:?} {bridge}: {out:?}");
            assert!(
                out.stdout == inline.stdout,
                "{args:?} {bridge}: outputs differ"
            );
            assert_eq!(out.stderr, inline.stderr, "{args:?} {bridge}");
        }
    }
}

#[test]
fn malformed_xml_through_either_bridge_outputs_what_came_before_and_fails() {
    let feed = buses_feed();
    let mut bytes = std::fs::read(feed.path()).unwrap();
    bytes.truncate(bytes.len() / 2);
    bytes.extend_from_slice(b"<bus><route>22</bus>");
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), &bytes).unwrap();
    let path = bad.path().to_str().unwrap();
    let inline = buses(&[path], "none");
    assert_eq!(inline.status.code(), Some(2));
    assert!(!inline.stdout.is_empty());
    for bridge in ["thread", "process"] {
        let out = buses(&[path], bridge);
        assert_eq!(out.status.code(), Some(2), "{bridge}");
        assert!(out.stdout == inline.stdout, "{bridge}: outputs differ");
        assert_eq!(out.stderr, inline.stderr, "{bridge}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Real bus records (names and values of any text, fields set in any
    /// order, repeated names replaced) survive the wire unchanged, through
    /// both `recvfrom` (owned) and `recvfrom_ref` (one reused record).
    #[test]
    fn record_frame_roundtrip(
        records in proptest::collection::vec(
            proptest::collection::vec(("[a-z]{1,6}", ".{0,16}"), 0..12),
            0..30,
        )
    ) {
        use copipe::xml::Record;
        let built: Vec<Record> = records
            .iter()
            .map(|fields| {
                let mut r = Record::new();
                for (k, v) in fields {
                    r.set(k, v);
                }
                r
            })
            .collect();
        let mut wire = sendto(Vec::new());
        for r in &built {
            prop_assert_eq!(wire.send(r).unwrap(), Flow::Continue);
        }
        let bytes = wire.into_inner().unwrap();

        let fields = |r: &Record| -> Vec<(String, String)> {
            r.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let mut owned = copipe::sinks::Collect::<Record>::new();
        recvfrom(&bytes[..], &mut owned).unwrap();
        let got: Vec<_> = owned.items().iter().map(fields).collect();
        let want: Vec<_> = built.iter().map(fields).collect();
        prop_assert_eq!(&got, &want);

        struct Fields(Vec<Vec<(String, String)>>);
        impl Stage<&Record> for Fields {
            fn send(&mut self, r: &Record) -> copipe::Result<Flow> {
                self.0.push(r.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
                Ok(Flow::Continue)
            }
        }

        impl Lifecycle for Fields {
            fn flush(&mut self) -> copipe::Result<()> {
                Ok(())
            }
            fn close(&mut self) -> copipe::Result<()> {
                Ok(())
            }
        }

        let mut lent = Fields(Vec::new());
        copipe::bridge::recvfrom_ref::<Record, _, _>(&bytes[..], &mut lent).unwrap();
        prop_assert_eq!(&lent.0, &want);
    }
}

#[test]
fn records_whose_values_share_text_or_were_replaced_cross_the_wire() {
    use copipe::xml::{expat_parse, records, Record, XmlInput};
    // <a> holds <b>'s text and its own; `id` is set twice.
    let xml = b"<bus><a><b>x</b>y</a><id>1</id><c>z</c><id>2</id></bus>";
    let mut got = copipe::sinks::Collect::<Record>::new();
    expat_parse(
        XmlInput::from_bytes(xml),
        records("bus", copipe::StageExt::with_owned(&mut got)),
    )
    .unwrap();
    let built = got.into_items();
    assert_eq!(
        built[0].iter().collect::<Vec<_>>(),
        [("b", "x"), ("a", "xy"), ("id", "2"), ("c", "z")]
    );
    let mut wire = sendto(Vec::new());
    assert_eq!(wire.send(&built[0]).unwrap(), Flow::Continue);
    let replaced = Record::from_iter([("a", "1"), ("b", "2"), ("a", "3")]);
    assert_eq!(wire.send(&replaced).unwrap(), Flow::Continue);
    let bytes = wire.into_inner().unwrap();
    let mut back = copipe::sinks::Collect::<Record>::new();
    recvfrom(&bytes[..], &mut back).unwrap();
    let back = back.into_items();
    assert_eq!(back[0], built[0]);
    assert_eq!(back[1].iter().collect::<Vec<_>>(), [("a", "3"), ("b", "2")]);
}

#[path = "common/chunked.rs"]
mod chunked;
use chunked::Chunked;
