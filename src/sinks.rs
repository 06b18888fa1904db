//! Sinks: stages at the end of a pipeline.
//!
//! - [`Printer`] writes each item as a line to any writer, buffered; the
//!   buffer goes out when full, on `flush` and on `close`. A closed pipe
//!   (`| head -1`) turns into [`Flow::Stop`], not an error.
//! - [`Null`] discards items (benchmarks, `> /dev/null`).
//! - [`Collect`] keeps owned items in a `Vec` (tests, examples).
//! - [`Count`] counts items.

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

/// Keeps every item in a `Vec`. Put [`StageExt::owned`] in front of it for
/// borrowed items.
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
/// [`StageExt::owned`]: crate::StageExt::owned
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
#[derive(Debug, Clone, Copy, Default)]
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
