//! Criterion benches of DQN on the CPU backend: gradient updates per second (a minibatch of 64
//! on the default 4 -> 64 -> 64 -> 21 network) and `scaling-v0` env steps per second while
//! training (one update every 4 steps, the defaults).
//!
//! Run: `cargo bench -p agents --bench dqn`.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;

use agents::dqn::{Batch, Dqn, DqnConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use envs::{ScalingEnv, ScalingEnvConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::trace::RateSeries;
use sim::workload::Arrivals;
use sim::Scenario;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dqn");
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let b = 64;
    let batch = Batch {
        obs: (0..b * 4).map(|_| rng.random::<f32>()).collect(),
        actions: (0..b).map(|_| rng.random_range(0..21)).collect(),
        rewards: (0..b).map(|_| rng.random::<f32>()).collect(),
        next_obs: (0..b * 4).map(|_| rng.random::<f32>()).collect(),
        terminated: vec![false; b],
    };
    let mut agent = Dqn::new(DqnConfig::default(), 4, 21, 0).unwrap();
    g.throughput(Throughput::Elements(1));
    g.bench_function("gradient_update_batch64", |bench| {
        bench.iter(|| agent.update(&batch))
    });

    let values = (0..1440)
        .map(|m| 200.0 - 160.0 * (std::f64::consts::TAU * f64::from(m) / 1440.0).cos())
        .collect();
    let day = Arc::new(RateSeries {
        step_s: 60.0,
        values,
    });
    let env_cfg = ScalingEnvConfig::default();
    let mut env =
        ScalingEnv::new(env_cfg, Scenario::default(), day, Arrivals::Poisson, 360.0).unwrap();
    let steps = 2_000;
    let cfg = DqnConfig {
        total_steps: steps,
        learning_starts: 100,
        ..DqnConfig::default()
    };
    g.throughput(Throughput::Elements(steps as u64));
    g.sample_size(10);
    g.bench_function("train_2000_env_steps", |bench| {
        bench.iter(|| {
            let mut agent = Dqn::new(cfg.clone(), 4, 21, 1).unwrap();
            agent.train(&mut env, 1, |_| {}).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
