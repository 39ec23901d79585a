//! Reference-case harness: replays the cases of `shared/hpa/cases-public.json` (layout in
//! `shared/hpa/README.md`) through this implementation.
//!
//! [`run_cases`] takes one case object or an array of them and returns an array with, per case,
//! its `id` and the fields of its `expected` block as computed here (inferred-value wrappers
//! unwrapped), or an `error` field with the message where the computation fails (a controller
//! error, or a malformed case: the message names the field). Each `level` models the Go test
//! harness that produced it:
//!
//! | level | Go function | module |
//! | --- | --- | --- |
//! | `replica_calculator` | `ReplicaCalculator.Get*Replicas` | `cases/cluster.rs` |
//! | `controller_reconcile` | `reconcileAutoscaler` (first reconcile) | `cases/cluster.rs` |
//! | `pod_classification` | `groupPods` | here |
//! | `behavior_rate_limit` | `convertDesiredReplicasWithBehaviorRate`, `calculateScale*Limit*` | here |
//! | `behavior_stabilization` | `stabilizeRecommendationWithBehaviors` | here |
//! | `legacy_stabilization` | `stabilizeRecommendation` | here |
//! | `legacy_clamp` | `convertDesiredReplicasWithRules` | here |
//! | `scale_event_bookkeeping` | `storeScaleEvent` + `getReplicasChangePerPeriod` | here |

mod cluster;
mod json;

use serde_json::{json, Map, Value};

use self::json::{events, recommendations, rules, time, CaseResult, Obj};
use super::behavior::{
    convert_desired_replicas_with_behavior_rate, convert_desired_replicas_with_rules,
    default_scale_down_rules, default_scale_up_rules, replicas_change_per_period,
    scale_down_limit_with_rules, scale_up_limit_with_rules, stabilize_recommendation,
    stabilize_recommendation_with_behaviors, store_scale_event, EffectiveBehavior, EffectiveRules,
    RateArgs,
};
use super::grouping::{group_pods, PodGroup, ReadinessConfig};
use super::{HpaError, PodMetricsInfo, PodSample, ScalingRules, ZERO_TIME_MS};

/// Downscale stabilization window of the Go tests (and production), seconds.
const DOWNSCALE_WINDOW_S: i32 = 300;

/// Runs one case object or an array of cases; returns a JSON array of results (one per case,
/// in input order). Fails only when `input` is neither an object nor an array.
pub fn run_cases(input: &Value) -> Result<Value, HpaError> {
    match input {
        Value::Array(cases) => Ok(Value::Array(cases.iter().map(run_case).collect())),
        Value::Object(_) => Ok(Value::Array(vec![run_case(input)])),
        _ => Err(HpaError::CaseInput(
            "expected a case object or an array of cases".into(),
        )),
    }
}

/// Runs one case: `{id, <expected fields>}` or `{id, error}`.
pub fn run_case(case: &Value) -> Value {
    let case = json::unwrap_inferred(case);
    let id = case.get("id").cloned().unwrap_or(Value::Null);
    let mut out = Map::new();
    out.insert("id".into(), id);
    match compute(&case) {
        Ok(fields) => {
            // Keep the fields the case's `expected` block names (all of them if it has none).
            let expected = case.get("expected").and_then(Value::as_object);
            for (k, v) in fields {
                if expected.is_none_or(|e| e.contains_key(&k)) || k == "error" {
                    out.insert(k, v);
                }
            }
        }
        Err(e) => {
            out.insert("error".into(), Value::String(e));
        }
    }
    Value::Object(out)
}

