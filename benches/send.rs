//! The seed's `benchmark.py`: the cost of one `send` into a stage.
//!
//! 1,000,000 sends of `"python is nice"` into `grep("python")` and on into
//! a sink, the same pipeline written six ways:
//!
//! - (a) a struct stage (the seed's `GrepHandler` object), static dispatch;
//! - (a'') the same filter written `pipe().filter(..).into(sink)`, the
//!   data-order builder (callgrind and criterion only);
//! - (b) the same struct behind `Box<dyn Stage>`;
//! - (c) a closure stage (`from_fn`);
//! - (d) a coroutine stage (the seed's `@coroutine grep`), forwarding
//!   `flush` to its target as a copipe stage does (`recv_flushing`);
//! - (d') the same coroutine with a plain `recv`, exactly the seed's
//!   `grep`, which forwards nothing;
//! - (e) a plain loop calling the same search, no stage at all: the floor.
//!
//! `cargo bench --bench send` first prints three side-by-side tables, the
//! six variants taking turns for 60 rounds (medians and ratios, robust to
//! the load of a shared machine), one per search:
//!
//! - `copipe::text::Literal`, what `text::Grep` uses for one literal
//!   pattern (a direct scan on a line this short, `memmem` on long ones);
//! - `memchr::memmem::Finder` alone, the floor the issue names;
//! - `str::contains`, for reference.
//!
//! When `python3` is on the PATH it then prints CPython's figures for the
//! seed's own `benchmark.py`, measured before and after the tables, beside
//! copipe's coroutine and struct stages. Then criterion measures the
//! `Literal` variants and both floors.
//!
//! One criterion iteration is 1,000,000 sends, so the time criterion prints
//! in milliseconds is the cost of one send in nanoseconds. The sink counts
//! what it receives (`Tally`, a `Null` that counts) so every iteration
//! asserts that all 1,000,000 lines got through. Before measuring, the
//! bench counts heap allocations over 1,000,000 sends of each variant and
//! fails if there is any.
//!
//! For figures the machine's load cannot move, `benches/instructions.sh`
//! counts instructions per send with callgrind (`--each-once` mode).

use copipe::Lifecycle;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use copipe::{coroutine, from_fn, pipe, Flow, Inbox, Result, Stage, StageExt};
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
}

impl Lifecycle for Tally {
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How a grep decides that a line matches. The main table uses `memmem`
/// (what a grep stage uses); the second uses `str::contains`, whose SIMD
/// path costs far fewer instructions on a 14-byte line, to show what the
/// stages themselves cost next to CPython once the search is cheap.
trait Matcher: Clone + 'static {
    const NAME: &'static str;
    fn new(pattern: &'static str) -> Self;
    fn is_match(&self, line: &str) -> bool;
}

/// copipe's own literal search, what `text::Grep` uses for one literal:
/// `memmem` on long haystacks, a direct scan on short ones like this line.
#[derive(Clone)]
struct Lit(copipe::text::Literal);

impl Matcher for Lit {
    const NAME: &'static str = "copipe::text::Literal";
    fn new(pattern: &'static str) -> Lit {
        Lit(copipe::text::Literal::new(pattern))
    }
    #[inline]
    fn is_match(&self, line: &str) -> bool {
        self.0.is_match(line.as_bytes())
    }
}

#[derive(Clone)]
struct Memmem(memmem::Finder<'static>);

impl Matcher for Memmem {
    const NAME: &'static str = "memchr::memmem::Finder";
    fn new(pattern: &'static str) -> Memmem {
        Memmem(memmem::Finder::new(pattern).into_owned())
    }
    #[inline]
    fn is_match(&self, line: &str) -> bool {
        self.0.find(line.as_bytes()).is_some()
    }
}

#[derive(Clone)]
struct Contains(&'static str);

impl Matcher for Contains {
    const NAME: &'static str = "str::contains";
    fn new(pattern: &'static str) -> Contains {
        Contains(pattern)
    }
    #[inline]
    fn is_match(&self, line: &str) -> bool {
        line.contains(self.0)
    }
}

/// (a), (b): the seed's `GrepHandler`.
struct Grep<M, S> {
    matcher: M,
    target: S,
}

impl<M: Matcher, S: Stage<&'static str>> Stage<&'static str> for Grep<M, S> {
    #[inline]
    fn send(&mut self, line: &'static str) -> Result<Flow> {
        if self.matcher.is_match(line) {
            self.target.send(line)
        } else {
            Ok(Flow::Continue)
        }
    }
}

impl<M: Matcher, S: Lifecycle> Lifecycle for Grep<M, S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

fn struct_grep<M: Matcher>(tally: &Rc<Cell<u64>>) -> Grep<M, Tally> {
    Grep {
        matcher: M::new("python"),
        target: Tally(Rc::clone(tally)),
    }
}

/// (c): the same as a closure.
fn closure_grep<M: Matcher>(tally: &Rc<Cell<u64>>) -> impl Stage<&'static str> {
    let matcher = M::new("python");
    let mut target = Tally(Rc::clone(tally));
    from_fn(move |line: &'static str| {
        if matcher.is_match(line) {
            target.send(line)
        } else {
            Ok(Flow::Continue)
        }
    })
}

/// (d): the seed's coroutine `grep`, as copipe users write it.
fn coroutine_grep<M: Matcher>(tally: &Rc<Cell<u64>>) -> impl Stage<&'static str> {
    let matcher = M::new("python");
    let mut target = Tally(Rc::clone(tally));
    coroutine(move |inbox: Inbox<&'static str>| async move {
        while let Some(line) = inbox.recv_flushing(|| Lifecycle::flush(&mut target)).await {
            if matcher.is_match(line) && target.send(line)?.is_stop() {
                break;
            }
        }
        Lifecycle::close(&mut target)
    })
}

