//! pyos8: coroutines calling coroutines (the trampoline), used for the
//! library calls `Accept`, `Recv` and `Send`. The seed has no main program
//! for this step (its programs are echoserver and echoserver2); this is
//! the main that `tests/seeds/py/pyos8.py` adds: pyos7's one-client echo,
//! with every socket operation a library call, client included.
//!
//! In copipe the library calls are [`Listener::accept`],
//! [`Socket::recv`] and [`Socket::send_all`], `async fn`s awaited inside
//! the task: `await` is the trampoline. Deliberate differences: copipe
//! polls for I/O inside the scheduler, not in an `iotask`, so the handler
//! is task 3 where the seed's is task 4 (its `iotask` is task 3); and the
//! program ends when its tasks are done, where the seed's `mainloop`
//! spins on the `iotask` forever.
//!
//! Run with `cargo run --example pyos8`.

use std::net::SocketAddr;

use copipe::sched::{self, Listener, Scheduler, Socket};

async fn handle_client(client: Socket) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = client.recv(&mut buf).await?;
        if n == 0 {
            break;
        }
        client.send_all(&buf[..n]).await?;
    }
    client.close().await?;
    println!("Client closed");
    Ok(())
}

async fn server(sock: Listener) -> std::io::Result<()> {
    println!("Server starting");
    let (client, _addr) = sock.accept().await?;
    sched::spawn(handle_client(client)).await;
    drop(sock);
    Ok(())
}

async fn client(addr: SocketAddr) -> std::io::Result<()> {
    let sock = Socket::connect(addr).await?;
    let mut buf = vec![0u8; 65536];
    for msg in [&b"hello"[..], b"world"] {
        sock.send_all(msg).await?;
        let n = sock.recv(&mut buf).await?;
        println!("Got {}", String::from_utf8_lossy(&buf[..n]));
    }
    sock.close().await
}

fn main() -> copipe::Result<()> {
    let sock = Listener::bind(([127, 0, 0, 1], 0).into())?;
    let addr = sock.local_addr()?;
    let mut s = Scheduler::new()?;
    s.seed_order(true);
    s.on_exit(|tid| println!("Task {tid} terminated"));
    s.spawn(server(sock));
    s.spawn(client(addr));
    s.run()
}
