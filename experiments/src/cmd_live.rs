//! `nimbusguard live CONFIG`: the live A/B. The same traffic segment runs against each chosen
//! agent (the HPA rules, a trained policy, ...) on real `workload-app` processes, one agent
//! after the other, and in the simulator's twin of that system, side by side:
//!
//! ```text
//! results/<experiment>/
//!   train/         the scenario's own `nimbusguard run` (trains the policies; `policies/`)
//!   sim/           the segment, simulated: summary.json, episodes, timeseries, plots
//!   live/          the segment, live: the same files, one episode per agent and round
//!     runs/<agent>-<seed>/    decisions.jsonl, loadgen.json, Prometheus' data
//!   sim_to_real.json, sim_to_real.md   live vs simulated, per agent
//! ```
//!
//! Results already computed are written before anything that may fail after them: the
//! simulated runs before the live ones, and the live runs that finished when a later one
//! fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use adapters::LocalPrometheus;
use anyhow::{bail, Context, Result};

use crate::cmd_run::write_results;
use crate::live_config::{LiveConfig, LoadedLive};
use crate::live_round::{run_live, LiveContext};
use crate::records::{EpisodeRecord, TickRecord};
use crate::runner::{evaluate, run_with, traffic, RunOutput, Traffic, Trained};
use crate::sim_to_real::{compare, write_comparison};

/// Runs the live A/B of the config at `path` (with `--set` overrides) and writes everything
/// under `out` (default `results/<experiment>`). Returns the output folder.
///
/// # Errors
/// The config or scenario is invalid; the `workload-app` or Prometheus binary is missing;
/// training or the simulation fails; a live run cannot start its processes (the live runs that
/// finished before are written first); outputs cannot be written.
pub fn execute(
    path: &Path,
    overrides: &[String],
    out: Option<&Path>,
    threads: usize,
) -> Result<PathBuf> {
    let path = crate::config::locate_config(path);
    let loaded = LiveConfig::load(&path, overrides)?;
    let LoadedLive {
        config,
        scenario,
        scenario_path,
        agents,
        ..
    } = &loaded;
    let app = &config.app.binary;
    if !app.is_file() {
        bail!(
            "app.binary: {} does not exist; build it with `cargo build --release -p workload \
             --bins` or set app.binary",
            app.display()
        );
    }
    let prometheus = LocalPrometheus::binary()
        .context("Prometheus is needed for live runs (scripts/prometheus.sh installs Debian's)")?;
    let segment = Arc::new(config.segment_series(&path, scenario.training.seed)?);
    let dir = out.map_or_else(
        || PathBuf::from("results").join(&config.experiment),
        Path::to_path_buf,
    );
    if dir.exists() && !dir.is_dir() {
        bail!("--out {}: exists and is not a folder", dir.display());
    }
    // The app must start with its flags before anything is trained or written, so a bad
    // `[app]` never replaces an earlier run's results.
    preflight(config)?;

    // 1. The scenario's own run: trains the policies the live runs serve.
    crate::runner::set_quiet(false);
    let t = traffic(scenario, scenario_path)?;
    let trained_run = run_with(scenario, t, threads)?;
    write_results(
        &dir.join("train"),
        scenario,
        scenario_path,
        &trained_run,
        &[],
    )?;

    // 2. The segment, simulated, with the same agents (observations scaled by the training
    // peak, as live).
    let mut seg_cfg = scenario.clone();
    seg_cfg.experiment = config.experiment.clone();
    seg_cfg.workload = config.segment.clone();
    seg_cfg.agents = agents.clone();
    if !agents.iter().any(|a| a.name == seg_cfg.evaluation.baseline) {
        seg_cfg.evaluation.baseline = agents[0].name.clone();
    }
    let seg_traffic = Traffic {
        train: segment.clone(),
        evaluation: segment.clone(),
        peak_rps: trained_run.peak_rps,
    };
    let (sim_eps, sim_ticks) = simulate(&seg_cfg, &trained_run.trained, &seg_traffic)?;
    let windows_s = (0.0, segment.duration_s());
    let sim_out = RunOutput {
        episodes: sim_eps,
        timeseries: sim_ticks,
        training: Vec::new(),
        trained: Trained::default(),
        peak_rps: trained_run.peak_rps,
        windows_s,
    };
    let notes = [format!(
        "The live A/B's segment, simulated ({} s); policies trained in {}.",
        segment.duration_s(),
        dir.join("train").display()
    )];
    write_results(&dir.join("sim"), &seg_cfg, &path, &sim_out, &notes)?;

    // 3. The segment, live: each agent in turn, `rounds` times.
    let ctx = LiveContext {
        config,
        segment_cfg: &seg_cfg,
        trained: &trained_run.trained,
        traffic: &seg_traffic,
        segment: segment.clone(),
        app: app.clone(),
        prometheus,
    };
    let live_dir = dir.join("live");
    let (mut live_eps, mut live_ticks, mut fallbacks): (Vec<EpisodeRecord>, Vec<TickRecord>, u64) =
        (Vec::new(), Vec::new(), 0);
    let mut failure = None;
    'agents: for spec in agents {
        for round in 0..config.rounds {
            eprintln!(
                "nimbusguard: live run of {} (round {round}), {:.0} s",
                spec.name,
                segment.duration_s() + config.tail_s
            );
            let seed = seg_cfg.evaluation.first_seed + round;
            let run_dir = live_dir.join("runs").join(format!("{}-{seed}", spec.name));
            match run_live(&ctx, spec, seed, &run_dir) {
                Ok(r) => {
                    fallbacks += r.fallbacks;
                    live_eps.push(r.record);
                    live_ticks.extend(r.ticks);
                }
                Err(e) => {
                    failure = Some(e.context(format!("live run of {} (round {round})", spec.name)));
                    break 'agents;
                }
            }
        }
    }
    if !live_eps.is_empty() {
        let live_out = RunOutput {
            episodes: live_eps,
            timeseries: live_ticks,
            training: Vec::new(),
            trained: Trained::default(),
            peak_rps: trained_run.peak_rps,
            windows_s,
        };
        let notes = [
            "Live: real workload-app processes behind a round-robin front, scraped by Prometheus \
             every second; one episode per agent and round (the seed is the load generator's \
             arrival seed). Latency percentiles are the load generator's (client side); \
             utilization and SLO violations are Prometheus' 5 s rates at the end of each step."
                .to_string(),
            format!("Decisions taken by the HPA fallback (metrics not fresh): {fallbacks}."),
        ];
        // The comparison first: it needs only the episodes, and a plot that fails in
        // write_results must not lose it.
        let table = compare(&sim_out.episodes, &live_out.episodes, &agents_names(agents));
        let md = write_comparison(&dir, &table, &seg_cfg, config)?;
        write_results(&live_dir, &seg_cfg, &path, &live_out, &notes)?;
        println!("{md}");
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(dir)
}

