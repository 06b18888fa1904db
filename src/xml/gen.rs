//! Deterministic generators of CTA bus tracker feeds: the 2009 feed
//! (`allroutes.xml`) and today's Bus Tracker API response (`getvehicles`).

use std::io::{self, Write};

/// SplitMix64: small, fast and deterministic across platforms.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Busy routes get more buses (and route 22 is among them, so the README's
/// first command has something to show).
const BUSY: [&str; 13] = [
    "22", "9", "49", "66", "77", "79", "3", "4", "8", "20", "53", "62", "82",
];
/// Routes that run east-west whatever their hash says.
const EAST_WEST: [&str; 8] = ["66", "77", "79", "20", "62", "55", "55A", "J14"];
/// Routes that run north-south whatever their hash says.
const NORTH_SOUTH: [&str; 7] = ["22", "9", "X9", "49", "3", "4", "8"];
/// Lettered routes of the real network.
const LETTERED: [&str; 22] = [
    "X9", "J14", "55A", "X4", "8A", "49B", "X49", "52A", "53A", "54A", "54B", "55N", "62H", "63W",
    "81W", "85A", "X20", "X80", "N5", "111A", "95E", "95W",
];

const STOPS: [&str; 24] = [
    "Paulina & Howard Terminal",
    "Clark & Arthur",
    "Harrison & Wacker",
    "Navy Pier",
    "95th/Dan Ryan Red Line",
    "Jefferson Park Blue Line",
    "Cicero & Archer",
    "Museum Campus",
    "Belmont & Central",
    "Halsted & 79th",
    "Kedzie & 63rd",
    "Midway Orange Line",
    "Ashland & 95th",
    "Irving Park & Austin",
    "Western & Howard",
    "Union Station",
    "Lake Shore & Foster",
    "Chicago & Austin",
    "Pulaski & Roosevelt",
    "State & Lake",
    "Cumberland Blue Line",
    "Ogilvie Transportation Center",
    "Lawrence & Kedzie",
    "Michigan & Walton",
];

const COLORS: [&str; 5] = ["#3300ff", "#ff0000", "#008000", "#ff9900", "#993399"];

struct Route {
    name: String,
    north_south: bool,
    weight: u64,
    /// Where the route's buses cluster.
    lat: f64,
    lon: f64,
}

fn routes() -> Vec<Route> {
    let mut names: Vec<String> = (1..=206).map(|n| n.to_string()).collect();
    names.extend(LETTERED.iter().map(|s| s.to_string()));
    names
        .into_iter()
        .map(|name| {
            // A hash of the name, not of the seed: a route keeps its axis and
            // area in every generated file.
            let mut h = Rng(name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
            }));
            let north_south = if NORTH_SOUTH.contains(&name.as_str()) {
                true
            } else if EAST_WEST.contains(&name.as_str()) {
                false
            } else {
                h.next().is_multiple_of(2)
            };
            let weight = if BUSY.contains(&name.as_str()) { 6 } else { 1 };
            let (lat, lon) = match name.as_str() {
                // Clark Street and Ashland Avenue, where they really are.
                "22" => (41.93, -87.636),
                "9" | "X9" => (41.85, -87.666),
                _ => (41.66 + h.unit() * 0.38, -87.90 + h.unit() * 0.32),
            };
            Route {
                name,
                north_south,
                weight,
                lat,
                lon,
            }
        })
        .collect()
}

