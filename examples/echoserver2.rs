//! echoserver2.py: the echo server written with sockwrap's `Socket`, a class
//! whose methods `accept`, `recv`, `send` and `close` are coroutines
//! called through the trampoline.
//!
//! copipe's [`Listener`] and [`Socket`] are that class: [`Listener::accept`],
//! [`Socket::recv`], [`Socket::send_all`], [`Socket::close`]. Deliberate
//! difference: copipe polls for I/O inside the scheduler, not in an
//! `iotask`, so a client's task number is one less than the seed's; it
//! listens on 127.0.0.1 only (the seed: every interface). `copipe echo` is
//! the same server as a command.
//!
//! Run with `cargo run --example echoserver2 [PORT]` (default 45000).

#[path = "common/pyaddr.rs"]
mod pyaddr;

use std::net::SocketAddr;

use copipe::sched::{self, Listener, Scheduler, Socket};

async fn handle_client(client: Socket, addr: SocketAddr) -> std::io::Result<()> {
    println!("Connection from {}", pyaddr::py_addr(addr));
    let mut buf = vec![0u8; 65536];
    loop {
        let n = client.recv(&mut buf).await?;
        if n == 0 {
            break;
        }
        client.send_all(&buf[..n]).await?;
    }
    println!("Client closed");
    client.close().await
}

async fn server(port: u16) -> std::io::Result<()> {
    println!("Server starting");
    let sock = Listener::bind(([127, 0, 0, 1], port).into())?;
    loop {
        let (client, addr) = sock.accept().await?;
        sched::spawn(handle_client(client, addr)).await;
    }
}

fn main() -> copipe::Result<()> {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(45000);
    let mut s = Scheduler::new()?;
    s.seed_order(true);
    s.on_exit(|tid| println!("Task {tid} terminated"));
    s.spawn(server(port));
    s.run()
}
