//! Simulator invariants (DESIGN.md section 2) as property tests, hand-computed scenarios and
//! determinism.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use sim::config::ServiceMode;
use sim::trace::RateSeries;
use sim::workload::Arrivals;
use sim::{PodPhase, Scenario, Simulation, TickStats};

fn constant(rps: f64, minutes: usize) -> Arc<RateSeries> {
    Arc::new(RateSeries {
        step_s: 60.0,
        values: vec![rps; minutes],
    })
}

fn fixed(replicas: u32) -> Scenario {
    let mut sc = Scenario::default();
    sc.deployment.initial_replicas = replicas;
    sc.deployment.min_replicas = 1;
    sc
}

#[test]
fn hand_computed_constant_load() {
    // 3 Ready pods, 60 req/s deterministic for 10 minutes, each pod serves 50 req/s.
    let sc = fixed(3);
    let mut sim = Simulation::new(&sc, constant(60.0, 10), Arrivals::Deterministic, 1).unwrap();
    sim.advance(Duration::from_secs(3600), |_| {});
    let s = sim.summary();
    assert_eq!(s.arrivals, 36_000.0); // 60 req/s x 600 s
    assert_eq!(s.served, 36_000.0);
    assert_eq!(s.dropped, 0.0);
    // Per pod: 20 req/s x 20 ms = 400 millicores + 5 idle = 405 of 500 requested.
    assert!((s.cpu_utilization_mean - 0.81).abs() < 1e-12);
    // 3 pods x 600 s = 0.5 pod-hours; x 0.5 cores requested = 0.25 core-hours.
    assert!((s.pod_hours - 0.5).abs() < 1e-12);
    assert!((s.cpu_core_hours - 0.25).abs() < 1e-12);
    assert_eq!(s.scaling_actions, 0.0);
    assert_eq!(s.slo_violation_pct, 0.0);
}

#[test]
fn hand_computed_overload() {
    // 1 pod (50 req/s) offered 80 req/s for 10 minutes: it serves exactly 50 every second and
    // the rest waits up to the 10 s timeout, then is dropped.
    let mut sc = fixed(1);
    sc.deployment.max_replicas = 1;
    let mut sim = Simulation::new(&sc, constant(80.0, 10), Arrivals::Deterministic, 1).unwrap();
    let mut last = TickStats::default();
    sim.advance(Duration::from_secs(600), |t| last = *t);
    let s = sim.summary();
    assert_eq!(s.arrivals, 48_000.0);
    assert_eq!(s.served, 30_000.0);
    // Oldest first: each second the pod serves 50 from the segment that arrived 10.5 s ago
    // (arrivals count at mid-tick) and the other 30 of it time out. So at the end the backlog
    // holds the 10 whole segments aged 0.5 .. 9.5 s: 10 x 80 = 800.
    assert_eq!(last.backlog, 800.0);
    assert_eq!(s.dropped, 48_000.0 - 30_000.0 - 800.0);
    // The pod runs at its 1000 millicore limit + 5 idle = 2.01 x its 500 request.
    assert!((s.cpu_utilization_mean - 2.01).abs() < 1e-12);
    // Only the first tick, whose requests did not wait yet, meets the SLO: 599 of 600 ticks.
    assert!((s.slo_violation_pct - 100.0 * 599.0 / 600.0).abs() < 1e-9);
}

fn run_ticks(mode: ServiceMode, seed: u64) -> Vec<TickStats> {
    let mut sc = fixed(2);
    sc.service.mode = mode;
    let traffic = Arc::new(RateSeries {
        step_s: 60.0,
        values: vec![30.0, 90.0, 150.0, 20.0, 60.0],
    });
    let mut sim = Simulation::new(&sc, traffic, Arrivals::Poisson, seed).unwrap();
    let mut ticks = Vec::new();
    let mut k = 0;
    while !sim.is_finished() {
        sim.set_desired_replicas([2, 5, 1, 8, 3][k % 5]);
        k += 1;
        sim.advance(Duration::from_secs(15), |t| ticks.push(*t));
    }
    ticks
}

