//! The [`Stage`] trait, [`Flow`], and the small combinators every pipeline
//! uses: [`Map`], [`Filter`], [`Inspect`], [`Take`], [`Owned`] and the
//! closure stage [`FromFn`].

use crate::error::Result;

/// What a stage tells the stage upstream of it after a `send`.
///
/// # Examples
///
/// ```
/// use copipe::{Flow, Stage, StageExt, sinks::Collect};
///
/// let mut out = Collect::new();
/// let mut first_two = (&mut out).with_take(2);
/// assert_eq!(first_two.send(1)?, Flow::Continue);
/// assert_eq!(first_two.send(2)?, Flow::Stop); // wants no more
/// assert_eq!(out.items(), &[1, 2]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "a Stop asks upstream to stop sending"]
pub enum Flow {
    /// Send more.
    Continue,
    /// Downstream wants no more items (a `take(n)` is satisfied, stdout was
    /// closed). Upstream stops quietly and then calls `close`.
    Stop,
}

impl Flow {
    /// True for [`Flow::Stop`].
    #[inline]
    pub fn is_stop(self) -> bool {
        matches!(self, Flow::Stop)
    }
}

/// Receives items pushed by the stage upstream of it.
///
/// In copipe, data is *pushed*: a source owns a loop and calls `send` on its
/// target for every item; each stage does its work and calls `send` on its
/// own target. This is the seed's `target.send(item)`, as a method call.
///
/// The protocol, which every implementation follows:
///
/// - `send` returns `Ok(Flow::Continue)` for more, `Ok(Flow::Stop)` to ask
///   upstream to stop (it then calls `close`), or `Err` to abort: upstream
///   stops at once, skips `close`, and returns the error to its own caller.
///   The caller of `send` *is* upstream, so an error travels upstream as an
///   ordinary return value: no side channel, no panic.
/// - `flush` means "upstream is about to wait": push out whatever is
///   buffered (a printer writes its buffer, a thread bridge sends a partial
///   batch). A wrapper forwards it to its target.
/// - `close` means "end of stream": finish, flush, and close the targets.
///   After `close`, no more items are sent. A wrapper forwards it.
///
/// A source ends by [`end_source`]: at the end of input or after
/// `Flow::Stop` it closes its target; after an input error it closes the
/// target too (so what was accepted is output) and returns the input's
/// error; after the target's own error it returns that error without
/// closing.
///
/// Items may borrow: a line source sends `&[u8]` slices of its own buffer,
/// valid only for the duration of the call. A stage that keeps an item must
/// copy it (or sit behind [`StageExt::with_owned`]). Sources are generic over
/// `S: for<'a> Stage<&'a [u8]>`.
///
/// # Writing a stage
///
/// A stage is two impls with matching bounds on its target:
///
/// - `impl Stage<T> for MyStage<S> where S: Stage<U>`: what `send` does with
///   one item (`T` in, `U` on to the target). For borrowed items, write it
///   for every lifetime (`impl<'a, S: Stage<&'a [u8]>> Stage<&'a [u8]>`),
///   so that the stage is `for<'a> Stage<&'a [u8]>` as sources require.
/// - `impl Lifecycle for MyStage<S> where S: Lifecycle`: `flush` and
///   `close`, which carry no item, so they are written once whatever items
///   the stage takes. A stage that only forwards them can say so with
///   [`forward_lifecycle!`](crate::forward_lifecycle).
///
/// The `Lifecycle` impl's bound must be no stricter than the `Stage` impl's
/// (`S: Lifecycle`, not `S: Stage<U>`), or the stage is a `Stage` nowhere.
///
/// # Examples
///
/// A stage that counts the bytes it sees and passes items on:
///
/// ```
/// use copipe::{Flow, Lifecycle, Result, Stage, StageExt, sinks::Collect};
///
/// struct ByteCount<S> { bytes: u64, target: S }
///
/// impl<'a, S: Stage<&'a [u8]>> Stage<&'a [u8]> for ByteCount<S> {
///     fn send(&mut self, line: &'a [u8]) -> Result<Flow> {
///         self.bytes += line.len() as u64;
///         self.target.send(line)
///     }
/// }
///
/// // flush and close carry no item, so they are implemented once, for
/// // every item type the stage takes.
/// impl<S: Lifecycle> Lifecycle for ByteCount<S> {
///     fn flush(&mut self) -> Result<()> { self.target.flush() }
///     fn close(&mut self) -> Result<()> { self.target.close() }
/// }
///
/// let mut out = Collect::new();
/// let mut stage = ByteCount { bytes: 0, target: (&mut out).with_owned() };
/// stage.send(b"python is nice")?;
/// stage.close()?;
/// assert_eq!(stage.bytes, 14);
/// assert_eq!(out.items(), &[b"python is nice".to_vec()]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a stage that takes `{T}` items",
    label = "this does not take `{T}`",
    note = "borrowed items (`&[u8]`, `&str`, `&Record`) into a stage of owned ones: put `pipe().owned()` in front of it; owned items into a stage of borrows: `pipe().lend()`",
    note = "across a thread: `threaded` takes owned items, `threaded_ref` and `threaded_flat` take borrowed ones (see the table in `copipe::bridge`)"
)]
pub trait Stage<T>: Lifecycle {
    /// Pushes one item.
    ///
    /// # Errors
    ///
    /// Any error of this stage or of the stages downstream of it. After an
    /// error, upstream sends nothing more and does not call `close`.
    fn send(&mut self, item: T) -> Result<Flow>;
}

