//! The lexical productions of XML 1.0 (5th edition) the parse loop checks
//! on what quick-xml hands it: `Char` [2], `S` [3], `Name` [4]-[5], the
//! XML and text declarations [23]-[32], [80]-[81], and the attribute list
//! of a tag [40]-[41] with its uniqueness constraint.
//!
//! Each check returns the byte offset (within the bytes it was given) and
//! message of the first problem, so that the caller can place it in the
//! input. Most bytes in real documents are ASCII: every check has an ASCII
//! fast path and decodes a character only past it.

/// Where a problem is, relative to the start of the checked bytes, and
/// what it is.
pub(crate) type Bad = (usize, String);

/// True for the bytes the `S` production allows.
#[inline]
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The offset of the first character in `bytes` (valid UTF-8) that is not
/// a `Char`: a control character other than tab, newline and carriage
/// return, or U+FFFE / U+FFFF (surrogates are not valid UTF-8, so the
/// UTF-8 check has already refused them).
#[inline]
pub(crate) fn bad_char(bytes: &[u8]) -> Option<usize> {
    // A branch-free pass (vectorised by the compiler) finds whether any
    // control byte is there at all; documents almost never hold one.
    let control = |b: u8| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r');
    let any = bytes.iter().fold(0u8, |a, &b| a | u8::from(control(b))) != 0;
    let ctl = if any {
        bytes.iter().position(|&b| control(b))
    } else {
        None
    };
    // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
    let mut nonchar = None;
    let upto = ctl.unwrap_or(bytes.len());
    for i in memchr::memchr_iter(0xEF, &bytes[..upto]) {
        if bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) {
            nonchar = Some(i);
            break;
        }
    }
    nonchar.or(ctl)
}

/// The message for the character at the start of `bytes` (valid UTF-8),
/// found by [`bad_char`].
#[cold]
pub(crate) fn bad_char_message(bytes: &[u8]) -> String {
    let c = std::str::from_utf8(&bytes[..bytes.len().min(3)])
        .ok()
        .and_then(|s| s.chars().next())
        .or_else(|| bytes.first().map(|&b| b as char))
        .unwrap_or('\0');
    format!(
        "illegal character U+{:04X} (not a Char of XML 1.0)",
        c as u32
    )
}

/// Checks `bytes` against `Char`, giving the problem as a [`Bad`].
#[inline]
pub(crate) fn check_chars(bytes: &[u8]) -> Result<(), Bad> {
    match bad_char(bytes) {
        None => Ok(()),
        Some(i) => Err((i, bad_char_message(&bytes[i..]))),
    }
}

/// `NameStartChar` [4] for a character past ASCII.
fn is_name_start_wide(c: char) -> bool {
    matches!(c as u32,
        0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x2FF | 0x370..=0x37D | 0x37F..=0x1FFF
        | 0x200C..=0x200D | 0x2070..=0x218F | 0x2C00..=0x2FEF | 0x3001..=0xD7FF
        | 0xF900..=0xFDCF | 0xFDF0..=0xFFFD | 0x10000..=0xEFFFF)
}

/// `NameChar` [4a] for a character past ASCII.
fn is_name_char_wide(c: char) -> bool {
    is_name_start_wide(c) || matches!(c as u32, 0xB7 | 0x300..=0x36F | 0x203F..=0x2040)
}

#[inline]
fn is_name_start_ascii(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

#[inline]
fn is_name_char_ascii(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.')
}

/// The length of the `Name` at the start of `s` (0 if there is none).
#[inline]
pub(crate) fn name_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    // ASCII fast path.
    while i < b.len() {
        let c = b[i];
        if c >= 0x80 {
            break;
        }
        let ok = if i == 0 {
            is_name_start_ascii(c)
        } else {
            is_name_char_ascii(c)
        };
        if !ok {
            return i;
        }
        i += 1;
    }
    if i == b.len() {
        return i;
    }
    for (j, c) in s[i..].char_indices() {
        let at = i + j;
        let ok = if c.is_ascii() {
            if at == 0 {
                is_name_start_ascii(c as u8)
            } else {
                is_name_char_ascii(c as u8)
            }
        } else if at == 0 {
            is_name_start_wide(c)
        } else {
            is_name_char_wide(c)
        };
        if !ok {
            return at;
        }
    }
    s.len()
}

/// `NameStartChar` and `NameChar` for each ASCII byte (bit 0: may start
/// a name, bit 1: may continue one); bytes past ASCII are 0 and take the
/// slow path.
const NAME_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            t[b] = 3;
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            t[b] = 2;
        }
        b += 1;
    }
    t
};

