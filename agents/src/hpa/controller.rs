//! One reconcile of one HPA (`HorizontalController.reconcileAutoscaler`,
//! `computeReplicasForMetrics`, `computeReplicasForMetric`, `normalizeDesiredReplicas*` of
//! `horizontal.go`), with the per-HPA memory the controller keeps between reconciles
//! (recommendation history, scale events). hpa-algorithm.md sections 2, 3, 10, 11 and 13.

use super::behavior::{
    convert_desired_replicas_with_behavior_rate, convert_desired_replicas_with_rules,
    stabilize_recommendation, stabilize_recommendation_with_behaviors, store_scale_event,
    EffectiveBehavior, RateArgs, Recommendation, ScaleEvent,
};
use super::grouping::ReadinessConfig;
use super::replica_calc::ReplicaCalculator;
use super::{
    ConditionType, Conditions, ControllerConfig, HpaError, MetricSpec, MetricTarget, MetricsSource,
    Millis, TargetType, Tolerances,
};

/// The parts of an HPA object's spec the controller reads.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaSpec {
    /// `spec.minReplicas` (`None` = 1).
    pub min_replicas: Option<i32>,
    /// `spec.maxReplicas`.
    pub max_replicas: i32,
    /// `spec.metrics`.
    pub metrics: Vec<MetricSpec>,
    /// `spec.behavior` after defaulting (`None` = the legacy path).
    pub behavior: Option<EffectiveBehavior>,
}

/// The target's scale subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleSnapshot {
    /// `scale.spec.replicas`: the current replica count of the algorithm.
    pub spec_replicas: i32,
    /// `scale.status.replicas`: used only by the AverageValue Object/External calculators.
    pub status_replicas: i32,
}

/// What one reconcile decided.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileOutcome {
    /// The scale written, or the unchanged current count.
    pub desired_replicas: i32,
    /// Whether the scale subresource was written.
    pub scale_updated: bool,
    /// Status conditions after the reconcile, in order.
    pub conditions: Conditions,
    /// The error the reconcile returns (also set when scaling proceeded on the valid metrics).
    pub error: Option<HpaError>,
    /// Largest valid per-metric proposal, when metrics were evaluated and usable.
    pub metric_proposal: Option<i32>,
}

