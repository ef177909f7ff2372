//! Open-loop scheduling and duration parsing.

use std::time::Duration;

/// Offset from the start of a fixed-rate run at which request `i` is due: `i / rate`
/// seconds. Latency of request `i` is measured from this instant, not from when a worker
/// got around to sending it, so a stalled server cannot hide its queueing delay
/// (coordinated omission).
pub fn intended_offset(i: u64, rate_per_sec: f64) -> Duration {
    assert!(rate_per_sec > 0.0, "rate must be positive");
    let nanos = (i as f64) * 1e9 / rate_per_sec;
    Duration::from_nanos(nanos.round() as u64)
}

/// Number of requests due in `[0, elapsed)` at `rate_per_sec`: those with offset < elapsed.
pub fn due_by(elapsed: Duration, rate_per_sec: f64) -> u64 {
    (elapsed.as_secs_f64() * rate_per_sec).ceil() as u64
}

/// Parses "10s", "500ms", "2m", "1h", "250us" or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("invalid duration unit {other:?} in {s:?}")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses counts like "1000000", "1M", "500k", "2G" (decimal multipliers, as cassandra-stress).
pub fn parse_count(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1_000),
        Some('m' | 'M') => (&s[..s.len() - 1], 1_000_000),
        Some('g' | 'G' | 'b' | 'B') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let value: u64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("invalid count {s:?}: expected e.g. 1000, 500k, 1M"))?;
    value
        .checked_mul(mult)
        .ok_or_else(|| format!("count {s:?} overflows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_rate() {
        assert_eq!(intended_offset(0, 1000.0), Duration::ZERO);
        assert_eq!(intended_offset(1, 1000.0), Duration::from_millis(1));
        assert_eq!(intended_offset(2500, 1000.0), Duration::from_millis(2500));
        assert_eq!(intended_offset(3, 3.0), Duration::from_secs(1));
        // Non-integral periods do not accumulate rounding error.
        assert_eq!(
            intended_offset(3_000_000, 3.0),
            Duration::from_secs(1_000_000)
        );
    }

    #[test]
    fn due_counts_requests_started_before_elapsed() {
        assert_eq!(due_by(Duration::ZERO, 100.0), 0);
        assert_eq!(due_by(Duration::from_millis(1), 100.0), 1);
        assert_eq!(due_by(Duration::from_secs(1), 100.0), 100);
        for i in 0..1000u64 {
            let off = intended_offset(i, 77.0);
            assert!(due_by(off + Duration::from_nanos(1), 77.0) > i);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("1M").unwrap(), 1_000_000);
        assert_eq!(parse_count("500k").unwrap(), 500_000);
        assert_eq!(parse_count("42").unwrap(), 42);
        assert!(parse_count("x").is_err());
    }
}
