//! `nimbusguard run`: train what needs training on the training window, then evaluate every
//! agent on the evaluation window for every seed, in parallel (rayon, order-preserving, so the
//! results do not depend on the thread count), and write the outputs of DESIGN.md section 6.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use agents::autoscaler::{Autoscaler, Policy, PolicyAutoscaler};
use agents::baselines::{StaticReplicas, ThresholdRule};
use agents::dqn::{Dqn, DqnEvent};
use agents::hpa::Hpa;
use agents::nimbusguard_v0::{V0Autoscaler, V0Env};
use agents::oracle::Oracle;
use agents::peers::{Keda, Kpa};
use agents::predictive::{
    PredictiveAutoscaler, PredictiveConfig, PredictiveEnv, PredictiveFeatures, ProactiveRule,
    SharedForecaster,
};
use agents::tabular_q::QLearning;
use envs::{Env, ScalingEnv, ScalingEnvConfig, ENV_ID};
use sim::accounting::TickAggregate;
use sim::trace::RateSeries;

use crate::config::{base_dir, kebab, AgentKind, AgentSpec, ExperimentConfig};
use crate::records::{EpisodeMetrics, EpisodeRecord, TickRecord, TrainingPoint};

/// A trained policy.
#[derive(Debug, Clone)]
pub enum TrainedPolicy {
    /// A Q-table (boxed: the agent carries its exploration stream).
    QLearning(Box<QLearning>),
    /// A DQN (boxed too).
    Dqn(Box<Dqn>),
}

impl TrainedPolicy {
    /// Writes the policy under `dir` as `<name>.json` (Q-learning) or the folder `<name>.dqn/`
    /// (DQN: `dqn.json` + `model.bpk`).
    ///
    /// # Errors
    /// The files cannot be written.
    pub fn save(&self, dir: &Path, name: &str) -> Result<PathBuf> {
        let (path, r) = match self {
            TrainedPolicy::QLearning(q) => {
                let p = dir.join(format!("{name}.json"));
                let r = q.save(&p).map_err(anyhow::Error::from);
                (p, r)
            }
            TrainedPolicy::Dqn(d) => {
                let p = dir.join(format!("{name}.dqn"));
                let r = d.save(&p).map_err(anyhow::Error::from);
                (p, r)
            }
        };
        r.with_context(|| format!("cannot save policy {}", path.display()))?;
        Ok(path)
    }
}

/// What training produced: policies of learned agents and fitted forecasters of predictive
/// agents (hybrids and the proactive rule), by agent name.
#[derive(Default, Clone)]
pub struct Trained {
    /// Trained policies.
    pub policies: Vec<(String, TrainedPolicy)>,
    /// Fitted forecasters.
    pub forecasters: Vec<(String, SharedForecaster)>,
}

