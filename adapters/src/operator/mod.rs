//! The operator loop: every decision interval, **observe** (stage 1), **decide** with any
//! [`agents::Autoscaler`] (stage 2; the HPA rules take over when the metrics are stale, missing
//! or unreachable), **act** through the safety limits (stage 3; a failed action takes the
//! **recovery** branch), and **score** the previous decision once its outcome is observed
//! (stage 4, the simulator env's reward). Each decision leaves a [`DecisionTrace`] naming every
//! stage's output, written as one JSON line per decision when a trace file is set.
//!
//! `POST /trigger` on the operator's HTTP endpoint ([`telemetry`]) forces a decision at once;
//! the interval restarts from it.
//!
//! Modules:
//! - [`stages`] — the typed stages and their hand-offs.
//! - [`safety`] — bounds, maximum step, cooldown.
//! - [`observe`] — stage 1 over Prometheus ([`crate::state::StateObserver`]).
//! - [`telemetry`] — `/metrics`, `/trigger`, `/health`.

pub mod observe;
pub mod safety;
pub mod stages;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod tests;

pub use self::safety::{Guarded, Limit, Safety, SafetyConfig};

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use self::stages::{
    Action, ActionExecutor, Decision, DecisionAgent, DecisionSource, MetricsHealth, Observe,
    Observed, Recovery, RecoveryOutcome, RewardStage,
};
use self::telemetry::{OperatorMetrics, ReasonLabel, SourceLabel, Trigger};
use crate::scaler::Scaler;

/// Why a decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The decision interval elapsed.
    Interval,
    /// `POST /trigger`.
    Trigger,
}

/// One decision, stage by stage (one JSON line of the trace file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionTrace {
    /// Decision number, from 0.
    pub seq: u64,
    /// Time since the operator started, seconds.
    pub time_s: f64,
    /// Interval or trigger.
    pub cause: Cause,
    /// Stage 1: trust in the metrics.
    pub metrics: MetricsHealth,
    /// Stage 1: replicas the scaler reported (desired, ready).
    pub observed_replicas: (u32, u32),
    /// Stage 1: CPU utilization of Ready pods, fraction of request (0 when metrics are not
    /// fresh).
    pub cpu_utilization: f64,
    /// Stage 1: request rate, requests per second.
    pub request_rate_per_s: f64,
    /// Stage 1: p95 latency, milliseconds.
    pub p95_latency_ms: f64,
    /// Stage 2: the decision.
    pub decision: Decision,
    /// Stage 3: the action (with the safety limits that changed the wish).
    pub action: Action,
    /// Recovery branch, when the action failed.
    pub recovery: Option<RecoveryOutcome>,
    /// Stage 4: reward of the previous decision, scored on this observation (`None` while
    /// the metrics are not fresh or for the first decision).
    pub reward_of_previous: Option<f64>,
    /// Wall time of observe + decide + act, milliseconds.
    pub latency_ms: f64,
}

/// Operator loop settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoopConfig {
    /// Time between two decisions, seconds. Default 15 (the HPA's sync period).
    pub decision_interval_s: f64,
    /// Bounds, maximum step, cooldown.
    pub safety: safety::SafetyConfig,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            decision_interval_s: 15.0,
            safety: safety::SafetyConfig::default(),
        }
    }
}

impl LoopConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// A message naming the field and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.decision_interval_s.is_finite() && self.decision_interval_s > 0.0) {
            return Err(format!(
                "operator.decision_interval_s: expected a finite number > 0 seconds, got {}",
                self.decision_interval_s
            ));
        }
        self.safety.validate()
    }
}

/// The operator: the four stages, the recovery branch, metrics and the decision trace.
pub struct Operator<O: Observe, S: Scaler> {
    interval: Duration,
    observer: O,
    agent: DecisionAgent,
    executor: ActionExecutor,
    recovery: Recovery,
    reward: RewardStage,
    scaler: S,
    metrics: OperatorMetrics,
    trace: Option<Box<dyn Write + Send>>,
    history: Vec<DecisionTrace>,
    /// Most decisions kept in `history` (the latest ones).
    history_limit: usize,
    start: Instant,
    seq: u64,
}

impl<O: Observe, S: Scaler> Operator<O, S> {
    /// Assembles an operator. `trace`, if given, receives one JSON line per decision.
    pub fn new(
        config: &LoopConfig,
        observer: O,
        agent: DecisionAgent,
        scaler: S,
        reward: RewardStage,
        metrics: OperatorMetrics,
        trace: Option<Box<dyn Write + Send>>,
    ) -> Self {
        Self {
            interval: Duration::from_secs_f64(config.decision_interval_s),
            observer,
            agent,
            executor: ActionExecutor::new(safety::Safety::new(config.safety)),
            recovery: Recovery,
            reward,
            scaler,
            metrics,
            trace,
            history: Vec::new(),
            history_limit: usize::MAX,
            start: Instant::now(),
            seq: 0,
        }
    }

    /// The scaler.
    pub fn scaler(&self) -> &S {
        &self.scaler
    }

    /// The scaler, mutably.
    pub fn scaler_mut(&mut self) -> &mut S {
        &mut self.scaler
    }

    /// The observer, mutably.
    pub fn observer_mut(&mut self) -> &mut O {
        &mut self.observer
    }

