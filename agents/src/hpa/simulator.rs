//! [`Hpa`]: the HPA controller driven by the simulator's [`sim::ClusterState`], one reconcile
//! per call of [`Hpa::decide`] (the simulator calls it once per sync period, 15 s).

use std::borrow::Cow;

use sim::{ClusterState, PodView, ScaleDecision, SimTime};

use super::behavior::EffectiveBehavior;
use super::controller::{HorizontalController, HpaSpec, ReconcileOutcome, ScaleSnapshot};
use super::{
    Behavior, ConditionStatus, ConditionType, ControllerConfig, ControllerVariant, HpaError,
    MetricSpec, MetricTarget, MetricsSource, Millis, PodMetricsInfo, PodPhase, PodRecord,
    PodSample, ReadyCondition, Tolerances, ZERO_TIME_MS,
};

/// Configuration of the simulator's HPA baseline (TOML/JSON); `Default` = production defaults
/// (kube-controller-manager defaults and a CPU utilization target of 70 %).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HpaConfig {
    /// CPU utilization target, percent of the pods' CPU request (`averageUtilization`).
    pub target_cpu_utilization_percent: i32,
    /// Global tolerance, fraction (`--horizontal-pod-autoscaler-tolerance`, 0.1).
    pub tolerance: f64,
    /// CPU initialization period, seconds (300).
    pub cpu_initialization_period_s: u64,
    /// Initial readiness delay, seconds (30).
    pub initial_readiness_delay_s: u64,
    /// Downscale stabilization window, seconds (300); also the default scale-down window of
    /// `behavior`.
    pub downscale_stabilization_window_s: u64,
    /// Sync period, seconds (15): how often the simulator should call [`Hpa::decide`].
    pub sync_period_s: u64,
    /// `spec.minReplicas` (1).
    pub min_replicas: u32,
    /// `spec.maxReplicas` (50).
    pub max_replicas: u32,
    /// Legacy scale-up factor (`scaleUpLimitFactor`, 2).
    pub legacy_scale_up_limit_factor: f64,
    /// Legacy scale-up minimum (`scaleUpLimitMinimum`, 4).
    pub legacy_scale_up_limit_minimum: f64,
    /// `spec.behavior`; `None` = the legacy normalization.
    pub behavior: Option<Behavior>,
}

impl Default for HpaConfig {
    fn default() -> Self {
        HpaConfig {
            target_cpu_utilization_percent: 70,
            tolerance: 0.1,
            cpu_initialization_period_s: 300,
            initial_readiness_delay_s: 30,
            downscale_stabilization_window_s: 300,
            sync_period_s: 15,
            min_replicas: 1,
            max_replicas: 50,
            legacy_scale_up_limit_factor: 2.0,
            legacy_scale_up_limit_minimum: 4.0,
            behavior: None,
        }
    }
}

