//! `copipe tail` driven as a real process on real files: static output
//! compared byte for byte with `LC_ALL=C grep -a` and `tail`, and live
//! following (appends, partial writes, truncation, rotation, a file created
//! late, a closed stdout, signals).
//!
//! Live tests never sleep to wait for something: they read the child's
//! output (and its stderr notices) with a deadline. The only sleep makes the
//! 300 ms gap inside a line written in two parts.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_copipe");
const DEADLINE: Duration = Duration::from_secs(10);

/// A generated log (shared by the static tests): 20 000 lines with invalid
/// UTF-8 in about one line in 50, and a final line without a newline.
fn log() -> &'static Path {
    static LOG: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = LOG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access-log");
        let out = Command::new(BIN)
            .args(["gen", "log", "--lines", "20000", "--seed", "42"])
            .args(["--invalid-utf8-every", "50", "-o"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"GET /python/last-line-without-newline caf\xe9 swig")
            .unwrap();
        (dir, path)
    });
    path
}

fn run(cmd: &str, args: &[&str], path: &Path) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{cmd} {args:?}: {out:?}"
    );
    out
}

/// `copipe tail -n +1 ARGS FILE` prints exactly what `grep -a GREP_ARGS FILE`
/// prints.
fn same_as_grep(copipe_args: &[&str], grep_args: &[&str]) {
    let path = log();
    let mut args = vec!["tail", "-n", "+1"];
    args.extend_from_slice(copipe_args);
    let ours = run(BIN, &args, path);
    let mut gargs = vec!["-a"];
    gargs.extend_from_slice(grep_args);
    let theirs = run("grep", &gargs, path);
    assert!(
        ours.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    assert!(
        !theirs.stdout.is_empty(),
        "the test pattern should match something"
    );
    assert_eq!(ours.stdout.len(), theirs.stdout.len(), "{copipe_args:?}");
    assert!(
        ours.stdout == theirs.stdout,
        "{copipe_args:?}: output differs from grep"
    );
}

#[test]
fn fixed_pattern_equals_grep() {
    same_as_grep(&["-e", "python"], &["python"]);
}

#[test]
fn several_patterns_equal_grep() {
    same_as_grep(
        &["-e", "python", "-e", "swig", "-e", "ply"],
        &["-e", "python", "-e", "swig", "-e", "ply"],
    );
}

#[test]
fn ignore_case_equals_grep() {
    same_as_grep(&["-i", "-e", "PYTHON"], &["-i", "PYTHON"]);
}

#[test]
fn invert_equals_grep() {
    same_as_grep(
        &["-v", "-e", "python", "-e", "GET"],
        &["-v", "-e", "python", "-e", "GET"],
    );
}

#[test]
fn regex_equals_grep_extended() {
    same_as_grep(
        &["-e", r"GET /(ply|swig)/[a-z]+\.html"],
        &["-E", r"GET /(ply|swig)/[a-z]+\.html"],
    );
    // `.` matches an invalid UTF-8 byte, as in the C locale.
    same_as_grep(&["-e", r"caf. (swig|\))"], &["-E", r"caf. (swig|\))"]);
    same_as_grep(
        &["-e", r"^[0-9.]+ - - .* 404 [0-9]+ "],
        &["-E", r"^[0-9.]+ - - .* 404 [0-9]+ "],
    );
}

#[test]
fn plain_tail_equals_tail() {
    let path = log();
    for n in ["1", "10", "+19990", "0", "+1", "+0", "20001", "-5"] {
        let ours = run(BIN, &["tail", "-n", n], path);
        let mut theirs = run("tail", &["-n", n], path).stdout;
        // tail keeps the missing final newline; copipe adds it, as grep.
        if theirs.last().is_some_and(|&b| b != b'\n') {
            theirs.push(b'\n');
        }
        assert!(ours.stdout == theirs, "-n {n}");
    }
    // A last line without a newline is printed with one.
    let ours = run(BIN, &["tail", "-n", "1"], path);
    assert_eq!(
        ours.stdout,
        b"GET /python/last-line-without-newline caf\xe9 swig\n"
    );
}

#[test]
fn several_files_get_tail_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fs::write(&a, "a1\na2\n").unwrap();
    fs::write(&b, "").unwrap();
    let out = Command::new(BIN)
        .args(["tail", "-n", "+1"])
        .arg(&a)
        .arg(&b)
        .arg(&a)
        .output()
        .unwrap();
    let tail = Command::new("tail")
        .args(["-n", "+1"])
        .arg(&a)
        .arg(&b)
        .arg(&a)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&tail.stdout)
    );
}

