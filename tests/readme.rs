//! Every command-line example in README.md runs here, with the real binary
//! on the shipped data, and exits as the README says.
//!
//! The README is the table: nothing here lists its commands, so an edited
//! README is tested as it stands. The rules (keep them in step with the
//! README's examples):
//!
//! - A command is a line of a ```` ```sh ```` block (or `bash`, `shell`,
//!   `console`, where only `$ ` lines are commands) that starts with
//!   `copipe `, or with `cargo run --release -- ` / `cargo run -- ` (run as
//!   `copipe ...`). A line ending in `\` continues on the next. Other lines
//!   (`cargo test`, `cargo install ...`) are not run.
//! - Each block runs in a fresh directory holding `data/` (the shipped
//!   samples), with this build's `copipe` first on the `PATH`, `HOME` set
//!   to that directory, standard input from `/dev/null`, through
//!   `bash -o pipefail -c LINE`. A block's lines run in order, so a line may
//!   read what the one before it wrote.
//! - A command must exit 0, or N when its line says `# exit N`.
//! - A line saying `# runs until interrupted` runs forever: it must still be
//!   running after a few seconds, and is then stopped. A line ending in `&`
//!   runs in the background while the rest of its block runs, and must
//!   still be running when the block ends.
//! - A ```` ```text ```` block right after a block of one command shows
//!   what that command prints: its lines must be the first lines of the
//!   output, in order; a shown line ending in `...` is a prefix of the real
//!   one, and a line `...` stands for any number of lines.
//! - `<!-- readme-test: pending (WHY) -->` before a block: its commands run
//!   and what they did is printed, but a failure does not fail the test
//!   (the feature is not merged yet). Remove the marker once it is.
//!   `<!-- readme-test: skip (WHY) -->`: the block is not run (it needs a
//!   server), and is listed.
//!
//! A failure names the README line and the command, with its exit status
//! and the end of its stderr.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a command that terminates may take before it counts as hung.
const FINISH_WITHIN: Duration = Duration::from_secs(120);
/// How long a command that runs forever must keep running.
const KEEPS_RUNNING: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Run,
    Pending,
    Skip,
}

#[derive(Debug)]
struct Example {
    /// 1-based line of the README where the command starts.
    line: usize,
    /// The command as bash runs it.
    command: String,
    /// The expected exit status, for a command that terminates.
    exit: i32,
    forever: bool,
    background: bool,
}

#[derive(Debug)]
struct Block {
    marker: Marker,
    reason: String,
    examples: Vec<Example>,
    /// The block's other shell lines (line, text), which are not run.
    not_run: Vec<(usize, String)>,
    /// The output shown right after the block, when it has one command.
    shown: Option<Vec<String>>,
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).expect("read README.md")
}

/// `cargo run [--release] -- ARGS` is `copipe ARGS`; other commands are
/// returned as they are, and anything else is `None`.
fn as_copipe(line: &str) -> Option<String> {
    for prefix in ["cargo run --release -- ", "cargo run -- "] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return Some(format!("copipe {rest}"));
        }
    }
    line.starts_with("copipe ").then(|| line.to_string())
}

fn expected_exit(line: &str) -> i32 {
    let Some(at) = line.find("# exit ") else {
        return 0;
    };
    let digits: String = line[at + "# exit ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("README: `# exit` without a number: {line}"))
}

fn parse(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks: Vec<Block> = Vec::new();
    let mut marker = (Marker::Run, String::new());
    let mut i = 0;
    // The index in `blocks` of the sh block that ended just before, while
    // only blank lines have followed it.
    let mut just_closed: Option<usize> = None;
    while i < lines.len() {
        let line = lines[i].trim();
        if let Some(rest) = line.strip_prefix("<!-- readme-test:") {
            let rest = rest.trim_end_matches("-->").trim();
            let (kind, why) = rest.split_once(' ').unwrap_or((rest, ""));
            marker = match kind {
                "pending" => (Marker::Pending, why.to_string()),
                "skip" => (Marker::Skip, why.to_string()),
                other => panic!(
                    "README line {}: unknown readme-test marker `{other}`",
                    i + 1
                ),
            };
            i += 1;
            continue;
        }
        let Some(lang) = line.strip_prefix("```") else {
            if !line.is_empty() {
                just_closed = None;
            }
            i += 1;
            continue;
        };
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            body.push((i + 1, lines[i]));
            i += 1;
        }
        i += 1; // the closing fence
        match lang.trim() {
            lang @ ("sh" | "bash" | "shell" | "console") => {
                // In a console block only the `$ ` lines are commands; the
                // rest is what they print.
                let console = lang == "console";
                let mut block = Block {
                    marker: marker.0,
                    reason: std::mem::take(&mut marker.1),
                    examples: Vec::new(),
                    not_run: Vec::new(),
                    shown: None,
                };
                marker.0 = Marker::Run;
                let mut j = 0;
                while j < body.len() {
                    let (at, first) = body[j];
                    let first = first.trim();
                    let prompted = first.strip_prefix("$ ");
                    if console && prompted.is_none() {
                        j += 1;
                        continue;
                    }
                    let mut command = prompted.unwrap_or(first).to_string();
                    while command.ends_with('\\') && j + 1 < body.len() {
                        command.pop();
                        j += 1;
                        command.push_str(body[j].1.trim());
                    }
                    j += 1;
                    if command.is_empty() || command.starts_with('#') {
                        continue;
                    }
                    match as_copipe(&command) {
                        Some(command) => {
                            let background = command.trim_end().ends_with('&');
                            block.examples.push(Example {
                                line: at,
                                exit: expected_exit(&command),
                                forever: command.contains("# runs until interrupted"),
                                background,
                                command,
                            });
                        }
                        None => block.not_run.push((at, command)),
                    }
                }
                blocks.push(block);
                just_closed = Some(blocks.len() - 1);
                continue;
            }
            "text" => {
                if let Some(b) = just_closed.map(|k| &mut blocks[k]) {
                    if b.examples.len() == 1 {
                        b.shown =
                            Some(body.iter().map(|(_, l)| l.trim_end().to_string()).collect());
                    }
                }
            }
            _ => {}
        }
        just_closed = None;
    }
    blocks
}

