//! [`LineAt`]: a line with where it came from, for stages that must tell
//! sources apart or resume exactly (a checkpoint, a broker's message id).

use std::path::PathBuf;

/// A followed file as a reader far away must know it.
///
/// The id is copipe's own: chosen when the file is first seen, kept in the
/// checkpoint, unique across hosts (so a stream fed by many hosts never
/// confuses two files that begin alike), and unchanged when the file is
/// renamed by rotation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceFile {
    /// copipe's file id: 32 lowercase hex digits.
    pub id: String,
    /// The path the file was opened by.
    pub path: PathBuf,
}

/// One line and its position: the file it was read from and the byte offset
/// of its first byte in that file.
#[derive(Debug, Clone, Copy)]
pub struct LineAt<'a> {
    /// The line's bytes, with its `\n` when it has one.
    pub bytes: &'a [u8],
    /// The file it was read from.
    pub file: &'a SourceFile,
    /// Byte offset of the line's first byte in `file`.
    pub offset: u64,
}
