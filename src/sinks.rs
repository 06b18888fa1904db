//! Sinks: stages at the end of a pipeline.
//!
//! - [`Printer`] writes each item as a line to any writer, buffered; the
//!   buffer goes out when full, on `flush` and on `close`. A closed pipe
//!   (`| head -1`) turns into [`Flow::Stop`], not an error.
//! - [`Null`] discards items (benchmarks, `> /dev/null`).
//! - [`Collect`] keeps owned items in a `Vec` (tests, examples).
//! - [`Count`] counts items.
//! - [`Fold`] folds items into one value (`Iterator::fold` as a sink).
//! - [`CountBy`] counts items by a key (top talkers: count by client,
//!   then [`CountBy::most_common`]).
//! - [`TopK`] keeps the `k` items with the largest keys.

use crate::Lifecycle;
use std::io::{self, Write};

use crate::error::{Error, Result};
use crate::stage::{Flow, Stage};

/// Bytes a [`Printer`] gathers before it writes.
const PRINTER_BUFFER: usize = 64 * 1024;

/// Writes each item as one line, buffered (the seed's `printer`).
///
/// Items are bytes (`&[u8]`, `&str`, `Vec<u8>`, `String`, ...) written as
/// they are; a newline is added only to an item that does not already end
/// with one, so lines stay byte-identical to the input and a final line
/// without a newline is printed with one, as `grep` does.
///
/// A `BrokenPipe` from the writer means the reader went away: the printer
/// returns [`Flow::Stop`] from then on and discards further output, so a
/// pipeline into `| head -1` ends quietly.
///
/// # Examples
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{Stage, sinks::Printer};
///
/// let mut out = Vec::new();
/// let mut p = Printer::new(&mut out);
/// p.send(&b"GET /python HTTP/1.1\n"[..])?;
/// p.send(&b"last line, no newline"[..])?;
/// p.close()?;
/// drop(p);
/// assert_eq!(out, b"GET /python HTTP/1.1\nlast line, no newline\n");
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug)]
pub struct Printer<W: Write> {
    buf: Vec<u8>,
    out: W,
    broken: bool,
}

impl<W: Write> Printer<W> {
    /// A printer writing to `out`.
    pub fn new(out: W) -> Printer<W> {
        Printer {
            buf: Vec::with_capacity(PRINTER_BUFFER),
            out,
            broken: false,
        }
    }

    /// True once the writer reported a broken pipe.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The writer, after the printer's buffer has been written out.
    ///
    /// # Errors
    ///
    /// An error writing the buffer.
    pub fn into_inner(mut self) -> Result<W> {
        self.write_out()?;
        let Printer { out, .. } = self;
        Ok(out)
    }

    /// Adds raw bytes to the buffer, writing it out when full. Used by
    /// formatting stages (such as a CSV printer) that build a line in
    /// place; the bytes should end with a newline.
    ///
    /// # Errors
    ///
    /// An I/O error other than a broken pipe.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<Flow> {
        if self.broken {
            return Ok(Flow::Stop);
        }
        self.buf.extend_from_slice(bytes);
        self.maybe_write_out()
    }

    /// The buffer itself, for formatting stages that write into it directly
    /// (`write!(printer.buffer(), ...)`), followed by [`Printer::commit`].
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Writes the buffer out if it is full. Call after writing into
    /// [`Printer::buffer`].
    ///
    /// # Errors
    ///
    /// An I/O error other than a broken pipe.
    pub fn commit(&mut self) -> Result<Flow> {
        if self.broken {
            self.buf.clear();
            return Ok(Flow::Stop);
        }
        self.maybe_write_out()
    }

    #[inline]
    fn maybe_write_out(&mut self) -> Result<Flow> {
        if self.buf.len() >= PRINTER_BUFFER {
            self.write_out()?;
        }
        Ok(if self.broken {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }

    fn write_out(&mut self) -> Result<()> {
        if self.broken {
            self.buf.clear();
            return Ok(());
        }
        let res = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        self.buf.clear();
        match res {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.broken = true;
                Ok(())
            }
            Err(e) => Err(Error::from(e)),
        }
    }
}

impl<T: AsRef<[u8]>, W: Write> Stage<T> for Printer<W> {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        if self.broken {
            return Ok(Flow::Stop);
        }
        let line = item.as_ref();
        self.buf.extend_from_slice(line);
        if line.last() != Some(&b'\n') {
            self.buf.push(b'\n');
        }
        self.maybe_write_out()
    }
}

