//! Fuzzes the XML source: any bytes must be accepted or rejected, never
//! panic or hang, and every way of parsing them must agree. The three
//! parsers (expat-, SAX- and iterparse-style) read the input from memory
//! and as a stream through a small read buffer (its size taken from the
//! first byte, 1 to 8 bytes), and the parallel parse reads it cut into
//! tiny chunks; all of them must give the same error (message, line,
//! column and byte offset) or all accept it. Input that is UTF-8 is also
//! parsed as UTF-16 (see below).
//!
//! ```text
//! RUSTC_BOOTSTRAP=1 cargo fuzz run xml_source -- -max_len=4096
//! ```

#![no_main]

use copipe::sinks::Count;
use copipe::xml::{expat_parse, iterparse, sax_parse, EventHandler, ParallelParse, XmlInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, doc)) = data.split_first() else {
        return;
    };
    let want = agree(first, doc);
    // The same text in UTF-16 (little endian, with a byte order mark):
    // every path agrees too, and when the error is the same one, its byte
    // offset is the UTF-8 one's in the input, counted apart here (two
    // bytes of mark, two per UTF-16 unit before it), line and column
    // unchanged.
    if let Ok(text) = std::str::from_utf8(doc) {
        if text.starts_with('\u{feff}') {
            return;
        }
        let mut u16doc = vec![0xFF, 0xFE];
        u16doc.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let got = agree(first, &u16doc);
        if let (Some(want), Some(got)) = (want, got) {
            let (w, g) = (split(&want), split(&got));
            if w.0 == g.0 && w.2 == g.2 {
                let at = (w.1 as usize).min(text.len());
                if text.is_char_boundary(at) && !w.2.contains("byte offset") {
                    let units = text[..at].encode_utf16().count() as u64;
                    assert_eq!(g.1, 2 + 2 * units, "UTF-16: {got} against UTF-8: {want}");
                }
            }
        }
    }
});

/// `doc.xml:LINE:COL (byte offset N): MESSAGE` as (`LINE:COL`, N,
/// MESSAGE).
fn split(e: &str) -> (&str, u64, &str) {
    let (pos, rest) = e.split_once(" (byte offset ").unwrap_or((e, ""));
    let (n, msg) = rest.split_once("): ").unwrap_or(("0", rest));
    (pos, n.parse().unwrap_or(0), msg)
}

/// The error all paths give for `doc` (asserted to be the same), if any.
fn agree(first: u8, doc: &[u8]) -> Option<String> {
    let buffer = 1 + usize::from(first % 8);
    let err = |r: copipe::Result<()>| r.err().map(|e| e.to_string());
    let mem = || XmlInput::from_bytes(doc).with_path("doc.xml");
    let stream = || {
        XmlInput::from_reader(doc)
            .buffer_capacity(buffer)
            .with_path("doc.xml")
    };
    let want = err(expat_parse(mem(), Count::new()));
    let others = [
        ("expat, stream", err(expat_parse(stream(), Count::new()))),
        ("sax, memory", err(sax_parse(mem(), EventHandler::new(Count::new())))),
        ("sax, stream", err(sax_parse(stream(), EventHandler::new(Count::new())))),
        ("iterparse, memory", err(iterparse(mem(), "a", Count::new()))),
        ("iterparse, stream", err(iterparse(stream(), "a", Count::new()))),
        ("parallel", {
            let (_, r) = ParallelParse::new("a")
                .threads(2)
                .chunk_bytes(1 + usize::from(first / 8 % 32))
                .with_path("doc.xml")
                .run(doc, |_| Count::new(), std::io::sink());
            err(r)
        }),
    ];
    for (path, got) in others {
        assert_eq!(got, want, "{path} disagrees with expat, memory");
    }
    want
}
