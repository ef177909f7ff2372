//! Dates, times, timestamps and durations: parsing Cassandra's accepted string forms and
//! printing them back (proleptic Gregorian calendar, UTC).

use crate::error::{CqlError, CqlResult};

pub const MILLIS_PER_DAY: i64 = 86_400_000;
pub const NANOS_PER_MICRO: i64 = 1_000;
pub const NANOS_PER_MILLI: i64 = 1_000_000;
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
pub const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;
/// The serialized `date` of 1970-01-01.
pub const DATE_EPOCH: i64 = 1 << 31;

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// A small cursor for the hand-written date grammars.
struct Scan<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Scan<'_> {
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.pos;
        while self.pos < self.s.len() && self.pos - start < max && self.s[self.pos].is_ascii_digit()
        {
            self.pos += 1;
        }
        if self.pos - start < min {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.pos])
            .ok()?
            .parse()
            .ok()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn rest(&self) -> &[u8] {
        &self.s[self.pos..]
    }

    fn done(&self) -> bool {
        self.pos == self.s.len()
    }
}

/// `yyyy-mm-dd` into days since the epoch.
fn scan_date(sc: &mut Scan) -> Option<i64> {
    let neg = sc.eat(b'-');
    if !neg {
        sc.eat(b'+');
    }
    let y = sc.digits(1, 9)?;
    let y = if neg { -y } else { y };
    if !sc.eat(b'-') {
        return None;
    }
    let m = sc.digits(1, 2)? as u32;
    if !sc.eat(b'-') {
        return None;
    }
    let d = sc.digits(1, 2)? as u32;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// A zone suffix (`Z`, `+hh`, `+hhmm`, `+hh:mm`, `UTC`, `GMT`, `GMT+hh:mm`) as an offset in
/// minutes east of UTC.
fn scan_zone(sc: &mut Scan) -> Option<i64> {
    let rest = sc.rest();
    for name in [&b"UTC"[..], b"GMT", b"Z", b"z"] {
        if rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name) {
            sc.pos += name.len();
            if sc.done() {
                return Some(0);
            }
            break;
        }
    }
    let sign = match sc.peek()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    sc.pos += 1;
    let h = sc.digits(2, 2)?;
    let mut m = 0;
    if !sc.done() {
        sc.eat(b':');
        m = sc.digits(2, 2)?;
    }
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m))
}