#[test]
fn missing_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-log");
    let out = Command::new(BIN)
        .args(["tail"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("copipe: ") && err.contains("no-such-log"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // With -f too (it must exist unless -F).
    let out = Command::new(BIN)
        .args(["tail", "-f"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-log"));
}

#[test]
fn invalid_pattern_exits_2_naming_it() {
    let out = Command::new(BIN)
        .args(["tail", "-e", "a(b"])
        .arg(log())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid pattern `a(b`"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn closed_stdout_ends_quietly_with_0() {
    let mut child = Command::new(BIN)
        .args(["tail", "-n", "+1"])
        .arg(log())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe's read end is dropped here, like `| head -c1`.
    let (status, err) = wait_with_deadline(child);
    assert_eq!(status.code(), Some(0));
    assert!(err.is_empty(), "{err}");
}

/// Waits for `child` to exit (on a helper thread, so the wait has a
/// deadline) and returns its status and whatever it wrote on stderr.
fn wait_with_deadline(mut child: Child) -> (std::process::ExitStatus, String) {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = tx.send((child.wait(), err));
    });
    match rx.recv_timeout(DEADLINE) {
        Ok((status, err)) => (status.unwrap(), err),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("child did not exit within {DEADLINE:?}");
        }
    }
}

/// A running `copipe tail -f/-F` whose stdout lines and stderr notices
/// arrive on channels.
struct Live {
    /// Taken by a test that waits for the exit itself.
    child: Option<Child>,
    out: Option<Receiver<Vec<u8>>>,
    err: Receiver<String>,
    stdout: Option<ChildStdout>,
}

impl Live {
    fn start(args: &[&str], path: &Path) -> Live {
        let mut child = Command::new(BIN)
            .arg("tail")
            .args(args)
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (etx, err) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if etx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take();
        let mut live = Live {
            child: Some(child),
            out: None,
            err,
            stdout,
        };
        live.read_stdout();
        live
    }

    fn read_stdout(&mut self) {
        let stdout = self.stdout.take().unwrap();
        let (otx, out) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if otx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        self.out = Some(out);
    }

    /// The next output line, within the deadline.
    fn line(&self) -> String {
        let line = self
            .out
            .as_ref()
            .unwrap()
            .recv_timeout(DEADLINE)
            .expect("no output line within the deadline");
        String::from_utf8_lossy(&line).into_owned()
    }

    /// The next stderr line, within the deadline.
    fn notice(&self) -> String {
        self.err
            .recv_timeout(DEADLINE)
            .expect("no notice within the deadline")
    }

    /// Waits for a notice containing `text`, skipping others.
    fn notice_containing(&self, text: &str) -> String {
        loop {
            let n = self.notice();
            if n.contains(text) {
                return n;
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn follow_appends_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "old python 1\nold ply\nold python 2\n").unwrap();
    let live = Live::start(&["-f", "-n", "2", "-e", "python"], &path);
    // The last two lines, filtered: only the python one.
    assert_eq!(live.line(), "old python 2\n");
    append(&path, b"new ply\nnew python 3\n");
    assert_eq!(live.line(), "new python 3\n");
    for i in 0..100 {
        append(&path, format!("burst python {i}\n").as_bytes());
    }
    for i in 0..100 {
        assert_eq!(live.line(), format!("burst python {i}\n"));
    }
}

#[test]
fn follow_holds_a_line_written_in_two_parts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "start\n").unwrap();
    let live = Live::start(&["-f", "-n", "1"], &path);
    assert_eq!(live.line(), "start\n");
    append(&path, b"GET /python/par");
    // The gap the issue asks for: the reader sees half a line for 300 ms.
    thread::sleep(Duration::from_millis(300));
    append(&path, b"tial HTTP/1.1\nnext\n");
    assert_eq!(live.line(), "GET /python/partial HTTP/1.1\n");
    assert_eq!(live.line(), "next\n");
}

#[test]
fn follow_restarts_after_truncation_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "a long first line, longer than what comes after\n").unwrap();
    let live = Live::start(&["-F", "-n", "+1"], &path);
    assert_eq!(
        live.line(),
        "a long first line, longer than what comes after\n"
    );
    File::create(&path).unwrap(); // truncate, as copytruncate does
    assert!(live
        .notice_containing("truncated")
        .contains("log: file truncated"));
    append(&path, b"after 1\n");
    assert_eq!(live.line(), "after 1\n");
    append(&path, b"after 2\n");
    assert_eq!(live.line(), "after 2\n");
}

