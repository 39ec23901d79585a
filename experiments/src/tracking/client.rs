//! A small blocking client for MLflow's REST API (<https://mlflow.org/docs/latest/api_reference/rest-api.html>):
//! JSON calls under `/api/2.0/mlflow/` and artifact uploads and downloads through the artifact proxy
//! (`/api/2.0/mlflow-artifacts/artifacts/`), each with a timeout, and bounded retries with
//! exponential backoff on connection errors, timeouts, HTTP 429 and 5xx. Any other 4xx is an
//! error carrying MLflow's `error_code` and `message`.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Timeouts and retries of every request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request (the first one included), at least 1.
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub first_backoff: Duration,
    /// Longest wait between two attempts.
    pub max_backoff: Duration,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole JSON request (connect, send, response); an artifact upload gets one
    /// more second per MB of its size.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 0.25 s then 0.5 s apart; 3 s to connect, 10 s per request. A server that
    /// refuses connections costs about 1 s, one that accepts them and never answers about 30 s.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (0-based): `first_backoff * 2^attempt`,
    /// at most `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.first_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff)
    }
}

/// Why an MLflow call failed.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// The tracking URI is not an `http://` or `https://` URL.
    #[error("MLFLOW_TRACKING_URI={uri:?}: expected an http:// or https:// tracking server URL ({reason})")]
    BadUri {
        /// The URI given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No answer (connection refused, timeout) or HTTP 429/5xx on every attempt.
    #[error("MLflow server {server} unreachable: {call} failed {attempts} times, last: {detail}")]
    Unreachable {
        /// The server's base URL.
        server: String,
        /// Method and endpoint.
        call: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        detail: String,
    },
    /// MLflow refused the request (HTTP 4xx other than 429).
    #[error("MLflow refused {call}: HTTP {status} {code}: {message}")]
    Refused {
        /// Method and endpoint.
        call: String,
        /// HTTP status.
        status: u16,
        /// MLflow's `error_code` (e.g. `RESOURCE_DOES_NOT_EXIST`), or empty.
        code: String,
        /// MLflow's `message`, or the start of the body.
        message: String,
    },
    /// A response MLflow should not send (not JSON, a field missing).
    #[error("unexpected MLflow response to {call}: {detail}")]
    Protocol {
        /// Method and endpoint.
        call: String,
        /// What was wrong.
        detail: String,
    },
}