/// (d'): the seed's `grep` exactly: a plain receive, no flush forwarding.
fn coroutine_grep_recv<M: Matcher>(tally: &Rc<Cell<u64>>) -> impl Stage<&'static str> {
    let matcher = M::new("python");
    let mut target = Tally(Rc::clone(tally));
    coroutine(move |inbox: Inbox<&'static str>| async move {
        while let Some(line) = inbox.recv().await {
            if matcher.is_match(line) && target.send(line)?.is_stop() {
                break;
            }
        }
        Lifecycle::close(&mut target)
    })
}

/// (a''): the struct stage's work written as `pipe().filter(..)`: the
/// data-order builder makes the same nested stage, so it costs the same.
fn pipe_grep<M: Matcher>(tally: &Rc<Cell<u64>>) -> impl Stage<&'static str> {
    let matcher = M::new("python");
    pipe()
        .filter(move |line: &&'static str| matcher.is_match(line))
        .into(Tally(Rc::clone(tally)))
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
fn plain_loop<M: Matcher>(matcher: &M) -> u64 {
    let mut n = 0;
    for _ in 0..SENDS {
        if matcher.is_match(black_box(LINE)) {
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
        (
            "a struct",
            allocations_per_run(&mut struct_grep::<Lit>(&tally)),
        ),
        (
            "b Box<dyn Stage>",
            allocations_per_run(&mut *struct_grep::<Lit>(&tally).boxed()),
        ),
        (
            "c closure",
            allocations_per_run(&mut closure_grep::<Lit>(&tally)),
        ),
        (
            "d coroutine",
            allocations_per_run(&mut coroutine_grep::<Lit>(&tally)),
        ),
        (
            "d' coroutine, plain recv",
            allocations_per_run(&mut coroutine_grep_recv::<Lit>(&tally)),
        ),
    ];
    assert_eq!(tally.get(), 5 * SENDS);
    for (name, allocations) in runs {
        println!("allocations in {SENDS} sends, {name}: {allocations}");
        assert_eq!(allocations, 0, "{name} allocates per send");
    }
}

// ---------------------------------------------------------------------------
// Side by side: the six variants in interleaved rounds.

/// CPU time this thread has used, in nanoseconds. On a shared machine a
/// thread is often descheduled mid-run; wall-clock time would count that,
/// CPU time does not.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through a pointer that
    // is valid and exclusive for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Times one run of `SENDS` sends: (CPU, wall) nanoseconds per send.
fn ns_per_send(run: &mut dyn FnMut()) -> (f64, f64) {
    let (cpu, wall) = (thread_cpu_ns(), Instant::now());
    run();
    let cpu = (thread_cpu_ns() - cpu) as f64 / SENDS as f64;
    (cpu, wall.elapsed().as_nanos() as f64 / SENDS as f64)
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
/// the absolute figures move, and timing the thread's CPU time leaves out
/// the time it spends descheduled. The wall-clock median is printed too.
fn side_by_side<M: Matcher>() -> Vec<f64> {
    const ROUNDS: usize = 60;
    let tally = Rc::new(Cell::new(0));
    let mut a = struct_grep::<M>(&tally);
    let mut b = struct_grep::<M>(&tally).boxed();
    let mut c = closure_grep::<M>(&tally);
    let mut d = coroutine_grep::<M>(&tally);
    let mut d2 = coroutine_grep_recv::<M>(&tally);
    let floor = M::new("python");
    let t = Rc::clone(&tally);
    let mut variants: [(&str, &mut dyn FnMut()); 6] = [
        ("(a) struct stage, static dispatch", &mut || {
            send_all(&mut a)
        }),
        ("(b) struct stage, Box<dyn Stage>", &mut || {
            send_all(&mut *b)
        }),
        ("(c) closure stage, from_fn", &mut || send_all(&mut c)),
        ("(d) coroutine stage", &mut || send_all(&mut d)),
        ("(d') coroutine stage, plain recv", &mut || {
            send_all(&mut d2)
        }),
        ("(e) plain loop, no stage", &mut || {
            t.set(t.get() + plain_loop(&floor))
        }),
    ];
    let mut times = vec![Vec::with_capacity(ROUNDS); variants.len()];
    let mut walls = vec![Vec::with_capacity(ROUNDS); variants.len()];
    for _ in 0..ROUNDS {
        for (i, (_, run)) in variants.iter_mut().enumerate() {
            let (cpu, wall) = ns_per_send(*run);
            times[i].push(cpu);
            walls[i].push(wall);
        }
    }
    assert_eq!(tally.get(), (ROUNDS * variants.len()) as u64 * SENDS);
    // (`Iterator::map` by hand: `StageExt::map` is in scope too.)
    let (mut medians, mut wall_medians) = (Vec::new(), Vec::new());
    for (t, w) in times.iter_mut().zip(&mut walls) {
        medians.push(median(t));
        wall_medians.push(median(w));
    }
    let (struct_ns, floor_ns) = (medians[0], medians[5]);
    println!();
    println!(
        "side by side, grep with {}: {ROUNDS} interleaved rounds of {SENDS} sends each, median:",
        M::NAME
    );
    println!();
    println!("| variant | ns/send (CPU) | vs (e) plain loop | vs (a) struct | ns/send (wall) |");
    println!("|---|---:|---:|---:|---:|");
    for (((name, _), ns), wall) in variants.iter().zip(&medians).zip(&wall_medians) {
        println!(
            "| {name} | {ns:.2} | {:.2}x | {:.2}x | {wall:.2} |",
            ns / floor_ns,
            ns / struct_ns
        );
    }
    println!();
    medians
}

/// CPython's figures for the seed's benchmark on this machine, now: the
/// median CPU ns per send of (coroutine, object), or `None` without
/// `python3`.
fn cpython() -> Option<(f64, f64)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/benchmark.py");
    let out = std::process::Command::new("python3")
        .args([script, "5"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let ns = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.split(": ").nth(1)?.split(' ').next()?.parse().ok()
    };
    Some((ns("coroutine")?, ns("object")?))
}

/// The seed's contest: copipe's coroutine and struct stages (with the
/// search `text::Grep` uses) against CPython's coroutine and object, with
/// CPython measured just before and just after the side-by-side tables.
fn against_cpython(before: Option<(f64, f64)>, after: Option<(f64, f64)>, ours: &[f64]) {
    let (Some(b), Some(a)) = (before, after) else {
        println!("(python3 not found: no CPython comparison)");
        return;
    };
    let (co, obj) = ((b.0 + a.0) / 2.0, (b.1 + a.1) / 2.0);
    println!("against CPython in the same run (benches/python/benchmark.py, CPU time; mean of a run before and after the tables):");
    println!();
    println!("| | CPython ns/send | copipe ns/send | copipe is faster by |");
    println!("|---|---:|---:|---:|");
    println!(
        "| coroutine: `@coroutine grep` vs (d) | {co:.1} ({:.1}, {:.1}) | {:.2} | {:.1}x |",
        b.0,
        a.0,
        ours[3],
        co / ours[3]
    );
    println!(
        "| object: `GrepHandler` vs (a) | {obj:.1} ({:.1}, {:.1}) | {:.2} | {:.1}x |",
        b.1,
        a.1,
        ours[0],
        obj / ours[0]
    );
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

    let mut a = struct_grep::<Lit>(&tally);
    run("a struct, static dispatch", &mut || send_all(&mut a));

    let mut a2 = pipe_grep::<Lit>(&tally);
    run("a'' pipe().filter(..), static dispatch", &mut || {
        send_all(&mut a2)
    });

    let mut b = struct_grep::<Lit>(&tally).boxed();
    run("b struct, Box<dyn Stage>", &mut || send_all(&mut *b));

    let mut c = closure_grep::<Lit>(&tally);
    run("c closure, from_fn", &mut || send_all(&mut c));

    let mut d = coroutine_grep::<Lit>(&tally);
    run("d coroutine", &mut || send_all(&mut d));

    let floor = Memmem::new("python");
    let t = Rc::clone(&tally);
    run("e plain loop, memmem", &mut || {
        t.set(t.get() + plain_loop(&floor));
    });

    let floor = Lit::new("python");
    let t = Rc::clone(&tally);
    run("e' plain loop, Literal", &mut || {
        t.set(t.get() + plain_loop(&floor));
    });

    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
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

macro_rules! instruction_counters {
    ($($name:ident => $run:expr;)*) => {
        $(
            #[inline(never)]
            fn $name(tally: &Rc<Cell<u64>>) {
                #[allow(clippy::redundant_closure_call)]
                ($run)(tally);
            }
        )*
        fn run_each_once() {
            let tally = Rc::new(Cell::new(0));
            let mut runs = 0;
            $(
                $name(&tally);
                runs += 1;
            )*
            assert_eq!(tally.get(), runs * SENDS);
        }
    };
}

instruction_counters! {
    instructions_literal_a_struct => |t| send_all(&mut struct_grep::<Lit>(t));
    instructions_literal_a_pipe_filter => |t| send_all(&mut pipe_grep::<Lit>(t));
    instructions_literal_b_boxed => |t| send_all(&mut *struct_grep::<Lit>(t).boxed());
    instructions_literal_c_closure => |t| send_all(&mut closure_grep::<Lit>(t));
    instructions_literal_d_coroutine => |t| send_all(&mut coroutine_grep::<Lit>(t));
    instructions_literal_d_coroutine_recv =>
        |t| send_all(&mut coroutine_grep_recv::<Lit>(t));
    instructions_literal_e_plain_loop =>
        |t: &Rc<Cell<u64>>| t.set(t.get() + plain_loop(&Lit::new("python")));
    instructions_memmem_a_struct => |t| send_all(&mut struct_grep::<Memmem>(t));
    instructions_memmem_a_pipe_filter => |t| send_all(&mut pipe_grep::<Memmem>(t));
    instructions_memmem_b_boxed => |t| send_all(&mut *struct_grep::<Memmem>(t).boxed());
    instructions_memmem_c_closure => |t| send_all(&mut closure_grep::<Memmem>(t));
    instructions_memmem_d_coroutine => |t| send_all(&mut coroutine_grep::<Memmem>(t));
    instructions_memmem_d_coroutine_recv =>
        |t| send_all(&mut coroutine_grep_recv::<Memmem>(t));
    instructions_memmem_e_plain_loop =>
        |t: &Rc<Cell<u64>>| t.set(t.get() + plain_loop(&Memmem::new("python")));
    instructions_contains_a_struct => |t| send_all(&mut struct_grep::<Contains>(t));
    instructions_contains_b_boxed =>
        |t| send_all(&mut *struct_grep::<Contains>(t).boxed());
    instructions_contains_c_closure => |t| send_all(&mut closure_grep::<Contains>(t));
    instructions_contains_d_coroutine =>
        |t| send_all(&mut coroutine_grep::<Contains>(t));
    instructions_contains_e_plain_loop =>
        |t: &Rc<Cell<u64>>| t.set(t.get() + plain_loop(&Contains::new("python")));
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
        let before = cpython();
        let ours = side_by_side::<Lit>();
        side_by_side::<Memmem>();
        side_by_side::<Contains>();
        against_cpython(before, cpython(), &ours);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
