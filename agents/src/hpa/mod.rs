//! A faithful re-implementation of the Kubernetes HorizontalPodAutoscaler (HPA) controller.
//!
//! The algorithm follows `pkg/controller/podautoscaler/` of `kubernetes/kubernetes`
//! (`horizontal.go`, `replica_calculator.go`, `metrics/utilization.go`) as specified in
//! `shared/hpa/hpa-algorithm.md`; the reference cases in `shared/hpa/cases-public.json` are
//! replayed by [`cases::run_cases`].
//!
//! # Module map
//!
//! | Module | Go source | Content |
//! | --- | --- | --- |
//! | this file | types of `horizontal.go`, `replica_calculator.go` | pods, samples, metric specs, behavior rules, conditions, configuration |
//! | `error.rs` | error strings of the Go code | [`HpaError`] |
//! | [`fake`] | fake clients of the Go tests | an in-memory [`MetricsSource`] |
//! | [`grouping`] | `groupPods`, `calculateRequests`, `getPodMetrics` | pod buckets (ignored/unready/missing/ready), requests, per-pod usage |
//! | [`replica_calc`] | `replica_calculator.go`, `metrics/utilization.go` | ratio arithmetic and per-metric replica proposals |
//! | [`behavior`] | `normalizeDesiredReplicas*`, `storeScaleEvent` | legacy and behavior stabilization, rate limits, scale events, API defaults |
//! | [`controller`] | `reconcileAutoscaler`, `computeReplicasForMetrics` | one reconcile of one HPA with its memory (history, events) |
//! | [`simulator`] | - | [`Hpa`]: the controller driven by a [`sim::ClusterState`] |
//! | [`cases`] | the Go unit-test harnesses | replays reference cases (JSON) through this implementation |
//!
//! # Time
//!
//! Instants are `i64` milliseconds ([`Millis`]) on any fixed axis (the simulator uses ms since
//! the start of the run, the case harness uses "now" = 0). Go's zero time ("infinitely long ago")
//! is [`ZERO_TIME_MS`]. All comparisons are strict as in Go: an entry whose age equals a window
//! or period is outside it (see the boundary rule in `shared/hpa/README.md`).

pub mod behavior;
pub mod cases;
pub mod controller;
mod error;
pub mod fake;
pub mod grouping;
pub mod replica_calc;
pub mod simulator;

pub use behavior::{EffectiveBehavior, EffectiveRules};
pub use controller::{HorizontalController, HpaSpec, ReconcileOutcome, ScaleSnapshot};
pub use error::HpaError;
pub use simulator::{Hpa, HpaConfig};

/// An instant or a duration in milliseconds (relative to an arbitrary fixed origin).
pub type Millis = i64;

/// Go's zero `time.Time` (year 1): "infinitely long ago", far enough below any real instant
/// that adding any window or period cannot overflow.
pub const ZERO_TIME_MS: Millis = i64::MIN / 4;

/// Dead band around ratio 1.0 (`Tolerances` of the newest `replica_calculator.go`).
///
/// A ratio `r` is inside the band when `1 - scale_down <= r <= 1 + scale_up`
/// (`Tolerances.isWithin`). Both are fractions (0.1 = 10 %).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tolerances {
    /// Tolerance below 1.0 (fraction).
    pub scale_down: f64,
    /// Tolerance above 1.0 (fraction).
    pub scale_up: f64,
}

impl Tolerances {
    /// The same tolerance in both directions (the global `--horizontal-pod-autoscaler-tolerance`).
    pub const fn symmetric(tolerance: f64) -> Self {
        Tolerances {
            scale_down: tolerance,
            scale_up: tolerance,
        }
    }

    /// `Tolerances.isWithin` (newest controllers): inclusive band.
    pub fn is_within(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }

    /// Older controllers: `math.Abs(1.0-ratio) <= tolerance` (the direction's tolerance).
    pub fn is_within_legacy(&self, ratio: f64) -> bool {
        let tolerance = if ratio > 1.0 {
            self.scale_up
        } else {
            self.scale_down
        };
        (1.0 - ratio).abs() <= tolerance
    }
}

impl Default for Tolerances {
    /// The production default, 0.1 both ways.
    fn default() -> Self {
        Tolerances::symmetric(0.1)
    }
}

