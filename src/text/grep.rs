//! [`Grep`]: passes on the lines that match any of several patterns.

use crate::Lifecycle;
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use memchr::{memchr, memchr_iter, memrchr};
use regex::bytes::{Regex, RegexBuilder};
use regex_syntax::hir::{Hir, HirKind, Look};
use std::collections::HashSet;

use super::block::Block;
use super::literal::Literal;
use crate::error::{Error, ErrorKind, Result};
use crate::stage::{Flow, Stage};

/// How lines are matched.
// One per grep, never in a collection: the size difference costs nothing,
// and keeping the finder inline saves an indirection on every search.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Matcher {
    /// No patterns: every line matches (plain `tail`).
    All,
    /// One case-sensitive literal: [`Literal`] (`memmem`, with a direct
    /// path for short lines) over the line or the block.
    Literal(Literal),
    /// Several patterns that are all literals (after `--fixed-strings`, or
    /// regexes without metacharacters), none holding a `\n`: one
    /// Aho-Corasick automaton (with its vectorised Teddy searcher for up to
    /// a few dozen needles) over the line or the block. A literal cannot
    /// cross a line, so a block hit is its line's match, with no check.
    Literals(AhoCorasick),
    /// Every pattern is a whole-line literal (`-x --fixed-strings`, or
    /// `^lit$`): a line matches when it is in the set.
    Lines(LineSet),
    /// Anything else: one regex for a line (without its terminator) and the
    /// same alternation with line anchors for a whole block, whose hits are
    /// widened to their line and checked with `line` when they cross it (or
    /// always, when `inexact`: see [`line_anchors`]).
    Regex {
        line: Regex,
        block: Regex,
        inexact: bool,
    },
}

/// Passes on the lines that match any of its patterns (the seed's `grep`,
/// with `grep -e P1 -e P2 -i -v`).
///
/// Patterns use the [`regex`] crate's syntax and apply to the line without
/// its `\n` terminator. Matching is byte-oriented, like `LC_ALL=C grep`:
/// `.` and `[^x]` match any byte but `\n` (invalid UTF-8 included), `\w`
/// and `-i` are ASCII-only; write `(?u)` in a pattern to get Unicode
/// classes. Patterns compile into one matcher, as ripgrep's do: a single
/// pattern without regex metacharacters is searched with [`Literal`]
/// (`memchr::memmem`) when case matters; several such literals (escaped
/// fixed strings too) with one Aho-Corasick automaton; anything else with
/// one alternation regex, given ripgrep's size limits so that a thousand
/// patterns run on the lazy DFA.
///
/// `Grep` accepts single lines (`&[u8]`) and whole [`Block`]s. On a block it
/// searches the whole chunk at once and widens each hit to its line, which
/// is faster than testing line by line; either way it sends lines (`&[u8]`,
/// terminator included) to its target. A block hit that runs past the end
/// of its line (a pattern such as `a\s*b` can match a newline) is checked
/// against the line alone; after a few such misses in one block, the rest
/// of the block is searched line by line, so such patterns cannot make a
/// search quadratic. With no patterns, every line passes (plain `tail`).
///
/// # Examples
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{Stage, StageExt, sinks::Collect};
/// use copipe::text::Grep;
///
/// let mut out = Collect::new();
/// let mut grep = Grep::builder()
///     .pattern("python")
///     .pattern(r"sw[a-z]g")
///     .ignore_case(true)
///     .build((&mut out).with_owned())?;
/// for line in [&b"GET /Python/\n"[..], b"GET /ply/\n", b"GET /swig/\n"] {
///     grep.send(line)?;
/// }
/// grep.close()?;
/// assert_eq!(out.items(), &[b"GET /Python/\n".to_vec(), b"GET /swig/\n".to_vec()]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Grep<S> {
    matcher: Matcher,
    invert: bool,
    target: S,
}

/// Builds a [`Grep`]. Made by [`Grep::builder`].
#[derive(Debug, Clone, Default)]
pub struct GrepBuilder {
    patterns: Vec<String>,
    ignore_case: bool,
    invert: bool,
}

impl GrepBuilder {
    /// Adds a pattern; a line matching any pattern passes.
    pub fn pattern(mut self, pattern: impl Into<String>) -> GrepBuilder {
        self.patterns.push(pattern.into());
        self
    }

