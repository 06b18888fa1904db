//! Coroutine stages through the public API: `coroutine(|inbox| async move { .. })`.
//!
//! The seed's `buses_to_dicts` as nested loops is tested where it is
//! written, in `examples/coroutines.rs` (which `cargo test` runs).

use copipe::Lifecycle;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use copipe::sinks::Count;
use copipe::{
    broadcast, coroutine, Error, ErrorKind, Flow, Inbox, Result, Shared, Stage, StageExt,
};
use memchr::memmem;
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Helpers

/// Logs every call as a line of text (the crate's `Recorder` is private to
/// its unit tests).
#[derive(Debug, Default)]
struct Log(Rc<RefCell<String>>);

impl Log {
    fn text(&self) -> String {
        self.0.borrow().clone()
    }
}

impl Clone for Log {
    fn clone(&self) -> Log {
        Log(Rc::clone(&self.0))
    }
}

impl Stage<String> for Log {
    fn send(&mut self, item: String) -> Result<Flow> {
        self.0.borrow_mut().push_str(&format!("send {item}\n"));
        Ok(Flow::Continue)
    }
}

impl Lifecycle for Log {
    fn flush(&mut self) -> Result<()> {
        self.0.borrow_mut().push_str("flush\n");
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        self.0.borrow_mut().push_str("close\n");
        Ok(())
    }
}

/// The seed's grep as a coroutine: forwards flush, stops when its target
/// stops, closes its target after the loop.
fn co_grep<S: Stage<String>>(pattern: &str, mut target: S) -> impl Stage<String> {
    let finder = memmem::Finder::new(pattern).into_owned();
    coroutine(move |inbox: Inbox<String>| async move {
        while let Some(line) = inbox.recv_flushing(|| target.flush()).await {
            if finder.find(line.as_bytes()).is_some() && target.send(line)?.is_stop() {
                break;
            }
        }
        target.close()
    })
}

/// The seed's `GrepHandler`: the same stage written as a struct.
struct Grep<S> {
    finder: memmem::Finder<'static>,
    target: S,
}

impl<S: Stage<String>> Stage<String> for Grep<S> {
    fn send(&mut self, line: String) -> Result<Flow> {
        if self.finder.find(line.as_bytes()).is_some() {
            self.target.send(line)
        } else {
            Ok(Flow::Continue)
        }
    }
}

impl<S: Lifecycle> Lifecycle for Grep<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

/// Runs `f`, which must panic, and returns the panic's message.
fn panic_message_of(f: impl FnOnce()) -> String {
    let payload = panic::catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string payload".to_string()
    }
}

