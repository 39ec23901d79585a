//! The NimbusScaler controller (kube-rs [`kube::runtime::Controller`]): for each
//! `NimbusScaler`, every `decisionIntervalSeconds` (or at once on a trigger), one decision of
//! the operator loop ([`crate::operator::Operator`]: observe through Prometheus and the
//! [`KubeScaler`], decide with the resource's policy or the HPA fallback, act within the
//! safety limits, score), then self-healing of stuck scale-ups ([`healing`]), the resource's
//! status and events ([`status`]).
//!
//! Triggers (`POST /trigger` on the controller's HTTP endpoint, Kafka trigger events) carry
//! `{event_type, service, value}`: the resources whose name or target is `service` (all of
//! them when `service` is empty) decide at once.
//!
//! Resilience: Prometheus failures make the HPA fallback decide (the status says so); API
//! failures are retried by the [`KubeScaler`] and, for a whole reconcile, by the error policy
//! (requeue after 5 s); the watch restarts with back-off, each failure logged at `warn` in
//! plain words ([`startup`]). Once started, nothing stops the controller but the shutdown
//! signal; at start-up, a first list of NimbusScalers that does not succeed within
//! [`ControllerConfig::startup_timeout`] (CRD not installed, credentials rejected, API server
//! unreachable) is an error.
//!
//! Metrics (`/metrics`): the operator loop's totals ([`crate::operator::telemetry`]) over all
//! resources, and per resource ([`metrics`], labels `namespace`, `name`), whose series go at
//! the next reconcile after the resource is deleted.
//!
//! Modules: [`policy`] (policy sources, [`PolicyLoader`]), [`healing`] (stuck scale-ups),
//! [`status`] (status and events), [`metrics`] (per-resource metrics), [`startup`] (start-up
//! errors explained, stop).

pub mod healing;
pub mod metrics;
pub mod policy;
pub mod startup;
pub mod status;

pub use self::policy::{PolicyLoader, ResolvedPolicy};

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use agents::autoscaler::Autoscaler;
use agents::hpa::{Hpa, HpaConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

use self::healing::{HealAction, Healer};
use self::metrics::{ResourceLabels, ScalerMetrics};
use self::status::{decision_events, heal_event, rfc3339, status_after, EventText};
use super::crd::{NimbusScaler, NimbusScalerStatus};
use super::scaler::{KubeScaler, KubeScalerConfig};
use crate::operator::safety::SafetyConfig;
use crate::operator::stages::{DecisionAgent, RewardStage, SloConfig};
use crate::operator::telemetry::{OperatorMetrics, TelemetryServer, Trigger};
use crate::operator::{Cause, DecisionTrace, LoopConfig, Operator};
use crate::prometheus::PrometheusClient;
use crate::state::{StateConfig, StateObserver};
use crate::Scaler;

/// Controller settings (the `nimbusguard controller` flags).
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Watch NimbusScalers of this namespace only (`None`: all namespaces, which needs a
    /// ClusterRole).
    pub namespace: Option<String>,
    /// `/metrics`, `POST /trigger`, `/health` (port 0: any free port).
    pub listen: SocketAddr,
    /// ConfigMap policies are written below this folder.
    pub work_dir: PathBuf,
    /// Timeout of one Prometheus query, seconds.
    pub prometheus_timeout_s: f64,
    /// Retries of the Kubernetes API calls.
    pub scaler: KubeScalerConfig,
    /// The events' reporting controller (`reportingController`).
    pub reporter: String,
    /// The API server's URL, for messages (e.g. `https://127.0.0.1:6443/`).
    pub api_server: String,
    /// How long the first list of NimbusScalers may keep failing before [`run`] gives up
    /// with [`crate::Error::KubeStartup`] (default 60 s).
    pub startup_timeout: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 9464)),
            work_dir: std::env::temp_dir().join("nimbusguard-controller"),
            prometheus_timeout_s: 2.0,
            scaler: KubeScalerConfig::default(),
            reporter: "nimbusguard-operator".into(),
            api_server: "the API server".into(),
            startup_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a reconcile failed (the error policy requeues it after 5 s).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A live-path error (API, Prometheus set-up, files).
    #[error(transparent)]
    Live(#[from] crate::Error),
    /// The spec or the policy is unusable.
    #[error("{0}")]
    Invalid(String),
    /// A blocking task panicked or was cancelled.
    #[error("decision task failed: {0}")]
    Join(String),
}

