//! [`ParallelParse`]: the expat-style source over a document in memory,
//! split into chunks parsed on several threads, with output and errors
//! exactly those of one sequential parse.
//!
//! See [`ParallelParse`] for how the document is cut and why the result is
//! exact.

use std::any::Any;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{Error, Result};
use crate::stage::Stage;
use crate::xml::chunk::{ChunkEnd, ChunkSpec};
use crate::xml::event::XmlEvent;
use crate::xml::expat::{expat_chunk, expat_chunk_wanted, expat_parse, TextWanted};
use crate::xml::input::encoding::Decoded;
use crate::xml::input::XmlInput;
use crate::xml::pull::slice::bom_len;

/// The smallest and largest chunk chosen when the caller does not say.
const AUTO_CHUNK_MIN: usize = 512 * 1024;
const AUTO_CHUNK_MAX: usize = 8 * 1024 * 1024;

/// Chunks per thread chosen when the caller does not say: many, so that
/// the threads finish within a small chunk of each other (the last chunk
/// of one thread is the other's idle time) and output starts early. 16
/// rather than 4: on the 30 MB feed with 2 threads, chunks of 0.9 MB
/// instead of 3.75 MB took `copipe records` from 112 to 96 ms and `copipe
/// buses` from 129 to 114 ms (medians of 11 alternated runs, load 1).
const AUTO_CHUNKS_PER_THREAD: usize = 16;

/// Parses a document held in memory with the expat-style source on several
/// threads; the output and errors are those of
/// [`expat_parse`](crate::xml::expat_parse) with the same stages.
///
/// The document is cut before start tags named `boundary` (e.g. `<bus`)
/// found after every `chunk_bytes` or so. The elements open at the first
/// `boundary` element (the root, or the root and its other ancestors, as
/// `<rss><channel>` for `<item>`) are the ones every cut is made in. A cut
/// found by searching bytes is only a guess: it may sit inside a comment,
/// a CDATA section, an attribute value, a nested element or another
/// parent. So each chunk's parser starts as if the guess were right
/// (inside those elements, nothing pending), and stops at the next cut; a
/// cut is confirmed only when the parser of the chunk before it reaches
/// that very byte between two events, with exactly those elements (the
/// same byte offsets) open and no character data pending. From such a
/// point a fresh parser sees exactly the events the sequential one would,
/// so the chunk after a confirmed cut is exact. When a cut is not
/// confirmed, the chunk after it is thrown away and the chunk before it is
/// parsed again, sequentially, on to the next cut that is confirmed (so
/// records under a parent other than the first record's are parsed
/// sequentially).
///
/// Each chunk gets its own stages, built by the caller's factory and
/// writing into an in-memory buffer ([`ChunkWriter`]); the buffers are
/// written out in input order as the chunks are confirmed. So the stages
/// must not care where the document was cut: between two `boundary`
/// elements under the first one's parent they must be as if new, apart
/// from totals the caller adds up (the closed stages of the chunks used are
/// returned for that). [`records`](crate::xml::records) with the same tag
/// and the stages after it qualify (a document whose root element is
/// itself named `boundary` is parsed sequentially).
///
/// Errors are the sequential parser's: same message, line, column and byte
/// offset (positions count from the start of the document, so lines are
/// the newlines of earlier chunks plus the chunk's own), and everything
/// completed before the error is written out before it is returned.
///
/// The calling thread takes part in the parsing, so `threads(2)` starts
/// one more thread.
///
/// # Examples
///
/// ```
/// use copipe::xml::{bus_locations, filter_on_field, records, ParallelParse};
///
/// let mut doc = String::from("<buses>\n");
/// for id in 0..100 {
///     doc += &format!("<bus><id>{id}</id><route>{}</route><direction>North Bound</direction>\
///                      <latitude>41.9</latitude><longitude>-87.6</longitude></bus>\n", id % 3);
/// }
/// doc += "</buses>\n";
/// let mut out = Vec::new();
/// let (stages, result) = ParallelParse::new("bus")
///     .threads(2)
///     .chunk_bytes(1000)
///     .run(doc.as_bytes(), |w| records("bus", filter_on_field("route", "1", bus_locations(w))), &mut out);
/// result?;
/// assert!(stages.len() > 1, "the document was cut");
/// let out = String::from_utf8(out).unwrap();
/// assert_eq!(out.lines().count(), 33);
/// assert!(out.starts_with("1,1,\"North Bound\",41.9,-87.6\n1,4,"));
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ParallelParse {
    boundary: String,
    threads: usize,
    chunk_bytes: Option<usize>,
    path: Option<PathBuf>,
}

