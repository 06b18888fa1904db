//! grep's selection and output options for `copipe tail`: -w, -c, -m, -o,
//! -H/--no-filename, --line-number, -A/-B/-C, --color and --json.
//!
//! [`Rich`] replaces the plain chain (`Grep` → `Grep` → printer) only when
//! one of these options is asked for, so the plain path does no per-line
//! work for them. It takes whole blocks and works line by line: every
//! option here needs the line's own matches, its number or its neighbours.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::rc::Rc;

use base64::Engine as _;
use copipe::text::{Block, Start};
use copipe::{Error, ErrorKind, Flow, Lifecycle, Result, Stage};
use regex::bytes::{Regex, RegexBuilder};

use super::tail::{Binary as BinaryState, Status};

/// grep 3.8's default `GREP_COLORS`: selected match, file name, line
/// number, separator.
const MS: &str = "01;31";
const FN: &str = "35";
const LN: &str = "32";
const SE: &str = "36";
/// What grep writes after each colored field.
const SGR_END: &[u8] = b"\x1b[m\x1b[K";

/// The options [`Rich`] implements, as the command line gave them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Opts {
    pub(crate) patterns: Vec<String>,
    pub(crate) drop: Vec<String>,
    pub(crate) ignore_case: bool,
    pub(crate) invert: bool,
    pub(crate) word: bool,
    pub(crate) count: bool,
    pub(crate) max: Option<u64>,
    pub(crate) only: bool,
    /// `FILE:` before each line (-H, or grep's default for -c with
    /// several files).
    pub(crate) with_name: bool,
    /// tail's `==> FILE <==` headers (several files, no -H/-c/--json).
    pub(crate) headers: bool,
    pub(crate) line_number: bool,
    pub(crate) before: u64,
    pub(crate) after: u64,
    pub(crate) color: bool,
    pub(crate) json: bool,
    pub(crate) quiet: bool,
    /// Following: -m ends the run only once every file reached it.
    pub(crate) follow: bool,
    pub(crate) start: Start,
}

/// What is known of one file.
#[derive(Debug, Default)]
struct FileState {
    /// Offset just past the last line seen, and the number of the next
    /// line (0: not known).
    next_offset: Option<u64>,
    next_line: u64,
    /// Lines selected (for -c and -m).
    selected: u64,
    /// -m reached and the trailing context printed: the file's lines are
    /// dropped.
    done: bool,
    /// Read at all (a file that could not be opened gets no -c line).
    seen: bool,
    counted: bool,
}

/// The grep options stage: blocks in, formatted lines out.
pub(crate) struct Rich<O> {
    opts: Opts,
    line: Option<Regex>,
    /// The same alternation finding the longest match at a start (grep's
    /// leftmost-longest rule, for -o, --color, --json and -w).
    longest: Option<Longest>,
    /// -w: the patterns anchored at both ends, to try a shorter match.
    exact: Option<Regex>,
    drop: Option<Regex>,
    names: Vec<String>,
    /// Each file's path, to count the lines before a start that is not
    /// line 1 (`None`: standard input).
    paths: Vec<Option<PathBuf>>,
    files: Vec<FileState>,
    /// Header printed for this file (tail's headers).
    header: Option<usize>,
    /// The file whose lines came last (context does not cross files).
    current: Option<usize>,
    /// -B: the lines before, with their number and offset.
    ring: VecDeque<(u64, u64, Vec<u8>)>,
    after_left: u64,
    /// The last line printed (file, line), for grep's `--` separator.
    last_out: Option<(usize, u64)>,
    status: Rc<Status>,
    binary: Rc<BinaryState>,
    /// Every file is done (-m), or -q matched, or the output closed.
    finished: bool,
    buf: Vec<u8>,
    out: O,
}

/// How a line is printed: grep's `:` for selected lines, `-` for context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Selected,
    Context,
}

fn compile(patterns: &[String], ignore_case: bool) -> Result<Option<Regex>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let alternation = alternation(patterns);
    // ripgrep's size limits (as `copipe::text::Grep`'s): a thousand
    // patterns compile and run on the lazy DFA, not the NFA simulation.
    RegexBuilder::new(&alternation)
        .unicode(false)
        .case_insensitive(ignore_case)
        .size_limit(100 << 20)
        .dfa_size_limit(1000 << 20)
        .build()
        .map(Some)
        .map_err(|e| {
            Error::new(ErrorKind::Pattern {
                pattern: alternation.clone(),
                message: e.to_string().lines().last().unwrap_or("").to_string(),
            })
        })
}

