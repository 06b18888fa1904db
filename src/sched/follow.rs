//! `follow`: tail -f as a task that sleeps in the scheduler until inotify
//! says the file changed, instead of polling on a timer.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use inotify::{Inotify, WatchMask};
use memchr::memchr;

use crate::{Error, Flow, Result, Stage};

use super::poll::read_wait;
use super::syscall::yield_now;

/// A line longer than this is passed on in pieces of this size, so a file
/// without newlines cannot make the follower buffer without bound.
const MAX_LINE: usize = 1 << 20;

/// Options of [`follow`].
#[derive(Debug, Clone, Default)]
pub struct FollowOptions {
    from_start: bool,
}

impl FollowOptions {
    /// The defaults: start at the end of the file, as `tail -f` with no
    /// lines of context.
    pub fn new() -> FollowOptions {
        FollowOptions::default()
    }

    /// Start at the beginning of the file instead of its end.
    pub fn from_start(mut self, yes: bool) -> FollowOptions {
        self.from_start = yes;
        self
    }
}

/// Follows a file like `tail -F`, pushing each line (with its `\n`) into
/// `target`, as a task: between bursts of writes the task waits in the
/// scheduler for the inotify fd to become readable, so other tasks run
/// and nothing polls.
///
/// - A line written in two parts arrives as one line.
/// - If the file shrinks (`copytruncate`), reading restarts at 0 and a
///   note goes to stderr.
/// - If the file is renamed or replaced (rotation), the old file is read
///   to its end, then the new one is followed from its start.
/// - `target.flush()` is called each time the follower waits.
///
/// Runs until `target` returns `Flow::Stop` (then closes it and returns
/// `Ok`), or until the task is killed.
///
/// [`text::Follow`](crate::text::Follow) is the full `tail -F` source for
/// a thread of its own (polling fallback, several files, notices); this
/// is its scheduler form: it never blocks the thread, so it can share it
/// with sockets and other tasks (`copipe serve-log`).
///
/// # Errors
///
/// If the file cannot be opened or read (with its path), or inotify
/// cannot be set up; or the target's error.
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use copipe::sched::{follow, FollowOptions, Scheduler};
/// use copipe::{StageExt, sinks::Printer};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("app.log");
/// std::fs::write(&path, "one\ntwo\n")?;
/// let mut s = Scheduler::new()?;
/// s.spawn(async move {
///     let mut out = Printer::new(Vec::new());
///     follow(&path, FollowOptions::new().from_start(true), (&mut out).take(2)).await?;
///     assert_eq!(out.into_inner()?, b"one\ntwo\n");
///     Ok::<(), copipe::Error>(())
/// });
/// s.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn follow<S>(path: impl AsRef<Path>, opts: FollowOptions, mut target: S) -> Result<()>
where
    S: for<'a> Stage<&'a [u8]>,
{
    let path = path.as_ref().to_path_buf();
    let with_path = |e: io::Error| Error::from(e).with_path(&path);
    let mut ino = Inotify::init().map_err(with_path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    ino.watches()
        .add(&dir, WatchMask::CREATE | WatchMask::MOVED_TO)
        .map_err(|e| Error::from(e).with_path(&dir))?;
    let mut file = File::open(&path).map_err(with_path)?;
    let mut id = file_id(&file).map_err(with_path)?;
    let file_mask = WatchMask::MODIFY
        | WatchMask::ATTRIB
        | WatchMask::MOVE_SELF
        | WatchMask::DELETE_SELF
        | WatchMask::CLOSE_WRITE;
    ino.watches().add(&path, file_mask).map_err(with_path)?;
    if !opts.from_start {
        file.seek(SeekFrom::End(0)).map_err(with_path)?;
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut events = [0u8; 4096];
    loop {
        // Read everything there is.
        loop {
            let n = file.read(&mut chunk).map_err(with_path)?;
            if n == 0 {
                break;
            }
            // At most BUDGET lines go out before the other tasks (the
            // consumers of these lines) get a turn, however big the
            // backlog: a consumer with room for BUDGET lines keeps up.
            let mut start = 0;
            while start < n {
                let (flow, used) = push_lines(&mut pending, &chunk[start..n], &mut target)?;
                if flow == Flow::Stop {
                    return target.close();
                }
                start += used;
                yield_now().await;
            }
        }
        // Truncated below what we read: start again at 0.
        let pos = file.stream_position().map_err(with_path)?;
        let len = file.metadata().map_err(with_path)?.len();
        if len < pos {
            eprintln!("copipe: {}: file truncated", path.display());
            file.seek(SeekFrom::Start(0)).map_err(with_path)?;
            pending.clear();
            continue;
        }
        // Replaced (rotation): the old file is read to its end above; its
        // unterminated last line is passed on, then the new file begins.
        if let Ok(new) = File::open(&path) {
            if file_id(&new).map_err(with_path)? != id {
                if !pending.is_empty() {
                    let line = std::mem::take(&mut pending);
                    if target.send(&line)? == Flow::Stop {
                        return target.close();
                    }
                }
                file = new;
                id = file_id(&file).map_err(with_path)?;
                ino.watches().add(&path, file_mask).map_err(with_path)?;
                continue;
            }
        }
        target.flush()?;
        read_wait(ino.as_raw_fd()).await.map_err(with_path)?;
        // Drain the events: what changed does not matter, only that
        // something did.
        loop {
            match ino.read_events(&mut events) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(with_path(e)),
            }
        }
    }
}

fn file_id(f: &File) -> io::Result<(u64, u64)> {
    let m = f.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// How many lines [`follow`] pushes before it lets other tasks run (as
/// tokio's cooperative budget, 128).
pub(crate) const BUDGET: usize = 128;

/// Splits `data` into lines, joining the first with what is pending from
/// before, and pushes up to [`BUDGET`] of them. Returns how many bytes of
/// `data` it used: all of it (the unterminated tail is kept pending), or,
/// when the budget ran out, up to the end of the last line pushed.
fn push_lines<S>(pending: &mut Vec<u8>, data: &[u8], target: &mut S) -> Result<(Flow, usize)>
where
    S: for<'a> Stage<&'a [u8]>,
{
    let total = data.len();
    let mut data = data;
    let mut budget = BUDGET;
    while let Some(i) = memchr(b'\n', data) {
        if budget == 0 {
            return Ok((Flow::Continue, total - data.len()));
        }
        budget -= 1;
        let (line, rest) = data.split_at(i + 1);
        data = rest;
        let flow = if pending.is_empty() {
            target.send(line)?
        } else {
            pending.extend_from_slice(line);
            let flow = target.send(pending)?;
            pending.clear();
            flow
        };
        if flow == Flow::Stop {
            return Ok((Flow::Stop, total - data.len()));
        }
    }
    pending.extend_from_slice(data);
    while pending.len() >= MAX_LINE {
        let rest = pending.split_off(MAX_LINE);
        let flow = target.send(pending)?;
        *pending = rest;
        if flow == Flow::Stop {
            return Ok((Flow::Stop, total));
        }
    }
    Ok((Flow::Continue, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Collect;
    use crate::StageExt;

    #[test]
    fn push_lines_joins_pending_and_stops_at_the_budget() {
        let mut out = Collect::new();
        let mut pending = b"par".to_vec();
        let (flow, used) =
            push_lines(&mut pending, b"tial\nnext", &mut (&mut out).with_owned()).unwrap();
        assert_eq!((flow, used), (Flow::Continue, 9));
        assert_eq!(pending, b"next");
        assert_eq!(out.items(), [b"partial\n".to_vec()]);

        let many: Vec<u8> = b"x\n".repeat(BUDGET + 5);
        let mut out = Collect::new();
        pending.clear();
        let (_, used) = push_lines(&mut pending, &many, &mut (&mut out).with_owned()).unwrap();
        assert_eq!(out.items().len(), BUDGET);
        assert_eq!(used, 2 * BUDGET, "the rest is left for after the yield");
        assert!(pending.is_empty());
    }
}
