//! How `copipe buses` and `copipe records` choose and open their input:
//! FILE parsed whole (and maybe in parallel) when it is a regular file of
//! reasonable size, mapped when it is large (see [`mapped`]), streamed
//! otherwise; without FILE, piped stdin, or the built-in sample
//! when nothing is piped in.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;
use copipe::xml::XmlInput;

use super::mapped;

/// The sample feed built into the binary, used when no FILE is given.
pub(crate) static SAMPLE: &[u8] = include_bytes!("../../data/allroutes.xml");

/// Files at least this large show a progress bar (when stderr is a
/// terminal).
const PROGRESS_BYTES: u64 = 64 << 20;

/// Files larger than this are streamed rather than read whole, so memory
/// stays bounded.
const WHOLE_READ_MAX: u64 = 256 << 20;

/// An opened input: a file read whole (which may be parsed in parallel),
/// or a source for the sequential parsers.
pub(crate) enum Opened {
    Whole(Whole, PathBuf),
    Input(XmlInput<'static>, Option<indicatif::ProgressBar>),
}

/// A file's bytes, all of them: read into memory, or mapped (see
/// [`mapped`]).
pub(crate) enum Whole {
    Read(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for Whole {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Whole::Read(v) => v,
            Whole::Mapped(m) => m,
        }
    }
}

impl Opened {
    /// The input for a sequential parse (a file read whole is lent, so
    /// `self` is left with an empty input).
    pub(crate) fn input(&mut self) -> (XmlInput<'_>, Option<indicatif::ProgressBar>) {
        match self {
            Opened::Whole(bytes, path) => (XmlInput::from_bytes(bytes).with_path(path), None),
            Opened::Input(input, pb) => (
                std::mem::replace(input, XmlInput::from_bytes(&[])),
                pb.take(),
            ),
        }
    }
}

/// Opens FILE (or stdin, or the built-in sample), with a progress bar when
/// it is worth one.
///
/// Without FILE, stdin is read when it is a pipe, a socket or a regular
/// file; the built-in sample only when stdin is a terminal, a character
/// device such as `/dev/null`, or closed, and a one-line note on stderr
/// says so. A FILE that is not a regular file (a FIFO, `/dev/*`, a process
/// substitution) is streamed like stdin, so memory stays bounded.
pub(crate) fn open_input(file: Option<&PathBuf>) -> anyhow::Result<Opened> {
    let Some(path) = file else {
        if stdin_has_data() {
            return Ok(Opened::Input(
                XmlInput::from_reader(io::stdin()).with_path("<stdin>"),
                None,
            ));
        }
        eprintln!(
            "copipe: no FILE and nothing piped in: reading the built-in sample feed (allroutes.xml)"
        );
        return Ok(Opened::Input(
            XmlInput::from_bytes(SAMPLE).with_path("allroutes.xml (built-in sample)"),
            None,
        ));
    };
    if path.as_os_str() == "-" {
        return Ok(Opened::Input(
            XmlInput::from_reader(io::stdin()).with_path("<stdin>"),
            None,
        ));
    }
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = f
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        // A FIFO, a device, a process substitution: its size says nothing
        // about how much it holds, and it may never end.
        return Ok(Opened::Input(
            XmlInput::from_reader(f).with_path(path),
            None,
        ));
    }
    let size = meta.len();
    if size >= PROGRESS_BYTES && io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new(size);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let input = XmlInput::from_reader(pb.wrap_read(f)).with_path(path);
        return Ok(Opened::Input(input, Some(pb)));
    }
    if size > WHOLE_READ_MAX {
        return Ok(Opened::Input(
            XmlInput::from_reader(f).with_path(path),
            None,
        ));
    }
    // A large file is mapped, not copied (see `mapped`): the copy out of
    // the page cache and the zeroing of a fresh buffer were 15% of a
    // one-thread parse of the 30 MB bus feed.
    if let Some(data) = mapped::map(&f) {
        return Ok(Opened::Whole(Whole::Mapped(data), path.clone()));
    }
    let bytes =
        read_whole(&mut f, size).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Opened::Whole(Whole::Read(bytes), path.clone()))
}

/// True when stdin is a pipe, a socket or a regular file: something a
/// producer may be writing a feed into. A terminal, a character device
/// (`/dev/null`, which is what CI and `Command::output` give) or a closed
/// stdin is not.
fn stdin_has_data() -> bool {
    use std::os::fd::AsFd;
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return false;
    }
    // fstat through a duplicate of fd 0; a closed stdin fails here.
    let Ok(fd) = stdin.as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = File::from(fd).metadata() else {
        return false;
    };
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    t.is_fifo() || t.is_socket() || t.is_file()
}

/// Reads the whole file, whose size was `size` when opened (it may have
/// changed since: read to its end).
fn read_whole(f: &mut File, size: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    io::Read::read_to_end(f, &mut bytes)?;
    Ok(bytes)
}
