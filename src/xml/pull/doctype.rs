//! The DOCTYPE's end, found as XML says rather than as quick-xml counts.
//!
//! quick-xml ends a `<!DOCTYPE` at the first `>` that balances the `<`
//! and `>` it has seen, so a `>` or `<` inside a quoted literal, a comment
//! or a processing instruction of the DOCTYPE misplaces the end
//! (`<!DOCTYPE r SYSTEM "a>b.dtd">`). [`Prolog`] follows the prolog byte by
//! byte (quick-xml's own rules for the ends of comments and processing
//! instructions there) and, inside the first DOCTYPE, marks the `<` and
//! `>` that are inside a literal, comment or processing instruction: they
//! are *protected*. quick-xml, counting only the unprotected ones, then
//! ends the DOCTYPE where XML does.
//!
//! The two input forms use it alike:
//! - a stream (`stream.rs`) replaces the protected bytes by placeholders
//!   as it reads them (quick-xml never sees them), and puts them back in
//!   the DOCTYPE's content ([`Protected`]);
//! - bytes in memory (`slice.rs`) cannot be changed: when quick-xml reads
//!   that DOCTYPE, the reader is moved to the end found here and the event
//!   (or quick-xml's error) is made as quick-xml would make it from the
//!   protected bytes.
//!
//! So both give the same events and errors. The prolog ends (and so does
//! the work here, one branch per read) at the first DOCTYPE's end, at the
//! root element, or at anything that is an error there anyway.

/// The message for a DOCTYPE that is not UTF-8.
pub(crate) const BAD_UTF8: &str = "invalid UTF-8 in the DOCTYPE (copipe reads UTF-8)";

/// The placeholder a stream puts for a protected `<`.
pub(crate) const HIDDEN_LT: u8 = 0xFE;
/// The placeholder a stream puts for a protected `>`.
pub(crate) const HIDDEN_GT: u8 = 0xFF;

#[derive(Clone, Copy, Debug, PartialEq)]
enum St {
    /// Between markup in the prolog.
    Text,
    /// After `<`.
    Lt,
    /// After `<!`.
    Bang,
    /// In a comment (quick-xml's rule: it ends at a `>` more than 4 bytes
    /// after `!`, preceded by `--`): bytes since `!`, the last two bytes.
    Comment(u32, [u8; 2]),
    /// In a processing instruction: the previous byte was `?`.
    Pi(bool),
    /// In the DOCTYPE: the balance of unprotected `<` and `>`, and where.
    Dt(u32, Dt),
    /// Past the prolog (or past the DOCTYPE's end): nothing more to do.
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dt {
    Normal,
    /// After an unprotected `<`, `<!`, `<!-`.
    Lt,
    LtBang,
    LtBangDash,
    /// In a quoted literal.
    Literal(u8),
    /// In a comment: the last two bytes.
    Comment([u8; 2]),
    /// In a processing instruction: the previous byte was `?`.
    Pi(bool),
}

/// Follows the prolog: see the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct Prolog {
    st: St,
    /// Offset of the next byte fed.
    at: u64,
    /// Offset of the DOCTYPE's `<`, once seen.
    pub(crate) doctype: Option<u64>,
    /// Offset just after the DOCTYPE's closing `>`, once seen.
    pub(crate) end: Option<u64>,
    /// The DOCTYPE's keyword as written (quick-xml takes any case).
    pub(crate) keyword: [u8; 7],
}

impl Prolog {
    /// A prolog whose first byte is at offset `at`.
    pub(crate) fn new(at: u64) -> Prolog {
        Prolog {
            st: St::Text,
            at,
            doctype: None,
            end: None,
            keyword: [0; 7],
        }
    }

