//! Queueing formulas behind the `fluid` service model, and latency distributions.
//!
//! **Per-pod model.** Requests reach Ready pods round-robin; each pod is a single FIFO server
//! with exponential service times of rate `mu` (requests per second at its CPU limit). With
//! Poisson arrivals of total rate `lambda` split round-robin over `n` pods, each pod sees
//! Erlang-`n` inter-arrival times: a GI/M/1 queue. Its sojourn time (wait + service) is
//! exponential with rate `mu * (1 - sigma)`, where `sigma` is the root in (0, 1) of
//! `sigma = A*(mu (1 - sigma))` and `A*` is the Laplace-Stieltjes transform of the inter-arrival
//! time (Kleinrock, *Queueing Systems* vol. 1, section 6.4). For Erlang-`n` arrivals at
//! per-pod utilization `rho`: `A*(mu (1 - s)) = (n rho / (n rho + 1 - s))^n` (n = 1 gives
//! M/M/1, `sigma = rho`); for deterministic arrivals (D/M/1): `exp(-(1 - s) / rho)`.
//! The `request` mode simulates exactly this system request by request, which is how the
//! formulas are validated (tests in `tests/fluid_vs_request.rs`).

use std::collections::BTreeMap;

/// `ln(20)`: an exponential sojourn of rate `theta` has its p95 at `LN_20 / theta`.
pub const LN_20: f64 = 2.995_732_273_553_991;
/// `ln(100)`: its p99 is at `LN_100 / theta`; the fluid model floors `theta` at
/// `LN_100 / timeout` so no quantile below p99 exceeds the timeout.
pub const LN_100: f64 = 4.605_170_185_988_092;
/// The highest per-pod utilization the fluid model evaluates the GI/M/1 root at (the offered
/// utilization is capped there: the root is 1 at `rho = 1`).
pub const RHO_EVALUATED_MAX: f64 = 0.999;

/// How inter-arrival times at one pod are distributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PodArrivals {
    /// Poisson arrivals split round-robin over `n` pods: Erlang-`n` inter-arrival times.
    Erlang(u32),
    /// Evenly spaced arrivals.
    Deterministic,
}

/// `sigma` of a GI/M/1 queue at utilization `rho` (0 < rho < 1); `None` when `rho >= 1`
/// (no steady state). Newton's method from 0 converges monotonically from below since
/// `f(s) = s - A*(mu (1 - s))` is concave and increasing left of the root.
pub fn gi_m1_sigma(arrivals: PodArrivals, rho: f64) -> Option<f64> {
    if rho.is_nan() || rho <= 0.0 {
        return Some(0.0);
    }
    if rho >= 1.0 {
        return None;
    }
    let mut s = 0.0f64;
    for _ in 0..100 {
        let (g, dg) = match arrivals {
            PodArrivals::Erlang(n) => {
                let a = f64::from(n) * rho;
                let g = (a / (a + 1.0 - s)).powi(n as i32);
                (g, f64::from(n) * g / (a + 1.0 - s))
            }
            PodArrivals::Deterministic => {
                let g = (-(1.0 - s) / rho).exp();
                (g, g / rho)
            }
        };
        let f = s - g;
        let df = 1.0 - dg;
        if df <= 1e-12 {
            break;
        }
        let next = s - f / df;
        if (next - s).abs() < 1e-12 {
            s = next;
            break;
        }
        s = next.clamp(0.0, 1.0 - 1e-12);
    }
    Some(s)
}

/// Quantile `q` of an exponential distribution with rate `theta` (per second), in seconds.
pub fn exp_quantile(theta: f64, q: f64) -> f64 {
    -(1.0 - q).ln() / theta
}

/// A mixture of shifted exponentials: component `j` has mass `m_j`, fixed delay `w_j`
/// seconds and an exponential part of rate `theta_j` per second. Latencies of the fluid model
/// are such mixtures (queueing delay in the backlog plus the per-pod sojourn).
#[derive(Debug, Clone, Default)]
pub struct LatencyMixture {
    parts: Vec<(f64, f64, f64)>,
}

impl LatencyMixture {
    /// Empties the mixture (keeps its capacity).
    pub fn clear(&mut self) {
        self.parts.clear();
    }

    /// Adds mass `m` with delay `w` s and rate `theta` /s (ignored if `m <= 0`).
    pub fn push(&mut self, m: f64, w: f64, theta: f64) {
        if m > 0.0 {
            self.parts.push((m, w.max(0.0), theta));
        }
    }

    /// Total mass.
    pub fn mass(&self) -> f64 {
        self.parts.iter().map(|p| p.0).sum()
    }

    /// The `q`-quantile in seconds (0 for an empty mixture), by bisection on the CDF to
    /// 1 microsecond.
    pub fn quantile(&self, q: f64) -> f64 {
        quantile_of(self.parts.iter().copied(), q)
    }
}

