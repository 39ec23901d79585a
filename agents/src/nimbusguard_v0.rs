//! `nimbusguard-v0`: the policy the original (Python) NimbusGuard ended with, rebuilt in the
//! simulator from its description so the seed's own approach is measured on the same seeded
//! traces as the HPA and this project's agents. It is a baseline of prior art, not a tuned agent.
//!
//! # What the description fixes
//! A Double DQN with two hidden layers of 24 units, gamma 0.95, epsilon from 1.0 to 0.01 with a
//! decay of 0.995, a replay buffer of 2,000 transitions and batches of 32; a 4-value state
//! (forecast memory %, CPU %, memory %, replicas); actions keep / +1 / -1; a reward for keeping
//! the blended CPU/memory utilization near 60% with action and boundary penalties and no latency
//! term; a rule-based shield that can override the agent near the limits. The network, replay
//! buffer and double-DQN targets are [`crate::dqn`]'s.
//!
//! # Assumptions (what the description leaves open, and what this rebuild chose)
//! 1. **Epsilon decays per gradient update** (`epsilon *= 0.995` after each replay, the Keras
//!    DQN-tutorial loop such implementations follow): [`crate::dqn::DqnConfig::epsilon_decay`].
//!    Exploration therefore ends after about 920 updates.
//! 2. **Learning rate 0.001** (Keras' Adam default), one update per step once the buffer holds a
//!    batch, a hard target-network copy every 1,000 steps, Huber loss and gradient clipping as
//!    [`crate::dqn`] (the tutorials' MSE on raw rewards diverges more easily).
//! 3. **State scaling.** Percentages become fractions of the request, clipped to `[0, 2]` and
//!    halved into `[0, 1]`, replicas are divided by `max_replicas` (as `scaling-v0` encodes).
//!    The metrics are the lagged ones every controller sees (metrics-server, 60 s window).
//! 4. **"Forecast memory %"** is a one-decision-ahead Holt (level + trend) forecast of the
//!    observed memory utilization (`alpha` 0.5, `beta` 0.3); the original fed a model's memory
//!    forecast, which this simulator's memory model (base + per-request working set) makes
//!    nearly flat anyway.
//! 5. **Reward** after each step, from the observed utilizations: with the blend
//!    `b = cpu_weight * cpu + (1 - cpu_weight) * memory` (`cpu_weight` 0.5),
//!    `r = 1 - |b - 0.6| / 0.6`, minus `action_penalty` (0.1) when the executed action changes
//!    the replicas, minus `boundary_penalty` (1.0) when the agent asks to go below
//!    `min_replicas` or above `max_replicas`. No latency or SLO term, as described.
//! 6. **Shield** ("near the limits"): when CPU or memory utilization is at or above
//!    `shield_high` (0.9 of the request) the action becomes +1; an action past the replica
//!    bounds becomes keep. It runs in training (inside [`V0Env`]) and serving alike; the replay
//!    buffer stores the agent's own choice, the env executes the shielded one.
//! 7. Decisions every `env.decision_interval_s` with the experiment's cooldown, like the
//!    other learned agents; the training budget (`total_steps`) is set per experiment.

use serde::{Deserialize, Serialize};
use sim::{ClusterState, ScaleDecision};

use envs::{BoxSpace, Discrete, Env, ScalingEnv, Step, StepInfo};

use crate::autoscaler::{Autoscaler, Policy};
use crate::dqn::{Dqn, DqnConfig, DqnError};

/// Actions of the seed: keep, scale up by one pod, scale down by one pod.
pub const ACTIONS: [i64; 3] = [0, 1, -1];

