//! Reading the reference-case JSON: inferred-value unwrapping, typed field access with errors
//! that name the field, times, pods, metric specs and behavior rules.

use serde_json::{Map, Value};

use crate::hpa::behavior::{Recommendation, ScaleEvent};
use crate::hpa::fake::FakePod;
use crate::hpa::grouping::ContainerValue;
use crate::hpa::{
    Behavior, ConditionStatus, MetricSpec, MetricTarget, Millis, PodPhase, PodRecord, PolicyType,
    ReadyCondition, ScalingPolicy, ScalingRules, SelectPolicy, TargetType, Tolerances,
    ZERO_TIME_MS,
};

/// Result of reading a case; the error names the offending field.
pub(crate) type CaseResult<T> = Result<T, String>;

/// Replaces every `{"value": X, "inferred": true, ...}` wrapper by `X`, recursively.
pub(crate) fn unwrap_inferred(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.contains_key("value") && m.contains_key("inferred") => {
            unwrap_inferred(&m["value"])
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), unwrap_inferred(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(unwrap_inferred).collect()),
        other => other.clone(),
    }
}

/// A JSON object with the path it was read at.
#[derive(Clone, Copy)]
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Obj<'a> {
    /// `v` as an object read at `path`.
    pub(crate) fn new(v: &'a Value, path: &'a str) -> CaseResult<Obj<'a>> {
        match v.as_object() {
            Some(map) => Ok(Obj { map, path }),
            None => Err(format!("{path}: expected an object")),
        }
    }

    /// Path of a field.
    pub(crate) fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The field, `None` when absent or null.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// The field, an error when absent or null.
    pub(crate) fn req(&self, key: &str) -> CaseResult<&'a Value> {
        self.get(key)
            .ok_or_else(|| format!("{}: missing", self.at(key)))
    }

    /// An optional integer field.
    pub(crate) fn opt_i64(&self, key: &str) -> CaseResult<Option<i64>> {
        self.get(key).map(|v| as_i64(v, &self.at(key))).transpose()
    }

    /// A required integer field.
    pub(crate) fn i64(&self, key: &str) -> CaseResult<i64> {
        as_i64(self.req(key)?, &self.at(key))
    }

    /// A required `i32` field.
    pub(crate) fn i32(&self, key: &str) -> CaseResult<i32> {
        to_i32(self.i64(key)?, &self.at(key))
    }

    /// An optional `i32` field.
    pub(crate) fn opt_i32(&self, key: &str) -> CaseResult<Option<i32>> {
        self.opt_i64(key)?
            .map(|v| to_i32(v, &self.at(key)))
            .transpose()
    }

    /// An optional number field.
    pub(crate) fn opt_f64(&self, key: &str) -> CaseResult<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("{}: expected a number", self.at(key))),
        }
    }

    /// An optional string field.
    pub(crate) fn opt_str(&self, key: &str) -> CaseResult<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| format!("{}: expected a string", self.at(key))),
        }
    }

    /// An optional boolean field.
    pub(crate) fn opt_bool(&self, key: &str) -> CaseResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| format!("{}: expected a boolean", self.at(key))),
        }
    }

    /// An optional array field.
    pub(crate) fn opt_arr(&self, key: &str) -> CaseResult<Option<&'a Vec<Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_array()
                .map(Some)
                .ok_or_else(|| format!("{}: expected an array", self.at(key))),
        }
    }

    /// An optional array of integers.
    pub(crate) fn opt_i64_list(&self, key: &str) -> CaseResult<Option<Vec<i64>>> {
        let Some(items) = self.opt_arr(key)? else {
            return Ok(None);
        };
        let path = self.at(key);
        items
            .iter()
            .enumerate()
            .map(|(i, v)| as_i64(v, &format!("{path}[{i}]")))
            .collect::<CaseResult<_>>()
            .map(Some)
    }
}

