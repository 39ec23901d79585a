//! `nimbusguard run`: train what needs training on the training window, then evaluate every
//! agent on the evaluation window for every seed, in parallel (rayon, order-preserving, so the
//! results do not depend on the thread count), and write the outputs of DESIGN.md section 6.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use agents::autoscaler::{Autoscaler, PolicyAutoscaler};
use agents::baselines::{StaticReplicas, ThresholdRule};
use agents::hpa::Hpa;
use agents::tabular_q::QLearning;
use envs::{Env, ScalingEnv, ScalingEnvConfig, ENV_ID};
use sim::accounting::TickAggregate;
use sim::trace::RateSeries;

use crate::config::{base_dir, kebab, AgentKind, AgentSpec, ExperimentConfig};
use crate::records::{EpisodeMetrics, EpisodeRecord, TickRecord, TrainingPoint};

/// Trained agents by name (only learned kinds appear).
pub type Trained = Vec<(String, QLearning)>;

/// Everything a run produced, in memory.
#[derive(Debug)]
pub struct RunOutput {
    /// One record per agent x seed, agents in config order, seeds ascending.
    pub episodes: Vec<EpisodeRecord>,
    /// Time series of the first `output.timeseries_seeds` seeds, one row per
    /// `output.timeseries_interval_s` (default: per tick).
    pub timeseries: Vec<TickRecord>,
    /// Training curves of learned agents.
    pub training: Vec<TrainingPoint>,
    /// Trained policies.
    pub trained: Trained,
    /// Peak of the workload (requests per second) the observation is scaled by.
    pub peak_rps: f64,
    /// Duration of the training and evaluation windows, seconds.
    pub windows_s: (f64, f64),
}

/// The traffic windows of a config.
pub struct Traffic {
    /// Training window.
    pub train: Arc<RateSeries>,
    /// Evaluation window.
    pub evaluation: Arc<RateSeries>,
    /// Largest rate of either window, requests per second.
    pub peak_rps: f64,
}

/// Loads and windows the config's trace or pattern.
///
/// # Errors
/// The trace cannot be read or is malformed (file and line named), or a window is empty.
pub fn traffic(cfg: &ExperimentConfig, config_path: &Path) -> Result<Traffic> {
    let base = base_dir(cfg, config_path);
    let w = cfg
        .workload
        .build(&base, cfg.training.seed)
        .with_context(|| "while building the workload (section [workload])".to_string())?;
    if let (Some(want), Some(t)) = (cfg.workload.duration_s, cfg.workload.trace.as_ref()) {
        let got = w.train.duration_s() + w.evaluation.duration_s();
        if got * cfg.workload.time_compression < 0.99 * want {
            tracing::warn!(
                "workload.duration_s asks for {want} s but {} holds only {got:.0} s from \
                 workload.start_s; using what is there",
                t.display()
            );
        }
    }
    if w.evaluation.duration_s() < 10.0 * cfg.env.decision_interval_s {
        tracing::warn!(
            "the evaluation window is only {:.0} s ({} decisions): results will mean little",
            w.evaluation.duration_s(),
            (w.evaluation.duration_s() / cfg.env.decision_interval_s).floor()
        );
    }
    let peak = w.train.peak().max(w.evaluation.peak()).max(1e-9);
    Ok(Traffic {
        train: Arc::new(w.train),
        evaluation: Arc::new(w.evaluation),
        peak_rps: peak,
    })
}

fn env_for(
    cfg: &ExperimentConfig,
    spec: &AgentSpec,
    traffic: Arc<RateSeries>,
    peak: f64,
) -> Result<ScalingEnv> {
    let mut env_cfg = ScalingEnvConfig {
        cooldown_s: cfg.cooldown_s(spec),
        ..cfg.env.clone()
    };
    if let Some(h) = &spec.hpa {
        // The HPA decides once per sync period.
        env_cfg.decision_interval_s = h.sync_period_s as f64;
    }
    ScalingEnv::new(
        env_cfg,
        cfg.scenario(),
        traffic,
        cfg.workload.arrivals,
        peak,
    )
    .with_context(|| format!("while building the env for agent {}", spec.name))
}

