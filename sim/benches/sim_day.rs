//! Criterion bench: one simulated day of a diurnal load (fluid and request mode) and how a
//! fixed-size Deployment's simulation cost grows with its pods (10, 100, 1000).
//!
//! Run: `cargo bench -p sim --bench sim_day`.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sim::config::ServiceMode;
use sim::trace::RateSeries;
use sim::workload::Arrivals;
use sim::{Scenario, Simulation};

/// A day of sine-shaped load between 40 and 360 requests per second, per minute.
fn diurnal_day() -> Arc<RateSeries> {
    let values = (0..1440)
        .map(|m| 200.0 - 160.0 * (std::f64::consts::TAU * f64::from(m) / 1440.0).cos())
        .collect();
    Arc::new(RateSeries {
        step_s: 60.0,
        values,
    })
}

fn fixed(pods: u32) -> Scenario {
    Scenario::default().with_fixed_replicas(pods)
}

fn run(sc: &Scenario, traffic: Arc<RateSeries>) -> f64 {
    let mut sim = Simulation::new(sc, traffic, Arrivals::Poisson, 1).unwrap();
    while !sim.is_finished() {
        sim.advance(Duration::from_secs(15), |_| {});
    }
    sim.summary().served
}

fn bench(c: &mut Criterion) {
    let day = diurnal_day();
    let mut g = c.benchmark_group("one_day");
    g.sample_size(10);
    g.bench_function("fluid_12_pods", |b| b.iter(|| run(&fixed(12), day.clone())));
    let hour = Arc::new(RateSeries {
        step_s: 60.0,
        values: day.values[..60].to_vec(),
    });
    let mut rq = fixed(12);
    rq.service.mode = ServiceMode::Request;
    g.bench_function("request_12_pods_one_hour", |b| {
        b.iter(|| run(&rq, hour.clone()))
    });
    g.finish();
    let mut g = c.benchmark_group("one_hour_at_60pct_load");
    g.sample_size(10);
    for pods in [10u32, 100, 1000] {
        let rate = 0.6 * 50.0 * f64::from(pods);
        let traffic = Arc::new(RateSeries {
            step_s: 60.0,
            values: vec![rate; 60],
        });
        g.bench_with_input(BenchmarkId::from_parameter(pods), &pods, |b, &p| {
            b.iter(|| run(&fixed(p), traffic.clone()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
