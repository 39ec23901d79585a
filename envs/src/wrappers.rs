//! Wrappers: [`TimeLimit`] truncates an episode after a fixed number of steps.

use crate::env::{Env, Step};

/// Truncates episodes after `max_episode_steps` steps (Gymnasium `TimeLimit`): the step that
/// reaches the limit has `truncated = true` (unless it is also terminal, in which case
/// `terminated` stays true as well).
#[derive(Debug, Clone)]
pub struct TimeLimit<E> {
    env: E,
    max_episode_steps: usize,
    elapsed: usize,
    done: bool,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `env`.
    ///
    /// # Panics
    /// If `max_episode_steps == 0`.
    pub fn new(env: E, max_episode_steps: usize) -> Self {
        assert!(
            max_episode_steps > 0,
            "TimeLimit needs max_episode_steps >= 1"
        );
        Self {
            env,
            max_episode_steps,
            elapsed: 0,
            done: true,
        }
    }

    /// The wrapped env.
    pub fn inner(&self) -> &E {
        &self.env
    }

    /// The wrapped env, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.env
    }

    /// Steps taken in the current episode.
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed
    }
}

impl<E: Env> Env for TimeLimit<E> {
    type Obs = E::Obs;
    type Action = E::Action;
    type Info = E::Info;
    type ObsSpace = E::ObsSpace;
    type ActionSpace = E::ActionSpace;

    fn id(&self) -> &str {
        self.env.id()
    }
    fn reset(&mut self, seed: Option<u64>) -> (E::Obs, E::Info) {
        self.elapsed = 0;
        self.done = false;
        self.env.reset(seed)
    }
    fn step(&mut self, action: E::Action) -> Step<E::Obs, E::Info> {
        assert!(
            !self.done,
            "TimeLimit: step() called after the episode ended (or before reset); call reset() first"
        );
        let mut step = self.env.step(action);
        self.elapsed += 1;
        if self.elapsed >= self.max_episode_steps {
            step.truncated = true;
        }
        self.done = step.is_done();
        step
    }
    fn observation_space(&self) -> &E::ObsSpace {
        self.env.observation_space()
    }
    fn action_space(&self) -> &E::ActionSpace {
        self.env.action_space()
    }
}
