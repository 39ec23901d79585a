//! Splitting a run's params, tags and metrics into `runs/log-batch` requests within MLflow's
//! limits (MLflow REST API, "Log Batch": at most 1000 metrics, 100 params, 100 tags and 1000
//! items in all per request, and 1 MB of JSON; `MAX_*_PER_BATCH` in
//! `mlflow/utils/validation.py`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::run_log::MetricPoint;

/// Limits of one `runs/log-batch` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most metrics per request.
    pub metrics: usize,
    /// Most params per request.
    pub params: usize,
    /// Most tags per request.
    pub tags: usize,
    /// Most items (metrics + params + tags) per request.
    pub items: usize,
    /// Most bytes of JSON per request (estimated; MLflow refuses more than 1,000,000).
    pub bytes: usize,
}

/// MLflow's limits, with a byte budget below its 1 MB so the estimate has room.
pub const MLFLOW_LIMITS: BatchLimits = BatchLimits {
    metrics: 1000,
    params: 100,
    tags: 100,
    items: 1000,
    bytes: 800_000,
};

/// The content of one `runs/log-batch` request.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Batch<'a> {
    /// Params, key and value.
    pub params: Vec<(&'a str, &'a str)>,
    /// Tags, key and value.
    pub tags: Vec<(&'a str, &'a str)>,
    /// Metric points.
    pub metrics: Vec<&'a MetricPoint>,
}

impl Batch<'_> {
    fn items(&self) -> usize {
        self.params.len() + self.tags.len() + self.metrics.len()
    }

    /// The request body for run `run_id` (`{"run_id", "params", "tags", "metrics"}`; metric
    /// fields `key`, `value`, `timestamp` in ms, `step`; non-finite values as MLflow's strings).
    pub fn to_json(&self, run_id: &str) -> Value {
        let kv = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect::<Vec<_>>()
        };
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| {
                let value = if m.value.is_finite() {
                    json!(m.value)
                } else if m.value.is_nan() {
                    json!("NaN")
                } else if m.value > 0.0 {
                    json!("Infinity")
                } else {
                    json!("-Infinity")
                };
                json!({"key": m.key, "value": value, "timestamp": m.timestamp_ms, "step": m.step})
            })
            .collect();
        json!({"run_id": run_id, "params": kv(&self.params), "tags": kv(&self.tags), "metrics": metrics})
    }
}

/// Splits `params`, `tags` and `metrics` into as few batches as `limits` allow, in order:
/// params first, then tags, then metrics (each kind keeps its order). Empty input gives no
/// batch.
pub fn split<'a>(
    params: &'a BTreeMap<String, String>,
    tags: &'a BTreeMap<String, String>,
    metrics: &'a [MetricPoint],
    limits: BatchLimits,
) -> Vec<Batch<'a>> {
    let mut out = Vec::new();
    let mut cur = Batch::default();
    let mut bytes = 0usize;
    // Rough JSON size of one item: its strings plus the field names and punctuation.
    let fits = |cur: &Batch, bytes: usize, extra: usize| {
        cur.items() < limits.items && bytes + extra <= limits.bytes
    };
    for (k, v) in params {
        let extra = k.len() + v.len() + 32;
        if cur.params.len() >= limits.params || !fits(&cur, bytes, extra) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.params.push((k, v));
        bytes += extra;
    }
    for (k, v) in tags {
        let extra = k.len() + v.len() + 32;
        if cur.tags.len() >= limits.tags || !fits(&cur, bytes, extra) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.tags.push((k, v));
        bytes += extra;
    }
    for m in metrics {
        let extra = m.key.len() + 96;
        if cur.metrics.len() >= limits.metrics || !fits(&cur, bytes, extra) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.metrics.push(m);
        bytes += extra;
    }
    if cur.items() > 0 {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(n: usize) -> Vec<MetricPoint> {
        (0..n)
            .map(|i| MetricPoint {
                key: "replicas".into(),
                value: i as f64,
                step: i as i64,
                timestamp_ms: 1,
            })
            .collect()
    }

    fn map(prefix: &str, n: usize) -> BTreeMap<String, String> {
        (0..n)
            .map(|i| (format!("{prefix}{i:04}"), "v".to_string()))
            .collect()
    }

    #[test]
    fn metrics_split_by_a_thousand() {
        let m = metrics(2500);
        let empty = BTreeMap::new();
        let b = split(&empty, &empty, &m, MLFLOW_LIMITS);
        assert_eq!(
            b.iter().map(|b| b.metrics.len()).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        // Order kept across batches.
        assert_eq!(b[1].metrics[0].step, 1000);
        assert_eq!(b[2].metrics[499].step, 2499);
    }

    #[test]
    fn params_tags_and_total_items_respect_the_limits() {
        let (p, t, m) = (map("p", 250), map("t", 150), metrics(1900));
        let b = split(&p, &t, &m, MLFLOW_LIMITS);
        for x in &b {
            assert!(x.params.len() <= 100 && x.tags.len() <= 100 && x.metrics.len() <= 1000);
            assert!(x.items() <= 1000);
        }
        assert_eq!(b.iter().map(|x| x.params.len()).sum::<usize>(), 250);
        assert_eq!(b.iter().map(|x| x.tags.len()).sum::<usize>(), 150);
        assert_eq!(b.iter().map(|x| x.metrics.len()).sum::<usize>(), 1900);
        // Params fill two batches and start a third, tags fill the third up to the tag limit
        // and start a fourth, metrics fill the fourth to 1000 items and the rest go to a fifth.
        assert_eq!(b[2].params.len(), 50);
        assert_eq!(b[2].tags.len(), 100);
        assert_eq!(b[3].tags.len(), 50);
        assert_eq!(b[3].items(), 1000);
        assert_eq!(b[4].metrics.len(), 950);
        assert_eq!(b.len(), 5);
    }

    #[test]
    fn large_values_split_by_bytes() {
        // 100 params of 6000 characters and 100 tags of 8000: within the count limits of one
        // request, but 1.4 MB.
        let p: BTreeMap<String, String> = (0..100)
            .map(|i| (format!("p{i}"), "x".repeat(6000)))
            .collect();
        let t: BTreeMap<String, String> = (0..100)
            .map(|i| (format!("t{i}"), "y".repeat(8000)))
            .collect();
        let b = split(&p, &t, &[], MLFLOW_LIMITS);
        assert_eq!(b.len(), 2);
        assert_eq!(b.iter().map(|x| x.tags.len()).sum::<usize>(), 100);
        for x in &b {
            let body = serde_json::to_vec(&x.to_json("r")).unwrap();
            assert!(body.len() < 1_000_000, "{}", body.len());
        }
    }

    #[test]
    fn body_has_mlflow_field_names() {
        let mut m = metrics(2);
        m[1].value = f64::INFINITY;
        let p = map("p", 1);
        let empty = BTreeMap::new();
        let b = split(&p, &empty, &m, MLFLOW_LIMITS);
        assert_eq!(b.len(), 1);
        let v = b[0].to_json("abc");
        assert_eq!(v["run_id"], "abc");
        assert_eq!(v["params"][0]["key"], "p0000");
        assert_eq!(v["metrics"][0]["timestamp"], 1);
        assert_eq!(v["metrics"][1]["step"], 1);
        assert_eq!(v["metrics"][1]["value"], "Infinity");
        assert!(split(&empty, &empty, &[], MLFLOW_LIMITS).is_empty());
    }
}
