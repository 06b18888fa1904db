//! The line selection options shared by `copipe tail` and `copipe
//! serve-log` (-e, --file, --fixed-strings, -x, --drop, -i, -v, -w): one
//! clap definition, flattened into both commands' arguments, and one place
//! where the patterns and the plain selection chain are built from them.

use std::io;
use std::path::PathBuf;

use copipe::text::Grep;
use copipe::{Error, Result};

/// How `copipe tail` and `copipe serve-log` name standard input.
pub(crate) const STDIN_NAME: &str = "standard input";

/// The selection options.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SelectArgs {
    /// Keep only the lines matching PATTERN (regex crate syntax, on the
    /// line without its newline). Repeat for several: a line matching any
    /// is kept. Without -e every line is kept.
    #[arg(short = 'e', long = "regexp", value_name = "PATTERN")]
    pub(crate) patterns: Vec<String>,
    /// Read patterns from FILE, one a line (`-` is standard input, read to
    /// its end); they add to the -e patterns (grep -f).
    #[arg(long = "file", value_name = "FILE")]
    pub(crate) pattern_files: Vec<PathBuf>,
    /// Patterns are fixed strings, not regexes (grep -F).
    #[arg(long)]
    pub(crate) fixed_strings: bool,
    /// Select only the lines that a pattern matches whole (grep -x).
    #[arg(short = 'x', long)]
    pub(crate) line_regexp: bool,
    /// Drop every line matching PATTERN, whatever else matches (repeat for
    /// several): `-e error --drop healthcheck` is "errors, but not
    /// healthchecks". Applied after -e and -v.
    #[arg(long = "drop", value_name = "PATTERN")]
    pub(crate) drop: Vec<String>,
    /// Ignore ASCII case in patterns.
    #[arg(short = 'i', long)]
    pub(crate) ignore_case: bool,
    /// Keep the lines matching no pattern.
    #[arg(short = 'v', long)]
    pub(crate) invert_match: bool,
    /// Select only the lines where a match is a whole word: no letter,
    /// digit or `_` just before or after it (grep -w).
    #[arg(short = 'w', long)]
    pub(crate) word_regexp: bool,
}

impl SelectArgs {
    /// True when patterns were given (-e or --file).
    pub(crate) fn selects(&self) -> bool {
        !self.patterns.is_empty() || !self.pattern_files.is_empty()
    }

    /// The -e patterns, then those of each --file, escaped with
    /// --fixed-strings and anchored with -x.
    pub(crate) fn all_patterns(&self) -> Result<Vec<String>> {
        let mut all = self.patterns.clone();
        for path in &self.pattern_files {
            let text = if path.as_os_str() == "-" {
                let mut text = Vec::new();
                io::Read::read_to_end(&mut io::stdin().lock(), &mut text)
                    .map_err(|e| Error::from(e).with_path(STDIN_NAME))?;
                text
            } else {
                std::fs::read(path).map_err(|e| Error::from(e).with_path(path))?
            };
            let text = String::from_utf8_lossy(&text);
            all.extend(
                text.lines()
                    .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()),
            );
        }
        for p in &mut all {
            if self.fixed_strings {
                *p = regex::escape(p);
            }
            if self.line_regexp {
                // Text anchors: the grep matches them at the line's bounds.
                *p = format!(r"\A(?:{p})\z");
            }
        }
        if all.is_empty() && !self.pattern_files.is_empty() {
            // An empty patterns file selects nothing (grep -f /dev/null), where
            // no pattern at all is tail (every line): one that never matches.
            all.push(r"\b\B".to_string());
        }
        Ok(all)
    }

    /// The plain selection in front of `target` (everything but -w):
    /// `patterns` (from [`all_patterns`](Self::all_patterns)) with -i and
    /// -v, then --drop, a grep of its own passing the lines that match none
    /// of its patterns (with none, it passes every line).
    pub(crate) fn grep<S>(&self, patterns: Vec<String>, target: S) -> Result<Grep<Grep<S>>> {
        let drop = Grep::builder()
            .patterns(self.drop.iter().cloned())
            .ignore_case(self.ignore_case)
            .invert(!self.drop.is_empty())
            .build(target)?;
        Grep::builder()
            .patterns(patterns)
            .ignore_case(self.ignore_case)
            .invert(self.invert_match)
            .build(drop)
    }
}
