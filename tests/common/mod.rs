//! Helpers shared by the integration tests that start a copipe server.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

/// Reads the first line a server prints on stdout (`... listening on
/// ADDR`) within `timeout` and returns ADDR. Panics, naming the line, if
/// the line does not end with an address; never waits past `timeout`.
pub(crate) fn read_listen_addr(child: &mut Child, timeout: Duration) -> SocketAddr {
    let stdout = child.stdout.take().expect("the server's stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(timeout)
        .expect("the server prints its address");
    line.trim()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}
