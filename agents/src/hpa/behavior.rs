//! Normalization of a proposal: the legacy path (`spec.behavior` nil) and the behavior path
//! (`normalizeDesiredReplicas`, `normalizeDesiredReplicasWithBehaviors`, their helpers and
//! `storeScaleEvent` in `horizontal.go`; API defaults from `pkg/apis/autoscaling/v2/defaults.go`).
//! hpa-algorithm.md sections 10 and 11.

use super::{
    f64_to_i32, i64_to_i32, Behavior, Millis, PolicyType, ScalingPolicy, ScalingRules, SelectPolicy,
};

/// A stored recommendation (`timestampedRecommendation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recommendation {
    /// The unstabilized proposal, replicas.
    pub replicas: i32,
    /// When it was recorded, ms.
    pub timestamp_ms: Millis,
}

/// A stored scale event (`timestampedScaleEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleEvent {
    /// Absolute change in replicas.
    pub replica_change: i32,
    /// When the scale happened, ms.
    pub timestamp_ms: Millis,
    /// Older than the direction's longest policy period at the last store: slot reusable.
    pub outdated: bool,
}

/// Scaling rules of one direction after API defaulting (and, for scale-down, after
/// `maybeInitScaleDownStabilizationWindow`).
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveRules {
    /// Stabilization window, seconds.
    pub stabilization_window_s: i32,
    /// How policies combine.
    pub select_policy: SelectPolicy,
    /// Rate policies.
    pub policies: Vec<ScalingPolicy>,
    /// Per-direction tolerance (fraction), `None` = the controller's global tolerance.
    pub tolerance: Option<f64>,
}

/// `spec.behavior` after defaulting, ready for the controller.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveBehavior {
    /// Scale-up rules.
    pub scale_up: EffectiveRules,
    /// Scale-down rules.
    pub scale_down: EffectiveRules,
}

/// API defaults of scale-up rules (`GenerateHPAScaleUpRules`): window 0 s, `Max`,
/// {Pods 4 per 15 s, Percent 100 per 15 s}; each field set in `rules` replaces its default.
pub fn default_scale_up_rules(rules: Option<&ScalingRules>) -> EffectiveRules {
    let defaults = [
        ScalingPolicy {
            kind: PolicyType::Pods,
            value: 4,
            period_s: 15,
        },
        ScalingPolicy {
            kind: PolicyType::Percent,
            value: 100,
            period_s: 15,
        },
    ];
    copy_rules(rules, Some(0), &defaults, 0)
}

/// API defaults of scale-down rules (`GenerateHPAScaleDownRules`): window unset (filled with
/// `downscale_window_s` as `maybeInitScaleDownStabilizationWindow` does), `Max`,
/// {Percent 100 per 15 s}.
pub fn default_scale_down_rules(
    rules: Option<&ScalingRules>,
    downscale_window_s: i32,
) -> EffectiveRules {
    let defaults = [ScalingPolicy {
        kind: PolicyType::Percent,
        value: 100,
        period_s: 15,
    }];
    copy_rules(rules, None, &defaults, downscale_window_s)
}

/// `copyHPAScalingRules` onto the defaults; an unset window ends as `unset_window_s`.
fn copy_rules(
    from: Option<&ScalingRules>,
    default_window_s: Option<i32>,
    default_policies: &[ScalingPolicy],
    unset_window_s: i32,
) -> EffectiveRules {
    let window = from
        .and_then(|r| r.stabilization_window_s)
        .or(default_window_s);
    EffectiveRules {
        stabilization_window_s: window.unwrap_or(unset_window_s),
        select_policy: from.and_then(|r| r.select_policy).unwrap_or_default(),
        policies: from
            .and_then(|r| r.policies.clone())
            .unwrap_or_else(|| default_policies.to_vec()),
        tolerance: from.and_then(|r| r.tolerance),
    }
}

