//! [`LiveEnv`]: the `scaling-v0` environment's contract over a real system, in real time.
//!
//! The same observation ([`ObsEncoder`]), action map ([`ActionMap`]), bounds and cooldown
//! ([`ScaleGuard`]) and reward ([`RewardCalculator`]) as the simulated [`envs::ScalingEnv`],
//! but the state comes from an [`Observe`] stage (Prometheus and the scaler's pods) and the
//! actions go to a [`Scaler`] (local processes, a Deployment). Code written against
//! [`envs::Env`] (rollouts, wrappers such as [`envs::TimeLimit`], an agent's greedy policy)
//! runs on it unchanged; [`LiveEnv::step_desired`] serves rule-based autoscalers as
//! [`envs::ScalingEnv::step_desired`] does.
//!
//! Differences a user must know:
//! - Time is the wall clock: step `k` ends `k x decision_interval_s` after [`Env::reset`]
//!   (steps are paced on that grid, so a slow observation does not shift later steps).
//! - A real system has no seed: `reset(Some(seed))` records the seed and changes nothing else.
//! - `arrivals`, `served` and `dropped` in [`StepInfo`] are `rate x interval` estimates from
//!   the observed request rate and drop ratio; `ticks` is 1 per step (one observation), so
//!   `slo_violated_ticks` is 0 or 1.
//! - When the metrics are not fresh (Prometheus down, stale or missing samples), the outcome
//!   of the step is unknown: its reward is 0 and [`LiveInfo::health`] says why.
//! - The episode is `truncated` once `episode_s` seconds have passed since the reset;
//!   `terminated` is always false (autoscaling is a continuing task).

use std::time::{Duration, Instant};

use envs::{
    ActionMap, BoxSpace, Discrete, Env, ObsEncoder, RewardCalculator, ScaleGuard, ScalingEnvConfig,
    Step, StepInfo,
};
use sim::{ClusterState, SimTime};

use crate::error::{Error, Result};
use crate::operator::stages::{MetricsHealth, Observe, Observed, SloConfig, StepFigures};
use crate::scaler::Scaler;

/// The versioned id of [`LiveEnv`].
pub const LIVE_ENV_ID: &str = "scaling-live-v0";

/// Configuration of a [`LiveEnv`].
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEnvConfig {
    /// Decision interval, cooldown, action map size and reward: the simulated env's settings
    /// (use the config of the env the policy was trained in).
    pub env: ScalingEnvConfig,
    /// Replica bounds, pods (`[deployment] min_replicas` / `max_replicas` of the scenario).
    pub min_replicas: u32,
    /// See `min_replicas`.
    pub max_replicas: u32,
    /// Replicas [`Env::reset`] sets, pods.
    pub initial_replicas: u32,
    /// Request rate that maps to 0.5 in the observation, requests per second (the training
    /// workload's peak, so the policy sees what it was trained on).
    pub rate_scale_rps: f64,
    /// The objective a step's SLO violation is judged against.
    pub slo: SloConfig,
    /// Episode length, seconds of wall clock; the step that reaches it is `truncated`.
    pub episode_s: f64,
    /// How long [`Env::reset`] waits for the initial replicas to be Ready, seconds (it goes on
    /// after that, with a warning).
    pub ready_timeout_s: f64,
}

impl LiveEnvConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.env
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        if self.min_replicas == 0 || self.min_replicas > self.max_replicas {
            return Err(Error::Config(format!(
                "live env: expected 1 <= min_replicas <= max_replicas, got [{}, {}]",
                self.min_replicas, self.max_replicas
            )));
        }
        if !(self.min_replicas..=self.max_replicas).contains(&self.initial_replicas) {
            return Err(Error::Config(format!(
                "live env: initial_replicas {} outside [{}, {}]",
                self.initial_replicas, self.min_replicas, self.max_replicas
            )));
        }
        for (name, v) in [
            ("rate_scale_rps", self.rate_scale_rps),
            ("episode_s", self.episode_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::Config(format!(
                    "live env: {name} must be a finite number > 0, got {v}"
                )));
            }
        }
        if !(self.ready_timeout_s.is_finite() && self.ready_timeout_s >= 0.0) {
            return Err(Error::Config(format!(
                "live env: ready_timeout_s must be >= 0 seconds, got {}",
                self.ready_timeout_s
            )));
        }
        Ok(())
    }
}