    /// Adds several patterns.
    pub fn patterns<I, P>(mut self, patterns: I) -> GrepBuilder
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.patterns.extend(patterns.into_iter().map(Into::into));
        self
    }

    /// Ignores ASCII case (`grep -i`).
    pub fn ignore_case(mut self, yes: bool) -> GrepBuilder {
        self.ignore_case = yes;
        self
    }

    /// Passes the lines that match *no* pattern (`grep -v`).
    pub fn invert(mut self, yes: bool) -> GrepBuilder {
        self.invert = yes;
        self
    }

    /// Compiles the patterns into a grep sending to `target`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Pattern`] naming the first pattern that does not compile.
    pub fn build<S>(self, target: S) -> Result<Grep<S>> {
        Ok(Grep {
            matcher: self.matcher()?,
            invert: self.invert,
            target,
        })
    }

    fn regex(&self, pattern: &str, multi_line: bool) -> Result<Regex> {
        RegexBuilder::new(pattern)
            .unicode(false)
            .case_insensitive(self.ignore_case)
            .multi_line(multi_line)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Pattern {
                    pattern: pattern.to_string(),
                    message: first_line_of_regex_error(&e),
                })
            })
    }

    fn matcher(&self) -> Result<Matcher> {
        // Parse each pattern alone first (cheap, unlike compiling it), so a
        // syntax error names its pattern; the parsed forms also say which
        // patterns are plain literals.
        let mut literals = Vec::with_capacity(self.patterns.len());
        for p in &self.patterns {
            literals.push(self.literal_of(p)?);
        }
        match self.patterns.as_slice() {
            [] => return Ok(Matcher::All),
            [_] if !self.ignore_case => {
                if let Some(Some(lit)) = literals.first() {
                    if !lit.contains(&b'\n') {
                        return Ok(Matcher::Literal(Literal::new(lit)));
                    }
                }
            }
            _ => {}
        }
        let mut whole = Vec::with_capacity(self.patterns.len());
        for p in &self.patterns {
            match self.whole_line_literal_of(p)? {
                Some(lit) => whole.push(lit),
                None => break,
            }
        }
        if whole.len() == self.patterns.len() {
            return Ok(Matcher::Lines(LineSet::new(whole, self.ignore_case)));
        }
        if literals
            .iter()
            .all(|l| l.as_ref().is_some_and(|l| !l.contains(&b'\n')))
        {
            let needles = literals.into_iter().flatten();
            return Ok(Matcher::Literals(self.aho_corasick(needles)?));
        }
        let alternation = self
            .patterns
            .iter()
            .map(|p| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|");
        // The block regex runs on many lines at once, so every anchor that
        // means "start/end of the text" in a pattern (`\A`, `\z`, and `^`/`$`
        // outside multi-line mode, whatever inline flags say) is rewritten
        // into its line form on the parsed pattern: it then matches at a
        // line's bounds inside a block exactly where it matches the line
        // alone. Everything else about the pattern is kept as written.
        let mut inexact = false;
        let block = self
            .patterns
            .iter()
            .map(|p| {
                self.line_anchored(p, &mut inexact)
                    .map(|h| format!("(?:{h})"))
            })
            .collect::<Result<Vec<_>>>()?
            .join("|");
        let compiled = self
            .regex(&alternation, false)
            .and_then(|line| Ok((line, self.regex(&block, false)?)));
        match compiled {
            Ok((line, block)) => Ok(Matcher::Regex {
                line,
                block,
                inexact,
            }),
            Err(e) => {
                // Too big, most likely: name the first pattern that fails
                // alone, if one does.
                for p in &self.patterns {
                    self.regex(p, false)?;
                }
                Err(e)
            }
        }
    }

    /// The bytes `pattern` matches when it is a plain literal (case
    /// sensitive: `-i` is applied by the searcher), `None` otherwise.
    fn literal_of(&self, pattern: &str) -> Result<Option<Vec<u8>>> {
        let hir = self.parse(pattern, false)?;
        Ok(match hir.into_kind() {
            HirKind::Literal(l) => Some(l.0.into_vec()),
            _ => None,
        })
    }

    /// The bytes a line must equal when `pattern` is a literal anchored at
    /// both ends (`\A(?:lit)\z`, as `-x` writes it, or `^lit$`), `None`
    /// otherwise.
    fn whole_line_literal_of(&self, pattern: &str) -> Result<Option<Vec<u8>>> {
        let hir = self.parse(pattern, false)?;
        let HirKind::Concat(subs) = hir.kind() else {
            return Ok(None);
        };
        Ok(match subs.as_slice() {
            [s, e] if is_text_bounds(s, e) => Some(Vec::new()),
            [s, l, e] if is_text_bounds(s, e) => match l.kind() {
                HirKind::Literal(l) => Some(l.0.to_vec()),
                _ => None,
            },
            _ => None,
        })
    }

    /// One automaton for `needles`: leftmost-first, so a block search finds
    /// the leftmost hit (its line is the first matching one); ASCII case is
    /// ignored with `-i`, as the regex does with Unicode off.
    fn aho_corasick(&self, needles: impl IntoIterator<Item = Vec<u8>>) -> Result<AhoCorasick> {
        let needles: Vec<Vec<u8>> = needles.into_iter().collect();
        // A DFA is fastest to run but costs memory (a few MB for 1,000
        // IPv4 addresses) and build time (8 ms there, 125 ms for 10,000
        // words); on the 50 MiB log it searched 1,000 addresses in about
        // half the contiguous NFA's time (the crate's automatic choice past
        // 100 needles), 10,000 words in about the same. So: a DFA up to
        // 2,000 needles, the automatic choice above.
        let kind = (needles.len() <= 2000).then_some(AhoCorasickKind::DFA);
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .ascii_case_insensitive(self.ignore_case)
            .kind(kind)
            .build(&needles)
            .map_err(|e| {
                Error::new(ErrorKind::Pattern {
                    pattern: String::from_utf8_lossy(needles.first().map_or(&[][..], |n| n))
                        .into_owned(),
                    message: e.to_string(),
                })
            })
    }

    /// `pattern` parsed as the regex would be (bytes, ASCII classes), with
    /// `-i` or without.
    fn parse(&self, pattern: &str, ignore_case: bool) -> Result<Hir> {
        regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .case_insensitive(ignore_case)
            .build()
            .parse(pattern)
            .map_err(|e| {
                // The same one line as the regex crate's error gives.
                let text = e.to_string();
                let message = text
                    .lines()
                    .rev()
                    .find_map(|l| l.strip_prefix("error: "))
                    .unwrap_or(&text)
                    .to_string();
                Error::new(ErrorKind::Pattern {
                    pattern: pattern.to_string(),
                    message,
                })
            })
    }

    /// `pattern` parsed with the grep's flags, its text anchors turned into
    /// line anchors, printed back as a pattern; `*inexact` is set when a
    /// block hit must be checked against its line (see [`line_anchors`]).
    fn line_anchored(&self, pattern: &str, inexact: &mut bool) -> Result<String> {
        Ok(line_anchors(self.parse(pattern, self.ignore_case)?, inexact).to_string())
    }
}

