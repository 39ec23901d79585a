//! The oracle on a constant load, against the simulator itself: it settles on the
//! hand-computed minimum, that count keeps every tick within the SLO, and one pod fewer does
//! not (so the minimum is the simulator's, not just the formula's).

use std::sync::Arc;

use agents::oracle::{Oracle, OracleConfig, OracleVariant};
use agents::Autoscaler;
use envs::{Env, ScalingEnv, ScalingEnvConfig};
use sim::trace::RateSeries;
use sim::workload::Arrivals;
use sim::Scenario;

/// Runs `decide` (replicas from the state) over 30 minutes of a constant `rps` in `sc` (two
/// initial replicas); returns the replicas of the last decision and the SLO-violating ticks
/// after the first five minutes.
fn run(
    rps: f64,
    sc: &Scenario,
    arrivals: Arrivals,
    mut decide: impl FnMut(&sim::ClusterState) -> u32,
) -> (u32, u32) {
    let traffic = Arc::new(RateSeries {
        step_s: 60.0,
        values: vec![rps; 30],
    });
    let mut sc = sc.clone();
    sc.deployment.initial_replicas = 2;
    let cfg = ScalingEnvConfig {
        cooldown_s: 0.0,
        ..ScalingEnvConfig::default()
    };
    let mut env = ScalingEnv::new(cfg, sc, traffic, arrivals, rps).unwrap();
    env.reset(Some(11));
    let mut violated = 0;
    let last = loop {
        let last = decide(env.cluster_state());
        let settled = env.cluster_state().time.as_secs_f64() >= 300.0;
        let step = env.step_desired(last, |t| {
            if settled && t.slo_violated {
                violated += 1;
            }
        });
        if step.is_done() {
            break last;
        }
    };
    (last, violated)
}

#[test]
fn constant_load_gets_the_hand_computed_minimum_and_it_is_minimal() {
    // Defaults: mu = 1000 m / 20 ms = 50 req/s per pod, p95 objective 250 ms.
    // s* = 1 - ln 20 / (50 x 0.25) = 0.760341. Evenly spaced arrivals (D/M/1):
    // rho_max = -(1 - s*) / ln s* = 0.874706, so n pods carry 50 n x 0.874706 req/s:
    // 200 req/s -> 5 pods (rho 0.80; 4 pods would run at rho 1.0).
    // 180 req/s -> 5 pods (4 carry only 174.9).
    // 100 req/s -> 3 pods (2 carry 87.5, 3 carry 131.2).
    for (rps, expected) in [(200.0, 5), (180.0, 5), (100.0, 3)] {
        let sc = Scenario::default();
        let traffic = RateSeries {
            step_s: 60.0,
            values: vec![rps; 30],
        };
        let mut oracle = Oracle::new(
            OracleConfig::default(),
            &sc,
            Arrivals::Deterministic,
            15.0,
            &traffic,
            11,
        )
        .unwrap();
        let (n, violated) = run(rps, &sc, Arrivals::Deterministic, |s| {
            oracle.decide(s).desired_replicas
        });
        assert_eq!(n, expected, "{rps} req/s");
        assert_eq!(violated, 0, "{rps} req/s with {n} pods violates the SLO");
        // One pod fewer, held from the start: the simulator violates the SLO on every tick.
        let (_, fewer) = run(rps, &sc, Arrivals::Deterministic, |_| expected - 1);
        assert!(
            fewer > 1000,
            "{rps} req/s with {} pods: {fewer} violations",
            expected - 1
        );
    }
}

#[test]
fn poisson_constant_load_stays_within_the_slo() {
    // 212 req/s Poisson: five pods by the rate (rho_max(5) = 0.850959 > 0.848), six on the
    // ticks whose draw exceeds 250 arrivals. No tick violates the SLO, for either variant.
    for variant in [OracleVariant::Instant, OracleVariant::Realistic] {
        let config = OracleConfig {
            variant,
            ..OracleConfig::default()
        };
        let traffic = RateSeries {
            step_s: 60.0,
            values: vec![212.0; 30],
        };
        let sc = config.scenario(&Scenario::default());
        let mut oracle = Oracle::new(config, &sc, Arrivals::Poisson, 15.0, &traffic, 11).unwrap();
        let (n, violated) = run(212.0, &sc, Arrivals::Poisson, |s| {
            oracle.decide(s).desired_replicas
        });
        assert!((5..=6).contains(&n), "{variant:?}: {n}");
        assert_eq!(violated, 0, "{variant:?}");
    }
}
