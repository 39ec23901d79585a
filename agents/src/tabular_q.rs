//! Tabular Q-learning with epsilon-greedy exploration, CleanRL style: this file reads top to
//! bottom as config, discretization, table, action selection, update, training loop,
//! save/load.
//!
//! # References
//! - C. J. C. H. Watkins and P. Dayan, "Q-learning", *Machine Learning* 8, 279–292 (1992).
//! - R. S. Sutton and A. G. Barto, *Reinforcement Learning: An Introduction*, 2nd ed., section 6.5
//!   ("Q-learning: Off-policy TD Control").
//! - The seed design's parameters: learning rate 0.1, discount 0.95, epsilon 1.0 -> 0.01 with
//!   decay 0.995.
//!
//! # Algorithm
//! For each episode: reset the env; until `terminated || truncated`, pick `a` epsilon-greedily
//! from `Q(s, .)`, step, and update
//!
//! ```text
//! Q(s, a) <- Q(s, a) + alpha * (r + gamma * (1 - terminated) * max_a' Q(s', a') - Q(s, a))
//! ```
//!
//! then decay epsilon: `epsilon <- max(epsilon * epsilon_decay, epsilon_end)`.
//!
//! # Implementation details and deviations
//! 1. **Epsilon decays once per episode**, multiplicatively (the seed design), not linearly per
//!    step as in CleanRL's `dqn.py`. With the defaults (decay 0.995, 200 episodes) epsilon ends
//!    at `0.995^199 ≈ 0.37`; it reaches 0.01 after about 920 episodes. Q-learning is off-policy,
//!    so the greedy policy is still learned while exploring.
//! 2. **Only `terminated` stops bootstrapping.** A transition cut by a time limit or the end of
//!    a trace (`truncated`) still bootstraps from `s'` (STYLE.md lesson 2).
//! 3. **Continuous observations are discretized** with uniform bins per feature (see
//!    [`QLearning::state_index`]); the Q-table is dense, `f32`, initialised to 0. Updates are
//!    computed in `f64` and stored as `f32`.
//! 4. **Ties.** While training, the exploiting branch of epsilon-greedy breaks ties between
//!    maximising actions uniformly at random from the agent's seeded stream (Sutton & Barto's
//!    convention; still reproducible). Lowest-index tie-breaking there would turn every
//!    unvisited state into "take action 0" and bias exploration towards scale-down (with the
//!    default [`envs::ActionMap`], action 0 removes `max_step` pods), so far-up states are rarely
//!    reached. The served policy ([`QLearning::greedy`], the [`Policy`] impl) breaks ties to the
//!    lowest index, so it is a deterministic function of the table; a state never visited in
//!    training (all values 0) therefore maps to action 0.
//! 5. **Seeding.** The exploration stream is a [`ChaCha8Rng`] owned by the agent, seeded from the
//!    run seed and the component name `agents.tabular_q.explore`. Episode `k` resets the env with
//!    [`episode_seed`]`(seed, k)`: every episode is reproducible on its own, and runs with
//!    neighbouring seeds do not share episodes (as `seed + k` would make them do).
//! 6. **No logging dependency.** Hyperparameters are returned in [`TrainReport::config`] and each
//!    episode is reported through a callback ([`EpisodeLog`]); the experiment runner records them.

use std::fmt;
use std::path::{Path, PathBuf};