impl<W: Write> Lifecycle for Printer<W> {
    fn flush(&mut self) -> Result<()> {
        self.write_out()
    }
    fn close(&mut self) -> Result<()> {
        self.write_out()
    }
}

/// Discards every item.
///
/// # Examples
///
/// ```
/// use copipe::{Flow, Stage, sinks::Null};
///
/// assert_eq!(Null::new().send("anything")?, Flow::Continue);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Null;

impl Null {
    /// A sink that discards.
    pub fn new() -> Null {
        Null
    }
}

impl<T> Stage<T> for Null {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        // Keep the item observable so benchmarks cannot optimise away the
        // work that produced it.
        std::hint::black_box(item);
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Null {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Keeps every item in a `Vec`. Put [`StageExt::with_owned`] (or
/// `pipe().owned()`) in front of it for borrowed items.
///
/// # Examples
///
/// ```
/// use copipe::Lifecycle;
/// use copipe::{Stage, sinks::Collect};
///
/// let mut c = Collect::new();
/// c.send("a")?;
/// c.close()?;
/// assert!(c.is_closed());
/// assert_eq!(c.into_items(), ["a"]);
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// [`StageExt::with_owned`]: crate::StageExt::with_owned
#[derive(Debug, Clone)]
pub struct Collect<T> {
    items: Vec<T>,
    closed: bool,
}

impl<T> Default for Collect<T> {
    fn default() -> Self {
        Collect::new()
    }
}

impl<T> Collect<T> {
    /// An empty collector.
    pub fn new() -> Collect<T> {
        Collect {
            items: Vec::new(),
            closed: false,
        }
    }

    /// The items so far.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// The items, consuming the collector.
    pub fn into_items(self) -> Vec<T> {
        self.items
    }

    /// True once `close` has been called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl<T> Stage<T> for Collect<T> {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        self.items.push(item);
        Ok(Flow::Continue)
    }
}

impl<T> Lifecycle for Collect<T> {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        self.closed = true;
        Ok(())
    }
}

/// Counts the items it receives.
///
/// `Count` is not `Copy`: a copy passed into a pipeline would count while
/// the original kept reading 0. Lend it instead (`&mut count` is a stage),
/// and read it when the pipeline is done:
///
/// ```
/// use copipe::{broadcast, Lifecycle, Stage, sinks::{Count, Null}};
///
/// let mut count = Count::new();
/// let mut b = broadcast((Null, &mut count));
/// b.send("a")?;
/// b.close()?;
/// drop(b);
/// assert_eq!(count.count(), 1);
/// # Ok::<(), copipe::Error>(())
/// ```
///
/// # Examples
///
/// ```
/// use copipe::{Stage, sinks::Count};
///
/// let mut n = Count::new();
/// for line in ["a", "b"] {
///     n.send(line)?;
/// }
/// assert_eq!(n.count(), 2);
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Count {
    n: u64,
}

impl Count {
    /// A counter at zero.
    pub fn new() -> Count {
        Count { n: 0 }
    }

    /// Items received so far.
    pub fn count(&self) -> u64 {
        self.n
    }
}

impl<T> Stage<T> for Count {
    #[inline]
    fn send(&mut self, _item: T) -> Result<Flow> {
        self.n += 1;
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Count {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Folds every item into one value: `Iterator::fold` as a sink.
///
/// `f` updates the accumulator in place (`|acc, item| *acc += item`), so a
/// large accumulator (a `Vec`, a map) is not moved per item.
///
/// # Examples
///
/// ```
/// use copipe::{Lifecycle, Stage, sinks::Fold};
///
/// let mut bytes = Fold::new(0u64, |total: &mut u64, line: &[u8]| *total += line.len() as u64);
/// for line in [&b"GET /a\n"[..], &b"GET /bb\n"[..]] {
///     bytes.send(line)?;
/// }
/// bytes.close()?;
/// assert_eq!(*bytes.value(), 15);
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct Fold<A, F> {
    acc: A,
    f: F,
}

impl<A: std::fmt::Debug, F> std::fmt::Debug for Fold<A, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fold")
            .field("acc", &self.acc)
            .finish_non_exhaustive()
    }
}

impl<A, F> Fold<A, F> {
    /// A fold starting at `init`.
    pub fn new(init: A, f: F) -> Fold<A, F> {
        Fold { acc: init, f }
    }

