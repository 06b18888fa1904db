//! `copipe completions SHELL` and `copipe man`, the extras the README's
//! install section tells users to put in place: run the real binary and
//! check that what it prints loads in the shell and renders in `man`.
//!
//! The expected subcommands are read from `copipe --help`, so a subcommand
//! added later is checked without a change here.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn copipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_copipe"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run copipe")
}

fn stdout_of(args: &[&str]) -> String {
    let out = copipe(args);
    assert!(
        out.status.success(),
        "copipe {} exited with {}: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The subcommands `copipe --help` lists (hidden ones are not listed),
/// without clap's own `help`.
fn subcommands() -> Vec<String> {
    let help = stdout_of(&["--help"]);
    let list: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // A name is indented by two spaces; a wrapped description by more.
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(
        list.iter().any(|s| s == "tail") && list.iter().any(|s| s == "man"),
        "cannot read the subcommands from `copipe --help`:\n{help}"
    );
    list
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What bash offers after `copipe ` + `word`, with the script loaded as a
/// user's shell would load it.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {script}; COMP_WORDS=({line}); COMP_CWORD={cword}; \
         COMP_LINE='{line}'; COMP_POINT={point}; \
         _copipe copipe {cur} {prev}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display(),
        cword = words.len() - 1,
        point = line.len(),
        cur = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash could not complete `{line}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_loads_and_offers_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("copipe.bash");
    std::fs::write(&script, stdout_of(&["completions", "bash"])).unwrap();

    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "bash -n refuses the completion script: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );

    let offered = bash_complete(&script, &["copipe", "''"]);
    for sub in subcommands() {
        assert!(
            offered.contains(&sub),
            "`copipe <TAB>` does not offer `{sub}`: {offered:?}"
        );
    }
    assert!(
        !offered.iter().any(|w| w == "worker"),
        "the hidden `worker` subcommand is offered: {offered:?}"
    );
    // Options of a subcommand, from its clap definition.
    let tail = bash_complete(&script, &["copipe", "tail", "--re"]);
    assert!(tail.contains(&"--regexp".to_owned()), "{tail:?}");
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    let subs = subcommands();
    for (shell, header, checker) in [
        ("zsh", "#compdef copipe", "zsh"),
        ("fish", "complete -c copipe", "fish"),
    ] {
        let script = stdout_of(&["completions", shell]);
        assert!(script.contains(header), "{shell}: no `{header}`");
        for sub in &subs {
            assert!(
                script.contains(sub.as_str()),
                "{shell}: subcommand `{sub}` missing"
            );
        }
        assert!(!script.contains("__subcmd__worker") && !script.contains("-a \"worker\""));
        if have(checker) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("copipe.completion");
            std::fs::write(&path, &script).unwrap();
            let status = Command::new(checker).arg("-n").arg(&path).status().unwrap();
            assert!(status.success(), "{checker} -n refuses the {shell} script");
        } else {
            eprintln!("{checker} is not installed: the {shell} script's syntax is not checked");
        }
    }
}

#[test]
fn completions_refuse_an_unknown_shell() {
    let out = copipe(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcsh"));
}

#[test]
fn man_page_has_its_sections_and_lists_every_subcommand() {
    let page = stdout_of(&["man"]);
    for section in [
        ".TH copipe 1",
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH SUBCOMMANDS",
    ] {
        assert!(page.contains(section), "copipe(1) lacks `{section}`");
    }
    for sub in subcommands() {
        assert!(
            page.contains(&format!("copipe\\-{}(1)", sub.replace('-', "\\-"))),
            "copipe(1) does not list copipe-{sub}(1)"
        );
    }
    assert!(
        !page.contains("worker("),
        "copipe(1) lists the hidden worker"
    );

    let tail = stdout_of(&["man", "tail"]);
    assert!(tail.contains(".TH copipe\\-tail 1") || tail.contains(".TH copipe-tail 1"));
    assert!(tail.contains(".SH OPTIONS") && tail.contains("\\-\\-regexp"));

    if have("man") {
        for args in [&["man"][..], &["man", "tail"]] {
            let rendered = Command::new("sh")
                .args(["-c", "\"$0\" \"$@\" | MANWIDTH=80 man -l - 2>&1"])
                .arg(env!("CARGO_BIN_EXE_copipe"))
                .args(args)
                .env("MANPAGER", "cat")
                .env("PAGER", "cat")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&rendered.stdout);
            assert!(rendered.status.success(), "man -l failed: {text}");
            assert!(
                text.contains("SYNOPSIS") && text.contains("OPTIONS"),
                "`copipe {} | man -l -` did not render: {text}",
                args.join(" ")
            );
            assert!(!text.contains("troff:"), "groff warns: {text}");
        }
    } else {
        eprintln!("man is not installed: the pages' rendering is not checked");
    }
}

#[test]
fn man_dir_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    stdout_of(&["man", "--dir", out_dir.to_str().unwrap()]);
    assert!(out_dir.join("copipe.1").is_file());
    for sub in subcommands() {
        let page = out_dir.join(format!("copipe-{sub}.1"));
        assert!(page.is_file(), "{} was not written", page.display());
    }
    // Nested subcommands get their own page too.
    assert!(out_dir.join("copipe-gen-log.1").is_file());
    assert!(!out_dir.join("copipe-worker.1").exists());
}

#[test]
fn man_names_the_unknown_subcommand() {
    let out = copipe(&["man", "no-such"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no subcommand `no-such`") && err.contains("tail"),
        "{err}"
    );
}