    /// Every decision taken so far (the latest `last` of them after
    /// [`Operator::keep_history`]).
    pub fn history(&self) -> &[DecisionTrace] {
        &self.history
    }

    /// Keeps only the latest `last` decisions (at least 1) in [`Operator::history`] from now
    /// on, so that a long-running operator (the Kubernetes controller) does not grow without
    /// bound. Default: all of them.
    pub fn keep_history(&mut self, last: usize) {
        self.history_limit = last.max(1);
        self.trim_history(0);
    }

    /// Drops the oldest decisions so that `room` more fit within the limit.
    fn trim_history(&mut self, room: usize) {
        let excess = (self.history.len() + room).saturating_sub(self.history_limit);
        if excess > 0 {
            self.history.drain(..excess.min(self.history.len()));
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &OperatorMetrics {
        &self.metrics
    }

    /// Takes one decision now: observe, decide, act (recover on failure), score the previous
    /// decision; updates the metrics and writes the trace line.
    pub fn decide_once(&mut self, cause: Cause) -> &DecisionTrace {
        let now = self.start.elapsed();
        self.decide_at(now, cause)
    }

    /// [`Operator::decide_once`] with an explicit clock: `now` is the time since the operator
    /// started (it drives the cooldown and the trace's `time_s`; tests pass synthetic times).
    pub fn decide_at(&mut self, now: Duration, cause: Cause) -> &DecisionTrace {
        let t0 = Instant::now();
        let obs: Observed = self.observer.observe(&mut self.scaler);
        let reward_of_previous = self.reward.outcome(&obs);
        let decision = self.agent.decide(&obs);
        let action = self.executor.execute(now, &decision, &mut self.scaler);
        let recovery = action.error.as_ref().map(|e| {
            tracing::warn!(error = %e, from = action.from, to = action.to,
                "scaling failed; recovery branch");
            self.metrics.action_failures.inc();
            let r = self.recovery.recover(&action, &mut self.scaler);
            if r.recovered {
                self.executor.record_change(now);
            }
            r
        });
        let changed = action.changed
            && (action.error.is_none() || recovery.as_ref().is_some_and(|r| r.recovered));
        self.reward.decided(changed);
        let latency = t0.elapsed();

        let m = &self.metrics;
        m.decisions
            .get_or_create(&SourceLabel {
                source: decision.source.label().into(),
            })
            .inc();
        if decision.source == DecisionSource::HpaFallback {
            m.fallbacks
                .get_or_create(&ReasonLabel {
                    reason: obs.health.label().into(),
                })
                .inc();
            tracing::warn!(metrics = obs.health.label(), ?obs.health,
                "metrics not fresh: the HPA rules decide");
        }
        m.desired_replicas
            .set(i64::from(self.scaler.desired_replicas()));
        m.wished_replicas.set(i64::from(decision.wished));
        if let Some(r) = reward_of_previous {
            m.reward.set(r);
        }
        m.decision_latency.observe(latency.as_secs_f64());
        if cause == Cause::Trigger {
            m.triggers.inc();
        }

        let s = &obs.state;
        let trace = DecisionTrace {
            seq: self.seq,
            time_s: now.as_secs_f64(),
            cause,
            metrics: obs.health.clone(),
            observed_replicas: (s.desired_replicas, s.ready_replicas),
            cpu_utilization: s.cpu_utilization(),
            request_rate_per_s: s.request_rate_per_s,
            p95_latency_ms: s.p95_latency_ms,
            decision,
            action,
            recovery,
            reward_of_previous,
            latency_ms: latency.as_secs_f64() * 1e3,
        };
        tracing::info!(seq = trace.seq, cause = ?trace.cause, metrics = trace.metrics.label(),
            source = trace.decision.source.label(), decided_by = %trace.decision.decided_by,
            wished = trace.decision.wished, from = trace.action.from, to = trace.action.to,
            limited_by = ?trace.action.guarded.limited_by, reward = ?trace.reward_of_previous,
            "decision");
        if let Some(w) = self.trace.as_mut() {
            let line = serde_json::to_string(&trace).unwrap_or_default();
            if let Err(e) = writeln!(w, "{line}").and_then(|()| w.flush()) {
                tracing::error!(error = %e, "cannot write the decision trace");
            }
        }
        self.seq += 1;
        self.trim_history(1);
        self.history.push(trace);
        self.history.last().expect("just pushed")
    }

    /// Runs the loop until `stop` is set or `until` passes: a decision every interval, and one
    /// at once for each trigger received on `triggers` (the interval restarts from it).
    pub fn run(&mut self, triggers: &Receiver<Trigger>, stop: &AtomicBool, until: Option<Instant>) {
        let mut next = Instant::now();
        loop {
            if stop.load(Ordering::SeqCst) || until.is_some_and(|u| Instant::now() >= u) {
                return;
            }
            let now = Instant::now();
            let wait = next
                .saturating_duration_since(now)
                .min(Duration::from_millis(200));
            let cause = if now >= next {
                Some(Cause::Interval)
            } else {
                match triggers.recv_timeout(wait) {
                    Ok(t) => {
                        tracing::info!(body = %t.body, "trigger received");
                        Some(Cause::Trigger)
                    }
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        // No trigger source left: just wait for the interval.
                        std::thread::sleep(wait);
                        None
                    }
                }
            };
            if let Some(c) = cause {
                self.decide_once(c);
                next = Instant::now() + self.interval;
            }
        }
    }
}
