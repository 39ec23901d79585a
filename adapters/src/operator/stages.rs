//! The operator's stages, each a small type with one job, handing typed values to the next:
//!
//! ```text
//! Observe --Observed--> DecisionAgent --Decision--> ActionExecutor --Action-->
//!    \                                                   | (failure)
//!     \--(next Observed)--> RewardStage                 Recovery
//! ```
//!
//! The observer is a trait (Prometheus + a scaler live, anything in tests); the others are
//! concrete. None of them sleeps: the loop in [`super::Operator`] owns time.

use std::time::Duration;

use agents::hpa::Hpa;
use agents::Autoscaler;
use envs::{RewardCalculator, StepInfo};
use serde::{Deserialize, Serialize};
use sim::ClusterState;

use super::safety::{Guarded, Safety};
use crate::scaler::Scaler;

/// How trustworthy the metrics of an [`Observed`] are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MetricsHealth {
    /// Every query answered with samples newer than the staleness limit.
    Fresh,
    /// The newest sample is older than the staleness limit.
    Stale {
        /// Age of the newest sample, seconds.
        age_s: f64,
    },
    /// Some queries came back empty.
    Missing {
        /// Which figures are missing (query names).
        what: Vec<String>,
    },
    /// The metrics source could not be queried at all.
    Unreachable {
        /// The error, as text.
        error: String,
    },
}

impl MetricsHealth {
    /// Whether a learned policy may decide on these metrics.
    pub fn is_fresh(&self) -> bool {
        matches!(self, MetricsHealth::Fresh)
    }

    /// Short label for metrics and logs: `fresh`, `stale`, `missing`, `unreachable`.
    pub fn label(&self) -> &'static str {
        match self {
            MetricsHealth::Fresh => "fresh",
            MetricsHealth::Stale { .. } => "stale",
            MetricsHealth::Missing { .. } => "missing",
            MetricsHealth::Unreachable { .. } => "unreachable",
        }
    }
}

/// Stage 1's output: what the cluster looks like now and how far to trust it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The state (pods and replica counts always from the scaler; usage, rate and latency from
    /// metrics, zero or `None` where metrics are not [`MetricsHealth::Fresh`]).
    pub state: ClusterState,
    /// Trust in the metrics.
    pub health: MetricsHealth,
}

/// Stage 1, the state observer: builds an [`Observed`] from the scaler's replicas and the
/// metrics. Never fails: a metrics failure is reported in [`Observed::health`] with the pods
/// and replica counts the scaler knows. Implemented for [`crate::state::StateObserver`]
/// (Prometheus) in [`super::observe`].
pub trait Observe {
    /// Refreshes `scaler`'s view and observes the cluster.
    fn observe(&mut self, scaler: &mut dyn Scaler) -> Observed;
}

/// Where a [`Decision`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionSource {
    /// The configured agent.
    Agent,
    /// The HPA rules, because the metrics were not fresh.
    HpaFallback,
}

impl DecisionSource {
    /// `agent` or `hpa_fallback`.
    pub fn label(self) -> &'static str {
        match self {
            DecisionSource::Agent => "agent",
            DecisionSource::HpaFallback => "hpa_fallback",
        }
    }
}

/// Stage 2's output: a wished replica count, before the safety limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Wished `spec.replicas`.
    pub wished: u32,
    /// The deciding autoscaler's reason (e.g. the HPA's `ScaleUpLimit`).
    pub reason: String,
    /// Name of the autoscaler that decided.
    pub decided_by: String,
    /// Agent, or the HPA fallback.
    pub source: DecisionSource,
}

/// Stage 2, the decision agent: asks the configured [`Autoscaler`] when the metrics are fresh,
/// and the HPA algorithm otherwise (a second, separate [`Hpa`]: with no usable metrics it
/// keeps the current count, as the Kubernetes controller does when it gets no metrics).
pub struct DecisionAgent {
    agent: Box<dyn Autoscaler>,
    fallback: Hpa,
}

impl DecisionAgent {
    /// `agent` decides on fresh metrics, `fallback` on the rest.
    pub fn new(agent: Box<dyn Autoscaler>, fallback: Hpa) -> Self {
        Self { agent, fallback }
    }

