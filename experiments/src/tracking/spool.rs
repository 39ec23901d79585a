//! The spool: runs that could not be logged wait on disk beside the results, and
//! `nimbusguard mlflow sync DIR` uploads them later.
//!
//! Layout of a spool folder (normally `<result dir>/mlflow-spool/`):
//!
//! ```text
//! <batch>/runs/0000.json   one RunLog per file (schema nimbusguard.mlflow-run/v1), in order
//! <batch>/files/...        copies of the artifacts, so a later run into the same result
//!                          folder cannot change what gets uploaded
//! ```
//!
//! `<batch>` is `<unix ms>-<pid>-<n>`, so batches sort in the order they were written. A batch
//! is written as `<batch>.partial` and renamed when complete; a `.partial` folder (a process
//! killed while spooling) is never uploaded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};

use super::run_log::{RunLog, RUN_LOG_SCHEMA};
use super::{now_ms, LogReport, Tracker, SPOOL_DIR};

/// A [`Tracker`] that writes runs into a spool folder, to be uploaded later by [`sync_tree`].
#[derive(Debug, Clone)]
pub struct FileTracker {
    dir: PathBuf,
}

impl FileTracker {
    /// A tracker spooling into `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> FileTracker {
        FileTracker { dir: dir.into() }
    }

    /// The spool folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Tracker for FileTracker {
    /// Writes `runs` as one batch, copying their artifacts. An empty `runs` writes nothing.
    fn log(&self, runs: &[RunLog]) -> Result<LogReport> {
        if !runs.is_empty() {
            write_batch(&self.dir, runs)?;
        }
        Ok(LogReport {
            logged: runs.len(),
            skipped: 0,
        })
    }
}

/// Writes `runs` into a new batch folder of `spool` and returns its path.
///
/// # Errors
/// A folder or file cannot be written, an artifact cannot be copied (named).
pub fn write_batch(spool: &Path, runs: &[RunLog]) -> Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "{:013}-{}-{}",
        now_ms(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let done = spool.join(&name);
    let tmp = spool.join(format!("{name}.partial"));
    std::fs::create_dir_all(tmp.join("runs"))
        .with_context(|| format!("cannot create spool folder {}", tmp.display()))?;
    // Each source file is copied once, under its artifact path (or a numbered folder when two
    // sources share an artifact path).
    let mut copied: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut taken: std::collections::HashSet<PathBuf> = Default::default();
    for (i, run) in runs.iter().enumerate() {
        let mut run = run.clone();
        for a in &mut run.artifacts {
            let rel = match copied.get(&a.local) {
                Some(rel) => rel.clone(),
                None => {
                    let mut rel = Path::new("files").join(&a.path);
                    let mut n = 0;
                    while taken.contains(&rel) {
                        n += 1;
                        rel = Path::new("files").join(n.to_string()).join(&a.path);
                    }
                    let to = tmp.join(&rel);
                    if let Some(parent) = to.parent() {
                        std::fs::create_dir_all(parent)
                            .with_context(|| format!("cannot create {}", parent.display()))?;
                    }
                    std::fs::copy(&a.local, &to).with_context(|| {
                        format!("cannot copy {} into the spool", a.local.display())
                    })?;
                    taken.insert(rel.clone());
                    copied.insert(a.local.clone(), rel.clone());
                    rel
                }
            };
            a.local = rel;
        }
        let path = tmp.join("runs").join(format!("{i:04}.json"));
        let json = serde_json::to_vec(&run).context("cannot serialize a run")?;
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    std::fs::rename(&tmp, &done)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), done.display()))?;
    Ok(done)
}

/// One batch folder of a spool, read back.
#[derive(Debug)]
pub struct SpoolBatch {
    /// The batch folder.
    pub dir: PathBuf,
    /// Its readable runs with their files, in order; artifact paths made absolute.
    pub runs: Vec<(PathBuf, RunLog)>,
    /// Files that could not be read, each with the reason.
    pub bad: Vec<String>,
}

