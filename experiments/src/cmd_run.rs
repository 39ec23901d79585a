//! `nimbusguard run`: writes the outputs of a [`crate::runner::run`] to the output folder.
//! A result already computed is written before anything that may fail after it (plots), so a
//! late failure never loses it.

use std::path::Path;

use anyhow::{Context, Result};

use crate::config::{AgentKind, ExperimentConfig};
use crate::records::{write_episodes_csv, write_timeseries_csv, write_training_csv};
use crate::report::{render_markdown, summarize, write_summary, SummaryJson};
use crate::runner::{out_dir, run_with, traffic, RunOutput, RUN_ENV_ID};

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
    check_out_dir(&dir, config)?;
    // Training and evaluation run before the folder is touched too: what fails only there (a
    // forecaster that needs a longer training window, a Q-table too large) leaves an earlier
    // run's outputs alone. The results are then written at once.
    let output = run_with(&cfg, traffic, threads)?;
    let notes = vec![format!(
        "Wall time {:.1} s.",
        started.elapsed().as_secs_f64()
    )];
    write_results(&dir, &cfg, config, &output, &notes)?;
    // MLflow mirror (if MLFLOW_TRACKING_URI is set); never fails the run.
    crate::tracking::mirror_results(&dir, None);
    Ok(dir)
}

/// Writes every output of `output` (a run of `cfg`, loaded from `config`) under `dir`: the
/// resolved config, `episodes.csv`, `timeseries.csv`, `training.csv` (and the same tables as
/// `.parquet`, [`crate::tables`]), `summary.json`,
/// `summary.md` (with `extra_notes` after the run's own notes), trained policies and, if
/// `output.plots`, the plots. Outputs of an earlier run in `dir` are replaced; nothing else
/// there is touched. Results are written before the plots, so a plot that fails loses nothing.
/// Returns the summary.
///
/// # Errors
/// `dir` cannot be written; a plot cannot be drawn.
pub fn write_results(
    dir: &Path,
    cfg: &ExperimentConfig,
    config: &Path,
    output: &RunOutput,
    extra_notes: &[String],
) -> Result<SummaryJson> {
    prepare_out_dir(dir)?;
    let mut written = cfg.clone();
    if let Some(t) = cfg.workload.trace.as_ref().filter(|t| t.is_relative()) {
        let base = crate::config::base_dir(cfg, config);
        if base != Path::new(".") {
            written.workload.trace = Some(base.join(t));
        }
    }
    let resolved = toml::to_string_pretty(&written).context("cannot render the resolved config")?;
    std::fs::write(dir.join("config.toml"), resolved)
        .with_context(|| format!("cannot write {}", dir.join("config.toml").display()))?;
    write_episodes_csv(dir.join("episodes.csv"), &output.episodes)?;
    write_timeseries_csv(dir.join("timeseries.csv"), &output.timeseries)?;
    write_training_csv(dir.join("training.csv"), &output.training)?;
    crate::tables::write_tables(dir, &output.episodes, &output.timeseries, &output.training)?;
    let trace = cfg.workload.trace.as_ref().map_or_else(
        || "<pattern>".to_string(),
        |t| {
            t.file_name()
                .map_or_else(|| t.display().to_string(), |f| f.to_string_lossy().into())
        },
    );
    let mut summary = summarize(
        &cfg.experiment,
        RUN_ENV_ID,
        &trace,
        &output.episodes,
        &cfg.evaluation.baseline,
    );
    if let Some(oracle) = cfg.agents.iter().find(|a| a.is_realistic_oracle()) {
        // The HPA of the gap: the baseline if it is one, else the first hpa agent.
        let hpa = cfg
            .agents
            .iter()
            .filter(|a| a.kind == AgentKind::Hpa)
            .min_by_key(|a| a.name != cfg.evaluation.baseline)
            .map(|a| a.name.as_str());
        crate::bounds::add_bounds(&mut summary, &output.episodes, &oracle.name, hpa);
    }
    let mut notes = vec![
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
    ];
    notes.extend(extra_notes.iter().cloned());
    if cfg.service.mode == sim::ServiceMode::Request
        && cfg.agents.iter().any(|a| a.kind == AgentKind::Oracle)
    {
        let note = "`service.mode = request`: the oracle sizes by the offered rate alone (it \
                    cannot see arrival times, and each tick's p95 is a sample quantile), so it is \
                    an approximate bound here and can miss the SLO; it is exact in `fluid` mode.";
        tracing::warn!("{note}");
        notes.insert(0, note.to_string());
    }
    let md = render_markdown(&summary, &notes);
    write_summary(dir, &summary, &md)?;
    for (name, policy) in &output.trained.policies {
        policy.save(&dir.join("policies"), name)?;
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
        crate::cost_slo_plot::plot_cost_slo(plots.join("cost_slo.png"), &summary)?;
    }
    Ok(summary)
}

/// The files a run writes at the top of its folder, and the plots it draws; only these (and
/// `policies/*.json`, `policies/*.dqn/`) are removed from a reused output folder.
const OUTPUTS: [&str; 13] = [
    "config.toml",
    "episodes.csv",
    "timeseries.csv",
    "training.csv",
    "episodes.parquet",
    "timeseries.parquet",
    "training.parquet",
    "summary.json",
    "summary.md",
    "plots/load_and_replicas.png",
    "plots/latency.png",
    "plots/training_curve.png",
    "plots/cost_slo.png",
];

/// Refuses an output folder that is a file or whose `config.toml` is the config being run.
///
/// # Errors
/// One of those two cases.
fn check_out_dir(dir: &Path, config: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("--out {}: exists and is not a folder", dir.display());
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    if same(&dir.join("config.toml"), config) {
        anyhow::bail!(
            "--out {}: its config.toml is the config being run and would be overwritten; \
             choose another output folder",
            dir.display()
        );
    }
    Ok(())
}

/// Creates `dir` (with `policies/`), removing the outputs of an earlier run there and nothing
/// else, so no stale policy or plot survives next to new results.
///
/// # Errors
/// `dir` cannot be written.
fn prepare_out_dir(dir: &Path) -> Result<()> {
    let mut stale: Vec<std::path::PathBuf> = OUTPUTS.iter().map(|n| dir.join(n)).collect();
    if let Ok(entries) = std::fs::read_dir(dir.join("policies")) {
        stale.extend(
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json")),
        );
    }
    // A saved DQN is a folder `<name>.dqn/` of our two files.
    let mut dqn_dirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("policies")) {
        for d in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if d.is_dir() && d.extension().is_some_and(|x| x == "dqn") {
                stale.push(d.join("dqn.json"));
                stale.push(d.join("model.bpk"));
                dqn_dirs.push(d);
            }
        }
    }
    for p in stale.iter().filter(|p| p.is_file()) {
        std::fs::remove_file(p)
            .with_context(|| format!("cannot remove the earlier output {}", p.display()))?;
    }
    for d in dqn_dirs {
        // Only if nothing else was put there.
        let _ = std::fs::remove_dir(d);
    }
    std::fs::create_dir_all(dir.join("policies"))
        .with_context(|| format!("cannot create output folder {}", dir.display()))
}
