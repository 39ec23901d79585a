//! A small blocking client for Prometheus' HTTP API (`/api/v1/query`, `/api/v1/query_range`,
//! `/-/ready`) with typed results.
//!
//! Prometheus sends sample values as JSON strings (`"1.5"`, `"NaN"`, `"+Inf"`, `"-Inf"`);
//! [`parse_value`] turns them into `f64`. Timestamps are Unix seconds as `f64`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Label set of a series (`__name__` included when Prometheus returns it).
pub type Labels = BTreeMap<String, String>;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series labels.
    pub labels: Labels,
    /// Evaluation timestamp, Unix seconds.
    pub timestamp_s: f64,
    /// Value (may be NaN or infinite).
    pub value: f64,
}

/// One series of a range query: its labels and `(timestamp_s, value)` points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Series labels.
    pub labels: Labels,
    /// Points, `(Unix seconds, value)`, oldest first.
    pub points: Vec<(f64, f64)>,
}

/// A query result, by Prometheus' `resultType`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// `vector`: one sample per series (instant queries).
    Vector(Vec<Sample>),
    /// `matrix`: one series of points each (range queries, or range selectors).
    Matrix(Vec<Series>),
    /// `scalar`: a single number.
    Scalar {
        /// Evaluation timestamp, Unix seconds.
        timestamp_s: f64,
        /// Value.
        value: f64,
    },
    /// `string`: a string literal.
    String {
        /// Evaluation timestamp, Unix seconds.
        timestamp_s: f64,
        /// Value.
        value: String,
    },
}

impl QueryResult {
    /// The samples of a vector result (empty for other kinds).
    pub fn as_vector(&self) -> &[Sample] {
        match self {
            QueryResult::Vector(v) => v,
            _ => &[],
        }
    }

    /// The series of a matrix result (empty for other kinds).
    pub fn as_matrix(&self) -> &[Series] {
        match self {
            QueryResult::Matrix(m) => m,
            _ => &[],
        }
    }

    /// A single number: the scalar, or the value of a one-sample vector; `None` otherwise
    /// (empty vector, several samples, matrix, string).
    pub fn single_value(&self) -> Option<f64> {
        match self {
            QueryResult::Scalar { value, .. } => Some(*value),
            QueryResult::Vector(v) if v.len() == 1 => Some(v[0].value),
            _ => None,
        }
    }
}

/// Parses a Prometheus sample value: a decimal or exponent number, `NaN`, `+Inf`, `-Inf`
/// (also `Inf`). Returns `None` for anything else.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => {
            // Rust also accepts "inf"/"nan"/"infinity" in any case; Prometheus never sends those.
            let lower = s.to_ascii_lowercase();
            if lower.contains("inf") || lower.contains("nan") {
                None
            } else {
                s.parse::<f64>().ok()
            }
        }
    }
}

/// Blocking client for one Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    base_url: String,
    http: reqwest::blocking::Client,
}

