//! [`MlflowTracker`]: logs [`RunLog`]s to an MLflow tracking server over its REST API
//! (<https://mlflow.org/docs/latest/api_reference/rest-api.html>; shapes checked against
//! MLflow 3.17, `../shared/notes/real-components.md` section 1).
//!
//! Per run: find it by its key (`runs/search` on the tag [`RUN_KEY_TAG`]): a FINISHED one is
//! skipped, an unfinished one (an upload cut short) is deleted and logged again; `runs/create`
//! (nested under the parent with `mlflow.parentRunId`); `runs/log-batch` within the limits
//! ([`super::batch`]); artifacts through the proxy (`PUT /api/2.0/mlflow-artifacts/...`);
//! `registered-models/create` and `model-versions/create` with the artifact as source;
//! `runs/update` to FINISHED last, so a run is FINISHED only when complete.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use super::batch::{split, MLFLOW_LIMITS};
use super::client::{MlflowClient, MlflowError, RetryPolicy};
use super::run_log::{RunLog, PARENT_RUN_TAG, RUN_KEY_TAG};
use super::{parents_first, LogReport, Tracker, TRACKING_URI_ENV};

/// A [`Tracker`] that logs to an MLflow tracking server.
#[derive(Debug)]
pub struct MlflowTracker {
    client: MlflowClient,
    /// Experiment name to id, filled as experiments are looked up.
    experiments: Mutex<HashMap<String, String>>,
}

/// A run as `runs/search` or `runs/create` returns it.
#[derive(Debug, Clone)]
struct RunInfo {
    run_id: String,
    status: String,
    artifact_uri: String,
}

impl MlflowTracker {
    /// A tracker for the server at `uri` (`http(s)://...`) with the given timeouts and retries.
    ///
    /// # Errors
    /// `uri` is not an http(s) URL ([`MlflowError::BadUri`]).
    pub fn new(uri: &str, retry: RetryPolicy) -> Result<MlflowTracker, MlflowError> {
        Ok(MlflowTracker {
            client: MlflowClient::new(uri, retry)?,
            experiments: Mutex::new(HashMap::new()),
        })
    }

    /// A tracker for `MLFLOW_TRACKING_URI` with the default [`RetryPolicy`]; `None` when the
    /// variable is unset or empty.
    ///
    /// # Errors
    /// The variable is set to something other than an http(s) URL.
    pub fn from_env() -> Option<Result<MlflowTracker, MlflowError>> {
        let uri = std::env::var(TRACKING_URI_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())?;
        Some(MlflowTracker::new(&uri, RetryPolicy::default()))
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        self.client.base().as_str()
    }

    /// The id of experiment `name`, created if missing (also when another process creates it
    /// at the same moment).
    fn experiment_id(&self, name: &str) -> Result<String> {
        if let Some(id) = self.cached_experiments().get(name) {
            return Ok(id.clone());
        }
        let id = match self.get_experiment(name)? {
            Some(id) => id,
            None => match self
                .client
                .post("experiments/create", &json!({"name": name}))
            {
                Ok(v) => str_field(&v, &["experiment_id"], "experiments/create")?,
                Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => self
                    .get_experiment(name)?
                    .ok_or_else(|| anyhow!("experiment {name:?} exists but cannot be read"))?,
                Err(e) => return Err(e.into()),
            },
        };
        self.cached_experiments()
            .insert(name.to_string(), id.clone());
        Ok(id)
    }

