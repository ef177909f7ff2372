//! Cassandra's phi-accrual failure detector (`gms/FailureDetector.java`).
//!
//! Heartbeat inter-arrival times are modelled as exponentially distributed, so
//! `phi = -log10(P(no heartbeat for t)) = t / (mean * ln 10)`. A node is convicted once phi
//! exceeds `phi_convict_threshold`: with the default 8 and one-second gossip that is about
//! 18.4 mean intervals of silence. Time is passed in; nothing here reads a clock.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// `1 / ln(10)`: turns `t / mean` (natural log of the survival probability) into log10.
pub const PHI_FACTOR: f64 = std::f64::consts::LOG10_E;

/// Tuning, with Cassandra's defaults.
#[derive(Clone, Debug)]
pub struct FailureDetectorConfig {
    /// `phi_convict_threshold` in cassandra.yaml.
    pub phi_convict_threshold: f64,
    /// Inter-arrival samples kept per endpoint.
    pub window_size: usize,
    /// The first sample for a new endpoint. Deliberately large (two gossip intervals): the
    /// right mean depends on cluster size, and convicting late beats flapping.
    pub initial_interval: Duration,
    /// Longer gaps are not recorded, so one outage does not teach the detector to be lax.
    pub max_interval: Duration,
    /// If we ourselves were paused (GC, VM stall) longer than this between checks, convict
    /// nobody until a full pause length has passed: silence was ours, not theirs.
    pub max_local_pause: Duration,
}

impl Default for FailureDetectorConfig {
    fn default() -> Self {
        FailureDetectorConfig {
            phi_convict_threshold: 8.0,
            window_size: 1000,
            initial_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(2),
            max_local_pause: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug)]
struct ArrivalWindow {
    last: Instant,
    intervals: VecDeque<f64>,
    sum: f64,
}

impl ArrivalWindow {
    fn mean(&self) -> f64 {
        self.sum / self.intervals.len() as f64
    }
}

/// One detector for all endpoints, keyed by whatever identifies a node (host id).
#[derive(Clone, Debug)]
pub struct FailureDetector<K> {
    config: FailureDetectorConfig,
    windows: HashMap<K, ArrivalWindow>,
    last_interpret: Option<Instant>,
    last_pause: Option<Instant>,
}

impl<K: Eq + Hash + Clone> FailureDetector<K> {
    pub fn new(config: FailureDetectorConfig) -> Self {
        FailureDetector {
            config,
            windows: HashMap::new(),
            last_interpret: None,
            last_pause: None,
        }
    }

    pub fn config(&self) -> &FailureDetectorConfig {
        &self.config
    }

    /// Records a heartbeat from `k` seen at `now`.
    pub fn report(&mut self, k: &K, now: Instant) {
        let cfg = &self.config;
        match self.windows.get_mut(k) {
            None => {
                let initial = cfg.initial_interval.as_secs_f64() * 1e3;
                self.windows.insert(
                    k.clone(),
                    ArrivalWindow {
                        last: now,
                        intervals: VecDeque::from([initial]),
                        sum: initial,
                    },
                );
            }
            Some(w) => {
                let gap = now.saturating_duration_since(w.last);
                w.last = now;
                if gap <= cfg.max_interval {
                    let ms = gap.as_secs_f64() * 1e3;
                    if w.intervals.len() >= cfg.window_size.max(1) {
                        w.sum -= w.intervals.pop_front().unwrap_or(0.0);
                    }
                    w.intervals.push_back(ms);
                    w.sum += ms;
                }
            }
        }
    }

    /// Phi for `k` at `now` (already scaled to log10), or `None` if never heard from.
    pub fn phi(&self, k: &K, now: Instant) -> Option<f64> {
        let w = self.windows.get(k)?;
        let t = now.saturating_duration_since(w.last).as_secs_f64() * 1e3;
        let mean = w.mean();
        Some(if mean > 0.0 {
            PHI_FACTOR * t / mean
        } else {
            f64::INFINITY
        })
    }

