//! What the controller writes back: the resource's status after a decision (replicas, the
//! last decision and its reason, reward, fallback, self-healing, conditions), and the events'
//! texts (pure functions, unit-tested).

use kube::runtime::events::EventType;

use super::super::crd::{
    Condition, FallbackStatus, LastDecision, NimbusScalerStatus, SelfHealingStatus,
};
use super::healing::{HealAction, Healer};
use crate::operator::stages::DecisionSource;
use crate::operator::DecisionTrace;

/// RFC 3339 UTC time of `t`, seconds precision (the API's `metav1.Time` format), through
/// the `jiff` crate k8s-openapi's `Time` wraps.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|ts| ts.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Sets condition `type_` in `conds`, keeping its `lastTransitionTime` when the status does
/// not change (API conventions).
pub fn set_condition(
    conds: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    now: &str,
) {
    let status = if status { "True" } else { "False" };
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now.to_string();
            }
            c.status = status.into();
            c.reason = reason.into();
            c.message = message;
        }
        None => conds.push(Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: now.to_string(),
        }),
    }
}

/// The reason of a decision in words: the deciding agent's reason, the metrics' health and the
/// safety limits that applied.
pub fn reason_of(t: &DecisionTrace) -> String {
    let mut r = format!(
        "{} ({}) on {} metrics",
        t.decision.decided_by,
        t.decision.reason,
        t.metrics.label()
    );
    if !t.action.guarded.limited_by.is_empty() {
        let limits: Vec<String> = t
            .action
            .guarded
            .limited_by
            .iter()
            .map(|l| format!("{l:?}"))
            .collect();
        r.push_str(&format!("; limited by {}", limits.join(", ")));
    }
    if let Some(e) = &t.action.error {
        r.push_str(&format!("; scaling failed: {e}"));
    }
    r
}

/// The status after decision `t`: `previous` updated with the replicas the scaler sees
/// (`replicas` not terminating, `ready`), the decision, reward, fallback, healer and the
/// `Ready`, `FallbackActive` and `Degraded` conditions.
#[allow(clippy::too_many_arguments)]
pub fn status_after(
    previous: Option<&NimbusScalerStatus>,
    generation: Option<i64>,
    t: &DecisionTrace,
    desired: u32,
    replicas: u32,
    ready: u32,
    healer: &Healer,
    decisions: u64,
    now: &str,
) -> NimbusScalerStatus {
    let mut s = previous.cloned().unwrap_or_default();
    s.observed_generation = generation;
    s.replicas = replicas;
    s.ready_replicas = ready;
    s.desired_replicas = desired;
    s.decisions = decisions;
    s.last_decision = Some(LastDecision {
        time: now.to_string(),
        cause: format!("{:?}", t.cause).to_lowercase(),
        source: t.decision.source.label().into(),
        decided_by: t.decision.decided_by.clone(),
        from: t.action.from,
        to: t.action.to,
        wished: t.decision.wished,
        reason: reason_of(t),
    });
    if let Some(r) = t.reward_of_previous {
        s.last_reward = Some(r);
    }
    let fallback = t.decision.source == DecisionSource::HpaFallback;
    s.fallback = FallbackStatus {
        active: fallback,
        reason: fallback.then(|| t.metrics.label().to_string()),
    };
    s.self_healing = SelfHealingStatus {
        retries: healer.retries,
        recoveries: healer.recoveries,
        last_recovery: healer.last.clone(),
    };
    set_condition(
        &mut s.conditions,
        "Ready",
        true,
        "Deciding",
        format!("decision {decisions} by {}", t.decision.decided_by),
        now,
    );
    set_condition(
        &mut s.conditions,
        "FallbackActive",
        fallback,
        if fallback {
            "MetricsNotFresh"
        } else {
            "MetricsFresh"
        },
        format!("metrics {}", t.metrics.label()),
        now,
    );
    let failed = t.action.error.is_some() && !t.recovery.as_ref().is_some_and(|r| r.recovered);
    let degraded = failed || healer.retries > 0;
    set_condition(
        &mut s.conditions,
        "Degraded",
        degraded,
        if failed {
            "ScaleFailed"
        } else if healer.retries > 0 {
            "ScaleUpStuck"
        } else {
            "AsExpected"
        },
        match (&t.action.error, &healer.last) {
            (Some(e), _) if failed => e.clone(),
            (_, Some(l)) if healer.retries > 0 => l.clone(),
            _ => "pods as asked".into(),
        },
        now,
    );
    s
}