/// The longest match of an alternation that starts at a given position:
/// a meta regex in `MatchKind::All`, whose anchored search reports the last
/// (so longest) match end. The regex crate's leftmost-first rule prefers
/// the first alternative that matches (`ab|abcd` on `abcd` gives `ab`);
/// grep (POSIX) takes the longest (`abcd`).
struct Longest(regex_automata::meta::Regex);

impl Longest {
    /// The same patterns as [`compile`], with the same syntax and limits.
    fn new(patterns: &[String], ignore_case: bool) -> Result<Option<Longest>> {
        use regex_automata::{meta, util::syntax, MatchKind};
        if patterns.is_empty() {
            return Ok(None);
        }
        let alternation = alternation(patterns);
        meta::Builder::new()
            .syntax(
                syntax::Config::new()
                    .unicode(false)
                    .utf8(false)
                    .case_insensitive(ignore_case),
            )
            .configure(
                meta::Config::new()
                    .match_kind(MatchKind::All)
                    .utf8_empty(false)
                    .nfa_size_limit(Some(100 << 20))
                    .hybrid_cache_capacity(1000 << 20),
            )
            .build(&alternation)
            .map(|re| Some(Longest(re)))
            .map_err(|e| {
                Error::new(ErrorKind::Pattern {
                    pattern: alternation.clone(),
                    message: e.to_string().lines().last().unwrap_or("").to_string(),
                })
            })
    }

    /// The end of the longest match of `body` starting at `start`, if any.
    fn end_at(&self, body: &[u8], start: usize) -> Option<usize> {
        let input = regex_automata::Input::new(body)
            .range(start..)
            .anchored(regex_automata::Anchored::Yes);
        self.0.find(input).map(|m| m.end())
    }
}

/// `patterns` as one alternation, each in its own group.
fn alternation(patterns: &[String]) -> String {
    patterns
        .iter()
        .map(|p| format!("(?:{p})"))
        .collect::<Vec<_>>()
        .join("|")
}