    /// The configured agent's name.
    pub fn agent_name(&self) -> &str {
        self.agent.name()
    }

    /// Decides on `obs`.
    pub fn decide(&mut self, obs: &Observed) -> Decision {
        let (d, by, source) = if obs.health.is_fresh() {
            let d = self.agent.decide(&obs.state);
            (d, self.agent.name().to_string(), DecisionSource::Agent)
        } else {
            let d = self.fallback.decide(&obs.state);
            (d, "hpa".to_string(), DecisionSource::HpaFallback)
        };
        Decision {
            wished: d.desired_replicas,
            reason: d.reason.into_owned(),
            decided_by: by,
            source,
        }
    }
}

/// Stage 3's output: what was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `spec.replicas` before.
    pub from: u32,
    /// The count the safety limits let through (and the executor tried to set).
    pub to: u32,
    /// The safety limits that changed the wish.
    pub guarded: Guarded,
    /// Whether the scaler was asked to change anything.
    pub changed: bool,
    /// The scaler's error, if setting failed (the recovery branch then ran).
    pub error: Option<String>,
}

/// Stage 3, the action executor: passes the wish through [`Safety`] and sets the result.
pub struct ActionExecutor {
    safety: Safety,
}

impl ActionExecutor {
    /// An executor with these limits.
    pub fn new(safety: Safety) -> Self {
        Self { safety }
    }

    /// The limits.
    pub fn safety(&self) -> &Safety {
        &self.safety
    }

    /// Applies the limits to `decision` at `now` and sets the result on `scaler`. On failure
    /// the change is not recorded for the cooldown (nothing changed) and the error is returned
    /// in [`Action::error`] for the recovery branch.
    pub fn execute(
        &mut self,
        now: Duration,
        decision: &Decision,
        scaler: &mut dyn Scaler,
    ) -> Action {
        let from = scaler.desired_replicas();
        let before = self.safety.last_change();
        let guarded = self.safety.apply(now, from, decision.wished);
        let to = guarded.replicas;
        let changed = to != from;
        let error = if changed {
            match scaler.set_replicas(to) {
                Ok(()) => None,
                Err(e) => {
                    let e = e.to_string();
                    self.safety.undo(before);
                    Some(e)
                }
            }
        } else {
            None
        };
        Action {
            from,
            to,
            guarded,
            changed,
            error,
        }
    }

    /// Records a change the recovery branch made at `now` (for the cooldown).
    pub fn record_change(&mut self, now: Duration) {
        self.safety.undo(Some(now));
    }
}

/// What the recovery branch did after a failed action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryOutcome {
    /// The count the scaler reports after the failure.
    pub observed_replicas: u32,
    /// Whether a retry was made (only when the count still differs from the target).
    pub retried: bool,
    /// Whether the target count is set now.
    pub recovered: bool,
    /// The retry's error, if it failed too.
    pub error: Option<String>,
}

/// The recovery branch, taken when the executor's action fails: re-reads the scaler, retries
/// once if the target is still not set, and otherwise leaves the count as it is until the next
/// decision (the operator never stops on a failed action).
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovery;

impl Recovery {
    /// Recovers from `action` having failed on `scaler`.
    pub fn recover(&self, action: &Action, scaler: &mut dyn Scaler) -> RecoveryOutcome {
        let observed = scaler.desired_replicas();
        if observed == action.to {
            return RecoveryOutcome {
                observed_replicas: observed,
                retried: false,
                recovered: true,
                error: None,
            };
        }
        match scaler.set_replicas(action.to) {
            Ok(()) => RecoveryOutcome {
                observed_replicas: observed,
                retried: true,
                recovered: true,
                error: None,
            },
            Err(e) => RecoveryOutcome {
                observed_replicas: observed,
                retried: true,
                recovered: false,
                error: Some(e.to_string()),
            },
        }
    }
}

/// Service-level objective the reward scores against (the simulator's `[service]` values).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloConfig {
    /// p95 latency objective, milliseconds (sim default 200).
    pub p95_ms: f64,
    /// Share of dropped requests above which an interval violates the SLO (sim default 0.01).
    pub max_dropped_ratio: f64,
}

