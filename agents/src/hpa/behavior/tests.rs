//! Hand-computed checks of stabilization, rate limits and scale-event bookkeeping.

use super::*;

fn rules(select: SelectPolicy, policies: &[(PolicyType, i32, i32)]) -> EffectiveRules {
    EffectiveRules {
        stabilization_window_s: 0,
        select_policy: select,
        policies: policies
            .iter()
            .map(|&(kind, value, period_s)| ScalingPolicy {
                kind,
                value,
                period_s,
            })
            .collect(),
        tolerance: None,
    }
}

fn event(change: i32, age_s: i64) -> ScaleEvent {
    ScaleEvent {
        replica_change: change,
        timestamp_ms: -age_s * 1000,
        outdated: false,
    }
}

fn rec(replicas: i32, age_s: i64) -> Recommendation {
    Recommendation {
        replicas,
        timestamp_ms: -age_s * 1000,
    }
}

#[test]
fn api_defaults() {
    let b = EffectiveBehavior::from_api(&Behavior::default(), 300);
    // Scale-up: window 0, Max, {Pods 4/15 s, Percent 100/15 s}.
    assert_eq!(
        b.scale_up,
        rules(
            SelectPolicy::Max,
            &[(PolicyType::Pods, 4, 15), (PolicyType::Percent, 100, 15)]
        )
    );
    // Scale-down: window from the controller (300 s), Max, {Percent 100/15 s}.
    let mut down = rules(SelectPolicy::Max, &[(PolicyType::Percent, 100, 15)]);
    down.stabilization_window_s = 300;
    assert_eq!(b.scale_down, down);
    // A given policy list replaces the defaults; other fields keep theirs.
    let custom = Behavior {
        scale_up: Some(ScalingRules {
            policies: Some(vec![ScalingPolicy {
                kind: PolicyType::Pods,
                value: 1,
                period_s: 60,
            }]),
            ..ScalingRules::default()
        }),
        scale_down: None,
    };
    let b = EffectiveBehavior::from_api(&custom, 300);
    assert_eq!(b.scale_up.policies.len(), 1);
    assert_eq!(b.scale_up.select_policy, SelectPolicy::Max);
}

#[test]
fn legacy_stabilization_takes_max_in_window() {
    // History 4 (2 min ago) and 5 (1 min ago), window 5 min, proposal 3: max(3, 4, 5) = 5,
    // nothing stale so 3 is appended (length 3).
    let mut h = vec![rec(4, 120), rec(5, 60)];
    assert_eq!(stabilize_recommendation(&mut h, 3, 0, 300_000), 5);
    assert_eq!(h.len(), 3);
    // 10 (10 min ago) and 9 (9 min ago) are stale: result 3, the last stale slot (9) reused.
    let mut h = vec![rec(10, 600), rec(9, 540)];
    assert_eq!(stabilize_recommendation(&mut h, 3, 0, 300_000), 3);
    assert_eq!(
        h.iter().map(|r| r.replicas).collect::<Vec<_>>(),
        vec![10, 3]
    );
    // An entry exactly window old is outside the window.
    let mut h = vec![rec(9, 300)];
    assert_eq!(stabilize_recommendation(&mut h, 3, 0, 300_000), 3);
}

#[test]
fn legacy_clamp() {
    // current 3, factor 8: limit max(24, 4) = 24 < max 2000 -> ScaleUpLimit.
    assert_eq!(
        convert_desired_replicas_with_rules(3, 1000, 1, 2000, 8.0, 4.0),
        (24, "ScaleUpLimit")
    );
    // Production factor 2: max(6, 4) = 6.
    assert_eq!(
        convert_desired_replicas_with_rules(3, 1000, 1, 2000, 2.0, 4.0),
        (6, "ScaleUpLimit")
    );
    // current 1: max(2, 4) = 4 and max 4 is not above it -> TooManyReplicas.
    assert_eq!(
        convert_desired_replicas_with_rules(1, 9, 1, 4, 2.0, 4.0),
        (4, "TooManyReplicas")
    );
    assert_eq!(
        convert_desired_replicas_with_rules(1, 0, 0, 10, 8.0, 4.0),
        (0, "DesiredWithinRange")
    );
    assert_eq!(
        convert_desired_replicas_with_rules(5, 1, 2, 10, 8.0, 4.0),
        (2, "TooFewReplicas")
    );
}

