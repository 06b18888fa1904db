//! [`SlicePull`]: events borrowed from bytes in memory.

use quick_xml::errors::{Error as QxError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesText, Event};
use quick_xml::Reader;

use crate::xml::pull::{doctype, line_col_in, Ctx, Pull, BOM};

/// The length of the UTF-8 byte order mark at the start of `input`, if
/// reading starts there.
pub(crate) fn bom_len(input: &[u8], start: u64) -> u64 {
    if start == 0 && input.starts_with(BOM) {
        3
    } else {
        0
    }
}

/// Events borrowed from bytes in memory: the whole input, or a part of
/// it for the parallel parser.
pub(crate) struct SlicePull<'i> {
    /// The whole input (positions and line numbers count from its start).
    input: &'i [u8],
    /// The reader reads a suffix of `input`; `base` turns its positions
    /// into offsets in `input`.
    reader: Reader<&'i [u8]>,
    base: u64,
    /// The position just after the last event (`base` plus the reader's
    /// position, kept so that the next event's start is one load).
    pos: u64,
    /// The checked part of the input, when it is valid UTF-8 (checked once,
    /// up front).
    doc: Option<&'i str>,
    /// The end of the checked part: events past it are checked one by one.
    checked_end: u64,
    /// False when the checked part holds no `\r`.
    may_have_cr: bool,
    /// True when the checked part holds only `Char`s.
    chars_ok: bool,
    /// The offset of the first `]]>` of the checked part at or after the
    /// start of some earlier text (`u64::MAX` when there is none): text
    /// that starts after that and ends before it needs no search for `]]>`.
    next_cdata_close: u64,
    /// The prolog's DOCTYPE, as [`doctype::find`] sees it (found when
    /// quick-xml first reads a DOCTYPE).
    doctype: Option<Option<(u64, Option<u64>)>>,
    /// The position of an error made here rather than by quick-xml.
    err_at: Option<u64>,
    /// An error of the parse loop's own found here: (offset, message).
    problem: Option<(u64, String)>,
}

/// Finds `]]>`, built once.
static CDATA_CLOSE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"]]>"));

/// The offset of the first `]]>` in `input[from..end]`, or `u64::MAX`.
#[cold]
fn cdata_close_from(input: &[u8], from: u64, end: u64) -> u64 {
    input
        .get(from as usize..end as usize)
        .and_then(|part| CDATA_CLOSE.find(part))
        .map_or(u64::MAX, |i| from + i as u64)
}

impl<'i> SlicePull<'i> {
    pub(crate) fn new(input: &'i [u8]) -> SlicePull<'i> {
        SlicePull::range(input, 0, input.len() as u64)
    }

    /// Reads from `start`, which is 0 or the `<` of some markup; checks
    /// `start..end` up front.
    pub(crate) fn range(input: &'i [u8], start: u64, end: u64) -> SlicePull<'i> {
        // The byte order mark is taken off here and counted, so that
        // positions are offsets in the input; the reader is led past its
        // start on an empty comment first, so that it does not take off
        // a second mark (which is text), as on a stream.
        let from = start + bom_len(input, start);
        let mut reader = Reader::from_reader(&b"<!---->"[..]);
        reader.config_mut().check_comments = true;
        let _ = reader.read_event();
        *reader.get_mut() = input.get(from as usize..).unwrap_or_default();
        let base = from.wrapping_sub(reader.buffer_position());
        SlicePull::checked(input, reader, base, start, end)
    }

    /// Reads from `start` as if the reader had read everything from the
    /// document's start to there, and `start` is in the content of the
    /// elements whose `<` are at `open` (the root element's first, then
    /// each one's child, as nested at `start`). None if there is no start
    /// tag at one of them, or they do not come one after the other before
    /// `start`.
    pub(crate) fn inside(
        input: &'i [u8],
        open: &[u64],
        start: u64,
        end: u64,
    ) -> Option<SlicePull<'i>> {
        let (&root, inner) = open.split_first()?;
        let mut reader = Reader::from_reader(input.get(root as usize..)?);
        reader.config_mut().check_comments = true;
        // Read the open elements' start tags, so that quick-xml's stack of
        // open names holds them (it checks end tags against that stack),
        // then move the reader on to `start`:
        //
        // <rss>.....<channel>........<item>
        // ^root     ^open[1] ^after  ^start
        //  reader positions count on from `root` across the moves, so
        //  base = start - (reader position after the last start tag).
        match reader.read_event() {
            Ok(Event::Start(_)) => {}
            _ => return None,
        }
        let mut after = root + reader.buffer_position();
        for &at in inner {
            if at < after {
                return None;
            }
            let before = reader.buffer_position();
            *reader.get_mut() = input.get(at as usize..)?;
            match reader.read_event() {
                Ok(Event::Start(_)) => {}
                _ => return None,
            }
            after = at + (reader.buffer_position() - before);
        }
        if after > start {
            return None;
        }
        let read = reader.buffer_position();
        *reader.get_mut() = input.get(start as usize..)?;
        Some(SlicePull::checked(input, reader, start - read, start, end))
    }

    fn checked(
        input: &'i [u8],
        reader: Reader<&'i [u8]>,
        base: u64,
        start: u64,
        end: u64,
    ) -> SlicePull<'i> {
        let end = end.min(input.len() as u64).max(start);
        let part = &input[start as usize..end as usize];
        let pos = base.wrapping_add(reader.buffer_position());
        SlicePull {
            input,
            reader,
            base,
            pos,
            doc: std::str::from_utf8(part).ok(),
            checked_end: end,
            may_have_cr: memchr::memchr(b'\r', part).is_some(),
            chars_ok: crate::xml::lexical::bad_char(part).is_none(),
            next_cdata_close: cdata_close_from(input, start, end),
            doctype: None,
            err_at: None,
            problem: None,
        }
    }

