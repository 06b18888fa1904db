//! The path of one of this package's examples, built for the profile the
//! calling test or bench was built with.
//!
//! Cargo gives integration tests and benches the path of the package's
//! binaries (`CARGO_BIN_EXE_<name>`), not of its examples. `cargo test`
//! builds every example, but `cargo test --test NAME` and `cargo bench`
//! do not, so this runs `cargo build --example NAME` (a no-op when the
//! example is up to date: it also catches a stale one) once per name and
//! process, with the features this crate was built with. Cargo holds its
//! build lock only while it compiles, so a nested `cargo build` from a
//! running test does not wait for the outer one.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The built example `name` (`target/<profile>/examples/<name>`).
///
/// # Panics
///
/// If cargo cannot build it.
pub(crate) fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    // This executable is target/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target/").to_path_buf();
    let release = profile_dir.file_name().is_some_and(|p| p == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .arg("--no-default-features");
    if cfg!(feature = "nats") {
        cmd.args(["--features", "nats"]);
    }
    if release {
        cmd.args(["--profile", "bench"]);
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "cargo build --example {name}: {status}");
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    built.insert(name.to_string(), path.clone());
    path
}
