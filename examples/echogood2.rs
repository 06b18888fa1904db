//! echogood2.py: echogood without the "I'm alive!" task: an echo server on
//! pyos7's scheduler whose tasks wait for readiness (`ReadWait`,
//! `WriteWait`) before each blocking call.
//!
//! Deliberate difference: copipe polls for I/O inside the scheduler, not
//! in an `iotask`, so a client's task number is one less than the seed's;
//! it listens on 127.0.0.1 only (the seed: every interface).
//!
//! Run with `cargo run --example echogood2 [PORT]` (default 45000).

#[path = "common/pyaddr.rs"]
mod pyaddr;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use copipe::sched::{self, Scheduler};

async fn handle_client(mut client: TcpStream, addr: std::net::SocketAddr) -> std::io::Result<()> {
    println!("Connection from {}", pyaddr::py_addr(addr));
    let mut buf = vec![0u8; 65536];
    loop {
        sched::read_wait(client.as_raw_fd()).await?;
        let n = client.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sched::write_wait(client.as_raw_fd()).await?;
        client.write_all(&buf[..n])?;
    }
    drop(client);
    println!("Client closed");
    Ok(())
}

async fn server(port: u16) -> std::io::Result<()> {
    println!("Server starting");
    let sock = TcpListener::bind(("127.0.0.1", port))?;
    loop {
        sched::read_wait(sock.as_raw_fd()).await?;
        let (client, addr) = sock.accept()?;
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