/// The controller's state for one HPA plus its settings and scratch buffers.
#[derive(Debug, Clone)]
pub struct HorizontalController {
    config: ControllerConfig,
    calc: ReplicaCalculator,
    /// `recommendations[key]` (meaningful only when `seen`).
    recommendations: Vec<Recommendation>,
    /// The key has a (possibly empty) history: `recordInitialRecommendation` is done.
    seen: bool,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

impl HorizontalController {
    /// A controller with settings `config` that has not seen the HPA yet.
    pub fn new(config: ControllerConfig) -> Self {
        let readiness = ReadinessConfig {
            cpu_initialization_period_ms: config.cpu_initialization_period_ms,
            initial_readiness_delay_ms: config.initial_readiness_delay_ms,
        };
        HorizontalController {
            config,
            calc: ReplicaCalculator::new(readiness, config.variant),
            recommendations: Vec::new(),
            seen: false,
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// Forgets the HPA: history and events cleared, the next reconcile records an initial
    /// recommendation again (keeps the allocations).
    pub fn reset(&mut self) {
        self.recommendations.clear();
        self.seen = false;
        self.scale_up_events.clear();
        self.scale_down_events.clear();
    }

    /// Stored recommendations (`None` = never seen).
    pub fn recommendations(&self) -> Option<&[Recommendation]> {
        self.seen.then_some(self.recommendations.as_slice())
    }

    /// Replaces the stored recommendations (`None` = never seen: the next reconcile records
    /// the current size; `Some(empty)` = seen, nothing recorded).
    pub fn set_recommendations(&mut self, history: Option<Vec<Recommendation>>) {
        self.seen = history.is_some();
        self.recommendations = history.unwrap_or_default();
    }

    /// Stored scale-up and scale-down events.
    pub fn scale_events(&self) -> (&[ScaleEvent], &[ScaleEvent]) {
        (&self.scale_up_events, &self.scale_down_events)
    }

    /// Replaces the stored scale events.
    pub fn set_scale_events(&mut self, up: Vec<ScaleEvent>, down: Vec<ScaleEvent>) {
        self.scale_up_events = up;
        self.scale_down_events = down;
    }

    /// Effective tolerances: the behavior's per-direction tolerance, else the global one.
    pub fn tolerances(&self, spec: &HpaSpec) -> Tolerances {
        let global = self.config.tolerance;
        match &spec.behavior {
            Some(b) => Tolerances {
                scale_up: b.scale_up.tolerance.unwrap_or(global.scale_up),
                scale_down: b.scale_down.tolerance.unwrap_or(global.scale_down),
            },
            None => global,
        }
    }

    /// `reconcileAutoscaler` at instant `now_ms` (after the scale was read successfully).
    pub fn reconcile<S: MetricsSource + ?Sized>(
        &mut self,
        spec: &HpaSpec,
        scale: ScaleSnapshot,
        source: &S,
        now_ms: Millis,
    ) -> ReconcileOutcome {
        let mut conditions = Conditions::default();
        conditions.set(ConditionType::AbleToScale, true, "SucceededGetScale");
        let current = scale.spec_replicas;
        // recordInitialRecommendation: only the first time the HPA is seen.
        if !self.seen {
            self.seen = true;
            self.recommendations.clear();
            self.recommendations.push(Recommendation {
                replicas: current,
                timestamp_ms: now_ms,
            });
        }
        let min_replicas = spec.min_replicas.unwrap_or(1);
        let mut outcome = ReconcileOutcome {
            desired_replicas: current,
            scale_updated: false,
            conditions,
            error: None,
            metric_proposal: None,
        };

        let desired = if current == 0 && min_replicas != 0 {
            outcome
                .conditions
                .set(ConditionType::ScalingActive, false, "ScalingDisabled");
            return outcome;
        } else if current > spec.max_replicas {
            spec.max_replicas
        } else if current < min_replicas {
            min_replicas
        } else {
            let tolerances = self.tolerances(spec);
            let metric_desired = match self.compute_replicas_for_metrics(
                spec,
                scale,
                source,
                now_ms,
                tolerances,
                &mut outcome.conditions,
            ) {
                Ok((replicas, error)) => {
                    outcome.error = error;
                    replicas
                }
                Err(error) => {
                    outcome.error = Some(error);
                    return outcome;
                }
            };
            outcome.metric_proposal = Some(metric_desired);
            let proposal = metric_desired.max(0);
            match &spec.behavior {
                None => self.normalize_legacy(
                    spec,
                    current,
                    proposal,
                    min_replicas,
                    now_ms,
                    &mut outcome.conditions,
                ),
                Some(b) => self.normalize_with_behaviors(
                    b,
                    spec,
                    current,
                    proposal,
                    min_replicas,
                    now_ms,
                    &mut outcome.conditions,
                ),
            }
        };

        if desired != current {
            outcome
                .conditions
                .set(ConditionType::AbleToScale, true, "SucceededRescale");
            store_scale_event(
                spec.behavior.as_ref(),
                &mut self.scale_up_events,
                &mut self.scale_down_events,
                current,
                desired,
                now_ms,
            );
            outcome.desired_replicas = desired;
            outcome.scale_updated = true;
        }
        outcome
    }

    /// `computeReplicasForMetrics`: the largest valid proposal. Fails (and sets
    /// `ScalingActive=False` from the first failing metric) when every metric failed, or some
    /// failed and the largest valid proposal is below spec replicas. On success the second
    /// value is the error to report while scaling anyway.
    fn compute_replicas_for_metrics<S: MetricsSource + ?Sized>(
        &mut self,
        spec: &HpaSpec,
        scale: ScaleSnapshot,
        source: &S,
        now_ms: Millis,
        tolerances: Tolerances,
        conditions: &mut Conditions,
    ) -> Result<(i32, Option<HpaError>), HpaError> {
        let total = spec.metrics.len();
        if total == 0 {
            return Err(HpaError::InvalidConfig("the HPA lists no metric".into()));
        }
        let mut replicas = 0i32;
        let mut invalid = 0usize;
        let mut first: Option<(&'static str, HpaError)> = None;
        for metric in &spec.metrics {
            match self.compute_replicas_for_metric(metric, scale, source, now_ms, tolerances) {
                Ok(proposal) => {
                    if replicas == 0 || proposal > replicas {
                        replicas = proposal;
                    }
                }
                Err(failure) => {
                    if first.is_none() {
                        first = Some(failure);
                    }
                    invalid += 1;
                }
            }
        }
        let (reason, error) = match first {
            Some((reason, e)) => (
                Some(reason),
                Some(HpaError::InvalidMetrics {
                    invalid,
                    total,
                    first: Box::new(e),
                }),
            ),
            None => (None, None),
        };
        if invalid >= total || (invalid > 0 && replicas < scale.spec_replicas) {
            if let Some(reason) = reason {
                conditions.set(ConditionType::ScalingActive, false, reason);
            }
            let error = error.unwrap_or_else(|| HpaError::InvalidConfig("no valid metric".into()));
            return Err(error);
        }
        conditions.set(ConditionType::ScalingActive, true, "ValidMetricFound");
        Ok((replicas, error))
    }

    /// `computeReplicasForMetric`: one metric's proposal, or the `ScalingActive` reason and
    /// error of its failure.
    fn compute_replicas_for_metric<S: MetricsSource + ?Sized>(
        &mut self,
        metric: &MetricSpec,
        scale: ScaleSnapshot,
        source: &S,
        now_ms: Millis,
        tolerances: Tolerances,
    ) -> Result<i32, (&'static str, HpaError)> {
        let (spec_replicas, status_replicas) = (scale.spec_replicas, scale.status_replicas);
        let calc = &mut self.calc;
        match metric {
            MetricSpec::Resource { resource, target } => resource_proposal(
                calc,
                source,
                now_ms,
                spec_replicas,
                resource,
                None,
                target,
                tolerances,
            )
            .map_err(|e| {
                let e = e.context(format!("failed to get {resource} resource metric value"));
                ("FailedGetResourceMetric", e)
            }),
            MetricSpec::ContainerResource {
                resource,
                container,
                target,
            } => resource_proposal(
                calc,
                source,
                now_ms,
                spec_replicas,
                resource,
                Some(container),
                target,
                tolerances,
            )
            .map_err(|e| {
                let e = e.context(format!("failed to get {container} container metric value"));
                ("FailedGetContainerResourceMetric", e)
            }),
            MetricSpec::Pods { metric, target } => {
                let result = match target.average_value_milli {
                    Some(avg) => calc
                        .pods_metric_replicas(
                            source,
                            now_ms,
                            spec_replicas,
                            avg,
                            metric,
                            tolerances,
                        )
                        .map(|p| p.replicas),
                    None => Err(HpaError::InvalidValueTarget { kind: "pods" }),
                };
                result.map_err(|e| {
                    (
                        "FailedGetPodsMetric",
                        e.context("failed to get pods metric value"),
                    )
                })
            }
            MetricSpec::Object { metric, target } => {
                let result = match value_target(target) {
                    Some(ValueTarget::Value(v)) => calc
                        .object_value_replicas(source, spec_replicas, v, metric, tolerances)
                        .map(|p| p.replicas),
                    Some(ValueTarget::AverageValue(v)) => calc
                        .object_per_pod_replicas(source, status_replicas, v, metric, tolerances)
                        .map(|p| p.replicas),
                    None => Err(HpaError::InvalidValueTarget { kind: "object" }),
                };
                result.map_err(|e| {
                    (
                        "FailedGetObjectMetric",
                        e.context("failed to get object metric value"),
                    )
                })
            }
            MetricSpec::External { metric, target } => {
                let result = match value_target(target) {
                    Some(ValueTarget::Value(v)) => calc
                        .external_value_replicas(source, spec_replicas, v, metric, tolerances)
                        .map(|p| p.replicas),
                    Some(ValueTarget::AverageValue(v)) => calc
                        .external_per_pod_replicas(source, status_replicas, v, metric, tolerances)
                        .map(|p| p.replicas),
                    None => Err(HpaError::InvalidValueTarget { kind: "external" }),
                };
                result.map_err(|e| {
                    let e = e.context(format!("failed to get {metric} external metric value"));
                    ("FailedGetExternalMetric", e)
                })
            }
            MetricSpec::Unknown { type_name } => Err((
                "InvalidMetricSourceType",
                HpaError::InvalidMetricSourceType(type_name.clone()),
            )),
        }
    }

    /// `normalizeDesiredReplicas` (legacy path): stabilize over the downscale window, then
    /// clamp with min/max and the `max(factor * current, minimum)` cap.
    fn normalize_legacy(
        &mut self,
        spec: &HpaSpec,
        current: i32,
        proposal: i32,
        min_replicas: i32,
        now_ms: Millis,
        conditions: &mut Conditions,
    ) -> i32 {
        let history = &mut self.recommendations;
        let window = self.config.downscale_stabilization_window_ms;
        let stabilized = stabilize_recommendation(history, proposal, now_ms, window);
        let reason = if stabilized != proposal {
            "ScaleDownStabilized"
        } else {
            "ReadyForNewScale"
        };
        conditions.set(ConditionType::AbleToScale, true, reason);
        let (desired, reason) = convert_desired_replicas_with_rules(
            current,
            stabilized,
            min_replicas,
            spec.max_replicas,
            self.config.legacy_scale_up_limit_factor,
            self.config.legacy_scale_up_limit_minimum,
        );
        conditions.set(ConditionType::ScalingLimited, desired != stabilized, reason);
        desired
    }

    /// `normalizeDesiredReplicasWithBehaviors`: up/down stabilization, then rate limits.
    #[allow(clippy::too_many_arguments)]
    fn normalize_with_behaviors(
        &mut self,
        behavior: &EffectiveBehavior,
        spec: &HpaSpec,
        current: i32,
        proposal: i32,
        min_replicas: i32,
        now_ms: Millis,
        conditions: &mut Conditions,
    ) -> i32 {
        let history = &mut self.recommendations;
        let (stabilized, reason) = stabilize_recommendation_with_behaviors(
            history,
            current,
            proposal,
            behavior.scale_up.stabilization_window_s,
            behavior.scale_down.stabilization_window_s,
            now_ms,
        );
        let reason = if stabilized != proposal {
            reason
        } else {
            "ReadyForNewScale"
        };
        conditions.set(ConditionType::AbleToScale, true, reason);
        let args = RateArgs {
            current,
            desired: stabilized,
            min_replicas,
            max_replicas: spec.max_replicas,
            scale_up: &behavior.scale_up,
            scale_down: &behavior.scale_down,
        };
        let (desired, reason) = convert_desired_replicas_with_behavior_rate(
            args,
            &self.scale_up_events,
            &self.scale_down_events,
            now_ms,
        );
        conditions.set(ConditionType::ScalingLimited, desired != stabilized, reason);
        desired
    }
}

/// A usable Object/External target.
enum ValueTarget {
    Value(i64),
    AverageValue(i64),
}

/// `computeStatusForObjectMetric` / `computeStatusForExternalMetric`: the target type must
/// match a set field.
fn value_target(target: &MetricTarget) -> Option<ValueTarget> {
    match (target.kind, target.value_milli, target.average_value_milli) {
        (TargetType::Value, Some(v), _) => Some(ValueTarget::Value(v)),
        (TargetType::AverageValue, _, Some(v)) => Some(ValueTarget::AverageValue(v)),
        _ => None,
    }
}

/// `computeStatusForResourceMetricGeneric`: an AverageValue target (checked first) or a
/// Utilization target.
#[allow(clippy::too_many_arguments)]
fn resource_proposal<S: MetricsSource + ?Sized>(
    calc: &mut ReplicaCalculator,
    source: &S,
    now_ms: Millis,
    current: i32,
    resource: &str,
    container: Option<&str>,
    target: &MetricTarget,
    tolerances: Tolerances,
) -> Result<i32, HpaError> {
    if let Some(avg) = target.average_value_milli {
        return calc
            .raw_resource_replicas(
                source, now_ms, current, avg, resource, container, tolerances,
            )
            .map(|p| p.replicas)
            .map_err(|e| e.context(format!("failed to get {resource} usage")));
    }
    let Some(percent) = target.average_utilization_percent else {
        return Err(HpaError::InvalidResourceTarget);
    };
    calc.resource_replicas(
        source, now_ms, current, percent, resource, container, tolerances,
    )
    .map(|p| p.replicas)
    .map_err(|e| e.context(format!("failed to get {resource} utilization")))
}

#[cfg(test)]
mod tests;
