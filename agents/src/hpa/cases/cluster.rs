//! The two harnesses that need a fake cluster: `replica_calculator` (one calculator call, as
//! `replica_calculator_test.go` builds it) and `controller_reconcile` (one first reconcile, as
//! `horizontal_test.go` builds it: per-pod totals halved over two containers, CPU samples
//! stamped now with a 60 s window, Ready transition at the start time).

use serde_json::{json, Map, Value};

use super::json::{self, CaseResult, Obj};
use super::{fields, readiness};
use crate::hpa::behavior::EffectiveBehavior;
use crate::hpa::controller::{HorizontalController, HpaSpec, ReconcileOutcome, ScaleSnapshot};
use crate::hpa::fake::{FakePod, FakeResourceSample, FakeSource};
use crate::hpa::grouping::ContainerValue;
use crate::hpa::replica_calc::ReplicaCalculator;
use crate::hpa::{
    ConditionStatus, ControllerConfig, ControllerVariant, HpaError, MetricSpec, MetricTarget,
    PodPhase, PodRecord, ReadyCondition, Tolerances, ZERO_TIME_MS,
};

/// Listed pods of a case (`transition_defaults_to_start` as in [`json::pod`]).
fn pods(inputs: &Obj<'_>, transition_defaults_to_start: bool) -> CaseResult<Vec<FakePod>> {
    let path = inputs.at("pods");
    let mut out = Vec::new();
    for (i, p) in inputs.opt_arr("pods")?.into_iter().flatten().enumerate() {
        out.push(json::pod(
            p,
            &format!("{path}[{i}]"),
            transition_defaults_to_start,
        )?);
    }
    Ok(out)
}

/// `replica_calculator`: one `ReplicaCalculator` call on the case's fake cluster.
pub(super) fn replica_calculator(
    _case: &Obj<'_>,
    inputs: &Obj<'_>,
    expected: Option<&Map<String, Value>>,
) -> CaseResult<Map<String, Value>> {
    let current = inputs.i32("current_replicas")?;
    let status = inputs.opt_i32("status_replicas")?.unwrap_or(current);
    let tolerances =
        json::tolerances(inputs.get("tolerance"), &inputs.at("tolerance"))?.unwrap_or_default();
    let readiness = readiness(inputs)?;
    let metric_path = inputs.at("metric");
    let metric_value = inputs.req("metric")?;
    let metric = Obj::new(metric_value, &metric_path)?;
    let spec = json::metric_spec(metric_value, &metric_path)?;

    let mut source = FakeSource::new(pods(inputs, false)?);
    if let Some(entries) = inputs.opt_arr("pod_metrics")? {
        let path = inputs.at("pod_metrics");
        let mut samples = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let e = Obj::new(e, &p)?;
            let containers = match (e.opt_arr("containers")?, e.opt_i64("cpu_usage_milli")?) {
                (Some(cs), _) => json::containers(cs, "cpu_usage_milli", &e.at("containers"))?,
                // A per-pod total without containers: one unnamed container.
                (None, Some(total)) => vec![ContainerValue {
                    name: String::new(),
                    milli: Some(total),
                }],
                (None, None) => Vec::new(),
            };
            samples.push(FakeResourceSample {
                pod: e
                    .opt_str("pod")?
                    .ok_or_else(|| format!("{}: missing", e.at("pod")))?
                    .to_string(),
                containers,
                timestamp_ms: json::time(e.get("timestamp"), &e.at("timestamp"))?
                    .unwrap_or(ZERO_TIME_MS),
                window_ms: e.opt_i64("window_s")?.unwrap_or(60).saturating_mul(1000),
            });
        }
        source.resource_samples = Ok(samples);
    }
    if let Some(values) = metric.opt_arr("per_pod_values_milli")? {
        let path = metric.at("per_pod_values_milli");
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let v = Obj::new(v, &p)?;
            let pod = v
                .opt_str("pod")?
                .ok_or_else(|| format!("{}: missing", v.at("pod")))?;
            out.push((pod.to_string(), v.i64("value_milli")?));
        }
        source.pods_metric = Ok(out);
    }
    if let Some(v) = metric.opt_i64("object_value_milli")? {
        source.object_value = Ok(v);
    }
    if let Some(series) = metric.opt_i64_list("series_values_milli")? {
        source.external_series = Ok(series);
    }

    let run = |variant: ControllerVariant| -> Result<Map<String, Value>, HpaError> {
        let mut calc = ReplicaCalculator::new(readiness, variant);
        calculate(&mut calc, &source, &spec, current, status, tolerances)
    };
    let mut out = match run(ControllerVariant::Newest) {
        Ok(out) => out,
        Err(e) => return Ok(fields([("error", json!(e.to_string()))])),
    };
    if expected.is_some_and(|e| e.contains_key("desired_replicas_older_controllers")) {
        if let Ok(older) = run(ControllerVariant::Older) {
            out.insert(
                "desired_replicas_older_controllers".into(),
                older["desired_replicas"].clone(),
            );
        }
    }
    Ok(out)
}

