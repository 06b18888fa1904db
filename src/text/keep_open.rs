//! [`KeepOpen`]: one chain for several sources read one after another.

use crate::error::Result;
use crate::stage::{Flow, Lifecycle, Stage};

/// Passes everything on but turns `close` into `flush`, so that one chain
/// serves several sources read one after the other (`tail FILE1 FILE2`)
/// and is closed once, by its owner, at the end.
///
/// A source closes its target when its input ends ([`end_source`]); behind
/// `KeepOpen`, that close only flushes what the chain holds, and the next
/// source goes on sending to the same chain.
///
/// [`end_source`]: crate::end_source
///
/// # Examples
///
/// ```
/// use copipe::{Lifecycle, sinks::Collect, StageExt};
/// use copipe::text::{KeepOpen, Lines};
///
/// let mut out = Collect::new();
/// for input in [&b"a\nb\n"[..], b"c\n"] {
///     Lines::new(input).run(KeepOpen::new((&mut out).with_owned()))?;
/// }
/// out.close()?;
/// assert_eq!(out.items(), &[b"a\n".to_vec(), b"b\n".to_vec(), b"c\n".to_vec()]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeepOpen<S>(S);

impl<S> KeepOpen<S> {
    /// Keeps `target` open across the sources sending to it.
    pub fn new(target: S) -> KeepOpen<S> {
        KeepOpen(target)
    }

    /// The target.
    pub fn get_ref(&self) -> &S {
        &self.0
    }

    /// The target, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.0
    }

    /// The target, to close it at the end.
    pub fn into_inner(self) -> S {
        self.0
    }
}

impl<T, S: Stage<T>> Stage<T> for KeepOpen<S> {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        self.0.send(item)
    }
}

impl<S: Lifecycle> Lifecycle for KeepOpen<S> {
    fn flush(&mut self) -> Result<()> {
        self.0.flush()
    }
    /// Flushes the target; does not close it.
    fn close(&mut self) -> Result<()> {
        self.0.flush()
    }
}
