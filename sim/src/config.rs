//! The scenario: a TOML table describing the cluster, the pod template, the Deployment, the
//! service model and the metrics pipeline. Every field has a default, a unit in its name or doc,
//! and is validated by [`Scenario::validate`]; unknown keys are rejected when parsing.
//!
//! ```toml
//! [cluster]
//! nodes = 4
//! node_cpu_milli = 4000
//!
//! [pod]
//! cpu_request_milli = 500
//! startup_delay_mean_s = 20.0
//!
//! [deployment]
//! min_replicas = 1
//! max_replicas = 50
//!
//! [service]
//! mode = "fluid"
//! cpu_per_request_ms = 20.0
//! ```

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Nodes of the cluster and (optional) node provisioning and failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Nodes present at the start, at least 1.
    pub nodes: u32,
    /// Allocatable CPU per node, millicores.
    pub node_cpu_milli: u64,
    /// Allocatable memory per node, bytes.
    pub node_memory_bytes: u64,
    /// Upper bound on nodes; above `nodes` it enables cluster-autoscaler-like provisioning
    /// when pods stay Pending for lack of room.
    pub max_nodes: u32,
    /// Delay from the provisioning request to a usable node, seconds.
    pub node_provisioning_delay_s: f64,
    /// Node failures per node per hour (exponential inter-failure times; 0 = none).
    pub node_failure_rate_per_hour: f64,
    /// Time a failed node stays down before it is usable again, seconds.
    pub node_recovery_s: f64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            nodes: 16,
            node_cpu_milli: 4000,
            node_memory_bytes: 16 << 30,
            max_nodes: 16,
            node_provisioning_delay_s: 90.0,
            node_failure_rate_per_hour: 0.0,
            node_recovery_s: 300.0,
        }
    }
}

/// The pod template of the Deployment and the pod lifecycle's timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PodConfig {
    /// CPU request, millicores (what the scheduler reserves and HPA utilization divides by).
    pub cpu_request_milli: u64,
    /// CPU limit, millicores: the most CPU a pod can use; sets its service rate.
    pub cpu_limit_milli: u64,
    /// Memory request, bytes.
    pub memory_request_bytes: u64,
    /// Working set of an idle pod, bytes.
    pub memory_base_bytes: u64,
    /// Extra working set per request in flight, bytes.
    pub memory_per_inflight_bytes: u64,
    /// Mean start-up delay (scheduling to container running: image pull, container start),
    /// seconds. Drawn from a log-normal with this mean and `startup_delay_std_s`.
    pub startup_delay_mean_s: f64,
    /// Standard deviation of the start-up delay, seconds (0 = deterministic).
    pub startup_delay_std_s: f64,
    /// Time from container start to the Ready condition (readiness probe), seconds.
    pub readiness_delay_s: f64,
    /// Time from deletion to the pod being gone (bounded by the grace period), seconds.
    pub termination_delay_s: f64,
    /// Extra CPU a pod burns right after its container starts (JIT, cache warm-up),
    /// millicores; counted in its usage, not serving requests.
    pub startup_cpu_burst_milli: u64,
    /// How long the start-up burst lasts after container start, seconds.
    pub startup_cpu_burst_s: f64,
    /// Container crashes per running pod per hour (0 = none).
    pub crash_rate_per_hour: f64,
    /// First restart back-off after a crash, seconds; doubles per consecutive crash up to
    /// 300 s (kubelet's CrashLoopBackOff).
    pub restart_backoff_s: f64,
}

impl Default for PodConfig {
    fn default() -> Self {
        Self {
            cpu_request_milli: 500,
            cpu_limit_milli: 1000,
            memory_request_bytes: 256 << 20,
            memory_base_bytes: 96 << 20,
            memory_per_inflight_bytes: 1 << 20,
            startup_delay_mean_s: 20.0,
            startup_delay_std_s: 5.0,
            readiness_delay_s: 10.0,
            termination_delay_s: 5.0,
            startup_cpu_burst_milli: 0,
            startup_cpu_burst_s: 0.0,
            crash_rate_per_hour: 0.0,
            restart_backoff_s: 10.0,
        }
    }
}

/// The Deployment's replica bounds and initial size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentConfig {
    /// `spec.replicas` at the start; these pods start Ready at t = 0.
    pub initial_replicas: u32,
    /// Lowest replica count any action can set (seed design: 1).
    pub min_replicas: u32,
    /// Highest replica count any action can set (seed design: 50).
    pub max_replicas: u32,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self {
            initial_replicas: 2,
            min_replicas: 1,
            max_replicas: 50,
        }
    }
}

/// Fidelity of the service model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceMode {
    /// Per tick, a fluid approximation (fast; the default).
    #[default]
    Fluid,
    /// Every request is an event with its own latency (exact; validates `fluid`).
    Request,
}

/// Distribution of each request's CPU cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CostDistribution {
    /// Exponential with mean `cpu_per_request_ms` (M/M/1 servers).
    #[default]
    Exponential,
    /// Every request costs exactly `cpu_per_request_ms`.
    Deterministic,
}

