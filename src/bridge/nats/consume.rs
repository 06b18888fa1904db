//! [`Consumer`]: a durable pull consumer as a pipeline's source; each
//! batch is acked only after the stages accepted it and were flushed.

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{connect, ensure_stream, headers, nats_error, runtime, NatsConfig, NatsUrl};
use crate::stage::{Flow, Stage};
use crate::{Error, ErrorKind, Result};

/// Where a new durable consumer starts. An existing durable keeps its
/// own position whatever is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Deliver {
    /// Every message the stream holds.
    #[default]
    All,
    /// Only messages published after the consumer is created.
    New,
}

/// The consumer's own settings; the connection's are a [`NatsConfig`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerOptions {
    /// The durable name: consumers with the same name, on any host, share
    /// the stream's messages (each to one of them), and the server keeps
    /// their position across restarts.
    pub durable: String,
    /// Where a new durable starts ([`Deliver::All`]).
    pub deliver: Deliver,
    /// Messages pulled at most in one batch ([`DEFAULT_BATCH`](super::DEFAULT_BATCH)).
    pub batch: usize,
    /// How long the server waits for a delivered message's ack before it
    /// delivers it again, to any consumer of the durable (30 s). Applies
    /// when the durable is created.
    pub ack_wait: Duration,
    /// End after this long without a message (`None`: run until stopped).
    pub idle_exit: Option<Duration>,
}

impl ConsumerOptions {
    /// Options for the durable `name`, the rest at their defaults.
    pub fn new(durable: impl Into<String>) -> ConsumerOptions {
        ConsumerOptions {
            durable: durable.into(),
            deliver: Deliver::All,
            batch: super::DEFAULT_BATCH,
            ack_wait: Duration::from_secs(30),
            idle_exit: None,
        }
    }
}

/// One message as the consumer pushes it: the payload, and the subject
/// and headers it was published with.
#[derive(Debug, Clone, Copy)]
pub struct Delivered<'a> {
    msg: &'a async_nats::Message,
    sequence: Option<u64>,
}

impl<'a> Delivered<'a> {
    /// The message's bytes (for a line published by copipe: the line,
    /// with its `\n`).
    pub fn payload(&self) -> &'a [u8] {
        &self.msg.payload
    }

    /// The subject it was published to.
    pub fn subject(&self) -> &'a str {
        self.msg.subject.as_str()
    }

    /// The value of header `name`, if it has one.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        // Parsed, not taken as is: received headers with a standard name
        // (`Nats-Msg-Id`) are keyed by the standard form.
        let name: async_nats::HeaderName = name.parse().ok()?;
        self.msg
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str())
    }

    /// The message id (`Nats-Msg-Id`), if it has one.
    pub fn msg_id(&self) -> Option<&'a str> {
        self.header(headers::MSG_ID)
    }

    /// The message's sequence number in its stream.
    pub fn stream_sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// Every header, as name-value pairs.
    pub fn headers(&self) -> Vec<(&'a str, &'a str)> {
        let mut v = Vec::new();
        if let Some(h) = &self.msg.headers {
            for (k, vals) in h.iter() {
                for val in vals {
                    v.push((k.as_ref(), val.as_str()));
                }
            }
        }
        v
    }
}

/// A durable pull consumer of a JetStream stream, as a source: it pushes
/// each message's [`Delivered`] into a stage.
///
/// Messages come in batches (at most [`ConsumerOptions::batch`]). Each
/// batch is pushed through the stages, the stages are flushed, and only
/// then is each message of the batch acked explicitly (the consumer's ack
/// policy is `explicit`, never `all`, which would ack other workers'
/// messages in flight); the acks are sent without waiting for each in
/// turn. If a stage fails, the batch is negatively acked (delivered again
/// at once, perhaps to another worker) and the error returned; if a stage
/// asks to stop, what it accepted is acked and the rest given back.
///
/// The client runs on a thread of its own; the stages run on the caller's.
///
/// # Examples
///
/// ```no_run
/// use copipe::bridge::nats::{Consumer, ConsumerOptions, Delivered, NatsConfig, NatsUrl};
/// use copipe::{from_fn, Flow};
///
/// let url = NatsUrl::parse("nats://127.0.0.1:4222/logs")?;
/// let mut opts = ConsumerOptions::new("indexer");
/// opts.idle_exit = Some(std::time::Duration::from_secs(5));
/// let consumer = Consumer::connect(&url, &NatsConfig::default(), &opts)?;
/// let n = consumer.run(from_fn(|m: Delivered<'_>| {
///     print!("{}", String::from_utf8_lossy(m.payload()));
///     Ok(Flow::Continue)
/// }))?;
/// eprintln!("{n} messages");
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug)]
pub struct Consumer {
    events: std_mpsc::Receiver<Vec<jetstream::Message>>,
    replies: mpsc::Sender<Reply>,
    thread: JoinHandle<Result<()>>,
    stream: String,
}

