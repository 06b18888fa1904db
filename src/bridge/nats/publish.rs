//! [`Publisher`]: a synchronous stage that publishes to JetStream with a
//! window of outstanding acks, the client on a thread of its own.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use async_nats::jetstream::{self, context::PublishErrorKind};
use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::mpsc;

use super::{connect, ensure_stream, headers, nats_error, runtime, NatsConfig, NatsUrl};
use crate::stage::{Flow, Lifecycle, Stage};
use crate::text::{LineAt, SourceFile};
use crate::{Error, ErrorKind, Result};

/// Publishes items to a JetStream stream, each with a message id the
/// server de-duplicates on; a synchronous [`Stage`] of [`LineAt`].
///
/// Each line becomes one message on the URL's subject whose payload is
/// the line's bytes and whose headers are `Nats-Msg-Id:
/// {file id}:{offset}`, `Copipe-Host`, `Copipe-Path`, `Copipe-Offset` and
/// `Copipe-File` (see [`headers`](super::headers)). Other items go through
/// [`publish`](Publisher::publish) (a file and a position of the
/// caller's choosing) or [`publish_with_id`](Publisher::publish_with_id).
///
/// Messages are handed, in batches, to the client's thread, which keeps
/// up to [`NatsConfig::window`] publishes awaiting their ack. `flush`
/// returns when every message sent before it is acked by the server
/// (stored, or recognised as a duplicate); a caller that keeps a
/// checkpoint advances it only after `flush` returns `Ok`. A publish not
/// acked within [`NatsConfig::ack_timeout`] is sent again with the same id
/// (the server drops it if the first one was stored) until
/// [`NatsConfig::server_timeout`] has passed since its first attempt; then
/// `send`, `flush` or `close` returns the error. Nothing is ever reported
/// acked that the server did not ack.
///
/// Order: messages are stored in the order sent, except that a message
/// sent again after a timeout may land after later ones.
///
/// Call [`close`](Lifecycle::close) at the end: it waits for the last
/// acks and joins the client's thread. A publisher dropped without
/// `close` leaves its unacked messages to chance.
///
/// # Examples
///
/// ```no_run
/// use copipe::bridge::nats::{NatsConfig, NatsUrl, Publisher};
/// use copipe::text::{LineAt, SourceFile};
/// use copipe::{Lifecycle, Stage};
///
/// let url = NatsUrl::parse("nats://127.0.0.1:4222/logs")?;
/// let mut publisher = Publisher::connect(&url, &NatsConfig::default())?;
/// let file = SourceFile { id: "0123456789abcdef0123456789abcdef".into(), path: "app.log".into() };
/// publisher.send(LineAt { bytes: b"GET /index.html\n", file: &file, offset: 0 })?;
/// publisher.flush()?; // acked: a checkpoint may advance past offset 0 now
/// publisher.close()?;
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug)]
pub struct Publisher {
    tx: Option<mpsc::Sender<Cmd>>,
    batch: Vec<Outgoing>,
    batch_size: usize,
    thread: Option<JoinHandle<Result<()>>>,
    stream: String,
    host: Arc<str>,
    /// The headers of the file published last, with its path as given.
    file: Option<(PathBuf, Arc<FileHeaders>)>,
    stats: Arc<Counters>,
}

/// What a [`Publisher`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublisherStats {
    /// Messages acked by the server (stored or duplicates).
    pub acked: u64,
    /// Of those, the ones the server recognised as duplicates (an id it
    /// had stored within the duplicate window) and did not store again.
    pub duplicates: u64,
    /// Publishes sent again after a timeout or a lost connection.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    acked: AtomicU64,
    duplicates: AtomicU64,
    retries: AtomicU64,
}

/// One message on its way: its payload, the headers of its first
/// publish, and what rebuilds them for a re-send.
///
/// The headers are built on the caller's thread, once: the client's
/// thread, which also runs the connection, only moves them into the
/// publish, so the common case (acked at the first attempt) costs one
/// header map, as a raw client loop does (see `benches/nats.rs`).
#[derive(Debug)]
struct Outgoing {
    first: Option<HeaderMap>,
    again: Again,
    payload: Bytes,
}

/// What a re-send rebuilds its headers from.
#[derive(Debug)]
enum Again {
    /// A line or item of a file: shared per file, no copy per message.
    At(Arc<FileHeaders>, u64),
    /// Headers given by the caller.
    Map(HeaderMap),
}

