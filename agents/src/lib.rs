//! `agents`: autoscalers that run unchanged in the simulator and (later) on a live cluster.
//! Every agent turns a [`sim::ClusterState`] into a [`sim::ScaleDecision`] through the
//! synchronous, I/O-free [`Autoscaler`] trait; learned agents also implement [`Policy`] over the
//! encoded observation of `envs`, and [`PolicyAutoscaler`] adapts one to the other with the
//! same [`envs::ObsEncoder`] and [`envs::ActionMap`] the environment uses.
//!
//! Modules:
//! - [`autoscaler`] — the [`Autoscaler`] and [`Policy`] traits, [`PolicyAutoscaler`].
//! - [`hpa`] — the Kubernetes HorizontalPodAutoscaler algorithm and its reference-case harness.
//! - [`baselines`] — [`baselines::StaticReplicas`] and the [`baselines::ThresholdRule`].
//! - [`tabular_q`] — tabular Q-learning (seed parameters), with save and load.
//! - [`dqn`] — DQN with replay buffer, target network and double-DQN targets (burn), save/load.
//! - [`nn`] — the burn device, seeded network initialisation, named random streams.
//! - [`forecast`] — the [`forecast::Forecaster`] trait, baselines and the LSTM forecaster.
//! - [`predictive`] — forecast and anomaly features for learned agents, the proactive rule.
//! - [`anomaly`] — streaming anomaly detectors (rolling MAD, EWMA z-score, forecast residual).
//! - [`oracle`] — the clairvoyant oracle (`oracle-instant`, `oracle-realistic`): a cost bound.
//! - [`nimbusguard_v0`] — the original NimbusGuard Double DQN, its state, reward and shield.
//! - [`peers`] — peer autoscalers: a KEDA-style scaler and Knative's KPA.
//!
//! ```
//! use agents::hpa::{Hpa, HpaConfig};
//! use agents::Autoscaler;
//! use sim::{PodPhase, PodView, ClusterState, SimTime};
//!
//! // Three Ready pods requesting 500 millicores each, using 525 (105%) for the last minute.
//! let pod = |id| PodView {
//!     id, phase: PodPhase::Running, ready: true,
//!     ready_last_transition: Some(SimTime::ZERO), start_time: Some(SimTime::ZERO),
//!     deleting: false, cpu_request_milli: 500, memory_request_bytes: 1 << 28,
//!     cpu_usage_milli: Some(525), memory_usage_bytes: Some(1 << 27),
//!     metric_timestamp: Some(SimTime::from_secs(600)), metric_window_s: 60,
//! };
//! let state = ClusterState {
//!     time: SimTime::from_secs(600), desired_replicas: 3, status_replicas: 3,
//!     ready_replicas: 3, pods: vec![pod(1), pod(2), pod(3)], ..Default::default()
//! };
//! let mut hpa = Hpa::new(HpaConfig::default()).unwrap();
//! // Utilization 105% against a 70% target: ratio 1.5, ceil(1.5 x 3) = 5 replicas.
//! assert_eq!(hpa.decide(&state).desired_replicas, 5);
//! ```

pub mod anomaly;
pub mod autoscaler;
pub mod baselines;
pub mod dqn;
pub mod forecast;
pub mod hpa;
pub mod nimbusguard_v0;
pub mod nn;
pub mod oracle;
pub mod peers;
pub mod predictive;
pub mod tabular_q;
#[cfg(test)]
mod test_support;

pub use autoscaler::{Autoscaler, Policy, PolicyAutoscaler};

/// Any error of this crate's agents, for callers that handle them alike. Each agent module
/// keeps its own precise error type; none of them is raised while deciding (decisions never
/// fail), only when building an agent from a config or loading a saved one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An HPA config or reference case is invalid, or the controller's computation failed.
    #[error(transparent)]
    Hpa(#[from] hpa::HpaError),
    /// A threshold rule's config is invalid.
    #[error(transparent)]
    Threshold(#[from] baselines::ThresholdConfigError),
    /// A Q-learning config, training run or saved table is invalid.
    #[error(transparent)]
    QLearning(#[from] tabular_q::QLearningError),
    /// A DQN config, training run or saved agent is invalid.
    #[error(transparent)]
    Dqn(#[from] dqn::DqnError),
    /// A forecaster's config, training series or saved model is invalid.
    #[error(transparent)]
    Forecast(#[from] forecast::ForecastError),
    /// A KEDA or KPA config is invalid.
    #[error(transparent)]
    Peer(#[from] peers::PeerConfigError),
    /// An oracle's config is invalid.
    #[error(transparent)]
    Oracle(#[from] oracle::OracleError),
    /// An anomaly detector's config or training series is invalid.
    #[error(transparent)]
    Anomaly(#[from] anomaly::AnomalyError),
}