impl std::fmt::Debug for Trained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trained")
            .field("policies", &self.policies)
            .field(
                "forecasters",
                &self
                    .forecasters
                    .iter()
                    .map(|(n, x)| (n, x.name()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Trained {
    fn policy(&self, name: &str) -> Result<&TrainedPolicy> {
        self.policies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
            .ok_or_else(|| anyhow!("agent {name} was not trained"))
    }

    fn forecaster(&self, name: &str) -> Result<SharedForecaster> {
        self.forecasters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| f.clone())
            .ok_or_else(|| anyhow!("agent {name} has no fitted forecaster"))
    }
}

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

pub(crate) fn env_for(
    cfg: &ExperimentConfig,
    spec: &AgentSpec,
    traffic: Arc<RateSeries>,
    peak: f64,
) -> Result<ScalingEnv> {
    let mut env_cfg = ScalingEnvConfig {
        cooldown_s: cfg.cooldown_s(spec),
        ..cfg.env.clone()
    };
    if matches!(
        spec.kind,
        AgentKind::Hpa | AgentKind::Proactive | AgentKind::Keda
    ) {
        // The HPA (also KEDA's) decides once per sync period.
        env_cfg.decision_interval_s = cfg.hpa_config(spec).sync_period_s as f64;
    }
    // An instant oracle runs in the scenario without start-up delays.
    let mut scenario = match spec.oracle_config() {
        Some(o) => o.scenario(&cfg.scenario()),
        None => cfg.scenario(),
    };
    if spec.kind == AgentKind::Kpa {
        // Knative's autoscaler ticks every 2 s on metrics it scrapes every second.
        let k = spec.kpa.clone().unwrap_or_default();
        env_cfg.decision_interval_s = k.tick_interval_s;
        scenario.metrics.scrape_interval_s = k.scrape_interval_s;
    }
    ScalingEnv::new(env_cfg, scenario, traffic, cfg.workload.arrivals, peak)
        .with_context(|| format!("while building the env for agent {}", spec.name))
}

/// `f` over `items`, in order: on `pool`'s threads, or, without a pool (one thread), on the
/// calling thread. A sweep's run (already on one of the sweep's threads) passes no pool: a pool
/// of its own would make the sweep thread wait in rayon's cross-pool `install`, where it starts
/// another run meanwhile, oversubscribing the cores (measured: 1.55x instead of 1.9x on 2).
fn map_on<T: Sync, R: Send>(
    pool: Option<&rayon::ThreadPool>,
    items: &[T],
    f: impl Fn(&T) -> R + Sync + Send,
) -> Vec<R> {
    match pool {
        Some(p) => p.install(|| items.par_iter().map(f).collect()),
        None => items.iter().map(f).collect(),
    }
}

/// Trains every learned agent on the training window, one agent per thread (each training
/// run is single-threaded and deterministic, so the result does not depend on `threads`), and
/// fits the forecaster of every predictive agent first.
///
/// # Errors
/// An env cannot be built, a forecaster cannot be fitted, or training fails.
pub fn train(
    cfg: &ExperimentConfig,
    t: &Traffic,
    pool: Option<&rayon::ThreadPool>,
) -> Result<(Trained, Vec<TrainingPoint>)> {
    let specs: Vec<&AgentSpec> = cfg
        .agents
        .iter()
        .filter(|a| a.is_learned() || a.predictive_config().is_some())
        .collect();
    if !specs.is_empty() {
        note_progress(&format!(
            "training {} agent(s) on the training window",
            specs.len()
        ));
    }
    let bars = indicatif::MultiProgress::new();
    if is_quiet() {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    type One = (
        Option<TrainedPolicy>,
        Option<SharedForecaster>,
        Vec<TrainingPoint>,
    );
    let results: Vec<Result<One>> = map_on(pool, &specs, |spec| train_one(cfg, t, spec, &bars));
    let mut trained = Trained::default();
    let mut points = Vec::new();
    for (spec, r) in specs.iter().zip(results) {
        let (policy, forecaster, p) = r?;
        if let Some(policy) = policy {
            trained.policies.push((spec.name.clone(), policy));
        }
        if let Some(f) = forecaster {
            trained.forecasters.push((spec.name.clone(), f));
        }
        points.extend(p);
    }
    Ok((trained, points))
}

/// The training window's request rate sampled every `step_s` seconds (requests per second):
/// the series a predictive agent's forecaster is fitted on.
fn sampled_rates(series: &RateSeries, step_s: f64) -> Vec<f64> {
    let n = (series.duration_s() / step_s).floor() as usize;
    (0..n)
        .map(|i| series.rate_at(sim::SimTime::from_secs_f64(i as f64 * step_s)))
        .collect()
}

/// Builds the predictive features of `spec` (its forecaster fitted already).
fn features_for(
    cfg: &ExperimentConfig,
    p: &PredictiveConfig,
    forecaster: SharedForecaster,
    peak_rps: f64,
) -> Result<PredictiveFeatures> {
    let detector = match (&cfg.anomaly, p.features.anomaly_flag) {
        (Some(d), true) => Some(d.build().map_err(|e| anyhow!("[anomaly]: {e}"))?),
        _ => None,
    };
    PredictiveFeatures::new(forecaster, detector, p.features.clone(), peak_rps)
        .map_err(|e| anyhow!(e))
}

fn train_one(
    cfg: &ExperimentConfig,
    t: &Traffic,
    spec: &AgentSpec,
    bars: &indicatif::MultiProgress,
) -> Result<(
    Option<TrainedPolicy>,
    Option<SharedForecaster>,
    Vec<TrainingPoint>,
)> {
    let env = env_for(cfg, spec, t.train.clone(), t.peak_rps)?;
    let forecaster = match spec.predictive_config() {
        Some(p) => {
            let step = env.config().decision_interval_s;
            let rates = sampled_rates(&t.train, step);
            let f = p.fit_forecaster(step, &rates).map_err(|e| {
                anyhow!(
                    "`agents[{}] ({}).predictive.forecaster`: cannot be fitted on the training window \
                     ({} decisions of {step} s = {:.1} h): {e}. Use a shorter period_s or LSTM \
                     window, or a longer training window (workload.duration_s, \
                     workload.train_fraction)",
                    cfg.agents.iter().position(|a| a.name == spec.name).unwrap_or(0),
                    spec.name,
                    rates.len(),
                    rates.len() as f64 * step / 3600.0
                )
            })?;
            Some((p, f))
        }
        None => None,
    };
    if !spec.is_learned() {
        return Ok((None, forecaster.map(|(_, f)| f), Vec::new()));
    }
    let seed = cfg.training.seed;
    let n_actions = env.action_space().n;
    let mut points = Vec::new();
    if spec.kind == AgentKind::NimbusguardV0 {
        // The seed's state, 3 actions, reward and shield over the same env.
        let mut env = V0Env::new(env, spec.nimbusguard_v0.clone().unwrap_or_default());
        let n = env.action_space().n;
        let policy = train_policy(spec, &mut env, n, seed, bars, &mut points)?;
        return Ok((Some(policy), None, points));
    }
    let policy = match &forecaster {
        Some((p, f)) => {
            let features = features_for(cfg, p, f.clone(), t.peak_rps)?;
            let mut env = PredictiveEnv::new(env, features);
            train_policy(spec, &mut env, n_actions, seed, bars, &mut points)?
        }
        None => {
            let mut env = env;
            train_policy(spec, &mut env, n_actions, seed, bars, &mut points)?
        }
    };
    Ok((Some(policy), forecaster.map(|(_, f)| f), points))
}

/// Trains the policy of a learned agent on `env`, appending its training curve to `points`.
fn train_policy<E>(
    spec: &AgentSpec,
    env: &mut E,
    n_actions: usize,
    seed: u64,
    bars: &indicatif::MultiProgress,
    points: &mut Vec<TrainingPoint>,
) -> Result<TrainedPolicy>
where
    E: Env<Obs = Vec<f32>, Action = usize, ObsSpace = envs::BoxSpace, ActionSpace = envs::Discrete>,
{
    match spec.kind {
        AgentKind::Dqn | AgentKind::NimbusguardV0 => {
            let dc = match spec.kind {
                AgentKind::NimbusguardV0 => {
                    spec.nimbusguard_v0.clone().unwrap_or_default().dqn_config()
                }
                _ => spec.dqn.clone().unwrap_or_default(),
            };
            let obs_dim = env.observation_space().low.len();
            tracing::info!(agent = %spec.name, env = env.id(), config = ?dc, "training dqn");
            let mut agent = Dqn::new(dc.clone(), obs_dim, n_actions, seed)
                .map_err(|e| anyhow!("agent {}: {e}", spec.name))?;
            let bar = bars.add(
                ProgressBar::new(dc.total_steps as u64)
                    .with_style(style())
                    .with_message(format!("train {}", spec.name)),
            );
            let mut last = 0usize;
            agent
                .train(env, seed, |e| match e {
                    DqnEvent::Update { step, .. } => {
                        bar.inc((step - last) as u64);
                        last = step;
                    }
                    DqnEvent::Episode {
                        episode,
                        return_,
                        epsilon,
                        mean_loss,
                        ..
                    } => points.push(TrainingPoint {
                        agent: spec.name.clone(),
                        episode: episode as u64,
                        return_,
                        epsilon,
                        loss: mean_loss.is_finite().then_some(mean_loss),
                    }),
                })
                .map_err(|e| anyhow!("training agent {}: {e}", spec.name))?;
            bar.finish_and_clear();
            Ok(TrainedPolicy::Dqn(Box::new(agent)))
        }
        _ => {
            let qc = spec.q_learning.clone().unwrap_or_default();
            tracing::info!(agent = %spec.name, env = env.id(), config = ?qc, "training q-learning");
            let mut agent = QLearning::new(qc.clone(), n_actions)
                .map_err(|e| anyhow!("agent {}: {e}", spec.name))?;
            let bar = bars.add(
                ProgressBar::new(qc.episodes as u64)
                    .with_style(style())
                    .with_message(format!("train {}", spec.name)),
            );
            agent
                .train(env, seed, |log| {
                    points.push(TrainingPoint {
                        agent: spec.name.clone(),
                        episode: log.episode as u64,
                        return_: log.return_,
                        epsilon: log.epsilon,
                        loss: None,
                    });
                    bar.inc(1);
                })
                .map_err(|e| anyhow!("training agent {}: {e}", spec.name))?;
            bar.finish_and_clear();
            Ok(TrainedPolicy::QLearning(Box::new(agent)))
        }
    }
}

/// Wraps a trained policy for serving: plain, or predictive with its features.
fn serve<P: Policy + 'static>(
    cfg: &ExperimentConfig,
    spec: &AgentSpec,
    trained: &Trained,
    env: &ScalingEnv,
    policy: P,
    peak_rps: f64,
) -> Result<Box<dyn Autoscaler>> {
    Ok(match spec.predictive_config() {
        Some(p) => {
            let features = features_for(cfg, &p, trained.forecaster(&spec.name)?, peak_rps)?;
            Box::new(PredictiveAutoscaler::new(
                policy,
                env.encoder().clone(),
                env.action_map(),
                features,
                p.target_utilization,
                p.scale_in_on_forecast,
                spec.name.clone(),
            ))
        }
        None => Box::new(PolicyAutoscaler::new(
            policy,
            env.encoder().clone(),
            env.action_map(),
            spec.name.clone(),
        )),
    })
}

/// Builds the agent `spec` for an evaluation episode on `t.evaluation` with `seed` (the oracle
/// reads that episode's arrivals; every other agent ignores the seed).
pub(crate) fn build_agent(
    cfg: &ExperimentConfig,
    spec: &AgentSpec,
    trained: &Trained,
    env: &ScalingEnv,
    t: &Traffic,
    seed: u64,
) -> Result<Box<dyn Autoscaler>> {
    let peak_rps = t.peak_rps;
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
        AgentKind::QLearning | AgentKind::Dqn => match trained.policy(&spec.name)?.clone() {
            TrainedPolicy::QLearning(q) => serve(cfg, spec, trained, env, *q, peak_rps)?,
            TrainedPolicy::Dqn(d) => serve(cfg, spec, trained, env, *d, peak_rps)?,
        },
        AgentKind::Keda => Box::new(
            Keda::new(spec.keda.clone().unwrap_or_default(), cfg.hpa_config(spec))
                .map_err(|e| anyhow!("agent {}: {e}", spec.name))?,
        ),
        AgentKind::Kpa => Box::new(
            Kpa::new(
                spec.kpa.clone().unwrap_or_default(),
                cfg.deployment.min_replicas,
                cfg.deployment.max_replicas,
            )
            .map_err(|e| anyhow!("agent {}: {e}", spec.name))?,
        ),
        AgentKind::Oracle => Box::new(
            // The env runs the oracle's scenario already (env_for): no start-up delays for the
            // instant variant.
            Oracle::new(
                spec.oracle_config().unwrap_or_default(),
                env.scenario(),
                cfg.workload.arrivals,
                env.config().decision_interval_s,
                &t.evaluation,
                seed,
            )
            .map_err(|e| anyhow!("agent {}: {e}", spec.name))?,
        ),
        AgentKind::NimbusguardV0 => match trained.policy(&spec.name)?.clone() {
            TrainedPolicy::Dqn(d) => Box::new(V0Autoscaler::new(
                *d,
                spec.nimbusguard_v0.clone().unwrap_or_default(),
                cfg.deployment.min_replicas,
                cfg.deployment.max_replicas,
                spec.name.clone(),
            )),
            TrainedPolicy::QLearning(_) => bail!("agent {}: expected a DQN policy", spec.name),
        },
        AgentKind::Proactive => {
            let p = spec.predictive_config().unwrap_or_default();
            let hpa =
                Hpa::new(cfg.hpa_config(spec)).map_err(|e| anyhow!("agent {}: {e}", spec.name))?;
            let features = features_for(cfg, &p, trained.forecaster(&spec.name)?, peak_rps)?;
            Box::new(ProactiveRule::new(
                hpa,
                features,
                p.target_utilization,
                p.scale_in_on_forecast,
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
    let mut agent = build_agent(cfg, spec, trained, &env, t, seed)?;
    let mut detector = match &cfg.anomaly {
        Some(d) => Some(d.build().map_err(|e| anyhow!("[anomaly]: {e}"))?),
        None => None,
    };
    let mut anomaly_flags = 0u64;
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
        if let Some(d) = &mut detector {
            anomaly_flags += u64::from(d.observe(env.cluster_state().request_rate_per_s).flagged);
        }
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
        anomaly_flags: detector.is_some().then_some(anomaly_flags),
    };
    Ok((record, series))
}

/// One line on stderr when it is not a terminal (where the progress bars do not show), so a
/// long run in CI or a log file says what it is doing.
fn note_progress(what: &str) {
    use std::io::IsTerminal;
    if !is_quiet() && !std::io::stderr().is_terminal() {
        eprintln!("nimbusguard: {what}");
    }
}

/// Whether runs draw no progress of their own (see [`set_quiet`]).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Silences the progress bars and progress lines of [`run`] and [`run_with`] in this process
/// (`nimbusguard sweep` draws one bar for all its runs instead). Results are unaffected.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

fn is_quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
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
    let pool = if threads == 1 {
        None
    } else {
        Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .context("cannot start the thread pool")?,
        )
    };
    let pool = pool.as_ref();
    let (trained, training) = train(cfg, &t, pool)?;
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
    if is_quiet() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let results: Vec<Result<(EpisodeRecord, Vec<TickRecord>)>> =
        map_on(pool, &tasks, |&(spec, seed, keep)| {
            let r = evaluate(cfg, spec, &trained, &t, seed, keep);
            bar.inc(1);
            r
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
