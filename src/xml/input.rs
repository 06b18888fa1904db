//! [`XmlInput`]: where an XML source reads its document from (bytes in
//! memory, a file read whole, or a reader streamed through a fixed buffer).
//! The parse itself is in `parse.rs`.

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Default size of the read buffer of a streaming input.
const READ_BUFFER: usize = 64 * 1024;

/// Default limit on one piece of markup or text read from a stream.
const MAX_EVENT: u64 = 16 * 1024 * 1024;

/// Where an XML source reads its document from.
///
/// - [`XmlInput::from_path`] reads a whole file into memory and parses it
///   in place: the fastest form, and events borrow straight from it. (A
///   memory map would avoid the copy but needs `unsafe`, which this crate
///   forbids.)
/// - [`XmlInput::from_reader`] streams any reader (stdin, a pipe, a large
///   file) through a fixed read buffer: memory stays bounded whatever the
///   document's size. One piece of markup or text may not exceed
///   [`max_event_bytes`](XmlInput::max_event_bytes) (16 MiB by default).
/// - [`XmlInput::from_bytes`] and [`XmlInput::from_vec`] parse bytes
///   already in memory.
///
/// Errors name the input's path (see [`XmlInput::with_path`]), line, column
/// and byte offset.
///
/// # Examples
///
/// ```
/// use copipe::xml::{expat_parse, XmlInput};
/// use copipe::sinks::Count;
///
/// let mut events = Count::new();
/// let input = XmlInput::from_reader(&b"<a><b>x</b></a>"[..]).buffer_capacity(3);
/// expat_parse(input, &mut events)?;
/// assert_eq!(events.count(), 5);
/// # Ok::<(), copipe::Error>(())
/// ```
pub struct XmlInput<'i> {
    pub(crate) src: Src<'i>,
    pub(crate) path: Option<PathBuf>,
    pub(crate) capacity: usize,
    pub(crate) max_event: u64,
}

/// The two forms of input.
pub(crate) enum Src<'i> {
    Bytes(Cow<'i, [u8]>),
    Reader(Box<dyn Read + 'i>),
}

impl fmt::Debug for XmlInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let src = match &self.src {
            Src::Bytes(b) => format!("{} bytes in memory", b.len()),
            Src::Reader(_) => "a reader".to_string(),
        };
        f.debug_struct("XmlInput")
            .field("src", &src)
            .field("path", &self.path)
            .field("capacity", &self.capacity)
            .field("max_event", &self.max_event)
            .finish()
    }
}

impl XmlInput<'static> {
    /// Reads the whole file at `path`; errors will name it.
    ///
    /// # Errors
    ///
    /// The file cannot be read; the error names the path.
    pub fn from_path(path: impl AsRef<Path>) -> Result<XmlInput<'static>> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| Error::from(e).with_path(path))?;
        Ok(XmlInput::from_vec(bytes).with_path(path))
    }

    /// Parses bytes already read into memory.
    pub fn from_vec(bytes: Vec<u8>) -> XmlInput<'static> {
        XmlInput::new(Src::Bytes(Cow::Owned(bytes)))
    }
}

impl<'i> XmlInput<'i> {
    fn new(src: Src<'i>) -> XmlInput<'i> {
        XmlInput {
            src,
            path: None,
            capacity: READ_BUFFER,
            max_event: MAX_EVENT,
        }
    }

    /// Parses borrowed bytes.
    pub fn from_bytes(bytes: &'i [u8]) -> XmlInput<'i> {
        XmlInput::new(Src::Bytes(Cow::Borrowed(bytes)))
    }

    /// Streams a reader with bounded memory.
    pub fn from_reader(reader: impl Read + 'i) -> XmlInput<'i> {
        XmlInput::new(Src::Reader(Box::new(reader)))
    }

    /// Names the input in error messages (`FILE:LINE:COL ...`).
    pub fn with_path(mut self, path: impl AsRef<Path>) -> XmlInput<'i> {
        self.path = Some(path.as_ref().to_path_buf());
        self
    }

    /// The size of a streaming input's read buffer (64 KiB by default; at
    /// least 1). Tests use tiny buffers so that events straddle reads.
    pub fn buffer_capacity(mut self, bytes: usize) -> XmlInput<'i> {
        self.capacity = bytes.max(1);
        self
    }

    /// The most bytes one piece of markup or text may take in a streaming
    /// input (16 MiB by default); a longer one is an error, not unbounded
    /// memory.
    pub fn max_event_bytes(mut self, bytes: u64) -> XmlInput<'i> {
        self.max_event = bytes.max(1);
        self
    }

    /// The path errors will name, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}
