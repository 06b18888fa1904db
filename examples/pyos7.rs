//! pyos7: waiting for I/O (`ReadWait`, `WriteWait`). The seed has no main
//! program for this step (its program is echogood); this is the main that
//! `tests/seeds/py/pyos7.py` adds: echogood's handler serving one client
//! that is a task of the same scheduler, so the output is deterministic.
//!
//! Deliberate differences: copipe polls for I/O inside the scheduler, not
//! in an `iotask`, so the handler is task 3 where the seed's is task 4
//! (its `iotask` is task 3); and the program ends when its tasks are done,
//! where the seed's `mainloop` spins on the `iotask` forever.
//!
//! Run with `cargo run --example pyos7`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use copipe::sched::{self, Scheduler};

async fn handle_client(mut client: TcpStream) -> std::io::Result<()> {
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

async fn server(sock: TcpListener) -> std::io::Result<()> {
    println!("Server starting");
    sched::read_wait(sock.as_raw_fd()).await?;
    let (client, _addr) = sock.accept()?;
    sched::spawn(handle_client(client)).await;
    drop(sock);
    Ok(())
}

async fn client(addr: SocketAddr) -> std::io::Result<()> {
    let mut sock = TcpStream::connect(addr)?;
    let mut buf = vec![0u8; 65536];
    for msg in [&b"hello"[..], b"world"] {
        sched::write_wait(sock.as_raw_fd()).await?;
        sock.write_all(msg)?;
        sched::read_wait(sock.as_raw_fd()).await?;
        let n = sock.read(&mut buf)?;
        println!("Got {}", String::from_utf8_lossy(&buf[..n]));
    }
    Ok(())
}

fn main() -> copipe::Result<()> {
    let sock = TcpListener::bind("127.0.0.1:0")?;
    let addr = sock.local_addr()?;
    let mut s = Scheduler::new()?;
    s.seed_order(true);
    s.on_exit(|tid| println!("Task {tid} terminated"));
    s.spawn(server(sock));
    s.spawn(client(addr));
    s.run()
}
