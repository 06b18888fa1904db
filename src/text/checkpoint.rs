//! The checkpoint of a followed set of files: which files they are, copipe's
//! id for each, and the offset after the last line the target accepted.
//!
//! # How a file is recognised
//!
//! By device, inode and a fingerprint of its first [`FINGERPRINT_LEN`]
//! bytes (a 64-bit FNV-1a hash of them, with how many there were). Device
//! and inode find the file again after a rename (rotation); the
//! fingerprint tells it from a new file that was given the same inode
//! number after the old one was deleted (a reused inode would otherwise
//! resume a new file at the old file's offset: silent loss). A file
//! shorter than `FINGERPRINT_LEN` is fingerprinted on what it has: the
//! saved length says how many bytes to compare, and the fingerprint grows
//! to the full length as the file does. Until then a new file with the
//! same inode *and* the same first bytes cannot be told from the old one.
//!
//! # When it is written
//!
//! Only after the target's `flush` returned `Ok`: the offsets saved are
//! those of lines the target has accepted, so a crash can repeat lines
//! sent after the last flush (at-least-once), never lose one. The file is
//! replaced atomically: written to `PATH.tmp`, fsynced, renamed over
//! `PATH`, and the directory fsynced, so a crash leaves the old or the new
//! checkpoint, never a torn one. The write happens on a thread of its own
//! (`Writer`), so the follow does not wait for the fsyncs; the file may
//! trail the accepted offsets by one write (more repeats after a crash),
//! never run ahead of them. A follow that ends waits for the last write.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::lines::Start;
use super::position::SourceFile;
use crate::error::{Error, Result};

/// How many of a file's first bytes identify it, with its device and inode.
///
/// 256 bytes hold the first line or two of a log (a timestamp, usually),
/// which is what differs between two files; a longer prefix would leave
/// more files identified by device and inode alone while they are short.
pub const FINGERPRINT_LEN: usize = 256;

const VERSION: u32 = 1;

/// One file as saved in the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    /// copipe's id of the file.
    id: String,
    /// The name it is followed by (as given on the command line, or as
    /// matched by a glob).
    name: PathBuf,
    dev: u64,
    ino: u64,
    /// How many first bytes the fingerprint covers.
    fp_len: u64,
    /// FNV-1a 64 of those bytes, 16 hex digits.
    fp: String,
    /// Offset after the last line the target accepted.
    offset: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedFile {
    version: u32,
    files: Vec<Saved>,
}

/// A file being read, as the registry knows it.
#[derive(Debug)]
struct Entry {
    source: Arc<SourceFile>,
    name: PathBuf,
    dev: u64,
    ino: u64,
    /// The file's first bytes, up to `FINGERPRINT_LEN`.
    prefix: Vec<u8>,
    /// Offset after the last line sent to the target.
    sent: u64,
    /// Offset after the last line the target accepted (flushed).
    committed: u64,
}

/// Where reading a file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// As `-n` says (the last N lines, or from line N).
    Start(Start),
    /// At this byte offset.
    At(u64),
}

/// What the checkpoint says about a name at start-up.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    /// Where to start in the file now under the name, if it is a file the
    /// checkpoint knows (`None`: a file seen for the first time).
    pub(crate) cur: Option<(usize, Place)>,
    /// Files the name pointed to before a rotation while copipe was down,
    /// found among its siblings: each to be drained from its offset,
    /// oldest first, before the file now under the name.
    pub(crate) retired: Vec<(File, usize, u64)>,
    /// What to tell the user (one line each, without `copipe: `).
    pub(crate) notices: Vec<String>,
    /// The checkpoint had files under this name.
    pub(crate) known: bool,
}

/// The files being followed, their ids and offsets; saved to the
/// checkpoint file (when there is one) after each accepted flush.
#[derive(Debug)]
pub(crate) struct Registry {
    path: Option<PathBuf>,
    /// Writes the checkpoint file on a thread of its own (made at the
    /// first write).
    writer: Option<Writer>,
    /// Loaded from the checkpoint, not yet matched to a name.
    saved: Vec<Saved>,
    entries: HashMap<usize, Entry>,
    next_key: usize,
    /// Something changed since the last write.
    dirty: bool,
}

impl Registry {
    /// Loads the checkpoint at `path` (none yet: empty), or an in-memory
    /// registry without `path`.
    pub(crate) fn load(path: Option<PathBuf>) -> Result<Registry> {
        let mut saved = Vec::new();
        if let Some(p) = &path {
            match fs::read(p) {
                Ok(bytes) => {
                    let file: SavedFile = serde_json::from_slice(&bytes).map_err(|e| {
                        Error::usage(format!(
                            "{}: not a copipe checkpoint ({e}); move it away to start over",
                            p.display()
                        ))
                    })?;
                    if file.version != VERSION {
                        return Err(Error::usage(format!(
                            "{}: checkpoint version {} is not supported (expected {VERSION})",
                            p.display(),
                            file.version
                        )));
                    }
                    saved = file.files;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::from(e).with_path(p)),
            }
        }
        Ok(Registry {
            path,
            writer: None,
            saved,
            entries: HashMap::new(),
            next_key: 0,
            dirty: false,
        })
    }

