//! `nimbusguard mlflow sync DIR`: uploads the runs spooled below `DIR` (every `mlflow-spool/`
//! folder at or under it) to the MLflow server of `MLFLOW_TRACKING_URI` (or `--tracking-uri`),
//! removing them from the spool once logged ([`crate::tracking::spool::sync_tree`]).

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::tracking::client::RetryPolicy;
use crate::tracking::spool::{find_spools, sync_tree};
use crate::tracking::{MlflowTracker, TRACKING_URI_ENV};

/// Uploads the spools below `dir` to `uri` (default: `MLFLOW_TRACKING_URI`) and prints what
/// was done on stdout (spool folders, runs uploaded, runs already in MLflow).
///
/// # Errors
/// No tracking URI, or not http(s); `dir` is not a folder; the server is unreachable or
/// refuses a request (what was not uploaded stays in the spool); spool files that cannot be
/// read (named; they stay, the rest is uploaded).
pub fn sync(dir: &Path, uri: Option<&str>) -> Result<()> {
    if !dir.is_dir() {
        bail!(
            "{}: not a folder (expected a result or sweep folder)",
            dir.display()
        );
    }
    let uri = match uri {
        Some(u) => u.to_string(),
        None => std::env::var(TRACKING_URI_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .with_context(|| {
                format!(
                    "no MLflow server: set {TRACKING_URI_ENV} (e.g. http://127.0.0.1:5000) or \
                     pass --tracking-uri"
                )
            })?,
    };
    let tracker = MlflowTracker::new(&uri, RetryPolicy::default())?;
    let spools = find_spools(dir);
    if spools.is_empty() {
        println!(
            "Nothing to upload: no {} folder under {}",
            crate::tracking::SPOOL_DIR,
            dir.display()
        );
        return Ok(());
    }
    let report = sync_tree(dir, &tracker).with_context(|| {
        format!(
            "MLflow sync to {} stopped; what was not uploaded stays in the spool, run the \
             command again later",
            tracker.server()
        )
    })?;
    println!(
        "Uploaded {} runs from {} spool folders to {} ({} were already there).",
        report.uploaded,
        report.spools,
        tracker.server(),
        report.skipped
    );
    if !report.malformed.is_empty() {
        bail!(
            "{} spool files could not be read and were kept:\n  {}",
            report.malformed.len(),
            report.malformed.join("\n  ")
        );
    }
    Ok(())
}