/// Checks that all of `s` is one `Name`; `what` names it in the message.
#[inline(always)]
pub(crate) fn check_name(s: &str, what: &str) -> Result<(), Bad> {
    // ASCII fast path: one table lookup per byte.
    if let Some((&first, rest)) = s.as_bytes().split_first() {
        if NAME_BYTES[first as usize] & 1 != 0
            && rest.iter().all(|&c| NAME_BYTES[c as usize] & 2 != 0)
        {
            return Ok(());
        }
    }
    check_name_slow(s, what)
}

/// Element names already found valid, so that a document that repeats a
/// few names (a feed does, millions of times) checks each one once.
///
/// Direct-mapped: a slot holds one name of 1 to [`NameCache::WIDE`] bytes
/// as its length and two words that together cover every byte of it (see
/// [`NameCache::words`]), so a hit is two compares with no call. A slot is
/// filled only after the full check passed, and a hit needs the same
/// length and both words equal, that is the same name: the cache accepts
/// exactly what [`check_name`] accepts. A miss or a collision checks the
/// name in full.
pub(crate) struct NameCache {
    slots: [(usize, u64, u64); NameCache::SLOTS],
}

impl Default for NameCache {
    fn default() -> NameCache {
        NameCache {
            // Length 0 never hits: an empty name is not cached.
            slots: [(0, 0, 0); NameCache::SLOTS],
        }
    }
}

impl NameCache {
    const WIDE: usize = 16;
    const SLOTS: usize = 64;

    /// Two words holding every byte of `b` (1 to 16 bytes): the first and
    /// last 8 bytes (overlapping when shorter than 16), the first and last
    /// 4, or bytes 0, n/2 and n-1 of a name shorter than 4. With the
    /// length, they tell names apart exactly.
    #[inline(always)]
    fn words(b: &[u8]) -> (u64, u64) {
        let n = b.len();
        if n >= 8 {
            (word8(b, 0), word8(b, n - 8))
        } else if n >= 4 {
            (word4(b, 0), word4(b, n - 4))
        } else {
            let short = u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16;
            (short, 0)
        }
    }

    /// Checks `s` as [`check_name`] does, remembering it when valid.
    #[inline(always)]
    pub(crate) fn check(&mut self, s: &str, what: &str) -> Result<(), Bad> {
        let b = s.as_bytes();
        let n = b.len();
        if n == 0 || n > Self::WIDE {
            return check_name(s, what);
        }
        let (lo, hi) = Self::words(b);
        let mix = (lo ^ hi.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = &mut self.slots[(mix >> 58) as usize];
        if *slot == (n, lo, hi) {
            return Ok(());
        }
        check_name(s, what)?;
        *slot = (n, lo, hi);
        Ok(())
    }
}

/// The 8 bytes of `b` from `i` as a word (one load).
#[inline(always)]
fn word8(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// The 4 bytes of `b` from `i` as a word (one load).
#[inline(always)]
fn word4(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i..i + 4]);
    u64::from(u32::from_le_bytes(w))
}

#[inline(never)]
fn check_name_slow(s: &str, what: &str) -> Result<(), Bad> {
    let n = name_len(s);
    if n == s.len() && n > 0 {
        return Ok(());
    }
    Err(bad_name(s, n, what))
}

#[cold]
fn bad_name(s: &str, n: usize, what: &str) -> Bad {
    if s.is_empty() {
        return (0, format!("{what} has no name"));
    }
    let c = s[n..].chars().next().unwrap_or(' ');
    (
        n,
        format!("{what} `{s}` is not a valid XML name (`{c}` cannot be there)"),
    )
}

/// One attribute of a tag, as spans of its content.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttrSpan {
    /// The value between the quotes.
    pub(crate) value: (usize, usize),
}

