//! Support for the parallel parse: a parse of part of a document held in
//! memory, which starts at a given offset and may end at one of the stop
//! offsets it is given.

use std::path::Path;

use crate::error::Result;
use crate::xml::parse::{finish, parse_loop, Doc, Handler};
use crate::xml::pull::slice::SlicePull;

/// How a parse of part of a document ended (see [`drive_chunk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkEnd {
    /// End of input, or a stage asked to stop.
    Done,
    /// Reached this stop offset between two events, with the elements open
    /// those the spec names (the root alone, or the root and the record
    /// elements' ancestors) and the handler at rest: a fresh parser
    /// started here gives the same events from here on.
    Boundary(u64),
    /// Passed its stop without being at rest there (speculative parses
    /// only give up there).
    Invalid,
}

/// One part of a document held in memory, for the parallel parser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkSpec<'s> {
    /// Where parsing starts: 0, or the `<` of a start tag in the content
    /// of the elements `open` names.
    pub(crate) start: u64,
    /// The byte offsets of the `<` of the elements open at every cut: the
    /// root element's, then (when the records are deeper than its
    /// children) each ancestor's of the records, outermost first. Never
    /// empty when there are stops.
    pub(crate) open: &'s [u64],
    /// `start` is past the elements of `open`: the parser starts inside
    /// them, as if it had read everything before `start`.
    pub(crate) inside: bool,
    /// The offsets where the parse may end (ascending, after `start`):
    /// it ends at the first one it reaches between events with exactly
    /// the elements of `open` open and the handler at rest.
    pub(crate) stops: &'s [u64],
    /// Give up ([`ChunkEnd::Invalid`]) at the first stop passed without
    /// being at rest there, instead of going on to the next.
    pub(crate) give_up: bool,
    /// The end of the part of the input this parse is expected to cover:
    /// UTF-8 and line ends are checked up to here once, up front.
    pub(crate) expect_end: u64,
}

/// Parses part of `bytes` as [`ChunkSpec`] says, feeding `handler` under
/// the same contract as [`drive`]. From a boundary the parse is the exact
/// continuation of a parse from the start: the same events, the same
/// errors with the same positions.
pub(crate) fn drive_chunk<H: Handler>(
    bytes: &[u8],
    spec: ChunkSpec<'_>,
    handler: &mut H,
    path: Option<&Path>,
) -> Result<ChunkEnd> {
    let outcome = if !spec.inside {
        let mut pull = SlicePull::range(bytes, spec.start, spec.expect_end);
        parse_loop(&mut pull, handler, Doc::default(), Stops::new(&spec))
    } else {
        match SlicePull::inside(bytes, spec.open, spec.start, spec.expect_end) {
            Some(mut pull) => {
                let doc = Doc {
                    keep_names: false,
                    seen_root: true,
                    seen_doctype: false,
                    seen_any: true,
                    // Names are not kept for input in memory: the offsets
                    // are enough.
                    open: spec.open.iter().map(|&at| (at, 0)).collect(),
                    names: Vec::new(),
                    ..Doc::default()
                };
                parse_loop(&mut pull, handler, doc, Stops::new(&spec))
            }
            // Not start tags at `open`: the caller's guess was wrong.
            None => Ok(ChunkEnd::Invalid),
        }
    };
    finish(outcome, handler, path)
}

/// Where a parse may end early: the stop offsets of a [`ChunkSpec`].
pub(crate) struct Stops<'s> {
    at: &'s [u64],
    /// The `<` of the elements that must be open, and no other, at a stop.
    open: &'s [u64],
    pub(crate) give_up: bool,
    /// The next stop (`u64::MAX` when there is none), kept apart so that
    /// the loop tests one number per event.
    pub(crate) next: u64,
}

impl<'s> Stops<'s> {
    pub(crate) fn none() -> Stops<'static> {
        Stops {
            at: &[],
            open: &[],
            give_up: false,
            next: u64::MAX,
        }
    }

    pub(crate) fn new(spec: &ChunkSpec<'s>) -> Stops<'s> {
        Stops {
            at: spec.stops,
            open: spec.open,
            give_up: spec.give_up,
            next: spec.stops.first().copied().unwrap_or(u64::MAX),
        }
    }

    /// True if the elements open (the parser's stack: each one's `<`
    /// first) are those a stop needs: the same elements, so that the
    /// parse of the chunk starting here began in the same state.
    #[inline]
    pub(crate) fn open_is(&self, open: &[(u64, usize)]) -> bool {
        open.len() == self.open.len() && open.iter().zip(self.open).all(|(o, &at)| o.0 == at)
    }

    /// The parse is at `pos`, at or past the next stop, not at rest there:
    /// move on to the first stop after `pos`.
    pub(crate) fn pass(&mut self, pos: u64) {
        let i = self.at.partition_point(|&s| s <= pos);
        self.at = &self.at[i..];
        self.next = self.at.first().copied().unwrap_or(u64::MAX);
    }
}
