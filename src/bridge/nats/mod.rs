//! NATS JetStream: publish a pipeline's items to a stream, and consume a
//! stream as a pipeline's source, with nothing lost between them.
//!
//! - `mod.rs`: [`NatsUrl`] (`nats://[user:pass@]HOST:PORT/SUBJECT`),
//!   [`NatsConfig`] (auth, TLS, stream, windows and timeouts), and what
//!   both ends share: connecting, finding or creating the stream.
//! - `publish.rs`: [`Publisher`], a synchronous stage that publishes with
//!   a window of outstanding acks; `flush` returns when all are acked.
//! - `consume.rs`: [`Consumer`], a durable pull consumer that pushes each
//!   batch through the stages, flushes them, and only then acks each
//!   message of the batch; [`Delivered`], the item it pushes.
//!
//! `async-nats` needs tokio. Each end runs the client on a thread of its
//! own with a current-thread runtime, joined to the stage world by bounded
//! channels that carry batches, so no stage becomes async. The client sets
//! `TCP_NODELAY` on its socket (without it, "ack, then fetch the next
//! batch" stalls on Nagle's algorithm for tens of milliseconds per batch).
//!
//! # Guarantees
//!
//! - Publishing is at-least-once to the server and exactly once in the
//!   stream within the stream's duplicate window: each message carries a
//!   `Nats-Msg-Id` made of a file id and a position (never a content
//!   fingerprint), and the server drops a repeat of an id it has stored
//!   within the window. A publish that is not acked in time is sent again
//!   with the same id until [`NatsConfig::server_timeout`] has passed since
//!   its first attempt; then it is an error upstream, never a silent loss.
//! - Consuming is at-least-once: a message is acked only after the stages
//!   downstream accepted it and were flushed. A worker that dies before its
//!   acks reach the server has its batch delivered again (to any worker on
//!   the same durable) after the consumer's ack wait.
//!
//! # Examples
//!
//! ```
//! use copipe::bridge::nats::{NatsConfig, NatsUrl};
//!
//! let url = NatsUrl::parse("nats://app:secret@127.0.0.1:4222/logs.web")?;
//! assert_eq!(url.server(), "nats://127.0.0.1:4222");
//! assert_eq!(url.subject(), "logs.web");
//!
//! let mut config = NatsConfig::default();
//! config.stream = Some("LOGS".into());
//! config.window = 512;
//! assert_eq!(config.stream_name("logs.web"), "LOGS");
//! config.stream = None;
//! assert_eq!(config.stream_name("logs.web"), "COPIPE_logs_web");
//! # Ok::<(), copipe::Error>(())
//! ```

mod consume;
mod publish;

pub use consume::{Consumer, ConsumerOptions, Deliver, Delivered};
pub use publish::{file_id_for, Publisher, PublisherStats};

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::{Error, ErrorKind, Result};

/// The prefix of the stream name used when none is given (`--stream`):
/// the default stream of subject `logs.web` is `COPIPE_logs_web`, so each
/// subject gets a stream of its own and the publisher's URL names the
/// same stream for the consumer.
pub const DEFAULT_STREAM: &str = "COPIPE";

/// The default duplicate window of a stream copipe creates: a publish
/// repeated after a crash within this time is dropped by the server. A
/// restart later than the window can duplicate lines, never lose them.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(2 * 60 * 60);

/// The default number of publishes awaiting their ack at once.
pub const DEFAULT_WINDOW: usize = 256;

/// The default number of messages a consumer pulls in one batch.
pub const DEFAULT_BATCH: usize = 256;

/// The default time one publish waits for its ack before it is sent again.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The default time the server may stay away before publishing or
/// consuming fails: reconnects within it are the client's and invisible.
pub const DEFAULT_SERVER_TIMEOUT: Duration = Duration::from_secs(60);

/// Header names copipe sets on each message it publishes.
pub mod headers {
    /// The host the item was read on.
    pub const HOST: &str = "Copipe-Host";
    /// The path of the file the item was read from.
    pub const PATH: &str = "Copipe-Path";
    /// The byte offset of a line (or the index of a record) in its file.
    pub const OFFSET: &str = "Copipe-Offset";
    /// copipe's id of the file the item was read from.
    pub const FILE_ID: &str = "Copipe-File";
    /// JetStream's de-duplication header: `{file id}:{position}`.
    pub const MSG_ID: &str = "Nats-Msg-Id";
}

