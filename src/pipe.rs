//! [`pipe()`]: pipelines written left to right in the order items travel.
//!
//! A stage is built from the sink's end (a `Map` holds its target), so a
//! chain of sink-side calls reads against the data. [`Pipe`] records the
//! steps in data order and builds the same nested stages when it is given
//! its sink: `pipe().filter(p).map(f).into(out)` filters, then maps, then
//! sends to `out`. It makes exactly the stages `StageExt` makes, so it
//! costs nothing at run time (see `benches/send.rs`).

use crate::stage::{Filter, Inspect, Lend, Map, Owned, Take};

/// One step of a [`Pipe`]: wraps a target stage into a stage in front of
/// it. [`Pipe::into`] applies the steps from the last to the first.
///
/// Implemented by the steps `Pipe` records; implement it for a custom step
/// and add it with [`Pipe::then`].
///
/// # Examples
///
/// ```
/// use copipe::{pipe, Layer, Stage, StageExt, Lifecycle, sinks::Collect, Map};
///
/// /// A step that adds one.
/// struct PlusOne;
/// impl<S: Lifecycle> Layer<S> for PlusOne {
///     type Stage = Map<S, fn(u32) -> u32>;
///     fn wrap(self, target: S) -> Self::Stage {
///         target.with_map(|x| x + 1)
///     }
/// }
///
/// let mut out = Collect::new();
/// let mut p = pipe().then(PlusOne).map(|x: u32| x * 2).into(&mut out);
/// p.send(1)?;
/// assert_eq!(out.items(), &[4]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub trait Layer<S> {
    /// The stage in front of `S`.
    type Stage;
    /// Puts this step in front of `target`.
    fn wrap(self, target: S) -> Self::Stage;
}

/// The empty pipe: sends to the sink unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl<S> Layer<S> for Identity {
    type Stage = S;
    #[inline]
    fn wrap(self, target: S) -> S {
        target
    }
}

/// Two steps in data order: items go through `A`, then `B`.
#[derive(Debug, Clone, Copy)]
pub struct Chain<A, B> {
    first: A,
    second: B,
}

impl<S, A, B> Layer<S> for Chain<A, B>
where
    B: Layer<S>,
    A: Layer<B::Stage>,
{
    type Stage = A::Stage;
    #[inline]
    fn wrap(self, target: S) -> A::Stage {
        self.first.wrap(self.second.wrap(target))
    }
}

// A recorded step is the combinator's own stage with `()` for its target:
// `Map<(), F>` waits for the stage it will send to.

impl<S, F> Layer<S> for Map<(), F> {
    type Stage = Map<S, F>;
    #[inline]
    fn wrap(self, target: S) -> Self::Stage {
        Map { f: self.f, target }
    }
}

impl<S, F> Layer<S> for Filter<(), F> {
    type Stage = Filter<S, F>;
    #[inline]
    fn wrap(self, target: S) -> Self::Stage {
        Filter {
            pred: self.pred,
            target,
        }
    }
}

impl<S, F> Layer<S> for Inspect<(), F> {
    type Stage = Inspect<S, F>;
    #[inline]
    fn wrap(self, target: S) -> Self::Stage {
        Inspect { f: self.f, target }
    }
}

impl<S> Layer<S> for Take<()> {
    type Stage = Take<S>;
    #[inline]
    fn wrap(self, target: S) -> Self::Stage {
        Take {
            left: self.left,
            target,
        }
    }
}

impl<S> Layer<S> for Owned<()> {
    type Stage = Owned<S>;
    #[inline]
    fn wrap(self, target: S) -> Self::Stage {
        Owned { target }
    }
}

impl<S> Layer<S> for Lend<()> {
    type Stage = Lend<S>;
    #[inline]
    fn wrap(self, target: S) -> Self::Stage {
        Lend { target }
    }
}

/// A pipeline under construction, written in data order. Made by
/// [`pipe()`]; finished by [`into`](Pipe::into), which takes the sink and
/// returns the stage to send items into.
///
/// Closures name their argument type as they do with any stage
/// (`|x: &u32|`, `|line: &[u8]|`), because the items' type is known only
/// from the source a pipe is fed by; a closure over a borrowed item
/// (`|line: &&[u8]|`) then accepts borrows of every lifetime, as a line
/// source requires.
#[derive(Debug, Clone, Copy)]
#[must_use = "a pipe does nothing until `into(sink)` makes it a stage"]
pub struct Pipe<L> {
    steps: L,
}

/// Starts a pipeline written in the order items travel.
///
/// `pipe().filter(p).map(f).take(n).into(out)` is a stage that filters,
/// then maps, then passes on at most `n` items to `out` — the iterator
/// reading. It builds the same nested stages as
/// `out.with_take(n).with_map(f).with_filter(p)`, at no run-time cost.
///
/// # Examples
///
/// ```
/// use copipe::{pipe, Lifecycle, Stage, sinks::Collect};
///
/// let mut out = Collect::new();
/// let mut p = pipe()
///     .map(|x: u32| x + 1)
///     .filter(|x: &u32| x % 2 == 0)
///     .into(&mut out);
/// for x in 0..6 {
///     p.send(x)?;
/// }
/// p.close()?;
/// assert_eq!(out.items(), &[2, 4, 6]); // as (0..6).map(..).filter(..) gives
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// Borrowed lines from a source, searched and printed:
///
/// ```
/// use copipe::{pipe, Lines, sinks::Printer};
///
/// let log = &b"GET /python/ HTTP/1.1\nGET /ply/ HTTP/1.1\n"[..];
/// let mut out = Vec::new();
/// Lines::new(log).run(
///     pipe()
///         .filter(|line: &&[u8]| line.windows(6).any(|w| w == b"python"))
///         .take(10)
///         .into(Printer::new(&mut out)),
/// )?;
/// assert_eq!(out, b"GET /python/ HTTP/1.1\n");
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn pipe() -> Pipe<Identity> {
    Pipe { steps: Identity }
}

