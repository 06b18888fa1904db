//! `ParallelParse` against `expat_parse`: byte-identical output, identical
//! errors (message, line, column, byte offset) and the same missing-field
//! counts, on tricky documents cut into many chunks, where guessed cuts
//! fall inside comments, CDATA sections, processing instructions,
//! attribute values and nested elements, and with malformed input in any
//! chunk.

use copipe::xml::{
    bus_locations, expat_parse, json_lines, records, MissingFields, ParallelParse, Record, XmlInput,
};
use copipe::{Flow, Lifecycle, Stage};
use proptest::prelude::*;

/// What a parse produced: the output, the error (as text, with its kind's
/// fields), and the missing-field counts of the CSV form.
#[derive(Debug, PartialEq)]
struct Outcome {
    json: String,
    csv: String,
    error: Option<String>,
    missing: MissingFields,
}

fn error_text(r: copipe::Result<()>) -> Option<String> {
    r.err().map(|e| format!("{e} / {:?}", e.kind()))
}

fn sequential(doc: &[u8]) -> Outcome {
    let mut json = Vec::new();
    let r1 = expat_parse(
        XmlInput::from_bytes(doc).with_path("doc.xml"),
        records("bus", json_lines(&mut json)),
    );
    let mut csv = Vec::new();
    let mut show = records("bus", bus_locations(&mut csv).quiet());
    let r2 = expat_parse(XmlInput::from_bytes(doc).with_path("doc.xml"), &mut show);
    let missing = show.get_ref().missing_fields();
    drop(show);
    let error = error_text(r1);
    assert_eq!(error, error_text(r2));
    Outcome {
        json: String::from_utf8_lossy(&json).into_owned(),
        csv: String::from_utf8_lossy(&csv).into_owned(),
        error,
        missing,
    }
}

/// The parallel outcome, and how many chunks made up the parse.
fn parallel(doc: &[u8], threads: usize, chunk: usize) -> (Outcome, usize) {
    let p = ParallelParse::new("bus")
        .threads(threads)
        .chunk_bytes(chunk)
        .with_path("doc.xml");
    let mut json = Vec::new();
    let (chunks, r1) = p.run(doc, |w| records("bus", json_lines(w)), &mut json);
    let mut csv = Vec::new();
    let (stages, r2) = p.run(doc, |w| records("bus", bus_locations(w).quiet()), &mut csv);
    let mut missing = MissingFields::default();
    for s in &stages {
        missing.add(&s.get_ref().missing_fields());
    }
    let error = error_text(r1);
    assert_eq!(error, error_text(r2));
    let out = Outcome {
        json: String::from_utf8_lossy(&json).into_owned(),
        csv: String::from_utf8_lossy(&csv).into_owned(),
        error,
        missing,
    };
    (out, chunks.len())
}

/// Checks that the parallel parse equals the sequential one for these
/// settings; returns the number of chunks used.
fn check(doc: &[u8], threads: usize, chunk: usize) -> usize {
    let want = sequential(doc);
    let (got, chunks) = parallel(doc, threads, chunk);
    assert_eq!(
        got,
        want,
        "threads {threads}, chunk {chunk}, doc:\n{}",
        String::from_utf8_lossy(doc)
    );
    chunks
}

/// Every chunk size from 1 byte to 300, then every 97th to the whole
/// document, on 2 and 3 threads.
fn check_every_cut(doc: &[u8]) -> usize {
    let mut most = 0;
    let sizes = (1..=300).chain((301..=doc.len() + 1).step_by(97));
    for chunk in sizes.filter(|&c| c <= doc.len() + 1) {
        let threads = 2 + chunk % 2;
        most = most.max(check(doc, threads, chunk));
    }
    most
}

const BUS: &str = "<bus><id>1</id><route>22</route><direction>North Bound</direction>\
                   <latitude>41.9</latitude><longitude>-87.6</longitude></bus>";

