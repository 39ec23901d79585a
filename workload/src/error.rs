//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the workload app (starting or serving) and the load
/// generator (reading its inputs, running). Request-level failures of the app (bad parameters,
/// full queues) are HTTP answers, not errors; request-level failures of the load generator
/// (timeouts, refused connections, 5xx) are counted in its summary, not raised.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input (a CLI flag, a config field or a run option) has an invalid value; `field`
    /// names it (`--target`, `workload.pattern.rps`, `max_in_flight`). Nothing was started.
    #[error("invalid value for `{field}`: {message}")]
    InvalidInput {
        /// The flag (`--peak-rps`), config field or option that is wrong.
        field: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The workload (trace or pattern) could not be built by the simulator's pipeline: an
    /// invalid `[workload]` field, an unreadable or malformed trace, an empty window. Nothing was
    /// started.
    #[error(transparent)]
    Workload(#[from] sim::Error),
    /// A config file could not be read. Nothing was started.
    #[error("cannot read config {path}")]
    ConfigIo {
        /// The config file.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A config file is not valid TOML or its `[workload]` table does not parse (unknown or
    /// mistyped field). Nothing was started.
    #[error("{path}: {message}")]
    ConfigParse {
        /// The config file.
        path: PathBuf,
        /// What the TOML/serde parser reported (names the field).
        message: String,
    },
    /// The app could not bind its listening address. The app does not start.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for (`--listen`).
        addr: String,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while serving (accept loop error). The app stops.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
    /// The HTTP client or the async runtime could not be created. Nothing was started.
    #[error("cannot set up {what}")]
    Setup {
        /// What could not be created (`HTTP client`, `tokio runtime`).
        what: &'static str,
        /// Underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds [`Error::InvalidInput`].
    pub fn input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }
}