fn coroutine_message(err: &Error) -> &str {
    match err.kind() {
        ErrorKind::Coroutine(m) => m,
        other => panic!("expected a coroutine error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Starting, receiving, closing

#[test]
fn setup_code_runs_on_creation_like_the_seeds_decorator() {
    let started = Rc::new(Cell::new(false));
    let flag = Rc::clone(&started);
    let co = coroutine(move |inbox: Inbox<u8>| async move {
        flag.set(true); // print("Looking for python")
        while inbox.recv().await.is_some() {}
        Ok(())
    });
    assert!(started.get());
    assert!(!co.is_finished());
}

#[test]
fn close_runs_cleanup_exactly_once() {
    let cleanups = Rc::new(Cell::new(0));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (c, s) = (Rc::clone(&cleanups), Rc::clone(&seen));
    let mut co = coroutine(move |inbox: Inbox<u32>| async move {
        while let Some(n) = inbox.recv().await {
            s.borrow_mut().push(n);
        }
        c.set(c.get() + 1); // except GeneratorExit:
        Ok(())
    });
    assert_eq!(co.send(1).unwrap(), Flow::Continue);
    assert_eq!(co.send(2).unwrap(), Flow::Continue);
    assert_eq!(cleanups.get(), 0, "cleanup must wait for close");
    co.close().unwrap();
    assert_eq!(cleanups.get(), 1);
    co.close().unwrap();
    co.flush().unwrap();
    assert_eq!(
        co.send(3).unwrap(),
        Flow::Stop,
        "a closed coroutine takes no more"
    );
    co.close().unwrap();
    assert_eq!(cleanups.get(), 1, "cleanup ran again");
    assert_eq!(*seen.borrow(), [1, 2]);
    assert!(co.is_finished());
}

#[test]
fn recv_returns_none_every_time_after_close_so_nested_loops_all_end() {
    let log = Log::default();
    let out = log.clone();
    let mut co = coroutine(move |inbox: Inbox<&'static str>| async move {
        let mut out = out;
        // Outer loop: wait for "start"; inner loop: collect until "end".
        while let Some(ev) = inbox.recv().await {
            if ev != "start" {
                continue;
            }
            let mut n = 0;
            while let Some(ev) = inbox.recv().await {
                if ev == "end" {
                    break;
                }
                n += 1;
            }
            let _ = out.send(format!("group of {n}"))?;
        }
        out.close()
    });
    for ev in ["x", "start", "a", "b", "end", "start", "c"] {
        assert_eq!(co.send(ev).unwrap(), Flow::Continue);
    }
    co.close().unwrap();
    // The unfinished group is reported when the inner loop sees `None`.
    assert_eq!(log.text(), "send group of 2\nsend group of 1\nclose\n");
}

#[test]
fn dropping_without_close_drops_locals_but_skips_cleanup() {
    struct Guard(Rc<Cell<bool>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let cleaned = Rc::new(Cell::new(false));
    let (d, c) = (Rc::clone(&dropped), Rc::clone(&cleaned));
    let mut co = coroutine(move |inbox: Inbox<u8>| async move {
        let _guard = Guard(d);
        while inbox.recv().await.is_some() {}
        c.set(true);
        Ok(())
    });
    assert_eq!(co.send(1).unwrap(), Flow::Continue);
    drop(co);
    assert!(dropped.get());
    assert!(!cleaned.get());
}

// ---------------------------------------------------------------------------
// Returning early, errors, panics, misuse

#[test]
fn early_return_turns_that_send_and_later_ones_into_stop() {
    let mut co = coroutine(|inbox: Inbox<u32>| async move {
        let mut total = 0;
        while let Some(n) = inbox.recv().await {
            total += n;
            if total >= 3 {
                return Ok(()); // had enough
            }
        }
        unreachable!("closed before enough items");
    });
    assert_eq!(co.send(1).unwrap(), Flow::Continue);
    assert_eq!(co.send(2).unwrap(), Flow::Stop);
    assert!(co.is_finished());
    assert_eq!(co.send(3).unwrap(), Flow::Stop);
    co.flush().unwrap();
    co.close().unwrap();
}

#[test]
fn a_targets_stop_propagates_out_and_the_target_is_closed_once() {
    let log = Log::default();
    let mut g = co_grep("python", log.clone().with_take(2));
    assert_eq!(g.send("python 1".into()).unwrap(), Flow::Continue);
    assert_eq!(g.send("ply".into()).unwrap(), Flow::Continue);
    assert_eq!(g.send("python 2".into()).unwrap(), Flow::Stop);
    assert_eq!(g.send("python 3".into()).unwrap(), Flow::Stop);
    g.close().unwrap(); // upstream closes after Stop: nothing more happens
    assert_eq!(log.text(), "send python 1\nsend python 2\nclose\n");
}

#[test]
fn an_error_comes_out_of_the_send_that_caused_it() {
    let log = Log::default();
    let out = log.clone();
    let mut co = coroutine(move |inbox: Inbox<i32>| async move {
        let mut out = out;
        while let Some(n) = inbox.recv().await {
            if n < 0 {
                return Err(Error::usage(format!("negative item {n}")));
            }
            let _ = out.send(n.to_string())?;
        }
        out.close()
    });
    assert_eq!(co.send(1).unwrap(), Flow::Continue);
    let err = co.send(-2).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Usage(_)));
    assert_eq!(err.to_string(), "negative item -2");
    // The error has been reported; the coroutine has ended.
    assert!(co.is_finished());
    assert_eq!(co.send(3).unwrap(), Flow::Stop);
    co.close().unwrap();
    assert_eq!(log.text(), "send 1\n", "no cleanup after an error");
}

#[test]
fn a_targets_error_travels_out_through_question_mark() {
    let failing = copipe::from_fn(|line: String| {
        Err(Error::from(std::io::Error::other(format!(
            "disk full at {line}"
        ))))
    });
    let mut g = co_grep("python", failing);
    assert_eq!(g.send("ply".into()).unwrap(), Flow::Continue);
    let err = g.send("python".into()).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io(_)));
    assert_eq!(err.to_string(), "disk full at python");
}

