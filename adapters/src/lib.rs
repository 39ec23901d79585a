//! NimbusGuard's live path: the same [`sim::ClusterState`] and [`agents`] decisions as in the
//! simulator, but observed from Prometheus and applied to real replicas.
//!
//! Modules:
//! - [`prometheus`]: blocking client for Prometheus' HTTP API with typed results.
//! - [`state`]: PromQL configuration and [`StateObserver`], which builds a `ClusterState` plus
//!   staleness and completeness flags ([`Observation`]).
//! - [`scaler`]: the [`Scaler`] trait (set replicas, list pods, refresh readiness).
//! - [`process`]: [`ProcessScaler`], replicas as local `workload-app` processes with real
//!   readiness, signals and Prometheus file_sd.
//! - [`front`]: [`Front`], a round-robin HTTP front for the Ready replicas with its own metrics.
//! - [`operator`]: the operator loop: observe, decide (HPA fallback on stale metrics), act
//!   within safety limits (recovery on failure), score; its `/metrics` and `/trigger`.
//! - [`live_env`]: [`LiveEnv`], the `scaling-v0` env's contract over a real system in real
//!   time (a [`Scaler`] and an observer), so `Env` code runs unchanged against it.
//! - [`local_prometheus`]: [`LocalPrometheus`], a Prometheus child process for local live runs
//!   and tests.
//! - [`k8s`]: Kubernetes: the `NimbusScaler` resource, [`KubeScaler`](k8s::KubeScaler).
//! - [`kafka`]: [`KafkaTriggers`], Kafka trigger events as a trigger source of the operator.
//! - [`error`]: the crate's [`Error`].
//!
//! ```
//! use adapters::{Backend, Front, FrontConfig};
//!
//! // A front with no Ready replica drops every request with 503.
//! let front = Front::start(&FrontConfig::default())?;
//! let url = format!("http://{}/work", front.addr());
//! let status = reqwest::blocking::get(&url).map_err(|e| e.to_string())?.status();
//! assert_eq!(status.as_u16(), 503);
//!
//! // Its own metrics count that request as dropped.
//! let metrics = reqwest::blocking::get(format!("http://{}/metrics", front.addr()))
//!     .and_then(|r| r.text())
//!     .map_err(|e| e.to_string())?;
//! assert!(metrics.contains("front_requests_total{outcome=\"dropped\"} 1"));
//! assert!(front.backends().is_empty());
//! let _unused: Vec<Backend> = Vec::new();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod front;
pub mod k8s;
pub mod kafka;
pub mod live_env;
pub mod local_prometheus;
pub mod operator;
pub mod process;
pub mod prometheus;
pub mod scaler;
pub mod state;

pub use error::{Error, Result};
pub use front::{Backend, Front, FrontConfig};
pub use kafka::{KafkaTriggerConfig, KafkaTriggerMetrics, KafkaTriggers, TriggerEvent};
pub use live_env::{LiveEnv, LiveEnvConfig, LiveInfo, LIVE_ENV_ID};
pub use local_prometheus::{LocalPrometheus, ScrapeJob};
pub use process::{ProcessScaler, ProcessScalerConfig};
pub use prometheus::{PrometheusClient, QueryResult, Sample, Series};
pub use scaler::{PodInfo, Scaler};
pub use state::{Observation, PromQueries, StateConfig, StateObserver};