#[test]
fn same_seed_same_trajectory_different_seed_different() {
    for mode in [ServiceMode::Fluid, ServiceMode::Request] {
        let a = run_ticks(mode, 7);
        let b = run_ticks(mode, 7);
        let c = run_ticks(mode, 8);
        assert_eq!(a, b, "{mode:?}");
        assert_ne!(a, c, "{mode:?}");
        assert_eq!(a.len(), 300);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn invariants_hold(
        rates in prop::collection::vec(0.0f64..400.0, 1..6),
        actions in prop::collection::vec(0u32..30, 1..40),
        initial in 1u32..6,
        request_mode in any::<bool>(),
        crash_rate in prop_oneof![Just(0.0), 0.5f64..20.0],
        node_failures in prop_oneof![Just(0.0), 0.1f64..2.0],
        nodes in 1u32..5,
        seed in any::<u64>(),
    ) {
        let mut sc = Scenario::default();
        sc.deployment.initial_replicas = initial;
        sc.deployment.min_replicas = 1;
        sc.deployment.max_replicas = 20;
        sc.cluster.nodes = nodes;
        sc.cluster.max_nodes = nodes + 2;
        sc.cluster.node_failure_rate_per_hour = node_failures;
        sc.pod.crash_rate_per_hour = crash_rate;
        sc.pod.startup_cpu_burst_milli = 300;
        sc.pod.startup_cpu_burst_s = 20.0;
        sc.service.mode = if request_mode { ServiceMode::Request } else { ServiceMode::Fluid };
        let traffic = Arc::new(RateSeries { step_s: 60.0, values: rates });
        let mut sim = Simulation::new(&sc, traffic, Arrivals::Poisson, seed).unwrap();
        let (mut arrived, mut served, mut dropped) = (0.0, 0.0, 0.0);
        let mut last_t = 0.0;
        let mut k = 0;
        while !sim.is_finished() {
            let set = sim.set_desired_replicas(actions[k % actions.len()]);
            prop_assert!((1..=20).contains(&set));
            k += 1;
            let mut bad = None;
            sim.advance(Duration::from_secs(15), |t| {
                arrived += t.arrivals;
                served += t.served;
                dropped += t.dropped;
                let rhs = served + dropped + t.backlog;
                if (arrived - rhs).abs() > 1e-6 * arrived.max(1.0) {
                    bad = Some(format!(
                        "t={}: arrived {arrived} != served + dropped + queued {rhs}", t.time_s
                    ));
                }
                if t.time_s <= last_t {
                    bad = Some(format!("time not monotonic: {} after {last_t}", t.time_s));
                }
                last_t = t.time_s;
                if !(1..=20).contains(&t.desired_replicas) {
                    bad = Some(format!("desired {} out of bounds", t.desired_replicas));
                }
            });
            prop_assert!(bad.is_none(), "{}", bad.unwrap_or_default());
            let st = sim.observe();
            prop_assert!(st.ready_replicas <= st.status_replicas);
            prop_assert_eq!(st.status_replicas, st.ready_replicas + st.pending_replicas);
            for p in &st.pods {
                if p.ready {
                    // Never Ready before it started.
                    prop_assert_eq!(p.phase, PodPhase::Running);
                    let started = p.start_time.expect("a Ready pod has a start time");
                    let ready_at = p.ready_last_transition.expect("Ready has a transition");
                    prop_assert!(started <= ready_at && ready_at <= st.time);
                }
            }
        }
    }
}

#[test]
fn fluid_tick_arrivals_are_the_simulations_own_draws() {
    // A varying trace (three 60 s bins), Poisson arrivals, 0.5 s ticks.
    let traffic = Arc::new(RateSeries {
        step_s: 60.0,
        values: vec![40.0, 120.0, 75.0],
    });
    let mut sc = fixed(3);
    sc.service.tick_s = 0.5;
    for seed in [1u64, 7] {
        let expected = sim::engine::fluid_tick_arrivals(&sc, &traffic, Arrivals::Poisson, seed);
        let mut sim = Simulation::new(&sc, traffic.clone(), Arrivals::Poisson, seed).unwrap();
        let mut got = Vec::new();
        sim.advance(Duration::from_secs(180), |t| got.push(t.arrivals));
        assert_eq!(expected.len(), got.len());
        assert_eq!(expected.len(), 360);
        for (k, ((rate, count), arrived)) in expected.iter().zip(&got).enumerate() {
            assert_eq!(count, arrived, "tick {k}");
            assert_eq!(*rate, traffic.values[k / 120], "tick {k}");
        }
    }
}
