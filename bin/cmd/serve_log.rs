//! `copipe serve-log`: tail -f | grep over the network. Follows a file on
//! copipe's scheduler and sends each selected line to every connected TCP
//! client, one task per client.
//!
//! ```text
//! follow_lines_at ──line, offset──▶ Broadcast ──Rc line──▶ client queue ──▶ client task ──▶ socket
//!                                      │ (selection, once per line)
//!                                      └─ live_end: where the next line starts
//! ```
//!
//! With `--from-start` a new client's task first reads the file itself,
//! from byte 0 up to `live_end`, through the same selection; once it has
//! reached `live_end` and the follower has read all there was (checked and
//! registered with no await in between, on the one scheduler thread) it
//! joins the live clients, so the next line it gets is the one starting at
//! `live_end`: none lost, none twice.
//!
//! A live client whose queue is full is dropped: its task cuts what it
//! still had to write after the end of the line in progress, writes one
//! `copipe: dropped: ...` line and closes. The broadcaster never waits for
//! a client, so the others do not see it.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::pin::pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use copipe::sched::{
    self, follow_lines_at, Chan, FollowOptions, Listener, Scheduler, Socket, TrySendError,
};
use copipe::text::{Block, Grep, DEFAULT_MAX_LINE_LEN};
use copipe::{Flow, Lifecycle, Stage};

use super::select::SelectArgs;
use super::tail::{os_reason, Binary, Status};
use super::tail_grep::{Opts, Rich};

/// Arguments of `copipe serve-log`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// The file to follow (as tail -F: truncation and rotation are
    /// handled).
    file: PathBuf,
    /// The selection, as `copipe tail`'s: -e, --file, --fixed-strings, -x,
    /// --drop, -i, -v, -w.
    #[command(flatten)]
    select: SelectArgs,
    /// Port to listen on (0: any free port; the address is printed).
    #[arg(long)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    addr: IpAddr,
    /// How many selected lines may wait for one client; a client that
    /// falls further behind is dropped (it gets a last line saying so), so
    /// it never stalls the others. At least 128 (the follower's burst
    /// between turns of the other tasks).
    #[arg(long, default_value_t = 1024, value_name = "LINES",
          value_parser = clap::value_parser!(u64).range(128..1 << 24))]
    queue: u64,
    /// Send each client the file's existing lines first (read from the
    /// file for that client, from its start), then the new ones.
    #[arg(long)]
    from_start: bool,
}

/// The end of `copipe serve-log --help`.
const AFTER_HELP: &str = "\
WHAT A CLIENT GETS:
  Each client gets the selected lines, whole, in the file's order. Without
  --from-start, the lines appended after it connected. With --from-start,
  the selected lines of the file from its start (read from the file for
  that client: no copy is kept in memory), then the live lines, with none
  lost or sent twice where the two meet. After a truncation or rotation
  during that catch-up, it goes on with the new file from its start.

SLOW CLIENTS:
  A client with more than --queue selected lines waiting is dropped: it
  gets the rest of the line being sent, then one last line
  `copipe: dropped: client too slow (N bytes behind)`, and the connection
  is closed (a line is never cut by the drop, unless the client reads
  nothing at all for 60 s after it). The server says so on stderr. A slow,
  dropped or vanished client changes nothing for the others: the follower
  never waits for a client. A client still catching up (--from-start)
  reads the file at its own pace and is not dropped.

OPTIONS:
  The selection options are copipe tail's, with the same meaning. tail's
  output options (-c, -o, -m, -q, -A/-B/-C, --line-number, -H, --color,
  --json) are not offered: the lines go to clients as they are.";

/// How long a dropped client has to take the end of its line and the
/// notice before the connection is closed anyway.
const DROP_GRACE: Duration = Duration::from_secs(60);

/// What a catch-up reads from the file at a time.
const CHUNK: usize = 64 * 1024;

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Fail early, with the path, if the file cannot be read.
    // `copipe: PATH: reason`, the OS reason once (issue 13 item 5).
    File::open(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {}", args.file.display(), os_reason(&e)))?;
    // The selection, built as tail builds it, before listening, so a bad
    // pattern is reported first.
    let select = Selector::new(&args.select)?;
    let shared = Rc::new(Shared {
        path: args.file.clone(),
        clients: RefCell::new(Vec::new()),
        select: RefCell::new(select),
        live_end: Cell::new(0),
        generation: Cell::new(0),
        follower_idle: Cell::new(false),
        queue: args.queue as usize, // at most 2^24, by the parser
    });
    let addr = SocketAddr::new(args.addr, args.port);
    let listener = Listener::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {}", os_reason(&e)))?;
    println!("copipe serve-log: listening on {}", listener.local_addr()?);

    let mut sched = Scheduler::new()?;
    sched.spawn(accept_loop(listener, Rc::clone(&shared), args.from_start));
    // With --from-start the follower reads the file from its start too, so
    // that `live_end` is known from the first line on; without, from its
    // end. Lines with no live client cost only their offset.
    let opts = FollowOptions::new().from_start(args.from_start);
    let file = args.file.clone();
    let target = Broadcast { shared };
    sched.spawn(async move { follow_lines_at([file], opts, target).await });
    sched.run()?;
    Ok(ExitCode::SUCCESS)
}

