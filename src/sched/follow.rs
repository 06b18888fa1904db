//! `follow`: `tail -F` as a task that sleeps in the scheduler until inotify
//! says a file changed, instead of polling on a timer. It drives the same
//! follow core as [`text::Follow`](crate::text::Follow), so both give the
//! same guarantees.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use memchr::memchr;

use crate::text::follow::{CoreConfig, CoreFail, FollowCore};
use crate::text::{Block, FollowMode, Start, DEFAULT_MAX_LINE_LEN};
use crate::{end_source, Error, Flow, Lifecycle, Result, SourceEnd, Stage};

use super::poll::read_wait;
use super::syscall::yield_now;
use super::timer::sleep;

/// Options of [`follow`].
#[derive(Debug, Clone)]
pub struct FollowOptions {
    start: Start,
    mode: FollowMode,
    max_line: usize,
    rotate_grace: Duration,
    period: Duration,
}

impl Default for FollowOptions {
    fn default() -> FollowOptions {
        FollowOptions {
            start: Start::Last(0),
            mode: FollowMode::Name,
            max_line: DEFAULT_MAX_LINE_LEN,
            rotate_grace: Duration::from_secs(10),
            period: Duration::from_secs(1),
        }
    }
}

impl FollowOptions {
    /// The defaults: by name (`tail -F`), starting at the end of each file
    /// that exists (no lines of context).
    pub fn new() -> FollowOptions {
        FollowOptions::default()
    }

    /// Start at the beginning of the files instead of their end.
    pub fn from_start(mut self, yes: bool) -> FollowOptions {
        self.start = if yes { Start::From(1) } else { Start::Last(0) };
        self
    }

    /// Where to start in each file that exists at the start (`-n`).
    pub fn start(mut self, start: Start) -> FollowOptions {
        self.start = start;
        self
    }

    /// Follow the names (`-F`, the default) or the open files (`-f`).
    pub fn mode(mut self, mode: FollowMode) -> FollowOptions {
        self.mode = mode;
        self
    }

    /// The longest line accepted (16 MiB by default); a longer one is
    /// reported with its file and byte offset and skipped.
    pub fn max_line_len(mut self, bytes: usize) -> FollowOptions {
        self.max_line = bytes;
        self
    }

    /// How long a rotated-away file is kept open for late lines (10 s).
    pub fn rotate_grace(mut self, grace: Duration) -> FollowOptions {
        self.rotate_grace = grace;
        self
    }
}

/// Follows a file like `tail -F`, pushing each line (with its `\n`) into
/// `target`, as a task: between bursts of writes the task waits in the
/// scheduler for the inotify fd to become readable (or for the periodic
/// re-check, once a second), so other tasks run and nothing polls.
///
/// The rules are those of [`text::Follow`](crate::text::Follow), from the
/// same core: a line written in two parts arrives as one line; after
/// truncation reading restarts at 0, the held partial line sent first, and
/// a note goes to stderr; after rotation the old file is read to its end
/// and kept open a while for late lines, then the new one is read from its
/// start; a missing or unreadable file is waited for; a line longer than
/// the maximum is reported and skipped. `target.flush()` is called each
/// time the follower waits. At most 128 lines go out between turns of the
/// other tasks.
///
/// Runs until `target` returns `Flow::Stop` (then closes it and returns
/// `Ok`), or until the task is killed.
///
/// # Errors
///
/// If inotify and epoll cannot be set up; with [`FollowMode::Descriptor`],
/// if no file can be opened; or the target's error.
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
pub async fn follow<S>(path: impl AsRef<Path>, opts: FollowOptions, target: S) -> Result<()>
where
    S: for<'a> Stage<&'a [u8]>,
{
    follow_files([path.as_ref().to_path_buf()], opts, target).await
}

/// [`follow`] over several files (and globs, `dir/*.log`), their lines
/// interleaved as they arrive.
///
/// # Errors
///
/// As [`follow`].
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
pub async fn follow_files<I, P, S>(paths: I, opts: FollowOptions, target: S) -> Result<()>
where
    I: IntoIterator<Item = P>,
    P: AsRef<Path>,
    S: for<'a> Stage<&'a [u8]>,
{
    follow_lines_at(paths, opts, LineBytes(target)).await
}

