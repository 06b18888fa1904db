//! The seed's performance contest (slides 71-74), on this machine.
//!
//! `cargo bench --bench contest` generates a 30 MB feed once (under the
//! target directory), then times, with medians of several runs:
//!
//! - the floor: a bare quick-xml borrowed-event scan, no stages; the same
//!   scan over the feed's two halves on two threads at once, which shows
//!   how much a second core gives on the machine at the time; and the scan
//!   as a process that reads the file and checks it as UTF-8 first (this
//!   binary run again), the floor of the end-to-end rows;
//! - each copipe source style through the same unchanged stages
//!   (`records` -> route 22 -> North Bound -> `bus_locations` into a null
//!   writer), in process, on the file's bytes in memory; and the
//!   expat-style source on all cores (`ParallelParse`, output into memory);
//! - `copipe buses FILE --route 22 --direction "North Bound"` end to end
//!   (process start to exit, output to /dev/null): the default (expat
//!   style, parallel on all cores), `--threads 1` (sequential), the SAX
//!   and iterparse styles, and from stdin (streamed, sequential);
//! - when `python3` is on the PATH, CPython's xml.sax, pyexpat and
//!   ElementTree.iterparse versions of the seed's pipeline
//!   (`benches/python/`), as processes on the same file;
//!
//! and prints the table with ratios to the floor and to CPython's expat.
//! The variants are timed in interleaved rounds (each round runs every
//! variant once), so drifts of a shared machine hit all rows alike.
//! Last, the peak RSS of `copipe buses -` reading a 1 GB feed from stdin
//! (streamed from `copipe gen buses`), measured with `/usr/bin/time`.
//!
//! Then the `copipe records` contest (issue 17): `copipe records` beside
//! lxml `iterparse` (when `import lxml` works) and `xmlstarlet sel` (when
//! on the PATH), each row skipped with a message otherwise, on the 30 MB
//! feed (`--element bus --where route=22`) and on a generated 200 MB
//! text-heavy MediaWiki-like dump (`--element page --fields title,id`),
//! with the single-thread bare quick-xml scan with UTF-8 validation as the
//! dump's floor. Every tool's output is first checked to be copipe's, byte
//! for byte (xmlstarlet's, which cannot quote CSV, against copipe's TSV
//! without a header).
//!
//! Set `CONTEST_RUNS` to change the number of runs (default 7, at least
//! 5), `CONTEST_SKIP_RSS=1` to skip the 1 GB run, `CONTEST_BASE_BIN` to
//! time another copipe binary's `buses` (default and `--threads 1`) in the
//! same rounds, `CONTEST_ONLY=seed` or
//! `CONTEST_ONLY=records` to run one of the two contests.

use copipe::Lifecycle;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use copipe::sinks::Count;
use copipe::xml::{
    bus_locations, element_records, expat_parse, filter_on_field, generate_buses, iterparse,
    record_writer, records, sax_parse, EventHandler, ParallelParse, Record, RecordFormat, XmlInput,
};
use copipe::Stage;

const FEED_BYTES: u64 = 30_000_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The seed's stages after `records`, into a null writer, counting the
/// lines printed so that a broken bench cannot silently measure nothing.
fn stages(lines: &mut Count) -> impl for<'a> Stage<&'a Record> + '_ {
    filter_on_field(
        "route",
        "22",
        filter_on_field(
            "direction",
            "North Bound",
            Counted {
                n: lines,
                target: bus_locations(io::sink()),
            },
        ),
    )
}

/// Counts the records passing through.
struct Counted<'n, S> {
    n: &'n mut Count,
    target: S,
}

impl<'r, S: Stage<&'r Record>> Stage<&'r Record> for Counted<'_, S> {
    fn send(&mut self, r: &'r Record) -> copipe::Result<copipe::Flow> {
        let _ = self.n.send(());
        self.target.send(r)
    }
}

impl<S: Lifecycle> Lifecycle for Counted<'_, S> {
    fn flush(&mut self) -> copipe::Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> copipe::Result<()> {
        self.target.close()
    }
}