/// Checks that `shown` are the first lines of `output` (see the module
/// doc), returning what differs.
fn compare_shown(shown: &[String], output: &str) -> Result<(), String> {
    let out: Vec<&str> = output.lines().collect();
    let mut k = 0;
    let mut skipping = false;
    for want in shown.iter().filter(|l| !l.is_empty()) {
        if want == "..." {
            skipping = true;
            continue;
        }
        let matches = |got: &str| match want.strip_suffix("...") {
            Some(prefix) => got.starts_with(prefix.trim_end()),
            None => got == want,
        };
        if skipping {
            match out[k..].iter().position(|got| matches(got)) {
                Some(n) => k += n,
                None => return Err(format!("no later output line is `{want}`")),
            }
        } else if k >= out.len() || !matches(out[k]) {
            return Err(format!(
                "output line {} is `{}`, the README shows `{want}`",
                k + 1,
                out.get(k).unwrap_or(&"(end of output)")
            ));
        }
        k += 1;
        skipping = false;
    }
    Ok(())
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_copipe"))
        .parent()
        .expect("the binary's directory")
        .to_path_buf()
}

fn spawn(ex: &Example, dir: &Path, logs: &Path, n: usize) -> Child {
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let stdout = std::fs::File::create(logs.join(format!("{n}.out"))).unwrap();
    let stderr = std::fs::File::create(logs.join(format!("{n}.err"))).unwrap();
    let command = ex.command.trim_end().trim_end_matches('&');
    let mut cmd = Command::new("bash");
    cmd.args(["--norc", "--noprofile", "-o", "pipefail", "-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // Its own process group, so that stopping it stops the whole pipeline.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().expect("run bash")
}

/// Waits for `child` up to `limit`; `None` if it is still running.
fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if start.elapsed() >= limit {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Stops the process group of `child` (SIGTERM, then SIGKILL) and reaps it.
fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    for signal in ["-TERM", "-KILL"] {
        let _ = Command::new("kill")
            .args([signal, "--", &group])
            .stderr(Stdio::null())
            .status();
        if wait_for(child, Duration::from_secs(5)).is_some() {
            return;
        }
    }
}

fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n    ")
}

/// Runs one block; returns one message per command that did not do what
/// the README says.
fn run_block(block: &Block) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let logs = tempfile::tempdir().expect("temporary directory");
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data"),
        dir.path().join("data"),
    )
    .expect("link data/");
    let mut failures = Vec::new();
    let mut background: Vec<(usize, &Example, Child)> = Vec::new();
    for (n, ex) in block.examples.iter().enumerate() {
        let mut child = spawn(ex, dir.path(), logs.path(), n);
        let err = logs.path().join(format!("{n}.err"));
        let fail = |what: String| {
            format!(
                "README.md:{}: `{}`: {what}\n    stderr: {}",
                ex.line,
                ex.command,
                tail_of(&err)
            )
        };
        if ex.background {
            background.push((n, ex, child));
            continue;
        }
        let limit = if ex.forever {
            KEEPS_RUNNING
        } else {
            FINISH_WITHIN
        };
        match (wait_for(&mut child, limit), ex.forever) {
            (None, true) => stop(&mut child),
            (None, false) => {
                stop(&mut child);
                failures.push(fail(format!("did not finish within {FINISH_WITHIN:?}")));
            }
            (Some(status), true) => failures.push(fail(format!(
                "should run until interrupted, but ended with {status}"
            ))),
            (Some(status), false) => {
                if status.code() != Some(ex.exit) {
                    failures.push(fail(format!(
                        "exited with {status}, the README says {}",
                        ex.exit
                    )));
                } else if let Some(shown) = &block.shown {
                    let out = std::fs::read_to_string(logs.path().join(format!("{n}.out")))
                        .unwrap_or_default();
                    if let Err(diff) = compare_shown(shown, &out) {
                        failures.push(fail(format!(
                            "prints other lines than the README shows: {diff}"
                        )));
                    }
                }
            }
        }
        if std::fs::read_to_string(&err)
            .unwrap_or_default()
            .contains("panicked")
        {
            failures.push(fail("panicked".to_string()));
        }
    }
    for (n, ex, mut child) in background {
        if let Some(status) = child.try_wait().expect("wait") {
            failures.push(format!(
                "README.md:{}: `{}`: should run in the background until its block ends, but ended with {status}\n    stderr: {}",
                ex.line,
                ex.command,
                tail_of(&logs.path().join(format!("{n}.err")))
            ));
        }
        stop(&mut child);
    }
    failures
}