fn quantile_of<I: Iterator<Item = (f64, f64, f64)> + Clone>(parts: I, q: f64) -> f64 {
    let total: f64 = parts.clone().map(|p| p.0).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let mut hi = parts
        .clone()
        .map(|(_, w, th)| w + exp_quantile(th, q.max(0.999_999)))
        .fold(0.0f64, f64::max);
    let mut lo = 0.0f64;
    let cdf = |x: f64| -> f64 {
        parts
            .clone()
            .map(|(m, w, th)| {
                if x > w {
                    m * (1.0 - (-th * (x - w)).exp())
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / total
    };
    while hi - lo > 1e-6 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Accumulates the latency distribution of a whole episode in the fluid model as a mixture
/// whose components are bucketed (delay to 10 ms, rate to 1% log-steps), so memory stays
/// bounded over millions of ticks and summation order is fixed (a `BTreeMap`).
#[derive(Debug, Clone, Default)]
pub struct EpisodeLatency {
    buckets: BTreeMap<(i32, i32), (f64, f64, f64)>,
    last_theta: (u64, i32),
}

impl EpisodeLatency {
    /// Adds mass `m` with delay `w` s and rate `theta` /s.
    pub fn add(&mut self, m: f64, w: f64, theta: f64) {
        if m.is_nan() || m <= 0.0 || theta.is_nan() || theta <= 0.0 {
            return;
        }
        let kw = (w.max(0.0) * 100.0).round() as i32;
        // theta repeats tick after tick: remember the last bucket instead of taking a log.
        let kt = if self.last_theta.0 == theta.to_bits() {
            self.last_theta.1
        } else {
            let k = (theta.ln() / 0.01f64.ln_1p()).round() as i32;
            self.last_theta = (theta.to_bits(), k);
            k
        };
        let e = self.buckets.entry((kw, kt)).or_insert((0.0, 0.0, 0.0));
        e.0 += m;
        e.1 += m * w.max(0.0);
        e.2 += m * theta;
    }

    /// The `q`-quantile over everything added, seconds (0 if empty).
    pub fn quantile(&self, q: f64) -> f64 {
        quantile_of(
            self.buckets
                .values()
                .map(|&(m, mw, mt)| (m, mw / m, mt / m)),
            q,
        )
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.buckets.clear();
    }
}

/// A log-spaced latency histogram for exact-per-request latencies (request mode): bins of
/// 0.5% relative width from 10 microseconds up; quantiles are read at bin upper edges.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

const H_MIN_S: f64 = 1e-5;
const H_RATIO_LN: f64 = 0.004_987_541_511_038_968; // ln(1.005)

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; 4000],
            total: 0,
        }
    }
}

impl LatencyHistogram {
    /// Records one latency of `x` seconds.
    pub fn record(&mut self, x: f64) {
        let i = if x <= H_MIN_S {
            0
        } else {
            ((x / H_MIN_S).ln() / H_RATIO_LN) as usize + 1
        };
        let i = i.min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.total += 1;
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q`-quantile, seconds (0 if empty): the bin holding the nearest-rank sample,
    /// interpolated linearly within the bin by rank, so quantiles move continuously with the
    /// data rather than in 0.5% steps.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut acc = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            if acc + c >= rank {
                let upper = H_MIN_S * (H_RATIO_LN * i as f64).exp();
                let lower = if i == 0 {
                    0.0
                } else {
                    H_MIN_S * (H_RATIO_LN * (i - 1) as f64).exp()
                };
                let within = (rank - acc) as f64 / c as f64;
                return lower + (upper - lower) * within;
            }
            acc += c;
        }
        H_MIN_S * (H_RATIO_LN * self.counts.len() as f64).exp()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
    }
}

/// Nearest-rank quantile of `xs` (reorders it; 0 if empty).
pub fn sample_quantile(xs: &mut [f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    let (_, v, _) = xs.select_nth_unstable_by(rank - 1, f64::total_cmp);
    *v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mm1_sigma_equals_rho() {
        // n = 1: sigma = rho / (rho + 1 - sigma) has the root sigma = rho.
        for rho in [0.1, 0.5, 0.9, 0.99] {
            let s = gi_m1_sigma(PodArrivals::Erlang(1), rho).unwrap();
            assert!((s - rho).abs() < 1e-9, "rho {rho}: sigma {s}");
        }
        assert!(gi_m1_sigma(PodArrivals::Erlang(3), 1.0).is_none());
    }

    #[test]
    fn erlang_sigma_solves_its_equation_and_falls_with_n() {
        let mut prev = 1.0;
        for n in [1u32, 2, 4, 16] {
            let rho = 0.7;
            let s = gi_m1_sigma(PodArrivals::Erlang(n), rho).unwrap();
            let a = f64::from(n) * rho;
            let g = (a / (a + 1.0 - s)).powi(n as i32);
            assert!((s - g).abs() < 1e-9);
            assert!(s < prev, "more regular arrivals wait less");
            prev = s;
        }
        let d = gi_m1_sigma(PodArrivals::Deterministic, 0.7).unwrap();
        assert!((d - (-(1.0 - d) / 0.7f64).exp()).abs() < 1e-9);
        assert!(d < prev);
    }

    #[test]
    fn mixture_quantile_matches_closed_form() {
        // A single exponential of rate 10/s: p95 = ln(20)/10 = 0.299573 s.
        let mut m = LatencyMixture::default();
        m.push(5.0, 0.0, 10.0);
        assert!((m.quantile(0.95) - 20f64.ln() / 10.0).abs() < 1e-5);
        // Shifting by 2 s shifts every quantile by 2 s.
        m.clear();
        m.push(1.0, 2.0, 10.0);
        assert!((m.quantile(0.5) - (2.0 + 2f64.ln() / 10.0)).abs() < 1e-5);
        let mut e = EpisodeLatency::default();
        e.add(3.0, 0.0, 10.0);
        assert!((e.quantile(0.95) - 20f64.ln() / 10.0).abs() < 1e-5);
    }

    #[test]
    fn histogram_and_sample_quantiles() {
        let mut h = LatencyHistogram::default();
        let mut xs: Vec<f64> = (1..=100).map(|i| i as f64 / 1000.0).collect();
        for &x in &xs {
            h.record(x);
        }
        assert_eq!(sample_quantile(&mut xs, 0.95), 0.095);
        let q = h.quantile(0.95);
        assert!((q - 0.095).abs() / 0.095 < 0.006, "{q}");
    }
}
