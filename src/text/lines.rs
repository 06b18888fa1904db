//! [`Lines`]: the line source over any reader, and where to start reading
//! ([`Start`], [`seek_last_lines`]).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memchr::{memchr, memrchr, memrchr_iter};

use super::block::{Block, SplitLines};
use super::linebuf::{skip_lines, too_long, LineBuf};
use super::DEFAULT_MAX_LINE_LEN;
use crate::error::{Error, Result};
use crate::stage::{end_source, SourceEnd, Stage};

/// Bytes read at a time by [`Lines`]: large enough that a whole-chunk search
/// runs at memory speed, small enough to stay in the CPU's cache.
const CHUNK: usize = 256 * 1024;

/// Where reading starts: `tail -n N` or `tail -n +N`.
///
/// Parses from the `-n` argument's text: `"10"` is the last 10 lines, `"+5"`
/// starts at line 5 (`"+1"` and `"+0"` read everything), `"0"` starts at the
/// end.
///
/// # Examples
///
/// ```
/// use copipe::text::Start;
///
/// assert_eq!("10".parse::<Start>()?, Start::Last(10));
/// assert_eq!("+1".parse::<Start>()?, Start::From(1));
/// assert_eq!(Start::default(), Start::Last(10));
/// assert!("ten".parse::<Start>().is_err());
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Start {
    /// The last `n` lines (a final line without a newline counts).
    Last(u64),
    /// From 1-based line `n` on; `From(0)` is the same as `From(1)`.
    From(u64),
}

impl Default for Start {
    /// `tail`'s default: the last 10 lines.
    fn default() -> Start {
        Start::Last(10)
    }
}

impl Start {
    /// Lines to drop from the reading position.
    pub(crate) fn skip(self) -> u64 {
        match self {
            Start::Last(_) => 0,
            Start::From(n) => n.saturating_sub(1),
        }
    }
}

impl FromStr for Start {
    type Err = Error;

    fn from_str(s: &str) -> Result<Start> {
        let (from, digits) = match s.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('-').unwrap_or(s)),
        };
        let n: u64 = digits.parse().map_err(|_| {
            Error::usage(format!(
                "invalid number of lines `{s}`: expected N (the last N lines) or +N (from line N on)"
            ))
        })?;
        Ok(if from { Start::From(n) } else { Start::Last(n) })
    }
}

impl fmt::Display for Start {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Start::Last(n) => write!(f, "{n}"),
            Start::From(n) => write!(f, "+{n}"),
        }
    }
}

/// Finds the byte offset where the last `n` lines of `file` begin and seeks
/// there, reading backwards from the end in chunks (so a large file costs
/// only as much as its last lines). A final line without a newline counts as
/// a line. Returns the offset.
///
/// # Errors
///
/// An I/O error reading or seeking.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use copipe::text::seek_last_lines;
///
/// let mut f = tempfile::tempfile()?;
/// f.write_all(b"one\ntwo\nthree\nfour")?;
/// assert_eq!(seek_last_lines(&mut f, 2)?, 8);
/// let mut rest = String::new();
/// f.read_to_string(&mut rest)?;
/// assert_eq!(rest, "three\nfour");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn seek_last_lines(file: &mut File, n: u64) -> io::Result<u64> {
    let size = file.seek(SeekFrom::End(0))?;
    let offset = last_lines_offset(file, size, n)?;
    file.seek(SeekFrom::Start(offset))?;
    Ok(offset)
}

fn last_lines_offset(file: &mut File, size: u64, n: u64) -> io::Result<u64> {
    if n == 0 || size == 0 {
        return Ok(size);
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = size;
    let mut seen = 0u64;
    // The newline that ends the last line does not start a line after it.
    let mut skip_final_newline = true;
    while end > 0 {
        let len = end.min(buf.len() as u64) as usize;
        let start = end - len as u64;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..len])?;
        for i in memrchr_iter(b'\n', &buf[..len]) {
            let at = start + i as u64;
            if skip_final_newline && at == size - 1 {
                continue;
            }
            seen += 1;
            if seen == n {
                return Ok(at + 1);
            }
        }
        skip_final_newline = false;
        end = start;
    }
    Ok(0)
}

