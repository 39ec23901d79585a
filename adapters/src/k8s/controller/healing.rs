//! Self-healing of scale-ups (pure logic, unit-tested): a new pod that stays un-Ready
//! (Pending, crash-looping, failing its readiness probe) longer than the deadline is *stuck*.
//! Stuck pods are deleted so their ReplicaSet creates fresh ones (a **retry**), each retry
//! doubling the deadline (back-off); after `maxRetries` retries the scale-up is **reverted** to
//! the Ready replicas (at least `minReplicas`). When every pod is Ready again after a retry,
//! the episode ends as **recovered**.

use std::time::{Duration, SystemTime};

use super::super::crd::SelfHealingSpec;
use super::super::scaler::PodDetail;

/// What the healer asks the controller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealAction {
    /// Delete these stuck pods (retry `attempt` of `max`).
    Retry {
        /// Pod names.
        pods: Vec<String>,
        /// This retry's number, from 1.
        attempt: u32,
        /// `maxRetries`.
        max: u32,
        /// Why the pods are stuck (phase or waiting reason), in words.
        why: String,
    },
    /// Set the replicas back to `to` (the Ready pods, at least `minReplicas`).
    Revert {
        /// Replicas asked for before.
        from: u32,
        /// Replicas to go back to.
        to: u32,
        /// Why, in words.
        why: String,
    },
    /// Every pod is Ready again after `retries` retries.
    Recovered {
        /// Retries it took.
        retries: u32,
    },
}

/// The healer's state for one NimbusScaler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healer {
    /// Retries of the current episode.
    pub retries: u32,
    /// Retries and reverts since start.
    pub recoveries: u32,
    /// The last action, in words.
    pub last: Option<String>,
}

impl Healer {
    /// The deadline after `retries` retries: `pendingDeadlineSeconds x 2^retries`.
    pub fn deadline(spec: &SelfHealingSpec, retries: u32) -> Duration {
        Duration::from_secs(u64::from(spec.pending_deadline_seconds))
            * 2_u32.saturating_pow(retries.min(16))
    }

    /// Looks at the target's pods at `now` (desired replicas `desired`, bounds `min_replicas`)
    /// and says what to do, if anything; updates the counters as if the action succeeds.
    pub fn check(
        &mut self,
        spec: &SelfHealingSpec,
        pods: &[PodDetail],
        desired: u32,
        min_replicas: u32,
        now: SystemTime,
    ) -> Option<HealAction> {
        let deadline = Self::deadline(spec, self.retries);
        let stuck: Vec<&PodDetail> = pods
            .iter()
            .filter(|p| !p.ready)
            .filter(|p| {
                p.created_at
                    .and_then(|c| now.duration_since(c).ok())
                    .is_some_and(|age| age > deadline)
            })
            .collect();
        if stuck.is_empty() {
            let all_ready = !pods.is_empty() && pods.iter().all(|p| p.ready);
            if self.retries > 0 && all_ready {
                let retries = std::mem::take(&mut self.retries);
                self.last = Some(format!("recovered after {retries} retries"));
                return Some(HealAction::Recovered { retries });
            }
            return None;
        }
        let why = describe(&stuck, deadline);
        if self.retries < spec.max_retries {
            self.retries += 1;
            self.recoveries += 1;
            let action = HealAction::Retry {
                pods: stuck.iter().map(|p| p.name.clone()).collect(),
                attempt: self.retries,
                max: spec.max_retries,
                why,
            };
            self.last = Some(format!("retry {}/{}", self.retries, spec.max_retries));
            return Some(action);
        }
        let ready = u32::try_from(pods.iter().filter(|p| p.ready).count()).unwrap_or(u32::MAX);
        let to = ready.max(min_replicas);
        self.retries = 0;
        if to >= desired {
            // Nothing to revert to (the stuck pods are within the floor): retry again later.
            self.last = Some("stuck pods within minReplicas; retrying".into());
            return None;
        }
        self.recoveries += 1;
        self.last = Some(format!("reverted {desired} -> {to}"));
        Some(HealAction::Revert {
            from: desired,
            to,
            why,
        })
    }
}

