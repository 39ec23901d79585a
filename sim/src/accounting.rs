//! Per-tick and per-episode accounting.

use crate::queueing::{EpisodeLatency, LatencyHistogram};

/// What happened in one accounting tick (`service.tick_s`), true state (not what controllers
/// see).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct TickStats {
    /// End of the tick, seconds since the start.
    pub time_s: f64,
    /// Requests that arrived during the tick.
    pub arrivals: f64,
    /// Requests completed during the tick.
    pub served: f64,
    /// Requests dropped during the tick (timeout, no Ready pod, crash).
    pub dropped: f64,
    /// Requests waiting or in service at the end of the tick.
    pub backlog: f64,
    /// `spec.replicas` at the end of the tick.
    pub desired_replicas: u32,
    /// Ready pods at the end of the tick.
    pub ready_replicas: u32,
    /// Live pods not Ready at the end of the tick.
    pub pending_replicas: u32,
    /// Pods occupying a node (terminating included): what is paid for.
    pub billed_pods: u32,
    /// CPU requested by billed pods, millicores.
    pub cpu_requested_milli: f64,
    /// CPU used by all pods during the tick (mean), millicores.
    pub cpu_used_milli: f64,
    /// CPU used by Ready pods / their requests (HPA's utilization, true value).
    pub cpu_utilization: f64,
    /// Latency percentiles of requests served in the tick, milliseconds (0 if none).
    pub p50_latency_ms: f64,
    /// See `p50_latency_ms`.
    pub p95_latency_ms: f64,
    /// See `p50_latency_ms`.
    pub p99_latency_ms: f64,
    /// p95 above the SLO, or more than the allowed share dropped.
    pub slo_violated: bool,
}

/// Totals of consecutive ticks, with latency percentiles weighted by requests served: what a
/// Prometheus scrape reports over its interval, and what one row of an aggregated time series
/// shows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TickAggregate {
    /// Ticks added.
    pub ticks: u32,
    /// Requests arrived, served and dropped over those ticks.
    pub arrivals: f64,
    /// See `arrivals`.
    pub served: f64,
    /// See `arrivals`.
    pub dropped: f64,
    /// Sums of `served x p50/p95/p99 latency` (ms x requests).
    pub weighted_latency_ms: [f64; 3],
    /// Sum of the ticks' CPU utilization.
    pub utilization_sum: f64,
    /// Some tick violated the SLO.
    pub slo_violated: bool,
    /// The last tick added.
    pub last: TickStats,
}

impl TickAggregate {
    /// Adds one tick.
    pub fn add(&mut self, t: &TickStats) {
        self.ticks += 1;
        self.arrivals += t.arrivals;
        self.served += t.served;
        self.dropped += t.dropped;
        let q = [t.p50_latency_ms, t.p95_latency_ms, t.p99_latency_ms];
        for (w, x) in self.weighted_latency_ms.iter_mut().zip(q) {
            *w += t.served * x;
        }
        self.utilization_sum += t.cpu_utilization;
        self.slo_violated |= t.slo_violated;
        self.last = *t;
    }

    /// p50, p95 and p99 latency (ms): the ticks' percentiles weighted by requests served
    /// (0 when nothing was served).
    pub fn latency_ms(&self) -> [f64; 3] {
        self.weighted_latency_ms.map(|w| {
            if self.served > 0.0 {
                w / self.served
            } else {
                0.0
            }
        })
    }

    /// Dropped / arrived (0 when nothing arrived).
    pub fn dropped_ratio(&self) -> f64 {
        if self.arrivals > 0.0 {
            self.dropped / self.arrivals
        } else {
            0.0
        }
    }

    /// Mean of the ticks' CPU utilization (0 for no tick).
    pub fn utilization_mean(&self) -> f64 {
        self.utilization_sum / f64::from(self.ticks.max(1))
    }
}