/// Which controller generation to reproduce where they differ (hpa-algorithm.md section 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ControllerVariant {
    /// Newest: inclusive tolerance band, missing pods at `max(100, target)%` on scale-down.
    #[default]
    Newest,
    /// Older: `abs(1 - ratio) <= tolerance`, missing pods at exactly 100 % of request.
    Older,
}

/// Pod phase (`status.phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    /// `Pending`: always unready for the HPA.
    Pending,
    /// `Running`.
    Running,
    /// `Succeeded`: grouped like a running pod.
    Succeeded,
    /// `Failed`: ignored.
    Failed,
    /// `Unknown`: grouped like a running pod.
    Unknown,
}

/// Status of a pod condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`.
    Unknown,
}

/// The pod's `Ready` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyCondition {
    /// Condition status.
    pub status: ConditionStatus,
    /// `lastTransitionTime`, ms ([`ZERO_TIME_MS`] when unset).
    pub last_transition_ms: Millis,
}

/// What the HPA reads of one pod of the target (the fields `groupPods` and
/// `getReadyPodsCount` use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodRecord {
    /// `status.phase`.
    pub phase: PodPhase,
    /// `Ready` condition (`None` = absent).
    pub ready: Option<ReadyCondition>,
    /// `status.startTime`, ms (`None` = nil).
    pub start_time_ms: Option<Millis>,
    /// The pod has a deletion timestamp.
    pub deleting: bool,
}

impl PodRecord {
    /// `pod.Status.Phase == Running && podutil.IsPodReady(pod)` (`getReadyPodsCount`).
    pub fn is_running_and_ready(&self) -> bool {
        self.phase == PodPhase::Running
            && matches!(self.ready, Some(c) if c.status == ConditionStatus::True)
    }
}

/// One pod's sample from a metrics API (`metricsclient.PodMetric`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodSample {
    /// Value in milli-units (millicores for CPU).
    pub value_milli: i64,
    /// Sample timestamp, ms (end of its averaging window).
    pub timestamp_ms: Millis,
    /// Averaging window, ms.
    pub window_ms: Millis,
}

/// The map of samples (`metricsclient.PodMetricsInfo`), aligned with the pod list.
///
/// `per_pod[i]` is the sample of pod `i` of [`MetricsSource::pods`]; `strays` are samples of
/// pods that are not in the pod list (values only: they never get grouped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodMetricsInfo {
    /// Sample of each listed pod (`None` = no sample).
    pub per_pod: Vec<Option<PodSample>>,
    /// Values (milli-units) of samples whose pod is not listed.
    pub strays: Vec<i64>,
}

impl PodMetricsInfo {
    /// Empties the map and sizes it for `pods` listed pods (keeps the allocations).
    pub fn reset(&mut self, pods: usize) {
        self.per_pod.clear();
        self.per_pod.resize(pods, None);
        self.strays.clear();
    }

    /// Number of entries in the map (`len(metrics)`): listed pods with a sample plus strays.
    pub fn len(&self) -> usize {
        self.per_pod.iter().filter(|s| s.is_some()).count() + self.strays.len()
    }

    /// The map has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where the HPA reads pods and metrics: the pod lister and the three metrics APIs
/// (`podLister`, `metricsclient.MetricsClient`).
pub trait MetricsSource {
    /// Pods matched by the target's selector, in list order.
    fn pods(&self) -> &[PodRecord];
    /// Request of pod `pod` (index into [`MetricsSource::pods`]) for `resource`, milli-units:
    /// one pod of `calculateRequests` (the named container's request, or the sum over
    /// containers; an error when a counted container has no request).
    fn pod_request(
        &self,
        pod: usize,
        resource: &str,
        container: Option<&str>,
    ) -> Result<i64, HpaError>;
    /// Resource metrics API (`GetResourceMetric`): fills `out` (already reset to the pod count).
    fn resource_metric(
        &self,
        resource: &str,
        container: Option<&str>,
        out: &mut PodMetricsInfo,
    ) -> Result<(), HpaError>;
    /// Custom metrics API, per pod (`GetRawMetric`): fills `out` (already reset).
    fn pods_metric(&self, metric: &str, out: &mut PodMetricsInfo) -> Result<(), HpaError>;
    /// Custom metrics API, one object (`GetObjectMetric`), milli-units.
    fn object_metric(&self, metric: &str) -> Result<i64, HpaError>;
    /// External metrics API (`GetExternalMetric`): every returned series, milli-units, into `out`
    /// (already cleared).
    fn external_metric(&self, metric: &str, out: &mut Vec<i64>) -> Result<(), HpaError>;
}

/// Kind of a metric target (`autoscalingv2.MetricTargetType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    /// `Utilization`: percent of the request.
    Utilization,
    /// `Value`: one total value.
    Value,
    /// `AverageValue`: value per pod.
    AverageValue,
}