/// Trains every learned agent on the training window, one agent per thread (each training
/// run is single-threaded and deterministic, so the result does not depend on `threads`).
///
/// # Errors
/// An env cannot be built or training fails.
pub fn train(
    cfg: &ExperimentConfig,
    t: &Traffic,
    pool: &rayon::ThreadPool,
) -> Result<(Trained, Vec<TrainingPoint>)> {
    let specs: Vec<&AgentSpec> = cfg
        .agents
        .iter()
        .filter(|a| a.kind == AgentKind::QLearning)
        .collect();
    if !specs.is_empty() {
        note_progress(&format!(
            "training {} agent(s) on the training window",
            specs.len()
        ));
    }
    let bars = indicatif::MultiProgress::new();
    let results: Vec<Result<(QLearning, Vec<TrainingPoint>)>> = pool.install(|| {
        specs
            .par_iter()
            .map(|spec| train_one(cfg, t, spec, &bars))
            .collect()
    });
    let mut trained = Vec::new();
    let mut points = Vec::new();
    for (spec, r) in specs.iter().zip(results) {
        let (agent, p) = r?;
        trained.push((spec.name.clone(), agent));
        points.extend(p);
    }
    Ok((trained, points))
}

fn train_one(
    cfg: &ExperimentConfig,
    t: &Traffic,
    spec: &AgentSpec,
    bars: &indicatif::MultiProgress,
) -> Result<(QLearning, Vec<TrainingPoint>)> {
    let mut env = env_for(cfg, spec, t.train.clone(), t.peak_rps)?;
    let qc = spec.q_learning.clone().unwrap_or_default();
    tracing::info!(agent = %spec.name, config = ?qc, "training q-learning");
    let mut agent = QLearning::new(qc.clone(), env.action_space().n)
        .map_err(|e| anyhow!("agent {}: {e}", spec.name))?;
    let bar = bars.add(
        ProgressBar::new(qc.episodes as u64)
            .with_style(style())
            .with_message(format!("train {}", spec.name)),
    );
    let mut points = Vec::with_capacity(qc.episodes);
    agent
        .train(&mut env, cfg.training.seed, |log| {
            points.push(TrainingPoint {
                agent: spec.name.clone(),
                episode: log.episode as u64,
                return_: log.return_,
                epsilon: log.epsilon,
            });
            bar.inc(1);
        })
        .map_err(|e| anyhow!("training agent {}: {e}", spec.name))?;
    bar.finish_and_clear();
    Ok((agent, points))
}

fn build_agent(
    cfg: &ExperimentConfig,
    spec: &AgentSpec,
    trained: &Trained,
    env: &ScalingEnv,
) -> Result<Box<dyn Autoscaler>> {
    Ok(match spec.kind {
        AgentKind::Hpa => Box::new(
            Hpa::new(cfg.hpa_config(spec)).map_err(|e| anyhow!("agent {}: {e}", spec.name))?,
        ),
        AgentKind::Static => Box::new(StaticReplicas::new(
            spec.replicas.unwrap_or(cfg.deployment.initial_replicas),
        )),
        AgentKind::Threshold => Box::new(
            ThresholdRule::new(spec.threshold.clone().unwrap_or_default())
                .map_err(|e| anyhow!("agent {}: {e}", spec.name))?,
        ),
        AgentKind::QLearning => {
            let q = trained
                .iter()
                .find(|(n, _)| n == &spec.name)
                .map(|(_, q)| q.clone())
                .ok_or_else(|| anyhow!("agent {} was not trained", spec.name))?;
            Box::new(PolicyAutoscaler::new(
                q,
                env.encoder().clone(),
                env.action_map(),
                spec.name.clone(),
            ))
        }
    })
}

/// One `timeseries.csv` row from the ticks it aggregates.
fn series_row(a: &TickAggregate, agent: &str, seed: u64, tick_s: f64) -> TickRecord {
    let dur = f64::from(a.ticks.max(1)) * tick_s;
    let [p50, p95, p99] = a.latency_ms();
    TickRecord {
        agent: agent.to_string(),
        seed,
        time_s: a.last.time_s,
        arrival_rps: a.arrivals / dur,
        served_rps: a.served / dur,
        dropped_rps: a.dropped / dur,
        backlog: a.last.backlog,
        desired_replicas: a.last.desired_replicas,
        ready_replicas: a.last.ready_replicas,
        pending_replicas: a.last.pending_replicas,
        cpu_utilization: a.utilization_mean(),
        p50_latency_ms: p50,
        p95_latency_ms: p95,
        p99_latency_ms: p99,
        slo_violated: a.slo_violated,
    }
}