/// The request service model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// `fluid` (default) or `request`.
    pub mode: ServiceMode,
    /// Accounting tick, seconds (the fluid model's time step).
    pub tick_s: f64,
    /// Mean CPU time per request on one full core, milliseconds. A pod with CPU limit L
    /// millicores serves `L / cpu_per_request_ms` requests per second when busy.
    pub cpu_per_request_ms: f64,
    /// Distribution of the per-request CPU cost.
    pub cost_distribution: CostDistribution,
    /// A request that would wait longer than this in a queue is dropped, seconds.
    pub timeout_s: f64,
    /// Latency objective: a tick violates the SLO when its p95 latency exceeds this, ms.
    pub slo_p95_ms: f64,
    /// A tick also violates the SLO when more than this share of its arrivals is dropped.
    pub slo_max_dropped_ratio: f64,
    /// CPU an idle Ready pod uses, millicores.
    pub idle_cpu_milli: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            mode: ServiceMode::Fluid,
            tick_s: 1.0,
            cpu_per_request_ms: 20.0,
            cost_distribution: CostDistribution::Exponential,
            timeout_s: 10.0,
            slo_p95_ms: 250.0,
            slo_max_dropped_ratio: 0.01,
            idle_cpu_milli: 5,
        }
    }
}

impl ServiceConfig {
    /// Requests per second one busy pod with `cpu_limit_milli` serves.
    pub fn pod_service_rate(&self, cpu_limit_milli: u64) -> f64 {
        cpu_limit_milli as f64 / self.cpu_per_request_ms
    }
}

/// What controllers see, and when (metrics-server and Prometheus).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// metrics-server resolution: a new CPU/memory sample per pod every this many seconds.
    pub resolution_s: f64,
    /// Averaging window of each CPU sample, seconds.
    pub window_s: f64,
    /// Prometheus scrape interval for request rate, latency and queue length, seconds.
    pub scrape_interval_s: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            resolution_s: 15.0,
            window_s: 60.0,
            scrape_interval_s: 15.0,
        }
    }
}

/// A whole scenario (everything but the traffic, which comes from a
/// [`crate::workload::WorkloadConfig`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// Nodes.
    pub cluster: ClusterConfig,
    /// Pod template and lifecycle.
    pub pod: PodConfig,
    /// Replica bounds.
    pub deployment: DeploymentConfig,
    /// Service model.
    pub service: ServiceConfig,
    /// Metrics pipeline.
    pub metrics: MetricsConfig,
}

/// The largest number any duration, rate or cost field accepts (1e9: about 31 years in
/// seconds), so that every derived quantity stays finite and representable.
pub const MAX_VALUE: f64 = 1e9;

/// The most pods or nodes a scenario may ask for.
pub const MAX_OBJECTS: u32 = 100_000;

/// The most ticks a metrics window may span (its per-pod ring is allocated up front).
pub const MAX_WINDOW_TICKS: f64 = 100_000.0;

fn positive(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 && v <= MAX_VALUE {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("expected a number in (0, {MAX_VALUE:e}], got {v}"),
        ))
    }
}

fn non_negative(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && (0.0..=MAX_VALUE).contains(&v) {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("expected a number in [0, {MAX_VALUE:e}], got {v}"),
        ))
    }
}

fn at_most(field: &str, v: u32, max: u32) -> Result<()> {
    if v <= max {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("expected at most {max}, got {v}"),
        ))
    }
}

fn nonzero(field: &str, v: u64) -> Result<()> {
    if v > 0 {
        Ok(())
    } else {
        Err(Error::config(field, "expected a value > 0, got 0"))
    }
}

impl Scenario {
    /// This scenario with exactly `pods` replicas at all times (initial = min = max) and
    /// enough nodes for them (`ceil(pods / pods-per-node) + 1`): the set-up of capacity and
    /// scaling measurements.
    pub fn with_fixed_replicas(mut self, pods: u32) -> Self {
        self.deployment.initial_replicas = pods;
        self.deployment.min_replicas = pods;
        self.deployment.max_replicas = pods;
        let per_node = (self.cluster.node_cpu_milli / self.pod.cpu_request_milli.max(1))
            .min(self.cluster.node_memory_bytes / self.pod.memory_request_bytes.max(1))
            .max(1);
        self.cluster.nodes =
            u32::try_from(u64::from(pods).div_ceil(per_node) + 1).unwrap_or(u32::MAX);
        self.cluster.max_nodes = self.cluster.nodes;
        self
    }

