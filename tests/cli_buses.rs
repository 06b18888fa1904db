//! `copipe buses` and `copipe gen buses`, through the real binary.

use std::io::{Read, Write};
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

/// Runs with `input` on stdin.
fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = copipe()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("copipe starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may stop reading early (an error); that is fine.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("copipe exits");
    writer.join().expect("writer thread");
    out
}

#[test]
fn readme_first_command_shows_north_bound_22_buses_from_the_sample() {
    let o = run(&["buses", "--route", "22", "--direction", "North Bound"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 3, "too few buses: {out}");
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 5, "{line}");
        assert_eq!(f[0], "22");
        assert_eq!(f[2], "\"North Bound\"");
        assert!(f[1].parse::<u32>().is_ok(), "{line}");
        let lat: f64 = f[3].parse().expect("latitude");
        let lon: f64 = f[4].parse().expect("longitude");
        assert!(
            (41.5..42.2).contains(&lat) && (-88.0..-87.4).contains(&lon),
            "{line}"
        );
    }
    // Issue 12: without FILE and with nothing piped in, one line says the
    // sample is read.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines().count() == 1 && err.contains("built-in sample"),
        "{err}"
    );
}

#[test]
fn all_parsers_and_inputs_print_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.xml");
    let g = run(&[
        "gen",
        "buses",
        "--mb",
        "0.2",
        "--seed",
        "5",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(g.status.success());
    let feed = std::fs::read(&path).unwrap();
    let base = run(&["buses", path.to_str().unwrap()]);
    assert!(base.status.success());
    assert!(stdout(&base).lines().count() > 300);
    for parser in ["expat", "sax", "iterparse"] {
        let f = run(&["buses", "--parser", parser, path.to_str().unwrap()]);
        assert_eq!(f.stdout, base.stdout, "{parser} from a file");
        let s = run_stdin(&["buses", "--parser", parser, "-"], &feed);
        assert!(s.status.success());
        assert_eq!(s.stdout, base.stdout, "{parser} from stdin");
    }
}

#[test]
fn where_filters_and_json_output() {
    let o = run(&[
        "buses",
        "--where",
        "revenue=true",
        "--where",
        "route=X9",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.lines().count() >= 1, "no X9 bus in the sample");
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(v["route"], "X9");
        assert_eq!(v["revenue"], "true");
        // Fields keep document order: id first, as in the feed.
        assert!(line.starts_with("{\"id\":"), "{line}");
        assert!(v["finalStop"]
            .as_str()
            .is_some_and(|s| !s.contains("&amp;")));
    }
    let bad = run(&["buses", "--where", "novalue"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("FIELD=VALUE"));
}

#[test]
fn no_filters_print_every_bus() {
    let all = run(&["buses"]);
    let sample = include_str!("../data/allroutes.xml");
    assert_eq!(
        stdout(&all).lines().count(),
        sample.matches("<bus>").count()
    );
}

#[test]
fn missing_fields_print_empty_and_are_counted_on_stderr() {
    let doc = b"<buses><bus><id>1</id><route>22</route></bus>\
                <bus><id>2</id><route>22</route><direction>North Bound</direction>\
                <latitude>41.9</latitude><longitude>-87.6</longitude></bus>\
                <bus><route>22</route></bus></buses>";
    let o = run_stdin(&["buses", "-"], doc);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o),
        "22,1,\"\",,\n22,2,\"North Bound\",41.9,-87.6\n22,,\"\",,\n"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: 2 records lacked a printed field, printed empty (id: 1, direction: 2, latitude: 2, longitude: 2)"),
        "{err}"
    );
}

#[test]
fn malformed_input_exits_2_with_position_after_printing_complete_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.xml");
    let doc = "<buses>\n<bus><id>1</id><route>22</route></bus>\n<bus><id>2</id><route>22</route></bus>\n<bus><id>3</id><rou";
    std::fs::write(&path, doc).unwrap();
    for parser in ["expat", "sax", "iterparse"] {
        let o = run(&["buses", "--parser", parser, path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{parser}");
        assert_eq!(stdout(&o), "22,1,\"\",,\n22,2,\"\",,\n", "{parser}");
        let err = String::from_utf8_lossy(&o.stderr);
        let want = format!(
            "copipe: {}:4:16 (byte offset 101): syntax error: tag not closed",
            path.display()
        );
        assert!(err.contains(&want), "{parser}: {err}");
        // The warning about empty fields still comes, for the records printed.
        assert!(err.contains("2 records lacked"), "{parser}: {err}");
    }
    let o = run_stdin(&["buses", "-"], doc.as_bytes());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("<stdin>:4:16 (byte offset 101)"));
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let o = run(&["buses", "/nonexistent/feed.xml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/nonexistent/feed.xml"), "{err}");
}