/// Writes a CTA bus tracker feed of about `target_bytes` bytes (at least
/// one bus) to `out`: an XML declaration, a comment, and a `<buses>` root
/// holding one `<bus>` per vehicle with the real feed's twelve fields.
///
/// The same `seed` gives the same bytes. There are 228 routes (including
/// `X9`, `J14` and `55A`), four directions (north-south routes run North
/// Bound and South Bound, the others East Bound and West Bound), final
/// stops mostly in CDATA sections with a literal `&`, some written with
/// `&amp;` instead, and about one bus in a hundred without an `<operator>`.
///
/// Returns the number of bytes written.
///
/// # Errors
///
/// Writing to `out` fails.
///
/// # Examples
///
/// ```
/// use copipe::xml::generate_buses;
///
/// let mut a = Vec::new();
/// let n = generate_buses(&mut a, 10_000, 7)?;
/// assert_eq!(n as usize, a.len());
/// let mut b = Vec::new();
/// generate_buses(&mut b, 10_000, 7)?;
/// assert_eq!(a, b);
/// assert!(a.starts_with(b"<?xml version=\"1.0\"?>"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn generate_buses<W: Write>(mut out: W, target_bytes: u64, seed: u64) -> io::Result<u64> {
    let routes = routes();
    let total_weight: u64 = routes.iter().map(|r| r.weight).sum();
    let mut rng = Rng(seed ^ 0x05EE_D0FB_05E5);
    let mut buf: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut written = 0u64;
    write!(
        buf,
        "<?xml version=\"1.0\"?>\n<!-- CTA bus tracker feed generated by copipe gen buses, seed {seed} -->\n<buses>\n"
    )?;
    let footer = b"</buses>\n";
    let mut buses = 0u64;
    loop {
        if buses > 0 && written + buf.len() as u64 + footer.len() as u64 >= target_bytes {
            break;
        }
        let Bus {
            route,
            direction,
            lat,
            lon,
            ..
        } = pick_bus(&mut rng, &routes, total_weight);
        let id = 1000 + rng.below(8000);
        let stop = STOPS[rng.below(STOPS.len() as u64) as usize];
        write!(
            buf,
            "  <bus>\n    <id>{id}</id>\n    <route>{}</route>\n    <color>{}</color>\n    <revenue>{}</revenue>\n    <direction>{direction}</direction>\n    <latitude>{lat}</latitude>\n    <longitude>{lon}</longitude>\n    <pattern>{}</pattern>\n    <patternDirection>{direction}</patternDirection>\n    <run>{}{}</run>\n",
            route.name,
            COLORS[rng.below(COLORS.len() as u64) as usize],
            rng.below(100) >= 3,
            1 + rng.below(9999),
            ['P', 'F', 'K', 'N', 'X'][rng.below(5) as usize],
            100 + rng.below(900),
        )?;
        match rng.below(20) {
            0..=15 => writeln!(buf, "    <finalStop><![CDATA[{stop}]]></finalStop>")?,
            _ => writeln!(
                buf,
                "    <finalStop>{}</finalStop>",
                stop.replace('&', "&amp;")
            )?,
        }
        if rng.below(100) != 0 {
            writeln!(buf, "    <operator>{}</operator>", 10000 + rng.below(90000))?;
        }
        buf.extend_from_slice(b"  </bus>\n");
        buses += 1;
        if buf.len() >= 64 * 1024 {
            out.write_all(&buf)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    buf.extend_from_slice(footer);
    out.write_all(&buf)?;
    written += buf.len() as u64;
    out.flush()?;
    Ok(written)
}

/// One vehicle somewhere on a route.
struct Bus<'r> {
    route: &'r Route,
    /// North or east bound.
    forward: bool,
    direction: &'static str,
    lat: f64,
    lon: f64,
}

/// Picks a route (busy ones more often), a way and a place on it.
fn pick_bus<'r>(rng: &mut Rng, routes: &'r [Route], total_weight: u64) -> Bus<'r> {
    let mut pick = rng.below(total_weight);
    let route = routes
        .iter()
        .find(|r| {
            if pick < r.weight {
                true
            } else {
                pick -= r.weight;
                false
            }
        })
        .unwrap_or(&routes[0]); // the weights sum to total_weight
    let forward = rng.next().is_multiple_of(2);
    let direction = match (route.north_south, forward) {
        (true, true) => "North Bound",
        (true, false) => "South Bound",
        (false, true) => "East Bound",
        (false, false) => "West Bound",
    };
    // Spread along the route's axis, a little across it.
    let (along, across) = (rng.unit() - 0.5, rng.unit() - 0.5);
    let (lat, lon) = if route.north_south {
        (route.lat + along * 0.30, route.lon + across * 0.01)
    } else {
        (route.lat + across * 0.01, route.lon + along * 0.40)
    };
    Bus {
        route,
        forward,
        direction,
        lat,
        lon,
    }
}