/// `hir` with `Start`/`End` (text anchors) replaced by `StartLF`/`EndLF`
/// (line anchors). Within a block, whose lines end with `\n`, a line
/// anchor holds at a line's bounds exactly where a text anchor holds on the
/// line alone (its terminator removed).
///
/// CRLF line anchors (`(?mR)^`, `(?mR)$`) never hold between a `\r` and a
/// `\n`, so at the end of a line ending in `\r` they hold on the line alone
/// but not inside a block. `$` becomes `(?mR:$)|(?m:$)`, which holds where
/// the line-alone `$` does; `^` becomes `(?mR:^)|(?m:$)`, which holds
/// there too but also at other line ends: `*inexact` is then set, and every
/// block hit must be checked against its line alone.
fn line_anchors(hir: Hir, inexact: &mut bool) -> Hir {
    match hir.into_kind() {
        HirKind::Look(Look::Start) => Hir::look(Look::StartLF),
        HirKind::Look(Look::End) => Hir::look(Look::EndLF),
        HirKind::Look(Look::EndCRLF) => {
            Hir::alternation(vec![Hir::look(Look::EndCRLF), Hir::look(Look::EndLF)])
        }
        HirKind::Look(Look::StartCRLF) => {
            *inexact = true;
            Hir::alternation(vec![Hir::look(Look::StartCRLF), Hir::look(Look::EndLF)])
        }
        HirKind::Repetition(mut r) => {
            let sub = line_anchors(*r.sub, inexact);
            // regex-syntax prints `(?:\r+)?` as `\r+?` (a lazy `+`): a
            // repetition of a repetition is kept apart by a group (a
            // capture: only whole matches are used, so its index is moot).
            r.sub = Box::new(if matches!(sub.kind(), HirKind::Repetition(_)) {
                Hir::capture(regex_syntax::hir::Capture {
                    index: 1,
                    name: None,
                    sub: Box::new(sub),
                })
            } else {
                sub
            });
            Hir::repetition(r)
        }
        HirKind::Capture(mut c) => {
            c.sub = Box::new(line_anchors(*c.sub, inexact));
            Hir::capture(c)
        }
        HirKind::Concat(subs) => {
            Hir::concat(subs.into_iter().map(|h| line_anchors(h, inexact)).collect())
        }
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.into_iter().map(|h| line_anchors(h, inexact)).collect())
        }
        kind @ (HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) | HirKind::Look(_)) => {
            rebuild(kind)
        }
    }
}

/// True when `s` and `e` are the text's start and end (`\A`, `\z`).
fn is_text_bounds(s: &Hir, e: &Hir) -> bool {
    matches!(
        (s.kind(), e.kind()),
        (HirKind::Look(Look::Start), HirKind::Look(Look::End))
    )
}

/// The lines of `-x --fixed-strings`: a hash set, with the shortest and
/// longest length to turn most other lines away at once. A hash of the
/// whole line beats walking an automaton from its start: in a log many
/// lines share a long prefix (an address, a date) with some needle. With
/// `-i` the needles and each line looked up are ASCII-lowercased (the
/// regex's `-i` with Unicode off), a line of up to 512 bytes on the stack.
#[derive(Debug, Clone)]
struct LineSet {
    lines: HashSet<Vec<u8>>,
    fold: bool,
    min: usize,
    max: usize,
}

impl LineSet {
    fn new(needles: Vec<Vec<u8>>, fold: bool) -> LineSet {
        let min = needles.iter().map(Vec::len).min().unwrap_or(0);
        let max = needles.iter().map(Vec::len).max().unwrap_or(0);
        let lines = needles
            .into_iter()
            .map(|mut n| {
                if fold {
                    n.make_ascii_lowercase();
                }
                n
            })
            .collect();
        LineSet {
            lines,
            fold,
            min,
            max,
        }
    }