impl HpaConfig {
    /// Checks ranges: `min <= max <= i32::MAX`, target > 0, tolerances finite and >= 0,
    /// legacy factor/minimum finite and >= 0, sync period > 0, behavior windows >= 0 and
    /// policies with positive value and period.
    pub fn validate(&self) -> Result<(), HpaError> {
        let bad = |msg: String| Err(HpaError::InvalidConfig(msg));
        if self.min_replicas > self.max_replicas {
            return bad(format!(
                "min_replicas {} > max_replicas {}",
                self.min_replicas, self.max_replicas
            ));
        }
        if i32::try_from(self.max_replicas).is_err() {
            return bad(format!(
                "max_replicas {} exceeds i32::MAX",
                self.max_replicas
            ));
        }
        if self.target_cpu_utilization_percent <= 0 {
            return bad(format!(
                "target_cpu_utilization_percent must be > 0, got {}",
                self.target_cpu_utilization_percent
            ));
        }
        let fraction_ok = |t: f64| t.is_finite() && t >= 0.0;
        if !fraction_ok(self.tolerance) {
            return bad(format!(
                "tolerance must be finite and >= 0, got {}",
                self.tolerance
            ));
        }
        if !fraction_ok(self.legacy_scale_up_limit_factor)
            || !fraction_ok(self.legacy_scale_up_limit_minimum)
        {
            return bad("legacy scale-up factor and minimum must be finite and >= 0".into());
        }
        if self.sync_period_s == 0 {
            return bad("sync_period_s must be > 0".into());
        }
        if let Some(b) = &self.behavior {
            for (name, rules) in [("scale_up", &b.scale_up), ("scale_down", &b.scale_down)] {
                let Some(r) = rules else { continue };
                if r.stabilization_window_s.is_some_and(|w| w < 0) {
                    return bad(format!(
                        "behavior.{name}.stabilization_window_s must be >= 0"
                    ));
                }
                if r.tolerance.is_some_and(|t| !fraction_ok(t)) {
                    return bad(format!("behavior.{name}.tolerance must be finite and >= 0"));
                }
                let policies = r.policies.iter().flatten();
                if policies.clone().any(|p| p.value <= 0 || p.period_s <= 0) {
                    return bad(format!(
                        "behavior.{name}.policies need value > 0 and period_s > 0"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The controller settings this configuration implies.
    pub fn controller_config(&self) -> ControllerConfig {
        ControllerConfig {
            tolerance: Tolerances::symmetric(self.tolerance),
            cpu_initialization_period_ms: secs_to_ms(self.cpu_initialization_period_s),
            initial_readiness_delay_ms: secs_to_ms(self.initial_readiness_delay_s),
            downscale_stabilization_window_ms: secs_to_ms(self.downscale_stabilization_window_s),
            legacy_scale_up_limit_factor: self.legacy_scale_up_limit_factor,
            legacy_scale_up_limit_minimum: self.legacy_scale_up_limit_minimum,
            variant: ControllerVariant::Newest,
        }
    }
}

/// External metric the simulator serves: the scraped request rate, requests per second
/// (`ClusterState::request_rate_per_s`), in milli-units as the metrics API reports it.
pub const EXTERNAL_REQUEST_RATE: &str = "request_rate_per_s";
/// External metric the simulator serves: requests waiting or in service
/// (`ClusterState::queue_length`), in milli-units.
pub const EXTERNAL_QUEUE_LENGTH: &str = "queue_length";

fn secs_to_ms(s: u64) -> Millis {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn sim_ms(t: SimTime) -> Millis {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// The Kubernetes HPA as a simulator baseline: one CPU-utilization metric on the target
/// Deployment, the recommendation history and scale events kept across calls.
#[derive(Debug, Clone)]
pub struct Hpa {
    config: HpaConfig,
    spec: HpaSpec,
    controller: HorizontalController,
    pods: Vec<PodRecord>,
    last: Option<ReconcileOutcome>,
}

impl Hpa {
    /// Validates `config` and builds the HPA (behavior defaults applied once here).
    pub fn new(config: HpaConfig) -> Result<Hpa, HpaError> {
        let cpu = MetricSpec::Resource {
            resource: "cpu".to_string(),
            target: MetricTarget::utilization(config.target_cpu_utilization_percent),
        };
        Hpa::with_metric(config, cpu)
    }

    /// Like [`Hpa::new`] but scaling on `metric` instead of CPU utilization (the config's
    /// `target_cpu_utilization_percent` is then unused). The simulator serves two External
    /// metrics: [`EXTERNAL_REQUEST_RATE`] and [`EXTERNAL_QUEUE_LENGTH`] (KEDA-style scalers).
    ///
    /// # Errors
    /// [`HpaError::InvalidConfig`] for an invalid `config`.
    pub fn with_metric(config: HpaConfig, metric: MetricSpec) -> Result<Hpa, HpaError> {
        config.validate()?;
        let window_s = i32::try_from(config.downscale_stabilization_window_s).unwrap_or(i32::MAX);
        let spec = HpaSpec {
            min_replicas: Some(i32::try_from(config.min_replicas).unwrap_or(i32::MAX)),
            max_replicas: i32::try_from(config.max_replicas).unwrap_or(i32::MAX),
            metrics: vec![metric],
            behavior: config
                .behavior
                .as_ref()
                .map(|b| EffectiveBehavior::from_api(b, window_s)),
        };
        let controller = HorizontalController::new(config.controller_config());
        Ok(Hpa {
            config,
            spec,
            controller,
            pods: Vec::new(),
            last: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HpaConfig {
        &self.config
    }

    /// The outcome of the last [`Hpa::decide`] (conditions, error), if any.
    pub fn last_outcome(&self) -> Option<&ReconcileOutcome> {
        self.last.as_ref()
    }

    /// Starts a new episode: clears the recommendation history and scale events (the next
    /// decision records an initial recommendation, as after a controller restart).
    pub fn reset(&mut self) {
        self.controller.reset();
        self.last = None;
    }

    /// One reconcile at `state.time`: current = `state.desired_replicas` (spec replicas),
    /// status = `state.status_replicas`, pods and CPU samples from `state.pods`. Returns the
    /// replicas to set (the current count when nothing changes) and the reason: the
    /// `ScalingLimited` reason when limited, else a stabilization reason, else
    /// `DesiredWithinRange`; the failure reason when metrics are unusable.
    pub fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        self.pods.clear();
        self.pods.extend(state.pods.iter().map(pod_record));
        let source = SimSource {
            state,
            pods: &self.pods,
        };
        let scale = ScaleSnapshot {
            spec_replicas: i32::try_from(state.desired_replicas).unwrap_or(i32::MAX),
            status_replicas: i32::try_from(state.status_replicas).unwrap_or(i32::MAX),
        };
        let outcome = self
            .controller
            .reconcile(&self.spec, scale, &source, sim_ms(state.time));
        let reason = decision_reason(&outcome, scale.spec_replicas, &self.spec);
        let desired = u32::try_from(outcome.desired_replicas.max(0)).unwrap_or(0);
        self.last = Some(outcome);
        ScaleDecision {
            desired_replicas: desired,
            reason: Cow::Borrowed(reason),
        }
    }
}

/// The short reason reported with a decision.
fn decision_reason(outcome: &ReconcileOutcome, current: i32, spec: &HpaSpec) -> &'static str {
    let c = &outcome.conditions;
    if let Some(active) = c.get(ConditionType::ScalingActive) {
        if !active.status {
            return active.reason;
        }
    }
    match c.get(ConditionType::ScalingLimited) {
        Some(limited) if limited.status => limited.reason,
        Some(limited) => match c.get(ConditionType::AbleToScale) {
            Some(a) if a.reason.ends_with("Stabilized") => a.reason,
            _ => limited.reason,
        },
        None if current > spec.max_replicas => "CurrentAboveMaxReplicas",
        None => "CurrentBelowMinReplicas",
    }
}

/// A simulator pod as the HPA sees it.
fn pod_record(p: &PodView) -> PodRecord {
    let phase = match p.phase {
        sim::PodPhase::Pending => PodPhase::Pending,
        sim::PodPhase::Running => PodPhase::Running,
        sim::PodPhase::Failed => PodPhase::Failed,
    };
    let ready = p.ready_last_transition.map(|t| ReadyCondition {
        status: if p.ready {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        last_transition_ms: sim_ms(t),
    });
    PodRecord {
        phase,
        ready,
        start_time_ms: p.start_time.map(sim_ms),
        deleting: p.deleting,
    }
}

/// The simulator's pods and metrics-server samples as the HPA's metrics sources.
struct SimSource<'a> {
    state: &'a ClusterState,
    pods: &'a [PodRecord],
}

impl MetricsSource for SimSource<'_> {
    fn pods(&self) -> &[PodRecord] {
        self.pods
    }

    fn pod_request(
        &self,
        pod: usize,
        resource: &str,
        container: Option<&str>,
    ) -> Result<i64, HpaError> {
        let p = self.state.pods.get(pod).ok_or(HpaError::NoPods)?;
        let missing = || HpaError::MissingRequest {
            resource: resource.to_string(),
            container: container.unwrap_or("main").to_string(),
            pod: format!("pod-{}", p.id),
        };
        match (resource, container) {
            ("cpu", None) => Ok(i64::try_from(p.cpu_request_milli).unwrap_or(i64::MAX)),
            ("memory", None) => {
                Ok(i64::try_from(p.memory_request_bytes.saturating_mul(1000)).unwrap_or(i64::MAX))
            }
            _ => Err(missing()),
        }
    }

    fn resource_metric(
        &self,
        resource: &str,
        container: Option<&str>,
        out: &mut PodMetricsInfo,
    ) -> Result<(), HpaError> {
        if container.is_some() {
            return Err(HpaError::MetricFetch(
                "the simulator reports no per-container metrics".into(),
            ));
        }
        let mut any = false;
        for (slot, p) in out.per_pod.iter_mut().zip(&self.state.pods) {
            let value = match resource {
                "cpu" => p.cpu_usage_milli,
                "memory" => p.memory_usage_bytes.map(|b| b.saturating_mul(1000)),
                _ => None,
            };
            if let Some(v) = value {
                any = true;
                *slot = Some(PodSample {
                    value_milli: i64::try_from(v).unwrap_or(i64::MAX),
                    timestamp_ms: p.metric_timestamp.map_or(ZERO_TIME_MS, sim_ms),
                    window_ms: secs_to_ms(p.metric_window_s),
                });
            }
        }
        if !any {
            return Err(HpaError::NoResourceMetrics);
        }
        Ok(())
    }

    fn pods_metric(&self, metric: &str, _out: &mut PodMetricsInfo) -> Result<(), HpaError> {
        Err(HpaError::MetricFetch(format!(
            "the simulator has no pods metric {metric}"
        )))
    }

    fn object_metric(&self, metric: &str) -> Result<i64, HpaError> {
        Err(HpaError::MetricFetch(format!(
            "the simulator has no object metric {metric}"
        )))
    }

    fn external_metric(&self, metric: &str, out: &mut Vec<i64>) -> Result<(), HpaError> {
        let value = match metric {
            EXTERNAL_REQUEST_RATE => self.state.request_rate_per_s,
            EXTERNAL_QUEUE_LENGTH => self.state.queue_length,
            _ => {
                return Err(HpaError::MetricFetch(format!(
                    "the simulator has no external metric {metric}"
                )))
            }
        };
        // Milli-units, rounded as the metrics API's quantities are.
        out.push((value.max(0.0) * 1000.0).round().min(i64::MAX as f64) as i64);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