/// The line source: reads any reader to its end and pushes its lines.
///
/// Lines are bytes, sent with their `\n` terminator; invalid UTF-8 passes
/// through unchanged, and a final line without a newline is still a line.
/// [`run_blocks`](Lines::run_blocks) hands on whole chunks of lines
/// ([`Block`]s) for stages that search a chunk at once, such as
/// [`Grep`](super::Grep); [`run`](Lines::run) sends one line at a time.
///
/// Memory is bounded: one buffer of 256 KiB that grows only while a single
/// line does not fit, up to [`max_line_len`](Lines::max_line_len) (16 MiB
/// by default). A longer line stops the source with an error that names its
/// byte offset, after everything before it has been sent and the target
/// closed; with [`skip_long_lines`](Lines::skip_long_lines) it is skipped
/// and reported instead, and reading goes on.
///
/// # Examples
///
/// ```
/// use copipe::{StageExt, sinks::Collect};
/// use copipe::text::Lines;
///
/// let mut out = Collect::new();
/// Lines::new(&b"caf\xe9\nlast"[..]).run((&mut out).owned())?;
/// assert_eq!(out.items(), &[b"caf\xe9\n".to_vec(), b"last".to_vec()]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug)]
pub struct Lines<R> {
    reader: R,
    path: Option<PathBuf>,
    max_line: usize,
    skip: u64,
    offset: u64,
    file: usize,
    stop: Option<Arc<AtomicBool>>,
    long_lines: Option<LongLines>,
    stream: bool,
}

/// What a [`Lines`] does with a line longer than its maximum: calls this
/// with the line's byte offset and the maximum, and goes on.
struct LongLines(Box<dyn FnMut(u64, usize)>);

impl fmt::Debug for LongLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LongLines(..)")
    }
}

impl<R: Read> Lines<R> {
    /// A source reading `reader` from its current position.
    pub fn new(reader: R) -> Lines<R> {
        Lines {
            reader,
            path: None,
            max_line: DEFAULT_MAX_LINE_LEN,
            skip: 0,
            offset: 0,
            file: 0,
            stop: None,
            long_lines: None,
            stream: false,
        }
    }

    /// Sets the longest line accepted, in bytes with its terminator.
    pub fn max_line_len(mut self, bytes: usize) -> Lines<R> {
        self.max_line = bytes;
        self
    }

