//! The workload app: an axum server whose `/work` endpoint costs CPU like one request of the
//! simulator's service model, plus bounded CPU/memory jobs, event triggers and Prometheus
//! metrics. Run it as the `workload-app` binary or in-process with [`App::serve`].
//!
//! | Route | Answer |
//! |---|---|
//! | `GET`/`POST /work` | 200 `{"cost_ms","wait_ms","pod"}`; 503 dropped (queue full, timeout) |
//! | `POST /workload/cpu?intensity=&duration=` | 202 job; 400 bad parameter; 429 too many jobs |
//! | `POST /workload/memory?size_mb=&duration=` | 202 job; 400; 429 (jobs or memory budget) |
//! | `GET /workload/jobs` | 200 running jobs |
//! | `POST /events/trigger` | 202 `{"accepted":true,"forwarded":bool}`; 400 naming the field |
//! | `GET /metrics` | Prometheus text ([`metrics::Metrics`]) |
//! | `GET /health`, `GET /ready` | 200; `/ready` 503 until `--ready-delay-s` passed |
//!
//! Bodies over `--max-body-bytes` get 413, unknown routes 404 (JSON `{"error":..}`).
//!
//! With `--kafka-brokers`, trigger events are also consumed from a Kafka topic ([`kafka`]).

pub mod config;
pub mod events;
pub mod jobs;
pub mod kafka;
pub mod metrics;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use sim::config::CostDistribution;
use tokio::sync::{watch, Semaphore};
use tower_http::limit::RequestBodyLimitLayer;

pub use config::AppConfig;
pub use events::{EventType, TriggerEvent};
pub use metrics::Metrics;

use crate::{Error, Result};
use config::secs;
use metrics::{Outcome, OutcomeLabel};

/// Shared state of one app.
#[derive(Debug)]
pub(crate) struct AppState {
    config: AppConfig,
    metrics: Metrics,
    jobs: jobs::Jobs,
    start: Instant,
    workers: Arc<Semaphore>,
    waiting: AtomicUsize,
    costs: Mutex<ChaCha8Rng>,
    client: reqwest::Client,
    stopping: AtomicBool,
    stop_tx: watch::Sender<bool>,
}

/// One workload app (one pod): configuration, metrics, jobs. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct App {
    state: Arc<AppState>,
}

impl App {
    /// Builds the app; `/ready`'s delay counts from here.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] from [`AppConfig::validate`]; [`Error::Setup`] if the HTTP client
    /// (trigger forwarding) cannot be built.
    pub fn new(config: AppConfig) -> Result<App> {
        config.validate()?;
        let client = reqwest::Client::builder()
            .timeout(events::FORWARD_TIMEOUT)
            .build()
            .map_err(|e| Error::Setup {
                what: "HTTP client",
                source: Box::new(e),
            })?;
        let state = AppState {
            metrics: Metrics::new(&config.pod_name),
            jobs: jobs::Jobs::default(),
            start: Instant::now(),
            workers: Arc::new(Semaphore::new(config.workers)),
            waiting: AtomicUsize::new(0),
            costs: Mutex::new(ChaCha8Rng::seed_from_u64(config.cost_seed)),
            client,
            stopping: AtomicBool::new(false),
            stop_tx: watch::channel(false).0,
            config,
        };
        Ok(App {
            state: Arc::new(state),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.state.config
    }

    /// The app's metrics (for in-process checks).
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The axum router with every route and the body limit.
    pub fn router(&self) -> Router {
        let limit = self.state.config.max_body_bytes;
        Router::new()
            .route("/work", get(work).post(work))
            .route("/workload/cpu", post(jobs::cpu))
            .route("/workload/memory", post(jobs::memory))
            .route("/workload/jobs", get(jobs::list))
            .route("/events/trigger", post(events::trigger))
            .route("/metrics", get(render_metrics))
            .route("/health", get(health))
            .route("/ready", get(ready))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(limit))
            .layer(RequestBodyLimitLayer::new(limit))
            .with_state(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish for at most `shutdown_grace_s` and stops the background jobs. With
    /// `--kafka-brokers` it also consumes trigger events ([`kafka`]) until then, and finally
    /// leaves the consumer group (committing its offsets; at most 5 s).
    ///
    /// # Errors
    ///
    /// [`Error::Serve`] if the server fails; [`Error::Setup`] if the Kafka consumer cannot be
    /// created (nothing is served then).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let consumer =
            kafka::consumer(&self.state)?.map(|c| tokio::spawn(kafka::run(self.state.clone(), c)));
        let served = self.serve_http(listener, shutdown).await;
        if let Some(task) = consumer {
            self.state.stop_tx.send_replace(true);
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("Kafka consumer did not stop within 5 s");
            }
        }
        served
    }

    async fn serve_http(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let (tx, mut rx) = watch::channel(false);
        let state = self.state.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            state.stopping.store(true, Ordering::Relaxed);
            state.stop_tx.send_replace(true);
            tx.send_replace(true);
        };
        let server = axum::serve(listener, self.router()).with_graceful_shutdown(signal);
        let grace = secs(self.state.config.shutdown_grace_s);
        tokio::select! {
            r = server.into_future() => r.map_err(Error::Serve),
            _ = async {
                if rx.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(grace_s = grace.as_secs_f64(), "grace period over, exiting with requests in flight");
                Ok(())
            }
        }
    }
}