/// Checks the attribute list of a tag, `content[name_len..]` where
/// `content` is the text between `<` and `>` (or `/>`): `(S Attribute)* S?`
/// with `Attribute ::= Name Eq AttValue`, no `<` in a value, and no name
/// twice. `each` sees every attribute (to check its value's references).
pub(crate) fn check_attr_list(
    content: &str,
    name_len: usize,
    mut each: impl FnMut(AttrSpan) -> Result<(), Bad>,
) -> Result<(), Bad> {
    let b = content.as_bytes();
    let mut i = name_len;
    // The names seen so far, for the uniqueness check; a fixed array
    // serves all but tags with very many attributes.
    let mut seen = [(0usize, 0usize); 16];
    let mut seen_n = 0usize;
    let mut more: Vec<(usize, usize)> = Vec::new();
    loop {
        let ws = i;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i == b.len() {
            return Ok(());
        }
        if i == ws {
            return Err((i, "attributes must be separated by whitespace".into()));
        }
        let n = name_len_at(content, i);
        if n == 0 {
            return Err(bad_attr_start(content, i));
        }
        let name = (i, i + n);
        i += n;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return Err((
                i,
                format!(
                    "attribute `{}` has no `=` and value",
                    &content[name.0..name.1]
                ),
            ));
        }
        i += 1;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        let q = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => {
                return Err((
                    i,
                    format!(
                        "the value of attribute `{}` must be in quotes",
                        &content[name.0..name.1]
                    ),
                ))
            }
        };
        let vstart = i + 1;
        let vend = match memchr::memchr(q, &b[vstart..]) {
            Some(k) => vstart + k,
            None => return Err((i, "attribute value has no closing quote".into())),
        };
        if let Some(k) = memchr::memchr(b'<', &b[vstart..vend]) {
            return Err((
                vstart + k,
                "`<` is not allowed in an attribute value".into(),
            ));
        }
        let this = &content[name.0..name.1];
        let dup = seen[..seen_n]
            .iter()
            .chain(more.iter())
            .any(|&(s, e)| &content[s..e] == this);
        if dup {
            return Err((name.0, format!("duplicate attribute `{this}`")));
        }
        if seen_n < seen.len() {
            seen[seen_n] = name;
            seen_n += 1;
        } else {
            more.push(name);
        }
        each(AttrSpan {
            value: (vstart, vend),
        })?;
        i = vend + 1;
    }
}

fn name_len_at(s: &str, i: usize) -> usize {
    s.get(i..).map_or(0, name_len)
}

#[cold]
fn bad_attr_start(content: &str, i: usize) -> Bad {
    let c = content[i..].chars().next().unwrap_or(' ');
    (i, format!("`{c}` cannot start an attribute name"))
}

/// What an XML or text declaration says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Declaration {
    /// The declared encoding, if any.
    pub(crate) encoding: Option<String>,
}

