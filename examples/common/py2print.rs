//! Python 2's `print x,` for the examples whose seed uses it: a *soft
//! space*, written before the next item only, and only if the last item
//! did not end in whitespace other than a space; a pending soft space
//! becomes a newline at exit (CPython 2's `Py_FlushLine`). A naive port
//! to Python 3's `print(x, end=' ')` writes trailing spaces instead.

use std::cell::Cell;
use std::io::Write;

thread_local! {
    static SOFTSPACE: Cell<bool> = const { Cell::new(false) };
}

/// `print item,`
pub(crate) fn print_soft(item: &str) {
    let mut out = std::io::stdout().lock();
    if SOFTSPACE.replace(false) {
        let _ = out.write_all(b" ");
    }
    let _ = out.write_all(item.as_bytes());
    let last = item.chars().last();
    SOFTSPACE.set(!matches!(last, Some(c) if c.is_whitespace() && c != ' '));
}

/// `print item`
pub(crate) fn print_line(item: &str) {
    print_soft(item);
    SOFTSPACE.set(false);
    println!();
}

/// What the interpreter does at exit: ends a line left open by `print x,`.
pub(crate) fn flush_line() {
    if SOFTSPACE.replace(false) {
        println!();
    }
}
