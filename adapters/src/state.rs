//! Builds a [`ClusterState`] from a [`Scaler`]'s pod list and Prometheus, and says how fresh and
//! complete it is ([`Observation`]), so a control loop can fall back when metrics are missing.
//!
//! All queries are instant queries evaluated at the same instant (the wall clock at the start of
//! [`StateObserver::observe`]). Scalar queries that return several samples are summed; NaN
//! results (e.g. a latency quantile or a ratio with no traffic: 0/0) count as 0 and are listed in
//! [`Observation::undefined`]; empty results count as 0 and are listed in
//! [`Observation::missing`].

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sim::{ClusterState, PodPhase, PodView, SimTime};

use crate::error::{Error, Result};
use crate::prometheus::{PrometheusClient, QueryResult};
use crate::scaler::{PodInfo, Scaler};

/// The PromQL used to build a [`ClusterState`]. Every field is one instant query.
///
/// Defaults assume a 1 s scrape interval, the workload app's series under job `workload` with a
/// `pod` label (file_sd), and the front's series under job `front`:
/// - `pod_cpu_millicores`: `sum by (pod) (rate(process_cpu_seconds_total{job="workload"}[5s])) * 1000`
/// - `pod_memory_bytes`: `sum by (pod) (process_resident_memory_bytes{job="workload"})`
/// - `request_rate_per_s`: `sum(rate(front_requests_total{job="front"}[5s]))`
/// - `p50_latency_ms` (`p95_…`, `p99_…` with 0.95, 0.99):
///   `histogram_quantile(0.5, sum by (le) (rate(front_request_duration_seconds_bucket{job="front"}[5s]))) * 1000`
/// - `dropped_ratio`: `(sum(rate(front_requests_total{job="front",outcome="dropped"}[5s])) or vector(0)) / sum(rate(front_requests_total{job="front"}[5s]))`
/// - `queue_length`: `sum(workload_requests_in_flight{job="workload"})` (requests in the
///   replicas, in service or waiting: an upper bound of the simulator's queue length)
/// - `newest_sample_timestamp_s`: `max(timestamp(process_cpu_seconds_total{job="workload"}))`
///   (Unix seconds of the newest scraped sample; its age decides staleness)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromQueries {
    /// Per-pod CPU usage, millicores; one sample per pod, labelled with `pod_label`.
    pub pod_cpu_millicores: String,
    /// Per-pod resident memory, bytes; one sample per pod, labelled with `pod_label`.
    pub pod_memory_bytes: String,
    /// Request arrival rate at the service, requests per second.
    pub request_rate_per_s: String,
    /// Median latency, milliseconds.
    pub p50_latency_ms: String,
    /// 95th percentile latency, milliseconds.
    pub p95_latency_ms: String,
    /// 99th percentile latency, milliseconds.
    pub p99_latency_ms: String,
    /// Share of requests dropped, in [0, 1].
    pub dropped_ratio: String,
    /// Requests in the system (becomes `queue_length`).
    pub queue_length: String,
    /// Timestamp of the newest sample, Unix seconds.
    pub newest_sample_timestamp_s: String,
}

/// Quantile `q` of a request-duration histogram `metric` (seconds) of job `job`, milliseconds.
fn latency_query(metric: &str, job: &str, q: f64) -> String {
    format!(
        "histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{job=\"{job}\"}}[5s]))) * 1000"
    )
}

impl Default for PromQueries {
    fn default() -> Self {
        Self {
            pod_cpu_millicores:
                r#"sum by (pod) (rate(process_cpu_seconds_total{job="workload"}[5s])) * 1000"#.into(),
            pod_memory_bytes: r#"sum by (pod) (process_resident_memory_bytes{job="workload"})"#
                .into(),
            request_rate_per_s: r#"sum(rate(front_requests_total{job="front"}[5s]))"#.into(),
            p50_latency_ms: latency_query("front_request_duration_seconds", "front", 0.5),
            p95_latency_ms: latency_query("front_request_duration_seconds", "front", 0.95),
            p99_latency_ms: latency_query("front_request_duration_seconds", "front", 0.99),
            dropped_ratio: concat!(
                r#"(sum(rate(front_requests_total{job="front",outcome="dropped"}[5s])) or vector(0))"#,
                r#" / sum(rate(front_requests_total{job="front"}[5s]))"#
            )
            .into(),
            queue_length: r#"sum(workload_requests_in_flight{job="workload"})"#.into(),
            newest_sample_timestamp_s:
                r#"max(timestamp(process_cpu_seconds_total{job="workload"}))"#.into(),
        }
    }
}

