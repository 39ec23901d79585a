//! `scaling-v0`: horizontal scaling of one Deployment in the simulator.
//!
//! ## Description
//! An agent sets the replica count of a Deployment every `decision_interval_s` (default 15 s,
//! the HPA's sync period) while real traffic replayed from a trace hits it. Pods take time to
//! start and become Ready, metrics lag, and every pod costs money: the agent must keep latency
//! within the SLO with as few pods as it can.
//!
//! ## Action Space
//! `Discrete(2 * max_step + 1)` (21 by default, [`ActionMap`]): action `i` changes the desired
//! replicas by `i - max_step`: `0` scales down by 10, `10` does nothing, `20` scales up by 10.
//! The result is clamped to `[min_replicas, max_replicas]` (seed design: 1 and 50) and refused
//! while a cooldown runs (`cooldown_s`, seed design 300 s; 0 disables it) ([`ScaleGuard`]).
//!
//! ## Observation Space
//! `Box([0, 1]^d)`, `d = 4` (5 with `trend_feature`), encoded by [`ObsEncoder`] from what a
//! controller sees (lagged metrics, never the simulator's true state):
//!
//! | index | observation | unit | normalisation |
//! |---|---|---|---|
//! | 0 | CPU utilization of Ready pods | fraction of CPU request | `min(u, 2) / 2` |
//! | 1 | memory utilization of Ready pods | fraction of memory request | `min(u, 2) / 2` |
//! | 2 | request rate (scraped) | requests/s | `min(r / peak_rps, 2) / 2` |
//! | 3 | desired replicas | pods | `r / max_replicas` |
//! | 4 | rate trend over the last step (optional) | requests/s | `clamp((Δr / peak_rps + 1) / 2, 0, 1)` |
//!
//! ## Reward
//! `seed-discrete` (the seed design): per step, with `u` the true mean CPU utilization of Ready
//! pods over the step, `+10` if `u` lies in `[band_low, band_high]` (default 0.5-0.8), `-1` per
//! wasted replica (`ready - max(1, ceil(used CPU / (request * band_high)))`, at least 0), and `-5`
//! times the share of the step's ticks that violated the SLO.
//!
//! `weighted` (the seed's reward calculator): `0.4 * efficiency + 0.4 * slo + 0.2 * stability`,
//! each in `[0, 1]` over a sliding window (`window_s`, default 600 s): efficiency =
//! `min(1, u / target_utilization)`, slo = share of ticks without SLO violation, stability =
//! `1 - replica changes / steps` in the window.
//!
//! ## Starting State
//! `deployment.initial_replicas` pods Ready at t = 0 at the start of the traffic window; no
//! metrics yet (the first metrics-server sample comes after `metrics.resolution_s`).
//!
//! ## Episode End
//! There is no terminal state (`terminated` is always false: autoscaling is a continuing task).
//! The episode is `truncated` when the traffic window ends (or by a [`crate::TimeLimit`]).
//!
//! ## Arguments
//! [`ScalingEnvConfig`] (decision interval, cooldown, reward), a [`sim::Scenario`] and the
//! traffic ([`sim::trace::RateSeries`]).
//!
//! ## Version History
//! - v0: initial version.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sim::trace::RateSeries;
use sim::workload::Arrivals;
use sim::{ClusterState, Scenario, Simulation};

use crate::encoding::{ActionMap, ObsEncoder, ScaleGuard};
use crate::env::{Env, Step};
use crate::reward::RewardCalculator;
use crate::spaces::{BoxSpace, Discrete};

/// The versioned id of [`ScalingEnv`].
pub const ENV_ID: &str = "scaling-v0";

/// Which reward function [`ScalingEnv`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RewardKind {
    /// +10 in the utilization band, -1 per wasted replica, -5 per SLO violation.
    #[default]
    SeedDiscrete,
    /// 40% efficiency, 40% SLO compliance, 20% stability over a sliding window.
    Weighted,
}

/// Configuration of [`ScalingEnv`] (the `[env]` table of an experiment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingEnvConfig {
    /// Time between two decisions, seconds.
    pub decision_interval_s: f64,
    /// Minimum time between two replica changes, seconds (0 = none).
    pub cooldown_s: f64,
    /// Largest replica change of one action, pods (21 actions for 10).
    pub max_step: u32,
    /// Reward function.
    pub reward: RewardKind,
    /// Lower edge of the target utilization band (fraction of CPU request).
    pub band_low: f64,
    /// Upper edge of the target utilization band (fraction of CPU request).
    pub band_high: f64,
    /// Utilization at which `weighted`'s efficiency term is 1.
    pub target_utilization: f64,
    /// Sliding window of the `weighted` reward, seconds.
    pub window_s: f64,
    /// Append the request-rate trend to the observation.
    pub trend_feature: bool,
}

