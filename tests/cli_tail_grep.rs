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
}
