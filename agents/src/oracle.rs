//! The clairvoyant oracle: a reference bound, not a competitor. It reads the future request rate
//! of the evaluation trace and sets, at each decision, the fewest replicas that keep every tick
//! within the SLO under the simulator's own service model.
//!
//! # Method (the `fluid` model of [`sim::service`], closed form)
//! With `n` Ready pods each serving `mu = cpu_limit / cpu_per_request_ms` requests per second and
//! an offered rate `lambda`, a tick without backlog has exponential per-pod sojourn times of rate
//! `theta = max(mu (1 - sigma), ln(100) / timeout)`, where `sigma` is the GI/M/1 root at
//! utilization `rho = lambda / (n mu)` ([`sim::queueing`]). Its p95 latency is `ln(20) / theta`,
//! so the tick meets the latency objective `slo` exactly when
//!
//! ```text
//! sigma <= s* = 1 - ln(20) / (mu * slo)          (or the theta floor alone already meets it)
//! ```
//!
//! `sigma` increases with `rho`, so this is `rho <= rho_max(n)`, and inverting the fixed-point
//! equation `sigma = A*(mu (1 - sigma))` at `sigma = s*` gives `rho_max` in closed form:
//!
//! ```text
//! Poisson arrivals split round-robin (Erlang-n per pod):
//!     s* = (n rho / (n rho + 1 - s*))^n   =>   rho_max(n) = s*^(1/n) (1 - s*) / (n (1 - s*^(1/n)))
//! Evenly spaced arrivals (D/M/1):
//!     s* = exp(-(1 - s*) / rho)            =>   rho_max    = -(1 - s*) / ln(s*)
//! ```
//!
//! (`n = 1` gives M/M/1, `rho_max = s*`.) `rho_max(n)` grows with `n` (round-robin makes
//! arrivals more regular) while `rho = lambda / (n mu)` falls, so the smallest `n` with
//! `lambda <= n mu rho_max(n)` is found by stepping `n` up from `ceil(lambda / mu)`; no trial
//! simulation is run. `rho_max` is capped at 0.999, the highest utilization the simulator
//! evaluates `sigma` at. Without backlog nothing times out, so the drop objective holds too.
//!
//! # The future load, exactly
//! The oracle knows each tick's offered rate and, in `fluid` mode, its arrivals: the simulator's
//! own Poisson draws for the episode's seed ([`sim::engine::fluid_tick_arrivals`]). A tick
//! whose arrivals exceed the Ready pods' capacity `n mu dt` leaves a backlog whose requests wait
//! about half a tick, which breaks the next tick's p95 when the pods run near `rho_max`; so a
//! tick needs the larger of the replicas its rate needs and `ceil(arrivals / (mu dt))` (closed
//! form too). With no backlog ever, every tick is within the SLO.
//!
//! # Which ticks a decision covers
//! A decision at `t` sets the most any tick starting in `[t, t + h)` needs:
//! - `oracle-instant` ([`OracleVariant::Instant`]): `h` = the decision interval, and the
//!   oracle runs in a scenario whose start-up, readiness and node-provisioning delays are zero
//!   ([`OracleConfig::scenario`]): a pod ordered at `t` serves from `t`.
//! - `oracle-realistic` ([`OracleVariant::Realistic`]): the real scenario; `h` = the decision
//!   interval plus a lead time ([`OracleConfig::lead_s`]) = the `startup_quantile` quantile of the
//!   log-normal start-up delay + the readiness delay (+ the node-provisioning delay when the
//!   initial nodes cannot hold `max_replicas` pods), so every scale-up is ordered that far ahead.
//!   Scale-downs take effect at once (the ReplicaSet deletes Pending pods first).
//!
//! # Assumptions and limits (documented, not hidden)
//! - "No backlog" is sufficient, not necessary: a small overflow at a tick far from `rho_max`
//!   can pass unnoticed. The oracle does not exploit that (it would need a search by trial).
//! - It does not foresee crashes, node failures or start-up delays beyond the quantile.
//! - In `request` mode (per-request simulation) the oracle sizes by the rate alone: the same
//!   formulas hold in expectation (that is how the fluid model is validated), but it cannot see
//!   the arrival times and each tick's p95 is a sample quantile, so it can miss the SLO by
//!   chance there.
//! - If even one idle pod misses the SLO (`s* <= 0`: `ln(20) / mu > slo` and the floor does not
//!   help), no replica count meets it; the oracle then holds `max_replicas`.
//! - The bound holds against agents that decide no more often than the oracle's decision
//!   interval (every agent of an experiment decides at `env.decision_interval_s` or the HPA's
//!   sync period, 15 s by default).

