//! The three XML sources against each other: identical records on tricky
//! inputs, through memory and through streams with tiny read buffers; and a
//! property test that random bus documents round-trip into records.

use copipe::sinks::Collect;
use copipe::xml::{
    event_fn, expat_parse, iterparse, records, sax_parse, EventHandler, Record, XmlEvent, XmlInput,
};
use copipe::Lifecycle;
use copipe::{Flow, Stage, StageExt};
use proptest::prelude::*;

/// Read-buffer sizes for streaming: tiny ones split every event across
/// reads (quick-xml's `small_buffers` tests), the last is the default.
const CAPACITIES: [usize; 6] = [1, 2, 3, 5, 8, 64 * 1024];

/// The ways a document can be read.
fn inputs(doc: &[u8]) -> Vec<(String, XmlInput<'_>)> {
    let mut v = vec![("memory".to_string(), XmlInput::from_bytes(doc))];
    for cap in CAPACITIES {
        v.push((
            format!("stream/{cap}"),
            XmlInput::from_reader(doc).buffer_capacity(cap),
        ));
    }
    v
}

/// Records from every parser and every input form; panics unless all
/// agree, and returns them.
fn all_records(doc: &[u8]) -> Vec<Record> {
    let mut answers: Vec<(String, Vec<Record>)> = Vec::new();
    for parser in ["expat", "sax", "iterparse"] {
        for (how, input) in inputs(doc) {
            let mut out = Collect::new();
            let sink = (&mut out).with_map(|r: &Record| r.clone());
            let res = match parser {
                "expat" => expat_parse(input, records("bus", sink)),
                "sax" => sax_parse(input, EventHandler::new(records("bus", sink))),
                _ => iterparse(input, "bus", sink),
            };
            res.unwrap_or_else(|e| panic!("{parser} {how}: {e}"));
            assert!(out.is_closed(), "{parser} {how}: target not closed");
            answers.push((format!("{parser} {how}"), out.into_items()));
        }
    }
    let (first_name, first) = &answers[0];
    for (name, recs) in &answers[1..] {
        assert_eq!(recs, first, "{name} differs from {first_name}");
    }
    answers.swap_remove(0).1
}

/// The expat-style event stream, printed, for one input.
fn events(input: XmlInput<'_>) -> Vec<String> {
    let mut seen = Vec::new();
    expat_parse(
        input,
        event_fn(|ev| {
            seen.push(ev.to_string());
            Ok(Flow::Continue)
        }),
    )
    .unwrap();
    seen
}

fn rec(fields: &[(&str, &str)]) -> Record {
    fields.iter().copied().collect()
}

const TRICKY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<!DOCTYPE buses>\r\n\
<!-- a comment before the root -->\r\n\
<?tracker version=\"2\"?>\r\n\
<buses rt=\"22\" note='a &amp; b'>\r\n\
  <bus kind=\"articulated\">\r\n\
    <id>75&#55;4</id>\r\n\
    <route>2<!-- comment inside -->2</route>\r\n\
    <direction>North&#32;Bound</direction>\r\n\
    <latitude>41.925682067871094</latitude>\r\n\
    <finalStop><![CDATA[Paulina & Howard Terminal]]></finalStop>\r\n\
    <note>Clark &amp; Howard &lt;&gt;&quot;&apos; &#x263A;</note>\r\n\
    <city>S\u{e3}o Paulo \u{2014} M\u{fc}nchen \u{1F68C}</city>\r\n\
    <multi>line one\r\nline two\rline three</multi>\r\n\
    <mixed>a<![CDATA[<b>]]>c&amp;<?pi x?>d</mixed>\r\n\
    <empty/>\r\n\
    <blank></blank>\r\n\
  </bus>\r\n\
  <bus><route>9</route><id>1</id><route>X9</route></bus>\r\n\
  <bus/>\r\n\
</buses>\r\n\
<!-- trailing comment -->\r\n";

#[test]
fn parsers_agree_on_every_real_file_feature() {
    let recs = all_records(TRICKY.as_bytes());
    assert_eq!(
        recs,
        [
            rec(&[
                ("id", "7574"),
                ("route", "22"),
                ("direction", "North Bound"),
                ("latitude", "41.925682067871094"),
                ("finalStop", "Paulina & Howard Terminal"),
                ("note", "Clark & Howard <>\"' \u{263A}"),
                ("city", "S\u{e3}o Paulo \u{2014} M\u{fc}nchen \u{1F68C}"),
                ("multi", "line one\nline two\nline three"),
                ("mixed", "a<b>cd".replace("cd", "c&d").as_str()),
                ("empty", ""),
                ("blank", ""),
            ]),
            // A repeated field keeps its first position and its last value.
            rec(&[("route", "X9"), ("id", "1")]),
            rec(&[]),
        ]
    );
}

