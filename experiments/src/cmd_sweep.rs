//! `nimbusguard sweep SWEEP.toml [--shard I/N] [--out DIR] [--threads N] [--merge]`: runs the
//! plan of a sweep file ([`crate::sweep_config`]) in parallel, one run per thread, resumably.
//!
//! Layout of the output folder (default `results/sweeps/<name>`):
//! - `sweep.json`: the plan (points, runs, overrides); rewritten by every invocation, identical
//!   for identical sweep files.
//! - `runs/<id>/`: one folder per finished run, as `nimbusguard run` writes it (plots off by
//!   default), plus `run.json` (the planned run). A run is written to `runs/<id>.partial/` and
//!   renamed when complete, so a folder `runs/<id>/` is always whole: an interrupted sweep
//!   resumes by skipping those, and nothing finished is lost or recomputed.
//! - `sweep_summary.json`, `sweep_summary.md`, `sweep_episodes.csv`
//!   ([`crate::sweep_summary`]): written when every run of the plan is present (an unsharded
//!   sweep, or `--merge` after the shards).
//!
//! `--shard I/N` runs the runs whose plan index is I modulo N; shards may share the output
//! folder (a shared volume) or write to their own and be merged with `--merge --from DIR...`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::sweep_config::{PlannedRun, SweepPlan};

/// Options of one `nimbusguard sweep` invocation.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// `--shard I/N`: this invocation runs shard I of N (0-based).
    pub shard: Option<(usize, usize)>,
    /// `--out`: output folder; default `results/sweeps/<name>`.
    pub out: Option<PathBuf>,
    /// `--threads`: concurrent runs (0 = all cores). Results do not depend on it.
    pub threads: usize,
    /// `--merge`: run nothing; gather the runs (from `from`, then `out`) and write the summary.
    pub merge: bool,
    /// `--from`: shard output folders whose runs `--merge` copies into `out`.
    pub from: Vec<PathBuf>,
}

/// What an invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepOutcome {
    /// The output folder.
    pub dir: PathBuf,
    /// Runs of this invocation's share of the plan (all runs without `--shard`).
    pub planned: usize,
    /// Runs skipped because their results already existed.
    pub skipped: usize,
    /// Runs computed now.
    pub ran: usize,
    /// Whether the sweep summary was written (every run of the plan present).
    pub summarized: bool,
}

/// The `run.json` of a finished run: the planned run and the sweep it belongs to.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunMarker {
    /// Sweep name.
    pub sweep: String,
    /// The run as planned.
    pub run: PlannedRun,
    /// The run's [`crate::sweep_config::config_fingerprint`]: a run whose base config (or
    /// anything else in its config) changed since is not taken as done. Absent in runs written
    /// before it existed (then only the name and overrides are compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_xxh3: Option<String>,
}

/// The default output folder of a sweep.
pub fn default_out(plan: &SweepPlan) -> PathBuf {
    PathBuf::from("results").join("sweeps").join(&plan.name)
}