/// The two verbs of a [`Stage`] that carry no item: `flush` and `close`.
///
/// They live in their own trait, without the item type, so that a stage
/// which accepts several item types (a [`Printer`](crate::sinks::Printer)
/// takes `&[u8]`, `&str`, `String`, ...) has one `close`, callable without
/// naming an item type, and so that [`StageExt`] applies to stages only.
/// Every stage implements both traits; a wrapper forwards both to its
/// target.
///
/// # Examples
///
/// ```
/// use copipe::{Lifecycle, Stage, sinks::Printer};
///
/// let mut p = Printer::new(Vec::new());
/// p.send("a")?;
/// p.send(String::from("b"))?;
/// p.close()?; // one close, whatever was sent
/// # Ok::<(), copipe::Error>(())
/// ```
pub trait Lifecycle {
    /// Pushes out anything buffered: upstream is about to wait for input.
    ///
    /// # Errors
    ///
    /// An error writing out the buffered items.
    fn flush(&mut self) -> Result<()>;

    /// Ends the stream: finishes, flushes, and closes the targets.
    ///
    /// # Errors
    ///
    /// An error finishing this stage or a downstream stage.
    fn close(&mut self) -> Result<()>;
}

/// How a source's loop ended, for [`end_source`].
///
/// # Examples
///
/// See [`end_source`].
#[derive(Debug)]
pub enum SourceEnd {
    /// The input ended, or the target answered [`Flow::Stop`].
    Done,
    /// Reading or decoding the input failed: the source's own error.
    Input(crate::Error),
    /// The target failed: `send` or `flush` returned this error.
    Target(crate::Error),
}

impl SourceEnd {
    /// What a `send`'s answer means for the source's loop: `None` to go
    /// on, `Some(Done)` after [`Flow::Stop`], `Some(Target(e))` after an
    /// error.
    #[inline]
    pub fn after_send(answer: Result<Flow>) -> Option<SourceEnd> {
        match answer {
            Ok(Flow::Continue) => None,
            Ok(Flow::Stop) => Some(SourceEnd::Done),
            Err(e) => Some(SourceEnd::Target(e)),
        }
    }

    /// What a `flush`'s answer means: `None` to go on, `Some(Target(e))`
    /// after an error.
    #[inline]
    pub fn after_flush(answer: Result<()>) -> Option<SourceEnd> {
        answer.err().map(SourceEnd::Target)
    }
}

