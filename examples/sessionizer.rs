//! sessionizer: a stateful coroutine stage that groups a client's requests
//! into sessions, a session ending after 30 minutes without a request
//! (issue 16's third program). The state (the open sessions) lives in the
//! coroutine's locals; items into a coroutine are owned, so the borrowed
//! lines are copied first with `pipe().owned()`.
//!
//! `cargo run --example sessionizer [FILE]`

use std::collections::HashMap;

use copipe::{coroutine, pipe, Inbox, Lines, Result};

/// Seconds since midnight of `[24/Feb/2008:06:49:07 -0600]`, enough for a
/// log of one day.
fn seconds(line: &str) -> Option<u64> {
    let stamp = line.split('[').nth(1)?.split(' ').next()?;
    let mut hms = stamp.split_once(':')?.1.split(':');
    let (h, m, s): (u64, u64, u64) = (
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
        hms.next()?.parse().ok()?,
    );
    Some(h * 3600 + m * 60 + s)
}

const GAP: u64 = 30 * 60;

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/access-log").into());
    let sessionizer = coroutine(|inbox: Inbox<Vec<u8>>| async move {
        // client -> (first request, last request, requests)
        let mut open: HashMap<String, (u64, u64, u64)> = HashMap::new();
        let mut sessions = 0u64;
        while let Some(line) = inbox.recv().await {
            let line = String::from_utf8_lossy(&line);
            let Some(at) = seconds(&line) else { continue };
            let client = line.split(' ').next().unwrap_or("").to_string();
            let entry = open.entry(client).or_insert((at, at, 0));
            if at.saturating_sub(entry.1) > GAP {
                sessions += 1; // the old session ended
                *entry = (at, at, 0);
            }
            entry.1 = at;
            entry.2 += 1;
        }
        // End of input: every open session ends.
        sessions += open.len() as u64;
        println!("{sessions} sessions from {} clients", open.len());
        Ok(())
    });
    Lines::open(&path)?.run(pipe().owned().into(sessionizer))
}