/// The `nimbusguard_v0` table of an `[[agents]]` entry with `kind = "nimbusguard-v0"`.
/// Defaults are the seed's (see the module documentation for which are assumptions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct V0Config {
    /// Env steps of training.
    pub total_steps: usize,
    /// Units of the hidden layers (seed: two of 24).
    pub hidden_sizes: Vec<usize>,
    /// Adam learning rate (assumption: Keras' default 0.001).
    pub learning_rate: f64,
    /// Discount factor (seed: 0.95).
    pub gamma: f64,
    /// Replay buffer capacity (seed: 2,000).
    pub buffer_size: usize,
    /// Batch size (seed: 32).
    pub batch_size: usize,
    /// Initial exploration rate (seed: 1.0).
    pub epsilon_start: f64,
    /// Final exploration rate (seed: 0.01).
    pub epsilon_end: f64,
    /// Exploration decay per gradient update (seed: 0.995).
    pub epsilon_decay: f64,
    /// Env steps between hard target-network copies (assumption: 1,000).
    pub target_update_interval: usize,
    /// Utilization the reward centres on, fraction of the request (seed: 0.6).
    pub target_utilization: f64,
    /// Weight of CPU in the blended utilization (assumption: 0.5, memory the rest).
    pub cpu_weight: f64,
    /// Reward penalty for an action that changes the replicas (assumption: 0.1).
    pub action_penalty: f64,
    /// Reward penalty for asking to go past the replica bounds (assumption: 1.0).
    pub boundary_penalty: f64,
    /// Utilization (fraction of request) at which the shield forces a scale-up (assumption:
    /// 0.9); the shield is on unless `shield = false`.
    pub shield_high: f64,
    /// Whether the rule-based shield overrides the agent.
    pub shield: bool,
}

impl Default for V0Config {
    fn default() -> Self {
        Self {
            total_steps: 50_000,
            hidden_sizes: vec![24, 24],
            learning_rate: 1e-3,
            gamma: 0.95,
            buffer_size: 2_000,
            batch_size: 32,
            epsilon_start: 1.0,
            epsilon_end: 0.01,
            epsilon_decay: 0.995,
            target_update_interval: 1_000,
            target_utilization: 0.6,
            cpu_weight: 0.5,
            action_penalty: 0.1,
            boundary_penalty: 1.0,
            shield_high: 0.9,
            shield: true,
        }
    }
}