    fn cached_experiments(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // A poisoned cache is still a valid cache.
        self.experiments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The id of active experiment `name`, `None` if there is none.
    fn get_experiment(&self, name: &str) -> Result<Option<String>> {
        match self
            .client
            .get("experiments/get-by-name", &[("experiment_name", name)])
        {
            Ok(v) => {
                if v["experiment"]["lifecycle_stage"] == "deleted" {
                    anyhow::bail!(
                        "MLflow experiment {name:?} is deleted; restore it (MLflow UI or \
                         `mlflow experiments restore`) or rename the config's experiment"
                    );
                }
                Ok(Some(str_field(
                    &v,
                    &["experiment", "experiment_id"],
                    "experiments/get-by-name",
                )?))
            }
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The active run of experiment `exp` with run key `key`, preferring a FINISHED one.
    fn find_run(&self, exp: &str, key: &str) -> Result<Option<RunInfo>> {
        let body = json!({
            "experiment_ids": [exp],
            "filter": format!("tags.`{RUN_KEY_TAG}` = '{key}'"),
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 50,
        });
        let v = self.client.post("runs/search", &body)?;
        let runs = v["runs"].as_array().cloned().unwrap_or_default();
        let infos: Vec<RunInfo> = runs
            .iter()
            .map(|r| run_info(&r["info"], "runs/search"))
            .collect::<Result<_>>()?;
        Ok(infos
            .iter()
            .find(|r| r.status == "FINISHED")
            .or(infos.first())
            .cloned())
    }

    /// Logs one run (its parent's id given); returns whether it was logged (`false`: found
    /// finished already). `look` says whether to look for the run first; a run whose parent
    /// was created by this call cannot exist yet (children are logged only once their parent
    /// is finished), so it need not be looked for.
    fn log_run(
        &self,
        run: &RunLog,
        exp: &str,
        parent_id: Option<&str>,
        look: bool,
    ) -> Result<(String, bool)> {
        if let Some(found) = look
            .then(|| self.find_run(exp, &run.run_key))
            .transpose()?
            .flatten()
        {
            if found.status == "FINISHED" {
                return Ok((found.run_id, false));
            }
            // An upload cut short: what it logged is unknown, so start over.
            self.client
                .post("runs/delete", &json!({"run_id": found.run_id}))?;
        }
        let mut create_tags = vec![json!({"key": RUN_KEY_TAG, "value": run.run_key})];
        if let Some(p) = parent_id {
            create_tags.push(json!({"key": PARENT_RUN_TAG, "value": p}));
        }
        let v = self.client.post(
            "runs/create",
            &json!({
                "experiment_id": exp,
                "run_name": run.run_name,
                "start_time": run.start_time_ms,
                "tags": create_tags,
            }),
        )?;
        let info = run_info(&v["run"]["info"], "runs/create")?;
        let mut tags = run.tags.clone();
        tags.remove(RUN_KEY_TAG);
        tags.remove(PARENT_RUN_TAG);
        for b in split(&run.params, &tags, &run.metrics, MLFLOW_LIMITS) {
            self.client
                .post("runs/log-batch", &b.to_json(&info.run_id))?;
        }
        if !run.artifacts.is_empty() {
            let root = proxy_root(&info.artifact_uri)?;
            for a in &run.artifacts {
                let bytes = std::fs::read(&a.local).with_context(|| {
                    format!("cannot read artifact {} ({})", a.local.display(), a.path)
                })?;
                self.client.put_artifact(&root, &a.path, bytes)?;
            }
        }
        for m in &run.models {
            match self
                .client
                .post("registered-models/create", &json!({"name": m.name}))
            {
                Ok(_) => {}
                Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {}
                Err(e) => return Err(e.into()),
            }
            let tags: Vec<Value> = m
                .tags
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect();
            self.client.post(
                "model-versions/create",
                &json!({
                    "name": m.name,
                    "source": format!("{}/{}", info.artifact_uri.trim_end_matches('/'), m.artifact_path),
                    "run_id": info.run_id,
                    "description": m.description,
                    "tags": tags,
                }),
            )?;
        }
        self.client.post(
            "runs/update",
            &json!({"run_id": info.run_id, "status": "FINISHED", "end_time": run.end_time_ms}),
        )?;
        Ok((info.run_id, true))
    }
}

impl Tracker for MlflowTracker {
    fn log(&self, runs: &[RunLog]) -> Result<LogReport> {
        let mut report = LogReport::default();
        // Run key to run id (and whether it was created now), for the children of runs in
        // this call.
        let mut ids: HashMap<&str, (String, bool)> = HashMap::new();
        for run in parents_first(runs) {
            let exp = self
                .experiment_id(&run.experiment)
                .with_context(|| format!("MLflow experiment {:?}", run.experiment))?;
            let parent = run.parent_key.as_deref().and_then(|p| ids.get(p));
            let look = !parent.is_some_and(|(_, created)| *created);
            let parent_id = match &run.parent_key {
                None => None,
                Some(p) => Some(match parent {
                    Some((id, _)) => id.clone(),
                    None => self.find_run(&exp, p)?.map(|r| r.run_id).ok_or_else(|| {
                        anyhow!(
                            "run {}: parent run {p:?} not found in experiment {:?}; log \
                                 the parent first",
                            run.run_key,
                            run.experiment
                        )
                    })?,
                }),
            };
            let (id, logged) = self
                .log_run(run, &exp, parent_id.as_deref(), look)
                .with_context(|| format!("MLflow run {}", run.run_key))?;
            if logged {
                report.logged += 1;
            } else {
                report.skipped += 1;
            }
            ids.insert(&run.run_key, (id, logged));
        }
        Ok(report)
    }
}

/// The artifact proxy path of a run's artifact root: `mlflow-artifacts:/1/<run>/artifacts`
/// (or `mlflow-artifacts://host:port/1/...`) gives `1/<run>/artifacts`.
///
/// # Errors
/// Any other scheme: the server does not proxy artifacts.
pub(crate) fn proxy_root(artifact_uri: &str) -> Result<String> {
    let rest = artifact_uri
        .strip_prefix("mlflow-artifacts:")
        .ok_or_else(|| {
            anyhow!(
            "the run's artifact root is {artifact_uri:?}, not served by the tracking server: start \
             `mlflow server` with `--serve-artifacts` (the default) and no --default-artifact-root \
             outside it, so artifacts can be uploaded over HTTP"
        )
        })?;
    let path = match rest.strip_prefix("//") {
        // `//host:port/path`: drop the authority.
        Some(r) => r.split_once('/').map_or("", |(_, p)| p),
        None => rest,
    };
    Ok(path.trim_matches('/').to_string())
}

/// The string at `path` in `v`.
fn str_field(v: &Value, path: &[&str], call: &str) -> Result<String> {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_str().map(str::to_string).ok_or_else(|| {
        MlflowError::Protocol {
            call: call.to_string(),
            detail: format!("no string at {}", path.join(".")),
        }
        .into()
    })
}

fn run_info(info: &Value, call: &str) -> Result<RunInfo> {
    Ok(RunInfo {
        run_id: str_field(info, &["run_id"], call)?,
        status: info["status"].as_str().unwrap_or_default().to_string(),
        artifact_uri: info["artifact_uri"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_roots() {
        assert_eq!(
            proxy_root("mlflow-artifacts:/1/abc/artifacts").unwrap(),
            "1/abc/artifacts"
        );
        assert_eq!(
            proxy_root("mlflow-artifacts://127.0.0.1:5000/2/abc/artifacts").unwrap(),
            "2/abc/artifacts"
        );
        let e = proxy_root("/tmp/mlruns/1/abc/artifacts").unwrap_err();
        assert!(e.to_string().contains("--serve-artifacts"), "{e}");
    }
}