#[test]
fn every_readme_command_runs_as_documented() {
    let blocks = parse(&readme());
    let mut failures = Vec::new();
    let mut report = String::new();
    let mut ran = 0;
    for block in &blocks {
        match block.marker {
            Marker::Skip => {
                for ex in &block.examples {
                    let _ = writeln!(
                        report,
                        "skipped {}: README.md:{}: {}",
                        block.reason, ex.line, ex.command
                    );
                }
            }
            Marker::Pending => {
                for failure in run_block(block) {
                    let _ = writeln!(report, "pending {}: {failure}", block.reason);
                }
                ran += block.examples.len();
            }
            Marker::Run => {
                failures.extend(run_block(block));
                ran += block.examples.len();
            }
        }
        for (at, line) in &block.not_run {
            let _ = writeln!(
                report,
                "not run (not a copipe command): README.md:{at}: {line}"
            );
        }
    }
    eprintln!("{ran} README commands run\n{report}");
    assert!(
        ran >= 10,
        "only {ran} commands found in README.md: is the parser still right?"
    );
    assert!(
        failures.is_empty(),
        "{} README command(s) do not do what the README says:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_readme_shows_every_subcommand() {
    let help = Command::new(env!("CARGO_BIN_EXE_copipe"))
        .arg("--help")
        .output()
        .expect("run copipe --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let blocks = parse(&readme());
    let commands: Vec<&str> = blocks
        .iter()
        .flat_map(|b| &b.examples)
        .map(|e| e.command.as_str())
        .collect();
    let subcommands = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help");
    let mut missing = Vec::new();
    for sub in subcommands {
        let used = commands.iter().any(|c| {
            c.split(['|', '&', ';'])
                .any(|part| part.split_whitespace().take(2).eq(["copipe", sub]))
        });
        if !used {
            missing.push(sub);
        }
    }
    assert!(
        missing.is_empty(),
        "README.md has no example of `copipe {}` (listed by copipe --help)",
        missing.join("`, `copipe ")
    );
}

#[test]
fn the_rules_read_the_readme_as_meant() {
    let blocks = parse(
        "<!-- readme-test: pending (later) -->\n\
         ```sh\n\
         cargo run --release -- buses --route 22\n\
         ```\n\
         \n\
         ```text\n\
         22,3152,...\n\
         ...\n\
         ```\n\
         ```sh\n\
         copipe tail -n +1 f \\\n  -e x   # exit 1: none\n\
         copipe gen log --rate 9 -o l &\n\
         copipe tail -F l   # runs until interrupted\n\
         cargo test\n\
         ```\n",
    );
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].marker, Marker::Pending);
    assert_eq!(blocks[0].examples[0].command, "copipe buses --route 22");
    assert_eq!(
        blocks[0].shown.as_deref(),
        Some(&["22,3152,...".to_string(), "...".to_string()][..])
    );
    assert_eq!(blocks[1].marker, Marker::Run);
    let ex = &blocks[1].examples;
    assert_eq!(ex[0].command, "copipe tail -n +1 f -e x   # exit 1: none");
    assert_eq!(
        (ex[0].exit, ex[0].forever, ex[0].background),
        (1, false, false)
    );
    assert!(ex[1].background && ex[2].forever);
    assert_eq!(blocks[1].not_run[0].1, "cargo test");
    assert!(blocks[1].shown.is_none());

    let console =
        parse("```console\n$ copipe echo --port 0\ncopipe echo: listening on 127.0.0.1:1\n```\n");
    assert_eq!(console[0].examples.len(), 1);
    assert_eq!(console[0].examples[0].command, "copipe echo --port 0");

    let out = "22,3152,\"North Bound\",41.8\n22,4431,x\n22,1980,y\n";
    assert!(compare_shown(&["22,3152,...".into(), "...".into()], out).is_ok());
    assert!(compare_shown(&["...".into(), "22,1980,y".into()], out).is_ok());
    assert!(compare_shown(&["22,4431,x".into()], out).is_err());
}