impl PromQueries {
    /// The queries for a Kubernetes cluster, where Services balance the traffic and there is no
    /// front: the request rate, latency and drops are summed over the replicas' own
    /// `workload_requests_total{outcome}` and `workload_request_duration_seconds` (job
    /// `workload`, one `pod` label per replica, as deploy/base/prometheus/prometheus.yml and
    /// the tests' kubernetes_sd config label them); CPU, memory, queue and staleness as in
    /// [`PromQueries::default`].
    pub fn in_cluster() -> Self {
        let latency = |q| latency_query("workload_request_duration_seconds", "workload", q);
        Self {
            request_rate_per_s: r#"sum(rate(workload_requests_total{job="workload"}[5s]))"#.into(),
            p50_latency_ms: latency(0.5),
            p95_latency_ms: latency(0.95),
            p99_latency_ms: latency(0.99),
            dropped_ratio: concat!(
                r#"(sum(rate(workload_requests_total{job="workload",outcome="dropped"}[5s])) or vector(0))"#,
                r#" / sum(rate(workload_requests_total{job="workload"}[5s]))"#
            )
            .into(),
            ..Self::default()
        }
    }
}

/// Configuration of a [`StateObserver`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// The PromQL (see [`PromQueries`] for the defaults).
    pub queries: PromQueries,
    /// Label that names the pod in per-pod results. Default `pod`.
    pub pod_label: String,
    /// Data whose newest sample is older than this is stale, seconds. Default 30.
    pub stale_after_s: f64,
    /// CPU request of every pod, millicores (the HPA's denominator). Default 1000.
    pub cpu_request_milli: u64,
    /// Memory request of every pod, bytes. Default 268435456 (256 MiB).
    pub memory_request_bytes: u64,
    /// Averaging window of the per-pod CPU query, seconds (reported in `PodView`). Default 5.
    pub metric_window_s: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            queries: PromQueries::default(),
            pod_label: "pod".into(),
            stale_after_s: 30.0,
            cpu_request_milli: 1000,
            memory_request_bytes: 256 << 20,
            metric_window_s: 5,
        }
    }
}

impl StateConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.stale_after_s.is_finite() && self.stale_after_s >= 0.0) {
            return Err(Error::Config(format!(
                "state.stale_after_s must be >= 0, got {}",
                self.stale_after_s
            )));
        }
        if self.cpu_request_milli == 0 || self.memory_request_bytes == 0 {
            return Err(Error::Config(
                "state.cpu_request_milli and state.memory_request_bytes must be > 0".into(),
            ));
        }
        if self.pod_label.is_empty() {
            return Err(Error::Config("state.pod_label must not be empty".into()));
        }
        Ok(())
    }
}

/// A [`ClusterState`] with how much to trust it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The state (times in milliseconds since the observer's epoch).
    pub state: ClusterState,
    /// When the queries were evaluated, Unix seconds.
    pub evaluated_at_s: f64,
    /// Age of the newest sample at `evaluated_at_s`, seconds (`None`: no sample at all).
    pub newest_sample_age_s: Option<f64>,
    /// The newest sample is older than `stale_after_s`, or there is none.
    pub stale: bool,
    /// Names of the [`PromQueries`] fields whose result was empty (value taken as 0).
    pub missing: Vec<&'static str>,
    /// Names of the fields whose result was NaN (no traffic: value taken as 0).
    pub undefined: Vec<&'static str>,
}

impl Observation {
    /// Fresh and no query missing: safe to act on.
    pub fn is_complete(&self) -> bool {
        !self.stale && self.missing.is_empty()
    }
}

/// Builds [`Observation`]s from Prometheus and a scaler's pods.
#[derive(Debug)]
pub struct StateObserver {
    client: PrometheusClient,
    config: StateConfig,
    epoch: SystemTime,
    ids: BTreeMap<String, u64>,
}

impl StateObserver {
    /// An observer whose [`SimTime`]s count from `epoch` (e.g. the start of the live run).
    ///
    /// # Errors
    /// [`Error::Config`] from [`StateConfig::validate`].
    pub fn new(client: PrometheusClient, config: StateConfig, epoch: SystemTime) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            client,
            config,
            epoch,
            ids: BTreeMap::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &StateConfig {
        &self.config
    }