/// Ends a source: the one rule every copipe source follows when its loop
/// is over, whatever ended it.
///
/// | how the loop ended | closes the target? | returns |
/// |---|---|---|
/// | [`SourceEnd::Done`]: end of input, or `Flow::Stop` | yes | `close`'s result |
/// | [`SourceEnd::Input`]: the input failed | yes, so what the target accepted is output | the input's error (a failure to close is dropped: the cause comes first) |
/// | [`SourceEnd::Target`]: `send` or `flush` failed | no: a failed stage is not closed (see [`Stage`]) | the target's error |
///
/// # Errors
///
/// As the table says.
///
/// # Examples
///
/// A source of numbers parsed from text, which stops at the first bad one
/// after its target has output the good ones:
///
/// ```
/// use copipe::{end_source, Error, ErrorKind, Lifecycle, Result, SourceEnd, Stage, sinks::Collect};
///
/// fn numbers<S: Stage<u32>>(text: &str, mut target: S) -> Result<()> {
///     let mut words = text.split_whitespace();
///     let end = loop {
///         let Some(word) = words.next() else { break SourceEnd::Done };
///         let n = match word.parse() {
///             Ok(n) => n,
///             Err(_) => break SourceEnd::Input(Error::new(ErrorKind::Usage(format!("not a number: {word}")))),
///         };
///         if let Some(end) = SourceEnd::after_send(target.send(n)) {
///             break end;
///         }
///     };
///     end_source(&mut target, end)
/// }
///
/// let mut out = Collect::new();
/// let err = numbers("1 2 x 3", &mut out).unwrap_err();
/// assert_eq!(err.to_string(), "not a number: x");
/// assert_eq!(out.items(), &[1, 2]);
/// assert!(out.is_closed()); // closed: what it accepted is output
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn end_source<S: Lifecycle + ?Sized>(target: &mut S, end: SourceEnd) -> Result<()> {
    match end {
        SourceEnd::Done => target.close(),
        SourceEnd::Input(e) => {
            // The input's error is the cause; a failure to close after it
            // is a consequence.
            let _ = target.close();
            Err(e)
        }
        SourceEnd::Target(e) => Err(e),
    }
}

/// Implements [`Lifecycle`] for a stage that only forwards `flush` and
/// `close` to one field, its target: the impl most stages need.
///
/// Write the impl's generics with the target's bound, then the type, then
/// the field (a name, or `0` for a tuple struct), then any `where` clause:
/// `forward_lifecycle!(impl<S: Lifecycle, F> for MyStage<S, F> => target);`
///
/// # Examples
///
/// ```
/// use copipe::{forward_lifecycle, pipe, Flow, Lifecycle, Result, Stage, sinks::Collect};
///
/// /// Doubles each number.
/// struct Double<S> { target: S }
///
/// impl<S: Stage<u32>> Stage<u32> for Double<S> {
///     fn send(&mut self, x: u32) -> Result<Flow> {
///         self.target.send(x * 2)
///     }
/// }
/// forward_lifecycle!(impl<S: Lifecycle> for Double<S> => target);
///
/// let mut out = Collect::new();
/// let mut d = Double { target: &mut out };
/// d.send(21)?;
/// d.close()?;
/// assert!(out.is_closed());
/// assert_eq!(out.items(), &[42]);
/// # Ok::<(), copipe::Error>(())
/// ```
#[macro_export]
macro_rules! forward_lifecycle {
    (impl<$($lt:lifetime,)* $($g:ident $(: $b:path)?),* $(,)?> for $ty:ty => $field:tt
        $(where $($w:tt)+)?) => {
        impl<$($lt,)* $($g $(: $b)?),*> $crate::Lifecycle for $ty $(where $($w)+)? {
            #[inline]
            fn flush(&mut self) -> $crate::Result<()> {
                $crate::Lifecycle::flush(&mut self.$field)
            }
            #[inline]
            fn close(&mut self) -> $crate::Result<()> {
                $crate::Lifecycle::close(&mut self.$field)
            }
        }
    };
}

impl<T, S: Stage<T> + ?Sized> Stage<T> for &mut S {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        (**self).send(item)
    }
}

