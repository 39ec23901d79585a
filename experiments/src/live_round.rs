//! One live run of `nimbusguard live`: one agent, one replay of the segment, on real
//! processes. A local Prometheus (Debian's, [`LocalPrometheus`]) scrapes `workload-app`
//! replicas run by a [`ProcessScaler`] and its front; the load generator replays the segment
//! through the front; the agent decides every step of a [`LiveEnv`] (with the operator's HPA
//! fallback on stale metrics). The result is an [`EpisodeRecord`] and [`TickRecord`]s in the
//! simulated run's schema, plus the load generator's summary and one decision line per step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use adapters::live_env::{LiveEnv, LiveEnvConfig};
use adapters::local_prometheus::{free_port, LocalPrometheus, ScrapeJob};
use adapters::operator::stages::{DecisionAgent, DecisionSource, SloConfig};
use adapters::{
    FrontConfig, ProcessScaler, ProcessScalerConfig, Scaler, StateConfig, StateObserver,
};
use agents::hpa::Hpa;
use anyhow::{anyhow, Context, Result};
use envs::Env;
use sim::trace::RateSeries;
use workload::loadgen::{self, RunOptions, Schedule};

use crate::config::{kebab, AgentSpec, ExperimentConfig};
use crate::live_config::LiveConfig;
use crate::records::{EpisodeMetrics, EpisodeRecord, TickRecord};
use crate::runner::{build_agent, env_for, Traffic, Trained};

/// What a live run needs that does not change between runs.
pub struct LiveContext<'a> {
    /// The live config.
    pub config: &'a LiveConfig,
    /// The scenario with the segment as its workload (the simulated run's config).
    pub segment_cfg: &'a ExperimentConfig,
    /// The trained agents.
    pub trained: &'a Trained,
    /// The segment as traffic (both windows), scaled by the training peak.
    pub traffic: &'a Traffic,
    /// The segment's rate series, seconds of wall clock per bin.
    pub segment: Arc<RateSeries>,
    /// The `workload-app` binary.
    pub app: PathBuf,
    /// The Prometheus binary.
    pub prometheus: PathBuf,
}

/// One live run's results.
pub struct LiveRun {
    /// The episode, in `episodes.csv`'s schema (see [`run_live`] for how each metric is
    /// measured).
    pub record: EpisodeRecord,
    /// One row per decision step.
    pub ticks: Vec<TickRecord>,
    /// The load generator's summary (client-side counts and latency).
    pub loadgen: loadgen::Summary,
    /// Decisions taken by the HPA fallback (metrics not fresh).
    pub fallbacks: u64,
}

