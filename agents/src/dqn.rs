//! Deep Q-learning (DQN) with a replay buffer, a target network and double-DQN targets, CleanRL
//! style: this file reads top to bottom as config, Q-network, replay buffer, TD target, agent
//! (action selection, update, training loop), save/load.
//!
//! # References
//! - V. Mnih et al., "Human-level control through deep reinforcement learning", *Nature* 518,
//!   529–533 (2015): replay buffer, target network, Huber loss, gradient clipping.
//! - H. van Hasselt, A. Guez and D. Silver, "Deep Reinforcement Learning with Double
//!   Q-learning", AAAI 2016: the online network picks `argmax_a' Q(s', a')`, the target network
//!   values it.
//! - CleanRL `dqn.py` and its documentation ("Implementation details"): step-based training
//!   loop, linear epsilon schedule over a fraction of the run, `learning_starts`,
//!   `train_frequency`, `target_network_frequency` with `tau`.
//!
//! # Algorithm
//! Every env step: pick `a` epsilon-greedily from `Q_online(s, .)`, step, store
//! `(s, a, r, s', terminated)`. After `learning_starts` steps, every `train_frequency` steps
//! sample a minibatch uniformly and minimise the Huber loss between `Q_online(s, a)` and
//!
//! ```text
//! y = r + gamma * (1 - terminated) * Q_target(s', argmax_a' Q_online(s', a'))   (double DQN)
//! y = r + gamma * (1 - terminated) * max_a' Q_target(s', a')                     (plain DQN)
//! ```
//!
//! with Adam and the gradient clipped to a global norm. Every `target_update_interval` steps the
//! target network moves towards the online one: `theta' <- tau * theta + (1 - tau) * theta'`
//! (`tau = 1`: a hard copy).
//!
//! # Implementation details and deviations
//! 1. **Only `terminated` stops bootstrapping** (STYLE.md lesson 2): the buffer stores
//!    `terminated`, never `done`; a transition cut by a time limit or the end of the trace
//!    (`truncated`) bootstraps from `s'` ([`td_targets`], tested).
//! 2. **TD targets are computed on the host** from the two networks' outputs for `s'`
//!    (`batch_size x n_actions` numbers): a pure function that the tests check by hand.
//! 3. **Defaults for this env, not Atari's.** `gamma = 0.95` (the seed design's discount, as
//!    tabular Q-learning), a two-layer 64-unit MLP, 50 000 steps, buffer 50 000, batch 64,
//!    learning starts at 1 000 steps, an update every 4 steps, target copy every 500 steps.
//!    Epsilon decays linearly from 1.0 to 0.05 over the first half of the run (CleanRL).
//! 4. **Seeding.** Network initialisation is seeded through [`crate::nn::seeded_init`] (burn's
//!    device seed under a process-wide lock); exploration and replay sampling use the agent's
//!    own [`ChaCha8Rng`] streams (`agents.dqn.explore`, `agents.dqn.replay`); episode `k` resets
//!    the env with [`episode_seed`]`(seed, k)`. The flex CPU backend runs single-threaded, so
//!    the same seed gives bit-identical weights whatever the number of runs in parallel.
//! 5. **Logging through a callback** ([`DqnEvent`]): a loss per gradient update, a return per
//!    episode, epsilon with both; the experiment runner records them.