/// What to do with a delivered batch.
#[derive(Debug)]
struct Reply {
    ack: Vec<jetstream::Message>,
    nak: Vec<jetstream::Message>,
    stop: bool,
}

impl Consumer {
    /// Connects, finds or creates the stream capturing the URL's subject
    /// (the same rule as [`Publisher`](super::Publisher)), and finds or
    /// creates the durable pull consumer on it.
    ///
    /// # Errors
    ///
    /// The server cannot be reached, refuses the credentials, or the
    /// stream or consumer cannot be found or created.
    pub fn connect(
        url: &NatsUrl,
        config: &NatsConfig,
        options: &ConsumerOptions,
    ) -> Result<Consumer> {
        if options.durable.is_empty() || options.durable.contains(['.', '*', '>', ' ']) {
            return Err(Error::usage(format!(
                "nats: bad durable name `{}` (no spaces, dots, * or >)",
                options.durable
            )));
        }
        let (ev_tx, events) = std_mpsc::sync_channel(1);
        let (replies, rp_rx) = mpsc::channel(1);
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let (url2, cfg, opts) = (url.clone(), config.clone(), options.clone());
        let thread = std::thread::Builder::new()
            .name("copipe-nats-sub".into())
            .spawn(move || {
                let rt = runtime()?;
                rt.block_on(client_loop(url2, cfg, opts, ev_tx, rp_rx, ready_tx))
            })?;
        let stream = match ready_rx.recv() {
            Ok(name) => name,
            Err(_) => return Err(join_err(thread)),
        };
        Ok(Consumer {
            events,
            replies,
            thread,
            stream,
        })
    }

