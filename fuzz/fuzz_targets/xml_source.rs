//! Fuzzes the XML source: any bytes must be accepted or rejected, never
//! panic or hang, and every way of parsing them must agree. The three
//! parsers (expat-, SAX- and iterparse-style) read the input from memory
//! and as a stream through a small read buffer (its size taken from the
//! first byte, 1 to 8 bytes), and the parallel parse reads it cut into
//! tiny chunks; all of them must give the same error (message, line,
//! column and byte offset) or all accept it.
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
});
