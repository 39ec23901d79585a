//! The open-loop load generator: replays a workload the simulator accepts (trace or pattern,
//! through [`sim::workload::WorkloadConfig`]) as HTTP requests.
//!
//! - [`source`]: the workload config (file + overrides) to a [`sim::trace::RateSeries`].
//! - [`schedule`]: [`Schedule`], arrival offsets from a series (Poisson or deterministic,
//!   seeded ChaCha8).
//! - [`run`](mod@run): [`run()`] (async) and [`run_blocking`]: fire every request at its instant.
//! - [`summary`]: the JSON [`Summary`] (`nimbusguard.loadgen/v1`).
//! - [`kafka`]: `--trigger` events produced to Kafka ([`KafkaSink`]).

pub mod kafka;
pub mod run;
pub mod schedule;
pub mod source;
pub mod summary;

pub use kafka::KafkaSink;
pub use run::{parse_target, run, run_blocking, RunOptions, Trigger};
pub use schedule::{Schedule, ScheduleIter};
pub use source::{Window, WorkloadSpec};
pub use summary::Summary;