/// Writes a response of today's CTA Bus Tracker API (`getvehicles`, as
/// `https://www.ctabustracker.com/bustime/api/v2/getvehicles` returns it)
/// of about `target_bytes` bytes (at least one vehicle) to `out`: a
/// `<bustime-response>` root holding one `<vehicle>` per bus with `vid`,
/// `tmstmp` (`YYYYMMDD HH:MM`), `lat`, `lon`, `hdg` (degrees, 0 north),
/// `pid`, `rt`, `des` (the destination), `pdist` (feet along the pattern),
/// `dly` (`true` or `false`), `spd`, `tatripid`, `origtatripno`,
/// `tablockid` and `zone` (mostly empty).
///
/// The routes and places are those of [`generate_buses`]; the same `seed`
/// gives the same bytes. Returns the number of bytes written.
///
/// # Errors
///
/// Writing to `out` fails.
///
/// # Examples
///
/// ```
/// use copipe::xml::generate_bustime;
///
/// let mut a = Vec::new();
/// let n = generate_bustime(&mut a, 5_000, 7)?;
/// assert_eq!(n as usize, a.len());
/// let text = String::from_utf8(a).unwrap();
/// assert!(text.contains("<bustime-response>") && text.contains("<vehicle>"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn generate_bustime<W: Write>(mut out: W, target_bytes: u64, seed: u64) -> io::Result<u64> {
    let routes = routes();
    let total_weight: u64 = routes.iter().map(|r| r.weight).sum();
    let mut rng = Rng(seed ^ 0xB057_13E5);
    let mut buf: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut written = 0u64;
    buf.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<bustime-response>\n",
    );
    let footer = b"</bustime-response>\n";
    let mut vehicles = 0u64;
    loop {
        if vehicles > 0 && written + buf.len() as u64 + footer.len() as u64 >= target_bytes {
            break;
        }
        let bus = pick_bus(&mut rng, &routes, total_weight);
        let vid = 1000 + rng.below(8000);
        let minute = rng.below(60 * 24);
        let hdg = match (bus.route.north_south, bus.forward) {
            (true, true) => 0,
            (true, false) => 180,
            (false, true) => 90,
            (false, false) => 270,
        } + 360
            - 8
            + rng.below(16);
        let des = STOPS[rng.below(STOPS.len() as u64) as usize].replace('&', "&amp;");
        let dly = rng.below(20) == 0;
        let block = 700 + rng.below(300);
        write!(
            buf,
            "\t<vehicle>\n\t\t<vid>{vid}</vid>\n\t\t<tmstmp>20261203 {:02}:{:02}</tmstmp>\n\t\t<lat>{:.14}</lat>\n\t\t<lon>{:.14}</lon>\n\t\t<hdg>{}</hdg>\n\t\t<pid>{}</pid>\n\t\t<rt>{}</rt>\n\t\t<des>{des}</des>\n\t\t<pdist>{}</pdist>\n\t\t<dly>{dly}</dly>\n\t\t<spd>{}</spd>\n\t\t<tatripid>{}</tatripid>\n\t\t<origtatripno>{}</origtatripno>\n\t\t<tablockid>{} -{block}</tablockid>\n\t\t<zone>{}</zone>\n\t</vehicle>\n",
            minute / 60,
            minute % 60,
            bus.lat,
            bus.lon,
            hdg % 360,
            1000 + rng.below(9000),
            bus.route.name,
            rng.below(60_000),
            rng.below(40),
            100 + rng.below(9000),
            250_000_000 + rng.below(1_000_000),
            bus.route.name,
            if rng.below(10) == 0 { "Downtown" } else { "" },
        )?;
        vehicles += 1;
        if buf.len() >= 64 * 1024 {
            out.write_all(&buf)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    buf.extend_from_slice(footer);
    out.write_all(&buf)?;
    written += buf.len() as u64;
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_and_sizes_are_close() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        generate_buses(&mut a, 200_000, 1).unwrap();
        generate_buses(&mut b, 200_000, 2).unwrap();
        assert_ne!(a, b);
        assert!(a.len() >= 199_000 && a.len() <= 201_000, "{}", a.len());
    }

    #[test]
    fn there_are_hundreds_of_routes_with_the_lettered_ones() {
        let r = routes();
        assert!(r.len() >= 200);
        for name in ["X9", "J14", "55A", "22"] {
            assert!(r.iter().any(|x| x.name == name), "{name}");
        }
    }
}
