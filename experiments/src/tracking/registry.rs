//! [`download_model`]: a model version of MLflow's registry (`models:/<name>/<version>`, or
//! `models:/<name>/latest`) downloaded as a `nimbusguard run` folder, so that
//! [`crate::saved_agent::saved_agent`] rebuilds the agent, as for a local run folder.
//!
//! A version registered by `nimbusguard run` ([`super::from_results`]) has as source a policy
//! artifact of its run (`policies/<agent>.json` or the folder `policies/<agent>.dqn`) and a
//! tag `agent`; the run also holds `config.toml`. REST calls
//! (<https://mlflow.org/docs/latest/api_reference/rest-api.html>): `model-versions/search`
//! (for `latest`), `model-versions/get`, `runs/get` (the artifact root), `artifacts/list` (a
//! policy folder), then the files through the artifact proxy.

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::client::{MlflowClient, MlflowError};
use super::mlflow::proxy_root;

/// A registered model version, downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedModel {
    /// The run folder: `config.toml` and `policies/<agent>.json` or `policies/<agent>.dqn/`.
    pub dir: PathBuf,
    /// The agent's name in `config.toml` (the version's tag `agent`, else the policy's file
    /// name).
    pub agent: String,
    /// The registered model's name.
    pub name: String,
    /// The version number (`latest` resolved).
    pub version: String,
    /// The MLflow run the version comes from.
    pub run_id: String,
}

/// Downloads model version `uri` (`models:/<name>/<version>`, `<version>` a number or
/// `latest`) from the tracking server of `client` into `dest/<name>/<version>/`, replacing
/// what an earlier download left there (written to a temporary folder, then renamed).
///
/// # Errors
/// A malformed URI; no such model or version (MLflow's `RESOURCE_DOES_NOT_EXIST`, naming the
/// model); a version whose source is not an artifact of its run or not a nimbusguard policy;
/// the server unreachable; `dest` not writable.
pub fn download_model(client: &MlflowClient, uri: &str, dest: &Path) -> Result<DownloadedModel> {
    let (name, version) = adapters::k8s::crd::parse_model_uri(uri).map_err(|e| anyhow!(e))?;
    let server = client.base().to_string();
    let not_found = |e: MlflowError, what: String| match e.code() {
        Some("RESOURCE_DOES_NOT_EXIST") => anyhow!("{what} is not in the registry of {server}"),
        _ => anyhow::Error::from(e).context(what),
    };
    let version = if version == "latest" {
        latest_version(client, name).map_err(|e| not_found(e, format!("model {name:?}")))?
    } else {
        version.to_string()
    };
    let mv = client
        .get(
            "model-versions/get",
            &[("name", name), ("version", version.as_str())],
        )
        .map_err(|e| not_found(e, format!("model {name:?} version {version}")))?;
    let mv = &mv["model_version"];
    let field = |k: &str| {
        mv[k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("model-versions/get: no `{k}` in {mv}"))
    };
    let (source, run_id) = (field("source")?, field("run_id")?);
    let run = client
        .get("runs/get", &[("run_id", run_id.as_str())])
        .with_context(|| format!("run {run_id} of model {name:?} version {version}"))?;
    let artifact_uri = run["run"]["info"]["artifact_uri"]
        .as_str()
        .ok_or_else(|| anyhow!("runs/get {run_id}: no artifact_uri"))?
        .trim_end_matches('/')
        .to_string();
    let rel = source
        .strip_prefix(&artifact_uri)
        .map(|r| r.trim_start_matches('/').to_string())
        .filter(|r| r.starts_with("policies/"))
        .ok_or_else(|| {
            anyhow!(
                "model {name:?} version {version}: source {source:?} is not a nimbusguard \
                 policy artifact (policies/...) of its run {artifact_uri:?}"
            )
        })?;
    let agent = tag(mv, "agent").unwrap_or_else(|| {
        let file = rel.rsplit('/').next().unwrap_or_default();
        file.trim_end_matches(".json")
            .trim_end_matches(".dqn")
            .to_string()
    });
    let root = proxy_root(&artifact_uri)?;

    // The files: config.toml, then the policy file or every file of the policy folder.
    let mut files = vec!["config.toml".to_string()];
    if rel.ends_with(".json") {
        files.push(rel.clone());
    } else {
        let listed = client
            .get("artifacts/list", &[("run_id", &run_id), ("path", &rel)])
            .with_context(|| format!("listing {rel} of run {run_id}"))?;
        let before = files.len();
        for f in listed["files"].as_array().into_iter().flatten() {
            if f["is_dir"].as_bool() == Some(false) {
                if let Some(p) = f["path"].as_str() {
                    files.push(p.to_string());
                }
            }
        }
        if files.len() == before {
            bail!("model {name:?} version {version}: the policy folder {rel} of run {run_id} is empty");
        }
    }

    let final_dir = dest.join(safe_segment(name)).join(&version);
    let tmp = dest.join(format!(
        ".{}-{version}.tmp.{}",
        safe_segment(name),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    for f in &files {
        let local = tmp.join(relative(f)?);
        let bytes = client
            .get_artifact(&root, f)
            .with_context(|| format!("downloading {f} of run {run_id}"))?;
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&local, bytes)
            .with_context(|| format!("cannot write {}", local.display()))?;
    }
    let _ = std::fs::remove_dir_all(&final_dir);
    if let Some(parent) = final_dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::rename(&tmp, &final_dir)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), final_dir.display()))?;
    Ok(DownloadedModel {
        dir: final_dir,
        agent,
        name: name.to_string(),
        version,
        run_id,
    })
}