/// What every task shares (one thread: `Cell`s and `RefCell`s, never
/// borrowed across an await).
struct Shared {
    path: PathBuf,
    /// The live clients: those that get each selected line.
    clients: RefCell<Vec<Rc<Client>>>,
    select: RefCell<Selector>,
    /// The byte offset just past the last line the follower passed on: the
    /// next live line starts there.
    live_end: Cell<u64>,
    /// Counts the follower's restarts at a lower offset (truncation,
    /// rotation): a catch-up reading the old file starts again.
    generation: Cell<u64>,
    /// The follower has read all there was (it flushed before waiting): a
    /// catch-up that reached `live_end` may join. While the follower is
    /// still reading a backlog (the whole file, with --from-start, at the
    /// start) a client goes on reading the file at its own pace instead of
    /// getting the backlog pushed at disk speed into its queue.
    follower_idle: Cell<bool>,
    queue: usize,
}

/// One connected client.
struct Client {
    id: u64,
    addr: SocketAddr,
    lines: Chan<Rc<[u8]>>,
    /// Bytes in `lines`.
    queued: Cell<u64>,
    /// Bytes taken from `lines` not yet written to the socket.
    unsent: Cell<u64>,
    /// Set when dropped: how many bytes it was behind.
    dropped: Cell<Option<u64>>,
    /// Wakes the client's task when it is dropped while it waits to write.
    kick: Chan<()>,
}

/// The selection of `copipe tail`, as a yes/no for one line: the plain
/// greps (the same builder as tail's plain path) or, with -w, tail's
/// [`Rich`] stage (where -w lives), with no output option.
struct Selector {
    /// Set by the [`Hit`] at the end of the chain when a line passes.
    hit: Rc<Cell<bool>>,
    chain: Chain,
}

// One per server: the plain greps inline, as in tail.
#[allow(clippy::large_enum_variant)]
enum Chain {
    /// No pattern, no --drop, no -v: every line.
    All,
    /// tail's plain path.
    Plain(Grep<Grep<Hit>>),
    /// -w: tail's grep options stage.
    Word(Box<Rich<Hit>>),
}

impl Selector {
    fn new(args: &SelectArgs) -> anyhow::Result<Selector> {
        let patterns = args.all_patterns()?;
        let hit = Rc::new(Cell::new(false));
        let chain = if args.word_regexp {
            let opts = Opts {
                patterns,
                drop: args.drop.clone(),
                ignore_case: args.ignore_case,
                invert: args.invert_match,
                word: true,
                follow: true,
                ..Opts::default()
            };
            Chain::Word(Box::new(Rich::new(
                opts,
                vec![String::new()],
                vec![None],
                &Rc::new(Status::default()),
                &Rc::new(Binary::default()),
                Hit(Rc::clone(&hit)),
            )?))
        } else if patterns.is_empty() && args.drop.is_empty() && !args.invert_match {
            Chain::All
        } else {
            Chain::Plain(args.grep(patterns, Hit(Rc::clone(&hit)))?)
        };
        Ok(Selector { hit, chain })
    }

    /// True when `line` (with its `\n`) is selected.
    fn is_selected(&mut self, line: &[u8]) -> bool {
        self.hit.set(false);
        // A `Hit` never fails.
        let _ = match &mut self.chain {
            Chain::All => return true,
            Chain::Plain(g) => g.send(line),
            Chain::Word(r) => r.send(Block::new(line, 0)),
        };
        self.hit.get()
    }
}

/// Notes that the selection passed a line.
#[derive(Debug)]
struct Hit(Rc<Cell<bool>>);

