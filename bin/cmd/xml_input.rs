//! How `copipe buses` chooses and opens its input: FILE read whole (and
//! maybe parsed in parallel) when it is a regular file of reasonable size,
//! streamed otherwise; without FILE, piped stdin, or the built-in sample
//! when nothing is piped in.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;
use copipe::xml::XmlInput;

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
    Whole(Vec<u8>, PathBuf),
    Input(XmlInput<'static>, Option<indicatif::ProgressBar>),
}

impl Opened {
    /// The input for a sequential parse.
    pub(crate) fn into_input(self) -> (XmlInput<'static>, Option<indicatif::ProgressBar>) {
        match self {
            Opened::Whole(bytes, path) => (XmlInput::from_vec(bytes).with_path(path), None),
            Opened::Input(input, pb) => (input, pb),
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
pub(crate) fn open_input(file: Option<&PathBuf>, threads: usize) -> anyhow::Result<Opened> {
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
    let bytes = read_whole(&mut f, size, threads)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Opened::Whole(bytes, path.clone()))
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

/// Files at least this large are read by several threads at once.
const SPLIT_READ_BYTES: u64 = 4 << 20;

/// Reads the whole file, whose size was `size` when opened. Copying a
/// large file out of the page cache costs CPU time (copies and page
/// faults), so a large one is read in parts on `threads` threads, each
/// part into its own range of one buffer.
fn read_whole(f: &mut File, size: u64, threads: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let parts = if size >= SPLIT_READ_BYTES {
        threads.clamp(1, 8)
    } else {
        1
    };
    let mut bytes = Vec::new();
    if parts > 1 {
        bytes = vec![0u8; size as usize];
        let part = (bytes.len()).div_ceil(parts);
        let results: Vec<io::Result<()>> = std::thread::scope(|scope| {
            let file = &*f;
            let readers: Vec<_> = bytes
                .chunks_mut(part)
                .enumerate()
                .map(|(i, chunk)| {
                    let at = (i * part) as u64;
                    scope.spawn(move || file.read_exact_at(chunk, at))
                })
                .collect();
            readers
                .into_iter()
                .map(|r| {
                    r.join()
                        .unwrap_or_else(|_| Err(io::Error::other("a reading thread panicked")))
                })
                .collect()
        });
        match results.into_iter().find(|r| r.is_err()) {
            // The file may have grown since: read on to its end below.
            None => io::Seek::seek(f, io::SeekFrom::Start(size)).map(|_| ())?,
            // It shrank: read it again from the start, the simple way.
            Some(_) => {
                bytes.clear();
                io::Seek::seek(f, io::SeekFrom::Start(0))?;
            }
        }
    }
    io::Read::read_to_end(f, &mut bytes)?;
    Ok(bytes)
}