/// grep's word constituents: letters, digits and `_` (C locale).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<O> Rich<O>
where
    O: for<'a> Stage<&'a [u8]>,
{
    /// The stage for `opts`, naming files `names` (their `paths` to count
    /// lines), sending to `out`.
    pub(crate) fn new(
        opts: Opts,
        names: Vec<String>,
        paths: Vec<Option<PathBuf>>,
        status: &Rc<Status>,
        binary: &Rc<BinaryState>,
        out: O,
    ) -> Result<Rich<O>> {
        let line = compile(&opts.patterns, opts.ignore_case)?;
        let longest = if opts.only || opts.color || opts.json || opts.word {
            Longest::new(&opts.patterns, opts.ignore_case)?
        } else {
            None
        };
        let drop = compile(&opts.drop, opts.ignore_case)?;
        let exact = if opts.word && !opts.patterns.is_empty() {
            let anchored: Vec<String> = opts
                .patterns
                .iter()
                .map(|p| format!(r"\A(?:{p})\z"))
                .collect();
            compile(&anchored, opts.ignore_case)?
        } else {
            None
        };
        let files = names.iter().map(|_| FileState::default()).collect();
        Ok(Rich {
            opts,
            line,
            longest,
            exact,
            drop,
            names,
            paths,
            files,
            header: None,
            current: None,
            ring: VecDeque::new(),
            after_left: 0,
            last_out: None,
            status: Rc::clone(status),
            binary: Rc::clone(binary),
            finished: false,
            buf: Vec::new(),
            out,
        })
    }

    /// True when the run must end: -q matched, every file reached -m, or
    /// the output closed.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// The matches of `body` (the line without its `\n`) that count for
    /// selection, as spans; `None` when every line matches (no pattern).
    /// A match is grep's: the leftmost, and of those starting there the
    /// longest. With -w, grep's rule: a match must have no word constituent
    /// just before or after it; else a shorter match at the same start is
    /// tried, then a later start.
    fn next_match(&self, body: &[u8], from: usize) -> Option<(usize, usize)> {
        let re = self.line.as_ref()?;
        let find = |at: usize| {
            re.find_at(body, at).map(|m| {
                let s = m.start();
                let longest = self.longest.as_ref().and_then(|l| l.end_at(body, s));
                (s, longest.map_or(m.end(), |e| e.max(m.end())))
            })
        };
        if !self.opts.word {
            return find(from);
        }
        let mut at = from;
        while at <= body.len() {
            let (s, e) = find(at)?;
            let left = s == 0 || !is_word(body[s - 1]);
            if left {
                let right = |e: usize| e == body.len() || !is_word(body[e]);
                if right(e) && e > s {
                    return Some((s, e));
                }
                // A shorter match at the same start.
                for shorter in (s + 1..e).rev() {
                    if right(shorter) && self.matches_exactly(&body[s..shorter]) {
                        return Some((s, shorter));
                    }
                }
            }
            at = s + 1;
        }
        None
    }

    /// True when a pattern matches all of `text`.
    fn matches_exactly(&self, text: &[u8]) -> bool {
        self.exact.as_ref().is_none_or(|r| r.is_match(text))
    }

    /// Whether `body` matches a pattern (before -v).
    fn is_match(&self, body: &[u8]) -> bool {
        match &self.line {
            None => true,
            Some(re) if !self.opts.word => re.is_match(body),
            Some(_) => self.next_match(body, 0).is_some(),
        }
    }

    /// Whether `body` is selected: matched (or not, with -v), and not
    /// dropped.
    fn is_selected(&self, body: &[u8]) -> bool {
        self.is_match(body) != self.opts.invert
            && !self.drop.as_ref().is_some_and(|d| d.is_match(body))
    }

    /// The number of the first line of a block of file `i` at `offset`,
    /// 0 when it cannot be known.
    fn first_line(&mut self, i: usize, offset: u64) -> u64 {
        let st = &self.files[i];
        match st.next_offset {
            Some(next) if next == offset => return st.next_line,
            None => {
                if let Start::From(n) = self.opts.start {
                    return n.max(1);
                }
            }
            _ => {}
        }
        if offset == 0 {
            return 1;
        }
        if !(self.opts.line_number || self.opts.json) {
            return 0;
        }
        match &self.paths[i] {
            Some(path) => count_lines(path, offset).map_or(0, |n| n + 1),
            None => 0,
        }
    }

    /// Sets the number of the next line of file `i` (standard input's
    /// last lines, counted as they were read).
    pub(crate) fn set_next_line(&mut self, i: usize, offset: u64, line: u64) {
        self.files[i].next_offset = Some(offset);
        self.files[i].next_line = line;
    }

    /// Writes tail's header for file `i` (a static tail names every file).
    pub(crate) fn announce(&mut self, i: usize) -> Result<Flow> {
        self.files[i].seen = true;
        if !self.opts.headers {
            return Ok(Flow::Continue);
        }
        if self.header.is_some() && self.out.send(&b"\n"[..])?.is_stop() {
            return Ok(Flow::Stop);
        }
        self.header = Some(i);
        let header = format!("==> {} <==\n", self.names[i]);
        self.out.send(header.as_bytes())
    }

    /// A static file ended: grep's -c line.
    pub(crate) fn end_file(&mut self, i: usize) -> Result<Flow> {
        if !self.opts.count || self.files[i].counted || !self.files[i].seen {
            return Ok(Flow::Continue);
        }
        self.files[i].counted = true;
        let n = self.files[i].selected;
        self.buf.clear();
        if self.opts.json {
            let v = serde_json::json!({
                "type": "count",
                "data": {"path": {"text": self.names[i]}, "count": n},
            });
            self.buf.extend_from_slice(v.to_string().as_bytes());
        } else {
            if self.opts.with_name {
                self.name_prefix(i, b':');
            }
            self.buf.extend_from_slice(n.to_string().as_bytes());
        }
        self.buf.push(b'\n');
        self.out.send(&self.buf[..])
    }

    fn sgr(&mut self, color: &str) {
        self.buf.extend_from_slice(b"\x1b[");
        self.buf.extend_from_slice(color.as_bytes());
        self.buf.extend_from_slice(b"m\x1b[K");
    }

    fn sep(&mut self, sep: u8) {
        if self.opts.color {
            self.sgr(SE);
            self.buf.push(sep);
            self.buf.extend_from_slice(SGR_END);
        } else {
            self.buf.push(sep);
        }
    }

    fn name_prefix(&mut self, i: usize, sep: u8) {
        if self.opts.color {
            self.sgr(FN);
            let name = std::mem::take(&mut self.names[i]);
            self.buf.extend_from_slice(name.as_bytes());
            self.names[i] = name;
            self.buf.extend_from_slice(SGR_END);
        } else {
            self.buf.extend_from_slice(self.names[i].as_bytes());
        }
        self.sep(sep);
    }

    fn prefix(&mut self, i: usize, number: u64, kind: Kind) {
        let sep = if kind == Kind::Selected { b':' } else { b'-' };
        if self.opts.with_name {
            self.name_prefix(i, sep);
        }
        if self.opts.line_number {
            if self.opts.color {
                self.sgr(LN);
            }
            self.buf.extend_from_slice(number.to_string().as_bytes());
            if self.opts.color {
                self.buf.extend_from_slice(SGR_END);
            }
            self.sep(sep);
        }
    }

    /// Prints one line of file `i` (its tail header first if due, grep's
    /// `--` separator when it does not follow the last line printed).
    fn print(
        &mut self,
        i: usize,
        number: u64,
        offset: u64,
        line: &[u8],
        kind: Kind,
    ) -> Result<Flow> {
        if self.opts.headers && self.header != Some(i) && self.announce(i)?.is_stop() {
            return Ok(Flow::Stop);
        }
        let context = self.opts.before > 0 || self.opts.after > 0;
        if context && !self.opts.json {
            if let Some((f, n)) = self.last_out {
                if f != i || n + 1 != number {
                    self.buf.clear();
                    if self.opts.color {
                        self.sgr(SE);
                        self.buf.extend_from_slice(b"--");
                        self.buf.extend_from_slice(SGR_END);
                    } else {
                        self.buf.extend_from_slice(b"--");
                    }
                    self.buf.push(b'\n');
                    if self.out.send(&self.buf[..])?.is_stop() {
                        return Ok(Flow::Stop);
                    }
                }
            }
        }
        self.last_out = Some((i, number));
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        // Matches are shown in selected lines, or in context lines with
        // -v (where the context lines are the matching ones), as grep.
        let show = (kind == Kind::Selected) != self.opts.invert;
        let mut spans = Vec::new();
        if (show && (self.opts.color || self.opts.only || self.opts.json)) && self.line.is_some() {
            let mut at = 0;
            while at <= body.len() {
                let Some((s, e)) = self.next_match(body, at) else {
                    break;
                };
                if e > s {
                    spans.push((s, e));
                    at = e;
                } else {
                    at = s + 1;
                }
            }
        }
        if self.opts.json {
            return self.print_json(i, number, offset, line, kind, &spans);
        }
        if self.opts.only {
            for &(s, e) in &spans {
                self.buf.clear();
                self.prefix(i, number, kind);
                if self.opts.color {
                    self.sgr(MS);
                }
                self.buf.extend_from_slice(&body[s..e]);
                if self.opts.color {
                    self.buf.extend_from_slice(SGR_END);
                }
                self.buf.push(b'\n');
                if self.out.send(&self.buf[..])?.is_stop() {
                    return Ok(Flow::Stop);
                }
            }
            return Ok(Flow::Continue);
        }
        self.buf.clear();
        self.prefix(i, number, kind);
        let mut at = 0;
        if self.opts.color {
            for &(s, e) in &spans {
                self.buf.extend_from_slice(&body[at..s]);
                self.sgr(MS);
                self.buf.extend_from_slice(&body[s..e]);
                self.buf.extend_from_slice(SGR_END);
                at = e;
            }
        }
        self.buf.extend_from_slice(&body[at..]);
        self.buf.push(b'\n');
        self.out.send(&self.buf[..])
    }

    /// One JSON object for a line, ripgrep's --json shape.
    fn print_json(
        &mut self,
        i: usize,
        number: u64,
        offset: u64,
        line: &[u8],
        kind: Kind,
        spans: &[(usize, usize)],
    ) -> Result<Flow> {
        let data = |bytes: &[u8]| match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::json!({ "text": text }),
            Err(_) => serde_json::json!({
                "bytes": base64::engine::general_purpose::STANDARD.encode(bytes)
            }),
        };
        let submatches: Vec<_> = spans
            .iter()
            .map(|&(s, e)| serde_json::json!({"match": data(&line[s..e]), "start": s, "end": e}))
            .collect();
        let v = serde_json::json!({
            "type": if kind == Kind::Selected { "match" } else { "context" },
            "data": {
                "path": {"text": self.names[i]},
                "lines": data(line),
                "line_number": if number == 0 { None } else { Some(number) },
                "absolute_offset": offset,
                "submatches": submatches,
            },
        });
        self.buf.clear();
        self.buf.extend_from_slice(v.to_string().as_bytes());
        self.buf.push(b'\n');
        self.out.send(&self.buf[..])
    }

    /// One line of file `i`.
    fn line(&mut self, i: usize, number: u64, offset: u64, line: &[u8]) -> Result<Flow> {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let max = self.opts.max.unwrap_or(u64::MAX);
        if self.files[i].selected < max && self.is_selected(body) {
            self.files[i].selected += 1;
            self.status.selected.set(self.status.selected.get() + 1);
            if self.opts.quiet {
                self.finished = true;
                return Ok(Flow::Stop);
            }
            if self.opts.count {
                return Ok(Flow::Continue);
            }
            if self.binary.is_binary(line) {
                // A binary file: grep's message instead of its lines.
                self.binary.hit.set(true);
                self.files[i].done = true;
                return Ok(Flow::Stop);
            }
            while let Some((n, o, l)) = self.ring.pop_front() {
                if self.print(i, n, o, &l, Kind::Context)?.is_stop() {
                    return Ok(Flow::Stop);
                }
            }
            self.after_left = self.opts.after;
            return self.print(i, number, offset, line, Kind::Selected);
        }
        if self.opts.count {
            return Ok(Flow::Continue);
        }
        if self.after_left > 0 {
            self.after_left -= 1;
            return self.print(i, number, offset, line, Kind::Context);
        }
        if self.opts.before > 0 {
            let mut buf = if self.ring.len() as u64 == self.opts.before {
                self.ring.pop_front().map(|(_, _, b)| b).unwrap_or_default()
            } else {
                Vec::new()
            };
            buf.clear();
            buf.extend_from_slice(line);
            self.ring.push_back((number, offset, buf));
        }
        Ok(Flow::Continue)
    }
}

