//! grepclose.py: a coroutine that catches `close()`.
//!
//! After [`close`](copipe::Lifecycle::close), `recv()` returns `None`: the
//! code after the receive loop is the seed's `except GeneratorExit:`.
//!
//! Run with `cargo run --example grepclose`.

#[path = "common/py2print.rs"]
mod py2print;

use copipe::{coroutine, Inbox, Lifecycle, Stage};

fn grep(pattern: &'static str) -> impl Stage<String> {
    coroutine(move |inbox: Inbox<String>| async move {
        py2print::print_line(&format!("Looking for {pattern}"));
        while let Some(line) = inbox.recv().await {
            if line.contains(pattern) {
                py2print::print_soft(&line);
            }
        }
        py2print::print_line("Going away. Goodbye");
        Ok(())
    })
}

fn main() -> copipe::Result<()> {
    let mut g = grep("python");
    let _ = g.send("Yeah, but no, but yeah, but no\n".to_string())?;
    let _ = g.send("A series of tubes\n".to_string())?;
    let _ = g.send("python generators rock!\n".to_string())?;
    g.close()?;
    py2print::flush_line();
    Ok(())
}