fn as_i64(v: &Value, path: &str) -> CaseResult<i64> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    if v.as_u64().is_some() {
        return Ok(i64::MAX);
    }
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(f as i64),
        _ => Err(format!("{path}: expected an integer, got {v}")),
    }
}

fn to_i32(v: i64, path: &str) -> CaseResult<i32> {
    i32::try_from(v).map_err(|_| format!("{path}: {v} does not fit in int32"))
}

/// An instant: `"zero_time"`, `"now"`, `{"seconds_before_now": N}`; `None` for `"unset"`,
/// `"absent"` or null.
pub(crate) fn time(v: Option<&Value>, path: &str) -> CaseResult<Option<Millis>> {
    let Some(v) = v else { return Ok(None) };
    match v {
        Value::Null => Ok(None),
        Value::String(s) => match s.as_str() {
            "zero_time" => Ok(Some(ZERO_TIME_MS)),
            "now" => Ok(Some(0)),
            "unset" | "absent" => Ok(None),
            other => Err(format!("{path}: unknown time {other:?}")),
        },
        Value::Object(m) => match m.get("seconds_before_now").and_then(Value::as_f64) {
            Some(s) => Ok(Some(-(s * 1000.0).round() as i64)),
            None => Err(format!("{path}: expected seconds_before_now")),
        },
        other => Err(format!("{path}: expected a time, got {other}")),
    }
}

/// An age in seconds (`age_s`) as an instant before now.
pub(crate) fn age(o: &Obj<'_>, key: &str) -> CaseResult<Millis> {
    let v = o.req(key)?;
    let s = v
        .as_f64()
        .ok_or_else(|| format!("{}: expected a number of seconds", o.at(key)))?;
    Ok(-(s * 1000.0).round() as i64)
}

/// `{scale_up, scale_down}` tolerances, or `None` when null.
pub(crate) fn tolerances(v: Option<&Value>, path: &str) -> CaseResult<Option<Tolerances>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    if let Some(t) = v.as_f64() {
        return Ok(Some(Tolerances::symmetric(t)));
    }
    let o = Obj::new(v, path)?;
    let up = o.opt_f64("scale_up")?.unwrap_or(0.1);
    let down = o.opt_f64("scale_down")?.unwrap_or(up);
    Ok(Some(Tolerances {
        scale_up: up,
        scale_down: down,
    }))
}

fn condition_status(s: &str, path: &str) -> CaseResult<ConditionStatus> {
    match s {
        "True" => Ok(ConditionStatus::True),
        "False" => Ok(ConditionStatus::False),
        "Unknown" => Ok(ConditionStatus::Unknown),
        other => Err(format!("{path}: unknown condition status {other:?}")),
    }
}

fn phase(s: &str, path: &str) -> CaseResult<PodPhase> {
    match s {
        "Running" => Ok(PodPhase::Running),
        "Pending" => Ok(PodPhase::Pending),
        "Succeeded" => Ok(PodPhase::Succeeded),
        "Failed" => Ok(PodPhase::Failed),
        "Unknown" => Ok(PodPhase::Unknown),
        other => Err(format!("{path}: unknown phase {other:?}")),
    }
}

/// Named per-container values (`cpu_request_milli` or `cpu_usage_milli`).
pub(crate) fn containers(v: &[Value], key: &str, path: &str) -> CaseResult<Vec<ContainerValue>> {
    let mut out = Vec::with_capacity(v.len());
    for (i, c) in v.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let c = Obj::new(c, &p)?;
        let name = c.opt_str("name")?.unwrap_or("").to_string();
        out.push(ContainerValue {
            name,
            milli: c.opt_i64(key)?,
        });
    }
    Ok(out)
}

/// The two containers of the `horizontal_test.go` harness, each with half (integer division)
/// of the per-pod value.
pub(crate) fn halved(value: i64) -> Vec<ContainerValue> {
    ["container1", "container2"]
        .iter()
        .map(|n| ContainerValue {
            name: (*n).to_string(),
            milli: Some(value / 2),
        })
        .collect()
}