impl EffectiveBehavior {
    /// Defaults `behavior` (`SetDefaults_HorizontalPodAutoscalerBehavior`) and fills an unset
    /// scale-down window with the controller's downscale stabilization window, seconds.
    pub fn from_api(behavior: &Behavior, downscale_window_s: i32) -> Self {
        EffectiveBehavior {
            scale_up: default_scale_up_rules(behavior.scale_up.as_ref()),
            scale_down: default_scale_down_rules(behavior.scale_down.as_ref(), downscale_window_s),
        }
    }
}

/// "Newer than `now - window`" with Go's strictness: an entry whose age equals the window is
/// outside it.
fn inside(timestamp_ms: Millis, now_ms: Millis, window_ms: Millis) -> bool {
    timestamp_ms > now_ms.saturating_sub(window_ms)
}

/// Seconds to ms.
fn secs(s: i32) -> Millis {
    i64::from(s) * 1000
}

/// `stabilizeRecommendation` (legacy path): the max of `proposal` and every recommendation
/// younger than `window_ms`; `proposal` is stored over the last stale entry, or appended.
pub fn stabilize_recommendation(
    history: &mut Vec<Recommendation>,
    proposal: i32,
    now_ms: Millis,
    window_ms: Millis,
) -> i32 {
    let mut max_recommendation = proposal;
    let mut old_index = None;
    for (i, rec) in history.iter().enumerate() {
        if !inside(rec.timestamp_ms, now_ms, window_ms) {
            old_index = Some(i);
        } else if rec.replicas > max_recommendation {
            max_recommendation = rec.replicas;
        }
    }
    store_recommendation(history, old_index, proposal, now_ms);
    max_recommendation
}

fn store_recommendation(
    history: &mut Vec<Recommendation>,
    old_index: Option<usize>,
    proposal: i32,
    now_ms: Millis,
) {
    let rec = Recommendation {
        replicas: proposal,
        timestamp_ms: now_ms,
    };
    match old_index.and_then(|i| history.get_mut(i)) {
        Some(slot) => *slot = rec,
        None => history.push(rec),
    }
}

/// `calculateScaleUpLimit`: `int32(max(factor * current, minimum))` (production factor 2 and
/// minimum 4; the Go tests use factor 8).
pub fn legacy_scale_up_limit(current: i32, factor: f64, minimum: f64) -> i32 {
    f64_to_i32((factor * f64::from(current)).max(minimum))
}

/// `convertDesiredReplicasWithRules` (legacy clamp): returns the replicas and the
/// `ScalingLimited` reason (`TooFewReplicas`, `ScaleUpLimit`, `TooManyReplicas` or
/// `DesiredWithinRange`).
pub fn convert_desired_replicas_with_rules(
    current: i32,
    desired: i32,
    min_replicas: i32,
    max_replicas: i32,
    factor: f64,
    minimum: f64,
) -> (i32, &'static str) {
    let scale_up_limit = legacy_scale_up_limit(current, factor, minimum);
    let (maximum_allowed, limiting_reason) = if max_replicas > scale_up_limit {
        (scale_up_limit, "ScaleUpLimit")
    } else {
        (max_replicas, "TooManyReplicas")
    };
    if desired < min_replicas {
        (min_replicas, "TooFewReplicas")
    } else if desired > maximum_allowed {
        (maximum_allowed, limiting_reason)
    } else {
        (desired, "DesiredWithinRange")
    }
}