    /// Parses a scenario from TOML text (unknown keys are errors).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] with the TOML parser's message (line, column, key) or the
    /// first invalid field.
    pub fn from_toml(text: &str) -> Result<Self> {
        let s: Scenario =
            toml::from_str(text).map_err(|e| Error::config("<scenario>", e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Checks every field; returns the first invalid one by its dotted path.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field and what was expected.
    pub fn validate(&self) -> Result<()> {
        let c = &self.cluster;
        nonzero("cluster.nodes", u64::from(c.nodes))?;
        at_most("cluster.max_nodes", c.max_nodes, MAX_OBJECTS)?;
        at_most(
            "deployment.max_replicas",
            self.deployment.max_replicas,
            MAX_OBJECTS,
        )?;
        nonzero("cluster.node_cpu_milli", c.node_cpu_milli)?;
        nonzero("cluster.node_memory_bytes", c.node_memory_bytes)?;
        if c.max_nodes < c.nodes {
            return Err(Error::config(
                "cluster.max_nodes",
                format!(
                    "expected >= cluster.nodes ({}), got {}",
                    c.nodes, c.max_nodes
                ),
            ));
        }
        non_negative(
            "cluster.node_provisioning_delay_s",
            c.node_provisioning_delay_s,
        )?;
        non_negative(
            "cluster.node_failure_rate_per_hour",
            c.node_failure_rate_per_hour,
        )?;
        positive("cluster.node_recovery_s", c.node_recovery_s)?;
        let p = &self.pod;
        nonzero("pod.cpu_request_milli", p.cpu_request_milli)?;
        nonzero("pod.cpu_limit_milli", p.cpu_limit_milli)?;
        if p.cpu_limit_milli < p.cpu_request_milli {
            return Err(Error::config(
                "pod.cpu_limit_milli",
                format!(
                    "expected >= pod.cpu_request_milli ({}), got {}",
                    p.cpu_request_milli, p.cpu_limit_milli
                ),
            ));
        }
        if p.cpu_request_milli > c.node_cpu_milli {
            return Err(Error::config(
                "pod.cpu_request_milli",
                format!(
                    "a pod requesting {} millicores never fits a node of {} millicores",
                    p.cpu_request_milli, c.node_cpu_milli
                ),
            ));
        }
        nonzero("pod.memory_request_bytes", p.memory_request_bytes)?;
        if p.memory_request_bytes > c.node_memory_bytes {
            return Err(Error::config(
                "pod.memory_request_bytes",
                "a pod's memory request never fits on a node (cluster.node_memory_bytes)",
            ));
        }
        non_negative("pod.startup_delay_mean_s", p.startup_delay_mean_s)?;
        non_negative("pod.startup_delay_std_s", p.startup_delay_std_s)?;
        non_negative("pod.readiness_delay_s", p.readiness_delay_s)?;
        non_negative("pod.termination_delay_s", p.termination_delay_s)?;
        non_negative("pod.startup_cpu_burst_s", p.startup_cpu_burst_s)?;
        non_negative("pod.crash_rate_per_hour", p.crash_rate_per_hour)?;
        positive("pod.restart_backoff_s", p.restart_backoff_s)?;
        let d = &self.deployment;
        if d.min_replicas > d.max_replicas {
            return Err(Error::config(
                "deployment.min_replicas",
                format!(
                    "expected min_replicas <= max_replicas, got {} > {}",
                    d.min_replicas, d.max_replicas
                ),
            ));
        }
        nonzero("deployment.max_replicas", u64::from(d.max_replicas))?;
        if !(d.min_replicas..=d.max_replicas).contains(&d.initial_replicas) {
            return Err(Error::config(
                "deployment.initial_replicas",
                format!(
                    "expected a value in [min_replicas, max_replicas] = [{}, {}], got {}",
                    d.min_replicas, d.max_replicas, d.initial_replicas
                ),
            ));
        }
        let s = &self.service;
        positive("service.tick_s", s.tick_s)?;
        if (s.tick_s * 1000.0).fract() != 0.0 {
            return Err(Error::config(
                "service.tick_s",
                "expected a whole number of milliseconds",
            ));
        }
        positive("service.cpu_per_request_ms", s.cpu_per_request_ms)?;
        positive("service.timeout_s", s.timeout_s)?;
        positive("service.slo_p95_ms", s.slo_p95_ms)?;
        if !(0.0..=1.0).contains(&s.slo_max_dropped_ratio) {
            return Err(Error::config(
                "service.slo_max_dropped_ratio",
                "expected a value in [0, 1]",
            ));
        }
        let m = &self.metrics;
        for (f, v) in [
            ("metrics.resolution_s", m.resolution_s),
            ("metrics.window_s", m.window_s),
            ("metrics.scrape_interval_s", m.scrape_interval_s),
        ] {
            positive(f, v)?;
            if v / s.tick_s > MAX_WINDOW_TICKS {
                return Err(Error::config(
                    f,
                    format!(
                        "expected at most {MAX_WINDOW_TICKS} ticks of {} s, got {v} s",
                        s.tick_s
                    ),
                ));
            }
            if v < s.tick_s {
                return Err(Error::config(
                    f,
                    format!(
                        "expected at least one tick (service.tick_s = {}), got {v}",
                        s.tick_s
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_unknown_keys_rejected() {
        Scenario::default().validate().unwrap();
        let e = Scenario::from_toml("[pod]\ncpu_request = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `cpu_request`"), "{e}");
        let e = Scenario::from_toml("[deployment]\nmin_replicas = 5\nmax_replicas = 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("deployment.min_replicas"), "{e}");
        let e = Scenario::from_toml("[pod]\ncpu_request_milli = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pod.cpu_request_milli"), "{e}");
        let e = Scenario::from_toml("[service]\ntimeout_s = -1.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("service.timeout_s"), "{e}");
    }
}