impl ParallelParse {
    /// Cuts before start tags named `boundary` that are children of the
    /// root element; uses as many threads as the machine has cores.
    pub fn new(boundary: &str) -> ParallelParse {
        ParallelParse {
            boundary: boundary.to_string(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            chunk_bytes: None,
            path: None,
        }
    }

    /// Threads parsing at once, the calling one included (at least 1; 1
    /// parses sequentially on the calling thread).
    pub fn threads(mut self, n: usize) -> ParallelParse {
        self.threads = n.max(1);
        self
    }

    /// The least size of a chunk (at least 1 byte). By default a quarter of
    /// the document's share per thread, between 512 KiB and 8 MiB; a
    /// document no larger than one chunk is parsed sequentially.
    pub fn chunk_bytes(mut self, bytes: usize) -> ParallelParse {
        self.chunk_bytes = Some(bytes.max(1));
        self
    }

    /// Names the input in error messages (`FILE:LINE:COL ...`).
    pub fn with_path(mut self, path: impl AsRef<Path>) -> ParallelParse {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Parses `bytes`, feeding each chunk's events into stages made by
    /// `make` (given the chunk's output buffer) and writing the buffers to
    /// `out` in input order.
    ///
    /// Returns the stages of the chunks that made up the parse, in order
    /// and closed (so the caller can add up their totals), and the
    /// outcome. A `BrokenPipe` from `out` ends the parse quietly, as a
    /// closed pipe does for [`Printer`](crate::sinks::Printer).
    ///
    /// # Errors
    ///
    /// As [`expat_parse`](crate::xml::expat_parse): malformed XML with
    /// the same position and message as a sequential parse (all output of
    /// the records completed before it is written first), an error of a
    /// stage, or an error writing to `out`.
    ///
    /// # Panics
    ///
    /// A panic in a stage of a chunk that is part of the parse is resumed
    /// on the calling thread.
    pub fn run<S, F, W>(&self, bytes: &[u8], make: F, out: W) -> (Vec<S>, Result<()>)
    where
        S: for<'a> Stage<XmlEvent<'a>> + Send,
        F: Fn(ChunkWriter) -> S + Sync,
        W: Write,
    {
        self.run_with(bytes, make, out, expat_chunk::<S>)
    }

    /// [`run`](ParallelParse::run) for stages that say which character
    /// data they read ([`TextWanted`]): each chunk is parsed as
    /// [`expat_parse_wanted`](crate::xml::expat_parse_wanted) does, so the
    /// text no stage wants is checked but not gathered. The output and
    /// errors are those of `expat_parse_wanted` with the same stages.
    ///
    /// # Errors
    ///
    /// As [`run`](ParallelParse::run).
    ///
    /// # Panics
    ///
    /// As [`run`](ParallelParse::run).
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::xml::{element_records, record_writer, ParallelParse, RecordFormat};
    ///
    /// let mut doc = String::from("<r>\n");
    /// for id in 0..100 {
    ///     doc += &format!("<page><title>T{id}</title><id>{id}</id><text>{}</text></page>\n", "x".repeat(100));
    /// }
    /// doc += "</r>\n";
    /// let mut out = Vec::new();
    /// let (stages, result) = ParallelParse::new("page").threads(2).chunk_bytes(1000).run_wanted(
    ///     doc.as_bytes(),
    ///     |w| {
    ///         let writer = record_writer(RecordFormat::Csv, w).fields(["title", "id"]).no_header();
    ///         element_records("page", writer).only(["title", "id"])
    ///     },
    ///     &mut out,
    /// );
    /// result?;
    /// assert!(stages.len() > 1, "the document was cut");
    /// let out = String::from_utf8(out).unwrap();
    /// assert_eq!(out.lines().count(), 100);
    /// assert!(out.starts_with("T0,0\nT1,1\n"));
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn run_wanted<S, F, W>(&self, bytes: &[u8], make: F, out: W) -> (Vec<S>, Result<()>)
    where
        S: for<'a> Stage<XmlEvent<'a>> + TextWanted + Send,
        F: Fn(ChunkWriter) -> S + Sync,
        W: Write,
    {
        self.run_with(bytes, make, out, expat_chunk_wanted::<S>)
    }

    /// [`run`](ParallelParse::run), each chunk parsed by `chunk`.
    fn run_with<S, F, W>(
        &self,
        bytes: &[u8],
        make: F,
        out: W,
        chunk: ChunkParse<S>,
    ) -> (Vec<S>, Result<()>)
    where
        S: for<'a> Stage<XmlEvent<'a>> + Send,
        F: Fn(ChunkWriter) -> S + Sync,
        W: Write,
    {
        // Not UTF-8: parsed as decoded to UTF-8, errors mapped back to
        // input offsets (see `input::encoding`).
        match crate::xml::input::encoding::decode_bytes(bytes) {
            Ok(Decoded::Utf8) => {}
            Ok(Decoded::Text(utf8, origin)) => {
                let (stages, r) = self.run_utf8(&utf8, make, out, chunk);
                return (stages, r.map_err(|e| origin.remap(bytes, e)));
            }
            // A malformed sequence: parsed sequentially, as a stream (with
            // every text delivered: a stage that does not want some
            // ignores it, so the output is the same).
            Ok(Decoded::Cut(..)) => return self.run_cut(bytes, make, out),
            Err(e) => {
                let e = match &self.path {
                    Some(p) => e.with_path(p),
                    None => e,
                };
                return (Vec::new(), Err(e));
            }
        }
        self.run_utf8(bytes, make, out, chunk)
    }

    /// [`run`](ParallelParse::run) on a document with a malformed
    /// sequence in its encoding: one sequential parse.
    #[cold]
    fn run_cut<S, F, W>(&self, bytes: &[u8], make: F, mut out: W) -> (Vec<S>, Result<()>)
    where
        S: for<'a> Stage<XmlEvent<'a>> + Send,
        F: Fn(ChunkWriter) -> S + Sync,
        W: Write,
    {
        let writer = ChunkWriter::default();
        let mut stage = make(writer.clone());
        let mut input = XmlInput::from_bytes(bytes);
        if let Some(p) = &self.path {
            input = input.with_path(p);
        }
        let end = expat_parse(input, &mut stage);
        if let Err(e) = out.write_all(&writer.take()) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return (vec![stage], Ok(()));
            }
            return (vec![stage], Err(Error::from(e)));
        }
        let flushed = flush(&mut out);
        (vec![stage], flushed.and(end))
    }