type Op = Operator<StateObserver, KubeScaler>;

/// Owns a value whose drop blocks (the operator's Prometheus client is a blocking reqwest
/// client with its own runtime, which must not be dropped inside an async context): dropping
/// it hands the value to a plain thread.
struct DropOffRuntime<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> DropOffRuntime<T> {
    fn get_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("present until dropped")
    }
}

impl<T: Send + 'static> Drop for DropOffRuntime<T> {
    fn drop(&mut self) {
        if let Some(v) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("drop-operator".into())
                .spawn(move || drop(v));
        }
    }
}

/// One NimbusScaler's operator and healer, rebuilt when its generation changes.
struct Slot {
    generation: Option<i64>,
    operator: Arc<Mutex<DropOffRuntime<Op>>>,
    healer: Healer,
    last_decision: Option<Instant>,
    decisions: u64,
}

/// Shared state of the reconciler.
pub struct Context {
    client: Client,
    config: ControllerConfig,
    loader: Arc<dyn PolicyLoader>,
    recorder: Recorder,
    metrics: OperatorMetrics,
    scaler_metrics: ScalerMetrics,
    /// The controller's cache of NimbusScalers: slots and series of resources no longer in it
    /// (deleted) are dropped.
    store: Store<NimbusScaler>,
    slots: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Services named by triggers not yet served (`""` = all).
    pending: Mutex<HashSet<String>>,
    reported_invalid: Mutex<HashMap<String, Option<i64>>>,
}

impl Context {
    /// Drops the operators and metric series of resources deleted since (no longer in the
    /// controller's cache), at the start of each reconcile. Cheap: a key comparison per
    /// resource.
    async fn forget_deleted(&self) {
        let live: HashSet<String> = self.store.state().iter().map(|o| key_of(o)).collect();
        let mut slots = self.slots.lock().await;
        let gone: Vec<String> = slots
            .keys()
            .filter(|k| !live.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            slots.remove(&k);
            if let Some((namespace, name)) = k.split_once('/') {
                self.scaler_metrics.forget(&ResourceLabels {
                    namespace: namespace.into(),
                    name: name.into(),
                });
            }
            tracing::info!(resource = %k, "deleted; its operator and metrics are dropped");
        }
    }

    fn take_trigger(&self, obj: &NimbusScaler) -> bool {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let names = [obj.name_any(), obj.spec.scale_target_ref.name.clone()];
        let hit = p.contains("") || names.iter().any(|n| p.contains(n));
        if hit {
            for n in &names {
                p.remove(n);
            }
        }
        hit
    }

    async fn publish(&self, obj: &NimbusScaler, ev: &EventText) {
        let event = Event {
            type_: ev.type_(),
            reason: ev.reason.clone(),
            note: Some(ev.note.chars().take(1000).collect()),
            action: ev.action.clone(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason = %ev.reason, "cannot publish the event");
        }
    }

    async fn patch_status(
        &self,
        obj: &NimbusScaler,
        status: &NimbusScalerStatus,
    ) -> Result<(), ReconcileError> {
        let ns = obj.namespace().unwrap_or_default();
        let api: Api<NimbusScaler> = Api::namespaced(self.client.clone(), &ns);
        let body = serde_json::json!({ "status": status });
        api.patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&body),
        )
        .await
        .map_err(|e| {
            ReconcileError::Live(super::scaler::api_error(
                e,
                "patch",
                "nimbusscalers/status",
                &ns,
                &obj.name_any(),
                1,
            ))
        })?;
        Ok(())
    }
}