/// Reads every complete batch of `spool` in the order written. A malformed run file is
/// reported in [`SpoolBatch::bad`] (named, with the reason) and left in place.
///
/// # Errors
/// `spool` or a batch folder cannot be listed.
pub fn read_spool(spool: &Path) -> Result<Vec<SpoolBatch>> {
    let mut batches: Vec<PathBuf> = list(spool)?
        .into_iter()
        .filter(|p| p.is_dir() && p.extension().is_none_or(|e| e != "partial"))
        .collect();
    batches.sort();
    let mut out = Vec::new();
    for dir in batches {
        let mut files: Vec<PathBuf> = list(&dir.join("runs"))?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        let mut runs = Vec::new();
        let mut bad = Vec::new();
        for f in files {
            match read_run(&f, &dir) {
                Ok(r) => runs.push((f, r)),
                Err(e) => bad.push(format!("{}: {e:#}", f.display())),
            }
        }
        out.push(SpoolBatch { dir, runs, bad });
    }
    Ok(out)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
}

/// A spooled run, its artifact paths resolved against `batch`.
fn read_run(path: &Path, batch: &Path) -> Result<RunLog> {
    let bytes = std::fs::read(path).context("cannot read")?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let mut run: RunLog = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| anyhow::anyhow!("not a spooled run: field {}: {}", e.path(), e.inner()))?;
    if run.schema != RUN_LOG_SCHEMA {
        anyhow::bail!(
            "schema {:?}, expected {RUN_LOG_SCHEMA:?} (written by another nimbusguard version?)",
            run.schema
        );
    }
    for a in &mut run.artifacts {
        if a.local.is_relative() {
            a.local = batch.join(&a.local);
        }
        if !a.local.is_file() {
            anyhow::bail!("artifact {} is missing ({})", a.path, a.local.display());
        }
    }
    Ok(run)
}

/// What [`sync_tree`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Spool folders found.
    pub spools: usize,
    /// Runs uploaded now.
    pub uploaded: usize,
    /// Runs found already in MLflow (an earlier upload that was cut short), removed from the
    /// spool too.
    pub skipped: usize,
    /// Spool files that could not be read (name and reason); they stay.
    pub malformed: Vec<String>,
}

/// The spool folders at or below `dir` (folders named [`SPOOL_DIR`]), shallowest first, so a
/// sweep's own run (spooled at its top) goes before the runs below it. Symbolic links are not
/// followed.
pub fn find_spools(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<(usize, PathBuf)>) {
        if dir.file_name().is_some_and(|n| n == SPOOL_DIR) {
            out.push((depth, dir.to_path_buf()));
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, 0, &mut out);
    out.sort();
    out.into_iter().map(|(_, p)| p).collect()
}

