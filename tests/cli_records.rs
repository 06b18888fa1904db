//! `copipe records` through the real binary, compared with Python's
//! `xml.etree.ElementTree` and `csv` modules when python3 is present (a
//! fixed expected output otherwise). See issue 17.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn copipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_copipe"))
}

fn run(args: &[&str]) -> Output {
    copipe().args(args).output().expect("copipe runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "copipe failed: {}", stderr(o));
    stdout(o)
}

fn python3() -> Option<&'static str> {
    let found = Command::new("python3")
        .arg("-c")
        .arg("import xml.etree.ElementTree, csv, json")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("python3 not found: comparison with ElementTree skipped (fixed cases still run)");
    }
    found.then_some("python3")
}

/// Values that need quoting or escaping somewhere: commas, quotes, CR/LF,
/// tabs, backslashes, markup characters, non-ASCII, empty.
const VALUES: [&str; 10] = [
    "22",
    "North Bound",
    "a, b",
    "say \"hi\"",
    "line1\nline2",
    "tab\there",
    "back\\slash",
    "Paulina & Howard <Terminal>",
    "Straße 東京 ✓",
    "",
];

fn esc(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\n', "&#10;")
        .replace('\t', "&#9;")
}

/// Feeds of the three shapes, `n` records each, deterministic.
fn feed(shape: &str, n: usize) -> String {
    let mut d = String::from("<?xml version=\"1.0\"?>\n<!-- generated -->\n<feed>\n");
    for i in 0..n {
        let v = |k: usize| VALUES[(i * 7 + k * 3) % VALUES.len()];
        match shape {
            "attributes" => {
                d += &format!(
                    "  <item id=\"{i}\" name=\"{}\" note=\"{}\"/>\n",
                    esc(v(0)),
                    esc(v(1))
                )
            }
            "children" => {
                d += &format!(
                    "  <item>\n    <id>{i}</id>\n    <name>{}</name>\n",
                    esc(v(0))
                );
                // Every third lacks <note>; CDATA and a comment in text.
                if i % 3 != 0 {
                    d += &format!("    <note><![CDATA[{}]]></note>\n", v(1).replace("]]>", ""));
                }
                d += &format!("    <lat>4<!-- c -->1.{i}</lat>\n  </item>\n");
            }
            _ => {
                d += &format!(
                    "  <item id=\"{i}\">\n    <name lang=\"en\">{}</name>\n    <pos src=\"gps\">\n      <lat>41.{i}</lat>\n      <lon>-87.{i}</lon>\n    </pos>\n    <link>first {i}</link>\n    <link>second {i}</link>\n    <meta><tag k=\"a\">{}</tag><tag k=\"b\">x</tag></meta>\n  </item>\n",
                    esc(v(0)),
                    esc(v(2))
                );
            }
        }
    }
    d += "</feed>\n";
    d
}

/// The Python reference: ElementTree's view of each record as an ordered
/// list of fields, by the rules `copipe records --help` states.
const REFERENCE: &str = r#"
import sys, json, csv, xml.etree.ElementTree as ET

def fields(e):
    out, seen = [], set()
    def put(k, v):
        if k not in seen:
            seen.add(k)
            out.append([k, v])
    for k, v in e.attrib.items():
        put('@' + k, v)
    def walk(el, path):
        for c in el:
            p = path + '/' + c.tag if path else c.tag
            for k, v in c.attrib.items():
                put(p + '/@' + k, v)
            if len(c) == 0:
                put(p, c.text or '')
            else:
                walk(c, p)
    walk(e, '')
    return out

doc, element, mode, got = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
want = [fields(e) for e in ET.parse(doc).getroot().iter(element)]
if mode == 'json':
    with open(got, encoding='utf-8') as f:
        have = [json.loads(l, object_pairs_hook=lambda p: [list(x) for x in p]) for l in f]
else:
    cols = sys.argv[5].split(',')
    with open(got, newline='', encoding='utf-8') as f:
        rows = list(csv.reader(f))
    assert rows[0] == cols, (rows[0], cols)
    have = rows[1:]
    want = [[dict(r).get(c, '') for c in cols] for r in want]
if have != want:
    for i, (h, w) in enumerate(zip(have, want)):
        if h != w:
            print('record', i, 'copipe:', h, 'ElementTree:', w)
            break
    print('counts', len(have), len(want))
    sys.exit(1)
print(len(have))
"#;

/// Runs copipe on `doc` and has Python compare the output with
/// ElementTree's reading of the same file.
fn compare_with_python(py: &str, shape: &str, args: &[&str], mode: &str, cols: &str) {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join(format!("{shape}.xml"));
    std::fs::write(&doc, feed(shape, 300)).unwrap();
    let mut all = vec!["records", doc.to_str().unwrap(), "--element", "item"];
    all.extend_from_slice(args);
    let out = ok(&run(&all));
    let got = dir.path().join("out");
    std::fs::write(&got, &out).unwrap();
    let o = Command::new(py)
        .args(["-c", REFERENCE])
        .args([
            doc.as_path(),
            Path::new("item"),
            Path::new(mode),
            got.as_path(),
        ])
        .arg(cols)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{shape} {args:?}: differs from ElementTree:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "300", "{shape}");
}