    /// True when `line` (without its terminator) is in the set.
    #[inline]
    fn contains(&self, line: &[u8]) -> bool {
        if line.len() < self.min || line.len() > self.max {
            return false;
        }
        if !self.fold {
            return self.lines.contains(line);
        }
        let mut stack = [0u8; 512];
        if let Some(buf) = stack.get_mut(..line.len()) {
            buf.copy_from_slice(line);
            buf.make_ascii_lowercase();
            self.lines.contains(&buf[..])
        } else {
            self.lines.contains(&line.to_ascii_lowercase()[..])
        }
    }
}

/// A leaf of the pattern, unchanged.
fn rebuild(kind: HirKind) -> Hir {
    match kind {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0),
        HirKind::Class(c) => Hir::class(c),
        HirKind::Look(l) => Hir::look(l),
        // Only leaves are passed here (see `line_anchors`).
        other => unreachable!("not a leaf: {other:?}"),
    }
}

/// The compiled size a regex may reach: ripgrep's limit (100 MiB), ten
/// times the regex crate's default, so a thousand patterns compile.
pub(crate) const SIZE_LIMIT: usize = 100 << 20;

/// The lazy DFA's cache: ripgrep's limit (1,000 MiB). The regex crate's
/// default (2 MiB) is too small for a thousand alternatives: the cache is
/// cleared again and again and the search falls back to the slow NFA
/// simulation (1,000 IPv4 regexes on 50 MB took 10.7 s). The cache only
/// grows with the states a search visits.
pub(crate) const DFA_SIZE_LIMIT: usize = 1000 << 20;

/// Block hits that cross a line and fail on the line alone, per block,
/// before a grep searches the rest of the block line by line.
const MAX_BLOCK_MISSES: u32 = 8;

/// What [`Grep::next_match`] found.
enum Next {
    /// A matching line: its start and end (terminator included).
    Line(usize, usize),
    /// No more matches in the block.
    Done,
    /// Too many misses: go on line by line from this line start.
    ByLine(usize),
}

/// The regex crate's errors span several lines (a caret diagram); the
/// command line wants one.
fn first_line_of_regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(s) => s
            .lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .map_or_else(
                || s.clone(),
                |l| l.trim_start_matches("error: ").to_string(),
            ),
        other => other.to_string(),
    }
}

impl Grep<()> {
    /// A builder for several patterns, `-i` and `-v`.
    pub fn builder() -> GrepBuilder {
        GrepBuilder::default()
    }
}

impl<S> Grep<S> {
    /// A grep for one pattern (regex syntax), sending to `target`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Pattern`] when the pattern does not compile.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::{Flow, Stage, sinks::Count};
    /// use copipe::text::Grep;
    ///
    /// let mut grep = Grep::new("py(thon)?", Count::new())?;
    /// assert_eq!(grep.send(&b"ply\n"[..])?, Flow::Continue);
    /// assert_eq!(grep.send(&b"python\n"[..])?, Flow::Continue);
    /// assert_eq!(grep.get_ref().count(), 1);
    /// assert!(Grep::new("(", Count::new()).is_err());
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn new(pattern: &str, target: S) -> Result<Grep<S>> {
        Grep::builder().pattern(pattern).build(target)
    }

    /// The target.
    pub fn get_ref(&self) -> &S {
        &self.target
    }

