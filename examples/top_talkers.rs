//! top_talkers: the ten clients with the most requests in an access log,
//! and the bytes they fetched, in one pass (issue 16's first program).
//!
//! `cargo run --example top_talkers [FILE]`

use copipe::sinks::{CountBy, Fold};
use copipe::{broadcast, Lines};

/// The first space-separated field of a log line: the client address.
fn client(line: &[u8]) -> &[u8] {
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    &line[..end]
}

/// The response size, the field after the status (`... 200 30674 ...`).
fn bytes(line: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(line);
    let after_request = text.rsplit('"').nth(4).unwrap_or("");
    after_request
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), copipe::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/access-log").into());
    let mut by_client =
        CountBy::new(|line: &&[u8]| String::from_utf8_lossy(client(line)).into_owned());
    let mut total = Fold::new(0u64, |sum: &mut u64, line: &[u8]| *sum += bytes(line));
    Lines::open(&path)?.run(broadcast((&mut by_client, &mut total)))?;
    for (client, n) in by_client.most_common(10) {
        println!("{n:6} {client}");
    }
    println!("{} bytes served", total.value());
    Ok(())
}