#[test]
fn three_shapes_as_json_equal_element_tree() {
    let Some(py) = python3() else { return };
    for shape in ["attributes", "children", "nested"] {
        for threads in ["1", "2"] {
            compare_with_python(
                py,
                shape,
                &["--format", "json", "--threads", threads],
                "json",
                "",
            );
        }
    }
}

#[test]
fn csv_quoting_round_trips_through_python_csv() {
    let Some(py) = python3() else { return };
    let cases = [
        ("attributes", "@id,@name,@note,@missing"),
        ("children", "id,name,note,lat"),
        (
            "nested",
            "@id,name,name/@lang,pos/@src,pos/lat,link,meta/tag,meta/tag/@k",
        ),
    ];
    for (shape, cols) in cases {
        compare_with_python(py, shape, &["--fields", cols], "csv", cols);
        compare_with_python(
            py,
            shape,
            &["--fields", cols, "--bridge", "thread"],
            "csv",
            cols,
        );
    }
}

#[test]
fn fixed_output_of_the_nested_shape() {
    // The expected output written out, for machines without python3.
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("nested.xml");
    std::fs::write(&doc, feed("nested", 2)).unwrap();
    let d = doc.to_str().unwrap();
    assert_eq!(
        ok(&run(&["records", d, "--element", "item"])),
        "@id,name/@lang,name,pos/@src,pos/lat,pos/lon,link,meta/tag/@k,meta/tag\n\
         0,en,22,gps,41.0,-87.0,first 0,a,back\\slash\n\
         1,en,Paulina & Howard <Terminal>,gps,41.1,-87.1,first 1,a,\"say \"\"hi\"\"\"\n"
    );
    assert_eq!(
        ok(&run(&[
            "records",
            d,
            "--element",
            "/feed/item",
            "--format",
            "tsv",
            "--fields",
            "@id,meta/tag",
            "--no-header"
        ])),
        "0\tback\\\\slash\n1\tsay \"hi\"\n"
    );
    let json = ok(&run(&[
        "records",
        d,
        "--element",
        "feed/item",
        "--format",
        "json",
        "--fields",
        "@id,nope",
    ]));
    assert_eq!(
        json,
        "{\"@id\":\"0\",\"nope\":\"\"}\n{\"@id\":\"1\",\"nope\":\"\"}\n"
    );
}

/// A small feed for the filters: id, a route, a number or not.
fn filter_feed() -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let rows = [
        ("1", "22", "North Bound", "41.95"),
        ("2", "22", "South Bound", "41.80"),
        ("3", "9", "North Bound", "n/a"),
        ("4", "X9", "East Bound", "42"),
        ("5", "22", "North Bound", "  41.5 "),
    ];
    writeln!(f, "<buses>").unwrap();
    for (id, rt, dir, lat) in rows {
        writeln!(
            f,
            "<bus><id>{id}</id><route>{rt}</route><direction>{dir}</direction><latitude>{lat}</latitude></bus>"
        )
        .unwrap();
    }
    writeln!(f, "</buses>").unwrap();
    f
}

fn ids(file: &Path, wheres: &[&str]) -> (String, String) {
    let mut args = vec![
        "records",
        file.to_str().unwrap(),
        "--element",
        "bus",
        "--fields",
        "id",
        "--no-header",
    ];
    for w in wheres {
        args.extend(["--where", w]);
    }
    let o = run(&args);
    let out = ok(&o).lines().collect::<Vec<_>>().join(" ");
    (out, stderr(&o))
}

#[test]
fn every_filter_form() {
    let f = filter_feed();
    let p = f.path();
    let cases: [(&[&str], &str); 13] = [
        (&["route=22"], "1 2 5"),
        (&["route!=22"], "3 4"),
        (&["nope!=1"], "1 2 3 4 5"),
        (&["route~^X?9$"], "3 4"),
        (&["direction~North"], "1 3 5"),
        (&["latitude<41.8"], "5"),
        (&["latitude<=41.8"], "2 5"),
        (&["latitude>41.9"], "1 4"),
        (&["latitude>=42"], "4"),
        (&["route=22", "direction=North Bound"], "1 5"),
        (&["route=22", "latitude>41.6"], "1 2"),
        (&["nope=1"], ""),
        (&["route=22", "route!=22"], ""),
    ];
    for (wheres, want) in cases {
        let (got, err) = ids(p, wheres);
        assert_eq!(got, want, "{wheres:?}");
        let numeric = wheres.iter().any(|w| w.starts_with("latitude"));
        if numeric && !wheres.contains(&"route=22") {
            // Bus 3's "n/a" failed the comparison and was counted.
            assert!(
                err.contains("1 value was not a number"),
                "{wheres:?}: {err}"
            );
        } else {
            assert_eq!(err, "", "{wheres:?}");
        }
    }
}