    /// True when a checkpoint file is kept.
    pub(crate) fn is_durable(&self) -> bool {
        self.path.is_some()
    }

    /// Matches what the checkpoint saved for `name` with what is on disk:
    /// the file now under the name (`cur`) and, for a rotation while
    /// copipe was down, the name's siblings.
    pub(crate) fn resume(&mut self, name: &Path, cur: Option<&File>) -> Resume {
        let mut out = Resume::default();
        let mine: Vec<Saved> = {
            let (mine, rest) = std::mem::take(&mut self.saved)
                .into_iter()
                .partition(|s| s.name == name);
            self.saved = rest;
            mine
        };
        out.known = !mine.is_empty();
        let cur_meta = cur.and_then(|f| f.metadata().ok());
        let mut siblings: Option<Vec<PathBuf>> = None;
        for s in mine {
            let same_inode = cur_meta
                .as_ref()
                .is_some_and(|m| m.dev() == s.dev && m.ino() == s.ino);
            if let (true, Some(file), Some(meta)) = (same_inode, cur, &cur_meta) {
                if out.cur.is_some() {
                    continue;
                }
                if meta.len() < s.offset {
                    out.notices.push(format!(
                        "{}: file truncated while copipe was down; reading it from the start",
                        name.display()
                    ));
                    continue;
                }
                if !fingerprint_matches(file, &s) {
                    out.notices.push(format!(
                        "{}: not the file checkpointed (its first bytes differ: \
                         truncated and rewritten, or a new file on a reused inode); \
                         reading it from the start",
                        name.display()
                    ));
                    continue;
                }
                let key = self.adopt(&s, file);
                out.cur = Some((key, Place::At(s.offset)));
                continue;
            }
            // Not under its name any more: rotated while copipe was down.
            let list = siblings.get_or_insert_with(|| sibling_files(name));
            let found = list.iter().find_map(|p| {
                let m = fs::metadata(p).ok()?;
                if m.dev() != s.dev || m.ino() != s.ino {
                    return None;
                }
                let f = File::open(p).ok()?;
                fingerprint_matches(&f, &s).then_some((p.clone(), f, m.len()))
            });
            match found {
                Some((p, f, len)) => {
                    if len < s.offset {
                        out.notices.push(format!(
                            "{}: rotated to '{}' and truncated while copipe was down; \
                             reading it from the start",
                            name.display(),
                            p.display()
                        ));
                    } else if len > s.offset {
                        out.notices.push(format!(
                            "{}: rotated to '{}' while copipe was down; reading its rest first",
                            name.display(),
                            p.display()
                        ));
                    }
                    let offset = if len < s.offset { 0 } else { s.offset };
                    let key = self.adopt(&s, &f);
                    out.retired.push((f, key, offset));
                }
                None => out.notices.push(format!(
                    "{}: the file checkpointed at byte offset {} was not found \
                     (rotated out of the directory, compressed or deleted while \
                     copipe was down); lines written to it after that offset, if any, \
                     were not read",
                    name.display(),
                    s.offset
                )),
            }
        }
        if !out.notices.is_empty() || !out.retired.is_empty() {
            self.dirty = true;
        }
        out
    }

    /// Takes on a saved file found on disk, with its id.
    fn adopt(&mut self, s: &Saved, file: &File) -> usize {
        let key = self.next_key;
        self.next_key += 1;
        self.entries.insert(
            key,
            Entry {
                source: Arc::new(SourceFile {
                    id: s.id.clone(),
                    path: s.name.clone(),
                }),
                name: s.name.clone(),
                dev: s.dev,
                ino: s.ino,
                prefix: read_prefix(file),
                sent: s.offset,
                committed: s.offset,
            },
        );
        key
    }

    /// Registers a file seen for the first time under `name`, with a new id.
    pub(crate) fn add(&mut self, name: &Path, file: &File) -> usize {
        let key = self.next_key;
        self.next_key += 1;
        let (dev, ino) = file.metadata().map_or((0, 0), |m| (m.dev(), m.ino()));
        self.entries.insert(
            key,
            Entry {
                source: Arc::new(SourceFile {
                    id: new_id(),
                    path: name.to_path_buf(),
                }),
                name: name.to_path_buf(),
                dev,
                ino,
                prefix: read_prefix(file),
                sent: 0,
                committed: 0,
            },
        );
        self.dirty = true;
        key
    }