/// Compares one computed result with its case's `expected` block: every non-null field must
/// match (numbers exactly, `conditions` in order); `error_contains` must be a substring of the
/// result's `error`; the `*_pods` lists of `pod_classification` compare as sets (Go sets).
/// Returns a description of the first mismatches.
pub fn check_case(case: &Value, result: &Value) -> Result<(), String> {
    let case = json::unwrap_inferred(case);
    let Some(expected) = case.get("expected").and_then(Value::as_object) else {
        return Err("case has no expected object".into());
    };
    let error = result.get("error").and_then(Value::as_str);
    let mut problems = Vec::new();
    for (key, want) in expected.iter().filter(|(_, v)| !v.is_null()) {
        if key == "error_contains" {
            let want = want.as_str().unwrap_or_default();
            if !error.is_some_and(|e| e.contains(want)) {
                problems.push(format!("error {error:?} does not contain {want:?}"));
            }
            continue;
        }
        let got = result.get(key).cloned().unwrap_or(Value::Null);
        let same = if key.ends_with("_pods") {
            as_set(&got) == as_set(want)
        } else {
            &got == want
        };
        if !same {
            problems.push(format!("{key}: expected {want}, got {got}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    if let Some(e) = error.filter(|_| !expected.contains_key("error_contains")) {
        problems.push(format!("error: {e}"));
    }
    Err(problems.join("; "))
}

/// A JSON list as a sorted list of its items' texts (a set comparison).
fn as_set(v: &Value) -> Option<Vec<String>> {
    let mut items: Vec<String> = v.as_array()?.iter().map(Value::to_string).collect();
    items.sort();
    Some(items)
}

/// Dispatches on `level`.
fn compute(case: &Value) -> CaseResult<Map<String, Value>> {
    let c = Obj::new(case, "")?;
    let level = c.opt_str("level")?.ok_or("level: missing")?;
    let inputs = Obj::new(c.req("inputs")?, "inputs")?;
    let expected = case.get("expected").and_then(Value::as_object);
    match level {
        "replica_calculator" => cluster::replica_calculator(&c, &inputs, expected),
        "controller_reconcile" => cluster::controller_reconcile(&inputs, expected),
        "pod_classification" => pod_classification(&inputs),
        "behavior_rate_limit" => behavior_rate_limit(&c, &inputs),
        "behavior_stabilization" => behavior_stabilization(&inputs),
        "legacy_stabilization" => legacy_stabilization(&inputs),
        "legacy_clamp" => legacy_clamp(&inputs),
        "scale_event_bookkeeping" => scale_event_bookkeeping(&inputs),
        other => Err(format!("level: unknown level {other:?}")),
    }
}

/// Builds a result map from `(field, value)` pairs.
fn fields<const N: usize>(items: [(&str, Value); N]) -> Map<String, Value> {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Readiness constants from `controller_config` (Go test defaults 120 s and 10 s).
fn readiness(inputs: &Obj<'_>) -> CaseResult<ReadinessConfig> {
    let (mut period_s, mut delay_s) = (120, 10);
    if let Some(cc) = inputs.get("controller_config") {
        let path = inputs.at("controller_config");
        let cc = Obj::new(cc, &path)?;
        period_s = cc
            .opt_i64("cpu_initialization_period_s")?
            .unwrap_or(period_s);
        delay_s = cc.opt_i64("initial_readiness_delay_s")?.unwrap_or(delay_s);
    }
    Ok(ReadinessConfig {
        cpu_initialization_period_ms: period_s.saturating_mul(1000),
        initial_readiness_delay_ms: delay_s.saturating_mul(1000),
    })
}

/// `pod_classification`: `groupPods` on the listed pods and samples.
fn pod_classification(inputs: &Obj<'_>) -> CaseResult<Map<String, Value>> {
    let resource = inputs.opt_str("resource")?.unwrap_or("cpu");
    let readiness = readiness(inputs)?;
    let pods_path = inputs.at("pods");
    let mut pods = Vec::new();
    for (i, p) in inputs.opt_arr("pods")?.into_iter().flatten().enumerate() {
        pods.push(json::pod(p, &format!("{pods_path}[{i}]"), false)?);
    }
    let mut metrics = PodMetricsInfo::default();
    metrics.reset(pods.len());
    let metrics_path = inputs.at("metrics");
    for (i, m) in inputs.opt_arr("metrics")?.into_iter().flatten().enumerate() {
        let path = format!("{metrics_path}[{i}]");
        let m = Obj::new(m, &path)?;
        let name = m
            .opt_str("pod")?
            .ok_or_else(|| format!("{}: missing", m.at("pod")))?;
        let sample = PodSample {
            value_milli: m.opt_i64("value")?.unwrap_or(0),
            timestamp_ms: time(m.get("timestamp"), &m.at("timestamp"))?.unwrap_or(ZERO_TIME_MS),
            window_ms: m.opt_i64("window_s")?.unwrap_or(0).saturating_mul(1000),
        };
        match pods.iter().position(|p| p.name == name) {
            Some(j) => metrics.per_pod[j] = Some(sample),
            None => metrics.strays.push(sample.value_milli),
        }
    }
    let records: Vec<_> = pods.iter().map(|p| p.record).collect();
    let mut groups = Vec::new();
    let counts = group_pods(
        &records,
        &metrics,
        resource == "cpu",
        0,
        readiness,
        &mut groups,
    );
    let names = |g: PodGroup| -> Value {
        pods.iter()
            .zip(&groups)
            .filter(|(_, pg)| **pg == g)
            .map(|(p, _)| json!(p.name))
            .collect()
    };
    Ok(fields([
        ("ready_pod_count", json!(counts.ready)),
        ("unready_pods", names(PodGroup::Unready)),
        ("missing_pods", names(PodGroup::Missing)),
        ("ignored_pods", names(PodGroup::Ignored)),
    ]))
}

/// `behavior_rate_limit`: `convertDesiredReplicasWithBehaviorRate` on defaulted rules, or one
/// limit function directly when the case gives `rules`.
fn behavior_rate_limit(case: &Obj<'_>, inputs: &Obj<'_>) -> CaseResult<Map<String, Value>> {
    let current = inputs.i32("current_replicas")?;
    let up_events = events(inputs.get("scale_up_events"), &inputs.at("scale_up_events"))?;
    let down_events = events(
        inputs.get("scale_down_events"),
        &inputs.at("scale_down_events"),
    )?;
    if inputs.get("rules").is_some() {
        let parsed = rules(inputs.get("rules"), &inputs.at("rules"))?;
        let (function, name) = (case.opt_str("function")?, case.opt_str("name")?);
        let text = format!("{} {}", function.unwrap_or(""), name.unwrap_or("")).to_lowercase();
        let down = if text.contains("scaledown") {
            true
        } else if text.contains("scaleup") {
            false
        } else {
            let cats = case.opt_arr("categories")?.into_iter().flatten();
            cats.clone().any(|c| c == "scale_down") && !cats.clone().any(|c| c == "scale_up")
        };
        // The Go tests call the limit functions on the rules as built (no API defaults).
        let r = as_given(parsed.as_ref());
        let limit = if down {
            scale_down_limit_with_rules(current, &up_events, &down_events, &r, 0)
        } else {
            scale_up_limit_with_rules(current, &up_events, &down_events, &r, 0)
        };
        return Ok(fields([("limit", json!(limit))]));
    }
    let up = default_scale_up_rules(
        rules(inputs.get("scale_up_rules"), &inputs.at("scale_up_rules"))?.as_ref(),
    );
    let down_rules = rules(
        inputs.get("scale_down_rules"),
        &inputs.at("scale_down_rules"),
    )?;
    let down = default_scale_down_rules(down_rules.as_ref(), DOWNSCALE_WINDOW_S);
    let args = RateArgs {
        current,
        desired: inputs.i32("desired_replicas")?,
        min_replicas: inputs.opt_i32("min_replicas")?.unwrap_or(1),
        max_replicas: inputs.i32("max_replicas")?,
        scale_up: &up,
        scale_down: &down,
    };
    let (replicas, reason) =
        convert_desired_replicas_with_behavior_rate(args, &up_events, &down_events, 0);
    Ok(fields([
        ("replicas", json!(replicas)),
        ("condition_reason", json!(reason)),
    ]))
}

/// Rules exactly as a Go test builds them (no API defaults): unset window 0, unset select
/// policy `Max`, unset policies none.
fn as_given(r: Option<&ScalingRules>) -> EffectiveRules {
    EffectiveRules {
        stabilization_window_s: r.and_then(|r| r.stabilization_window_s).unwrap_or(0),
        select_policy: r.and_then(|r| r.select_policy).unwrap_or_default(),
        policies: r.and_then(|r| r.policies.clone()).unwrap_or_default(),
        tolerance: r.and_then(|r| r.tolerance),
    }
}

/// A `recommendation_history` list.
fn history(inputs: &Obj<'_>) -> CaseResult<Vec<super::behavior::Recommendation>> {
    let items = inputs
        .opt_arr("recommendation_history")?
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    recommendations(items, &inputs.at("recommendation_history"))
}

/// `behavior_stabilization`: `stabilizeRecommendationWithBehaviors`.
fn behavior_stabilization(inputs: &Obj<'_>) -> CaseResult<Map<String, Value>> {
    let mut history = history(inputs)?;
    let (stabilized, _) = stabilize_recommendation_with_behaviors(
        &mut history,
        inputs.i32("current_replicas")?,
        inputs.i32("desired_replicas")?,
        inputs
            .opt_i32("scale_up_stabilization_window_s")?
            .unwrap_or(0),
        inputs
            .opt_i32("scale_down_stabilization_window_s")?
            .unwrap_or(0),
        0,
    );
    let stored: Vec<i32> = history.iter().map(|r| r.replicas).collect();
    Ok(fields([
        ("stabilized_replicas", json!(stabilized)),
        ("stored_recommendations_after", json!(stored)),
    ]))
}

/// `legacy_stabilization`: `stabilizeRecommendation` over the downscale window.
fn legacy_stabilization(inputs: &Obj<'_>) -> CaseResult<Map<String, Value>> {
    let mut history = history(inputs)?;
    let window_s = inputs
        .opt_i64("downscale_stabilization_window_s")?
        .unwrap_or(300);
    let stabilized = stabilize_recommendation(
        &mut history,
        inputs.i32("desired_replicas")?,
        0,
        window_s.saturating_mul(1000),
    );
    Ok(fields([
        ("stabilized_replicas", json!(stabilized)),
        ("history_length_after", json!(history.len())),
    ]))
}

/// `legacy_clamp`: `convertDesiredReplicasWithRules` with the case's factor (Go tests: 8).
fn legacy_clamp(inputs: &Obj<'_>) -> CaseResult<Map<String, Value>> {
    let (replicas, reason) = convert_desired_replicas_with_rules(
        inputs.i32("current_replicas")?,
        inputs.i32("desired_replicas")?,
        inputs.opt_i32("min_replicas")?.unwrap_or(1),
        inputs.i32("max_replicas")?,
        inputs
            .opt_f64("legacy_scale_up_limit_factor")?
            .unwrap_or(8.0),
        inputs
            .opt_f64("legacy_scale_up_limit_minimum")?
            .unwrap_or(4.0),
    );
    Ok(fields([
        ("replicas", json!(replicas)),
        ("condition_reason", json!(reason)),
    ]))
}

/// `scale_event_bookkeeping` (`TestStoreScaleEvents`): sum the changes newer than the change
/// window, then store a scale-up by `replica_change` (10 -> 10 + change) with the case's rules,
/// as given, in both directions (no behavior when `rules` is null).
fn scale_event_bookkeeping(inputs: &Obj<'_>) -> CaseResult<Map<String, Value>> {
    let mut up = events(inputs.get("previous_events"), &inputs.at("previous_events"))?;
    let window_s = inputs.opt_i32("change_window_s")?.unwrap_or(60);
    let before = replicas_change_per_period(window_s, &up, 0);
    let parsed = rules(inputs.get("rules"), &inputs.at("rules"))?;
    let behavior = parsed.as_ref().map(|r| EffectiveBehavior {
        scale_up: as_given(Some(r)),
        scale_down: as_given(Some(r)),
    });
    let change = inputs.opt_i32("replica_change")?.unwrap_or(5);
    let mut down = Vec::new();
    store_scale_event(
        behavior.as_ref(),
        &mut up,
        &mut down,
        10,
        10i32.saturating_add(change),
        0,
    );
    let after: Vec<Value> = up
        .iter()
        .map(|e| json!({"replica_change": e.replica_change, "outdated": e.outdated}))
        .collect();
    Ok(fields([
        ("replicas_change_last_60s_before_store", json!(before)),
        ("events_after_store", json!(after)),
    ]))
}

#[cfg(test)]
mod tests;