#[test]
fn follow_by_name_drains_the_rotated_file_including_late_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let rotated = dir.path().join("log.1");
    fs::write(&path, "before\n").unwrap();
    let live = Live::start(&["-F", "-n", "1"], &path);
    assert_eq!(live.line(), "before\n");
    // The writer still has the old file open.
    let mut old = OpenOptions::new().append(true).open(&path).unwrap();
    old.write_all(b"old 1\n").unwrap();
    fs::rename(&path, &rotated).unwrap();
    old.write_all(b"old 2, after the rename\n").unwrap();
    fs::write(&path, "new 1\n").unwrap();
    assert_eq!(live.line(), "old 1\n");
    assert_eq!(live.line(), "old 2, after the rename\n");
    assert_eq!(live.line(), "new 1\n");
    live.notice_containing("has been replaced");
    // A line written late into the rotated file is not lost.
    old.write_all(b"late into log.1\n").unwrap();
    assert_eq!(live.line(), "late into log.1\n");
    append(&path, b"new 2\n");
    assert_eq!(live.line(), "new 2\n");
}

#[test]
fn follow_by_name_waits_for_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.log");
    let live = Live::start(&["-F", "-e", "python"], &path);
    assert!(live
        .notice_containing("later.log")
        .contains("No such file or directory"));
    fs::write(&path, "python 1\nply\npython 2\n").unwrap();
    assert_eq!(live.line(), "python 1\n");
    assert_eq!(live.line(), "python 2\n");
    append(&path, b"python 3\n");
    assert_eq!(live.line(), "python 3\n");
}

#[test]
fn follow_ends_quietly_when_stdout_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "one\ntwo\nthree\n").unwrap();
    let mut child = Command::new(BIN)
        .args(["tail", "-F", "-n", "+1"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send((line, r));
    });
    let (line, reader) = rx.recv_timeout(DEADLINE).expect("no first line");
    assert_eq!(line, "one\n");
    // Close our end of the pipe (`| head -1`); no more lines are written,
    // so only watching stdout can notice.
    drop(reader);
    let mut live = Live {
        child: Some(child),
        out: None,
        err: mpsc::channel().1,
        stdout: None,
    };
    let (status, err) = wait_with_deadline(live.child.take().unwrap());
    assert_eq!(status.code(), Some(0));
    assert!(err.is_empty(), "{err}");
}

#[test]
fn sigterm_flushes_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "x\n").unwrap();
    let mut live = Live::start(&["-f", "-n", "1"], &path);
    assert_eq!(live.line(), "x\n");
    let pid = live.child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let (status, _) = wait_with_deadline(live.child.take().unwrap());
    assert_eq!(status.code(), Some(128 + 15));
}