/// Runs one evaluation episode of `spec` on `seed`.
///
/// # Errors
/// The env or the agent cannot be built.
pub fn evaluate(
    cfg: &ExperimentConfig,
    spec: &AgentSpec,
    trained: &Trained,
    t: &Traffic,
    seed: u64,
    keep_series: bool,
) -> Result<(EpisodeRecord, Vec<TickRecord>)> {
    let mut env = env_for(cfg, spec, t.evaluation.clone(), t.peak_rps)?;
    let mut agent = build_agent(cfg, spec, trained, &env)?;
    agent.reset();
    env.reset(Some(seed));
    let tick_s = cfg.service.tick_s;
    let row_ticks = cfg
        .output
        .timeseries_interval_s
        .map_or(1, |i| (i / tick_s).round().max(1.0) as u32);
    let mut series = Vec::new();
    let mut agg = TickAggregate::default();
    let mut ret = 0.0;
    loop {
        let decision = agent.decide(env.cluster_state());
        let step = env.step_desired(decision.desired_replicas, |tk| {
            if keep_series {
                agg.add(tk);
                if agg.ticks == row_ticks {
                    series.push(series_row(&agg, &spec.name, seed, tick_s));
                    agg = TickAggregate::default();
                }
            }
        });
        ret += step.reward;
        if step.is_done() {
            break;
        }
    }
    if agg.ticks > 0 {
        series.push(series_row(&agg, &spec.name, seed, tick_s));
    }
    let sim = env.simulation().expect("reset builds the simulation");
    let s = sim.summary();
    let stats = sim.episode_stats();
    let record = EpisodeRecord {
        agent: spec.name.clone(),
        kind: kebab(spec.kind).to_string(),
        seed,
        metrics: EpisodeMetrics {
            pod_hours: s.pod_hours,
            cpu_core_hours: s.cpu_core_hours,
            slo_violation_pct: s.slo_violation_pct,
            p95_latency_ms: s.p95_latency_ms,
            p99_latency_ms: s.p99_latency_ms,
            dropped_pct: s.dropped_pct,
            scaling_actions: s.scaling_actions,
            cpu_utilization_mean: s.cpu_utilization_mean,
            return_: ret,
        },
        ticks: stats.ticks,
        arrivals_total: s.arrivals,
        served_total: s.served,
        dropped_total: s.dropped,
        backlog_end: sim.backlog(),
    };
    Ok((record, series))
}

/// One line on stderr when it is not a terminal (where the progress bars do not show), so a
/// long run in CI or a log file says what it is doing.
fn note_progress(what: &str) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        eprintln!("nimbusguard: {what}");
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Trains and evaluates. `threads` = 0 uses all cores. The result is identical whatever
/// the thread count.
///
/// # Errors
/// Any error of [`traffic`], [`train`] or [`evaluate`].
pub fn run(cfg: &ExperimentConfig, config_path: &Path, threads: usize) -> Result<RunOutput> {
    run_with(cfg, traffic(cfg, config_path)?, threads)
}

/// [`run`] on traffic already built with [`traffic`].
///
/// # Errors
/// Any error of [`train`] or [`evaluate`].
pub fn run_with(cfg: &ExperimentConfig, t: Traffic, threads: usize) -> Result<RunOutput> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start the thread pool")?;
    let (trained, training) = train(cfg, &t, &pool)?;
    let seeds: Vec<u64> = (0..cfg.evaluation.seeds)
        .map(|i| cfg.evaluation.first_seed + i)
        .collect();
    let tasks: Vec<(&AgentSpec, u64, bool)> = cfg
        .agents
        .iter()
        .flat_map(|a| {
            seeds
                .iter()
                .enumerate()
                .map(move |(i, &s)| (a, s, (i as u64) < cfg.output.timeseries_seeds))
        })
        .collect();
    note_progress(&format!(
        "evaluating {} episodes (agents x seeds)",
        tasks.len()
    ));
    let bar = ProgressBar::new(tasks.len() as u64)
        .with_style(style())
        .with_message("evaluate");
    let results: Vec<Result<(EpisodeRecord, Vec<TickRecord>)>> = pool.install(|| {
        tasks
            .par_iter()
            .map(|&(spec, seed, keep)| {
                let r = evaluate(cfg, spec, &trained, &t, seed, keep);
                bar.inc(1);
                r
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut episodes = Vec::with_capacity(results.len());
    let mut timeseries = Vec::new();
    for r in results {
        let (e, s) = r?;
        episodes.push(e);
        timeseries.extend(s);
    }
    Ok(RunOutput {
        episodes,
        timeseries,
        training,
        trained,
        peak_rps: t.peak_rps,
        windows_s: (t.train.duration_s(), t.evaluation.duration_s()),
    })
}

/// The output folder: `--out` or `results/<experiment>`.
pub fn out_dir(cfg: &ExperimentConfig, out: Option<&Path>) -> PathBuf {
    out.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("results").join(&cfg.experiment))
}

/// The env id every run logs.
pub const RUN_ENV_ID: &str = ENV_ID;
