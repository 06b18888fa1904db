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
    /// Reached this stop offset between two events, in the root element's
    /// content, with the handler at rest: a fresh parser started here
    /// gives the same events from here on.
    Boundary(u64),
    /// Passed its stop without being at rest there (speculative parses
    /// only give up there).
    Invalid,
}

/// One part of a document held in memory, for the parallel parser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkSpec<'s> {
    /// Where parsing starts: 0, or the `<` of a start tag that is a child
    /// of the root element.
    pub(crate) start: u64,
    /// The byte offset of the root element's `<`, when `start` is past it:
    /// the parser then starts inside the root element, as if it had read
    /// everything before `start`.
    pub(crate) root: Option<u64>,
    /// The offsets where the parse may end (ascending, after `start`):
    /// it ends at the first one it reaches between events in the root's
    /// content with the handler at rest.
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
    let outcome = match spec.root {
        None => {
            let mut pull = SlicePull::range(bytes, spec.start, spec.expect_end);
            parse_loop(&mut pull, handler, Doc::default(), Stops::new(&spec))
        }
        Some(root) => match SlicePull::inside_root(bytes, root, spec.start, spec.expect_end) {
            Some(mut pull) => {
                let doc = Doc {
                    keep_names: false,
                    seen_root: true,
                    seen_doctype: false,
                    seen_any: true,
                    open: vec![(root, 0)],
                    names: Vec::new(),
                    ..Doc::default()
                };
                parse_loop(&mut pull, handler, doc, Stops::new(&spec))
            }
            // Not a start tag at `root`: the caller's guess was wrong.
            None => Ok(ChunkEnd::Invalid),
        },
    };
    finish(outcome, handler, path)
}

/// Where a parse may end early: the stop offsets of a [`ChunkSpec`].
pub(crate) struct Stops<'s> {
    at: &'s [u64],
    pub(crate) give_up: bool,
    /// The next stop (`u64::MAX` when there is none), kept apart so that
    /// the loop tests one number per event.
    pub(crate) next: u64,
}

impl<'s> Stops<'s> {
    pub(crate) fn none() -> Stops<'static> {
        Stops {
            at: &[],
            give_up: false,
            next: u64::MAX,
        }
    }

    pub(crate) fn new(spec: &ChunkSpec<'s>) -> Stops<'s> {
        Stops {
            at: spec.stops,
            give_up: spec.give_up,
            next: spec.stops.first().copied().unwrap_or(u64::MAX),
        }
    }

    /// The parse is at `pos`, at or past the next stop, not at rest there:
    /// move on to the first stop after `pos`.
    pub(crate) fn pass(&mut self, pos: u64) {
        let i = self.at.partition_point(|&s| s <= pos);
        self.at = &self.at[i..];
        self.next = self.at.first().copied().unwrap_or(u64::MAX);
    }
}