impl Default for ScalingEnvConfig {
    fn default() -> Self {
        Self {
            decision_interval_s: 15.0,
            cooldown_s: 300.0,
            max_step: 10,
            reward: RewardKind::SeedDiscrete,
            band_low: 0.5,
            band_high: 0.8,
            target_utilization: 0.7,
            window_s: 600.0,
            trend_feature: false,
        }
    }
}

impl ScalingEnvConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`sim::Error::InvalidConfig`] naming the field (`env.<name>`).
    pub fn validate(&self) -> sim::Result<()> {
        let bad = |f: &str, m: &str| Err(sim::Error::config(format!("env.{f}"), m));
        let max = sim::config::MAX_VALUE;
        if !(self.decision_interval_s.is_finite()
            && (0.001..=max).contains(&self.decision_interval_s))
        {
            return bad(
                "decision_interval_s",
                "expected a number of seconds in [0.001, 1e9]",
            );
        }
        if !(self.cooldown_s.is_finite() && (0.0..=max).contains(&self.cooldown_s)) {
            return bad("cooldown_s", "expected a number of seconds in [0, 1e9]");
        }
        if self.max_step == 0 {
            return bad("max_step", "expected >= 1");
        }
        if !(self.band_low > 0.0 && self.band_low < self.band_high && self.band_high.is_finite()) {
            return bad("band_low", "expected 0 < band_low < band_high");
        }
        if !(self.target_utilization > 0.0 && self.target_utilization.is_finite()) {
            return bad("target_utilization", "expected a number > 0");
        }
        if !(self.window_s.is_finite()
            && self.window_s >= self.decision_interval_s
            && self.window_s <= max)
        {
            return bad(
                "window_s",
                "expected at least one decision interval and at most 1e9 s",
            );
        }
        Ok(())
    }
}

/// Diagnostics of one step: true figures over the step's ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepInfo {
    /// Simulated time at the end of the step, seconds.
    pub time_s: f64,
    /// `spec.replicas` after the action (bounds and cooldown applied).
    pub desired_replicas: u32,
    /// Ready pods at the end of the step.
    pub ready_replicas: u32,
    /// Requests arrived / served / dropped during the step.
    pub arrivals: f64,
    /// See `arrivals`.
    pub served: f64,
    /// See `arrivals`.
    pub dropped: f64,
    /// Ticks of the step that violated the SLO, and all ticks of the step.
    pub slo_violated_ticks: u32,
    /// See `slo_violated_ticks`.
    pub ticks: u32,
    /// True mean CPU utilization of Ready pods over the step (fraction of request).
    pub cpu_utilization: f64,
}

/// The `scaling-v0` environment. See the module documentation for its Gymnasium-style card.
pub struct ScalingEnv {
    config: ScalingEnvConfig,
    scenario: Scenario,
    traffic: Arc<RateSeries>,
    arrivals: Arrivals,
    sim: Option<Simulation>,
    seed: u64,
    episode: u64,
    state: ClusterState,
    encoder: ObsEncoder,
    actions: ActionMap,
    guard: ScaleGuard,
    done: bool,
    prev_rate: f64,
    obs_space: BoxSpace,
    action_space: Discrete,
    reward: RewardCalculator,
}

impl ScalingEnv {
    /// Builds the env. `peak_rps` scales the request-rate feature (the workload's peak).
    ///
    /// # Errors
    /// [`sim::Error::InvalidConfig`] for a bad env config or scenario, [`sim::Error::EmptyWindow`]
    /// if the traffic is shorter than one tick.
    pub fn new(
        config: ScalingEnvConfig,
        scenario: Scenario,
        traffic: Arc<RateSeries>,
        arrivals: Arrivals,
        peak_rps: f64,
    ) -> sim::Result<Self> {
        config.validate()?;
        // Building one simulation validates the scenario and the traffic up front.
        Simulation::new(&scenario, traffic.clone(), arrivals, 0)?;
        let encoder = ObsEncoder {
            rate_scale_rps: peak_rps.max(1e-9),
            max_replicas: scenario.deployment.max_replicas,
            trend_feature: config.trend_feature,
        };
        let d = encoder.dim();
        let actions = ActionMap {
            max_step: config.max_step,
        };
        let guard = ScaleGuard::new(
            scenario.deployment.min_replicas,
            scenario.deployment.max_replicas,
            Duration::from_secs_f64(config.cooldown_s),
        );
        let reward = RewardCalculator::new(&config);
        Ok(Self {
            action_space: Discrete::new(actions.n()),
            obs_space: BoxSpace::new(vec![0.0; d], vec![1.0; d]),
            config,
            scenario,
            traffic,
            arrivals,
            sim: None,
            seed: 0,
            episode: 0,
            state: ClusterState::default(),
            encoder,
            actions,
            guard,
            done: true,
            prev_rate: 0.0,
            reward,
        })
    }

    /// The encoder this env uses (share it with the serving side).
    pub fn encoder(&self) -> &ObsEncoder {
        &self.encoder
    }

    /// The action map this env uses.
    pub fn action_map(&self) -> ActionMap {
        self.actions
    }

