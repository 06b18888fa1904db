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
//! The inputs are the samples shipped in `data/`: the first lines of
//! `access-log` and the bus feed `allroutes.xml`, parsed by copipe's
//! expat-style source. Its `XmlEvent`s borrow the parser's buffer and a
//! coroutine's items are owned, so a `map` in front of `buses_to_dicts`
//! copies each event into the owned `Event` of this file (the seed's
//! `('start', name)` tuples).

use copipe::Lifecycle;
use std::collections::BTreeMap;
use std::io::{self, Write};

use copipe::xml::{expat_parse, XmlEvent, XmlInput};
use copipe::{coroutine, map, Error, Inbox, Result, Shared, Stage};
use memchr::memmem;

// ---------------------------------------------------------------------------
// A source: not a coroutine, it pushes into one (the seed's `follow`, over
// lines held in memory).

/// Sends every line to `target` until it stops, then closes it.
fn feed<S: Stage<String>>(lines: &[String], mut target: S) -> Result<()> {
    for line in lines {
        if target.send(line.clone())?.is_stop() {
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

/// An XML event, owned: the seed's `('start', name)`, `('text', data)` and
/// `('end', name)` tuples.
#[derive(Debug, Clone)]
enum Event {
    Start(String),
    Text(String),
    End(String),
    /// Anything a newer parser may add (`XmlEvent` is non-exhaustive).
    Other,
}

impl From<XmlEvent<'_>> for Event {
    fn from(event: XmlEvent<'_>) -> Event {
        match event {
            XmlEvent::Start(tag) => Event::Start(tag.name().to_string()),
            XmlEvent::Text(text) => Event::Text(text.to_string()),
            XmlEvent::End(name) => Event::End(name.to_string()),
            _ => Event::Other,
        }
    }
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
                    Event::Other => {}
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

// ---------------------------------------------------------------------------

/// The seed's web server log, as shipped in `data/` (not all UTF-8).
const ACCESS_LOG: &[u8] = include_bytes!("../data/access-log");

/// The CTA bus feed, as shipped in `data/`.
const ALLROUTES: &[u8] = include_bytes!("../data/allroutes.xml");

/// Prints a section header; like the printers, it ignores a closed stdout
/// (`println!` would panic).
fn header(text: &str) {
    let _ = writeln!(io::stdout(), "{text}");
}

fn main() -> Result<()> {
    let log: Vec<String> = ACCESS_LOG
        .split(|&b| b == b'\n')
        .take(60)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect();

    header("== copipe.py: grep('python', printer())");
    feed(&log, grep("python", printer("")))?;

    header("\n== cobroadcast.py: one printer per grep");
    feed(
        &log,
        broadcast(vec![
            Box::new(grep("python", printer("python: "))),
            Box::new(grep("ply", printer("ply:    "))),
            Box::new(grep("swig", printer("swig:   "))),
        ]),
    )?;

    header("\n== cobroadcast2.py: three greps into one shared printer");
    let p = Shared::new(printer(""));
    feed(
        &log,
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
    let pipeline = buses_to_dicts(filter_on_field(
        "route",
        "22",
        filter_on_field("direction", "North Bound", bus_locations()),
    ));
    // The parser sends borrowed events; the coroutine takes owned ones.
    let pipeline = map(|event: XmlEvent<'_>| Event::from(event), pipeline);
    expat_parse(
        XmlInput::from_bytes(ALLROUTES).with_path("data/allroutes.xml"),
        pipeline,
    )
}

// ---------------------------------------------------------------------------
// `cargo test` runs these (`test = true` for this example in Cargo.toml), so
// the stages above are checked as they are written here.

#[cfg(test)]
mod tests {
    use super::*;
    use copipe::sinks::Collect;
    use copipe::xml::records;
    use copipe::{Flow, StageExt};

    #[test]
    fn coroutine_buses_to_dicts_equals_records_on_the_shipped_feed() {
        let feed = concat!(env!("CARGO_MANIFEST_DIR"), "/data/allroutes.xml");

        let mut by_struct = Collect::new();
        expat_parse(
            XmlInput::from_path(feed).unwrap(),
            records("bus", (&mut by_struct).with_owned()),
        )
        .unwrap();
        // (Loops, not `Iterator::map`: `StageExt::map` is in scope too.)
        let mut buses = Vec::new();
        for record in by_struct.into_items() {
            let mut bus = Bus::new();
            for (k, v) in record.iter() {
                bus.insert(k.to_string(), v.to_string());
            }
            buses.push(bus);
        }
        let by_struct: Vec<Bus> = buses;

        let mut by_coroutine = Collect::new();
        expat_parse(
            XmlInput::from_path(feed).unwrap(),
            copipe::map(
                |e: XmlEvent<'_>| Event::from(e),
                buses_to_dicts(&mut by_coroutine),
            ),
        )
        .unwrap();
        assert!(by_coroutine.is_closed());

        assert!(
            by_struct.len() > 100,
            "the feed has {} buses",
            by_struct.len()
        );
        assert_eq!(by_coroutine.into_items(), by_struct);
    }

    #[test]
    fn buses_to_dicts_drops_an_unfinished_bus_at_close() {
        let mut out = Collect::new();
        let mut stage = buses_to_dicts(&mut out);
        for e in [
            Event::Start("bus".into()),
            Event::Start("id".into()),
            Event::Text("7".into()),
            Event::End("id".into()),
        ] {
            assert_eq!(stage.send(e).unwrap(), Flow::Continue);
        }
        stage.close().unwrap();
        drop(stage);
        assert!(out.items().is_empty());
        assert!(out.is_closed());
    }
}