impl V0Config {
    /// The DQN hyperparameters this config stands for (double DQN, updates every step from
    /// `batch_size` transitions on).
    pub fn dqn_config(&self) -> DqnConfig {
        DqnConfig {
            hidden_sizes: self.hidden_sizes.clone(),
            learning_rate: self.learning_rate,
            gamma: self.gamma,
            buffer_size: self.buffer_size,
            batch_size: self.batch_size,
            learning_starts: self.batch_size.min(self.total_steps),
            train_frequency: 1,
            target_update_interval: self.target_update_interval,
            tau: 1.0,
            epsilon_start: self.epsilon_start,
            epsilon_end: self.epsilon_end,
            epsilon_decay: Some(self.epsilon_decay),
            total_steps: self.total_steps,
            double_dqn: true,
            ..DqnConfig::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`DqnError::InvalidConfig`] naming the first field out of range (DQN fields through
    /// [`DqnConfig::validate`]).
    pub fn validate(&self) -> Result<(), DqnError> {
        self.dqn_config().validate()?;
        let bad = |field, reason: String| Err(DqnError::InvalidConfig { field, reason });
        if self.total_steps <= self.batch_size {
            return bad(
                "total_steps",
                format!(
                    "must exceed batch_size ({}): updates start once the buffer holds a batch, \
                     got {}",
                    self.batch_size, self.total_steps
                ),
            );
        }
        for (f, v) in [
            ("target_utilization", self.target_utilization),
            ("shield_high", self.shield_high),
        ] {
            if !(v > 0.0 && v <= 2.0) {
                return bad(f, format!("must be in (0, 2], got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.cpu_weight) {
            return bad(
                "cpu_weight",
                format!("must be in [0, 1], got {}", self.cpu_weight),
            );
        }
        for (f, v) in [
            ("action_penalty", self.action_penalty),
            ("boundary_penalty", self.boundary_penalty),
        ] {
            if !(0.0..=1e6).contains(&v) {
                return bad(f, format!("must be in [0, 1e6], got {v}"));
            }
        }
        Ok(())
    }
}

/// Builds the seed's 4-value state from what a controller sees, keeping the Holt forecast of
/// memory utilization between decisions.
#[derive(Debug, Clone, Default)]
pub struct V0Observer {
    level: Option<f64>,
    trend: f64,
    max_replicas: u32,
}

/// Holt smoothing constants of the memory forecast (assumption 4).
const HOLT_ALPHA: f64 = 0.5;
const HOLT_BETA: f64 = 0.3;

fn unit(u: f64) -> f32 {
    (u.clamp(0.0, 2.0) / 2.0) as f32
}

impl V0Observer {
    /// A fresh observer for a Deployment of at most `max_replicas` pods.
    pub fn new(max_replicas: u32) -> Self {
        Self {
            level: None,
            trend: 0.0,
            max_replicas: max_replicas.max(1),
        }
    }

    /// Forgets the forecast state (a new episode).
    pub fn reset(&mut self) {
        self.level = None;
        self.trend = 0.0;
    }

    /// The state `[forecast memory, CPU, memory, replicas]`, each in `[0, 1]` (utilizations as
    /// `min(u, 2) / 2` of the request, replicas over `max_replicas`). Call once per decision.
    pub fn observe(&mut self, state: &ClusterState) -> Vec<f32> {
        let mem = state.memory_utilization();
        let forecast = match self.level {
            None => {
                self.level = Some(mem);
                mem
            }
            Some(l) => {
                let level = HOLT_ALPHA * mem + (1.0 - HOLT_ALPHA) * (l + self.trend);
                self.trend = HOLT_BETA * (level - l) + (1.0 - HOLT_BETA) * self.trend;
                self.level = Some(level);
                level + self.trend
            }
        };
        vec![
            unit(forecast),
            unit(state.cpu_utilization()),
            unit(mem),
            (f64::from(state.desired_replicas) / f64::from(self.max_replicas)).min(1.0) as f32,
        ]
    }
}

/// What the shield made of an action: the replica change executed and whether the agent asked
/// to cross a replica bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shielded {
    /// Replica change executed: -1, 0 or +1.
    pub delta: i64,
    /// The agent's action would have left `[min_replicas, max_replicas]`.
    pub blocked: bool,
    /// The shield changed the agent's action.
    pub overridden: bool,
}

/// Applies the seed's shield (assumption 6) to `action` (an index of [`ACTIONS`]) in `state`.
pub fn shield(
    config: &V0Config,
    action: usize,
    state: &ClusterState,
    min: u32,
    max: u32,
) -> Shielded {
    let wanted = ACTIONS[action.min(ACTIONS.len() - 1)];
    let r = i64::from(state.desired_replicas);
    let blocked = (wanted > 0 && r >= i64::from(max)) || (wanted < 0 && r <= i64::from(min));
    let mut delta = if blocked { 0 } else { wanted };
    if config.shield {
        let hot = state.cpu_utilization() >= config.shield_high
            || state.memory_utilization() >= config.shield_high;
        if hot && r < i64::from(max) {
            delta = 1;
        }
    }
    Shielded {
        delta,
        blocked,
        overridden: delta != wanted,
    }
}

/// The seed's reward (assumption 5) for the state observed after a step.
pub fn reward(config: &V0Config, after: &ClusterState, s: Shielded) -> f64 {
    let w = config.cpu_weight;
    let b = w * after.cpu_utilization().min(2.0) + (1.0 - w) * after.memory_utilization().min(2.0);
    let t = config.target_utilization;
    let mut r = 1.0 - (b - t).abs() / t;
    if s.delta != 0 {
        r -= config.action_penalty;
    }
    if s.blocked {
        r -= config.boundary_penalty;
    }
    r
}

/// The training env of `nimbusguard-v0`: `scaling-v0` seen through the seed's state, actions,
/// reward and shield. Observation `Box([0, 1]^4)`, actions `Discrete(3)` ([`ACTIONS`]).
pub struct V0Env {
    inner: ScalingEnv,
    config: V0Config,
    observer: V0Observer,
    obs_space: BoxSpace,
    action_space: Discrete,
}

impl V0Env {
    /// Wraps `inner` (its bounds and cooldown apply; its own reward is ignored).
    pub fn new(inner: ScalingEnv, config: V0Config) -> Self {
        let max = inner.encoder().max_replicas;
        Self {
            inner,
            config,
            observer: V0Observer::new(max),
            obs_space: BoxSpace::new(vec![0.0; 4], vec![1.0; 4]),
            action_space: Discrete::new(ACTIONS.len()),
        }
    }

    fn bounds(&self) -> (u32, u32) {
        let g = self.inner.scale_guard();
        (g.min_replicas, g.max_replicas)
    }
}

impl Env for V0Env {
    type Obs = Vec<f32>;
    type Action = usize;
    type Info = StepInfo;
    type ObsSpace = BoxSpace;
    type ActionSpace = Discrete;

    fn id(&self) -> &str {
        "nimbusguard-v0"
    }

    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, StepInfo) {
        let (_, info) = self.inner.reset(seed);
        self.observer.reset();
        (self.observer.observe(self.inner.cluster_state()), info)
    }

    fn step(&mut self, action: usize) -> Step<Vec<f32>, StepInfo> {
        let (min, max) = self.bounds();
        let state = self.inner.cluster_state();
        let s = shield(&self.config, action, state, min, max);
        let desired = (i64::from(state.desired_replicas) + s.delta).max(0) as u32;
        let step = self.inner.step_desired(desired, |_| {});
        let after = self.inner.cluster_state();
        Step {
            obs: self.observer.observe(after),
            reward: reward(&self.config, after, s),
            terminated: step.terminated,
            truncated: step.truncated,
            info: step.info,
        }
    }

    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }

    fn action_space(&self) -> &Discrete {
        &self.action_space
    }
}

/// A trained `nimbusguard-v0` policy serving as an [`Autoscaler`], with the same observer and
/// shield as [`V0Env`].
pub struct V0Autoscaler<P: Policy> {
    policy: P,
    config: V0Config,
    observer: V0Observer,
    min_replicas: u32,
    max_replicas: u32,
    name: String,
}

impl<P: Policy> V0Autoscaler<P> {
    /// Serves `policy` (trained on [`V0Env`]) within `[min_replicas, max_replicas]`.
    pub fn new(
        policy: P,
        config: V0Config,
        min_replicas: u32,
        max_replicas: u32,
        name: impl Into<String>,
    ) -> Self {
        Self {
            policy,
            config,
            observer: V0Observer::new(max_replicas),
            min_replicas,
            max_replicas,
            name: name.into(),
        }
    }
}

impl<P: Policy> Autoscaler for V0Autoscaler<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        let obs = self.observer.observe(state);
        let a = self.policy.act(&obs);
        let s = shield(&self.config, a, state, self.min_replicas, self.max_replicas);
        let reason = match (s.overridden, s.delta) {
            (true, _) => "ShieldOverride",
            (false, d) if d > 0 => "PolicyScaleUp",
            (false, d) if d < 0 => "PolicyScaleDown",
            _ => "PolicyNoChange",
        };
        let desired = (i64::from(state.desired_replicas) + s.delta).max(0) as u32;
        ScaleDecision::new(desired, reason)
    }