    /// The name of the stream consumed.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Pushes every message into `target` until the idle exit, a
    /// [`Flow::Stop`] or an error; closes `target` at the end. Returns the
    /// number of messages pushed.
    ///
    /// # Errors
    ///
    /// An error of a stage (its batch is given back unacked), or the
    /// server stayed away past [`NatsConfig::server_timeout`].
    pub fn run<S>(self, mut target: S) -> Result<u64>
    where
        S: for<'a> Stage<Delivered<'a>>,
    {
        let Consumer {
            events,
            replies,
            thread,
            ..
        } = self;
        let mut count = 0u64;
        while let Ok(batch) = events.recv() {
            let mut accepted = batch.len();
            let mut stop = false;
            let mut failed = None;
            for (i, m) in batch.iter().enumerate() {
                match target.send(Delivered {
                    msg: &m.message,
                    sequence: m.info().ok().map(|i| i.stream_sequence),
                }) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Stop) => {
                        accepted = i + 1;
                        stop = true;
                        break;
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if failed.is_none() {
                if let Err(e) = target.flush() {
                    failed = Some(e);
                }
            }
            let mut ack = batch;
            if let Some(e) = failed {
                let reply = Reply {
                    ack: Vec::new(),
                    nak: ack,
                    stop: true,
                };
                let _ = replies.blocking_send(reply);
                drop(replies);
                let _ = thread.join();
                return Err(e);
            }
            let nak = ack.split_off(accepted);
            count += accepted as u64;
            if replies.blocking_send(Reply { ack, nak, stop }).is_err() {
                return Err(join_err(thread));
            }
            if stop {
                break;
            }
        }
        drop(replies);
        let closed = target.close();
        match thread.join() {
            Ok(r) => r?,
            Err(p) => return Err(Error::new(ErrorKind::Panic(format!("{p:?}")))),
        }
        closed.map(|()| count)
    }
}

fn join_err(t: JoinHandle<Result<()>>) -> Error {
    match t.join() {
        Ok(Err(e)) => e,
        Ok(Ok(())) => Error::new(ErrorKind::Bridge(
            "nats: the consumer's client thread ended early".into(),
        )),
        Err(p) => Error::new(ErrorKind::Panic(format!("{p:?}"))),
    }
}

/// The client's side: pull a batch, hand it over, wait for the verdict,
/// ack (or nak) each message, pull the next.
async fn client_loop(
    url: NatsUrl,
    cfg: NatsConfig,
    opts: ConsumerOptions,
    events: std_mpsc::SyncSender<Vec<jetstream::Message>>,
    mut replies: mpsc::Receiver<Reply>,
    ready: std_mpsc::SyncSender<String>,
) -> Result<()> {
    let client = connect(&url, &cfg).await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(cfg.ack_timeout)
        .build(client.clone());
    let stream_name = ensure_stream(&js, url.subject(), &cfg).await?;
    let stream = js
        .get_stream_no_info(&stream_name)
        .await
        .map_err(|e| nats_error(&format!("cannot open stream `{stream_name}`"), e))?;
    let config = pull::Config {
        durable_name: Some(opts.durable.clone()),
        deliver_policy: match opts.deliver {
            Deliver::All => jetstream::consumer::DeliverPolicy::All,
            Deliver::New => jetstream::consumer::DeliverPolicy::New,
        },
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: opts.ack_wait,
        filter_subject: url.subject().to_string(),
        ..Default::default()
    };
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(&opts.durable, config)
        .await
        .map_err(|e| nats_error(&format!("cannot create durable `{}`", opts.durable), e))?;
    if ready.send(stream_name).is_err() {
        return Ok(());
    }
    let batch = opts.batch.max(1);
    let mut last_message = Instant::now();
    let mut away_since: Option<Instant> = None;
    loop {
        // A consumer dropped without `run`: nobody will take a batch.
        if replies.is_closed() {
            return Ok(());
        }
        let wait = opts
            .idle_exit
            .map_or(Duration::from_secs(1), |d| d.min(Duration::from_secs(1)))
            .max(Duration::from_millis(100));
        let msgs = match pull(&consumer, batch, wait, cfg.ack_timeout).await {
            Ok(v) => {
                away_since = None;
                v
            }
            Err(e) => {
                let since = *away_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= cfg.server_timeout {
                    return Err(nats_error(
                        &format!(
                            "cannot pull from {} for {:?}",
                            url.server(),
                            cfg.server_timeout
                        ),
                        e,
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if msgs.is_empty() {
            if opts.idle_exit.is_some_and(|d| last_message.elapsed() >= d) {
                let _ = client.flush().await;
                return Ok(());
            }
            continue;
        }
        if events.send(msgs).is_err() {
            // The stages' side is gone: nothing to ack.
            return Ok(());
        }
        let Some(reply) = replies.recv().await else {
            return Ok(());
        };
        // Each message acked on its own, none awaited: the acks go out in
        // one write, before the next pull request on the same connection.
        for m in &reply.ack {
            m.ack()
                .await
                .map_err(|e| nats_error("cannot send an ack", e))?;
        }
        for m in &reply.nak {
            let _ = m.ack_with(AckKind::Nak(None)).await;
        }
        last_message = Instant::now();
        if reply.stop {
            let _ = client.flush().await;
            return Ok(());
        }
    }
}

/// Pulls up to `batch` messages: what is there now, or else the first to
/// come within `wait` and whatever is there with it.
async fn pull(
    consumer: &jetstream::consumer::PullConsumer,
    batch: usize,
    wait: Duration,
    timeout: Duration,
) -> std::result::Result<Vec<jetstream::Message>, String> {
    let mut v = Vec::with_capacity(batch);
    let bound = wait + timeout;
    tokio::time::timeout(bound, async {
        let mut b = consumer
            .fetch()
            .max_messages(batch)
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        while let Some(m) = b.next().await {
            v.push(m.map_err(|e| e.to_string())?);
        }
        if v.is_empty() {
            let mut b = consumer
                .batch()
                .max_messages(1)
                .expires(wait)
                .messages()
                .await
                .map_err(|e| e.to_string())?;
            while let Some(m) = b.next().await {
                v.push(m.map_err(|e| e.to_string())?);
            }
            if !v.is_empty() && batch > 1 {
                let mut b = consumer
                    .fetch()
                    .max_messages(batch - 1)
                    .messages()
                    .await
                    .map_err(|e| e.to_string())?;
                while let Some(m) = b.next().await {
                    v.push(m.map_err(|e| e.to_string())?);
                }
            }
        }
        Ok::<(), String>(())
    })
    .await
    .map_err(|_| format!("no answer to a pull within {bound:?}"))??;
    Ok(v)
}
