//! [`RunLog`]: everything one MLflow run receives, as plain serializable data. Built from a
//! result folder ([`super::mirror`]), written to and read from the spool ([`super::spool`]),
//! uploaded by [`super::mlflow::MlflowTracker`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The tag holding a run's [`RunLog::run_key`]: how a later upload finds the run again
/// instead of creating a duplicate.
pub const RUN_KEY_TAG: &str = "nimbusguard.run_key";

/// MLflow's tag naming the parent run's id (nested runs in the UI).
pub const PARENT_RUN_TAG: &str = "mlflow.parentRunId";

/// The schema name of a spooled [`RunLog`] file (`RunLog::schema`).
pub const RUN_LOG_SCHEMA: &str = "nimbusguard.mlflow-run/v1";

/// One MLflow run: identity, nesting, tags, params, metrics, artifacts and model registrations.
///
/// Limits (MLflow 3, `mlflow/utils/validation.py`): keys up to 250 characters, param values up
/// to 6000, tag values up to 8000; [`RunLog::param`] and [`RunLog::tag`] truncate longer
/// values (a longer value would be refused with HTTP 400 and the run never logged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLog {
    /// Always [`RUN_LOG_SCHEMA`]; checked when a spool file is read.
    pub schema: String,
    /// Name of the MLflow experiment (created if missing): the config's `experiment` field.
    pub experiment: String,
    /// Stable unique key of the run, stored as the tag [`RUN_KEY_TAG`]. Characters other than
    /// ASCII letters, digits and `._-/:=+@` are replaced by `_` ([`sanitize_key`]).
    pub run_key: String,
    /// Display name (`mlflow.runName`).
    pub run_name: String,
    /// Key of the parent run, which must be logged before this one (earlier in the same batch
    /// or in an earlier upload); `None` for a top-level run.
    pub parent_key: Option<String>,
    /// Start of the run, Unix time in milliseconds.
    pub start_time_ms: i64,
    /// End of the run, Unix time in milliseconds.
    pub end_time_ms: i64,
    /// Tags, key to value.
    pub tags: BTreeMap<String, String>,
    /// Params, dotted name to value (see [`flatten_toml`]).
    pub params: BTreeMap<String, String>,
    /// Metric points in logging order.
    pub metrics: Vec<MetricPoint>,
    /// Files to upload as run artifacts.
    pub artifacts: Vec<Artifact>,
    /// Model versions to register from this run's artifacts (after they are uploaded).
    pub models: Vec<ModelRegistration>,
}

/// One metric value (MLflow `Metric`: key, value, timestamp, step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Metric name: letters, digits, `_ - . /` and spaces (MLflow's rule).
    pub key: String,
    /// Value; NaN and infinities are sent as MLflow's strings `"NaN"`, `"Infinity"`,
    /// `"-Infinity"`.
    #[serde(with = "f64_or_string")]
    pub value: f64,
    /// Step (for curves: training episode, simulated second, ...); 0 for a single value.
    pub step: i64,
    /// When the value was produced, Unix time in milliseconds.
    pub timestamp_ms: i64,
}

/// A file uploaded as a run artifact through MLflow's artifact proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// The file on disk. Absolute when built; relative to the spool batch folder in a spool.
    pub local: PathBuf,
    /// Path under the run's artifact root, `/`-separated, e.g. `policies/dqn.dqn/model.bpk`.
    pub path: String,
}

/// A model version to register (MLflow model registry), whose source is an artifact path of
/// the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRegistration {
    /// Registered model name (created if missing), e.g. `nimbusguard-tiny-dqn`.
    pub name: String,
    /// Artifact path of the model in the run (a file or folder), e.g. `policies/dqn.dqn`.
    pub artifact_path: String,
    /// Model version description.
    pub description: String,
    /// Model version tags.
    pub tags: BTreeMap<String, String>,
}

/// MLflow's maximum length of a param value, in characters.
pub const MAX_PARAM_VALUE_CHARS: usize = 6000;
/// MLflow's maximum length of a tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 8000;

impl RunLog {
    /// An empty run of `experiment` with key `run_key` (sanitized) and name `run_name`,
    /// starting and ending at `time_ms` (Unix ms); the tag [`RUN_KEY_TAG`] is set.
    pub fn new(experiment: &str, run_key: &str, run_name: &str, time_ms: i64) -> RunLog {
        let run_key = sanitize_key(run_key);
        let mut tags = BTreeMap::new();
        tags.insert(RUN_KEY_TAG.to_string(), run_key.clone());
        RunLog {
            schema: RUN_LOG_SCHEMA.to_string(),
            experiment: experiment.to_string(),
            run_key,
            run_name: run_name.to_string(),
            parent_key: None,
            start_time_ms: time_ms,
            end_time_ms: time_ms,
            tags,
            params: BTreeMap::new(),
            metrics: Vec::new(),
            artifacts: Vec::new(),
            models: Vec::new(),
        }
    }

    /// Sets param `key` to `value`, truncated to [`MAX_PARAM_VALUE_CHARS`] characters.
    pub fn param(&mut self, key: impl Into<String>, value: &str) {
        self.params
            .insert(key.into(), truncate(value, MAX_PARAM_VALUE_CHARS));
    }

    /// Sets tag `key` to `value`, truncated to [`MAX_TAG_VALUE_CHARS`] characters.
    pub fn tag(&mut self, key: impl Into<String>, value: &str) {
        self.tags
            .insert(key.into(), truncate(value, MAX_TAG_VALUE_CHARS));
    }