/// Runs (or merges) the sweep at `path`.
///
/// # Errors
/// Errors of [`SweepPlan::load`] (before anything runs); a `runs/<id>/` folder that belongs to
/// another plan (different overrides: use another `--out`); I/O errors; runs that failed (each
/// named; the others are kept); `--merge` with runs missing.
pub fn execute(path: &Path, opts: &SweepOptions) -> Result<SweepOutcome> {
    if opts.threads > crate::cmd_run::MAX_THREADS {
        bail!(
            "--threads: expected 0 (all cores) to {}, got {}",
            crate::cmd_run::MAX_THREADS,
            opts.threads
        );
    }
    if opts.merge && opts.shard.is_some() {
        bail!("--merge gathers all shards; it takes no --shard");
    }
    if !opts.from.is_empty() && !opts.merge {
        bail!("--from is only used with --merge");
    }
    let plan = SweepPlan::load(path)?;
    let dir = opts.out.clone().unwrap_or_else(|| default_out(&plan));
    if dir.exists() && !dir.is_dir() {
        bail!("--out {}: exists and is not a folder", dir.display());
    }
    let runs_dir = dir.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("cannot create {}", runs_dir.display()))?;

    if opts.merge {
        for from in &opts.from {
            gather(&plan, from, &runs_dir)?;
        }
        let missing: Vec<&str> = plan
            .runs
            .iter()
            .filter(|r| !is_done(&plan, &runs_dir, r).unwrap_or(false))
            .map(|r| r.id.as_str())
            .collect();
        if !missing.is_empty() {
            bail!(
                "--merge: {} of {} runs missing in {} (first: {}); run the shards that hold them",
                missing.len(),
                plan.runs.len(),
                runs_dir.display(),
                missing[..missing.len().min(5)].join(", ")
            );
        }
        write_plan(&dir, &plan)?;
        crate::sweep_summary::write(&dir, &plan)?;
        return Ok(SweepOutcome {
            dir,
            planned: plan.runs.len(),
            skipped: plan.runs.len(),
            ran: 0,
            summarized: true,
        });
    }

    let mine: Vec<usize> = match opts.shard {
        Some((i, n)) => plan.shard(i, n),
        None => (0..plan.runs.len()).collect(),
    };
    let mut todo = Vec::new();
    for &i in &mine {
        if !is_done(&plan, &runs_dir, &plan.runs[i])? {
            todo.push(i);
        }
    }
    let skipped = mine.len() - todo.len();
    // Only now, with every run folder there checked against this plan: a refused plan leaves
    // the folder as it was.
    write_plan(&dir, &plan)?;
    if skipped > 0 {
        eprintln!(
            "nimbusguard sweep: {skipped} of {} runs already done in {}; running {}",
            mine.len(),
            runs_dir.display(),
            todo.len()
        );
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .context("cannot start the thread pool")?;
    let bar = ProgressBar::new(todo.len() as u64).with_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} runs ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("sweep");
    crate::runner::set_quiet(true);
    let finished = AtomicUsize::new(0);
    let mlflow_down = AtomicBool::new(false);
    // One rayon job per run (`with_max_len(1)`): rayon's adaptive splitting stops at blocks of
    // several runs that a thread then works through without splitting further, so with runs of
    // unequal cost one thread sat idle for seconds at the end (bench-40: 1.6x on 2 threads).
    let results: Vec<(usize, Result<()>)> = pool.install(|| {
        todo.par_iter()
            .with_max_len(1)
            .map(|&i| {
                let r = run_one(&plan, i, &runs_dir, &mlflow_down);
                bar.inc(1);
                if r.is_ok() && !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    let n = finished.fetch_add(1, Ordering::Relaxed) + 1;
                    eprintln!(
                        "nimbusguard sweep: run {} done ({n}/{})",
                        plan.runs[i].id,
                        todo.len()
                    );
                }
                (i, r)
            })
            .collect()
    });
    crate::runner::set_quiet(false);
    bar.finish_and_clear();
    if mlflow_down.load(Ordering::Relaxed) {
        eprintln!(
            "warning: MLflow was unreachable during this sweep: the runs' MLflow records wait in \
             their mlflow-spool/ folders; upload them with `nimbusguard mlflow sync {}`",
            dir.display()
        );
    }
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(i, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{}: {e:#}", plan.runs[*i].id))
        })
        .collect();
    let ran = results.len() - failed.len();
    if !failed.is_empty() {
        bail!(
            "{} of {} runs failed (the {ran} others are saved; re-run to retry the failed \
             ones):\n  {}",
            failed.len(),
            results.len(),
            failed.join("\n  ")
        );
    }
    let all_done = plan
        .runs
        .iter()
        .map(|r| is_done(&plan, &runs_dir, r))
        .collect::<Result<Vec<bool>>>()?
        .into_iter()
        .all(|d| d);
    if all_done {
        crate::sweep_summary::write(&dir, &plan)?;
    }
    Ok(SweepOutcome {
        dir,
        planned: mine.len(),
        skipped,
        ran,
        summarized: all_done,
    })
}

/// Writes `sweep.json`: the plan, for the record and for tools that read the runs.
fn write_plan(dir: &Path, plan: &SweepPlan) -> Result<()> {
    let doc = serde_json::json!({
        "schema": "nimbusguard.sweep-plan/v1",
        "sweep": plan.name,
        "points": plan.points,
        "runs": plan.runs,
    });
    let text = serde_json::to_string_pretty(&doc).context("cannot render sweep.json")?;
    crate::sweep_summary::write_atomic(&dir.join("sweep.json"), (text + "\n").as_bytes())
}

/// Whether `run` is finished in `runs_dir`.
///
/// # Errors
/// `runs/<id>/` holds a run of another plan (its `run.json` differs) or no readable `run.json`.
fn is_done(plan: &SweepPlan, runs_dir: &Path, run: &PlannedRun) -> Result<bool> {
    let d = runs_dir.join(&run.id);
    if !d.exists() {
        return Ok(false);
    }
    let marker = d.join("run.json");
    let text = std::fs::read_to_string(&marker).with_context(|| {
        format!(
            "{} exists but has no readable run.json; it is not a finished run of this sweep \
             (remove it or use another --out)",
            d.display()
        )
    })?;
    let found: RunMarker =
        serde_json::from_str(&text).with_context(|| format!("malformed {}", marker.display()))?;
    let other = |what: String| {
        anyhow!(
            "{} holds run {} of another plan: {what}; use another --out (or remove the folder \
             to recompute it)",
            d.display(),
            found.run.id
        )
    };
    if found.sweep != plan.name {
        return Err(other(format!(
            "it belongs to sweep {:?}, this is sweep {:?} (a sweep is named by its `name`, else \
             its file's stem)",
            found.sweep, plan.name
        )));
    }
    if found.run != *run {
        return Err(other(format!(
            "its overrides are {:?}, this plan's are {:?} (the sweep file changed)",
            found.run.overrides, run.overrides
        )));
    }
    let want = &plan.fingerprints[run.index];
    if let Some(f) = found.config_xxh3.as_ref().filter(|f| *f != want) {
        return Err(other(format!(
            "its config fingerprint is {f}, this plan's is {want}: the base config (or a file \
             it names) changed since it ran"
        )));
    }
    Ok(true)
}

