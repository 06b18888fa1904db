//! `copipe tail` as grep (issue 13): per-line truth on the real binary,
//! grep's exit statuses, stdin, bad paths among good ones, long lines.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_copipe");

fn tail(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(BIN)
        .arg("tail")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

/// Issue 13: `(?-m)^GET` matched once per read block.
#[test]
fn inline_flags_match_each_line_across_blocks() {
    let mut log = Vec::new();
    for i in 0..200_000 {
        writeln!(log, "GET /{i}.html").unwrap();
    }
    let dir = dir_with(&[("a.log", &log)]);
    for pattern in ["(?-m)^GET", "(?-m:html$)", r"\AGET", r"html\z"] {
        let out = tail(&["-n", "+1", "a.log", "-e", pattern], dir.path());
        assert_eq!(out.stdout, log, "{pattern}");
    }
}

#[test]
fn exit_status_follows_grep() {
    let dir = dir_with(&[("a.log", b"GET a\nPOST b\n")]);
    std::fs::create_dir(dir.path().join("adir")).unwrap();
    let code = |args: &[&str]| tail(args, dir.path()).status.code();
    assert_eq!(code(&["-n", "+1", "a.log", "-e", "GET"]), Some(0));
    assert_eq!(code(&["-n", "+1", "a.log", "-e", "PUT"]), Some(1));
    assert_eq!(code(&["-n", "+1", "nofile", "a.log", "-e", "GET"]), Some(2));
    // -q: a selected line wins over an error, and nothing is printed.
    let out = tail(
        &["-q", "-n", "+1", "nofile", "a.log", "-e", "GET"],
        dir.path(),
    );
    assert_eq!((out.status.code(), out.stdout.len()), (Some(0), 0));
    assert_eq!(code(&["-q", "-n", "+1", "a.log", "-e", "PUT"]), Some(1));
    // A bad path among good ones: reported on one line, the others read.
    let out = tail(
        &["-n", "+1", "adir", "nofile", "a.log", "-e", "GET"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        "copipe: adir: Is a directory\ncopipe: nofile: No such file or directory\n"
    );
    assert!(String::from_utf8(out.stdout).unwrap().ends_with("GET a\n"));
}

#[test]
fn no_file_is_stdin_and_proc_files_work() {
    let mut child = Command::new(BIN)
        .args(["tail", "-n", "+1", "-e", "b"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a\nb\nc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!((out.status.code(), &out.stdout[..]), (Some(0), &b"b\n"[..]));
    let out = tail(&["-n", "1", "/proc/self/status"], std::path::Path::new("/"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 1);
}

#[test]
fn a_20_mib_line_between_two_matches_is_skipped_and_reported() {
    let mut log = b"match 1\n".to_vec();
    log.extend(std::iter::repeat_n(b'm', 20 << 20));
    log.extend_from_slice(b"\nmatch 2\n");
    let dir = dir_with(&[("big.log", &log)]);
    let out = tail(&["-n", "+1", "big.log", "-e", "match"], dir.path());
    assert_eq!(out.stdout, b"match 1\nmatch 2\n");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "copipe: big.log: line at byte offset 8 is longer than 16777216 bytes \
         (--max-line-len): skipped\n"
    );
}

/// Each line from a slow writer appears before the next is written.
#[test]
fn stdin_streams_each_line() {
    for args in [
        &["tail", "-n", "+1"][..],
        &["tail", "-f", "-n", "+1", "-"][..],
    ] {
        let mut child = Command::new(BIN)
            .args(args)
            .args(["-e", "line"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        for i in 0..3 {
            writeln!(input, "skip {i}\nline {i}").unwrap();
            input.flush().unwrap();
            let mut got = String::new();
            output.read_line(&mut got).unwrap();
            assert_eq!(got, format!("line {i}\n"));
        }
        drop(input);
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
}

/// The README's example: errors, but not healthchecks.
#[test]
fn drop_removes_lines_whatever_else_matches() {
    let dir = dir_with(&[(
        "app.log",
        b"ERROR db down\nerror healthcheck failed\ninfo healthcheck ok\ninfo start\n",
    )]);
    let out = tail(
        &[
            "-n",
            "+1",
            "app.log",
            "-i",
            "-e",
            "error",
            "--drop",
            "healthcheck",
        ],
        dir.path(),
    );
    assert_eq!(out.stdout, b"ERROR db down\n");
    let out = tail(
        &[
            "-n", "+1", "app.log", "-v", "-e", "error", "--drop", "start",
        ],
        dir.path(),
    );
    assert_eq!(out.stdout, b"ERROR db down\ninfo healthcheck ok\n");
}

#[test]
fn patterns_file_and_fixed_strings() {
    let dir = dir_with(&[
        ("a.log", b"10.0.0.1 x\n10a0b0c1 y\n1.2.3.4 z\n"),
        ("pats", b"10.0.0.1\n1.2.3.4\n"),
    ]);
    let out = tail(&["-n", "+1", "a.log", "--file", "pats"], dir.path());
    assert_eq!(out.stdout, b"10.0.0.1 x\n10a0b0c1 y\n1.2.3.4 z\n");
    let out = tail(
        &["-n", "+1", "a.log", "--fixed-strings", "--file", "pats"],
        dir.path(),
    );
    assert_eq!(out.stdout, b"10.0.0.1 x\n1.2.3.4 z\n");
    // An empty patterns file selects nothing, as grep -f /dev/null.
    std::fs::write(dir.path().join("none"), b"").unwrap();
    let out = tail(&["-n", "+1", "a.log", "--file", "none"], dir.path());
    assert_eq!((out.stdout.len(), out.status.code()), (0, Some(1)));
    let out = tail(&["-n", "+1", "a.log", "-v", "--file", "none"], dir.path());
    assert_eq!(out.stdout.len(), 32);
}

#[test]
fn help_has_exit_status_and_differences() {
    let out = tail(&["--help"], std::path::Path::new("/"));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("EXIT STATUS:\n  0  a line was selected"),
        "{help}"
    );
    assert!(help.contains("DIFFERENCES FROM GREP AND TAIL:"), "{help}");
    assert!(!help.contains("not offered yet"), "{help}");
    assert!(help.contains("--line-number"), "{help}");
    assert!(
        help.contains("Following (-f/-F)\n  never suppresses lines"),
        "{help}"
    );
}

/// Two generated logs for the grep comparisons (issue 13, item 3): access
/// lines with invalid UTF-8 about one line in 50, plus lines with CR, NUL,
/// words glued to `_` and digits, and (first log) a last line without a
/// newline.
fn grep_logs() -> &'static std::path::Path {
    static LOGS: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for (name, lines, seed) in [("a.log", "3000", "7"), ("b.log", "700", "9")] {
            let out = Command::new(BIN)
                .args(["gen", "log", "--lines", lines, "--seed", seed])
                .args(["--invalid-utf8-every", "50", "-o"])
                .arg(dir.path().join(name))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let mut a = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("a.log"))
            .unwrap();
        a.write_all(
            b"GET /python/x\r\nfoo\0bar python swig\nswig_python pythonic python2 python\n\
              \xff python\xfe\r\nGET /python/last caf\xe9 swig",
        )
        .unwrap();
        let mut b = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("b.log"))
            .unwrap();
        b.write_all(b"python swig\r\n\0 swig\n").unwrap();
        dir
    })
    .path()
}

/// `copipe tail -n +1 ARGS` prints exactly what `LC_ALL=C grep -a GREP_ARGS`
/// prints, with the same exit status.
fn same_as_grep(ours: &[&str], theirs: &[&str]) {
    let dir = grep_logs();
    let mut args = vec!["-n", "+1", "-a"];
    args.extend_from_slice(ours);
    let mine = tail(&args, dir);
    let grep = Command::new("grep")
        .arg("-a")
        .args(theirs)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env_remove("GREP_COLORS")
        .output()
        .unwrap();
    assert!(!grep.stdout.is_empty(), "{theirs:?} should print something");
    assert_eq!(
        String::from_utf8_lossy(&mine.stderr),
        String::from_utf8_lossy(&grep.stderr),
        "{ours:?}"
    );
    assert!(
        mine.stdout == grep.stdout,
        "{ours:?}: output differs from grep:\n{}\n---- grep:\n{}",
        String::from_utf8_lossy(&mine.stdout),
        String::from_utf8_lossy(&grep.stdout)
    );
    assert_eq!(mine.status.code(), grep.status.code(), "{ours:?}");
}

#[test]
fn word_count_max_and_only_matching_equal_grep() {
    same_as_grep(&["-w", "-e", "python", "a.log"], &["-w", "python", "a.log"]);
    same_as_grep(&["-w", "-e", "pyth.n", "a.log"], &["-w", "pyth.n", "a.log"]);
    same_as_grep(
        &["-w", "-e", "python|swig", "a.log"],
        &["-wE", "python|swig", "a.log"],
    );
    same_as_grep(&["-c", "-e", "python", "a.log"], &["-c", "python", "a.log"]);
    same_as_grep(
        &["-c", "-v", "-e", "python", "a.log"],
        &["-cv", "python", "a.log"],
    );
    same_as_grep(
        &["-c", "-e", "swig", "a.log", "b.log"],
        &["-c", "swig", "a.log", "b.log"],
    );
    same_as_grep(
        &["-m", "5", "-e", "python", "a.log"],
        &["-m5", "python", "a.log"],
    );
    same_as_grep(
        &["-m", "2", "-H", "-e", "swig", "a.log", "b.log"],
        &["-m2", "-H", "swig", "a.log", "b.log"],
    );
    same_as_grep(
        &["-c", "-m", "7", "-e", "GET", "a.log"],
        &["-c", "-m7", "GET", "a.log"],
    );
    same_as_grep(
        &["-o", "-e", "pyth[a-z]*", "a.log"],
        &["-o", "pyth[a-z]*", "a.log"],
    );
    same_as_grep(
        &["-o", "-w", "-e", "python", "a.log"],
        &["-ow", "python", "a.log"],
    );
    same_as_grep(
        &["-o", "-i", "-e", "GET /[a-z]+", "a.log"],
        &["-oiE", "GET /[a-z]+", "a.log"],
    );
}

#[test]
fn file_names_and_line_numbers_equal_grep() {
    same_as_grep(&["-H", "-e", "swig", "a.log"], &["-H", "swig", "a.log"]);
    same_as_grep(
        &["-H", "-e", "swig", "a.log", "b.log"],
        &["swig", "a.log", "b.log"],
    );
    same_as_grep(
        &["--no-filename", "-e", "swig", "a.log", "b.log"],
        &["-h", "swig", "a.log", "b.log"],
    );
    same_as_grep(
        &["--line-number", "-e", "swig", "a.log"],
        &["-n", "swig", "a.log"],
    );
    same_as_grep(
        &["--line-number", "-H", "-v", "-e", "GET", "a.log", "b.log"],
        &["-n", "-v", "GET", "a.log", "b.log"],
    );
}

#[test]
fn context_equals_grep() {
    same_as_grep(
        &["-A", "2", "-e", "swig", "a.log"],
        &["-A2", "swig", "a.log"],
    );
    same_as_grep(
        &["-B", "3", "-e", "swig", "a.log"],
        &["-B3", "swig", "a.log"],
    );
    same_as_grep(
        &[
            "-C",
            "1",
            "--line-number",
            "-H",
            "-e",
            "swig",
            "a.log",
            "b.log",
        ],
        &["-C1", "-n", "swig", "a.log", "b.log"],
    );
    same_as_grep(
        &["-C", "2", "-v", "--line-number", "-e", "GET", "a.log"],
        &["-C2", "-n", "-v", "GET", "a.log"],
    );
    same_as_grep(
        &["-m", "3", "-A", "2", "-e", "swig", "a.log"],
        &["-m3", "-A2", "swig", "a.log"],
    );
}

#[test]
fn color_always_equals_grep() {
    same_as_grep(
        &["--color=always", "-e", "swig|python", "a.log"],
        &["--color=always", "-E", "swig|python", "a.log"],
    );
    same_as_grep(
        &[
            "--color=always",
            "--line-number",
            "-H",
            "-C",
            "1",
            "-e",
            "swig",
            "a.log",
            "b.log",
        ],
        &["--color=always", "-n", "-C1", "swig", "a.log", "b.log"],
    );
    same_as_grep(
        &["--color=always", "-o", "-e", "swig|python", "a.log"],
        &["--color=always", "-oE", "swig|python", "a.log"],
    );
    same_as_grep(
        &["--color=always", "-v", "-A", "1", "-e", "GET", "a.log"],
        &["--color=always", "-v", "-A1", "GET", "a.log"],
    );
    // auto on a pipe, and NO_COLOR with auto: no escapes.
    for no_color in [false, true] {
        let mut cmd = Command::new(BIN);
        cmd.args(["tail", "-n", "+1", "-a", "--color", "-e", "swig", "a.log"])
            .current_dir(grep_logs());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().unwrap();
        assert!(!out.stdout.contains(&0x1b) && !out.stdout.is_empty());
    }
}

/// Line numbers are the file's, also when -n N starts from the end, and
/// on standard input.
#[test]
fn line_numbers_from_the_end_are_true_file_line_numbers() {
    let dir = grep_logs();
    let grep = Command::new("grep")
        .args(["-an", "", "a.log"])
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let all: Vec<&[u8]> = grep.stdout.split_inclusive(|&b| b == b'\n').collect();
    let last: Vec<u8> = all[all.len() - 25..].concat();
    let out = tail(&["-a", "-n", "25", "--line-number", "a.log"], dir);
    assert!(
        out.stdout == last,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut child = Command::new(BIN)
        .args(["tail", "-a", "-n", "25", "--line-number"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let content = std::fs::read(dir.join("a.log")).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&content));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.stdout == last,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Without -a, a static file with a NUL byte gives grep 3.8's message
/// instead of its lines; the exit status is grep's.
#[test]
fn binary_file_matches_as_grep() {
    let dir = dir_with(&[
        ("bin.log", b"a python\nb\0 python\nc python\n"),
        ("text.log", b"python 1\npython 2\n"),
    ]);
    for (ours, theirs) in [
        (&["-e", "python", "bin.log"][..], &["python", "bin.log"][..]),
        (
            &["-e", "python", "text.log", "bin.log", "-H"],
            &["python", "text.log", "bin.log"],
        ),
        (
            &["-c", "-e", "python", "bin.log"],
            &["-c", "python", "bin.log"],
        ),
        (&["-e", "zzz", "bin.log"], &["zzz", "bin.log"]),
        (
            &["--line-number", "-e", "python", "bin.log"],
            &["-n", "python", "bin.log"],
        ),
    ] {
        let mut args = vec!["-n", "+1"];
        args.extend_from_slice(ours);
        let mine = tail(&args, dir.path());
        let grep = Command::new("grep")
            .args(theirs)
            .current_dir(dir.path())
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert_eq!(mine.stdout, grep.stdout, "{ours:?}");
        assert_eq!(
            String::from_utf8_lossy(&mine.stderr).replace("copipe:", "grep:"),
            String::from_utf8_lossy(&grep.stderr),
            "{ours:?}"
        );
        assert_eq!(mine.status.code(), grep.status.code(), "{ours:?}");
    }
    // -a prints the lines.
    let out = tail(&["-a", "-n", "+1", "-e", "python", "bin.log"], dir.path());
    assert_eq!(out.stdout, b"a python\nb\0 python\nc python\n");
}

/// --json: one object per line, bytes round-tripped (base64 when the line
/// is not UTF-8), offsets and line numbers true.
#[test]
fn json_lines_round_trip() {
    use base64::Engine as _;
    let dir = grep_logs();
    let content = std::fs::read(dir.join("a.log")).unwrap();
    let args = [
        "-a", "-n", "+1", "--json", "-C", "1", "-e", "python", "a.log",
    ];
    let out = tail(&args, dir);
    assert_eq!(out.status.code(), Some(0));
    let (mut matches, mut non_utf8) = (0, 0);
    for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        let data = &v["data"];
        assert_eq!(data["path"]["text"], "a.log");
        let lines = &data["lines"];
        let bytes = match (lines["text"].as_str(), lines["bytes"].as_str()) {
            (Some(text), None) => text.as_bytes().to_vec(),
            (None, Some(b64)) => {
                non_utf8 += 1;
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap()
            }
            other => panic!("lines: {other:?}"),
        };
        let offset = usize::try_from(data["absolute_offset"].as_u64().unwrap()).unwrap();
        assert_eq!(&content[offset..offset + bytes.len()], &bytes[..]);
        let number = data["line_number"].as_u64().unwrap();
        let newlines = content[..offset].iter().filter(|&&b| b == b'\n').count();
        assert_eq!(number, newlines as u64 + 1);
        if v["type"] == "match" {
            matches += 1;
            let subs = data["submatches"].as_array().unwrap();
            assert!(!subs.is_empty());
            for s in subs {
                let start = usize::try_from(s["start"].as_u64().unwrap()).unwrap();
                let end = usize::try_from(s["end"].as_u64().unwrap()).unwrap();
                assert_eq!(&bytes[start..end], b"python");
            }
        } else {
            assert_eq!(v["type"], "context");
        }
    }
    let grep = Command::new("grep")
        .args(["-ac", "python", "a.log"])
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert_eq!(format!("{matches}\n").as_bytes(), &grep.stdout[..]);
    assert!(non_utf8 > 0, "the log has lines that are not UTF-8");
}

/// The lines `child` prints, read on a thread, each awaited with a
/// deadline (so a missing line fails the test instead of hanging it).
fn output_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 || tx.send(line).is_err() {
            break;
        }
    });
    rx
}

