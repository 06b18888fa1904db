//! `copipe echo`: the seed's concurrent echo server (echoserver2.py) on
//! copipe's task scheduler.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Context as _;
use copipe::sched::{self, Listener, Scheduler, Socket};

/// Arguments of `copipe echo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    addr: IpAddr,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long, default_value_t = 45000)]
    port: u16,
    /// Print a line for each connection and disconnection, as the seed
    /// does.
    #[arg(short, long)]
    verbose: bool,
}

/// The receive buffer, one for all clients. The seed asks `recv(65536)`;
/// 8 KiB still takes several messages per read, and bounds what one
/// client can leave unsent (see `handle_client`) to 8 KiB.
const BUF: usize = 8 * 1024;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let addr = SocketAddr::new(args.addr, args.port);
    let mut sched = Scheduler::new()?;
    let listener = Listener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    // Tests and scripts read the address (with the port chosen for
    // `--port 0`) from this first line.
    println!("copipe echo: listening on {}", listener.local_addr()?);
    let verbose = args.verbose;
    sched.spawn(server(listener, verbose));
    sched.run()?;
    Ok(ExitCode::SUCCESS)
}

/// True for the accept errors that mean "out of file descriptors or
/// memory": retrying at once would fail again (and, since the listener
/// stays readable, spin), so the server waits.
fn is_resource_exhausted(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

async fn server(listener: Listener, verbose: bool) -> io::Result<()> {
    let scratch = Rc::new(RefCell::new(vec![0u8; BUF]));
    const FIRST_PAUSE: Duration = Duration::from_millis(10);
    const MAX_PAUSE: Duration = Duration::from_secs(1);
    let mut pause = FIRST_PAUSE;
    loop {
        match listener.accept().await {
            Ok((client, addr)) => {
                pause = FIRST_PAUSE;
                if verbose {
                    eprintln!("Connection from {addr}");
                }
                sched::spawn(handle_client(client, Rc::clone(&scratch), verbose)).await;
            }
            Err(e) if is_resource_exhausted(&e) => {
                // Out of fds: back off on a timer (10 ms, doubling to 1 s)
                // instead of spinning on a listener that stays readable.
                // Waiting clients stay in the backlog and are served as
                // soon as connections close.
                eprintln!("copipe echo: accept: {e}; accepting again in {pause:?}");
                sched::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            // The client gave up before we accepted it, or a signal.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Echoes one client until it closes.
///
/// Every client reads into the one `scratch` buffer, borrowed only
/// between two awaits, and sends from it at once: the buffer stays in the
/// CPU cache, where 900 per-client buffers would each be a cold copy
/// target for the kernel (as a hand-written event loop does it). What the
/// socket does not take at once is copied to the client's own `unsent`
/// and sent, waiting as needed, before the client is read again; so a
/// client that does not read its replies holds at most one read (8 KiB).
async fn handle_client(client: Socket, scratch: Rc<RefCell<Vec<u8>>>, verbose: bool) {
    let mut unsent: Vec<u8> = Vec::new();
    let result = async {
        loop {
            client.readable().await?;
            {
                let mut buf = scratch.borrow_mut();
                let n = match client.try_recv(&mut buf) {
                    Ok(0) => return Ok::<(), io::Error>(()),
                    Ok(n) => n,
                    // A spurious wake: wait for the next edge.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                };
                let sent = client.try_send(&buf[..n])?;
                unsent.extend_from_slice(&buf[sent..n]);
            }
            if !unsent.is_empty() {
                client.send_all(&unsent).await?;
                unsent.clear();
            }
        }
    }
    .await;
    // A client that vanishes mid-message (reset, broken pipe) is the
    // client's business: the server just closes its end.
    if verbose {
        match result {
            Ok(()) => eprintln!("Client closed"),
            Err(e) => eprintln!("Client closed: {e}"),
        }
    }
}
