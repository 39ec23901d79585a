//! `envs`: Gymnasium's environment contract in Rust, and `scaling-v0`, the autoscaling
//! environment over the [`sim`] simulator.
//!
//! Modules:
//! - [`env`](mod@env) — the [`Env`] trait and [`Step`] (`obs`, `reward`, `terminated`, `truncated`, `info`).
//! - [`spaces`] — [`Discrete`] and [`BoxSpace`].
//! - [`wrappers`] — [`TimeLimit`].
//! - [`check`] — [`check_env`], run on every environment in the tests.
//! - [`encoding`] — [`ObsEncoder`], [`ActionMap`], [`ScaleGuard`], shared by training and serving.
//! - [`scaling`] — [`ScalingEnv`] (`scaling-v0`) and its config.
//! - [`reward`] — [`RewardCalculator`], the rewards of `scaling-v0`, shared with the live path.
//!
//! ```
//! use std::sync::Arc;
//! use envs::{check_env, Env, ScalingEnv, ScalingEnvConfig};
//! use sim::{trace::RateSeries, workload::Arrivals, Scenario};
//!
//! // Thirty minutes of 40 requests per second.
//! let traffic = Arc::new(RateSeries { step_s: 60.0, values: vec![40.0; 30] });
//! let mut env = ScalingEnv::new(
//!     ScalingEnvConfig::default(), Scenario::default(), traffic, Arrivals::Poisson, 40.0,
//! ).unwrap();
//! check_env(&mut env, 200).unwrap();
//! let (obs, _) = env.reset(Some(7));
//! assert_eq!(obs.len(), 4);
//! let step = env.step(env.action_map().noop());
//! assert!(!step.terminated && !step.truncated);
//! // 120 decisions of 15 s cover the 30 minutes; the last one truncates.
//! let mut steps = 1;
//! while !env.step(10).is_done() { steps += 1; }
//! assert_eq!(steps + 1, 120);
//! ```

pub mod check;
pub mod encoding;
pub mod env;
pub mod reward;
pub mod scaling;
pub mod spaces;
pub mod wrappers;

pub use check::{check_env, CheckError};
pub use encoding::{ActionMap, ObsEncoder, ScaleGuard};
pub use env::{Env, Step};
pub use reward::RewardCalculator;
pub use scaling::{RewardKind, ScalingEnv, ScalingEnvConfig, StepInfo, ENV_ID};
pub use spaces::{BoxSpace, Discrete, Space};
pub use wrappers::TimeLimit;
