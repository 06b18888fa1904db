//! Issue 12's conformance leftovers: entity references in attribute
//! values, the DOCTYPE's end, encodings. Each document goes through the
//! three parsers, from memory and from a stream with 1-byte reads, and the
//! parallel parse; all paths must give the same events (or the same error).

use copipe::sinks::Count;
use copipe::xml::{
    event_fn, expat_parse, iterparse, sax_parse, EventHandler, ParallelParse, XmlEvent, XmlInput,
};
use copipe::Flow;

/// The events of `doc` (as the seed's tuples) or its error, through the
/// expat-style parser from memory and from streams with 1..=3-byte reads;
/// asserts that all agree, and that the SAX and iterparse styles and the
/// parallel parse agree on acceptance and error.
fn events(doc: &[u8]) -> Result<Vec<String>, String> {
    let run = |input: XmlInput<'_>| {
        let mut seen = Vec::new();
        let r = expat_parse(
            input,
            event_fn(|ev: &XmlEvent<'_>| {
                seen.push(ev.to_string());
                Ok(Flow::Continue)
            }),
        );
        r.map(|()| seen).map_err(|e| e.to_string())
    };
    let mem = || XmlInput::from_bytes(doc).with_path("doc.xml");
    let first = run(mem());
    for cap in [1, 2, 3, 7] {
        let s = run(XmlInput::from_reader(doc)
            .buffer_capacity(cap)
            .with_path("doc.xml"));
        assert_eq!(s, first, "stream with {cap}-byte reads");
    }
    let err = |r: copipe::Result<()>| r.err().map(|e| e.to_string());
    let want = first.as_ref().err().cloned();
    let stream = || {
        XmlInput::from_reader(doc)
            .buffer_capacity(1)
            .with_path("doc.xml")
    };
    assert_eq!(err(sax_parse(mem(), EventHandler::new(Count::new()))), want);
    assert_eq!(
        err(sax_parse(stream(), EventHandler::new(Count::new()))),
        want
    );
    assert_eq!(err(iterparse(mem(), "x", Count::new())), want);
    assert_eq!(err(iterparse(stream(), "x", Count::new())), want);
    for threads in [1, 2] {
        let (_, r) = ParallelParse::new("a")
            .threads(threads)
            .chunk_bytes(4)
            .with_path("doc.xml")
            .run(doc, |_| Count::new(), std::io::sink());
        assert_eq!(err(r), want, "parallel, {threads} threads");
    }
    first
}

/// The events through the SAX-style parser (attributes owned), 1-byte reads.
fn sax_events(doc: &[u8]) -> Vec<String> {
    let mut seen = Vec::new();
    sax_parse(
        XmlInput::from_reader(doc).buffer_capacity(1),
        EventHandler::new(event_fn(|ev: &XmlEvent<'_>| {
            seen.push(ev.to_string());
            Ok(Flow::Continue)
        })),
    )
    .unwrap();
    seen
}

fn start_of(doc: &str) -> String {
    events(doc.as_bytes()).unwrap().remove(0)
}

fn error_of(doc: &str) -> String {
    events(doc.as_bytes()).unwrap_err()
}