/// One listed pod. `transition_defaults_to_start`: a Ready condition without
/// `ready_last_transition` takes the start time (controller harness) instead of the zero time.
pub(crate) fn pod(
    v: &Value,
    path: &str,
    transition_defaults_to_start: bool,
) -> CaseResult<FakePod> {
    let o = Obj::new(v, path)?;
    let name = o
        .opt_str("name")?
        .ok_or_else(|| format!("{}: missing", o.at("name")))?
        .to_string();
    let phase = phase(o.opt_str("phase")?.unwrap_or("Running"), &o.at("phase"))?;
    let start = time(o.get("start_time"), &o.at("start_time"))?;
    let ready = match o.get("ready_condition") {
        None => None,
        Some(Value::String(s)) if s == "absent" => None,
        Some(Value::String(s)) => {
            let status = condition_status(s, &o.at("ready_condition"))?;
            let transition = match o.get("ready_last_transition") {
                Some(t) => time(Some(t), &o.at("ready_last_transition"))?,
                None if transition_defaults_to_start => start,
                None => None,
            };
            Some(ReadyCondition {
                status,
                last_transition_ms: transition.unwrap_or(ZERO_TIME_MS),
            })
        }
        Some(c) => {
            let p = o.at("ready_condition");
            let c = Obj::new(c, &p)?;
            let status = condition_status(c.opt_str("status")?.unwrap_or("True"), &c.at("status"))?;
            let transition = time(c.get("last_transition"), &c.at("last_transition"))?;
            Some(ReadyCondition {
                status,
                last_transition_ms: transition.unwrap_or(ZERO_TIME_MS),
            })
        }
    };
    let deleting = o.opt_bool("deleting")?.unwrap_or(false);
    let containers = match (o.opt_arr("containers")?, o.opt_i64("cpu_request_milli")?) {
        (Some(cs), _) => containers(cs, "cpu_request_milli", &o.at("containers"))?,
        (None, Some(total)) => halved(total),
        (None, None) => Vec::new(),
    };
    let record = PodRecord {
        phase,
        ready,
        start_time_ms: start,
        deleting,
    };
    Ok(FakePod {
        name,
        record,
        containers,
    })
}

/// A metric target.
pub(crate) fn target(v: Option<&Value>, path: &str) -> CaseResult<MetricTarget> {
    let v = v.ok_or_else(|| format!("{path}: missing"))?;
    let o = Obj::new(v, path)?;
    let value_milli = o.opt_i64("value_milli")?;
    let average_value_milli = o.opt_i64("average_value_milli")?;
    let average_utilization_percent = o.opt_i32("average_utilization_percent")?;
    let kind = match o.opt_str("type")? {
        Some("Utilization") => TargetType::Utilization,
        Some("Value") => TargetType::Value,
        Some("AverageValue") => TargetType::AverageValue,
        Some(other) => return Err(format!("{}: unknown target type {other:?}", o.at("type"))),
        None if value_milli.is_some() => TargetType::Value,
        None if average_value_milli.is_some() => TargetType::AverageValue,
        None => TargetType::Utilization,
    };
    Ok(MetricTarget {
        kind,
        value_milli,
        average_value_milli,
        average_utilization_percent,
    })
}