    /// Records where reading `key` starts (the offset accepted so far).
    pub(crate) fn start_at(&mut self, key: usize, offset: u64) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.sent = offset;
            e.committed = offset;
            self.dirty = true;
        }
    }

    /// The file `key` was truncated: its new content is a new file for
    /// readers far away (the same offsets now hold other lines, so it gets
    /// a new id: a broker dropping repeated `id:offset` message ids must
    /// not drop them). Returns the new key.
    pub(crate) fn truncated(&mut self, key: usize, file: &File) -> usize {
        let name = match self.entries.remove(&key) {
            Some(e) => e.name,
            None => PathBuf::new(),
        };
        self.add(&name, file)
    }

    /// The file `key` is let go (a rotated file after its grace, a file
    /// that could not be read): it leaves the checkpoint.
    pub(crate) fn released(&mut self, key: usize) {
        if self.entries.remove(&key).is_some() {
            self.dirty = true;
        }
    }

    /// The source of `key`, for [`LineAt`](super::LineAt).
    pub(crate) fn source(&self, key: usize) -> Option<Arc<SourceFile>> {
        self.entries.get(&key).map(|e| Arc::clone(&e.source))
    }

    /// A line of `key` from `offset` on was sent to the target.
    pub(crate) fn sent(&mut self, key: usize, offset: u64, bytes: &[u8]) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.sent = offset + bytes.len() as u64;
            // Grow a short fingerprint with the bytes that follow it.
            let have = e.prefix.len() as u64;
            if have < FINGERPRINT_LEN as u64 && offset <= have && e.sent > have {
                let from = (have - offset) as usize;
                let upto = (FINGERPRINT_LEN as u64 - offset).min(bytes.len() as u64) as usize;
                e.prefix.extend_from_slice(&bytes[from..upto]);
            }
        }
    }

    /// The target accepted everything sent: the sent offsets become the
    /// checkpoint, written atomically if anything changed.
    ///
    /// # Errors
    ///
    /// An error writing the checkpoint, naming it.
    pub(crate) fn commit(&mut self) -> Result<()> {
        for e in self.entries.values_mut() {
            if e.committed != e.sent {
                e.committed = e.sent;
                self.dirty = true;
            }
        }
        if !self.dirty {
            return Ok(());
        }
        let Some(path) = &self.path else {
            self.dirty = false;
            return Ok(());
        };
        let mut files: Vec<Saved> = self
            .entries
            .values()
            .map(|e| Saved {
                id: e.source.id.clone(),
                name: e.name.clone(),
                dev: e.dev,
                ino: e.ino,
                fp_len: e.prefix.len() as u64,
                fp: format!("{:016x}", fnv1a(&e.prefix)),
                offset: e.committed,
            })
            .collect();
        // Saved entries not matched this run (a name no longer given)
        // are kept, so a later run with that name resumes it.
        files.extend(self.saved.iter().cloned());
        files.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        let body = serde_json::to_vec_pretty(&SavedFile {
            version: VERSION,
            files,
        })
        .map_err(|e| Error::usage(format!("cannot encode the checkpoint: {e}")))?;
        let writer = self
            .writer
            .get_or_insert_with(|| Writer::spawn(path.clone()));
        writer
            .submit(body)
            .map_err(|e| Error::from(e).with_path(path))?;
        self.dirty = false;
        Ok(())
    }

    /// Waits until the last checkpoint handed over is on disk.
    ///
    /// # Errors
    ///
    /// The error of a write, naming the checkpoint.
    pub(crate) fn sync(&mut self) -> Result<()> {
        match (&self.writer, &self.path) {
            (Some(w), Some(path)) => w.sync().map_err(|e| Error::from(e).with_path(path)),
            _ => Ok(()),
        }
    }
}