/// Diagnostics of one [`LiveEnv`] step.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveInfo {
    /// The step's figures in the simulated env's terms (see the module docs for how live
    /// figures are estimated); `time_s` is seconds since the reset.
    pub step: StepInfo,
    /// Trust in the metrics observed at the end of the step.
    pub health: MetricsHealth,
    /// The state observed at the end of the step (latency percentiles, request rate, pods).
    pub state: ClusterState,
    /// Pods that cost at the end of the step (every pod the scaler runs, terminating ones
    /// included, as the simulator bills them).
    pub billed_pods: u32,
    /// The replica count asked for was refused by the scaler (its error); the scaler's own
    /// count stands.
    pub action_error: Option<String>,
    /// The step changed the replica count.
    pub changed: bool,
}

/// `scaling-v0` over a real system (see the module docs): `Discrete(2 * max_step + 1)`
/// actions, `Box([0, 1]^d)` observations, the simulated env's reward.
pub struct LiveEnv<O: Observe, S: Scaler> {
    config: LiveEnvConfig,
    observer: O,
    scaler: S,
    encoder: ObsEncoder,
    actions: ActionMap,
    guard: ScaleGuard,
    reward: RewardCalculator,
    obs_space: BoxSpace,
    action_space: Discrete,
    observed: Observed,
    prev_rate: f64,
    started: Instant,
    steps: u32,
    done: bool,
    seed: Option<u64>,
}

impl<O: Observe, S: Scaler> LiveEnv<O, S> {
    /// An env over `scaler`, observed by `observer`. Nothing happens to the replicas until
    /// [`Env::reset`].
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid `config` ([`LiveEnvConfig::validate`]).
    pub fn new(config: LiveEnvConfig, observer: O, scaler: S) -> Result<Self> {
        config.validate()?;
        let encoder = ObsEncoder {
            rate_scale_rps: config.rate_scale_rps,
            max_replicas: config.max_replicas,
            trend_feature: config.env.trend_feature,
        };
        let d = encoder.dim();
        let actions = ActionMap {
            max_step: config.env.max_step,
        };
        let guard = ScaleGuard::new(
            config.min_replicas,
            config.max_replicas,
            Duration::from_secs_f64(config.env.cooldown_s),
        );
        Ok(Self {
            reward: RewardCalculator::new(&config.env),
            obs_space: BoxSpace::new(vec![0.0; d], vec![1.0; d]),
            action_space: Discrete::new(actions.n()),
            encoder,
            actions,
            guard,
            observed: Observed {
                state: ClusterState::default(),
                health: MetricsHealth::Missing {
                    what: vec!["not reset yet".into()],
                },
            },
            prev_rate: 0.0,
            started: Instant::now(),
            steps: 0,
            done: true,
            seed: None,
            config,
            observer,
            scaler,
        })
    }

    /// The last observation (after [`Env::reset`]): state and metrics health.
    pub fn observed(&self) -> &Observed {
        &self.observed
    }

    /// What a controller sees now (after [`Env::reset`]).
    pub fn cluster_state(&self) -> &ClusterState {
        &self.observed.state
    }

    /// The scaler (its pods, its front).
    pub fn scaler(&self) -> &S {
        &self.scaler
    }

    /// The scaler, mutably.
    pub fn scaler_mut(&mut self) -> &mut S {
        &mut self.scaler
    }

    /// The encoder of the observations (shared with the policy's training env).
    pub fn encoder(&self) -> &ObsEncoder {
        &self.encoder
    }

    /// The env's configuration.
    pub fn config(&self) -> &LiveEnvConfig {
        &self.config
    }

    /// The seed of the last `reset(Some(seed))` (recorded only: a real system has no seed).
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Wall-clock time since the last reset.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Gives the observer and the scaler back (to stop the replicas).
    pub fn into_parts(self) -> (O, S) {
        (self.observer, self.scaler)
    }

    fn encode(&self) -> Vec<f32> {
        let mut obs = Vec::with_capacity(self.encoder.dim());
        self.encoder
            .encode_into(&self.observed.state, self.prev_rate, &mut obs);
        obs
    }

