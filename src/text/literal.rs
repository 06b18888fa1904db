//! [`Literal`]: a substring search tuned for lines, short ones included.

use memchr::memmem;

/// Haystacks shorter than this are searched by `Literal::find_short`.
///
/// `memmem`'s vector searchers need a haystack of a few dozen bytes before
/// they start; below that, `memchr::memmem::Finder` falls back to
/// Rabin-Karp, whose rolling hash costs more than the whole search on a
/// log line of a few words. A direct scan for the needle's first byte
/// followed by a compare of the rest does at most `len - needle + 1` byte
/// tests and a few compares, all in registers.
const SHORT: usize = 32;

/// A fixed byte string to search for: the literal fast path of
/// [`Grep`](super::Grep), usable on its own.
///
/// Long haystacks (a block of lines, a long line) go to
/// [`memchr::memmem::Finder`], which is vectorised. Haystacks under
/// 32 bytes (the seed's `"python is nice"`, a short log line) are searched
/// directly: a scan for the needle's first byte, then a compare of the rest,
/// which costs a few nanoseconds where the finder's setup alone costs more.
/// Both give the same answer: the position of the first occurrence.
///
/// # Examples
///
/// ```
/// use copipe::text::Literal;
///
/// let python = Literal::new("python");
/// assert_eq!(python.find(b"python is nice"), Some(0));
/// assert_eq!(python.find(b"I like python"), Some(7));
/// assert!(!python.is_match(b"pytho"));
/// assert_eq!(python.needle(), b"python");
/// ```
#[derive(Debug, Clone)]
pub struct Literal {
    finder: memmem::Finder<'static>,
    /// The needle's first 8 bytes, little-endian, zero-padded.
    head: u64,
    /// Selects the needle's bytes in `head` (all of them if it has 8 or
    /// more).
    mask: u64,
}

impl Literal {
    /// A search for `needle`. An empty needle matches at 0 in any haystack.
    pub fn new(needle: impl AsRef<[u8]>) -> Literal {
        let needle = needle.as_ref();
        let n = needle.len().min(8);
        Literal {
            finder: memmem::Finder::new(needle).into_owned(),
            head: load(needle),
            mask: if n == 8 { u64::MAX } else { (1 << (8 * n)) - 1 },
        }
    }

    /// The bytes searched for.
    pub fn needle(&self) -> &[u8] {
        self.finder.needle()
    }

    /// True when `haystack` contains the needle.
    #[inline]
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.find(haystack).is_some()
    }

    /// The position of the needle's first occurrence in `haystack`.
    #[inline]
    pub fn find(&self, haystack: &[u8]) -> Option<usize> {
        if haystack.len() < SHORT {
            self.find_short(haystack)
        } else {
            self.finder.find(haystack)
        }
    }

    /// The short-haystack search: at each position whose first byte
    /// matches, the needle's first 8 bytes are compared as one word, and a
    /// longer needle's rest as a slice.
    #[inline]
    fn find_short(&self, haystack: &[u8]) -> Option<usize> {
        let needle = self.finder.needle();
        let last = haystack.len().checked_sub(needle.len())?;
        if needle.is_empty() {
            return Some(0);
        }
        let first = self.head as u8;
        (0..=last).find(|&i| {
            haystack[i] == first
                && (load(&haystack[i..]) ^ self.head) & self.mask == 0
                && (needle.len() <= 8 || haystack[i + 8..i + needle.len()] == needle[8..])
        })
    }
}

/// The first 8 bytes of `bytes` as a little-endian word, zero-padded.
#[inline]
fn load(bytes: &[u8]) -> u64 {
    match bytes.get(..8) {
        Some(word) => {
            let mut w = [0; 8];
            w.copy_from_slice(word);
            u64::from_le_bytes(w)
        }
        None => {
            let mut w = [0; 8];
            w[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(w)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        let empty = Literal::new("");
        assert_eq!(empty.find(b""), Some(0));
        assert_eq!(empty.find(b"abc"), Some(0));
        let a = Literal::new("a");
        assert_eq!(a.find(b""), None);
        assert_eq!(a.find(b"a"), Some(0));
        assert_eq!(a.find(b"ba"), Some(1));
        let long = Literal::new("abcdefghij");
        assert_eq!(long.find(b"abcdefghiabcdefghij"), Some(9));
        assert_eq!(long.find(b"abcdefghXj"), None);
        let ab = Literal::new("ab");
        assert_eq!(ab.find(b"a"), None);
        assert_eq!(ab.find(b"aab"), Some(1));
        // At the end of the short range, and just past it.
        let mut hay = vec![b'x'; SHORT - 1];
        hay.extend_from_slice(b"ab");
        assert_eq!(ab.find(&hay[1..]), Some(SHORT - 2));
        assert_eq!(ab.find(&hay), Some(SHORT - 1));
        assert_eq!(ab.find(&hay[..SHORT]), None);
    }

    proptest! {
        /// Both paths agree with `memmem` on any haystack and needle, from
        /// a small alphabet so that partial matches are common.
        #[test]
        fn agrees_with_memmem(
            needle in proptest::collection::vec(b'a'..=b'c', 0..12),
            haystack in proptest::collection::vec(b'a'..=b'c', 0..80),
        ) {
            let lit = Literal::new(&needle);
            for start in 0..haystack.len().min(8) {
                let hay = &haystack[start..];
                prop_assert_eq!(lit.find(hay), memmem::find(hay, &needle));
            }
        }
    }
}