#[test]
fn gen_buses_is_deterministic_and_streams_into_buses() {
    let a = run(&["gen", "buses", "--mb", "0.1", "--seed", "9"]);
    let b = run(&["gen", "buses", "--mb", "0.1", "--seed", "9"]);
    let c = run(&["gen", "buses", "--mb", "0.1", "--seed", "10"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    assert!(
        (99_000..101_000).contains(&a.stdout.len()),
        "{}",
        a.stdout.len()
    );
    let text = String::from_utf8_lossy(&a.stdout);
    assert!(text.contains("<![CDATA[") && text.contains("&amp;"));
    for dir in ["North Bound", "South Bound", "East Bound", "West Bound"] {
        assert!(text.contains(dir), "{dir}");
    }
    let o = run_stdin(&["buses", "-"], &a.stdout);
    assert!(o.status.success());
    assert_eq!(stdout(&o).lines().count(), text.matches("<bus>").count());
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let mut child = copipe()
        .args(["gen", "buses", "--mb", "50"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 100];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty());

    // And `copipe buses` into a reader that goes away.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.xml");
    run(&["gen", "buses", "--mb", "3", "-o", path.to_str().unwrap()]);
    let mut child = copipe()
        .args(["buses", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The parallel parse of a file (the default on a multi-core machine, and
/// forced here with `--threads`) prints exactly what the sequential one
/// prints: same stdout, same stderr (warning, error with its position),
/// same exit status, whether the file is whole or broken late.
#[test]
fn threads_print_exactly_what_one_thread_prints() {
    let dir = tempfile::tempdir().unwrap();
    let feed = run(&["gen", "buses", "--mb", "3", "--seed", "5"]);
    assert!(feed.status.success());
    let text = String::from_utf8(feed.stdout).unwrap();
    // Some late buses lack their latitude: the warning counts them all.
    let cut = text.len() * 2 / 3;
    let late = text[cut..]
        .replacen("<latitude>", "<lat>", 5)
        .replacen("</latitude>", "</lat>", 5);
    let missing = format!("{}{late}", &text[..cut]);
    // Broken late: a mismatched end tag in the last chunks.
    let at = text.len() * 4 / 5;
    let at = at + text[at..].find("</id>").unwrap();
    let broken = format!("{}</route>{}", &text[..at], &text[at..]);
    for (name, doc) in [("whole", &text), ("missing", &missing), ("broken", &broken)] {
        let path = dir.path().join(format!("{name}.xml"));
        std::fs::write(&path, doc).unwrap();
        let path = path.to_str().unwrap();
        for args in [
            &["buses", path][..],
            &["buses", "--route", "22", "--direction", "North Bound", path],
            &["buses", "--format", "json", path],
        ] {
            let one = run(&[args, &["--threads", "1"]].concat());
            for threads in ["2", "3"] {
                let many = run(&[args, &["--threads", threads]].concat());
                assert_eq!(many.status.code(), one.status.code(), "{name} {args:?}");
                assert_eq!(many.stderr, one.stderr, "{name} {args:?}");
                assert!(many.stdout == one.stdout, "{name} {args:?}: stdout differs");
            }
            let err = String::from_utf8_lossy(&one.stderr);
            match name {
                "whole" => assert!(one.status.success() && err.is_empty(), "{err}"),
                "missing" if args.len() == 2 => {
                    assert!(err.contains("5 records lacked"), "{err}")
                }
                "broken" => {
                    assert_eq!(one.status.code(), Some(2));
                    assert!(
                        err.contains(&format!("{path}:")) && err.contains("byte offset"),
                        "{err}"
                    );
                }
                _ => {}
            }
        }
    }
}

// ---- today's CTA Bus Tracker (getvehicles), issue 17 -----------------------

/// A generated getvehicles response of about `mb` megabytes.
fn bustime_feed(mb: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    let o = run(&[
        "gen",
        "buses",
        "--format",
        "bustime",
        "--mb",
        mb,
        "-o",
        f.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    f
}

#[test]
fn a_getvehicles_response_filters_route_on_rt_whatever_the_bridge() {
    let f = bustime_feed("1");
    let p = f.path().to_str().unwrap();
    let doc = std::fs::read_to_string(p).unwrap();
    assert!(doc.contains("<bustime-response>") && doc.contains("<vid>"));
    let want = doc.matches("<rt>22</rt>").count();
    assert!(want > 10, "{want}");
    let inline = run(&["buses", p, "--route", "22"]);
    assert!(
        inline.status.success(),
        "{}",
        String::from_utf8_lossy(&inline.stderr)
    );
    let out = stdout(&inline);
    assert_eq!(out.lines().count(), want);
    for line in out.lines() {
        // rt,vid,"des",lat,lon
        assert!(line.starts_with("22,"), "{line}");
        assert!(
            line.contains(",\"") && line.matches(',').count() >= 4,
            "{line}"
        );
    }
    for extra in [
        &["--threads", "1"][..],
        &["--bridge", "thread"],
        &["--bridge", "process"],
        &["--parser", "sax"],
        &["--parser", "iterparse"],
    ] {
        let o = run(&[&["buses", p, "--route", "22"][..], extra].concat());
        assert_eq!(stdout(&o), out, "{extra:?}");
    }
    // From stdin the root element decides too.
    let o = run_stdin(
        &["buses", "-", "--route", "22", "--bridge", "process"],
        doc.as_bytes(),
    );
    assert_eq!(stdout(&o), out);
}

#[test]
fn direction_is_refused_on_a_getvehicles_response_with_a_hint() {
    let f = bustime_feed("0.05");
    let p = f.path().to_str().unwrap();
    let doc = std::fs::read(p).unwrap();
    for o in [
        run(&["buses", p, "--direction", "North Bound"]),
        run_stdin(&["buses", "-", "--direction", "North Bound"], &doc),
    ] {
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--where des="), "{err}");
    }
    // The hint works.
    let o = run(&["buses", p, "--where", "des~Howard"]);
    assert!(o.status.success());
    assert!(stdout(&o).lines().all(|l| l.contains("Howard")));
}

#[test]
fn the_shipped_getvehicles_sample_reads() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/data/getvehicles.xml");
    let doc = std::fs::read_to_string(sample).unwrap();
    let o = run(&["buses", sample, "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), doc.matches("<vehicle>").count());
    assert!(out.starts_with("{\"vid\":"), "{out}");
    let help = stdout(&run(&["buses", "--help"]));
    assert!(
        help.contains("route = rt") && help.contains("--where des="),
        "{help}"
    );
}