/// Uploads every spool at or below `dir` ([`find_spools`]) through `tracker`, batch by batch,
/// removing each batch once it is logged (and a spool folder once empty). Malformed files are
/// reported and kept, the rest is uploaded.
///
/// # Errors
/// The tracker fails (server unreachable, a request refused): the batch and everything after
/// it stay in the spool. A spool folder cannot be listed or cleaned up.
pub fn sync_tree(dir: &Path, tracker: &dyn Tracker) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    for spool in find_spools(dir) {
        report.spools += 1;
        for batch in read_spool(&spool)? {
            let runs: Vec<RunLog> = batch.runs.iter().map(|(_, r)| r.clone()).collect();
            let r = tracker
                .log(&runs)
                .with_context(|| format!("uploading {}", batch.dir.display()))?;
            report.uploaded += r.logged;
            report.skipped += r.skipped;
            if batch.bad.is_empty() {
                std::fs::remove_dir_all(&batch.dir)
                    .with_context(|| format!("cannot remove {}", batch.dir.display()))?;
            } else {
                for (f, _) in &batch.runs {
                    std::fs::remove_file(f)
                        .with_context(|| format!("cannot remove {}", f.display()))?;
                }
                report.malformed.extend(batch.bad);
            }
        }
        if list(&spool)?.is_empty() {
            std::fs::remove_dir(&spool)
                .with_context(|| format!("cannot remove {}", spool.display()))?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::super::run_log::Artifact;
    use super::super::NullTracker;
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("nimbusguard-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn spooled_runs_read_back_with_copied_artifacts() {
        let d = scratch("roundtrip");
        let cfg = d.join("config.toml");
        std::fs::write(&cfg, "experiment = \"x\"").unwrap();
        let mut a = RunLog::new("x", "x/1", "parent", 5);
        a.artifacts.push(Artifact {
            local: cfg.clone(),
            path: "config.toml".into(),
        });
        a.metric("pod_hours", f64::NAN, 0);
        let mut b = RunLog::new("x", "x/1/hpa", "hpa", 5);
        b.parent_key = Some("x/1".into());
        b.artifacts = a.artifacts.clone();
        let spool = d.join(SPOOL_DIR);
        FileTracker::new(&spool)
            .log(&[a.clone(), b.clone()])
            .unwrap();
        // The copy is uploaded, not the result folder's file, which a later run may replace.
        std::fs::write(&cfg, "experiment = \"changed\"").unwrap();
        let batches = read_spool(&spool).unwrap();
        assert_eq!(batches.len(), 1);
        let runs = &batches[0].runs;
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].1.parent_key.as_deref(), Some("x/1"));
        assert!(runs[0].1.metrics[0].value.is_nan());
        let copy = &runs[0].1.artifacts[0].local;
        assert_eq!(copy, &runs[1].1.artifacts[0].local, "one copy per file");
        assert_eq!(std::fs::read_to_string(copy).unwrap(), "experiment = \"x\"");
        assert!(batches[0].bad.is_empty());
    }

    #[test]
    fn malformed_files_are_named_and_kept_the_rest_syncs() {
        let d = scratch("malformed");
        let spool = d.join("point-1").join(SPOOL_DIR);
        FileTracker::new(&spool)
            .log(&[RunLog::new("x", "k", "n", 0)])
            .unwrap();
        let batch = read_spool(&spool).unwrap().remove(0).dir;
        let bad = batch.join("runs").join("0001.json");
        std::fs::write(&bad, "{\"schema\": 3}").unwrap();
        // An interrupted spool write is ignored.
        std::fs::create_dir_all(spool.join("123-1-0.partial/runs")).unwrap();
        let report = sync_tree(&d, &NullTracker).unwrap();
        assert_eq!(report.spools, 1);
        assert_eq!(report.uploaded, 1);
        assert_eq!(report.malformed.len(), 1);
        assert!(
            report.malformed[0].contains("0001.json"),
            "{:?}",
            report.malformed
        );
        assert!(
            report.malformed[0].contains("schema"),
            "{:?}",
            report.malformed
        );
        assert!(bad.is_file());
        assert!(!batch.join("runs").join("0000.json").exists());
    }

    #[test]
    fn a_failed_upload_keeps_the_spool_and_spools_are_found_shallowest_first() {
        struct Down;
        impl Tracker for Down {
            fn log(&self, _: &[RunLog]) -> Result<LogReport> {
                anyhow::bail!("server down")
            }
        }
        let d = scratch("down");
        for sub in ["b/c", "", "a"] {
            FileTracker::new(d.join(sub).join(SPOOL_DIR))
                .log(&[RunLog::new("x", sub, "n", 0)])
                .unwrap();
        }
        let found = find_spools(&d);
        assert_eq!(
            found,
            [
                d.join(SPOOL_DIR),
                d.join("a").join(SPOOL_DIR),
                d.join("b/c").join(SPOOL_DIR)
            ]
        );
        let e = sync_tree(&d, &Down).unwrap_err();
        assert!(format!("{e:#}").contains("server down"));
        assert_eq!(read_spool(&d.join(SPOOL_DIR)).unwrap().len(), 1);
        let ok = sync_tree(&d, &NullTracker).unwrap();
        assert_eq!((ok.spools, ok.uploaded), (3, 3));
        assert!(find_spools(&d).is_empty(), "empty spools are removed");
    }
}
