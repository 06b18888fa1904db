//! `copipe tail` against GNU grep and ripgrep, side by side in one run.
//!
//! - **static scan**: `copipe tail -n +1 FILE -e python` vs `grep -F python
//!   FILE` vs `rg -F python FILE` (skipped when `rg` is absent) over a
//!   generated 1 GiB access log, each writing into a pipe that this program
//!   reads (never /dev/null: GNU grep stops at the first match there).
//!   Median of several runs, GB/s, ratios, and peak RSS of each process.
//! - **follow latency**: one line appended at a time, time until it comes
//!   out of `copipe tail -F | ...` (and `tail -F | grep --line-buffered`):
//!   p50 / p99.
//! - **follow throughput**: a writer appends matching lines as fast as it
//!   can; lines/s until the last one is out, and a check that none was lost.
//!
//! Run with `cargo bench --bench tail`. Environment: `COPIPE_BENCH_MB`
//! (log size, default 1024), `COPIPE_BENCH_RUNS` (default 5).

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_copipe");

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `target/<profile>/bench-data`, next to this bench's executable.
fn data_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/release/deps/tail-xxxx -> target/release
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("bench exe lives in target/<profile>/deps")
        .join("bench-data");
    fs::create_dir_all(&dir).expect("create bench-data");
    dir
}

fn generated_log(mb: u64) -> PathBuf {
    let path = data_dir().join(format!("access-{mb}mb.log"));
    let want = mb << 20;
    if fs::metadata(&path)
        .map(|m| m.len() >= want)
        .unwrap_or(false)
    {
        return path;
    }
    eprintln!("generating {} ({mb} MiB, once)...", path.display());
    let status = Command::new(BIN)
        .args(["gen", "log", "--mb", &mb.to_string(), "--seed", "1", "-o"])
        .arg(&path)
        .status()
        .expect("run copipe gen log");
    assert!(status.success());
    path
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Peak RSS (VmHWM, kB) of a running process, or 0 once it is gone.
fn vm_hwm(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Run {
    secs: f64,
    out_bytes: u64,
    rss_kb: u64,
}

/// Runs `cmd args` with stdout into a pipe read here; wall time, bytes out
/// and peak RSS (sampled from /proc while it runs).
fn run_into_pipe(cmd: &str, args: &[&str]) -> Run {
    let start = Instant::now();
    let mut child = Command::new(cmd)
        .args(args)
        .env("LC_ALL", "C")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (Arc::clone(&done), Arc::clone(&peak));
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(vm_hwm(pid), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut out = child.stdout.take().expect("piped");
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match out.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) => panic!("read: {e}"),
        }
    }
    peak.fetch_max(vm_hwm(pid), Ordering::Relaxed);
    let status = child.wait().expect("wait");
    let secs = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    assert!(
        status.success() || status.code() == Some(1),
        "{cmd}: {status}"
    );
    Run {
        secs,
        out_bytes: n,
        rss_kb: peak.load(Ordering::Relaxed),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn static_scan(log: &Path, runs: u64) {
    let size = fs::metadata(log).expect("log").len() as f64;
    let file = log.to_str().expect("utf-8 path");
    let mut rows: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "copipe tail -n +1 FILE -e python",
            vec!["tail", "-n", "+1", file, "-e", "python"],
            BIN,
        ),
        ("grep -F python FILE", vec!["-F", "python", file], "grep"),
    ];
    if have("rg") {
        rows.push((
            "rg -F python FILE",
            vec!["-F", "--no-line-number", "python", file],
            "rg",
        ));
    } else {
        println!("(rg not found: its row is skipped)");
    }
    // Warm the page cache once.
    let _ = run_into_pipe("cat", &[file]);
    // Round-robin (copipe, grep, rg, copipe, ...) so that a burst of load
    // from other jobs on the machine hits every command alike.
    let mut times = vec![Vec::new(); rows.len()];
    let mut rss = vec![0u64; rows.len()];
    let mut expected_out = None;
    for _ in 0..runs {
        for (i, (label, args, cmd)) in rows.iter().enumerate() {
            let r = run_into_pipe(cmd, args);
            // A broken tool cannot win by printing less.
            let out = *expected_out.get_or_insert(r.out_bytes);
            assert_eq!(r.out_bytes, out, "{label}: output size differs");
            times[i].push(r.secs);
            rss[i] = rss[i].max(r.rss_kb);
        }
    }
    let mut results = Vec::new();
    for (i, (label, _, _)) in rows.iter().enumerate() {
        let mut t = times[i].clone();
        let med = median(&mut t);
        results.push((*label, med, rss[i], t));
    }
    let grep_t = results[1].1;
    let rg_t = results.get(2).map(|r| r.1);
    println!(
        "\nstatic scan: {:.2} GB file, output {:.1} MB, {runs} rounds (commands interleaved), median wall time",
        size / 1e9,
        expected_out.unwrap_or(0) as f64 / 1e6
    );
    println!(
        "{:<36} {:>9} {:>9} {:>10} {:>10} {:>9}",
        "command", "median s", "GB/s", "vs grep", "vs rg", "RSS MB"
    );
    for (label, med, rss, times) in &results {
        let vs_rg = rg_t.map_or("-".to_string(), |t| format!("{:.2}x", t / med));
        println!(
            "{:<36} {:>9.3} {:>9.2} {:>9.2}x {:>10} {:>9.1}   sorted runs: {}",
            label,
            med,
            size / med / 1e9,
            grep_t / med,
            vs_rg,
            *rss as f64 / 1024.0,
            times
                .iter()
                .map(|t| format!("{t:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!("(\"vs grep\" / \"vs rg\": their median time divided by this row's; >1 means faster)");
}

/// Spawns a follower (`sh -c PIPELINE`) whose stdout lines arrive on a
/// channel with their arrival time.
fn spawn_follower(pipeline: &str) -> (std::process::Child, mpsc::Receiver<(Instant, Vec<u8>)>) {
    let mut child = Command::new("sh")
        .args(["-c", pipeline])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn follower");
    let out = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 20, out);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send((Instant::now(), line)).is_err() {
                        break;
                    }
                }
            }
        }
    });
    (child, rx)
}