#[test]
fn gen_log_is_deterministic_under_seed() {
    let gen = |seed: &str| {
        Command::new(BIN)
            .args(["gen", "log", "--lines", "500", "--seed", seed])
            .output()
            .unwrap()
            .stdout
    };
    assert_eq!(gen("5"), gen("5"));
    assert_ne!(gen("5"), gen("6"));
    assert_eq!(gen("5").iter().filter(|&&b| b == b'\n').count(), 500);
}

#[test]
fn gen_log_rate_appends_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    fs::write(&path, "existing\n").unwrap();
    let out = Command::new(BIN)
        .args(["gen", "log", "--rate", "2000", "--lines", "40", "-o"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let content = fs::read(&path).unwrap();
    assert!(content.starts_with(b"existing\n"));
    assert_eq!(content.iter().filter(|&&b| b == b'\n').count(), 41);
}

#[test]
fn follow_several_files_writes_a_header_when_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    fs::write(&a, "a1\n").unwrap();
    fs::write(&b, "b1\n").unwrap();
    let mut child = Command::new(BIN)
        .args(["tail", "-f", "-n", "1"])
        .arg(&a)
        .arg(&b)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take();
    let live = {
        let mut l = Live {
            child: Some(child),
            out: None,
            err: mpsc::channel().1,
            stdout,
        };
        l.read_stdout();
        l
    };
    let header = |p: &Path| format!("==> {} <==\n", p.display());
    assert_eq!(live.line(), header(&a));
    assert_eq!(live.line(), "a1\n");
    assert_eq!(live.line(), "\n");
    assert_eq!(live.line(), header(&b));
    assert_eq!(live.line(), "b1\n");
    append(&b, b"b2\n");
    assert_eq!(live.line(), "b2\n");
    append(&a, b"a2\n");
    assert_eq!(live.line(), "\n");
    assert_eq!(live.line(), header(&a));
    assert_eq!(live.line(), "a2\n");
}

#[test]
fn standard_input_as_dash() {
    let feed = |args: &[&str]| {
        let mut child = Command::new(BIN)
            .arg("tail")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = thread::spawn(move || {
            for i in 1..=1000 {
                let _ = writeln!(stdin, "line {i}{}", if i % 7 == 0 { " python" } else { "" });
            }
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(feed(&["-n", "2", "-"]), "line 999\nline 1000\n");
    assert_eq!(
        feed(&["-n", "+998", "-"]),
        "line 998\nline 999\nline 1000\n"
    );
    // The last 8 lines, then filtered (as for a file).
    assert_eq!(feed(&["-n", "8", "-e", "python", "-"]), "line 994 python\n");
    // Issue 13: `-f -` reads the pipe to its end; nothing selected is 1.
    let out = Command::new(BIN)
        .args(["tail", "-f", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn named_pipe_is_read_as_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer_path = fifo.clone();
    // Opening a FIFO for writing waits for its reader (copipe).
    thread::spawn(move || {
        let mut w = OpenOptions::new().write(true).open(writer_path).unwrap();
        for i in 1..=100 {
            writeln!(w, "{i}").unwrap();
        }
    });
    let out = Command::new(BIN)
        .args(["tail", "-n", "3"])
        .arg(&fifo)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"98\n99\n100\n");
}

/// Issue 13: `-x` and `--fixed-strings` as grep's `-x` and `-F`.
#[test]
fn whole_line_and_fixed_strings_equal_grep() {
    same_as_grep(&["-x", "-e", "GET.*swig"], &["-x", "GET.*swig"]);
    same_as_grep(&["-v", "-x", "-e", "GET.*"], &["-v", "-x", "GET.*"]);
    same_as_grep(&["--fixed-strings", "-e", "python/"], &["-F", "python/"]);
}