/// The highest version number of model `name`.
fn latest_version(client: &MlflowClient, name: &str) -> Result<String, MlflowError> {
    let filter = format!("name='{}'", name.replace('\'', "\\'"));
    let v = client.get("model-versions/search", &[("filter", filter.as_str())])?;
    v["model_versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["version"].as_str()?.parse::<u64>().ok())
        .max()
        .map(|n| n.to_string())
        .ok_or_else(|| MlflowError::Refused {
            call: "GET model-versions/search".into(),
            status: 404,
            code: "RESOURCE_DOES_NOT_EXIST".into(),
            message: format!("model {name:?} has no versions"),
        })
}

/// The value of tag `key` of a model version.
fn tag(mv: &Value, key: &str) -> Option<String> {
    mv["tags"].as_array()?.iter().find(|t| t["key"] == key)?["value"]
        .as_str()
        .map(str::to_string)
}

/// `name` as one path segment: ASCII letters, digits and `._-` kept, others as `_`.
fn safe_segment(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An artifact path as a relative local path, refusing `..`, absolute paths and empty ones.
fn relative(path: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("artifact path {path:?} is not a plain relative path");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_stay_inside() {
        assert_eq!(
            relative("policies/q.dqn/model.bpk").unwrap(),
            PathBuf::from("policies/q.dqn/model.bpk")
        );
        for bad in ["", "../x", "/etc/passwd", "policies/../../x"] {
            assert!(relative(bad).is_err(), "{bad}");
        }
        assert_eq!(safe_segment("nimbusguard-demo/q x"), "nimbusguard-demo_q_x");
    }

    #[test]
    fn version_tags() {
        let mv = serde_json::json!({"tags": [{"key": "agent", "value": "q"}]});
        assert_eq!(tag(&mv, "agent").as_deref(), Some("q"));
        assert_eq!(tag(&mv, "seed"), None);
    }

    #[test]
    fn bad_uris_fail_before_any_request() {
        // Nothing listens on port 9: a request would fail with "unreachable", not these.
        let client = MlflowClient::new(
            "http://127.0.0.1:9",
            super::super::client::RetryPolicy::default(),
        )
        .unwrap();
        let dest = std::env::temp_dir();
        let e = download_model(&client, "runs:/abc/model", &dest).unwrap_err();
        assert!(e.to_string().contains("models:/<name>/<version>"), "{e}");
        let e = download_model(&client, "models:/m/v1", &dest).unwrap_err();
        assert!(
            e.to_string()
                .contains("version number (1, 2, ...) or `latest`"),
            "{e}"
        );
    }
}
