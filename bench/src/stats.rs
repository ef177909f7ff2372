//! Latency recording and summaries.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histograms track; slower requests are clamped to it (and counted).
pub const MAX_LATENCY_US: u64 = 60_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// One second of a run, as printed in the progress line and plotted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IntervalPoint {
    /// Seconds since the phase started, at the end of this interval.
    pub t_s: f64,
    pub ops: u64,
    pub ops_per_s: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub errors: u64,
    /// Part of the warm-up, so left out of the totals.
    pub warmup: bool,
}

#[derive(Debug)]
struct Inner {
    interval: Histogram<u64>,
    interval_errors: u64,
    total: Histogram<u64>,
    total_errors: u64,
    empty_reads: u64,
    reads: u64,
    writes: u64,
}

/// Shared by all workers. One short lock per operation: at ~100k ops/s on two cores this
/// costs far less than the request itself and keeps every sample exact.
#[derive(Debug)]
pub struct Recorder {
    inner: Mutex<Inner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Read { rows: usize },
    Write,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            inner: Mutex::new(Inner {
                interval: new_histogram(),
                interval_errors: 0,
                total: new_histogram(),
                total_errors: 0,
                empty_reads: 0,
                reads: 0,
                writes: 0,
            }),
        }
    }
}

/// Totals of the measured (post-warm-up) part of a phase.
#[derive(Debug, Clone)]
pub struct Totals {
    pub histogram: Histogram<u64>,
    pub errors: u64,
    pub reads: u64,
    pub writes: u64,
    pub empty_reads: u64,
}

impl Recorder {
    /// Records a successful operation. Warm-up samples only show up in the per-second line.
    pub fn success(&self, latency: Duration, kind: OpKind, measured: bool) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        let mut g = self.inner.lock().expect("recorder lock");
        g.interval.saturating_record(us);
        if measured {
            g.total.saturating_record(us);
            match kind {
                OpKind::Read { rows } => {
                    g.reads += 1;
                    if rows == 0 {
                        g.empty_reads += 1;
                    }
                }
                OpKind::Write => g.writes += 1,
            }
        }
    }

    pub fn error(&self, measured: bool) {
        let mut g = self.inner.lock().expect("recorder lock");
        g.interval_errors += 1;
        if measured {
            g.total_errors += 1;
        }
    }

    /// Closes the current interval and returns its histogram and error count.
    pub fn take_interval(&self) -> (Histogram<u64>, u64) {
        let mut g = self.inner.lock().expect("recorder lock");
        let h = std::mem::replace(&mut g.interval, new_histogram());
        let e = std::mem::take(&mut g.interval_errors);
        (h, e)
    }

    pub fn totals(&self) -> Totals {
        let g = self.inner.lock().expect("recorder lock");
        Totals {
            histogram: g.total.clone(),
            errors: g.total_errors,
            reads: g.reads,
            writes: g.writes,
            empty_reads: g.empty_reads,
        }
    }
}

pub fn interval_point(
    t_s: f64,
    len_s: f64,
    h: &Histogram<u64>,
    errors: u64,
    warmup: bool,
) -> IntervalPoint {
    let s = LatencySummary::of(h);
    IntervalPoint {
        t_s,
        ops: s.count,
        ops_per_s: if len_s > 0.0 {
            s.count as f64 / len_s
        } else {
            0.0
        },
        p50_us: s.p50_us,
        p99_us: s.p99_us,
        errors,
        warmup,
    }
}

/// CPU time (user + system) this process has used, from /proc/self/stat.
pub fn process_cpu_time() -> Option<Duration> {
    cpu_time_of("self")
}

/// CPU time of another process (for example a local server under test).
pub fn cpu_time_of(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_cpu(&stat, CLOCK_TICKS_PER_SEC)
}

/// USER_HZ is 100 on every mainstream Linux ABI; reading it via sysconf would need unsafe.
pub const CLOCK_TICKS_PER_SEC: u64 = 100;

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line. The command name in
/// parentheses may contain spaces, so fields are counted after the last ')'.
pub fn parse_proc_stat_cpu(stat: &str, ticks_per_sec: u64) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 (state) is index 0, so utime (14) is index 11 and stime (15) is 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / ticks_per_sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_percentiles() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p90_us, 900);
        assert_eq!(s.p99_us, 990);
        assert_eq!(s.p999_us, 999);
        assert_eq!(s.max_us, 1000);
        assert!((s.mean_us - 500.5).abs() < 0.5);
    }

    #[test]
    fn empty_summary_is_zero() {
        assert_eq!(LatencySummary::of(&new_histogram()).count, 0);
    }

    #[test]
    fn recorder_excludes_warmup_from_totals() {
        let r = Recorder::default();
        r.success(Duration::from_micros(100), OpKind::Write, false);
        r.success(Duration::from_micros(200), OpKind::Read { rows: 0 }, true);
        r.success(Duration::from_micros(300), OpKind::Read { rows: 1 }, true);
        r.error(false);
        r.error(true);
        let (h, e) = r.take_interval();
        assert_eq!(h.len(), 3);
        assert_eq!(e, 2);
        let t = r.totals();
        assert_eq!(t.histogram.len(), 2);
        assert_eq!((t.errors, t.reads, t.writes, t.empty_reads), (1, 2, 0, 1));
        assert_eq!(r.take_interval().0.len(), 0);
    }

    #[test]
    fn huge_latency_is_clamped_not_lost() {
        let r = Recorder::default();
        r.success(Duration::from_secs(3600), OpKind::Write, true);
        assert_eq!(r.totals().histogram.len(), 1);
    }

    #[test]
    fn proc_stat_parsing() {
        let line = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_proc_stat_cpu(line, 100), Some(Duration::from_secs(3)));
        assert!(process_cpu_time().is_some());
        assert!(parse_proc_stat_cpu("garbage", 100).is_none());
    }
}