/// Where to publish or consume: a server and a subject.
///
/// The form is `nats://[user:pass@]HOST[:PORT]/SUBJECT` (the port defaults
/// to 4222); `tls://` instead of `nats://` requires TLS.
///
/// # Examples
///
/// ```
/// use copipe::bridge::nats::NatsUrl;
///
/// let url = NatsUrl::parse("tls://nats.example:4443/logs")?;
/// assert_eq!(url.server(), "tls://nats.example:4443");
/// assert!(NatsUrl::parse("nats://127.0.0.1:4222").is_err()); // no subject
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrl {
    scheme: String,
    hostport: String,
    subject: String,
    user: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for NatsUrl {
    // The password stays out of logs and error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsUrl")
            .field("server", &self.server())
            .field("subject", &self.subject)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl NatsUrl {
    /// Parses `nats://[user:pass@]HOST[:PORT]/SUBJECT`.
    ///
    /// # Errors
    ///
    /// A usage error naming what is missing or wrong.
    pub fn parse(s: &str) -> Result<NatsUrl> {
        let bad = |why: &str| {
            Error::usage(format!(
                "bad NATS URL `{s}`: {why} (expected nats://[user:pass@]HOST:PORT/SUBJECT)"
            ))
        };
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme != "nats" && scheme != "tls" {
            return Err(bad("the scheme must be nats:// or tls://"));
        }
        let (authority, subject) = rest.split_once('/').ok_or_else(|| bad("no subject"))?;
        if subject.is_empty()
            || subject
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c == '?' || c == '#')
            || subject.split('.').any(str::is_empty)
        {
            return Err(bad("the subject is empty or not a NATS subject"));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(n.to_string()), Some(p.to_string())),
                None => (Some(u.to_string()), None),
            },
        };
        if hostport.is_empty() || hostport.starts_with(':') {
            return Err(bad("no host"));
        }
        let hostport = match hostport.rsplit_once(':') {
            Some((_, port)) if !hostport.ends_with(']') => {
                port.parse::<u16>().map_err(|_| bad("bad port"))?;
                hostport.to_string()
            }
            _ => format!("{hostport}:4222"),
        };
        Ok(NatsUrl {
            scheme: scheme.to_string(),
            hostport,
            subject: subject.to_string(),
            user,
            password,
        })
    }

    /// The server's address as the client takes it: `nats://HOST:PORT`.
    pub fn server(&self) -> String {
        format!("{}://{}", self.scheme, self.hostport)
    }

    /// The subject published to or consumed from.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The same server with another subject.
    pub fn with_subject(&self, subject: &str) -> NatsUrl {
        NatsUrl {
            subject: subject.to_string(),
            ..self.clone()
        }
    }
}

/// How to connect, and the stream's and the window's settings.
///
/// Start from `NatsConfig::default()` and set the fields that matter;
/// every field has a documented default.
#[derive(Clone)]
#[non_exhaustive]
pub struct NatsConfig {
    /// User name (a user in the URL takes precedence).
    pub user: Option<String>,
    /// Password (a password in the URL takes precedence).
    pub password: Option<String>,
    /// Authentication token.
    pub token: Option<String>,
    /// A credentials file (user JWT and NKey seed, as `nsc` writes them).
    pub creds: Option<PathBuf>,
    /// A PEM file of CA certificates to trust; setting it requires TLS.
    pub tls_ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for servers that verify
    /// clients; setting it requires TLS.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// The stream to use or create; when `None`, the stream that already
    /// captures the subject, else `COPIPE_{subject}` (see [`DEFAULT_STREAM`]).
    pub stream: Option<String>,
    /// The duplicate window of a stream created here
    /// ([`DEFAULT_DUPLICATE_WINDOW`]). An existing stream keeps its own.
    pub duplicate_window: Duration,
    /// Replicas of a stream created here (1; 3 on a 3-node cluster).
    pub replicas: usize,
    /// Publishes awaiting their ack at once ([`DEFAULT_WINDOW`]).
    pub window: usize,
    /// How long one publish waits for its ack before it is sent again
    /// ([`DEFAULT_ACK_TIMEOUT`]).
    pub ack_timeout: Duration,
    /// How long the server may stay away before an operation fails
    /// ([`DEFAULT_SERVER_TIMEOUT`]).
    pub server_timeout: Duration,
    /// How long connecting may take at start ([`DEFAULT_ACK_TIMEOUT`]).
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for NatsConfig {
    // Secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("creds", &self.creds)
            .field("tls_ca", &self.tls_ca)
            .field("stream", &self.stream)
            .field("duplicate_window", &self.duplicate_window)
            .field("replicas", &self.replicas)
            .field("window", &self.window)
            .field("ack_timeout", &self.ack_timeout)
            .field("server_timeout", &self.server_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for NatsConfig {
    fn default() -> NatsConfig {
        NatsConfig {
            user: None,
            password: None,
            token: None,
            creds: None,
            tls_ca: None,
            tls_client: None,
            stream: None,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            replicas: 1,
            window: DEFAULT_WINDOW,
            ack_timeout: DEFAULT_ACK_TIMEOUT,
            server_timeout: DEFAULT_SERVER_TIMEOUT,
            connect_timeout: DEFAULT_ACK_TIMEOUT,
        }
    }
}

impl NatsConfig {
    /// The name of the stream to create for `subject`: the one set, or
    /// `COPIPE_` and the subject with every character that a stream name
    /// cannot hold (`.`, `*`, `>`, ...) as `_`.
    pub fn stream_name(&self, subject: &str) -> String {
        match &self.stream {
            Some(s) => s.clone(),
            None => {
                let tail: String = subject
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("{DEFAULT_STREAM}_{tail}")
            }
        }
    }
}

/// A NATS failure as copipe's error.
pub(crate) fn nats_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Bridge(format!("nats: {what}: {err}")))
}

/// A current-thread runtime for one end's client thread.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
}

