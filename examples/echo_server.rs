//! echoserver2.py: a concurrent echo server with the sockwrap-style
//! `Socket` (the seed's `Accept`, `Recv`, `Send` library calls are
//! `Listener::accept`, `Socket::recv` and `Socket::send_all`).
//!
//! Run with `cargo run --example echo_server [PORT]` (default 45000), then
//! `nc 127.0.0.1 45000`. `copipe echo` is the same server as a command.

use copipe::sched::{self, Listener, Scheduler, Socket};

async fn handle_client(client: Socket, addr: std::net::SocketAddr) -> std::io::Result<()> {
    println!("Connection from {addr}");
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
    println!("listening on {}", sock.local_addr()?);
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
    s.spawn(server(port));
    s.run()
}