#[test]
fn behavior_stabilization_windows() {
    // Up window 300 s: min(7, 4, 5) = 4; current 1 raised to 4; down window 0: bound 7.
    let mut h = vec![rec(4, 120), rec(5, 60)];
    assert_eq!(
        stabilize_recommendation_with_behaviors(&mut h, 1, 7, 300, 0, 0).0,
        4
    );
    assert_eq!(
        h.iter().map(|r| r.replicas).collect::<Vec<_>>(),
        vec![4, 5, 7]
    );
    // Down window 180 s: max(3, 4, 5) = 5 (10 and 9 are older); 9 (the last entry older than
    // both windows) is overwritten by 3.
    let mut h = vec![rec(10, 600), rec(4, 60), rec(5, 120), rec(9, 540)];
    assert_eq!(
        stabilize_recommendation_with_behaviors(&mut h, 100, 3, 0, 180, 0).0,
        5
    );
    assert_eq!(
        h.iter().map(|r| r.replicas).collect::<Vec<_>>(),
        vec![10, 4, 5, 3]
    );
}

#[test]
fn rate_limits() {
    let up_default = rules(
        SelectPolicy::Max,
        &[(PolicyType::Pods, 4, 15), (PolicyType::Percent, 100, 15)],
    );
    // Scale-down Max: min(100 - 20, trunc(100 * 0.99)) = min(80, 99) = 80 -> ScaleDownLimit.
    let down = rules(
        SelectPolicy::Max,
        &[(PolicyType::Pods, 20, 60), (PolicyType::Percent, 1, 60)],
    );
    let args = RateArgs {
        current: 100,
        desired: 2,
        min_replicas: 1,
        max_replicas: 1000,
        scale_up: &up_default,
        scale_down: &down,
    };
    assert_eq!(
        convert_desired_replicas_with_behavior_rate(args, &[], &[], 0),
        (80, "ScaleDownLimit")
    );
    // Scale-down Min: max(5 - 2, trunc(5 * 0.5)) = max(3, 2) = 3.
    let down_min = rules(
        SelectPolicy::Min,
        &[(PolicyType::Pods, 2, 60), (PolicyType::Percent, 50, 60)],
    );
    assert_eq!(scale_down_limit_with_rules(5, &[], &[], &down_min, 0), 3);
    // Scale-up with events 1 (100 s), 5 (60 s), 9 (20 s) and Pods 150 per 120 s:
    // start = 100 - 15 = 85, limit 235 < 1000 -> ScaleUpLimit.
    let up = rules(SelectPolicy::Max, &[(PolicyType::Pods, 150, 120)]);
    let events = [event(1, 100), event(5, 60), event(9, 20)];
    let args = RateArgs {
        current: 100,
        desired: 500,
        min_replicas: 1,
        max_replicas: 1000,
        scale_up: &up,
        scale_down: &down,
    };
    assert_eq!(
        convert_desired_replicas_with_behavior_rate(args, &events, &[], 0),
        (235, "ScaleUpLimit")
    );
    // Percent 100 per 60 s with the same events: the event exactly 60 s old is outside the
    // period, so start = 100 - 9 = 91 and the limit ceil(91 * 2) = 182.
    let up = rules(SelectPolicy::Max, &[(PolicyType::Percent, 100, 60)]);
    assert_eq!(scale_up_limit_with_rules(100, &events, &[], &up, 0), 182);
    // Disabled freezes the direction at current.
    let frozen = rules(SelectPolicy::Disabled, &[(PolicyType::Pods, 4, 15)]);
    let args = RateArgs {
        current: 5,
        desired: 9,
        min_replicas: 1,
        max_replicas: 10,
        scale_up: &frozen,
        scale_down: &down,
    };
    assert_eq!(
        convert_desired_replicas_with_behavior_rate(args, &[], &[], 0),
        (5, "ScaleUpLimit")
    );
}