/// Checks the pseudo-attributes of an XML declaration (`text` false) or a
/// text declaration (`text` true): `s` is what follows `<?xml` up to `?>`.
/// Version, then encoding, then (XML declaration only) standalone, in that
/// order; version is required in an XML declaration, encoding in a text
/// declaration.
pub(crate) fn check_declaration(s: &str, text: bool) -> Result<Declaration, Bad> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut decl = Declaration::default();
    let mut stage = 0; // 0: version next, 1: encoding, 2: standalone, 3: done
    loop {
        let ws = i;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        if i == ws {
            return Err((
                i,
                "the declaration's pseudo-attributes must be separated by whitespace".into(),
            ));
        }
        let n = name_len_at(s, i);
        let name = &s[i..i + n];
        let at = i;
        i += n;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return Err((i, format!("`=` expected after `{name}` in the declaration")));
        }
        i += 1;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        let q = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => return Err((i, format!("the value of `{name}` must be in quotes"))),
        };
        let vstart = i + 1;
        let Some(k) = memchr::memchr(q, &b[vstart..]) else {
            return Err((i, "unclosed quote in the declaration".into()));
        };
        let value = &s[vstart..vstart + k];
        i = vstart + k + 1;
        match name {
            "version" if stage == 0 => {
                let ok = value
                    .strip_prefix("1.")
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
                if !ok {
                    return Err((vstart, format!("bad version `{value}` (expected 1.0)")));
                }
                stage = 1;
            }
            "encoding" if stage <= 1 && (stage == 1 || text) => {
                let ok = value
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_alphabetic)
                    && value
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
                if !ok {
                    return Err((vstart, format!("bad encoding name `{value}`")));
                }
                decl.encoding = Some(value.to_string());
                stage = 2;
            }
            "standalone" if !text && (1..=2).contains(&stage) => {
                if value != "yes" && value != "no" {
                    return Err((
                        vstart,
                        format!("standalone must be `yes` or `no`, not `{value}`"),
                    ));
                }
                stage = 3;
            }
            _ => {
                let what = if text { "text" } else { "XML" };
                return Err((
                    at,
                    format!("unexpected `{name}` in the {what} declaration (expected version, encoding, standalone, in that order)"),
                ));
            }
        }
    }
    if !text && stage == 0 {
        return Err((0, "the XML declaration has no version".into()));
    }
    if text && decl.encoding.is_none() {
        return Err((0, "a text declaration must declare the encoding".into()));
    }
    Ok(decl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars() {
        assert_eq!(bad_char(b"abc\t\r\n"), None);
        assert_eq!(bad_char(b"ab\x0c"), Some(2));
        assert_eq!(bad_char(b"ab\0"), Some(2));
        assert_eq!(bad_char("a\u{FFFE}".as_bytes()), Some(1));
        assert_eq!(bad_char("a\u{FFFD}\u{FFFF}".as_bytes()), Some(4));
        assert_eq!(bad_char(&[b'a'; 100]), None);
        let mut long = vec![b'a'; 100];
        long[70] = 0x1b;
        assert_eq!(bad_char(&long), Some(70));
    }

    #[test]
    fn names() {
        assert!(check_name("doc", "x").is_ok());
        assert!(check_name("a:b-c.d_1", "x").is_ok());
        assert!(check_name("été", "x").is_ok());
        assert!(check_name(".doc", "x").is_err());
        assert!(check_name("123", "x").is_err());
        assert!(check_name("", "x").is_err());
        assert!(check_name("b/", "x").is_err());
        assert!(check_name("a\u{B7}", "x").is_ok());
        assert!(check_name("\u{B7}a", "x").is_err());
    }

    /// Names from an alphabet of name bytes, bytes no name may hold or
    /// start with, and wide characters, short enough to collide in the
    /// cache's slots and long enough to pass its width.
    fn name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop::sample::select(vec![
            "a",
            "b",
            "Z",
            "_",
            ":",
            "-",
            ".",
            "1",
            "9",
            " ",
            "/",
            "<",
            "\u{B7}",
            "é",
            "\u{300}",
            "\u{2070}",
            "\u{FFFF}",
            "\u{1F600}",
        ]);
        prop::collection::vec(piece, 0..30).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The cache never accepts a name the full check refuses (nor the
        /// reverse), whatever came before it: same result, same message.
        #[test]
        fn name_cache_agrees_with_check_name(
            names in proptest::collection::vec(name(), 1..64),
            again in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..64),
        ) {
            let mut cache = NameCache::default();
            let order = names.iter().chain(again.iter().map(|i| &names[i.index(names.len())]));
            for n in order {
                proptest::prop_assert_eq!(cache.check(n, "element"), check_name(n, "element"), "{:?}", n);
            }
        }
    }

    #[test]
    fn name_cache_hits_only_the_same_name() {
        let mut cache = NameCache::default();
        assert!(cache.check("bus", "x").is_ok());
        assert!(cache.check("bus", "x").is_ok());
        // Same length, first and last byte (same slot), not a name.
        assert!(cache.check("b.s", "x").is_ok());
        assert!(cache.check("b s", "x").is_err());
        assert!(cache.check("b<s", "x").is_err());
        assert!(cache.check("", "x").is_err());
        let long = "a".repeat(40);
        assert!(cache.check(&long, "x").is_ok());
        assert!(cache.check(&format!("{long}/"), "x").is_err());
    }

    #[test]
    fn attr_lists() {
        let ok = |s: &str| check_attr_list(s, 1, |_| Ok(())).is_ok();
        assert!(ok("r"));
        assert!(ok("r "));
        assert!(ok("r a='1' b = \"2\" "));
        assert!(!ok("r a=\"1\"b=\"2\""));
        assert!(!ok("r a=\"<\""));
        assert!(!ok("r a=\"1\" a='2'"));
        assert!(!ok("r a"));
        assert!(!ok("r a=1"));
        assert!(!ok("r 1a='1'"));
    }

    #[test]
    fn declarations() {
        assert!(check_declaration(" version=\"1.0\"", false).is_ok());
        assert!(
            check_declaration(" version='1.0' encoding='UTF-8' standalone='yes' ", false).is_ok()
        );
        assert!(check_declaration(" encoding=\"UTF-8\"", false).is_err());
        assert!(check_declaration(" VERSION=\"1.0\"", false).is_err());
        assert!(
            check_declaration(" version=\"1.0\" standalone='yes' encoding='x'", false).is_err()
        );
        assert!(check_declaration(" version=\"1.0\"encoding='x'", false).is_err());
        assert!(check_declaration(" encoding='UTF-8'", true).is_ok());
        assert!(check_declaration(" version='1.0' encoding='UTF-8'", true).is_ok());
        assert!(check_declaration(" version='1.0'", true).is_err());
    }
}