use envs::{Discrete, Env};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::autoscaler::Policy;
use crate::nn::{derive_seed, splitmix64};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What can go wrong when building, training, saving or loading a [`QLearning`] agent.
#[derive(Debug, thiserror::Error)]
pub enum QLearningError {
    /// A configuration value is out of range. The agent is not built; fix the config.
    #[error("invalid q-learning config: `{field}` {message}")]
    InvalidConfig {
        /// The offending field, as spelled in the config file.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a table file failed. The agent in memory is unchanged.
    #[error("I/O error on Q-table file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A table file is not a valid saved agent (bad JSON, unknown format or version, sizes that
    /// do not match, non-finite values). Nothing is loaded.
    #[error("invalid Q-table file {}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The env's action space does not have as many actions as the table. Training does not
    /// start.
    #[error("the env has {env} actions but the Q-table has {table}")]
    ActionSpaceMismatch {
        /// Actions of the table.
        table: usize,
        /// Actions of the env's [`Discrete`] space.
        env: usize,
    },
    /// The env produced an observation with too few features for the discretization. Training
    /// stops; the table keeps the updates made so far.
    #[error("observation has {got} features, the discretization needs at least {expected}")]
    ObservationDim {
        /// Features the discretization reads.
        expected: usize,
        /// Features in the observation.
        got: usize,
    },
    /// The env returned a NaN or infinite reward. Training stops before the update, so the table
    /// stays finite.
    #[error("non-finite reward {reward} at episode {episode}, step {step}")]
    NonFiniteReward {
        /// Episode index (from 0).
        episode: usize,
        /// Step index within the episode (from 0).
        step: usize,
        /// The reward.
        reward: f64,
    },
}

fn invalid(field: &'static str, message: String) -> QLearningError {
    QLearningError::InvalidConfig { field, message }
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// Largest number of bins for one feature.
pub const MAX_BINS: usize = 1024;

/// Largest table (states x actions), entries: 2^26 `f32` = 256 MiB.
pub const MAX_TABLE_ENTRIES: usize = 1 << 26;

/// Hyperparameters of [`QLearning`] (`kind = "q-learning"`). Defaults are the seed design's.
///
/// The table has `cpu_bins * memory_bins * rate_bins * replica_bins` states times the env's
/// actions (defaults: 4000 states x 21 actions = 84,000 entries).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QLearningConfig {
    /// Step size `alpha` of the TD update, in `(0, 1]`. Default 0.1.
    pub learning_rate: f64,
    /// Discount factor `gamma` per decision, in `[0, 1]`. Default 0.95.
    pub gamma: f64,
    /// Exploration rate of the first episode, probability in `[0, 1]`. Default 1.0.
    pub epsilon_start: f64,
    /// Floor of the exploration rate, probability in `[0, epsilon_start]`. Default 0.01.
    pub epsilon_end: f64,
    /// Multiplicative decay of epsilon applied once after every episode, in `(0, 1]`.
    /// Default 0.995.
    pub epsilon_decay: f64,
    /// Training episodes, at least 1. Each episode runs until the env returns `terminated` or
    /// `truncated` (wrap endless envs in [`envs::TimeLimit`]). Default 200.
    pub episodes: usize,
    /// Uniform bins for observation feature 0 (`min(CPU utilization, 2) / 2`; with 10 bins
    /// one bin spans 0.2 of the CPU request), in `1..=1024`. Default 10.
    pub cpu_bins: usize,
    /// Uniform bins for feature 1 (memory utilization / 2), in `1..=1024`. Default 4: memory
    /// rarely drives scaling of a CPU-bound service, and every bin multiplies the table size.
    pub memory_bins: usize,
    /// Uniform bins for feature 2 (request rate; 0.5 = the workload's peak), in `1..=1024`.
    /// Default 10 (one bin is 20 % of the peak rate).
    pub rate_bins: usize,
    /// Uniform bins for feature 3 (desired replicas / max replicas), in `1..=1024`. Default 10
    /// (5 pods per bin with 50 max replicas).
    pub replica_bins: usize,
    /// Uniform bins for the observation features after the first four, in order (for a
    /// predictive hybrid: the forecast, then its uncertainty; see
    /// [`crate::predictive::PredictiveFeatures`]), each in `1..=1024`, at most 4 features.
    /// Default: none (features after index 3 are ignored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_bins: Vec<usize>,
}

impl Default for QLearningConfig {
    fn default() -> Self {
        Self {
            learning_rate: 0.1,
            gamma: 0.95,
            epsilon_start: 1.0,
            epsilon_end: 0.01,
            epsilon_decay: 0.995,
            episodes: 200,
            cpu_bins: 10,
            memory_bins: 4,
            rate_bins: 10,
            replica_bins: 10,
            extra_bins: Vec::new(),
        }
    }
}

impl QLearningConfig {
    /// Bins per feature in observation order: CPU, memory, request rate, replicas.
    pub fn bins(&self) -> [usize; FEATURES] {
        [
            self.cpu_bins,
            self.memory_bins,
            self.rate_bins,
            self.replica_bins,
        ]
    }

    /// Number of discrete states (product of the bins).
    pub fn n_states(&self) -> usize {
        self.bins().iter().chain(&self.extra_bins).product()
    }