    /// Steps with a desired replica count instead of a discrete action (how rule-based
    /// autoscalers such as the HPA run in the same env, same bounds and cooldown): sets the
    /// guarded count, waits for the end of the step on the wall clock, observes.
    ///
    /// # Panics
    /// If the episode has ended or `reset` was never called.
    pub fn step_desired(&mut self, desired: u32) -> Step<Vec<f32>, LiveInfo> {
        assert!(
            !self.done,
            "LiveEnv: step() called after the episode ended; call reset() first"
        );
        let interval = self.config.env.decision_interval_s;
        let now = SimTime::from_secs_f64(self.elapsed().as_secs_f64());
        let current = self.scaler.desired_replicas();
        let applied = self.guard.apply(now, current, desired);
        let mut changed = applied != current;
        let mut action_error = None;
        if changed {
            if let Err(e) = self.scaler.set_replicas(applied) {
                tracing::warn!(error = %e, from = current, to = applied, "scaling failed");
                action_error = Some(e.to_string());
                changed = self.scaler.desired_replicas() != current;
            }
        }
        self.steps += 1;
        let deadline = self.started + Duration::from_secs_f64(interval * f64::from(self.steps));
        if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        self.prev_rate = self.observed.state.request_rate_per_s;
        self.observed = self.observer.observe(&mut self.scaler);
        let elapsed_s = self.elapsed().as_secs_f64();
        let state = &self.observed.state;
        let mut figures = StepFigures::of(state, &self.config.slo).with_interval(state, interval);
        figures.info.time_s = elapsed_s;
        let reward = if self.observed.health.is_fresh() {
            self.reward.reward(
                &figures.info,
                figures.cpu_request_milli,
                figures.used_milli,
                changed,
            )
        } else {
            0.0
        };
        let truncated = elapsed_s >= self.config.episode_s;
        self.done = truncated;
        Step {
            obs: self.encode(),
            reward,
            terminated: false,
            truncated,
            info: LiveInfo {
                step: figures.info,
                health: self.observed.health.clone(),
                state: self.observed.state.clone(),
                billed_pods: self.scaler.pods().len() as u32,
                action_error,
                changed,
            },
        }
    }

    fn info_now(&self) -> LiveInfo {
        let s = &self.observed.state;
        LiveInfo {
            step: StepInfo {
                desired_replicas: s.desired_replicas,
                ready_replicas: s.ready_replicas,
                ..StepInfo::default()
            },
            health: self.observed.health.clone(),
            state: s.clone(),
            billed_pods: self.scaler.pods().len() as u32,
            action_error: None,
            changed: false,
        }
    }
}

impl<O: Observe, S: Scaler> Env for LiveEnv<O, S> {
    type Obs = Vec<f32>;
    type Action = usize;
    type Info = LiveInfo;
    type ObsSpace = BoxSpace;
    type ActionSpace = Discrete;

    fn id(&self) -> &str {
        LIVE_ENV_ID
    }

    /// Sets `initial_replicas`, waits up to `ready_timeout_s` for them to be Ready, starts the
    /// episode's clock and observes. The seed is only recorded.
    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, LiveInfo) {
        if seed.is_some() {
            self.seed = seed;
        }
        let n = self.config.initial_replicas;
        if let Err(e) = self.scaler.set_replicas(n) {
            tracing::warn!(error = %e, replicas = n, "reset: cannot set the initial replicas");
        }
        let until = Instant::now() + Duration::from_secs_f64(self.config.ready_timeout_s);
        loop {
            let _ = self.scaler.refresh();
            let ready = self
                .scaler
                .pods()
                .iter()
                .filter(|p| p.ready && !p.terminating)
                .count() as u32;
            if ready >= n {
                break;
            }
            if Instant::now() >= until {
                tracing::warn!(
                    ready,
                    wanted = n,
                    "reset: initial replicas not Ready in time"
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.guard.reset();
        self.reward.reset();
        self.steps = 0;
        self.prev_rate = 0.0;
        self.started = Instant::now();
        self.observed = self.observer.observe(&mut self.scaler);
        self.done = false;
        (self.encode(), self.info_now())
    }

    fn step(&mut self, action: usize) -> Step<Vec<f32>, LiveInfo> {
        let current = self.scaler.desired_replicas();
        let desired = self.actions.target(action, current);
        self.step_desired(desired)
    }

    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }

    fn action_space(&self) -> &Discrete {
        &self.action_space
    }
}

#[cfg(test)]
mod tests;
