//! The seed's coroutine stages written as copipe coroutines: `grep`,
//! `printer`, `broadcast` (copipe.py, cobroadcast.py, cobroadcast2.py) and
//! the bus pipeline `buses_to_dicts` -> `filter_on_field` ->
//! `bus_locations` (buses.py), each an `async` block whose locals are its
//! state.
//!
//! ```sh
//! cargo run --example coroutines
//! ```
//!
//! The XML events here come from a tiny owned `Event` enum built from a
//! sample in this file, standing in for an XML source; coroutine items are
//! owned, so a real XML source feeds a coroutine through owned events.

use std::collections::BTreeMap;
use std::io::{self, Write};

use copipe::{coroutine, Error, Flow, Inbox, Result, Shared, Stage};
use memchr::memmem;

// ---------------------------------------------------------------------------
// A source: not a coroutine, it pushes into one (the seed's `follow`, over
// lines held in memory).

/// Sends every line to `target` until it stops, then closes it.
fn feed<S: Stage<String>>(lines: &[&str], mut target: S) -> Result<()> {
    for line in lines {
        if target.send(line.to_string())?.is_stop() {
            break;
        }
    }
    target.close()
}

// ---------------------------------------------------------------------------
// copipe.py: grep and printer

/// ```python
/// @coroutine
/// def grep(pattern, target):
///     while True:
///         line = (yield)           # Receive a line
///         if pattern in line:
///             target.send(line)    # Send to next stage
/// ```
fn grep<S: Stage<String>>(pattern: &str, mut target: S) -> impl Stage<String> {
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

/// ```python
/// @coroutine
/// def printer():
///     while True:
///          line = (yield)
///          print(line, end=' ')
/// ```
///
/// `prefix` tells the printers of the broadcast apart. A closed stdout
/// (`| head -1`) ends the printer quietly: it returns, and upstream sees
/// `Flow::Stop`.
fn printer(prefix: &'static str) -> impl Stage<String> {
    coroutine(move |inbox: Inbox<String>| async move {
        let mut out = io::stdout();
        while let Some(line) = inbox.recv_flushing(|| Ok(out.flush()?)).await {
            match writeln!(out, "{prefix}{line}") {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out.flush()?)
    })
}

// ---------------------------------------------------------------------------
// cobroadcast.py: broadcast

/// ```python
/// @coroutine
/// def broadcast(targets):
///     while True:
///         item = (yield)
///         for target in targets:
///             target.send(item)
/// ```
///
/// A target that answers `Stop` is closed and skipped; the broadcast stops
/// when all have. (`copipe::broadcast` is the same stage written as a
/// struct.)
fn broadcast(mut targets: Vec<Box<dyn Stage<String>>>) -> impl Stage<String> {
    coroutine(move |inbox: Inbox<String>| async move {
        let mut live = vec![true; targets.len()];
        let flush_all = |targets: &mut Vec<Box<dyn Stage<String>>>, live: &[bool]| {
            for (t, _) in targets.iter_mut().zip(live).filter(|(_, &l)| l) {
                t.flush()?;
            }
            Ok::<(), Error>(())
        };
        while let Some(item) = inbox.recv_flushing(|| flush_all(&mut targets, &live)).await {
            for (target, live) in targets.iter_mut().zip(live.iter_mut()) {
                if *live && target.send(item.clone())?.is_stop() {
                    *live = false;
                    target.close()?;
                }
            }
            if !live.contains(&true) {
                return Ok(()); // every target has stopped
            }
        }
        for (target, _) in targets.iter_mut().zip(&live).filter(|(_, &l)| l) {
            target.close()?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// buses.py: buses_to_dicts, filter_on_field, bus_locations

/// An XML event, owned: what an XML source pushes, as `('start', name)`,
/// `('text', data)` and `('end', name)` tuples do in the seed.
#[derive(Debug, Clone)]
enum Event {
    Start(String),
    Text(String),
    End(String),
}

type Bus = BTreeMap<String, String>;

/// The seed's two-state machine, as its two nested loops:
///
/// ```python
/// @coroutine
/// def buses_to_dicts(target):
///     while True:
///         event, value = (yield)
///         # Look for the start of a <bus> element
///         if event == 'start' and value[0] == 'bus':
///             busdict = { }
///             fragments = []
///             # Capture text of inner elements in a dict
///             while True:
///                 event, value = (yield)
///                 if event == 'start':   fragments = []
///                 elif event == 'text':  fragments.append(value)
///                 elif event == 'end':
///                     if value != 'bus':
///                         busdict[value] = "".join(fragments)
///                     else:
///                         target.send(busdict)
///                         break
/// ```
fn buses_to_dicts<S: Stage<Bus>>(mut target: S) -> impl Stage<Event> {
    coroutine(move |inbox: Inbox<Event>| async move {
        'buses: while let Some(event) = inbox.recv_flushing(|| target.flush()).await {
            // Look for the start of a <bus> element.
            if !matches!(&event, Event::Start(name) if name == "bus") {
                continue;
            }
            let mut bus = Bus::new();
            let mut fragments = String::new();
            // Capture the text of inner elements in a map. After `close`,
            // `recv` returns `None` here too, and an unfinished bus is
            // dropped, as in the seed.
            while let Some(event) = inbox.recv().await {
                match event {
                    Event::Start(_) => fragments.clear(),
                    Event::Text(text) => fragments.push_str(&text),
                    Event::End(name) if name != "bus" => {
                        bus.insert(name, std::mem::take(&mut fragments));
                    }
                    Event::End(_) => {
                        if target.send(bus)?.is_stop() {
                            break 'buses;
                        }
                        break;
                    }
                }
            }
        }
        target.close()
    })
}

/// ```python
/// @coroutine
/// def filter_on_field(fieldname,value,target):
///     while True:
///         d = (yield)
///         if d.get(fieldname) == value:
///             target.send(d)
/// ```
fn filter_on_field<S: Stage<Bus>>(
    field: &'static str,
    value: &'static str,
    mut target: S,
) -> impl Stage<Bus> {
    coroutine(move |inbox: Inbox<Bus>| async move {
        while let Some(bus) = inbox.recv_flushing(|| target.flush()).await {
            if bus.get(field).map(String::as_str) == Some(value) && target.send(bus)?.is_stop() {
                break;
            }
        }
        target.close()
    })
}

/// ```python
/// @coroutine
/// def bus_locations():
///     while True:
///         bus = (yield)
///         print("%(route)s,%(id)s,\"%(direction)s\","\
///               "%(latitude)s,%(longitude)s" % bus)
/// ```
fn bus_locations() -> impl Stage<Bus> {
    coroutine(|inbox: Inbox<Bus>| async move {
        let mut out = io::stdout();
        let field = |bus: &Bus, name: &str| bus.get(name).cloned().unwrap_or_default();
        while let Some(bus) = inbox.recv_flushing(|| Ok(out.flush()?)).await {
            let line = format!(
                "{},{},\"{}\",{},{}",
                field(&bus, "route"),
                field(&bus, "id"),
                field(&bus, "direction"),
                field(&bus, "latitude"),
                field(&bus, "longitude"),
            );
            match writeln!(out, "{line}") {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out.flush()?)
    })
}

/// The events an XML parser would push for a few `<bus>` elements of the
/// seed's `allroutes.xml`, whitespace between elements included.
fn bus_events() -> Vec<Event> {
    const BUSES: &[[(&str, &str); 5]] = &[
        [
            ("id", "7574"),
            ("route", "147"),
            ("direction", "North Bound"),
            ("latitude", "41.92"),
            ("longitude", "-87.64"),
        ],
        [
            ("id", "6789"),
            ("route", "22"),
            ("direction", "North Bound"),
            ("latitude", "41.88"),
            ("longitude", "-87.63"),
        ],
        [
            ("id", "4213"),
            ("route", "22"),
            ("direction", "South Bound"),
            ("latitude", "41.95"),
            ("longitude", "-87.66"),
        ],
        [
            ("id", "1824"),
            ("route", "22"),
            ("direction", "North Bound"),
            ("latitude", "41.90"),
            ("longitude", "-87.63"),
        ],
    ];
    let mut events = vec![Event::Start("buses".into())];
    for bus in BUSES {
        events.push(Event::Text("\n  ".into()));
        events.push(Event::Start("bus".into()));
        for (name, value) in bus {
            events.push(Event::Text("\n    ".into()));
            events.push(Event::Start(name.to_string()));
            events.push(Event::Text(value.to_string()));
            events.push(Event::End(name.to_string()));
        }
        events.push(Event::Text("\n  ".into()));
        events.push(Event::End("bus".into()));
    }
    events.push(Event::Text("\n".into()));
    events.push(Event::End("buses".into()));
    events
}

// ---------------------------------------------------------------------------

const ACCESS_LOG: &[&str] = &[
    "71.201.176.194 - - [26/Feb/2008:10:30:08 -0600] \"GET /ply/ HTTP/1.1\" 200 11875",
    "71.201.176.194 - - [26/Feb/2008:10:30:08 -0600] \"GET /favicon.ico HTTP/1.1\" 404 133",
    "65.208.159.197 - - [26/Feb/2008:10:31:03 -0600] \"GET /python/tutorial/ HTTP/1.1\" 200 4471",
    "122.44.136.11 - - [26/Feb/2008:10:31:15 -0600] \"GET /swig/ HTTP/1.1\" 200 6023",
    "74.125.47.99 - - [26/Feb/2008:10:32:41 -0600] \"GET /python/ply/ HTTP/1.1\" 200 9203",
];

/// Prints a section header; like the printers, it ignores a closed stdout
/// (`println!` would panic).
fn header(text: &str) {
    let _ = writeln!(io::stdout(), "{text}");
}

fn main() -> Result<()> {
    header("== copipe.py: grep('python', printer())");
    feed(ACCESS_LOG, grep("python", printer("")))?;

    header("\n== cobroadcast.py: one printer per grep");
    feed(
        ACCESS_LOG,
        broadcast(vec![
            Box::new(grep("python", printer("python: "))),
            Box::new(grep("ply", printer("ply:    "))),
            Box::new(grep("swig", printer("swig:   "))),
        ]),
    )?;

    header("\n== cobroadcast2.py: three greps into one shared printer");
    let p = Shared::new(printer(""));
    feed(
        ACCESS_LOG,
        broadcast(vec![
            Box::new(grep("python", p.clone())),
            Box::new(grep("ply", p.clone())),
            Box::new(grep("swig", p.clone())),
        ]),
    )?;
    // The three greps closed their handles; this closes the last one, and
    // with it the printer.
    let mut p = p;
    p.close()?;

    header("\n== buses.py: route 22, north bound");
    let mut pipeline = buses_to_dicts(filter_on_field(
        "route",
        "22",
        filter_on_field("direction", "North Bound", bus_locations()),
    ));
    for event in bus_events() {
        if pipeline.send(event)? == Flow::Stop {
            break;
        }
    }
    pipeline.close()
}