impl<'a> Stage<&'a [u8]> for Hit {
    fn send(&mut self, _: &'a [u8]) -> copipe::Result<Flow> {
        self.0.set(true);
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Hit {
    fn flush(&mut self) -> copipe::Result<()> {
        Ok(())
    }
    fn close(&mut self) -> copipe::Result<()> {
        Ok(())
    }
}

async fn accept_loop(listener: Listener, shared: Rc<Shared>, from_start: bool) {
    let mut next_id = 0u64;
    loop {
        let (sock, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of fds and the like: say so and retry later, without
                // spinning (see `copipe echo`).
                eprintln!("copipe: accept: {}", os_reason(&e));
                sched::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let client = Rc::new(Client {
            id: next_id,
            addr,
            lines: Chan::new(shared.queue),
            queued: Cell::new(0),
            unsent: Cell::new(0),
            dropped: Cell::new(None),
            kick: Chan::new(1),
        });
        next_id += 1;
        if !from_start {
            // Live from now on.
            shared.clients.borrow_mut().push(Rc::clone(&client));
        }
        sched::spawn(client_task(Rc::clone(&shared), client, sock, from_start)).await;
    }
}

/// Takes a client off the live list when its task ends, however it ends.
struct Deregister {
    id: u64,
    shared: Rc<Shared>,
}

impl Drop for Deregister {
    fn drop(&mut self) {
        if let Ok(mut c) = self.shared.clients.try_borrow_mut() {
            c.retain(|c| c.id != self.id);
        }
    }
}

/// One client: the catch-up (`--from-start`), then the live lines.
async fn client_task(shared: Rc<Shared>, client: Rc<Client>, sock: Socket, from_start: bool) {
    let _guard = Deregister {
        id: client.id,
        shared: Rc::clone(&shared),
    };
    if from_start && catch_up(&shared, &client, &sock).await.is_err() {
        // The client went away.
        return;
    }
    if live(&client, &sock).await.is_ok() {
        let _ = sock.shutdown(Shutdown::Write);
    }
}

/// Sends the selected lines of the file from its start up to where the
/// follower is, reading the file a chunk at a time, then makes the client
/// live (with no await between seeing it is there and joining).
async fn catch_up(shared: &Rc<Shared>, client: &Rc<Client>, sock: &Socket) -> io::Result<()> {
    let mut generation = shared.generation.get();
    let mut file = File::open(&shared.path).ok();
    let mut pos = 0u64;
    // The start of a line not yet complete, and whether the line being read
    // is too long (skipped, as the follower skips it).
    let mut carry: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut chunk = vec![0u8; CHUNK];
    let mut out = Vec::new();
    loop {
        if shared.generation.get() != generation {
            // Truncated or rotated: the new file, from its start.
            generation = shared.generation.get();
            file = File::open(&shared.path).ok();
            pos = 0;
            carry.clear();
            skipping = false;
        }
        let end = shared.live_end.get();
        if pos >= end {
            if !carry.is_empty() {
                // A last line without a newline (the follower passes one on
                // when the file is truncated after it).
                if !skipping && shared.select.borrow_mut().is_selected(&carry) {
                    sock.send_all(&carry).await?;
                }
                carry.clear();
                continue;
            }
            if !shared.follower_idle.get() {
                // The follower is pushing a backlog (it yields every 128
                // lines): let it, and read on from the file.
                sched::yield_now().await;
                continue;
            }
            shared.clients.borrow_mut().push(Rc::clone(client));
            return Ok(());
        }
        let want = CHUNK.min(usize::try_from(end - pos).unwrap_or(CHUNK));
        let full = file
            .as_ref()
            .is_some_and(|f| f.read_exact_at(&mut chunk[..want], pos).is_ok());
        if !full {
            // The file is shorter than what the follower read: it was just
            // truncated or replaced, and the follower will find out (a
            // new generation). Nothing of it is sent until then.
            sched::sleep(Duration::from_millis(50)).await;
            if file.is_none() {
                file = File::open(&shared.path).ok();
            }
            continue;
        }
        let got = want;
        pos += got as u64;
        out.clear();
        let mut data = &chunk[..got];
        {
            let mut select = shared.select.borrow_mut();
            while let Some(i) = memchr::memchr(b'\n', data) {
                let (line, rest) = data.split_at(i + 1);
                data = rest;
                if skipping {
                    skipping = false;
                    continue;
                }
                if carry.is_empty() {
                    if select.is_selected(line) {
                        out.extend_from_slice(line);
                    }
                } else {
                    carry.extend_from_slice(line);
                    if carry.len() <= DEFAULT_MAX_LINE_LEN && select.is_selected(&carry) {
                        out.extend_from_slice(&carry);
                    }
                    carry.clear();
                }
            }
            if !skipping {
                carry.extend_from_slice(data);
                if carry.len() > DEFAULT_MAX_LINE_LEN {
                    carry.clear();
                    skipping = true;
                }
            }
        }
        if out.is_empty() {
            sched::yield_now().await;
        } else {
            sock.send_all(&out).await?;
        }
    }
}

/// Sends the live lines, as many as are queued in one write. When the
/// client is dropped, what it still had to get is cut after the line in
/// progress and the notice follows; then the connection is closed.
async fn live(client: &Client, sock: &Socket) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut sent = 0;
    let mut deadline = None;
    let mut noticed = false;
    loop {
        if let (Some(behind), false) = (client.dropped.get(), noticed) {
            // Never a cut line: finish the one in progress, then say why.
            let cut = if sent == 0 || buf[sent - 1] == b'\n' {
                sent
            } else {
                memchr::memchr(b'\n', &buf[sent..]).map_or(buf.len(), |i| sent + i + 1)
            };
            buf.truncate(cut);
            buf.extend_from_slice(
                format!("copipe: dropped: client too slow ({behind} bytes behind)\n").as_bytes(),
            );
            noticed = true;
            deadline = Some(Instant::now() + DROP_GRACE);
        }
        if sent == buf.len() {
            if noticed {
                return Ok(());
            }
            buf.clear();
            sent = 0;
            let Some(first) = client.lines.recv().await else {
                // Dropped (the next turn writes the notice) or the server
                // ended.
                if client.dropped.get().is_some() {
                    continue;
                }
                return Ok(());
            };
            buf.extend_from_slice(&first);
            while let Ok(line) = client.lines.try_recv() {
                buf.extend_from_slice(&line);
            }
            client
                .queued
                .set(client.queued.get().saturating_sub(buf.len() as u64));
            // Dropped meanwhile? The top of the loop says so first.
            continue;
        }
        client.unsent.set((buf.len() - sent) as u64);
        match send_some(sock, &buf[sent..], &client.kick, deadline).await {
            Sent::Wrote(n) => sent += n,
            Sent::Woken => {}
            // The client went away, or took nothing in the grace time.
            Sent::Failed | Sent::TimedOut => return Err(io::ErrorKind::BrokenPipe.into()),
        }
        client.unsent.set((buf.len() - sent) as u64);
    }
}

/// What [`send_some`] did.
enum Sent {
    Wrote(usize),
    Woken,
    TimedOut,
    Failed,
}

/// One `send` of `buf`, waiting until the socket takes some, `kick` has
/// something, or `deadline` passes.
async fn send_some(sock: &Socket, buf: &[u8], kick: &Chan<()>, deadline: Option<Instant>) -> Sent {
    let mut send = pin!(sock.send(buf));
    let mut woken = pin!(kick.recv());
    let mut timer =
        deadline.map(|d| Box::pin(sched::sleep(d.saturating_duration_since(Instant::now()))));
    std::future::poll_fn(|cx| {
        match send.as_mut().poll(cx) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Sent::Failed),
            Poll::Ready(Ok(n)) => return Poll::Ready(Sent::Wrote(n)),
            Poll::Pending => {}
        }
        if woken.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Sent::Woken);
        }
        if let Some(t) = &mut timer {
            if t.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Sent::TimedOut);
            }
        }
        Poll::Pending
    })
    .await
}

