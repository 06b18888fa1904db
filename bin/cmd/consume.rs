//! `copipe consume`: a durable pull consumer of a NATS JetStream stream,
//! its messages through `grep` to stdout or on to another subject; and the
//! NATS options and record publishing `copipe buses --to` shares.
//!
//! ```text
//! stream ──batch──▶ Select (-e/-i/-v) ──▶ stdout | Publisher (--to)
//!                   then flush, then ack each message of the batch
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use copipe::bridge::nats::{
    file_id_for, Consumer, ConsumerOptions, Deliver, Delivered, NatsConfig, NatsUrl, Publisher,
    PublisherStats,
};
use copipe::sinks::{Null, Printer};
use copipe::text::{Grep, SourceFile};
use copipe::{Flow, Lifecycle, Stage};

/// Connection options shared by every command that talks to NATS.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NatsArgs {
    /// The JetStream stream to use: by default the one capturing the
    /// subject, else COPIPE_SUBJECT (dots as _), created with file storage.
    #[arg(long, value_name = "NAME")]
    stream: Option<String>,
    /// NATS user (or give it in the URL: nats://USER:PASS@HOST:PORT/SUBJECT).
    #[arg(long, value_name = "USER")]
    nats_user: Option<String>,
    /// NATS password (or the environment variable COPIPE_NATS_PASSWORD).
    #[arg(
        long,
        value_name = "PASS",
        env = "COPIPE_NATS_PASSWORD",
        hide_env_values = true
    )]
    nats_password: Option<String>,
    /// NATS authentication token (or COPIPE_NATS_TOKEN).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "COPIPE_NATS_TOKEN",
        hide_env_values = true
    )]
    nats_token: Option<String>,
    /// A NATS credentials file (user JWT and NKey seed, as nsc writes it).
    #[arg(long, value_name = "FILE")]
    nats_creds: Option<PathBuf>,
    /// CA certificates (PEM) to trust; requires TLS.
    #[arg(long, value_name = "FILE")]
    nats_tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) to present, for a server that verifies
    /// clients (`verify: true`); requires TLS and --nats-tls-key.
    #[arg(long, value_name = "FILE", requires = "nats_tls_key")]
    nats_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --nats-tls-cert.
    #[arg(long, value_name = "FILE", requires = "nats_tls_cert")]
    nats_tls_key: Option<PathBuf>,
    /// Duplicate window, in seconds, of a stream created here (default
    /// 7200): a publish repeated within it is dropped by the server.
    #[arg(long, value_name = "SECONDS")]
    duplicate_window: Option<u64>,
    /// Replicas of a stream created here (default 1).
    #[arg(long, value_name = "N")]
    replicas: Option<usize>,
    /// How long the server may stay away before copipe fails, in seconds
    /// (default 60).
    #[arg(long, value_name = "SECONDS")]
    server_timeout: Option<f64>,
}

impl NatsArgs {
    /// The library's config for these options.
    pub(crate) fn config(&self) -> anyhow::Result<NatsConfig> {
        let mut c = NatsConfig::default();
        c.stream = self.stream.clone();
        c.user = self.nats_user.clone();
        c.password = self.nats_password.clone();
        c.token = self.nats_token.clone();
        c.creds = self.nats_creds.clone();
        c.tls_ca = self.nats_tls_ca.clone();
        c.tls_client = self.nats_tls_cert.clone().zip(self.nats_tls_key.clone());
        if let Some(w) = self.duplicate_window {
            c.duplicate_window = Duration::from_secs(w);
        }
        if let Some(r) = self.replicas {
            c.replicas = r;
        }
        if let Some(t) = self.server_timeout {
            c.server_timeout = Duration::try_from_secs_f64(t)
                .map_err(|_| anyhow::anyhow!("--server-timeout: not a duration: {t}"))?;
        }
        Ok(c)
    }
}

