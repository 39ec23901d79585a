//! Peer autoscalers a platform team would pick instead of the CPU HPA, as baselines beside it:
//! a KEDA-style scaler ([`Keda`]) and Knative's pod autoscaler ([`Kpa`]).
//!
//! # KEDA (<https://keda.sh/docs/latest/concepts/scaling-deployments/>)
//! A `ScaledObject` makes KEDA create an HPA whose metric is External and comes from KEDA's
//! metrics adapter: here the scraped request rate (`request-rate`, e.g. a Prometheus trigger
//! on `rate(http_requests_total[1m])`) or the queue length (`queue-length`, e.g. a queue
//! trigger), with `metricType: AverageValue` (KEDA's default): desired = ceil(metric / target
//! per replica), with the HPA's tolerance, stabilization and rate limits, since the HPA does the
//! scaling ([`crate::hpa::Hpa::with_metric`]). `pollingInterval` (30 s) is how often KEDA
//! checks its triggers: it activates a Deployment scaled to zero (`minReplicaCount: 0`, here
//! `deployment.min_replicas = 0`) and, with `useCachedMetrics`, is also how often the metric the
//! HPA reads is refreshed (otherwise each HPA sync queries it afresh). `cooldownPeriod` (300 s)
//! only applies to scaling to zero: after the last active trigger, KEDA waits that long before
//! setting 0 replicas.
//!
//! # Knative KPA (<https://knative.dev/docs/serving/autoscaling/kpa-specific/>, `autoscaler.go`)
//! The KPA averages a per-revision metric, concurrency (requests in flight) or requests per
//! second, over a stable window (60 s) and a panic window (10% of it, 6 s). With
//! `target' = target * target_utilization` (70%), `desired_stable = ceil(stable / target')` and
//! `desired_panic = ceil(panic / target')`, both limited to `[ready / max_scale_down_rate,
//! ready * max_scale_up_rate]` (2 and 1000). It enters panic mode when `desired_panic / ready
//! >= panic_threshold` (200%); while panicking it uses the panic count and never scales down,
//! and it leaves panic mode once a whole stable window passes without reaching the threshold.
//! Scale to zero is off (the Deployment's `min_replicas` holds).
//!
//! # In the simulator
//! KEDA's HPA decides every sync period (15 s) on the Prometheus-scraped metrics (15 s
//! scrapes). The KPA decides every `tick_interval_s` (Knative's 2 s tick) on metrics scraped
//! every `scrape_interval_s` (Knative scrapes the queue-proxies every second): its agent runs
//! in the scenario with that scrape interval. Both see what controllers see: the scraped
//! request rate, p50 latency and queue length (the backlog of requests waiting beyond the pods'
//! capacity, so a queue trigger only sees overload). The KPA's concurrency is Little's law on those: rate x mean latency, the mean taken
//! as `p50 / ln 2` (per-pod sojourn times are exponential in the service model); its windows
//! average the observations they hold (the panic window at least the latest one). Knative's
//! default concurrency target is 100 for an HTTP server with many threads; a simulated pod is
//! one FIFO server fed round-robin, whose requests in flight are about its utilization until it
//! saturates, so the default here is 1 in flight per pod (at 70%: a pod about 70% busy). A
//! target above 1 can only be reached in overload: the KPA then scales down until the pods
//! saturate, and swings between a few pods and `max_replicas`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use sim::{ClusterState, ScaleDecision, SimTime};

use crate::autoscaler::Autoscaler;
use crate::hpa::simulator::{EXTERNAL_QUEUE_LENGTH, EXTERNAL_REQUEST_RATE};
use crate::hpa::{Hpa, HpaConfig, HpaError, MetricSpec, MetricTarget};

const LN_2: f64 = std::f64::consts::LN_2;

/// An invalid [`KedaConfig`] or [`KpaConfig`] (field, what was expected).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PeerConfigError {
    /// The field, e.g. `target_per_replica`.
    pub field: &'static str,
    /// What was expected.
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> Result<(), PeerConfigError> {
    Err(PeerConfigError {
        field,
        reason: reason.into(),
    })
}

// ---------------------------------------------------------------------------------------------
// KEDA
// ---------------------------------------------------------------------------------------------

/// What a KEDA trigger reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KedaTrigger {
    /// The scraped request rate, requests per second (a Prometheus trigger).
    #[default]
    RequestRate,
    /// Requests waiting or in service (a queue trigger).
    QueueLength,
}