    /// Skips a line longer than [`max_line_len`](Lines::max_line_len)
    /// instead of stopping: `report` is called once with its byte offset and
    /// the maximum, and every line after it is still read.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use copipe::{StageExt, sinks::Collect};
    /// use copipe::text::Lines;
    ///
    /// let skipped = Rc::new(RefCell::new(Vec::new()));
    /// let seen = Rc::clone(&skipped);
    /// let mut out = Collect::new();
    /// Lines::new(&b"a\nvery long\nb\n"[..])
    ///     .max_line_len(4)
    ///     .skip_long_lines(move |offset, _max| seen.borrow_mut().push(offset))
    ///     .run((&mut out).owned())?;
    /// assert_eq!(out.items(), &[b"a\n".to_vec(), b"b\n".to_vec()]);
    /// assert_eq!(*skipped.borrow(), [2]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn skip_long_lines(mut self, report: impl FnMut(u64, usize) + 'static) -> Lines<R> {
        self.long_lines = Some(LongLines(Box::new(report)));
        self
    }

    /// Streams: flushes the target each time a read returns less than it
    /// asked for (a pipe or terminal has nothing more for now), so a line
    /// goes out as soon as it is read rather than when a chunk fills.
    pub fn stream(mut self, yes: bool) -> Lines<R> {
        self.stream = yes;
        self
    }

    /// Drops the first `n` lines.
    pub fn skip_lines(mut self, n: u64) -> Lines<R> {
        self.skip = n;
        self
    }

    /// Names the input in errors.
    pub fn with_path(mut self, path: impl AsRef<Path>) -> Lines<R> {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Tags every block with file number `file` (see [`Block::file`]).
    pub fn file_index(mut self, file: usize) -> Lines<R> {
        self.file = file;
        self
    }

    /// Stops reading (closing the target, as at end of input) once `flag`
    /// is set, for example by a SIGINT handler. Checked once per chunk.
    pub fn stop_flag(mut self, flag: Arc<AtomicBool>) -> Lines<R> {
        self.stop = Some(flag);
        self
    }

    /// Reads to the end, sending each line to `target`, then closes it.
    ///
    /// # Errors
    ///
    /// The crate's [`end_source`] rule: a read error or a line longer than
    /// the maximum, with the path and byte offset (the target is closed
    /// first, so every line before it is out, and a failure to close is
    /// dropped: the input's error is the cause); or the target's error
    /// (the target is not closed).
    pub fn run<S>(self, target: S) -> Result<()>
    where
        S: for<'a> Stage<&'a [u8]>,
    {
        self.run_blocks(SplitLines::new(target))
    }

    /// Reads to the end, sending whole chunks of lines ([`Block`]s) to
    /// `target`, then closes it.
    ///
    /// # Errors
    ///
    /// As for [`run`](Lines::run).
    pub fn run_blocks<S>(mut self, mut target: S) -> Result<()>
    where
        S: for<'a> Stage<Block<'a>>,
    {
        let mut lb = LineBuf::new(CHUNK, self.max_line);
        lb.reset(self.offset);
        lb.set_skip(self.skip);
        lb.set_file(self.file);
        lb.set_skip_long_lines(self.long_lines.is_some());
        let end = loop {
            if self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                break SourceEnd::Done;
            }
            let n = match lb.read_from(&mut self.reader) {
                Ok(n) => n,
                // Our own input failed (a read error, a line too long):
                // `end_source` hands on what was accepted first.
                Err(e) => {
                    break SourceEnd::Input(match &self.path {
                        Some(p) => e.with_path(p),
                        None => e,
                    })
                }
            };
            if let (Some(offset), Some(report)) = (lb.take_long_line(), &mut self.long_lines) {
                (report.0)(offset, lb.max_line());
            }
            if n == 0 {
                // The last line, if it has no newline.
                break SourceEnd::after_send(lb.finish(&mut target)).unwrap_or(SourceEnd::Done);
            }
            if let Some(end) = SourceEnd::after_send(lb.emit(&mut target)) {
                break end;
            }
            if self.stream && lb.was_short_read() {
                if let Some(end) = SourceEnd::after_flush(target.flush()) {
                    break end;
                }
            }
        };
        end_source(&mut target, end)
    }

    /// Sends the lines of `data`, the whole input already in memory (for
    /// example a mapped file), as [`run_blocks`](Lines::run_blocks) would
    /// send them after reading it: from the start position ([`Lines::start`]
    /// or [`Lines::skip_lines`]) to the end, in blocks of whole lines that
    /// reference `data` (nothing is copied), with the same line length
    /// limit, long-line skipping, file index and stop flag, and the same
    /// [`end_source`] ending. The reader is not read: `data` stands for it.
    ///
    /// # Errors
    ///
    /// As for [`run`](Lines::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::{StageExt, sinks::Collect};
    /// use copipe::text::Lines;
    ///
    /// let data = b"a\nb\nlast";
    /// let mut out = Collect::new();
    /// Lines::new(std::io::empty())
    ///     .skip_lines(1)
    ///     .run_blocks_over(data, copipe::text::SplitLines::new((&mut out).owned()))?;
    /// assert_eq!(out.items(), &[b"b\n".to_vec(), b"last".to_vec()]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn run_blocks_over<S>(mut self, data: &[u8], mut target: S) -> Result<()>
    where
        S: for<'a> Stage<Block<'a>>,
    {
        let max = self.max_line.max(1);
        // A block never holds more than `max` bytes, so every line that ends
        // inside one is short enough; a line running past the window is
        // measured alone (the read path's rule: too long when its bytes
        // before the `\n`, or the end, reach `max`).
        let window = CHUNK.min(max);
        let mut pos = usize::try_from(self.offset).map_or(data.len(), |o| o.min(data.len()));
        let mut skip = self.skip;
        let end = loop {
            if self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                break SourceEnd::Done;
            }
            if pos >= data.len() {
                break SourceEnd::Done;
            }
            let wend = (pos + window).min(data.len());
            let complete = match memrchr(b'\n', &data[pos..wend]) {
                Some(i) => pos + i + 1,
                None => {
                    let nl = memchr(b'\n', &data[wend..]).map(|i| wend + i);
                    if nl.unwrap_or(data.len()) - pos >= max {
                        let Some(report) = &mut self.long_lines else {
                            let e = too_long(pos as u64, max);
                            break SourceEnd::Input(match &self.path {
                                Some(p) => e.with_path(p),
                                None => e,
                            });
                        };
                        (report.0)(pos as u64, max);
                        pos = nl.map_or(data.len(), |n| n + 1);
                        continue;
                    }
                    nl.map_or(data.len(), |n| n + 1)
                }
            };
            let start = pos + skip_lines(&data[pos..complete], &mut skip);
            pos = complete;
            if start == complete {
                continue;
            }
            let block = Block::new(&data[start..complete], start as u64).with_file(self.file);
            if let Some(end) = SourceEnd::after_send(target.send(block)) {
                break end;
            }
        };
        end_source(&mut target, end)
    }

    /// The reader.
    pub fn get_ref(&self) -> &R {
        &self.reader
    }
}

