//! `copipe completions SHELL` and `copipe man`: shell completion scripts and
//! manual pages, generated from the CLI's own clap definitions.
//!
//! Both read the whole command tree at run time (`Cli::command()`), so a
//! subcommand or option added anywhere in `bin/` appears in them without a
//! change here. Hidden subcommands (`worker`) are left out.

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory as _;

/// Arguments of `copipe completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Install, for example:
  bash: copipe completions bash > ~/.local/share/bash-completion/completions/copipe
  zsh:  copipe completions zsh > ~/.zfunc/_copipe   (with fpath+=~/.zfunc before compinit)
  fish: copipe completions fish > ~/.config/fish/completions/copipe.fish")]
pub(crate) struct Args {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Writes the completion script for `args.shell` to stdout.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cmd = visible(crate::Cli::command());
    // clap_complete panics when its writer fails (`| head`), so the script
    // is made in memory and written here, where a closed pipe is quiet.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "copipe", &mut script);
    let mut out = io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("write error: stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// The top of the command tree without its hidden subcommands (`worker`),
/// which clap_complete would offer otherwise. clap cannot remove a
/// subcommand, so the top level is built again around the visible ones;
/// it has no settings of its own that a completion script shows.
fn visible(full: clap::Command) -> clap::Command {
    let mut top = clap::Command::new("copipe")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = full.get_about() {
        top = top.about(about.clone());
    }
    top
}

/// Arguments of `copipe man`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  copipe man | man -l -            read copipe(1)
  copipe man tail | man -l -       read copipe-tail(1)
  copipe man --dir ~/.local/share/man/man1   install every page")]
pub(crate) struct ManArgs {
    /// The subcommand whose page to print (`tail`, `gen buses`, ...);
    /// without it, copipe(1), which lists the subcommands.
    #[arg(conflicts_with = "dir")]
    subcommand: Vec<String>,
    /// Write copipe.1 and one page per subcommand (copipe-tail.1, ...)
    /// into DIR instead of printing one page.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints one manual page (roff) to stdout, or writes them all to a
/// directory.
pub(crate) fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    // `build` fills in what the pages show: each subcommand's display name
    // (`copipe-tail`) and the `copipe tail` in its synopsis.
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create directory", dir.display()))?;
        clap_mangen::generate_to(cmd, &dir)
            .with_context(|| format!("{}: cannot write the manual pages", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut page = cmd;
    for name in &args.subcommand {
        let Some(sub) = page
            .get_subcommands()
            .find(|s| !s.is_hide_set() && s.get_name() == name)
        else {
            let known: Vec<&str> = page
                .get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(|s| s.get_name())
                .collect();
            anyhow::bail!(
                "no subcommand `{}` (known: {})",
                args.subcommand.join(" "),
                known.join(", ")
            );
        };
        page = sub.clone();
    }
    let mut out = io::stdout().lock();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .and_then(|()| out.flush())
        .context("write error: stdout")?;
    Ok(ExitCode::SUCCESS)
}
