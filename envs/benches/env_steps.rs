//! Criterion bench: `scaling-v0` steps with uniformly random actions (fluid mode, one thread).
//!
//! Run: `cargo bench -p envs --bench env_steps`.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use envs::{Env, ScalingEnv, ScalingEnvConfig, Space};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sim::trace::RateSeries;
use sim::workload::Arrivals;
use sim::Scenario;

fn bench(c: &mut Criterion) {
    let values = (0..1440)
        .map(|m| 200.0 - 160.0 * (std::f64::consts::TAU * f64::from(m) / 1440.0).cos())
        .collect();
    let day = Arc::new(RateSeries {
        step_s: 60.0,
        values,
    });
    let mut env = ScalingEnv::new(
        ScalingEnvConfig::default(),
        Scenario::default(),
        day,
        Arrivals::Poisson,
        360.0,
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    env.reset(Some(0));
    let mut g = c.benchmark_group("scaling_v0");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_random_steps", |b| {
        b.iter(|| {
            for _ in 0..1000 {
                let a = env.action_space().sample(&mut rng);
                if env.step(a).is_done() {
                    env.reset(None);
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