impl Default for SloConfig {
    fn default() -> Self {
        Self {
            p95_ms: 200.0,
            max_dropped_ratio: 0.01,
        }
    }
}

/// Stage 4, the reward calculator: scores the previous decision once its outcome is observed
/// (the next observation), with the simulator env's [`RewardCalculator`], so live and
/// simulated rewards are the same function. One decision interval counts as one tick.
pub struct RewardStage {
    calc: RewardCalculator,
    slo: SloConfig,
    pending_changed: Option<bool>,
}

impl RewardStage {
    /// A reward stage scoring with `calc` against `slo`.
    pub fn new(calc: RewardCalculator, slo: SloConfig) -> Self {
        Self {
            calc,
            slo,
            pending_changed: None,
        }
    }

    /// Remembers the decision just taken (`changed`: it changed the replica count).
    pub fn decided(&mut self, changed: bool) {
        self.pending_changed = Some(changed);
    }

    /// The reward of the previous decision given `obs`, its outcome; `None` if there is no
    /// previous decision or the metrics are not fresh (the outcome is unknown: the decision
    /// stays pending).
    pub fn outcome(&mut self, obs: &Observed) -> Option<f64> {
        if !obs.health.is_fresh() {
            return None;
        }
        let changed = self.pending_changed.take()?;
        let f = StepFigures::of(&obs.state, &self.slo);
        Some(
            self.calc
                .reward(&f.info, f.cpu_request_milli, f.used_milli, changed),
        )
    }
}

/// What one decision interval of a live system produced, in the terms of the simulated env's
/// [`StepInfo`] and [`RewardCalculator::reward`]'s inputs, read off the observation at its end
/// (one interval counts as one tick: `ticks = 1`, `slo_violated_ticks` 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepFigures {
    /// The step's figures; `arrivals`, `served` and `dropped` are `rate x interval` estimates
    /// (requests), filled by [`StepFigures::with_interval`].
    pub info: StepInfo,
    /// CPU the Ready pods used, millicores summed over pods (the rate over the CPU query's
    /// window).
    pub used_milli: f64,
    /// One Ready pod's CPU request, millicores (1000 when no pod is Ready).
    pub cpu_request_milli: f64,
    /// The interval violated the SLO: p95 latency above `p95_ms` or drops above
    /// `max_dropped_ratio`.
    pub slo_violated: bool,
}

impl StepFigures {
    /// The figures of `state` (observed at the end of an interval) against `slo`.
    pub fn of(state: &ClusterState, slo: &SloConfig) -> Self {
        let s = state;
        let violated = (s.p95_latency_ms > slo.p95_ms) || (s.dropped_ratio > slo.max_dropped_ratio);
        let ready: Vec<_> = s.pods.iter().filter(|p| p.ready && !p.deleting).collect();
        let used: f64 = ready
            .iter()
            .filter_map(|p| p.cpu_usage_milli)
            .map(|u| u as f64)
            .sum();
        let request = ready.first().map_or(1000.0, |p| p.cpu_request_milli as f64);
        StepFigures {
            info: StepInfo {
                time_s: s.time.as_secs_f64(),
                desired_replicas: s.desired_replicas,
                ready_replicas: s.ready_replicas,
                slo_violated_ticks: u32::from(violated),
                ticks: 1,
                cpu_utilization: s.cpu_utilization(),
                ..StepInfo::default()
            },
            used_milli: used,
            cpu_request_milli: request,
            slo_violated: violated,
        }
    }

    /// Fills `arrivals`, `served` and `dropped` (requests) from the observed request rate and
    /// drop ratio over an interval of `interval_s` seconds.
    pub fn with_interval(mut self, state: &ClusterState, interval_s: f64) -> Self {
        let arrivals = state.request_rate_per_s.max(0.0) * interval_s;
        let dropped = arrivals * state.dropped_ratio.clamp(0.0, 1.0);
        self.info.arrivals = arrivals;
        self.info.dropped = dropped;
        self.info.served = arrivals - dropped;
        self
    }
}