/// The follower's target: selects each line once and queues it for every
/// live client, dropping those whose queue is full; keeps `live_end`.
struct Broadcast {
    shared: Rc<Shared>,
}

impl<'a> Stage<Block<'a>> for Broadcast {
    fn send(&mut self, line: Block<'a>) -> copipe::Result<Flow> {
        let shared = &self.shared;
        let offset = line.byte_offset();
        let bytes = line.bytes();
        shared.follower_idle.set(false);
        if offset < shared.live_end.get() {
            // The follower started again lower down: truncation or rotation.
            shared.generation.set(shared.generation.get() + 1);
        }
        let mut clients = shared.clients.borrow_mut();
        if !clients.is_empty() && shared.select.borrow_mut().is_selected(bytes) {
            // One copy of the line, shared by every client's queue.
            let shared_line: Rc<[u8]> = Rc::from(bytes);
            let len = bytes.len() as u64;
            clients.retain(|c| match c.lines.try_send(Rc::clone(&shared_line)) {
                Ok(()) => {
                    c.queued.set(c.queued.get() + len);
                    true
                }
                Err(TrySendError::Closed(_)) => false,
                Err(TrySendError::Full(_)) => {
                    let behind = c.queued.get() + c.unsent.get();
                    eprintln!(
                        "copipe: dropping client {}: {behind} bytes behind \
                         (it reads too slowly)",
                        c.addr
                    );
                    c.dropped.set(Some(behind));
                    c.lines.close();
                    let _ = c.kick.try_send(());
                    false
                }
            });
        }
        drop(clients);
        shared.live_end.set(offset + bytes.len() as u64);
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Broadcast {
    /// The follower flushes before it waits: it has read all there was.
    fn flush(&mut self) -> copipe::Result<()> {
        self.shared.follower_idle.set(true);
        Ok(())
    }
    fn close(&mut self) -> copipe::Result<()> {
        self.shared.follower_idle.set(true);
        for c in self.shared.clients.borrow().iter() {
            c.lines.close();
        }
        Ok(())
    }
}