use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::loss::{HuberLossConfig, Reduction};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Device, Int, Tensor, TensorData};
use envs::{Discrete, Env};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::autoscaler::Policy;
use crate::nn::{derive_seed, seeded_init, splitmix64};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What can go wrong when building, training, saving or loading a [`Dqn`] agent. Training and
/// acting never fail on well-formed input; every variant is a config, env or file problem.
#[derive(Debug, thiserror::Error)]
pub enum DqnError {
    /// A config field is out of range (field name, what was expected).
    #[error("dqn.{field}: {reason}")]
    InvalidConfig {
        /// Field of [`DqnConfig`].
        field: &'static str,
        /// What was expected.
        reason: String,
    },
    /// The env's observation has a different length than the network's input.
    #[error("observation has {got} features but the Q-network expects {expected}")]
    ObservationDim {
        /// Network input size.
        expected: usize,
        /// Observation length.
        got: usize,
    },
    /// The env's action count differs from the network's output size.
    #[error("env has {env} actions but the Q-network outputs {network}")]
    ActionSpaceMismatch {
        /// Network output size.
        network: usize,
        /// Env action count.
        env: usize,
    },
    /// The env returned a NaN or infinite reward or observation value (training stops).
    #[error("env returned a non-finite {what} at training step {step}")]
    NonFinite {
        /// `reward` or `observation`.
        what: &'static str,
        /// Global step.
        step: usize,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A saved agent is malformed, of another format version, or of the wrong shape.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> DqnError {
    DqnError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// Hyperparameters of [`Dqn`] (the `[agents.dqn]` table of an experiment). Defaults: see the
/// module documentation, item 3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DqnConfig {
    /// Units of each hidden layer of the Q-network's MLP (ReLU between layers).
    pub hidden_sizes: Vec<usize>,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Discount factor.
    pub gamma: f64,
    /// Replay buffer capacity, transitions (the oldest are overwritten).
    pub buffer_size: usize,
    /// Transitions per gradient update.
    pub batch_size: usize,
    /// Env steps before the first update (filled with epsilon-greedy transitions).
    pub learning_starts: usize,
    /// Env steps between two gradient updates.
    pub train_frequency: usize,
    /// Env steps between two target-network updates.
    pub target_update_interval: usize,
    /// Target-network update rate (1 = hard copy).
    pub tau: f64,
    /// Exploration rate at step 0.
    pub epsilon_start: f64,
    /// Exploration rate after the decay.
    pub epsilon_end: f64,
    /// Share of `total_steps` over which epsilon decays linearly.
    pub exploration_fraction: f64,
    /// Env steps of the whole training run.
    pub total_steps: usize,
    /// Huber loss threshold (quadratic below, linear above), in reward units.
    pub huber_delta: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Double-DQN targets (van Hasselt et al. 2016) instead of `max_a' Q_target(s', a')`.
    pub double_dqn: bool,
    /// Multiplicative epsilon decay per gradient update, in (0, 1) (the Keras-tutorial schedule
    /// of the seed design: `epsilon *= 0.995` after each replay, floored at `epsilon_end`)
    /// instead of the linear schedule; `exploration_fraction` is then unused. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon_decay: Option<f64>,
}

impl Default for DqnConfig {
    fn default() -> Self {
        Self {
            hidden_sizes: vec![64, 64],
            learning_rate: 5e-4,
            gamma: 0.95,
            buffer_size: 50_000,
            batch_size: 64,
            learning_starts: 1_000,
            train_frequency: 4,
            target_update_interval: 500,
            tau: 1.0,
            epsilon_start: 1.0,
            epsilon_end: 0.05,
            exploration_fraction: 0.5,
            total_steps: 50_000,
            huber_delta: 1.0,
            max_grad_norm: 10.0,
            double_dqn: true,
            epsilon_decay: None,
        }
    }
}

impl DqnConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`DqnError::InvalidConfig`] naming the first field out of range (NaN included).
    pub fn validate(&self) -> Result<(), DqnError> {
        if self.hidden_sizes.is_empty() || self.hidden_sizes.len() > 8 {
            return Err(invalid("hidden_sizes", "expected 1 to 8 layers"));
        }
        if let Some(h) = self
            .hidden_sizes
            .iter()
            .find(|&&h| !(1..=4096).contains(&h))
        {
            return Err(invalid(
                "hidden_sizes",
                format!("expected 1..=4096 units, got {h}"),
            ));
        }
        let unit = |f, v: f64, lo_open: bool| {
            let ok = if lo_open {
                v > 0.0 && v <= 1.0
            } else {
                (0.0..=1.0).contains(&v)
            };
            if ok {
                Ok(())
            } else {
                Err(invalid(
                    f,
                    format!(
                        "must be in {}0, 1], got {v}",
                        if lo_open { "(" } else { "[" }
                    ),
                ))
            }
        };
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(invalid(
                "learning_rate",
                format!("must be in (0, 1], got {}", self.learning_rate),
            ));
        }
        unit("gamma", self.gamma, false)?;
        unit("tau", self.tau, true)?;
        unit("epsilon_start", self.epsilon_start, false)?;
        unit("epsilon_end", self.epsilon_end, false)?;
        unit("exploration_fraction", self.exploration_fraction, true)?;
        if let Some(d) = self.epsilon_decay {
            if !(d > 0.0 && d < 1.0) {
                return Err(invalid(
                    "epsilon_decay",
                    format!("must be in (0, 1), got {d}"),
                ));
            }
        }
        if self.epsilon_end > self.epsilon_start {
            return Err(invalid("epsilon_end", "must not exceed epsilon_start"));
        }
        for (f, v, max) in [
            ("buffer_size", self.buffer_size, 10_000_000),
            ("batch_size", self.batch_size, 65_536),
            ("train_frequency", self.train_frequency, 1_000_000),
            (
                "target_update_interval",
                self.target_update_interval,
                100_000_000,
            ),
            ("total_steps", self.total_steps, 1_000_000_000),
        ] {
            if !(1..=max).contains(&v) {
                return Err(invalid(f, format!("must be in 1..={max}, got {v}")));
            }
        }
        if self.batch_size > self.buffer_size {
            return Err(invalid("batch_size", "must not exceed buffer_size"));
        }
        if self.learning_starts > self.total_steps {
            return Err(invalid("learning_starts", "must not exceed total_steps"));
        }
        for (f, v) in [
            ("huber_delta", self.huber_delta),
            ("max_grad_norm", self.max_grad_norm),
        ] {
            if !(v > 0.0 && v <= 1e9) {
                return Err(invalid(f, format!("must be in (0, 1e9], got {v}")));
            }
        }
        Ok(())
    }

    /// Epsilon at global step `step`: linear from `epsilon_start` to `epsilon_end` over the first
    /// `exploration_fraction * total_steps` steps, then constant (CleanRL's `linear_schedule`);
    /// with `epsilon_decay = d`, `max(epsilon_end, epsilon_start * d^k)` where `k` is the number
    /// of gradient updates before `step`.
    pub fn epsilon_at(&self, step: usize) -> f64 {
        if let Some(d) = self.epsilon_decay {
            let f = self.train_frequency.max(1);
            let updates = if step <= self.learning_starts {
                0
            } else {
                // Multiples of f in [learning_starts, step - 1].
                ((step - 1) / f + 1).saturating_sub(self.learning_starts.div_ceil(f))
            };
            let k = updates.min(i32::MAX as usize) as i32;
            return (self.epsilon_start * d.powi(k)).max(self.epsilon_end);
        }
        let duration = (self.exploration_fraction * self.total_steps as f64).max(1.0);
        let slope = (self.epsilon_end - self.epsilon_start) / duration;
        (self.epsilon_start + slope * step as f64).max(self.epsilon_end)
    }
}

