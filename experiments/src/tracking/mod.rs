//! Experiment tracking: results on disk are the record of truth, MLflow is a mirror
//! (`../shared/DESIGN.md`, section 6). With `MLFLOW_TRACKING_URI` set, every `nimbusguard run`
//! is also logged to that MLflow server over its REST API; when the server is down or slow the
//! runs are spooled beside the results and `nimbusguard mlflow sync DIR` uploads them later.
//!
//! Modules, one job each:
//! - [`run_log`] — [`RunLog`]: one MLflow run as plain data (tags, params, metrics, artifacts,
//!   model registrations); dotted param names from a config ([`run_log::flatten_toml`]).
//! - [`mirror`] — [`mirror_results`]: logs a result folder's runs, or spools them ([`spool_results`]: spools only).
//! - [`from_results`] — [`from_results::build_runs`]: the runs of a result folder (what is
//!   logged where), nested under a [`ParentRun`].
//! - [`client`] — the REST client: timeouts, bounded retries with backoff, MLflow's errors.
//! - [`batch`] — `runs/log-batch` requests within MLflow's limits.
//! - [`mlflow`] — [`MlflowTracker`]: experiments, runs (idempotent by run key), artifacts
//!   through the artifact proxy, registered model versions.
//! - [`registry`] — [`registry::download_model`]: a registered model version
//!   (`models:/<name>/<version>`) downloaded as a run folder (the controller's `mlflowModel`
//!   policies).
//! - [`spool`] — [`FileTracker`] (the spool) and [`spool::sync_tree`] (`nimbusguard mlflow sync`).
//!
//! ```
//! use experiments::tracking::{NullTracker, RunLog, Tracker};
//! let mut run = RunLog::new("demo", "demo/1", "hpa-seed-1", 0);
//! run.metric("pod_hours", 12.5, 0);
//! assert_eq!(NullTracker.log(&[run]).unwrap().logged, 1);
//! ```

pub mod batch;
pub mod client;
pub mod from_results;
pub mod mirror;
pub mod mlflow;
pub mod registry;
pub mod run_log;
pub mod spool;

pub use from_results::ParentRun;
pub use mirror::{mirror_results, spool_results, MirrorOutcome};
pub use mlflow::MlflowTracker;
pub use run_log::RunLog;
pub use spool::FileTracker;

/// The environment variable that switches MLflow logging on: the tracking server's URL, e.g.
/// `http://127.0.0.1:5000` (the variable MLflow's own clients read).
pub const TRACKING_URI_ENV: &str = "MLFLOW_TRACKING_URI";

/// The folder, inside a result folder, where runs wait that could not be logged.
pub const SPOOL_DIR: &str = "mlflow-spool";

/// Where runs go.
pub trait Tracker {
    /// Logs `runs`, parents before their children (see [`parents_first`]). A run already
    /// logged and finished (same [`RunLog::run_key`]) is skipped, so logging twice never
    /// duplicates.
    ///
    /// # Errors
    /// The destination cannot take the runs (server unreachable, a request refused, a file
    /// unreadable); some runs may be logged already, and logging them all again is safe.
    fn log(&self, runs: &[RunLog]) -> anyhow::Result<LogReport>;
}

/// What [`Tracker::log`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogReport {
    /// Runs logged now.
    pub logged: usize,
    /// Runs found already logged and finished, left alone.
    pub skipped: usize,
}

/// A tracker that accepts runs and drops them (tracking off).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullTracker;

impl Tracker for NullTracker {
    fn log(&self, runs: &[RunLog]) -> anyhow::Result<LogReport> {
        Ok(LogReport {
            logged: runs.len(),
            skipped: 0,
        })
    }
}

/// `runs` reordered so that each run comes after its parent when the parent is among them;
/// otherwise the order is kept.
pub fn parents_first(runs: &[RunLog]) -> Vec<&RunLog> {
    let mut left: Vec<&RunLog> = runs.iter().collect();
    let mut out = Vec::with_capacity(runs.len());
    while !left.is_empty() {
        let waiting = |r: &RunLog| {
            r.parent_key.as_ref().is_some_and(|p| {
                left.iter()
                    .any(|o| &o.run_key == p && o.run_key != r.run_key)
            })
        };
        let (ready, rest): (Vec<&RunLog>, Vec<&RunLog>) =
            left.iter().copied().partition(|r| !waiting(r));
        if ready.is_empty() {
            // A cycle of parents: keep the given order rather than loop forever.
            out.extend(rest);
            break;
        }
        out.extend(ready);
        left = rest;
    }
    out
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_first() {
        let mut child = RunLog::new("e", "p/c", "c", 0);
        child.parent_key = Some("p".into());
        let mut grandchild = RunLog::new("e", "p/c/g", "g", 0);
        grandchild.parent_key = Some("p/c".into());
        let parent = RunLog::new("e", "p", "p", 0);
        let mut orphan = RunLog::new("e", "o", "o", 0);
        orphan.parent_key = Some("elsewhere".into());
        let runs = [grandchild, child, orphan, parent];
        let keys: Vec<&str> = parents_first(&runs)
            .iter()
            .map(|r| r.run_key.as_str())
            .collect();
        assert_eq!(keys, ["o", "p", "p/c", "p/c/g"]);
    }
}