/// A metric target (`autoscalingv2.MetricTarget`): the type plus whichever fields are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricTarget {
    /// `type`.
    pub kind: TargetType,
    /// `value`, milli-units.
    pub value_milli: Option<i64>,
    /// `averageValue`, milli-units.
    pub average_value_milli: Option<i64>,
    /// `averageUtilization`, percent.
    pub average_utilization_percent: Option<i32>,
}

impl MetricTarget {
    /// A `Utilization` target of `percent` percent.
    pub const fn utilization(percent: i32) -> Self {
        MetricTarget {
            kind: TargetType::Utilization,
            value_milli: None,
            average_value_milli: None,
            average_utilization_percent: Some(percent),
        }
    }

    /// A `Value` target, milli-units.
    pub const fn value(milli: i64) -> Self {
        MetricTarget {
            kind: TargetType::Value,
            value_milli: Some(milli),
            average_value_milli: None,
            average_utilization_percent: None,
        }
    }

    /// An `AverageValue` target, milli-units per pod.
    pub const fn average_value(milli: i64) -> Self {
        MetricTarget {
            kind: TargetType::AverageValue,
            value_milli: None,
            average_value_milli: Some(milli),
            average_utilization_percent: None,
        }
    }
}

/// One entry of `spec.metrics` (`autoscalingv2.MetricSpec`).
#[derive(Debug, Clone, PartialEq)]
pub enum MetricSpec {
    /// `Resource`: a resource of the whole pod (`cpu`, `memory`).
    Resource {
        /// Resource name.
        resource: String,
        /// Target.
        target: MetricTarget,
    },
    /// `ContainerResource`: a resource of one named container.
    ContainerResource {
        /// Resource name.
        resource: String,
        /// Container name.
        container: String,
        /// Target.
        target: MetricTarget,
    },
    /// `Pods`: a custom metric per pod (AverageValue).
    Pods {
        /// Metric name.
        metric: String,
        /// Target.
        target: MetricTarget,
    },
    /// `Object`: a custom metric of one object.
    Object {
        /// Metric name.
        metric: String,
        /// Target.
        target: MetricTarget,
    },
    /// `External`: a metric from outside the cluster (sum of its series).
    External {
        /// Metric name.
        metric: String,
        /// Target.
        target: MetricTarget,
    },
    /// Any other `type` (the API server rejects these; the controller reports
    /// `InvalidMetricSourceType`).
    Unknown {
        /// The type string.
        type_name: String,
    },
}

/// Kind of a scaling policy (`HPAScalingPolicyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PolicyType {
    /// `Pods`: an absolute number of pods per period.
    Pods,
    /// `Percent`: a percentage of the replicas at the start of the period.
    Percent,
}

/// One rate policy (`HPAScalingPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingPolicy {
    /// Policy type.
    #[serde(rename = "type")]
    pub kind: PolicyType,
    /// Pods or percent allowed per period.
    pub value: i32,
    /// Period length, seconds.
    pub period_s: i32,
}

/// How policies combine (`ScalingPolicySelect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum SelectPolicy {
    /// The policy allowing the largest change (default).
    #[default]
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// Scaling rules of one direction as written in `spec.behavior` (`HPAScalingRules`);
/// `None` fields get the API defaults ([`behavior`]).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`, seconds.
    pub stabilization_window_s: Option<i32>,
    /// `selectPolicy`.
    pub select_policy: Option<SelectPolicy>,
    /// `policies` (a given list replaces the whole default list).
    pub policies: Option<Vec<ScalingPolicy>>,
    /// `tolerance` (KEP-4951), fraction; `None` = the controller's global tolerance.
    pub tolerance: Option<f64>,
}

/// `spec.behavior` (`HorizontalPodAutoscalerBehavior`); `None` directions get API defaults.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behavior {
    /// `scaleUp` rules.
    pub scale_up: Option<ScalingRules>,
    /// `scaleDown` rules.
    pub scale_down: Option<ScalingRules>,
}