#[test]
fn nested_elements_follow_buses_to_dicts_exactly() {
    // Text is gathered since the last start tag, and not cleared at an end
    // tag: <a> gets "xy". A nested <bus> ends the record early.
    let doc = b"<r><bus><a><b>x</b>y</a><c>1</c><bus><d>2</d></bus><e>3</e></bus></r>";
    assert_eq!(
        all_records(doc),
        [rec(&[("b", "x"), ("a", "xy"), ("c", "1"), ("d", "2")])]
    );
}

#[test]
fn records_outside_a_bus_are_ignored() {
    let doc = b"<buses><id>0</id><bus><id>1</id></bus><time>now</time></buses>";
    assert_eq!(all_records(doc), [rec(&[("id", "1")])]);
}

#[test]
fn event_streams_do_not_depend_on_buffer_size() {
    let expected = events(XmlInput::from_bytes(TRICKY.as_bytes()));
    for (how, input) in inputs(TRICKY.as_bytes()) {
        assert_eq!(events(input), expected, "{how}");
    }
    // Adjacent character data is one event; attributes are decoded.
    assert!(expected.contains(&"('text', 'Clark & Howard <>\"\\' \u{263A}')".to_string()));
    assert!(expected.contains(&"('text', 'a<b>c&d')".to_string()));
    assert!(expected.contains(&"('start', ('buses', {'rt': '22', 'note': 'a & b'}))".to_string()));
    // An empty element is a start and an end; no whitespace outside the root.
    let i = expected.iter().position(|e| e.contains("'empty'")).unwrap();
    assert_eq!(expected[i + 1], "('end', 'empty')");
    assert!(expected.first().unwrap().starts_with("('start', ('buses'"));
    assert_eq!(expected.last().unwrap(), "('end', 'buses')");
}

#[test]
fn attribute_values_are_normalised() {
    let doc = b"<a x=\"1\r\n2\t3&#10;4\"/>";
    let ev = events(XmlInput::from_bytes(doc));
    assert_eq!(ev[0], "('start', ('a', {'x': '1 2 3\\n4'}))");
}

#[test]
fn long_text_is_sent_in_expat_sized_pieces() {
    let long = "x".repeat(200_000);
    let doc = format!("<a>{long}&amp;{long}</a>");
    for (how, input) in inputs(doc.as_bytes()) {
        let mut pieces = Vec::new();
        expat_parse(
            input,
            event_fn(|ev| {
                if let XmlEvent::Text(t) = *ev {
                    pieces.push(t.len());
                }
                Ok(Flow::Continue)
            }),
        )
        .unwrap();
        assert_eq!(pieces.iter().sum::<usize>(), 400_001, "{how}");
        // Coalescing stops at 64 KiB unless a single piece is longer.
        assert!(pieces.len() >= 2, "{how}: {pieces:?}");
    }
}

#[test]
fn stop_ends_the_parse_quietly_and_closes() {
    let doc = "<buses><bus><id>1</id></bus><bus><id>2</id></bus><bus><id>3</id></bus></buses>";
    for (how, input) in inputs(doc.as_bytes()) {
        let mut out = Collect::new();
        expat_parse(
            input,
            records(
                "bus",
                (&mut out).with_map(|r: &Record| r.clone()).with_take(2),
            ),
        )
        .unwrap();
        assert_eq!(out.items().len(), 2, "{how}");
        assert!(out.is_closed(), "{how}");
    }
}

#[test]
fn a_stage_error_returns_at_once_without_close() {
    struct Fails {
        closed: bool,
    }
    impl Stage<&Record> for Fails {
        fn send(&mut self, _: &Record) -> copipe::Result<Flow> {
            Err(copipe::Error::usage("stage failed"))
        }
    }

    impl Lifecycle for Fails {
        fn flush(&mut self) -> copipe::Result<()> {
            Ok(())
        }
        fn close(&mut self) -> copipe::Result<()> {
            self.closed = true;
            Ok(())
        }
    }

    let mut f = Fails { closed: false };
    let err = expat_parse(
        XmlInput::from_bytes(b"<buses><bus><id>1</id></bus></buses>").with_path("x.xml"),
        records("bus", &mut f),
    )
    .unwrap_err();
    assert!(err.to_string().contains("stage failed"), "{err}");
    assert!(!f.closed);
}

#[test]
fn generated_feeds_parse_identically_everywhere() {
    let mut doc = Vec::new();
    copipe::xml::generate_buses(&mut doc, 40_000, 3).unwrap();
    let recs = all_records(&doc);
    assert!(recs.len() > 50);
    for r in &recs {
        assert_eq!(r.get("direction"), r.get("patternDirection"));
        assert!(r.get("finalStop").is_some_and(|s| !s.contains("&amp;")));
    }
    assert!(recs
        .iter()
        .any(|r| r.get("finalStop").is_some_and(|s| s.contains('&'))));
}