    /// [`run`](ParallelParse::run) on a document read as UTF-8.
    fn run_utf8<S, F, W>(
        &self,
        bytes: &[u8],
        make: F,
        mut out: W,
        chunk: ChunkParse<S>,
    ) -> (Vec<S>, Result<()>)
    where
        S: for<'a> Stage<XmlEvent<'a>> + Send,
        F: Fn(ChunkWriter) -> S + Sync,
        W: Write,
    {
        let (starts, open) = self.plan(bytes);
        let job = Job {
            bytes,
            starts: &starts,
            open: &open,
            make: &make,
            chunk,
            path: self.path.as_deref(),
            slots: Mutex::new((0..starts.len()).map(|_| None).collect()),
            ready: Condvar::new(),
            next: AtomicUsize::new(0),
            cancel: AtomicBool::new(false),
        };
        if starts.len() == 1 {
            let done = job.parse(0, Mode::Sequential);
            return job.collect(done, &mut out);
        }
        std::thread::scope(|scope| {
            for n in 1..self.threads {
                let job = &job;
                let spawned = std::thread::Builder::new()
                    .name(format!("copipe-xml-{n}"))
                    .spawn_scoped(scope, move || job.work());
                // Without the thread, the calling one does its share.
                if spawned.is_err() {
                    break;
                }
            }
            let outcome = job.merge(&mut out);
            job.cancel.store(true, Ordering::Relaxed);
            outcome
        })
    }

