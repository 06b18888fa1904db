//! NATS JetStream throughput, copipe against the raw client, in one run on
//! one loopback nats-server (installed by the test harness if missing):
//!
//! - publish: lines read from a file, each published with its
//!   `Nats-Msg-Id` and acked, through [`Publisher`] (a synchronous stage,
//!   the client on its own thread) vs a raw `async-nats` loop with the
//!   same window of outstanding acks and the same headers;
//! - consume: a durable pull consumer, explicit ack of each message,
//!   through [`Consumer`] (batch pushed through a stage, flushed, then
//!   acked) vs a raw fetch-and-ack loop with the same batch size.
//!
//! Rounds alternate between the two sides so that load from other work on
//! the machine falls on both; the medians and their ratio are printed,
//! with `uptime`. `cargo bench --bench nats` (`-- --lines N --rounds R`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use copipe::bridge::nats::{Consumer, ConsumerOptions, Delivered, NatsConfig, NatsUrl, Publisher};
use copipe::text::{LineAt, SourceFile};
use copipe::{Flow, Lifecycle, Stage};
use futures_util::StreamExt;

#[path = "../tests/common/nats.rs"]
mod nats_server;

const WINDOW: usize = 256;
const BATCH: usize = 256;

fn main() {
    let mut lines = 200_000u64;
    let mut rounds = 3usize;
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--lines" => lines = w[1].parse().expect("--lines N"),
            "--rounds" => rounds = w[1].parse().expect("--rounds R"),
            _ => {}
        }
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let server = nats_server::NatsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("access.log");
    write_log(&path, lines);

    let publish_only = args.iter().any(|a| a == "--publish-only");
    let mut pub_copipe = Vec::new();
    let mut pub_raw = Vec::new();
    let mut con_copipe = Vec::new();
    let mut con_raw = Vec::new();
    let load_before = loadavg();
    for r in 0..rounds {
        // Which side goes first alternates too.
        let sides: [bool; 2] = if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for copipe in sides {
            if copipe {
                let url = server.url(&format!("bench.copipe{r}"));
                pub_copipe.push(timed(lines, || copipe_publish(&url, &path, lines)));
            } else {
                let url = server.url(&format!("bench.raw{r}"));
                pub_raw.push(timed(lines, || raw_publish(&url, &path, lines)));
            }
        }
        if publish_only {
            continue;
        }
        // Both consume the stream the raw publisher filled.
        let url = server.url(&format!("bench.raw{r}"));
        con_copipe.push(timed(lines, || {
            copipe_consume(&url, &format!("c{r}"), lines)
        }));
        con_raw.push(timed(lines, || raw_consume(&url, &format!("r{r}"), lines)));
    }
    println!("nats bench: {lines} lines x {rounds} rounds, window {WINDOW}, batch {BATCH}");
    println!(
        "load average (/proc/loadavg) before: {}, after: {}",
        load_before,
        loadavg()
    );
    report("publish, acked", &pub_copipe, &pub_raw);
    if !publish_only {
        report("consume, explicit acks", &con_copipe, &con_raw);
    }
}

fn loadavg() -> String {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// This process's CPU time so far (user + system, all threads, ended ones
/// included), from /proc/self/stat in clock ticks of 10 ms.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// One round: its rate (messages per second of wall clock) and the
/// client process's CPU time per message.
struct Round {
    rate: f64,
    cpu_us: f64,
}

fn timed(n: u64, f: impl FnOnce() -> Duration) -> Round {
    let cpu = cpu_time();
    let wall = f();
    let cpu = cpu_time().saturating_sub(cpu);
    Round {
        rate: rate(n, wall),
        cpu_us: cpu.as_secs_f64() * 1e6 / n as f64,
    }
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn report(what: &str, copipe: &[Round], raw: &[Round]) {
    let rates = |v: &[Round]| v.iter().map(|x| x.rate).collect::<Vec<_>>();
    let cpus = |v: &[Round]| v.iter().map(|x| x.cpu_us).collect::<Vec<_>>();
    let (c, r) = (median(&rates(copipe)), median(&rates(raw)));
    println!(
        "{what:24} copipe {:>9.0} msg/s   raw async-nats {:>9.0} msg/s   ratio {:.2}x   \
         (rounds copipe {:?}, raw {:?})",
        c,
        r,
        c / r,
        rates(copipe).iter().map(|x| x.round()).collect::<Vec<_>>(),
        rates(raw).iter().map(|x| x.round()).collect::<Vec<_>>(),
    );
    let (c, r) = (median(&cpus(copipe)), median(&cpus(raw)));
    println!(
        "{:24} client CPU (user+sys, all threads) per message: copipe {c:.2} us, \
         raw {r:.2} us, ratio {:.2}x",
        "",
        c / r
    );
}

/// An access log of `n` lines of about 100 bytes.
fn write_log(path: &Path, n: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        writeln!(
            f,
            "10.0.{}.{} - - [03/Dec/2026:09:00:00 +0000] \"GET /item/{i} HTTP/1.1\" 200 {} \"-\" \"bench\"",
            i % 250,
            i % 200,
            i % 9000
        )
        .unwrap();
    }
}

fn file() -> SourceFile {
    SourceFile {
        id: "b".repeat(32),
        path: "access.log".into(),
    }
}

/// Lines of the file through a [`Publisher`], until all are acked.
fn copipe_publish(url: &str, path: &Path, n: u64) -> Duration {
    let url = NatsUrl::parse(url).unwrap();
    let mut config = NatsConfig::default();
    config.window = WINDOW;
    let mut p = Publisher::connect(&url, &config).unwrap();
    let f = file();
    let start = Instant::now();
    let mut reader = BufReader::new(std::fs::File::open(path).unwrap());
    let mut line = Vec::new();
    let mut offset = 0u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        let flow = p
            .send(LineAt {
                bytes: &line,
                file: &f,
                offset,
            })
            .unwrap();
        assert!(!flow.is_stop());
        offset += line.len() as u64;
    }
    p.close().unwrap();
    let d = start.elapsed();
    assert_eq!(p.stats().acked, n);
    d
}