/// A field value and how to write it.
fn value() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('Z'),
            Just('7'),
            Just(' '),
            Just('&'),
            Just('<'),
            Just('>'),
            Just('"'),
            Just('\''),
            Just('\n'),
            Just('\r'),
            Just('\t'),
            Just(']'),
            Just('\u{e9}'),
            Just('\u{263A}'),
            Just('\u{1F68C}'),
        ],
        0..12,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn escape(v: &str, style: u8) -> String {
    let mut out = String::new();
    for c in v.chars() {
        match (c, style % 3) {
            ('\r', _) => out.push_str("&#13;"),
            ('&', _) => out.push_str("&amp;"),
            ('<', _) => out.push_str("&lt;"),
            ('>', 1) => out.push_str("&gt;"),
            // `]]>` is not allowed in character data.
            ('>', _) if out.ends_with("]]") => out.push_str("&gt;"),
            ('"', 1) => out.push_str("&quot;"),
            (c, 2) if !c.is_ascii() => out.push_str(&format!("&#x{:X};", c as u32)),
            (c, _) => out.push(c),
        }
    }
    out
}

/// Writes one value: escaped text, or CDATA when possible, perhaps split.
fn write_value(v: &str, style: u8) -> String {
    if style >= 3 && !v.contains("]]") && !v.contains('\r') && !v.is_empty() {
        let mid = v
            .char_indices()
            .nth(v.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        let (a, b) = v.split_at(mid);
        return format!("{}<![CDATA[{b}]]>", escape(a, style));
    }
    escape(v, style)
}

fn bus_doc() -> impl Strategy<Value = (String, Vec<Record>)> {
    let name = "[a-zA-Z][a-zA-Z0-9]{0,6}";
    let field = (name, value(), 0u8..6, 0u8..4);
    proptest::collection::vec(proptest::collection::vec(field, 0..6), 0..5).prop_map(|buses| {
        let mut doc = String::from("<?xml version=\"1.0\"?>\n<buses>");
        let mut expected = Vec::new();
        for bus in buses {
            doc.push_str("\n  <bus>");
            let mut r = Record::new();
            for (name, v, style, gap) in bus {
                match gap {
                    0 => doc.push_str("\n    "),
                    1 => doc.push_str("<!-- c -->"),
                    2 => doc.push_str("\r\n"),
                    _ => {}
                }
                doc.push_str(&format!("<{name}>{}</{name}>", write_value(&v, style)));
                r.set(&name, &v);
            }
            doc.push_str("\n  </bus>");
            expected.push(r);
        }
        doc.push_str("\n</buses>\n");
        (doc, expected)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_bus_documents_roundtrip_into_records((doc, expected) in bus_doc()) {
        // Values were written with `&#13;` for every CR, so they come back
        // exactly; `all_records` also checks all parsers and buffers agree.
        let got = all_records(doc.as_bytes());
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn a_sax_handler_is_closed_before_a_parse_error_is_returned() {
    #[derive(Default)]
    struct Log(Vec<String>);
    impl copipe::xml::ContentHandler for Log {
        fn start_element(
            &mut self,
            name: String,
            attrs: Vec<(String, String)>,
        ) -> copipe::Result<Flow> {
            self.0.push(format!("start {name} {attrs:?}"));
            Ok(Flow::Continue)
        }
        fn characters(&mut self, text: String) -> copipe::Result<Flow> {
            self.0.push(format!("text {text}"));
            Ok(Flow::Continue)
        }
        fn end_element(&mut self, name: String) -> copipe::Result<Flow> {
            self.0.push(format!("end {name}"));
            Ok(Flow::Continue)
        }
        fn close(&mut self) -> copipe::Result<()> {
            self.0.push("close".into());
            Ok(())
        }
    }
    let mut log = Log::default();
    let err = sax_parse(XmlInput::from_bytes(b"<a k='v'>x&amp;y</b>"), &mut log).unwrap_err();
    assert!(err.to_string().contains("expected `</a>`"), "{err}");
    // Character data comes in pieces (SAX may split it); owned attributes.
    assert_eq!(
        log.0,
        [
            "start a [(\"k\", \"v\")]",
            "text x",
            "text &",
            "text y",
            "close"
        ]
    );
}

#[test]
fn iterparse_elements_see_text_tail_attributes_and_children() {
    let doc = b"<r><bus id='7'>head<route>22</route>mid<run>P1</run>tail</bus>after<bus/></r>";
    let mut seen = Vec::new();
    copipe::xml::iterparse_elements(XmlInput::from_bytes(doc), "bus", |bus| {
        // `Iterator::map` by name: `StageExt::map` is in scope too.
        let kids: Vec<String> = bus
            .children()
            .map(|c| format!("{}={}|{}", c.tag(), c.text(), c.tail()))
            .collect();
        seen.push(format!(
            "{} {:?} {} {:?}",
            bus.tag(),
            bus.get("id"),
            bus.text(),
            kids
        ));
        Ok(Flow::Continue)
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            "bus Some(\"7\") head [\"route=22|mid\", \"run=P1|tail\"]",
            "bus None  []",
        ]
    );
}