    /// After character data that ends at `p`: true when the reader stopped
    /// at the `<` of a tag or at the end, so no character data follows at
    /// once. It stopped at the `<` of the next markup, at a `&`, or at the
    /// end; `<!` may be a CDATA section or a comment and `<?` a processing
    /// instruction, after which character data may go on.
    #[inline(always)]
    fn ends_text(&self, p: u64) -> bool {
        let p = p as usize;
        // Both bytes with one bounds check; the last byte or the end of
        // the input out of line.
        match self.input.get(p..p.wrapping_add(2)) {
            Some(&[first, second]) => first == b'<' && second != b'!' && second != b'?',
            _ => self.ends_text_at_end(p),
        }
    }

    /// [`ends_text`](Self::ends_text) within a byte of the input's end.
    #[cold]
    fn ends_text_at_end(&self, p: usize) -> bool {
        match self.input.get(p) {
            None => true,
            Some(b'<') => !matches!(self.input.get(p + 1), Some(b'!' | b'?')),
            Some(_) => false,
        }
    }

    /// The content of the prolog's DOCTYPE, whose `<` is at `lt`, as XML
    /// reads it (quick-xml stops at the first `>`; the stream form hides
    /// the `<` and `>` inside its literals, comments and PIs, see the
    /// `doctype` module), with the reader moved on past its end. None if
    /// the DOCTYPE at `lt` is not the prolog's (quick-xml's reading
    /// stands); `failed` when quick-xml stopped with an error.
    #[cold]
    fn doctype_fixed(&mut self, lt: u64, failed: bool) -> Option<quick_xml::Result<&'i str>> {
        let input = self.input;
        let found = *self
            .doctype
            .get_or_insert_with(|| doctype::find(input, bom_len(input, 0)));
        let end = match found {
            Some((at, end)) if at == lt => end,
            _ => return None,
        };
        let unclosed = |this: &mut Self| {
            this.err_at = Some(lt);
            Some(Err(QxError::Syntax(SyntaxError::UnclosedDoctype)))
        };
        let Some(end) = end else {
            return unclosed(self);
        };
        // <!DOCTYPE name ...>
        //  ^ buf            ^ end - 1
        let buf = &input[lt as usize + 1..end as usize - 1];
        if buf.len() < 8 || !buf[..8].eq_ignore_ascii_case(b"!DOCTYPE") {
            return unclosed(self);
        }
        let Some(s) = buf[8..]
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        else {
            self.err_at = Some(end - 1);
            return Some(Err(QxError::IllFormed(IllFormedError::MissingDoctypeName)));
        };
        let content = &buf[8 + s..];
        match std::str::from_utf8(content) {
            Ok(text) => {
                self.reader_at(end, failed);
                Some(Ok(text))
            }
            Err(e) => {
                // As the parse loop finds it in the stream form's event.
                let at = lt + 9 + s as u64 + e.valid_up_to() as u64;
                self.problem = Some((at, doctype::BAD_UTF8.to_string()));
                Some(Err(QxError::Syntax(SyntaxError::UnclosedDoctype)))
            }
        }
    }

    /// Moves the reader on to `at`, just after a DOCTYPE. If quick-xml
    /// stopped with an error (`failed`), it reads no more: a new reader
    /// takes over, first led past its start on an empty comment (a reader
    /// at its start would skip a byte order mark, as the old one would
    /// not).
    #[cold]
    fn reader_at(&mut self, at: u64, failed: bool) {
        let rest = &self.input[at as usize..];
        if failed {
            let mut reader = Reader::from_reader(&b"<!---->"[..]);
            reader.config_mut().check_comments = true;
            let _ = reader.read_event();
            self.reader = reader;
        }
        *self.reader.get_mut() = rest;
        self.base = at.wrapping_sub(self.reader.buffer_position());
        self.pos = at;
    }

    /// quick-xml's error `e`: a DOCTYPE in the prolog that quick-xml
    /// found unclosed may be read as XML says (see `doctype_fixed`). Out
    /// of `next`, so that the events pass through it untouched.
    #[cold]
    #[inline(never)]
    fn recover(&mut self, e: QxError) -> quick_xml::Result<Event<'i>> {
        if !matches!(e, QxError::Syntax(SyntaxError::UnclosedDoctype)) {
            return Err(e);
        }
        let lt = self.error_position();
        match self.doctype_fixed(lt, true) {
            None => Err(e),
            Some(r) => r.map(|text| Event::DocType(BytesText::from_escaped(text))),
        }
    }
}

