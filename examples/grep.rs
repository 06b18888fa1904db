//! grep.py (and coroutine.py, the same program started by the
//! `@coroutine` decorator): a coroutine that receives lines and prints
//! those that contain a substring.
//!
//! copipe's [`coroutine`] is started on creation, as by the decorator, so
//! there is no `next(g)`. The printing is Python 2's `print line,` (see
//! `common/py2print.rs`).
//!
//! Run with `cargo run --example grep`.

#[path = "common/py2print.rs"]
mod py2print;

use copipe::{coroutine, Inbox, Stage};

fn grep(pattern: &'static str) -> impl Stage<String> {
    coroutine(move |inbox: Inbox<String>| async move {
        py2print::print_line(&format!("Looking for {pattern}"));
        while let Some(line) = inbox.recv().await {
            if line.contains(pattern) {
                py2print::print_soft(&line);
            }
        }
        Ok(())
    })
}

fn main() -> copipe::Result<()> {
    let mut g = grep("python");
    let _ = g.send("Yeah, but no, but yeah, but no".to_string())?;
    let _ = g.send("A series of tubes".to_string())?;
    let _ = g.send("python generators rock!".to_string())?;
    py2print::flush_line();
    Ok(())
}
