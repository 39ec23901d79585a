//! Kubernetes: the live path over a real cluster's API (kube-rs).
//!
//! Modules:
//! - [`crd`]: the `NimbusScaler` custom resource (spec, status) and its CRD YAML.
//! - [`scaler`]: [`KubeScaler`], a Deployment's `scale` subresource and pods as a
//!   [`Scaler`](crate::Scaler).
//! - [`controller`]: the NimbusScaler controller (kube-rs `Controller`): decisions, status,
//!   events, self-healing, triggers.
//! - [`node_agent`]: a process-backed kubelet stand-in for local control planes (pods as
//!   real processes on loopback addresses).
//! - [`quantity`]: resource quantities (`250m`, `64Mi`) as numbers.

pub mod controller;
pub mod crd;
pub mod node_agent;
pub mod quantity;
pub mod scaler;

pub use crd::{NimbusScaler, NimbusScalerSpec, NimbusScalerStatus};
pub use scaler::{KubeScaler, KubeScalerConfig, PodDetail};

use std::path::Path;

use crate::error::{Error, Result};

/// A Kubernetes client: from the kubeconfig at `kubeconfig` if given, else the standard
/// inference (`KUBECONFIG`, `~/.kube/config`, then the in-cluster ServiceAccount).
///
/// # Errors
/// [`Error::Config`] naming the kubeconfig when it cannot be read or used.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<kube::Client> {
    client_of(client_config(kubeconfig).await?)
}

/// The client configuration [`connect`] uses (its `cluster_url` is the API server's URL).
///
/// # Errors
/// [`Error::Config`] naming the kubeconfig when it cannot be read or used.
pub async fn client_config(kubeconfig: Option<&Path>) -> Result<kube::Config> {
    match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Config(format!("kubeconfig {}: {e}", path.display())))
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::Config(format!("no Kubernetes configuration: {e}"))),
    }
}

/// A client of `config` ([`client_config`]).
///
/// # Errors
/// [`Error::Config`] when the client cannot be built (TLS set-up).
pub fn client_of(config: kube::Config) -> Result<kube::Client> {
    let url = config.cluster_url.to_string();
    kube::Client::try_from(config)
        .map_err(|e| Error::Config(format!("cannot build the Kubernetes client for {url}: {e}")))
}