/// Runs the controller until `shutdown` resolves (then waits up to [`startup::SHUTDOWN_GRACE`]
/// for the reconciles in flight): watches NimbusScalers, serves `/metrics`,
/// `POST /trigger` and `/health` on `config.listen`, and takes triggers from `triggers` (the
/// receiving end of the channel whose senders the HTTP endpoint and any Kafka trigger source
/// hold; `triggers.0` is handed to the HTTP endpoint). `extra_metrics` registers more metrics
/// on `/metrics` (e.g. [`crate::KafkaTriggerMetrics::register`]).
///
/// # Errors
/// [`crate::Error::Listen`]: the endpoint cannot be bound. [`crate::Error::KubeStartup`]: the
/// first list of NimbusScalers kept failing for [`ControllerConfig::startup_timeout`].
/// Everything after start-up is retried, logged and counted.
pub async fn run(
    client: Client,
    config: ControllerConfig,
    loader: Arc<dyn PolicyLoader>,
    triggers: (Sender<Trigger>, Receiver<Trigger>),
    extra_metrics: impl FnOnce(&mut prometheus_client::registry::Registry),
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> crate::Result<()> {
    let scaler_metrics = ScalerMetrics::default();
    let metrics = OperatorMetrics::with(|r| {
        scaler_metrics.register(r);
        extra_metrics(r);
    });
    let (tx, rx) = triggers;
    let server = TelemetryServer::start(config.listen, metrics.clone(), tx).map_err(|source| {
        crate::Error::Listen {
            addr: config.listen,
            source,
        }
    })?;
    tracing::info!(listen = %server.addr(), namespace = ?config.namespace, "controller started");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: config.reporter.clone(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let api: Api<NimbusScaler> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let controller = Controller::new(api, watcher::Config::default());
    let store = controller.store();
    let (api_server, startup_timeout) = (config.api_server.clone(), config.startup_timeout);
    let ctx = Arc::new(Context {
        client,
        config,
        loader,
        recorder,
        metrics,
        scaler_metrics,
        store: controller.store(),
        slots: tokio::sync::Mutex::default(),
        pending: Mutex::default(),
        reported_invalid: Mutex::default(),
    });
    // Triggers: a std channel (HTTP endpoint, Kafka) → the pending set → reconcile all now.
    let (wake_tx, wake_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let ctx2 = Arc::clone(&ctx);
    std::thread::Builder::new()
        .name("controller-triggers".into())
        .spawn(move || {
            while let Ok(t) = rx.recv() {
                let service = serde_json::from_str::<serde_json::Value>(&t.body)
                    .ok()
                    .and_then(|v| v.get("service")?.as_str().map(str::to_string))
                    .unwrap_or_default();
                tracing::info!(%service, "trigger received");
                ctx2.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(service);
                if wake_tx.send(()).is_err() {
                    return;
                }
            }
        })
        .map_err(|source| crate::Error::Io {
            path: PathBuf::from("controller-triggers thread"),
            source,
        })?;
    let wake = tokio_stream_of(wake_rx);
    let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
    let last_error = Arc::new(Mutex::new(None::<String>));
    let last = Arc::clone(&last_error);
    let api = api_server.clone();
    let running = controller
        .reconcile_all_on(wake)
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile, error_policy, ctx)
        .for_each(move |r| {
            match r {
                Err(kube::runtime::controller::Error::QueueError(e)) => {
                    let why = startup::explain_watch_error(&e, &api);
                    tracing::warn!(error = %why, "cannot list or watch NimbusScalers; retrying");
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                }
                // Reconcile failures are logged by the error policy.
                Err(e) => tracing::debug!(error = %e, "reconcile"),
                Ok(_) => {}
            }
            futures::future::ready(())
        });
    tokio::pin!(running);
    // Start-up: until the first list of NimbusScalers succeeds (the store is ready).
    let phase = tokio::select! {
        () = &mut running => Phase::Ended,
        () = shutdown.clone() => Phase::Ended,
        r = tokio::time::timeout(startup_timeout, store.wait_until_ready()) => match r {
            Ok(_) => Phase::Running,
            Err(_) => Phase::StartupTimedOut,
        },
    };
    match phase {
        Phase::Ended => {}
        Phase::StartupTimedOut => {
            drop(server);
            let last_error = last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(|| {
                    format!("{api_server} did not answer the list of nimbusscalers")
                });
            return Err(crate::Error::KubeStartup {
                api_server,
                waited_s: startup_timeout.as_secs_f64(),
                last_error,
            });
        }
        // Running: until the shutdown signal, then the reconciles in flight get a grace
        // period.
        Phase::Running => {
            tracing::info!(%api_server, "NimbusScalers listed; controller running");
            tokio::select! {
                () = &mut running => {}
                () = async {
                    shutdown.clone().await;
                    tokio::time::sleep(startup::SHUTDOWN_GRACE).await;
                } => tracing::warn!(
                    grace_s = startup::SHUTDOWN_GRACE.as_secs(),
                    "reconciles still running after the grace period; stopping anyway"
                ),
            }
        }
    }
    drop(server);
    tracing::info!("controller stopped");
    Ok(())
}

/// Where [`run`] stands after start-up.
enum Phase {
    /// Stopped (the shutdown signal, or the stream ended) before or at start-up.
    Ended,
    /// The first list of NimbusScalers did not succeed in time.
    StartupTimedOut,
    /// Listed: reconciling.
    Running,
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<()>,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn error_policy(obj: Arc<NimbusScaler>, e: &ReconcileError, ctx: Arc<Context>) -> Action {
    tracing::warn!(resource = %obj.name_any(), error = %e, "reconcile failed; again in 5 s");
    ctx.scaler_metrics.reconcile_failed(&labels_of(&obj));
    Action::requeue(Duration::from_secs(5))
}

fn key_of(obj: &NimbusScaler) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn labels_of(obj: &NimbusScaler) -> ResourceLabels {
    ResourceLabels {
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
    }
}

async fn reconcile(obj: Arc<NimbusScaler>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    ctx.forget_deleted().await;
    let key = key_of(&obj);
    let spec = &obj.spec;
    let generation = obj.meta().generation;
    if let Err(msg) = spec.validate() {
        invalid(&obj, &ctx, "InvalidSpec", &msg).await?;
        return Ok(Action::await_change());
    }
    let interval = Duration::from_secs(u64::from(spec.decision_interval_seconds));
    let slot = {
        let mut slots = ctx.slots.lock().await;
        let fresh = match slots.get(&key) {
            Some(s) => s.lock().await.generation != generation,
            None => true,
        };
        if fresh {
            match build_operator(&obj, &ctx).await {
                Ok(op) => {
                    tracing::info!(resource = %key, ?generation, "operator (re)built");
                    slots.insert(
                        key.clone(),
                        Arc::new(tokio::sync::Mutex::new(Slot {
                            generation,
                            operator: Arc::new(Mutex::new(DropOffRuntime(Some(op)))),
                            healer: Healer::default(),
                            last_decision: None,
                            decisions: 0,
                        })),
                    );
                }
                Err(e) => {
                    slots.remove(&key);
                    invalid(&obj, &ctx, "PolicyUnavailable", &e.to_string()).await?;
                    return Ok(Action::requeue(Duration::from_secs(30)));
                }
            }
        }
        Arc::clone(slots.get(&key).expect("inserted above"))
    };
    let mut slot = slot.lock().await;
    let triggered = ctx.take_trigger(&obj);
    if let Some(last) = slot.last_decision {
        let since = last.elapsed();
        // Watch events (our own status patches among them) must not add decisions.
        if !triggered && since + Duration::from_millis(50) < interval {
            return Ok(Action::requeue(interval - since));
        }
    }
    let cause = if triggered {
        Cause::Trigger
    } else {
        Cause::Interval
    };
    let op = Arc::clone(&slot.operator);
    let (trace, details, desired): (DecisionTrace, _, u32) =
        tokio::task::spawn_blocking(move || {
            let mut guard = op.lock().unwrap_or_else(|e| e.into_inner());
            let op = guard.get_mut();
            let t = op.decide_once(cause).clone();
            let d = op.scaler().pod_details().to_vec();
            let desired = op.scaler().desired_replicas();
            (t, d, desired)
        })
        .await
        .map_err(|e| ReconcileError::Join(e.to_string()))?;
    slot.last_decision = Some(Instant::now());
    slot.decisions += 1;
    for ev in decision_events(&trace) {
        ctx.publish(&obj, &ev).await;
    }

    // Self-healing of stuck scale-ups.
    let mut desired = desired;
    if let Some(action) = slot.healer.check(
        &spec.self_healing,
        &details,
        desired,
        spec.min_replicas,
        SystemTime::now(),
    ) {
        tracing::warn!(resource = %key, ?action, "self-healing");
        ctx.publish(&obj, &heal_event(&action)).await;
        ctx.scaler_metrics.healed(&labels_of(&obj), &action);
        heal(&obj, &ctx, &slot, &action).await;
        if let HealAction::Revert { to, .. } = action {
            desired = to;
        }
    }

    let live: Vec<_> = details.iter().collect();
    let replicas = u32::try_from(live.len()).unwrap_or(u32::MAX);
    let ready = u32::try_from(live.iter().filter(|p| p.ready).count()).unwrap_or(u32::MAX);
    let st = status_after(
        obj.status.as_ref(),
        generation,
        &trace,
        desired,
        replicas,
        ready,
        &slot.healer,
        slot.decisions,
        &rfc3339(SystemTime::now()),
    );
    ctx.scaler_metrics.decided(&labels_of(&obj), &st);
    ctx.patch_status(&obj, &st).await?;
    Ok(Action::requeue(interval))
}

/// Carries out a healing action: deletes stuck pods, or sets the replicas back.
async fn heal(obj: &NimbusScaler, ctx: &Context, slot: &Slot, action: &HealAction) {
    let ns = obj.namespace().unwrap_or_default();
    match action {
        HealAction::Retry { pods, .. } => {
            let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            for p in pods {
                if let Err(e) = api.delete(p, &DeleteParams::default()).await {
                    tracing::warn!(pod = %p, error = %e, "cannot delete a stuck pod");
                }
            }
        }
        HealAction::Revert { to, .. } => {
            let op = Arc::clone(&slot.operator);
            let to = *to;
            let r = tokio::task::spawn_blocking(move || {
                op.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut()
                    .scaler_mut()
                    .set_replicas(to)
            })
            .await;
            if let Ok(Err(e)) | Err(e) = r.map_err(|e| crate::Error::Config(e.to_string())) {
                tracing::warn!(error = %e, "cannot revert the scale-up");
            }
        }
        HealAction::Recovered { .. } => {}
    }
}

/// Reports an unusable spec or policy once per generation: `Ready=False` and a Warning event.
async fn invalid(
    obj: &NimbusScaler,
    ctx: &Context,
    reason: &str,
    msg: &str,
) -> Result<(), ReconcileError> {
    let key = key_of(obj);
    let generation = obj.meta().generation;
    let first = ctx
        .reported_invalid
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone(), generation)
        != Some(generation);
    tracing::warn!(resource = %key, reason, error = msg, "cannot serve this NimbusScaler");
    if first {
        ctx.publish(
            obj,
            &EventText {
                warning: true,
                reason: reason.into(),
                action: "Reconcile".into(),
                note: msg.into(),
            },
        )
        .await;
    }
    let mut st = obj.status.clone().unwrap_or_default();
    st.observed_generation = generation;
    status::set_condition(
        &mut st.conditions,
        "Ready",
        false,
        reason,
        msg.into(),
        &rfc3339(SystemTime::now()),
    );
    ctx.patch_status(obj, &st).await
}

/// Builds the operator of `obj`: policy, HPA fallback, Prometheus observer, KubeScaler.
async fn build_operator(obj: &NimbusScaler, ctx: &Context) -> Result<Op, ReconcileError> {
    let spec = &obj.spec;
    let ns = obj.namespace().unwrap_or_default();
    let dir = ctx
        .config
        .work_dir
        .join(&ns)
        .join(obj.name_any())
        .join(format!("gen-{}", obj.meta().generation.unwrap_or(0)));
    let policy = policy::resolve(&ctx.client, &ns, &spec.policy, &dir).await?;
    let hpa = HpaConfig {
        min_replicas: spec.min_replicas,
        max_replicas: spec.max_replicas,
        sync_period_s: u64::from(spec.decision_interval_seconds),
        target_cpu_utilization_percent: i32::try_from(
            spec.fallback.target_cpu_utilization_percentage,
        )
        .unwrap_or(50),
        downscale_stabilization_window_s: u64::from(spec.fallback.scale_down_stabilization_seconds),
        cpu_initialization_period_s: u64::from(spec.fallback.cpu_initialization_period_seconds),
        initial_readiness_delay_s: u64::from(spec.fallback.initial_readiness_delay_seconds),
        ..HpaConfig::default()
    };
    let fallback = Hpa::new(hpa.clone())
        .map_err(|e| ReconcileError::Invalid(format!("spec.fallback: {e}")))?;
    let agent: Box<dyn Autoscaler> = match &policy {
        ResolvedPolicy::Hpa => Box::new(
            Hpa::new(hpa).map_err(|e| ReconcileError::Invalid(format!("spec.fallback: {e}")))?,
        ),
        other => {
            let loader = Arc::clone(&ctx.loader);
            let other = other.clone();
            tokio::task::spawn_blocking(move || loader.load(&other))
                .await
                .map_err(|e| ReconcileError::Join(e.to_string()))?
                .map_err(|e| ReconcileError::Invalid(format!("spec.policy: {e}")))?
        }
    };
    let mut scaler = KubeScaler::new(
        ctx.client.clone(),
        tokio::runtime::Handle::current(),
        &ns,
        &spec.scale_target_ref.name,
        ctx.config.scaler,
    );
    scaler.refresh_async().await?;
    let mut state = StateConfig {
        queries: crate::state::PromQueries::in_cluster(),
        stale_after_s: f64::from(spec.prometheus.stale_after_seconds),
        ..StateConfig::default()
    };
    if let Some(p) = scaler
        .pod_details()
        .iter()
        .find(|p| p.cpu_request_milli > 0)
    {
        state.cpu_request_milli = p.cpu_request_milli;
        if p.memory_request_bytes > 0 {
            state.memory_request_bytes = p.memory_request_bytes;
        }
    }
    let interval_s = f64::from(spec.decision_interval_seconds);
    let reward = RewardStage::new(
        envs::RewardCalculator::new(&envs::ScalingEnvConfig {
            decision_interval_s: interval_s,
            ..envs::ScalingEnvConfig::default()
        }),
        SloConfig::default(),
    );
    let loop_config = LoopConfig {
        decision_interval_s: interval_s,
        safety: SafetyConfig {
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
            max_step: spec.max_step,
            cooldown_s: f64::from(spec.cooldown_seconds),
        },
    };
    loop_config.validate().map_err(ReconcileError::Invalid)?;
    // The Prometheus client is a blocking reqwest client (it owns a runtime): built, like the
    // operator holding it, on a blocking thread.
    let (url, timeout) = (
        spec.prometheus.url.clone(),
        Duration::from_secs_f64(ctx.config.prometheus_timeout_s),
    );
    let metrics = ctx.metrics.clone();
    tokio::task::spawn_blocking(move || {
        let client = PrometheusClient::new(&url, timeout)?;
        let observer = StateObserver::new(client, state, SystemTime::now())?;
        let mut op = Operator::new(
            &loop_config,
            observer,
            DecisionAgent::new(agent, fallback),
            scaler,
            reward,
            metrics,
            None,
        );
        // Runs for months: the status and metrics carry what matters, not the history.
        op.keep_history(16);
        Ok::<_, crate::Error>(op)
    })
    .await
    .map_err(|e| ReconcileError::Join(e.to_string()))?
    .map_err(ReconcileError::from)
}
