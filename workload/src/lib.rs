//! The live path's workload: an HTTP app whose requests cost CPU like the simulator's service
//! model, and an open-loop load generator that replays the simulator's workloads (traces and
//! patterns) against it.
//!
//! Modules:
//! - [`app`]: the workload app (axum): `/work`, CPU/memory jobs, event triggers, `/metrics`,
//!   `/health`, `/ready`; binary `workload-app`.
//! - [`loadgen`]: arrival schedules from a [`sim::trace::RateSeries`] and the open-loop HTTP
//!   runner with its JSON summary; binary `loadgen`.
//! - [`error`]: the crate's [`Error`].
//!
//! The binaries' flags, endpoints and metrics are documented in `docs/live.md`.
//!
//! ```
//! use sim::trace::RateSeries;
//! use sim::workload::Arrivals;
//! use workload::loadgen::Schedule;
//!
//! // 2 s at 5 req/s, then 1 s at 10 req/s, evenly spaced.
//! let series = RateSeries { step_s: 1.0, values: vec![5.0, 5.0, 10.0] };
//! let schedule = Schedule::new(series, Arrivals::Deterministic, 0).unwrap();
//! let offsets = schedule.offsets();
//! assert_eq!(offsets.len(), 20);
//! assert!((offsets[0] - 0.1).abs() < 1e-9); // half a spacing in
//! assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
//! ```

pub mod app;
pub mod error;
pub mod loadgen;

pub use error::{Error, Result};

/// Logs of the binaries: tracing to stderr (stdout carries their JSON lines), filtered by
/// `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}