/// HPA condition type (`HorizontalPodAutoscalerConditionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionType {
    /// `AbleToScale`.
    AbleToScale,
    /// `ScalingActive`.
    ScalingActive,
    /// `ScalingLimited`.
    ScalingLimited,
}

impl ConditionType {
    /// The Kubernetes spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionType::AbleToScale => "AbleToScale",
            ConditionType::ScalingActive => "ScalingActive",
            ConditionType::ScalingLimited => "ScalingLimited",
        }
    }
}

/// One status condition (`HorizontalPodAutoscalerCondition` without message and time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    /// Condition type.
    pub kind: ConditionType,
    /// `True` (true) or `False` (false).
    pub status: bool,
    /// Reason, e.g. `SucceededRescale`.
    pub reason: &'static str,
}

/// The status conditions in the order they were first set (`setCondition` updates in place).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions {
    items: [Option<Condition>; 3],
}

impl Conditions {
    /// `setCondition`: replaces the condition of that type, or appends it.
    pub fn set(&mut self, kind: ConditionType, status: bool, reason: &'static str) {
        let new = Condition {
            kind,
            status,
            reason,
        };
        for slot in self.items.iter_mut() {
            match slot {
                Some(c) if c.kind == kind => {
                    *c = new;
                    return;
                }
                None => {
                    *slot = Some(new);
                    return;
                }
                Some(_) => {}
            }
        }
    }

    /// The condition of a type, if set.
    pub fn get(&self, kind: ConditionType) -> Option<Condition> {
        self.iter().find(|c| c.kind == kind)
    }

    /// Conditions in order.
    pub fn iter(&self) -> impl Iterator<Item = Condition> + '_ {
        self.items.iter().flatten().copied()
    }
}

/// Controller-wide settings (kube-controller-manager flags and package constants).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControllerConfig {
    /// Global tolerance (`--horizontal-pod-autoscaler-tolerance`), used where the behavior
    /// sets none.
    pub tolerance: Tolerances,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`, ms.
    pub cpu_initialization_period_ms: Millis,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`, ms.
    pub initial_readiness_delay_ms: Millis,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`, ms.
    pub downscale_stabilization_window_ms: Millis,
    /// `scaleUpLimitFactor` of the legacy path (production 2, Go tests 8).
    pub legacy_scale_up_limit_factor: f64,
    /// `scaleUpLimitMinimum` of the legacy path (4).
    pub legacy_scale_up_limit_minimum: f64,
    /// Which controller generation to reproduce.
    pub variant: ControllerVariant,
}

impl ControllerConfig {
    /// Production defaults (`RecommendedDefaultHPAControllerConfiguration`): tolerance 0.1,
    /// CPU initialization 5 min, readiness delay 30 s, downscale window 5 min, factor 2, min 4.
    pub const fn production() -> Self {
        ControllerConfig {
            tolerance: Tolerances::symmetric(0.1),
            cpu_initialization_period_ms: 300_000,
            initial_readiness_delay_ms: 30_000,
            downscale_stabilization_window_ms: 300_000,
            legacy_scale_up_limit_factor: 2.0,
            legacy_scale_up_limit_minimum: 4.0,
            variant: ControllerVariant::Newest,
        }
    }

    /// The constants of the Go unit tests: CPU initialization 2 min, readiness delay 10 s,
    /// legacy factor 8 (`horizontal_test.go` `init()`).
    pub const fn go_test() -> Self {
        ControllerConfig {
            cpu_initialization_period_ms: 120_000,
            initial_readiness_delay_ms: 10_000,
            legacy_scale_up_limit_factor: 8.0,
            ..ControllerConfig::production()
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig::production()
    }
}

/// `f64` to `i32` as the newest controller converts replica counts: saturating at the `i32`
/// range (the MaxInt32 clamps), NaN to 0.
pub(crate) fn f64_to_i32(x: f64) -> i32 {
    x as i32
}

/// `f64` to `i64`, saturating (the MaxInt64 clamps), NaN to 0.
pub(crate) fn f64_to_i64(x: f64) -> i64 {
    x as i64
}

/// `i64` to `i32`, saturating.
pub(crate) fn i64_to_i32(x: i64) -> i32 {
    x.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// `i128` to `i64`, saturating.
pub(crate) fn i128_to_i64(x: i128) -> i64 {
    x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}