use serde::{Deserialize, Serialize};
use sim::config::ServiceMode;
use sim::engine::fluid_tick_arrivals;
use sim::queueing::{LN_100, LN_20, RHO_EVALUATED_MAX as RHO_CAP};
use sim::trace::RateSeries;
use sim::workload::Arrivals;
use sim::{ClusterState, ScaleDecision, Scenario};
use statrs::distribution::{ContinuousCDF, Normal};

use crate::autoscaler::Autoscaler;

/// Relative safety margin on `rho_max` against rounding in the simulator's Newton solve.
const MARGIN: f64 = 1e-9;

/// An invalid [`OracleConfig`].
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    /// A config field is out of range (field name, what was expected).
    #[error("oracle.{field}: {reason}")]
    InvalidConfig {
        /// Field of [`OracleConfig`].
        field: &'static str,
        /// What was expected.
        reason: String,
    },
}

/// Whether the oracle is exempt from pod start-up delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OracleVariant {
    /// Pods start and become Ready the moment they are ordered (a looser bound).
    Instant,
    /// Pods take the scenario's start-up and readiness delays; scale-ups are ordered ahead.
    #[default]
    Realistic,
}

/// The `oracle` table of an `[[agents]]` entry with `kind = "oracle"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OracleConfig {
    /// `instant` or `realistic` (default).
    pub variant: OracleVariant,
    /// Quantile of the log-normal start-up delay the realistic oracle orders ahead by, in
    /// (0, 1) (default [`DEFAULT_STARTUP_QUANTILE`]: one scale-up in a thousand finds a pod
    /// still starting). Only for `realistic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_quantile: Option<f64>,
}

/// The start-up quantile a realistic oracle orders ahead by unless told otherwise.
pub const DEFAULT_STARTUP_QUANTILE: f64 = 0.999;

impl Default for OracleConfig {
    fn default() -> Self {
        Self {
            variant: OracleVariant::Realistic,
            startup_quantile: None,
        }
    }
}