/// `stabilizeRecommendationWithBehaviors`: with P = `desired`,
/// `up = min(P, recommendations newer than now - up window)`,
/// `down = max(P, recommendations newer than now - down window)`; the result is `current`
/// raised to `up` then lowered to `down` (always between current and P). P is stored over the
/// last entry older than both windows, or appended. Returns the result and the `AbleToScale`
/// reason used when it differs from P (`ScaleUpStabilized` / `ScaleDownStabilized`).
pub fn stabilize_recommendation_with_behaviors(
    history: &mut Vec<Recommendation>,
    current: i32,
    desired: i32,
    up_window_s: i32,
    down_window_s: i32,
    now_ms: Millis,
) -> (i32, &'static str) {
    let (up_window, down_window) = (secs(up_window_s), secs(down_window_s));
    let mut up_recommendation = desired;
    let mut down_recommendation = desired;
    let mut old_index = None;
    for (i, rec) in history.iter().enumerate() {
        let in_up = inside(rec.timestamp_ms, now_ms, up_window);
        let in_down = inside(rec.timestamp_ms, now_ms, down_window);
        if in_up {
            up_recommendation = up_recommendation.min(rec.replicas);
        }
        if in_down {
            down_recommendation = down_recommendation.max(rec.replicas);
        }
        if !in_up && !in_down {
            old_index = Some(i);
        }
    }
    let mut recommendation = current;
    if recommendation < up_recommendation {
        recommendation = up_recommendation;
    }
    if recommendation > down_recommendation {
        recommendation = down_recommendation;
    }
    store_recommendation(history, old_index, desired, now_ms);
    let reason = if desired >= current {
        "ScaleUpStabilized"
    } else {
        "ScaleDownStabilized"
    };
    (recommendation, reason)
}

/// `getReplicasChangePerPeriod`: sum of the changes of events newer than `now - period`.
pub fn replicas_change_per_period(period_s: i32, events: &[ScaleEvent], now_ms: Millis) -> i32 {
    let window = secs(period_s);
    let sum: i64 = events
        .iter()
        .filter(|e| inside(e.timestamp_ms, now_ms, window))
        .map(|e| i64::from(e.replica_change))
        .sum();
    i64_to_i32(sum)
}

/// Replicas at the start of a policy period: `current - added + removed`.
fn period_start(
    current: i32,
    period_s: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    now_ms: Millis,
) -> i64 {
    i64::from(current) - i64::from(replicas_change_per_period(period_s, up_events, now_ms))
        + i64::from(replicas_change_per_period(period_s, down_events, now_ms))
}