/// Mirrors a finished run's folder to MLflow when `MLFLOW_TRACKING_URI` is set, nested under a
/// parent run for the run (its point on its trace; key `sweep/<name>/<plan hash>/<run id>`,
/// params the point's overrides). Once MLflow has failed in this sweep (`down`), later runs go
/// straight to their spool without waiting on retries. Never fails: results are on disk.
fn mirror(plan: &SweepPlan, run: &PlannedRun, dir: &Path, down: &AtomicBool) {
    use crate::tracking::{MirrorOutcome, ParentRun};
    let point = plan.points.iter().find(|p| p.id == run.point);
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("nimbusguard.sweep".to_string(), plan.name.clone());
    tags.insert("nimbusguard.sweep_point".to_string(), run.point.clone());
    tags.insert("nimbusguard.sweep_run".to_string(), run.id.clone());
    let parent = ParentRun {
        key: format!("sweep/{}/{:016x}/{}", plan.name, plan_hash(plan), run.id),
        name: format!("{} {}", plan.name, run.id),
        params: point.map(|p| p.overrides.clone()).unwrap_or_default(),
        tags,
        parent_key: None,
    };
    if down.load(Ordering::Relaxed) {
        crate::tracking::spool_results(dir, Some(&parent));
        return;
    }
    let outcome = crate::tracking::mirror_results(dir, Some(&parent));
    if matches!(
        outcome,
        MirrorOutcome::Spooled { .. } | MirrorOutcome::Failed { .. }
    ) {
        down.store(true, Ordering::Relaxed);
    }
}

/// A hash of the plan (its name, run ids and every run's config fingerprint), so MLflow keys
/// of two different sweeps of one name, or of one sweep after its base config changed, differ.
/// xxh3-64: the same on every machine and toolchain (the shards of one sweep agree).
fn plan_hash(plan: &SweepPlan) -> u64 {
    let mut text = plan.name.clone();
    for (r, f) in plan.runs.iter().zip(&plan.fingerprints) {
        text.push_str(&format!("\n{} {f}", r.id));
    }
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// Runs plan run `i` into `runs/<id>.partial/` (mirrored to MLflow if configured), then
/// renames it to `runs/<id>/`.
fn run_one(plan: &SweepPlan, i: usize, runs_dir: &Path, mlflow_down: &AtomicBool) -> Result<()> {
    let run = &plan.runs[i];
    let cfg = &plan.configs[i];
    let traffic = crate::runner::traffic(cfg, &plan.base)?;
    let output = crate::runner::run_with(cfg, traffic, 1)?;
    let partial = runs_dir.join(format!("{}.partial", run.id));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    crate::cmd_run::write_results(&partial, cfg, &plan.base, &output, &[])?;
    // The MLflow mirror goes before the run is marked done: a sweep killed in between redoes
    // the run and logs it again under the same keys, which MLflow then skips.
    mirror(plan, run, &partial, mlflow_down);
    let marker = RunMarker {
        sweep: plan.name.clone(),
        run: run.clone(),
        config_xxh3: Some(plan.fingerprints[i].clone()),
    };
    let text = serde_json::to_string_pretty(&marker).context("cannot render run.json")?;
    std::fs::write(partial.join("run.json"), text + "\n")
        .with_context(|| format!("cannot write {}", partial.join("run.json").display()))?;
    let done = runs_dir.join(&run.id);
    std::fs::rename(&partial, &done)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), done.display()))
}

/// Copies the finished runs of `plan` found in `from/runs/` into `runs_dir` (those not there
/// yet; the copies go through `.partial` folders too).
fn gather(plan: &SweepPlan, from: &Path, runs_dir: &Path) -> Result<()> {
    let src_runs = from.join("runs");
    if !src_runs.is_dir() {
        bail!(
            "--from {}: no runs/ folder; expected the --out folder of a sweep shard",
            from.display()
        );
    }
    for run in &plan.runs {
        let src = src_runs.join(&run.id);
        if !src.is_dir() || is_done(plan, runs_dir, run)? {
            continue;
        }
        if !is_done(plan, &src_runs, run)? {
            continue;
        }
        let partial = runs_dir.join(format!("{}.partial", run.id));
        if partial.exists() {
            std::fs::remove_dir_all(&partial)
                .with_context(|| format!("cannot remove {}", partial.display()))?;
        }
        copy_dir(&src, &partial)?;
        std::fs::rename(&partial, runs_dir.join(&run.id))
            .with_context(|| format!("cannot rename {}", partial.display()))?;
    }
    Ok(())
}

fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("cannot create {}", dst.display()))?;
    for entry in std::fs::read_dir(src).with_context(|| format!("cannot read {}", src.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", src.display()))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        if from.is_dir() {
            copy_dir(&from, &to)?;
        } else {
            std::fs::copy(&from, &to)
                .map_err(|e| anyhow!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
        }
    }
    Ok(())
}
