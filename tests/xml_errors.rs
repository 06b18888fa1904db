//! Malformed XML: each case is checked for the error kind, the message, and
//! the exact position (line, column, byte offset), through all three
//! parsers, from memory and from streams with tiny read buffers.

use copipe::sinks::Collect;
use copipe::xml::{expat_parse, iterparse, records, sax_parse, EventHandler, Record, XmlInput};
use copipe::{ErrorKind, StageExt};

fn inputs(doc: &[u8]) -> Vec<(String, XmlInput<'_>)> {
    let mut v = vec![(
        "memory".to_string(),
        XmlInput::from_bytes(doc).with_path("bad.xml"),
    )];
    for cap in [1, 4, 64 * 1024] {
        v.push((
            format!("stream/{cap}"),
            XmlInput::from_reader(doc)
                .buffer_capacity(cap)
                .with_path("bad.xml"),
        ));
    }
    v
}

/// Runs every parser on every input form; returns the records each pushed
/// before failing, after checking the error.
fn check(doc: &[u8], line: u64, column: u64, offset: u64, msg: &str) -> Vec<Vec<Record>> {
    let mut seen = Vec::new();
    for parser in ["expat", "sax", "iterparse"] {
        for (how, input) in inputs(doc) {
            let mut out = Collect::new();
            let sink = (&mut out).with_map(|r: &Record| r.clone());
            let res = match parser {
                "expat" => expat_parse(input, records("bus", sink)),
                "sax" => sax_parse(input, EventHandler::new(records("bus", sink))),
                _ => iterparse(input, "bus", sink),
            };
            let err = match res {
                Ok(()) => panic!("{parser} {how}: accepted a malformed document"),
                Err(e) => e,
            };
            let ctx = format!("{parser} {how}: {err}");
            match err.kind() {
                ErrorKind::Xml {
                    line: l,
                    column: c,
                    byte_offset: o,
                    message,
                } => {
                    assert_eq!((*l, *c, *o), (line, column, offset), "{ctx}");
                    assert!(message.contains(msg), "{ctx}: message lacks `{msg}`");
                }
                other => panic!("{ctx}: not an XML error: {other:?}"),
            }
            assert_eq!(
                err.to_string(),
                format!(
                    "bad.xml:{line}:{column} (byte offset {offset}): {}",
                    match err.kind() {
                        ErrorKind::Xml { message, .. } => message.as_str(),
                        _ => unreachable!(),
                    }
                ),
                "{ctx}"
            );
            assert!(
                out.is_closed(),
                "{ctx}: the target was not closed before the error"
            );
            seen.push(out.into_items());
        }
    }
    seen
}

/// `name(input) => (line, column, byte offset, message part)`.
macro_rules! bad {
    ($($name:ident($input:expr) => ($line:expr, $col:expr, $off:expr, $msg:expr);)*) => {
        $(
            #[test]
            fn $name() {
                let doc = $input;
                let doc: &[u8] = doc.as_ref();
                check(doc, $line, $col, $off, $msg);
            }
        )*
    };
}