/// The `keda` table of an agent with `kind = "keda"` (a `ScaledObject`'s settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KedaConfig {
    /// The trigger's metric.
    pub trigger: KedaTrigger,
    /// The trigger's target per replica (`AverageValue`): requests per second, or requests
    /// queued, per pod. Default 30 req/s (60% of a default pod's 50 req/s).
    pub target_per_replica: f64,
    /// `pollingInterval`, seconds (KEDA: 30).
    pub polling_interval_s: f64,
    /// `cooldownPeriod`, seconds, before scaling to zero (KEDA: 300; only with
    /// `deployment.min_replicas = 0`).
    pub cooldown_period_s: f64,
    /// `useCachedMetrics`: the HPA reads the value of the last poll instead of a fresh one.
    pub use_cached_metrics: bool,
}

impl Default for KedaConfig {
    fn default() -> Self {
        Self {
            trigger: KedaTrigger::RequestRate,
            target_per_replica: 30.0,
            polling_interval_s: 30.0,
            cooldown_period_s: 300.0,
            use_cached_metrics: false,
        }
    }
}

impl KedaConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`PeerConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), PeerConfigError> {
        if !(self.target_per_replica > 0.0 && self.target_per_replica <= 1e9) {
            return bad(
                "target_per_replica",
                format!(
                    "expected a number in (0, 1e9], got {}",
                    self.target_per_replica
                ),
            );
        }
        for (f, v) in [
            ("polling_interval_s", self.polling_interval_s),
            ("cooldown_period_s", self.cooldown_period_s),
        ] {
            if !(v > 0.0 && v <= 1e9) {
                return bad(
                    f,
                    format!("expected a number of seconds in (0, 1e9], got {v}"),
                );
            }
        }
        Ok(())
    }
}

/// A KEDA `ScaledObject`: the HPA on an External metric, plus KEDA's polling and scale-to-zero
/// (see the module documentation).
#[derive(Debug, Clone)]
pub struct Keda {
    config: KedaConfig,
    hpa: Hpa,
    min_replicas: u32,
    /// Time and value of the last poll.
    polled: Option<(SimTime, f64)>,
    /// Last time a poll found the trigger active (metric > 0).
    last_active: Option<SimTime>,
    view: ClusterState,
}

impl Keda {
    /// A KEDA scaler with the HPA settings `hpa` (bounds, tolerance, behavior; its CPU target
    /// is unused). With `hpa.min_replicas = 0` it scales to zero as KEDA does (the HPA itself
    /// then runs with a minimum of 1).
    ///
    /// # Errors
    /// An invalid `config` or `hpa` ([`PeerConfigError`], [`HpaError`] as text).
    pub fn new(config: KedaConfig, hpa: HpaConfig) -> Result<Self, PeerConfigError> {
        config.validate()?;
        let metric = match config.trigger {
            KedaTrigger::RequestRate => EXTERNAL_REQUEST_RATE,
            KedaTrigger::QueueLength => EXTERNAL_QUEUE_LENGTH,
        };
        let target = (config.target_per_replica * 1000.0).round().max(1.0) as i64;
        let min_replicas = hpa.min_replicas;
        let hpa_cfg = HpaConfig {
            min_replicas: hpa.min_replicas.max(1),
            max_replicas: hpa.max_replicas.max(1),
            ..hpa
        };
        let spec = MetricSpec::External {
            metric: metric.to_string(),
            target: MetricTarget::average_value(target),
        };
        let hpa = Hpa::with_metric(hpa_cfg, spec).map_err(|e: HpaError| PeerConfigError {
            field: "hpa",
            reason: e.to_string(),
        })?;
        Ok(Self {
            config,
            hpa,
            min_replicas,
            polled: None,
            last_active: None,
            view: ClusterState::default(),
        })
    }

    fn metric(&self, s: &ClusterState) -> f64 {
        match self.config.trigger {
            KedaTrigger::RequestRate => s.request_rate_per_s,
            KedaTrigger::QueueLength => s.queue_length,
        }
    }
}

impl Autoscaler for Keda {
    fn name(&self) -> &str {
        "keda"
    }

    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        let poll_due = self.polled.is_none_or(|(t, _)| {
            (state.time - t).as_secs_f64() >= self.config.polling_interval_s - 1e-9
        });
        if poll_due {
            let v = self.metric(state);
            self.polled = Some((state.time, v));
            if v > 0.0 {
                self.last_active = Some(state.time);
            }
        }
        let polled = self.polled.map_or(0.0, |p| p.1);
        // Scale to zero (minReplicaCount 0): inactive for a whole cooldownPeriod.
        if self.min_replicas == 0 {
            let idle = self
                .last_active
                .is_none_or(|t| (state.time - t).as_secs_f64() >= self.config.cooldown_period_s);
            if polled <= 0.0 && idle {
                return ScaleDecision::new(0, "KedaScaledToZero");
            }
            if state.desired_replicas == 0 {
                return if polled > 0.0 {
                    ScaleDecision::new(1, "KedaActivated")
                } else {
                    ScaleDecision::new(0, "KedaInactive")
                };
            }
        }
        if self.config.use_cached_metrics {
            self.view.clone_from(state);
            match self.config.trigger {
                KedaTrigger::RequestRate => self.view.request_rate_per_s = polled,
                KedaTrigger::QueueLength => self.view.queue_length = polled,
            }
            let view = std::mem::take(&mut self.view);
            let d = self.hpa.decide(&view);
            self.view = view;
            d
        } else {
            self.hpa.decide(state)
        }
    }

    fn reset(&mut self) {
        self.hpa.reset();
        self.polled = None;
        self.last_active = None;
    }
}

// ---------------------------------------------------------------------------------------------
// Knative KPA
// ---------------------------------------------------------------------------------------------

/// The metric the KPA scales on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KpaMetric {
    /// Requests in flight per pod (Knative's default).
    #[default]
    Concurrency,
    /// Requests per second per pod.
    Rps,
}

/// The `kpa` table of an agent with `kind = "kpa"` (Knative's `config-autoscaler` keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KpaConfig {
    /// `autoscaling.knative.dev/metric`.
    pub metric: KpaMetric,
    /// `autoscaling.knative.dev/target`: requests in flight, or requests per second, per pod
    /// (Knative: 100 and 200; here 1 in flight, see the module documentation).
    pub target: f64,
    /// `target-utilization-percentage` / 100 (Knative: 0.7).
    pub target_utilization: f64,
    /// `stable-window`, seconds (Knative: 60, in [6, 3600]).
    pub stable_window_s: f64,
    /// `panic-window-percentage` (Knative: 10, in [1, 100]).
    pub panic_window_percentage: f64,
    /// `panic-threshold-percentage` (Knative: 200, > 100).
    pub panic_threshold_percentage: f64,
    /// `max-scale-up-rate` (Knative: 1000, > 1).
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate` (Knative: 2, > 1).
    pub max_scale_down_rate: f64,
    /// How often the autoscaler decides, seconds (Knative's tick: 2, in [1, 60]); it replaces
    /// `env.decision_interval_s` for this agent.
    pub tick_interval_s: f64,
    /// How often the autoscaler scrapes the pods' metrics, seconds (Knative: every second, in
    /// [1, 60]); it replaces `metrics.scrape_interval_s` in this agent's scenario.
    pub scrape_interval_s: f64,
}

