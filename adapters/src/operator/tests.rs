//! The operator loop on a scripted observer and an in-memory scaler: fallbacks, recovery,
//! safety limits (hand-computed cases and a property over random wishes and failures).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use agents::hpa::{Hpa, HpaConfig};
use agents::Autoscaler;
use envs::{RewardCalculator, ScalingEnvConfig};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{ClusterState, ScaleDecision, SimTime};

use super::observe::pods_only;
use super::stages::{
    DecisionAgent, DecisionSource, MetricsHealth, Observe, Observed, RewardStage, SloConfig,
};
use super::telemetry::OperatorMetrics;
use super::{Cause, LoopConfig, Operator, SafetyConfig};
use crate::error::{Error, Result};
use crate::scaler::{PodInfo, Scaler};

/// Replicas in memory: every pod Ready at once; `set_replicas` fails while `fail` > 0.
pub(crate) struct FakeScaler {
    pub(crate) desired: u32,
    pub(crate) fail: u32,
    pub(crate) sets: Vec<u32>,
}

impl Scaler for FakeScaler {
    fn name(&self) -> &str {
        "fake"
    }
    fn desired_replicas(&self) -> u32 {
        self.desired
    }
    fn pods(&self) -> Vec<PodInfo> {
        (0..self.desired)
            .map(|i| PodInfo {
                name: format!("fake-{i}"),
                addr: None,
                ready: true,
                ready_since: Some(SystemTime::UNIX_EPOCH),
                started_at: Some(SystemTime::UNIX_EPOCH),
                terminating: false,
            })
            .collect()
    }
    fn set_replicas(&mut self, n: u32) -> Result<()> {
        if self.fail > 0 {
            self.fail -= 1;
            return Err(Error::Config(format!("refused to set {n}")));
        }
        self.desired = n;
        self.sets.push(n);
        Ok(())
    }
    fn refresh(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Metrics health in script order (then fresh); every pod at `cpu_milli` usage.
pub(crate) struct Scripted {
    pub(crate) health: VecDeque<MetricsHealth>,
    pub(crate) cpu_milli: u64,
}

impl Observe for Scripted {
    fn observe(&mut self, scaler: &mut dyn Scaler) -> Observed {
        let health = self.health.pop_front().unwrap_or(MetricsHealth::Fresh);
        let mut state = pods_only(scaler, 1000, 256 << 20);
        if health.is_fresh() {
            for p in &mut state.pods {
                p.cpu_usage_milli = Some(self.cpu_milli);
                p.memory_usage_bytes = Some(64 << 20);
                p.metric_timestamp = Some(SimTime::ZERO);
                p.start_time = Some(SimTime::ZERO);
                p.ready_last_transition = Some(SimTime::ZERO);
                p.metric_window_s = 15;
            }
            state.request_rate_per_s = 10.0;
        }
        Observed { state, health }
    }
}

/// Wishes drawn from a seeded stream (0..=30), whatever the state.
struct RandomWish(ChaCha8Rng);

impl Autoscaler for RandomWish {
    fn name(&self) -> &str {
        "random"
    }
    fn decide(&mut self, _: &ClusterState) -> ScaleDecision {
        ScaleDecision::new(self.0.random_range(0..=30), "Random")
    }
}

/// Always wishes `n`.
struct Fixed(u32);

impl Autoscaler for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    fn decide(&mut self, _: &ClusterState) -> ScaleDecision {
        ScaleDecision::new(self.0, "Fixed")
    }
}

fn operator(
    agent: Box<dyn Autoscaler>,
    safety: SafetyConfig,
    health: Vec<MetricsHealth>,
    scaler: FakeScaler,
    cpu_milli: u64,
) -> Operator<Scripted, FakeScaler> {
    let hpa = Hpa::new(HpaConfig {
        min_replicas: safety.min_replicas,
        max_replicas: safety.max_replicas,
        ..HpaConfig::default()
    })
    .unwrap();
    let cfg = LoopConfig {
        decision_interval_s: 15.0,
        safety,
    };
    Operator::new(
        &cfg,
        Scripted {
            health: health.into(),
            cpu_milli,
        },
        DecisionAgent::new(agent, hpa),
        scaler,
        RewardStage::new(
            RewardCalculator::new(&ScalingEnvConfig::default()),
            SloConfig::default(),
        ),
        OperatorMetrics::new(),
        None,
    )
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn stale_missing_or_unreachable_metrics_fall_back_to_the_hpa_rules() {
    let safety = SafetyConfig {
        min_replicas: 1,
        max_replicas: 10,
        max_step: 10,
        cooldown_s: 0.0,
    };
    let health = vec![
        MetricsHealth::Fresh,
        MetricsHealth::Stale { age_s: 120.0 },
        MetricsHealth::Unreachable {
            error: "connection refused".into(),
        },
        MetricsHealth::Missing {
            what: vec!["pod_cpu_millicores".into()],
        },
    ];
    let scaler = FakeScaler {
        desired: 2,
        fail: 0,
        sets: vec![],
    };
    let mut op = operator(Box::new(Fixed(7)), safety, health, scaler, 500);
    let t = op.decide_at(secs(0), Cause::Interval).clone();
    assert_eq!(t.decision.source, DecisionSource::Agent);
    assert_eq!((t.action.from, t.action.to), (2, 7));
    for (i, label) in ["stale", "unreachable", "missing"].iter().enumerate() {
        let t = op
            .decide_at(secs(15 * (i as u64 + 1)), Cause::Interval)
            .clone();
        assert_eq!(t.decision.source, DecisionSource::HpaFallback, "{label}");
        assert_eq!(t.metrics.label(), *label);
        // No usable metrics: the HPA keeps the current count, as the controller does.
        assert_eq!(t.action.to, 7, "{label}: {:?}", t.decision);
        assert!(!t.action.changed);
    }
    let text = op.metrics().encode();
    for line in [
        "nimbusguard_operator_decisions_total{source=\"agent\"} 1",
        "nimbusguard_operator_decisions_total{source=\"hpa_fallback\"} 3",
        "nimbusguard_operator_fallbacks_total{reason=\"stale\"} 1",
        "nimbusguard_operator_fallbacks_total{reason=\"unreachable\"} 1",
        "nimbusguard_operator_fallbacks_total{reason=\"missing\"} 1",
        "nimbusguard_operator_desired_replicas 7",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[test]
fn a_failed_action_takes_the_recovery_branch() {
    let safety = SafetyConfig {
        min_replicas: 1,
        max_replicas: 10,
        max_step: 2,
        cooldown_s: 60.0,
    };
    // First set fails, the retry succeeds.
    let scaler = FakeScaler {
        desired: 1,
        fail: 1,
        sets: vec![],
    };
    let mut op = operator(Box::new(Fixed(9)), safety, vec![], scaler, 900);
    let t = op.decide_at(secs(0), Cause::Trigger).clone();
    assert_eq!(t.action.to, 3, "max_step 2 from 1");
    assert!(t
        .action
        .error
        .as_deref()
        .unwrap()
        .contains("refused to set 3"));
    let r = t.recovery.unwrap();
    assert!(r.retried && r.recovered);
    assert_eq!(op.scaler().desired, 3);
    // The recovered change starts the cooldown.
    let t = op.decide_at(secs(30), Cause::Interval).clone();
    assert_eq!(t.action.to, 3);
    assert_eq!(
        t.action.guarded.limited_by,
        vec![super::Limit::MaxStep, super::Limit::Cooldown]
    );
    // Both attempts fail: nothing changes, no cooldown recorded, next decision tries again.
    op.scaler_mut().fail = 2;
    let t = op.decide_at(secs(90), Cause::Interval).clone();
    let r = t.recovery.unwrap();
    assert!(r.retried && !r.recovered);
    assert_eq!(op.scaler().desired, 3);
    let t = op.decide_at(secs(91), Cause::Interval).clone();
    assert_eq!((t.action.from, t.action.to), (3, 5));
    assert!(t.action.error.is_none());
    let text = op.metrics().encode();
    assert!(
        text.contains("nimbusguard_operator_action_failures_total 2"),
        "{text}"
    );
    assert!(
        text.contains("nimbusguard_operator_triggers_total 1"),
        "{text}"
    );
}

#[test]
fn the_previous_decision_is_scored_on_the_next_fresh_observation() {
    let safety = SafetyConfig::default();
    let scaler = FakeScaler {
        desired: 2,
        fail: 0,
        sets: vec![],
    };
    // 600 m of 1000 m per pod: u = 0.6 in the band; used 1200 m -> needed 2, none wasted.
    let health = vec![MetricsHealth::Fresh, MetricsHealth::Stale { age_s: 40.0 }];
    let mut op = operator(Box::new(Fixed(2)), safety, health, scaler, 600);
    assert_eq!(
        op.decide_at(secs(0), Cause::Interval).reward_of_previous,
        None
    );
    // Stale: the outcome is unknown, the decision stays pending.
    assert_eq!(
        op.decide_at(secs(15), Cause::Interval).reward_of_previous,
        None
    );
    assert_eq!(
        op.decide_at(secs(30), Cause::Interval).reward_of_previous,
        Some(10.0)
    );
}

#[test]
fn kept_history_is_the_latest_decisions() {
    let scaler = FakeScaler {
        desired: 2,
        fail: 0,
        sets: vec![],
    };
    let health = vec![MetricsHealth::Fresh; 10];
    let mut op = operator(
        Box::new(Fixed(2)),
        SafetyConfig::default(),
        health,
        scaler,
        600,
    );
    for t in 0..4 {
        op.decide_at(secs(15 * t), Cause::Interval);
    }
    assert_eq!(op.history().len(), 4);
    op.keep_history(3);
    let seqs = |op: &Operator<Scripted, FakeScaler>| -> Vec<u64> {
        op.history().iter().map(|t| t.seq).collect()
    };
    assert_eq!(seqs(&op), [1, 2, 3]);
    for t in 4..7 {
        assert_eq!(op.decide_at(secs(15 * t), Cause::Interval).seq, t);
    }
    assert_eq!(seqs(&op), [4, 5, 6]);
    op.keep_history(0);
    assert_eq!(seqs(&op), [6]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the agent wishes, whenever metrics go bad and the scaler fails, the operator
    /// never sets a count outside [min, max], never changes more than max_step from inside the
    /// bounds, and never changes twice within the cooldown.
    #[test]
    fn never_outside_bounds_or_within_cooldown(
        seed in 0u64..1000, min in 1u32..4, span in 0u32..12, step in 1u32..5,
        cooldown in 0u64..90,
        plan in proptest::collection::vec((1u64..40, 0u8..10, 0u8..10), 1..50),
    ) {
        let safety = SafetyConfig {
            min_replicas: min,
            max_replicas: min + span,
            max_step: step,
            cooldown_s: cooldown as f64,
        };
        let health: Vec<MetricsHealth> = plan.iter().map(|&(_, h, _)| match h {
            0 => MetricsHealth::Stale { age_s: 100.0 },
            1 => MetricsHealth::Unreachable { error: "down".into() },
            _ => MetricsHealth::Fresh,
        }).collect();
        let scaler = FakeScaler { desired: min, fail: 0, sets: vec![] };
        let agent = RandomWish(ChaCha8Rng::seed_from_u64(seed));
        let mut op = operator(Box::new(agent), safety, health, scaler, 700);
        let mut changes = Vec::new();
        let mut now = Duration::ZERO;
        for &(dt, _, f) in &plan {
            now += Duration::from_secs(dt);
            op.scaler_mut().fail = u32::from(f == 0) + u32::from(f == 1) * 2;
            let before = op.scaler().desired;
            op.decide_at(now, Cause::Interval);
            let after = op.scaler().desired;
            prop_assert!((min..=min + span).contains(&after), "{after} outside [{min}, {}]", min + span);
            prop_assert!(after.abs_diff(before) <= step);
            if after != before {
                changes.push(now);
            }
        }
        for w in changes.windows(2) {
            prop_assert!(w[1] - w[0] >= Duration::from_secs(cooldown), "{:?}", changes);
        }
    }
}
