//! The reward functions of `scaling-v0`, as one type shared by the simulated environment
//! ([`crate::ScalingEnv`]) and the live path (the operator's reward calculator and `LiveEnv` in
//! `adapters`), so a policy is scored the same way in training and in serving.
//!
//! See the [`crate::scaling`] module docs ("Reward") for the formulas and their source (the seed
//! design's reward calculator).

use std::collections::VecDeque;

use crate::scaling::{RewardKind, ScalingEnvConfig, StepInfo};

/// Computes the reward of each decision step from what the step produced ([`StepInfo`]).
///
/// `seed-discrete` is stateless; `weighted` keeps a sliding window of the last
/// `round(window_s / decision_interval_s)` steps (at least 1), cleared by
/// [`RewardCalculator::reset`].
#[derive(Debug, Clone, PartialEq)]
pub struct RewardCalculator {
    kind: RewardKind,
    band_low: f64,
    band_high: f64,
    target_utilization: f64,
    /// (violated ticks, ticks, utilization, changed) of the last steps, oldest first.
    window: VecDeque<(u32, u32, f64, u32)>,
    window_steps: usize,
}

impl RewardCalculator {
    /// The reward `config.reward` with its band, target and window (the config is assumed
    /// validated: [`ScalingEnvConfig::validate`]).
    pub fn new(config: &ScalingEnvConfig) -> Self {
        let window_steps = (config.window_s / config.decision_interval_s)
            .round()
            .max(1.0) as usize;
        Self {
            kind: config.reward,
            band_low: config.band_low,
            band_high: config.band_high,
            target_utilization: config.target_utilization,
            window: VecDeque::with_capacity(window_steps + 1),
            window_steps,
        }
    }

    /// Which reward this computes.
    pub fn kind(&self) -> RewardKind {
        self.kind
    }

    /// Forgets the sliding window (a new episode).
    pub fn reset(&mut self) {
        self.window.clear();
    }

    /// The reward of one step.
    ///
    /// * `info`: the step's figures; `info.cpu_utilization` is the mean CPU utilization of
    ///   Ready pods over the step (fraction of the CPU request), `info.ready_replicas` the Ready
    ///   pods at its end, `info.slo_violated_ticks / info.ticks` the share of the step that
    ///   violated the SLO (0 when `ticks` is 0).
    /// * `cpu_request_milli`: one pod's CPU request, millicores.
    /// * `mean_used_milli`: CPU the Ready pods used over the step, millicores (summed over pods).
    /// * `changed`: whether the step's action changed the replica count.
    pub fn reward(
        &mut self,
        info: &StepInfo,
        cpu_request_milli: f64,
        mean_used_milli: f64,
        changed: bool,
    ) -> f64 {
        let u = info.cpu_utilization;
        let violated = if info.ticks > 0 {
            f64::from(info.slo_violated_ticks) / f64::from(info.ticks)
        } else {
            0.0
        };
        match self.kind {
            RewardKind::SeedDiscrete => {
                let needed = (mean_used_milli / (cpu_request_milli * self.band_high))
                    .ceil()
                    .max(1.0);
                let wasted = (f64::from(info.ready_replicas) - needed).max(0.0);
                let band = if (self.band_low..=self.band_high).contains(&u) {
                    10.0
                } else {
                    0.0
                };
                band - wasted - 5.0 * violated
            }
            RewardKind::Weighted => {
                self.window
                    .push_back((info.slo_violated_ticks, info.ticks, u, u32::from(changed)));
                if self.window.len() > self.window_steps {
                    self.window.pop_front();
                }
                let n = self.window.len() as f64;
                let (mut vt, mut tt, mut us, mut ch) = (0u32, 0u32, 0.0, 0u32);
                for w in &self.window {
                    vt += w.0;
                    tt += w.1;
                    us += w.2;
                    ch += w.3;
                }
                let eff = (us / n / self.target_utilization).min(1.0);
                let slo = if tt > 0 {
                    1.0 - f64::from(vt) / f64::from(tt)
                } else {
                    1.0
                };
                let stab = 1.0 - f64::from(ch) / n;
                0.4 * eff + 0.4 * slo + 0.2 * stab
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(u: f64, ready: u32, violated: u32, ticks: u32) -> StepInfo {
        StepInfo {
            cpu_utilization: u,
            ready_replicas: ready,
            slo_violated_ticks: violated,
            ticks,
            ..StepInfo::default()
        }
    }

    #[test]
    fn seed_discrete_by_hand() {
        let mut r = RewardCalculator::new(&ScalingEnvConfig::default());
        // u = 0.6 in [0.5, 0.8]: +10. Used 1200 m of 1000 m requests at band 0.8: needed
        // ceil(1.5) = 2, ready 4: 2 wasted. 3 of 15 ticks violated: -5 * 0.2 = -1.
        assert_eq!(r.reward(&info(0.6, 4, 3, 15), 1000.0, 1200.0, false), 7.0);
        // Outside the band, nothing wasted, no violation.
        assert_eq!(r.reward(&info(0.9, 1, 0, 15), 1000.0, 900.0, true), 0.0);
    }

    #[test]
    fn weighted_window_by_hand() {
        let cfg = ScalingEnvConfig {
            reward: RewardKind::Weighted,
            window_s: 30.0,
            decision_interval_s: 15.0,
            ..ScalingEnvConfig::default()
        };
        let mut r = RewardCalculator::new(&cfg);
        // One step: eff = min(1, 0.35 / 0.7) = 0.5, slo = 1, stab = 0 (changed).
        let a = r.reward(&info(0.35, 2, 0, 15), 1000.0, 700.0, true);
        assert!((a - (0.4 * 0.5 + 0.4 + 0.0)).abs() < 1e-12);
        // Two steps: eff = min(1, 0.7 / 2 / 0.7) = 0.5, slo = 1 - 3/30, stab = 1 - 1/2.
        let b = r.reward(&info(0.35, 2, 3, 15), 1000.0, 700.0, false);
        assert!((b - (0.4 * 0.5 + 0.4 * 0.9 + 0.2 * 0.5)).abs() < 1e-12);
        // A third step pushes the first out of the 2-step window: no change left in it.
        let c = r.reward(&info(0.7, 2, 0, 15), 1000.0, 1400.0, false);
        assert!((c - (0.4 * (1.05 / 2.0 / 0.7) + 0.4 * 0.9 + 0.2)).abs() < 1e-12);
        r.reset();
        let d = r.reward(&info(0.7, 2, 0, 15), 1000.0, 1400.0, false);
        assert!((d - 1.0).abs() < 1e-12);
    }
}