impl Pull for SlicePull<'_> {
    fn name_at(&self, offset: u64) -> Option<String> {
        // <bus attr="v">
        //  ^^^ the name runs from after `<` to a space, `/` or `>`
        let rest = self.input.get(offset as usize + 1..)?;
        let end = rest
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
            .unwrap_or(rest.len());
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    #[inline]
    fn position(&self) -> u64 {
        self.pos
    }
    #[inline]
    fn settle(&mut self, _at: u64) {}
    // Always inlined: the event and context are returned in registers
    // rather than through memory, a good part of the per-event cost.
    #[inline(always)]
    fn next(&mut self) -> quick_xml::Result<(Event<'_>, Ctx<'_>)> {
        let from = self.pos;
        // A DOCTYPE is fixed up by `doctype_read` (the parse loop calls it),
        // so that the events pass through here untouched.
        let ev = match self.reader.read_event() {
            Ok(ev) => ev,
            Err(e) => self.recover(e)?,
        };
        let p = self.base.wrapping_add(self.reader.buffer_position());
        self.pos = p;
        let (text_ends, no_cdata_close) = match ev {
            Event::Text(_) => {
                // The text runs from `from` to `p`. `next_cdata_close` is
                // the first `]]>` at or after the start of some earlier
                // text; once that lies before this text, find the first
                // one from here. The text holds a `]]>` only if it ends by
                // `p`. (Only text is asked: a search per `]]>` passed, two
                // compares per text.)
                if self.next_cdata_close < from {
                    self.next_cdata_close = cdata_close_from(self.input, from, self.checked_end);
                }
                (
                    self.ends_text(p),
                    self.next_cdata_close.saturating_add(3) > p,
                )
            }
            Event::CData(_) | Event::GeneralRef(_) => (self.ends_text(p), true),
            _ => (false, true),
        };
        // An event that ends past the checked part may hold a `\r` (its
        // UTF-8 is checked by `Ctx::str`, which sees it is not inside
        // `doc`). `&` and `|`: no branches.
        let inside = p <= self.checked_end;
        let ctx = Ctx {
            doc: self.doc,
            may_have_cr: self.may_have_cr | !inside,
            chars_ok: self.chars_ok & inside,
            no_cdata_close: no_cdata_close & inside,
            text_ends,
        };
        Ok((ev, ctx))
    }
    fn line_col(&self, offset: u64) -> (u64, u64) {
        line_col_in(self.input, offset)
    }
    fn convert(&self, e: quick_xml::Error) -> crate::error::Error {
        match &self.problem {
            Some((at, msg)) => self.error_at(*at, msg.clone()),
            None => crate::xml::pull::convert(self, e),
        }
    }
    #[cold]
    fn doctype_read(&mut self, start: u64, content: Box<[u8]>) -> quick_xml::Result<Box<[u8]>> {
        // The DOCTYPE event starts at its `<`.
        let Some(lt) = self
            .input
            .get(start as usize..)
            .and_then(|rest| memchr::memchr(b'<', rest))
        else {
            return Ok(content);
        };
        match self.doctype_fixed(start + lt as u64, false) {
            None => Ok(content),
            Some(r) => r.map(|text| text.as_bytes().into()),
        }
    }
    fn doctype_keyword_ok(&self, lt: u64) -> bool {
        let from = lt as usize + 2;
        self.input.get(from..from + 7) == Some(&b"DOCTYPE"[..])
    }
    fn error_position(&self) -> u64 {
        self.err_at
            .unwrap_or_else(|| self.base.wrapping_add(self.reader.error_position()))
    }
}
