//! [`StreamPull`]: events read from a stream through a fixed buffer, with
//! the reader that strips a byte order mark ([`BomStripped`]) and the one
//! that keeps line numbers without rescanning ([`CountingReader`]).

use std::fmt;
use std::io::{self, BufRead, Read};

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::Error;
use crate::xml::input::encoding::Malformed;
use crate::xml::pull::doctype::{self, Prolog, Protected};
use crate::xml::pull::{convert, Ctx, Pull, BOM};

/// Events read through a fixed buffer from a stream.
pub(crate) struct StreamPull<'r> {
    reader: Reader<CountingReader<'r>>,
    buf: Vec<u8>,
    /// The length of the byte order mark taken off the stream (0 or 3):
    /// quick-xml's positions start after it, ours at the stream's start.
    base: u64,
}

impl<'r> StreamPull<'r> {
    pub(crate) fn new(
        inner: Box<dyn Read + 'r>,
        capacity: usize,
        max_event: u64,
    ) -> StreamPull<'r> {
        let (inner, base) = BomStripped::new(inner);
        let mut counting = CountingReader::new(Box::new(inner), capacity, max_event);
        counting.chunk_start = base;
        counting.settled = base;
        counting.prolog = Some(Prolog::new(base));
        let mut reader = Reader::from_reader(counting);
        reader.config_mut().check_comments = true;
        StreamPull {
            reader,
            buf: Vec::new(),
            base,
        }
    }
}

/// A stream with its byte order mark, if any, taken off before quick-xml
/// sees it. quick-xml skips a mark without counting it in its positions,
/// and one split across reads (a read buffer under 3 bytes) it does not
/// recognise at all; taking it off here gives every buffer size the
/// in-memory parse's events and positions.
struct BomStripped<'r> {
    /// The first bytes of the stream, read to look for the mark, and
    /// replayed unless they are one.
    head: [u8; 3],
    pos: usize,
    len: usize,
    /// An error met while reading the head, returned after the head.
    err: Option<io::Error>,
    inner: Box<dyn Read + 'r>,
}

impl<'r> BomStripped<'r> {
    /// Reads up to three bytes of `inner`: the reader, and the length of
    /// the mark taken off (0 or 3).
    fn new(mut inner: Box<dyn Read + 'r>) -> (BomStripped<'r>, u64) {
        let mut head = [0u8; 3];
        let (mut len, mut err) = (0, None);
        while len < head.len() {
            match inner.read(&mut head[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let mark = if head == *BOM { BOM.len() } else { 0 };
        let reader = BomStripped {
            head,
            pos: mark,
            len,
            err,
            inner,
        };
        (reader, mark as u64)
    }
}

impl Read for BomStripped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.len {
            let n = (self.len - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.inner.read(buf)
    }
}

impl StreamPull<'_> {
    /// True when the decoded text stopped at a malformed sequence: the
    /// error `convert` returns then has its offset in the input already.
    pub(crate) fn stopped(&self) -> bool {
        self.reader.get_ref().malformed.is_some()
    }
}

impl Pull for StreamPull<'_> {
    #[inline]
    fn position(&self) -> u64 {
        self.base + self.reader.buffer_position()
    }
    #[inline]
    fn settle(&mut self, at: u64) {
        self.reader.get_mut().settled = at;
    }
    #[inline]
    fn next(&mut self) -> quick_xml::Result<(Event<'_>, Ctx<'_>)> {
        self.buf.clear();
        let base = self.base;
        let ev = match self.reader.read_event_into(&mut self.buf) {
            Ok(Event::Eof) if self.reader.get_ref().malformed.is_some() => {
                // Reported by `convert`.
                return Err(quick_xml::Error::Io(std::sync::Arc::new(io::Error::from(
                    io::ErrorKind::InvalidData,
                ))));
            }
            r => r?,
        };
        let text_ends = match ev {
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                // After character data the reader has either consumed the
                // `<` of the next markup (one byte past its position) or
                // stopped before a `&`. Look at the byte after the `<` if
                // it is already buffered; when it is not, assume more
                // character data may follow (the text is then copied).
                let r = self.reader.get_ref();
                let consumed = r.chunk_start + r.pos as u64;
                consumed == base + self.reader.buffer_position() + 1
                    && r.pos < r.end
                    && !matches!(r.buf[r.pos], b'!' | b'?')
            }
            _ => false,
        };
        let ctx = Ctx {
            doc: None,
            may_have_cr: true,
            chars_ok: false,
            no_cdata_close: false,
            text_ends,
        };
        Ok((ev, ctx))
    }
    fn line_col(&self, offset: u64) -> (u64, u64) {
        self.reader.get_ref().line_col(offset)
    }
    fn error_position(&self) -> u64 {
        self.base + self.reader.error_position()
    }
    fn convert(&self, e: quick_xml::Error) -> Error {
        if let Some(m) = &self.reader.get_ref().malformed {
            // The decoded text ended at a malformed sequence, and the
            // event in progress needed more: the error is the sequence's,
            // at its offset in the input; line and column where the text
            // stops.
            let (line, col) = self.line_col(m.at);
            return Error::xml(line, col, m.input, m.message());
        }
        convert(self, e)
    }
    fn doctype_keyword_ok(&self, _lt: u64) -> bool {
        // Only the prolog's first DOCTYPE gets this far (any other is an
        // error before), and the prolog was followed through it.
        self.reader.get_ref().keyword == *b"DOCTYPE"
    }
    fn restore(&self, at: u64, bytes: &mut [u8]) {
        self.reader.get_ref().protected.restore(at, bytes);
    }
}

