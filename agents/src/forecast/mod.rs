//! Load forecasting: the [`Forecaster`] trait, simple baselines and the LSTM forecaster.
//!
//! A forecaster looks at the history of one series sampled at a fixed step (request rate in
//! requests per second, or CPU usage in percent, as the trace gives it) and predicts its value
//! `horizon_steps` steps after the last observed point. Predictive agents feed the forecast (and
//! its uncertainty, where the forecaster gives one) into their observation.
//!
//! Modules:
//! - this module — [`Forecaster`], [`Forecast`], [`ForecastError`].

/// One point forecast, in the unit of the series it was made from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// Predicted value `horizon_steps` steps after the last history point (series unit).
    pub mean: f64,
    /// Standard deviation of the forecast error where the forecaster estimates one (from its
    /// residuals on the training window), in the series unit; `None` otherwise.
    pub std: Option<f64>,
}

/// Errors of fitting, running, saving or loading a forecaster. None of them is raised on a
/// well-formed history of at least [`Forecaster::min_history`] points.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// The configuration is invalid (named field and what was expected).
    #[error("forecaster config: {0}")]
    Config(String),
    /// The history (or training series) is shorter than the forecaster needs.
    #[error("history of {got} points is shorter than the {needed} points this forecaster needs")]
    TooShort {
        /// Points needed.
        needed: usize,
        /// Points given.
        got: usize,
    },
    /// The input holds a NaN or infinite value at the given index.
    #[error("value at index {index} is not finite ({value})")]
    NotFinite {
        /// Index in the slice given.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A saved model cannot be read or does not match (file, and what is wrong).
    #[error("model {path}: {reason}")]
    Model {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A load forecaster over one series sampled at a fixed step.
///
/// `fit` learns from a training series; `forecast` predicts the value `horizon_steps()` steps
/// after the last point of `history` and only reads its last `min_history()` points (more are
/// allowed). Forecasting is deterministic: the same fitted state and history give the same
/// forecast. Implementations are `Send` so agents that hold one can run on worker threads.
pub trait Forecaster: Send {
    /// Short kebab-case name used in reports (`last-value`, `lstm`, ...).
    fn name(&self) -> &str;
    /// How many steps ahead of the last history point the forecast is (>= 1).
    fn horizon_steps(&self) -> usize;
    /// How many trailing history points `forecast` needs (>= 1).
    fn min_history(&self) -> usize;
    /// Learns from `train` (series unit, fixed step).
    ///
    /// # Errors
    /// [`ForecastError::TooShort`] when `train` is too short to fit, [`ForecastError::NotFinite`]
    /// on a NaN or infinite value.
    fn fit(&mut self, train: &[f64]) -> Result<(), ForecastError>;
    /// Forecasts `horizon_steps()` steps after the last point of `history`.
    ///
    /// # Errors
    /// [`ForecastError::TooShort`] when `history` has fewer than `min_history()` points,
    /// [`ForecastError::NotFinite`] on a NaN or infinite value in the points read.
    fn forecast(&self, history: &[f64]) -> Result<Forecast, ForecastError>;
}
