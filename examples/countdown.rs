//! countdown.py: a generator function, pulled by a `for` loop.
//!
//! Rust's pull-side generator is an [`Iterator`]; as in the seed, nothing
//! runs until the loop asks for the first value, and "Done counting down"
//! is printed when it asks for one more after the last.
//!
//! Run with `cargo run --example countdown`.

/// `countdown(n)`: where the generator stands is the iterator's state.
struct Countdown {
    n: u32,
    started: bool,
    done: bool,
}

fn countdown(n: u32) -> Countdown {
    Countdown {
        n,
        started: false,
        done: false,
    }
}

impl Iterator for Countdown {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if !self.started {
            self.started = true;
            println!("Counting down from {}", self.n);
        } else if !self.done {
            self.n -= 1;
        }
        if self.done {
            return None;
        }
        if self.n > 0 {
            return Some(self.n);
        }
        self.done = true;
        println!("Done counting down");
        None
    }
}

fn main() {
    for i in countdown(10) {
        println!("{i}");
    }
}
