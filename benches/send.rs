//! The seed's `benchmark.py`: the cost of one `send` into a stage.
//!
//! 1,000,000 sends of `"python is nice"` into `grep("python")` and on into
//! a sink, the same pipeline written five ways:
//!
//! - (a) a struct stage (the seed's `GrepHandler` object), static dispatch;
//! - (b) the same struct behind `Box<dyn Stage>`;
//! - (c) a closure stage (`from_fn`);
//! - (d) a coroutine stage (the seed's `@coroutine grep`);
//! - (e) a plain loop calling `memmem`, no stage at all: the floor.
//!
//! One criterion iteration is 1,000,000 sends, so the time criterion prints
//! in milliseconds is the cost of one send in nanoseconds. The sink counts
//! what it receives (`Tally`, a `Null` that counts) so every iteration
//! asserts that all 1,000,000 lines got through. Before measuring, the
//! bench counts heap allocations over 1,000,000 sends of each variant and
//! fails if there is any.
//!
//! Compare with CPython on the same machine: `python3 benches/python/benchmark.py`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use copipe::{coroutine, from_fn, Flow, Inbox, Result, Stage, StageExt};
use criterion::{criterion_group, Criterion};
use memchr::memmem;

const LINE: &str = "python is nice";
const SENDS: u64 = 1_000_000;

/// The sink: discards items, counting them so the bench can check its work.
struct Tally(Rc<Cell<u64>>);

impl<T> Stage<T> for Tally {
    #[inline]
    fn send(&mut self, _item: T) -> Result<Flow> {
        self.0.set(self.0.get() + 1);
        Ok(Flow::Continue)
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// (a), (b): the seed's `GrepHandler`.
struct Grep<S> {
    finder: memmem::Finder<'static>,
    target: S,
}

impl<S: Stage<&'static str>> Stage<&'static str> for Grep<S> {
    #[inline]
    fn send(&mut self, line: &'static str) -> Result<Flow> {
        if self.finder.find(line.as_bytes()).is_some() {
            self.target.send(line)
        } else {
            Ok(Flow::Continue)
        }
    }
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

fn finder() -> memmem::Finder<'static> {
    memmem::Finder::new("python").into_owned()
}

fn struct_grep(tally: &Rc<Cell<u64>>) -> Grep<Tally> {
    Grep {
        finder: finder(),
        target: Tally(Rc::clone(tally)),
    }
}

fn closure_grep(tally: &Rc<Cell<u64>>) -> impl Stage<&'static str> {
    let finder = finder();
    let mut target = Tally(Rc::clone(tally));
    from_fn(move |line: &'static str| {
        if finder.find(line.as_bytes()).is_some() {
            target.send(line)
        } else {
            Ok(Flow::Continue)
        }
    })
}

/// (d): the seed's coroutine `grep`, as copipe users write it.
fn coroutine_grep(tally: &Rc<Cell<u64>>) -> impl Stage<&'static str> {
    let finder = finder();
    let mut target = Tally(Rc::clone(tally));
    coroutine(move |inbox: Inbox<&'static str>| async move {
        while let Some(line) = inbox
            .recv_flushing(|| Stage::<&str>::flush(&mut target))
            .await
        {
            if finder.find(line.as_bytes()).is_some() && target.send(line)?.is_stop() {
                break;
            }
        }
        Stage::<&str>::close(&mut target)
    })
}

/// Sends `SENDS` lines into `stage`, checking each answer.
#[inline(never)]
fn send_all<S: Stage<&'static str> + ?Sized>(stage: &mut S) {
    for _ in 0..SENDS {
        let flow = stage
            .send(black_box(LINE))
            .expect("the bench pipeline cannot fail");
        assert_eq!(flow, Flow::Continue);
    }
}

/// (e): the floor, no stage at all.
#[inline(never)]
fn plain_loop(finder: &memmem::Finder<'_>) -> u64 {
    let mut n = 0;
    for _ in 0..SENDS {
        if finder.find(black_box(LINE).as_bytes()).is_some() {
            n += 1;
        }
    }
    n
}

// ---------------------------------------------------------------------------
// Allocation count: proof that a send does not allocate.

struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method delegates to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counter is a plain
// atomic, which never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as received; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc*` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as received; `ptr` came from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Counts the allocations of one run of `SENDS` sends into `stage`.
fn allocations_per_run<S: Stage<&'static str> + ?Sized>(stage: &mut S) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    send_all(stage);
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn check_no_allocation_per_send() {
    let tally = Rc::new(Cell::new(0));
    let runs = [
        ("a struct", allocations_per_run(&mut struct_grep(&tally))),
        (
            "b Box<dyn Stage>",
            allocations_per_run(&mut *struct_grep(&tally).boxed()),
        ),
        ("c closure", allocations_per_run(&mut closure_grep(&tally))),
        (
            "d coroutine",
            allocations_per_run(&mut coroutine_grep(&tally)),
        ),
    ];
    assert_eq!(tally.get(), 4 * SENDS);
    for (name, allocations) in runs {
        println!("allocations in {SENDS} sends, {name}: {allocations}");
        assert_eq!(allocations, 0, "{name} allocates per send");
    }
}

// ---------------------------------------------------------------------------
// Side by side: the five variants in interleaved rounds.