    /// The scenario every episode of this env simulates.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The replica bounds and cooldown this env applies to every step.
    pub fn scale_guard(&self) -> &ScaleGuard {
        &self.guard
    }

    /// The env's configuration.
    pub fn config(&self) -> &ScalingEnvConfig {
        &self.config
    }

    /// What a controller sees now (valid after `reset`).
    pub fn cluster_state(&self) -> &ClusterState {
        &self.state
    }

    /// The running simulation (after `reset`).
    pub fn simulation(&self) -> Option<&Simulation> {
        self.sim.as_ref()
    }

    fn encode(&self) -> Vec<f32> {
        let mut obs = Vec::with_capacity(self.encoder.dim());
        self.encoder
            .encode_into(&self.state, self.prev_rate, &mut obs);
        obs
    }

    /// Steps with a desired replica count instead of a discrete action (how rule-based
    /// autoscalers such as the HPA are evaluated in the same env, same bounds and cooldown).
    /// `on_tick` sees every simulator tick of the step.
    ///
    /// # Panics
    /// If the episode has ended or `reset` was never called.
    pub fn step_desired(
        &mut self,
        desired: u32,
        mut on_tick: impl FnMut(&sim::TickStats),
    ) -> Step<Vec<f32>, StepInfo> {
        assert!(
            !self.done,
            "ScalingEnv: step() called after the episode ended; call reset() first"
        );
        let sim = self.sim.as_mut().expect("reset() sets the simulation");
        let now = sim.now();
        let current = sim.desired_replicas();
        let applied = self.guard.apply(now, current, desired);
        let changed = applied != current;
        sim.set_desired_replicas(applied);
        let mut info = StepInfo::default();
        let (mut used, mut util_sum, mut util_ticks) = (0.0, 0.0, 0u32);
        let interval = Duration::from_secs_f64(self.config.decision_interval_s);
        let cpu_req = self.scenario.pod.cpu_request_milli as f64;
        sim.advance(interval, |t| {
            info.arrivals += t.arrivals;
            info.served += t.served;
            info.dropped += t.dropped;
            info.ticks += 1;
            info.slo_violated_ticks += u32::from(t.slo_violated);
            if t.ready_replicas > 0 {
                util_sum += t.cpu_utilization;
                util_ticks += 1;
                used += t.cpu_utilization * f64::from(t.ready_replicas) * cpu_req;
            }
            on_tick(t);
        });
        info.cpu_utilization = if util_ticks > 0 {
            util_sum / f64::from(util_ticks)
        } else {
            0.0
        };
        let mean_used = if util_ticks > 0 {
            used / f64::from(util_ticks)
        } else {
            0.0
        };
        let truncated = sim.is_finished();
        self.prev_rate = self.state.request_rate_per_s;
        sim.observe_into(&mut self.state);
        info.time_s = self.state.time.as_secs_f64();
        info.desired_replicas = self.state.desired_replicas;
        info.ready_replicas = self.state.ready_replicas;
        let reward = self.reward(&info, mean_used, changed);
        self.done = truncated;
        Step {
            obs: self.encode(),
            reward,
            terminated: false,
            truncated,
            info,
        }
    }

    fn reward(&mut self, info: &StepInfo, mean_used_milli: f64, changed: bool) -> f64 {
        let req = self.scenario.pod.cpu_request_milli as f64;
        self.reward.reward(info, req, mean_used_milli, changed)
    }
}

impl Env for ScalingEnv {
    type Obs = Vec<f32>;
    type Action = usize;
    type Info = StepInfo;
    type ObsSpace = BoxSpace;
    type ActionSpace = Discrete;

    fn id(&self) -> &str {
        ENV_ID
    }

    /// `Some(seed)` restarts the seed sequence: that episode's simulation uses `seed`;
    /// `None` runs the next episode with `seed + episodes since`.
    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, StepInfo) {
        match seed {
            Some(s) => {
                self.seed = s;
                self.episode = 0;
            }
            None => self.episode += 1,
        }
        let sim = Simulation::new(
            &self.scenario,
            self.traffic.clone(),
            self.arrivals,
            self.seed.wrapping_add(self.episode),
        )
        .expect("validated in ScalingEnv::new");
        sim.observe_into(&mut self.state);
        self.sim = Some(sim);
        self.guard.reset();
        self.reward.reset();
        self.prev_rate = 0.0;
        self.done = false;
        let info = StepInfo {
            desired_replicas: self.state.desired_replicas,
            ready_replicas: self.state.ready_replicas,
            ..Default::default()
        };
        (self.encode(), info)
    }

    fn step(&mut self, action: usize) -> Step<Vec<f32>, StepInfo> {
        let current = self.sim.as_ref().map_or(0, |s| s.desired_replicas());
        let desired = self.actions.target(action, current);
        self.step_desired(desired, |_| {})
    }

    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }

    fn action_space(&self) -> &Discrete {
        &self.action_space
    }
}
