//! The DOCTYPE declaration: its internal subset checked, and the general
//! entities declared there.
//!
//! What is done:
//!
//! - The DOCTYPE's name, external ID (`SYSTEM`/`PUBLIC` literals) and
//!   internal subset are tokenized as XML 1.0 (5th edition) section 2.8
//!   says: markup declarations (`ELEMENT`, `ATTLIST`, `ENTITY`,
//!   `NOTATION`), processing instructions, comments, parameter-entity
//!   references and white space. A malformed declaration is an error at
//!   its byte offset.
//! - Internal general entities are expanded in character data; a
//!   replacement text holding markup is parsed as balanced content, and an
//!   error inside it is reported at the reference. Expansion is bounded: at
//!   most [`MAX_DEPTH`] nested references, and past [`AMPLIFICATION_START`]
//!   bytes of output no more than [`MAX_AMPLIFICATION`] bytes of output
//!   per byte of input (expat's defaults), each a clear error.
//! - In attribute values references to internal entities are replaced,
//!   with attribute-value normalisation (XML 1.0 section 3.3.3, as for
//!   CDATA attributes: each white space character of the value and of the
//!   replacement texts becomes a space, a CR LF pair of the value one
//!   space). A `<` in a replacement text, an external or unparsed entity,
//!   recursion and the expansion limits above are errors at the reference.
//!   Such a tag's attributes are resolved by the parser (in `parse.rs`),
//!   the others lazily by [`Attrs`](crate::xml::Attrs).
//!
//! - The DOCTYPE ends where XML says: a `<` or `>` inside a literal,
//!   comment or processing instruction of the DOCTYPE does not count
//!   (`src/xml/pull/doctype.rs`).
//!
//! What is not done:
//!
//! - Nothing external is ever read: neither the external subset nor an
//!   external entity. As expat does without an external-entity handler, a
//!   reference to an external parsed entity is skipped (nothing is
//!   reported for it), and once the document has an external subset or a
//!   parameter-entity reference (and is not `standalone="yes"`), a
//!   reference to an undeclared entity is skipped too, since it could be
//!   declared where copipe does not read. Otherwise an undeclared entity is
//!   an error.
//! - Parameter entities are checked but not expanded.
//! - Default attribute values declared in an `ATTLIST` are checked but
//!   not inserted: a tag has the attributes written in it, no more (what
//!   a validating parser would add is not copipe's to add). Nor is any
//!   DTD-typed normalisation done (collapsing spaces in NMTOKENS, IDs):
//!   every value is normalised as CDATA.
//! - Validity (element content, attribute types, IDs) is not checked.

use std::collections::HashMap;

use crate::xml::lexical::{self, Bad};

/// The deepest nesting of entity references expanded.
pub(crate) const MAX_DEPTH: usize = 32;
/// Output of entity expansion below which no ratio is enforced (expat's
/// activation threshold).
pub(crate) const AMPLIFICATION_START: u64 = 8 << 20;
/// The most output of entity expansion per byte of input (expat's
/// default maximum amplification).
pub(crate) const MAX_AMPLIFICATION: u64 = 100;

/// A general entity declared in the internal subset.
pub(crate) enum Entity {
    /// Its replacement text (character references already replaced).
    Internal(String),
    /// Declared with `SYSTEM` or `PUBLIC`: never read.
    External,
    /// An unparsed entity (`NDATA`): a reference to it is an error.
    Unparsed,
}

/// What the DOCTYPE declared.
#[derive(Default)]
pub(crate) struct Dtd {
    pub(crate) entities: HashMap<String, Entity>,
    /// An undeclared entity may have been declared where copipe does not
    /// read (external subset, parameter entity): skip it.
    pub(crate) may_skip: bool,
    /// Bytes of character data produced by expansion so far.
    pub(crate) expanded: u64,
    /// Entities being expanded, innermost last.
    pub(crate) stack: Vec<String>,
}

impl Dtd {
    /// Counts `n` bytes of expansion output at input offset `at`; an error
    /// when the amplification bound is passed.
    pub(crate) fn count(&mut self, n: usize, at: u64) -> Result<(), String> {
        self.expanded += n as u64;
        if self.expanded > AMPLIFICATION_START
            && self.expanded > MAX_AMPLIFICATION.saturating_mul(at + 1)
        {
            return Err(format!(
                "entity expansion produced {} bytes from {} bytes of input: more than {MAX_AMPLIFICATION} times the input (billion laughs?)",
                self.expanded,
                at + 1
            ));
        }
        Ok(())
    }
}