/// An event to publish: type, reason (PascalCase), action, note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventText {
    /// `Normal` or `Warning`.
    pub warning: bool,
    /// PascalCase reason (`ScaledUp`, `ScaledDown`, `ScaleFailed`, `Recovered`, ...).
    pub reason: String,
    /// PascalCase action (`Scale`, `Recover`, `Heal`).
    pub action: String,
    /// The message.
    pub note: String,
}

impl EventText {
    /// The kube-rs event type.
    pub fn type_(&self) -> EventType {
        if self.warning {
            EventType::Warning
        } else {
            EventType::Normal
        }
    }
}

/// The events of decision `t`: a scaling (`ScaledUp`/`ScaledDown`), a failed scaling
/// (`ScaleFailed`) and its recovery (`Recovered`/`RecoveryFailed`).
pub fn decision_events(t: &DecisionTrace) -> Vec<EventText> {
    let mut out = Vec::new();
    let reason = reason_of(t);
    match (&t.action.error, &t.recovery) {
        (None, _) if t.action.changed => out.push(EventText {
            warning: false,
            reason: if t.action.to > t.action.from {
                "ScaledUp"
            } else {
                "ScaledDown"
            }
            .into(),
            action: "Scale".into(),
            note: format!("{} -> {} replicas: {reason}", t.action.from, t.action.to),
        }),
        (Some(e), rec) => {
            out.push(EventText {
                warning: true,
                reason: "ScaleFailed".into(),
                action: "Scale".into(),
                note: format!("{} -> {} replicas failed: {e}", t.action.from, t.action.to),
            });
            if let Some(r) = rec {
                out.push(EventText {
                    warning: !r.recovered,
                    reason: if r.recovered {
                        "Recovered"
                    } else {
                        "RecoveryFailed"
                    }
                    .into(),
                    action: "Recover".into(),
                    note: match &r.error {
                        Some(e) => {
                            format!("retry failed: {e}; replicas stay {}", r.observed_replicas)
                        }
                        None => format!("{} replicas set on retry", t.action.to),
                    },
                });
            }
        }
        _ => {}
    }
    out
}

/// The event of a self-healing action.
pub fn heal_event(a: &HealAction) -> EventText {
    match a {
        HealAction::Retry {
            pods,
            attempt,
            max,
            why,
        } => EventText {
            warning: true,
            reason: "ScaleUpStuck".into(),
            action: "Heal".into(),
            note: format!(
                "{why}; retry {attempt}/{max}: deleting {} so the ReplicaSet replaces them",
                pods.join(", ")
            ),
        },
        HealAction::Revert { from, to, why } => EventText {
            warning: true,
            reason: "ScaleUpReverted".into(),
            action: "Heal".into(),
            note: format!("{why}; retries spent: replicas {from} -> {to}"),
        },
        HealAction::Recovered { retries } => EventText {
            warning: false,
            reason: "Recovered".into(),
            action: "Heal".into(),
            note: format!("every pod Ready after {retries} retries"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_796_032_800)),
            "2026-11-30T10:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_399)),
            "2000-02-28T23:59:59Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_868_800)),
            "2000-03-01T00:00:00Z"
        );
    }

    #[test]
    fn conditions_keep_their_transition_time() {
        let mut c = Vec::new();
        set_condition(&mut c, "Ready", true, "Deciding", "a".into(), "t1");
        set_condition(&mut c, "Ready", true, "Deciding", "b".into(), "t2");
        assert_eq!(
            (c[0].last_transition_time.as_str(), c[0].message.as_str()),
            ("t1", "b")
        );
        set_condition(&mut c, "Ready", false, "Stopped", "c".into(), "t3");
        assert_eq!(
            (c[0].status.as_str(), c[0].last_transition_time.as_str()),
            ("False", "t3")
        );
        assert_eq!(c.len(), 1);
    }
}