    /// The target, mutably (for example to write a header line into it).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.target
    }

    /// The target, consuming the grep.
    pub fn into_inner(self) -> S {
        self.target
    }

    /// True when `line` (with or without its `\n`) matches a pattern,
    /// before `-v` is applied.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::{sinks::Null, text::Grep};
    ///
    /// let grep = Grep::builder().pattern("^GET").invert(true).build(Null)?;
    /// assert!(grep.is_match(b"GET /\n"));
    /// # Ok::<(), copipe::Error>(())
    /// ```
    #[inline]
    pub fn is_match(&self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        match &self.matcher {
            Matcher::All => true,
            Matcher::Literal(f) => f.find(line).is_some(),
            Matcher::Literals(ac) => ac.is_match(line),
            Matcher::Lines(set) => set.contains(line),
            Matcher::Regex { line: re, .. } => re.is_match(line),
        }
    }

    /// The next matching line in `hay[pos..]`, `pos` a line start: the
    /// line's bounds (terminator included).
    #[inline]
    fn next_match(&self, hay: &[u8], pos: usize, misses: &mut u32) -> Next {
        let mut pos = pos;
        while pos < hay.len() {
            let (ms, me) = match &self.matcher {
                Matcher::All => (pos, pos),
                Matcher::Literal(f) => match f.find(&hay[pos..]) {
                    Some(i) => (pos + i, pos + i + f.needle().len()),
                    None => return Next::Done,
                },
                Matcher::Literals(ac) => match ac.find(&hay[pos..]) {
                    Some(m) => (pos + m.start(), pos + m.end()),
                    None => return Next::Done,
                },
                Matcher::Lines(set) => {
                    // Line by line: no block-wide search to widen.
                    let mut ls = pos;
                    while ls < hay.len() {
                        let le = memchr(b'\n', &hay[ls..]).map_or(hay.len(), |i| ls + i + 1);
                        let body = hay[ls..le].strip_suffix(b"\n").unwrap_or(&hay[ls..le]);
                        if set.contains(body) {
                            return Next::Line(ls, le);
                        }
                        ls = le;
                    }
                    return Next::Done;
                }
                Matcher::Regex { block, .. } => match block.find_at(hay, pos) {
                    Some(m) => (m.start(), m.end()),
                    None => return Next::Done,
                },
            };
            if ms == hay.len() && hay.last() == Some(&b'\n') {
                // An empty match after the last newline is not on a line.
                return Next::Done;
            }
            let ls = memrchr(b'\n', &hay[pos..ms]).map_or(pos, |i| pos + i + 1);
            let le = memchr(b'\n', &hay[ms..]).map_or(hay.len(), |i| ms + i + 1);
            let content_end = if hay[le - 1] == b'\n' { le - 1 } else { le };
            // A hit that crosses the end of its line may not match the line
            // alone; the leftmost block hit starts on the first line that
            // could match, so if this line fails, none before the next does.
            let inexact = matches!(self.matcher, Matcher::Regex { inexact: true, .. });
            if (me > content_end || inexact) && !self.is_match(&hay[ls..le]) {
                // Each miss may have scanned far ahead (`a[^x]*b` spans
                // lines): past a few, searching line by line is cheaper.
                *misses += 1;
                if *misses > MAX_BLOCK_MISSES {
                    return Next::ByLine(le);
                }
                pos = le;
                continue;
            }
            return Next::Line(ls, le);
        }
        Next::Done
    }
}

impl<'a, S: Stage<&'a [u8]>> Stage<&'a [u8]> for Grep<S> {
    #[inline]
    fn send(&mut self, line: &'a [u8]) -> Result<Flow> {
        if self.is_match(line) != self.invert {
            self.target.send(line)
        } else {
            Ok(Flow::Continue)
        }
    }
}

impl<S: Lifecycle> Lifecycle for Grep<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

impl<'a, S: Stage<&'a [u8]>> Stage<Block<'a>> for Grep<S> {
    fn send(&mut self, block: Block<'a>) -> Result<Flow> {
        let hay = block.bytes();
        if let (Matcher::Literal(f), false) = (&self.matcher, self.invert) {
            // The plain path (one literal): its own tight loop, so that the
            // other matchers' code stays out of it.
            return literal_lines(f, hay, &mut self.target);
        }
        let mut pos = 0;
        let mut misses = 0;
        loop {
            match self.next_match(hay, pos, &mut misses) {
                Next::Line(ls, le) => {
                    if self.invert {
                        if send_lines(&mut self.target, &hay[pos..ls])?.is_stop() {
                            return Ok(Flow::Stop);
                        }
                    } else if self.target.send(&hay[ls..le])?.is_stop() {
                        return Ok(Flow::Stop);
                    }
                    pos = le;
                }
                Next::Done => break,
                Next::ByLine(resume) => {
                    // Lines before `resume` were all checked and missed.
                    if self.invert && send_lines(&mut self.target, &hay[pos..resume])?.is_stop() {
                        return Ok(Flow::Stop);
                    }
                    for line in Block::new(&hay[resume..], 0).lines() {
                        if self.send(line)?.is_stop() {
                            return Ok(Flow::Stop);
                        }
                    }
                    return Ok(Flow::Continue);
                }
            }
        }
        if self.invert {
            return send_lines(&mut self.target, &hay[pos..]);
        }
        Ok(Flow::Continue)
    }
}

/// Sends each line of `hay` that contains `f`'s needle (never empty, no
/// `\n`: it cannot cross a line) to `target`.
#[inline]
fn literal_lines<'a, S: Stage<&'a [u8]>>(
    f: &Literal,
    hay: &'a [u8],
    target: &mut S,
) -> Result<Flow> {
    let mut pos = 0;
    while let Some(i) = f.find(&hay[pos..]) {
        let ms = pos + i;
        let ls = memrchr(b'\n', &hay[pos..ms]).map_or(pos, |j| pos + j + 1);
        let le = memchr(b'\n', &hay[ms..]).map_or(hay.len(), |j| ms + j + 1);
        if target.send(&hay[ls..le])?.is_stop() {
            return Ok(Flow::Stop);
        }
        pos = le;
        if pos >= hay.len() {
            break;
        }
    }
    Ok(Flow::Continue)
}