impl Lines<File> {
    /// Opens `path` for reading; errors name the path.
    ///
    /// # Errors
    ///
    /// The file cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<Lines<File>> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::from(e).with_path(path))?;
        Ok(Lines::new(file).with_path(path))
    }

    /// Positions the file where `start` says: seeks to its last `n` lines,
    /// or arranges to skip to line `n`.
    ///
    /// # Errors
    ///
    /// An I/O error seeking (a pipe cannot seek back: read it with
    /// `Start::From`).
    pub fn start(mut self, start: Start) -> Result<Lines<File>> {
        match start {
            Start::Last(n) => {
                self.offset = seek_last_lines(&mut self.reader, n).map_err(|e| {
                    let e = Error::from(e);
                    match &self.path {
                        Some(p) => e.with_path(p),
                        None => e,
                    }
                })?;
                self.skip = 0;
            }
            Start::From(_) => self.skip = start.skip(),
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn offset_of(content: &[u8], n: u64) -> u64 {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        seek_last_lines(&mut f, n).unwrap()
    }

    #[test]
    fn last_lines_offsets() {
        assert_eq!(offset_of(b"a\nb\nc\n", 1), 4);
        assert_eq!(offset_of(b"a\nb\nc\n", 2), 2);
        assert_eq!(offset_of(b"a\nb\nc\n", 3), 0);
        assert_eq!(offset_of(b"a\nb\nc\n", 9), 0);
        assert_eq!(offset_of(b"a\nb\nc", 1), 4);
        assert_eq!(offset_of(b"a\nb\nc", 0), 5);
        assert_eq!(offset_of(b"", 3), 0);
        assert_eq!(offset_of(b"\n\n", 1), 1);
    }

    #[test]
    fn last_lines_across_chunk_boundaries() {
        let line = vec![b'x'; 999];
        let mut content = Vec::new();
        for _ in 0..300 {
            content.extend_from_slice(&line);
            content.push(b'\n');
        }
        assert_eq!(offset_of(&content, 100), 200 * 1000);
    }

    #[test]
    fn start_parses_tail_forms() {
        assert_eq!("-3".parse::<Start>().unwrap(), Start::Last(3));
        assert_eq!("+0".parse::<Start>().unwrap(), Start::From(0));
        assert_eq!(Start::From(0).skip(), 0);
        assert_eq!(Start::From(3).skip(), 2);
        assert!("+x".parse::<Start>().is_err());
        assert_eq!(Start::From(4).to_string(), "+4");
    }

    /// Gives `data`, then fails.
    struct FailingReader(&'static [u8]);

    impl Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Records lines and whether it was closed; fails its `send` after
    /// `send_ok` lines and its `close` when `close_fails`.
    #[derive(Default)]
    struct Probe {
        lines: Vec<Vec<u8>>,
        send_ok: Option<usize>,
        close_fails: bool,
        closed: bool,
    }

    impl<'a> Stage<&'a [u8]> for Probe {
        fn send(&mut self, line: &'a [u8]) -> Result<crate::Flow> {
            if self.send_ok.is_some_and(|n| self.lines.len() >= n) {
                return Err(io::Error::other("target broke").into());
            }
            self.lines.push(line.to_vec());
            Ok(crate::Flow::Continue)
        }
    }

    impl crate::Lifecycle for Probe {
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            self.closed = true;
            if self.close_fails {
                return Err(io::Error::other("close failed").into());
            }
            Ok(())
        }
    }

    #[test]
    fn an_input_error_closes_the_target_and_wins_over_close() {
        // end_source: the input failed, so the target is closed (the lines
        // before are out) and the input's error is returned, not close's.
        let mut probe = Probe {
            close_fails: true,
            ..Probe::default()
        };
        let err = Lines::new(FailingReader(b"a\nb\n"))
            .with_path("in.log")
            .run(&mut probe)
            .unwrap_err();
        assert!(err.to_string().contains("disk on fire"), "{err}");
        assert!(err.to_string().contains("in.log"), "{err}");
        assert!(probe.closed);
        assert_eq!(probe.lines, [b"a\n".to_vec(), b"b\n".to_vec()]);

        // A line over the maximum is the input's error too.
        let mut probe = Probe {
            close_fails: true,
            ..Probe::default()
        };
        let err = Lines::new(&b"ok\nxxxxxxxxxxxxxxxxxxxxxxxx\n"[..])
            .max_line_len(8)
            .run(&mut probe)
            .unwrap_err();
        assert!(!err.to_string().contains("close failed"), "{err}");
        assert!(probe.closed);
        assert_eq!(probe.lines, [b"ok\n".to_vec()]);
    }

    /// What a run gives: each block (its bytes, offset and file), the long
    /// lines reported, and the error's text.
    type Outcome = (Vec<(Vec<u8>, u64, usize)>, Vec<u64>, Option<String>);

    /// Collects blocks whole.
    #[derive(Default)]
    struct Blocks(Vec<(Vec<u8>, u64, usize)>);

    impl<'a> Stage<Block<'a>> for &mut Blocks {
        fn send(&mut self, b: Block<'a>) -> Result<crate::Flow> {
            self.0.push((b.bytes().to_vec(), b.byte_offset(), b.file()));
            Ok(crate::Flow::Continue)
        }
    }

    impl crate::Lifecycle for &mut Blocks {
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            Ok(())
        }
    }

    /// How [`outcome`] runs the source.
    #[derive(Clone, Copy)]
    enum Mode {
        Read,
        Mapped,
    }

    /// Runs `data` (in a file) as `mode` says, from `start`.
    fn outcome(data: &[u8], start: Start, max: usize, skip_long: bool, mode: Mode) -> Outcome {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        let long = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = std::rc::Rc::clone(&long);
        let mut lines = Lines::new(f)
            .with_path("in.log")
            .start(start)
            .unwrap()
            .max_line_len(max)
            .file_index(3);
        if skip_long {
            lines = lines.skip_long_lines(move |o, _| seen.borrow_mut().push(o));
        }
        let mut blocks = Blocks::default();
        let res = match mode {
            Mode::Read => lines.run_blocks(&mut blocks),
            Mode::Mapped => lines.run_blocks_over(data, &mut blocks),
        };
        let long = long.borrow().clone();
        (blocks.0, long, res.err().map(|e| e.to_string()))
    }

    /// The lines of an outcome's blocks, with their offsets (blocks may be
    /// cut differently).
    fn lines_of(o: &Outcome) -> Outcome {
        let mut lines = Vec::new();
        for (bytes, offset, file) in &o.0 {
            let mut at = *offset;
            for l in Block::new(bytes, 0).lines() {
                lines.push((l.to_vec(), at, *file));
                at += l.len() as u64;
            }
        }
        (lines, o.1.clone(), o.2.clone())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// A run over the bytes in memory sends what reading them sends:
        /// the same lines at the same offsets, the same long lines skipped
        /// or the same error, from any start.
        #[test]
        fn in_memory_equals_read(
            parts in proptest::collection::vec((0usize..40, proptest::bool::ANY), 0..30),
            last in 0usize..12,
            max in 1usize..30,
            skip_long in proptest::bool::ANY,
            from_end in proptest::bool::ANY,
            n in 0u64..12,
        ) {
            let mut data = Vec::new();
            for (len, nl) in parts {
                data.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                if nl {
                    data.push(b'\n');
                }
            }
            data.extend(std::iter::repeat_n(b'z', last));
            let start = if from_end { Start::Last(n) } else { Start::From(n) };
            let read = outcome(&data, start, max, skip_long, Mode::Read);
            let mapped = outcome(&data, start, max, skip_long, Mode::Mapped);
            proptest::prop_assert_eq!(lines_of(&read), lines_of(&mapped));
        }
    }

    #[test]
    fn in_memory_blocks_reference_big_inputs_in_windows() {
        let line = b"0123456789abcdef\n".repeat(40_000);
        let (blocks, long, err) = outcome(&line, Start::From(1), 1 << 20, false, Mode::Mapped);
        assert!(long.is_empty() && err.is_none());
        assert!(blocks.len() > 2, "{}", blocks.len());
        assert!(blocks
            .iter()
            .all(|b| b.0.len() <= CHUNK && b.0.ends_with(b"\n")));
        assert_eq!(blocks.iter().map(|b| b.0.len()).sum::<usize>(), line.len());
    }

    #[test]
    fn a_target_error_is_returned_without_closing() {
        let mut probe = Probe {
            send_ok: Some(1),
            ..Probe::default()
        };
        let err = Lines::new(&b"a\nb\nc\n"[..]).run(&mut probe).unwrap_err();
        assert!(err.to_string().contains("target broke"), "{err}");
        assert!(!probe.closed);
        // At the end of input, close's own error is the result.
        let mut probe = Probe {
            close_fails: true,
            ..Probe::default()
        };
        let err = Lines::new(&b"a\nb"[..]).run(&mut probe).unwrap_err();
        assert!(err.to_string().contains("close failed"), "{err}");
        assert_eq!(probe.lines.len(), 2);
    }
}