    /// The chunks' first bytes (the first is 0) and the `<` of the
    /// elements open at every cut (the root's, then the other ancestors'
    /// of the first `boundary` element); one chunk when the document
    /// should not be cut.
    fn plan(&self, bytes: &[u8]) -> (Vec<u64>, Vec<u64>) {
        let single = (vec![0], Vec::new());
        let chunk = self.chunk_bytes.unwrap_or_else(|| {
            (bytes.len() / (self.threads * AUTO_CHUNKS_PER_THREAD))
                .clamp(AUTO_CHUNK_MIN, AUTO_CHUNK_MAX)
        });
        if self.threads == 1 || bytes.len() <= chunk || self.boundary.is_empty() {
            return single;
        }
        let Some((open, open_end)) = find_open(bytes, &self.boundary) else {
            return single;
        };
        let mut tag = Vec::with_capacity(self.boundary.len() + 1);
        tag.push(b'<');
        tag.extend_from_slice(self.boundary.as_bytes());
        let finder = memchr::memmem::Finder::new(&tag);
        let mut starts = vec![0u64];
        let mut from = open_end;
        loop {
            let last = *starts.last().unwrap_or(&0) as usize;
            from = from.max(last.saturating_add(chunk));
            let Some(found) = find_tag(bytes, &finder, tag.len(), from) else {
                break;
            };
            starts.push(found as u64);
            from = found + 1;
        }
        if starts.len() == 1 {
            return single;
        }
        (starts, open)
    }
}

