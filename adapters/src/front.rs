//! A round-robin HTTP front for the Ready replicas (what a Kubernetes Service does for Ready
//! endpoints), with its own Prometheus metrics.
//!
//! Every path except the front's own `/metrics` and `/health` is forwarded, with its method,
//! query string, body and `content-type`, to the next backend in round-robin order. With no
//! backend it answers 503 at once. The server runs on a tokio runtime owned by a background
//! thread; [`Front`] is a blocking handle, and dropping it stops the server.
//!
//! Metrics at `/metrics` (OpenMetrics text):
//! - `front_requests_total{outcome}`: `served` (upstream 2xx), `dropped` (upstream 503, or no
//!   Ready backend), `error` (any other status, upstream unreachable or timed out: answered 502).
//! - `front_request_duration_seconds`: histogram of arrival-to-response time, seconds, buckets
//!   0.005 … 10 (the workload app's).
//! - `front_ready_backends`: backends currently receiving traffic.

use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Histogram buckets of `front_request_duration_seconds`, seconds (the workload app's).
pub const DURATION_BUCKETS_S: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Configuration of a [`Front`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontConfig {
    /// Address to listen on. Default `127.0.0.1:0` (a free loopback port).
    pub listen: SocketAddr,
    /// Timeout of one forwarded request, connection included, seconds. Default 30.
    pub upstream_timeout_s: f64,
    /// Largest request body forwarded, bytes; larger bodies get 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Worker threads of the front's tokio runtime. Default 2.
    pub worker_threads: usize,
}

impl Default for FrontConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream_timeout_s: 30.0,
            max_body_bytes: 1 << 20,
            worker_threads: 2,
        }
    }
}

/// One backend the front forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Pod name (key of [`Front::forwarded_counts`]).
    pub name: String,
    /// Address of its HTTP server.
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Outcome {
    served,
    dropped,
    error,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

struct Shared {
    backends: RwLock<Arc<Vec<Backend>>>,
    next: AtomicUsize,
    client: reqwest::Client,
    max_body_bytes: usize,
    requests: Family<OutcomeLabels, Counter>,
    duration: Histogram,
    ready_backends: Gauge,
    registry: Registry,
    forwarded: Mutex<BTreeMap<String, u64>>,
}

/// A running front. Dropping it stops the server (in-flight requests get up to 2 s).
pub struct Front {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("addr", &self.addr)
            .field("backends", &self.backends())
            .finish()
    }
}

