//! Where a NimbusScaler's deciding agent comes from: the spec's [`PolicySource`] resolved to
//! files or a model URI ([`ResolvedPolicy`]), and the [`PolicyLoader`] that turns those into an
//! [`Autoscaler`] (implemented by the `nimbusguard` binary, which knows the run-folder format).

use std::path::{Path, PathBuf};

use agents::autoscaler::Autoscaler;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

use super::super::crd::PolicySource;
use super::super::scaler::api_error;
use crate::error::{Error, Result};

/// A policy ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedPolicy {
    /// The HPA rules of the spec's `fallback` decide.
    Hpa,
    /// Agent `agent` of the `nimbusguard run` output folder `dir` (`config.toml`,
    /// `policies/`).
    Run {
        /// The run folder.
        dir: PathBuf,
        /// The agent's name in its config.
        agent: String,
    },
    /// A model of MLflow's registry.
    Mlflow {
        /// `models:/<name>/<version>`.
        uri: String,
        /// Tracking server URL.
        tracking_uri: String,
    },
}

/// Builds the deciding agent of a resolved policy. Called on a blocking thread; may do I/O
/// (read files, download from MLflow).
pub trait PolicyLoader: Send + Sync + 'static {
    /// The agent for `policy`; `ResolvedPolicy::Hpa` is handled by the controller itself and
    /// never reaches a loader.
    ///
    /// # Errors
    /// A message saying what is missing or invalid (the file, the agent name, the model).
    fn load(&self, policy: &ResolvedPolicy) -> std::result::Result<Box<dyn Autoscaler>, String>;
}

/// Resolves `source` for a resource in `namespace`: a ConfigMap's keys are written to
/// `dir` as a run folder (`config.toml` stays `config.toml`; `<agent>.json` goes to
/// `policies/<agent>.json`; other keys are written as they are).
///
/// # Errors
/// [`Error::KubeForbidden`] / [`Error::KubeNotFound`] for the ConfigMap, [`Error::Config`] if
/// it lacks `config.toml`, [`Error::Io`] if `dir` cannot be written.
pub async fn resolve(
    client: &Client,
    namespace: &str,
    source: &PolicySource,
    dir: &Path,
) -> Result<ResolvedPolicy> {
    Ok(match source {
        PolicySource::Hpa {} => ResolvedPolicy::Hpa,
        PolicySource::File { run, agent } => ResolvedPolicy::Run {
            dir: PathBuf::from(run),
            agent: agent.clone(),
        },
        PolicySource::MlflowModel { uri, tracking_uri } => ResolvedPolicy::Mlflow {
            uri: uri.clone(),
            tracking_uri: tracking_uri.clone().unwrap_or_default(),
        },
        PolicySource::ConfigMap { name, agent } => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let cm = api
                .get(name)
                .await
                .map_err(|e| api_error(e, "get", "configmaps", namespace, name, 1))?;
            let data = cm.data.unwrap_or_default();
            if !data.contains_key("config.toml") {
                return Err(Error::Config(format!(
                    "ConfigMap {namespace}/{name}: expected a key `config.toml` (a nimbusguard \
                     run's config) and `{agent}.json` (its policy); keys: {:?}",
                    data.keys().collect::<Vec<_>>()
                )));
            }
            let io = |path: &Path| {
                let path = path.to_path_buf();
                move |source| Error::Io { path, source }
            };
            let policies = dir.join("policies");
            std::fs::create_dir_all(&policies).map_err(io(&policies))?;
            for (key, value) in &data {
                if key.contains('/') || key.starts_with('.') {
                    continue;
                }
                let path = if key == "config.toml" {
                    dir.join(key)
                } else {
                    policies.join(key)
                };
                std::fs::write(&path, value).map_err(io(&path))?;
            }
            ResolvedPolicy::Run {
                dir: dir.to_path_buf(),
                agent: agent.clone(),
            }
        }
    })
}