impl Default for KpaConfig {
    fn default() -> Self {
        Self {
            metric: KpaMetric::Concurrency,
            target: 1.0,
            target_utilization: 0.7,
            stable_window_s: 60.0,
            panic_window_percentage: 10.0,
            panic_threshold_percentage: 200.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            tick_interval_s: 2.0,
            scrape_interval_s: 1.0,
        }
    }
}

impl KpaConfig {
    /// Checks every field against Knative's validation ranges.
    ///
    /// # Errors
    /// [`PeerConfigError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), PeerConfigError> {
        let checks: [(&'static str, f64, f64, f64, bool); 9] = [
            ("tick_interval_s", self.tick_interval_s, 1.0, 60.0, false),
            (
                "scrape_interval_s",
                self.scrape_interval_s,
                1.0,
                60.0,
                false,
            ),
            ("target", self.target, 0.0, 1e9, true),
            (
                "target_utilization",
                self.target_utilization,
                0.0,
                1.0,
                true,
            ),
            ("stable_window_s", self.stable_window_s, 6.0, 3600.0, false),
            (
                "panic_window_percentage",
                self.panic_window_percentage,
                1.0,
                100.0,
                false,
            ),
            (
                "panic_threshold_percentage",
                self.panic_threshold_percentage,
                100.0,
                1000.0,
                true,
            ),
            ("max_scale_up_rate", self.max_scale_up_rate, 1.0, 1e6, true),
            (
                "max_scale_down_rate",
                self.max_scale_down_rate,
                1.0,
                1e6,
                true,
            ),
        ];
        for (f, v, lo, hi, lo_open) in checks {
            let ok = if lo_open { v > lo } else { v >= lo } && v <= hi;
            if !ok {
                let open = if lo_open { "(" } else { "[" };
                return bad(
                    f,
                    format!("expected a number in {open}{lo}, {hi}], got {v}"),
                );
            }
        }
        Ok(())
    }
}