    /// The value so far.
    pub fn value(&self) -> &A {
        &self.acc
    }

    /// The value, consuming the fold.
    pub fn into_value(self) -> A {
        self.acc
    }
}

impl<T, A, F: FnMut(&mut A, T)> Stage<T> for Fold<A, F> {
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        (self.f)(&mut self.acc, item);
        Ok(Flow::Continue)
    }
}

impl<A, F> Lifecycle for Fold<A, F> {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Counts items by a key: `key` maps each item to an owned key (a client
/// address from a log line) and the sink keeps one count per key.
///
/// The key function sees the item borrowed, so a line borrowed from a
/// source's buffer is counted without being copied; only new keys are
/// stored.
///
/// # Examples
///
/// Top talkers from an access log:
///
/// ```
/// use copipe::{Lines, sinks::CountBy};
///
/// let log = &b"1.2.3.4 - GET /a\n5.6.7.8 - GET /b\n1.2.3.4 - GET /c\n"[..];
/// let mut by_client = CountBy::new(|line: &&[u8]| {
///     let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
///     String::from_utf8_lossy(&line[..end]).into_owned()
/// });
/// Lines::new(log).run(&mut by_client)?;
/// assert_eq!(by_client.most_common(1), [("1.2.3.4".to_string(), 2)]);
/// assert_eq!(by_client.count(&"5.6.7.8".to_string()), 1);
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct CountBy<K, F> {
    counts: std::collections::HashMap<K, u64>,
    key: F,
}

impl<K: std::fmt::Debug, F> std::fmt::Debug for CountBy<K, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountBy")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl<K: std::hash::Hash + Eq, F> CountBy<K, F> {
    /// Counts items by `key(&item)`.
    pub fn new(key: F) -> CountBy<K, F> {
        CountBy {
            counts: std::collections::HashMap::new(),
            key,
        }
    }

    /// The count of one key (0 if never seen).
    pub fn count(&self, key: &K) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// Every key with its count, in no particular order.
    pub fn counts(&self) -> &std::collections::HashMap<K, u64> {
        &self.counts
    }

    /// The counts, consuming the sink.
    pub fn into_counts(self) -> std::collections::HashMap<K, u64> {
        self.counts
    }

    /// The `n` keys with the highest counts, highest first; equal counts
    /// in key order, so the answer does not depend on hashing.
    pub fn most_common(&self, n: usize) -> Vec<(K, u64)>
    where
        K: Ord + Clone,
    {
        let mut all: Vec<(&K, u64)> = self.counts.iter().map(|(k, &c)| (k, c)).collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        all.into_iter()
            .take(n)
            .map(|(k, c)| (k.clone(), c))
            .collect()
    }
}

impl<T, K, F> Stage<T> for CountBy<K, F>
where
    K: std::hash::Hash + Eq,
    F: FnMut(&T) -> K,
{
    #[inline]
    fn send(&mut self, item: T) -> Result<Flow> {
        *self.counts.entry((self.key)(&item)).or_insert(0) += 1;
        Ok(Flow::Continue)
    }
}

impl<K, F> Lifecycle for CountBy<K, F> {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Keeps the `k` items with the largest keys, in bounded memory (a heap of
/// `k` items): the largest responses of a log, the busiest routes.
///
/// Items are kept, so they must be owned (put `pipe().owned()` in front
/// for borrowed lines). Among items with equal keys the earliest are kept.
///
/// # Examples
///
/// ```
/// use copipe::{Lifecycle, Stage, sinks::TopK};
///
/// let mut top = TopK::new(2, |x: &(&str, u32)| x.1);
/// for item in [("a", 5), ("b", 9), ("c", 1), ("d", 7)] {
///     top.send(item)?;
/// }
/// top.close()?;
/// assert_eq!(top.into_sorted_vec(), [("b", 9), ("d", 7)]);
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct TopK<T, K, F> {
    k: usize,
    seq: u64,
    // A min-heap on (key, newest first): its top is the item to evict.
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Ranked<K, T>>>,
    key: F,
}

/// An item in a [`TopK`]'s heap, ordered by key, then earliest first.
#[derive(Debug)]
struct Ranked<K, T> {
    key: K,
    seq: u64,
    item: T,
}

impl<K: Ord, T> PartialEq for Ranked<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl<K: Ord, T> Eq for Ranked<K, T> {}
impl<K: Ord, T> PartialOrd for Ranked<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord, T> Ord for Ranked<K, T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // A larger key ranks higher; for equal keys the earlier item does.
        self.key
            .cmp(&other.key)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T: std::fmt::Debug, K: std::fmt::Debug, F> std::fmt::Debug for TopK<T, K, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopK")
            .field("k", &self.k)
            .field("held", &self.heap.len())
            .finish_non_exhaustive()
    }
}

impl<T, K: Ord, F> TopK<T, K, F> {
    /// Keeps the `k` items with the largest `key(&item)`.
    pub fn new(k: usize, key: F) -> TopK<T, K, F> {
        TopK {
            k,
            seq: 0,
            heap: std::collections::BinaryHeap::with_capacity(k.min(1 << 16) + 1),
            key,
        }
    }

