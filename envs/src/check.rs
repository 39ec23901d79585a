//! [`check_env`]: the checks every environment must pass (Gymnasium's `utils/env_checker.py`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::env::{Env, Step};
use crate::spaces::Space;

/// A failed environment check; the message says which property failed and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("check_env({env_id}): {message}")]
pub struct CheckError {
    /// Id of the env that failed.
    pub env_id: String,
    /// Which property failed.
    pub message: String,
}

/// One rollout: `(obs after reset, steps)`.
type Rollout<E> = (
    <E as Env>::Obs,
    Vec<Step<<E as Env>::Obs, <E as Env>::Info>>,
);

fn rollout<E: Env>(env: &mut E, seed: u64, action_seed: u64, max_steps: usize) -> Rollout<E> {
    let (obs0, _) = env.reset(Some(seed));
    let mut rng = ChaCha8Rng::seed_from_u64(action_seed);
    let mut steps = Vec::new();
    for _ in 0..max_steps {
        let action = env.action_space().sample(&mut rng);
        let step = env.step(action);
        let done = step.is_done();
        steps.push(step);
        if done {
            break;
        }
    }
    (obs0, steps)
}

/// Checks `env` against the [`Env`] contract, taking at most `max_steps` steps per rollout:
///
/// 1. every observation (after reset and after each step) lies in the observation space and
///    every reward is finite;
/// 2. two resets with the same seed followed by the same (seeded random) actions give equal
///    observations, rewards and end flags;
/// 3. a different seed gives a different trajectory;
/// 4. if the episode ends within `max_steps`, calling `step` again panics (no hidden autoreset).
///
/// # Errors
/// A [`CheckError`] naming the first property that fails.
pub fn check_env<E: Env>(env: &mut E, max_steps: usize) -> Result<(), CheckError> {
    let fail = |env: &E, message: String| CheckError {
        env_id: env.id().to_string(),
        message,
    };
    let (obs_a, steps_a) = rollout(env, 1, 11, max_steps);
    if !env.observation_space().contains(&obs_a) {
        return Err(fail(
            env,
            format!("reset observation {obs_a:?} is outside the space"),
        ));
    }
    for (i, s) in steps_a.iter().enumerate() {
        if !env.observation_space().contains(&s.obs) {
            return Err(fail(
                env,
                format!("step {i}: observation {:?} outside the space", s.obs),
            ));
        }
        if !s.reward.is_finite() {
            return Err(fail(
                env,
                format!("step {i}: reward {} is not finite", s.reward),
            ));
        }
    }
    let ended = steps_a.last().is_some_and(|s| s.is_done());
    if ended {
        let action = env.action_space().sample(&mut ChaCha8Rng::seed_from_u64(0));
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = catch_unwind(AssertUnwindSafe(|| env.step(action)));
        std::panic::set_hook(prev);
        if r.is_ok() {
            return Err(fail(
                env,
                "step() after the episode ended did not panic".into(),
            ));
        }
    }
    let (obs_b, steps_b) = rollout(env, 1, 11, max_steps);
    if obs_a != obs_b || steps_a.len() != steps_b.len() {
        return Err(fail(
            env,
            "same seed and actions gave a different trajectory".into(),
        ));
    }
    for (i, (a, b)) in steps_a.iter().zip(&steps_b).enumerate() {
        if a.obs != b.obs
            || a.reward.to_bits() != b.reward.to_bits()
            || a.terminated != b.terminated
            || a.truncated != b.truncated
        {
            return Err(fail(env, format!("same seed diverged at step {i}")));
        }
    }
    let (obs_c, steps_c) = rollout(env, 2, 11, max_steps);
    let same = obs_a == obs_c
        && steps_a.len() == steps_c.len()
        && steps_a
            .iter()
            .zip(&steps_c)
            .all(|(a, c)| a.obs == c.obs && a.reward == c.reward);
    if same {
        return Err(fail(
            env,
            "a different seed gave the identical trajectory".into(),
        ));
    }
    Ok(())
}