/// Knative's pod autoscaler (see the module documentation).
#[derive(Debug, Clone)]
pub struct Kpa {
    config: KpaConfig,
    min_replicas: u32,
    max_replicas: u32,
    /// Observations `(time, total metric)` within the stable window.
    window: VecDeque<(SimTime, f64)>,
    /// When panic mode started (`None`: not panicking).
    panic_since: Option<SimTime>,
    /// Last time the panic threshold was reached.
    panic_last: Option<SimTime>,
    /// The most pods panic mode has asked for.
    max_panic_pods: u32,
}

impl Kpa {
    /// A KPA within `[min_replicas, max_replicas]`.
    ///
    /// # Errors
    /// [`PeerConfigError`] for an invalid `config`.
    pub fn new(
        config: KpaConfig,
        min_replicas: u32,
        max_replicas: u32,
    ) -> Result<Self, PeerConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            min_replicas,
            max_replicas,
            window: VecDeque::new(),
            panic_since: None,
            panic_last: None,
            max_panic_pods: 0,
        })
    }

    /// The revision's total metric as observed: requests in flight (rate x p50 / ln 2) or
    /// requests per second.
    pub fn observe(&self, s: &ClusterState) -> f64 {
        match self.config.metric {
            KpaMetric::Rps => s.request_rate_per_s,
            KpaMetric::Concurrency => s.request_rate_per_s * s.p50_latency_ms / 1000.0 / LN_2,
        }
    }

    /// Whether the KPA is in panic mode.
    pub fn panicking(&self) -> bool {
        self.panic_since.is_some()
    }
}

impl Autoscaler for Kpa {
    fn name(&self) -> &str {
        "kpa"
    }

    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        let c = &self.config;
        let now = state.time;
        let value = self.observe(state);
        self.window.push_back((now, value.max(0.0)));
        let stable_ms = (c.stable_window_s * 1000.0) as u64;
        let panic_ms = (c.stable_window_s * c.panic_window_percentage / 100.0 * 1000.0) as u64;
        while self
            .window
            .front()
            .is_some_and(|(t, _)| now.0.saturating_sub(t.0) >= stable_ms)
        {
            self.window.pop_front();
        }
        // Mean of the observations younger than `within` (the latest always is one).
        let avg = |within: u64| {
            let (sum, n) = self
                .window
                .iter()
                .filter(|(t, _)| now.0.saturating_sub(t.0) < within)
                .fold((0.0, 0u32), |(s, n), x| (s + x.1, n + 1));
            if n == 0 {
                value
            } else {
                sum / f64::from(n)
            }
        };
        let (stable, panic) = (avg(stable_ms), avg(panic_ms.max(1)));
        let target = c.target * c.target_utilization;
        let ready = state.ready_replicas.max(1) as f64;
        let up = (c.max_scale_up_rate * ready).ceil();
        let down = (ready / c.max_scale_down_rate).floor();
        let count = |v: f64| (v / target).ceil().clamp(down, up);
        let (dspc, dppc) = (count(stable), count(panic));
        let over = dppc / ready >= c.panic_threshold_percentage / 100.0;
        if over {
            self.panic_last = Some(now);
            if self.panic_since.is_none() {
                self.panic_since = Some(now);
                self.max_panic_pods = 0;
            }
        } else if self
            .panic_last
            .is_some_and(|t| now.0.saturating_sub(t.0) >= stable_ms)
        {
            self.panic_since = None;
        }
        let clamp = |n: f64| (n.max(0.0) as u32).clamp(self.min_replicas, self.max_replicas);
        if self.panic_since.is_some() {
            // Never scale down while panicking.
            self.max_panic_pods = self
                .max_panic_pods
                .max(clamp(dppc))
                .max(state.desired_replicas);
            ScaleDecision::new(self.max_panic_pods, "KpaPanic")
        } else {
            ScaleDecision::new(clamp(dspc), "KpaStable")
        }
    }

    fn reset(&mut self) {
        self.window.clear();
        self.panic_since = None;
        self.panic_last = None;
        self.max_panic_pods = 0;
    }
}

#[cfg(test)]
mod tests;