/// Connects with the URL's and the config's credentials. Reconnects are
/// the client's, retried forever at most a second apart; the callers bound
/// how long they wait with [`NatsConfig::server_timeout`].
pub(crate) async fn connect(url: &NatsUrl, cfg: &NatsConfig) -> Result<async_nats::Client> {
    let mut o = async_nats::ConnectOptions::new()
        .name("copipe")
        .connection_timeout(cfg.connect_timeout)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((50u64 << attempts.min(5) as u32).min(1000))
        });
    let user = url.user.clone().or_else(|| cfg.user.clone());
    let password = url.password.clone().or_else(|| cfg.password.clone());
    if let Some(user) = user {
        o = o.user_and_password(user, password.unwrap_or_default());
    }
    if let Some(token) = &cfg.token {
        o = o.token(token.clone());
    }
    if let Some(creds) = &cfg.creds {
        o = o
            .credentials_file(creds)
            .await
            .map_err(|e| Error::from(e).with_path(creds))?;
    }
    if let Some(ca) = &cfg.tls_ca {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &cfg.tls_client {
        o = o
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    if url.scheme == "tls" {
        o = o.require_tls(true);
    }
    o.connect(url.server())
        .await
        .map_err(|e| nats_error(&format!("cannot connect to {}", url.server()), e))
}

/// The name of the stream capturing the URL's subject: the one that
/// already does, or a new one created with file storage, the config's
/// duplicate window and replicas.
///
/// # Errors
///
/// The stream named by the config exists but does not capture the
/// subject, another stream captures it, or the server refused.
pub(crate) async fn ensure_stream(
    js: &jetstream::Context,
    subject: &str,
    cfg: &NatsConfig,
) -> Result<String> {
    let want = cfg.stream_name(subject);
    let want = want.as_str();
    // Two publishers starting at once may race to create it: look again.
    let mut last = String::new();
    for _ in 0..3 {
        match js.stream_by_subject(subject).await {
            Ok(name) => {
                if cfg.stream.is_some() && name != want {
                    return Err(Error::usage(format!(
                        "nats: subject `{subject}` is captured by stream `{name}`, not `{want}` \
                         (drop --stream or give --stream {name})"
                    )));
                }
                return Ok(name);
            }
            Err(e) if e.kind() == jetstream::context::GetStreamByNameErrorKind::NotFound => {}
            Err(e) => return Err(nats_error("cannot look up streams", e)),
        }
        let config = stream::Config {
            name: want.to_string(),
            subjects: vec![subject.to_string()],
            storage: stream::StorageType::File,
            duplicate_window: cfg.duplicate_window,
            num_replicas: cfg.replicas.max(1),
            ..Default::default()
        };
        match js.create_stream(config).await {
            Ok(_) => return Ok(want.to_string()),
            Err(e) => {
                // An existing stream of that name with other subjects.
                if js.get_stream_no_info(want).await.is_ok()
                    && js.stream_by_subject(subject).await.is_err()
                {
                    return Err(Error::usage(format!(
                        "nats: stream `{want}` exists and does not capture subject `{subject}` \
                         (add the subject to it, or choose another --stream)"
                    )));
                }
                last = e.to_string();
            }
        }
    }
    Err(Error::new(ErrorKind::Bridge(format!(
        "nats: cannot create stream `{want}` for subject `{subject}`: {last}"
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let u = NatsUrl::parse("nats://a:b@h:1/x.y").unwrap();
        assert_eq!(
            (
                u.server(),
                u.subject(),
                u.user.as_deref(),
                u.password.as_deref()
            ),
            ("nats://h:1".to_string(), "x.y", Some("a"), Some("b"))
        );
        assert_eq!(
            NatsUrl::parse("nats://h/s").unwrap().server(),
            "nats://h:4222"
        );
        for bad in [
            "h:1/s",
            "http://h:1/s",
            "nats://h:1",
            "nats://h:1/",
            "nats://h:x/s",
            "nats://h:1/a..b",
            "nats://:1/s",
        ] {
            assert!(NatsUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let u = NatsUrl::parse("nats://a:hunter2@h:1/s").unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
        let c = NatsConfig {
            password: Some("hunter2".into()),
            token: Some("hunter2".into()),
            ..NatsConfig::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