/// `calculateScaleUpLimitWithScalingRules`: per policy, Pods `start + value`, Percent
/// `ceil(start * (1 + value/100))`; `Max` keeps the largest, `Min` the smallest; `Disabled`
/// returns `current`. With no policy, `Max` gives `i32::MIN` and `Min` gives `i32::MAX`.
pub fn scale_up_limit_with_rules(
    current: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    rules: &EffectiveRules,
    now_ms: Millis,
) -> i32 {
    let mut result = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => i32::MAX,
        SelectPolicy::Max => i32::MIN,
    };
    for policy in &rules.policies {
        let start = period_start(current, policy.period_s, up_events, down_events, now_ms);
        let proposed = match policy.kind {
            PolicyType::Pods => i64_to_i32(start + i64::from(policy.value)),
            PolicyType::Percent => {
                f64_to_i32((start as f64 * (1.0 + f64::from(policy.value) / 100.0)).ceil())
            }
        };
        result = match rules.select_policy {
            SelectPolicy::Min => result.min(proposed),
            _ => result.max(proposed),
        };
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`: per policy, Pods `start - value`, Percent
/// `trunc(start * (1 - value/100))` (may be negative); `Max` (largest change) keeps the
/// smallest, `Min` the largest; `Disabled` returns `current`.
pub fn scale_down_limit_with_rules(
    current: i32,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    rules: &EffectiveRules,
    now_ms: Millis,
) -> i32 {
    let mut result = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => i32::MIN,
        SelectPolicy::Max => i32::MAX,
    };
    for policy in &rules.policies {
        let start = period_start(current, policy.period_s, up_events, down_events, now_ms);
        let proposed = match policy.kind {
            PolicyType::Pods => i64_to_i32(start - i64::from(policy.value)),
            PolicyType::Percent => {
                f64_to_i32(start as f64 * (1.0 - f64::from(policy.value) / 100.0))
            }
        };
        result = match rules.select_policy {
            SelectPolicy::Min => result.max(proposed),
            _ => result.min(proposed),
        };
    }
    result
}

/// Inputs of [`convert_desired_replicas_with_behavior_rate`] (`NormalizationArg`).
#[derive(Debug, Clone, Copy)]
pub struct RateArgs<'a> {
    /// Current (spec) replicas.
    pub current: i32,
    /// Stabilized desired replicas.
    pub desired: i32,
    /// `minReplicas`.
    pub min_replicas: i32,
    /// `maxReplicas`.
    pub max_replicas: i32,
    /// Scale-up rules.
    pub scale_up: &'a EffectiveRules,
    /// Scale-down rules.
    pub scale_down: &'a EffectiveRules,
}

/// `convertDesiredReplicasWithBehaviorRate`: applies the rate limits and min/max in the
/// direction of change. Returns the replicas and the `ScalingLimited` reason
/// (`ScaleUpLimit`, `TooManyReplicas`, `ScaleDownLimit`, `TooFewReplicas`, `DesiredWithinRange`).
pub fn convert_desired_replicas_with_behavior_rate(
    args: RateArgs<'_>,
    up_events: &[ScaleEvent],
    down_events: &[ScaleEvent],
    now_ms: Millis,
) -> (i32, &'static str) {
    if args.desired > args.current {
        let limit =
            scale_up_limit_with_rules(args.current, up_events, down_events, args.scale_up, now_ms)
                .max(args.current);
        let (maximum_allowed, reason) = if args.max_replicas > limit {
            (limit, "ScaleUpLimit")
        } else {
            (args.max_replicas, "TooManyReplicas")
        };
        if args.desired > maximum_allowed {
            return (maximum_allowed, reason);
        }
    } else if args.desired < args.current {
        let limit = scale_down_limit_with_rules(
            args.current,
            up_events,
            down_events,
            args.scale_down,
            now_ms,
        )
        .min(args.current);
        let (minimum_allowed, reason) = if args.min_replicas < limit {
            (limit, "ScaleDownLimit")
        } else {
            (args.min_replicas, "TooFewReplicas")
        };
        if args.desired < minimum_allowed {
            return (minimum_allowed, reason);
        }
    }
    (args.desired, "DesiredWithinRange")
}

/// `getLongestPolicyPeriod`, seconds (0 without policies).
pub fn longest_policy_period(rules: &EffectiveRules) -> i32 {
    rules
        .policies
        .iter()
        .map(|p| p.period_s)
        .max()
        .unwrap_or(0)
        .max(0)
}

/// `markScaleEventsOutdated`: flags events not newer than `now - longest period`.
pub fn mark_scale_events_outdated(
    events: &mut [ScaleEvent],
    longest_period_s: i32,
    now_ms: Millis,
) {
    let window = secs(longest_period_s);
    for e in events.iter_mut() {
        if !inside(e.timestamp_ms, now_ms, window) {
            e.outdated = true;
        }
    }
}

/// `storeScaleEvent`: after a rescale on the behavior path, records `|new - prev|` in the up or
/// down list, reusing the last outdated slot of that list. Nothing is stored without behavior.
pub fn store_scale_event(
    behavior: Option<&EffectiveBehavior>,
    up_events: &mut Vec<ScaleEvent>,
    down_events: &mut Vec<ScaleEvent>,
    prev_replicas: i32,
    new_replicas: i32,
    now_ms: Millis,
) {
    let Some(behavior) = behavior else {
        return;
    };
    let (events, rules, change) = if new_replicas > prev_replicas {
        (
            up_events,
            &behavior.scale_up,
            i64::from(new_replicas) - i64::from(prev_replicas),
        )
    } else {
        (
            down_events,
            &behavior.scale_down,
            i64::from(prev_replicas) - i64::from(new_replicas),
        )
    };
    mark_scale_events_outdated(events, longest_policy_period(rules), now_ms);
    let event = ScaleEvent {
        replica_change: i64_to_i32(change),
        timestamp_ms: now_ms,
        outdated: false,
    };
    match events.iter().rposition(|e| e.outdated) {
        Some(i) => events[i] = event,
        None => events.push(event),
    }
}

#[cfg(test)]
mod tests;