/// The per-file part of a message's headers, kept while consecutive
/// messages come from the same file.
#[derive(Debug)]
struct FileHeaders {
    id: String,
    path: String,
    host: Arc<str>,
}

impl FileHeaders {
    fn headers(&self, position: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(headers::MSG_ID, format!("{}:{position}", self.id));
        h.insert(headers::HOST, &*self.host);
        h.insert(headers::PATH, self.path.as_str());
        h.insert(headers::OFFSET, position.to_string());
        h.insert(headers::FILE_ID, self.id.as_str());
        h
    }
}

impl Outgoing {
    /// The headers for the next attempt.
    fn headers(&mut self) -> HeaderMap {
        match (self.first.take(), &self.again) {
            (Some(h), _) => h,
            (None, Again::At(f, position)) => f.headers(*position),
            (None, Again::Map(h)) => h.clone(),
        }
    }

    fn msg_id(&self) -> String {
        match &self.again {
            Again::At(f, position) => format!("{}:{position}", f.id),
            Again::Map(h) => h
                .get(headers::MSG_ID)
                .map_or("?", |v| v.as_str())
                .to_string(),
        }
    }
}

#[derive(Debug)]
enum Cmd {
    Batch(Vec<Outgoing>),
    /// Answer when everything sent before is acked.
    Flush(std_mpsc::SyncSender<()>),
}

impl Publisher {
    /// Connects, finds or creates the stream capturing the URL's subject
    /// (see [`NatsConfig::stream`]), and starts the client's thread.
    ///
    /// # Errors
    ///
    /// The server cannot be reached within
    /// [`NatsConfig::connect_timeout`], refuses the credentials, or the
    /// stream cannot be found or created.
    pub fn connect(url: &NatsUrl, config: &NatsConfig) -> Result<Publisher> {
        let (tx, rx) = mpsc::channel(4);
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let stats = Arc::new(Counters::default());
        let (url2, cfg, st) = (url.clone(), config.clone(), Arc::clone(&stats));
        let thread = std::thread::Builder::new()
            .name("copipe-nats-pub".into())
            .spawn(move || {
                let rt = runtime()?;
                rt.block_on(client_loop(url2, cfg, rx, ready_tx, st))
            })?;
        let stream = match ready_rx.recv() {
            Ok(name) => name,
            Err(_) => return Err(join(thread)),
        };
        let window = config.window.max(1);
        Ok(Publisher {
            tx: Some(tx),
            batch: Vec::new(),
            batch_size: (window / 4).clamp(1, 64),
            thread: Some(thread),
            stream,
            host: hostname().into(),
            file: None,
            stats,
        })
    }

    /// The name of the stream the messages land in.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Counts so far (acks arrive on the client's thread; after `flush`
    /// or `close` they cover everything sent before).
    pub fn stats(&self) -> PublisherStats {
        PublisherStats {
            acked: self.stats.acked.load(Ordering::Relaxed),
            duplicates: self.stats.duplicates.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
        }
    }

    /// Publishes `payload` as the item at `position` of `file`: message
    /// id `{file.id}:{position}`, and the same headers as a line (the
    /// position in `Copipe-Offset`). For items that are not lines, such
    /// as records, whose position is their index in the file.
    ///
    /// # Errors
    ///
    /// An earlier publish failed (see the type's docs).
    pub fn publish(&mut self, file: &SourceFile, position: u64, payload: &[u8]) -> Result<()> {
        let f = match &self.file {
            Some((path, f)) if f.id == file.id && path.as_os_str() == file.path.as_os_str() => {
                Arc::clone(f)
            }
            _ => {
                let f = Arc::new(FileHeaders {
                    id: file.id.clone(),
                    path: header_safe(&file.path.to_string_lossy()),
                    host: Arc::clone(&self.host),
                });
                self.file = Some((file.path.clone(), Arc::clone(&f)));
                f
            }
        };
        self.push(Outgoing {
            first: Some(f.headers(position)),
            again: Again::At(f, position),
            payload: Bytes::copy_from_slice(payload),
        })
    }

    /// Publishes `payload` with message id `id` and the given extra
    /// headers, as they are: to pass on a message consumed elsewhere
    /// under its own id, so that a replay is still de-duplicated.
    ///
    /// # Errors
    ///
    /// An earlier publish failed (see the type's docs).
    pub fn publish_with_id(
        &mut self,
        id: &str,
        extra: &[(&str, &str)],
        payload: &[u8],
    ) -> Result<()> {
        let mut h = HeaderMap::new();
        h.insert(headers::MSG_ID, id);
        for (k, v) in extra {
            if !k.eq_ignore_ascii_case(headers::MSG_ID) {
                h.insert(*k, header_safe(v));
            }
        }
        self.push(Outgoing {
            first: Some(h.clone()),
            again: Again::Map(h),
            payload: Bytes::copy_from_slice(payload),
        })
    }