bad! {
    unclosed_at_eof("<buses><bus>") => (1, 13, 12, "`<bus>` (opened at byte offset 7) is not closed");
    unclosed_at_eof_multiline("<buses>\n  <bus>\n    <id>1</id>\n") => (4, 1, 31, "`<bus>` (opened at byte offset 10) is not closed");
    truncated_in_start_tag("<buses><bus") => (1, 8, 7, "tag not closed");
    truncated_in_end_tag("<a><b></b></a") => (1, 11, 10, "tag not closed");
    mismatched_end_tag("<buses><bus></buses>") => (1, 13, 12, "expected `</bus>`, but `</buses>` was found");
    unmatched_end_tag("<a></a></b>") => (1, 8, 7, "does not match any open tag");
    crlf_lines_are_counted("<a>\r\n<b>\r\n</a>") => (3, 1, 10, "expected `</b>`");
    undefined_entity("<a>x&foo;</a>") => (1, 5, 4, "undefined entity `&foo;`");
    unterminated_reference("<a>x&amp</a>") => (1, 5, 4, "not closed");
    lone_ampersand("<a>x & y</a>") => (1, 6, 5, "not closed");
    char_ref_zero("<a>&#0;</a>") => (1, 4, 3, "invalid character");
    char_ref_surrogate("<a>&#xD800;</a>") => (1, 4, 3, "invalid character");
    char_ref_control("<a>\n&#1;</a>") => (2, 1, 4, "invalid character `&#1;`");
    invalid_utf8_in_name(b"<buses><bu\xffs>") => (1, 11, 10, "invalid UTF-8 in a tag");
    invalid_utf8_in_text(b"<a>ab\xfe</a>") => (1, 6, 5, "invalid UTF-8 in text");
    invalid_utf8_in_cdata(b"<a><![CDATA[x\xc3]]></a>") => (1, 14, 13, "invalid UTF-8 in text");
    second_root_element("<a/><b/>") => (1, 5, 4, "junk after document element");
    text_after_root("<a/>\n x") => (2, 2, 6, "junk after document element");
    text_before_root("x<a/>") => (1, 1, 0, "text before the root element");
    empty_document("") => (1, 1, 0, "no element found");
    whitespace_document("  \n") => (2, 1, 3, "no element found");
    unclosed_comment("<a><!-- x") => (1, 4, 3, "comment not closed");
    unclosed_cdata("<a><![CDATA[x") => (1, 4, 3, "CDATA not closed");
    double_hyphen_in_comment("<a><!-- a -- b --></a>") => (1, 11, 10, "`--`");
    duplicate_attribute("<a x=\"1\" x=\"2\"/>") => (1, 10, 9, "duplicate attribute `x`");
    unquoted_attribute("<a x=1/>") => (1, 6, 5, "the value of attribute `x` must be in quotes");
    bad_entity_in_attribute("<a x=\"&nope;\"/>") => (1, 7, 6, "undefined entity `&nope;`");
    // Issue 12: what quick-xml let through.
    no_space_between_attributes("<r a=\"1\"b=\"2\"/>") => (1, 9, 8, "separated by whitespace");
    lt_in_attribute("<r a=\"<\"/>") => (1, 7, 6, "`<` is not allowed in an attribute value");
    bad_char_ref_in_attribute("<r a=\"&#x1f;\"/>") => (1, 7, 6, "reference to invalid character");
    form_feed_in_text("<r>a\x0cb</r>") => (1, 5, 4, "illegal character U+000C");
    bad_element_name("<.doc/>") => (1, 2, 1, "not a valid XML name");
    cdata_end_in_text("<r>a]]>b</r>") => (1, 5, 4, "`]]>` is not allowed");
    decl_without_version("<?xml encoding=\"UTF-8\"?><r/>") => (1, 7, 6, "unexpected `encoding` in the XML declaration");
    decl_not_at_start(" <?xml version=\"1.0\"?><r/>") => (1, 2, 1, "only at the very start");
    reserved_pi_target("<?XML x?><r/>") => (1, 1, 0, "is reserved");
    doctype_after_root("<r/><!DOCTYPE r>") => (1, 5, 4, "only before the root element");
    unsupported_encoding("<?xml version=\"1.0\" encoding=\"EBCDIC-X\"?><a/>") => (1, 1, 0, "unsupported encoding `EBCDIC-X`");
    too_deep("<a>".repeat(5000)) => (1, 12289, 12288, "nested deeper than 4096");
}

#[test]
fn records_before_the_error_are_out_and_no_partial_record() {
    let doc = b"<buses>\n<bus><id>1</id><route>22</route></bus>\n\
                <bus><id>2</id><route>9</route></bus>\n\
                <bus><id>3</id><route>2";
    let len = doc.len() as u64;
    for recs in check(doc, 4, 24, len, "`<route>` (opened at byte offset") {
        assert_eq!(
            recs,
            [
                [("id", "1"), ("route", "22")]
                    .into_iter()
                    .collect::<Record>(),
                [("id", "2"), ("route", "9")]
                    .into_iter()
                    .collect::<Record>(),
            ]
        );
    }
}