/// The number of newlines in the first `len` bytes of `path`.
fn count_lines(path: &std::path::Path, len: u64) -> io::Result<u64> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(0))?;
    let mut left = len;
    let mut buf = vec![0; 256 * 1024];
    let mut n = 0;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = file.read(&mut buf[..want])?;
        if got == 0 {
            break;
        }
        n += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
        left -= got as u64;
    }
    Ok(n)
}

impl<'a, O> Stage<Block<'a>> for Rich<O>
where
    O: for<'b> Stage<&'b [u8]>,
{
    fn send(&mut self, block: Block<'a>) -> Result<Flow> {
        let i = block.file();
        if self.current != Some(i) {
            self.current = Some(i);
            self.ring.clear();
            self.after_left = 0;
        }
        let mut number = self.first_line(i, block.byte_offset());
        let mut offset = block.byte_offset();
        self.files[i].seen = true;
        let max = self.opts.max.unwrap_or(u64::MAX);
        let mut flow = Flow::Continue;
        for line in block.lines() {
            if self.files[i].done {
                break;
            }
            if self.line(i, number, offset, line)?.is_stop() {
                flow = Flow::Stop;
                if !self.opts.quiet && !self.binary.hit.get() {
                    self.finished = true;
                }
                break;
            }
            offset += line.len() as u64;
            if number > 0 {
                number += 1;
            }
            if self.files[i].selected >= max && self.after_left == 0 {
                self.files[i].done = true;
            }
        }
        self.files[i].next_offset = Some(block.byte_offset() + block.bytes().len() as u64);
        self.files[i].next_line = number;
        if self.finished {
            return Ok(Flow::Stop);
        }
        if self.files[i].done {
            if self.opts.follow {
                if self.files.iter().all(|f| f.done) {
                    self.finished = true;
                    return Ok(Flow::Stop);
                }
                return Ok(Flow::Continue);
            }
            // Static: this file is read no further; the next one is.
            return Ok(Flow::Stop);
        }
        Ok(flow)
    }
}

impl<O: Lifecycle> Lifecycle for Rich<O>
where
    O: for<'b> Stage<&'b [u8]>,
{
    fn flush(&mut self) -> Result<()> {
        self.out.flush()
    }
    fn close(&mut self) -> Result<()> {
        if self.opts.follow && self.opts.count && !self.opts.quiet {
            for i in 0..self.files.len() {
                self.files[i].seen = true;
                if self.end_file(i)?.is_stop() {
                    break;
                }
            }
        }
        self.out.close()
    }
}