/// Documents where searching for `<bus` finds false cuts.
fn tricky() -> Vec<(&'static str, String)> {
    vec![
        ("plain", format!("<buses>\n{BUS}\n{BUS}\n{BUS}\n</buses>\n")),
        (
            "cut in a comment",
            format!("<buses>{BUS}<!-- <bus><id>9</id></bus> -->{BUS}<!--<bus>-->\n</buses>"),
        ),
        (
            "cut in CDATA",
            format!(
                "<buses>{BUS}<bus><id>2</id><note><![CDATA[<bus><id>3</id></bus> <bus>]]></note></bus>{BUS}</buses>"
            ),
        ),
        (
            "cut in CDATA at the root level",
            format!("<buses>{BUS}<![CDATA[ <bus> <bus/> ]]>{BUS}</buses>"),
        ),
        (
            "cut in a processing instruction",
            format!("<buses>{BUS}<?pi <bus> <bus/> ?>{BUS}</buses>"),
        ),
        (
            "cut in an attribute value",
            format!("<buses>{BUS}<bus note='a <bus> b' x=\"<bus/>\"><id>4</id></bus>{BUS}</buses>"),
        ),
        (
            "cut in a nested element",
            format!("<buses>{BUS}<group>\n<bus><id>5</id></bus><bus><id>6</id></bus></group>{BUS}</buses>"),
        ),
        (
            "cut after text at the root level",
            format!("<buses>text &amp; more{BUS}x<!--c-->y{BUS}&#65;{BUS}</buses>"),
        ),
        (
            "empty buses and missing fields",
            format!("<buses><bus/>{BUS}<bus ><id>7</id></bus><bus\n/>{BUS}</buses>"),
        ),
        (
            "crlf and non-ascii",
            format!("<buses>\r\n<bus><id>\u{e9}\r\n\u{1F68C}</id></bus>\r\n{BUS}\r\n<bus><id>8</id></bus></buses>\r\n"),
        ),
        (
            "prologue and trailer",
            format!("\u{feff}<?xml version=\"1.0\"?>\n<!DOCTYPE buses>\n<!-- <bus> -->\n<buses a=\"1\">{BUS}{BUS}</buses>\n<!-- <bus> -->\n"),
        ),
        ("root named like the boundary", format!("<bus>{BUS}{BUS}</bus>")),
        ("busy, not bus", format!("<buses><busy>x</busy>{BUS}<busy/>{BUS}</buses>")),
    ]
}

/// Malformed documents: the error may lie in any chunk.
fn malformed() -> Vec<(&'static str, String)> {
    vec![
        ("unclosed root", format!("<buses>{BUS}{BUS}{BUS}")),
        ("unclosed bus", format!("<buses>{BUS}{BUS}<bus><id>1</id>")),
        ("truncated tag", format!("<buses>{BUS}{BUS}<bus><id")),
        (
            "mismatched end",
            format!("<buses>{BUS}<bus><id>1</route></bus>{BUS}</buses>"),
        ),
        (
            "unmatched end",
            format!("<buses>{BUS}{BUS}</buses></buses>"),
        ),
        (
            "bad entity late",
            format!("<buses>{BUS}{BUS}<bus><id>&nope;</id></bus></buses>"),
        ),
        (
            "bad entity early",
            format!("<buses><bus><id>&nope;</id></bus>{BUS}{BUS}</buses>"),
        ),
        (
            "unclosed comment",
            format!("<buses>{BUS}<!-- <bus> {BUS}</buses>"),
        ),
        (
            "unclosed CDATA",
            format!("<buses>{BUS}<bus><id><![CDATA[<bus>{BUS}</buses>"),
        ),
        (
            "double hyphen",
            format!("<buses>{BUS}<!-- <bus> -- -->{BUS}</buses>"),
        ),
        (
            "bad attribute",
            format!("<buses>{BUS}<bus x=1>{BUS}</bus></buses>"),
        ),
        ("second root", format!("<buses>{BUS}{BUS}</buses><buses/>")),
        (
            "text after root",
            format!("<buses>{BUS}{BUS}</buses>\n junk"),
        ),
        (
            "deep nesting",
            format!("<buses>{BUS}{}{BUS}</buses>", "<a>".repeat(4100)),
        ),
        (
            "bad char ref",
            format!("<buses>{BUS}\n\n<bus><id>&#1;</id></bus>{BUS}</buses>"),
        ),
    ]
}

#[test]
fn tricky_documents_give_the_same_output_at_every_chunk_size() {
    for (name, doc) in tricky() {
        let most = check_every_cut(doc.as_bytes());
        eprintln!("{name}: up to {most} chunks");
        let want_cuts = !name.starts_with("root named");
        assert_eq!(most > 1, want_cuts, "{name}: {most} chunks at most");
    }
}

