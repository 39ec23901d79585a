//! The simulator's error type.

use std::path::PathBuf;

/// Everything that can go wrong while building or running a simulation.
///
/// None of these is raised mid-run by a valid scenario: configs and traces are validated up
/// front, so a run that started finishes. Each variant says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario field has an invalid value (`field` is its dotted path, e.g.
    /// `deployment.min_replicas`). The run cannot start.
    #[error("invalid config value for `{field}`: {message}")]
    InvalidConfig {
        /// Dotted path of the field.
        field: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A trace file could not be opened or read. The run cannot start.
    #[error("cannot read trace {path}")]
    TraceIo {
        /// The trace file.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A trace file is malformed: bad header, unparsable or invalid number, timestamps that go
    /// backwards. `line` is 1-based (the header is line 1). The run cannot start.
    #[error("{path}:{line}: {message}")]
    TraceFormat {
        /// The trace file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The selected trace window holds no data (empty file, window past the end, zero
    /// duration). The run cannot start.
    #[error("empty trace window in {path}: {message}")]
    EmptyWindow {
        /// The trace file (or `<pattern>` for synthetic workloads).
        path: PathBuf,
        /// Which window and why it is empty.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds [`Error::InvalidConfig`].
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            message: message.into(),
        }
    }
}