    fn reset(&mut self) {
        self.observer.reset();
    }
}

/// Builds an untrained `nimbusguard-v0` agent for a 4-value state and 3 actions.
///
/// # Errors
/// [`DqnError::InvalidConfig`] for an invalid config.
pub fn new_agent(config: &V0Config, seed: u64) -> Result<Dqn, DqnError> {
    config.validate()?;
    Dqn::new(config.dqn_config(), 4, ACTIONS.len(), seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ready_pod;
    use sim::SimTime;

    fn state(replicas: u32, cpu_milli: u64, mem_bytes: u64) -> ClusterState {
        let pod = |id| ready_pod(id, cpu_milli, 1000, mem_bytes, SimTime::ZERO);
        ClusterState {
            desired_replicas: replicas,
            ready_replicas: replicas,
            pods: (0..u64::from(replicas)).map(pod).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn reward_by_hand() {
        let c = V0Config::default();
        // CPU 300/500 = 0.6, memory 600/1000 = 0.6: blend 0.6, reward 1.
        let s0 = Shielded {
            delta: 0,
            blocked: false,
            overridden: false,
        };
        assert!((reward(&c, &state(3, 300, 600), s0) - 1.0).abs() < 1e-12);
        // CPU 0.9, memory 0.3: blend 0.6 again; a scale-up costs 0.1.
        let up = Shielded { delta: 1, ..s0 };
        assert!((reward(&c, &state(3, 450, 300), up) - 0.9).abs() < 1e-12);
        // CPU 0.2, memory 0.4: blend 0.3, 1 - 0.3 / 0.6 = 0.5; blocked at a bound: -1.
        let blocked = Shielded {
            blocked: true,
            ..s0
        };
        assert!((reward(&c, &state(1, 100, 400), blocked) + 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_shield_overrides_near_the_limits() {
        let c = V0Config::default();
        // Hot CPU (0.95): keep becomes +1.
        let s = shield(&c, 0, &state(3, 475, 300), 1, 10);
        assert_eq!((s.delta, s.overridden, s.blocked), (1, true, false));
        // -1 at min_replicas: blocked, kept.
        let s = shield(&c, 2, &state(1, 100, 300), 1, 10);
        assert_eq!((s.delta, s.overridden, s.blocked), (0, true, true));
        // +1 at max_replicas even when hot: blocked, kept.
        let s = shield(&c, 1, &state(10, 490, 300), 1, 10);
        assert_eq!((s.delta, s.blocked), (0, true));
        // Normal load: the agent's -1 goes through.
        let s = shield(&c, 2, &state(4, 200, 300), 1, 10);
        assert_eq!((s.delta, s.overridden), (-1, false));
        // Shield off: the hot keep stays a keep.
        let off = V0Config { shield: false, ..c };
        assert_eq!(shield(&off, 0, &state(3, 475, 300), 1, 10).delta, 0);
    }

    #[test]
    fn observer_forecasts_memory_with_holt() {
        let mut o = V0Observer::new(10);
        // First observation: the forecast is the value itself.
        assert_eq!(o.observe(&state(2, 250, 400)), vec![0.2, 0.25, 0.2, 0.2]);
        // Memory 0.4 -> 0.6: level 0.5 x 0.6 + 0.5 x 0.4 = 0.5, trend 0.3 x 0.1 = 0.03,
        // forecast 0.53 -> 0.265 after halving.
        let obs = o.observe(&state(2, 250, 600));
        assert!((obs[0] - 0.265).abs() < 1e-6, "{obs:?}");
        o.reset();
        assert_eq!(o.observe(&state(5, 250, 600))[0], 0.3);
    }

    #[test]
    fn the_seed_hyperparameters_reach_the_dqn() {
        let d = V0Config::default().dqn_config();
        assert_eq!(d.hidden_sizes, vec![24, 24]);
        assert_eq!((d.gamma, d.buffer_size, d.batch_size), (0.95, 2000, 32));
        assert_eq!(
            (d.epsilon_start, d.epsilon_end, d.epsilon_decay),
            (1.0, 0.01, Some(0.995))
        );
        assert!(d.double_dqn);
        assert!(V0Config {
            cpu_weight: 1.5,
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
