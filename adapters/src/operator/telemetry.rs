//! The operator's own HTTP endpoint: `GET /metrics` (Prometheus text format, prometheus-client)
//! and `POST /trigger` (forces an immediate decision), plus `GET /health`.
//!
//! Metrics (names follow Prometheus' base-unit conventions):
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `nimbusguard_operator_decisions_total` | counter | `source` (`agent`, `hpa_fallback`) | decisions taken |
//! | `nimbusguard_operator_fallbacks_total` | counter | `reason` (`stale`, `missing`, `unreachable`) | decisions the HPA fallback took, by why |
//! | `nimbusguard_operator_desired_replicas` | gauge | | `spec.replicas` after the last decision |
//! | `nimbusguard_operator_wished_replicas` | gauge | | what the deciding autoscaler asked for, before the safety limits |
//! | `nimbusguard_operator_reward` | gauge | | reward of the last scored decision |
//! | `nimbusguard_operator_decision_latency_seconds` | histogram | | observe + decide + act, seconds |
//! | `nimbusguard_operator_action_failures_total` | counter | | actions the scaler refused (recovery ran) |
//! | `nimbusguard_operator_triggers_total` | counter | | decisions forced through `POST /trigger` |

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label set `{source}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// `agent` or `hpa_fallback`.
    pub source: String,
}

/// Label set `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `stale`, `missing` or `unreachable`.
    pub reason: String,
}

/// The operator's metrics (see the module docs for the table).
#[derive(Clone)]
pub struct OperatorMetrics {
    /// `nimbusguard_operator_decisions_total{source}`.
    pub decisions: Family<SourceLabel, Counter>,
    /// `nimbusguard_operator_fallbacks_total{reason}`.
    pub fallbacks: Family<ReasonLabel, Counter>,
    /// `nimbusguard_operator_desired_replicas`.
    pub desired_replicas: Gauge,
    /// `nimbusguard_operator_wished_replicas`.
    pub wished_replicas: Gauge,
    /// `nimbusguard_operator_reward`.
    pub reward: Gauge<f64, AtomicU64>,
    /// `nimbusguard_operator_decision_latency_seconds`.
    pub decision_latency: Histogram,
    /// `nimbusguard_operator_action_failures_total`.
    pub action_failures: Counter,
    /// `nimbusguard_operator_triggers_total`.
    pub triggers: Counter,
    registry: Arc<Registry>,
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl OperatorMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// Creates and registers every metric, and lets `extra` register more metrics in the same
    /// registry (the Kafka trigger source's counters, the controller's per-resource metrics),
    /// so that `/metrics` serves them all.
    pub fn with(extra: impl FnOnce(&mut Registry)) -> Self {
        let mut r = Registry::default();
        extra(&mut r);
        let decisions = Family::<SourceLabel, Counter>::default();
        let fallbacks = Family::<ReasonLabel, Counter>::default();
        let desired_replicas = Gauge::default();
        let wished_replicas = Gauge::default();
        let reward = Gauge::<f64, AtomicU64>::default();
        let decision_latency =
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]);
        let action_failures = Counter::default();
        let triggers = Counter::default();
        // prometheus-client appends `_total` to counters itself.
        r.register(
            "nimbusguard_operator_decisions",
            "Decisions taken, by source (agent or HPA fallback)",
            decisions.clone(),
        );
        r.register(
            "nimbusguard_operator_fallbacks",
            "Decisions taken by the HPA fallback, by why the metrics were not usable",
            fallbacks.clone(),
        );
        r.register(
            "nimbusguard_operator_desired_replicas",
            "spec.replicas after the last decision",
            desired_replicas.clone(),
        );
        r.register(
            "nimbusguard_operator_wished_replicas",
            "Replicas the deciding autoscaler asked for, before the safety limits",
            wished_replicas.clone(),
        );
        r.register(
            "nimbusguard_operator_reward",
            "Reward of the last scored decision",
            reward.clone(),
        );
        r.register(
            "nimbusguard_operator_decision_latency_seconds",
            "Time to observe, decide and act, seconds",
            decision_latency.clone(),
        );
        r.register(
            "nimbusguard_operator_action_failures",
            "Actions the scaler refused (the recovery branch ran)",
            action_failures.clone(),
        );
        r.register(
            "nimbusguard_operator_triggers",
            "Decisions forced through POST /trigger",
            triggers.clone(),
        );
        Self {
            decisions,
            fallbacks,
            desired_replicas,
            wished_replicas,
            reward,
            decision_latency,
            action_failures,
            triggers,
            registry: Arc::new(r),
        }
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A decision forced from outside (`POST /trigger`).
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// The request body, as sent (may be empty; the workload app forwards its
    /// `{event_type, service, value}` events here).
    pub body: String,
}

#[derive(Clone)]
struct AppState {
    metrics: OperatorMetrics,
    triggers: Arc<Mutex<Sender<Trigger>>>,
}

/// The operator's HTTP server, running on its own thread with its own tokio runtime; stops
/// when dropped.
pub struct TelemetryServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TelemetryServer {
    /// Binds `listen` (port 0 = any free port) and serves `metrics` and the trigger endpoint,
    /// which sends each trigger to `triggers`.
    ///
    /// # Errors
    /// The address cannot be bound, or the runtime cannot start.
    pub fn start(
        listen: SocketAddr,
        metrics: OperatorMetrics,
        triggers: Sender<Trigger>,
    ) -> std::io::Result<Self> {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let state = AppState {
            metrics,
            triggers: Arc::new(Mutex::new(triggers)),
        };
        let app = Router::new()
            .route("/metrics", get(metrics_handler))
            .route("/trigger", post(trigger_handler))
            .route("/health", get(|| async { "ok" }))
            .with_state(state);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // The runtime is built and dropped on the server's own thread: never inside the
        // caller's async context (the controller's), where dropping a runtime panics.
        let (started_tx, started_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name("operator-http".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = started_tx.send(Ok(()));
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = rx.await;
                    });
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "operator HTTP server stopped");
                    }
                });
            })?;
        started_rx.recv().unwrap_or_else(|_| {
            Err(std::io::Error::other(
                "the HTTP server thread ended at start",
            ))
        })?;
        Ok(Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TelemetryServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn trigger_handler(State(s): State<AppState>, body: String) -> impl IntoResponse {
    if body.len() > 16 * 1024 {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body over 16 KiB\n").into_response();
    }
    let sent = s
        .triggers
        .lock()
        .map(|tx| tx.send(Trigger { body }).is_ok())
        .unwrap_or(false);
    if sent {
        (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"accepted\":true}\n",
        )
            .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "operator loop stopped\n").into_response()
    }
}
