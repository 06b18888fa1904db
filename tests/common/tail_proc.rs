//! A running `copipe tail` (the real binary) whose stdout lines and stderr
//! notices arrive on channels, for the follow tests that start, watch and
//! kill it. Each test file adds the waits it needs in its own `impl Tail`.
//!
//! Included by `tests/follow_*.rs` with `#[path = "common/tail_proc.rs"]`.

#![allow(dead_code)] // Each test file reads part of it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;

/// `copipe tail ARGS` running in a directory.
pub(crate) struct Tail {
    pub(crate) child: Child,
    /// Its stdout, a line at a time.
    pub(crate) lines: Receiver<String>,
    /// Its stderr, a line at a time.
    pub(crate) notices: Receiver<String>,
}

impl Tail {
    /// Starts `copipe tail ARGS` in `dir`.
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Tail {
        let mut child = Command::new(env!("CARGO_BIN_EXE_copipe"))
            .current_dir(dir)
            .arg("tail")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = line_channel(child.stdout.take().unwrap());
        let notices = line_channel(child.stderr.take().unwrap());
        Tail {
            child,
            lines,
            notices,
        }
    }
}

/// The lines of `from`, read on a thread of their own until it ends.
fn line_channel(from: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for l in BufReader::new(from).lines().map_while(|l| l.ok()) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}