/// A record is dropped as soon as a condition fails while it is read
/// (`ElementRecords::prefilter`), yet a value that is not a number is
/// counted only when its filter would have seen it, as in a chain of
/// filters applied in order.
#[test]
fn values_not_numbers_are_counted_in_the_filters_order() {
    let f = filter_feed();
    let p = f.path();
    let (got, err) = ids(p, &["latitude>41.6", "route=22"]);
    assert_eq!(got, "1 2");
    assert!(err.contains("1 value was not a number"), "{err}");
    let (got, err) = ids(p, &["route=22", "latitude>41.6"]);
    assert_eq!(got, "1 2");
    assert_eq!(err, "");
    let (got, err) = ids(p, &["route!=22", "direction~North", "latitude<50"]);
    assert_eq!(got, "");
    assert!(err.contains("1 value was not a number"), "{err}");
    let (got, err) = ids(p, &["route!=X9", "latitude<50", "latitude>0"]);
    assert_eq!(got, "1 2 5");
    assert!(err.contains("1 value was not a number"), "{err}");
}

#[test]
fn bad_conditions_are_refused_with_the_forms() {
    for bad in ["route", "=22", "latitude<north", "route~("] {
        let o = run(&["records", "--element", "bus", "--where", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(stderr(&o).contains("FIELD~REGEX"), "{bad}: {}", stderr(&o));
    }
    let o = run(&["records", "--element", "a//b"]);
    assert!(!o.status.success());
}

#[test]
fn missing_fields_are_one_warning_at_the_end() {
    let f = filter_feed();
    for threads in ["1", "2"] {
        let o = run(&[
            "records",
            f.path().to_str().unwrap(),
            "--element",
            "bus",
            "--fields",
            "id,operator,latitude",
            "--where",
            "latitude>0",
            "--threads",
            threads,
        ]);
        let out = ok(&o);
        assert_eq!(out.lines().count(), 5, "{out}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("4 records lacked a printed field, printed empty (operator: 4)")
                && err.contains("1 value was not a number"),
            "{err}"
        );
    }
}

#[test]
fn malformed_input_stops_with_the_position() {
    let doc = "<r>\n<i><a>1</a></i>\n<i><a>2</b></i></r>\n";
    let mut child = copipe()
        .args(["records", "-", "--element", "i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    // What came before the error is printed.
    assert_eq!(stdout(&o), "a\n1\n");
    assert!(
        stderr(&o).contains("<stdin>:3:8 (byte offset 27)"),
        "{}",
        stderr(&o)
    );
    // The same from a file, in parallel or not.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xml");
    let mut big = String::from("<r>\n");
    for i in 0..20000 {
        big += &format!("<i><a>{i}</a></i>\n");
    }
    let at = big.len();
    big += "<i><a>x</b></i></r>\n";
    std::fs::write(&path, &big).unwrap();
    for threads in ["1", "2"] {
        let o = run(&[
            "records",
            path.to_str().unwrap(),
            "--element",
            "i",
            "--threads",
            threads,
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(stdout(&o).lines().count(), 20001);
        assert!(
            stderr(&o).contains(&format!(":20002:8 (byte offset {})", at + 7)),
            "{}",
            stderr(&o)
        );
    }
}

/// The warning of a parallel parse counts the records of the document up
/// to the error, as the sequential parse's does: not those of chunks
/// parsed ahead, past the error, then dropped.
#[test]
fn the_warning_counts_only_the_records_before_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.xml");
    let mut doc = String::from("<buses>\n");
    for i in 0..60000 {
        let op = if i % 3 == 0 {
            String::new()
        } else {
            format!("<operator>{i}</operator>")
        };
        doc += &format!("<bus><id>{i}</id><route>{}</route>{op}</bus>\n", i % 5);
        if i == 20000 {
            doc += "<bus><id>x</id><route>1</route><operator>&bogus;</operator></bus>\n";
        }
    }
    doc += "</buses>\n";
    std::fs::write(&path, &doc).unwrap();
    let run_with = |threads: &str| {
        let o = run(&[
            "records",
            path.to_str().unwrap(),
            "--element",
            "bus",
            "--where",
            "route=1",
            "--threads",
            threads,
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    let (out, err) = run_with("1");
    assert!(err.contains("undefined entity `&bogus;`"), "{err}");
    assert!(err.contains("records lacked a printed field"), "{err}");
    for threads in ["2", "4"] {
        let (o, e) = run_with(threads);
        assert_eq!(e, err, "--threads {threads}");
        assert!(o == out, "--threads {threads}: another output");
    }
}