fn kill(mut child: std::process::Child) {
    // `sh -c 'a | b'`: kill the whole process group would need a signal to
    // the group; killing the shell's children goes through pkill -P.
    let _ = Command::new("pkill")
        .args(["-P", &child.id().to_string()])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

const TIMEOUT: Duration = Duration::from_secs(20);

fn follow_latency(label: &str, pipeline: impl Fn(&str) -> String, samples: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.log");
    fs::write(&path, "").expect("create");
    let (child, rx) = spawn_follower(&pipeline(path.to_str().expect("utf-8")));
    let mut log = OpenOptions::new().append(true).open(&path).expect("open");
    // Synchronise: the follower is running once a line comes out.
    let sync_deadline = Instant::now() + TIMEOUT;
    loop {
        log.write_all(b"python sync\n").expect("write");
        if rx.recv_timeout(Duration::from_millis(200)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < sync_deadline,
            "{label}: follower never started"
        );
    }
    while rx.try_recv().is_ok() {}
    let mut lat = Vec::with_capacity(samples);
    for i in 0..samples {
        let line = format!("1.2.3.4 - - GET /python/{i} HTTP/1.1 200\n");
        let t0 = Instant::now();
        log.write_all(line.as_bytes()).expect("write");
        let (t1, got) = rx.recv_timeout(TIMEOUT).expect("line did not come out");
        assert_eq!(got, line.as_bytes(), "{label}: wrong line");
        lat.push((t1 - t0).as_secs_f64() * 1e3);
    }
    kill(child);
    lat.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    println!(
        "{:<44} p50 {:>7.3} ms   p99 {:>7.3} ms   max {:>7.3} ms  ({} samples)",
        label,
        p(0.50),
        p(0.99),
        lat[lat.len() - 1],
        samples
    );
}

fn follow_throughput(label: &str, pipeline: impl Fn(&str) -> String, lines: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.log");
    fs::write(&path, "").expect("create");
    let mut child = Command::new("sh")
        .args(["-c", &pipeline(path.to_str().expect("utf-8"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn follower");
    let out = child.stdout.take().expect("piped");
    // The reader checks every line's number itself and reports once: a
    // channel message per line would make the harness the bottleneck.
    let (synced_tx, synced) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 20, out);
        let mut line = Vec::with_capacity(256);
        let mut seen = 0u64;
        let mut in_order = true;
        let mut synced = false;
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if !synced {
                if line.starts_with(b"python sync") {
                    let _ = synced_tx.send(());
                    continue;
                }
                synced = true;
            }
            let number = line.windows(8).position(|w| w == b"/python/").map(|i| {
                line[i + 8..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
            });
            in_order &= number == Some(seen);
            seen += 1;
            if seen == lines {
                break;
            }
        }
        let _ = done_tx.send((Instant::now(), seen, in_order));
    });
    let mut log = OpenOptions::new().append(true).open(&path).expect("open");
    let sync_deadline = Instant::now() + TIMEOUT;
    loop {
        log.write_all(b"python sync\n").expect("write");
        if synced.recv_timeout(Duration::from_millis(200)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < sync_deadline,
            "{label}: follower never started"
        );
    }
    // Let stray sync lines drain before the timed part.
    while synced.recv_timeout(Duration::from_millis(50)).is_ok() {}
    let t0 = Instant::now();
    let writer = thread::spawn(move || {
        // Lines of 90 bytes, all matching, numbered (zero-padded, counted
        // up in place like an odometer) so the reader can check order: the
        // writer must be much faster than the follower to measure it.
        const PREFIX: &[u8] = b"66.249.65.37 - - [24/Feb/2008:00:00:00 -0600] \"GET /python/";
        const SUFFIX: &[u8] = b" HTTP/1.1\" 200 1234\n";
        let mut line = PREFIX.to_vec();
        line.extend_from_slice(b"0000000000");
        line.extend_from_slice(SUFFIX);
        let digits = PREFIX.len()..PREFIX.len() + 10;
        let mut buf = Vec::with_capacity(1 << 16);
        for _ in 0..lines {
            buf.extend_from_slice(&line);
            for d in line[digits.clone()].iter_mut().rev() {
                if *d == b'9' {
                    *d = b'0';
                } else {
                    *d += 1;
                    break;
                }
            }
            if buf.len() >= (1 << 16) - 128 {
                log.write_all(&buf).expect("write");
                buf.clear();
            }
        }
        log.write_all(&buf).expect("write");
        t0.elapsed()
    });
    let result = done.recv_timeout(Duration::from_secs(120));
    let write_time = writer.join().expect("writer");
    let cpu = cpu_secs(child.id());
    let _ = Command::new("pkill")
        .args(["-P", &child.id().to_string()])
        .status();
    let _ = child.kill();
    let _ = child.wait();
    let Ok((last, seen, in_order)) = result else {
        println!("{label:<44} did not finish within 120 s");
        return;
    };
    let secs = (last - t0).as_secs_f64();
    println!(
        "{:<44} {:>6.2} M lines/s   {} of {} lines out{}   (writer: {:.2} M lines/s; follower CPU {:.2} s = {:.1} M lines per CPU-second)",
        label,
        seen as f64 / secs / 1e6,
        seen,
        lines,
        if seen == lines && in_order {
            ", none lost, in order"
        } else {
            ", LOST OR REORDERED"
        },
        lines as f64 / write_time.as_secs_f64() / 1e6,
        cpu,
        seen as f64 / cpu / 1e6
    );
}

/// CPU time (user + system, seconds) of a process and its descendants so
/// far, from /proc (Linux's USER_HZ is 100).
fn cpu_secs(pid: u32) -> f64 {
    let own = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the `(comm)`; utime and stime are 14th and 15th.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0);
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    own + children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .map(cpu_secs)
        .sum::<f64>()
}

/// The same scan in-process, into a counter: whole-block search against
/// line-by-line search, to show what handing grep whole chunks buys.
fn in_process(log: &Path, runs: u64) {
    use copipe::sinks::Count;
    use copipe::text::{Grep, Lines};
    let size = fs::metadata(log).expect("log").len() as f64;
    let mut by_block = Vec::new();
    let mut by_line = Vec::new();
    let mut counts = (0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let mut n = Count::new();
        Lines::open(log)
            .expect("open")
            .run_blocks(Grep::new("python", &mut n).expect("pattern"))
            .expect("scan");
        by_block.push(t.elapsed().as_secs_f64());
        counts.0 = n.count();
        let t = Instant::now();
        let mut n = Count::new();
        Lines::open(log)
            .expect("open")
            .run(Grep::new("python", &mut n).expect("pattern"))
            .expect("scan");
        by_line.push(t.elapsed().as_secs_f64());
        counts.1 = n.count();
    }
    assert_eq!(counts.0, counts.1, "block and line greps disagree");
    let (b, l) = (median(&mut by_block), median(&mut by_line));
    println!(
        "\nin-process scan into a counter ({} matching lines), {runs} rounds interleaved",
        counts.0
    );
    println!(
        "{:<44} {:>7.3} s  {:>6.2} GB/s",
        "Lines::run_blocks -> Grep (whole block)",
        b,
        size / b / 1e9
    );
    println!(
        "{:<44} {:>7.3} s  {:>6.2} GB/s  ({:.2}x the block time)",
        "Lines::run -> Grep (line by line)",
        l,
        size / l / 1e9,
        l / b
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument could select parts.
    let mb = env_num("COPIPE_BENCH_MB", 1024);
    let runs = env_num("COPIPE_BENCH_RUNS", 5);
    println!("copipe tail benchmark (machine shared with other jobs: expect noise)");
    let log = generated_log(mb);
    static_scan(&log, runs);
    in_process(&log, runs);

    println!("\nfollow latency (append one line, wait until it is out)");
    follow_latency(
        "copipe tail -F -n 0 FILE -e python",
        |p| format!("exec {BIN} tail -F -n 0 '{p}' -e python"),
        2000,
    );
    follow_latency(
        "tail -F -n 0 FILE | grep --line-buffered",
        |p| format!("tail -F -n 0 '{p}' 2>/dev/null | grep --line-buffered python"),
        2000,
    );

    println!("\nfollow throughput (writer appends as fast as it can)");
    let n = env_num("COPIPE_BENCH_FOLLOW_LINES", 5_000_000);
    follow_throughput(
        "copipe tail -F -n 0 FILE -e python",
        |p| format!("exec {BIN} tail -F -n 0 '{p}' -e python"),
        n,
    );
    follow_throughput(
        "tail -F -n 0 FILE | grep --line-buffered",
        |p| format!("tail -F -n 0 '{p}' 2>/dev/null | grep --line-buffered python"),
        n,
    );
}