    /// Appends a metric point timestamped at the run's end time.
    pub fn metric(&mut self, key: impl Into<String>, value: f64, step: i64) {
        self.metrics.push(MetricPoint {
            key: key.into(),
            value,
            step,
            timestamp_ms: self.end_time_ms,
        });
    }
}

/// `s` cut to at most `max` characters (on a character boundary).
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// `key` with every character other than ASCII letters, digits and `._-/:=+@` replaced by
/// `_`, so it can be quoted in an MLflow search filter without escaping.
pub fn sanitize_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-/:=+@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Flattens a TOML value into dotted names: tables nest as `a.b.c`, arrays of tables as
/// `a.0.b`, `a.1.b`; scalars and arrays of scalars are values (strings without quotes, arrays
/// as TOML, e.g. `[24, 24]`). Entries are added to `out` under `prefix` (empty for none).
///
/// ```
/// use experiments::tracking::run_log::flatten_toml;
/// let v: toml::Value = toml::from_str("a = 1\n[b]\nc = \"x\"\nd = [1, 2]").unwrap();
/// let mut out = std::collections::BTreeMap::new();
/// flatten_toml("", &v, &mut out);
/// assert_eq!(out["a"], "1");
/// assert_eq!(out["b.c"], "x");
/// assert_eq!(out["b.d"], "[1, 2]");
/// ```
pub fn flatten_toml(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten_toml(&join(k), v, out);
            }
        }
        toml::Value::Array(a) if !a.is_empty() && a.iter().all(|v| v.is_table()) => {
            for (i, v) in a.iter().enumerate() {
                flatten_toml(&join(&i.to_string()), v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// (De)serializes an `f64` as a JSON number when finite, else as MLflow's strings `"NaN"`,
/// `"Infinity"`, `"-Infinity"` (JSON has no such numbers; MLflow returns them as strings).
pub mod f64_or_string {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a finite `v` as a number, otherwise as a string.
    ///
    /// # Errors
    /// Those of the serializer.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if *v > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }

    /// Reads a number, or one of the strings `NaN`, `Infinity`, `-Infinity` (also `inf`).
    ///
    /// # Errors
    /// Any other string or type.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumOrStr {
            Num(f64),
            Str(String),
        }
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(x) => Ok(x),
            NumOrStr::Str(s) => match s.to_ascii_lowercase().as_str() {
                "nan" => Ok(f64::NAN),
                "infinity" | "inf" => Ok(f64::INFINITY),
                "-infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(serde::de::Error::custom(format!(
                    "expected a number, \"NaN\" or \"Infinity\", got {s:?}"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_a_config_to_dotted_params() {
        let v: toml::Value = toml::from_str(
            r#"
experiment = "tiny"
[workload]
peak_rps = 150.0
trace = "datasets/x.csv"
[[agents]]
name = "hpa"
kind = "hpa"
[[agents]]
name = "q"
q_learning = { episodes = 3, extra_bins = [5, 2] }
"#,
        )
        .unwrap();
        let mut out = BTreeMap::new();
        flatten_toml("", &v, &mut out);
        assert_eq!(out["experiment"], "tiny");
        assert_eq!(out["workload.peak_rps"], "150.0");
        assert_eq!(out["workload.trace"], "datasets/x.csv");
        assert_eq!(out["agents.0.name"], "hpa");
        assert_eq!(out["agents.1.q_learning.episodes"], "3");
        assert_eq!(out["agents.1.q_learning.extra_bins"], "[5, 2]");
        assert_eq!(out.len(), 8);
        let mut agent = BTreeMap::new();
        flatten_toml("agent", &v["agents"][1], &mut agent);
        assert_eq!(agent["agent.name"], "q");
        assert_eq!(agent["agent.q_learning.episodes"], "3");
    }

    #[test]
    fn long_values_are_truncated_on_a_char_boundary() {
        let mut r = RunLog::new("e", "k", "n", 0);
        r.param("p", &"é".repeat(7000));
        assert_eq!(r.params["p"].chars().count(), MAX_PARAM_VALUE_CHARS);
        r.tag("t", "short");
        assert_eq!(r.tags["t"], "short");
        assert_eq!(r.tags[RUN_KEY_TAG], "k");
    }

    #[test]
    fn keys_are_sanitized_for_filters() {
        assert_eq!(sanitize_key("tiny/ab'c d/hpa@1"), "tiny/ab_c_d/hpa@1");
    }

    #[test]
    fn non_finite_metrics_round_trip_as_strings() {
        let m = MetricPoint {
            key: "x".into(),
            value: f64::NAN,
            step: 1,
            timestamp_ms: 2,
        };
        let s = serde_json::to_string(&m).unwrap();
        assert!(s.contains("\"value\":\"NaN\""), "{s}");
        let back: MetricPoint = serde_json::from_str(&s).unwrap();
        assert!(back.value.is_nan());
        let inf: MetricPoint =
            serde_json::from_str(r#"{"key":"x","value":"-Infinity","step":0,"timestamp_ms":0}"#)
                .unwrap();
        assert_eq!(inf.value, f64::NEG_INFINITY);
        let one: MetricPoint =
            serde_json::from_str(r#"{"key":"x","value":1.5,"step":0,"timestamp_ms":0}"#).unwrap();
        assert_eq!(one.value, 1.5);
    }
}