/// Arguments of `copipe consume`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example: copipe consume nats://127.0.0.1:4222/logs --durable indexer \
    -e ERROR --idle-exit 5\n\
    Several consumers with the same --durable share the stream's messages."
)]
pub(crate) struct Args {
    /// Where to consume from: nats://[USER:PASS@]HOST:PORT/SUBJECT (the
    /// publisher's URL).
    #[arg(value_name = "URL")]
    url: String,
    /// The durable consumer's name: the server keeps its position, and
    /// every consumer with this name shares the work.
    #[arg(long, value_name = "NAME")]
    durable: String,
    /// Where a new durable starts: every message the stream holds, or only
    /// new ones. An existing durable resumes where it was.
    #[arg(long, value_enum, default_value_t = DeliverArg::All)]
    deliver: DeliverArg,
    /// Keep only the messages matching PATTERN (as `copipe tail -e`).
    /// Repeat for several: a message matching any is kept. The others are
    /// acked and dropped.
    #[arg(short = 'e', long = "regexp", value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Ignore ASCII case in patterns.
    #[arg(short = 'i', long)]
    ignore_case: bool,
    /// Keep the messages matching no pattern.
    #[arg(short = 'v', long)]
    invert_match: bool,
    /// Publish the kept messages to this nats:// URL (same server or
    /// another) under their own message ids, instead of printing them.
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    /// End after SECONDS without a message (for scripts and tests).
    #[arg(long, value_name = "SECONDS")]
    idle_exit: Option<f64>,
    /// Messages pulled at most in one batch (acked after the batch is
    /// written out).
    #[arg(long, value_name = "N", default_value_t = 256)]
    batch: usize,
    /// How long the server waits for a delivered message's ack before it
    /// delivers it again to any consumer of the durable, in seconds (set
    /// when the durable is created; default 30).
    #[arg(long, value_name = "SECONDS")]
    ack_wait: Option<f64>,
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DeliverArg {
    All,
    New,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let url = NatsUrl::parse(&args.url)?;
    let config = args.nats.config()?;
    let mut opts = ConsumerOptions::new(args.durable.clone());
    opts.deliver = match args.deliver {
        DeliverArg::All => Deliver::All,
        DeliverArg::New => Deliver::New,
    };
    opts.batch = args.batch.max(1);
    if let Some(s) = args.ack_wait {
        opts.ack_wait = Duration::try_from_secs_f64(s)
            .map_err(|_| anyhow::anyhow!("--ack-wait: not a duration: {s}"))?;
    }
    if let Some(s) = args.idle_exit {
        opts.idle_exit = Some(
            Duration::try_from_secs_f64(s)
                .map_err(|_| anyhow::anyhow!("--idle-exit: not a duration: {s}"))?,
        );
    }
    let grep = Grep::builder()
        .patterns(args.patterns.iter().cloned())
        .ignore_case(args.ignore_case)
        .build(Null)?;
    let select = Select {
        grep,
        invert: args.invert_match,
    };
    match &args.to {
        None => {
            let consumer = Consumer::connect(&url, &config, &opts)?;
            let out = Printer::new(io::stdout().lock());
            consumer.run(Selected { select, out })?;
        }
        Some(to) => {
            let to = NatsUrl::parse(to)?;
            // --stream names the source's stream; the destination's is
            // the one capturing its subject, or its default.
            let mut to_config = config.clone();
            to_config.stream = None;
            let publisher = Publisher::connect(&to, &to_config)?;
            let consumer = Consumer::connect(&url, &config, &opts)?;
            let stream = consumer.stream().to_string();
            consumer.run(Forward {
                select,
                publisher,
                stream,
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `-e`/`-i`/`-v` on a message's payload.
struct Select {
    grep: Grep<Null>,
    invert: bool,
}

impl Select {
    fn keeps(&self, payload: &[u8]) -> bool {
        self.grep.is_match(payload) != self.invert
    }
}

/// The kept messages' payloads to stdout, one line each.
struct Selected<W: Write> {
    select: Select,
    out: Printer<W>,
}

impl<W: Write> Stage<Delivered<'_>> for Selected<W> {
    fn send(&mut self, m: Delivered<'_>) -> copipe::Result<Flow> {
        if self.select.keeps(m.payload()) {
            self.out.send(m.payload())
        } else {
            Ok(Flow::Continue)
        }
    }
}

impl<W: Write> Lifecycle for Selected<W> {
    fn flush(&mut self) -> copipe::Result<()> {
        self.out.flush()
    }
    fn close(&mut self) -> copipe::Result<()> {
        self.out.close()
    }
}

/// The kept messages on to another subject, each under its own id (or
/// `STREAM:SEQUENCE` for a message that has none), with its headers.
struct Forward {
    select: Select,
    publisher: Publisher,
    stream: String,
}

impl Stage<Delivered<'_>> for Forward {
    fn send(&mut self, m: Delivered<'_>) -> copipe::Result<Flow> {
        if !self.select.keeps(m.payload()) {
            return Ok(Flow::Continue);
        }
        let id = match m.msg_id() {
            Some(id) => id.to_string(),
            None => format!("{}:{}", self.stream, m.stream_sequence().unwrap_or(0)),
        };
        self.publisher
            .publish_with_id(&id, &m.headers(), m.payload())?;
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Forward {
    // The consumer acks a batch only after this returns: after the
    // destination acked every message of it.
    fn flush(&mut self) -> copipe::Result<()> {
        self.publisher.flush()
    }
    fn close(&mut self) -> copipe::Result<()> {
        self.publisher.close()
    }
}

/// `copipe buses --to URL`: a writer for the JSON-lines formatter that
/// publishes each line (one record) as a message with id
/// `{file id}:{record index}`; its `flush` waits for the acks.
pub(crate) struct RecordPublisher {
    publisher: Publisher,
    file: SourceFile,
    next: u64,
    carry: Vec<u8>,
    stats: Arc<Mutex<PublisherStats>>,
}

/// The publisher for `copipe buses --to URL` reading `file` (None: the
/// built-in sample; `-`: stdin), and where its counts will be.
pub(crate) fn record_publisher(
    to: &str,
    nats: &NatsArgs,
    file: Option<&Path>,
) -> anyhow::Result<(RecordPublisher, Arc<Mutex<PublisherStats>>)> {
    let url = NatsUrl::parse(to)?;
    let publisher = Publisher::connect(&url, &nats.config()?)?;
    let (id, path) = match file {
        Some(p) if p.as_os_str() != "-" => (
            file_id_for(p).with_context(|| format!("cannot examine {}", p.display()))?,
            p.to_path_buf(),
        ),
        // stdin has no identity to derive an id from: one per run.
        Some(_) => (
            format!(
                "{:016x}{:016x}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            ),
            PathBuf::from("<stdin>"),
        ),
        None => (
            format!("{:032x}", 0x636f_7069_7065_u128),
            PathBuf::from("allroutes.xml (built-in sample)"),
        ),
    };
    let stats = Arc::new(Mutex::new(PublisherStats::default()));
    Ok((
        RecordPublisher {
            publisher,
            file: SourceFile { id, path },
            next: 0,
            carry: Vec::new(),
            stats: Arc::clone(&stats),
        },
        stats,
    ))
}

impl Write for RecordPublisher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.carry.extend_from_slice(buf);
        let mut start = 0;
        while let Some(n) = memchr::memchr(b'\n', &self.carry[start..]) {
            let line = &self.carry[start..start + n];
            self.publisher
                .publish(&self.file, self.next, line)
                .map_err(io::Error::other)?;
            self.next += 1;
            start += n + 1;
        }
        self.carry.drain(..start);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.publisher.flush().map_err(io::Error::other)?;
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = self.publisher.stats();
        Ok(())
    }
}