#[test]
fn internal_entities_are_replaced_in_attribute_values() {
    assert_eq!(
        start_of(r#"<!DOCTYPE r [<!ENTITY e "22">]><r a="x&e;y"/>"#),
        "('start', ('r', {'a': 'x22y'}))"
    );
    // Nested entities, character and predefined references, other
    // attributes of the same tag.
    assert_eq!(
        start_of(
            r#"<!DOCTYPE r [<!ENTITY a "[&b;]"><!ENTITY b "&#65;&amp;&lt;">]><r x="&amp;" y="&a;" z="t"/>"#
        ),
        "('start', ('r', {'x': '&', 'y': '[A&<]', 'z': 't'}))"
    );
}

#[test]
fn attribute_values_are_normalised_through_entities() {
    // XML 1.0 section 3.3.3's example: white space characters in the
    // replacement text become spaces, character references stay.
    let doc =
        "<!DOCTYPE r [<!ENTITY d \"&#xD;\"><!ENTITY a \"&#xA;\"><!ENTITY da \"&#xD;&#xA;\">]>\
               <r v=\"&d;&d;A&a;&#x20;&a;B&da;\" w=\"x\r\ny\tz&#10;\"/>";
    assert_eq!(
        start_of(doc),
        "('start', ('r', {'v': '  A   B  ', 'w': 'x y z\\n'}))"
    );
}

#[test]
fn a_character_reference_to_lt_in_an_entity_is_allowed() {
    assert_eq!(
        start_of(r#"<!DOCTYPE r [<!ENTITY e "&#38;#60;">]><r a="&e;"/>"#),
        "('start', ('r', {'a': '<'}))"
    );
}

#[test]
fn bad_entities_in_attribute_values_are_errors_at_the_reference() {
    let e = error_of(r#"<!DOCTYPE r [<!ENTITY e "a&#60;b">]><r a="x&e;"/>"#);
    assert_eq!(
        e,
        "doc.xml:1:44 (byte offset 43): entity `&e;` holds a `<`, which is not allowed in an attribute value"
    );
    let e = error_of(r#"<!DOCTYPE r [<!ENTITY e "&f;"><!ENTITY f "&e;">]><r a="&e;"/>"#);
    assert!(e.contains("recursive reference to entity"), "{e}");
    assert!(e.starts_with("doc.xml:1:56 (byte offset 55): "), "{e}");
    let e = error_of(r#"<!DOCTYPE r [<!ENTITY e SYSTEM "e.xml">]><r a="&e;"/>"#);
    assert!(e.contains("external entity `&e;`"), "{e}");
    let e = error_of(r#"<!DOCTYPE r [<!ENTITY e "1">]><r a="&f;"/>"#);
    assert!(e.contains("undefined entity `&f;`"), "{e}");
}

#[test]
fn billion_laughs_in_an_attribute_value_stops_with_an_error() {
    let mut doc = String::from("<!DOCTYPE r [<!ENTITY l0 \"ha\">");
    for i in 1..=10 {
        let p = i - 1;
        doc.push_str(&format!(
            "<!ENTITY l{i} \"&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};&l{p};\">"
        ));
    }
    doc.push_str("]><r a=\"&l10;\"/>");
    // Two paths only: each expands some 8 MiB before it stops.
    for input in [
        XmlInput::from_bytes(doc.as_bytes()),
        XmlInput::from_reader(doc.as_bytes()).buffer_capacity(1),
    ] {
        let e = expat_parse(input, Count::new()).unwrap_err().to_string();
        assert!(e.contains("entity expansion produced"), "{e}");
        assert!(e.starts_with("1:"), "{e}");
    }
}

#[test]
fn recursion_in_text_is_an_error_at_the_reference() {
    let e = error_of(r#"<!DOCTYPE r [<!ENTITY a "&b;"><!ENTITY b "&a;">]><r>&a;</r>"#);
    assert!(e.starts_with("doc.xml:1:53 (byte offset 52): "), "{e}");
    assert!(e.contains("recursive reference"), "{e}");
}

#[test]
fn sax_gets_resolved_attributes() {
    let doc = br#"<!DOCTYPE r [<!ENTITY e "22">]><r a="&e;"><s b="&e;&e;"/></r>"#;
    assert_eq!(sax_events(doc), events(doc).unwrap());
}

#[test]
fn a_gt_or_lt_in_a_doctype_literal_comment_or_pi_does_not_end_it() {
    for doc in [
        r#"<!DOCTYPE r SYSTEM "a>b.dtd"><r/>"#,
        "<!DOCTYPE r [<!-- a > b -->]><r/>",
        "<!DOCTYPE r [<?pi a > b?>]><r/>",
        r#"<!DOCTYPE r [<!ENTITY x "<"><!ATTLIST r a CDATA "&#60;>">]><r/>"#,
        "<?xml version='1.0'?>\n<!-- > --><!DOCTYPE r [\n<!ENTITY x '>'>\n]>\n<r>&x;</r>",
    ] {
        let ev = events(doc.as_bytes()).unwrap_or_else(|e| panic!("{doc}: {e}"));
        assert_eq!(ev[0], "('start', ('r', {}))", "{doc}");
    }
    assert_eq!(
        events(b"<!DOCTYPE r [<!ENTITY x \">\">]><r>&x;</r>").unwrap()[1],
        "('text', '>')"
    );
}

#[test]
fn junk_after_a_doctype_with_a_lt_in_a_literal_is_refused_where_it_is() {
    let e = error_of(r#"<!DOCTYPE r [<!ENTITY x "<">]>junk<r/>"#);
    assert_eq!(
        e,
        "doc.xml:1:31 (byte offset 30): text before the root element"
    );
    let e = error_of(r#"<!DOCTYPE r [<!ENTITY x "<">]"#);
    assert!(e.starts_with("doc.xml:1:1 (byte offset 0): "), "{e}");
    assert!(e.contains("DOCTYPE not closed"), "{e}");
    let ev = events("<!DOCTYPE r [<!ENTITY x \"\u{e9}>\">]><r>&x;</r>".as_bytes()).unwrap();
    assert_eq!(ev[1], "('text', '\u{e9}>')");
}

#[test]
fn bad_utf8_in_a_doctype_is_reported_alike_on_every_path() {
    let mut doc = br#"<!DOCTYPE r [<!ENTITY x "a>"#.to_vec();
    doc.push(0xC3);
    doc.extend_from_slice(br#"">]><r/>"#);
    let e = events(&doc).unwrap_err();
    assert!(e.contains("invalid UTF-8 in the DOCTYPE"), "{e}");
    assert!(e.contains("byte offset 27)"), "{e}");
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(if big_endian {
            &[0xFE, 0xFF]
        } else {
            &[0xFF, 0xFE]
        });
    }
    for u in text.encode_utf16() {
        out.extend_from_slice(&if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

#[test]
fn utf16_documents_are_decoded() {
    let text = "<?xml version='1.0' encoding='UTF-16'?>\n<r a='\u{e9}'>x\u{1F600}y</r>";
    for (be, bom) in [(false, true), (true, true), (false, false), (true, false)] {
        let doc = utf16(text, be, bom);
        assert_eq!(
            events(&doc).unwrap(),
            [
                "('start', ('r', {'a': '\u{e9}'}))",
                "('text', 'x\u{1F600}y')",
                "('end', 'r')"
            ],
            "big endian {be}, bom {bom}"
        );
    }
    // The byte offset is in the input (the byte order mark counted, two
    // bytes a character); line and column those of the UTF-8 text.
    let doc = utf16("<r>\n<a></b></r>", false, true);
    assert_eq!(
        events(&doc).unwrap_err(),
        "doc.xml:2:4 (byte offset 16): syntax error: expected `</a>`, but `</b>` was found"
            .replace("syntax error: ", &error_text_prefix(&doc))
    );
}

/// The part of the error message before the mismatch text (quick-xml's
/// wording is its own).
fn error_text_prefix(doc: &[u8]) -> String {
    let e = events(doc).unwrap_err();
    let start = e.find("): ").unwrap() + 3;
    let end = e.find("expected").unwrap_or(start);
    e[start..end].to_string()
}

#[test]
fn declared_single_byte_encodings_are_decoded() {
    let mut doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r a=\"\xe9\">\xe0</r>".to_vec();
    assert_eq!(
        events(&doc).unwrap()[..2],
        ["('start', ('r', {'a': '\u{e9}'}))", "('text', '\u{e0}')"]
    );
    doc = b"<?xml version='1.0' encoding='windows-1252'?><r>\x80</r>".to_vec();
    assert_eq!(events(&doc).unwrap()[1], "('text', '\u{20ac}')");
    doc = b"<?xml version='1.0' encoding='US-ASCII'?><r>a</r>".to_vec();
    assert_eq!(events(&doc).unwrap()[1], "('text', 'a')");
}

#[test]
fn an_unknown_or_impossible_encoding_is_one_clear_error() {
    let e = events(b"<?xml version='1.0' encoding='klingon'?><r/>").unwrap_err();
    assert!(
        e.starts_with("doc.xml:1:1 (byte offset 0): unsupported encoding `klingon`"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    let e = events(b"<?xml version='1.0' encoding='UTF-16'?><r/>").unwrap_err();
    assert!(e.starts_with("doc.xml:1:1 (byte offset 0): "), "{e}");
    assert!(e.contains("encoding `UTF-16`"), "{e}");
    let doc = utf16(
        "<?xml version='1.0' encoding='ISO-8859-1'?><r/>",
        false,
        true,
    );
    let e = events(&doc).unwrap_err();
    assert!(e.contains("but the document is in UTF-16LE"), "{e}");
}

#[test]
fn entity_references_in_default_attribute_values_are_checked() {
    for (doc, msg) in [
        (
            r#"<!DOCTYPE r [<!ATTLIST r a CDATA "&e;"><!ENTITY e "v">]><r/>"#,
            "undefined entity `&e;`",
        ),
        (
            r#"<!DOCTYPE r [<!ENTITY e SYSTEM "e.xml"><!ATTLIST r a CDATA "&e;">]><r/>"#,
            "external entity",
        ),
        (
            r#"<!DOCTYPE r [<!ENTITY a "&b;"><!ENTITY b "&a;"><!ATTLIST r x CDATA "&a;">]><r/>"#,
            "recursive",
        ),
        (
            r#"<!DOCTYPE r [<!ENTITY a "&#60;"><!ATTLIST r x CDATA "&a;">]><r/>"#,
            "holds a `<`",
        ),
    ] {
        let e = error_of(doc);
        assert!(e.contains(msg), "{doc}: {e}");
    }
    // Declared first, or possibly declared in an external subset: fine
    // (default values are not inserted).
    assert_eq!(
        start_of(r#"<!DOCTYPE r [<!ENTITY e "v"><!ATTLIST r a CDATA "&e;">]><r/>"#),
        "('start', ('r', {}))"
    );
    assert_eq!(
        start_of(r#"<!DOCTYPE r SYSTEM "r.dtd" [<!ATTLIST r a CDATA "&e;">]><r/>"#),
        "('start', ('r', {}))"
    );
}

#[test]
fn the_doctype_keyword_is_in_capitals() {
    assert_eq!(
        error_of("<?xml version='1.0'?>\n<!DOCtYPE r>\n<r/>"),
        "doc.xml:2:3 (byte offset 24): the keyword is `DOCTYPE`, in capitals"
    );
}

#[test]
fn the_parallel_parse_does_not_cut_inside_a_doctype() {
    let mut doc = String::from(
        "<!DOCTYPE buses [<!ENTITY x \"<bus>\"><!-- <bus><id>1</id></bus> --><?p <bus> ?>]>\n<buses>",
    );
    for i in 0..50 {
        doc.push_str(&format!("<bus><id>{i}</id></bus>"));
    }
    doc.push_str("</buses>");
    let mut seq = Count::new();
    expat_parse(XmlInput::from_bytes(doc.as_bytes()), &mut seq).unwrap();
    for chunk in [1, 7, 64] {
        let (stages, r) = ParallelParse::new("bus").threads(2).chunk_bytes(chunk).run(
            doc.as_bytes(),
            |_| Count::new(),
            std::io::sink(),
        );
        r.unwrap();
        let total: u64 = stages.iter().map(|c| c.count()).sum();
        assert_eq!(total, seq.count(), "chunk {chunk}");
    }
}

#[test]
fn a_utf16_document_is_cut_for_the_parallel_parse_like_any_other() {
    let mut doc = String::from("<?xml version='1.0' encoding='UTF-16'?>\n<buses>");
    for i in 0..50 {
        doc.push_str(&format!("<bus><id>{i}\u{e9}</id></bus>"));
    }
    doc.push_str("</buses>");
    let doc = utf16(&doc, false, true);
    let mut seq = Count::new();
    expat_parse(XmlInput::from_bytes(&doc), &mut seq).unwrap();
    let mut streamed = Count::new();
    expat_parse(
        XmlInput::from_reader(&doc[..]).buffer_capacity(5),
        &mut streamed,
    )
    .unwrap();
    assert_eq!(streamed.count(), seq.count());
    for chunk in [1, 7, 64] {
        let (stages, r) = ParallelParse::new("bus").threads(2).chunk_bytes(chunk).run(
            &doc,
            |_| Count::new(),
            std::io::sink(),
        );
        r.unwrap();
        let total: u64 = stages.iter().map(|c| c.count()).sum();
        assert_eq!(total, seq.count(), "chunk {chunk}");
    }
}

/// Inputs the `xml_source` fuzz target once failed on (in
/// `tests/fuzz_regressions/`, its first byte choosing the read buffer as
/// in the target): every path must agree.
#[test]
fn fuzz_regressions_agree_on_every_path() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let Some((&first, doc)) = data.split_first() else {
            continue;
        };
        let buffer = 1 + usize::from(first % 8);
        let err = |r: copipe::Result<()>| r.err().map(|e| e.to_string());
        let want = err(expat_parse(
            XmlInput::from_bytes(doc).with_path("doc.xml"),
            Count::new(),
        ));
        let stream = err(expat_parse(
            XmlInput::from_reader(doc)
                .buffer_capacity(buffer)
                .with_path("doc.xml"),
            Count::new(),
        ));
        assert_eq!(stream, want, "{}", path.display());
        let _ = events(doc);
    }
}

/// A reader that gives one byte per read, so that a decoder's input is
/// cut between every two bytes.
struct OneByte<'a>(&'a [u8]);

impl std::io::Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((&b, rest)), Some(out)) => {
                *out = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

/// The events delivered before the error, and the error, of a document
/// that must be refused: the same from memory, from streams with 1-, 2-,
/// 3- and 7-byte buffers, and from a reader giving one byte at a time;
/// `events` checks the other parsers and the parallel parse.
fn delivered_then_error(doc: &[u8]) -> (Vec<String>, String) {
    let run = |input: XmlInput<'_>| {
        let mut seen = Vec::new();
        let r = expat_parse(
            input.with_path("doc.xml"),
            event_fn(|ev: &XmlEvent<'_>| {
                seen.push(ev.to_string());
                Ok(Flow::Continue)
            }),
        );
        (seen, r.expect_err("must be refused").to_string())
    };
    let first = run(XmlInput::from_bytes(doc));
    for cap in [1, 2, 3, 7] {
        let s = run(XmlInput::from_reader(doc).buffer_capacity(cap));
        assert_eq!(s, first, "stream with {cap}-byte reads");
    }
    let s = run(XmlInput::from_reader(OneByte(doc)));
    assert_eq!(s, first, "stream of one byte at a time");
    assert_eq!(events(doc).unwrap_err(), first.1);
    first
}

/// `text` in windows-1253 (Greek), with `bad` bytes (unmapped there)
/// where `text` has `|`.
fn greek(text: &str, bad: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in text.split('|').enumerate() {
        if i > 0 {
            out.extend_from_slice(bad);
        }
        for c in part.chars() {
            out.push(match c {
                'α'..='ρ' => 0xE1 + (c as u32 - 'α' as u32) as u8,
                c if c.is_ascii() => c as u8,
                c => panic!("{c} not in the table"),
            });
        }
    }
    out
}

#[test]
fn malformed_utf16_is_an_error_where_the_decoded_text_stops() {
    // A lone low surrogate in text: the start tag is delivered (the text
    // run the error cuts is dropped, as after any error); the byte offset
    // is the bad bytes' in the input (the byte order mark counted), line
    // and column where the UTF-8 text stops.
    let mut doc = utf16("<r>ab", false, true);
    doc.extend_from_slice(&[0x00, 0xDC]);
    doc.extend_from_slice(&utf16("cd</r>", false, false));
    let (seen, e) = delivered_then_error(&doc);
    assert_eq!(
        e,
        "doc.xml:1:6 (byte offset 12): malformed UTF-16LE: bytes 00 DC are not a character"
    );
    assert_eq!(seen, ["('start', ('r', {}))"]);
    // A high surrogate not followed by a low one (big endian, no byte
    // order mark), after a non-ASCII character.
    let mut doc = utf16("<?xml version='1.0'?><r>\u{e9}\n", true, false);
    doc.extend_from_slice(&[0xD8, 0x00]);
    doc.extend_from_slice(&utf16("c</r>", true, false));
    let (seen, e) = delivered_then_error(&doc);
    assert_eq!(
        e,
        "doc.xml:2:1 (byte offset 52): malformed UTF-16BE: bytes D8 00 are not a character"
    );
    assert_eq!(seen, ["('start', ('r', {}))"]);
    // An odd last byte, or a high surrogate at the end, after the root.
    for (tail, what) in [(&[0x41][..], "byte 41"), (&[0x00, 0xD8], "bytes 00 D8")] {
        let mut doc = utf16("<r/>", false, true);
        doc.extend_from_slice(tail);
        let (seen, e) = delivered_then_error(&doc);
        let verb = if tail.len() == 1 { "is" } else { "are" };
        assert_eq!(
            e,
            format!(
                "doc.xml:1:5 (byte offset 10): malformed UTF-16LE: {what} {verb} not a character"
            )
        );
        assert_eq!(seen, ["('start', ('r', {}))", "('end', 'r')"]);
    }
    // In the middle of a tag: the event is cut short.
    let mut doc = utf16("<r><a b='x", false, true);
    doc.extend_from_slice(&[0x00, 0xDC]);
    doc.extend_from_slice(&utf16("'/></r>", false, false));
    let (seen, e) = delivered_then_error(&doc);
    assert!(
        e.starts_with("doc.xml:1:11 (byte offset 22): malformed UTF-16LE: bytes 00 DC are "),
        "{e}"
    );
    assert_eq!(seen, ["('start', ('r', {}))"]);
    // At the very start.
    let (seen, e) = delivered_then_error(&[0xFF, 0xFE, 0x00, 0xDC]);
    assert!(
        e.starts_with("doc.xml:1:1 (byte offset 2): malformed UTF-16LE: bytes 00 DC are "),
        "{e}"
    );
    assert!(seen.is_empty());
}

#[test]
fn an_unmapped_byte_in_a_declared_encoding_is_an_error() {
    let decl = "<?xml version='1.0' encoding='windows-1253'?>\n";
    // The byte offset is in the input; the column counts the UTF-8 text
    // (α and β take two bytes each there, one in the input).
    let doc = greek(&format!("{decl}<r a='αβ'>\nαβ|γ</r>"), &[0xAA]);
    let (seen, e) = delivered_then_error(&doc);
    assert_eq!(
        e,
        "doc.xml:3:5 (byte offset 59): malformed windows-1253: byte AA is not a character"
    );
    assert_eq!(seen, ["('start', ('r', {'a': 'αβ'}))"]);
    // In an attribute value, in ISO-8859-7 and ISO-8859-3.
    for (enc, byte) in [("ISO-8859-7", 0xAE), ("ISO-8859-3", 0xA5)] {
        let mut doc = format!("<?xml version='1.0' encoding='{enc}'?><r a='x").into_bytes();
        let at = doc.len();
        doc.push(byte);
        doc.extend_from_slice(b"'/>");
        let (seen, e) = delivered_then_error(&doc);
        assert_eq!(
            e,
            format!("doc.xml:1:{} (byte offset {at}): malformed {enc}: byte {byte:02X} is not a character", at + 1)
        );
        assert!(seen.is_empty());
    }
    // A bad multi-byte sequence.
    let doc = b"<?xml version='1.0' encoding='Shift_JIS'?><r>a\x81\x20b</r>";
    let (_, e) = delivered_then_error(doc);
    assert!(
        e.ends_with("(byte offset 46): malformed Shift_JIS: byte 81 is not a character"),
        "{e}"
    );
    // windows-1252 (and ISO-8859-1, read as it) maps every byte: 0x81 is
    // U+0081, a Char.
    let doc = b"<?xml version='1.0' encoding='windows-1252'?><r>\x81</r>";
    assert_eq!(events(doc).unwrap()[1], "('text', '\\x81')");
}

#[test]
fn an_error_before_the_malformed_bytes_comes_first() {
    let mut doc = utf16("<r></x>", false, true);
    doc.extend_from_slice(&[0x00, 0xDC]);
    let e = events(&doc).unwrap_err();
    assert!(e.starts_with("doc.xml:1:4 (byte offset 8): "), "{e}");
    assert!(!e.contains("malformed"), "{e}");
    let doc = greek(
        "<?xml version='1.0' encoding='windows-1253'?><r>a\u{1}|</r>",
        &[0xFF],
    );
    let e = events(&doc).unwrap_err();
    assert!(e.starts_with("doc.xml:1:50 (byte offset 49): "), "{e}");
    // Text after the root is refused where it starts.
    let doc = greek(
        "<?xml version='1.0' encoding='windows-1253'?><r/>ab|",
        &[0xD2],
    );
    let e = events(&doc).unwrap_err();
    assert!(e.starts_with("doc.xml:1:50 (byte offset 49): "), "{e}");
}

#[test]
fn a_byte_over_0x7f_in_a_us_ascii_document_is_an_error() {
    let doc = b"<?xml version='1.0' encoding='US-ASCII'?>\n<r>\n<a>x</a>\xe9</r>";
    let (seen, e) = delivered_then_error(doc);
    assert_eq!(
        e,
        "doc.xml:3:9 (byte offset 54): malformed US-ASCII: byte E9 is not a character"
    );
    assert_eq!(
        seen,
        [
            "('start', ('r', {}))",
            "('text', '\\n')",
            "('start', ('a', {}))",
            "('text', 'x')",
            "('end', 'a')"
        ]
    );
    assert_eq!(
        events(b"<?xml version='1.0' encoding='ascii'?><r>a</r>").unwrap()[1],
        "('text', 'a')"
    );
}

/// Each document, the verdict copipe gives (true: accepted), and why
/// pyexpat differs, if it does.
fn encoding_cases() -> Vec<(&'static str, Vec<u8>, bool, Option<&'static str>)> {
    let decl = |enc: &str, body: &[u8]| {
        let mut d = format!("<?xml version='1.0' encoding='{enc}'?><r>ab").into_bytes();
        d.extend_from_slice(body);
        d.extend_from_slice(b"cd</r>");
        d
    };
    let u16_with = |be: bool, bom: bool, head: &str, bad: &[u8], rest: &str| {
        let mut d = utf16(head, be, bom);
        d.extend_from_slice(bad);
        d.extend_from_slice(&utf16(rest, be, false));
        d
    };
    let python_differs =
        "Python's codec leaves the byte unmapped; the WHATWG table encoding_rs follows maps it";
    vec![
        (
            "utf-16le lone low surrogate",
            u16_with(false, true, "<r>ab", &[0x00, 0xDC], "cd</r>"),
            false,
            None,
        ),
        (
            "utf-16be lone low surrogate",
            u16_with(true, true, "<r>ab", &[0xDC, 0x00], "cd</r>"),
            false,
            None,
        ),
        (
            "utf-16le no bom, lone low",
            u16_with(
                false,
                false,
                "<?xml version='1.0'?><r>",
                &[0x00, 0xDC],
                "</r>",
            ),
            false,
            None,
        ),
        (
            "utf-16le odd last byte",
            u16_with(false, true, "<r>ab</r>", &[0x41], ""),
            false,
            None,
        ),
        (
            "utf-16be odd last byte",
            u16_with(true, true, "<r>ab</r>", &[0x41], ""),
            false,
            None,
        ),
        (
            "utf-16le high surrogate at the end",
            u16_with(false, true, "<r>ab</r>", &[0x00, 0xD8], ""),
            false,
            None,
        ),
        (
            "utf-16le lone low in an attribute",
            u16_with(false, true, "<r a='x", &[0x00, 0xDC], "'/>"),
            false,
            None,
        ),
        (
            "utf-16le lone low after an element",
            u16_with(false, true, "<r>ab<x/>", &[0x00, 0xDC], "</r>"),
            false,
            None,
        ),
        (
            "utf-16le high surrogate before a non-surrogate",
            u16_with(false, true, "<r>ab", &[0x00, 0xD8], "cd</r>"),
            false,
            Some("expat takes any unit after a high surrogate as its pair"),
        ),
        (
            "utf-16le good pair",
            u16_with(false, true, "<r>ab", &[0x3D, 0xD8, 0x00, 0xDE], "cd</r>"),
            true,
            None,
        ),
        (
            "windows-1253 0xAA",
            decl("windows-1253", &[0xAA]),
            false,
            None,
        ),
        ("ISO-8859-7 0xAE", decl("ISO-8859-7", &[0xAE]), false, None),
        ("ISO-8859-7 0xD2", decl("ISO-8859-7", &[0xD2]), false, None),
        ("ISO-8859-3 0xA5", decl("ISO-8859-3", &[0xA5]), false, None),
        ("ISO-8859-6 0xA1", decl("ISO-8859-6", &[0xA1]), false, None),
        ("ISO-8859-8 0xBF", decl("ISO-8859-8", &[0xBF]), false, None),
        (
            "windows-1255 0xD9",
            decl("windows-1255", &[0xD9]),
            false,
            None,
        ),
        (
            "windows-1257 0xA1",
            decl("windows-1257", &[0xA1]),
            false,
            None,
        ),
        ("US-ASCII 0x81", decl("US-ASCII", &[0x81]), false, None),
        ("ISO-8859-1 0x81", decl("ISO-8859-1", &[0x81]), true, None),
        ("ISO-8859-7 0xE1", decl("ISO-8859-7", &[0xE1]), true, None),
        (
            "windows-1252 0x81",
            decl("windows-1252", &[0x81]),
            true,
            Some(python_differs),
        ),
        (
            "windows-1255 0xCA",
            decl("windows-1255", &[0xCA]),
            true,
            Some(python_differs),
        ),
    ]
}

#[test]
fn malformed_encodings_are_refused_on_every_path() {
    for (name, doc, accepted, _) in encoding_cases() {
        let got = events(&doc);
        assert_eq!(got.is_ok(), accepted, "{name}: {got:?}");
        if let Err(e) = got {
            assert!(e.contains(": malformed "), "{name}: {e}");
            assert_eq!(delivered_then_error(&doc).1, e, "{name}");
        }
    }
}

/// The verdicts of pyexpat (python3's `xml.parsers.expat`) on the same
/// documents, when python3 is installed: the same, but for the differences
/// the cases name.
#[test]
fn malformed_encoding_verdicts_agree_with_pyexpat() {
    let dir = std::env::temp_dir().join(format!("copipe-enc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = encoding_cases();
    let mut paths = Vec::new();
    for (i, (_, doc, _, _)) in cases.iter().enumerate() {
        let p = dir.join(format!("{i}.xml"));
        std::fs::write(&p, doc).unwrap();
        paths.push(p);
    }
    let script = "import sys, xml.parsers.expat as E\n\
                  for p in sys.argv[1:]:\n\
                  \x20   x = E.ParserCreate()\n\
                  \x20   try:\n\
                  \x20       x.Parse(open(p, 'rb').read(), True); print('ok')\n\
                  \x20   except Exception as e:\n\
                  \x20       print('error')\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&paths)
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let Ok(out) = out.map_err(|e| eprintln!("python3 not run ({e}): skipped")) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<bool> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "ok")
        .collect();
    assert_eq!(verdicts.len(), cases.len());
    for ((name, _, accepted, differs), py) in cases.iter().zip(verdicts) {
        match differs {
            None => assert_eq!(py, *accepted, "{name}: pyexpat accepts: {py}"),
            Some(why) => assert_ne!(py, *accepted, "{name} was a known difference ({why})"),
        }
    }
}

#[test]
fn sax_gets_the_character_data_before_malformed_bytes() {
    let mut doc = utf16("<r>ab", false, true);
    doc.extend_from_slice(&[0x00, 0xDC]);
    for cap in [1, 3, 64] {
        let mut seen = Vec::new();
        let r = sax_parse(
            XmlInput::from_reader(&doc[..]).buffer_capacity(cap),
            EventHandler::new(event_fn(|ev: &XmlEvent<'_>| {
                seen.push(ev.to_string());
                Ok(Flow::Continue)
            })),
        );
        assert!(r.unwrap_err().to_string().contains("malformed UTF-16LE"));
        assert_eq!(seen, ["('start', ('r', {}))", "('text', 'ab')"], "{cap}");
    }
}

/// The real binary on a UTF-16 bus feed with a lone surrogate in its
/// second bus, from a file (the parallel parse) and from stdin: the first
/// bus is printed, then one line of error, exit status 2.
#[test]
fn copipe_buses_refuses_malformed_utf16_after_printing_what_came_before() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut doc = utf16(
        "<buses>\n<bus><id>1</id><route>22</route><direction>North Bound</direction>\
         <latitude>41.9</latitude><longitude>-87.6</longitude></bus>\n<bus><id>2</id>",
        false,
        true,
    );
    doc.extend_from_slice(&[0x00, 0xDC]);
    doc.extend_from_slice(&utf16("</bus></buses>", false, false));
    let path = std::env::temp_dir().join(format!("copipe-bad16-{}.xml", std::process::id()));
    std::fs::write(&path, &doc).unwrap();
    let file = Command::new(env!("CARGO_BIN_EXE_copipe"))
        .arg("buses")
        .arg(&path)
        .args(["--route", "22"])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let mut child = Command::new(env!("CARGO_BIN_EXE_copipe"))
        .args(["buses", "--route", "22"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&doc).unwrap();
    let piped = child.wait_with_output().unwrap();
    let msg = ":3:16 (byte offset 300): malformed UTF-16LE: bytes 00 DC are not a character\n";
    for (how, out) in [("file", file), ("stdin", piped)] {
        assert_eq!(out.status.code(), Some(2), "{how}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "22,1,\"North Bound\",41.9,-87.6\n",
            "{how}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.ends_with(msg), "{how}: {err}");
        assert_eq!(err.lines().count(), 1, "{how}: {err}");
    }
}
