//! libtask9's example: bind a socket and wait at most 10 seconds for a
//! client, with a ticker task running meanwhile; the accept runs in its
//! own task and reports on a channel, and `alt` waits for either that
//! channel or `after(10 s)`. A blocking call (libtask9's `IOProc.iocall`)
//! sends the greeting from a helper thread. Durations are written as the
//! seed's (`10 * SECOND`).
//!
//! Run with `cargo run --example libtask9 [SECONDS]`, then
//! `nc 127.0.0.1 PORT` within the time.

use std::net::SocketAddr;

use copipe::sched::{self, alt, Chan, Listener, Scheduler, Socket};

enum Outcome {
    Client(Option<(Socket, SocketAddr)>),
    Timeout,
}

async fn ticker() {
    loop {
        println!("tick from {}", sched::get_tid().await);
        sched::sleep(2 * sched::SECOND).await;
    }
}

async fn accept_task(listener: Listener, reply: Chan<(Socket, SocketAddr)>) {
    match listener.accept().await {
        Ok(client) => {
            println!("got a connection from: {}", client.1);
            let _ = reply.send(client).await;
        }
        Err(e) => {
            eprintln!("accept: {e}");
            reply.close();
        }
    }
}

async fn iotest(secs: u32) -> copipe::Result<()> {
    let ticker = sched::spawn(ticker()).await;
    let listener = Listener::bind("127.0.0.1:0".parse().expect("valid address"))?;
    println!(
        "waiting {secs} seconds for a client on {}",
        listener.local_addr()?
    );
    let clients = Chan::new(1);
    let acceptor = sched::spawn(accept_task(listener, clients.clone())).await;
    let outcome = alt()
        .recv(&clients, Outcome::Client)
        .after(secs * sched::SECOND, || Outcome::Timeout)
        .await;
    match outcome {
        Outcome::Client(Some((client, _))) => {
            // libtask9 sends through its IOProc; here the socket is
            // non-blocking, and a blocking call goes to a helper thread.
            let who = sched::blocking(|| std::env::var("USER").unwrap_or_default()).await?;
            client
                .send_all(
                    format!(
                        "hello{}!\n",
                        if who.is_empty() {
                            String::new()
                        } else {
                            format!(" from {who}")
                        }
                    )
                    .as_bytes(),
                )
                .await?;
            client.close().await?;
        }
        Outcome::Client(None) => println!("accept failed"),
        Outcome::Timeout => {
            println!("timeout, closing the listener");
            // Killing the acceptor drops (closes) the listener it owns.
            sched::kill(acceptor).await;
        }
    }
    sched::kill(ticker).await;
    println!("exiting");
    Ok(())
}

fn main() -> copipe::Result<()> {
    let secs = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut s = Scheduler::new()?;
    s.spawn(iotest(secs));
    s.run()
}
