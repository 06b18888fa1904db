//! [`Remapped`]: the events of a document decoded to UTF-8 (see
//! `input::encoding`), read by a [`SlicePull`] or a [`StreamPull`] over the
//! decoded text, with every error's byte offset, and the offset an
//! unclosed element's message names, turned back into an offset in the
//! input. Line and column stay those of the decoded text.
//!
//! Only decoded documents are parsed through it: the parse loop is
//! compiled for it apart, so a UTF-8 document's parse does no work for it.

use quick_xml::events::Event;

use crate::error::{Error, ErrorKind};
use crate::xml::input::encoding::{Origin, Tracked};
use crate::xml::pull::slice::SlicePull;
use crate::xml::pull::stream::StreamPull;
use crate::xml::pull::{Ctx, Pull};

/// Input bytes a stream's [`Track`](crate::xml::input::encoding::Track)
/// may hold before the parse moves its rest point forward, between events.
const KEEP: usize = 64 * 1024;

/// How decoded offsets are mapped back.
pub(crate) enum Back<'i> {
    /// The input is in memory: any offset can be mapped.
    Memory { input: &'i [u8], origin: Origin },
    /// A stream: the decoding reader's track of the input read since a
    /// rest point, and the elements open, each with its start tag's
    /// decoded offset and, once the track has had to move past it, its
    /// input offset.
    Stream {
        track: Tracked,
        opens: Vec<(u64, Option<u64>)>,
    },
}

impl<'i> Back<'i> {
    /// The mapping of a stream decoded through `track`.
    pub(crate) fn stream(track: Tracked) -> Back<'i> {
        Back::Stream {
            track,
            opens: Vec::new(),
        }
    }
}

/// What [`Remapped`] needs of the pull it wraps.
pub(crate) trait Decoded: Pull {
    /// True when the error `convert` returns has its offset in the input
    /// already (a malformed sequence ended the decoded text).
    fn stopped(&self) -> bool {
        false
    }
}

impl Decoded for SlicePull<'_> {}

impl Decoded for StreamPull<'_> {
    fn stopped(&self) -> bool {
        StreamPull::stopped(self)
    }
}

/// A pull over decoded text whose errors name input offsets.
pub(crate) struct Remapped<'i, P> {
    inner: P,
    back: Back<'i>,
    /// The start of the event in progress.
    settled: u64,
}

impl<'i, P: Decoded> Remapped<'i, P> {
    pub(crate) fn new(inner: P, back: Back<'i>) -> Remapped<'i, P> {
        Remapped {
            inner,
            back,
            settled: 0,
        }
    }

    /// A stream's track holds too much: move its rest point to the event
    /// about to be read, first noting the input offsets of the open
    /// elements it passes (an unclosed element's message names its
    /// start).
    #[cold]
    fn release(track: &Tracked, opens: &mut [(u64, Option<u64>)], settled: u64) {
        let mut t = track.borrow_mut();
        for (at, input) in opens.iter_mut().filter(|(_, i)| i.is_none()) {
            *input = Some(t.advance(*at));
        }
        t.advance(settled);
    }
}

impl<P: Decoded> Pull for Remapped<'_, P> {
    fn name_at(&self, offset: u64) -> Option<String> {
        self.inner.name_at(offset)
    }
    #[inline]
    fn position(&self) -> u64 {
        self.inner.position()
    }
    #[inline]
    fn settle(&mut self, at: u64) {
        self.settled = at;
        self.inner.settle(at);
    }
    // Always inlined, as the pulls it wraps: the event is returned in
    // registers.
    #[inline(always)]
    fn next(&mut self) -> quick_xml::Result<(Event<'_>, Ctx<'_>)> {
        if let Back::Stream { track, opens } = &mut self.back {
            if track.borrow().kept() > KEEP {
                Self::release(track, opens, self.settled);
            }
        }
        let r = self.inner.next();
        if let (Ok((ev, _)), Back::Stream { opens, .. }) = (&r, &mut self.back) {
            match ev {
                Event::Start(_) => opens.push((self.settled, None)),
                Event::End(_) => {
                    opens.pop();
                }
                _ => {}
            }
        }
        r
    }
    fn line_col(&self, offset: u64) -> (u64, u64) {
        self.inner.line_col(offset)
    }
    fn error_position(&self) -> u64 {
        self.inner.error_position()
    }
    #[cold]
    fn input_offset(&self, offset: u64) -> u64 {
        match &self.back {
            Back::Memory { input, origin } => origin.input_offset(input, offset),
            Back::Stream { track, opens } => {
                match opens.iter().rev().find(|(at, _)| *at == offset) {
                    Some(&(_, Some(input))) => input,
                    _ => track.borrow().map(offset),
                }
            }
        }
    }
    #[cold]
    fn error_at(&self, offset: u64, msg: String) -> Error {
        let (line, col) = self.inner.line_col(offset);
        Error::xml(line, col, self.input_offset(offset), msg)
    }
    #[cold]
    fn convert(&self, e: quick_xml::Error) -> Error {
        let err = self.inner.convert(e);
        if self.inner.stopped() {
            return err;
        }
        match err.into_kind() {
            ErrorKind::Xml {
                line,
                column,
                byte_offset,
                message,
            } => Error::xml(line, column, self.input_offset(byte_offset), message),
            other => Error::new(other),
        }
    }
    fn restore(&self, at: u64, bytes: &mut [u8]) {
        self.inner.restore(at, bytes);
    }
    fn doctype_read(&mut self, start: u64, content: Box<[u8]>) -> quick_xml::Result<Box<[u8]>> {
        self.inner.doctype_read(start, content)
    }
    fn doctype_keyword_ok(&self, lt: u64) -> bool {
        self.inner.doctype_keyword_ok(lt)
    }
}