#[test]
fn an_endless_event_on_a_stream_is_an_error_not_unbounded_memory() {
    let doc = format!("<a>\n<b>{}</b></a>", "x".repeat(10_000));
    for cap in [1, 7, 4096] {
        let input = XmlInput::from_reader(doc.as_bytes())
            .buffer_capacity(cap)
            .max_event_bytes(1000)
            .with_path("big.xml");
        let err = expat_parse(input, copipe::sinks::Null).unwrap_err();
        match err.kind() {
            ErrorKind::Xml {
                line,
                column,
                byte_offset,
                message,
            } => {
                // The text run starts after `<b>` on line 2.
                assert_eq!(
                    (*line, *column, *byte_offset),
                    (2, 4, 7),
                    "cap {cap}: {err}"
                );
                assert!(message.contains("longer than 1000 bytes"), "{err}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_endless_bus_is_an_error_not_unbounded_memory() {
    // Many small pieces: no single event is large, but the record is.
    let piece = "<x>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</x>";
    let doc = format!("<buses><bus>{}</bus></buses>", piece.repeat(600_000));
    let err = expat_parse(
        XmlInput::from_bytes(doc.as_bytes()),
        records("bus", copipe::sinks::Null),
    )
    .unwrap_err();
    assert!(err.to_string().contains("more than 16 MiB"), "{err}");
    let err = iterparse(
        XmlInput::from_bytes(doc.as_bytes()),
        "bus",
        copipe::sinks::Null,
    )
    .unwrap_err();
    assert!(err.to_string().contains("more than 16 MiB"), "{err}");
}

#[test]
fn a_read_error_is_an_io_error_with_the_path() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = self.0.min(buf.len()).min(7);
            buf[..n].copy_from_slice(&b"<buses>"[..n]);
            self.0 -= n;
            Ok(n)
        }
    }
    let err = expat_parse(
        XmlInput::from_reader(Failing(7)).with_path("feed.xml"),
        copipe::sinks::Null,
    )
    .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io(_)), "{err:?}");
    assert_eq!(err.to_string(), "feed.xml: disk on fire");
}

#[test]
fn a_byte_order_mark_counts_in_positions() {
    // quick-xml skips the mark without counting it; positions are still
    // byte offsets in the file, from memory and from a stream read through
    // any buffer (one under 3 bytes splits the mark across reads).
    let doc = b"\xEF\xBB\xBF<a>&nope;</a>";
    let mut forms = vec![("memory".to_string(), XmlInput::from_bytes(doc))];
    for cap in [1, 2, 3, 4, 5, 8, 64 * 1024] {
        forms.push((
            format!("stream/{cap}"),
            XmlInput::from_reader(&doc[..]).buffer_capacity(cap),
        ));
    }
    for (how, input) in forms {
        let err = expat_parse(
            input,
            records("bus", Collect::new().with_map(|r: &Record| r.clone())),
        )
        .unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Xml {
                    line: 1,
                    column: 7,
                    byte_offset: 6,
                    ..
                }
            ),
            "{how}: {err}"
        );
    }
}

#[test]
fn a_byte_order_mark_is_skipped_through_any_read_buffer() {
    let doc = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<buses><bus><id>7</id></bus></buses>";
    let want = [Record::from_iter([("id", "7")])];
    for cap in [1, 2, 3, 4, 64 * 1024] {
        let mut out = Collect::new();
        expat_parse(
            XmlInput::from_reader(&doc[..]).buffer_capacity(cap),
            records("bus", (&mut out).with_map(|r: &Record| r.clone())),
        )
        .unwrap_or_else(|e| panic!("stream/{cap}: {e}"));
        assert_eq!(out.items(), want, "stream/{cap}");
    }
    // A stream shorter than a mark, and one that only starts like one.
    for doc in [&b"\xEF\xBB"[..], b"\xEF<a/>"] {
        for cap in [1, 64 * 1024] {
            let err = expat_parse(
                XmlInput::from_reader(doc).buffer_capacity(cap),
                records("bus", Collect::new().with_map(|r: &Record| r.clone())),
            )
            .unwrap_err();
            assert!(
                matches!(err.kind(), ErrorKind::Xml { byte_offset: 0, .. }),
                "{doc:?} stream/{cap}: {err}"
            );
        }
    }
}
