//! Connecting for real: user and password, token, credentials file
//! (operator, account and user JWTs signed here with nkeys) and TLS (a CA
//! made here with openssl), each against a loopback nats-server configured
//! for it, through the CLI's options and the library's config.

#![cfg(feature = "nats")]

#[path = "common/nats.rs"]
mod nats_server;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use copipe::bridge::nats::{NatsConfig, NatsUrl, Publisher};
use copipe::text::{LineAt, SourceFile};
use copipe::{Lifecycle, Stage};
use nats_server::NatsServer;

const BIN: &str = env!("CARGO_BIN_EXE_copipe");

/// Publishes three lines through the library with `config`.
fn publish3(url: &str, config: &NatsConfig) -> copipe::Result<()> {
    let url = NatsUrl::parse(url)?;
    let mut p = Publisher::connect(&url, config)?;
    let file = SourceFile {
        id: "a".repeat(32),
        path: "auth.log".into(),
    };
    for i in 0..3u64 {
        let line = format!("secret line {i}\n");
        assert!(!p
            .send(LineAt {
                bytes: line.as_bytes(),
                file: &file,
                offset: i * 14,
            })?
            .is_stop());
    }
    p.close()
}

/// `copipe consume URL --durable d --idle-exit 0.5 ARGS...`.
fn consume(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["consume", url, "--durable", "d", "--idle-exit", "0.5"])
        .args(args)
        .output()
        .unwrap()
}

fn assert_consumed(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "secret line 0\nsecret line 1\nsecret line 2\n"
    );
}

fn assert_refused(out: &Output) {
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nats: cannot connect"), "{err}");
}

#[test]
fn user_and_password() {
    let server = NatsServer::with_config("authorization { user: app, password: \"s3cr3t\" }");
    let mut config = NatsConfig::default();
    config.user = Some("app".into());
    config.password = Some("s3cr3t".into());
    publish3(&server.url("auth"), &config).unwrap();
    assert!(publish3(&server.url("auth"), &NatsConfig::default()).is_err());

    let out = consume(
        &server.url("auth"),
        &["--nats-user", "app", "--nats-password", "s3cr3t"],
    );
    assert_consumed(&out);
    // In the URL.
    let url = format!("nats://app:s3cr3t@127.0.0.1:{}/auth", server.port);
    let out = Command::new(BIN)
        .args(["consume", &url, "--durable", "d2", "--idle-exit", "0.5"])
        .output()
        .unwrap();
    assert_consumed(&out);
    assert_refused(&consume(
        &server.url("auth"),
        &["--nats-user", "app", "--nats-password", "wrong"],
    ));
}

#[test]
fn token() {
    let server = NatsServer::with_config("authorization { token: \"t0k3n-t0k3n\" }");
    let mut config = NatsConfig::default();
    config.token = Some("t0k3n-t0k3n".into());
    publish3(&server.url("auth"), &config).unwrap();
    assert_consumed(&consume(
        &server.url("auth"),
        &["--nats-token", "t0k3n-t0k3n"],
    ));
    assert_refused(&consume(&server.url("auth"), &["--nats-token", "nope"]));
}

/// A JWT (`alg: ed25519-nkey`) of `claims`, issued by `issuer` for `sub`.
fn jwt(issuer: &nkeys::KeyPair, sub: &str, name: &str, nats: serde_json::Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = b64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = serde_json::json!({
        "jti": format!("{name}{now}").to_uppercase(),
        "iat": now,
        "iss": issuer.public_key(),
        "name": name,
        "sub": sub,
        "nats": nats,
    });
    let body = b64.encode(claims.to_string());
    let signing = format!("{header}.{body}");
    let sig = issuer.sign(signing.as_bytes()).unwrap();
    format!("{signing}.{}", b64.encode(sig))
}

#[test]
fn credentials_file() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    // JetStream needs a system account.
    let system = nkeys::KeyPair::new_account();
    let op_jwt = jwt(
        &operator,
        &operator.public_key(),
        "op",
        serde_json::json!({"type": "operator", "version": 2,
            "system_account": system.public_key()}),
    );
    let sys_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({"type": "account", "version": 2,
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1,
                "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}}),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let acc_jwt = jwt(
        &operator,
        &account.public_key(),
        "acc",
        serde_json::json!({"type": "account", "version": 2, "limits": unlimited,
            "default_permissions": {"pub": {}, "sub": {}}}),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "user",
        serde_json::json!({"type": "user", "version": 2, "pub": {}, "sub": {},
            "subs": -1, "data": -1, "payload": -1}),
    );
    let server = NatsServer::with_config(&format!(
        "operator: {op_jwt}\nsystem_account: {}\nresolver: MEMORY\n\
         resolver_preload: {{ {}: {acc_jwt}, {}: {sys_jwt} }}\n",
        system.public_key(),
        account.public_key(),
        system.public_key()
    ));
    let creds = server.dir.join("user.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().unwrap()
        ),
    )
    .unwrap();
    let mut config = NatsConfig::default();
    config.creds = Some(creds.clone());
    publish3(&server.url("auth"), &config).unwrap();
    assert_consumed(&consume(
        &server.url("auth"),
        &["--nats-creds", creds.to_str().unwrap()],
    ));
    assert_refused(&consume(&server.url("auth"), &[]));
}

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn make_tls(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is needed for the TLS test");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=copipe test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server-key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
}