    /// Observation features the discretization reads: 4 plus `extra_bins.len()`.
    pub fn features(&self) -> usize {
        FEATURES + self.extra_bins.len()
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`QLearningError::InvalidConfig`] naming the first field out of range (NaN included):
    /// `learning_rate` not in `(0, 1]`, `gamma` not in `[0, 1]`, `epsilon_start` or
    /// `epsilon_end` not in `[0, 1]`, `epsilon_end > epsilon_start`, `epsilon_decay` not in
    /// `(0, 1]`, `episodes == 0`, a bin count not in `1..=1024`.
    pub fn validate(&self) -> Result<(), QLearningError> {
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(invalid(
                "learning_rate",
                format!("must be in (0, 1], got {}", self.learning_rate),
            ));
        }
        for (field, v) in [
            ("gamma", self.gamma),
            ("epsilon_start", self.epsilon_start),
            ("epsilon_end", self.epsilon_end),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(field, format!("must be in [0, 1], got {v}")));
            }
        }
        if self.epsilon_end > self.epsilon_start {
            return Err(invalid(
                "epsilon_end",
                format!(
                    "must not exceed epsilon_start ({}), got {}",
                    self.epsilon_start, self.epsilon_end
                ),
            ));
        }
        if !(self.epsilon_decay > 0.0 && self.epsilon_decay <= 1.0) {
            return Err(invalid(
                "epsilon_decay",
                format!("must be in (0, 1], got {}", self.epsilon_decay),
            ));
        }
        if self.episodes == 0 || self.episodes > 1_000_000 {
            return Err(invalid(
                "episodes",
                format!("must be in 1..=1000000, got {}", self.episodes),
            ));
        }
        if self.extra_bins.len() > 4 {
            return Err(invalid(
                "extra_bins",
                format!("at most 4 extra features, got {}", self.extra_bins.len()),
            ));
        }
        if let Some(&n) = self
            .extra_bins
            .iter()
            .find(|&&n| !(1..=MAX_BINS).contains(&n))
        {
            return Err(invalid(
                "extra_bins",
                format!("every entry must be in 1..={MAX_BINS}, got {n}"),
            ));
        }
        for (field, n) in [
            ("cpu_bins", self.cpu_bins),
            ("memory_bins", self.memory_bins),
            ("rate_bins", self.rate_bins),
            ("replica_bins", self.replica_bins),
        ] {
            if !(1..=MAX_BINS).contains(&n) {
                return Err(invalid(
                    field,
                    format!("must be in 1..={MAX_BINS}, got {n}"),
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Discretization
// ---------------------------------------------------------------------------------------------

/// Number of observation features the discretization reads (indices 0..4 of the observation).
pub const FEATURES: usize = 4;

/// Uniform bin of `v` among `n` bins on `[0, 1]`: `min(floor(v * n), n - 1)` in `f32`, with
/// `v` clamped to `[0, 1]` first (NaN counts as 0).
fn bin(v: f32, n: usize) -> usize {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    ((v * n as f32) as usize).min(n - 1)
}

// ---------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------

/// The seed [`QLearning::train`] passes to `env.reset` at the start of episode `episode` (from
/// 0) of the run seeded by `run_seed`. Pure function: use it to replay one training episode.
pub fn episode_seed(run_seed: u64, episode: usize) -> u64 {
    splitmix64(derive_seed(run_seed, "agents.tabular_q.env").wrapping_add(episode as u64))
}

const EXPLORE_STREAM: &str = "agents.tabular_q.explore";

// ---------------------------------------------------------------------------------------------
// Agent and table
// ---------------------------------------------------------------------------------------------

/// A tabular Q-learning agent: a dense `n_states x n_actions` table of `f32` action values
/// (row-major by state), the current exploration rate and a seeded exploration stream.
///
/// Serve it with [`crate::autoscaler::PolicyAutoscaler`] (its [`Policy`] impl is greedy).
#[derive(Clone)]
pub struct QLearning {
    config: QLearningConfig,
    bins: [usize; FEATURES],
    n_states: usize,
    n_actions: usize,
    /// `q[s * n_actions + a]` = Q(s, a).
    q: Vec<f32>,
    epsilon: f64,
    rng: ChaCha8Rng,
}

impl fmt::Debug for QLearning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QLearning")
            .field("config", &self.config)
            .field("n_states", &self.n_states)
            .field("n_actions", &self.n_actions)
            .field("epsilon", &self.epsilon)
            .finish_non_exhaustive()
    }
}

impl QLearning {
    /// A zero-initialised agent for `n_actions` actions (the env's [`Discrete`] size; 21 with
    /// the default [`envs::ActionMap`]), epsilon at `epsilon_start`, exploration seeded from run
    /// seed 0 (training reseeds it).
    ///
    /// # Errors
    /// [`QLearningError::InvalidConfig`] if the config is invalid, `n_actions == 0`, or the
    /// table would exceed [`MAX_TABLE_ENTRIES`].
    pub fn new(config: QLearningConfig, n_actions: usize) -> Result<Self, QLearningError> {
        config.validate()?;
        if n_actions == 0 {
            return Err(invalid("n_actions", "must be at least 1, got 0".into()));
        }
        let n_states = config.n_states();
        let entries = n_states
            .checked_mul(n_actions)
            .filter(|&e| e <= MAX_TABLE_ENTRIES);
        let Some(entries) = entries else {
            return Err(invalid(
                "cpu_bins, memory_bins, rate_bins, replica_bins",
                format!(
                    "table of {n_states} states x {n_actions} actions exceeds {MAX_TABLE_ENTRIES} \
                     entries; use fewer bins (cpu_bins, memory_bins, rate_bins, replica_bins)"
                ),
            ));
        };
        Ok(Self {
            bins: config.bins(),
            epsilon: config.epsilon_start,
            config,
            n_states,
            n_actions,
            q: vec![0.0; entries],
            rng: ChaCha8Rng::seed_from_u64(derive_seed(0, EXPLORE_STREAM)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &QLearningConfig {
        &self.config
    }

    /// Number of discrete states.
    pub fn n_states(&self) -> usize {
        self.n_states
    }

    /// Number of actions.
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// Current exploration rate (probability of a uniformly random action).
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The whole table, `n_states * n_actions` values, row-major by state.
    pub fn table(&self) -> &[f32] {
        &self.q
    }

    /// `Q(state, .)`, `n_actions` values.
    ///
    /// # Panics
    /// If `state >= n_states`.
    pub fn q_values(&self, state: usize) -> &[f32] {
        assert!(
            state < self.n_states,
            "state {state} out of range 0..{}",
            self.n_states
        );
        &self.q[state * self.n_actions..(state + 1) * self.n_actions]
    }

    /// Reseeds the exploration stream from run seed `seed` (component
    /// `agents.tabular_q.explore`).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, EXPLORE_STREAM));
    }

    /// The discrete state of an observation. Features 0..4 of `obs` (the
    /// [`envs::ObsEncoder`] layout) are binned uniformly on `[0, 1]`, then the next
    /// `extra_bins.len()` features with `extra_bins` bins each (mixed radix continues); later
    /// features are ignored:
    ///
    /// | feature | obs index | bins | bin of value `v` |
    /// |---|---|---|---|
    /// | CPU utilization / 2 | 0 | `cpu_bins` (`b0`) | `min(floor(v * b0), b0 - 1)` |
    /// | memory utilization / 2 | 1 | `memory_bins` (`b1`) | `min(floor(v * b1), b1 - 1)` |
    /// | request rate (0.5 = peak) | 2 | `rate_bins` (`b2`) | `min(floor(v * b2), b2 - 1)` |
    /// | replicas / max replicas | 3 | `replica_bins` (`b3`) | `min(floor(v * b3), b3 - 1)` |
    ///
    /// Values are clamped to `[0, 1]` first (NaN counts as 0), so 1.0 falls in the last bin.
    /// The products are computed in `f32`. The bins combine in mixed radix:
    /// `state = ((i0 * b1 + i1) * b2 + i2) * b3 + i3`, in `0..n_states`.
    ///
    /// # Panics
    /// If `obs` has fewer than `config.features()` features (4 without `extra_bins`).
    pub fn state_index(&self, obs: &[f32]) -> usize {
        let need = self.config.features();
        assert!(
            obs.len() >= need,
            "tabular Q-learning needs at least {need} observation features, got {}",
            obs.len()
        );
        let mut s = 0;
        for (v, &n) in obs
            .iter()
            .zip(self.bins.iter().chain(&self.config.extra_bins))
        {
            s = s * n + bin(*v, n);
        }
        s
    }

    // -----------------------------------------------------------------------------------------
    // Action selection
    // -----------------------------------------------------------------------------------------

    /// The greedy action of a state index: `argmax_a Q(state, a)`, ties to the action closest
    /// to the middle one (with the env's [`envs::ActionMap`], "no action"), then to the lower
    /// index. A state never visited in training (all zeros) therefore keeps the replica count
    /// instead of scaling down by the largest step.
    fn greedy_index(&self, state: usize) -> usize {
        let row = self.q_values(state);
        let mid = self.n_actions / 2;
        let mut best = 0;
        for (a, &v) in row.iter().enumerate().skip(1) {
            if v > row[best] || (v == row[best] && a.abs_diff(mid) < best.abs_diff(mid)) {
                best = a;
            }
        }
        best
    }

    /// Epsilon-greedy over `Q(state, .)` from the agent's stream: one uniform draw decides
    /// whether to explore; exploring, a second draw picks a uniformly random action; exploiting,
    /// a second draw picks among the maximising actions only if there are several.
    fn epsilon_greedy_index(&mut self, state: usize) -> usize {
        if self.rng.random::<f64>() < self.epsilon {
            return self.rng.random_range(0..self.n_actions);
        }
        let best = self.greedy_index(state);
        let row = &self.q[state * self.n_actions..(state + 1) * self.n_actions];
        let ties = row.iter().filter(|&&v| v == row[best]).count();
        if ties == 1 {
            return best;
        }
        let k = self.rng.random_range(0..ties);
        let max = row[best];
        row.iter()
            .enumerate()
            .filter(|&(_, &v)| v == max)
            .nth(k)
            .map_or(best, |(a, _)| a)
    }

    /// The greedy action for `obs` (ties to the action nearest the middle one, then the lower
    /// index; deterministic).
    ///
    /// # Panics
    /// If `obs` has fewer than `config.features()` features (4 without `extra_bins`).
    pub fn greedy(&self, obs: &[f32]) -> usize {
        self.greedy_index(self.state_index(obs))
    }

    /// An epsilon-greedy action for `obs` with the current epsilon, as used in training: ties
    /// between maximising actions are broken at random (advances the exploration stream).
    ///
    /// # Panics
    /// If `obs` has fewer than `config.features()` features (4 without `extra_bins`).
    pub fn select_action(&mut self, obs: &[f32]) -> usize {
        let s = self.state_index(obs);
        self.epsilon_greedy_index(s)
    }

    // -----------------------------------------------------------------------------------------
    // Update
    // -----------------------------------------------------------------------------------------

    /// One Q-learning update on state indices; returns the TD error `target - Q(s, a)`.
    fn update_index(
        &mut self,
        s: usize,
        a: usize,
        reward: f64,
        s_next: usize,
        terminated: bool,
    ) -> f64 {
        assert!(
            a < self.n_actions,
            "action {a} out of range 0..{}",
            self.n_actions
        );
        // Truncated transitions bootstrap; only a terminal state has no future value.
        let future = if terminated {
            0.0
        } else {
            f64::from(self.q_values(s_next)[self.greedy_index(s_next)])
        };
        let target = reward + self.config.gamma * future;
        let q = &mut self.q[s * self.n_actions + a];
        let td = target - f64::from(*q);
        *q = (f64::from(*q) + self.config.learning_rate * td) as f32;
        td
    }

    /// One Q-learning update for the transition `(obs, action, reward, next_obs, terminated)`:
    /// `Q(s, a) += learning_rate * (reward + gamma * max_a' Q(s', a') * (1 - terminated) - Q(s, a))`.
    /// Pass the step's `terminated` flag, never `terminated || truncated`. Returns the TD error
    /// (before the step size is applied).
    ///
    /// # Panics
    /// If an observation has fewer than 4 features or `action >= n_actions`.
    pub fn update(
        &mut self,
        obs: &[f32],
        action: usize,
        reward: f64,
        next_obs: &[f32],
        terminated: bool,
    ) -> f64 {
        let (s, s_next) = (self.state_index(obs), self.state_index(next_obs));
        self.update_index(s, action, reward, s_next, terminated)
    }

    // -----------------------------------------------------------------------------------------
    // Training loop
    // -----------------------------------------------------------------------------------------

    /// Trains on `env` for `config.episodes` episodes and returns the per-episode record.
    ///
    /// Reseeds the exploration stream from `seed`, sets epsilon to `epsilon_start`, and keeps the
    /// current table (a fresh agent starts from zeros; a loaded one is fine-tuned). Episode `k`
    /// starts with `env.reset(Some(episode_seed(seed, k)))` and runs until `terminated` or
    /// `truncated`; epsilon decays after each episode. `on_episode` is called once per episode,
    /// in order. Same agent, env and seed give bit-identical results.
    ///
    /// # Errors
    /// [`QLearningError::ActionSpaceMismatch`] if the env's action count differs from the
    /// table's; [`QLearningError::ObservationDim`] for an observation with fewer than 4
    /// features; [`QLearningError::NonFiniteReward`] for a NaN or infinite reward.
    pub fn train<E>(
        &mut self,
        env: &mut E,
        seed: u64,
        mut on_episode: impl FnMut(EpisodeLog),
    ) -> Result<TrainReport, QLearningError>
    where
        E: Env<Obs = Vec<f32>, Action = usize, ActionSpace = Discrete>,
    {
        let env_actions = env.action_space().n;
        if env_actions != self.n_actions {
            return Err(QLearningError::ActionSpaceMismatch {
                table: self.n_actions,
                env: env_actions,
            });
        }
        let need = self.config.features();
        let check_dim = |obs: &[f32]| {
            if obs.len() < need {
                Err(QLearningError::ObservationDim {
                    expected: need,
                    got: obs.len(),
                })
            } else {
                Ok(())
            }
        };
        self.reseed(seed);
        self.epsilon = self.config.epsilon_start;
        let episodes = self.config.episodes;
        let mut returns = Vec::with_capacity(episodes);
        let mut episode_steps = Vec::with_capacity(episodes);
        let mut visited = vec![false; self.n_states];
        for episode in 0..episodes {
            let (obs, _) = env.reset(Some(episode_seed(seed, episode)));
            check_dim(&obs)?;
            let mut s = self.state_index(&obs);
            let (mut return_, mut steps) = (0.0, 0usize);
            loop {
                visited[s] = true;
                let a = self.epsilon_greedy_index(s);
                let step = env.step(a);
                if !step.reward.is_finite() {
                    return Err(QLearningError::NonFiniteReward {
                        episode,
                        step: steps,
                        reward: step.reward,
                    });
                }
                check_dim(&step.obs)?;
                let s_next = self.state_index(&step.obs);
                self.update_index(s, a, step.reward, s_next, step.terminated);
                return_ += step.reward;
                steps += 1;
                if step.is_done() {
                    break;
                }
                s = s_next;
            }
            on_episode(EpisodeLog {
                episode,
                return_,
                steps,
                epsilon: self.epsilon,
            });
            returns.push(return_);
            episode_steps.push(steps);
            self.epsilon = (self.epsilon * self.config.epsilon_decay).max(self.config.epsilon_end);
        }
        Ok(TrainReport {
            env_id: env.id().to_string(),
            seed,
            config: self.config.clone(),
            returns,
            episode_steps,
            final_epsilon: self.epsilon,
            states_visited: visited.iter().filter(|&&v| v).count(),
            n_states: self.n_states,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Save / load
    // -----------------------------------------------------------------------------------------

    /// Writes the agent to `path` as JSON (see [`FORMAT`]): format name and version, config,
    /// bins, sizes and the table (values as `f64`, so they reload bit-exactly). The exploration
    /// stream and epsilon are training state and are not saved. The file is written to
    /// `<path>.tmp` and renamed, so a crash never leaves a half-written table at `path`.
    ///
    /// # Errors
    /// [`QLearningError::Io`] if the file cannot be written; [`QLearningError::Format`] if the
    /// table holds a non-finite value.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), QLearningError> {
        let path = path.as_ref();
        if self.q.iter().any(|v| !v.is_finite()) {
            return Err(QLearningError::Format {
                path: path.to_path_buf(),
                message: "the table holds a non-finite value; refusing to save".into(),
            });
        }
        let saved = SavedTable {
            format: FORMAT.to_string(),
            version: FORMAT_VERSION,
            config: self.config.clone(),
            bins: self.bins,
            n_states: self.n_states,
            n_actions: self.n_actions,
            q: self.q.iter().map(|&v| f64::from(v)).collect(),
        };
        let json = serde_json::to_string(&saved).map_err(|e| QLearningError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let io = |source| QLearningError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::write(&tmp, json).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads an agent written by [`QLearning::save`]. Epsilon is set to `epsilon_start` and the
    /// exploration stream to run seed 0, as for [`QLearning::new`].
    ///
    /// # Errors
    /// [`QLearningError::Io`] if the file cannot be read; [`QLearningError::Format`] if it is not
    /// valid JSON of this format and version, its config is invalid, or its bins, sizes and table
    /// length disagree, or a value is not a finite `f32`. Never panics on a bad file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, QLearningError> {
        let path = path.as_ref();
        let bad = |message: String| QLearningError::Format {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|source| QLearningError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let saved: SavedTable = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if saved.format != FORMAT {
            return Err(bad(format!(
                "format is {:?}, expected {FORMAT:?}",
                saved.format
            )));
        }
        if saved.version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is not supported (this build reads version {FORMAT_VERSION})",
                saved.version
            )));
        }
        if saved.bins != saved.config.bins() {
            return Err(bad(format!(
                "bins {:?} disagree with the config's {:?}",
                saved.bins,
                saved.config.bins()
            )));
        }
        let mut agent = Self::new(saved.config, saved.n_actions).map_err(|e| bad(e.to_string()))?;
        if saved.n_states != agent.n_states {
            return Err(bad(format!(
                "n_states is {} but the bins give {}",
                saved.n_states, agent.n_states
            )));
        }
        if saved.q.len() != agent.q.len() {
            return Err(bad(format!(
                "table has {} values, expected {} states x {} actions = {}",
                saved.q.len(),
                agent.n_states,
                agent.n_actions,
                agent.q.len()
            )));
        }
        for (i, (dst, &v)) in agent.q.iter_mut().zip(&saved.q).enumerate() {
            let v32 = v as f32;
            if !v32.is_finite() {
                return Err(bad(format!("table value {i} ({v}) is not a finite f32")));
            }
            *dst = v32;
        }
        Ok(agent)
    }
}

impl Policy for QLearning {
    /// The greedy action ([`QLearning::greedy`]).
    fn act(&mut self, obs: &[f32]) -> usize {
        self.greedy(obs)
    }
}

/// One training episode, as reported to the `on_episode` callback of [`QLearning::train`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpisodeLog {
    /// Episode index, from 0.
    pub episode: usize,
    /// Undiscounted sum of the episode's rewards (serialised as `return`).
    #[serde(rename = "return")]
    pub return_: f64,
    /// Env steps in the episode.
    pub steps: usize,
    /// Exploration rate used during the episode.
    pub epsilon: f64,
}

/// The record of one [`QLearning::train`] call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainReport {
    /// Id of the env trained on (e.g. `scaling-v0`).
    pub env_id: String,
    /// Run seed.
    pub seed: u64,
    /// Hyperparameters of the run.
    pub config: QLearningConfig,
    /// Undiscounted return of each episode, in order (`config.episodes` values).
    pub returns: Vec<f64>,
    /// Env steps of each episode, in order.
    pub episode_steps: Vec<usize>,
    /// Epsilon after the last decay.
    pub final_epsilon: f64,
    /// Distinct states an action was taken in during this run (table coverage).
    pub states_visited: usize,
    /// Number of states of the table.
    pub n_states: usize,
}

impl TrainReport {
    /// Total env steps over all episodes.
    pub fn total_steps(&self) -> usize {
        self.episode_steps.iter().sum()
    }
}

/// Format name written in every saved table file.
pub const FORMAT: &str = "nimbusguard.tabular-q";

/// Version of the saved table layout; bump when the layout or the discretization changes.
pub const FORMAT_VERSION: u32 = 1;

/// The on-disk layout of a saved agent.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedTable {
    format: String,
    version: u32,
    config: QLearningConfig,
    /// Bins per feature: CPU, memory, request rate, replicas.
    bins: [usize; FEATURES],
    n_states: usize,
    n_actions: usize,
    /// Row-major `n_states x n_actions`.
    q: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use envs::{BoxSpace, Step};

    fn small(lr: f64, gamma: f64, cpu_bins: usize, n_actions: usize) -> QLearning {
        let config = QLearningConfig {
            learning_rate: lr,
            gamma,
            cpu_bins,
            memory_bins: 1,
            rate_bins: 1,
            replica_bins: 1,
            ..Default::default()
        };
        QLearning::new(config, n_actions).unwrap()
    }

    #[test]
    fn truncated_bootstraps_terminated_does_not() {
        // Two states by CPU (bin 0 = [0, 0.5), bin 1 = [0.5, 1]), two actions.
        // alpha = 0.5, gamma = 0.5, Q(s', .) = [2, 1], Q(s, 0) = 0, r = 1.
        let s = [0.1, 0.0, 0.0, 0.0];
        let s_next = [0.9, 0.0, 0.0, 0.0];
        let mut agent = small(0.5, 0.5, 2, 2);
        agent.q[2] = 2.0;
        agent.q[3] = 1.0;
        let mut trunc = agent.clone();
        // Truncated (terminated = false): target = 1 + 0.5 * max(2, 1) = 2;
        // Q = 0 + 0.5 * (2 - 0) = 1; TD error 2.
        assert_eq!(trunc.update(&s, 0, 1.0, &s_next, false), 2.0);
        assert_eq!(trunc.q_values(0), &[1.0, 0.0]);
        // Terminated: target = 1; Q = 0 + 0.5 * (1 - 0) = 0.5; TD error 1.
        assert_eq!(agent.update(&s, 0, 1.0, &s_next, true), 1.0);
        assert_eq!(agent.q_values(0), &[0.5, 0.0]);
    }

    /// Two states; every episode is s0 -(r=0)-> s1 -(r=1)-> end, the second step ending the
    /// episode as `terminated` or as `truncated`.
    struct TwoStep {
        terminal: bool,
        t: usize,
        space: BoxSpace,
        actions: Discrete,
    }

    impl TwoStep {
        fn new(terminal: bool) -> Self {
            Self {
                terminal,
                t: 2,
                space: BoxSpace::new(vec![0.0; 4], vec![1.0; 4]),
                actions: Discrete::new(1),
            }
        }
    }

    impl Env for TwoStep {
        type Obs = Vec<f32>;
        type Action = usize;
        type Info = ();
        type ObsSpace = BoxSpace;
        type ActionSpace = Discrete;
        fn id(&self) -> &str {
            "two-step-v0"
        }
        fn reset(&mut self, _seed: Option<u64>) -> (Vec<f32>, ()) {
            self.t = 0;
            (vec![0.0; 4], ())
        }
        fn step(&mut self, _a: usize) -> Step<Vec<f32>, ()> {
            assert!(self.t < 2, "episode over");
            self.t += 1;
            let end = self.t == 2;
            Step {
                obs: vec![if end { 0.0 } else { 1.0 }, 0.0, 0.0, 0.0],
                reward: if end { 1.0 } else { 0.0 },
                terminated: end && self.terminal,
                truncated: end && !self.terminal,
                info: (),
            }
        }
        fn observation_space(&self) -> &BoxSpace {
            &self.space
        }
        fn action_space(&self) -> &Discrete {
            &self.actions
        }
    }

    #[test]
    fn training_loop_passes_terminated_not_done() {
        // alpha = 1, gamma = 0.5, one action, two episodes.
        // Episode 1: Q(s0) = 0 + 0.5 * Q(s1) = 0;  Q(s1) = 1 + [trunc] 0.5 * Q(s0) = 1.
        // Episode 2: Q(s0) = 0 + 0.5 * 1 = 0.5;    Q(s1) = 1 + [trunc] 0.5 * 0.5 = 1.25.
        for (terminal, q_s1) in [(true, 1.0), (false, 1.25)] {
            let mut agent = small(1.0, 0.5, 2, 1);
            agent.config.episodes = 2;
            let mut logs = Vec::new();
            let report = agent
                .train(&mut TwoStep::new(terminal), 7, |l| logs.push(l))
                .unwrap();
            assert_eq!(agent.table(), &[0.5, q_s1]);
            assert_eq!(report.returns, vec![1.0, 1.0]);
            assert_eq!(report.total_steps(), 4);
            assert_eq!(report.states_visited, 2);
            assert_eq!(logs.len(), 2);
        }
    }

    #[test]
    fn epsilon_decays_once_per_episode() {
        let mut agent = small(0.1, 0.9, 2, 1);
        agent.config.episodes = 5;
        agent.config.epsilon_start = 0.5;
        agent.config.epsilon_decay = 0.5;
        agent.config.epsilon_end = 0.1;
        let mut eps = Vec::new();
        let report = agent
            .train(&mut TwoStep::new(true), 0, |l| eps.push(l.epsilon))
            .unwrap();
        // 0.5, 0.25, 0.125, then floored at 0.1.
        assert_eq!(eps, vec![0.5, 0.25, 0.125, 0.1, 0.1]);
        assert_eq!(report.final_epsilon, 0.1);
    }

    #[test]
    fn discretization_table() {
        let agent = QLearning::new(QLearningConfig::default(), 21).unwrap();
        assert_eq!(agent.n_states(), 4000);
        assert_eq!(agent.table().len(), 84_000);
        // Uniform bins: 0 -> 0, 0.1 -> 1 (edge belongs to the upper bin), 1.0 -> last bin.
        assert_eq!(bin(0.0, 10), 0);
        assert_eq!(bin(0.099, 10), 0);
        assert_eq!(bin(0.1, 10), 1);
        assert_eq!(bin(0.7, 10), 7);
        assert_eq!(bin(1.0, 10), 9);
        assert_eq!(bin(1.5, 10), 9);
        assert_eq!(bin(-0.5, 10), 0);
        assert_eq!(bin(f32::NAN, 10), 0);
        assert_eq!(bin(0.99, 1), 0);
        // cpu 0.25 -> 2 of 10, memory 0.5 -> 2 of 4, rate 0.05 -> 0 of 10, replicas 1.0 -> 9 of 10:
        // ((2 * 4 + 2) * 10 + 0) * 10 + 9 = 1009. A fifth (trend) feature is ignored.
        assert_eq!(agent.state_index(&[0.25, 0.5, 0.05, 1.0]), 1009);
        assert_eq!(agent.state_index(&[0.25, 0.5, 0.05, 1.0, 0.3]), 1009);
        assert_eq!(agent.state_index(&[1.0; 4]), 3999);
        assert_eq!(agent.state_index(&[0.0; 4]), 0);
    }

    #[test]
    fn greedy_ties_go_to_the_middle_action_then_the_lowest_index() {
        let mut agent = small(0.1, 0.9, 1, 4);
        let obs = [0.0; 4];
        // An unvisited state (all zeros): the middle action, 4 / 2 = 2.
        assert_eq!(agent.greedy(&obs), 2);
        // Actions 1 and 3 tie at 3.0, both one away from the middle: the lower index wins.
        agent.q.copy_from_slice(&[-1.0, 3.0, 2.0, 3.0]);
        assert_eq!(agent.greedy(&obs), 1);
        assert_eq!(agent.act(&obs), 1);
        // epsilon = 0: select_action exploits, breaking the tie between actions 1 and 3 at
        // random (seeded); it never picks a non-maximising action.
        agent.epsilon = 0.0;
        let picks: Vec<usize> = (0..64).map(|_| agent.select_action(&obs)).collect();
        assert!(picks.iter().all(|&a| a == 1 || a == 3));
        assert!(picks.contains(&1) && picks.contains(&3));
        agent.q.copy_from_slice(&[-1.0, 3.0, 2.0, 2.5]);
        assert!((0..16).all(|_| agent.select_action(&obs) == 1));
    }

    #[test]
    fn exploration_is_seeded() {
        let mut a = small(0.1, 0.9, 1, 21);
        let mut b = small(0.1, 0.9, 1, 21);
        a.reseed(3);
        b.reseed(3);
        let obs = [0.0; 4];
        let xs: Vec<usize> = (0..50).map(|_| a.select_action(&obs)).collect();
        let ys: Vec<usize> = (0..50).map(|_| b.select_action(&obs)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|&x| x != xs[0]), "epsilon 1 explores");
        assert_ne!(episode_seed(1, 1), episode_seed(2, 0));
        assert_eq!(episode_seed(5, 3), episode_seed(5, 3));
    }

    #[test]
    fn validation_names_the_field() {
        let field = |f: fn(&mut QLearningConfig)| {
            let mut c = QLearningConfig::default();
            f(&mut c);
            match QLearning::new(c, 21) {
                Err(QLearningError::InvalidConfig { field, .. }) => field,
                other => panic!("expected InvalidConfig, got {other:?}"),
            }
        };
        assert_eq!(field(|c| c.learning_rate = 0.0), "learning_rate");
        assert_eq!(field(|c| c.learning_rate = 1.5), "learning_rate");
        assert_eq!(field(|c| c.learning_rate = f64::NAN), "learning_rate");
        assert_eq!(field(|c| c.gamma = 1.01), "gamma");
        assert_eq!(field(|c| c.epsilon_start = -0.1), "epsilon_start");
        assert_eq!(field(|c| c.epsilon_end = 2.0), "epsilon_end");
        assert_eq!(field(|c| c.epsilon_start = 0.005), "epsilon_end");
        assert_eq!(field(|c| c.epsilon_decay = 0.0), "epsilon_decay");
        assert_eq!(field(|c| c.episodes = 0), "episodes");
        assert_eq!(field(|c| c.cpu_bins = 0), "cpu_bins");
        assert_eq!(field(|c| c.memory_bins = 0), "memory_bins");
        assert_eq!(field(|c| c.rate_bins = 2000), "rate_bins");
        assert_eq!(field(|c| c.replica_bins = 0), "replica_bins");
        // 1024 * 4 * 1024 * 10 states x 21 actions > 2^26 entries.
        assert_eq!(
            field(|c| {
                c.cpu_bins = 1024;
                c.rate_bins = 1024;
            }),
            "cpu_bins, memory_bins, rate_bins, replica_bins"
        );
        assert!(matches!(
            QLearning::new(QLearningConfig::default(), 0),
            Err(QLearningError::InvalidConfig {
                field: "n_actions",
                ..
            })
        ));
        // Boundaries are accepted.
        let edge = QLearningConfig {
            learning_rate: 1.0,
            gamma: 0.0,
            epsilon_decay: 1.0,
            ..Default::default()
        };
        assert!(edge.validate().is_ok());
    }

    #[test]
    fn config_is_data() {
        let c: QLearningConfig =
            serde_json::from_str(r#"{"episodes": 50, "cpu_bins": 5}"#).unwrap();
        assert_eq!(
            c,
            QLearningConfig {
                episodes: 50,
                cpu_bins: 5,
                ..Default::default()
            }
        );
        assert!(serde_json::from_str::<QLearningConfig>(r#"{"epsilon": 0.1}"#).is_err());
    }

    fn temp_path(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        std::env::temp_dir().join(format!(
            "nimbusguard-tabq-unit-{tag}-{}-{nanos}.json",
            std::process::id()
        ))
    }

    #[test]
    fn save_load_round_trip_is_bit_exact() {
        let mut agent = small(0.1, 0.9, 3, 5);
        for (i, v) in agent.q.iter_mut().enumerate() {
            *v = (i as f32 * 0.1).sin() * 1e3 + 1e-7;
        }
        let path = temp_path("roundtrip");
        agent.save(&path).unwrap();
        let back = QLearning::load(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(back.config(), agent.config());
        assert_eq!(back.n_actions(), 5);
        let bits = |a: &QLearning| a.table().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&agent));
    }

    #[test]
    fn load_rejects_bad_files() {
        let agent = small(0.1, 0.9, 2, 3);
        let path = temp_path("bad");
        agent.save(&path).unwrap();
        let good: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut cases: Vec<(serde_json::Value, &str)> = Vec::new();
        let mut v = good.clone();
        v["version"] = 2.into();
        cases.push((v, "version 2"));
        let mut v = good.clone();
        v["format"] = "something-else".into();
        cases.push((v, "format"));
        let mut v = good.clone();
        v["q"].as_array_mut().unwrap().pop();
        cases.push((v, "table has 5 values"));
        let mut v = good.clone();
        v["n_actions"] = 4.into();
        cases.push((v, "expected 2 states x 4 actions"));
        let mut v = good.clone();
        v["bins"] = serde_json::json!([3, 1, 1, 1]);
        cases.push((v, "bins"));
        let mut v = good.clone();
        v["config"]["gamma"] = 7.into();
        cases.push((v, "gamma"));
        let mut v = good.clone();
        v["q"][0] = 1e300.into();
        cases.push((v, "not a finite f32"));
        let mut v = good.clone();
        v["extra"] = 1.into();
        cases.push((v, "unknown field"));
        for (v, needle) in cases {
            std::fs::write(&path, v.to_string()).unwrap();
            match QLearning::load(&path) {
                Err(e @ QLearningError::Format { .. }) => {
                    assert!(
                        e.to_string().contains(needle),
                        "{e} should mention {needle:?}"
                    );
                }
                other => panic!("expected a Format error mentioning {needle:?}, got {other:?}"),
            }
        }
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            QLearning::load(&path),
            Err(QLearningError::Format { .. })
        ));
        let _ = std::fs::remove_file(&path);
        assert!(matches!(
            QLearning::load(&path),
            Err(QLearningError::Io { .. })
        ));
    }

    #[test]
    fn non_finite_rewards_stop_training() {
        struct Nan(TwoStep);
        impl Env for Nan {
            type Obs = Vec<f32>;
            type Action = usize;
            type Info = ();
            type ObsSpace = BoxSpace;
            type ActionSpace = Discrete;
            fn id(&self) -> &str {
                "nan-v0"
            }
            fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, ()) {
                self.0.reset(seed)
            }
            fn step(&mut self, a: usize) -> Step<Vec<f32>, ()> {
                Step {
                    reward: f64::NAN,
                    ..self.0.step(a)
                }
            }
            fn observation_space(&self) -> &BoxSpace {
                self.0.observation_space()
            }
            fn action_space(&self) -> &Discrete {
                self.0.action_space()
            }
        }
        let mut agent = small(0.1, 0.9, 2, 1);
        let r = agent.train(&mut Nan(TwoStep::new(true)), 0, |_| {});
        assert!(matches!(
            r,
            Err(QLearningError::NonFiniteReward {
                episode: 0,
                step: 0,
                ..
            })
        ));
        assert!(agent.table().iter().all(|v| *v == 0.0));
        let mut wrong = small(0.1, 0.9, 2, 3);
        assert!(matches!(
            wrong.train(&mut TwoStep::new(true), 0, |_| {}),
            Err(QLearningError::ActionSpaceMismatch { table: 3, env: 1 })
        ));
    }
}
