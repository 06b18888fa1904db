//! Many patterns, one matcher (issue 13 item 6): `copipe tail -n +1 FILE`
//! against ripgrep and `LC_ALL=C grep`, alternated in one run, each writing
//! into a pipe that this program reads (never /dev/null: GNU grep stops at
//! the first match there).
//!
//! Cases, on a generated 50 MiB access log (`copipe gen log --seed 1`) and
//! patterns made from the log's own vocabulary, so that some match:
//!
//! - **ipv4**: 1,000 IPv4 addresses as regexes, dots unescaped (`--file`);
//! - **ipv4-escaped**: the same with `\.`;
//! - **fixed**: 10,000 fixed strings (`--fixed-strings --file`, `rg -F -f`,
//!   `grep -F -f`);
//! - **literal-1g**: one literal (`python`) on a 1 GiB log, with main's
//!   binary too (`COPIPE_BASE_BIN`, default `/work/base/copipe-main` or
//!   `/work/base/copipe`, the first that exists): the plain path before
//!   and after. Targets (issue 13 item 6): copipe at most 1.0x ripgrep's
//!   wall time, GNU grep at least 3x copipe's; both are printed.
//!
//! For each tool: median wall time, median CPU time (user+sys of the child,
//! from `getrusage(RUSAGE_CHILDREN)`), the ratio of medians to ripgrep, and
//! a hash of the output, which must equal GNU grep's (the bench fails
//! otherwise). The load (`/proc/loadavg`) is printed before and after.
//!
//! Run with `cargo bench --bench grep_many`. Environment:
//! `COPIPE_BIN` (the copipe to time; default the bench profile's build,
//! give `target/release/copipe` for the release one), `COPIPE_BENCH_RUNS`
//! (default 5), `COPIPE_BENCH_MB` (the small log, default 50),
//! `COPIPE_BENCH_BIG_MB` (default 1024; 0 skips literal-1g),
//! `COPIPE_BENCH_CASES` (comma-separated case names, default all).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn copipe_bin() -> PathBuf {
    std::env::var_os("COPIPE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_copipe")))
}

/// `target/<profile>/bench-data` (shared with `benches/tail.rs`).
fn data_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("bench exe lives in target/<profile>/deps")
        .join("bench-data");
    fs::create_dir_all(&dir).expect("create bench-data");
    dir
}

/// The seed-1 access log of `mb` MiB (the name `benches/tail.rs` uses).
fn generated_log(mb: u64) -> PathBuf {
    let path = data_dir().join(format!("access-{mb}mb.log"));
    if fs::metadata(&path).is_ok_and(|m| m.len() >= mb << 20) {
        return path;
    }
    eprintln!("generating {} ({mb} MiB, once)...", path.display());
    let status = Command::new(copipe_bin())
        .args(["gen", "log", "--mb", &mb.to_string(), "--seed", "1", "-o"])
        .arg(&path)
        .status()
        .expect("run copipe gen log");
    assert!(status.success(), "copipe gen log failed");
    path
}

