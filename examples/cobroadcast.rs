//! The seed's `cobroadcast.py`: one source broadcast to three greps, each
//! with its own printer.
//!
//! ```text
//!                      ┌─▶ grep python ─▶ printer
//! lines(access-log) ──▶ broadcast ─▶ grep ply ────▶ printer
//!                      └─▶ grep swig ───▶ printer
//! ```
//!
//! The broadcast passes one line at a time, and the three printers write
//! to the program's one standard output (as the seed's three `printer()`
//! coroutines share `sys.stdout`), so the output is the seed's, line by
//! line. `--blocks` passes whole blocks of lines instead (copipe's fast
//! path): each grep then handles a block before the next one sees it, so
//! within each block the output is grouped by pattern.
//!
//! Reads the shipped `data/access-log` and exits; `--follow` follows it
//! from its end instead.
//!
//! ```text
//! cargo run --example cobroadcast [-- --follow] [-- --blocks]
//! ```

use std::cell::RefCell;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::rc::Rc;

use copipe::text::{Follow, Grep, Lines, Start};
use copipe::{broadcast, from_fn, Flow, Stage};

/// The program's standard output, buffered once for all printers.
type Stdout = Rc<RefCell<BufWriter<io::Stdout>>>;

/// The seed's `printer()`: `print line,` (the line ends in its newline).
fn printer(out: &Stdout) -> impl for<'a> Stage<&'a [u8]> {
    let out = Rc::clone(out);
    from_fn(move |line: &[u8]| match out.borrow_mut().write_all(line) {
        Ok(()) => Ok(Flow::Continue),
        // `| head`: the reader went away, stop quietly.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Flow::Stop),
        Err(e) => Err(e.into()),
    })
}

fn main() -> Result<(), copipe::Error> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/access-log");
    let out: Stdout = Rc::new(RefCell::new(BufWriter::new(io::stdout())));
    let targets = broadcast((
        Grep::new("python", printer(&out))?,
        Grep::new("ply", printer(&out))?,
        Grep::new("swig", printer(&out))?,
    ));
    let blocks = std::env::args().any(|a| a == "--blocks");
    if std::env::args().any(|a| a == "--follow") {
        let mut follow = Follow::builder([&path]).start(Start::Last(0)).build()?;
        follow.run_blocks(targets)?;
    } else if blocks {
        Lines::open(&path)?.run_blocks(targets)?;
    } else {
        Lines::open(&path)?.run(targets)?;
    }
    let flushed = out.borrow_mut().flush();
    match flushed {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