/// The calculator method the metric's source and target select (as the controller picks it).
fn calculate(
    calc: &mut ReplicaCalculator,
    source: &FakeSource,
    spec: &MetricSpec,
    current: i32,
    status: i32,
    tolerances: Tolerances,
) -> Result<Map<String, Value>, HpaError> {
    let usage = |p: crate::hpa::replica_calc::UsageProposal| {
        fields([
            ("desired_replicas", json!(p.replicas)),
            ("usage_milli", json!(p.usage_milli)),
        ])
    };
    let (resource, container, target) = match spec {
        MetricSpec::Resource { resource, target } => (resource, None, target),
        MetricSpec::ContainerResource {
            resource,
            container,
            target,
        } => (resource, Some(container.as_str()), target),
        MetricSpec::Pods { metric, target } => {
            let avg = target
                .average_value_milli
                .ok_or(HpaError::InvalidValueTarget { kind: "pods" })?;
            return calc
                .pods_metric_replicas(source, 0, current, avg, metric, tolerances)
                .map(usage);
        }
        MetricSpec::Object { metric, target } => {
            return match (target.value_milli, target.average_value_milli) {
                (Some(v), _) => calc
                    .object_value_replicas(source, current, v, metric, tolerances)
                    .map(usage),
                (None, Some(v)) => calc
                    .object_per_pod_replicas(source, status, v, metric, tolerances)
                    .map(usage),
                (None, None) => Err(HpaError::InvalidValueTarget { kind: "object" }),
            };
        }
        MetricSpec::External { metric, target } => {
            return match (target.value_milli, target.average_value_milli) {
                (Some(v), _) => calc
                    .external_value_replicas(source, current, v, metric, tolerances)
                    .map(usage),
                (None, Some(v)) => calc
                    .external_per_pod_replicas(source, status, v, metric, tolerances)
                    .map(usage),
                (None, None) => Err(HpaError::InvalidValueTarget { kind: "external" }),
            };
        }
        MetricSpec::Unknown { type_name } => {
            return Err(HpaError::InvalidMetricSourceType(type_name.clone()))
        }
    };
    if let Some(avg) = target.average_value_milli {
        // The plain average is both the usage and the raw average of this target.
        let p =
            calc.raw_resource_replicas(source, 0, current, avg, resource, container, tolerances)?;
        let mut out = usage(p);
        out.insert("raw_average_value_milli".into(), json!(p.usage_milli));
        return Ok(out);
    }
    let percent = target
        .average_utilization_percent
        .ok_or(HpaError::InvalidResourceTarget)?;
    let p = calc.resource_replicas(source, 0, current, percent, resource, container, tolerances)?;
    Ok(fields([
        ("desired_replicas", json!(p.replicas)),
        ("utilization_percent", json!(p.utilization_percent)),
        ("raw_average_value_milli", json!(p.raw_average_milli)),
    ]))
}

