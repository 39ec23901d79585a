//! Load forecasting: the [`Forecaster`] trait, simple baselines and the LSTM forecaster.
//!
//! A forecaster looks at the history of one series sampled at a fixed step (request rate in
//! requests per second, or CPU usage in percent, as the trace gives it) and predicts its value
//! `horizon_steps` steps after the last observed point. Predictive agents feed the forecast (and
//! its uncertainty, where the forecaster gives one) into their observation.
//!
//! Modules:
//! - this module — [`Forecaster`], [`Forecast`], [`ForecastError`], [`check_finite`].
//! - [`baselines`] — [`LastValue`], [`SeasonalNaive`], [`Ewma`], [`HoltWinters`].
//! - [`lstm`] — [`LstmForecaster`] (burn, 3 stacked LSTM layers), with save and load.
//! - [`metrics`] — MAE, sMAPE, MASE and [`evaluate`] over a test window.
//!
//! ```
//! use agents::forecast::{evaluate, Forecaster, LastValue, SeasonalNaive};
//!
//! // A period-4 pattern: seasonal naive forecasts it exactly, last value does not.
//! let series: Vec<f64> = (0..40).map(|i| [1.0, 3.0, 5.0, 3.0][i % 4]).collect();
//! let (train, test) = series.split_at(24);
//! let mut seasonal = SeasonalNaive::new(4, 1).unwrap();
//! seasonal.fit(train).unwrap();
//! let scores = evaluate(&seasonal, train, test).unwrap();
//! assert_eq!((scores.n, scores.mae), (16, 0.0));
//! let mut last = LastValue::new(1).unwrap();
//! last.fit(train).unwrap();
//! // One step ahead the pattern moves by 2 every step: MAE 2, and MASE 1 (the scale is the
//! // training window's one-step naive MAE, also 2).
//! let scores = evaluate(&last, train, test).unwrap();
//! assert_eq!((scores.mae, scores.mase), (2.0, Some(1.0)));
//! ```

pub mod baselines;
pub mod lstm;
pub mod metrics;

pub use baselines::{Ewma, HoltWinters, LastValue, SeasonalNaive};
pub use lstm::{LstmForecaster, LstmForecasterConfig, LstmMode};
pub use metrics::{evaluate, mae, mase, smape, Scores};

use std::ops::Range;

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

    /// Forecasts `series[t]` for every target index `t` in `targets`, each from the history
    /// `series[..t + 1 - horizon_steps()]` only (the points up to `horizon_steps()` before the
    /// target), in order. The default calls [`Forecaster::forecast`] once per target; a
    /// forecaster may override it with an equal but faster computation.
    ///
    /// # Errors
    /// [`ForecastError::Config`] when a target lies at or past the end of `series`;
    /// [`ForecastError::TooShort`] when the history of the first target has fewer than
    /// `min_history()` points; [`ForecastError::NotFinite`] as [`Forecaster::forecast`].
    fn forecast_targets(
        &self,
        series: &[f64],
        targets: Range<usize>,
    ) -> Result<Vec<Forecast>, ForecastError> {
        check_targets(
            series.len(),
            &targets,
            self.horizon_steps(),
            self.min_history(),
        )?;
        targets
            .map(|t| self.forecast(&series[..t + 1 - self.horizon_steps()]))
            .collect()
    }
}

/// Checks that every target of `targets` lies inside a series of `len` points and that the
/// first one has a history (`target + 1 - horizon_steps` points) of at least `min_history`
/// points. Shared by [`Forecaster::forecast_targets`] implementations.
///
/// # Errors
/// [`ForecastError::Config`] for a target past the end, [`ForecastError::TooShort`] for a too
/// short history.
pub fn check_targets(
    len: usize,
    targets: &Range<usize>,
    horizon_steps: usize,
    min_history: usize,
) -> Result<(), ForecastError> {
    if targets.is_empty() {
        return Ok(());
    }
    if targets.end > len {
        return Err(ForecastError::Config(format!(
            "target index {} lies past the end of a series of {len} points",
            targets.end - 1
        )));
    }
    let got = (targets.start + 1).saturating_sub(horizon_steps);
    if got < min_history {
        return Err(ForecastError::TooShort {
            needed: min_history,
            got,
        });
    }
    Ok(())
}

/// Checks that every value of `values` is finite.
///
/// # Errors
/// [`ForecastError::NotFinite`] with the index (in `values`) and value of the first NaN or
/// infinite point.
pub fn check_finite(values: &[f64]) -> Result<(), ForecastError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(ForecastError::NotFinite {
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}