/// A small deterministic generator (xorshift), so the patterns are the
/// same from run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The log's vocabulary from its first MiB: client addresses and the
/// words of each line (split on space and `"`), with their counts.
fn vocabulary(log: &Path) -> (Vec<String>, BTreeMap<String, u64>) {
    let mut head = vec![0; 1 << 20];
    let n = fs::File::open(log)
        .and_then(|mut f| f.read(&mut head))
        .expect("read log");
    let text = String::from_utf8_lossy(&head[..n]);
    let mut ips = BTreeSet::new();
    let mut words = BTreeMap::new();
    for line in text.lines() {
        if let Some(ip) = line.split(' ').next() {
            if ip.split('.').count() == 4 {
                ips.insert(ip.to_string());
            }
        }
        for w in line.split([' ', '"']).filter(|w| w.len() >= 4) {
            *words.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    (ips.into_iter().collect(), words)
}

/// 1,000 addresses: a quarter of the log's own (they match), the rest
/// near misses made from them (one octet changed), so the matcher sees
/// many shared prefixes.
fn ipv4_patterns(ips: &[String], rng: &mut Rng) -> Vec<String> {
    let mut out = BTreeSet::new();
    for ip in ips.iter().take(ips.len().div_ceil(4)) {
        out.insert(ip.clone());
    }
    while out.len() < 1000 {
        let base = &ips[rng.below(ips.len() as u64) as usize];
        let mut octets: Vec<String> = base.split('.').map(str::to_string).collect();
        let i = rng.below(4) as usize;
        octets[i] = rng.below(256).to_string();
        let ip = octets.join(".");
        if !ips.contains(&ip) {
            out.insert(ip);
        }
    }
    out.into_iter().collect()
}

/// 10,000 fixed strings: the log's three rarest words (they match a few
/// lines), the rest its words with one character changed (near misses).
fn fixed_patterns(words: &BTreeMap<String, u64>, rng: &mut Rng) -> Vec<String> {
    let mut by_count: Vec<(&String, &u64)> = words.iter().collect();
    by_count.sort_by_key(|(w, c)| (**c, (*w).clone()));
    let vocab: Vec<&String> = words.keys().collect();
    let mut out: BTreeSet<String> = by_count.iter().take(3).map(|(w, _)| (*w).clone()).collect();
    while out.len() < 10_000 {
        let base = vocab[rng.below(vocab.len() as u64) as usize];
        let mut chars: Vec<char> = base.chars().collect();
        let i = rng.below(chars.len() as u64) as usize;
        chars[i] = char::from(b'a' + rng.below(26) as u8);
        let w: String = chars.into_iter().collect();
        if !words.contains_key(&w) {
            out.insert(w);
        }
    }
    out.into_iter().collect()
}

/// One timed run: wall seconds, CPU seconds (user+sys), output bytes and
/// hash (SipHash), exit status.
struct Run {
    wall: f64,
    cpu: f64,
    bytes: u64,
    hash: u64,
    code: Option<i32>,
}

fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_CHILDREN is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn run(argv: &[String]) -> Run {
    let cpu0 = children_cpu();
    let start = Instant::now();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", argv[0]));
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = vec![0; 1 << 17];
    let mut bytes = 0u64;
    // std's SipHash, fed the bytes as a stream (the result does not depend
    // on how the reads fall). Build this bench in release: in a debug
    // build the hashing (inlined into this crate) is slow enough to limit
    // the tools' wall time on the 1 GiB case's 88 MB of output.
    let mut hasher = std::hash::DefaultHasher::new();
    loop {
        let n = out.read(&mut buf).expect("read child output");
        if n == 0 {
            break;
        }
        bytes += n as u64;
        std::hash::Hasher::write(&mut hasher, &buf[..n]);
    }
    let hash = std::hash::Hasher::finish(&hasher);
    let status = child.wait().expect("wait");
    Run {
        wall: start.elapsed().as_secs_f64(),
        cpu: children_cpu() - cpu0,
        bytes,
        hash,
        code: status.code(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Times each tool of `tools` (name, argv) `runs` times, alternated, and
/// prints medians and ratios to `rg` (and, when `big`, the literal-1g
/// targets met or not). Returns false when an output differs
/// from grep's.
fn case(name: &str, tools: &[(&str, Vec<String>)], runs: u64, big: bool) -> bool {
    println!("\n## {name}   (load {})", load());
    let mut results: Vec<Vec<Run>> = tools.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (i, (_, argv)) in tools.iter().enumerate() {
            results[i].push(run(argv));
        }
    }
    let med = |i: usize| {
        (
            median(results[i].iter().map(|r| r.wall).collect()),
            median(results[i].iter().map(|r| r.cpu).collect()),
        )
    };
    let rg = tools.iter().position(|(n, _)| *n == "rg").map(med);
    let grep = tools.iter().position(|(n, _)| *n == "grep");
    let mut same = true;
    for (i, (tool, _)) in tools.iter().enumerate() {
        let (wall, cpu) = med(i);
        let r = &results[i][0];
        let vs = |x: Option<(f64, f64)>| {
            x.map_or(String::new(), |(w, c)| {
                format!("  {:.2}x rg wall, {:.2}x rg cpu", wall / w, cpu / c)
            })
        };
        let matches_grep = match grep {
            Some(g) => {
                let want = &results[g][0];
                let ok = results[i]
                    .iter()
                    .all(|r| r.hash == want.hash && r.bytes == want.bytes);
                same &= ok;
                if ok {
                    "output = grep's"
                } else {
                    "OUTPUT DIFFERS FROM GREP'S"
                }
            }
            None => "",
        };
        println!(
            "{tool:>12}: wall {wall:7.3} s  cpu {cpu:7.3} s  exit {:?}  {} bytes  {matches_grep}{}",
            r.code,
            r.bytes,
            vs(rg),
        );
    }
    if let Some(g) = grep {
        let (gw, gc) = med(g);
        for (i, (tool, _)) in tools.iter().enumerate() {
            if tool.starts_with("copipe") {
                let (w, c) = med(i);
                println!(
                    "{tool:>12}: GNU grep takes {:.2}x its wall time ({:.2}x its cpu){}",
                    gw / w,
                    gc / c,
                    if big {
                        if gw / w >= 3.0 {
                            "  >= 3x: met"
                        } else {
                            "  >= 3x: NOT met"
                        }
                    } else {
                        ""
                    },
                );
                if let (true, Some((rw, _))) = (big, rg) {
                    println!(
                        "{tool:>12}: {:.2}x rg wall{}",
                        w / rw,
                        if w / rw <= 1.0 {
                            "  <= 1.0x: met"
                        } else {
                            "  <= 1.0x: NOT met"
                        }
                    );
                }
            }
        }
    }
    println!("  (load after: {})", load());
    same
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn main() {
    let runs = env_num("COPIPE_BENCH_RUNS", 5).max(1);
    let mb = env_num("COPIPE_BENCH_MB", 50);
    let big_mb = env_num("COPIPE_BENCH_BIG_MB", 1024);
    let cases = std::env::var("COPIPE_BENCH_CASES").unwrap_or_default();
    let wanted = |c: &str| cases.is_empty() || cases.split(',').any(|x| x == c);
    let bin = copipe_bin().display().to_string();
    let base = std::env::var("COPIPE_BASE_BIN").ok().or_else(|| {
        ["/work/base/copipe-main", "/work/base/copipe"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .map(String::from)
    });
    println!("copipe: {bin}\nbase:   {base:?}\nruns: {runs}, medians");
    let log = generated_log(mb);
    let logs = log.display().to_string();
    let (ips, words) = vocabulary(&log);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let dir = data_dir();
    let write = |name: &str, pats: &[String]| {
        let p = dir.join(name);
        fs::write(&p, pats.join("\n") + "\n").expect("write patterns");
        p.display().to_string()
    };
    let ipv4 = ipv4_patterns(&ips, &mut rng);
    let ipv4_file = write("ipv4.pat", &ipv4);
    let escaped: Vec<String> = ipv4.iter().map(|p| p.replace('.', r"\.")).collect();
    let escaped_file = write("ipv4-escaped.pat", &escaped);
    let fixed_file = write("fixed.pat", &fixed_patterns(&words, &mut rng));
    let mut ok = true;
    for (name, file, fixed) in [
        ("ipv4", &ipv4_file, false),
        ("ipv4-escaped", &escaped_file, false),
        ("fixed", &fixed_file, true),
    ] {
        if !wanted(name) {
            continue;
        }
        let f = if fixed { vec!["-F"] } else { vec![] };
        let mut copipe = strings(&[&bin, "tail", "-n", "+1", &logs]);
        if fixed {
            copipe.push("--fixed-strings".into());
        }
        copipe.extend(strings(&["--file", file]));
        let mut rg = strings(&["rg", "--no-config", "--no-line-number", "--color=never"]);
        rg.extend(strings(&f));
        rg.extend(strings(&["-f", file, &logs]));
        let mut grep = strings(&["grep"]);
        grep.extend(strings(&f));
        grep.extend(strings(&["-f", file, &logs]));
        ok &= case(
            &format!("{name}: {mb} MiB log, patterns {file}"),
            &[("copipe", copipe), ("rg", rg), ("grep", grep)],
            runs,
            false,
        );
    }
    if big_mb > 0 && wanted("literal-1g") {
        let big = generated_log(big_mb).display().to_string();
        let mut tools = vec![(
            "copipe",
            strings(&[&bin, "tail", "-n", "+1", &big, "-e", "python"]),
        )];
        if let Some(b) = &base {
            tools.push((
                "copipe-base",
                strings(&[b, "tail", "-n", "+1", &big, "-e", "python"]),
            ));
        }
        tools.push((
            "rg",
            strings(&[
                "rg",
                "--no-config",
                "--no-line-number",
                "--color=never",
                "python",
                &big,
            ]),
        ));
        tools.push(("grep", strings(&["grep", "python", &big])));
        ok &= case(
            &format!("literal-1g: {big_mb} MiB log, -e python"),
            &tools,
            runs,
            true,
        );
    }
    assert!(ok, "an output differs from GNU grep's");
}