// ---------------------------------------------------------------------------------------------
// Q-network
// ---------------------------------------------------------------------------------------------

/// The Q-network: an MLP `obs_dim -> hidden_sizes... -> n_actions` with ReLU between layers.
#[derive(Module, Debug)]
pub struct QNetwork {
    layers: Vec<Linear>,
    activation: Relu,
}

impl QNetwork {
    /// A freshly initialised network (burn's default Kaiming-uniform init) on `device`.
    pub fn new(obs_dim: usize, hidden: &[usize], n_actions: usize, device: &Device) -> Self {
        let mut sizes = vec![obs_dim];
        sizes.extend_from_slice(hidden);
        sizes.push(n_actions);
        let layers = sizes
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Self {
            layers,
            activation: Relu::new(),
        }
    }

    /// Action values. `obs`: `[batch, obs_dim]`; returns `[batch, n_actions]`.
    pub fn forward(&self, obs: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut x = obs;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = self.activation.forward(x);
            }
        }
        x
    }
}

// ---------------------------------------------------------------------------------------------
// Replay buffer
// ---------------------------------------------------------------------------------------------

/// A ring buffer of transitions `(s, a, r, s', terminated)` in flat arrays; sampling draws
/// indices uniformly with replacement from the caller's seeded stream.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    obs_dim: usize,
    capacity: usize,
    len: usize,
    next: usize,
    obs: Vec<f32>,
    next_obs: Vec<f32>,
    actions: Vec<i64>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
}