impl MlflowError {
    /// MLflow's `error_code` when it refused the request, else `None`.
    pub fn code(&self) -> Option<&str> {
        match self {
            MlflowError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Credentials read from MLflow's environment variables.
#[derive(Debug, Clone)]
enum Auth {
    None,
    /// `MLFLOW_TRACKING_TOKEN`.
    Bearer(String),
    /// `MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD`.
    Basic(String, String),
}

/// A blocking MLflow REST client bound to one tracking server.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    base: Url,
    http: Client,
    retry: RetryPolicy,
    auth: Auth,
}

impl MlflowClient {
    /// A client for the tracking server at `uri` (`http(s)://host[:port][/prefix]`), with
    /// `retry`. Credentials come from `MLFLOW_TRACKING_TOKEN` (bearer) or
    /// `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` (basic), as MLflow's own
    /// clients read them.
    ///
    /// # Errors
    /// [`MlflowError::BadUri`] for anything but an http(s) URL; [`MlflowError::Protocol`] if
    /// the HTTP client cannot be built.
    pub fn new(uri: &str, retry: RetryPolicy) -> Result<MlflowClient, MlflowError> {
        let bad = |reason: String| MlflowError::BadUri {
            uri: uri.to_string(),
            reason,
        };
        let mut base = Url::parse(uri.trim()).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(bad(format!(
                "scheme {:?} is not supported by nimbusguard, which talks to a server over REST",
                base.scheme()
            )));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = Client::builder()
            .connect_timeout(retry.connect_timeout)
            .timeout(retry.request_timeout)
            .user_agent(concat!("nimbusguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MlflowError::Protocol {
                call: "building the HTTP client".into(),
                detail: e.to_string(),
            })?;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let auth = match (
            var("MLFLOW_TRACKING_TOKEN"),
            var("MLFLOW_TRACKING_USERNAME"),
        ) {
            (Some(t), _) => Auth::Bearer(t),
            (None, Some(u)) => Auth::Basic(u, var("MLFLOW_TRACKING_PASSWORD").unwrap_or_default()),
            _ => Auth::None,
        };
        Ok(MlflowClient {
            base,
            http,
            retry,
            auth,
        })
    }

    /// The server's base URL (with a trailing `/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `GET /api/2.0/mlflow/<endpoint>?<query>`, returning the JSON body.
    ///
    /// # Errors
    /// See [`MlflowError`].
    pub fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value, MlflowError> {
        let mut url = self.url(&format!("api/2.0/mlflow/{endpoint}"))?;
        url.query_pairs_mut().extend_pairs(query);
        let call = format!("GET {endpoint}");
        let resp = self.send(&call, || self.http.request(Method::GET, url.clone()))?;
        json_body(&call, resp)
    }

    /// `POST /api/2.0/mlflow/<endpoint>` with the JSON `body`, returning the JSON response.
    ///
    /// # Errors
    /// See [`MlflowError`].
    pub fn post(&self, endpoint: &str, body: &Value) -> Result<Value, MlflowError> {
        let url = self.url(&format!("api/2.0/mlflow/{endpoint}"))?;
        let call = format!("POST {endpoint}");
        let resp = self.send(&call, || {
            self.http.request(Method::POST, url.clone()).json(body)
        })?;
        json_body(&call, resp)
    }

    /// Uploads `bytes` through the artifact proxy:
    /// `PUT /api/2.0/mlflow-artifacts/artifacts/<root>/<path>`, where `root` is the run's
    /// artifact URI without its `mlflow-artifacts:` scheme (e.g. `1/<run_id>/artifacts`) and
    /// `path` is `/`-separated (each segment percent-encoded).
    ///
    /// # Errors
    /// See [`MlflowError`].
    pub fn put_artifact(&self, root: &str, path: &str, bytes: Vec<u8>) -> Result<(), MlflowError> {
        let url = self.artifact_url(root, path)?;
        let call = format!("PUT artifact {path}");
        let timeout = self.retry.request_timeout + Duration::from_secs((bytes.len() >> 20) as u64);
        self.send(&call, || {
            self.http
                .request(Method::PUT, url.clone())
                .timeout(timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(bytes.clone())
        })?;
        Ok(())
    }

    /// Downloads an artifact through the artifact proxy:
    /// `GET /api/2.0/mlflow-artifacts/artifacts/<root>/<path>` (`root` and `path` as in
    /// [`MlflowClient::put_artifact`]), returning its bytes.
    ///
    /// # Errors
    /// See [`MlflowError`]; a missing artifact is [`MlflowError::Refused`] with HTTP 404.
    pub fn get_artifact(&self, root: &str, path: &str) -> Result<Vec<u8>, MlflowError> {
        let url = self.artifact_url(root, path)?;
        let call = format!("GET artifact {path}");
        let resp = self.send(&call, || self.http.request(Method::GET, url.clone()))?;
        resp.bytes()
            .map(|b| b.to_vec())
            .map_err(|e| MlflowError::Protocol {
                call,
                detail: adapters::error::error_chain(&e),
            })
    }

    /// `<base>/api/2.0/mlflow-artifacts/artifacts/<root>/<path>`, each segment
    /// percent-encoded.
    fn artifact_url(&self, root: &str, path: &str) -> Result<Url, MlflowError> {
        let mut url = self.url("api/2.0/mlflow-artifacts/artifacts")?;
        url.path_segments_mut()
            .map_err(|()| MlflowError::Protocol {
                call: "artifact URL".into(),
                detail: format!("{} cannot be a base", self.base),
            })?
            .extend(
                root.split('/')
                    .chain(path.split('/'))
                    .filter(|s| !s.is_empty()),
            );
        Ok(url)
    }

    fn url(&self, path: &str) -> Result<Url, MlflowError> {
        self.base.join(path).map_err(|e| MlflowError::Protocol {
            call: path.to_string(),
            detail: e.to_string(),
        })
    }

    /// Sends the request `build` makes, retrying as [`RetryPolicy`] says. Returns a response
    /// with a success status.
    fn send(
        &self,
        call: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, MlflowError> {
        let attempts = self.retry.attempts.max(1);
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(self.retry.backoff(attempt - 1));
            }
            let req = match &self.auth {
                Auth::None => build(),
                Auth::Bearer(t) => build().bearer_auth(t),
                Auth::Basic(u, p) => build().basic_auth(u, Some(p)),
            };
            match req.send() {
                Err(e) => last = adapters::error::error_chain(&e),
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp)
                    if resp.status() == StatusCode::TOO_MANY_REQUESTS
                        || resp.status().is_server_error() =>
                {
                    let status = resp.status();
                    let (_, message) = error_of(resp);
                    last = format!("HTTP {status}: {message}");
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let (code, message) = error_of(resp);
                    return Err(MlflowError::Refused {
                        call: call.to_string(),
                        status,
                        code,
                        message,
                    });
                }
            }
            tracing::debug!("MLflow {call}: attempt {} failed: {last}", attempt + 1);
        }
        Err(MlflowError::Unreachable {
            server: self.base.to_string(),
            call: call.to_string(),
            attempts,
            detail: last,
        })
    }
}

/// MLflow's `error_code` and `message` from an error response, or the start of its body.
fn error_of(resp: Response) -> (String, String) {
    let text = resp.text().unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) if v.get("message").is_some() => (
            v["error_code"].as_str().unwrap_or_default().to_string(),
            v["message"].as_str().unwrap_or_default().to_string(),
        ),
        _ => (String::new(), text.chars().take(300).collect()),
    }
}