/// The error a [`CountingReader`] returns when one event grows past the
/// limit.
#[derive(Debug)]
pub(crate) struct TooLarge {
    pub(crate) settled: u64,
    pub(crate) max: u64,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event longer than {} bytes", self.max)
    }
}

impl std::error::Error for TooLarge {}

/// A buffered reader that keeps line numbers without rescanning: when a
/// chunk is dropped, its newlines before the settled position are counted
/// into a total, and those after it (the event in progress) are remembered
/// one by one until they settle. So any error position at or after the
/// settled position has an exact line and column, and the per-event cost
/// is one store (`settled`).
struct CountingReader<'r> {
    inner: Box<dyn Read + 'r>,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Byte offset of `buf[0]`.
    chunk_start: u64,
    /// Everything before this offset belongs to finished events.
    settled: u64,
    /// Newlines counted in dropped chunks (all before `pending`'s).
    lines_before: u64,
    /// Offset of the last newline counted in `lines_before`.
    last_nl: Option<u64>,
    /// Offsets of newlines in dropped chunks at or after the settled
    /// position of their time, ascending.
    pending: Vec<u64>,
    max_event: u64,
    /// The prolog being followed, until its DOCTYPE has ended (see the
    /// `doctype` module): the `<` and `>` protected in the DOCTYPE are
    /// hidden from quick-xml as they are read, and remembered.
    prolog: Option<Prolog>,
    protected: Protected,
    /// The DOCTYPE keyword as the prolog saw it.
    keyword: [u8; 7],
    /// No chunk has been read yet.
    first: bool,
    /// The decoded text ended here, at a malformed sequence (see
    /// `input::encoding`): quick-xml sees the end of input.
    malformed: Option<Malformed>,
}