/// The `<` of the elements open at the first `boundary` element (the root
/// element's first, then each ancestor's of it), and the end of the
/// innermost one's start tag; None if there is no such element, or the
/// root element is one, or the prologue declares entities.
///
/// Cuts are then guessed before later `<boundary` and confirmed only where
/// the parse finds exactly these elements open: all of them for records
/// under one parent (`<rss><channel><item>`, or children of the root).
fn find_open(bytes: &[u8], boundary: &str) -> Option<(Vec<u64>, usize)> {
    let mut reader = Reader::from_reader(bytes);
    // quick-xml's positions do not count a byte order mark.
    let bom = bom_len(bytes, 0);
    loop {
        let at = bom + reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if e.name().as_ref() == boundary.as_bytes() {
                    return None;
                }
                let root_end = (bom + reader.buffer_position()) as usize;
                // No `<boundary` at all: nothing to cut (and no scan of
                // the whole document to find that out).
                let mut tag = b"<".to_vec();
                tag.extend_from_slice(boundary.as_bytes());
                memchr::memmem::find(bytes.get(root_end..)?, &tag)?;
                return ancestors_of_first(&mut reader, bom, boundary, (at, root_end));
            }
            // A DOCTYPE with an external ID or an internal subset may
            // declare entities: such a document is parsed in one piece.
            Ok(Event::DocType(e)) if e.iter().any(|&b| b == b'[' || b.is_ascii_whitespace()) => {
                return None
            }
            Ok(Event::Eof | Event::Empty(_) | Event::End(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The elements open at the first `boundary` element after the root's
/// start tag (where `reader` is; `root` is its `<` and end), as
/// [`find_open`] returns them.
fn ancestors_of_first(
    reader: &mut Reader<&[u8]>,
    bom: u64,
    boundary: &str,
    root: (u64, usize),
) -> Option<(Vec<u64>, usize)> {
    let mut open = vec![root];
    loop {
        let at = bom + reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if e.name().as_ref() == boundary.as_bytes() {
                    break;
                }
                open.push((at, (bom + reader.buffer_position()) as usize));
            }
            Ok(Event::Empty(e)) => {
                if e.name().as_ref() == boundary.as_bytes() {
                    break;
                }
            }
            Ok(Event::End(_)) => {
                open.pop();
                // The root ended with no `boundary` in it.
                if open.is_empty() {
                    return None;
                }
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    let end = open.last()?.1;
    Some((open.into_iter().map(|(at, _)| at).collect(), end))
}

/// The first `<boundary` at or after `from` followed by a byte that ends a
/// name (so `<bus` does not match `<buses`).
fn find_tag(
    bytes: &[u8],
    finder: &memchr::memmem::Finder<'_>,
    len: usize,
    mut from: usize,
) -> Option<usize> {
    while from < bytes.len() {
        let at = from + finder.find(&bytes[from..])?;
        match bytes.get(at + len) {
            Some(b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/') => return Some(at),
            _ => from = at + 1,
        }
    }
    None
}

/// Where a chunk's stages write: an in-memory buffer, written out by
/// [`ParallelParse::run`] once the chunk is known to be part of the parse.
#[derive(Debug, Clone, Default)]
pub struct ChunkWriter {
    buf: Arc<Mutex<Vec<u8>>>,
}

impl ChunkWriter {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while writing leaves bytes, never a broken Vec.
        self.buf.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.lock())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.lock().extend_from_slice(data);
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.lock().extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A parse of one chunk into its stage (see [`expat_chunk`]).
type ChunkParse<S> = fn(&[u8], ChunkSpec<'_>, S, Option<&Path>) -> (S, Result<ChunkEnd>);

/// How a chunk is parsed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// From a guessed cut to the next cut, giving up there if not at rest.
    Guess,
    /// From a confirmed start, through later cuts until one is confirmed.
    Confirmed,
    /// The whole document.
    Sequential,
}

/// One chunk's result.
struct Parsed<S> {
    stage: Option<S>,
    output: Vec<u8>,
    end: Result<ChunkEnd>,
    panic: Option<Box<dyn Any + Send>>,
}

/// The work shared by the threads of one [`ParallelParse::run`].
struct Job<'j, S, F> {
    bytes: &'j [u8],
    starts: &'j [u64],
    /// The `<` of the elements open at every cut.
    open: &'j [u64],
    make: &'j F,
    /// How a chunk is parsed: [`expat_chunk`] or [`expat_chunk_wanted`].
    chunk: ChunkParse<S>,
    path: Option<&'j Path>,
    /// Results of guessed chunks, by index.
    slots: Mutex<Vec<Option<Parsed<S>>>>,
    ready: Condvar,
    /// The next chunk no thread has taken.
    next: AtomicUsize,
    /// Set when the merge is over: threads take no more chunks.
    cancel: AtomicBool,
}

impl<S, F> Job<'_, S, F>
where
    S: for<'a> Stage<XmlEvent<'a>> + Send,
    F: Fn(ChunkWriter) -> S + Sync,
{
    fn lock_slots(&self) -> MutexGuard<'_, Vec<Option<Parsed<S>>>> {
        // Slots are only assigned whole, so a poisoned lock holds no
        // half-written state.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parses chunk `i` as `mode` says.
    fn parse(&self, i: usize, mode: Mode) -> Parsed<S> {
        let start = self.starts[i];
        let len = self.bytes.len() as u64;
        let spec = match mode {
            Mode::Sequential => ChunkSpec {
                start: 0,
                open: &[],
                inside: false,
                stops: &[],
                give_up: false,
                expect_end: len,
            },
            Mode::Guess | Mode::Confirmed => {
                let after = if mode == Mode::Guess { i + 1 } else { i + 2 };
                let stops = self.starts.get(after..).unwrap_or_default();
                ChunkSpec {
                    start,
                    open: self.open,
                    inside: i > 0,
                    stops: if mode == Mode::Guess {
                        &stops[..stops.len().min(1)]
                    } else {
                        stops
                    },
                    give_up: mode == Mode::Guess,
                    expect_end: self.starts.get(after).copied().unwrap_or(len),
                }
            }
        };
        let writer = ChunkWriter::default();
        let make = self.make;
        let run = panic::catch_unwind(AssertUnwindSafe(|| {
            let stage = make(writer.clone());
            (self.chunk)(self.bytes, spec, stage, self.path)
        }));
        let output = writer.take();
        match run {
            Ok((stage, end)) => Parsed {
                stage: Some(stage),
                output,
                end,
                panic: None,
            },
            Err(payload) => Parsed {
                stage: None,
                output,
                end: Ok(ChunkEnd::Invalid),
                panic: Some(payload),
            },
        }
    }

    /// Takes the next chunk nobody has taken, parses it as a guess and
    /// stores the result. False when there is none left.
    fn work_one(&self) -> bool {
        if self.cancel.load(Ordering::Relaxed) {
            return false;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if i >= self.starts.len() {
            return false;
        }
        let parsed = self.parse(i, Mode::Guess);
        self.lock_slots()[i] = Some(parsed);
        self.ready.notify_all();
        true
    }

    /// A helper thread's loop.
    fn work(&self) {
        while self.work_one() {}
    }

    /// Waits for chunk `i`'s guessed result, parsing other chunks while it
    /// is not ready (so the calling thread is never idle, and a missing
    /// helper thread cannot leave it waiting forever).
    fn wait_for(&self, i: usize) -> Parsed<S> {
        loop {
            {
                let mut slots = self.lock_slots();
                if let Some(p) = slots[i].take() {
                    return p;
                }
                // Every chunk is taken: chunk `i` is in another thread's
                // hands, which stores it and notifies.
                if self.next.load(Ordering::Relaxed) >= self.starts.len() {
                    while slots[i].is_none() {
                        slots = self
                            .ready
                            .wait(slots)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    continue;
                }
            }
            self.work_one();
        }
    }

    /// Walks the chunks in input order from the confirmed start of the
    /// document, writing the output of each chunk that is part of the
    /// parse.
    fn merge<W: Write>(&self, out: &mut W) -> (Vec<S>, Result<()>) {
        let mut stages = Vec::new();
        let mut i = 0;
        loop {
            let mut parsed = self.wait_for(i);
            if matches!(parsed.end, Ok(ChunkEnd::Invalid)) && parsed.panic.is_none() {
                // The parse from a confirmed start did not come to rest at
                // the next cut: that cut was a wrong guess. Parse again
                // from the same start, on to the next cut that holds.
                parsed = self.parse(i, Mode::Confirmed);
            }
            let end = match self.emit(parsed, &mut stages, out) {
                Ok(end) => end,
                Err(e) => return (stages, e),
            };
            match end {
                ChunkEnd::Boundary(at) => match self.starts.binary_search(&at) {
                    Ok(k) if k > i => i = k,
                    // A boundary is always one of the later starts.
                    _ => unreachable!("a chunk ended at {at}, which is not a later cut"),
                },
                ChunkEnd::Done | ChunkEnd::Invalid => return (stages, flush(out)),
            }
        }
    }

    /// The sequential case: one chunk, written out.
    fn collect<W: Write>(&self, parsed: Parsed<S>, out: &mut W) -> (Vec<S>, Result<()>) {
        let mut stages = Vec::new();
        match self.emit(parsed, &mut stages, out) {
            Ok(_) => (stages, flush(out)),
            Err(e) => (stages, e),
        }
    }

    /// Writes a chunk that is part of the parse and keeps its stages.
    /// `Err` carries the final outcome of the whole parse.
    fn emit<W: Write>(
        &self,
        parsed: Parsed<S>,
        stages: &mut Vec<S>,
        out: &mut W,
    ) -> std::result::Result<ChunkEnd, Result<()>> {
        let Parsed {
            stage,
            output,
            end,
            panic,
        } = parsed;
        if let Some(payload) = panic {
            self.cancel.store(true, Ordering::Relaxed);
            panic::resume_unwind(payload);
        }
        stages.extend(stage);
        if let Err(e) = out.write_all(&output) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Err(Ok(()));
            }
            return Err(Err(Error::from(e)));
        }
        match end {
            Ok(end) => Ok(end),
            Err(e) => Err(flush(out).and(Err(e))),
        }
    }
}

/// Flushes the output; a closed pipe is a quiet end.
fn flush<W: Write>(out: &mut W) -> Result<()> {
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::from(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_tag_needs_a_name_end() {
        let finder = memchr::memmem::Finder::new(b"<bus");
        let doc = b"<buses><busy/><bus>";
        assert_eq!(find_tag(doc, &finder, 4, 0), Some(14));
        assert_eq!(find_tag(b"<bus", &finder, 4, 0), None);
    }

    #[test]
    fn the_root_is_found_after_the_prologue() {
        let doc = b"<?xml version=\"1.0\"?>\n<!-- c -->\n<buses a=\"1\"><bus/>";
        assert_eq!(find_open(doc, "bus"), Some((vec![33], 46)));
        // No <bus> at all: nothing to cut.
        assert_eq!(find_open(&doc[..46], "bus"), None);
        assert_eq!(find_open(b"<bus><bus/></bus>", "bus"), None);
        assert_eq!(find_open(b"<buses/>", "bus"), None);
    }

    #[test]
    fn records_deeper_than_the_roots_children_are_cut_under_their_parent() {
        let mut rss = String::from("<rss><channel><title>t</title>");
        for i in 0..50 {
            rss += &format!("<item><id>{i}</id></item>");
        }
        rss += "</channel></rss>";
        let p = ParallelParse::new("item").threads(2).chunk_bytes(100);
        let (starts, open) = p.plan(rss.as_bytes());
        assert!(starts.len() > 1);
        assert_eq!(open, [0, 5]);
        assert!(starts[1..]
            .iter()
            .all(|&s| rss[s as usize..].starts_with("<item>")));
        // The first <item> decides, empty or not, at any depth.
        let open = |doc: &str| find_open(doc.as_bytes(), "item").map(|(o, _)| o);
        assert_eq!(open("<r><item/><item/></r>"), Some(vec![0]));
        assert_eq!(
            open("<r><a/><c x='1'><item/></c><item/></r>"),
            Some(vec![0, 7])
        );
        assert_eq!(open("<r><c><d></d><e><item>"), Some(vec![0, 3, 13]));
        assert_eq!(open("<r><c></c></r><item/>"), None);
        assert_eq!(open("<r><c></c><item"), None);
    }

    #[test]
    fn small_documents_are_not_cut() {
        let p = ParallelParse::new("bus").threads(2);
        assert_eq!(p.plan(b"<buses><bus/></buses>").0, [0]);
        let p = p.chunk_bytes(3);
        assert_eq!(
            p.plan(b"<buses><bus/><bus/><bus/></buses>"),
            (vec![0, 7, 13, 19], vec![0])
        );
    }
}