/// Runs `spec` live on the segment with arrival seed `seed` (the episode's seed in the
/// results, `evaluation.first_seed + round`); working files (Prometheus data,
/// file_sd, `decisions.jsonl`, `loadgen.json`, `host.json` with the load average) go under `dir`. Every process it starts is
/// stopped before it returns, also on error.
///
/// Metrics of the record: `p95_latency_ms`/`p99_latency_ms` are the load generator's
/// client-side percentiles over the whole run; `dropped_pct` counts every scheduled request
/// that was not answered 2xx; `pod_hours` sums the scaler's pods (terminating ones included)
/// over the steps; `cpu_utilization_mean` and `slo_violation_pct` average the steps whose
/// metrics were fresh (Prometheus' 5 s rates at the end of each step); `return` is the
/// simulated env's reward summed over the steps.
///
/// # Errors
/// Prometheus, the front or the first replica cannot start; Prometheus does not see the
/// targets within 60 s; the load generator fails; a working file cannot be written.
pub fn run_live(ctx: &LiveContext<'_>, spec: &AgentSpec, seed: u64, dir: &Path) -> Result<LiveRun> {
    let cfg = ctx.segment_cfg;
    let sim_env = env_for(cfg, spec, ctx.segment.clone(), ctx.traffic.peak_rps)?;
    let agent = build_agent(cfg, spec, ctx.trained, &sim_env, ctx.traffic, seed)?;
    let fallback =
        Hpa::new(cfg.hpa_config(spec)).map_err(|e| anyhow!("agent {}: hpa: {e}", spec.name))?;
    let mut decider = DecisionAgent::new(agent, fallback);

    std::fs::create_dir_all(dir.join("sd"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let front: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut prom = LocalPrometheus::start(
        &ctx.prometheus,
        &dir.join("prometheus"),
        &[
            ScrapeJob::FileSd {
                name: "workload".into(),
                dir: dir.join("sd"),
            },
            ScrapeJob::Static {
                name: "front".into(),
                targets: vec![front],
            },
        ],
    )
    .context("cannot start Prometheus")?;
    let mut scaler = ProcessScaler::new(ProcessScalerConfig {
        binary: ctx.app.clone(),
        extra_args: ctx.config.app.args.clone(),
        name_prefix: format!("{}-{seed}", spec.name),
        file_sd_path: Some(dir.join("sd/workload.json")),
        front: FrontConfig {
            listen: front,
            ..FrontConfig::default()
        },
        ..ProcessScalerConfig::default()
    })
    .context("cannot start the replicas' front")?;
    let state = StateConfig {
        stale_after_s: ctx.config.stale_after_s,
        cpu_request_milli: cfg.pod.cpu_request_milli,
        memory_request_bytes: cfg.pod.memory_request_bytes,
        ..StateConfig::default()
    };
    let observer = StateObserver::new(prom.client()?, state, SystemTime::now())?;
    let d = &cfg.deployment;
    let interval = sim_env.config().decision_interval_s;
    let live_cfg = LiveEnvConfig {
        env: sim_env.config().clone(),
        min_replicas: d.min_replicas,
        max_replicas: d.max_replicas,
        initial_replicas: d.initial_replicas,
        rate_scale_rps: ctx.traffic.peak_rps,
        slo: SloConfig {
            p95_ms: cfg.service.slo_p95_ms,
            max_dropped_ratio: cfg.service.slo_max_dropped_ratio,
        },
        episode_s: ctx.segment.duration_s() + ctx.config.tail_s,
        ready_timeout_s: 60.0,
    };
    // The initial replicas Ready and scraped, and a few scrapes in (so rates exist), before
    // the episode starts.
    scaler
        .set_replicas(d.initial_replicas)
        .context("cannot start the initial replicas")?;
    scaler
        .wait_ready(d.initial_replicas, Duration::from_secs(60))
        .context("the initial replicas are not Ready")?;
    for (job, n) in [("workload", d.initial_replicas as usize), ("front", 1)] {
        prom.wait_up(job, n, Duration::from_secs(60))
            .with_context(|| format!("Prometheus does not scrape job {job}"))?;
    }
    std::thread::sleep(Duration::from_secs_f64(ctx.config.settle_s));
    let mut env = LiveEnv::new(live_cfg, observer, scaler)?;

    let schedule = Schedule::new(ctx.segment.as_ref().clone(), cfg.workload.arrivals, seed)?;
    let target = loadgen::parse_target(&format!("http://{front}/work"))?;
    let options = RunOptions {
        timeout: Duration::from_secs_f64(ctx.config.request_timeout_s),
        ..RunOptions::default()
    };
    // The episode's clock starts with the load. Live figures mean little on a busy machine:
    // the host's load average is recorded at both ends of the run.
    let load_before = load_average();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if load_before.is_some_and(|l| l > 0.5 * cores) {
        tracing::warn!(
            load_average_1m = load_before,
            cores,
            "the machine is busy: live latency and scaling will not be representative"
        );
    }
    env.reset(Some(seed));
    let sender = std::thread::spawn(move || loadgen::run_blocking(&schedule, &[target], &options));

    let mut decisions = String::new();
    let mut ticks = Vec::new();
    let (mut ret, mut fallbacks, mut changes) = (0.0, 0u64, 0u64);
    let (mut pod_s, mut util_sum, mut util_n, mut fresh, mut violated) =
        (0.0, 0.0, 0u64, 0u64, 0u64);
    let mut steps = 0u64;
    loop {
        let decision = decider.decide(env.observed());
        fallbacks += u64::from(decision.source == DecisionSource::HpaFallback);
        let step = env.step_desired(decision.wished);
        steps += 1;
        ret += step.reward;
        let i = &step.info;
        changes += u64::from(i.changed);
        pod_s += f64::from(i.billed_pods) * interval;
        if i.health.is_fresh() {
            fresh += 1;
            violated += i.step.slo_violated_ticks as u64;
            if i.step.ready_replicas > 0 {
                util_sum += i.step.cpu_utilization;
                util_n += 1;
            }
        }
        let s = &i.state;
        let served = s.request_rate_per_s * (1.0 - s.dropped_ratio.clamp(0.0, 1.0));
        ticks.push(TickRecord {
            agent: spec.name.clone(),
            seed,
            time_s: i.step.time_s,
            arrival_rps: s.request_rate_per_s,
            served_rps: served,
            dropped_rps: s.request_rate_per_s - served,
            backlog: s.queue_length,
            desired_replicas: s.desired_replicas,
            ready_replicas: s.ready_replicas,
            pending_replicas: s.pending_replicas,
            cpu_utilization: i.step.cpu_utilization,
            p50_latency_ms: s.p50_latency_ms,
            p95_latency_ms: s.p95_latency_ms,
            p99_latency_ms: s.p99_latency_ms,
            slo_violated: i.step.slo_violated_ticks > 0,
        });
        let line = serde_json::json!({
            "time_s": i.step.time_s,
            "health": i.health.label(),
            "decided_by": decision.decided_by,
            "source": decision.source.label(),
            "reason": decision.reason,
            "wished": decision.wished,
            "desired_replicas": i.step.desired_replicas,
            "ready_replicas": i.step.ready_replicas,
            "changed": i.changed,
            "action_error": i.action_error,
            "reward": step.reward,
        });
        decisions.push_str(&line.to_string());
        decisions.push('\n');
        if step.truncated {
            break;
        }
    }
    let summary = sender
        .join()
        .map_err(|_| anyhow!("the load generator thread panicked"))?
        .context("the load generator failed")?;
    // Stop the replicas (and their front), then Prometheus.
    drop(env);
    prom.stop();

    std::fs::write(dir.join("decisions.jsonl"), decisions)
        .with_context(|| format!("cannot write {}", dir.join("decisions.jsonl").display()))?;
    let host = serde_json::json!({
        "cores": cores,
        "load_average_1m_before": load_before,
        "load_average_1m_after": load_average(),
    });
    std::fs::write(dir.join("host.json"), host.to_string())
        .with_context(|| format!("cannot write {}", dir.join("host.json").display()))?;
    let json = serde_json::to_string_pretty(&summary)?;
    std::fs::write(dir.join("loadgen.json"), json)
        .with_context(|| format!("cannot write {}", dir.join("loadgen.json").display()))?;

    let intended = summary.intended as f64;
    let not_ok = intended - summary.ok as f64;
    let pod_hours = pod_s / 3600.0;
    let record = EpisodeRecord {
        agent: spec.name.clone(),
        kind: kebab(spec.kind).to_string(),
        seed,
        metrics: EpisodeMetrics {
            pod_hours,
            cpu_core_hours: pod_hours * cfg.pod.cpu_request_milli as f64 / 1000.0,
            slo_violation_pct: pct(violated as f64, fresh as f64),
            p95_latency_ms: summary.latency_ms.p95.unwrap_or(f64::NAN),
            p99_latency_ms: summary.latency_ms.p99.unwrap_or(f64::NAN),
            dropped_pct: pct(not_ok, intended),
            scaling_actions: changes as f64,
            cpu_utilization_mean: if util_n > 0 {
                util_sum / util_n as f64
            } else {
                0.0
            },
            return_: ret,
        },
        ticks: steps,
        arrivals_total: intended,
        served_total: summary.ok as f64,
        dropped_total: not_ok,
        backlog_end: 0.0,
        anomaly_flags: None,
    };
    Ok(LiveRun {
        record,
        ticks,
        loadgen: summary,
        fallbacks,
    })
}

/// The host's 1-minute load average (`/proc/loadavg`), if readable.
fn load_average() -> Option<f64> {
    use procfs::Current;
    procfs::LoadAverage::current()
        .ok()
        .map(|l| f64::from(l.one))
}

/// `100 * part / whole`, 0 when `whole` is 0.
fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}