    /// Observes `scaler`'s replicas (its last refreshed view) and Prometheus.
    ///
    /// # Errors
    /// The first failing query's error ([`Error::PromUnreachable`] when Prometheus is down).
    pub fn observe(&mut self, scaler: &dyn Scaler) -> Result<Observation> {
        self.observe_pods(scaler.desired_replicas(), &scaler.pods())
    }

    /// Observes the given pods (a scaler's view) and Prometheus. Pod ids are assigned in order
    /// of first appearance of each name and stay stable.
    ///
    /// # Errors
    /// As [`StateObserver::observe`].
    pub fn observe_pods(&mut self, desired: u32, pods: &[PodInfo]) -> Result<Observation> {
        let now = SystemTime::now();
        let at = unix_s(now);
        let q = &self.config.queries;
        let mut missing = Vec::new();
        let mut undefined = Vec::new();
        let cpu = self.per_pod(&q.pod_cpu_millicores, at)?;
        let mem = self.per_pod(&q.pod_memory_bytes, at)?;
        if cpu.is_empty() {
            missing.push("pod_cpu_millicores");
        }
        if mem.is_empty() {
            missing.push("pod_memory_bytes");
        }
        let mut scalar = |name: &'static str, promql: &str| -> Result<f64> {
            let r = self.client.query(promql, Some(at))?;
            Ok(match reduce(&r) {
                Reduced::Empty => {
                    missing.push(name);
                    0.0
                }
                Reduced::NaN => {
                    undefined.push(name);
                    0.0
                }
                Reduced::Value(v) => v,
            })
        };
        let request_rate_per_s = scalar("request_rate_per_s", &q.request_rate_per_s)?;
        let p50_latency_ms = scalar("p50_latency_ms", &q.p50_latency_ms)?;
        let p95_latency_ms = scalar("p95_latency_ms", &q.p95_latency_ms)?;
        let p99_latency_ms = scalar("p99_latency_ms", &q.p99_latency_ms)?;
        let dropped_ratio = scalar("dropped_ratio", &q.dropped_ratio)?;
        let queue_length = scalar("queue_length", &q.queue_length)?;
        let newest = scalar("newest_sample_timestamp_s", &q.newest_sample_timestamp_s)?;
        let newest_sample_age_s = (!missing.contains(&"newest_sample_timestamp_s")
            && !undefined.contains(&"newest_sample_timestamp_s"))
        .then(|| (at - newest).max(0.0));
        let stale = newest_sample_age_s.is_none_or(|a| a > self.config.stale_after_s);
        if stale {
            tracing::warn!(age_s = ?newest_sample_age_s, "metrics are stale");
        }

