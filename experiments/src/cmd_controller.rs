//! `nimbusguard controller` and `nimbusguard crd`: the NimbusScaler controller
//! ([`adapters::k8s::controller`]) against the cluster of the kubeconfig (or in-cluster), with
//! policies served from `nimbusguard run` folders ([`crate::saved_agent`]) and from MLflow's
//! model registry ([`crate::tracking::registry`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use adapters::k8s::controller::{self, ControllerConfig, PolicyLoader, ResolvedPolicy};
use agents::autoscaler::Autoscaler;
use anyhow::{Context, Result};

use crate::saved_agent::saved_agent;
use crate::tracking::client::{MlflowClient, RetryPolicy};
use crate::tracking::registry::{download_model, DownloadedModel};
use crate::tracking::TRACKING_URI_ENV;

/// Serves the policies of [`ResolvedPolicy`]: run folders (files in the image, or a ConfigMap
/// the controller wrote out) and model versions of MLflow's registry, downloaded into
/// `mlflow_dir` as run folders ([`download_model`]).
#[derive(Debug, Clone)]
pub struct RunFolderLoader {
    /// Where registered models are downloaded (`<name>/<version>/` below it).
    pub mlflow_dir: PathBuf,
}

impl PolicyLoader for RunFolderLoader {
    fn load(&self, policy: &ResolvedPolicy) -> std::result::Result<Box<dyn Autoscaler>, String> {
        let load = |dir: &std::path::Path, agent: &str| {
            saved_agent(dir, agent)
                .map(|a| a.autoscaler)
                .map_err(|e| format!("{e:#}"))
        };
        match policy {
            ResolvedPolicy::Run { dir, agent } => load(dir, agent),
            ResolvedPolicy::Mlflow { uri, tracking_uri } => {
                let model = self
                    .download(uri, tracking_uri)
                    .map_err(|e| format!("{e:#}"))?;
                tracing::info!(
                    uri,
                    run_id = %model.run_id,
                    version = %model.version,
                    dir = %model.dir.display(),
                    "MLflow model downloaded"
                );
                load(&model.dir, &model.agent)
                    .map_err(|e| format!("{uri} (run {}): {e}", model.run_id))
            }
            ResolvedPolicy::Hpa => Err("the HPA policy needs no loader".into()),
        }
    }
}

impl RunFolderLoader {
    /// Downloads model `uri` from `tracking_uri` (empty: `MLFLOW_TRACKING_URI`).
    ///
    /// # Errors
    /// No tracking server given; see [`download_model`].
    pub fn download(&self, uri: &str, tracking_uri: &str) -> Result<DownloadedModel> {
        let server = match tracking_uri.trim() {
            "" => std::env::var(TRACKING_URI_ENV).map_err(|_| {
                anyhow::anyhow!(
                    "{uri}: spec.policy.mlflowModel.trackingUri is empty and {TRACKING_URI_ENV} \
                     is not set: expected the MLflow tracking server's URL"
                )
            })?,
            s => s.to_string(),
        };
        let client = MlflowClient::new(&server, RetryPolicy::default())?;
        download_model(&client, uri, &self.mlflow_dir)
            .with_context(|| format!("MLflow model {uri} from {server}"))
    }
}

/// `nimbusguard controller` options.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// Namespace to watch (default: all).
    pub namespace: Option<String>,
    /// `/metrics`, `POST /trigger`, `/health`.
    pub listen: SocketAddr,
    /// Where ConfigMap policies are written (`<work_dir>/<namespace>/<name>/gen-N/`) and MLflow
    /// models downloaded (`<work_dir>/mlflow-models/<model>/<version>/`).
    pub work_dir: Option<PathBuf>,
    /// How long the first list of NimbusScalers may keep failing (CRD not installed,
    /// credentials rejected, API server unreachable) before the controller exits with an
    /// error, seconds.
    pub startup_timeout_s: f64,
    /// Kafka trigger events (`{event_type, service, value}`) as triggers, when set: each
    /// valid event makes the NimbusScalers named by `service` decide at once.
    pub kafka: Option<adapters::KafkaTriggerConfig>,
}

/// Runs the controller until SIGTERM or SIGINT.
///
/// # Errors
/// No usable Kubernetes configuration; `startup_timeout_s` is not within 0.001..=1e9 s; the
/// endpoint cannot be bound; the first list of NimbusScalers kept failing for
/// `startup_timeout_s` (the message says why: CRD not installed, HTTP 401, unreachable URL);
/// the runtime cannot start.
pub fn execute(options: &ControllerOptions) -> Result<()> {
    let t = options.startup_timeout_s;
    if !(0.001..=1e9).contains(&t) {
        anyhow::bail!(
            "--startup-timeout-seconds {t}: expected a number of seconds from 0.001 to 1e9"
        );
    }
    let startup_timeout = std::time::Duration::from_secs_f64(t);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let result = rt.block_on(async {
        let kube_config = adapters::k8s::client_config(options.kubeconfig.as_deref())
            .await
            .context("cannot connect to the Kubernetes API")?;
        let api_server = kube_config.cluster_url.to_string();
        let client = adapters::k8s::client_of(kube_config)?;
        let mut config = ControllerConfig {
            namespace: options.namespace.clone(),
            listen: options.listen,
            api_server,
            startup_timeout,
            ..ControllerConfig::default()
        };
        if let Some(d) = &options.work_dir {
            config.work_dir = d.clone();
        }
        let mlflow_dir = config.work_dir.join("mlflow-models");
        let shutdown = sigterm_or_sigint()?;
        let (tx, rx) = mpsc::channel();
        let kafka_metrics = adapters::KafkaTriggerMetrics::new();
        let _kafka = match &options.kafka {
            Some(k) => Some(
                adapters::KafkaTriggers::start(k, kafka_metrics.clone(), tx.clone())
                    .context("cannot start the Kafka trigger consumer")?,
            ),
            None => None,
        };
        controller::run(
            client,
            config,
            Arc::new(RunFolderLoader { mlflow_dir }),
            (tx, rx),
            |r| {
                if options.kafka.is_some() {
                    kafka_metrics.register(r);
                }
            },
            shutdown,
        )
        .await
        .context("controller")
    });
    // Decisions still blocked on Prometheus or the API must not hold the exit for long.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

/// A future that resolves on the first SIGTERM or SIGINT (the stop signal of the long-running
/// Kubernetes commands, `controller` and `node-agent`). Call it inside a tokio runtime.
///
/// # Errors
/// The SIGTERM handler cannot be installed.
pub fn sigterm_or_sigint() -> Result<impl std::future::Future<Output = ()> + Send + Sync + 'static>
{
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    })
}

/// Prints the NimbusScaler CRD (YAML) to stdout.
///
/// # Errors
/// Writing to stdout fails.
pub fn print_crd(out: &mut dyn std::io::Write) -> Result<()> {
    let yaml = adapters::k8s::crd::crd_yaml().map_err(anyhow::Error::msg)?;
    out.write_all(yaml.as_bytes())
        .context("cannot write the CRD to stdout")
}
