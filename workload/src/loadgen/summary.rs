//! The load generator's JSON summary ([`Summary`], schema `nimbusguard.loadgen/v1`) and the
//! log-bucketed histogram its quantiles come from.

use std::collections::BTreeMap;

/// Value of [`Summary::schema`].
pub const SCHEMA: &str = "nimbusguard.loadgen/v1";

/// Relative width of a [`LogHistogram`] bucket: quantiles are within 1 % of the true value.
pub const RELATIVE_PRECISION: f64 = 0.01;

/// Smallest value a [`LogHistogram`] resolves (ms); smaller values count as 0.
pub const MIN_RESOLVED_MS: f64 = 0.001;

/// A sparse histogram of non-negative values (milliseconds) in buckets 1 % wide, so memory
/// grows with the spread of values, not their count. Quantiles are bucket upper bounds
/// (clamped to the exact maximum), hence at most 1 % high.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogHistogram {
    buckets: BTreeMap<i32, u64>,
    count: u64,
    max: f64,
}

impl LogHistogram {
    /// Records one value in ms (negative and NaN values count as 0).
    pub fn record(&mut self, ms: f64) {
        let v = if ms.is_nan() { 0.0 } else { ms.max(0.0) };
        let idx = if v < MIN_RESOLVED_MS {
            i32::MIN
        } else {
            ((v / MIN_RESOLVED_MS).ln() / RELATIVE_PRECISION.ln_1p()).floor() as i32
        };
        *self.buckets.entry(idx).or_insert(0) += 1;
        self.count += 1;
        self.max = self.max.max(v);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest value recorded (ms); `None` if empty.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The `q`-quantile (0..=1) in ms: the smallest bucket bound with at least `ceil(q * n)`
    /// values at or below it. `None` if empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (&idx, &n) in &self.buckets {
            seen += n;
            if seen >= rank {
                if idx == i32::MIN {
                    return Some(0.0);
                }
                let upper = MIN_RESOLVED_MS * (RELATIVE_PRECISION.ln_1p() * (idx + 1) as f64).exp();
                return Some(upper.min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Failed requests by kind. `total()` is every sent request that was not `ok`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorCounts {
    /// Answered 5xx (e.g. the app's 503 for dropped requests).
    pub status_5xx: u64,
    /// Answered 4xx.
    pub status_4xx: u64,
    /// No complete answer within `--timeout-s`.
    pub timeout: u64,
    /// Could not connect (refused, unreachable).
    pub connect: u64,
    /// Anything else (1xx/3xx answers, broken connections, body errors).
    pub other: u64,
}

impl ErrorCounts {
    /// Sum of all kinds.
    pub fn total(&self) -> u64 {
        self.status_5xx + self.status_4xx + self.timeout + self.connect + self.other
    }
}

/// How late requests were sent compared with their scheduled instants, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LagStats {
    /// Median lag, ms (null if nothing was scheduled).
    pub p50: Option<f64>,
    /// 99th percentile lag, ms.
    pub p99: Option<f64>,
    /// Largest lag, ms.
    pub max: Option<f64>,
}

/// Latency of `ok` requests from send to the end of the answer's body, ms (null if none).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatencyStats {
    /// Median, ms.
    pub p50: Option<f64>,
    /// 95th percentile, ms.
    pub p95: Option<f64>,
    /// 99th percentile, ms.
    pub p99: Option<f64>,
    /// Largest, ms.
    pub max: Option<f64>,
}

/// Outcome of the `--trigger` events (POSTed to `--trigger-url` or produced to Kafka).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TriggerCounts {
    /// Events sent (posted or produced).
    pub sent: u64,
    /// Events answered 2xx, or acknowledged by the Kafka broker.
    pub ok: u64,
    /// Events that failed (non-2xx, timeout, connection error; for Kafka: not delivered
    /// within `--timeout-s`).
    pub errors: u64,
}

/// One rate bin of the schedule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BinSummary {
    /// Start of the bin, seconds from the start of the run.
    pub start_s: f64,
    /// The series' rate in this bin, requests/s.
    pub intended_rate_per_s: f64,
    /// Requests scheduled in this bin and sent.
    pub sent: u64,
    /// Of those, answered 2xx.
    pub ok: u64,
    /// Of those, failed (any kind).
    pub errors: u64,
    /// 95th percentile latency of this bin's `ok` requests, ms (null if none).
    pub p95_latency_ms: Option<f64>,
}

/// What a run did (serialized as JSON by `loadgen`). Invariants: `intended = sent +
/// skipped_in_flight` and `sent = ok + errors.total()`; the bins' `sent`, `ok` and `errors`
/// add up to the totals.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The request URLs (requests went round-robin over them).
    pub targets: Vec<String>,
    /// `poisson` or `deterministic`.
    pub arrivals: sim::workload::Arrivals,
    /// Seed of the arrival stream.
    pub seed: u64,
    /// Length of the schedule (the rate series), seconds.
    pub schedule_duration_s: f64,
    /// Wall-clock length of the sending phase (start to the later of the schedule's end and
    /// the last send), seconds.
    pub duration_s: f64,
    /// Requests scheduled.
    pub intended: u64,
    /// Requests sent.
    pub sent: u64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Requests not sent because `max_in_flight` requests were already outstanding.
    pub skipped_in_flight: u64,
    /// `intended / schedule_duration_s`, requests/s.
    pub intended_rate_per_s: f64,
    /// `sent / duration_s`, requests/s.
    pub achieved_rate_per_s: f64,
    /// Send lag (actual minus scheduled send instant), ms.
    pub send_lag_ms: LagStats,
    /// Latency of ok requests, ms.
    pub latency_ms: LatencyStats,
    /// The `--trigger` events.
    pub triggers: TriggerCounts,
    /// Per rate bin of the series, in order.
    pub bins: Vec<BinSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut h = LogHistogram::default();
        for i in 1..=1000 {
            h.record(i as f64);
        }
        // Exact p50 = 500, p95 = 950, p99 = 990; buckets are at most 1 % high.
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let v = h.quantile(q).unwrap();
            assert!(v >= exact * 0.99 && v <= exact * 1.01, "q{q}: {v}");
        }
        assert_eq!(h.quantile(1.0), Some(1000.0));
        assert_eq!(h.max(), Some(1000.0));
        assert_eq!(h.count(), 1000);
        let mut z = LogHistogram::default();
        assert_eq!(z.quantile(0.5), None);
        z.record(0.0);
        z.record(-1.0);
        assert_eq!(z.quantile(0.99), Some(0.0));
    }
}
