//! [`mirror_results`]: the MLflow mirror of a result folder (`../shared/DESIGN.md`, section 6):
//! builds its runs ([`super::from_results::build_runs`]) and logs them, or spools them when
//! MLflow fails. Never an error for the caller: the results on disk are complete either way.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::from_results::{build_runs, ParentRun};
use super::run_log::RunLog;
use super::spool::FileTracker;
use super::{LogReport, MlflowTracker, Tracker, SPOOL_DIR, TRACKING_URI_ENV};

/// What [`mirror_results`] did. Never an error: the results on disk are complete either way.
#[derive(Debug, Clone, PartialEq)]
pub enum MirrorOutcome {
    /// `MLFLOW_TRACKING_URI` is unset: nothing to do.
    Off,
    /// Every run is in MLflow.
    Logged {
        /// The tracking server.
        server: String,
        /// Runs logged and skipped (already there).
        report: LogReport,
    },
    /// MLflow failed; the runs wait in the spool for `nimbusguard mlflow sync`.
    Spooled {
        /// Runs spooled.
        runs: usize,
        /// The spool folder.
        spool: PathBuf,
        /// Why MLflow failed.
        reason: String,
    },
    /// The runs could be neither logged nor spooled (the reason says why); the results on
    /// disk are untouched.
    Failed {
        /// What failed.
        reason: String,
    },
}

/// Mirrors the result folder `dir` to MLflow when `MLFLOW_TRACKING_URI` is set: builds its
/// runs ([`build_runs`]) under `parent` (or a new experiment run) and logs them
/// ([`log_or_spool`], spool `dir/mlflow-spool/`). Failures are logged as warnings, with one
/// line on stderr naming the spool and the sync command; they never fail the caller.
pub fn mirror_results(dir: &Path, parent: Option<&ParentRun>) -> MirrorOutcome {
    mirror(dir, parent, true)
}

/// As [`mirror_results`], but writes the runs straight to `dir/mlflow-spool/` without
/// contacting the server: a sweep does this once MLflow has failed in it, so later runs do not
/// each wait on retries. Silent on success ([`MirrorOutcome::Spooled`]); [`MirrorOutcome::Off`]
/// when `MLFLOW_TRACKING_URI` is unset.
pub fn spool_results(dir: &Path, parent: Option<&ParentRun>) -> MirrorOutcome {
    mirror(dir, parent, false)
}

fn mirror(dir: &Path, parent: Option<&ParentRun>, try_server: bool) -> MirrorOutcome {
    if tracking_uri().is_none() {
        return MirrorOutcome::Off;
    }
    let spool = dir.join(SPOOL_DIR);
    let built = build_runs(dir, parent)
        .with_context(|| format!("cannot read the results in {}", dir.display()));
    let spooled = match built {
        Ok(runs) if try_server => return log_or_spool(&runs, &spool),
        Ok(runs) => FileTracker::new(&spool).log(&runs).map(|_| runs.len()),
        Err(e) => Err(e),
    };
    match spooled {
        Ok(runs) => MirrorOutcome::Spooled {
            runs,
            spool,
            reason: "MLflow failed earlier in this process".into(),
        },
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::warn!("MLflow mirror skipped: {reason}");
            eprintln!("warning: MLflow: runs neither logged nor spooled: {reason}");
            MirrorOutcome::Failed { reason }
        }
    }
}

/// Logs `runs` to the server of `MLFLOW_TRACKING_URI` (bounded retries, see
/// [`super::client::RetryPolicy`]); if that fails or the URI is not http(s), writes them to
/// `spool` instead, with a warning that names the spool and `nimbusguard mlflow sync`.
/// [`MirrorOutcome::Off`] when the variable is unset. For a sweep's own run, which no result
/// folder holds.
pub fn log_or_spool(runs: &[RunLog], spool: &Path) -> MirrorOutcome {
    let Some(uri) = tracking_uri() else {
        return MirrorOutcome::Off;
    };
    let result = MlflowTracker::new(&uri, Default::default())
        .map_err(anyhow::Error::from)
        .and_then(|t| Ok((t.server().to_string(), t.log(runs)?)));
    let reason = match result {
        Ok((server, report)) => {
            tracing::info!(
                "MLflow: {} runs logged, {} already there, at {server}",
                report.logged,
                report.skipped
            );
            return MirrorOutcome::Logged { server, report };
        }
        Err(e) => format!("{e:#}"),
    };
    // The folder to sync is the one above the spool (the result folder).
    let sync_dir = spool.parent().unwrap_or(spool);
    match FileTracker::new(spool).log(runs) {
        Ok(_) => {
            tracing::warn!("MLflow logging failed: {reason}");
            eprintln!(
                "warning: MLflow logging failed ({reason}); {} runs spooled in {}; upload them \
                 later with `nimbusguard mlflow sync {}`",
                runs.len(),
                spool.display(),
                sync_dir.display()
            );
            MirrorOutcome::Spooled {
                runs: runs.len(),
                spool: spool.to_path_buf(),
                reason,
            }
        }
        Err(e) => {
            let reason = format!("{reason}; spooling failed too: {e:#}");
            tracing::warn!("MLflow runs lost: {reason}");
            eprintln!("warning: MLflow runs not logged and not spooled: {reason}");
            MirrorOutcome::Failed { reason }
        }
    }
}

/// `MLFLOW_TRACKING_URI` when set and not blank.
fn tracking_uri() -> Option<String> {
    std::env::var(TRACKING_URI_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
}