#[test]
fn tls_with_a_private_ca() {
    let tmp = tempfile::tempdir().unwrap();
    make_tls(tmp.path());
    let d = tmp.path().display();
    let server = NatsServer::with_config(&format!(
        "tls {{ cert_file: \"{d}/server.pem\", key_file: \"{d}/server-key.pem\", timeout: 5 }}"
    ));
    let ca = tmp.path().join("ca.pem");
    let mut config = NatsConfig::default();
    config.tls_ca = Some(ca.clone());
    config.connect_timeout = Duration::from_secs(10);
    publish3(&server.url("auth"), &config).unwrap();
    assert_consumed(&consume(
        &server.url("auth"),
        &["--nats-tls-ca", ca.to_str().unwrap()],
    ));
    // Without the CA the server's certificate is not trusted.
    assert_refused(&consume(
        &format!("tls://127.0.0.1:{}/auth", server.port),
        &[],
    ));
}

/// A client certificate and key signed by the CA in `dir` (made by
/// [`make_tls`]), for TLS client authentication, as `NAME.pem` and
/// `NAME-key.pem`.
fn make_client_cert(dir: &Path, name: &str, ca: &str) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is needed for the TLS test");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let key = format!("{name}-key.pem");
    let csr = format!("{name}.csr");
    let pem = format!("{name}.pem");
    let subj = format!("/CN={name}");
    run(&[
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subj, "-keyout", &key, "-out", &csr,
    ]);
    std::fs::write(
        dir.join("client-ext.cnf"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    let ca_pem = format!("{ca}.pem");
    let ca_key = format!("{ca}-key.pem");
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_pem,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "client-ext.cnf",
        "-out",
        &pem,
    ]);
}

/// Asserts a refusal said in one line naming the connection.
fn assert_refused_in_one_line(out: &Output) {
    assert_refused(out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn tls_with_a_client_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_tls(dir);
    make_client_cert(dir, "client", "ca");
    // A second CA, unknown to the server, and a client certificate it signed.
    let other = dir.join("other");
    std::fs::create_dir(&other).unwrap();
    make_tls(&other);
    make_client_cert(&other, "stranger", "ca");
    let d = dir.display();
    let server = NatsServer::with_config(&format!(
        "tls {{ cert_file: \"{d}/server.pem\", key_file: \"{d}/server-key.pem\", \
         ca_file: \"{d}/ca.pem\", verify: true, timeout: 5 }}"
    ));
    let ca = dir.join("ca.pem");
    let (cert, key) = (dir.join("client.pem"), dir.join("client-key.pem"));
    let mut config = NatsConfig::default();
    config.tls_ca = Some(ca.clone());
    config.tls_client = Some((cert.clone(), key.clone()));
    config.connect_timeout = Duration::from_secs(10);
    publish3(&server.url("auth"), &config).unwrap();
    let tls_args = [
        "--nats-tls-ca",
        ca.to_str().unwrap(),
        "--nats-tls-cert",
        cert.to_str().unwrap(),
        "--nats-tls-key",
        key.to_str().unwrap(),
    ];
    assert_consumed(&consume(&server.url("auth"), &tls_args));

    // Without a client certificate: refused, by the library and the CLI,
    // with one line of error.
    let mut no_cert = config.clone();
    no_cert.tls_client = None;
    let err = publish3(&server.url("auth"), &no_cert)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nats: cannot connect"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_refused_in_one_line(&consume(&server.url("auth"), &tls_args[..2]));

    // A certificate from a CA the server does not trust: refused too.
    let (cert, key) = (other.join("stranger.pem"), other.join("stranger-key.pem"));
    let mut stranger = config.clone();
    stranger.tls_client = Some((cert.clone(), key.clone()));
    assert!(publish3(&server.url("auth"), &stranger).is_err());
    assert_refused_in_one_line(&consume(
        &server.url("auth"),
        &[
            "--nats-tls-ca",
            ca.to_str().unwrap(),
            "--nats-tls-cert",
            cert.to_str().unwrap(),
            "--nats-tls-key",
            key.to_str().unwrap(),
        ],
    ));
}