impl<S: Lifecycle + ?Sized> Lifecycle for &mut S {
    #[inline]
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    #[inline]
    fn close(&mut self) -> Result<()> {
        (**self).close()
    }
}

impl<T, S: Stage<T> + ?Sized> Stage<T> for Box<S> {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        (**self).send(item)
    }
}

impl<S: Lifecycle + ?Sized> Lifecycle for Box<S> {
    #[inline]
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    #[inline]
    fn close(&mut self) -> Result<()> {
        (**self).close()
    }
}

/// Sink-side combinators on any stage: each returns a stage that does its
/// work and then sends to `self`.
///
/// The primary way to write a pipeline is [`pipe()`](crate::pipe()), which
/// reads left to right in the order items travel. `StageExt` builds the same
/// stages from the sink's end, so its methods are named for what they are:
/// `out.with_map(f)` is "`out`, with a `map` in front of it" (as
/// `futures::SinkExt::with` is). A chain of them reads from the sink back
/// towards the source:
///
/// ```
/// use copipe::{pipe, Lifecycle, Stage, StageExt, sinks::Collect};
///
/// let mut out = Collect::new();
/// // items -> with_filter(even) -> with_map(x10) -> out
/// let mut pipeline = (&mut out).with_map(|x: u32| x * 10).with_filter(|x: &u32| x % 2 == 0);
/// // the same pipeline in data order
/// let mut same = pipe().filter(|x: &u32| x % 2 == 0).map(|x: u32| x * 10).into(Collect::new());
/// for x in 0..6 {
///     pipeline.send(x)?;
///     same.send(x)?;
/// }
/// pipeline.close()?;
/// assert_eq!(out.items(), &[0, 20, 40]);
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// `StageExt` is implemented for every stage (every [`Lifecycle`] type),
/// whatever items it takes, so `Printer::new(out).with_filter(..)` needs no
/// annotation. The free functions [`map`], [`filter`] and [`take`] give the
/// seed's argument order, `map(f, target)`, which also reads in data order.
///
/// The methods named `map`, `filter`, `inspect`, `take` and `owned` are
/// deprecated: they promised iterator order and ran the other way
/// (`out.map(f).filter(p)` filters *before* it maps).
pub trait StageExt: Lifecycle + Sized {
    /// A stage that applies `f` to each item and sends the result to `self`.
    ///
    /// A closure cannot return a borrow of its argument (`|line: &[u8]|
    /// &line[1..]` does not compile: its signature is not general enough);
    /// use [`with_map_ref`](StageExt::with_map_ref) or a named `fn`, whose
    /// signature ties the output's lifetime to the input's.
    fn with_map<F>(self, f: F) -> Map<Self, F> {
        Map { f, target: self }
    }

    /// A stage that applies `f` to each borrowed item and sends on the
    /// borrow `f` returns, which may point into the item (a field of a
    /// line, a trimmed slice). Same stage as [`with_map`](StageExt::with_map);
    /// the bound makes a closure lend.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::{Lifecycle, Stage, StageExt, sinks::Collect};
    ///
    /// let mut out = Collect::new();
    /// let mut first_field = (&mut out)
    ///     .with_owned()
    ///     .with_map_ref(|line: &str| line.split(',').next().unwrap_or(""));
    /// first_field.send("22,North Bound")?;
    /// first_field.close()?;
    /// assert_eq!(out.items(), &["22".to_string()]);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    fn with_map_ref<B, C, F>(self, f: F) -> Map<Self, F>
    where
        B: ?Sized,
        C: ?Sized,
        F: FnMut(&B) -> &C,
    {
        Map { f, target: self }
    }

    /// A stage that sends to `self` only the items for which `pred` is true.
    fn with_filter<F>(self, pred: F) -> Filter<Self, F> {
        Filter { pred, target: self }
    }

    /// A stage that calls `f` on each item, then sends it to `self` unchanged.
    fn with_inspect<F>(self, f: F) -> Inspect<Self, F> {
        Inspect { f, target: self }
    }