fn run_process(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("process starts");
    let d = t.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    d
}

fn output_of(cmd: &mut Command) -> Vec<u8> {
    let o = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("process starts");
    assert!(o.status.success(), "{cmd:?} failed");
    o.stdout
}

struct Row {
    name: String,
    median: Duration,
}

/// The floor as a process: when the bench runs itself with
/// `CONTEST_FLOOR_FILE` set, it reads that file, checks it as UTF-8 and
/// scans it with bare quick-xml, as `copipe buses FILE` must start a
/// process and read its file before parsing.
fn floor_process(path: &std::ffi::OsStr) {
    let bytes = std::fs::read(path).expect("read the feed");
    assert!(std::str::from_utf8(&bytes).is_ok());
    let mut r = quick_xml::Reader::from_reader(&bytes[..]);
    let mut n = 0u64;
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => n += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(n > 3_000_000);
}

fn main() {
    if let Some(path) = std::env::var_os("CONTEST_FLOOR_FILE") {
        floor_process(&path);
        return;
    }
    // `cargo test --all-targets` runs bench binaries too, without
    // `--bench`: the contest takes minutes, so it only runs under
    // `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("contest: run with `cargo bench --bench contest`");
        return;
    }
    let runs: usize = std::env::var("CONTEST_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(5);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("contest");
    std::fs::create_dir_all(&dir).expect("target dir");
    let feed = dir.join("allroutes-30mb.xml");
    if std::fs::metadata(&feed).map(|m| m.len()).unwrap_or(0) < FEED_BYTES {
        eprintln!("generating {} ...", feed.display());
        let f = std::fs::File::create(&feed).expect("create feed");
        generate_buses(io::BufWriter::new(f), FEED_BYTES, 1).expect("write feed");
    }
    let copipe = env!("CARGO_BIN_EXE_copipe");
    let only = std::env::var("CONTEST_ONLY").unwrap_or_default();
    if only == "records" {
        records_contest(runs, &dir, &feed, copipe);
        return;
    }
    let bytes = std::fs::read(&feed).expect("read feed");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "contest: {} ({:.1} MB), {runs} runs each, medians; machine: {} cores, load {}",
        feed.display(),
        bytes.len() as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // The expected answer, from the binary: every in-process run must
    // match its line count.
    let expected = output_of(
        Command::new(copipe)
            .args(["buses", "--route", "22", "--direction", "North Bound"])
            .arg(&feed),
    );
    let expected_lines = expected.iter().filter(|&&b| b == b'\n').count() as u64;
    assert!(expected_lines > 100, "the feed has too few North Bound 22s");

    // Every variant, timed in rounds: each round runs every variant once,
    // so that drifts of the shared machine's speed hit all of them alike.
    let mut variants: Vec<(String, Box<dyn FnMut() + '_>)> = Vec::new();

    // The floor: a bare quick-xml borrowed-event scan.
    variants.push((
        "quick-xml bare event scan, in memory (floor)".into(),
        Box::new(|| {
            let mut r = quick_xml::Reader::from_reader(&bytes[..]);
            let mut n = 0u64;
            loop {
                match r.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(_) => n += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(n > 3_000_000);
        }),
    ));

    // What the machine's second core gives right now: the same bare scan
    // over the two halves of the feed (cut before a `<bus>`) on two
    // threads at once. On an idle 2-core machine this is about half the
    // floor; on a busy shared one, parallel rows cannot beat it.
    {
        let bytes = &bytes;
        let half = bytes.len() / 2
            + memchr::memmem::find(&bytes[bytes.len() / 2..], b"<bus>").expect("a bus");
        variants.push((
            "quick-xml bare event scan, two halves on 2 threads (parallel floor)".into(),
            Box::new(move || {
                let scan = |part: &[u8]| {
                    let mut r = quick_xml::Reader::from_reader(part);
                    let mut n = 0u64;
                    // The second half starts inside the root: its last end
                    // tag is unmatched, which ends the count.
                    while let Ok(ev) = r.read_event() {
                        if matches!(ev, quick_xml::events::Event::Eof) {
                            break;
                        }
                        n += 1;
                    }
                    n
                };
                let n = std::thread::scope(|s| {
                    let first = s.spawn(|| scan(&bytes[..half]));
                    let second = scan(&bytes[half..]);
                    first.join().expect("scan thread") + second
                });
                assert!(n > 3_000_000);
            }),
        ));
    }

    // The same floor as a process that reads its file (this bench binary
    // run again): what every end-to-end row below pays besides parsing.
    {
        let me = std::env::current_exe().expect("the bench's own path");
        let mut cmd = Command::new(me);
        cmd.env("CONTEST_FLOOR_FILE", &feed);
        variants.push((
            "the same scan as a process: start, `fs::read`, `from_utf8`, scan (process floor)"
                .into(),
            Box::new(move || {
                run_process(&mut cmd);
            }),
        ));
    }

    for (name, style) in [
        ("copipe expat-style, in process, 1 thread", 0),
        ("copipe SAX-style, in process", 1),
        ("copipe iterparse-style, in process", 2),
    ] {
        let bytes = &bytes;
        variants.push((
            name.into(),
            Box::new(move || {
                let mut lines = Count::new();
                let input = XmlInput::from_bytes(bytes);
                let target = stages(&mut lines);
                match style {
                    0 => expat_parse(input, records("bus", target)),
                    1 => sax_parse(input, EventHandler::new(records("bus", target))),
                    _ => iterparse(input, "bus", target),
                }
                .expect("parse");
                assert_eq!(lines.count(), expected_lines);
            }),
        ));
    }
    {
        let bytes = &bytes;
        variants.push((
            format!("copipe expat-style, in process, ParallelParse ({cores} threads)"),
            Box::new(move || {
                let mut out = Vec::new();
                let (chunks, r) = ParallelParse::new("bus").run(
                    bytes,
                    |w| {
                        records(
                            "bus",
                            filter_on_field(
                                "route",
                                "22",
                                filter_on_field("direction", "North Bound", bus_locations(w)),
                            ),
                        )
                    },
                    &mut out,
                );
                r.expect("parse");
                assert!(chunks.len() > 1 || cores == 1);
                assert_eq!(
                    out.iter().filter(|&&b| b == b'\n').count() as u64,
                    expected_lines
                );
            }),
        ));
    }

    let processes: [(String, &[&str]); 4] = [
        (
            format!("`copipe buses FILE` (default: parallel, {cores} threads), end to end"),
            &[],
        ),
        (
            "`copipe buses --threads 1 FILE` (sequential expat), end to end".into(),
            &["--threads", "1"],
        ),
        (
            "`copipe buses --parser sax FILE`, end to end".into(),
            &["--parser", "sax"],
        ),
        (
            "`copipe buses --parser iterparse FILE`, end to end".into(),
            &["--parser", "iterparse"],
        ),
    ];
    for (name, extra) in processes {
        let mut cmd = Command::new(copipe);
        cmd.arg("buses")
            .args(extra)
            .args(["--route", "22", "--direction", "North Bound"])
            .arg(&feed);
        assert_eq!(output_of(&mut cmd), expected, "{name}");
        variants.push((
            name,
            Box::new(move || {
                run_process(&mut cmd);
            }),
        ));
    }
    // Another build of copipe beside this one, for a same-run comparison
    // (e.g. the code before a change): its default and `--threads 1` rows.
    if let Some(base) = std::env::var_os("CONTEST_BASE_BIN") {
        let label = Path::new(&base)
            .file_name()
            .map_or("base".into(), |n| n.to_string_lossy().into_owned());
        for (how, extra) in [
            ("default", &[][..]),
            ("--threads 1", &["--threads", "1"][..]),
        ] {
            let name = format!("`{label} buses FILE` ({how}; CONTEST_BASE_BIN), end to end");
            let mut cmd = Command::new(&base);
            cmd.arg("buses")
                .args(extra)
                .args(["--route", "22", "--direction", "North Bound"])
                .arg(&feed);
            assert_eq!(output_of(&mut cmd), expected, "{name}");
            variants.push((
                name,
                Box::new(move || {
                    run_process(&mut cmd);
                }),
            ));
        }
    }
    {
        let feed = &feed;
        variants.push((
            "`copipe buses - < FILE` (streaming, sequential), end to end".into(),
            Box::new(move || {
                let f = std::fs::File::open(feed).expect("feed");
                run_process(
                    Command::new(copipe)
                        .args(["buses", "-", "--route", "22", "--direction", "North Bound"])
                        .stdin(f),
                );
            }),
        ));
    }

    let python = Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let mut cpython_expat_row = None;
    if let Some(version) = &python {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python");
        for (label, script) in [
            ("xml.sax", "sax_buses.py"),
            ("pyexpat", "expat_buses.py"),
            ("ElementTree.iterparse", "iterbus.py"),
        ] {
            let mut cmd = Command::new("python3");
            cmd.arg(scripts.join(script)).arg(&feed);
            let out = output_of(&mut cmd);
            assert_eq!(
                out.iter().filter(|&&b| b == b'\n').count() as u64,
                expected_lines,
                "{script} disagrees"
            );
            if script == "expat_buses.py" {
                cpython_expat_row = Some(variants.len());
            }
            variants.push((
                format!("{version} {label}, seed pipeline, end to end"),
                Box::new(move || {
                    run_process(&mut cmd);
                }),
            ));
        }
    } else {
        eprintln!("python3 not found: the CPython rows are left out");
    }

    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for round in 0..=runs {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let t = Instant::now();
            f();
            // Round 0 warms up (page cache, allocator) and is not counted.
            if round > 0 {
                samples[i].push(t.elapsed());
            }
        }
    }
    let rows: Vec<Row> = variants
        .iter()
        .zip(samples)
        .map(|((name, _), s)| Row {
            name: name.clone(),
            median: median(s),
        })
        .collect();
    drop(variants);
    let floor = rows[0].median;
    let cpython_expat = cpython_expat_row.map(|i| rows[i].median);
    eprintln!(
        "contest: load after the runs {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    println!();
    println!(
        "| pipeline (30 MB feed, route 22 North Bound) | median | vs floor | vs CPython expat |"
    );
    println!("|---|---:|---:|---:|");
    for row in &rows {
        let vs_floor = row.median.as_secs_f64() / floor.as_secs_f64();
        let vs_py = cpython_expat.map_or("n/a".to_string(), |p| {
            let r = p.as_secs_f64() / row.median.as_secs_f64();
            if r >= 1.0 {
                format!("{r:.1}x faster")
            } else {
                format!("{:.1}x slower", 1.0 / r)
            }
        });
        println!(
            "| {} | {:.1} ms | {vs_floor:.2}x | {vs_py} |",
            row.name,
            row.median.as_secs_f64() * 1e3
        );
    }
    println!();

    if std::env::var_os("CONTEST_SKIP_RSS").is_none() {
        peak_rss(copipe);
    }
    if only != "seed" {
        records_contest(runs, &dir, &feed, copipe);
    }
}

/// Size of the generated MediaWiki-like dump.
const DUMP_BYTES: u64 = 200_000_000;

/// Writes a MediaWiki-export-like dump of about `target` bytes: a
/// `<siteinfo>`, then `<page>`s with `title`, `ns`, `id` and a `revision`
/// (its own `id`, a timestamp, a contributor with an `id`, and KBs of
/// wikitext with escaped markup: `&lt;ref&gt;`, `&amp;`, `&quot;`), so that
/// `page/id`, `revision/id` and `contributor/id` all exist, as in a real
/// dump, and almost every byte is text.
fn generate_dump(out: &mut impl io::Write, target: u64) -> io::Result<()> {
    const WORDS: [&str; 24] = [
        "the",
        "of",
        "river",
        "Chicago",
        "station",
        "[[Lake Michigan]]",
        "{{cite web}}",
        "&lt;ref&gt;",
        "&lt;/ref&gt;",
        "&amp;",
        "&quot;quoted&quot;",
        "population",
        "Straße",
        "東京",
        "''italic''",
        "'''bold'''",
        "==History==",
        "|-",
        "1871",
        "fire",
        "north",
        "bound",
        "bus",
        "route",
    ];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut written = 0u64;
    let mut buf = String::with_capacity(1 << 20);
    buf.push_str("<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\" version=\"0.10\" xml:lang=\"en\">\n  <siteinfo>\n    <sitename>Wikipedia</sitename>\n    <dbname>enwiki</dbname>\n  </siteinfo>\n");
    let mut id = 10u64;
    while written + (buf.len() as u64) < target {
        id += 1 + next() % 7;
        let words = 300 + next() % 1200;
        buf.push_str(&format!(
            "  <page>\n    <title>Article {id} &amp; {}</title>\n    <ns>0</ns>\n    <id>{id}</id>\n    <revision>\n      <id>{}</id>\n      <timestamp>2026-01-{:02}T12:00:00Z</timestamp>\n      <contributor>\n        <username>User{}</username>\n        <id>{}</id>\n      </contributor>\n      <text bytes=\"0\" xml:space=\"preserve\">",
            WORDS[(next() % 24) as usize],
            id * 100 + next() % 100,
            1 + next() % 28,
            next() % 5000,
            next() % 100000,
        ));
        for w in 0..words {
            if w > 0 {
                buf.push(if w % 17 == 0 { '\n' } else { ' ' });
            }
            buf.push_str(WORDS[(next() % 24) as usize]);
        }
        buf.push_str("</text>\n    </revision>\n  </page>\n");
        if buf.len() > 1 << 20 {
            out.write_all(buf.as_bytes())?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    buf.push_str("</mediawiki>\n");
    out.write_all(buf.as_bytes())?;
    out.flush()
}

fn lines(out: &[u8]) -> usize {
    out.iter().filter(|&&b| b == b'\n').count()
}

/// The version a tool reports, or None (with a message) when it is absent.
fn tool_version(cmd: &mut Command, missing: &str) -> Option<String> {
    let v = cmd.output().ok().filter(|o| o.status.success()).map(|o| {
        let s = String::from_utf8_lossy(&o.stdout);
        s.lines().next().unwrap_or("").trim().to_string()
    });
    if v.is_none() {
        eprintln!("{missing}: its rows are left out");
    }
    v
}

/// One query of the records contest, as each tool spells it.
struct Query<'q> {
    label: &'q str,
    file: &'q Path,
    copipe: Vec<&'q str>,
    /// lxml_records.py's ELEMENT FIELDS|- WHERE|- (the element and fields
    /// named as copipe names them).
    lxml: [&'q str; 3],
    /// `xmlstarlet sel`'s global options (`-T`: text, not escaped XML;
    /// `-N`: a namespace prefix), the XPath each record matches, and the
    /// prefix its field names take there; the template prints copipe's
    /// columns (from copipe's header), tab-separated.
    xmlstarlet: (Vec<&'q str>, &'q str, &'q str),
}

/// `xmlstarlet sel` arguments printing `columns` of each record matched by
/// `xpath`, one tab-separated line per record: what `copipe records
/// --format tsv --no-header` prints when no value holds a tab, newline or
/// backslash (which copipe escapes; the bench compares the two outputs, so
/// such a value would show). CSV would not do: xmlstarlet cannot quote.
fn xmlstarlet_args(q: &Query<'_>, columns: &str) -> Vec<String> {
    let (global, xpath, prefix) = &q.xmlstarlet;
    let mut a: Vec<String> = global.iter().map(|s| s.to_string()).collect();
    a.extend(["-t".into(), "-m".into(), xpath.to_string()]);
    for (i, c) in columns.split(',').enumerate() {
        if i > 0 {
            a.extend(["-o".into(), "\t".into()]);
        }
        a.extend(["-v".into(), format!("{prefix}{c}")]);
    }
    a.push("-n".into());
    a
}

/// `copipe records` beside lxml and xmlstarlet, on the bus feed and the
/// dump: medians of interleaved rounds, each tool's output first checked
/// to be copipe's, byte for byte (xmlstarlet's: copipe's TSV, no header).
fn records_contest(runs: usize, dir: &Path, feed: &Path, copipe: &str) {
    let dump = dir.join("mediawiki-200mb.xml");
    if std::fs::metadata(&dump).map(|m| m.len()).unwrap_or(0) < DUMP_BYTES {
        eprintln!("generating {} ...", dump.display());
        let f = std::fs::File::create(&dump).expect("create dump");
        generate_dump(&mut io::BufWriter::new(f), DUMP_BYTES).expect("write dump");
    }
    let lxml = tool_version(
        Command::new("python3").args(["-c", "import lxml.etree; print(lxml.etree.__version__)"]),
        "lxml not importable (pip install lxml)",
    );
    let xmlstarlet = tool_version(
        Command::new("xmlstarlet").arg("--version"),
        "xmlstarlet not found (apt-get install xmlstarlet)",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/lxml_records.py");
    let queries = [
        Query {
            label: "30 MB bus feed, --element bus --where route=22",
            file: feed,
            copipe: vec!["--element", "bus", "--where", "route=22"],
            lxml: ["bus", "-", "route=22"],
            xmlstarlet: (vec!["-T"], "//bus[route='22']", ""),
        },
        Query {
            label: "200 MB dump, --element page --fields title,id",
            file: &dump,
            copipe: vec!["--element", "page", "--fields", "title,id"],
            // Fields named as in the file (no prefix there): lxml's
            // `{namespace}title` is not what the columns are called.
            lxml: ["page", "title,id", "-"],
            xmlstarlet: (
                vec!["-N", "m=http://www.mediawiki.org/xml/export-0.10/", "-T"],
                "//m:page",
                "m:",
            ),
        },
    ];
    for q in &queries {
        let bytes = std::fs::read(q.file).expect("read input");
        let file = q.file;
        let copipe_args = |extra: &[&str]| {
            let mut c = Command::new(copipe);
            c.arg("records").arg(file).args(&q.copipe).args(extra);
            c
        };
        let want = output_of(&mut copipe_args(&[]));
        assert!(lines(&want) > 100, "{}: too few records", q.label);
        let header = &want[..memchr::memchr(b'\n', &want).expect("a header line")];
        let columns = std::str::from_utf8(header).expect("UTF-8 header");
        let mut variants: Vec<(String, Box<dyn FnMut() + '_>)> = Vec::new();
        if q.file == dump.as_path() {
            let (bytes, want) = (&bytes, &want);
            variants.push((
                "quick-xml bare event scan + UTF-8 validation, 1 thread, in memory (floor)".into(),
                Box::new(move || {
                    assert!(std::str::from_utf8(bytes).is_ok());
                    let mut r = quick_xml::Reader::from_reader(&bytes[..]);
                    let mut n = 0u64;
                    loop {
                        match r.read_event() {
                            Ok(quick_xml::events::Event::Eof) => break,
                            Ok(_) => n += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    assert!(n > 100_000);
                }),
            ));
            variants.push((
                "copipe element_records -> record_writer, 1 thread, in memory".into(),
                Box::new(move || {
                    // The source `copipe records` uses: the text of no
                    // wanted field (the pages' bodies) is not gathered.
                    use copipe::xml::expat_parse_wanted;
                    let mut out = Vec::new();
                    expat_parse_wanted(
                        XmlInput::from_bytes(bytes),
                        element_records(
                            "page",
                            record_writer(RecordFormat::Csv, &mut out).fields(["title", "id"]),
                        )
                        .only(["title", "id"]),
                    )
                    .expect("parse");
                    assert!(out == *want, "the in-memory row's output is not copipe's");
                }),
            ));
        }
        for (label, extra) in [
            ("`copipe records` (parallel, default), end to end", &[][..]),
            (
                "`copipe records --threads 1`, end to end",
                &["--threads", "1"][..],
            ),
        ] {
            let mut cmd = copipe_args(extra);
            assert!(output_of(&mut cmd) == want, "{label}: another output");
            variants.push((
                label.into(),
                Box::new(move || {
                    run_process(&mut cmd);
                }),
            ));
        }
        if let Some(version) = &lxml {
            let mut cmd = Command::new("python3");
            cmd.arg(&script).arg(file).args(q.lxml);
            let got = output_of(&mut cmd);
            assert!(got == want, "lxml's output is not copipe's on {}", q.label);
            variants.push((
                format!("lxml {version} iterparse (python3), end to end"),
                Box::new(move || {
                    run_process(&mut cmd);
                }),
            ));
        }
        if let Some(version) = &xmlstarlet {
            let mut cmd = Command::new("xmlstarlet");
            cmd.arg("sel").args(xmlstarlet_args(q, columns)).arg(file);
            let got = output_of(&mut cmd);
            let tsv = output_of(&mut copipe_args(&["--format", "tsv", "--no-header"]));
            assert!(
                got == tsv,
                "xmlstarlet's output is not copipe's on {}",
                q.label
            );
            variants.push((
                format!("xmlstarlet {version} sel, end to end"),
                Box::new(move || {
                    run_process(&mut cmd);
                }),
            ));
        }
        let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
        for round in 0..=runs {
            for (i, (_, f)) in variants.iter_mut().enumerate() {
                let t = Instant::now();
                f();
                // Round 0 warms up and is not counted.
                if round > 0 {
                    samples[i].push(t.elapsed());
                }
            }
        }
        let rows: Vec<Row> = variants
            .iter()
            .zip(samples)
            .map(|((name, _), s)| Row {
                name: name.clone(),
                median: median(s),
            })
            .collect();
        drop(variants);
        let lxml_row = rows
            .iter()
            .find(|r| r.name.starts_with("lxml"))
            .map(|r| r.median);
        eprintln!(
            "records contest: load after the runs {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        println!();
        println!("| {} | median | lxml / this | this / first row |", q.label);
        println!("|---|---:|---:|---:|");
        for row in &rows {
            let vs_lxml = lxml_row.map_or("n/a".to_string(), |l| {
                format!("{:.1}x", l.as_secs_f64() / row.median.as_secs_f64())
            });
            println!(
                "| {} | {:.1} ms | {vs_lxml} | {:.2}x |",
                row.name,
                row.median.as_secs_f64() * 1e3,
                row.median.as_secs_f64() / rows[0].median.as_secs_f64()
            );
        }
        println!();
    }
}

/// Peak RSS of `copipe buses -` reading a 1 GB feed from stdin, streamed
/// from the generator (no 1 GB file on disk).
fn peak_rss(copipe: &str) {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("/usr/bin/time not found: peak RSS not measured");
        return;
    }
    let script = format!(
        "'{copipe}' gen buses --mb 1000 --seed 2 | /usr/bin/time -f 'rss_kb=%M elapsed=%e' '{copipe}' buses - --route 22 --direction 'North Bound' > /dev/null"
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .stderr(Stdio::piped())
        .output()
        .expect("sh runs");
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err.lines().find(|l| l.starts_with("rss_kb=")).unwrap_or("");
    let kb: u64 = line
        .split_whitespace()
        .next()
        .and_then(|s| s.strip_prefix("rss_kb="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    println!(
        "peak RSS of `copipe buses -` on a 1 GB feed from stdin: {:.1} MB ({line})",
        kb as f64 / 1024.0
    );
    assert!(out.status.success() && kb > 0, "1 GB run failed: {err}");
}