/// A sampled minibatch, row-major: `obs` and `next_obs` are `batch x obs_dim`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Observations `s`.
    pub obs: Vec<f32>,
    /// Actions taken.
    pub actions: Vec<i64>,
    /// Rewards received.
    pub rewards: Vec<f32>,
    /// Observations `s'`.
    pub next_obs: Vec<f32>,
    /// Whether `s'` is terminal (no bootstrapping).
    pub terminated: Vec<bool>,
}

impl ReplayBuffer {
    /// An empty buffer for `capacity` transitions of `obs_dim` features.
    pub fn new(capacity: usize, obs_dim: usize) -> Self {
        Self {
            obs_dim,
            capacity,
            len: 0,
            next: 0,
            obs: vec![0.0; capacity * obs_dim],
            next_obs: vec![0.0; capacity * obs_dim],
            actions: vec![0; capacity],
            rewards: vec![0.0; capacity],
            terminated: vec![false; capacity],
        }
    }

    /// Transitions stored (at most the capacity).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores one transition, overwriting the oldest when full. `obs` and `next_obs` must have
    /// `obs_dim` features (checked by the caller).
    pub fn push(
        &mut self,
        obs: &[f32],
        action: usize,
        reward: f32,
        next_obs: &[f32],
        terminated: bool,
    ) {
        let i = self.next;
        let d = self.obs_dim;
        self.obs[i * d..(i + 1) * d].copy_from_slice(obs);
        self.next_obs[i * d..(i + 1) * d].copy_from_slice(next_obs);
        self.actions[i] = action as i64;
        self.rewards[i] = reward;
        self.terminated[i] = terminated;
        self.next = (i + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// Fills `out` with `batch` transitions drawn uniformly with replacement.
    ///
    /// # Panics
    /// If the buffer is empty.
    pub fn sample_into(&self, batch: usize, rng: &mut ChaCha8Rng, out: &mut Batch) {
        assert!(self.len > 0, "sampling an empty replay buffer");
        let d = self.obs_dim;
        out.obs.clear();
        out.next_obs.clear();
        out.actions.clear();
        out.rewards.clear();
        out.terminated.clear();
        for _ in 0..batch {
            let i = rng.random_range(0..self.len);
            out.obs.extend_from_slice(&self.obs[i * d..(i + 1) * d]);
            out.next_obs
                .extend_from_slice(&self.next_obs[i * d..(i + 1) * d]);
            out.actions.push(self.actions[i]);
            out.rewards.push(self.rewards[i]);
            out.terminated.push(self.terminated[i]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TD target
// ---------------------------------------------------------------------------------------------

/// TD targets of a minibatch: `y_i = r_i + gamma * (1 - terminated_i) * v_i`, where `v_i` is
/// `Q_target(s'_i, argmax_a Q_online(s'_i, a))` (double DQN; ties to the lowest action) or
/// `max_a Q_target(s'_i, a)`. `next_q_online` and `next_q_target` are `batch x n_actions`,
/// row-major. A truncated transition is stored with `terminated = false` and so bootstraps.
pub fn td_targets(
    rewards: &[f32],
    terminated: &[bool],
    next_q_online: &[f32],
    next_q_target: &[f32],
    n_actions: usize,
    gamma: f64,
    double_dqn: bool,
) -> Vec<f32> {
    rewards
        .iter()
        .zip(terminated)
        .enumerate()
        .map(|(i, (&r, &term))| {
            let target_row = &next_q_target[i * n_actions..(i + 1) * n_actions];
            let v = if double_dqn {
                let online_row = &next_q_online[i * n_actions..(i + 1) * n_actions];
                target_row[argmax(online_row)]
            } else {
                target_row.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            };
            let bootstrap = if term { 0.0 } else { gamma * f64::from(v) };
            (f64::from(r) + bootstrap) as f32
        })
        .collect()
}

/// Index of the largest value (ties to the lowest index; NaN never wins).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (a, &v) in row.iter().enumerate().skip(1) {
        if v > row[best] || row[best].is_nan() {
            best = a;
        }
    }
    best
}

/// The seed [`Dqn::train`] passes to `env.reset` at the start of episode `episode` (from 0) of
/// the run seeded by `run_seed`.
pub fn episode_seed(run_seed: u64, episode: usize) -> u64 {
    splitmix64(derive_seed(run_seed, "agents.dqn.env").wrapping_add(episode as u64))
}

// ---------------------------------------------------------------------------------------------
// Agent
// ---------------------------------------------------------------------------------------------

/// One training event reported to [`Dqn::train`]'s callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DqnEvent {
    /// A gradient update at env step `step` with its minibatch Huber loss.
    Update {
        /// Global env step (from 0).
        step: usize,
        /// Mean Huber loss of the minibatch (reward units squared, below `huber_delta`).
        loss: f64,
        /// Exploration rate at that step.
        epsilon: f64,
    },
    /// An episode ended.
    Episode {
        /// Episode index (from 0).
        episode: usize,
        /// Undiscounted return.
        return_: f64,
        /// Env steps of the episode.
        steps: usize,
        /// Exploration rate at its last step.
        epsilon: f64,
        /// Mean loss of the updates made during the episode (NaN if none).
        mean_loss: f64,
    },
}

/// A DQN agent: online and target Q-networks, the optimizer while training, and seeded
/// exploration and replay streams. Serve it with [`crate::autoscaler::PolicyAutoscaler`]
/// (its [`Policy`] impl is greedy).
pub struct Dqn {
    config: DqnConfig,
    obs_dim: usize,
    n_actions: usize,
    device: Device,
    online: QNetwork,
    /// Target network, an inference copy (no autodiff).
    target: QNetwork,
    /// Inference copy of `online` (no autodiff), refreshed after each update.
    acting: QNetwork,
    optim: Option<ModuleOptimizer>,
    explore: ChaCha8Rng,
    replay: ChaCha8Rng,
}

impl fmt::Debug for Dqn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dqn")
            .field("config", &self.config)
            .field("obs_dim", &self.obs_dim)
            .field("n_actions", &self.n_actions)
            .finish_non_exhaustive()
    }
}

impl Clone for Dqn {
    /// A copy for serving: networks are shared copy-on-write by burn; the optimizer state is
    /// not copied (a clone cannot continue training).
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            obs_dim: self.obs_dim,
            n_actions: self.n_actions,
            device: self.device.clone(),
            online: self.online.clone(),
            target: self.target.clone(),
            acting: self.acting.clone(),
            optim: None,
            explore: self.explore.clone(),
            replay: self.replay.clone(),
        }
    }
}

