//! `nimbusguard bench`: throughput of the simulator and the env (DESIGN.md section 8). Timings
//! live here and in the criterion benches, never in tests.
//!
//! Measured, each on one thread:
//! - `env_steps_per_s`: `scaling-v0` in fluid mode with uniformly random actions, on one day of
//!   the NASA trace (peak 400 req/s), resetting at the end of each episode;
//! - `sim_seconds_per_wall_s`: one day of the same trace under the HPA, fluid mode;
//! - `request_mode_sim_seconds_per_wall_s`: one hour of it in request mode;
//! - `scaling[]`: simulated seconds per wall second with 10, 100 and 1000 Ready pods at 60% load
//!   (fluid), with the nodes they need, and env steps per second with random actions (steps of
//!   up to a fifth of the pods) in the same cluster;
//! - `nodes_scaling[]`: 100 pods churning by 10 every 15 s on 14, 140 and 1400 nodes (the
//!   scheduler scans every node for each pod it places).
//!
//! With `--sweep`, also the wall time of a 40-run sweep on 1 and on 2 threads
//! ([`crate::bench_sweep`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
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
    /// `scaling-v0` steps per second with random actions up to `pods` replicas (NaN where not
    /// measured; `null` in JSON).
    pub env_steps_per_s: f64,
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
    /// Growth with the cluster size (pods, with the nodes they need).
    pub scaling: Vec<ScalePoint>,
    /// Growth with the number of nodes (100 pods churning by 10 every 15 s).
    pub nodes_scaling: Vec<ScalePoint>,
    /// `--sweep`: the 40-run sweep with 1 and 2 threads (absent without the flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<crate::bench_sweep::SweepScaling>,
}

fn day_of_trace() -> Result<Arc<RateSeries>> {
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let w = WorkloadConfig {
        start_s: 2.0 * 86400.0,
        duration_s: Some(2.0 * 86400.0),
        peak_rps: 400.0,
        ..WorkloadConfig::default()
    };
    let windows = w.build(&base, 0)?;
    Ok(Arc::new(windows.evaluation))
}

fn hpa_run(sc: &Scenario, traffic: Arc<RateSeries>) -> Result<(f64, f64, f64)> {
    let mut sim = Simulation::new(sc, traffic, Arrivals::Poisson, 1)?;
    let mut hpa = Hpa::new(HpaConfig::default())?;
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

/// `scaling-v0` steps per second with uniformly random actions, for about `seconds`.
fn env_steps(env: &mut ScalingEnv, seconds: f64) -> f64 {
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
    steps as f64 / t0.elapsed().as_secs_f64()
}

/// Simulated seconds per wall second of one whole run of `traffic`; `control(k, current)` may
/// set the replicas before each 15 s step `k`.
fn sim_seconds_per_wall_s(
    sc: &Scenario,
    traffic: Arc<RateSeries>,
    mut control: impl FnMut(u64, u32) -> Option<u32>,
) -> Result<f64> {
    let mut sim = Simulation::new(sc, traffic, Arrivals::Poisson, 1)?;
    let t0 = Instant::now();
    let mut k = 0;
    while !sim.is_finished() {
        if let Some(r) = control(k, sim.desired_replicas()) {
            sim.set_desired_replicas(r);
        }
        k += 1;
        sim.advance(Duration::from_secs(15), |_| {});
    }
    Ok(sim.now().as_secs_f64() / t0.elapsed().as_secs_f64())
}

/// Runs the measurements; prints a table or, with `json`, one JSON object.
///
/// # Errors
/// The bundled trace cannot be read.
pub fn run(json: bool, seconds: f64, sweep: bool) -> Result<()> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        anyhow::bail!("--seconds: expected a number of seconds in (0, 3600], got {seconds}");
    }
    let day = day_of_trace()?;
    let peak = day.peak();
    // Env steps per second with random actions.
    let mut env = ScalingEnv::new(
        ScalingEnvConfig::default(),
        Scenario::default(),
        day.clone(),
        Arrivals::Poisson,
        peak,
    )?;
    let env_steps_per_s = env_steps(&mut env, seconds);
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
    // Growth with cluster size: fixed replicas, and the env with random actions up to them.
    let mut scaling = Vec::new();
    for pods in [10u32, 100, 1000] {
        let sc = Scenario::default().with_fixed_replicas(pods);
        let rate = 0.6 * 50.0 * f64::from(pods);
        let traffic = Arc::new(RateSeries {
            step_s: 60.0,
            values: vec![rate; 60],
        });
        let sim_rate = sim_seconds_per_wall_s(&sc, traffic.clone(), |_, _| None)?;
        let mut env_sc = sc.clone();
        env_sc.deployment.min_replicas = 1;
        let env_cfg = ScalingEnvConfig {
            max_step: (pods / 5).max(1),
            ..ScalingEnvConfig::default()
        };
        let mut env = ScalingEnv::new(env_cfg, env_sc, traffic, Arrivals::Poisson, rate)?;
        scaling.push(ScalePoint {
            pods,
            nodes: sc.cluster.nodes,
            sim_seconds_per_wall_s: sim_rate,
            env_steps_per_s: env_steps(&mut env, seconds / 3.0),
        });
    }
    // Growth with nodes: 100 pods that churn by +-10 every 15 s, on ever more nodes.
    let mut nodes_scaling = Vec::new();
    for nodes in [14u32, 140, 1400] {
        let mut sc = Scenario::default().with_fixed_replicas(100);
        sc.deployment.min_replicas = 90;
        sc.deployment.max_replicas = 110;
        sc.cluster.nodes = nodes;
        sc.cluster.max_nodes = nodes;
        let traffic = Arc::new(RateSeries {
            step_s: 60.0,
            values: vec![3000.0; 60],
        });
        let rate = sim_seconds_per_wall_s(&sc, traffic, |k, cur| {
            Some(if k % 2 == 0 { cur + 10 } else { cur - 10 })
        })?;
        nodes_scaling.push(ScalePoint {
            pods: 100,
            nodes,
            sim_seconds_per_wall_s: rate,
            env_steps_per_s: f64::NAN,
        });
    }
    let report = BenchReport {
        env_steps_per_s,
        sim_seconds_per_wall_s: sim_s / wall,
        sim_day_wall_ms: wall * 1000.0 * 86400.0 / sim_s,
        request_mode_sim_seconds_per_wall_s: rq_s / rq_wall,
        request_mode_requests_per_s: rq_requests / rq_wall,
        scaling,
        nodes_scaling,
        sweep: if sweep {
            Some(crate::bench_sweep::measure()?)
        } else {
            None
        },
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
        for p in report.scaling.iter().chain(&report.nodes_scaling) {
            let env = if p.env_steps_per_s.is_nan() {
                String::new()
            } else {
                format!(", {:.0} env steps per s", p.env_steps_per_s)
            };
            println!(
                "{:>5} pods on {:>4} nodes: {:.0} simulated s per wall s{env}",
                p.pods, p.nodes, p.sim_seconds_per_wall_s
            );
        }
        if let Some(s) = &report.sweep {
            println!(
                "sweep of {} runs: {:.1} s on 1 thread, {:.1} s on 2: speedup {:.2}x ({} cores; \
                 median of {} pairs)",
                s.runs,
                s.one_thread_s,
                s.two_threads_s,
                s.speedup_2_threads,
                s.available_cores,
                s.speedups.len()
            );
        }
    }
    Ok(())
}
