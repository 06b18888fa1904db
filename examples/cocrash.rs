//! The seed's `cocrash.py`, made safe.
//!
//! In the seed, two threads send into one printer coroutine at once and
//! crash it ("generator already executing"). In copipe that program does
//! not compile: a [`Shared`] handle cannot cross threads (see the
//! `compile_fail` example on `Shared`). What *can* be written is the same
//! mistake on one thread: a graph with a cycle, where a stage's own output
//! comes back into it while it is still handling an item. That send is
//! refused with an `ErrorKind::Reentrant` error, never a panic:
//!
//! ```text
//! broadcast ─▶ grep foo ─▶ printer
//!     ▲            │
//!     └── echo ◀───┘   (sends "foo" lines back into the broadcast)
//! ```
//!
//! ```text
//! cargo run --example cocrash
//! ```

use copipe::Lifecycle;
use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use copipe::sinks::Printer;
use copipe::text::{line_fn, Grep};
use copipe::{broadcast, ErrorKind, Shared, Stage};

type Handle = Shared<Box<dyn for<'a> Stage<&'a [u8]>>>;

fn main() {
    // The broadcast lives behind a Shared handle so that a stage inside it
    // can hold a handle back to it: the cycle.
    let back: Rc<RefCell<Option<Handle>>> = Rc::new(RefCell::new(None));
    let back_in = Rc::clone(&back);
    let echo = line_fn(move |line: &[u8]| {
        // Sends the line back upstream, into the broadcast that is still
        // busy delivering it.
        let mut upstream = back_in.borrow().clone().expect("the cycle is closed below");
        upstream.send(line)
    });
    let graph: Box<dyn for<'a> Stage<&'a [u8]>> = Box::new(broadcast((
        Grep::new("foo", Printer::new(io::stdout())).expect("a valid pattern"),
        Grep::new("foo", echo).expect("a valid pattern"),
    )));
    let mut target: Handle = Shared::new(graph);
    *back.borrow_mut() = Some(target.clone());

    let err = target
        .send(&b"foo is nice\n"[..])
        .expect_err("a cycle is refused");
    assert!(matches!(err.kind(), ErrorKind::Reentrant));
    eprintln!("cocrash: as expected, the cycle was refused: {err}");

    // Break the cycle so the handles can be dropped.
    let handle = back.borrow_mut().take();
    if let Some(mut handle) = handle {
        let _ = handle.close();
    }
    let _ = target.close();
}
