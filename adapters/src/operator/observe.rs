//! Stage 1 over Prometheus: [`Observe`] for [`StateObserver`].
//!
//! Health rules (what makes the decision agent fall back to the HPA rules):
//! - Prometheus cannot be queried: `unreachable`; the state then carries the scaler's pods and
//!   replica counts with no usage figures (so the HPA fallback keeps the current count, as the
//!   Kubernetes controller does without metrics);
//! - the newest sample is older than `stale_after_s` (or there is none): `stale`;
//! - Ready pods exist but the per-pod CPU query came back empty: `missing`.
//!
//! Other empty queries (request rate or latency before the first request) are not a reason to
//! fall back: they are 0 in the state and listed in the debug log.

use sim::ClusterState;

use super::stages::{MetricsHealth, Observe, Observed};
use crate::scaler::Scaler;
use crate::state::{pod_view, StateObserver};

impl Observe for StateObserver {
    fn observe(&mut self, scaler: &mut dyn Scaler) -> Observed {
        if let Err(e) = scaler.refresh() {
            tracing::warn!(error = %e, scaler = scaler.name(), "cannot refresh the replicas");
        }
        match StateObserver::observe(self, scaler) {
            Ok(o) => {
                let has_ready = o.state.ready_replicas > 0;
                let health = if o.stale {
                    MetricsHealth::Stale {
                        age_s: o.newest_sample_age_s.unwrap_or(f64::INFINITY),
                    }
                } else if has_ready && o.missing.contains(&"pod_cpu_millicores") {
                    MetricsHealth::Missing {
                        what: o.missing.iter().map(|s| (*s).to_string()).collect(),
                    }
                } else {
                    if !o.missing.is_empty() {
                        tracing::debug!(missing = ?o.missing, "empty queries (taken as 0)");
                    }
                    MetricsHealth::Fresh
                };
                let mut state = o.state;
                if !health.is_fresh() {
                    strip_metrics(&mut state);
                }
                Observed { state, health }
            }
            Err(e) => Observed {
                state: pods_only(
                    scaler,
                    self.config().cpu_request_milli,
                    self.config().memory_request_bytes,
                ),
                health: MetricsHealth::Unreachable {
                    error: e.to_string(),
                },
            },
        }
    }
}

/// Removes every metrics-derived figure from `state` (pods and counts stay).
pub fn strip_metrics(state: &mut ClusterState) {
    for p in &mut state.pods {
        p.cpu_usage_milli = None;
        p.memory_usage_bytes = None;
        p.metric_timestamp = None;
    }
    state.request_rate_per_s = 0.0;
    state.p50_latency_ms = 0.0;
    state.p95_latency_ms = 0.0;
    state.p99_latency_ms = 0.0;
    state.queue_length = 0.0;
    state.dropped_ratio = 0.0;
}

/// A state with the scaler's pods and replica counts and no metrics (pod ids are positions
/// in the scaler's list; times are left unset).
pub fn pods_only(
    scaler: &dyn Scaler,
    cpu_request_milli: u64,
    memory_request_bytes: u64,
) -> ClusterState {
    let pods = scaler.pods();
    let status = pods.iter().filter(|p| !p.terminating).count() as u32;
    let ready = pods.iter().filter(|p| p.ready && !p.terminating).count() as u32;
    ClusterState {
        desired_replicas: scaler.desired_replicas(),
        status_replicas: status,
        ready_replicas: ready,
        pending_replicas: status - ready,
        pods: pods
            .iter()
            .enumerate()
            .map(|(i, p)| pod_view(p, i as u64, cpu_request_milli, memory_request_bytes))
            .collect(),
        ..ClusterState::default()
    }
}