/// Controller constants: the Go test values overridden by `controller_config`, the global
/// tolerance from `tolerance`.
fn controller_config(inputs: &Obj<'_>) -> CaseResult<ControllerConfig> {
    let mut config = ControllerConfig::go_test();
    if let Some(cc) = inputs.get("controller_config") {
        let path = inputs.at("controller_config");
        let cc = Obj::new(cc, &path)?;
        if let Some(t) = cc.opt_f64("tolerance")? {
            config.tolerance = Tolerances::symmetric(t);
        }
        let ms = |key: &str, default: i64| -> CaseResult<i64> {
            Ok(cc.opt_i64(key)?.map_or(default, |s| s.saturating_mul(1000)))
        };
        config.cpu_initialization_period_ms = ms(
            "cpu_initialization_period_s",
            config.cpu_initialization_period_ms,
        )?;
        config.initial_readiness_delay_ms = ms(
            "initial_readiness_delay_s",
            config.initial_readiness_delay_ms,
        )?;
        config.downscale_stabilization_window_ms = ms(
            "downscale_stabilization_window_s",
            config.downscale_stabilization_window_ms,
        )?;
        if let Some(f) = cc.opt_f64("legacy_scale_up_limit_factor")? {
            config.legacy_scale_up_limit_factor = f;
        }
        if let Some(m) = cc.opt_f64("legacy_scale_up_limit_minimum")? {
            config.legacy_scale_up_limit_minimum = m;
        }
    }
    if let Some(t) = json::tolerances(inputs.get("tolerance"), &inputs.at("tolerance"))? {
        config.tolerance = t;
    }
    Ok(config)
}

/// The harness's default pod: Running, Ready since the zero time, 1000m.
fn default_pod(i: usize) -> FakePod {
    FakePod {
        name: format!("test-pod-{i}"),
        record: PodRecord {
            phase: PodPhase::Running,
            ready: Some(ReadyCondition {
                status: ConditionStatus::True,
                last_transition_ms: ZERO_TIME_MS,
            }),
            start_time_ms: Some(ZERO_TIME_MS),
            deleting: false,
        },
        containers: json::halved(1000),
    }
}

/// `controller_reconcile`: the first reconcile of the case's HPA.
pub(super) fn controller_reconcile(
    inputs: &Obj<'_>,
    expected: Option<&Map<String, Value>>,
) -> CaseResult<Map<String, Value>> {
    let config = controller_config(inputs)?;
    let hpa_path = inputs.at("hpa");
    let hpa = Obj::new(inputs.req("hpa")?, &hpa_path)?;
    let scale_path = inputs.at("scale");
    let scale = Obj::new(inputs.req("scale")?, &scale_path)?;
    let spec_replicas = scale.i32("spec_replicas")?;
    let status_replicas = scale.opt_i32("status_replicas")?.unwrap_or(spec_replicas);

    let metrics_path = hpa.at("metrics");
    let mut metrics = Vec::new();
    for (i, m) in hpa.opt_arr("metrics")?.into_iter().flatten().enumerate() {
        metrics.push(json::metric_spec(m, &format!("{metrics_path}[{i}]"))?);
    }
    if metrics.is_empty() {
        // API defaulting of an empty `spec.metrics`: CPU at 80 %.
        metrics.push(MetricSpec::Resource {
            resource: "cpu".into(),
            target: MetricTarget::utilization(80),
        });
    }
    let window_s =
        i32::try_from(config.downscale_stabilization_window_ms / 1000).unwrap_or(i32::MAX);
    let behavior = json::behavior(hpa.get("behavior"), &hpa.at("behavior"))?
        .map(|b| EffectiveBehavior::from_api(&b, window_s));
    let spec = HpaSpec {
        min_replicas: hpa.opt_i32("min_replicas")?,
        max_replicas: hpa.i32("max_replicas")?,
        metrics,
        behavior,
    };

    // The listed pods are the harness's expansion (an empty list is a pod list with no pod, as
    // with `reportedCPURequests: []`); without a `pods` field the harness default applies:
    // status.replicas pods of 1000m.
    let listed = if inputs.get("pods").is_some() {
        pods(inputs, true)?
    } else {
        (0..usize::try_from(status_replicas).unwrap_or(0))
            .map(default_pod)
            .collect()
    };
    let source = fake_cluster(inputs, listed)?;

    let mut controller = HorizontalController::new(config);
    match inputs.get("recommendation_history") {
        None => controller.set_recommendations(None),
        Some(Value::String(s)) if s == "controller_initializes" => {
            controller.set_recommendations(None)
        }
        Some(Value::Array(items)) => controller.set_recommendations(Some(json::recommendations(
            items,
            &inputs.at("recommendation_history"),
        )?)),
        Some(other) => {
            return Err(format!(
                "{}: unexpected {other}",
                inputs.at("recommendation_history")
            ))
        }
    }
    let up = json::events(inputs.get("scale_up_events"), &inputs.at("scale_up_events"))?;
    let down = json::events(
        inputs.get("scale_down_events"),
        &inputs.at("scale_down_events"),
    )?;
    controller.set_scale_events(up, down);

    let scale = ScaleSnapshot {
        spec_replicas,
        status_replicas,
    };
    let outcome = controller.reconcile(&spec, scale, &source, 0);
    Ok(outcome_fields(&outcome, expected))
}

