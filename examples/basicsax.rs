//! basicsax.py: the SAX interface, with no coroutine: a handler whose
//! methods print each event.
//!
//! copipe's [`sax_parse`] calls a [`ContentHandler`] as `xml.sax.parse`
//! does; [`ExpatSplit`] cuts character data at newlines as expat does, so
//! the output is the seed's but for one line: expat also cuts a text run
//! at the end of each chunk `xml.sax.parse` feeds it (every 65,516 bytes:
//! `'41.87755604716371'` on the shipped file); copipe does not.
//! `repr` is Python 3's.
//!
//! Run with `cargo run --example basicsax [-- FILE]`.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};

use copipe::xml::{sax_parse, ContentHandler, ExpatSplit, XmlInput};
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
        let r: String = repr(&text).chars().take(40).collect(); // repr(text)[:40]
        self.print("characters", &r)
    }
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
    sax_parse(
        XmlInput::from_path(path)?,
        ExpatSplit::new(MyHandler { out: &mut out }),
    )?;
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