#[test]
fn an_error_while_closing_comes_out_of_close() {
    let mut co = coroutine(|inbox: Inbox<u8>| async move {
        let mut n = 0;
        while inbox.recv().await.is_some() {
            n += 1;
        }
        if n < 2 {
            return Err(Error::usage(format!("truncated: {n} of 2 items")));
        }
        Ok(())
    });
    assert_eq!(co.send(1).unwrap(), Flow::Continue);
    assert_eq!(
        co.close().unwrap_err().to_string(),
        "truncated: 1 of 2 items"
    );
    co.close().unwrap();
}

#[test]
fn an_error_before_the_first_receive_comes_out_of_the_first_call() {
    let mut co = coroutine(|inbox: Inbox<String>| async move {
        // A pattern from the command line, say: not known to be valid.
        let pattern = String::from("(unclosed");
        let re = regex::Regex::new(&pattern).map_err(|e| Error::usage(e.to_string()))?;
        while let Some(line) = inbox.recv().await {
            let _ = re.is_match(&line);
        }
        Ok(())
    });
    assert!(co.is_finished());
    let err = co.close().unwrap_err();
    assert!(err.to_string().contains("unclosed group"), "{err}");
    assert_eq!(co.send("x".into()).unwrap(), Flow::Stop);
}

#[test]
fn a_panic_propagates_to_the_caller_of_send_and_poisons_the_stage() {
    struct Guard(Rc<Cell<bool>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let cleaned = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    let (c, d) = (Rc::clone(&cleaned), Rc::clone(&dropped));
    let mut co = coroutine(move |inbox: Inbox<u32>| async move {
        let _guard = Guard(d);
        while let Some(n) = inbox.recv().await {
            assert!(n != 13, "unlucky item {n}");
        }
        c.set(true);
        Ok(())
    });
    assert_eq!(co.send(12).unwrap(), Flow::Continue);
    let message = panic_message_of(|| {
        let _ = co.send(13);
    });
    assert_eq!(message, "unlucky item 13");
    assert!(
        dropped.get(),
        "the block's locals are dropped by the unwinding"
    );
    assert!(co.is_poisoned());
    assert!(co.is_finished());
    for err in [
        co.send(14).unwrap_err(),
        co.flush().unwrap_err(),
        co.close().unwrap_err(),
    ] {
        let m = coroutine_message(&err);
        assert!(m.contains("poisoned") && m.contains("panicked"), "{m}");
    }
    assert!(!cleaned.get(), "a poisoned coroutine is not resumed");
}

#[test]
fn a_panic_while_closing_propagates_out_of_close() {
    let mut co = coroutine(|inbox: Inbox<u32>| async move {
        while inbox.recv().await.is_some() {}
        panic!("cleanup failed");
    });
    assert_eq!(
        panic_message_of(|| {
            let _ = co.close();
        }),
        "cleanup failed"
    );
    assert!(co.is_poisoned());
    assert!(co.close().is_err());
}

#[test]
fn awaiting_a_future_that_is_not_ready_is_an_error_not_a_hang() {
    let mut co = coroutine(|inbox: Inbox<u32>| async move {
        while let Some(n) = inbox.recv().await {
            if n == 2 {
                // Something only a runtime could wake: a timer, a socket.
                std::future::pending::<()>().await;
            }
        }
        Ok(())
    });
    assert_eq!(co.send(1).unwrap(), Flow::Continue);
    let err = co.send(2).unwrap_err();
    let m = coroutine_message(&err);
    assert!(m.contains("not ready") && m.contains("inbox.recv()"), "{m}");
    assert!(co.is_finished());
    assert!(!co.is_poisoned());
    // Every later call says the same, rather than pretending to work.
    assert_eq!(coroutine_message(&co.send(3).unwrap_err()), m);
    assert_eq!(coroutine_message(&co.close().unwrap_err()), m);
}

#[test]
fn awaiting_a_pending_future_before_the_first_receive_is_reported_by_the_first_call() {
    let mut co = coroutine(|inbox: Inbox<u32>| async move {
        std::future::pending::<()>().await;
        while inbox.recv().await.is_some() {}
        Ok(())
    });
    let err = co.send(1).unwrap_err();
    assert!(coroutine_message(&err).contains("not ready"));
}

#[test]
fn awaiting_futures_that_are_ready_is_fine() {
    async fn double(n: u32) -> u32 {
        std::future::ready(n * 2).await
    }
    let out = Rc::new(RefCell::new(Vec::new()));
    let o = Rc::clone(&out);
    let mut co = coroutine(move |inbox: Inbox<u32>| async move {
        while let Some(n) = inbox.recv().await {
            // An `async fn` awaited inside is the seed's sub-coroutine.
            let d = double(n).await;
            o.borrow_mut().push(d);
        }
        Ok(())
    });
    assert_eq!(co.send(1).unwrap(), Flow::Continue);
    assert_eq!(co.send(5).unwrap(), Flow::Continue);
    co.close().unwrap();
    assert_eq!(*out.borrow(), [2, 10]);
}

#[test]
fn an_async_fn_that_receives_is_a_sub_coroutine() {
    // The seed's `yield from`: a helper that receives from the same inbox.
    async fn read_pair(inbox: &Inbox<u32>) -> Option<(u32, u32)> {
        let a = inbox.recv().await?;
        let b = inbox.recv().await?;
        Some((a, b))
    }
    let out = Rc::new(RefCell::new(Vec::new()));
    let o = Rc::clone(&out);
    let mut co = coroutine(move |inbox: Inbox<u32>| async move {
        while let Some((a, b)) = read_pair(&inbox).await {
            o.borrow_mut().push(a * b);
        }
        Ok(())
    });
    for n in [2, 3, 4, 5, 6] {
        assert_eq!(co.send(n).unwrap(), Flow::Continue);
    }
    co.close().unwrap(); // the unpaired 6 is dropped
    assert_eq!(*out.borrow(), [6, 20]);
}

// ---------------------------------------------------------------------------
// Flush

#[test]
fn flush_is_forwarded_while_waiting_in_recv_flushing() {
    let log = Log::default();
    let mut g = co_grep("py", log.clone());
    assert_eq!(g.send("py 1".into()).unwrap(), Flow::Continue);
    g.flush().unwrap();
    g.flush().unwrap();
    assert_eq!(g.send("py 2".into()).unwrap(), Flow::Continue);
    g.close().unwrap();
    assert_eq!(log.text(), "send py 1\nflush\nflush\nsend py 2\nclose\n");
}

#[test]
fn flush_does_nothing_while_waiting_in_plain_recv() {
    let log = Log::default();
    let out = log.clone();
    let mut co = coroutine(move |inbox: Inbox<u8>| async move {
        let mut out = out;
        while let Some(n) = inbox.recv().await {
            let _ = out.send(n.to_string())?;
        }
        out.close()
    });
    co.flush().unwrap();
    assert_eq!(co.send(1).unwrap(), Flow::Continue);
    co.flush().unwrap();
    co.close().unwrap();
    assert_eq!(log.text(), "send 1\nclose\n");
}

#[test]
fn a_flush_error_comes_out_of_flush() {
    struct FailingFlush;
    impl Stage<String> for FailingFlush {
        fn send(&mut self, _: String) -> Result<Flow> {
            Ok(Flow::Continue)
        }
    }

    impl Lifecycle for FailingFlush {
        fn flush(&mut self) -> Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into())
        }
        fn close(&mut self) -> Result<()> {
            Ok(())
        }
    }

    let mut g = co_grep("py", FailingFlush);
    let err = g.flush().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Io(e) if e.kind() == std::io::ErrorKind::WriteZero));
}