    /// The kept items, largest key first.
    pub fn into_sorted_vec(self) -> Vec<T> {
        // `Reverse` sorts ascending by Reverse, that is largest rank first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|std::cmp::Reverse(r)| r.item)
            .collect()
    }
}

impl<T, K, F> Stage<T> for TopK<T, K, F>
where
    K: Ord,
    F: FnMut(&T) -> K,
{
    fn send(&mut self, item: T) -> Result<Flow> {
        if self.k == 0 {
            return Ok(Flow::Continue);
        }
        let ranked = Ranked {
            key: (self.key)(&item),
            seq: self.seq,
            item,
        };
        self.seq += 1;
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(ranked));
        } else if let Some(mut lowest) = self.heap.peek_mut() {
            if ranked > lowest.0 {
                *lowest = std::cmp::Reverse(ranked);
            }
        }
        Ok(Flow::Continue)
    }
}

impl<T, K, F> Lifecycle for TopK<T, K, F> {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn top_k_keeps_the_largest_and_the_earliest_of_equals() {
        let mut top = TopK::new(3, |x: &(u32, char)| x.0);
        for item in [(1, 'a'), (5, 'b'), (5, 'c'), (2, 'd'), (5, 'e'), (9, 'f')] {
            assert_eq!(top.send(item).unwrap(), Flow::Continue);
        }
        assert_eq!(top.into_sorted_vec(), [(9, 'f'), (5, 'b'), (5, 'c')]);
        let mut none = TopK::new(0, |x: &u32| *x);
        assert_eq!(none.send(1).unwrap(), Flow::Continue);
        assert!(none.into_sorted_vec().is_empty());
    }

    #[test]
    fn count_by_orders_ties_by_key() {
        let mut c = CountBy::new(|s: &&str| s.to_string());
        for s in ["b", "a", "b", "a", "c"] {
            assert_eq!(c.send(s).unwrap(), Flow::Continue);
        }
        assert_eq!(
            c.most_common(3),
            [
                ("a".to_string(), 2),
                ("b".to_string(), 2),
                ("c".to_string(), 1)
            ]
        );
    }

    #[test]
    fn printer_buffers_until_flush() {
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out);
        assert_eq!(p.send("a").unwrap(), Flow::Continue);
        assert!(p.buf.len() == 2);
        p.flush().unwrap();
        assert!(p.buf.is_empty());
        drop(p);
        assert_eq!(out, b"a\n");
    }

    #[test]
    fn printer_turns_broken_pipe_into_stop() {
        let mut p = Printer::new(Broken);
        assert_eq!(p.send("a").unwrap(), Flow::Continue);
        p.flush().unwrap();
        assert!(p.is_broken());
        assert_eq!(p.send("b").unwrap(), Flow::Stop);
        p.close().unwrap();
    }

    #[test]
    fn printer_writes_when_buffer_fills() {
        let mut out = Vec::new();
        let mut p = Printer::new(&mut out);
        let line = vec![b'x'; 1000];
        for _ in 0..100 {
            assert_eq!(p.send(&line[..]).unwrap(), Flow::Continue);
        }
        assert!(p.buf.len() < PRINTER_BUFFER);
        let out = p.into_inner().unwrap();
        assert_eq!(out.len(), 100 * 1001);
    }
}