    fn push(&mut self, m: Outgoing) -> Result<()> {
        self.batch.push(m);
        if self.batch.len() >= self.batch_size {
            self.send_batch()?;
        }
        Ok(())
    }

    fn send_batch(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.command(Cmd::Batch(batch))
    }

    fn command(&mut self, cmd: Cmd) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Err(Error::usage("nats: publisher used after close or error"));
        };
        if tx.blocking_send(cmd).is_err() {
            return Err(self.failure());
        }
        Ok(())
    }

    /// The client's thread has ended early: its error.
    fn failure(&mut self) -> Error {
        self.tx = None;
        match self.thread.take() {
            Some(t) => join(t),
            None => Error::usage("nats: publisher used after an error"),
        }
    }
}

impl Stage<LineAt<'_>> for Publisher {
    fn send(&mut self, line: LineAt<'_>) -> Result<Flow> {
        self.publish(line.file, line.offset, line.bytes)?;
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Publisher {
    /// Returns when every message sent so far is acked.
    fn flush(&mut self) -> Result<()> {
        self.send_batch()?;
        let (reply_tx, reply_rx) = std_mpsc::sync_channel(1);
        self.command(Cmd::Flush(reply_tx))?;
        match reply_rx.recv() {
            Ok(()) => Ok(()),
            Err(_) => Err(self.failure()),
        }
    }

    /// Waits for the last acks and joins the client's thread.
    fn close(&mut self) -> Result<()> {
        self.send_batch()?;
        self.tx = None;
        match self.thread.take() {
            Some(t) => match t.join() {
                Ok(r) => r,
                Err(p) => Err(Error::new(ErrorKind::Panic(panic_message(&p)))),
            },
            None => Ok(()),
        }
    }
}

fn join(t: JoinHandle<Result<()>>) -> Error {
    match t.join() {
        Ok(Err(e)) => e,
        Ok(Ok(())) => Error::new(ErrorKind::Bridge(
            "nats: the publisher's client thread ended early".into(),
        )),
        Err(p) => Error::new(ErrorKind::Panic(panic_message(&p))),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// One publish awaiting its ack: the message (for a re-send) and when
/// it was first sent. Its ack is the entry at the same place in the
/// ordered set of ack futures.
struct Pending {
    msg: Outgoing,
    first: Instant,
}

/// An ack on its way, or the error of a publish that could not be sent.
type Ack = Pin<
    Box<
        dyn Future<
                Output = std::result::Result<
                    jetstream::publish::PublishAck,
                    jetstream::context::PublishError,
                >,
            > + Send,
    >,
>;

/// The client's side: publish what comes in, keep at most `window` acks
/// outstanding, answer flushes when all before them are acked.
///
/// The acks are awaited in one ordered set polled by this task (no task
/// spawned per message): every outstanding ack's timeout runs at once, and
/// they are taken oldest first, as the server sends them.
async fn client_loop(
    url: NatsUrl,
    cfg: NatsConfig,
    mut rx: mpsc::Receiver<Cmd>,
    ready: std_mpsc::SyncSender<String>,
    stats: Arc<Counters>,
) -> Result<()> {
    let client = connect(&url, &cfg).await?;
    let window = cfg.window.max(1);
    let js = jetstream::ContextBuilder::new()
        .timeout(cfg.ack_timeout)
        .max_ack_inflight(window + 1)
        .backpressure_on_inflight(true)
        .build(client.clone());
    let stream = ensure_stream(&js, url.subject(), &cfg).await?;
    if ready.send(stream).is_err() {
        return Ok(());
    }
    let subject = Subject::from(url.subject());
    let mut queue: VecDeque<Outgoing> = VecDeque::new();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut acks: FuturesOrdered<Ack> = FuturesOrdered::new();
    let mut flushes: Vec<std_mpsc::SyncSender<()>> = Vec::new();
    let mut open = true;
    loop {
        while pending.len() < window {
            let Some(mut msg) = queue.pop_front() else {
                break;
            };
            acks.push_back(publish(&js, &subject, &mut msg).await);
            pending.push_back(Pending {
                msg,
                first: Instant::now(),
            });
        }
        if queue.is_empty() && pending.is_empty() {
            for f in flushes.drain(..) {
                let _ = f.send(());
            }
            if !open {
                // Make sure nothing of ours is left in the client's buffers.
                let _ = client.flush().await;
                return Ok(());
            }
        }
        tokio::select! {
            biased;
            // Acks come in the order sent: the oldest is yielded first.
            Some(r) = acks.next(), if !pending.is_empty() => {
                let retry = match r {
                    Ok(ack) => {
                        stats.acked.fetch_add(1, Ordering::Relaxed);
                        if ack.duplicate {
                            stats.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        pending.pop_front();
                        continue;
                    }
                    Err(e) => match e.kind() {
                        // The server is away, restarting or electing a
                        // leader: send it again (same id) while time is left.
                        PublishErrorKind::TimedOut
                        | PublishErrorKind::BrokenPipe
                        | PublishErrorKind::StreamNotFound => e,
                        _ => return Err(nats_error(&format!("publish to `{}` failed", url.subject()), e)),
                    },
                };
                let front = pending.front_mut().expect("guarded: not empty");
                if front.first.elapsed() >= cfg.server_timeout {
                    return Err(nats_error(
                        &format!(
                            "no ack from {} for message {} within {:?} (server away?); \
                             it and the messages after it are not known to be stored",
                            url.server(),
                            front.msg.msg_id(),
                            cfg.server_timeout
                        ),
                        retry,
                    ));
                }
                if matches!(retry.kind(), PublishErrorKind::StreamNotFound | PublishErrorKind::BrokenPipe) {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                stats.retries.fetch_add(1, Ordering::Relaxed);
                acks.push_front(publish(&js, &subject, &mut front.msg).await);
            }
            cmd = rx.recv(), if open && queue.is_empty() => match cmd {
                Some(Cmd::Batch(v)) => queue.extend(v),
                Some(Cmd::Flush(reply)) => flushes.push(reply),
                None => open = false,
            },
        }
    }
}

/// Sends one publish and returns its ack on its way. A publish that cannot
/// even be handed to the connection in time resolves to that error, so
/// that the caller's retry covers both.
async fn publish(js: &jetstream::Context, subject: &Subject, msg: &mut Outgoing) -> Ack {
    let sent = js
        .publish_with_headers(subject.clone(), msg.headers(), msg.payload.clone())
        .await;
    match sent {
        Ok(ack) => ack.into_future(),
        Err(e) => Box::pin(std::future::ready(Err(e))),
    }
}

/// A header value must be one line: control characters become `?`.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// This host's name, for the `Copipe-Host` header.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A copipe file id (32 hex digits) for a file read once, not followed:
/// derived from the host, the canonical path, the device, inode, size and
/// modification time. The same unchanged file read again on the same host
/// gets the same id, so publishing it again within the duplicate window
/// stores nothing twice; a changed file gets a new id. Never from the
/// content alone, so two files that begin alike do not collide.
///
/// # Errors
///
/// The file cannot be examined.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("feed.xml");
/// std::fs::write(&path, "<buses/>")?;
/// let id = copipe::bridge::nats::file_id_for(&path)?;
/// assert_eq!(id.len(), 32);
/// assert_eq!(id, copipe::bridge::nats::file_id_for(&path)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn file_id_for(path: &Path) -> io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    let canonical = std::fs::canonicalize(path)?;
    let mut h = Fnv128::new();
    h.write(hostname().as_bytes());
    h.write(&[0]);
    h.write(canonical.to_string_lossy().as_bytes());
    h.write(&[0]);
    for n in [
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime() as u64,
        meta.mtime_nsec() as u64,
    ] {
        h.write(&n.to_le_bytes());
    }
    Ok(format!("{:032x}", h.0))
}

/// FNV-1a, 128 bits: stable across Rust releases, unlike `DefaultHasher`.
struct Fnv128(u128);

impl Fnv128 {
    fn new() -> Fnv128 {
        Fnv128(0x6c62272e07bb014262b821756295c58d)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(0x0000000001000000000000000000013B);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_one_line() {
        assert_eq!(header_safe("a\r\nb\tc"), "a??b?c");
    }

    #[test]
    fn fnv_differs_by_input() {
        let mut a = Fnv128::new();
        a.write(b"a");
        let mut b = Fnv128::new();
        b.write(b"b");
        assert_ne!(a.0, b.0);
    }
}