#[test]
fn malformed_documents_give_the_same_error_at_every_chunk_size() {
    for (name, doc) in malformed() {
        let want = sequential(doc.as_bytes());
        assert!(want.error.is_some(), "{name} is not malformed");
        check_every_cut(doc.as_bytes());
    }
}

#[test]
fn invalid_utf8_in_a_later_chunk_gives_the_same_error() {
    let mut doc = format!("<buses>{BUS}{BUS}<bus><id>").into_bytes();
    doc.extend_from_slice(b"a\xffb</id></bus>");
    doc.extend_from_slice(format!("{BUS}</buses>").as_bytes());
    assert!(sequential(&doc).error.unwrap().contains("invalid UTF-8"));
    check_every_cut(&doc);
}

#[test]
fn a_generated_feed_is_cut_into_many_chunks_with_identical_output() {
    let mut feed = Vec::new();
    copipe::xml::generate_buses(&mut feed, 300_000, 7).unwrap();
    for (threads, chunk) in [(2, 1), (2, 4096), (3, 10_000), (2, 100_000), (4, 777)] {
        let chunks = check(&feed, threads, chunk);
        assert!(chunks > 2, "{chunks} chunks for chunk size {chunk}");
    }
    // Late corruption: the error and everything before it match.
    let at = feed.len() * 3 / 4;
    let mut bad = feed.clone();
    bad.splice(at..at, b"</oops>".iter().copied());
    assert!(sequential(&bad).error.is_some());
    check(&bad, 2, 5000);
    bad.truncate(at + 3);
    check(&bad, 2, 5000);
}

/// A stage that asks to stop at the record whose id is "stop".
struct StopAt<S>(S);

impl<'r, S: Stage<&'r Record>> Stage<&'r Record> for StopAt<S> {
    fn send(&mut self, r: &'r Record) -> copipe::Result<Flow> {
        if r.get("id") == Some("stop") {
            return Ok(Flow::Stop);
        }
        self.0.send(r)
    }
}

impl<S: Lifecycle> Lifecycle for StopAt<S> {
    fn flush(&mut self) -> copipe::Result<()> {
        self.0.flush()
    }
    fn close(&mut self) -> copipe::Result<()> {
        self.0.close()
    }
}

#[test]
fn a_stop_in_one_chunk_ends_the_whole_parse() {
    let doc = format!("<buses>{BUS}{BUS}<bus><id>stop</id></bus>{BUS}{BUS}</buses>");
    let mut want = Vec::new();
    expat_parse(
        XmlInput::from_bytes(doc.as_bytes()),
        records("bus", StopAt(json_lines(&mut want))),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&want).lines().count(), 2);
    for chunk in 1..doc.len() {
        let mut got = Vec::new();
        let (_, r) = ParallelParse::new("bus").threads(2).chunk_bytes(chunk).run(
            doc.as_bytes(),
            |w| records("bus", StopAt(json_lines(w))),
            &mut got,
        );
        r.unwrap();
        assert_eq!(got, want, "chunk {chunk}");
    }
}

#[test]
fn a_closed_output_ends_the_parse_quietly() {
    struct Closed;
    impl std::io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }
    let doc = format!("<buses>{BUS}{BUS}{BUS}</buses>");
    let (_, r) = ParallelParse::new("bus").threads(2).chunk_bytes(10).run(
        doc.as_bytes(),
        |w| records("bus", json_lines(w)),
        Closed,
    );
    r.unwrap();
}

/// One item at the root level of a random document.
fn item() -> impl Strategy<Value = String> {
    let field = (
        prop_oneof![
            Just("id"),
            Just("route"),
            Just("direction"),
            Just("latitude"),
            Just("x")
        ],
        prop_oneof![
            Just("22".to_string()),
            Just("North Bound".to_string()),
            Just("a &amp; b".to_string()),
            Just("<![CDATA[<bus>]]>".to_string()),
            Just("<!-- <bus> -->1".to_string()),
            Just("\u{e9}\r\n".to_string()),
            Just(String::new()),
        ],
    );
    prop_oneof![
        4 => proptest::collection::vec(field, 0..5).prop_map(|fs| {
            let mut s = String::from("<bus>");
            for (n, v) in fs {
                s += &format!("<{n}>{v}</{n}>");
            }
            s + "</bus>"
        }),
        1 => Just("<bus/>".to_string()),
        1 => Just("<!-- <bus><id>9</id></bus> -->".to_string()),
        1 => Just("<?pi <bus> ?>".to_string()),
        1 => Just("<![CDATA[ <bus> ]]>".to_string()),
        1 => Just("<bus note='<bus>'><id>4</id></bus>".to_string()),
        1 => Just("<g><bus><id>5</id></bus></g>".to_string()),
        1 => Just("\r\n".to_string()),
        1 => Just("t&#65;".to_string()),
    ]
}