// ---------------------------------------------------------------------------
// In graphs

#[test]
fn a_coroutine_works_boxed_and_in_a_broadcast() {
    let (py, ply) = (Log::default(), Log::default());
    let targets: Vec<Box<dyn Stage<String>>> = vec![
        co_grep("python", py.clone()).boxed(),
        co_grep("ply", ply.clone()).boxed(),
    ];
    let mut b = broadcast(targets);
    for line in ["python", "ply", "swig"] {
        assert_eq!(b.send(line.to_string()).unwrap(), Flow::Continue);
    }
    b.close().unwrap();
    assert_eq!(py.text(), "send python\nclose\n");
    assert_eq!(ply.text(), "send ply\nclose\n");
}

#[test]
fn a_coroutine_behind_owned_takes_lines_borrowed_from_a_source_buffer() {
    // A source that lends each line out of one reused buffer, as a line
    // reader does: its target must take `&str` of any lifetime.
    fn source<S: for<'a> Stage<&'a str>>(text: &str, mut target: S) -> Result<()> {
        let mut buf = String::new();
        for line in text.lines() {
            buf.clear();
            buf.push_str(line);
            if target.send(&buf)?.is_stop() {
                break;
            }
        }
        target.close()
    }
    let log = Log::default();
    source(
        "python 1\nply\npython 2\n",
        co_grep("python", log.clone()).with_owned(),
    )
    .unwrap();
    assert_eq!(log.text(), "send python 1\nsend python 2\nclose\n");
}