/// Times one run of `SENDS` sends, in nanoseconds per send.
fn ns_per_send(run: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_nanos() as f64 / SENDS as f64
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Runs every variant once per round, `ROUNDS` times, and prints the median
/// of each with its ratio to the plain loop and to the struct stage. The
/// machine is shared and its load changes from second to second; taking
/// turns spreads that over all variants alike, so the ratios hold even when
/// the absolute figures move.
fn side_by_side() {
    const ROUNDS: usize = 60;
    let tally = Rc::new(Cell::new(0));
    let mut a = struct_grep(&tally);
    let mut b = struct_grep(&tally).boxed();
    let mut c = closure_grep(&tally);
    let mut d = coroutine_grep(&tally);
    let floor = finder();
    let t = Rc::clone(&tally);
    let mut variants: [(&str, &mut dyn FnMut()); 5] = [
        ("(a) struct stage, static dispatch", &mut || {
            send_all(&mut a)
        }),
        ("(b) struct stage, Box<dyn Stage>", &mut || {
            send_all(&mut *b)
        }),
        ("(c) closure stage, from_fn", &mut || send_all(&mut c)),
        ("(d) coroutine stage", &mut || send_all(&mut d)),
        ("(e) plain loop calling memmem", &mut || {
            t.set(t.get() + plain_loop(&floor))
        }),
    ];
    let mut times = vec![Vec::with_capacity(ROUNDS); variants.len()];
    for _ in 0..ROUNDS {
        for (i, (_, run)) in variants.iter_mut().enumerate() {
            times[i].push(ns_per_send(*run));
        }
    }
    assert_eq!(tally.get(), (ROUNDS * variants.len()) as u64 * SENDS);
    // (`Iterator::map` by hand: `StageExt::map` is in scope too.)
    let mut medians = Vec::with_capacity(times.len());
    for t in &mut times {
        medians.push(median(t));
    }
    let (struct_ns, floor_ns) = (medians[0], medians[4]);
    println!();
    println!("side by side, {ROUNDS} interleaved rounds of {SENDS} sends each, median:");
    println!();
    println!("| variant | ns/send | vs (e) plain loop | vs (a) struct |");
    println!("|---|---:|---:|---:|");
    for ((name, _), ns) in variants.iter().zip(&medians) {
        println!(
            "| {name} | {ns:.2} | {:.2}x | {:.2}x |",
            ns / floor_ns,
            ns / struct_ns
        );
    }
    println!();
}

// ---------------------------------------------------------------------------

fn bench_send(c: &mut Criterion) {
    let mut group = c.benchmark_group("send 1M lines: grep(python) -> sink (ms = ns per send)");

    let tally = Rc::new(Cell::new(0));
    let mut run = |name: &str, stage: &mut dyn FnMut()| {
        group.bench_function(name, |b| {
            b.iter(|| {
                let before = tally.get();
                stage();
                assert_eq!(tally.get() - before, SENDS);
            })
        });
    };

    let mut a = struct_grep(&tally);
    run("a struct, static dispatch", &mut || send_all(&mut a));

    let mut b = struct_grep(&tally).boxed();
    run("b struct, Box<dyn Stage>", &mut || send_all(&mut *b));

    let mut c = closure_grep(&tally);
    run("c closure, from_fn", &mut || send_all(&mut c));

    let mut d = coroutine_grep(&tally);
    run("d coroutine", &mut || send_all(&mut d));

    let floor = finder();
    let t = Rc::clone(&tally);
    run("e plain loop, memmem", &mut || {
        t.set(t.get() + plain_loop(&floor));
    });

    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_send
}

// ---------------------------------------------------------------------------
// Instruction counts: a figure the machine's load cannot move.

// One named function per variant, never inlined, so that
// `callgrind_annotate --inclusive=yes` shows each one's instructions
// (`benches/instructions.sh` runs this and divides by `SENDS`).

#[inline(never)]
fn instructions_a_struct(tally: &Rc<Cell<u64>>) {
    send_all(&mut struct_grep(tally));
}

#[inline(never)]
fn instructions_b_boxed(tally: &Rc<Cell<u64>>) {
    send_all(&mut *struct_grep(tally).boxed());
}

#[inline(never)]
fn instructions_c_closure(tally: &Rc<Cell<u64>>) {
    send_all(&mut closure_grep(tally));
}

#[inline(never)]
fn instructions_d_coroutine(tally: &Rc<Cell<u64>>) {
    send_all(&mut coroutine_grep(tally));
}

#[inline(never)]
fn instructions_e_plain_loop(tally: &Rc<Cell<u64>>) {
    tally.set(tally.get() + plain_loop(&finder()));
}

fn run_each_once() {
    let tally = Rc::new(Cell::new(0));
    instructions_a_struct(&tally);
    instructions_b_boxed(&tally);
    instructions_c_closure(&tally);
    instructions_d_coroutine(&tally);
    instructions_e_plain_loop(&tally);
    assert_eq!(tally.get(), 5 * SENDS);
}

fn main() {
    if std::env::args().any(|a| a == "--each-once") {
        run_each_once();
        return;
    }
    // Also run by `cargo test --all-targets` (without `--bench`), which
    // makes the allocation check part of the test suite.
    check_no_allocation_per_send();
    if std::env::args().any(|a| a == "--bench") {
        side_by_side();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
