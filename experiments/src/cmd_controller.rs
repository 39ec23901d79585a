//! `nimbusguard controller` and `nimbusguard crd`: the NimbusScaler controller
//! ([`adapters::k8s::controller`]) against the cluster of the kubeconfig (or in-cluster), with
//! policies served from `nimbusguard run` folders ([`crate::saved_agent`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use adapters::k8s::controller::{self, ControllerConfig, PolicyLoader, ResolvedPolicy};
use agents::autoscaler::Autoscaler;
use anyhow::{Context, Result};

use crate::saved_agent::saved_agent;

/// Serves the policies of [`ResolvedPolicy`] from run folders (files in the image, or a
/// ConfigMap the controller wrote out).
pub struct RunFolderLoader;

impl PolicyLoader for RunFolderLoader {
    fn load(&self, policy: &ResolvedPolicy) -> std::result::Result<Box<dyn Autoscaler>, String> {
        match policy {
            ResolvedPolicy::Run { dir, agent } => saved_agent(dir, agent)
                .map(|a| a.autoscaler)
                .map_err(|e| format!("{e:#}")),
            ResolvedPolicy::Mlflow { uri, .. } => Err(format!(
                "mlflowModel policies ({uri}) are not served yet: export the run folder into a \
                 ConfigMap or the image and use `configMap` or `file`"
            )),
            ResolvedPolicy::Hpa => Err("the HPA policy needs no loader".into()),
        }
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
    /// Where ConfigMap policies are written.
    pub work_dir: Option<PathBuf>,
    /// Kafka trigger events (`{event_type, service, value}`) as triggers, when set: each
    /// valid event makes the NimbusScalers named by `service` decide at once.
    pub kafka: Option<adapters::KafkaTriggerConfig>,
}

/// Runs the controller until SIGTERM or SIGINT.
///
/// # Errors
/// No usable Kubernetes configuration; the endpoint cannot be bound; the runtime cannot start.
pub fn execute(options: &ControllerOptions) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async {
        let client = adapters::k8s::connect(options.kubeconfig.as_deref())
            .await
            .context("cannot connect to the Kubernetes API")?;
        let mut config = ControllerConfig {
            namespace: options.namespace.clone(),
            listen: options.listen,
            ..ControllerConfig::default()
        };
        if let Some(d) = &options.work_dir {
            config.work_dir = d.clone();
        }
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        };
        let (tx, rx) = mpsc::channel();
        let _kafka = match &options.kafka {
            Some(k) => Some(
                adapters::KafkaTriggers::start(k, adapters::KafkaTriggerMetrics::new(), tx.clone())
                    .context("cannot start the Kafka trigger consumer")?,
            ),
            None => None,
        };
        controller::run(
            client,
            config,
            Arc::new(RunFolderLoader),
            (tx, rx),
            shutdown,
        )
        .await
        .context("controller")
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