impl<'r> CountingReader<'r> {
    pub(crate) fn new(
        inner: Box<dyn Read + 'r>,
        capacity: usize,
        max_event: u64,
    ) -> CountingReader<'r> {
        CountingReader {
            inner,
            buf: vec![0; capacity].into_boxed_slice(),
            pos: 0,
            end: 0,
            chunk_start: 0,
            settled: 0,
            lines_before: 0,
            last_nl: None,
            pending: Vec::new(),
            max_event,
            prolog: None,
            protected: Protected::default(),
            keyword: [0; 7],
            first: true,
            malformed: None,
        }
    }

    /// Hides the protected bytes of the chunk just read (in the prolog).
    #[cold]
    fn hide(&mut self) {
        let Some(p) = self.prolog.as_mut() else {
            return;
        };
        let mut hidden = Vec::new();
        p.feed(&self.buf[..self.end], |i| hidden.push(i));
        if let Some(lt) = p.doctype {
            for i in hidden {
                let b = &mut self.buf[i];
                *b = if *b == b'<' {
                    doctype::HIDDEN_LT
                } else {
                    doctype::HIDDEN_GT
                };
                self.protected.mark(lt, self.chunk_start + i as u64);
            }
        }
        self.keyword = p.keyword;
        if !p.active() {
            self.prolog = None;
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        let settled = self.settled;
        let settled_pending = self.pending.partition_point(|&nl| nl < settled);
        if settled_pending > 0 {
            self.lines_before += settled_pending as u64;
            self.last_nl = Some(self.pending[settled_pending - 1]);
            self.pending.drain(..settled_pending);
        }
        let chunk = &self.buf[..self.end];
        let split = (settled.saturating_sub(self.chunk_start) as usize).min(chunk.len());
        let (done, open) = chunk.split_at(split);
        self.lines_before += memchr::memchr_iter(b'\n', done).count() as u64;
        if let Some(i) = memchr::memrchr(b'\n', done) {
            self.last_nl = Some(self.chunk_start + i as u64);
        }
        let open_start = self.chunk_start + split as u64;
        self.pending
            .extend(memchr::memchr_iter(b'\n', open).map(|i| open_start + i as u64));
        self.chunk_start += self.end as u64;
        self.pos = 0;
        self.end = 0;
        if self.chunk_start - settled.min(self.chunk_start) > self.max_event {
            return Err(io::Error::other(TooLarge {
                settled,
                max: self.max_event,
            }));
        }
        // The first read takes at most 2 bytes: quick-xml, at its start,
        // takes off a byte order mark it sees whole, and the stream's own
        // mark is already off (`BomStripped`): a second one is text.
        let want = if self.first {
            self.first = false;
            2.min(self.buf.len())
        } else {
            self.buf.len()
        };
        loop {
            match self.inner.read(&mut self.buf[..want]) {
                Ok(n) => {
                    self.end = n;
                    if self.prolog.is_some() {
                        self.hide();
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(m) = e.get_ref().and_then(|r| r.downcast_ref::<Malformed>()) {
                        self.malformed = Some(m.clone());
                        self.end = 0;
                        return Ok(());
                    }
                    return Err(e);
                }
            }
        }
    }

    fn line_col(&self, offset: u64) -> (u64, u64) {
        let mut lines = self.lines_before;
        let mut last = self.last_nl;
        for &nl in self.pending.iter().take_while(|&&nl| nl < offset) {
            lines += 1;
            last = Some(nl);
        }
        if offset > self.chunk_start {
            let upto = ((offset - self.chunk_start) as usize).min(self.end);
            let part = &self.buf[..upto];
            lines += memchr::memchr_iter(b'\n', part).count() as u64;
            if let Some(i) = memchr::memrchr(b'\n', part) {
                last = Some(self.chunk_start + i as u64);
            }
        }
        let col = offset - last.map_or(0, |l| l + 1) + 1;
        (lines + 1, col)
    }
}

impl Read for CountingReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for CountingReader<'_> {
    #[inline]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.end {
            self.refill()?;
        }
        Ok(&self.buf[self.pos..self.end])
    }
    #[inline]
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::pull::line_col_in;

    #[test]
    fn counting_reader_agrees_with_a_rescan_at_every_offset() {
        let text = b"a\nbc\n\nd\nefgh\ni\n\njk";
        for cap in 1..6 {
            for settle_at in 0..text.len() as u64 {
                let mut r = CountingReader::new(Box::new(&text[..]), cap, 1 << 20);
                let mut total = 0;
                // Read everything, settling at `settle_at` once it is reached.
                loop {
                    if total as u64 >= settle_at {
                        r.settled = settle_at;
                    }
                    let n = r.fill_buf().unwrap().len();
                    if n == 0 {
                        break;
                    }
                    r.consume(n.min(2));
                    total += n.min(2);
                    // Check each offset still in reach (>= settled).
                    for off in r.settled..=(r.chunk_start + r.end as u64) {
                        assert_eq!(
                            r.line_col(off),
                            line_col_in(text, off),
                            "cap {cap} settle {settle_at} offset {off}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn counting_reader_refuses_an_endless_event() {
        let text = [b'x'; 100];
        let mut r = CountingReader::new(Box::new(&text[..]), 8, 20);
        let mut err = None;
        for _ in 0..100 {
            match r.fill_buf() {
                Ok(b) => {
                    let n = b.len();
                    r.consume(n)
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let err = err.expect("the limit must trip");
        assert!(err.get_ref().unwrap().downcast_ref::<TooLarge>().is_some());
    }
}
