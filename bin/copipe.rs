//! `copipe`: push-based coroutine pipelines from the command line.
//!
//! Each subcommand lives in its own module under `bin/cmd/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Push-based coroutine pipelines: tail -f | grep in one tool, CTA bus XML
/// filtering, data generators and a coroutine echo server.
#[derive(Debug, Parser)]
#[command(name = "copipe", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print (and with -f/-F, follow) the last lines of files, keeping those
    /// that match any pattern: tail -f | grep in one tool.
    Tail(cmd::tail::Args),
    /// Print where the buses are, from a CTA bus tracker XML feed.
    Buses(cmd::buses::Args),
    /// Print any record-shaped XML (RSS items, sitemap urls, dump pages,
    /// bus feeds) as CSV, TSV or JSON lines, with filters.
    Records(cmd::records::Args),
    /// Consume a NATS JetStream stream as a durable pull consumer: each
    /// batch printed (or passed on) before it is acked.
    #[cfg(feature = "nats")]
    Consume(cmd::consume::Args),
    /// Generate realistic test data: Apache access logs or bus XML feeds.
    Gen(cmd::gen::Args),
    /// A concurrent echo server on copipe's task scheduler.
    Echo(cmd::echo::Args),
    /// Follow a file and send each matching line to every TCP client.
    ServeLog(cmd::serve_log::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::Args),
    /// Print the manual page (roff) of copipe or of one subcommand.
    Man(cmd::completions::ManArgs),
    /// Internal: the downstream half of a process bridge (reads frames on
    /// stdin).
    #[command(hide = true)]
    Worker(cmd::worker::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Tail(args) => cmd::tail::run(args),
        Command::Buses(args) => cmd::buses::run(args),
        Command::Records(args) => cmd::records::run(args),
        #[cfg(feature = "nats")]
        Command::Consume(args) => cmd::consume::run(args),
        Command::Gen(args) => cmd::gen::run(args),
        Command::Echo(args) => cmd::echo::run(args),
        Command::ServeLog(args) => cmd::serve_log::run(args),
        Command::Completions(args) => cmd::completions::run(args),
        Command::Man(args) => cmd::completions::man(args),
        Command::Worker(args) => cmd::worker::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if cmd::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("copipe: {err:#}");
            ExitCode::from(2)
        }
    }
}