/// Running totals of an episode.
#[derive(Debug, Clone, Default)]
pub struct EpisodeStats {
    /// Ticks accounted.
    pub ticks: u64,
    /// Simulated seconds accounted.
    pub seconds: f64,
    /// Total arrivals.
    pub arrivals: f64,
    /// Total completed.
    pub served: f64,
    /// Total dropped.
    pub dropped: f64,
    /// Pod-seconds of billed pods.
    pub pod_seconds: f64,
    /// Requested CPU of billed pods integrated over time, millicore-seconds.
    pub cpu_requested_milli_s: f64,
    /// Used CPU integrated over time, millicore-seconds.
    pub cpu_used_milli_s: f64,
    /// Sum over ticks of `cpu_utilization` (ticks with Ready pods).
    pub utilization_sum: f64,
    /// Ticks with at least one Ready pod.
    pub utilization_ticks: u64,
    /// Ticks that violated the SLO.
    pub slo_violation_ticks: u64,
    /// Changes of `spec.replicas`.
    pub scaling_actions: u64,
    /// Fluid-mode latency distribution.
    pub fluid_latency: EpisodeLatency,
    /// Request-mode latency histogram.
    pub request_latency: LatencyHistogram,
}

/// The episode's figures in the units of `summary.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct EpisodeSummary {
    /// Billed pod-hours.
    pub pod_hours: f64,
    /// Requested CPU core-hours of billed pods.
    pub cpu_core_hours: f64,
    /// Share of ticks violating the SLO, percent.
    pub slo_violation_pct: f64,
    /// p95 latency over all served requests, milliseconds.
    pub p95_latency_ms: f64,
    /// p99 latency over all served requests, milliseconds.
    pub p99_latency_ms: f64,
    /// Dropped / arrived, percent.
    pub dropped_pct: f64,
    /// Changes of `spec.replicas`.
    pub scaling_actions: f64,
    /// Mean over ticks of the Ready pods' CPU utilization (fraction of request).
    pub cpu_utilization_mean: f64,
    /// Total arrivals.
    pub arrivals: f64,
    /// Total served.
    pub served: f64,
    /// Total dropped.
    pub dropped: f64,
}

impl EpisodeStats {
    /// Adds one tick.
    pub fn add(&mut self, t: &TickStats, tick_s: f64) {
        self.ticks += 1;
        self.seconds += tick_s;
        self.arrivals += t.arrivals;
        self.served += t.served;
        self.dropped += t.dropped;
        self.pod_seconds += f64::from(t.billed_pods) * tick_s;
        self.cpu_requested_milli_s += t.cpu_requested_milli * tick_s;
        self.cpu_used_milli_s += t.cpu_used_milli * tick_s;
        if t.ready_replicas > 0 {
            self.utilization_sum += t.cpu_utilization;
            self.utilization_ticks += 1;
        }
        self.slo_violation_ticks += u64::from(t.slo_violated);
    }

    /// The summary figures (latency quantiles from whichever mode recorded latencies).
    pub fn summary(&self) -> EpisodeSummary {
        let (p95, p99) = if self.request_latency.count() > 0 {
            (
                self.request_latency.quantile(0.95),
                self.request_latency.quantile(0.99),
            )
        } else {
            (
                self.fluid_latency.quantile(0.95),
                self.fluid_latency.quantile(0.99),
            )
        };
        let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 0.0 };
        EpisodeSummary {
            pod_hours: self.pod_seconds / 3600.0,
            cpu_core_hours: self.cpu_requested_milli_s / 3600.0 / 1000.0,
            slo_violation_pct: pct(self.slo_violation_ticks as f64, self.ticks as f64),
            p95_latency_ms: p95 * 1000.0,
            p99_latency_ms: p99 * 1000.0,
            dropped_pct: pct(self.dropped, self.arrivals),
            scaling_actions: self.scaling_actions as f64,
            cpu_utilization_mean: if self.utilization_ticks > 0 {
                self.utilization_sum / self.utilization_ticks as f64
            } else {
                0.0
            },
            arrivals: self.arrivals,
            served: self.served,
            dropped: self.dropped,
        }
    }
}
