//! line_server: a scheduler server feeding TCP clients the lines of a
//! followed file that match a pattern, through a hosted stage (issue 16's
//! fifth program).
//!
//! `cargo run --example line_server -- FILE PATTERN CLIENTS LINES`
//!
//! It listens on 127.0.0.1 (a free port, printed as `listening on ADDR`),
//! waits for CLIENTS clients, then follows FILE from its first line and
//! sends every client each matching line of the first LINES lines, and
//! ends: the clients see their connection close. Tasks of one
//! [`Scheduler`], connected by channels:
//!
//! - `accept`: takes the clients, starts a writer for each, then the rest;
//! - the follow (`sched::follow`): `take(LINES)`, copied (`owned`) into an
//!   [`Outlet`] of the `raw` channel. Outside `host`, a full outlet keeps
//!   the lines in order in its backlog and a task it spawns moves them on;
//! - `host(raw, ...)`: the hosted stage `lend -> Grep -> owned -> Outlet`:
//!   the grep borrows each owned line (`lend`), and its matches are copied
//!   into the `matches` channel;
//! - `hub`: each match to every client's channel;
//! - one writer per client: the lines onto its socket.
//!
//! Each end closes the next: the follow's `take` stops it, which closes
//! its outlet; the hosted stage ends when `raw` is closed and drained and
//! closes its outlet; the hub then closes the clients' channels.

use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use copipe::sched::{self, follow, host, Chan, FollowOptions, Listener, Outlet, Scheduler, Socket};
use copipe::text::Grep;
use copipe::{pipe, Error, Result};

/// Every match to every client, in order; then closes the clients.
async fn hub(matches: Chan<Vec<u8>>, clients: Vec<Chan<Rc<[u8]>>>) {
    while let Some(line) = matches.recv().await {
        let line: Rc<[u8]> = line.into();
        for client in &clients {
            // A client that went away closed its channel: skip it.
            let _ = client.send(line.clone()).await;
        }
    }
    for client in &clients {
        client.close();
    }
}

/// One client's lines onto its socket (a line keeps its newline; the
/// last line of a file may have none).
async fn writer(sock: Socket, lines: Chan<Rc<[u8]>>) -> io::Result<()> {
    let mut buf = Vec::new();
    let sent = async {
        while let Some(line) = lines.recv().await {
            buf.clear();
            buf.extend_from_slice(&line);
            if !line.ends_with(b"\n") {
                buf.push(b'\n');
            }
            sock.send_all(&buf).await?;
        }
        Ok::<(), io::Error>(())
    }
    .await;
    lines.close();
    sent?;
    sock.close().await
}

async fn accept(
    listener: Listener,
    clients: usize,
    file: PathBuf,
    pattern: String,
    lines: usize,
) -> Result<()> {
    let mut outs = Vec::new();
    for _ in 0..clients {
        let (sock, _) = listener.accept().await?;
        let ch = Chan::new(64);
        sched::spawn(writer(sock, ch.clone())).await;
        outs.push(ch);
    }
    let raw: Chan<Vec<u8>> = Chan::new(64);
    let matches: Chan<Vec<u8>> = Chan::new(64);
    sched::spawn(hub(matches.clone(), outs)).await;
    let to_hub = Outlet::new(matches).with_name("matches");
    let stage = pipe()
        .lend()
        .into(Grep::new(&pattern, pipe().owned().into(to_hub))?);
    sched::spawn(host(raw.clone(), stage)).await;
    let to_host = Outlet::new(raw).with_name("raw");
    follow(
        file,
        FollowOptions::new().from_start(true),
        pipe().take(lines).owned().into(to_host),
    )
    .await
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, pattern, clients, lines] = &args[..] else {
        return Err(Error::usage(
            "usage: line_server FILE PATTERN CLIENTS LINES",
        ));
    };
    let count = |s: &str| -> Result<usize> {
        s.parse()
            .map_err(|_| Error::usage(format!("not a count: {s}")))
    };
    let (clients, lines) = (count(clients)?, count(lines)?);
    let listener = Listener::bind(([127, 0, 0, 1], 0).into())?;
    println!("line_server listening on {}", listener.local_addr()?);
    let mut s = Scheduler::new()?;
    s.spawn(accept(
        listener,
        clients,
        file.into(),
        pattern.clone(),
        lines,
    ));
    s.run()
}