        let now_sim = self.sim_time(now);
        let mut views = Vec::with_capacity(pods.len());
        for p in pods {
            let next = self.ids.len() as u64;
            let id = *self.ids.entry(p.name.clone()).or_insert(next);
            let cpu_usage_milli = cpu.get(&p.name).map(|v| v.max(0.0).round() as u64);
            let memory_usage_bytes = mem.get(&p.name).map(|v| v.max(0.0).round() as u64);
            let mut v = pod_view(
                p,
                id,
                self.config.cpu_request_milli,
                self.config.memory_request_bytes,
            );
            v.ready_last_transition = p.ready_since.map(|t| self.sim_time(t));
            v.start_time = p.started_at.map(|t| self.sim_time(t));
            v.cpu_usage_milli = cpu_usage_milli;
            v.memory_usage_bytes = memory_usage_bytes;
            v.metric_timestamp =
                (cpu_usage_milli.is_some() || memory_usage_bytes.is_some()).then_some(now_sim);
            v.metric_window_s = self.config.metric_window_s;
            views.push(v);
        }
        views.sort_by_key(|v| v.id);
        let status_replicas = pods.iter().filter(|p| !p.terminating).count() as u32;
        let ready_replicas = pods.iter().filter(|p| p.ready && !p.terminating).count() as u32;
        let state = ClusterState {
            time: now_sim,
            desired_replicas: desired,
            status_replicas,
            ready_replicas,
            pending_replicas: status_replicas - ready_replicas,
            pods: views,
            request_rate_per_s,
            p50_latency_ms,
            p95_latency_ms,
            p99_latency_ms,
            queue_length,
            dropped_ratio,
        };
        Ok(Observation {
            state,
            evaluated_at_s: at,
            newest_sample_age_s,
            stale,
            missing,
            undefined,
        })
    }

    /// A per-pod query as `pod name -> value` (NaN samples dropped).
    fn per_pod(&self, promql: &str, at: f64) -> Result<BTreeMap<String, f64>> {
        let r = self.client.query(promql, Some(at))?;
        Ok(r.as_vector()
            .iter()
            .filter(|s| s.value.is_finite())
            .filter_map(|s| Some((s.labels.get(&self.config.pod_label)?.clone(), s.value)))
            .collect())
    }

    fn sim_time(&self, t: SystemTime) -> SimTime {
        let d = t.duration_since(self.epoch).unwrap_or(Duration::ZERO);
        SimTime::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A scaler's pod as a [`PodView`] with id `id` and the given requests: phase (Running once
/// started), readiness (never while terminating), deletion; no metrics and no times (the
/// caller fills what it knows).
pub fn pod_view(
    p: &PodInfo,
    id: u64,
    cpu_request_milli: u64,
    memory_request_bytes: u64,
) -> PodView {
    PodView {
        id,
        phase: if p.started_at.is_some() {
            PodPhase::Running
        } else {
            PodPhase::Pending
        },
        ready: p.ready && !p.terminating,
        ready_last_transition: None,
        start_time: None,
        deleting: p.terminating,
        cpu_request_milli,
        memory_request_bytes,
        cpu_usage_milli: None,
        memory_usage_bytes: None,
        metric_timestamp: None,
        metric_window_s: 0,
    }
}

/// Unix seconds of `t` (0 before 1970).
pub fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Debug, PartialEq)]
enum Reduced {
    Empty,
    NaN,
    Value(f64),
}

/// One number from a result: the scalar, or the sum of a vector's non-NaN samples.
fn reduce(r: &QueryResult) -> Reduced {
    match r {
        QueryResult::Scalar { value, .. } if value.is_nan() => Reduced::NaN,
        QueryResult::Scalar { value, .. } => Reduced::Value(*value),
        QueryResult::Vector(v) if v.is_empty() => Reduced::Empty,
        QueryResult::Vector(v) => {
            let finite: Vec<f64> = v.iter().map(|s| s.value).filter(|x| !x.is_nan()).collect();
            if finite.is_empty() {
                Reduced::NaN
            } else {
                Reduced::Value(finite.iter().sum())
            }
        }
        QueryResult::Matrix(_) | QueryResult::String { .. } => Reduced::Empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::Sample;

    fn sample(v: f64) -> Sample {
        Sample {
            labels: Default::default(),
            timestamp_s: 1.0,
            value: v,
        }
    }

    #[test]
    fn reduces_results() {
        assert_eq!(reduce(&QueryResult::Vector(vec![])), Reduced::Empty);
        assert_eq!(
            reduce(&QueryResult::Vector(vec![sample(f64::NAN)])),
            Reduced::NaN
        );
        assert_eq!(
            reduce(&QueryResult::Vector(vec![
                sample(1.5),
                sample(f64::NAN),
                sample(2.0)
            ])),
            Reduced::Value(3.5)
        );
        assert_eq!(
            reduce(&QueryResult::Scalar {
                timestamp_s: 0.0,
                value: 4.0
            }),
            Reduced::Value(4.0)
        );
    }

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: StateConfig =
            toml::from_str("stale_after_s = 5.0\n[queries]\nqueue_length = \"vector(1)\"").unwrap();
        assert_eq!(c.stale_after_s, 5.0);
        assert_eq!(c.cpu_request_milli, 1000);
        assert_eq!(c.memory_request_bytes, 268_435_456);
        assert_eq!(c.queries.queue_length, "vector(1)");
        assert_eq!(
            c.queries.p95_latency_ms,
            PromQueries::default().p95_latency_ms
        );
        assert!(PromQueries::default()
            .p95_latency_ms
            .starts_with("histogram_quantile(0.95,"));
        let err = toml::from_str::<StateConfig>("[queries]\ncpu = \"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let bad = StateConfig {
            stale_after_s: f64::NAN,
            ..StateConfig::default()
        };
        assert!(matches!(bad.validate(), Err(Error::Config(m)) if m.contains("stale_after_s")));
    }
}