/// The fake metrics APIs of `horizontal_test.go` filled from `metric_data`.
fn fake_cluster(inputs: &Obj<'_>, listed: Vec<FakePod>) -> CaseResult<FakeSource> {
    let mut source = FakeSource::new(listed);
    let Some(data) = inputs.get("metric_data") else {
        return Ok(source);
    };
    let data_path = inputs.at("metric_data");
    let data = Obj::new(data, &data_path)?;
    let cpu = data.opt_i64_list("cpu_usage_milli_per_pod")?;
    let pods_levels = data
        .opt_i64_list("pods_metric_milli_per_pod")?
        .or_else(|| cpu.clone());
    source.resource_samples = Ok(cpu
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, &level)| FakeResourceSample {
            pod: format!("test-pod-{i}"),
            containers: json::halved(level),
            timestamp_ms: 0,
            window_ms: 60_000,
        })
        .collect());
    source.pods_metric = Ok(pods_levels
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, &v)| (format!("test-pod-{i}"), v))
        .collect());
    let object = match data.opt_i64("object_metric_milli")? {
        Some(v) => Some(v),
        None => pods_levels.as_ref().and_then(|l| l.first().copied()),
    };
    source.object_value =
        object.ok_or_else(|| HpaError::MetricFetch("no object metric returned".into()));
    source.external_series = Ok(data
        .opt_i64_list("external_metric_series_milli")?
        .or(pods_levels)
        .unwrap_or_default());
    let failing_path = data.at("failing_metric_sources");
    for (i, f) in data
        .opt_arr("failing_metric_sources")?
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = f
            .as_str()
            .ok_or_else(|| format!("{failing_path}[{i}]: expected a string"))?;
        let err = || HpaError::MetricFetch("something went wrong".into());
        match name {
            "Resource" | "ContainerResource" => source.resource_samples = Err(err()),
            "Pods" => source.pods_metric = Err(err()),
            "Object" => source.object_value = Err(err()),
            "External" => source.external_series = Err(err()),
            other => {
                return Err(format!(
                    "{failing_path}[{i}]: unknown metric source {other:?}"
                ))
            }
        }
    }
    Ok(source)
}

/// `desired_replicas`, `scale_updated`, `conditions`, `conditions_source` (metadata echoed
/// from the case: where the Go test took its expected conditions from) and `error`.
fn outcome_fields(
    outcome: &ReconcileOutcome,
    expected: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let conditions: Vec<Value> = outcome
        .conditions
        .iter()
        .map(|c| json!({"type": c.kind.as_str(), "status": if c.status { "True" } else { "False" }, "reason": c.reason}))
        .collect();
    let mut out = fields([
        ("desired_replicas", json!(outcome.desired_replicas)),
        ("scale_updated", json!(outcome.scale_updated)),
        ("conditions", Value::Array(conditions)),
    ]);
    if let Some(source) = expected.and_then(|e| e.get("conditions_source")) {
        out.insert("conditions_source".into(), source.clone());
    }
    if let Some(e) = &outcome.error {
        out.insert("error".into(), json!(e.to_string()));
    }
    out
}