/// Binds `addr` (port 0 picks a free port).
///
/// # Errors
///
/// [`Error::Bind`] with the address.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// The line `workload-app` prints on stdout right after binding:
/// `{"event":"listening","addr":"IP:PORT"}`.
pub fn listening_line(addr: SocketAddr) -> String {
    serde_json::json!({"event": "listening", "addr": addr.to_string()}).to_string()
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// A JSON error answer `{"error": msg, key: name}`.
pub(crate) fn error_response(status: StatusCode, msg: String, key: &str, name: &str) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("error".into(), msg.into());
    if !name.is_empty() {
        body.insert(key.into(), name.into());
    }
    (status, Json(serde_json::Value::Object(body))).into_response()
}

/// CPU time of the calling thread (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`), if the platform
/// has a thread CPU clock. Not `/proc/thread-self/schedstat`: the kernel updates that only at
/// scheduler ticks (every 4 ms measured here), which made each request overshoot its cost by
/// up to one tick (20 ms asked, 23.6 ms used: `nimbusguard calibrate`).
fn thread_cpu_time() -> Option<Duration> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(Duration::new(
        u64::try_from(t.tv_sec()).ok()?,
        u32::try_from(t.tv_nsec()).ok()?,
    ))
}

/// Busy-loops until the calling thread has used `cost` of CPU time (measured with the thread's
/// CPU clock when the platform has one, so time the thread is descheduled or throttled does not
/// count; otherwise wall time).
pub fn spin_for(cost: Duration) {
    if cost.is_zero() {
        return;
    }
    let spin_wall = |d: Duration| {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::hint::spin_loop();
        }
    };
    let Some(start) = thread_cpu_time() else {
        spin_wall(cost);
        return;
    };
    loop {
        let used = thread_cpu_time().map_or(cost, |t| t.saturating_sub(start));
        let left = cost.saturating_sub(used);
        if left < Duration::from_micros(20) {
            return;
        }
        // CPU time <= wall time, so spinning `left` of wall time cannot overshoot the cost.
        spin_wall(left);
    }
}

impl AppState {
    /// Draws the next request's CPU cost.
    fn draw_cost(&self) -> Duration {
        let mean = self.config.cpu_per_request_ms;
        let ms = match self.config.cost_distribution {
            _ if mean <= 0.0 => 0.0,
            CostDistribution::Deterministic => mean,
            CostDistribution::Exponential => match Exp::new(1.0 / mean) {
                Ok(exp) => {
                    let mut rng = self.costs.lock().unwrap_or_else(|e| e.into_inner());
                    exp.sample(&mut *rng)
                }
                Err(_) => mean,
            },
        };
        Duration::from_secs_f64(ms / 1000.0)
    }

    fn is_ready(&self) -> bool {
        let ready = self.start.elapsed() >= secs(self.config.ready_delay_s);
        self.metrics.ready.set(i64::from(ready));
        ready
    }
}

/// Decrements `workload_requests_in_flight` when a `/work` request is answered.
struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// `GET`/`POST /work`. Runs to completion in its own task even if the client goes away, so
/// every accepted request is counted served or dropped.
async fn work(State(state): State<Arc<AppState>>) -> Response {
    let arrival = Instant::now();
    match tokio::spawn(serve_work(state, arrival)).await {
        Ok(r) => r,
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), "", ""),
    }
}

async fn serve_work(state: Arc<AppState>, arrival: Instant) -> Response {
    let m = &state.metrics;
    m.in_flight.inc();
    let _in_flight = InFlight(m);
    let dropped = |why: String| {
        m.requests
            .get_or_create(&OutcomeLabel {
                outcome: Outcome::Dropped,
            })
            .inc();
        error_response(StatusCode::SERVICE_UNAVAILABLE, why, "", "")
    };
    let cfg = &state.config;
    // A free worker is taken at once (tokio hands released permits to waiters first, so a
    // free permit means nobody is queued); otherwise the request queues, if there is room.
    let permit = match state.workers.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            if state.waiting.fetch_add(1, Ordering::SeqCst) >= cfg.max_queue {
                state.waiting.fetch_sub(1, Ordering::SeqCst);
                return dropped(format!(
                    "queue full: {} requests waiting (--max-queue)",
                    cfg.max_queue
                ));
            }
            let permit = tokio::time::timeout(
                secs(cfg.request_timeout_s),
                state.workers.clone().acquire_owned(),
            )
            .await;
            state.waiting.fetch_sub(1, Ordering::SeqCst);
            let Ok(Ok(permit)) = permit else {
                return dropped(format!(
                    "no worker free within {} s (--request-timeout-s)",
                    cfg.request_timeout_s
                ));
            };
            permit
        }
    };
    let wait = arrival.elapsed();
    let cost = state.draw_cost();
    if !cost.is_zero() {
        let burnt = tokio::task::spawn_blocking(move || {
            spin_for(cost);
            drop(permit);
        })
        .await;
        if let Err(e) = burnt {
            return dropped(format!("worker failed: {e}"));
        }
    } else {
        drop(permit);
    }
    m.requests
        .get_or_create(&OutcomeLabel {
            outcome: Outcome::Served,
        })
        .inc();
    m.duration.observe(arrival.elapsed().as_secs_f64());
    Json(serde_json::json!({
        "cost_ms": cost.as_secs_f64() * 1000.0,
        "wait_ms": wait.as_secs_f64() * 1000.0,
        "pod": cfg.pod_name,
    }))
    .into_response()
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    state.is_ready();
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

async fn health() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let ready = state.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(serde_json::json!({"ready": ready}))).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
        "path",
        uri.path(),
    )
}
