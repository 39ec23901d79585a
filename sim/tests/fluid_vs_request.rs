//! The `fluid` model against the exact `request` mode on steady loads, below and above
//! capacity (issue "Core": mean utilization within 2%, p95 latency within 15%).
//!
//! Tolerances: the request mode is itself a random sample (one hour, tens of thousands of
//! requests per load), so its p95 carries sampling noise of a few percent; the fluid model's
//! per-pod GI/M/1 formula is exact for this system in steady state, and its error comes from
//! per-tick Poisson fluctuations that briefly form a backlog. 15% on p95 and 2% (relative) on
//! utilization leave room for both without hiding a wrong model.

use std::sync::Arc;
use std::time::Duration;

use sim::config::ServiceMode;
use sim::trace::RateSeries;
use sim::workload::Arrivals;
use sim::{EpisodeSummary, Scenario, Simulation};

fn run(mode: ServiceMode, replicas: u32, rps: f64, seed: u64) -> EpisodeSummary {
    let mut sc = Scenario::default();
    sc.service.mode = mode;
    sc.deployment.initial_replicas = replicas;
    sc.deployment.min_replicas = replicas;
    sc.deployment.max_replicas = replicas;
    let traffic = Arc::new(RateSeries {
        step_s: 60.0,
        values: vec![rps; 60],
    });
    let mut sim = Simulation::new(&sc, traffic, Arrivals::Poisson, seed).unwrap();
    sim.advance(Duration::from_secs(3600), |_| {});
    sim.summary()
}

#[test]
fn fluid_matches_request_mode_on_steady_loads() {
    let mut report = String::new();
    let mut failures = Vec::new();
    let cases = [
        (4, 0.2),
        (4, 0.5),
        (4, 0.7),
        (4, 0.85),
        (4, 1.1),
        (4, 1.5),
        (1, 0.6),
        (12, 0.8),
        (12, 1.3),
    ];
    for (replicas, rho) in cases {
        // Each pod serves 50 req/s (1000 millicores / 20 ms).
        let rps = rho * 50.0 * f64::from(replicas);
        let f = run(ServiceMode::Fluid, replicas, rps, 1);
        let r = run(ServiceMode::Request, replicas, rps, 1);
        let du = (f.cpu_utilization_mean - r.cpu_utilization_mean).abs() / r.cpu_utilization_mean;
        let dp = (f.p95_latency_ms - r.p95_latency_ms).abs() / r.p95_latency_ms;
        report += &format!(
            "{replicas} pods, rho {rho}: util fluid {:.4} request {:.4} ({:.2}%), p95 fluid {:.1} request {:.1} ms ({:.1}%), dropped {:.2}% / {:.2}%\n",
            f.cpu_utilization_mean, r.cpu_utilization_mean, 100.0 * du,
            f.p95_latency_ms, r.p95_latency_ms, 100.0 * dp, f.dropped_pct, r.dropped_pct
        );
        if du > 0.02 || dp > 0.15 {
            failures.push((replicas, rho));
        }
    }
    eprintln!("{report}");
    assert!(
        failures.is_empty(),
        "fluid and request disagree at (pods, rho) {failures:?}:\n{report}"
    );
}
