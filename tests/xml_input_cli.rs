//! How `copipe buses` chooses its input (issue 12): piped stdin is read,
//! the built-in sample is used only when nothing is piped in (stdin is
//! `/dev/null` here, as in CI), and a FILE that is not a regular file is
//! streamed with bounded memory.

use std::io::Write;
use std::process::{Command, Stdio};

const DOC: &str = "<buses><bus><id>7</id><route>22</route><direction>North Bound</direction>\
<latitude>41.9</latitude><longitude>-87.6</longitude></bus></buses>";

fn copipe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_copipe"))
}

#[test]
fn buses_reads_piped_stdin() {
    let mut child = copipe()
        .args(["buses", "--route", "22"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(DOC.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "22,7,\"North Bound\",41.9,-87.6\n"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn buses_reads_the_sample_when_stdin_is_dev_null() {
    let out = copipe()
        .args(["buses", "--route", "22"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("built-in sample"), "{err}");
}

#[test]
fn buses_streams_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("feed");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, DOC).unwrap())
    };
    let out = copipe().arg("buses").arg(&fifo).output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "22,7,\"North Bound\",41.9,-87.6\n"
    );
}

#[test]
fn buses_on_dev_zero_ends_in_an_error_not_unbounded_memory() {
    let out = copipe().args(["buses", "/dev/zero"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/zero:1:1 (byte offset 0)"), "{err}");
}

/// Runs copipe with `args`, stdin from `stdin` (a file) or `/dev/null`:
/// (exit code, stdout, stderr).
fn run_with(args: &[&str], stdin: Option<&std::path::Path>) -> (Option<i32>, Vec<u8>, String) {
    let mut cmd = copipe();
    cmd.args(args);
    match stdin {
        Some(p) => cmd.stdin(std::fs::File::open(p).unwrap()),
        None => cmd.stdin(Stdio::null()),
    };
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A FILE of 4 MB or more is mapped instead of read (`bin/cmd/mapped.rs`):
/// `buses` and `records` on it, with one thread and with two, give what
/// the same bytes piped in give (stdin is streamed, never mapped) — the
/// same records, and for a document broken near its end, the same records
/// before the same error at the same position, with the file's name.
#[test]
fn a_large_file_mapped_gives_what_its_bytes_piped_in_give() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("feed.xml");
    let status = copipe()
        .args(["gen", "buses", "--mb", "5", "-o"])
        .arg(&good)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() >= 4 << 20, "{} bytes: not mapped", bytes.len());
    // The same feed broken 200 bytes before its end: a `<` in text.
    let broken = dir.path().join("broken.xml");
    let mut b = bytes.clone();
    let at = b.len() - 200;
    let cut = at + b[at..].iter().position(|&c| c == b'>').unwrap() + 1;
    b.insert(cut, b'<');
    b.insert(cut + 1, b' ');
    std::fs::write(&broken, &b).unwrap();

    let queries: [&[&str]; 2] = [
        &["buses", "--route", "22", "--direction", "North Bound"],
        &["records", "--element", "bus", "--where", "route=22"],
    ];
    for (file, ok) in [(&good, true), (&broken, false)] {
        let name = file.to_str().unwrap();
        for q in queries {
            let piped = run_with(&[q, &["-"]].concat(), Some(file));
            assert_eq!(piped.0 == Some(0), ok, "{q:?} on {name}: {}", piped.2);
            assert!(piped.1.len() > 1000, "{q:?}: too few records");
            for threads in ["1", "2"] {
                let args = [q, &[name, "--threads", threads]].concat();
                let (code, out, err) = run_with(&args, None);
                assert_eq!(code, piped.0, "{args:?}: {err}");
                assert!(out == piped.1, "{args:?}: output differs from stdin's");
                // The stream says `<stdin>` where the file gives its name.
                assert_eq!(err, piped.2.replace("<stdin>", name), "{args:?}");
                if !ok {
                    assert!(err.contains(&format!("{name}:")), "{err}");
                    assert!(err.contains("byte offset"), "{err}");
                }
            }
        }
    }
}
