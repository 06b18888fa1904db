//! `copipe serve-log`: tail -f | grep over the network. Follows a file on
//! copipe's scheduler and sends each matching line to every connected TCP
//! client, one task per client.

use copipe::Lifecycle;
use std::cell::{Cell, RefCell};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use anyhow::Context as _;
use copipe::sched::{
    self, follow, Chan, FollowOptions, Listener, Scheduler, Socket, Tid, TrySendError,
};
use copipe::text::Grep;
use copipe::{Flow, Stage};

/// Arguments of `copipe serve-log`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The file to follow (as tail -F: truncation and rotation are
    /// handled).
    file: PathBuf,
    /// Send only lines matching PATTERN (a regular expression); repeat for
    /// several (a line matching any is sent). Without -e, every line.
    #[arg(short = 'e', long = "regexp", value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    addr: IpAddr,
    /// How many lines may wait for one client; a client that falls
    /// further behind is dropped, so it never stalls the others. At least
    /// 128 (the follower's burst between turns of the other tasks).
    #[arg(long, default_value_t = 1024, value_name = "LINES",
          value_parser = clap::value_parser!(u64).range(128..1 << 24))]
    queue: u64,
    /// Send the file's existing lines too, not only new ones.
    #[arg(long)]
    from_start: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Fail early, with the path, if the file cannot be read.
    std::fs::File::open(&args.file).with_context(|| format!("{}", args.file.display()))?;
    let queue = args.queue as usize; // at most 2^24, by the parser
    let clients: Clients = Rc::new(RefCell::new(Vec::new()));
    let reap: Chan<Tid> = Chan::new(1024);
    let sink = Broadcast {
        clients: Rc::clone(&clients),
        reap: reap.clone(),
        queue,
    };
    // The text area's grep (any pattern matches); every line without -e.
    // Built before listening, so a bad pattern is reported first.
    let target: Box<dyn for<'a> Stage<&'a [u8]>> = if args.patterns.is_empty() {
        Box::new(sink)
    } else {
        Box::new(Grep::builder().patterns(&args.patterns).build(sink)?)
    };
    let addr = SocketAddr::new(args.addr, args.port);
    let listener = Listener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    println!("copipe serve-log: listening on {}", listener.local_addr()?);

    let mut sched = Scheduler::new()?;
    sched.spawn(accept_loop(listener, clients, queue));
    sched.spawn(reaper(reap));
    let opts = FollowOptions::new().from_start(args.from_start);
    let file = args.file.clone();
    sched.spawn(async move { follow(&file, opts, target).await });
    sched.run()?;
    Ok(ExitCode::SUCCESS)
}

/// One connected client, as the follower sees it.
struct Client {
    id: u64,
    tid: Option<Tid>,
    addr: SocketAddr,
    queue: Chan<Rc<[u8]>>,
    sock: Rc<Socket>,
}

type Clients = Rc<RefCell<Vec<Client>>>;

async fn accept_loop(listener: Listener, clients: Clients, queue: usize) -> std::io::Result<()> {
    let next_id = Cell::new(0u64);
    loop {
        let (sock, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of fds and the like: say so and retry later, without
                // spinning (see `copipe echo`).
                eprintln!("copipe serve-log: accept: {e}");
                sched::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let sock = Rc::new(sock);
        let id = next_id.get();
        next_id.set(id + 1);
        let lines: Chan<Rc<[u8]>> = Chan::new(queue);
        clients.borrow_mut().push(Client {
            id,
            tid: None,
            addr,
            queue: lines.clone(),
            sock: Rc::clone(&sock),
        });
        let guard = Deregister {
            id,
            clients: Rc::clone(&clients),
        };
        let tid = sched::spawn(client_task(sock, lines, guard)).await;
        if let Some(c) = clients.borrow_mut().iter_mut().find(|c| c.id == id) {
            c.tid = Some(tid);
        }
    }
}

/// Removes a client from the list when its task ends, however it ends
/// (including being killed).
struct Deregister {
    id: u64,
    clients: Clients,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        if let Ok(mut c) = self.clients.try_borrow_mut() {
            c.retain(|c| c.id != self.id);
        }
    }
}

/// Sends the client its lines, everything queued in one write.
async fn client_task(
    sock: Rc<Socket>,
    lines: Chan<Rc<[u8]>>,
    _guard: Deregister,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(first) = lines.recv().await {
        buf.clear();
        buf.extend_from_slice(&first);
        while let Ok(line) = lines.try_recv() {
            buf.extend_from_slice(&line);
        }
        if let Err(e) = sock.send_all(&buf).await {
            // The client went away: not the server's failure.
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) {
                return Ok(());
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Kills the tasks of dropped clients (a stage cannot await `kill`).
async fn reaper(reap: Chan<Tid>) {
    while let Some(tid) = reap.recv().await {
        sched::kill(tid).await;
    }
}

/// The follower's target (behind the grep): queues each line for every
/// client, dropping those whose queue is full.
struct Broadcast {
    clients: Clients,
    reap: Chan<Tid>,
    queue: usize,
}

impl<'a> Stage<&'a [u8]> for Broadcast {
    fn send(&mut self, line: &'a [u8]) -> copipe::Result<Flow> {
        let mut clients = self.clients.borrow_mut();
        if clients.is_empty() {
            return Ok(Flow::Continue);
        }
        // One copy of the line, shared by every client's queue.
        let shared: Rc<[u8]> = Rc::from(line);
        let queue = self.queue;
        let reap = &self.reap;
        clients.retain(|c| match c.queue.try_send(Rc::clone(&shared)) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            Err(TrySendError::Full(_)) => {
                eprintln!(
                    "copipe serve-log: dropping client {}: {queue} lines waiting (it reads too slowly)",
                    c.addr
                );
                // Best effort: the client's socket buffer is likely full.
                let notice = format!(
                    "\ncopipe serve-log: you were dropped: {queue} lines waiting (reading too slowly)\n"
                );
                let _ = c.sock.try_send(notice.as_bytes());
                c.queue.close();
                if let Some(tid) = c.tid {
                    let _ = reap.try_send(tid);
                }
                false
            }
        });
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Broadcast {
    fn flush(&mut self) -> copipe::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> copipe::Result<()> {
        for c in self.clients.borrow().iter() {
            c.queue.close();
        }
        Ok(())
    }
}
