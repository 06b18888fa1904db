//! bogus.py: a generator that both produces and receives values (the
//! seed's "not a recommended coding style").
//!
//! Deliberate difference: copipe's coroutine stages only receive (`send`
//! returns a [`Flow`](copipe::Flow), never a value), so a two-way generator
//! cannot be written as one; here it is a plain struct, whose `send`
//! returns the value the `for` loop never sees, which is why the seed
//! prints 2 right after 5.
//!
//! Run with `cargo run --example bogus`.

struct Countdown {
    n: i64,
    started: bool,
}

fn countdown(n: i64) -> Countdown {
    Countdown { n, started: false }
}

impl Countdown {
    /// `yield n` resumed with `newvalue`: `None` is `next()`.
    fn resume(&mut self, newvalue: Option<i64>) -> Option<i64> {
        if !self.started {
            self.started = true;
            println!("Counting down from {}", self.n);
        } else {
            match newvalue {
                Some(v) => self.n = v,
                None => self.n -= 1,
            }
        }
        (self.n >= 0).then_some(self.n)
    }

    /// `c.send(v)`: resumes with `v` and returns the next value.
    fn send(&mut self, v: i64) -> Option<i64> {
        self.resume(Some(v))
    }
}

impl Iterator for Countdown {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        self.resume(None)
    }
}

fn main() {
    // The holy grail countdown.
    let mut c = countdown(5);
    while let Some(x) = c.next() {
        println!("{x}");
        if x == 5 {
            let _lost = c.send(3); // the 3 the seed's loop never prints
        }
    }
}
