//! basicsax.py: the SAX interface, with no coroutine: a handler whose
//! methods print each event.
//!
//! copipe's [`sax_parse`] calls a [`ContentHandler`] as `xml.sax.parse`
//! does, but gives a run of character data whole where expat reports each
//! newline as a piece of its own; the handler cuts it as expat does, so
//! the output is the seed's. `repr` is Python 3's.
//!
//! Run with `cargo run --example basicsax [-- FILE]`.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use copipe::xml::{sax_parse, ContentHandler, XmlInput};
use copipe::{Flow, Result};

struct MyHandler<W: Write> {
    out: W,
}

impl<W: Write> MyHandler<W> {
    fn print(&mut self, what: &str, arg: &str) -> Result<Flow> {
        match writeln!(self.out, "{what} {arg}") {
            Ok(()) => Ok(Flow::Continue),
            // `| head`: the reader went away, stop quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Flow::Stop),
            Err(e) => Err(e.into()),
        }
    }
}

impl<W: Write> ContentHandler for MyHandler<W> {
    fn start_element(&mut self, name: String, _attrs: Vec<(String, String)>) -> Result<Flow> {
        self.print("startElement", &name)
    }

    fn end_element(&mut self, name: String) -> Result<Flow> {
        self.print("endElement", &name)
    }

    fn characters(&mut self, text: String) -> Result<Flow> {
        // Python's expat reports each newline as a piece of its own;
        // copipe's parser gives the run of text whole.
        for piece in expat_pieces(&text) {
            let r: String = repr(piece).chars().take(40).collect(); // repr(text)[:40]
            if self.print("characters", &r)?.is_stop() {
                return Ok(Flow::Stop);
            }
        }
        Ok(Flow::Continue)
    }
}

/// `text` cut as expat cuts character data: each `\n` on its own.
fn expat_pieces(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive('\n')
        .flat_map(|s| match s.strip_suffix('\n') {
            Some("") | None => [Some(s), None],
            Some(head) => [Some(head), Some("\n")],
        })
        .flatten()
}

/// Python 3's `repr` of a `str`.
fn repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut r = String::with_capacity(s.len() + 2);
    r.push(quote);
    for c in s.chars() {
        match c {
            '\\' => r.push_str("\\\\"),
            '\n' => r.push_str("\\n"),
            '\r' => r.push_str("\\r"),
            '\t' => r.push_str("\\t"),
            c if c == quote => {
                r.push('\\');
                r.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(r, "\\x{:02x}", c as u32);
            }
            c => r.push(c),
        }
    }
    r.push(quote);
    r
}

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/data/allroutes.xml").into());
    let mut out = BufWriter::new(io::stdout().lock());
    sax_parse(XmlInput::from_path(path)?, MyHandler { out: &mut out })?;
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