    /// A stage that sends at most `n` items to `self`, then asks upstream
    /// to stop. `n == 0` stops at the first item without sending it.
    fn with_take(self, n: usize) -> Take<Self> {
        Take {
            left: n,
            target: self,
        }
    }

    /// A stage that accepts borrowed items (`&[u8]`, `&str`, ...) and sends
    /// owned copies (`Vec<u8>`, `String`, ...) to `self`: put it before a
    /// stage that keeps items, such as a collector or a bridge.
    fn with_owned(self) -> Owned<Self> {
        Owned { target: self }
    }

    /// A stage that accepts owned items (`Vec<u8>`, `String`, `Box<T>`, ...)
    /// and lends each to `self` as a borrow (`&[u8]`, `&str`, `&T`): the way
    /// back from [`with_owned`](StageExt::with_owned), for a stage that takes
    /// borrows, such as [`Grep`](crate::Grep), fed from a thread bridge or a
    /// coroutine.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::{Lifecycle, Stage, StageExt, sinks::Printer};
    ///
    /// let mut lend = Printer::new(Vec::new()).with_lend();
    /// lend.send(b"owned bytes".to_vec())?; // Vec<u8> in, &[u8] out
    /// lend.send(String::from("an owned line"))?; // String in, &str out
    /// lend.close()?;
    /// # Ok::<(), copipe::Error>(())
    /// ```
    fn with_lend(self) -> Lend<Self> {
        Lend { target: self }
    }

    /// Boxes this stage as a trait object, for graphs built at run time.
    fn boxed<'s, T>(self) -> Box<dyn Stage<T> + 's>
    where
        Self: Stage<T> + 's,
    {
        Box::new(self)
    }

    /// Deprecated: reads against the data. Use [`pipe()`](crate::pipe())
    /// (`pipe().map(f).into(self)`) or [`with_map`](StageExt::with_map).
    #[deprecated(
        since = "0.2.0",
        note = "`out.map(f).filter(p)` filters before it maps; write `pipe().filter(p).map(f).into(out)` or `out.with_map(f)`"
    )]
    fn map<F>(self, f: F) -> Map<Self, F> {
        self.with_map(f)
    }

    /// Deprecated: reads against the data. Use [`pipe()`](crate::pipe())
    /// or [`with_filter`](StageExt::with_filter).
    #[deprecated(
        since = "0.2.0",
        note = "reads against the data; write `pipe().filter(p).into(out)` or `out.with_filter(p)`"
    )]
    fn filter<F>(self, pred: F) -> Filter<Self, F> {
        self.with_filter(pred)
    }

    /// Deprecated: reads against the data. Use [`pipe()`](crate::pipe())
    /// or [`with_inspect`](StageExt::with_inspect).
    #[deprecated(
        since = "0.2.0",
        note = "reads against the data; write `pipe().inspect(f).into(out)` or `out.with_inspect(f)`"
    )]
    fn inspect<F>(self, f: F) -> Inspect<Self, F> {
        self.with_inspect(f)
    }

    /// Deprecated: reads against the data and took a `u64`. Use
    /// [`pipe()`](crate::pipe()) or [`with_take`](StageExt::with_take).
    #[deprecated(
        since = "0.2.0",
        note = "reads against the data; write `pipe().take(n).into(out)` or `out.with_take(n)` (n: usize)"
    )]
    fn take(self, n: u64) -> Take<Self> {
        self.with_take(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Deprecated: reads against the data. Use [`pipe()`](crate::pipe())
    /// or [`with_owned`](StageExt::with_owned).
    #[deprecated(
        since = "0.2.0",
        note = "reads against the data; write `pipe().owned().into(out)` or `out.with_owned()`"
    )]
    fn owned(self) -> Owned<Self> {
        self.with_owned()
    }
}

impl<S: Lifecycle> StageExt for S {}

/// Applies a function to each item. Made by [`Pipe::map`](crate::Pipe::map), [`StageExt::with_map`] or [`map`].
#[derive(Debug, Clone)]
pub struct Map<S, F> {
    pub(crate) f: F,
    pub(crate) target: S,
}