    /// False once nothing more can be protected.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.st != St::Off
    }

    /// Feeds the next bytes; `protect(i)` is called for each protected
    /// byte `bytes[i]` (a `<` or `>`).
    pub(crate) fn feed(&mut self, bytes: &[u8], mut protect: impl FnMut(usize)) {
        for (i, &b) in bytes.iter().enumerate() {
            if self.st == St::Off {
                return;
            }
            if self.step(b) {
                protect(i);
            }
            self.at += 1;
        }
    }

    /// One byte; true if it is protected.
    fn step(&mut self, b: u8) -> bool {
        self.st = match self.st {
            St::Text => match b {
                b'<' => St::Lt,
                b' ' | b'\t' | b'\r' | b'\n' => St::Text,
                _ => St::Off,
            },
            St::Lt => match b {
                b'!' => St::Bang,
                b'?' => St::Pi(true),
                _ => St::Off,
            },
            St::Bang => match b {
                b'-' => St::Comment(2, [b'!', b'-']),
                b'D' | b'd' => {
                    self.keyword[0] = b;
                    self.doctype = Some(self.at - 2);
                    St::Dt(0, Dt::Normal)
                }
                _ => St::Off,
            },
            St::Comment(n, last) => {
                if b == b'>' && n > 4 && last == *b"--" {
                    St::Text
                } else {
                    St::Comment(n.saturating_add(1), [last[1], b])
                }
            }
            St::Pi(q) => {
                if b == b'>' && q {
                    St::Text
                } else {
                    St::Pi(b == b'?')
                }
            }
            St::Dt(bal, dt) => {
                // <!DOCTYPE
                //  ^ doctype + 2: the keyword
                if let Some(k) = self.doctype.and_then(|lt| (self.at - lt).checked_sub(2)) {
                    if let Some(slot) = self.keyword.get_mut(k as usize) {
                        *slot = b;
                    }
                }
                return self.doctype_byte(bal, dt, b);
            }
            St::Off => St::Off,
        };
        false
    }

    fn doctype_byte(&mut self, mut bal: u32, dt: Dt, b: u8) -> bool {
        let (dt, protected) = match dt {
            Dt::Literal(q) => {
                if b == q {
                    (Dt::Normal, false)
                } else {
                    (dt, b == b'<' || b == b'>')
                }
            }
            Dt::Comment(last) => {
                if b == b'>' && last == *b"--" {
                    bal -= 1;
                    (Dt::Normal, false)
                } else {
                    (Dt::Comment([last[1], b]), b == b'<' || b == b'>')
                }
            }
            Dt::Pi(q) => {
                if b == b'>' && q {
                    bal -= 1;
                    (Dt::Normal, false)
                } else {
                    (Dt::Pi(b == b'?'), b == b'<' || b == b'>')
                }
            }
            Dt::Lt if b == b'!' => (Dt::LtBang, false),
            Dt::Lt if b == b'?' => (Dt::Pi(false), false),
            Dt::LtBang if b == b'-' => (Dt::LtBangDash, false),
            Dt::LtBangDash if b == b'-' => (Dt::Comment([0, 0]), false),
            // Normal, or a `<` that starts no comment or PI.
            _ => match b {
                b'<' => {
                    bal += 1;
                    (Dt::Lt, false)
                }
                b'>' if bal == 0 => {
                    self.end = Some(self.at + 1);
                    self.st = St::Off;
                    return false;
                }
                b'>' => {
                    bal -= 1;
                    (Dt::Normal, false)
                }
                b'"' | b'\'' => (Dt::Literal(b), false),
                _ => (Dt::Normal, false),
            },
        };
        self.st = St::Dt(bal, dt);
        protected
    }
}

/// The first DOCTYPE of the prolog of `input[from..]` (offsets in
/// `input`): its `<`, and the offset just after its end if it has one.
pub(crate) fn find(input: &[u8], from: u64) -> Option<(u64, Option<u64>)> {
    let mut p = Prolog::new(from);
    let rest = input.get(from as usize..)?;
    p.feed(rest, |_| {});
    p.doctype.map(|lt| (lt, p.end))
}

/// The protected bytes of a stream's DOCTYPE, one bit each, from its `<`.
#[derive(Default)]
pub(crate) struct Protected {
    from: u64,
    bits: Vec<u64>,
}

impl Protected {
    /// Marks offset `at` protected.
    pub(crate) fn mark(&mut self, from: u64, at: u64) {
        if self.bits.is_empty() {
            self.from = from;
        }
        let i = (at - self.from) as usize;
        if self.bits.len() <= i / 64 {
            self.bits.resize(i / 64 + 1, 0);
        }
        self.bits[i / 64] |= 1 << (i % 64);
    }

    /// Puts back the protected bytes of `bytes`, which start at offset
    /// `at`.
    pub(crate) fn restore(&self, at: u64, bytes: &mut [u8]) {
        if self.bits.is_empty() {
            return;
        }
        for (k, b) in bytes.iter_mut().enumerate() {
            let Some(i) = (at + k as u64).checked_sub(self.from) else {
                continue;
            };
            let i = i as usize;
            if self
                .bits
                .get(i / 64)
                .is_some_and(|w| w & (1 << (i % 64)) != 0)
            {
                *b = if *b == HIDDEN_LT { b'<' } else { b'>' };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(doc: &str) -> Option<(u64, Option<u64>)> {
        find(doc.as_bytes(), 0)
    }

    #[test]
    fn literals_comments_and_pis_do_not_end_the_doctype() {
        let doc = r#"<!DOCTYPE r SYSTEM "a>b.dtd"><r/>"#;
        assert_eq!(end(doc), Some((0, Some(29))));
        let doc = "<?xml version='1.0'?>\n<!-- c > --><!DOCTYPE r [<!-- a > b --><?p >?><!ENTITY x \"<\">]><r/>";
        let lt = doc.find("<!DOCTYPE").unwrap() as u64;
        let e = doc.find("]>").unwrap() as u64 + 2;
        assert_eq!(end(doc), Some((lt, Some(e))));
        assert_eq!(end("<r/>"), None);
        assert_eq!(end("<!DOCTYPE r [\"]"), Some((0, None)));
    }
}
