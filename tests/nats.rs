//! NATS JetStream publishing and consuming against a real nats-server on
//! 127.0.0.1 (installed by the harness when missing).

#![cfg(feature = "nats")]

#[path = "common/nats.rs"]
mod nats_server;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use copipe::bridge::nats::{Consumer, ConsumerOptions, Delivered, NatsConfig, NatsUrl, Publisher};
use copipe::text::{LineAt, SourceFile};
use copipe::{from_fn, Flow, Lifecycle, Stage};
use nats_server::NatsServer;

const BIN: &str = env!("CARGO_BIN_EXE_copipe");

fn file(n: u32) -> SourceFile {
    SourceFile {
        id: format!("{n:032x}"),
        path: format!("/var/log/app{n}.log").into(),
    }
}

/// Publishes `lines` numbered lines of `file` (`line N of FILE\n`), the
/// offsets those of a real file.
fn publish_lines(p: &mut Publisher, f: &SourceFile, range: std::ops::Range<u64>) {
    for i in range {
        let line = format!("line {i} of {}\n", f.id);
        // A fixed width keeps offsets simple: every line is 64 bytes apart.
        assert!(!p
            .send(LineAt {
                bytes: line.as_bytes(),
                file: f,
                offset: i * 64,
            })
            .unwrap()
            .is_stop());
    }
}

/// Every message of the subject, read by a new durable: (id, payload).
fn read_all(url: &str, durable: &str) -> Vec<(String, String)> {
    let url = NatsUrl::parse(url).unwrap();
    let mut opts = ConsumerOptions::new(durable);
    opts.idle_exit = Some(Duration::from_millis(700));
    let consumer = Consumer::connect(&url, &NatsConfig::default(), &opts).unwrap();
    let mut out = Vec::new();
    consumer
        .run(from_fn(|m: Delivered<'_>| {
            out.push((
                m.msg_id().unwrap_or("").to_string(),
                String::from_utf8_lossy(m.payload()).into_owned(),
            ));
            Ok(Flow::Continue)
        }))
        .unwrap();
    out
}

#[test]
fn published_lines_arrive_once_with_their_ids_and_headers() {
    let server = NatsServer::start();
    let url = NatsUrl::parse(&server.url("logs")).unwrap();
    let mut p = Publisher::connect(&url, &NatsConfig::default()).unwrap();
    assert_eq!(p.stream(), "COPIPE_logs");
    let (a, b) = (file(1), file(2));
    publish_lines(&mut p, &a, 0..600);
    publish_lines(&mut p, &b, 0..400);
    p.flush().unwrap();
    assert_eq!(p.stats().acked, 1000);
    assert_eq!(p.stats().duplicates, 0);
    // A repeat after a "crash": the same ids again, dropped by the server.
    publish_lines(&mut p, &a, 500..600);
    p.close().unwrap();
    assert_eq!(p.stats().acked, 1100);
    assert_eq!(p.stats().duplicates, 100);

    let got = read_all(&server.url("logs"), "check");
    assert_eq!(got.len(), 1000);
    let ids: BTreeSet<_> = got.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids.len(), 1000);
    assert!(ids.contains(&format!("{}:{}", a.id, 599 * 64)));
    assert!(got
        .iter()
        .all(|(id, line)| line.ends_with(&format!("of {}\n", &id[..32]))));

    // Headers: host, path, offset, file id.
    let url = NatsUrl::parse(&server.url("logs")).unwrap();
    let mut opts = ConsumerOptions::new("headers");
    opts.idle_exit = Some(Duration::from_millis(500));
    let mut first = BTreeMap::new();
    Consumer::connect(&url, &NatsConfig::default(), &opts)
        .unwrap()
        .run(from_fn(|m: Delivered<'_>| {
            if first.is_empty() {
                first = m
                    .headers()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            }
            Ok(Flow::Stop)
        }))
        .unwrap();
    assert_eq!(first["Copipe-Path"], "/var/log/app1.log");
    assert_eq!(first["Copipe-Offset"], "0");
    assert_eq!(first["Copipe-File"], a.id);
    assert_eq!(first["Nats-Msg-Id"], format!("{}:0", a.id));
    assert!(!first["Copipe-Host"].is_empty());
}