/// Sends each line of `lines` (whole lines) to `target`.
#[inline]
fn send_lines<'a, S: Stage<&'a [u8]>>(target: &mut S, lines: &'a [u8]) -> Result<Flow> {
    let mut start = 0;
    for nl in memchr_iter(b'\n', lines) {
        if target.send(&lines[start..=nl])?.is_stop() {
            return Ok(Flow::Stop);
        }
        start = nl + 1;
    }
    if start < lines.len() {
        return target.send(&lines[start..]);
    }
    Ok(Flow::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Collect;
    use crate::stage::StageExt;

    /// Greps `input` as one block and line by line; both must agree.
    fn grep(input: &[u8], patterns: &[&str], i: bool, v: bool) -> Vec<Vec<u8>> {
        let b = Grep::builder()
            .patterns(patterns.iter().copied())
            .ignore_case(i)
            .invert(v);
        let mut by_block = Collect::new();
        let mut g = b.clone().build((&mut by_block).with_owned()).unwrap();
        let _ = g.send(Block::new(input, 0)).unwrap();
        let mut by_line = Collect::new();
        let mut g = b.build((&mut by_line).with_owned()).unwrap();
        for line in Block::new(input, 0).lines() {
            let _ = g.send(line).unwrap();
        }
        assert_eq!(
            by_block.items(),
            by_line.items(),
            "block and line greps differ"
        );
        by_block.into_items()
    }

    fn strs(v: Vec<Vec<u8>>) -> Vec<String> {
        // `StageExt::map` is in scope too: name the iterator's.
        v.into_iter()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect()
    }

    #[test]
    fn literal_regex_and_invert() {
        let input = b"python\nply\nswig\nPYTHON\nlast python";
        assert_eq!(
            strs(grep(input, &["python"], false, false)),
            ["python\n", "last python"]
        );
        assert_eq!(strs(grep(input, &["python"], true, false)).len(), 3);
        assert_eq!(
            strs(grep(input, &["python"], false, true)),
            ["ply\n", "swig\n", "PYTHON\n"]
        );
        assert_eq!(
            strs(grep(input, &["^p", "g$"], false, false)),
            ["python\n", "ply\n", "swig\n"]
        );
    }

    #[test]
    fn hits_crossing_a_line_are_checked_against_the_line() {
        // `a\s*b` matches "a\nb" across two lines, but neither line alone.
        let input = b"xa\nbx\nab\n";
        assert_eq!(strs(grep(input, &[r"a\s*b"], false, false)), ["ab\n"]);
        assert_eq!(
            strs(grep(input, &[r"a[^c]*b"], false, true)),
            ["xa\n", "bx\n"]
        );
    }

    #[test]
    fn empty_matches_and_text_anchors() {
        let input = b"a\n\nb";
        assert_eq!(grep(input, &[""], false, false).len(), 3);
        assert_eq!(strs(grep(input, &["^$"], false, false)), ["\n"]);
        assert_eq!(strs(grep(input, &[r"\Ab\z"], false, false)), ["b"]);
        assert_eq!(grep(input, &[], false, false).len(), 3);
        assert_eq!(grep(input, &[], false, true).len(), 0);
    }

    #[test]
    fn many_hits_crossing_lines_fall_back_to_lines() {
        // Every line starts a block hit that runs to the last line's `b`.
        let mut input = "a\n".repeat(100);
        input.push_str("b\nab\n");
        let got = strs(grep(input.as_bytes(), &[r"a[^x]*b"], false, false));
        assert_eq!(got, ["ab\n"]);
        let got = grep(input.as_bytes(), &[r"a[^x]*b"], false, true);
        assert_eq!(got.len(), 101);
    }

    #[test]
    fn dot_matches_invalid_utf8() {
        assert_eq!(grep(b"caf\xe9!\n", &["caf.!"], false, false).len(), 1);
    }

    #[test]
    fn literals_take_one_automaton_and_regexes_one_alternation() {
        let m = |ps: &[&str], i: bool| {
            Grep::builder()
                .patterns(ps.iter().copied())
                .ignore_case(i)
                .build(crate::sinks::Null)
                .unwrap()
                .matcher
        };
        assert!(matches!(m(&["ab"], false), Matcher::Literal(_)));
        assert!(matches!(m(&["ab"], true), Matcher::Literals(_)));
        assert!(matches!(
            m(&["ab", r"1\.2", r"(?-u:\xFF)"], false),
            Matcher::Literals(_)
        ));
        assert!(matches!(m(&["ab", "1.2"], false), Matcher::Regex { .. }));
        assert!(matches!(
            m(&[r"\A(?:ab)\z", r"\A(?:)\z", "^a$"], true),
            Matcher::Lines(_)
        ));
        assert!(matches!(
            m(&[r"\A(?:ab)\z", r"\A(?:a.)\z"], false),
            Matcher::Regex { .. }
        ));
        let input = b"ab\nAB\nabc\n\nxab\na\n";
        assert_eq!(
            strs(grep(
                input,
                &[r"\A(?:ab)\z", r"\A(?:)\z", "^abc$"],
                true,
                false
            )),
            ["ab\n", "AB\n", "abc\n", "\n"]
        );
        assert_eq!(
            strs(grep(input, &[r"\A(?:a)\z", r"\A(?:ab)\z"], false, true)),
            ["AB\n", "abc\n", "\n", "xab\n"]
        );
        assert!(matches!(m(&["ab", r"a\nb"], false), Matcher::Regex { .. }));
        assert!(matches!(m(&["ab", ""], false), Matcher::Regex { .. }));
        let input = b"xAB\n1.2\nab\n1x2\n";
        assert_eq!(
            strs(grep(input, &["ab", r"1\.2"], true, false)),
            ["xAB\n", "1.2\n", "ab\n"]
        );
        assert_eq!(
            strs(grep(input, &["ab", r"1\.2"], false, true)),
            ["xAB\n", "1x2\n"]
        );
    }

    #[test]
    fn a_thousand_patterns_compile_and_match() {
        let ips: Vec<String> = (0..1000)
            .map(|i| format!("10.{}.{}.7", i / 250, i % 250))
            .collect();
        let input = b"GET 10.3.249.7 x\nGET 10.4.0.7\nGET 10a3b249c7\n";
        let ps: Vec<&str> = ips.iter().map(String::as_str).collect();
        assert_eq!(grep(input, &ps, false, false).len(), 2);
        let escaped: Vec<String> = ips.iter().map(|p| regex::escape(p)).collect();
        let ps: Vec<&str> = escaped.iter().map(String::as_str).collect();
        assert_eq!(strs(grep(input, &ps, false, false)), ["GET 10.3.249.7 x\n"]);
    }

    #[test]
    fn invalid_pattern_names_itself() {
        let err = Grep::builder()
            .pattern("ok")
            .pattern("a(b")
            .build(crate::sinks::Null)
            .unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Pattern { pattern, .. } if pattern == "a(b"));
        assert!(err.to_string().ends_with(": unclosed group"), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn inline_flags_and_anchors_match_per_line_in_one_block() {
        // Issue 13: `(?-m)^GET` printed one line per block, `(?-m:html$)`
        // nothing.
        let input = b"GET /a.html\nGET /b\nPOST /c.html\n";
        assert_eq!(grep(input, &["(?-m)^GET"], false, false).len(), 2);
        assert_eq!(grep(input, &["(?-m:html$)"], false, false).len(), 2);
        assert_eq!(grep(input, &[r"\AGET", r"\z"], false, false).len(), 3);
        assert_eq!(grep(input, &[r"(?s)GET.*b$"], false, false).len(), 1);
        assert_eq!(grep(b"a\r\nb\r\n", &[r"(?R)a$"], false, false).len(), 0);
        assert_eq!(grep(b"a\r\nb\r\n", &[r"(?mR)a$"], false, false).len(), 1);
        // CRLF line anchors hold on a line alone at its end after a `\r`,
        // where a block has `\r\n` (never "between" them).
        assert_eq!(grep(b"a\r\nb\n", &[r"(?mR)\r$"], false, false).len(), 1);
        assert_eq!(grep(b"a\r\nb\n", &[r"(?mR)\r^"], false, false).len(), 1);
        assert_eq!(grep(b"a\r\nb\n", &[r"(?mR)b^"], false, false).len(), 0);
        assert_eq!(grep(b"a\r\nb\n", &[r"(?mR)\r$", "x"], true, true).len(), 1);
        // Printed back, `(?:\r+)?` must not read as the lazy `\r+?`.
        assert_eq!(grep(b"a", &[r"(?:(?:\r)+)?"], false, false).len(), 1);
        assert_eq!(
            grep(b"a\r\r", &[r"\A(?:a(?:\r)+)?\z"], false, false).len(),
            1
        );
    }
}

/// Block search equals per-line search, whatever the pattern's flags and
/// wherever the reads and blocks fall.
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::sinks::Collect;
    use crate::stage::StageExt;
    use crate::testutil::Chunked;
    use crate::text::linebuf::LineBuf;
    use proptest::prelude::*;

    fn atom() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "a",
            "b",
            "A",
            ".",
            "^",
            "$",
            r"\A",
            r"\z",
            r"\b",
            r"\B",
            "[^a]",
            r"\s",
            r"\r",
            r"\n",
            "[ab]",
            r"\x00",
            r"(?-u:\xFF)",
            "",
            r"(?mR:\r$)",
            r"(?mR:\r^)",
            r"(?mR:^\r)",
        ])
        .prop_map(str::to_string)
    }

    fn pattern() -> impl Strategy<Value = String> {
        atom().prop_recursive(4, 24, 4, |inner| {
            let flags = prop::sample::select(vec![
                "", "?:", "?-m:", "?m:", "?s:", "?-s:", "?R:", "?i:", "?mR:", "?sm:",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}|{b}")),
                (
                    inner.clone(),
                    prop::sample::select(vec!["*", "+", "?", "{0,2}"])
                )
                    .prop_map(|(a, r)| format!("(?:{a}){r}")),
                (flags, inner.clone()).prop_map(|(f, a)| format!("({f}{a})")),
                (
                    prop::sample::select(vec!["(?-m)", "(?s)", "(?R)", "(?m)", "(?i)"]),
                    inner
                )
                    .prop_map(|(f, a)| format!("{f}{a}")),
            ]
        })
    }

    fn input() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(vec![b'a', b'b', b'A', b'\n', b'\n', b'\r', b' ', 0, 0xff]),
            0..120,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn block_search_equals_per_line_search(
            patterns in prop::collection::vec(pattern(), 1..4),
            text in input(),
            chunk in 1usize..40,
            read in 1usize..40,
            ignore_case in any::<bool>(),
            invert in any::<bool>(),
        ) {
            // The truth: each line alone, without its terminator.
            let Ok(re) = RegexBuilder::new(
                &patterns.iter().map(|p| format!("(?:{p})")).collect::<Vec<_>>().join("|"),
            )
            .unicode(false)
            .case_insensitive(ignore_case)
            .build() else {
                return Ok(());
            };
            let want: Vec<Vec<u8>> = Block::new(&text, 0)
                .lines()
                .filter(|l| re.is_match(l.strip_suffix(b"\n").unwrap_or(l)) != invert)
                .map(<[u8]>::to_vec)
                .collect();
            let mut out = Collect::new();
            let mut grep = Grep::builder()
                .patterns(patterns.iter().cloned())
                .ignore_case(ignore_case)
                .invert(invert)
                .build((&mut out).with_owned())
                .unwrap();
            let mut lb = LineBuf::new(chunk, 1 << 20);
            let mut r = Chunked(&text, read);
            while lb.read_from(&mut r).unwrap() > 0 {
                let _ = lb.emit(&mut grep).unwrap();
            }
            let _ = lb.finish(&mut grep).unwrap();
            prop_assert_eq!(out.into_items(), want, "patterns {:?}", patterns);
        }

        /// The paths many patterns take (Aho-Corasick for literals, the
        /// alternation regex otherwise) with `--fixed-strings` (escaped
        /// text), `-i`, `-x` (`\A(?:p)\z`, as the command line writes it),
        /// `-v` and `--drop` (a second, inverted grep after the first):
        /// block search equals each line alone.
        #[test]
        fn many_patterns_equal_per_line_search(
            words in prop::collection::vec(
                prop::collection::vec(
                    prop::sample::select(vec![b'a', b'b', b'A', b'.', b' ', b'\r', 0, 0xff]),
                    0..4,
                ),
                1..12,
            ),
            regexes in prop::collection::vec(pattern(), 0..3),
            drops in prop::collection::vec(
                prop::sample::select(vec!["a", "bA", "b.", "^A", r"\x00"]),
                0..3,
            ),
            text in input(),
            chunk in 1usize..40,
            read in 1usize..40,
            ignore_case in any::<bool>(),
            invert in any::<bool>(),
            whole_line in any::<bool>(),
        ) {
            // --fixed-strings: each word escaped, a byte that is not ASCII
            // as `(?-u:\xNN)` (still a literal once parsed).
            let escape = |w: &Vec<u8>| -> String {
                w.iter()
                    .map(|&b| if b.is_ascii() {
                        regex::escape(&(b as char).to_string())
                    } else {
                        format!(r"(?-u:\x{b:02X})")
                    })
                    .collect()
            };
            let mut patterns: Vec<String> = words.iter().map(escape).collect();
            patterns.extend(regexes);
            if whole_line {
                for p in &mut patterns {
                    *p = format!(r"\A(?:{p})\z");
                }
            }
            let per_line = |ps: &[String]| {
                RegexBuilder::new(
                    &ps.iter().map(|p| format!("(?:{p})")).collect::<Vec<_>>().join("|"),
                )
                .unicode(false)
                .case_insensitive(ignore_case)
                .build()
            };
            let Ok(re) = per_line(&patterns) else {
                return Ok(());
            };
            let drops: Vec<String> = drops.into_iter().map(str::to_string).collect();
            let drop_re = per_line(&drops).unwrap();
            let want: Vec<Vec<u8>> = Block::new(&text, 0)
                .lines()
                .filter(|l| {
                    let body = l.strip_suffix(b"\n").unwrap_or(l);
                    re.is_match(body) != invert && (drops.is_empty() || !drop_re.is_match(body))
                })
                .map(<[u8]>::to_vec)
                .collect();
            let mut out = Collect::new();
            let drop = Grep::builder()
                .patterns(drops.iter().cloned())
                .ignore_case(ignore_case)
                .invert(!drops.is_empty())
                .build((&mut out).with_owned())
                .unwrap();
            let mut grep = Grep::builder()
                .patterns(patterns.iter().cloned())
                .ignore_case(ignore_case)
                .invert(invert)
                .build(drop)
                .unwrap();
            let mut lb = LineBuf::new(chunk, 1 << 20);
            let mut r = Chunked(&text, read);
            while lb.read_from(&mut r).unwrap() > 0 {
                let _ = lb.emit(&mut grep).unwrap();
            }
            let _ = lb.finish(&mut grep).unwrap();
            prop_assert_eq!(out.into_items(), want, "patterns {:?}", patterns);
        }
    }
}
