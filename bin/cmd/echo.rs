//! `copipe echo`: the seed's concurrent echo server (echoserver2.py) on
//! copipe's task scheduler.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
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

/// Each client's receive buffer. The seed asks `recv(65536)`; 8 KiB keeps
/// 10,000 parked connections under 100 MB while still taking several
/// messages per read.
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
                sched::spawn(handle_client(client, verbose)).await;
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

async fn handle_client(client: Socket, verbose: bool) {
    let mut buf = vec![0u8; BUF];
    let result = async {
        loop {
            let n = client.recv(&mut buf).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
            client.send_all(&buf[..n]).await?;
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