impl<L> Pipe<L> {
    /// Applies `f` to each item.
    ///
    /// A closure cannot return a borrow of its argument; use
    /// [`map_ref`](Pipe::map_ref) for that, or a named `fn`.
    pub fn map<F>(self, f: F) -> Pipe<Chain<L, Map<(), F>>> {
        self.then(Map { f, target: () })
    }

    /// Applies `f` to each borrowed item and passes on the borrow it
    /// returns, which may point into the item (a field of a line).
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::{pipe, Lifecycle, Stage, sinks::Collect};
    ///
    /// let mut out = Collect::new();
    /// let mut p = pipe()
    ///     .map_ref(|line: &str| line.split(',').next().unwrap_or(""))
    ///     .owned()
    ///     .into(&mut out);
    /// p.send("22,North Bound")?;
    /// p.close()?;
    /// assert_eq!(out.items(), &["22".to_string()]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    pub fn map_ref<B, C, F>(self, f: F) -> Pipe<Chain<L, Map<(), F>>>
    where
        B: ?Sized,
        C: ?Sized,
        F: FnMut(&B) -> &C,
    {
        self.then(Map { f, target: () })
    }

    /// Passes on only the items for which `pred` is true.
    pub fn filter<F>(self, pred: F) -> Pipe<Chain<L, Filter<(), F>>> {
        self.then(Filter { pred, target: () })
    }

    /// Calls `f` on each item and passes it on unchanged.
    pub fn inspect<F>(self, f: F) -> Pipe<Chain<L, Inspect<(), F>>> {
        self.then(Inspect { f, target: () })
    }

    /// Passes on at most `n` items, then asks upstream to stop; `n == 0`
    /// stops at the first item without passing it on.
    pub fn take(self, n: usize) -> Pipe<Chain<L, Take<()>>> {
        self.then(Take {
            left: n,
            target: (),
        })
    }

    /// Turns borrowed items (`&[u8]`, `&str`) into owned ones (`Vec<u8>`,
    /// `String`): before a stage that keeps items (a collector, a bridge, a
    /// coroutine).
    pub fn owned(self) -> Pipe<Chain<L, Owned<()>>> {
        self.then(Owned { target: () })
    }

    /// Lends owned items (`Vec<u8>`, `String`) as borrows (`&[u8]`,
    /// `&str`): before a stage that takes borrows, such as
    /// [`Grep`](crate::Grep), fed owned items by a bridge or a coroutine.
    pub fn lend(self) -> Pipe<Chain<L, Lend<()>>> {
        self.then(Lend { target: () })
    }

    /// Adds a custom step (see [`Layer`]).
    pub fn then<K>(self, step: K) -> Pipe<Chain<L, K>> {
        Pipe {
            steps: Chain {
                first: self.steps,
                second: step,
            },
        }
    }

    /// Ends the pipe in `sink` and returns the stage to send items into.
    #[allow(clippy::wrong_self_convention)] // `into` names the sink the items go into, as in the issue's `pipe().map(g).into(out)`
    pub fn into<S>(self, sink: S) -> L::Stage
    where
        L: Layer<S>,
    {
        self.steps.wrap(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Collect;
    use crate::testutil::Recorder;
    use crate::{Flow, Lifecycle, Stage};

    #[test]
    fn pipe_runs_in_the_order_it_reads() {
        let mut out = Collect::new();
        let mut p = pipe()
            .map(|x: u32| x + 1)
            .filter(|x: &u32| x.is_multiple_of(2))
            .take(2)
            .into(&mut out);
        let mut flows = Vec::new();
        for x in 0..6 {
            let f = p.send(x).unwrap();
            flows.push(f);
            if f.is_stop() {
                break;
            }
        }
        assert_eq!(out.items(), &[2, 4]);
        assert_eq!(flows.last(), Some(&Flow::Stop));
    }

    #[test]
    fn pipe_forwards_flush_and_close() {
        let mut rec = Recorder::new();
        {
            let mut p = pipe().inspect(|_: &&str| ()).into(&mut rec);
            assert_eq!(p.send("x").unwrap(), Flow::Continue);
            p.flush().unwrap();
            p.close().unwrap();
        }
        assert_eq!(rec.log(), "send x\nflush\nclose\n");
    }

    #[test]
    fn lend_then_owned_round_trips() {
        let mut out: Collect<String> = Collect::new();
        let mut p = pipe().lend().owned().into(&mut out);
        assert_eq!(p.send(String::from("abc")).unwrap(), Flow::Continue);
        assert_eq!(out.items(), &["abc".to_string()]);
    }
}
