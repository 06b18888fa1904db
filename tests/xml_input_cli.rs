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