const EXPLORE_STREAM: &str = "agents.dqn.explore";
const REPLAY_STREAM: &str = "agents.dqn.replay";
const INIT_STREAM: &str = "agents.dqn.init";

impl Dqn {
    /// A new agent for observations of `obs_dim` features and `n_actions` actions, with networks
    /// initialised from `seed` (the run seed) on [`crate::nn::device`].
    ///
    /// # Errors
    /// [`DqnError::InvalidConfig`] for a bad config or a zero `obs_dim`/`n_actions`.
    pub fn new(
        config: DqnConfig,
        obs_dim: usize,
        n_actions: usize,
        seed: u64,
    ) -> Result<Self, DqnError> {
        config.validate()?;
        if obs_dim == 0 || n_actions == 0 {
            return Err(invalid(
                "hidden_sizes",
                "observation and action sizes must be >= 1",
            ));
        }
        let device = crate::nn::device().autodiff();
        let online = seeded_init(&device, derive_seed(seed, INIT_STREAM), || {
            // burn draws parameters at first use: draw them now, under the lock.
            let net = QNetwork::new(obs_dim, &config.hidden_sizes, n_actions, &device);
            crate::nn::materialize(&net);
            net
        });
        let acting = online.valid();
        let target = acting.clone();
        Ok(Self {
            optim: Some(Self::optimizer(&config)),
            config,
            obs_dim,
            n_actions,
            device,
            online,
            target,
            acting,
            explore: ChaCha8Rng::seed_from_u64(derive_seed(seed, EXPLORE_STREAM)),
            replay: ChaCha8Rng::seed_from_u64(derive_seed(seed, REPLAY_STREAM)),
        })
    }