/// The JSON of a successful response; an empty body is `{}`.
fn json_body(call: &str, resp: Response) -> Result<Value, MlflowError> {
    let text = resp.text().map_err(|e| MlflowError::Protocol {
        call: call.to_string(),
        detail: adapters::error::error_chain(&e),
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(&text).map_err(|e| MlflowError::Protocol {
        call: call.to_string(),
        detail: format!(
            "{e}; body starts {:?}",
            text.chars().take(200).collect::<String>()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(10),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// A one-thread HTTP server answering each connection with the next of `replies`
    /// (status, body), then closing it. Returns its URL and the count of requests served.
    fn serve(replies: Vec<(u16, &'static str)>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let served = count.clone();
        std::thread::spawn(move || {
            for (status, body) in replies {
                let Ok((mut s, _)) = listener.accept() else {
                    return;
                };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body_in = vec![0u8; len];
                let _ = r.read_exact(&mut body_in);
                served.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, count)
    }

    #[test]
    fn retries_a_503_then_succeeds() {
        let (url, count) = serve(vec![(503, "busy"), (200, r#"{"experiment_id":"7"}"#)]);
        let c = MlflowClient::new(&url, fast()).unwrap();
        let v = c
            .post("experiments/create", &serde_json::json!({"name": "x"}))
            .unwrap();
        assert_eq!(v["experiment_id"], "7");
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn gives_up_after_the_attempts_on_5xx() {
        let (url, count) = serve(vec![(500, "a"), (502, "b"), (503, "c"), (200, "{}")]);
        let c = MlflowClient::new(&url, fast()).unwrap();
        let e = c
            .get("experiments/get-by-name", &[("experiment_name", "x")])
            .unwrap_err();
        assert!(
            matches!(e, MlflowError::Unreachable { attempts: 3, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("HTTP 503"), "{e}");
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_4xx_is_not_retried_and_carries_mlflows_message() {
        let (url, count) = serve(vec![(
            404,
            r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Experiment 'x' does not exist."}"#,
        )]);
        let c = MlflowClient::new(&url, fast()).unwrap();
        let e = c
            .get("experiments/get-by-name", &[("experiment_name", "x")])
            .unwrap_err();
        assert_eq!(e.code(), Some("RESOURCE_DOES_NOT_EXIST"));
        assert!(
            e.to_string().contains("Experiment 'x' does not exist."),
            "{e}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_closed_port_is_unreachable_after_the_attempts() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = MlflowClient::new(&format!("http://127.0.0.1:{port}"), fast()).unwrap();
        let e = c.post("runs/create", &serde_json::json!({})).unwrap_err();
        match e {
            MlflowError::Unreachable {
                attempts, detail, ..
            } => {
                assert_eq!(attempts, 3);
                assert!(!detail.is_empty());
            }
            other => panic!("expected Unreachable, got {other}"),
        }
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Accepts connections and holds them open without a word.
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
        });
        let policy = RetryPolicy {
            attempts: 2,
            request_timeout: Duration::from_millis(200),
            ..fast()
        };
        let c = MlflowClient::new(&url, policy).unwrap();
        let e = c
            .post("runs/log-batch", &serde_json::json!({}))
            .unwrap_err();
        match e {
            MlflowError::Unreachable {
                attempts, detail, ..
            } => {
                assert_eq!(attempts, 2);
                assert!(detail.contains("timed out"), "{detail}");
            }
            other => panic!("expected Unreachable, got {other}"),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(250));
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(3), Duration::from_secs(2));
        assert_eq!(p.backoff(40), Duration::from_secs(2));
    }

    #[test]
    fn only_http_uris_are_accepted() {
        for bad in ["file:///tmp/mlruns", "databricks", "sqlite:///x.db", ""] {
            let e = MlflowClient::new(bad, RetryPolicy::default()).unwrap_err();
            assert!(matches!(e, MlflowError::BadUri { .. }), "{bad}: {e}");
        }
        let c = MlflowClient::new("http://127.0.0.1:5000/mlflow", RetryPolicy::default()).unwrap();
        assert_eq!(c.base().as_str(), "http://127.0.0.1:5000/mlflow/");
        assert_eq!(
            c.url("api/2.0/mlflow/runs/get").unwrap().as_str(),
            "http://127.0.0.1:5000/mlflow/api/2.0/mlflow/runs/get"
        );
    }
}