/// A random document, perhaps damaged: `(doc, damage)`.
fn document() -> impl Strategy<Value = Vec<u8>> {
    let damage = prop_oneof![
        3 => Just(None),
        1 => Just(Some(&b"</nope>"[..])),
        1 => Just(Some(&b"&bad;"[..])),
        1 => Just(Some(&b"\xff"[..])),
        1 => Just(Some(&b"<a b=1>"[..])),
        1 => Just(Some(&b"<!--"[..])),
        1 => Just(Some(&b""[..])),
    ];
    (
        proptest::collection::vec(item(), 0..12),
        damage,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(items, damage, at)| {
            let mut doc = format!(
                "<?xml version=\"1.0\"?>\n<buses>{}</buses>\n",
                items.concat()
            )
            .into_bytes();
            let at = at.index(doc.len() + 1);
            match damage {
                None => {}
                // Empty damage: the document is cut short there.
                Some(b"") => doc.truncate(at),
                Some(d) => {
                    doc.splice(at..at, d.iter().copied());
                }
            }
            doc
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parallel_parse_equals_sequential_parse(
        doc in document(),
        threads in 1usize..4,
        chunk in 1usize..80,
    ) {
        let want = sequential(&doc);
        let (got, _) = parallel(&doc, threads, chunk);
        prop_assert_eq!(got, want);
    }
}

/// One byte-level change to a document: the bytes it may bring in are the
/// ones markup and the `Char` and `Name` checks care about.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    /// Copies a run of the document to another place.
    Copy(prop::sample::Index, usize, prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        Just(b'<'),
        Just(b'>'),
        Just(b'/'),
        Just(b'&'),
        Just(b';'),
        Just(b'"'),
        Just(b'\''),
        Just(b'='),
        Just(b' '),
        Just(b'!'),
        Just(b'?'),
        Just(b'-'),
        Just(b']'),
        Just(b'['),
        Just(b'1'),
        Just(b'b'),
        Just(b'.'),
        Just(0u8),
        Just(0x0c),
        Just(b'\r'),
        Just(0xc3),
        Just(0xff),
        any::<u8>(),
    ];
    let at = any::<prop::sample::Index>;
    prop_oneof![
        (at(), byte.clone()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (at(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        at().prop_map(Mutation::Delete),
        (at(), 1usize..24, at()).prop_map(|(i, n, to)| Mutation::Copy(i, n, to)),
    ]
}

fn mutate(doc: &mut Vec<u8>, m: &Mutation) {
    if doc.is_empty() {
        return;
    }
    match m {
        Mutation::Replace(i, b) => {
            let i = i.index(doc.len());
            doc[i] = *b;
        }
        Mutation::Insert(i, b) => {
            let i = i.index(doc.len() + 1);
            doc.insert(i, *b);
        }
        Mutation::Delete(i) => {
            doc.remove(i.index(doc.len()));
        }
        Mutation::Copy(from, n, to) => {
            let from = from.index(doc.len());
            let run = doc[from..(from + n).min(doc.len())].to_vec();
            let to = to.index(doc.len() + 1);
            doc.splice(to..to, run);
        }
    }
}

/// A random well-formed document (no damage: the one item of `item()`
/// with a `<` in an attribute value gets it escaped).
fn well_formed() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(item(), 0..12).prop_map(|items| {
        format!(
            "<?xml version=\"1.0\"?>\n<buses>{}</buses>\n",
            items.concat().replace("note='<bus>'", "note='&lt;bus>'")
        )
        .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Well-formed documents parse without error and identically; their
    /// byte-level mutations (most of them malformed) give the same records
    /// or the same error (message, line, column, byte offset) both ways.
    #[test]
    fn parallel_and_sequential_agree_on_mutated_documents(
        doc in well_formed(),
        mutations in proptest::collection::vec(mutation(), 0..4),
        threads in 1usize..4,
        chunk in 1usize..80,
    ) {
        let (got, _) = parallel(&doc, threads, chunk);
        let want = sequential(&doc);
        prop_assert_eq!(&want.error, &None);
        prop_assert_eq!(got, want);
        let mut broken = doc.clone();
        for m in &mutations {
            mutate(&mut broken, m);
        }
        let want = sequential(&broken);
        let (got, _) = parallel(&broken, threads, chunk);
        prop_assert_eq!(got, want, "doc: {}", String::from_utf8_lossy(&broken));
    }
}

/// A random document whose `<bus>` records sit at depth 2 or 3 (under one
/// or two wrapping elements), in one group or several (so that later
/// groups' parents differ from the first's, and cuts there cannot be
/// confirmed), perhaps damaged as [`document`] damages.
fn nested_document() -> impl Strategy<Value = Vec<u8>> {
    let group = || {
        let wrapper = prop_oneof![
            Just(vec!["channel"]),
            Just(vec!["a", "b"]),
            Just(vec!["channel", "bus"]),
            Just(vec!["g"]),
        ];
        (wrapper, proptest::collection::vec(item(), 0..10))
    };
    let damage = prop_oneof![
        3 => Just(None),
        1 => Just(Some(&b"</nope>"[..])),
        1 => Just(Some(&b"&bad;"[..])),
        1 => Just(Some(&b"\xff"[..])),
        1 => Just(Some(&b"</channel>"[..])),
        1 => Just(Some(&b"<channel>"[..])),
        1 => Just(Some(&b""[..])),
    ];
    (
        prop_oneof![3 => proptest::collection::vec(group(), 1..2), 1 => proptest::collection::vec(group(), 2..4)],
        damage,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(groups, damage, at)| {
            let mut body = String::new();
            for (wrap, items) in groups {
                for w in &wrap {
                    body += &format!("<{w}>");
                }
                body += "<title>t</title>";
                body += &items.concat();
                for w in wrap.iter().rev() {
                    body += &format!("</{w}>");
                }
            }
            let mut doc = format!("<?xml version=\"1.0\"?>\n<rss v='2'>\n{body}\n</rss>\n").into_bytes();
            let at = at.index(doc.len() + 1);
            match damage {
                None => {}
                Some(b"") => doc.truncate(at),
                Some(d) => {
                    doc.splice(at..at, d.iter().copied());
                }
            }
            doc
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Records deeper than the root's children: cuts are guessed before
    /// `<bus` and confirmed only with the first record's ancestors open;
    /// the output and errors (message, line, column, byte offset) are the
    /// sequential parse's, damaged documents and byte-level mutations
    /// included.
    #[test]
    fn records_at_depth_two_and_three_parse_as_sequentially(
        doc in nested_document(),
        mutations in proptest::collection::vec(mutation(), 0..3),
        threads in 1usize..4,
        chunk in 1usize..80,
    ) {
        let want = sequential(&doc);
        let (got, _) = parallel(&doc, threads, chunk);
        prop_assert_eq!(got, want, "doc: {}", String::from_utf8_lossy(&doc));
        let mut broken = doc.clone();
        for m in &mutations {
            mutate(&mut broken, m);
        }
        let want = sequential(&broken);
        let (got, _) = parallel(&broken, threads, chunk);
        prop_assert_eq!(got, want, "doc: {}", String::from_utf8_lossy(&broken));
    }
}

/// An RSS-shaped feed (`<rss><channel><bus>`) is cut into many chunks
/// that the parse confirms, at every chunk size, with the sequential
/// output; a second channel's records (other ancestors) are not cut.
#[test]
fn records_under_one_parent_deeper_than_the_roots_children_are_cut() {
    let mut doc = String::from("<rss>\n<channel><title>t</title>\n");
    for i in 0..60 {
        doc += &BUS.replace("<id>1</id>", &format!("<id>{i}</id>"));
        doc += "\n";
    }
    doc += "</channel>\n</rss>\n";
    assert!(check_every_cut(doc.as_bytes()) > 10);
    let mut two = String::from("<rss>\n<channel><title>t</title>\n");
    two += &BUS.repeat(20);
    two += "</channel><channel>x</channel>\n<channel><title>t</title>\n";
    two += &BUS.repeat(20);
    two += "</channel>\n</rss>\n";
    check_every_cut(two.as_bytes());
}
