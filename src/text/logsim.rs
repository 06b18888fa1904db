//! [`LogSim`]: a deterministic generator of Apache combined access-log
//! lines, like the seed's `logsim.py` (which replayed dabeaz.com's log).

use std::io::Write as _;

/// Generates realistic Apache "combined" access-log lines, deterministically
/// from a seed.
///
/// Requests are mostly for the site's pages and images; some are for the
/// `/python/`, `/ply/` and `/swig/` sections the seed's examples grep for.
/// About one line in `invalid_utf8_every` carries a raw Latin-1 byte in its
/// user agent (as some servers log it), which is not valid UTF-8.
///
/// # Examples
///
/// ```
/// use copipe::text::LogSim;
///
/// let mut a = LogSim::new(7);
/// let mut b = LogSim::new(7);
/// let (mut x, mut y) = (Vec::new(), Vec::new());
/// for _ in 0..100 {
///     a.write_line(&mut x);
///     b.write_line(&mut y);
/// }
/// assert_eq!(x, y); // same seed, same log
/// assert_eq!(x.iter().filter(|&&c| c == b'\n').count(), 100);
/// let text = String::from_utf8_lossy(&x);
/// assert!(text.lines().all(|l| l.contains(" HTTP/1.1\" ")));
/// ```
#[derive(Debug, Clone)]
pub struct LogSim {
    rng: u64,
    /// Seconds since the Unix epoch of the current line.
    time: u64,
    invalid_every: u64,
    n: u64,
}

const HOSTS: &[&str] = &[
    "75.54.118.139",
    "194.105.57.11",
    "24.7.209.30",
    "128.135.11.136",
    "66.249.65.37",
    "207.46.98.52",
    "72.30.61.37",
    "38.99.44.101",
    "71.201.176.194",
    "68.253.21.59",
    "123.190.193.57",
    "99.174.40.14",
    "212.199.21.220",
    "65.55.109.82",
    "130.220.75.51",
    "81.107.39.38",
];

const PAGES: &[&str] = &[
    "/",
    "/index.html",
    "/about.html",
    "/courses.html",
    "/favicon.ico",
    "/robots.txt",
    "/images/Davetiny.jpg",
    "/images/Chisel.jpg",
    "/images/bg.gif",
    "/style.css",
    "/cv.pdf",
    "/publications.html",
    "/talks.html",
    "/blog/2008/02/index.html",
    "/blog/atom.xml",
    "/generators/Generators.pdf",
    "/generators/genfind.py",
    "/coroutines/Coroutines.pdf",
];

const PYTHON: &[&str] = &[
    "/python/",
    "/python/tutorial/index.html",
    "/python/talks/generators.html",
    "/python/book/ch1.pdf",
    "/python/py3k/whatsnew.html",
];

const PLY: &[&str] = &[
    "/ply/",
    "/ply/ply.html",
    "/ply/ply-2.5.tar.gz",
    "/ply/example/calc/calc.py",
];

const SWIG: &[&str] = &[
    "/swig/",
    "/swig/Doc1.3/Python.html",
    "/swig/swig-1.3.33.tar.gz",
    "/swig/papers/Py97/beazley.html",
];

const REFERRERS: &[&str] = &[
    "-",
    "http://www.google.com/search?q=generator+tricks",
    "http://www.google.com/search?q=ply+yacc",
    "http://www.dabeaz.com/",
    "http://www.dabeaz.com/blog.html",
    "http://reddit.com/r/programming/",
    "http://www.swig.org/download.html",
    "http://news.ycombinator.com/",
];

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_5_2; en-us) AppleWebKit/525.13 (KHTML, like Gecko) Version/3.1 Safari/525.13",
    "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.8.1.12) Gecko/20080201 Firefox/2.0.0.12",
    "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; .NET CLR 1.1.4322)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "msnbot/1.0 (+http://search.msn.com/msnbot.htm)",
    "Mozilla/5.0 (X11; U; Linux i686; en-US; rv:1.8.1.12) Gecko/20080207 Ubuntu/7.10 (gutsy) Firefox/2.0.0.12",
    "Python-urllib/2.5",
    "Wget/1.10.2",
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl LogSim {
    /// A generator seeded with `seed`. The log starts on 2008-02-24 (the
    /// date of the seed's log) plus up to a day chosen by the seed.
    pub fn new(seed: u64) -> LogSim {
        let mut sim = LogSim {
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            time: 0,
            invalid_every: 1000,
            n: 0,
        };
        sim.time = 1_203_811_200 + sim.next() % 86_400;
        sim
    }

    /// Puts a raw Latin-1 byte (invalid UTF-8) into one line in `n` on
    /// average; `0` never does. The default is 1000.
    pub fn invalid_utf8_every(mut self, n: u64) -> LogSim {
        self.invalid_every = n;
        self
    }

    /// Lines generated so far.
    pub fn lines(&self) -> u64 {
        self.n
    }

    /// SplitMix64: small, fast, and the same on every platform.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// Appends one line, with its newline, to `out`.
    pub fn write_line(&mut self, out: &mut Vec<u8>) {
        self.n += 1;
        self.time += self.below(3);
        let host = self.pick(HOSTS);
        let section = self.below(100);
        let path = match section {
            0..=7 => self.pick(PYTHON),
            8..=11 => self.pick(PLY),
            12..=14 => self.pick(SWIG),
            _ => self.pick(PAGES),
        };
        let (status, bytes) = match self.below(100) {
            0..=84 => (200, 200 + self.below(60_000)),
            85..=92 => (304, 0),
            93..=97 => (404, 200 + self.below(300)),
            _ => (206, 1000 + self.below(500_000)),
        };
        let method = if self.below(50) == 0 { "HEAD" } else { "GET" };
        let referrer = self.pick(REFERRERS);
        let agent = self.pick(AGENTS);
        let invalid = self.invalid_every > 0 && self.below(self.invalid_every) == 0;

        let (y, mo, d, h, mi, s) = civil(self.time);
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            "{host} - - [{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} -0600] \"{method} {path} HTTP/1.1\" {status} ",
            MONTHS[mo as usize - 1]
        );
        if status == 304 {
            out.push(b'-');
        } else {
            let _ = write!(out, "{bytes}");
        }
        let _ = write!(out, " \"{referrer}\" \"{agent}");
        if invalid {
            // A Latin-1 "é": valid in Latin-1, invalid as UTF-8.
            out.extend_from_slice(b" (caf\xe9)");
        }
        out.extend_from_slice(b"\"\n");
    }
}

/// Splits Unix seconds into (year, month, day, hour, minute, second), UTC
/// (Howard Hinnant's `civil_from_days`).
fn civil(t: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = t / 86_400;
    let secs = t % 86_400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y as u64,
        m as u64,
        d as u64,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_203_811_200), (2008, 2, 24, 0, 0, 0));
        assert_eq!(civil(951_782_400 + 3661), (2000, 2, 29, 1, 1, 1));
    }

    #[test]
    fn lines_look_like_apache_combined() {
        let mut sim = LogSim::new(1).invalid_utf8_every(0);
        let mut out = Vec::new();
        for _ in 0..1000 {
            sim.write_line(&mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            first.contains(" - - [") && first.contains(" HTTP/1.1\" "),
            "{first}"
        );
        for word in ["python", "ply", "swig"] {
            assert!(text.contains(word), "no {word} line");
        }
    }
}
