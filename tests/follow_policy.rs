//! The follow policies of the tail/grep issue, through the real binary
//! (`copipe tail -f/-F`): a bad path among good ones is reported with the
//! OS reason and the others are followed; under -F a directory put in a
//! file's place never ends the follow, and the file is followed again when
//! it comes back; a line longer than the maximum (16 MiB) between two
//! short lines is reported with its offset and skipped, the lines after it
//! read. Waits are bounded by a deadline.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

#[path = "common/tail_proc.rs"]
mod tail_proc;
use tail_proc::Tail;

impl Tail {
    /// The next stdout line that is not a `==> name <==` header or blank.
    fn line(&self) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(DEADLINE)
                .expect("no line within the deadline");
            if !l.is_empty() && !l.starts_with("==> ") {
                return l;
            }
        }
    }

    /// The next stderr line containing `part`.
    fn notice(&self, part: &str) -> String {
        loop {
            let n = self
                .notices
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("no notice with `{part}` within the deadline"));
            if n.contains(part) {
                return n;
            }
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn follow_descriptor_reports_bad_paths_and_follows_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("good"), "g 1\n").unwrap();
    fs::create_dir(d.join("adir")).unwrap();
    let t = Tail::start(d, &["-f", "-n", "+1", "missing", "adir", "good"]);
    assert_eq!(
        t.notice("missing"),
        "copipe: missing: No such file or directory"
    );
    assert_eq!(t.notice("adir"), "copipe: adir: Is a directory");
    assert_eq!(t.line(), "g 1");
    append(&d.join("good"), b"g 2\n");
    assert_eq!(t.line(), "g 2");
}

#[test]
fn follow_name_survives_a_directory_in_place_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("log");
    fs::write(&log, "one\n").unwrap();
    fs::write(d.join("other"), "").unwrap();
    let mut t = Tail::start(d, &["-F", "-n", "+1", "log", "other"]);
    assert_eq!(t.line(), "one");
    fs::remove_file(&log).unwrap();
    fs::create_dir(&log).unwrap();
    assert_eq!(t.notice("Is a directory"), "copipe: log: Is a directory");
    // The other file is still followed meanwhile.
    append(&d.join("other"), b"other 1\n");
    assert_eq!(t.line(), "other 1");
    assert!(t.is_running());
    fs::remove_dir(&log).unwrap();
    fs::write(&log, "two\n").unwrap();
    assert_eq!(t.line(), "two");
    assert!(t.is_running());
}

#[test]
fn a_20_mib_line_between_two_short_lines_is_skipped_under_follow() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("log");
    fs::write(&log, "").unwrap();
    let t = Tail::start(d, &["-F", "log"]);
    append(&log, b"short 1\n");
    assert_eq!(t.line(), "short 1");
    let mut big = vec![b'x'; 20 << 20];
    big.push(b'\n');
    append(&log, &big);
    append(&log, b"short 2\n");
    assert_eq!(t.line(), "short 2");
    let n = t.notice("longer than");
    assert!(
        n.starts_with("copipe: log: line at byte offset 8 is longer than 16777216 bytes"),
        "{n}"
    );
}