/// Starts one replica of `[app]` behind a front and waits for it to be Ready (60 s at most).
///
/// # Errors
/// The app does not start, refuses its flags (its stderr is quoted) or is not Ready in time.
fn preflight(config: &LiveConfig) -> Result<()> {
    use adapters::{FrontConfig, ProcessScaler, ProcessScalerConfig, Scaler};
    let what = || {
        format!(
            "app: {} {} does not start a Ready replica",
            config.app.binary.display(),
            config.app.args.join(" ")
        )
    };
    let port = adapters::local_prometheus::free_port()?;
    let mut scaler = ProcessScaler::new(ProcessScalerConfig {
        binary: config.app.binary.clone(),
        extra_args: config.app.args.clone(),
        name_prefix: "preflight".into(),
        front: FrontConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            ..FrontConfig::default()
        },
        ..ProcessScalerConfig::default()
    })
    .with_context(what)?;
    scaler.set_replicas(1).with_context(what)?;
    scaler
        .wait_ready(1, std::time::Duration::from_secs(60))
        .with_context(what)?;
    Ok(())
}

fn agents_names(agents: &[crate::config::AgentSpec]) -> Vec<String> {
    agents.iter().map(|a| a.name.clone()).collect()
}

/// Every agent of `cfg` on the segment, for the config's evaluation seeds.
fn simulate(
    cfg: &crate::config::ExperimentConfig,
    trained: &Trained,
    t: &Traffic,
) -> Result<(Vec<EpisodeRecord>, Vec<TickRecord>)> {
    let (mut eps, mut ticks) = (Vec::new(), Vec::new());
    let first = cfg.evaluation.first_seed;
    for spec in &cfg.agents {
        for seed in first..first + cfg.evaluation.seeds {
            let keep = seed < first + cfg.output.timeseries_seeds;
            let (r, s) = evaluate(cfg, spec, trained, t, seed, keep)?;
            eps.push(r);
            ticks.extend(s);
        }
    }
    Ok((eps, ticks))
}