fn expect(rx: &std::sync::mpsc::Receiver<String>, lines: &[&str]) {
    for want in lines {
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no line {want:?}"));
        assert_eq!(got, *want);
    }
}

fn append(path: &std::path::Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Line numbers (true ones, with -n N from the end) and after-context
/// under -f, with appends; grep's `--` between groups.
#[test]
fn line_numbers_and_context_under_follow() {
    let dir = dir_with(&[("f.log", b"l1\nl2 x\nl3\n")]);
    let path = dir.path().join("f.log");
    let mut child = Command::new(BIN)
        .args([
            "tail",
            "-f",
            "-n",
            "2",
            "--line-number",
            "-A",
            "1",
            "-e",
            "x",
        ])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = output_lines(&mut child);
    expect(&rx, &["2:l2 x\n", "3-l3\n"]);
    append(&path, b"l4\nl5 x\nl6\n");
    expect(&rx, &["--\n", "5:l5 x\n", "6-l6\n"]);
    append(&path, b"l7 x\n");
    expect(&rx, &["7:l7 x\n"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// -m under -f: each file stops at NUM selected lines; the run ends (0)
/// once every file has.
#[test]
fn max_count_ends_a_follow_when_every_file_reached_it() {
    let dir = dir_with(&[("a.log", b"a x\nb\n"), ("b.log", b"c\n")]);
    let mut child = Command::new(BIN)
        .args([
            "tail",
            "-f",
            "-n",
            "+1",
            "-m",
            "2",
            "--no-filename",
            "-e",
            "x",
        ])
        .args(["a.log", "b.log"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = output_lines(&mut child);
    expect(&rx, &["a x\n"]);
    append(&dir.path().join("a.log"), b"x2\nx3\n");
    expect(&rx, &["x2\n"]);
    append(&dir.path().join("b.log"), b"x b1\n");
    expect(&rx, &["x b1\n"]);
    append(&dir.path().join("a.log"), b"x4\n");
    append(&dir.path().join("b.log"), b"x b2\n");
    expect(&rx, &["x b2\n"]);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).is_err());
}

/// Plain tail (no pattern) prints a file with NUL bytes as it is, and
/// following never suppresses lines.
#[test]
fn plain_tail_and_follow_print_nul_lines() {
    let dir = dir_with(&[("bin.log", b"a\0b\nc\n")]);
    let out = tail(&["-n", "+1", "bin.log"], dir.path());
    assert_eq!(out.stdout, b"a\0b\nc\n");
    let mut child = Command::new(BIN)
        .args(["tail", "-f", "-n", "+1", "-e", "b", "bin.log"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = output_lines(&mut child);
    expect(&rx, &["a\0b\n"]);
    append(&dir.path().join("bin.log"), b"\0b\n");
    expect(&rx, &["\0b\n"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Pattern files for the many-pattern comparisons, written beside the
/// generated logs: client addresses of `a.log` as regexes (dots
/// unescaped) and escaped, with near misses (one octet changed), and fixed
/// strings: words of the log, near misses, and words holding regex
/// metacharacters.
fn many_pattern_files() -> &'static std::path::Path {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let dir = grep_logs();
    DONE.get_or_init(|| {
        let log = std::fs::read(dir.join("a.log")).unwrap();
        let text = String::from_utf8_lossy(&log);
        let mut ips = std::collections::BTreeSet::new();
        let mut words = std::collections::BTreeSet::new();
        for line in text.lines().take(400) {
            if let Some(ip) = line.split(' ').next() {
                ips.insert(ip.to_string());
            }
            words.extend(
                line.split([' ', '"'])
                    .filter(|w| w.len() >= 5 && !w.contains('\u{fffd}'))
                    .map(str::to_string),
            );
        }
        let ips: Vec<String> = ips.into_iter().collect();
        let mut regexes: Vec<String> = ips.iter().step_by(3).cloned().collect();
        for (i, ip) in ips.iter().enumerate() {
            let mut o: Vec<&str> = ip.split('.').collect();
            let n = (i * 37 % 256).to_string();
            o[i % 4] = &n;
            regexes.push(o.join("."));
        }
        let escaped: Vec<String> = regexes.iter().map(|p| p.replace('.', r"\.")).collect();
        let words: Vec<String> = words.into_iter().collect();
        let mut fixed: Vec<String> = words.iter().step_by(40).cloned().collect();
        fixed.extend(words.iter().map(|w| format!("{w}zz")));
        fixed.extend(["a.b*c", "(x[", "python2", "PYTHONIC", "swig_"].map(String::from));
        for (name, pats) in [
            ("ip.pat", regexes),
            ("ipx.pat", escaped),
            ("fixed.pat", fixed),
        ] {
            std::fs::write(dir.join(name), pats.join("\n") + "\n").unwrap();
        }
    });
    dir
}

/// Issue 13 item 6: many patterns (one Aho-Corasick automaton for
/// literals, one regex otherwise) give grep's output, byte for byte, with
/// -e many, --file, --fixed-strings, -i, -w, -x, -v, -o, -c.
#[test]
fn many_patterns_equal_grep() {
    many_pattern_files();
    for pats in ["ip.pat", "ipx.pat"] {
        same_as_grep(&["--file", pats, "a.log"], &["-f", pats, "a.log"]);
        same_as_grep(
            &["-c", "--file", pats, "a.log"],
            &["-c", "-f", pats, "a.log"],
        );
        same_as_grep(
            &["-v", "--file", pats, "a.log"],
            &["-v", "-f", pats, "a.log"],
        );
        same_as_grep(
            &["-w", "--file", pats, "a.log"],
            &["-w", "-f", pats, "a.log"],
        );
        same_as_grep(
            &["-o", "-H", "--file", pats, "a.log", "b.log"],
            &["-o", "-H", "-f", pats, "a.log", "b.log"],
        );
    }
    // -H: grep's `FILE:` prefix (without it, tail's `==> FILE <==`).
    let f = ["-H", "--fixed-strings", "--file", "fixed.pat"];
    let g = ["-H", "-F", "-f", "fixed.pat"];
    for (extra, grep_extra) in [
        (&[][..], &[][..]),
        (&["-i"], &["-i"]),
        (&["-v"], &["-v"]),
        (&["-c"], &["-c"]),
        (&["-w"], &["-w"]),
        (&["-c", "-i", "-v"], &["-c", "-i", "-v"]),
    ] {
        let mut ours = extra.to_vec();
        ours.extend(f);
        ours.extend(["a.log", "b.log"]);
        let mut theirs = grep_extra.to_vec();
        theirs.extend(g);
        theirs.extend(["a.log", "b.log"]);
        same_as_grep(&ours, &theirs);
    }
    // Several -e literals (one automaton), with -i and -x.
    let e = [
        "-e",
        "python2",
        "-e",
        "swig",
        "-e",
        "GET /ply/",
        "-e",
        "bar python",
    ];
    let mut ours = e.to_vec();
    ours.push("a.log");
    same_as_grep(&ours, &ours.clone());
    let mut ours = vec!["-i"];
    ours.extend(e);
    ours.push("a.log");
    same_as_grep(&ours, &ours.clone());
    same_as_grep(
        &[
            "-x",
            "--fixed-strings",
            "-e",
            "foo",
            "-e",
            "python swig\r",
            "b.log",
        ],
        &["-x", "-F", "-e", "foo", "-e", "python swig\r", "b.log"],
    );
}

/// `-x --fixed-strings` takes its own path (an anchored automaton of whole
/// lines, not the regex): byte for byte with `grep -x -F`, with whole lines
/// of the log, near misses (a line with a byte more or less, another case),
/// an empty pattern (empty lines), -i, -v, -c.
#[test]
fn whole_line_fixed_strings_equal_grep() {
    let dir = grep_logs();
    let log = std::fs::read(dir.join("a.log")).unwrap();
    let mut pats = Vec::new();
    for (i, line) in log.split(|&b| b == b'\n').enumerate().take(2000) {
        // Pattern files are read as UTF-8 without a trailing CR.
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if line.contains('\r') || line.is_empty() {
            continue;
        }
        match i % 7 {
            0 => pats.push(line.to_string()),
            1 => pats.push(line[..line.len() - 1].to_string()),
            2 => pats.push(format!("{line}x")),
            3 => pats.push(line.to_uppercase()),
            _ => {}
        }
    }
    pats.push("GET /python/last caf".to_string());
    std::fs::write(dir.join("lines.pat"), pats.join("\n") + "\n").unwrap();
    for extra in [&[][..], &["-i"], &["-v"], &["-c"], &["-c", "-i", "-v"]] {
        let mut ours = extra.to_vec();
        ours.extend(["-x", "--fixed-strings", "--file", "lines.pat", "a.log"]);
        let mut theirs = extra.to_vec();
        theirs.extend(["-x", "-F", "-f", "lines.pat", "a.log"]);
        same_as_grep(&ours, &theirs);
    }
    // An empty pattern selects the empty lines; -e literals, one a prefix
    // of another.
    same_as_grep(
        &[
            "-x",
            "--fixed-strings",
            "-e",
            "",
            "-e",
            "foo",
            "-v",
            "a.log",
        ],
        &["-x", "-F", "-e", "", "-e", "foo", "-v", "a.log"],
    );
    same_as_grep(
        &[
            "-x",
            "--fixed-strings",
            "-e",
            "python swig",
            "-e",
            "python swig\r",
            "-e",
            "python",
            "b.log",
        ],
        &[
            "-x",
            "-F",
            "-e",
            "python swig",
            "-e",
            "python swig\r",
            "-e",
            "python",
            "b.log",
        ],
    );
}

/// `-o` (and --color, --json's submatches) take grep's match: the leftmost,
/// and of those starting there the longest, whatever the pattern order
/// (the regex crate alone takes the first alternative that matches).
#[test]
fn only_matching_takes_the_longest_match_as_grep() {
    for (ours, theirs) in [
        (
            &["-o", "-e", "python", "-e", "pythonic", "a.log"][..],
            &["-o", "-e", "python", "-e", "pythonic", "a.log"][..],
        ),
        (
            &["-o", "-e", "py", "-e", "python2", "-e", "pyth", "a.log"],
            &["-o", "-e", "py", "-e", "python2", "-e", "pyth", "a.log"],
        ),
        (
            &["-o", "-i", "-e", "get", "-e", "GET /p[a-z]*", "a.log"],
            &["-o", "-i", "-e", "get", "-e", "GET /p[a-z]*", "a.log"],
        ),
        (
            &["-o", "-w", "-e", "swig", "-e", "swig_python", "a.log"],
            &["-o", "-w", "-e", "swig", "-e", "swig_python", "a.log"],
        ),
        (
            &["-o", "-w", "-e", "python|python2|pythonic", "a.log"],
            &["-o", "-w", "-E", "-e", "python|python2|pythonic", "a.log"],
        ),
        (
            &["-c", "-w", "-e", "python|python2", "a.log"],
            &["-c", "-w", "-E", "-e", "python|python2", "a.log"],
        ),
        (
            &["-o", "-e", "a|ab|abc", "-e", "b*", "a.log"],
            &["-o", "-E", "-e", "a|ab|abc", "-e", "b*", "a.log"],
        ),
        (
            &["--color=always", "-e", "py", "-e", "python", "a.log"],
            &["--color=always", "-e", "py", "-e", "python", "a.log"],
        ),
        (
            &[
                "--color=always",
                "-o",
                "-i",
                "-e",
                "sw",
                "-e",
                "SWIG_py",
                "a.log",
            ],
            &[
                "--color=always",
                "-o",
                "-i",
                "-e",
                "sw",
                "-e",
                "SWIG_py",
                "a.log",
            ],
        ),
    ] {
        same_as_grep(ours, theirs);
    }
    // --json's submatches: the same spans.
    let out = tail(
        &[
            "-n", "+1", "-a", "--json", "-e", "py", "-e", "python2", "a.log",
        ],
        grep_logs(),
    );
    let grep = Command::new("grep")
        .args(["-a", "-o", "-e", "py", "-e", "python2", "a.log"])
        .current_dir(grep_logs())
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let mut spans = Vec::new();
    for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        for m in v["data"]["submatches"].as_array().unwrap() {
            if let Some(t) = m["match"]["text"].as_str() {
                spans.push(t.to_string());
            }
        }
    }
    let want: Vec<String> = String::from_utf8_lossy(&grep.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(spans, want);
}

/// A static file of 4 MiB or more is searched in place (mapped), not read
/// into a buffer: the same output as grep, and as tail for the last lines,
/// also when the run stops early (-m, -q).
#[test]
fn a_large_file_gives_the_same_as_grep_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    let out = Command::new(BIN)
        .args([
            "gen",
            "log",
            "--mb",
            "6",
            "--seed",
            "3",
            "--invalid-utf8-every",
            "97",
            "-o",
        ])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"GET /python/last\r\nno newline python")
        .unwrap();
    assert!(std::fs::metadata(&log).unwrap().len() > 6 << 20);
    let grep = |args: &[&str]| {
        Command::new("grep")
            .arg("-a")
            .args(args)
            .arg("big.log")
            .current_dir(dir.path())
            .env("LC_ALL", "C")
            .output()
            .unwrap()
    };
    for (ours, theirs) in [
        (&["-e", "python"][..], &["python"][..]),
        (&["-v", "-e", "GET"], &["-v", "GET"]),
        (&["-c", "-e", "POST"], &["-c", "POST"]),
        (
            &["--line-number", "-i", "-e", "SWIG"],
            &["-n", "-i", "SWIG"],
        ),
        (&["-m", "3", "-e", "python"], &["-m3", "python"]),
        (
            &["-x", "--fixed-strings", "-e", "no newline python"],
            &["-xF", "no newline python"],
        ),
    ] {
        let mut args = vec!["-n", "+1", "-a"];
        args.extend_from_slice(ours);
        args.push("big.log");
        let mine = tail(&args, dir.path());
        let want = grep(theirs);
        assert!(mine.stdout == want.stdout, "{ours:?} differs from grep");
        assert_eq!(mine.status.code(), want.status.code(), "{ours:?}");
    }
    let mine = tail(&["-q", "-e", "python", "big.log"], dir.path());
    assert_eq!((mine.status.code(), mine.stdout.len()), (Some(0), 0));
    for n in ["1", "25", "+7000", "+1"] {
        let mine = tail(&["-n", n, "big.log"], dir.path());
        let want = Command::new("tail")
            .args(["-n", n, "big.log"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        // copipe ends a last line without a newline with one, as grep does.
        let mut want = want.stdout;
        if want.last().is_some_and(|&b| b != b'\n') {
            want.push(b'\n');
        }
        assert!(mine.stdout == want, "-n {n} differs from tail");
    }
}