/// Cassandra's timestamp strings: `yyyy-mm-dd[( |T)hh:mm[:ss[.fff]]][ ][zone]`, default
/// zone UTC; also plain integers (milliseconds) and `now`.
pub fn parse_timestamp(s: &str) -> CqlResult<i64> {
    let err = || CqlError::invalid(format!("Unable to coerce '{s}' to a formatted date (long)"));
    if s.eq_ignore_ascii_case("now") {
        return Ok(now_millis());
    }
    if is_integer(s) {
        return s
            .parse::<i64>()
            .map_err(|_| CqlError::invalid(format!("Unable to make long (for date) from: '{s}'")));
    }
    let mut sc = Scan {
        s: s.as_bytes(),
        pos: 0,
    };
    let days = scan_date(&mut sc).ok_or_else(err)?;
    let mut millis: i64 = 0;
    let save = sc.pos;
    if sc.eat(b'T') || sc.eat(b' ') {
        match sc.digits(2, 2) {
            Some(h) => {
                if !sc.eat(b':') {
                    return Err(err());
                }
                let m = sc.digits(2, 2).ok_or_else(err)?;
                let mut sec = 0;
                let mut frac = 0;
                if sc.eat(b':') {
                    sec = sc.digits(2, 2).ok_or_else(err)?;
                    if sc.eat(b'.') {
                        let start = sc.pos;
                        let f = sc.digits(1, 3).ok_or_else(err)?;
                        frac = f * 10i64.pow(3 - (sc.pos - start) as u32);
                    }
                }
                if h > 23 || m > 59 || sec > 59 {
                    return Err(err());
                }
                millis = ((h * 60 + m) * 60 + sec) * 1000 + frac;
            }
            // `yyyy-mm-dd UTC`: the space belonged to the zone.
            None => sc.pos = save,
        }
    }
    let mut offset_min = 0;
    if !sc.done() {
        sc.eat(b' ');
        offset_min = scan_zone(&mut sc).ok_or_else(err)?;
        if !sc.done() {
            return Err(err());
        }
    }
    days.checked_mul(MILLIS_PER_DAY)
        .and_then(|d| d.checked_add(millis - offset_min * 60_000))
        .ok_or_else(err)
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSSZ` in UTC, the form of Cassandra's `toCQLLiteral`.
pub fn format_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(MILLIS_PER_DAY);
    let rem = ms.rem_euclid(MILLIS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        format_year(y),
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

fn format_year(y: i64) -> String {
    if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("{y:04}")
    }
}

fn is_integer(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

/// A `date` from `yyyy-mm-dd` or a raw unsigned day count (epoch at 2^31).
pub fn parse_date(s: &str) -> CqlResult<u32> {
    if is_integer(s) {
        return s
            .parse::<i64>()
            .ok()
            .filter(|v| (0..=u32::MAX as i64).contains(v))
            .map(|v| v as u32)
            .ok_or_else(|| {
                CqlError::invalid(format!(
                    "Unable to make unsigned int (for date) from: '{s}'"
                ))
            });
    }
    let mut sc = Scan {
        s: s.as_bytes(),
        pos: 0,
    };
    let err = || CqlError::invalid(format!("Unable to coerce '{s}' to a formatted date (long)"));
    let days = scan_date(&mut sc).ok_or_else(err)?;
    if !sc.done() {
        return Err(err());
    }
    let v = days + DATE_EPOCH;
    if v < 0 {
        return Err(CqlError::invalid(format!(
            "Input date {s} is less than min supported date -5877641-06-23"
        )));
    }
    if v > u32::MAX as i64 {
        return Err(CqlError::invalid(format!(
            "Input date {s} is greater than max supported date 5881580-07-11"
        )));
    }
    Ok(v as u32)
}

/// `yyyy-mm-dd`.
pub fn format_date(d: u32) -> String {
    let (y, m, dd) = civil_from_days(d as i64 - DATE_EPOCH);
    format!("{}-{m:02}-{dd:02}", format_year(y))
}

/// A `time` from `hh:mm:ss[.fffffffff]` or raw nanoseconds.
pub fn parse_time(s: &str) -> CqlResult<i64> {
    if is_integer(s) {
        return s
            .parse::<i64>()
            .ok()
            .filter(|v| (0..super::codec::NANOS_PER_DAY).contains(v))
            .ok_or_else(|| {
                CqlError::invalid(format!("Unable to make long (for time) from: '{s}'"))
            });
    }
    let err = || {
        CqlError::invalid(format!(
            "(TimeType) Unable to coerce '{s}' to a formatted time (long)"
        ))
    };
    let t = s.trim();
    let mut sc = Scan {
        s: t.as_bytes(),
        pos: 0,
    };
    let h = sc.digits(1, 2).ok_or_else(err)?;
    if !sc.eat(b':') {
        return Err(err());
    }
    let m = sc.digits(1, 2).ok_or_else(err)?;
    if !sc.eat(b':') {
        return Err(err());
    }
    let sec = sc.digits(1, 2).ok_or_else(err)?;
    let mut nanos = 0;
    if sc.eat(b'.') {
        let start = sc.pos;
        let f = sc.digits(1, 9).ok_or_else(err)?;
        nanos = f * 10i64.pow(9 - (sc.pos - start) as u32);
    }
    if !sc.done() || h > 23 || m > 59 || sec > 59 {
        return Err(err());
    }
    Ok(h * NANOS_PER_HOUR + m * NANOS_PER_MINUTE + sec * NANOS_PER_SECOND + nanos)
}

/// `hh:mm:ss.nnnnnnnnn`, as Cassandra's TimeSerializer prints it.
pub fn format_time(ns: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        ns / NANOS_PER_HOUR,
        ns / NANOS_PER_MINUTE % 60,
        ns / NANOS_PER_SECOND % 60,
        ns % NANOS_PER_SECOND
    )
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Accumulates duration units, enforcing Cassandra's order and overflow rules.
struct DurationBuilder {
    negative: bool,
    months: i64,
    days: i64,
    nanos: i64,
    unit: usize,
}

const UNIT_NAMES: [&str; 11] = [
    "",
    "years",
    "months",
    "weeks",
    "days",
    "hours",
    "minutes",
    "seconds",
    "milliseconds",
    "microseconds",
    "nanoseconds",
];

impl DurationBuilder {
    fn new(negative: bool) -> Self {
        DurationBuilder {
            negative,
            months: 0,
            days: 0,
            nanos: 0,
            unit: 0,
        }
    }

    /// `unit` is Cassandra's unit index: years=1 ... nanoseconds=10.
    fn add(&mut self, n: i64, unit: usize) -> CqlResult<()> {
        if unit == self.unit {
            return Err(CqlError::invalid(format!(
                "Invalid duration. The {} are specified multiple times",
                UNIT_NAMES[unit]
            )));
        }
        if unit < self.unit {
            return Err(CqlError::invalid(format!(
                "Invalid duration. The {} should be after {}",
                UNIT_NAMES[self.unit], UNIT_NAMES[unit]
            )));
        }
        self.unit = unit;
        let limit_err = |what: &str| {
            CqlError::invalid(format!(
                "Invalid duration. The total number of {what} must be less or equal to {}",
                i32::MAX
            ))
        };
        let (field, per, what, max): (&mut i64, i64, &str, i64) = match unit {
            1 => (&mut self.months, 12, "months", i32::MAX as i64),
            2 => (&mut self.months, 1, "months", i32::MAX as i64),
            3 => (&mut self.days, 7, "days", i32::MAX as i64),
            4 => (&mut self.days, 1, "days", i32::MAX as i64),
            5 => (&mut self.nanos, NANOS_PER_HOUR, "nanoseconds", i64::MAX),
            6 => (&mut self.nanos, NANOS_PER_MINUTE, "nanoseconds", i64::MAX),
            7 => (&mut self.nanos, NANOS_PER_SECOND, "nanoseconds", i64::MAX),
            8 => (&mut self.nanos, NANOS_PER_MILLI, "nanoseconds", i64::MAX),
            9 => (&mut self.nanos, NANOS_PER_MICRO, "nanoseconds", i64::MAX),
            _ => (&mut self.nanos, 1, "nanoseconds", i64::MAX),
        };
        if n > (max - *field) / per {
            return Err(limit_err(what));
        }
        *field += n * per;
        Ok(())
    }

    fn build(self) -> (i32, i32, i64) {
        let s = if self.negative { -1 } else { 1 };
        (
            (s * self.months) as i32,
            (s * self.days) as i32,
            s * self.nanos,
        )
    }
}

/// Parses a duration: `1h30m`-style units, ISO 8601 `P1Y2M3DT4H5M6S` / `P2W`, or the
/// alternative `P0001-02-03T04:05:06`, each optionally preceded by `-`.
pub fn parse_duration(input: &str) -> CqlResult<(i32, i32, i64)> {
    let negative = input.starts_with('-');
    let source = if negative { &input[1..] } else { input };
    let err = || CqlError::invalid(format!("Unable to convert '{source}' to a duration"));
    let num = |s: &str| s.parse::<i64>().map_err(|_| err());
    let mut b = DurationBuilder::new(negative);
    if let Some(body) = source.strip_prefix('P') {
        if let Some(w) = body.strip_suffix('W') {
            if w.is_empty() || !w.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            b.add(num(w)?, 3)?;
        } else if source.contains('-') {
            let bs = body.as_bytes();
            let shape = b"dddd-dd-ddTdd:dd:dd";
            if bs.len() != shape.len()
                || !bs.iter().zip(shape.iter()).all(|(c, p)| {
                    if *p == b'd' {
                        c.is_ascii_digit()
                    } else {
                        c == p
                    }
                })
            {
                return Err(err());
            }
            for (unit, range) in [
                (1, 0..4),
                (2, 5..7),
                (4, 8..10),
                (5, 11..13),
                (6, 14..16),
                (7, 17..19),
            ] {
                b.add(num(&body[range])?, unit)?;
            }
        } else {
            let (date, time) = match body.split_once('T') {
                Some((d, t)) => (d, Some(t)),
                None => (body, None),
            };
            let mut units = Vec::new();
            iso_units(date, &[(b'Y', 1), (b'M', 2), (b'D', 4)], &mut units).ok_or_else(err)?;
            if let Some(t) = time {
                iso_units(t, &[(b'H', 5), (b'M', 6), (b'S', 7)], &mut units).ok_or_else(err)?;
            }
            for (n, unit) in units {
                b.add(num(n)?, unit)?;
            }
        }
        return Ok(b.build());
    }
    let bytes = source.as_bytes();
    let mut pos = 0;
    if bytes.is_empty() {
        return Err(err());
    }
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return Err(err());
        }
        let n = num(&source[start..pos])?;
        let rest = &source[pos..];
        let lower = rest.to_ascii_lowercase();
        let (unit, len) = if lower.starts_with("mo") {
            (2, 2)
        } else if lower.starts_with("ms") {
            (8, 2)
        } else if lower.starts_with("us") {
            (9, 2)
        } else if rest.starts_with("µs") || rest.starts_with("µS") {
            (9, "µs".len())
        } else if lower.starts_with("ns") {
            (10, 2)
        } else {
            match lower.as_bytes().first() {
                Some(b'y') => (1, 1),
                Some(b'w') => (3, 1),
                Some(b'd') => (4, 1),
                Some(b'h') => (5, 1),
                Some(b'm') => (6, 1),
                Some(b's') => (7, 1),
                _ => return Err(err()),
            }
        };
        b.add(n, unit)?;
        pos += len;
    }
    Ok(b.build())
}

/// Splits ISO 8601 designator groups (`1Y2M`) in order; `None` if malformed.
fn iso_units<'a>(
    s: &'a str,
    allowed: &[(u8, usize)],
    out: &mut Vec<(&'a str, usize)>,
) -> Option<()> {
    let mut idx = 0;
    let bytes = s.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start || pos == bytes.len() {
            return None;
        }
        let d = bytes[pos];
        let k = allowed[idx..].iter().position(|(c, _)| *c == d)? + idx;
        out.push((&s[start..pos], allowed[k].1));
        idx = k + 1;
        pos += 1;
    }
    Some(())
}

/// Cassandra's `Duration.toString`: `1y2mo3d4h5m6s7ms8us9ns`, `-` first if negative.
pub fn format_duration(months: i32, days: i32, nanos: i64) -> String {
    let mut s = String::new();
    if months < 0 || days < 0 || nanos < 0 {
        s.push('-');
    }
    fn append(s: &mut String, dividend: u64, divisor: u64, unit: &str) -> u64 {
        if dividend == 0 || dividend < divisor {
            return dividend;
        }
        s.push_str(&format!("{}{unit}", dividend / divisor));
        dividend % divisor
    }
    let rem = append(&mut s, months.unsigned_abs() as u64, 12, "y");
    append(&mut s, rem, 1, "mo");
    append(&mut s, days.unsigned_abs() as u64, 1, "d");
    if nanos != 0 {
        let mut rem = nanos.unsigned_abs();
        for (div, unit) in [
            (NANOS_PER_HOUR, "h"),
            (NANOS_PER_MINUTE, "m"),
            (NANOS_PER_SECOND, "s"),
            (NANOS_PER_MILLI, "ms"),
            (NANOS_PER_MICRO, "us"),
            (1, "ns"),
        ] {
            rem = append(&mut s, rem, div as u64, unit);
        }
    }
    if s.is_empty() || s == "-" {
        return "0s".to_owned();
    }
    s
}
