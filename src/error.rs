//! The crate's one error type.
//!
//! Every stage returns the same concrete [`Error`], so stages of different
//! kinds can sit behind `Box<dyn Stage<T>>` in one graph. An `Error` is one
//! pointer wide, so `Result<Flow>` is two words on the hot path.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A `Result` whose error is copipe's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. Inspect it with [`Error::kind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An I/O error from the operating system.
    Io(io::Error),
    /// Malformed XML. Positions are counted from the start of the input:
    /// `line` and `column` are 1-based, `byte_offset` is 0-based. In a
    /// document that is not UTF-8 (UTF-16, ISO-8859-1, Shift_JIS, ...),
    /// the byte offset is still the offset in the input (a byte order
    /// mark counted), while the column counts the UTF-8 bytes of the line
    /// as decoded (the column the document would have in UTF-8).
    Xml {
        /// 1-based line of the offending markup.
        line: u64,
        /// 1-based column (in bytes of UTF-8) of the offending markup.
        column: u64,
        /// 0-based byte offset of the offending markup in the input.
        byte_offset: u64,
        /// What the parser found.
        message: String,
    },
    /// A search pattern that does not compile.
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// Why it was refused.
        message: String,
    },
    /// A stage was sent an item while it was still handling an earlier one:
    /// the graph has a cycle through a [`Shared`](crate::Shared) handle.
    Reentrant,
    /// A coroutine stage was misused or is poisoned by an earlier panic.
    Coroutine(String),
    /// A stage panicked; the message is the panic's payload.
    Panic(String),
    /// A bridge (thread or process) failed.
    Bridge(String),
    /// A frame on a wire could not be decoded.
    Decode {
        /// 0-based byte offset of the frame (or header) that failed.
        byte_offset: u64,
        /// Why it failed.
        message: String,
    },
    /// A child process failed.
    Process(String),
    /// A scheduler task failed.
    Task(String),
    /// The arguments given to an API or command are not usable.
    Usage(String),
}

/// The error type of every copipe operation.
///
/// It holds an [`ErrorKind`] and, where known, the path of the file the
/// error is about. Context is added once, where it is known: a source adds
/// its path, a bridge adds what the worker said.
///
/// # Examples
///
/// ```
/// use copipe::{Error, ErrorKind};
///
/// let err = Error::xml(3, 7, 41, "mismatched end tag").with_path("feed.xml");
/// assert!(matches!(err.kind(), ErrorKind::Xml { line: 3, .. }));
/// assert_eq!(err.to_string(), "feed.xml:3:7 (byte offset 41): mismatched end tag");
/// ```
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    path: Option<PathBuf>,
}

impl Error {
    /// Makes an error of the given kind, with no path.
    pub fn new(kind: ErrorKind) -> Error {
        Error {
            inner: Box::new(Inner { kind, path: None }),
        }
    }

    /// A malformed-XML error at the given position.
    pub fn xml(line: u64, column: u64, byte_offset: u64, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Xml {
            line,
            column,
            byte_offset,
            message: message.into(),
        })
    }

    /// A wire-decoding error at the given byte offset.
    pub fn decode(byte_offset: u64, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Decode {
            byte_offset,
            message: message.into(),
        })
    }

    /// The error a [`Shared`](crate::Shared) handle returns for a send that
    /// re-enters a stage already handling an item.
    pub fn reentrant() -> Error {
        Error::new(ErrorKind::Reentrant)
    }

    /// A usage error: the caller asked for something that cannot work.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage(message.into()))
    }

    /// Attaches the path of the file this error is about, unless one is
    /// already attached (context is added once, where it is first known).
    pub fn with_path(mut self, path: impl AsRef<Path>) -> Error {
        if self.inner.path.is_none() {
            self.inner.path = Some(path.as_ref().to_path_buf());
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The file this error is about, if known.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// True for an I/O error of kind `BrokenPipe`: the reader went away,
    /// which a command-line tool treats as a quiet end, not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(&self.inner.kind, ErrorKind::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    /// Consumes the error and returns its kind.
    pub fn into_kind(self) -> ErrorKind {
        self.inner.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.inner.path {
            write!(f, "{}:", path.display())?;
            // An XML position continues the `FILE:LINE:COL` form; anything
            // else reads `FILE: message`.
            if !matches!(self.inner.kind, ErrorKind::Xml { .. }) {
                f.write_str(" ")?;
            }
        }
        match &self.inner.kind {
            ErrorKind::Io(e) => write!(f, "{e}"),
            ErrorKind::Xml {
                line,
                column,
                byte_offset,
                message,
            } => write!(f, "{line}:{column} (byte offset {byte_offset}): {message}"),
            ErrorKind::Pattern { pattern, message } => {
                write!(f, "invalid pattern `{pattern}`: {message}")
            }
            ErrorKind::Reentrant => f.write_str(
                "re-entrant send: a stage was sent an item while handling another \
                 (the graph has a cycle; host the stages as scheduler tasks to allow it)",
            ),
            ErrorKind::Coroutine(m) => write!(f, "coroutine: {m}"),
            ErrorKind::Panic(m) => write!(f, "stage panicked: {m}"),
            ErrorKind::Bridge(m) => write!(f, "bridge: {m}"),
            ErrorKind::Decode {
                byte_offset,
                message,
            } => write!(f, "decode error at byte offset {byte_offset}: {message}"),
            ErrorKind::Process(m) => write!(f, "child process: {m}"),
            ErrorKind::Task(m) => write!(f, "task failed: {m}"),
            ErrorKind::Usage(m) => f.write_str(m),
        }
    }
}

/// Prints the message, as `Display` does, because `Debug` is what
/// `fn main() -> Result<(), copipe::Error>` prints on failure; `{:#?}`
/// shows the structure (kind and path) for debugging.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            f.debug_struct("Error")
                .field("kind", &self.inner.kind)
                .field("path", &self.inner.path)
                .finish()
        } else {
            fmt::Display::fmt(self, f)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::new(ErrorKind::Io(e))
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::new(kind)
    }
}

/// Turns a panic payload (from `catch_unwind` or `JoinHandle::join`) into
/// its message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert!(std::mem::size_of::<Result<crate::Flow>>() <= 2 * std::mem::size_of::<usize>());
    }

    #[test]
    fn io_error_names_its_file() {
        let e = Error::from(io::Error::new(io::ErrorKind::NotFound, "no such file"))
            .with_path("a.log")
            .with_path("ignored.log");
        assert_eq!(e.to_string(), "a.log: no such file");
        assert_eq!(e.path(), Some(Path::new("a.log")));
    }

    /// Issue 16: `fn main() -> Result<(), Error>` prints `Debug`, which must
    /// read as the message, not as a struct dump.
    #[test]
    fn debug_prints_the_message_and_alternate_the_structure() {
        let e = Error::from(io::Error::new(io::ErrorKind::NotFound, "no such file"))
            .with_path("no/such/file");
        assert_eq!(format!("{e:?}"), "no/such/file: no such file");
        assert!(format!("{e:#?}").starts_with("Error {"));
    }

    #[test]
    fn broken_pipe_is_recognised() {
        let e = Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(e.is_broken_pipe());
        assert!(!Error::reentrant().is_broken_pipe());
    }

    #[test]
    fn panic_payloads_become_messages() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*p), "boom 1");
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&*p), "static");
    }
}