#[test]
fn a_cycle_through_shared_is_a_reentrant_error_not_a_crash() {
    // The coroutine sends every item back into itself: the seed's
    // "generator already executing" ValueError.
    type Back = Rc<RefCell<Option<Shared<Box<dyn Stage<u32>>>>>>;
    let back: Back = Rc::new(RefCell::new(None));
    let b = Rc::clone(&back);
    let co = coroutine(move |inbox: Inbox<u32>| async move {
        while let Some(n) = inbox.recv().await {
            let mut handle = b.borrow().clone().expect("wired below");
            let _ = handle.send(n + 1)?;
        }
        Ok(())
    });
    let mut shared = Shared::new(co.boxed());
    *back.borrow_mut() = Some(shared.clone());
    let err = shared.send(1).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Reentrant), "{err}");
    *back.borrow_mut() = None; // break the Rc cycle
}

// ---------------------------------------------------------------------------
// Allocation

#[path = "common/alloc.rs"]
mod alloc;
use alloc::allocations;

#[global_allocator]
static GLOBAL: alloc::CountingAlloc = alloc::CountingAlloc;

#[test]
fn sends_and_flushes_do_not_allocate() {
    let mut count = Count::new();
    let finder = memmem::Finder::new("python").into_owned();
    let target = &mut count;
    let before_creation = allocations();
    let mut g = coroutine(|inbox: Inbox<&'static str>| async move {
        while let Some(line) = inbox.recv_flushing(|| Lifecycle::flush(&mut *target)).await {
            if finder.find(line.as_bytes()).is_some() && target.send(line)?.is_stop() {
                break;
            }
        }
        Lifecycle::close(target)
    });
    let per_coroutine = allocations() - before_creation;
    assert!(
        per_coroutine <= 2,
        "{per_coroutine} allocations to make a coroutine"
    );

    let before = allocations();
    for i in 0..10_000 {
        let line = if i % 2 == 0 {
            "python is nice"
        } else {
            "ply too"
        };
        assert_eq!(g.send(std::hint::black_box(line)).unwrap(), Flow::Continue);
        if i % 100 == 0 {
            g.flush().unwrap();
        }
    }
    assert_eq!(allocations() - before, 0, "allocations while sending");
    g.close().unwrap();
    drop(g);
    assert_eq!(count.count(), 5_000);
}

#[test]
fn the_counting_allocator_counts() {
    // Guards the test above against a counter that never moves.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 100]);
    assert!(allocations() > before);
    drop(v);
}

// ---------------------------------------------------------------------------
// Properties

