//! `nimbusguard bench`: throughput of the simulator and the env (DESIGN.md section 8). Timings
//! live here and in the criterion benches, never in tests.
//!
//! Measured, each on one thread:
//! - `env_steps_per_s`: `scaling-v0` in fluid mode with uniformly random actions, on one day of
//!   the NASA trace (peak 400 req/s), resetting at the end of each episode;
//! - `sim_seconds_per_wall_s`: one day of the same trace under the HPA, fluid mode;
//! - `request_mode_sim_seconds_per_wall_s`: one hour of it in request mode;
//! - `scaling[]`: simulated seconds per wall second with 10, 100 and 1000 Ready pods at 60% load
//!   (fluid), with the nodes they need.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use agents::hpa::{Hpa, HpaConfig};
use envs::{Env, ScalingEnv, ScalingEnvConfig, Space};
use sim::config::ServiceMode;
use sim::trace::RateSeries;
use sim::workload::{Arrivals, WorkloadConfig};
use sim::{Scenario, Simulation};

/// One cluster size of the scaling measurement.
#[derive(Debug, Serialize)]
pub struct ScalePoint {
    /// Ready pods (fixed).
    pub pods: u32,
    /// Nodes.
    pub nodes: u32,
    /// Simulated seconds per wall second.
    pub sim_seconds_per_wall_s: f64,
}

/// The `--json` object.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// `scaling-v0` steps per second, fluid, random actions, one thread.
    pub env_steps_per_s: f64,
    /// Simulated seconds per wall second, one day under the HPA, fluid.
    pub sim_seconds_per_wall_s: f64,
    /// Wall milliseconds for that simulated day.
    pub sim_day_wall_ms: f64,
    /// Simulated seconds per wall second in request mode (one hour under the HPA).
    pub request_mode_sim_seconds_per_wall_s: f64,
    /// Requests simulated per wall second in request mode.
    pub request_mode_requests_per_s: f64,
    /// Growth with the cluster size.
    pub scaling: Vec<ScalePoint>,
}

fn day_of_trace() -> Result<Arc<RateSeries>> {
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let w = WorkloadConfig {
        start_s: 2.0 * 86400.0,
        duration_s: Some(2.0 * 86400.0),
        peak_rps: 400.0,
        ..WorkloadConfig::default()
    };
    let windows = w.build(&base, 0).map_err(|e| anyhow!("{e}"))?;
    Ok(Arc::new(windows.evaluation))
}

fn hpa_run(sc: &Scenario, traffic: Arc<RateSeries>) -> Result<(f64, f64, f64)> {
    let mut sim = Simulation::new(sc, traffic, Arrivals::Poisson, 1).map_err(|e| anyhow!("{e}"))?;
    let mut hpa = Hpa::new(HpaConfig::default()).map_err(|e| anyhow!("{e}"))?;
    let mut state = sim::ClusterState::default();
    let t0 = Instant::now();
    while !sim.is_finished() {
        sim.observe_into(&mut state);
        let d = hpa.decide(&state);
        sim.set_desired_replicas(d.desired_replicas);
        sim.advance(Duration::from_secs(15), |_| {});
    }
    let wall = t0.elapsed().as_secs_f64();
    Ok((sim.now().as_secs_f64(), wall, sim.summary().arrivals))
}

/// Runs the measurements; prints a table or, with `json`, one JSON object.
///
/// # Errors
/// The bundled trace cannot be read.
pub fn run(json: bool, seconds: f64) -> Result<()> {
    let day = day_of_trace()?;
    let peak = day.peak();
    // Env steps per second with random actions.
    let mut env = ScalingEnv::new(
        ScalingEnvConfig::default(),
        Scenario::default(),
        day.clone(),
        Arrivals::Poisson,
        peak,
    )
    .map_err(|e| anyhow!("{e}"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    env.reset(Some(0));
    let (mut steps, t0) = (0u64, Instant::now());
    while t0.elapsed().as_secs_f64() < seconds {
        for _ in 0..1000 {
            let a = env.action_space().sample(&mut rng);
            steps += 1;
            if env.step(a).is_done() {
                env.reset(None);
            }
        }
    }
    let env_steps_per_s = steps as f64 / t0.elapsed().as_secs_f64();
    // One day under the HPA, fluid.
    let (sim_s, wall, _) = hpa_run(&Scenario::default(), day.clone())?;
    // One hour in request mode.
    let hour = Arc::new(RateSeries {
        step_s: day.step_s,
        values: day.values[..(3600.0 / day.step_s).ceil() as usize].to_vec(),
    });
    let mut rq = Scenario::default();
    rq.service.mode = ServiceMode::Request;
    let (rq_s, rq_wall, rq_requests) = hpa_run(&rq, hour)?;
    // Growth with cluster size.
    let mut scaling = Vec::new();
    for pods in [10u32, 100, 1000] {
        let sc = Scenario::default().with_fixed_replicas(pods);
        let rate = 0.6 * 50.0 * f64::from(pods);
        let traffic = Arc::new(RateSeries {
            step_s: 60.0,
            values: vec![rate; 60],
        });
        let mut sim =
            Simulation::new(&sc, traffic, Arrivals::Poisson, 1).map_err(|e| anyhow!("{e}"))?;
        let t0 = Instant::now();
        while !sim.is_finished() {
            sim.advance(Duration::from_secs(15), |_| {});
        }
        scaling.push(ScalePoint {
            pods,
            nodes: sc.cluster.nodes,
            sim_seconds_per_wall_s: 3600.0 / t0.elapsed().as_secs_f64(),
        });
    }
    let report = BenchReport {
        env_steps_per_s,
        sim_seconds_per_wall_s: sim_s / wall,
        sim_day_wall_ms: wall * 1000.0 * 86400.0 / sim_s,
        request_mode_sim_seconds_per_wall_s: rq_s / rq_wall,
        request_mode_requests_per_s: rq_requests / rq_wall,
        scaling,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "env steps per second (scaling-v0, fluid, random actions): {:.0}",
            report.env_steps_per_s
        );
        println!(
            "simulated seconds per wall second (1 day, HPA, fluid):   {:.0}",
            report.sim_seconds_per_wall_s
        );
        println!(
            "wall time for one simulated day (HPA, fluid):            {:.1} ms",
            report.sim_day_wall_ms
        );
        println!(
            "request mode: simulated s per wall s {:.0}, requests per s {:.0}",
            report.request_mode_sim_seconds_per_wall_s, report.request_mode_requests_per_s
        );
        for p in &report.scaling {
            println!(
                "{:>5} pods on {:>4} nodes: {:.0} simulated s per wall s",
                p.pods, p.nodes, p.sim_seconds_per_wall_s
            );
        }
    }
    Ok(())
}