    /// Whether `k` should be convicted (marked down) at `now`. Call it for every endpoint
    /// each gossip round, as Cassandra's status check does, so local pauses are noticed.
    pub fn interpret(&mut self, k: &K, now: Instant) -> bool {
        let pause = self.config.max_local_pause;
        if let Some(last) = self.last_interpret.replace(now)
            && now.saturating_duration_since(last) > pause
        {
            self.last_pause = Some(now);
            return false;
        }
        if let Some(p) = self.last_pause
            && now.saturating_duration_since(p) < pause
        {
            return false;
        }
        self.phi(k, now)
            .is_some_and(|phi| phi > self.config.phi_convict_threshold)
    }

    /// Forgets `k` (removed node, or restarted with a new generation).
    pub fn remove(&mut self, k: &K) {
        self.windows.remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(fd: &mut FailureDetector<u8>, start: Instant, n: u64, every_ms: u64) -> Instant {
        let mut t = start;
        for _ in 0..n {
            fd.report(&1, t);
            t += Duration::from_millis(every_ms);
        }
        t - Duration::from_millis(every_ms)
    }

    #[test]
    fn steady_heartbeats_keep_phi_low() {
        let mut fd = FailureDetector::new(FailureDetectorConfig::default());
        let t0 = Instant::now();
        let last = steady(&mut fd, t0, 100, 1000);
        for k in 0..10 {
            let now = last + Duration::from_millis(100 * k);
            assert!(fd.phi(&1, now).unwrap() < 1.0);
            assert!(!fd.interpret(&1, now));
        }
        assert_eq!(fd.phi(&2, last), None);
        assert!(!fd.interpret(&2, last));
    }

    #[test]
    fn silence_crosses_threshold_after_expected_time() {
        let mut fd = FailureDetector::new(FailureDetectorConfig::default());
        let t0 = Instant::now();
        let last = steady(&mut fd, t0, 1001, 1000);
        // Window is full of 1 s samples; expected conviction at 8 * ln(10) s ≈ 18.42 s.
        let mut convicted_at = None;
        for s in 1..60u64 {
            if fd.interpret(&1, last + Duration::from_millis(s * 500)) {
                convicted_at = Some(s * 500);
                break;
            }
        }
        let at = convicted_at.expect("convicted");
        assert!((18_000..=19_000).contains(&at), "convicted after {at} ms");
    }

    #[test]
    fn a_new_endpoint_uses_the_initial_interval() {
        let mut fd = FailureDetector::new(FailureDetectorConfig::default());
        let t0 = Instant::now();
        fd.report(&1, t0);
        // mean = 2 s: phi = 0.434 * t / 2 s crosses 8 at ~36.8 s.
        let p = fd.phi(&1, t0 + Duration::from_secs(36)).unwrap();
        assert!(p < 8.0 && p > 7.5, "{p}");
        let mut now = t0;
        for _ in 0..40 {
            now += Duration::from_secs(1);
            fd.interpret(&1, now);
        }
        assert!(fd.interpret(&1, now));
        fd.remove(&1);
        assert_eq!(fd.phi(&1, now), None);
    }

    #[test]
    fn long_gaps_are_not_learned_and_local_pauses_convict_nobody() {
        let mut fd = FailureDetector::new(FailureDetectorConfig::default());
        let t0 = Instant::now();
        let last = steady(&mut fd, t0, 50, 1000);
        fd.report(&1, last + Duration::from_secs(60));
        // The 60 s outage is not a sample: mean is still ~1 s.
        let p = fd.phi(&1, last + Duration::from_secs(61)).unwrap();
        assert!(p < 0.5, "{p}");
        let now = last + Duration::from_secs(60);
        assert!(!fd.interpret(&1, now));
        // We stall for 30 s: nobody is convicted right after, even though phi is huge.
        let after = now + Duration::from_secs(30);
        assert!(!fd.interpret(&1, after));
        assert!(!fd.interpret(&1, after + Duration::from_secs(1)));
        assert!(fd.interpret(&1, after + Duration::from_secs(5)));
    }
}