/// "2 pod(s) un-Ready for more than 10 s: web-a (Pending), web-b (CrashLoopBackOff, 3 restarts)".
fn describe(stuck: &[&PodDetail], deadline: Duration) -> String {
    let each: Vec<String> = stuck
        .iter()
        .map(|p| {
            let state = p.waiting_reason.clone().unwrap_or_else(|| p.phase.clone());
            if p.restarts > 0 {
                format!("{} ({state}, {} restarts)", p.name, p.restarts)
            } else {
                format!("{} ({state})", p.name)
            }
        })
        .collect();
    format!(
        "{} pod(s) un-Ready for more than {} s: {}",
        stuck.len(),
        deadline.as_secs(),
        each.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool, age_s: u64, now: SystemTime) -> PodDetail {
        PodDetail {
            name: name.into(),
            phase: if ready { "Running" } else { "Pending" }.into(),
            ready,
            created_at: Some(now - Duration::from_secs(age_s)),
            restarts: 0,
            waiting_reason: None,
            cpu_request_milli: 100,
            memory_request_bytes: 0,
            node: None,
        }
    }

    #[test]
    fn retries_with_doubling_deadlines_then_reverts() {
        let spec = SelfHealingSpec {
            pending_deadline_seconds: 10,
            max_retries: 2,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = Healer::default();
        // Young un-Ready pods are not stuck.
        let pods = vec![pod("a", true, 100, now), pod("b", false, 9, now)];
        assert_eq!(h.check(&spec, &pods, 2, 1, now), None);
        // Past 10 s: retry 1/2.
        let pods = vec![pod("a", true, 100, now), pod("b", false, 11, now)];
        match h.check(&spec, &pods, 2, 1, now) {
            Some(HealAction::Retry {
                pods,
                attempt,
                max,
                why,
            }) => {
                assert_eq!((pods, attempt, max), (vec!["b".to_string()], 1, 2));
                assert_eq!(why, "1 pod(s) un-Ready for more than 10 s: b (Pending)");
            }
            other => panic!("{other:?}"),
        }
        // The replacement is 15 s old: within the doubled deadline (20 s).
        let pods = vec![pod("a", true, 100, now), pod("c", false, 15, now)];
        assert_eq!(h.check(&spec, &pods, 2, 1, now), None);
        assert_eq!(Healer::deadline(&spec, 1), Duration::from_secs(20));
        // 21 s: retry 2/2.
        let pods = vec![pod("a", true, 100, now), pod("c", false, 21, now)];
        assert!(matches!(
            h.check(&spec, &pods, 2, 1, now),
            Some(HealAction::Retry { attempt: 2, .. })
        ));
        // Deadline now 40 s; at 41 s the retries are spent: revert 2 -> 1.
        let pods = vec![pod("a", true, 100, now), pod("d", false, 41, now)];
        assert_eq!(
            h.check(&spec, &pods, 2, 1, now),
            Some(HealAction::Revert {
                from: 2,
                to: 1,
                why: "1 pod(s) un-Ready for more than 40 s: d (Pending)".into()
            })
        );
        assert_eq!((h.retries, h.recoveries), (0, 3));
    }

    #[test]
    fn recovery_is_reported_once() {
        let spec = SelfHealingSpec {
            pending_deadline_seconds: 5,
            max_retries: 3,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = Healer::default();
        let mut crash = pod("b", false, 6, now);
        crash.phase = "Running".into();
        crash.waiting_reason = Some("CrashLoopBackOff".into());
        crash.restarts = 3;
        let pods = vec![pod("a", true, 60, now), crash];
        match h.check(&spec, &pods, 2, 1, now) {
            Some(HealAction::Retry { why, .. }) => assert_eq!(
                why,
                "1 pod(s) un-Ready for more than 5 s: b (CrashLoopBackOff, 3 restarts)"
            ),
            other => panic!("{other:?}"),
        }
        let pods = vec![pod("a", true, 60, now), pod("e", true, 3, now)];
        assert_eq!(
            h.check(&spec, &pods, 2, 1, now),
            Some(HealAction::Recovered { retries: 1 })
        );
        assert_eq!(h.check(&spec, &pods, 2, 1, now), None);
    }

    #[test]
    fn never_reverts_below_the_floor() {
        let spec = SelfHealingSpec {
            pending_deadline_seconds: 1,
            max_retries: 0,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = Healer::default();
        let pods = vec![pod("a", false, 5, now)];
        assert_eq!(h.check(&spec, &pods, 1, 1, now), None);
        let pods = vec![pod("a", false, 5, now), pod("b", false, 5, now)];
        assert_eq!(
            h.check(&spec, &pods, 2, 1, now)
                .map(|a| matches!(a, HealAction::Revert { to: 1, .. })),
            Some(true)
        );
    }
}