/// [`follow_files`], each line pushed as a [`Block`] of that one line, with
/// its byte offset in its file and the file's index among `paths`: a
/// reader that must know where each line is (to resume, or to read the
/// file itself up to the line the follower reached). After truncation or
/// rotation the offsets start again at 0.
///
/// # Errors
///
/// As [`follow`].
///
/// # Panics
///
/// If awaited outside a task of a running [`Scheduler`](super::Scheduler).
pub async fn follow_lines_at<I, P, S>(paths: I, opts: FollowOptions, mut target: S) -> Result<()>
where
    I: IntoIterator<Item = P>,
    P: AsRef<Path>,
    S: for<'a> Stage<Block<'a>>,
{
    let paths: Vec<PathBuf> = paths
        .into_iter()
        .map(|p| p.as_ref().to_path_buf())
        .collect();
    if paths.is_empty() {
        return Err(Error::usage("follow needs at least one file"));
    }
    let mut core = FollowCore::new(CoreConfig {
        paths,
        start: opts.start,
        mode: opts.mode,
        use_inotify: true,
        rotate_grace: opts.rotate_grace,
        max_line: opts.max_line,
        notice: Box::new(|n| eprintln!("copipe: {n}")),
        registry: crate::text::checkpoint::Registry::load(None)?,
    })?;
    let mut gather = Gather::default();
    loop {
        // One read (at most a chunk) per turn: the lines it completes are
        // copied out and pushed BUDGET at a time, other tasks running in
        // between.
        let (flow, more) = match core.step(&mut gather, Some(1), &|| false) {
            Ok(stepped) => stepped,
            // The source contract: what the target accepted is still
            // output (closed), and the input's error is the one returned.
            Err(CoreFail::Input(e)) => return end_source(&mut target, SourceEnd::Input(e)),
            Err(CoreFail::Target(e)) => return Err(e),
        };
        let mut b = 0;
        while b < gather.blocks.len() {
            let (start, end, at) = gather.blocks[b];
            let (flow, used) = push_lines(&gather.buf[start..end], at, &mut target)?;
            gather.blocks[b].0 += used;
            gather.blocks[b].2 .0 += used as u64;
            if flow.is_stop() {
                return target.close();
            }
            if start + used == end {
                b += 1;
            }
            yield_now().await;
        }
        gather.buf.clear();
        gather.blocks.clear();
        if flow.is_stop() {
            return target.close();
        }
        if more {
            continue;
        }
        target.flush()?;
        let timeout = core.timeout(opts.period);
        match core.inotify_fd() {
            Some(fd) => {
                let mut io = pin!(read_wait(fd));
                let mut t = pin!(sleep(timeout));
                let r = std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = io.as_mut().poll(cx) {
                        return Poll::Ready(r);
                    }
                    if t.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Ok(()));
                    }
                    Poll::Pending
                })
                .await;
                r.map_err(Error::from)?;
                core.drain_events();
            }
            None => sleep(timeout.min(Duration::from_millis(100))).await,
        }
    }
}

/// Collects the core's blocks so their lines can be pushed a budget at a
/// time, with other tasks running in between. Blocks are kept apart: a
/// final line without a newline (sent on truncation) must not run into
/// the next block's first line.
#[derive(Debug, Default)]
struct Gather {
    buf: Vec<u8>,
    /// Each block's range in `buf`, its start moved as lines go out, and
    /// the block's place: the file's offset of that start, the file index.
    blocks: Vec<(usize, usize, (u64, usize))>,
}

impl<'a> Stage<Block<'a>> for Gather {
    fn send(&mut self, block: Block<'a>) -> Result<Flow> {
        let start = self.buf.len();
        self.buf.extend_from_slice(block.bytes());
        self.blocks
            .push((start, self.buf.len(), (block.byte_offset(), block.file())));
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Gather {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How many lines [`follow`] pushes before it lets other tasks run (as
/// tokio's cooperative budget, 128).
pub(crate) const BUDGET: usize = 128;

/// Pushes up to [`BUDGET`] lines of `data` (whole lines; a final piece
/// without a newline is a line too: the core sends one only when it ends
/// a file), each as a block of its own at its offset (`at`: the offset of
/// `data` and its file index). Returns how many bytes it used.
fn push_lines<S>(data: &[u8], at: (u64, usize), target: &mut S) -> Result<(Flow, usize)>
where
    S: for<'a> Stage<Block<'a>>,
{
    let (offset, file) = at;
    let mut used = 0;
    for _ in 0..BUDGET {
        if used == data.len() {
            break;
        }
        let end = memchr(b'\n', &data[used..]).map_or(data.len(), |i| used + i + 1);
        let line = Block::new(&data[used..end], offset + used as u64).with_file(file);
        let flow = target.send(line)?;
        used = end;
        if flow.is_stop() {
            return Ok((Flow::Stop, used));
        }
    }
    Ok((Flow::Continue, used))
}

/// Passes on the bytes of each one-line block.
struct LineBytes<S>(S);

impl<'a, S: for<'b> Stage<&'b [u8]>> Stage<Block<'a>> for LineBytes<S> {
    #[inline]
    fn send(&mut self, line: Block<'a>) -> Result<Flow> {
        self.0.send(line.bytes())
    }
}

impl<S: Lifecycle> Lifecycle for LineBytes<S> {
    fn flush(&mut self) -> Result<()> {
        self.0.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.0.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::Collect;
    use crate::StageExt;

    #[test]
    fn push_lines_stops_at_the_budget() {
        let many: Vec<u8> = b"x\n".repeat(BUDGET + 5);
        let mut out = Collect::new();
        let (_, used) = push_lines(&many, (0, 0), &mut LineBytes((&mut out).with_owned())).unwrap();
        assert_eq!(out.items().len(), BUDGET);
        assert_eq!(used, 2 * BUDGET, "the rest is left for after the yield");
        let (_, used) =
            push_lines(b"a\nb", (7, 0), &mut LineBytes((&mut out).with_owned())).unwrap();
        assert_eq!(used, 3);
        assert_eq!(out.items().last().unwrap(), b"b");
    }

    #[test]
    fn push_lines_gives_each_line_its_offset_and_file() {
        let mut at = Vec::new();
        struct Places<'v>(&'v mut Vec<(u64, usize, Vec<u8>)>);
        impl<'a> Stage<Block<'a>> for Places<'_> {
            fn send(&mut self, b: Block<'a>) -> Result<Flow> {
                self.0.push((b.byte_offset(), b.file(), b.bytes().to_vec()));
                Ok(Flow::Continue)
            }
        }
        impl Lifecycle for Places<'_> {
            fn flush(&mut self) -> Result<()> {
                Ok(())
            }
            fn close(&mut self) -> Result<()> {
                Ok(())
            }
        }
        let _ = push_lines(b"ab\nc\nd", (10, 2), &mut Places(&mut at)).unwrap();
        assert_eq!(
            at,
            [
                (10, 2, b"ab\n".to_vec()),
                (13, 2, b"c\n".to_vec()),
                (15, 2, b"d".to_vec())
            ]
        );
    }
}