impl Front {
    /// Binds `config.listen` and starts serving with no backend (every request gets 503).
    ///
    /// # Errors
    /// [`Error::FrontStart`] if the address cannot be bound or the runtime cannot start;
    /// [`Error::Config`] for a non-positive timeout or zero worker threads.
    pub fn start(config: &FrontConfig) -> Result<Front> {
        if !(config.upstream_timeout_s.is_finite() && config.upstream_timeout_s > 0.0) {
            return Err(Error::Config(format!(
                "front.upstream_timeout_s must be > 0, got {}",
                config.upstream_timeout_s
            )));
        }
        if config.worker_threads == 0 {
            return Err(Error::Config("front.worker_threads must be >= 1".into()));
        }
        let start_err = |source| Error::FrontStart {
            addr: config.listen,
            source,
        };
        let std_listener = std::net::TcpListener::bind(config.listen).map_err(start_err)?;
        std_listener.set_nonblocking(true).map_err(start_err)?;
        let addr = std_listener.local_addr().map_err(start_err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads)
            .thread_name("front")
            .enable_all()
            .build()
            .map_err(start_err)?;
        let timeout = Duration::from_secs_f64(config.upstream_timeout_s);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the front's HTTP client: {e}")))?;

        let requests = Family::<OutcomeLabels, Counter>::default();
        let duration = Histogram::new(DURATION_BUCKETS_S);
        for outcome in [Outcome::served, Outcome::dropped, Outcome::error] {
            // Expose every outcome at 0 from the start (PromQL ratios need both series).
            let _ = requests.get_or_create(&OutcomeLabels { outcome });
        }
        let ready_backends = Gauge::default();
        let mut registry = Registry::default();
        registry.register(
            "front_requests",
            "Requests answered by the front, by outcome",
            requests.clone(),
        );
        registry.register(
            "front_request_duration_seconds",
            "Time from arrival to response at the front, seconds",
            duration.clone(),
        );
        registry.register(
            "front_ready_backends",
            "Ready backends receiving traffic",
            ready_backends.clone(),
        );
        let shared = Arc::new(Shared {
            backends: RwLock::new(Arc::new(Vec::new())),
            next: AtomicUsize::new(0),
            client,
            max_body_bytes: config.max_body_bytes,
            requests,
            duration,
            ready_backends,
            registry,
            forwarded: Mutex::new(BTreeMap::new()),
        });
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/health", get(|| async { "ok" }))
            .fallback(forward)
            .with_state(shared.clone());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name(format!("front-{addr}"))
            .spawn(move || serve(runtime, std_listener, app, stop_rx))
            .map_err(start_err)?;
        tracing::info!(%addr, "front listening");
        Ok(Front {
            addr,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The address the front listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the backend list (the Ready replicas). Requests already forwarded finish.
    pub fn set_backends(&self, backends: Vec<Backend>) {
        self.shared.ready_backends.set(backends.len() as i64);
        let mut guard = self
            .shared
            .backends
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *guard = Arc::new(backends);
    }

    /// The current backend list.
    pub fn backends(&self) -> Vec<Backend> {
        let guard = self
            .shared
            .backends
            .read()
            .unwrap_or_else(|e| e.into_inner());
        guard.as_ref().clone()
    }

    /// Requests forwarded so far, by backend name (whatever the upstream answered).
    pub fn forwarded_counts(&self) -> BTreeMap<String, u64> {
        self.shared
            .forwarded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(addr = %self.addr, "front thread panicked");
            }
        }
    }
}

fn serve(
    runtime: tokio::runtime::Runtime,
    listener: std::net::TcpListener,
    app: Router,
    stop_rx: tokio::sync::watch::Receiver<bool>,
) {
    let mut graceful = stop_rx.clone();
    let mut hard = stop_rx;
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "front cannot register its listener");
                return;
            }
        };
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = graceful.wait_for(|s| *s).await;
            })
            .into_future();
        let deadline = async move {
            let _ = hard.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        tokio::select! {
            r = server => if let Err(e) = r { tracing::error!(error = %e, "front server failed") },
            () = deadline => tracing::warn!("front: in-flight requests cut after 2 s"),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &s.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn forward(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let start = Instant::now();
    let (outcome, resp) = forward_inner(&s, req).await;
    s.requests.get_or_create(&OutcomeLabels { outcome }).inc();
    s.duration.observe(start.elapsed().as_secs_f64());
    resp
}

async fn forward_inner(s: &Shared, req: Request) -> (Outcome, Response) {
    let backend = {
        let list = s.backends.read().unwrap_or_else(|e| e.into_inner()).clone();
        if list.is_empty() {
            return (
                Outcome::dropped,
                (StatusCode::SERVICE_UNAVAILABLE, "no ready replica\n").into_response(),
            );
        }
        let i = s.next.fetch_add(1, Ordering::Relaxed) % list.len();
        list[i].clone()
    };
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, s.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return (
                Outcome::error,
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response(),
            )
        }
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("http://{}{}", backend.addr, path);
    let mut upstream = s.client.request(parts.method, &url).body(body);
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        upstream = upstream.header(header::CONTENT_TYPE, ct);
    }
    *s.forwarded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(backend.name.clone())
        .or_default() += 1;
    let resp = match upstream.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(backend = %backend.name, error = %e, "front: upstream failed");
            return (
                Outcome::error,
                (
                    StatusCode::BAD_GATEWAY,
                    format!("upstream {} failed\n", backend.name),
                )
                    .into_response(),
            );
        }
    };
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(_) => {
            return (
                Outcome::error,
                (StatusCode::BAD_GATEWAY, "upstream body failed\n").into_response(),
            )
        }
    };
    let outcome = if status.is_success() {
        Outcome::served
    } else if status == StatusCode::SERVICE_UNAVAILABLE {
        Outcome::dropped
    } else {
        Outcome::error
    };
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = status;
    if let Some(ct) = content_type {
        out.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    (outcome, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_config() {
        let c = FrontConfig {
            upstream_timeout_s: 0.0,
            ..FrontConfig::default()
        };
        assert!(matches!(Front::start(&c), Err(Error::Config(_))));
        let c = FrontConfig {
            worker_threads: 0,
            ..FrontConfig::default()
        };
        assert!(matches!(Front::start(&c), Err(Error::Config(_))));
    }

    #[test]
    fn config_from_toml() {
        let c: FrontConfig = toml::from_str("upstream_timeout_s = 5.0").unwrap();
        assert_eq!(c.upstream_timeout_s, 5.0);
        assert_eq!(c.worker_threads, 2);
        assert!(toml::from_str::<FrontConfig>("timeout = 5.0").is_err());
    }
}
