//! The [`Env`] trait and the [`Step`] it returns: Gymnasium's contract, typed.

use std::fmt::Debug;

use crate::spaces::Space;

/// What one [`Env::step`] returns (Gymnasium's `step` tuple as named fields).
#[derive(Debug, Clone, PartialEq)]
pub struct Step<O, I> {
    /// Observation after the action.
    pub obs: O,
    /// Reward for the transition.
    pub reward: f64,
    /// The episode reached a terminal state of the MDP (no bootstrapping from `obs`).
    pub terminated: bool,
    /// The episode was cut short from outside the MDP (time limit, end of trace): learners
    /// still bootstrap from `obs`.
    pub truncated: bool,
    /// Diagnostics that are not part of the observation.
    pub info: I,
}

impl<O, I> Step<O, I> {
    /// `terminated || truncated`: the episode is over and [`Env::reset`] must be called.
    pub fn is_done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A reinforcement-learning environment with Gymnasium's semantics.
///
/// - [`Env::reset`] with `Some(seed)` reseeds every random stream the env owns; `None` keeps
///   using the current streams (the next episode of the same run).
/// - [`Env::step`] never resets by itself (no hidden autoreset). Calling it after a step that
///   returned `terminated` or `truncated`, or before the first reset, panics with a clear message
///   (Gymnasium's `OrderEnforcing`/`ResetNeeded`); this is a programming error, not bad input.
pub trait Env {
    /// Observation type.
    type Obs: Clone + Debug + PartialEq;
    /// Action type.
    type Action: Clone + Debug;
    /// Per-step diagnostics.
    type Info: Clone + Debug;
    /// Observation space.
    type ObsSpace: Space<Self::Obs>;
    /// Action space.
    type ActionSpace: Space<Self::Action>;

    /// Versioned environment id, e.g. `scaling-v0`.
    fn id(&self) -> &str;
    /// Starts a new episode; returns the first observation and its info.
    fn reset(&mut self, seed: Option<u64>) -> (Self::Obs, Self::Info);
    /// Applies `action` and advances the environment by one step.
    ///
    /// # Panics
    /// If the episode has ended or `reset` was never called.
    fn step(&mut self, action: Self::Action) -> Step<Self::Obs, Self::Info>;
    /// The space every observation lies in.
    fn observation_space(&self) -> &Self::ObsSpace;
    /// The space of valid actions.
    fn action_space(&self) -> &Self::ActionSpace;
}