/// A metric spec (`type` or `source_type`).
pub(crate) fn metric_spec(v: &Value, path: &str) -> CaseResult<MetricSpec> {
    let o = Obj::new(v, path)?;
    let kind = match o.opt_str("type")? {
        Some(t) => t,
        None => o
            .opt_str("source_type")?
            .ok_or_else(|| format!("{}: missing", o.at("type")))?,
    };
    let name = || -> CaseResult<String> {
        let n = match o.opt_str("metric")? {
            Some(n) => Some(n),
            None => o.opt_str("name")?,
        };
        Ok(n.unwrap_or("qps").to_string())
    };
    let tgt = || target(o.get("target"), &o.at("target"));
    let resource =
        || -> CaseResult<String> { Ok(o.opt_str("resource")?.unwrap_or("cpu").to_string()) };
    Ok(match kind {
        "Resource" | "ContainerResource" => {
            match o.opt_str("container")?.or(o.opt_str("container_name")?) {
                Some(container) => MetricSpec::ContainerResource {
                    resource: resource()?,
                    container: container.to_string(),
                    target: tgt()?,
                },
                None if kind == "ContainerResource" => {
                    return Err(format!("{}: missing", o.at("container")))
                }
                None => MetricSpec::Resource {
                    resource: resource()?,
                    target: tgt()?,
                },
            }
        }
        "Pods" => MetricSpec::Pods {
            metric: name()?,
            target: tgt()?,
        },
        "Object" => MetricSpec::Object {
            metric: name()?,
            target: tgt()?,
        },
        "External" => MetricSpec::External {
            metric: name()?,
            target: tgt()?,
        },
        other => MetricSpec::Unknown {
            type_name: other.to_string(),
        },
    })
}

/// Scaling rules of one direction (fields not given stay `None`; `go_helper` and other notes
/// are ignored).
pub(crate) fn rules(v: Option<&Value>, path: &str) -> CaseResult<Option<ScalingRules>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let o = Obj::new(v, path)?;
    let select_policy = match o.opt_str("select_policy")? {
        None => None,
        Some("Max") => Some(SelectPolicy::Max),
        Some("Min") => Some(SelectPolicy::Min),
        Some("Disabled") => Some(SelectPolicy::Disabled),
        Some(other) => {
            return Err(format!(
                "{}: unknown select policy {other:?}",
                o.at("select_policy")
            ))
        }
    };
    let policies = match o.opt_arr("policies")? {
        None => None,
        Some(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, p) in items.iter().enumerate() {
                let pp = format!("{}[{i}]", o.at("policies"));
                let p = Obj::new(p, &pp)?;
                let kind = match p.opt_str("type")? {
                    Some("Pods") => PolicyType::Pods,
                    Some("Percent") => PolicyType::Percent,
                    other => {
                        return Err(format!("{}: unknown policy type {other:?}", p.at("type")))
                    }
                };
                out.push(ScalingPolicy {
                    kind,
                    value: p.i32("value")?,
                    period_s: p.i32("period_s")?,
                });
            }
            Some(out)
        }
    };
    Ok(Some(ScalingRules {
        stabilization_window_s: o.opt_i32("stabilization_window_s")?,
        select_policy,
        policies,
        tolerance: o.opt_f64("tolerance")?,
    }))
}

/// `spec.behavior`: null = none; else `scale_up` / `scale_down` rules.
pub(crate) fn behavior(v: Option<&Value>, path: &str) -> CaseResult<Option<Behavior>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let o = Obj::new(v, path)?;
    Ok(Some(Behavior {
        scale_up: rules(o.get("scale_up"), &o.at("scale_up"))?,
        scale_down: rules(o.get("scale_down"), &o.at("scale_down"))?,
    }))
}

/// A list of `{replicas, age_s}` recommendations.
pub(crate) fn recommendations(items: &[Value], path: &str) -> CaseResult<Vec<Recommendation>> {
    let mut out = Vec::with_capacity(items.len());
    for (i, r) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let r = Obj::new(r, &p)?;
        out.push(Recommendation {
            replicas: r.i32("replicas")?,
            timestamp_ms: age(&r, "age_s")?,
        });
    }
    Ok(out)
}

/// A list of `{replica_change, age_s, outdated?}` scale events (null = empty).
pub(crate) fn events(v: Option<&Value>, path: &str) -> CaseResult<Vec<ScaleEvent>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = v
        .as_array()
        .ok_or_else(|| format!("{path}: expected an array"))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, e) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let e = Obj::new(e, &p)?;
        out.push(ScaleEvent {
            replica_change: e.i32("replica_change")?,
            timestamp_ms: age(&e, "age_s")?,
            outdated: e.opt_bool("outdated")?.unwrap_or(false),
        });
    }
    Ok(out)
}