/// The same lines, headers and ids, published by a raw async-nats loop
/// keeping `WINDOW` acks outstanding.
fn raw_publish(url: &str, path: &Path, n: u64) -> Duration {
    let url = NatsUrl::parse(url).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url.server()).await.unwrap();
        let js = jetstream::new(client);
        js.create_stream(jetstream::stream::Config {
            name: format!("RAW_{}", url.subject().replace('.', "_")),
            subjects: vec![url.subject().to_string()],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
        let f = file();
        let host = "bench-host";
        let start = Instant::now();
        let mut reader = BufReader::new(std::fs::File::open(path).unwrap());
        let mut line = Vec::new();
        let mut offset = 0u64;
        let mut pending = VecDeque::new();
        let subject = async_nats::Subject::from(url.subject());
        let mut acked = 0u64;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).unwrap() == 0 {
                break;
            }
            let mut h = async_nats::HeaderMap::new();
            h.insert("Nats-Msg-Id", format!("{}:{offset}", f.id));
            h.insert("Copipe-Host", host);
            h.insert("Copipe-Path", "access.log");
            h.insert("Copipe-Offset", offset.to_string());
            h.insert("Copipe-File", f.id.as_str());
            offset += line.len() as u64;
            if pending.len() == WINDOW {
                let ack: jetstream::context::PublishAckFuture = pending.pop_front().unwrap();
                ack.await.unwrap();
                acked += 1;
            }
            let ack = js
                .publish_with_headers(subject.clone(), h, line.clone().into())
                .await
                .unwrap();
            pending.push_back(ack);
        }
        for ack in pending {
            ack.await.unwrap();
            acked += 1;
        }
        let d = start.elapsed();
        assert_eq!(acked, n);
        d
    })
}

/// Every message through a [`Consumer`] into a counting stage; the time
/// until the last one was pushed (the idle exit after it is not counted).
fn copipe_consume(url: &str, durable: &str, n: u64) -> Duration {
    let url = NatsUrl::parse(url).unwrap();
    let mut opts = ConsumerOptions::new(durable);
    opts.batch = BATCH;
    opts.idle_exit = Some(Duration::from_millis(300));
    let consumer = Consumer::connect(&url, &NatsConfig::default(), &opts).unwrap();
    let count = AtomicU64::new(0);
    let mut done = None;
    let start = Instant::now();
    let pushed = consumer
        .run(Counting {
            count: &count,
            bytes: 0,
            n,
            done: &mut done,
            start,
        })
        .unwrap();
    assert_eq!(pushed, n);
    done.expect("all messages")
}

struct Counting<'a> {
    count: &'a AtomicU64,
    bytes: u64,
    n: u64,
    done: &'a mut Option<Duration>,
    start: Instant,
}

impl Stage<Delivered<'_>> for Counting<'_> {
    fn send(&mut self, m: Delivered<'_>) -> copipe::Result<Flow> {
        self.bytes += m.payload().len() as u64;
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Counting<'_> {
    // Called after each batch, before its acks go out: the last batch is
    // acked right after this.
    fn flush(&mut self) -> copipe::Result<()> {
        if self.done.is_none() && self.count.load(Ordering::Relaxed) >= self.n {
            *self.done = Some(self.start.elapsed());
        }
        Ok(())
    }
    fn close(&mut self) -> copipe::Result<()> {
        Ok(())
    }
}

/// A raw pull loop: fetch a batch, ack each message, fetch the next.
fn raw_consume(url: &str, durable: &str, n: u64) -> Duration {
    let url = NatsUrl::parse(url).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url.server()).await.unwrap();
        let js = jetstream::new(client);
        let name = js.stream_by_subject(url.subject()).await.unwrap();
        let stream = js.get_stream_no_info(&name).await.unwrap();
        let consumer: jetstream::consumer::PullConsumer = stream
            .get_or_create_consumer(
                durable,
                jetstream::consumer::pull::Config {
                    durable_name: Some(durable.to_string()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let start = Instant::now();
        let mut got = 0u64;
        let mut bytes = 0u64;
        while got < n {
            let mut batch = consumer
                .fetch()
                .max_messages(BATCH)
                .messages()
                .await
                .unwrap();
            let mut msgs = Vec::with_capacity(BATCH);
            while let Some(m) = batch.next().await {
                msgs.push(m.unwrap());
            }
            for m in &msgs {
                bytes += m.payload.len() as u64;
                m.ack().await.unwrap();
            }
            got += msgs.len() as u64;
        }
        let d = start.elapsed();
        assert!(bytes > 0);
        d
    })
}
