//! `LiveEnv` on the operator tests' in-memory scaler and scripted observer, with a 20 ms
//! decision interval: action map, bounds, cooldown, hand-computed rewards, stale metrics,
//! failed actions, truncation, and generic `Env` code (TimeLimit) running on it unchanged.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use envs::{Env, ScalingEnvConfig, Space, TimeLimit};

use super::{LiveEnv, LiveEnvConfig};
use crate::operator::stages::{MetricsHealth, SloConfig};
use crate::operator::tests::{FakeScaler, Scripted};

const INTERVAL_S: f64 = 0.02;

fn config(cooldown_s: f64, initial: u32) -> LiveEnvConfig {
    LiveEnvConfig {
        env: ScalingEnvConfig {
            decision_interval_s: INTERVAL_S,
            cooldown_s,
            max_step: 2,
            ..ScalingEnvConfig::default()
        },
        min_replicas: 1,
        max_replicas: 4,
        initial_replicas: initial,
        rate_scale_rps: 10.0,
        slo: SloConfig::default(),
        episode_s: 600.0,
        ready_timeout_s: 1.0,
    }
}

fn env(
    cfg: LiveEnvConfig,
    health: Vec<MetricsHealth>,
    cpu_milli: u64,
    fail: u32,
) -> LiveEnv<Scripted, FakeScaler> {
    let observer = Scripted {
        health: VecDeque::from(health),
        cpu_milli,
    };
    let scaler = FakeScaler {
        desired: 1,
        fail,
        sets: Vec::new(),
    };
    LiveEnv::new(cfg, observer, scaler).unwrap()
}

#[test]
fn actions_follow_the_action_map_within_bounds() {
    let mut e = env(config(0.0, 1), vec![], 500, 0);
    let (obs, info) = e.reset(Some(7));
    assert_eq!(e.seed(), Some(7));
    assert!(e.observation_space().contains(&obs));
    assert_eq!(info.step.desired_replicas, 1);
    assert_eq!(e.action_space().n, 5); // Discrete(2 * max_step + 1)
                                       // Action i changes the replicas by i - max_step: +2, +2 (clamped to 4), -2.
    let wanted = [(4, 3), (4, 4), (0, 2)];
    for (action, replicas) in wanted {
        let s = e.step(action);
        assert_eq!(s.info.step.desired_replicas, replicas, "action {action}");
        assert!(e.observation_space().contains(&s.obs));
        assert!(!s.terminated && !s.truncated);
    }
    // The reset's own set, then one per change; the clamped 5 was asked as 4.
    assert_eq!(e.scaler().sets, vec![1, 3, 4, 2]);
}

#[test]
fn cooldown_refuses_a_second_change() {
    let mut e = env(config(5.0, 1), vec![], 500, 0);
    e.reset(None);
    let first = e.step_desired(3);
    assert!(first.info.changed);
    let second = e.step_desired(1);
    assert!(!second.info.changed, "a change 20 ms into a 5 s cooldown");
    assert_eq!(second.info.step.desired_replicas, 3);
    assert_eq!(e.scaler().sets, vec![1, 3]);
}

#[test]
fn reward_is_the_simulated_envs_on_the_observed_figures() {
    // seed-discrete, band 0.5-0.8: every pod at 500 of 1000 millicores (utilization 0.5).
    let mut e = env(config(0.0, 2), vec![], 500, 0);
    e.reset(None);
    // 2 pods use 1000 m; needed = ceil(1000 / 800) = 2; no waste, in band: +10.
    let s = e.step_desired(2);
    assert!(!s.info.changed);
    assert_eq!(s.reward, 10.0);
    assert!((s.info.step.cpu_utilization - 0.5).abs() < 1e-12);
    // The scripted rate is 10 req/s: 0.2 requests in a 20 ms step, none dropped.
    assert!((s.info.step.arrivals - 10.0 * INTERVAL_S).abs() < 1e-12);
    assert_eq!(s.info.step.dropped, 0.0);
    assert_eq!((s.info.step.ticks, s.info.step.slo_violated_ticks), (1, 0));
    // 4 pods use 2000 m; needed = ceil(2000 / 800) = 3: one wasted pod, 10 - 1 = 9.
    let s = e.step_desired(4);
    assert!(s.info.changed);
    assert_eq!(s.reward, 9.0);
    assert_eq!(s.info.billed_pods, 4);
}

#[test]
fn stale_metrics_give_no_reward_and_say_so() {
    let stale = MetricsHealth::Stale { age_s: 40.0 };
    let mut e = env(
        config(0.0, 2),
        vec![MetricsHealth::Fresh, stale.clone()],
        500,
        0,
    );
    e.reset(None);
    let s = e.step_desired(2);
    assert_eq!(s.info.health, stale);
    assert_eq!(s.reward, 0.0);
    assert!(e.observation_space().contains(&s.obs));
    // Fresh again: the reward is back.
    assert_eq!(e.step_desired(2).reward, 10.0);
}

#[test]
fn a_failed_action_is_reported_and_the_scalers_count_stands() {
    // The reset's set fails (fail = 1 covers it): the scaler stays at 1. Then one more failure.
    let mut e = env(config(0.0, 1), vec![], 500, 2);
    e.reset(None);
    let s = e.step_desired(3);
    let err = s.info.action_error.expect("the scaler refused");
    assert!(err.contains("refused to set 3"), "{err}");
    assert!(!s.info.changed);
    assert_eq!(s.info.step.desired_replicas, 1);
    // The next change goes through.
    let s = e.step_desired(3);
    assert!(s.info.action_error.is_none() && s.info.changed);
    assert_eq!(s.info.step.desired_replicas, 3);
}

#[test]
fn steps_are_paced_on_the_wall_clock_and_truncate() {
    let mut cfg = config(0.0, 1);
    cfg.episode_s = 3.0 * INTERVAL_S;
    let mut e = env(cfg, vec![], 500, 0);
    e.reset(None);
    let mut k = 0;
    loop {
        k += 1;
        let s = e.step_desired(1);
        // Step k ends no earlier than k intervals after the reset.
        assert!(s.info.step.time_s >= k as f64 * INTERVAL_S - 1e-9);
        if s.truncated {
            break;
        }
        assert!(
            k < 3,
            "step {k} reached the episode length and must truncate"
        );
    }
    let after = catch_unwind(AssertUnwindSafe(|| e.step_desired(1)));
    assert!(after.is_err(), "no hidden autoreset");
    // A reset starts a new episode.
    e.reset(None);
    assert!(!e.step_desired(1).truncated);
}

#[test]
fn generic_env_code_runs_unchanged() {
    // Gymnasium's TimeLimit over the live env: 4 steps, then truncated.
    let mut e = TimeLimit::new(env(config(0.0, 1), vec![], 500, 0), 4);
    e.reset(Some(1));
    let mut steps = 0;
    loop {
        steps += 1;
        if e.step(2).is_done() {
            break;
        }
    }
    assert_eq!(steps, 4);
    assert_eq!(e.inner().scaler().sets, vec![1]); // action 2 = no change
}
