//! The public API of the core (stages, combinators, graphs, sinks) and of
//! the text module, used as a library user would. Property:
//! `grep_equals_iterator_filter`.

use copipe::sinks::{Collect, Count, Null, Printer};
use copipe::text::{line_fn, Block, Grep, Lines, SplitLines, Start};
use copipe::Lifecycle;
use copipe::{broadcast, from_fn, pipe, ErrorKind, Flow, Shared, Stage, StageExt};
use proptest::prelude::*;

#[test]
fn seed_copipe_pipeline_over_lines() {
    let log = b"GET /python/ 200\nGET /ply/ 200\nGET /python/x 404\nGET /swig/";
    let mut out = Vec::new();
    Lines::new(&log[..])
        .run(Grep::new("python", Printer::new(&mut out)).unwrap())
        .unwrap();
    assert_eq!(out, b"GET /python/ 200\nGET /python/x 404\n");
}

#[test]
fn per_line_stages_behind_a_block_source() {
    // A per-line closure stage (it counts bytes) fed by the block source.
    let mut bytes = 0usize;
    Lines::new(&b"ab\ncd\ne"[..])
        .run(line_fn(|line: &[u8]| {
            bytes += line.len();
            Ok(Flow::Continue)
        }))
        .unwrap();
    assert_eq!(bytes, 7);
}

#[test]
fn take_stops_the_source_early() {
    let input = "x\n".repeat(1_000_000);
    let mut n = Count::new();
    Lines::new(input.as_bytes())
        .run((&mut n).with_take(3))
        .unwrap();
    assert_eq!(n.count(), 3);
}

#[test]
fn skip_lines_and_open_errors_name_the_file() {
    let mut out = Collect::new();
    Lines::new(&b"1\n2\n3\n"[..])
        .skip_lines(Start::From(3).to_string().len() as u64) // "+3" -> skip 2
        .run((&mut out).with_owned())
        .unwrap();
    assert_eq!(out.items(), &[b"3\n".to_vec()]);
    let err = Lines::open("/no/such/access-log").unwrap_err();
    assert!(
        err.to_string().starts_with("/no/such/access-log: "),
        "{err}"
    );
}

#[test]
fn max_line_len_is_an_error_after_earlier_lines_are_out() {
    let mut input = b"short\n".to_vec();
    input.extend(std::iter::repeat_n(b'y', 5000));
    input.push(b'\n');
    let mut out = Collect::new();
    let err = Lines::new(&input[..])
        .max_line_len(1024)
        .with_path("big.log")
        .run((&mut out).with_owned())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "big.log: line at byte offset 6 is longer than 1024 bytes (the maximum line length)"
    );
    assert_eq!(out.items(), &[b"short\n".to_vec()]);
    assert!(out.is_closed());
}

#[test]
fn broadcast_of_greps_like_cobroadcast() {
    let (mut py, mut ply) = (Collect::new(), Collect::new());
    {
        let b = broadcast((
            Grep::new("python", (&mut py).with_owned()).unwrap(),
            Grep::new("ply", (&mut ply).with_owned()).unwrap(),
        ));
        Lines::new(&b"python\nply\nswig\npython ply\n"[..])
            .run_blocks(b)
            .unwrap();
    }
    assert_eq!(py.items().len(), 2);
    assert_eq!(ply.items().len(), 2);
}

#[test]
fn shared_fan_in_and_reentrant_cycle() {
    let out = Shared::new(Collect::<String>::new());
    let mut a = out.clone().with_map(|s: &str| format!("a:{s}"));
    let mut b = out.clone().with_map(|s: &str| format!("b:{s}"));
    assert_eq!(a.send("1").unwrap(), Flow::Continue);
    assert_eq!(b.send("2").unwrap(), Flow::Continue);
    a.close().unwrap();
    b.close().unwrap();
    assert_eq!(out.with(|c| c.items().to_vec()), ["a:1", "b:2"]);

    // A stage that sends back into its own Shared handle: a cycle.
    type Cycle = Shared<Box<dyn Stage<u32>>>;
    let slot: std::rc::Rc<std::cell::RefCell<Option<Cycle>>> = Default::default();
    let inner = std::rc::Rc::clone(&slot);
    let stage: Box<dyn Stage<u32>> = Box::new(from_fn(move |x: u32| {
        let mut again = inner.borrow().clone().expect("set below");
        again.send(x + 1)
    }));
    let shared = Shared::new(stage);
    *slot.borrow_mut() = Some(shared.clone());
    let err = shared.clone().send(1).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Reentrant));
    slot.borrow_mut().take();
}

#[test]
fn printer_prints_blocks_as_they_are() {
    let mut out = Vec::new();
    let mut p = Printer::new(&mut out);
    assert_eq!(p.send(Block::new(b"a\nb", 0)).unwrap(), Flow::Continue);
    p.close().unwrap();
    drop(p);
    assert_eq!(out, b"a\nb\n");
}

#[test]
fn split_lines_and_null() {
    let mut s = SplitLines::new(Null);
    assert_eq!(s.send(Block::new(b"x\ny\n", 0)).unwrap(), Flow::Continue);
    s.close().unwrap();
}

fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
    // Short lines over a small alphabet (so patterns hit often), with
    // invalid UTF-8 and carriage returns; no '\n' inside a line.
    prop::collection::vec(
        prop::sample::select(vec![b'a', b'b', b'c', b'A', b' ', b'.', b'\r', 0xe9, 0xff]),
        0..12,
    )
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "ab", "b c", "", "^a", "c$", "a.c", r"[^a]b", r"a\s*b", r"\.", "A+", "(a|bc)+$",
        r"\bab", r"\Aa", r"c\z", "[ab]{2}",
    ])
    .prop_map(str::to_string)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Grep over any lines, sent as one block or line by line, passes
    /// exactly the lines an iterator filter with the same regex keeps.
    #[test]
    fn grep_equals_iterator_filter(
        lines in prop::collection::vec(line_strategy(), 0..20),
        last_newline in any::<bool>(),
        patterns in prop::collection::vec(pattern_strategy(), 0..3),
        ignore_case in any::<bool>(),
        invert in any::<bool>(),
    ) {
        let mut input = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            input.extend_from_slice(l);
            if i + 1 < lines.len() || last_newline {
                input.push(b'\n');
            }
        }
        // `StageExt` is in scope: name the iterator's `map` and `filter`.
        let regexes: Vec<regex::bytes::Regex> = patterns.iter().map(|p| {
                regex::bytes::RegexBuilder::new(p)
                    .unicode(false)
                    .case_insensitive(ignore_case)
                    .build()
                    .unwrap()
            })
        .collect();
        let kept = Block::new(&input, 0).lines().filter(|l| {
                let content = l.strip_suffix(b"\n").unwrap_or(l);
                let hit = regexes.is_empty() || regexes.iter().any(|r| r.is_match(content));
                hit != invert
            });
        let expected: Vec<Vec<u8>> = kept.map(<[u8]>::to_vec).collect();
        let grep = || {
            Grep::builder()
                .patterns(patterns.iter().cloned())
                .ignore_case(ignore_case)
                .invert(invert)
        };
        let mut by_block = Collect::new();
        Lines::new(&input[..]).run_blocks(grep().build((&mut by_block).with_owned()).unwrap()).unwrap();
        prop_assert_eq!(by_block.items(), &expected[..]);
        let mut by_line = Collect::new();
        Lines::new(&input[..]).run(grep().build((&mut by_line).with_owned()).unwrap()).unwrap();
        prop_assert_eq!(by_line.items(), &expected[..]);
    }
}

/// Issue 16 item 1: a pipe runs in the order it reads, as the iterator
/// chain does (`[1, 3, 5]` was the old sink-side reading's answer).
#[test]
fn pipe_reads_as_the_iterator_chain() {
    let mut out = Collect::new();
    let mut p = pipe()
        .map(|x: u32| x + 1)
        .filter(|x: &u32| x.is_multiple_of(2))
        .into(&mut out);
    for x in 0..6 {
        assert_eq!(p.send(x).unwrap(), Flow::Continue);
    }
    p.close().unwrap();
    let want: Vec<u32> = (0..6).map(|x| x + 1).filter(|x| x % 2 == 0).collect();
    assert_eq!(out.items(), &want[..]);
}

#[test]
fn sink_side_combinators_read_from_the_sink_back() {
    let mut seen = 0;
    let mut out = Collect::new();
    {
        let mut chain = (&mut out)
            .with_map(|x: u32| x * 10)
            .with_filter(|x: &u32| x.is_multiple_of(2)) // sees x before the map
            .with_inspect(|_: &u32| seen += 1)
            .with_take(5);
        for x in 0..100 {
            if chain.send(x).unwrap().is_stop() {
                break;
            }
        }
        chain.close().unwrap();
    }
    assert_eq!(seen, 5);
    assert_eq!(out.items(), &[0, 20, 40]);
    assert!(out.is_closed());
}

#[test]
fn dynamic_broadcast_stops_when_every_target_has() {
    let (mut a, mut b) = (Count::new(), Count::new());
    {
        let targets: Vec<Box<dyn Stage<&str> + '_>> =
            vec![(&mut a).with_take(1).boxed(), (&mut b).with_take(3).boxed()];
        let mut bc = broadcast(targets);
        // `StageExt::map` is in scope too: name the iterator's.
        let flows: Vec<Flow> = (0..5).map(|_| bc.send("x").unwrap()).collect();
        assert_eq!(
            flows,
            [
                Flow::Continue,
                Flow::Continue,
                Flow::Stop,
                Flow::Stop,
                Flow::Stop
            ]
        );
    }
    assert_eq!((a.count(), b.count()), (1, 3));
}

#[test]
fn shared_closes_its_target_when_the_last_handle_closes() {
    let first = Shared::new(Collect::<u8>::new());
    let mut second = first.clone();
    let mut first = first;
    assert_eq!(first.open_handles(), 2);
    first.close().unwrap();
    assert!(!second.with(Collect::is_closed));
    assert_eq!(second.send(1).unwrap(), Flow::Continue);
    second.close().unwrap();
    assert!(second.with(Collect::is_closed));
}