impl<U, T, S, F> Stage<U> for Map<S, F>
where
    F: FnMut(U) -> T,
    S: Stage<T>,
{
    #[inline]
    fn send(&mut self, item: U) -> Result<Flow> {
        self.target.send((self.f)(item))
    }
}

forward_lifecycle!(impl<S: Lifecycle, F> for Map<S, F> => target);

/// Passes on the items a predicate accepts. Made by [`Pipe::filter`](crate::Pipe::filter),
/// [`StageExt::with_filter`] or [`filter`].
#[derive(Debug, Clone)]
pub struct Filter<S, F> {
    pub(crate) pred: F,
    pub(crate) target: S,
}

impl<T, S, F> Stage<T> for Filter<S, F>
where
    F: FnMut(&T) -> bool,
    S: Stage<T>,
{
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        if (self.pred)(&item) {
            self.target.send(item)
        } else {
            Ok(Flow::Continue)
        }
    }
}

forward_lifecycle!(impl<S: Lifecycle, F> for Filter<S, F> => target);

/// Calls a function on each item and passes it on. Made by
/// [`Pipe::inspect`](crate::Pipe::inspect) or [`StageExt::with_inspect`].
#[derive(Debug, Clone)]
pub struct Inspect<S, F> {
    pub(crate) f: F,
    pub(crate) target: S,
}

impl<T, S, F> Stage<T> for Inspect<S, F>
where
    F: FnMut(&T),
    S: Stage<T>,
{
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        (self.f)(&item);
        self.target.send(item)
    }
}

forward_lifecycle!(impl<S: Lifecycle, F> for Inspect<S, F> => target);

/// Passes on the first `n` items, then stops. Made by [`Pipe::take`](crate::Pipe::take),
/// [`StageExt::with_take`] or [`take`].
#[derive(Debug, Clone)]
pub struct Take<S> {
    pub(crate) left: usize,
    pub(crate) target: S,
}

impl<T, S: Stage<T>> Stage<T> for Take<S> {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        if self.left == 0 {
            return Ok(Flow::Stop);
        }
        self.left -= 1;
        let flow = self.target.send(item)?;
        Ok(if self.left == 0 { Flow::Stop } else { flow })
    }
}

forward_lifecycle!(impl<S: Lifecycle> for Take<S> => target);

/// Turns borrowed items into owned ones. Made by [`Pipe::owned`](crate::Pipe::owned) or
/// [`StageExt::with_owned`].
#[derive(Debug, Clone)]
pub struct Owned<S> {
    pub(crate) target: S,
}

impl<'a, B, S> Stage<&'a B> for Owned<S>
where
    B: ToOwned + ?Sized,
    S: Stage<B::Owned>,
{
    #[inline]
    fn send(&mut self, item: &'a B) -> Result<Flow> {
        self.target.send(item.to_owned())
    }
}

forward_lifecycle!(impl<S: Lifecycle> for Owned<S> => target);

/// Lends owned items to a stage that takes borrows. Made by
/// [`StageExt::with_lend`] or [`Pipe::lend`](crate::Pipe::lend).
#[derive(Debug, Clone)]
pub struct Lend<S> {
    pub(crate) target: S,
}

impl<O, S> Stage<O> for Lend<S>
where
    O: std::ops::Deref,
    S: for<'a> Stage<&'a O::Target>,
{
    #[inline]
    fn send(&mut self, item: O) -> Result<Flow> {
        self.target.send(&*item)
    }
}

forward_lifecycle!(impl<S: Lifecycle> for Lend<S> => target);

/// A stage made from a closure: `send` calls it, `flush` and `close` do
/// nothing. Made by [`from_fn`].
///
/// The item type is not part of the stage's type, so a closure over a
/// borrowed item (`|line: &[u8]| ...`) makes a stage for borrows of every
/// lifetime, as a line source requires (`for<'a> Stage<&'a [u8]>`).
pub struct FromFn<F> {
    f: F,
}