#[test]
fn scale_event_store_reuses_last_outdated_slot() {
    let behavior = EffectiveBehavior {
        scale_up: rules(SelectPolicy::Max, &[(PolicyType::Pods, 10, 60)]),
        scale_down: rules(SelectPolicy::Max, &[(PolicyType::Pods, 10, 60)]),
    };
    // Events 7 (61 s) and 6 (59 s): only 6 is within 60 s; storing +5 marks 7 outdated and
    // reuses its slot: [5, 6].
    let mut up = vec![event(7, 61), event(6, 59)];
    assert_eq!(replicas_change_per_period(60, &up, 0), 6);
    store_scale_event(Some(&behavior), &mut up, &mut Vec::new(), 10, 15, 0);
    assert_eq!(
        up.iter()
            .map(|e| (e.replica_change, e.outdated))
            .collect::<Vec<_>>(),
        vec![(5, false), (6, false)]
    );
    // A scale-down goes to the down list; without behavior nothing is stored.
    let mut down = Vec::new();
    store_scale_event(Some(&behavior), &mut up, &mut down, 10, 5, 0);
    assert_eq!(down.len(), 1);
    store_scale_event(None, &mut up, &mut down, 10, 5, 0);
    assert_eq!(down.len(), 1);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_rules() -> impl Strategy<Value = EffectiveRules> {
        let policy = (
            prop_oneof![Just(PolicyType::Pods), Just(PolicyType::Percent)],
            1i32..500,
            1i32..600,
        )
            .prop_map(|(kind, value, period_s)| ScalingPolicy {
                kind,
                value,
                period_s,
            });
        (
            prop_oneof![
                Just(SelectPolicy::Max),
                Just(SelectPolicy::Min),
                Just(SelectPolicy::Disabled)
            ],
            proptest::collection::vec(policy, 0..4),
            0i32..600,
        )
            .prop_map(
                |(select_policy, policies, stabilization_window_s)| EffectiveRules {
                    stabilization_window_s,
                    select_policy,
                    policies,
                    tolerance: None,
                },
            )
    }

    fn arb_events() -> impl Strategy<Value = Vec<ScaleEvent>> {
        proptest::collection::vec((1i32..50, 0i64..900), 0..6)
            .prop_map(|v| v.into_iter().map(|(c, age)| event(c, age)).collect())
    }

    proptest! {
        /// Stabilization plus rate limits always land between current and the proposal clamped
        /// to [min, max] (for current inside [min, max]).
        #[test]
        fn behavior_result_between_current_and_clamped_proposal(
            min in 0i32..20, span in 0i32..80, cur_off in 0i32..100, proposal in 0i32..200,
            up in arb_rules(), down in arb_rules(), up_events in arb_events(), down_events in arb_events(),
            history in proptest::collection::vec((0i32..200, 0i64..900), 0..6),
        ) {
            let max = min + span;
            let current = min + cur_off % (span + 1);
            let mut history: Vec<_> = history.into_iter().map(|(r, age)| rec(r, age)).collect();
            let (stabilized, _) = stabilize_recommendation_with_behaviors(
                &mut history, current, proposal, up.stabilization_window_s, down.stabilization_window_s, 0);
            let args = RateArgs { current, desired: stabilized, min_replicas: min, max_replicas: max, scale_up: &up, scale_down: &down };
            let (result, _) = convert_desired_replicas_with_behavior_rate(args, &up_events, &down_events, 0);
            let clamped = proposal.clamp(min, max);
            prop_assert!(result >= current.min(clamped) && result <= current.max(clamped),
                "result {} not between current {} and clamped proposal {}", result, current, clamped);
        }

        /// Legacy stabilization never returns less than the proposal and stores it.
        #[test]
        fn legacy_stabilization_never_below_proposal(
            proposal in -5i32..200,
            history in proptest::collection::vec((0i32..200, 0i64..900), 0..8),
            window_s in 0i64..600,
        ) {
            let mut history: Vec<_> = history.into_iter().map(|(r, age)| rec(r, age)).collect();
            let before = history.len();
            let got = stabilize_recommendation(&mut history, proposal, 0, window_s * 1000);
            prop_assert!(got >= proposal);
            prop_assert!(history.len() == before || history.len() == before + 1);
            prop_assert!(history.iter().any(|r| r.replicas == proposal && r.timestamp_ms == 0));
        }
    }
}