    fn optimizer(config: &DqnConfig) -> ModuleOptimizer {
        AdamConfig::new()
            .with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(
                config.max_grad_norm as f32,
            )))
            .init()
    }

    /// The hyperparameters.
    pub fn config(&self) -> &DqnConfig {
        &self.config
    }

    /// Observation features the network reads.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Actions the network values.
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// `Q(obs, .)` of the online network, one value per action.
    ///
    /// # Panics
    /// If `obs` does not have `obs_dim` features.
    pub fn q_values(&self, obs: &[f32]) -> Vec<f32> {
        assert_eq!(obs.len(), self.obs_dim, "observation length");
        let x = Tensor::<2>::from_data(
            TensorData::new(obs.to_vec(), [1, self.obs_dim]),
            &self.acting_device(),
        );
        self.acting
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .expect(F32)
    }

    fn acting_device(&self) -> Device {
        self.device.clone().inner()
    }

    /// The greedy action for `obs` (ties to the lowest index; deterministic).
    ///
    /// # Panics
    /// If `obs` does not have `obs_dim` features.
    pub fn greedy(&self, obs: &[f32]) -> usize {
        argmax(&self.q_values(obs))
    }

    /// Every parameter of the online network, flattened in module order (for tests comparing
    /// two runs bit for bit).
    pub fn weights(&self) -> Vec<f32> {
        let mut out = Vec::new();
        for layer in &self.acting.layers {
            out.extend(
                layer
                    .weight
                    .val()
                    .into_data()
                    .try_to_vec::<f32>()
                    .expect(F32),
            );
            if let Some(b) = &layer.bias {
                out.extend(b.val().into_data().try_to_vec::<f32>().expect(F32));
            }
        }
        out
    }

    /// One gradient update on `batch` (TD targets from the target network, Huber loss, Adam
    /// with the gradient norm clipped); returns the minibatch's mean Huber loss. [`Dqn::train`]
    /// calls it every `train_frequency` steps; it is public for benchmarks and custom loops.
    ///
    /// # Panics
    /// If the batch's arrays do not have `obs_dim` features per row or disagree in length.
    pub fn update(&mut self, batch: &Batch) -> f64 {
        let (b, d, n) = (batch.actions.len(), self.obs_dim, self.n_actions);
        let inner = self.acting_device();
        let next = Tensor::<2>::from_data(TensorData::new(batch.next_obs.clone(), [b, d]), &inner);
        let q_next_target = self
            .target
            .forward(next.clone())
            .into_data()
            .try_to_vec::<f32>()
            .expect(F32);
        let q_next_online = if self.config.double_dqn {
            self.acting
                .forward(next)
                .into_data()
                .try_to_vec::<f32>()
                .expect(F32)
        } else {
            Vec::new()
        };
        let y = td_targets(
            &batch.rewards,
            &batch.terminated,
            &q_next_online,
            &q_next_target,
            n,
            self.config.gamma,
            self.config.double_dqn,
        );
        let obs = Tensor::<2>::from_data(TensorData::new(batch.obs.clone(), [b, d]), &self.device);
        let actions = Tensor::<2, Int>::from_data(
            TensorData::new(batch.actions.clone(), [b, 1]),
            &self.device,
        );
        let y = Tensor::<2>::from_data(TensorData::new(y, [b, 1]), &self.device);
        let q_sa = self.online.forward(obs).gather(1, actions);
        let loss = HuberLossConfig::new(self.config.huber_delta as f32)
            .init()
            .forward(q_sa, y, Reduction::Mean);
        let loss_value = f64::from(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &self.online);
        let optim = self
            .optim
            .get_or_insert_with(|| Self::optimizer(&self.config));
        let online = self.online.clone();
        self.online = optim.step(self.config.learning_rate, online, grads);
        self.acting = self.online.valid();
        loss_value
    }

    /// Moves the target network towards the online one (`tau = 1`: copy).
    fn update_target(&mut self) {
        if self.config.tau >= 1.0 {
            self.target = self.acting.clone();
            return;
        }
        let tau = self.config.tau as f32;
        for (t, o) in self.target.layers.iter_mut().zip(&self.acting.layers) {
            let w = o.weight.val() * tau + t.weight.val() * (1.0 - tau);
            t.weight = t.weight.clone().map(|_| w);
            if let (Some(tb), Some(ob)) = (&mut t.bias, &o.bias) {
                let b = ob.val() * tau + tb.val() * (1.0 - tau);
                *tb = tb.clone().map(|_| b);
            }
        }
    }

    /// Trains for `config.total_steps` env steps (episodes reset with [`episode_seed`]), calling
    /// `on_event` for every update and every finished episode, in order. Same agent seed, env and
    /// `seed` give bit-identical weights on the CPU backend.
    ///
    /// # Errors
    /// [`DqnError::ActionSpaceMismatch`], [`DqnError::ObservationDim`] when the env does not fit
    /// the network; [`DqnError::NonFinite`] for a NaN or infinite reward or observation.
    pub fn train<E>(
        &mut self,
        env: &mut E,
        seed: u64,
        mut on_event: impl FnMut(DqnEvent),
    ) -> Result<(), DqnError>
    where
        E: Env<Obs = Vec<f32>, Action = usize, ActionSpace = Discrete>,
    {
        if env.action_space().n != self.n_actions {
            return Err(DqnError::ActionSpaceMismatch {
                network: self.n_actions,
                env: env.action_space().n,
            });
        }
        let cfg = self.config.clone();
        let mut buffer = ReplayBuffer::new(cfg.buffer_size.min(cfg.total_steps), self.obs_dim);
        let mut batch = Batch::default();
        let check = |obs: &[f32], step: usize, d: usize| -> Result<(), DqnError> {
            if obs.len() != d {
                return Err(DqnError::ObservationDim {
                    expected: d,
                    got: obs.len(),
                });
            }
            if obs.iter().any(|v| !v.is_finite()) {
                return Err(DqnError::NonFinite {
                    what: "observation",
                    step,
                });
            }
            Ok(())
        };
        let (mut episode, mut ep_return, mut ep_steps) = (0usize, 0.0, 0usize);
        let (mut loss_sum, mut loss_n) = (0.0, 0usize);
        let mut obs = env.reset(Some(episode_seed(seed, 0))).0;
        check(&obs, 0, self.obs_dim)?;
        for step in 0..cfg.total_steps {
            let epsilon = cfg.epsilon_at(step);
            let action = if self.explore.random::<f64>() < epsilon {
                self.explore.random_range(0..self.n_actions)
            } else {
                self.greedy(&obs)
            };
            let s = env.step(action);
            if !s.reward.is_finite() {
                return Err(DqnError::NonFinite {
                    what: "reward",
                    step,
                });
            }
            check(&s.obs, step, self.obs_dim)?;
            buffer.push(&obs, action, s.reward as f32, &s.obs, s.terminated);
            ep_return += s.reward;
            ep_steps += 1;
            if step >= cfg.learning_starts && step % cfg.train_frequency == 0 {
                buffer.sample_into(cfg.batch_size, &mut self.replay, &mut batch);
                let loss = self.update(&batch);
                loss_sum += loss;
                loss_n += 1;
                on_event(DqnEvent::Update {
                    step,
                    loss,
                    epsilon,
                });
            }
            if step >= cfg.learning_starts && step % cfg.target_update_interval == 0 {
                self.update_target();
            }
            if s.is_done() {
                on_event(DqnEvent::Episode {
                    episode,
                    return_: ep_return,
                    steps: ep_steps,
                    epsilon,
                    mean_loss: if loss_n > 0 {
                        loss_sum / loss_n as f64
                    } else {
                        f64::NAN
                    },
                });
                episode += 1;
                (ep_return, ep_steps, loss_sum, loss_n) = (0.0, 0, 0.0, 0);
                obs = env.reset(Some(episode_seed(seed, episode))).0;
                check(&obs, step, self.obs_dim)?;
            } else {
                obs = s.obs;
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Save / load
    // -----------------------------------------------------------------------------------------

    /// Writes the agent to the folder `dir`: `dqn.json` (format name and version, config,
    /// observation and action sizes) and `model.bpk` (the online network's weights, burnpack).
    /// Exploration state and the optimizer are training state and are not saved.
    ///
    /// # Errors
    /// [`DqnError::Io`] if the folder or a file cannot be written; [`DqnError::Format`] if burn
    /// fails to write the record.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<(), DqnError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| DqnError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let meta = SavedMeta {
            format: FORMAT.to_string(),
            version: VERSION,
            config: self.config.clone(),
            obs_dim: self.obs_dim,
            n_actions: self.n_actions,
        };
        let meta_path = dir.join(META_FILE);
        let json = serde_json::to_string_pretty(&meta).map_err(|e| DqnError::Format {
            path: meta_path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&meta_path, json).map_err(|source| DqnError::Io {
            path: meta_path,
            source,
        })?;
        let model_path = dir.join(MODEL_FILE);
        self.acting
            .clone()
            .into_record()
            .save(&model_path)
            .map_err(|e| DqnError::Format {
                path: model_path,
                reason: e.to_string(),
            })
    }

    /// Reads an agent written by [`Dqn::save`] from the folder `dir`, ready to serve (and to
    /// train further with a fresh optimizer).
    ///
    /// # Errors
    /// [`DqnError::Io`] if a file cannot be read; [`DqnError::Format`] for another format or
    /// version, an invalid config, or weights whose names or shapes do not match the config.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, DqnError> {
        let dir = dir.as_ref();
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).map_err(|source| DqnError::Io {
            path: meta_path.clone(),
            source,
        })?;
        let bad = |reason: String| DqnError::Format {
            path: meta_path.clone(),
            reason,
        };
        let meta: SavedMeta = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if meta.format != FORMAT || meta.version != VERSION {
            return Err(bad(format!(
                "expected format {FORMAT} version {VERSION}, found {} version {}",
                meta.format, meta.version
            )));
        }
        let mut agent = Self::new(meta.config, meta.obs_dim, meta.n_actions, 0)
            .map_err(|e| bad(e.to_string()))?;
        let model_path = dir.join(MODEL_FILE);
        if !model_path.is_file() {
            return Err(DqnError::Io {
                path: model_path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "model file missing"),
            });
        }
        let record = ModuleRecord::load(&model_path).map_err(|e| DqnError::Format {
            path: model_path.clone(),
            reason: e.to_string(),
        })?;
        let online =
            agent
                .online
                .clone()
                .try_load_record(record)
                .map_err(|e| DqnError::Format {
                    path: model_path.clone(),
                    reason: format!("weights do not match the config in {META_FILE}: {e}"),
                })?;
        agent.acting = online.valid();
        agent.target = agent.acting.clone();
        agent.online = online;
        Ok(agent)
    }
}

/// Every tensor of this module is created as `f32`, so reading it back as `f32` cannot fail.
const F32: &str = "DQN tensors are f32";

/// Format name written by [`Dqn::save`].
pub const FORMAT: &str = "nimbusguard.dqn";
/// Format version written by [`Dqn::save`].
pub const VERSION: u32 = 1;
const META_FILE: &str = "dqn.json";
const MODEL_FILE: &str = "model.bpk";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedMeta {
    format: String,
    version: u32,
    config: DqnConfig,
    obs_dim: usize,
    n_actions: usize,
}

impl Policy for Dqn {
    /// The greedy action; an observation of the wrong length (a config mismatch) keeps the
    /// replica count (the middle action) instead of panicking in a live decision.
    fn act(&mut self, obs: &[f32]) -> usize {
        if obs.len() != self.obs_dim {
            return self.n_actions / 2;
        }
        self.greedy(obs)
    }
}