impl<F> std::fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

/// Makes a stage from a closure that handles one item.
///
/// Annotate the closure's argument: `|line: &[u8]| ...` accepts lines
/// borrowed from a source's buffer.
///
/// # Examples
///
/// ```
/// use copipe::{Flow, Stage, from_fn};
///
/// fn source<S: for<'a> Stage<&'a [u8]>>(mut target: S) -> copipe::Result<()> {
///     let buf = b"python\nply\n".to_vec(); // lines borrowed from here
///     for line in buf.split_inclusive(|&b| b == b'\n') {
///         if target.send(line)?.is_stop() {
///             break;
///         }
///     }
///     target.close()
/// }
///
/// let mut lengths = Vec::new();
/// source(from_fn(|line: &[u8]| {
///     lengths.push(line.len());
///     Ok(Flow::Continue)
/// }))?;
/// assert_eq!(lengths, [7, 4]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn from_fn<F>(f: F) -> FromFn<F> {
    FromFn { f }
}

impl<T, F> Stage<T> for FromFn<F>
where
    F: FnMut(T) -> Result<Flow>,
{
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        (self.f)(item)
    }
}

impl<F> Lifecycle for FromFn<F> {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The seed's argument order: `map(f, target)`, which reads in data order
/// when nested (`filter(p, map(f, out))`). Same as `target.with_map(f)`.
pub fn map<S: Lifecycle, F>(f: F, target: S) -> Map<S, F> {
    target.with_map(f)
}

/// The seed's argument order: `filter(pred, target)`. Same as
/// `target.with_filter(pred)`.
pub fn filter<S: Lifecycle, F>(pred: F, target: S) -> Filter<S, F> {
    target.with_filter(pred)
}

/// The seed's argument order: `take(n, target)`. Same as
/// `target.with_take(n)`.
pub fn take<S: Lifecycle>(n: usize, target: S) -> Take<S> {
    target.with_take(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Collect;
    use crate::testutil::Recorder;

    #[test]
    fn take_stops_after_n_and_never_sends_more() {
        let mut rec = Recorder::new();
        let mut t = (&mut rec).with_take(2);
        assert_eq!(t.send("a").unwrap(), Flow::Continue);
        assert_eq!(t.send("b").unwrap(), Flow::Stop);
        assert_eq!(t.send("c").unwrap(), Flow::Stop);
        t.close().unwrap();
        assert_eq!(rec.log(), "send a\nsend b\nclose\n");
    }

    #[test]
    fn take_zero_sends_nothing() {
        let mut rec = Recorder::new();
        let mut t = (&mut rec).with_take(0);
        assert_eq!(t.send("a").unwrap(), Flow::Stop);
        assert_eq!(rec.log(), "");
    }

    #[test]
    fn wrappers_forward_flush_and_close() {
        let mut rec = Recorder::new();
        {
            let mut s = (&mut rec)
                .with_inspect(|_: &&str| ())
                .with_filter(|_: &&str| true)
                .with_map(|s: &'static str| s);
            assert_eq!(s.send("x").unwrap(), Flow::Continue);
            s.flush().unwrap();
            s.close().unwrap();
        }
        assert_eq!(rec.log(), "send x\nflush\nclose\n");
    }

    #[test]
    fn owned_copies_borrowed_items() {
        let mut out = Collect::new();
        let buf = String::from("abc");
        {
            let mut s = (&mut out).with_owned();
            assert_eq!(s.send(&buf[..2]).unwrap(), Flow::Continue);
        }
        drop(buf);
        assert_eq!(out.items(), &["ab".to_string()]);
    }

    #[test]
    fn boxed_stage_works_as_trait_object() {
        let mut out = Collect::new();
        let mut stages: Vec<Box<dyn Stage<u8> + '_>> = vec![(&mut out).boxed()];
        assert_eq!(stages[0].send(7).unwrap(), Flow::Continue);
        drop(stages);
        assert_eq!(out.items(), &[7]);
    }
}
