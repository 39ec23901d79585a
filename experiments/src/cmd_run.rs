//! `nimbusguard run`: writes the outputs of a [`crate::runner::run`] to the output folder.
//! A result already computed is written before anything that may fail after it (plots), so a
//! late failure never loses it.

use std::path::Path;

use anyhow::{Context, Result};

use crate::config::ExperimentConfig;
use crate::records::{write_episodes_csv, write_timeseries_csv, write_training_csv};
use crate::report::{render_markdown, summarize, write_summary};
use crate::runner::{out_dir, run_with, traffic, RUN_ENV_ID};

/// The most worker threads `--threads` accepts (each run is single-threaded; more threads
/// than runs or cores only cost memory).
pub const MAX_THREADS: usize = 1024;

/// Runs the experiment of `config` (with `overrides`) and writes everything under `out`
/// (default `results/<experiment>`). Returns the output folder.
///
/// # Errors
/// Config, trace or env errors (file, line or field named); I/O errors writing outputs.
pub fn execute(
    config: &Path,
    overrides: &[String],
    out: Option<&Path>,
    threads: usize,
) -> Result<std::path::PathBuf> {
    let started = std::time::Instant::now();
    if threads > MAX_THREADS {
        anyhow::bail!("--threads: expected 0 (all cores) to {MAX_THREADS}, got {threads}");
    }
    let config = &crate::config::locate_config(config);
    let cfg = ExperimentConfig::load(config, overrides)?;
    // Everything that can be checked is checked before the output folder is touched, so a
    // failed run never alters the results of an earlier one.
    let traffic = traffic(&cfg, config)?;
    let dir = out_dir(&cfg, out);
    prepare_out_dir(&dir)?;
    let resolved = toml::to_string_pretty(&cfg).context("cannot render the resolved config")?;
    std::fs::write(dir.join("config.toml"), resolved)
        .with_context(|| format!("cannot write {}", dir.join("config.toml").display()))?;
    let output = run_with(&cfg, traffic, threads)?;
    write_episodes_csv(dir.join("episodes.csv"), &output.episodes)?;
    write_timeseries_csv(dir.join("timeseries.csv"), &output.timeseries)?;
    write_training_csv(dir.join("training.csv"), &output.training)?;
    let trace = cfg.workload.trace.as_ref().map_or_else(
        || "<pattern>".to_string(),
        |t| {
            t.file_name()
                .map_or_else(|| t.display().to_string(), |f| f.to_string_lossy().into())
        },
    );
    let summary = summarize(
        &cfg.experiment,
        RUN_ENV_ID,
        &trace,
        &output.episodes,
        &cfg.evaluation.baseline,
    );
    let notes = vec![
        format!(
            "Trace `{trace}`, peak {:.1} req/s; training window {:.1} h, evaluation window {:.1} h; {} seeds per agent; env `{RUN_ENV_ID}` ({:?} reward, decision every {} s).",
            output.peak_rps,
            output.windows_s.0 / 3600.0,
            output.windows_s.1 / 3600.0,
            cfg.evaluation.seeds,
            cfg.env.reward,
            cfg.env.decision_interval_s,
        ),
        format!(
            "SLO: p95 latency <= {} ms and drops <= {}% per {} s tick; service model `{:?}`.",
            cfg.service.slo_p95_ms,
            100.0 * cfg.service.slo_max_dropped_ratio,
            cfg.service.tick_s,
            cfg.service.mode,
        ),
        format!("Wall time {:.1} s.", started.elapsed().as_secs_f64()),
    ];
    let md = render_markdown(&summary, &notes);
    write_summary(&dir, &summary, &md)?;
    for (name, q) in &output.trained {
        let p = dir.join("policies").join(format!("{name}.json"));
        q.save(&p)
            .with_context(|| format!("cannot save policy {}", p.display()))?;
    }
    if cfg.output.plots {
        let plots = dir.join("plots");
        std::fs::create_dir_all(&plots)
            .with_context(|| format!("cannot create {}", plots.display()))?;
        let seed = cfg.evaluation.first_seed;
        if !output.timeseries.is_empty() {
            crate::plots::plot_load_and_replicas(
                plots.join("load_and_replicas.png"),
                &output.timeseries,
                seed,
            )?;
            crate::plots::plot_latency(
                plots.join("latency.png"),
                &output.timeseries,
                seed,
                cfg.service.slo_p95_ms,
            )?;
        }
        if !output.training.is_empty() {
            crate::plots::plot_training_curve(plots.join("training_curve.png"), &output.training)?;
        }
    }
    Ok(dir)
}

/// The files and folders a run writes; only these are removed from a reused output folder.
const OUTPUTS: [&str; 8] = [
    "config.toml",
    "episodes.csv",
    "timeseries.csv",
    "training.csv",
    "summary.json",
    "summary.md",
    "plots",
    "policies",
];

/// Creates `dir` (with `policies/`), removing the outputs of an earlier run there (and nothing
/// else), so no stale policy or plot survives next to new results.
fn prepare_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("--out {}: exists and is not a folder", dir.display());
    }
    for name in OUTPUTS {
        let p = dir.join(name);
        let removed = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else if p.exists() {
            std::fs::remove_file(&p)
        } else {
            Ok(())
        };
        removed.with_context(|| format!("cannot remove the earlier output {}", p.display()))?;
    }
    std::fs::create_dir_all(dir.join("policies"))
        .with_context(|| format!("cannot create output folder {}", dir.display()))
}
