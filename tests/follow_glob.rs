//! Globs under `copipe tail -F 'dir/*.log'`: files that appear later and
//! match are followed from their start, the others are not; with a
//! checkpoint each file resumes on its own. Waits are bounded.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

#[path = "common/tail_proc.rs"]
mod tail_proc;
use tail_proc::Tail;

impl Tail {
    /// Collects file lines (not headers) until `last` is seen.
    fn until(&self, seen: &mut Vec<String>, last: &str) {
        let end = Instant::now() + DEADLINE;
        while !seen.iter().any(|l| l == last) {
            let left = end.saturating_duration_since(Instant::now());
            let l = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{last}` within the deadline: {seen:?}"));
            if !l.is_empty() && !l.starts_with("==> ") {
                seen.push(l);
            }
        }
    }

    fn stop(mut self, seen: &mut Vec<String>) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap();
        seen.extend(
            self.lines
                .iter()
                .filter(|l| !l.is_empty() && !l.starts_with("==> ")),
        );
    }
}

fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

#[test]
fn a_glob_follows_files_that_appear_later_each_checkpointed_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("logs")).unwrap();
    append(&d.join("logs/a.log"), "a 1\na 2\n");
    let args = ["-F", "logs/*.log", "--checkpoint", "ck"];
    let mut seen = Vec::new();
    let t = Tail::start(d, &args);
    t.until(&mut seen, "a 2");
    // A file that appears later and matches is read from its start; one
    // that does not match is not read.
    append(&d.join("logs/skip.txt"), "not me\n");
    append(&d.join("logs/b.log"), "b 1\n");
    t.until(&mut seen, "b 1");
    append(&d.join("logs/a.log"), "a 3\n");
    t.until(&mut seen, "a 3");
    t.stop(&mut seen);
    // Each file resumes where it was.
    append(&d.join("logs/a.log"), "a 4\n");
    append(&d.join("logs/b.log"), "b 2\n");
    let t = Tail::start(d, &args);
    t.until(&mut seen, "a 4");
    t.until(&mut seen, "b 2");
    t.stop(&mut seen);
    seen.sort();
    assert_eq!(seen, ["a 1", "a 2", "a 3", "a 4", "b 1", "b 2"]);
    let ck = fs::read_to_string(d.join("ck")).unwrap();
    assert!(ck.contains("a.log") && ck.contains("b.log"), "{ck}");
    assert!(!ck.contains("skip.txt"), "{ck}");
}

#[test]
fn a_glob_without_checkpoint_starts_as_n_says_and_skips_a_rotated_match() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    append(&d.join("x.log"), "x 1\nx 2\nx 3\n");
    let mut seen = Vec::new();
    let t = Tail::start(d, &["-F", "-n", "1", "*.log"]);
    t.until(&mut seen, "x 3");
    // Rotated to a name the glob matches too: not read a second time.
    fs::rename(d.join("x.log"), d.join("x.1.log")).unwrap();
    append(&d.join("x.log"), "x 4\n");
    t.until(&mut seen, "x 4");
    append(&d.join("y.log"), "y 1\n");
    t.until(&mut seen, "y 1");
    t.stop(&mut seen);
    assert_eq!(seen, ["x 3", "x 4", "y 1"]);
}