/// One step a source can take: send a line, or flush.
#[derive(Debug, Clone)]
enum Step {
    Line(String),
    Flush,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            8 => "[pyhton ]{0,12}".prop_map(Step::Line),
            1 => Just(Step::Flush),
        ],
        0..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Fed the same steps, the coroutine grep and the struct grep answer
    /// every call alike and leave the same calls on their targets, with or
    /// without a `take` that stops them early.
    #[test]
    fn coroutine_grep_equals_struct_grep(
        pattern in "[pyh]{1,3}",
        steps in steps(),
        take in prop::option::of(0usize..6),
    ) {
        let (co_log, st_log) = (Log::default(), Log::default());
        let limit = take.unwrap_or(usize::MAX);
        let mut co = co_grep(&pattern, co_log.clone().with_take(limit));
        let mut st = Grep {
            finder: memmem::Finder::new(&pattern).into_owned(),
            target: st_log.clone().with_take(limit),
        };
        for step in steps {
            match step {
                Step::Line(line) => {
                    let a = co.send(line.clone()).map_err(|e| e.to_string());
                    let b = st.send(line).map_err(|e| e.to_string());
                    prop_assert_eq!(&a, &b);
                    if b == Ok(Flow::Stop) {
                        // As upstream must: stop sending, close once. The
                        // struct forwards `close` to its target; the
                        // coroutine has closed its target already.
                        co.close().unwrap();
                        st.close().unwrap();
                        break;
                    }
                }
                Step::Flush => {
                    co.flush().unwrap();
                    st.flush().unwrap();
                }
            }
        }
        co.close().unwrap();
        if !st_log.text().ends_with("close\n") {
            st.close().unwrap();
        }
        prop_assert_eq!(co_log.text(), st_log.text());
    }
}

/// Issue 15: `throw` raises an error at the coroutine's receive; one that
/// waits in `recv_catching` handles it and goes on (the tutorial's
/// `g.throw(RuntimeError, "You're hosed!")` caught inside the generator).
#[test]
fn a_thrown_error_can_be_caught_and_the_coroutine_goes_on() {
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let s = Rc::clone(&seen);
    let mut g = coroutine(move |inbox: Inbox<String>| async move {
        loop {
            match inbox.recv_catching().await {
                Ok(Some(line)) => s.borrow_mut().push(line),
                Ok(None) => break,
                Err(e) => s.borrow_mut().push(format!("caught: {e}")),
            }
        }
        s.borrow_mut().push("closed".into());
        Ok(())
    });
    assert_eq!(g.send("a".into()).unwrap(), Flow::Continue);
    assert_eq!(
        g.throw(Error::usage("You're hosed!")).unwrap(),
        Flow::Continue
    );
    assert_eq!(g.send("b".into()).unwrap(), Flow::Continue);
    g.close().unwrap();
    assert_eq!(
        *seen.borrow(),
        ["a", "caught: You're hosed!", "b", "closed"]
    );
}

/// Issue 15: an error thrown into a coroutine that does not catch it (it
/// waits in plain `recv`, or returns the error with `?`) ends the stage
/// with that error; later sends answer `Stop`.
#[test]
fn an_uncaught_thrown_error_ends_the_stage_with_it() {
    let mut plain = coroutine(|inbox: Inbox<u32>| async move {
        while inbox.recv().await.is_some() {}
        Ok(())
    });
    let err = plain.throw(Error::usage("You're hosed!")).unwrap_err();
    assert_eq!(err.to_string(), "You're hosed!");
    assert!(plain.is_finished());
    assert_eq!(plain.send(1).unwrap(), Flow::Stop);

    let mut passing = coroutine(|inbox: Inbox<u32>| async move {
        while inbox.recv_catching().await?.is_some() {}
        Ok(())
    });
    let err = passing.throw(Error::usage("You're hosed!")).unwrap_err();
    assert_eq!(err.to_string(), "You're hosed!");
    assert!(passing.is_finished());
    // Thrown into a stage that has ended: the error comes straight back.
    assert!(passing.throw(Error::usage("again")).is_err());
}