/// The checkpoint writer: a thread that writes the newest checkpoint
/// handed to it, atomically. The follow hands a checkpoint over after each
/// accepted flush and goes on at once: the two fsyncs of an atomic write
/// take milliseconds (tens under load), which the next line would otherwise
/// wait for. A checkpoint handed over while one is being written replaces
/// any other still waiting, so the file trails the follow by at most one
/// write; it never runs ahead of what the target accepted, so a crash can
/// repeat lines, never lose one.
#[derive(Debug)]
struct Writer {
    path: PathBuf,
    shared: Arc<(std::sync::Mutex<WriterState>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct WriterState {
    /// The newest checkpoint not yet being written.
    next: Option<Vec<u8>>,
    /// A write is under way.
    busy: bool,
    /// The last write's error, reported at the next hand-over.
    error: Option<io::Error>,
    closed: bool,
}

impl Writer {
    fn spawn(path: PathBuf) -> Writer {
        let shared = Arc::new((
            std::sync::Mutex::new(WriterState::default()),
            std::sync::Condvar::new(),
        ));
        let s = Arc::clone(&shared);
        let file = path.clone();
        let thread = std::thread::Builder::new()
            .name("copipe-checkpoint".into())
            .spawn(move || {
                let (lock, cv) = &*s;
                let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    match st.next.take() {
                        Some(body) => {
                            st.busy = true;
                            drop(st);
                            let r = write_atomic(&file, &body);
                            st = lock.lock().unwrap_or_else(|e| e.into_inner());
                            st.busy = false;
                            if let Err(e) = r {
                                st.error = Some(e);
                            }
                            cv.notify_all();
                        }
                        None if st.closed => return,
                        None => st = cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                    }
                }
            })
            .ok();
        Writer {
            path,
            shared,
            thread,
        }
    }

    /// Hands over a checkpoint; the error of an earlier write, if any.
    fn submit(&self, body: Vec<u8>) -> io::Result<()> {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        if self.thread.is_none() {
            // No thread could be made: write here.
            drop(st);
            return write_atomic(&self.path, &body);
        }
        st.next = Some(body);
        cv.notify_all();
        Ok(())
    }

    /// Waits until nothing is pending.
    fn sync(&self) -> io::Result<()> {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
        while st.next.is_some() || st.busy {
            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.error.take().map_or(Ok(()), Err)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            // The pending checkpoint is written before the thread ends.
            let _ = t.join();
        }
    }
}

/// Writes `body` to `path` so that a crash leaves the old or the new
/// content: a temporary file beside it, fsync, rename, fsync of the
/// directory (without it the rename itself may not survive a power loss).
fn write_atomic(path: &Path, body: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// The regular files in `name`'s directory, other than `name` itself.
fn sibling_files(name: &Path) -> Vec<PathBuf> {
    let dir = match name.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let base = name.parent().unwrap_or(Path::new(""));
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| base.join(e.file_name()))
        .filter(|p| p.file_name() != name.file_name())
        .collect();
    out.sort();
    out
}

/// The first bytes of `file`, up to [`FINGERPRINT_LEN`], read without
/// moving its position.
fn read_prefix(file: &File) -> Vec<u8> {
    let mut buf = vec![0; FINGERPRINT_LEN];
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    buf.truncate(n);
    buf
}

/// True when `file` begins with the bytes `s` was fingerprinted on.
fn fingerprint_matches(file: &File, s: &Saved) -> bool {
    let prefix = read_prefix(file);
    let Ok(len) = usize::try_from(s.fp_len) else {
        return false;
    };
    prefix.len() >= len && format!("{:016x}", fnv1a(&prefix[..len])) == s.fp
}

/// FNV-1a, 64 bits: stable across versions and platforms, which the
/// standard library's hasher is not.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A new copipe file id: 128 random bits from the kernel, as 32 hex
/// digits, so ids chosen on different hosts do not collide.
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    let filled = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        // No /dev/urandom (a bare chroot): time, pid and a counter are
        // still unique on this host, if not across hosts.
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[..8].copy_from_slice(&t.to_le_bytes());
        let n = (u64::from(std::process::id()) << 32) | N.fetch_add(1, Ordering::Relaxed);
        bytes[8..].copy_from_slice(&n.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let a = new_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_id());
    }

    #[test]
    fn a_short_fingerprint_grows_with_the_lines_sent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        fs::write(&p, "ab\n").unwrap();
        let f = File::open(&p).unwrap();
        let mut r = Registry::load(None).unwrap();
        let k = r.add(&p, &f);
        r.sent(k, 0, b"ab\n");
        r.sent(k, 3, b"cd\n");
        assert_eq!(r.entries[&k].prefix, b"ab\ncd\n");
        assert_eq!(r.entries[&k].sent, 6);
    }

    #[test]
    fn commit_writes_then_resume_finds_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let ck = dir.path().join("ck");
        fs::write(&p, "one\ntwo\n").unwrap();
        let f = File::open(&p).unwrap();
        let mut r = Registry::load(Some(ck.clone())).unwrap();
        let k = r.add(&p, &f);
        r.sent(k, 0, b"one\n");
        r.commit().unwrap();
        r.sync().unwrap();
        let id = r.source(k).unwrap().id.clone();
        let mut again = Registry::load(Some(ck)).unwrap();
        let res = again.resume(&p, Some(&f));
        let (k2, place) = res.cur.unwrap();
        assert_eq!(place, Place::At(4));
        assert_eq!(again.source(k2).unwrap().id, id);
    }
}
