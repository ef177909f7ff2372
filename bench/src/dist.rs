//! Key distributions: which partition index an operation touches.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

/// How partition indexes are drawn from `0..n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDist {
    /// 0, 1, 2, ... shared by all workers, wrapping at `n`.
    Sequential,
    Uniform,
    /// Rank `k` (1-based) has weight `1 / k^exponent`; rank 1 is index 0.
    Zipfian {
        exponent: f64,
    },
}

/// A thread-safe generator of partition indexes in `0..n`.
#[derive(Debug)]
pub struct KeyGen {
    n: u64,
    dist: KeyDist,
    next: AtomicU64,
    zipf: Option<Zipf>,
}

impl KeyGen {
    pub fn new(dist: KeyDist, n: u64) -> KeyGen {
        let n = n.max(1);
        let zipf = match dist {
            KeyDist::Zipfian { exponent } => Some(Zipf::new(n, exponent)),
            _ => None,
        };
        KeyGen {
            n,
            dist,
            next: AtomicU64::new(0),
            zipf,
        }
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self.dist {
            KeyDist::Sequential => self.next.fetch_add(1, Ordering::Relaxed) % self.n,
            KeyDist::Uniform => rng.random_range(0..self.n),
            KeyDist::Zipfian { .. } => {
                let zipf = self.zipf.as_ref().expect("zipf built for zipfian");
                zipf.sample(rng) - 1
            }
        }
    }
}

/// Zipf sampler over ranks `1..=n` by rejection-inversion (Hörmann & Derflinger, 1996):
/// O(1) per sample and no O(n) table, so 10M-key populations cost nothing to set up.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    pub fn new(n: u64, exponent: f64) -> Zipf {
        assert!(n >= 1, "zipf needs at least one element");
        assert!(
            exponent > 0.0 && exponent.is_finite(),
            "zipf exponent must be > 0"
        );
        let mut z = Zipf {
            n: n as f64,
            s: exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.threshold = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        loop {
            let u: f64 = rng.random::<f64>();
            let u = self.h_integral_n + u * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        // Rounding can push t just below -1 where log1p is undefined.
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// log1p(x)/x, continuous at 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// expm1(x)/x, continuous at 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn sequential_wraps_in_order() {
        let g = KeyGen::new(KeyDist::Sequential, 3);
        let mut rng = SmallRng::seed_from_u64(1);
        let got: Vec<u64> = (0..7).map(|_| g.next(&mut rng)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn uniform_stays_in_range_and_is_flat() {
        let g = KeyGen::new(KeyDist::Uniform, 10);
        let mut rng = SmallRng::seed_from_u64(2);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[g.next(&mut rng) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    fn zipf_counts(n: u64, s: f64, samples: u32) -> Vec<u32> {
        let g = KeyGen::new(KeyDist::Zipfian { exponent: s }, n);
        let mut rng = SmallRng::seed_from_u64(3);
        let mut counts = vec![0u32; n as usize];
        for _ in 0..samples {
            let k = g.next(&mut rng);
            assert!(k < n);
            counts[k as usize] += 1;
        }
        counts
    }

    #[test]
    fn zipfian_matches_expected_head_probability() {
        for s in [0.5, 0.99, 1.0, 1.5] {
            let n = 1000u64;
            let samples = 200_000;
            let counts = zipf_counts(n, s, samples);
            let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
            for rank in [1u64, 2, 10] {
                let expected = (rank as f64).powf(-s) / norm;
                let got = counts[(rank - 1) as usize] as f64 / samples as f64;
                assert!(
                    (got - expected).abs() < 0.1 * expected + 0.002,
                    "s={s} rank={rank} got={got} expected={expected}"
                );
            }
            // Skew: the head outweighs the tail.
            assert!(counts[0] > counts[999] * 5, "s={s}");
        }
    }

    #[test]
    fn zipfian_single_element() {
        let counts = zipf_counts(1, 1.2, 100);
        assert_eq!(counts, vec![100]);
    }
}