#[test]
fn consume_prints_kept_lines_and_acks_them() {
    let server = NatsServer::start();
    let url = NatsUrl::parse(&server.url("app")).unwrap();
    let mut p = Publisher::connect(&url, &NatsConfig::default()).unwrap();
    let f = file(7);
    for i in 0..300u64 {
        let level = if i % 3 == 0 { "ERROR" } else { "INFO" };
        let line = format!("{level} event {i}\n");
        assert!(!p
            .send(LineAt {
                bytes: line.as_bytes(),
                file: &f,
                offset: i * 32,
            })
            .unwrap()
            .is_stop());
    }
    p.close().unwrap();

    let run = || {
        Command::new(BIN)
            .args(["consume", &server.url("app"), "--durable", "errors"])
            .args(["-e", "ERROR", "--idle-exit", "0.7", "--batch", "64"])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let want: String = (0..300)
        .filter(|i| i % 3 == 0)
        .map(|i| format!("ERROR event {i}\n"))
        .collect();
    assert_eq!(text, want);
    // Acked: the durable resumes after them, with nothing left.
    let again = run();
    assert!(again.status.success());
    assert!(again.stdout.is_empty());
}

#[test]
fn consumers_on_one_durable_share_the_work() {
    let server = NatsServer::start();
    let url = NatsUrl::parse(&server.url("work")).unwrap();
    let mut p = Publisher::connect(&url, &NatsConfig::default()).unwrap();
    publish_lines(&mut p, &file(3), 0..3000);
    p.close().unwrap();

    let workers: Vec<_> = (0..3)
        .map(|_| {
            Command::new(BIN)
                .args(["consume", &server.url("work"), "--durable", "shared"])
                .args(["--idle-exit", "1", "--batch", "50"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut all = Vec::new();
    let mut busy = 0;
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success());
        let lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        if !lines.is_empty() {
            busy += 1;
        }
        all.extend(lines);
    }
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 3000, "each message to exactly one worker");
    assert_eq!(unique.len(), 3000);
    assert!(busy >= 2, "the work was not shared");
}

#[test]
fn buses_to_nats_publishes_each_record_once() {
    let server = NatsServer::start();
    let json = Command::new(BIN)
        .args(["buses", "--format", "json", "--route", "22"])
        .output()
        .unwrap();
    assert!(json.status.success());
    let want: Vec<String> = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert!(!want.is_empty());
    for _ in 0..2 {
        let out = Command::new(BIN)
            .args(["buses", "--route", "22", "--to", &server.url("buses")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Published twice from the same file: stored once.
    let got = read_all(&server.url("buses"), "check");
    let payloads: Vec<String> = got.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(payloads, want);
    for (id, p) in &got {
        assert!(id.ends_with(&format!(":{}", want.iter().position(|w| w == p).unwrap())));
        serde_json::from_str::<serde_json::Value>(p).unwrap();
    }
}

#[test]
fn consume_to_passes_messages_on_under_their_ids() {
    let server = NatsServer::start();
    let url = NatsUrl::parse(&server.url("raw")).unwrap();
    let mut p = Publisher::connect(&url, &NatsConfig::default()).unwrap();
    publish_lines(&mut p, &file(4), 0..200);
    p.close().unwrap();
    for _ in 0..2 {
        let out = Command::new(BIN)
            .args(["consume", &server.url("raw"), "--durable", "fwd"])
            .args([
                "--stream",
                "COPIPE_raw",
                "--idle-exit",
                "0.5",
                "-e",
                "line 1",
            ])
            .args(["--to", &server.url("kept")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let got = read_all(&server.url("kept"), "check");
    let want = (0..200)
        .filter(|i| format!("line {i} ").starts_with("line 1"))
        .count();
    assert_eq!(got.len(), want);
    assert!(got.iter().all(|(id, _)| id.starts_with(&file(4).id)));
}

#[test]
fn a_server_away_past_the_timeout_is_an_error() {
    let mut server = NatsServer::start();
    let url = NatsUrl::parse(&server.url("gone")).unwrap();
    let mut config = NatsConfig::default();
    config.ack_timeout = Duration::from_millis(300);
    config.server_timeout = Duration::from_secs(2);
    let mut p = Publisher::connect(&url, &config).unwrap();
    publish_lines(&mut p, &file(5), 0..10);
    p.flush().unwrap();
    server.kill9();
    publish_lines(&mut p, &file(5), 10..20);
    let err = p.flush().unwrap_err().to_string();
    assert!(err.contains("no ack"), "{err}");
    assert_eq!(p.stats().acked, 10, "nothing counted acked that was not");
}

#[test]
fn bad_urls_are_refused_with_the_form() {
    let out = Command::new(BIN)
        .args(["consume", "nats://127.0.0.1:1", "--durable", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nats://[user:pass@]HOST:PORT/SUBJECT"),
        "{err}"
    );
}
