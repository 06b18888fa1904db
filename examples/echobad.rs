//! echobad.py: a flawed concurrent echo server on pyos6's scheduler. It
//! freezes: `accept` and `recv` block the one thread every task runs on.
//!
//! Translated as it is (blocking std sockets inside tasks), so it freezes
//! the same way: "I'm alive!" stops while the server waits in `accept`.
//! `copipe echo` and examples/echogood.rs are the working servers.
//!
//! It listens on 127.0.0.1 only (the seed: every interface).
//!
//! Run with `cargo run --example echobad [PORT]` (default 45000).

#[path = "common/pyaddr.rs"]
mod pyaddr;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use copipe::sched::{self, Scheduler};

async fn handle_client(mut client: TcpStream, addr: std::net::SocketAddr) {
    println!("Connection from {}", pyaddr::py_addr(addr));
    let mut buf = vec![0u8; 65536];
    loop {
        let n = client.read(&mut buf).unwrap_or(0); // blocks every task
        if n == 0 {
            break;
        }
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    drop(client);
    println!("Client closed");
    sched::yield_now().await; // Make the function a coroutine
}

async fn server(port: u16) -> std::io::Result<()> {
    println!("Server starting");
    let sock = TcpListener::bind(("127.0.0.1", port))?;
    loop {
        let (client, addr) = sock.accept()?; // blocks every task
        sched::spawn(handle_client(client, addr)).await;
    }
}

async fn alive() {
    loop {
        println!("I'm alive!");
        sched::yield_now().await;
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
    s.spawn(alive());
    s.spawn(server(port));
    s.run()
}