/// Parses the DOCTYPE's content (what follows `<!DOCTYPE` and its white
/// space, up to the closing `>`), which starts at byte offset `base`.
pub(crate) fn parse(s: &str, base: u64) -> Result<Dtd, (u64, String)> {
    let mut p = Cursor {
        s: s.as_bytes(),
        src: s,
        i: 0,
        dtd: Dtd::default(),
    };
    p.doctype().map_err(|(i, m)| (base + i as u64, m))?;
    Ok(p.dtd)
}

/// Whether the declaration says `standalone="yes"`.
pub(crate) fn is_standalone(decl: &str) -> bool {
    let d: String = decl.split_whitespace().collect::<Vec<_>>().join(" ");
    d.contains("standalone=\"yes\"") || d.contains("standalone='yes'")
}

struct Cursor<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    dtd: Dtd,
}

type R<T = ()> = Result<T, Bad>;

fn is_delim(b: u8) -> bool {
    lexical::is_space(b) || b"<>[]()|,?*+%;\"'=&#/!".contains(&b)
}

impl Cursor<'_> {
    fn err<T>(&self, msg: impl Into<String>) -> R<T> {
        Err((self.i, msg.into()))
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn at(&self, lit: &str) -> bool {
        self.s[self.i..].starts_with(lit.as_bytes())
    }
    fn eat(&mut self, lit: &str) -> bool {
        if self.at(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, lit: &str, what: &str) -> R {
        if self.eat(lit) {
            Ok(())
        } else {
            self.err(format!("expected `{lit}` {what}"))
        }
    }
    /// Skips white space; true if there was some.
    fn space(&mut self) -> bool {
        let from = self.i;
        while self.peek().is_some_and(lexical::is_space) {
            self.i += 1;
        }
        self.i > from
    }
    fn need_space(&mut self, what: &str) -> R {
        if self.space() {
            Ok(())
        } else {
            self.err(format!("white space is required {what}"))
        }
    }
    /// A token up to a delimiter.
    fn token(&mut self) -> &str {
        let from = self.i;
        while self.peek().is_some_and(|b| !is_delim(b)) {
            self.i += 1;
        }
        &self.src[from..self.i]
    }
    fn name(&mut self, what: &str) -> R<String> {
        let from = self.i;
        let t = self.token().to_string();
        if t.is_empty() {
            self.i = from;
            return self.err(format!("expected a name ({what})"));
        }
        lexical::check_name(&t, what).map_err(|(i, m)| (from + i, m))?;
        Ok(t)
    }
    fn nmtoken(&mut self) -> R {
        let from = self.i;
        let t = self.token().to_string();
        // An Nmtoken is a Name without the rule for its first character.
        let probe = format!("a{t}");
        if t.is_empty() || lexical::check_name(&probe, "name token").is_err() {
            self.i = from;
            return self.err("expected a name token");
        }
        Ok(())
    }
    /// A quoted literal; returns its content and its start.
    fn literal(&mut self, what: &str) -> R<(&str, usize)> {
        let q = match self.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return self.err(format!("expected a quoted {what}")),
        };
        let from = self.i + 1;
        let Some(len) = memchr::memchr(q, &self.s[from..]) else {
            return self.err(format!("unterminated {what}"));
        };
        self.i = from + len + 1;
        Ok((&self.src[from..from + len], from))
    }

    fn doctype(&mut self) -> R {
        self.name("the DOCTYPE's root element")?;
        let spaced = self.space();
        if self.at("SYSTEM") || self.at("PUBLIC") {
            if !spaced {
                return self.err("white space is required before the external ID");
            }
            self.external_id(false)?;
            self.dtd.may_skip = true;
            self.space();
        }
        if self.eat("[") {
            self.subset()?;
            self.space();
        }
        if self.i < self.s.len() {
            return self.err("unexpected content in the DOCTYPE declaration");
        }
        Ok(())
    }

    /// `SYSTEM "sys"` or `PUBLIC "pub" "sys"`; with `public_only`, the
    /// system literal of `PUBLIC` may be missing (a NOTATION's PublicID).
    fn external_id(&mut self, public_only: bool) -> R {
        if self.eat("SYSTEM") {
            self.need_space("after SYSTEM")?;
            self.system_literal()?;
        } else if self.eat("PUBLIC") {
            self.need_space("after PUBLIC")?;
            let (lit, from) = self.literal("public ID")?;
            if let Some(i) = lit.bytes().position(|b| {
                !(b.is_ascii_alphanumeric() || b" \r\n-'()+,./:=?;!*#@$_%".contains(&b))
            }) {
                return Err((from + i, "character not allowed in a public ID".into()));
            }
            let save = self.i;
            let spaced = self.space();
            if matches!(self.peek(), Some(b'"' | b'\'')) {
                if !spaced {
                    return self.err("white space is required before the system literal");
                }
                self.system_literal()?;
            } else if public_only {
                self.i = save;
            } else {
                return self.err("expected the system literal after the public ID");
            }
        } else {
            return self.err("expected SYSTEM or PUBLIC");
        }
        Ok(())
    }

    fn system_literal(&mut self) -> R {
        let (lit, from) = self.literal("system literal")?;
        if let Some(i) = lit.find('#') {
            return Err((
                from + i,
                "a system literal may not hold a fragment (`#`)".into(),
            ));
        }
        Ok(())
    }

    fn subset(&mut self) -> R {
        loop {
            self.space();
            match self.peek() {
                None => return self.err("the internal subset is not closed with `]`"),
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'%') => {
                    self.i += 1;
                    self.name("parameter entity reference")?;
                    self.expect(";", "to end the parameter entity reference")?;
                    self.dtd.may_skip = true;
                }
                Some(b'<') => {
                    if self.eat("<!--") {
                        self.comment()?;
                    } else if self.eat("<?") {
                        self.pi()?;
                    } else if self.eat("<!ELEMENT") {
                        self.element()?;
                    } else if self.eat("<!ATTLIST") {
                        self.attlist()?;
                    } else if self.eat("<!ENTITY") {
                        self.entity()?;
                    } else if self.eat("<!NOTATION") {
                        self.notation()?;
                    } else {
                        return self.err("not a markup declaration in the internal subset");
                    }
                }
                Some(_) => return self.err("unexpected character in the internal subset"),
            }
        }
    }

    fn comment(&mut self) -> R {
        let Some(end) = memchr::memmem::find(&self.s[self.i..], b"--") else {
            return self.err("unterminated comment");
        };
        self.i += end;
        if !self.eat("-->") {
            return self.err("`--` is not allowed in a comment");
        }
        Ok(())
    }

    fn pi(&mut self) -> R {
        let target = self.name("processing instruction target")?;
        if target.eq_ignore_ascii_case("xml") {
            return self.err(format!(
                "processing instruction target `{target}` is reserved"
            ));
        }
        if self.eat("?>") {
            return Ok(());
        }
        self.need_space("after the processing instruction target")?;
        match memchr::memmem::find(&self.s[self.i..], b"?>") {
            Some(end) => {
                self.i += end + 2;
                Ok(())
            }
            None => self.err("unterminated processing instruction"),
        }
    }

    fn close(&mut self, what: &str) -> R {
        self.space();
        self.expect(">", &format!("to end the {what} declaration"))
    }

    fn element(&mut self) -> R {
        self.need_space("after <!ELEMENT")?;
        self.name("element type")?;
        self.need_space("after the element type")?;
        if self.eat("EMPTY") || self.eat("ANY") {
        } else if self.eat("(") {
            self.space();
            if self.eat("#PCDATA") {
                self.mixed()?;
            } else {
                self.group_rest()?;
            }
        } else {
            return self.err("expected EMPTY, ANY or a content model");
        }
        self.close("ELEMENT")
    }

    /// After `(#PCDATA`.
    fn mixed(&mut self) -> R {
        let mut names = false;
        loop {
            self.space();
            if self.eat(")") {
                if names {
                    return self.expect("*", "after a mixed content model with names");
                }
                self.eat("*");
                return Ok(());
            }
            self.expect("|", "or `)` in a mixed content model")?;
            self.space();
            self.name("element type")?;
            names = true;
        }
    }

    /// A content particle: a name or a group, with its quantifier.
    fn cp(&mut self) -> R {
        if self.eat("(") {
            self.space();
            self.group_rest()?;
        } else {
            self.name("element type")?;
            self.quantifier();
        }
        Ok(())
    }

    fn quantifier(&mut self) {
        let _ = self.eat("?") || self.eat("*") || self.eat("+");
    }

    /// A choice or sequence after its `(` and white space.
    fn group_rest(&mut self) -> R {
        self.cp()?;
        let mut sep = None;
        loop {
            self.space();
            if self.eat(")") {
                self.quantifier();
                return Ok(());
            }
            let s = match self.peek() {
                Some(b @ (b'|' | b',')) => b,
                _ => return self.err("expected `|`, `,` or `)` in a content model"),
            };
            if sep.is_some_and(|p| p != s) {
                return self.err("`|` and `,` mixed in one group of a content model");
            }
            sep = Some(s);
            self.i += 1;
            self.space();
            if self.at("#PCDATA") {
                return self.err("#PCDATA must come first in a mixed content model");
            }
            self.cp()?;
        }
    }

    fn attlist(&mut self) -> R {
        self.need_space("after <!ATTLIST")?;
        self.name("element type")?;
        loop {
            let spaced = self.space();
            if self.eat(">") {
                return Ok(());
            }
            if !spaced {
                return self.err("white space is required before an attribute definition");
            }
            self.name("attribute")?;
            self.need_space("after the attribute name")?;
            const TYPES: [&str; 8] = [
                "CDATA", "IDREFS", "IDREF", "ID", "ENTITY", "ENTITIES", "NMTOKENS", "NMTOKEN",
            ];
            if self.eat("NOTATION") {
                self.need_space("after NOTATION")?;
                self.expect("(", "after NOTATION")?;
                self.enumeration(true)?;
            } else if self.eat("(") {
                self.enumeration(false)?;
            } else {
                let t = self.token().to_string();
                if !TYPES.contains(&t.as_str()) {
                    self.i -= t.len();
                    return self.err("expected an attribute type");
                }
            }
            self.need_space("after the attribute type")?;
            if self.eat("#REQUIRED") || self.eat("#IMPLIED") {
                continue;
            }
            if self.eat("#FIXED") {
                self.need_space("after #FIXED")?;
            }
            self.att_value()?;
        }
    }

    /// After `(`: names (NOTATION) or name tokens, up to `)`.
    fn enumeration(&mut self, names: bool) -> R {
        loop {
            self.space();
            if names {
                self.name("notation")?;
            } else {
                self.nmtoken()?;
            }
            self.space();
            if self.eat(")") {
                return Ok(());
            }
            self.expect("|", "or `)` in an enumeration")?;
        }
    }

    fn att_value(&mut self) -> R {
        let (v, from) = self.literal("default attribute value")?;
        let v = v.to_string();
        if let Some(i) = v.find('<') {
            return Err((from + i, "`<` is not allowed in an attribute value".into()));
        }
        self.check_refs(&v, from, false)?;
        let mut ok = std::collections::HashSet::new();
        self.default_refs(&v, &mut Vec::new(), &mut ok)
            .map_err(|(i, m)| (from + i, m))
    }

    /// The entity references of a default attribute value (or of the
    /// replacement texts it brings in): each declared before (unless it
    /// may be declared where copipe does not read), internal, without `<`
    /// and not recursive. `stack` holds the entities being checked, `ok`
    /// those found fine (each is checked once). An error is at the
    /// reference in `v`.
    fn default_refs<'e>(
        &'e self,
        v: &str,
        stack: &mut Vec<&'e str>,
        ok: &mut std::collections::HashSet<&'e str>,
    ) -> R {
        for amp in memchr::memchr_iter(b'&', v.as_bytes()) {
            let Some(semi) = v[amp..].find(';') else {
                continue;
            };
            let name = &v[amp + 1..amp + semi];
            if name.starts_with('#') || quick_xml::escape::resolve_predefined_entity(name).is_some()
            {
                continue;
            }
            let Some((key, entity)) = self.dtd.entities.get_key_value(name) else {
                if self.dtd.may_skip {
                    continue;
                }
                return Err((
                    amp,
                    format!("undefined entity `&{name};` (declared after its use?)"),
                ));
            };
            let key = key.as_str();
            if ok.contains(key) {
                continue;
            }
            let text = match entity {
                Entity::External => {
                    return Err((
                        amp,
                        format!("reference to external entity `&{name};` in an attribute value"),
                    ))
                }
                Entity::Unparsed => {
                    return Err((amp, format!("reference to unparsed entity `&{name};`")))
                }
                Entity::Internal(text) => text,
            };
            if stack.contains(&key) {
                return Err((amp, format!("recursive reference to entity `&{name};`")));
            }
            if text.contains('<') {
                return Err((
                    amp,
                    format!(
                        "entity `&{name};` holds a `<`, which is not allowed in an attribute value"
                    ),
                ));
            }
            stack.push(key);
            self.default_refs(text, stack, ok)
                .map_err(|(_, m)| (amp, m))?;
            stack.pop();
            ok.insert(key);
        }
        Ok(())
    }

    /// Checks the references in a literal starting at `from`; with
    /// `entity_value`, a `%` is a parameter-entity reference (not allowed
    /// in the internal subset).
    fn check_refs(&self, v: &str, from: usize, entity_value: bool) -> R<String> {
        let mut out = String::with_capacity(v.len());
        let mut rest = v;
        let mut at = from;
        // Literal line ends are normalised (XML 1.0 section 2.11) before
        // character references are replaced, so `&#xD;` stays a CR.
        let push_literal = |out: &mut String, piece: &str| {
            if entity_value && piece.contains('\r') {
                out.push_str(&crate::xml::parse::normalise_line_ends(piece));
            } else {
                out.push_str(piece);
            }
        };
        while let Some(k) = rest.find(['&', '%']) {
            push_literal(&mut out, &rest[..k]);
            let c = rest.as_bytes()[k];
            if c == b'%' {
                if entity_value {
                    return Err((
                        at + k,
                        "a parameter-entity reference is not allowed inside a declaration of the internal subset".into(),
                    ));
                }
                out.push('%');
                rest = &rest[k + 1..];
                at += k + 1;
                continue;
            }
            let Some(semi) = rest[k + 1..].find(';') else {
                return Err((
                    at + k,
                    "`&` must start a reference ending with `;` (write `&amp;`)".into(),
                ));
            };
            let body = &rest[k + 1..k + 1 + semi];
            if let Some(num) = body.strip_prefix('#') {
                match char_ref(num) {
                    Some(ch) if entity_value => out.push(ch),
                    Some(_) => out.push_str(&rest[k..k + 2 + semi]),
                    None => {
                        return Err((at + k, format!("reference to invalid character `&{body};`")))
                    }
                }
            } else {
                lexical::check_name(body, "entity reference").map_err(|(_, m)| (at + k, m))?;
                out.push_str(&rest[k..k + 2 + semi]);
            }
            rest = &rest[k + 2 + semi..];
            at += k + 2 + semi;
        }
        push_literal(&mut out, rest);
        Ok(out)
    }

    fn entity(&mut self) -> R {
        self.need_space("after <!ENTITY")?;
        let pe = self.eat("%");
        if pe {
            self.need_space("after `%` in a parameter entity declaration")?;
        }
        let name = self.name("entity")?;
        self.need_space("after the entity name")?;
        let entity = if matches!(self.peek(), Some(b'"' | b'\'')) {
            let (v, from) = self.literal("entity value")?;
            let v = v.to_string();
            Entity::Internal(self.check_refs(&v, from, true)?)
        } else {
            self.external_id(false)?;
            let save = self.i;
            let spaced = self.space();
            if self.at("NDATA") {
                if pe {
                    return self.err("a parameter entity cannot be unparsed (NDATA)");
                }
                if !spaced {
                    return self.err("white space is required before NDATA");
                }
                self.i += 5;
                self.need_space("after NDATA")?;
                self.name("notation")?;
                Entity::Unparsed
            } else {
                self.i = save;
                Entity::External
            }
        };
        if !pe {
            let predefined = quick_xml::escape::resolve_predefined_entity(&name).is_some();
            // The first declaration binds; the predefined ones keep their
            // meaning.
            if !predefined {
                self.dtd.entities.entry(name).or_insert(entity);
            }
        }
        self.close("ENTITY")
    }

    fn notation(&mut self) -> R {
        self.need_space("after <!NOTATION")?;
        self.name("notation")?;
        self.need_space("after the notation name")?;
        self.external_id(true)?;
        self.close("NOTATION")
    }
}

/// The character of a character reference's body (after `#`), if it is a
/// legal `Char`.
pub(crate) fn char_ref(num: &str) -> Option<char> {
    let (digits, radix) = match num.strip_prefix('x') {
        Some(h) => (h, 16),
        None => (num, 10),
    };
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| {
            if radix == 16 {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        });
    if !ok {
        return None;
    }
    u32::from_str_radix(digits, radix)
        .ok()
        .and_then(char::from_u32)
        .filter(|&c| crate::xml::parse::is_xml_char(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_are_checked() {
        assert!(parse("r [<!ENTITY x \"<\">]", 0).is_ok());
        assert!(parse("r [<!ELEMENT r (a|b)*><!ATTLIST r a CDATA #IMPLIED>]", 0).is_ok());
        assert!(parse("r [<!ELEMENT r (a|b,c)>]", 0).is_err());
        assert!(parse("r [<!ENTITY x \"%p;\">]", 0).is_err());
        assert!(parse("r SYSTEM \"a.dtd\"", 0).is_ok());
        assert!(parse("r [<!-- a -- b -->]", 0).is_err());
    }
}