impl OracleConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`OracleError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), OracleError> {
        match (self.variant, self.startup_quantile) {
            (OracleVariant::Instant, Some(_)) => Err(OracleError::InvalidConfig {
                field: "startup_quantile",
                reason: "only applies to variant = \"realistic\" (instant pods have no \
                         start-up delay)"
                    .into(),
            }),
            (_, Some(q)) if !(q > 0.0 && q < 1.0) => Err(OracleError::InvalidConfig {
                field: "startup_quantile",
                reason: format!("expected a number in (0, 1), got {q}"),
            }),
            _ => Ok(()),
        }
    }

    /// The scenario the oracle runs in: `base` for `realistic`; for `instant`, `base` with the
    /// start-up, readiness and node-provisioning delays set to 0 (everything else unchanged,
    /// so the traffic and the service model are the same).
    pub fn scenario(&self, base: &Scenario) -> Scenario {
        let mut s = base.clone();
        if self.variant == OracleVariant::Instant {
            s.pod.startup_delay_mean_s = 0.0;
            s.pod.startup_delay_std_s = 0.0;
            s.pod.readiness_delay_s = 0.0;
            s.cluster.node_provisioning_delay_s = 0.0;
        }
        s
    }

    /// How far ahead the oracle orders a scale-up, seconds: 0 for `instant`; for `realistic`
    /// the `startup_quantile` quantile of the start-up delay (log-normal with the scenario's
    /// mean and standard deviation, as the simulator draws it) plus the readiness delay, plus
    /// the node-provisioning delay when the initial nodes cannot hold `max_replicas` pods.
    pub fn lead_s(&self, sc: &Scenario) -> f64 {
        if self.variant == OracleVariant::Instant {
            return 0.0;
        }
        let (m, s) = (sc.pod.startup_delay_mean_s, sc.pod.startup_delay_std_s);
        let startup = if m <= 0.0 {
            0.0
        } else if s <= 0.0 {
            m
        } else {
            // Log-normal with mean m and standard deviation s (sim::engine's parametrisation).
            let var = (1.0 + (s / m).powi(2)).ln();
            let q = self.startup_quantile.unwrap_or(DEFAULT_STARTUP_QUANTILE);
            let z = Normal::standard().inverse_cdf(q);
            (m.ln() - var / 2.0 + z * var.sqrt()).exp()
        };
        let per_node = (sc.cluster.node_cpu_milli / sc.pod.cpu_request_milli.max(1))
            .min(sc.cluster.node_memory_bytes / sc.pod.memory_request_bytes.max(1));
        let fits = per_node.saturating_mul(u64::from(sc.cluster.nodes))
            >= u64::from(sc.deployment.max_replicas);
        let nodes = if fits || sc.cluster.max_nodes <= sc.cluster.nodes {
            0.0
        } else {
            sc.cluster.node_provisioning_delay_s
        };
        startup + sc.pod.readiness_delay_s + nodes
    }
}

/// The per-tick SLO condition of the fluid model as a bound on utilization (see the module
/// documentation for the formulas).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceBound {
    /// Requests per second one busy pod serves.
    pub mu: f64,
    /// `s*`: the largest GI/M/1 root that meets the p95 objective (`<= 0`: none does; `>= 1`:
    /// the sojourn floor meets it at any utilization).
    pub sigma_max: f64,
    /// Poisson arrivals (Erlang-n per pod) or evenly spaced ones (D/M/1).
    pub poisson: bool,
    /// Replica bounds of the Deployment.
    pub min_replicas: u32,
    /// Replica bounds of the Deployment.
    pub max_replicas: u32,
}

impl ServiceBound {
    /// The bound for `scenario` under `arrivals`.
    pub fn new(scenario: &Scenario, arrivals: Arrivals) -> Self {
        let sv = &scenario.service;
        let mu = sv.pod_service_rate(scenario.pod.cpu_limit_milli);
        let slo_s = sv.slo_p95_ms / 1000.0;
        let floor_meets = LN_20 * sv.timeout_s / LN_100 <= slo_s;
        let sigma_max = if floor_meets {
            1.0
        } else {
            1.0 - LN_20 / (mu * slo_s)
        };
        Self {
            mu,
            sigma_max,
            poisson: arrivals == Arrivals::Poisson,
            min_replicas: scenario.deployment.min_replicas,
            max_replicas: scenario.deployment.max_replicas,
        }
    }

    /// Whether some replica count meets the p95 objective (false when one idle pod's service
    /// time alone has a p95 above it: `ln(20) / mu > slo` and the sojourn floor does not help).
    pub fn attainable(&self) -> bool {
        self.sigma_max > 0.0
    }

    /// The p95 of one idle pod's service time, `ln(20) / mu`, milliseconds: the lowest p95
    /// objective some replica count can meet (unless the sojourn floor meets it).
    pub fn idle_p95_ms(&self) -> f64 {
        1000.0 * LN_20 / self.mu
    }

    /// `rho_max(n)`: the highest per-pod utilization at which `n` pods meet the p95 objective
    /// (0 when none does), capped at 0.999.
    pub fn max_utilization(&self, n: u32) -> f64 {
        let s = self.sigma_max;
        if s <= 0.0 || n == 0 {
            return 0.0;
        }
        if s >= 1.0 {
            return RHO_CAP;
        }
        let rho = if self.poisson {
            let k = f64::from(n);
            let r = s.powf(1.0 / k);
            r * (1.0 - s) / (k * (1.0 - r))
        } else {
            -(1.0 - s) / s.ln()
        };
        rho.min(RHO_CAP)
    }

    /// The fewest replicas in `[min_replicas, max_replicas]` that serve `rate_rps` requests per
    /// second within the SLO (`max_replicas` when none does).
    pub fn replicas_for(&self, rate_rps: f64) -> u32 {
        if rate_rps.is_nan() || rate_rps <= 0.0 {
            return self.min_replicas;
        }
        if self.sigma_max <= 0.0 {
            return self.max_replicas;
        }
        let first = (rate_rps / (self.mu * RHO_CAP)).ceil().clamp(1.0, 1e9) as u32;
        let mut n = first.max(self.min_replicas).max(1);
        while n < self.max_replicas
            && rate_rps > f64::from(n) * self.mu * self.max_utilization(n) * (1.0 - MARGIN)
        {
            n += 1;
        }
        n.min(self.max_replicas)
    }
}

/// The clairvoyant oracle as an [`Autoscaler`] (see the module documentation).
#[derive(Debug, Clone)]
pub struct Oracle {
    config: OracleConfig,
    bound: ServiceBound,
    /// Replicas each tick needs, in tick order.
    need: Vec<u32>,
    horizon_s: f64,
    horizon_ticks: usize,
    tick_s: f64,
    name: &'static str,
}

impl Oracle {
    /// An oracle for `traffic` (the episode's rate series, time 0 = episode start) in
    /// `scenario` (the one the episode runs in: pass [`OracleConfig::scenario`] of the
    /// experiment's), deciding every `decision_interval_s` seconds, for the episode simulated
    /// with `seed` (whose per-tick arrivals it reads in `fluid` mode).
    ///
    /// # Errors
    /// [`OracleError::InvalidConfig`] for an invalid `config` or a non-positive interval.
    pub fn new(
        config: OracleConfig,
        scenario: &Scenario,
        arrivals: Arrivals,
        decision_interval_s: f64,
        traffic: &RateSeries,
        seed: u64,
    ) -> Result<Self, OracleError> {
        config.validate()?;
        if !(decision_interval_s.is_finite() && decision_interval_s > 0.0) {
            return Err(OracleError::InvalidConfig {
                field: "decision_interval_s",
                reason: format!("expected a number of seconds > 0, got {decision_interval_s}"),
            });
        }
        let name = match config.variant {
            OracleVariant::Instant => "oracle-instant",
            OracleVariant::Realistic => "oracle-realistic",
        };
        let bound = ServiceBound::new(scenario, arrivals);
        let tick_s = scenario.service.tick_s;
        let exact = scenario.service.mode == ServiceMode::Fluid;
        let cap_per_pod = bound.mu * tick_s;
        let need = fluid_tick_arrivals(scenario, traffic, arrivals, seed)
            .into_iter()
            .map(|(rate, count)| {
                let by_rate = bound.replicas_for(rate);
                // No tick may leave a backlog: its arrivals fit the Ready pods' capacity.
                let by_count = if exact && count > 0.0 {
                    (count / cap_per_pod * (1.0 - 1e-12)).ceil().min(1e9) as u32
                } else {
                    0
                };
                by_rate.max(by_count).min(bound.max_replicas)
            })
            .collect();
        let horizon_s = decision_interval_s + config.lead_s(scenario);
        Ok(Self {
            horizon_ticks: ((horizon_s / tick_s).ceil() as usize).max(1),
            horizon_s,
            need,
            bound,
            tick_s,
            config,
            name,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OracleConfig {
        &self.config
    }

    /// How far ahead one decision looks, seconds (decision interval + lead time).
    pub fn horizon_s(&self) -> f64 {
        self.horizon_s
    }

    /// The service bound the oracle sizes with.
    pub fn bound(&self) -> &ServiceBound {
        &self.bound
    }

    /// Replicas each tick of the episode needs (tick `k` covers `[k dt, (k + 1) dt)`): the
    /// larger of what its offered rate needs ([`ServiceBound::replicas_for`]) and, in `fluid`
    /// mode, the fewest pods whose capacity `n mu dt` holds its arrivals.
    pub fn needs(&self) -> &[u32] {
        &self.need
    }

    /// The replicas a decision at `time_s` sets: the most any tick starting in
    /// `[time_s, time_s + horizon_s)` needs (`min_replicas` past the end of the episode).
    pub fn replicas_at(&self, time_s: f64) -> u32 {
        let first = ((time_s / self.tick_s).round().max(0.0) as usize).min(self.need.len());
        let last = (first + self.horizon_ticks).min(self.need.len());
        self.need[first..last]
            .iter()
            .copied()
            .max()
            .unwrap_or(self.bound.min_replicas)
            .max(self.bound.min_replicas)
    }
}

impl Autoscaler for Oracle {
    fn name(&self) -> &str {
        self.name
    }

    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        ScaleDecision::new(
            self.replicas_at(state.time.as_secs_f64()),
            "OracleForesight",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::queueing::{gi_m1_sigma, PodArrivals};
    use sim::SimTime;

    fn scenario() -> Scenario {
        Scenario::default()
    }

    #[test]
    fn closed_form_rho_max_is_the_root_the_simulator_solves() {
        let sc = scenario();
        for poisson in [true, false] {
            let arr = if poisson {
                Arrivals::Poisson
            } else {
                Arrivals::Deterministic
            };
            let b = ServiceBound::new(&sc, arr);
            for n in [1u32, 2, 3, 7, 20, 50] {
                let rho = b.max_utilization(n);
                let pa = if poisson {
                    PodArrivals::Erlang(n)
                } else {
                    PodArrivals::Deterministic
                };
                let sigma = gi_m1_sigma(pa, rho).unwrap();
                assert!(
                    (sigma - b.sigma_max).abs() < 1e-9,
                    "n={n}: {sigma} vs {}",
                    b.sigma_max
                );
            }
        }
    }

    #[test]
    fn hand_computed_minimum_on_a_constant_load() {
        // Defaults: mu = 1000 / 20 = 50 req/s, SLO p95 250 ms, timeout 10 s.
        // s* = 1 - ln 20 / (50 x 0.25) = 0.760341.
        // Deterministic arrivals: rho_max = -(1 - s*) / ln s* = 0.239659 / 0.273988 = 0.874706.
        // 200 req/s: 4 pods -> rho 1.0, 5 pods -> rho 0.8 <= 0.874: five pods.
        let sc = scenario();
        let b = ServiceBound::new(&sc, Arrivals::Deterministic);
        assert!((b.sigma_max - 0.760_341).abs() < 1e-6);
        assert!(
            (b.max_utilization(5) - 0.874_706).abs() < 1e-5,
            "{}",
            b.max_utilization(5)
        );
        assert_eq!(b.replicas_for(200.0), 5);
        // Five pods carry up to 250 x 0.874706 = 218.68 req/s: 218 fits, 219 needs six.
        assert_eq!(b.replicas_for(218.0), 5);
        assert_eq!(b.replicas_for(219.0), 6);
        // Poisson: rho_max(n) = r (1 - s*) / (n (1 - r)), r = s*^(1/n). n = 1: s* itself.
        let p = ServiceBound::new(&sc, Arrivals::Poisson);
        assert!((p.max_utilization(1) - 0.760_341).abs() < 1e-6);
        // n = 5: r = 0.760341^0.2 = 0.946677, rho_max = 0.946677 x 0.239659 / (5 x 0.053323)
        // = 0.850959: five pods carry up to 212.74 req/s; 212 fits, 213 needs six.
        assert!(
            (p.max_utilization(5) - 0.850_959).abs() < 1e-5,
            "{}",
            p.max_utilization(5)
        );
        assert_eq!(p.replicas_for(200.0), 5);
        assert_eq!(p.replicas_for(212.0), 5);
        assert_eq!(p.replicas_for(213.0), 6);
        // Nothing to serve: min_replicas; beyond max_replicas: max_replicas.
        assert_eq!(p.replicas_for(0.0), 1);
        assert_eq!(p.replicas_for(1e6), 50);
    }

    #[test]
    fn an_unattainable_slo_holds_max_replicas_and_a_loose_one_caps_utilization() {
        let mut sc = scenario();
        sc.service.slo_p95_ms = 50.0; // ln 20 / 50 = 60 ms > 50 ms at any load
        let b = ServiceBound::new(&sc, Arrivals::Poisson);
        assert!(b.sigma_max <= 0.0 && !b.attainable());
        assert_eq!(b.replicas_for(10.0), 50);
        sc.service.slo_p95_ms = 9000.0; // the sojourn floor alone meets it
        let b = ServiceBound::new(&sc, Arrivals::Poisson);
        assert_eq!(b.max_utilization(3), RHO_CAP);
        assert_eq!(b.replicas_for(100.0), 3); // 100 / (2 x 50) = 1.0 > 0.999
    }

    #[test]
    fn the_realistic_lead_is_the_startup_quantile_plus_readiness() {
        let sc = scenario(); // log-normal mean 20 s, std 5 s; readiness 10 s
        let c = OracleConfig::default();
        // sigma^2 = ln(1 + 0.0625) = 0.060625, mu = ln 20 - sigma^2 / 2 = 2.965420;
        // z(0.999) = 3.090232: exp(2.965420 + 3.090232 x 0.246221) = 41.525 s, + 10 s.
        assert!((c.lead_s(&sc) - 51.525).abs() < 0.001, "{}", c.lead_s(&sc));
        let i = OracleConfig {
            variant: OracleVariant::Instant,
            ..c.clone()
        };
        assert_eq!(i.lead_s(&sc), 0.0);
        let s = i.scenario(&sc);
        assert_eq!(
            (s.pod.startup_delay_mean_s, s.pod.readiness_delay_s),
            (0.0, 0.0)
        );
        assert_eq!(c.scenario(&sc), sc);
        for q in [0.0, 1.0, f64::NAN] {
            assert!(OracleConfig {
                startup_quantile: Some(q),
                ..c.clone()
            }
            .validate()
            .is_err());
        }
        // A quantile means nothing to the instant oracle.
        assert!(OracleConfig {
            startup_quantile: Some(0.9),
            ..i
        }
        .validate()
        .is_err());
    }

    #[test]
    fn decides_for_the_peak_of_its_horizon() {
        // Bins of 60 s: 50, 50, 300 req/s, evenly spaced. Ticks of 1 s, decisions every 15 s.
        let traffic = RateSeries {
            step_s: 60.0,
            values: vec![50.0, 50.0, 300.0],
        };
        let sc = scenario();
        let instant = OracleConfig {
            variant: OracleVariant::Instant,
            ..Default::default()
        };
        let arr = Arrivals::Deterministic;
        let mut o = Oracle::new(
            instant.clone(),
            &instant.scenario(&sc),
            arr,
            15.0,
            &traffic,
            1,
        )
        .unwrap();
        assert_eq!(o.name(), "oracle-instant");
        assert_eq!(o.needs().len(), 180);
        let at = |t: u64| ClusterState {
            time: SimTime::from_secs(t),
            ..Default::default()
        };
        let low = o.bound().replicas_for(50.0);
        let high = o.bound().replicas_for(300.0);
        assert_eq!((low, high), (2, 7));
        // [105, 120): ticks start 105..=119, all in bin 1.
        assert_eq!(o.decide(&at(105)).desired_replicas, low);
        // [120, 135): bin 2.
        assert_eq!(o.decide(&at(120)).desired_replicas, high);
        // Past the end: min_replicas.
        assert_eq!(o.decide(&at(500)).desired_replicas, 1);
        // Realistic, lead 51.5 s: horizon 66.5 s, 67 ticks; at t = 60 the last tick starts at
        // 126 s, in bin 2: it orders ahead; at t = 45 the last starts at 111 s, in bin 1.
        let mut r = Oracle::new(OracleConfig::default(), &sc, arr, 15.0, &traffic, 1).unwrap();
        assert_eq!(r.decide(&at(45)).desired_replicas, low);
        assert_eq!(r.decide(&at(60)).desired_replicas, high);
    }

    #[test]
    fn poisson_ticks_never_overflow_the_capacity_it_sets() {
        // 212 req/s: five pods by the rate (rho 0.848 <= 0.851), but a 1 s tick's Poisson
        // count exceeds their 250-request capacity now and then; those ticks need six.
        let traffic = RateSeries {
            step_s: 60.0,
            values: vec![212.0; 30],
        };
        let sc = scenario();
        let o = Oracle::new(
            OracleConfig::default(),
            &sc,
            Arrivals::Poisson,
            15.0,
            &traffic,
            3,
        )
        .unwrap();
        let draws = sim::engine::fluid_tick_arrivals(&sc, &traffic, Arrivals::Poisson, 3);
        assert_eq!(draws.len(), o.needs().len());
        for (&(_, count), &n) in draws.iter().zip(o.needs()) {
            assert!(count <= f64::from(n) * 50.0, "{count} arrivals, {n} pods");
            assert_eq!(n, if count > 250.0 { 6 } else { 5 });
        }
        assert!(o.needs().contains(&6) && o.needs().contains(&5));
    }
}