#[derive(Deserialize)]
struct RawResponse {
    status: String,
    #[serde(default)]
    data: Option<RawData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct RawData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawVectorSample {
    #[serde(default)]
    metric: Labels,
    value: (f64, String),
}

#[derive(Deserialize)]
struct RawMatrixSeries {
    #[serde(default)]
    metric: Labels,
    values: Vec<(f64, String)>,
}

impl PrometheusClient {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:9090`; a trailing `/` is
    /// ignored). `timeout` bounds every request, connection included.
    ///
    /// # Errors
    /// [`Error::Config`] if `base_url` is not an `http(s)://` URL or the HTTP client cannot be
    /// built.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self> {
        let base_url = base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "Prometheus URL `{base_url}` must start with http:// or https://"
            )));
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { base_url, http })
    }

    /// The server's base URL (no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Instant query `promql`, evaluated at `at` (Unix seconds) or at the server's "now".
    ///
    /// # Errors
    /// [`Error::PromUnreachable`], [`Error::PromTimeout`], [`Error::BadQuery`] (HTTP 400
    /// `bad_data`, with Prometheus' message), [`Error::PromStatus`], [`Error::PromDecode`].
    pub fn query(&self, promql: &str, at: Option<f64>) -> Result<QueryResult> {
        let mut form = vec![("query", promql.to_string())];
        if let Some(t) = at {
            form.push(("time", format!("{t:.3}")));
        }
        self.api("/api/v1/query", promql, &form)
    }

    /// Range query `promql` from `start` to `end` (Unix seconds) every `step_s` seconds.
    ///
    /// # Errors
    /// As [`PrometheusClient::query`]; also [`Error::BadQuery`] for `step_s <= 0` or
    /// `end < start` (Prometheus' own check).
    pub fn query_range(
        &self,
        promql: &str,
        start: f64,
        end: f64,
        step_s: f64,
    ) -> Result<QueryResult> {
        let form = vec![
            ("query", promql.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step_s}")),
        ];
        self.api("/api/v1/query_range", promql, &form)
    }

    /// One probe of `/-/ready`: `Ok(true)` on HTTP 200, `Ok(false)` on any other status
    /// (Prometheus answers 503 while it replays its WAL).
    ///
    /// # Errors
    /// [`Error::PromUnreachable`] or [`Error::PromTimeout`] when no answer comes.
    pub fn ready(&self) -> Result<bool> {
        let url = format!("{}/-/ready", self.base_url);
        let resp = self
            .http
            .get(&url)
            .send()
            .map_err(|e| transport_error(&url, "-", e))?;
        Ok(resp.status().is_success())
    }

    /// Polls [`PrometheusClient::ready`] every 100 ms until it returns `true` or `timeout` has
    /// passed.
    ///
    /// # Errors
    /// The last probe's error, or [`Error::PromStatus`] (503) when it answered but never ready.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let probe = self.ready();
            if let Ok(true) = probe {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return match probe {
                    Err(e) => Err(e),
                    _ => Err(Error::PromStatus {
                        url: format!("{}/-/ready", self.base_url),
                        query: "-".into(),
                        status: 503,
                        error_type: "-".into(),
                        message: format!("not ready after {timeout:?}"),
                    }),
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn api(&self, path: &str, promql: &str, form: &[(&str, String)]) -> Result<QueryResult> {
        let url = format!("{}{}", self.base_url, path);
        let resp = self
            .http
            .post(&url)
            .form(form)
            .send()
            .map_err(|e| transport_error(&url, promql, e))?;
        let status = resp.status();
        let body = resp.text().map_err(|e| transport_error(&url, promql, e))?;
        decode_response(&url, promql, status.as_u16(), &body)
    }
}

fn transport_error(url: &str, query: &str, source: reqwest::Error) -> Error {
    if source.is_timeout() {
        Error::PromTimeout {
            url: url.to_string(),
            query: query.to_string(),
            source,
        }
    } else {
        Error::PromUnreachable {
            url: url.to_string(),
            query: query.to_string(),
            source,
        }
    }
}

/// Decodes an API answer (any status) into a result or the matching error.
fn decode_response(url: &str, query: &str, status: u16, body: &str) -> Result<QueryResult> {
    let decode_err = |reason: String| Error::PromDecode {
        url: url.to_string(),
        query: query.to_string(),
        reason,
    };
    let raw: RawResponse = match serde_json::from_str(body) {
        Ok(r) => r,
        Err(e) if status == 200 => return Err(decode_err(format!("not an API answer: {e}"))),
        Err(_) => {
            return Err(Error::PromStatus {
                url: url.to_string(),
                query: query.to_string(),
                status,
                error_type: "-".into(),
                message: body.chars().take(200).collect(),
            })
        }
    };
    if raw.status != "success" || status != 200 {
        let error_type = raw.error_type.unwrap_or_else(|| "-".into());
        let message = raw
            .error
            .unwrap_or_else(|| body.chars().take(200).collect());
        if status == 400 && error_type == "bad_data" {
            return Err(Error::BadQuery {
                url: url.to_string(),
                query: query.to_string(),
                message,
            });
        }
        return Err(Error::PromStatus {
            url: url.to_string(),
            query: query.to_string(),
            status,
            error_type,
            message,
        });
    }
    let data = raw
        .data
        .ok_or_else(|| decode_err("`status` is success but `data` is missing".into()))?;
    let value = |s: &str| parse_value(s).ok_or_else(|| decode_err(format!("bad value `{s}`")));
    match data.result_type.as_str() {
        "vector" => {
            let raw: Vec<RawVectorSample> = serde_json::from_value(data.result)
                .map_err(|e| decode_err(format!("bad vector: {e}")))?;
            let mut out = Vec::with_capacity(raw.len());
            for s in raw {
                out.push(Sample {
                    labels: s.metric,
                    timestamp_s: s.value.0,
                    value: value(&s.value.1)?,
                });
            }
            Ok(QueryResult::Vector(out))
        }
        "matrix" => {
            let raw: Vec<RawMatrixSeries> = serde_json::from_value(data.result)
                .map_err(|e| decode_err(format!("bad matrix: {e}")))?;
            let mut out = Vec::with_capacity(raw.len());
            for s in raw {
                let mut points = Vec::with_capacity(s.values.len());
                for (t, v) in s.values {
                    points.push((t, value(&v)?));
                }
                out.push(Series {
                    labels: s.metric,
                    points,
                });
            }
            Ok(QueryResult::Matrix(out))
        }
        "scalar" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| decode_err(format!("bad scalar: {e}")))?;
            Ok(QueryResult::Scalar {
                timestamp_s: t,
                value: value(&v)?,
            })
        }
        "string" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| decode_err(format!("bad string: {e}")))?;
            Ok(QueryResult::String {
                timestamp_s: t,
                value: v,
            })
        }
        other => Err(decode_err(format!("unknown resultType `{other}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_special_values() {
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("1.5e3"), Some(1500.0));
        assert_eq!(parse_value("-0.25"), Some(-0.25));
        assert_eq!(parse_value("abc"), None);
        assert_eq!(parse_value("infinity"), None);
        assert_eq!(parse_value(""), None);
    }

    #[test]
    fn decodes_vector_with_nan() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"workload-0"},"value":[1700000000.5,"NaN"]},
            {"metric":{"pod":"workload-1"},"value":[1700000000.5,"2.5"]}]}}"#;
        let r = decode_response("u", "q", 200, body).unwrap();
        let v = r.as_vector();
        assert_eq!(v.len(), 2);
        assert!(v[0].value.is_nan());
        assert_eq!(v[0].labels["pod"], "workload-0");
        assert_eq!(v[1].value, 2.5);
        assert_eq!(v[1].timestamp_s, 1_700_000_000.5);
        assert_eq!(r.single_value(), None);
    }

    #[test]
    fn decodes_matrix_scalar_string() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[10,"1"],[12,"+Inf"]]}]}}"#;
        let r = decode_response("u", "q", 200, body).unwrap();
        assert_eq!(
            r.as_matrix()[0].points,
            vec![(10.0, 1.0), (12.0, f64::INFINITY)]
        );
        let body = r#"{"status":"success","data":{"resultType":"scalar","result":[3,"-Inf"]}}"#;
        assert_eq!(
            decode_response("u", "q", 200, body).unwrap(),
            QueryResult::Scalar {
                timestamp_s: 3.0,
                value: f64::NEG_INFINITY
            }
        );
        let body = r#"{"status":"success","data":{"resultType":"string","result":[3,"hi"]}}"#;
        assert_eq!(
            decode_response("u", "q", 200, body).unwrap(),
            QueryResult::String {
                timestamp_s: 3.0,
                value: "hi".into()
            }
        );
    }

    #[test]
    fn maps_errors() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error: x"}"#;
        match decode_response("u", "rate(", 400, body) {
            Err(Error::BadQuery { message, query, .. }) => {
                assert_eq!(message, "parse error: x");
                assert_eq!(query, "rate(");
            }
            other => panic!("{other:?}"),
        }
        let body = r#"{"status":"error","errorType":"execution","error":"too many samples"}"#;
        match decode_response("u", "q", 422, body) {
            Err(Error::PromStatus {
                status, error_type, ..
            }) => assert_eq!((status, error_type.as_str()), (422, "execution")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode_response("u", "q", 502, "Bad Gateway"),
            Err(Error::PromStatus { status: 502, .. })
        ));
        assert!(matches!(
            decode_response("u", "q", 200, "<html>"),
            Err(Error::PromDecode { .. })
        ));
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1,"twelve"]}]}}"#;
        match decode_response("u", "q", 200, body) {
            Err(e @ Error::PromDecode { .. }) => assert!(e.to_string().contains("twelve")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_non_http_url() {
        assert!(matches!(
            PrometheusClient::new("localhost:9090", Duration::from_secs(1)),
            Err(Error::Config(_))
        ));
    }
}
