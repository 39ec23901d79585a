//! Streaming anomaly detection: one value at a time, as an autoscaler sees its metrics at each
//! decision. This file reads top to bottom: the [`AnomalyDetector`] trait and its
//! [`AnomalyScore`], errors, the config enum, then the detectors [`RollingMad`] and
//! [`EwmaZscore`] (statistical) and [`ForecastResidual`] (learned), then tests.
//!
//! # References
//! - B. Iglewicz and D. C. Hoaglin, *How to Detect and Handle Outliers*, ASQC Basic References
//!   in Quality Control vol. 16 (1993): the modified z-score `0.6745 (x - median) / MAD` and the
//!   cut-off 3.5 (our default threshold for every detector). `0.6745` is the 0.75 quantile of
//!   the standard normal, so `MAD / 0.6745` estimates the standard deviation of normal data.
//! - T. Finch, "Incremental calculation of weighted mean and variance", University of Cambridge
//!   Computing Service (2009), section 9: the exponentially weighted mean and variance update.
//! - S. Ahmad, A. Lavin, S. Purdy, Z. Agha, "Unsupervised real-time anomaly detection for
//!   streaming data", *Neurocomputing* 262 (2017): the Numenta Anomaly Benchmark (NAB) whose
//!   labelled AWS traces `nimbusguard anomaly` evaluates these detectors on.
//!
//! # Conventions shared by every detector
//! 1. **Score.** [`AnomalyScore::score`] is a signed, standardised deviation of the new value
//!    from what the detector expected (robust z, z-score or standardised forecast residual),
//!    clamped to `±`[`MAX_SCORE`] so that it is always finite. A value is flagged when
//!    `|score| > threshold`.
//! 2. **Warm-up.** Until a detector has seen enough points (a full window, `warm_up` points, or
//!    `horizon_steps` points plus the forecaster's `min_history`), the score is 0 and nothing
//!    is flagged.
//! 3. **The new value is scored against the state before it**, then added to the state. Flagged
//!    values are added like any other (a lasting level shift is flagged for a while, then
//!    becomes the new normal).
//! 4. **Non-finite input** (NaN, ±infinity; a missing scrape, say) is never flagged and never
//!    panics: the detector returns [`AnomalyScore::NONE`] and ignores the value (its state is
//!    unchanged, so the next value is compared with the last finite ones).
//! 5. **Cost.** `observe` is O(window) at most and allocation-free once warm (the
//!    forecast-residual detector allocates only what its forecaster allocates). Detectors are
//!    `Send`, so agents holding one run on worker threads.
//! 6. **`reset`** starts a new stream (an episode): it forgets the observed values and keeps
//!    what was learned by [`AnomalyDetector::fit`].
//!
//! ```
//! use agents::anomaly::AnomalyDetectorConfig;
//!
//! let config: AnomalyDetectorConfig =
//!     serde_json::from_str(r#"{"kind": "rolling-mad", "window": 5}"#).unwrap();
//! let mut detector = config.build().unwrap();
//! for v in [10.0, 11.0, 9.0, 10.5, 10.0] {
//!     assert!(!detector.observe(v).flagged); // warming up, then in line with the window
//! }
//! // Window 10, 11, 9, 10.5, 10: median 10, MAD 0.5; robust z = 0.6745 * (50 - 10) / 0.5.
//! let spike = detector.observe(50.0);
//! assert!(spike.flagged);
//! assert!((spike.score - 53.96).abs() < 1e-9);
//! ```

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::forecast::{Forecast, ForecastError, Forecaster};

/// Largest magnitude of [`AnomalyScore::score`]; a deviation from a window with no spread at all
/// scores `±MAX_SCORE`. Thresholds must be below it.
pub const MAX_SCORE: f64 = 1e6;

/// Largest [`AnomalyDetectorConfig::RollingMad`] window (points), so that a typo cannot exhaust
/// memory: a week of 1-second samples is about 605 thousand points.
pub const MAX_WINDOW: usize = 1_000_000;

/// `MAD / MAD_TO_SIGMA` estimates the standard deviation of normal data (Iglewicz & Hoaglin 1993:
/// the 0.75 quantile of the standard normal distribution, rounded as they print it).
pub const MAD_TO_SIGMA: f64 = 0.6745;

/// `sqrt(pi / 2)`: for normal data the standard deviation is this times the mean absolute
/// deviation. Used only when the MAD is 0 (more than half of a window equal to its median).
pub const MEAN_AD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// What a detector says about one observed value.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AnomalyScore {
    /// Signed standardised deviation from what the detector expected (unitless, in standard
    /// deviations), within `±`[`MAX_SCORE`]; 0 during warm-up and for non-finite input.
    pub score: f64,
    /// Whether `|score|` exceeded the detector's threshold (never during warm-up).
    pub flagged: bool,
}

impl AnomalyScore {
    /// Score 0, not flagged: the answer during warm-up and for non-finite input.
    pub const NONE: AnomalyScore = AnomalyScore {
        score: 0.0,
        flagged: false,
    };
}

/// A streaming anomaly detector over one series (request rate in requests per second, CPU in
/// percent, ...): call [`observe`](AnomalyDetector::observe) once per new value, in time order.
/// See the [module docs](self) for the conventions every implementation follows.
pub trait AnomalyDetector: Send {
    /// Short kebab-case name for reports (`rolling-mad`, `ewma-zscore`,
    /// `forecast-residual/<forecaster>`).
    fn name(&self) -> &str;
    /// Scores `value` against the values observed before it, then adds it to the state.
    fn observe(&mut self, value: f64) -> AnomalyScore;
    /// Starts a new stream: forgets observed values, keeps what [`fit`](Self::fit) learned.
    fn reset(&mut self);
    /// Learns from a training series (same unit and step as the stream) and starts a new
    /// stream. The statistical detectors learn nothing: their default does nothing.
    ///
    /// # Errors
    /// [`AnomalyError::Forecast`] or [`AnomalyError::TrainingTooShort`] from detectors that
    /// learn ([`ForecastResidual`]).
    fn fit(&mut self, train: &[f64]) -> Result<(), AnomalyError> {
        let _ = train;
        Ok(())
    }
}

/// Errors of building or training a detector. `observe` never fails. None of these lets the
/// detector run: fix the config or the training series.
#[derive(Debug, thiserror::Error)]
pub enum AnomalyError {
    /// A config field is out of range or does not fit the detector kind.
    #[error("anomaly detector config: `{field}` {message}")]
    Config {
        /// The field, as spelled in the config file.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The forecaster of a forecast-residual detector could not be fitted or could not
    /// forecast on its training series.
    #[error("forecast-residual detector: {0}")]
    Forecast(#[from] ForecastError),
    /// The training series leaves no point to compute a forecast residual on.
    #[error(
        "forecast-residual detector: a training series of {got} points has no residual to \
         estimate a scale from; it needs at least {needed} (min_history + horizon_steps)"
    )]
    TrainingTooShort {
        /// Points needed.
        needed: usize,
        /// Points given.
        got: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// How a [`ForecastResidual`] detector turns a residual (actual - forecast, series unit) into a
/// score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResidualScale {
    /// Divide by a robust standard deviation of the residuals on the training window
    /// (`1.4826 x` their MAD; their RMS if the MAD is 0). The default.
    #[default]
    Training,
    /// Divide by the forecast's own [`Forecast::std`]; where the forecaster gives none, fall
    /// back to the training scale.
    ForecastStd,
}

fn default_window() -> usize {
    60
}
fn default_threshold() -> f64 {
    3.5
}
fn default_alpha() -> f64 {
    0.05
}
fn default_warm_up() -> usize {
    30
}

/// A detector and its parameters, as written in a config file (`kind = "rolling-mad"`, ...).
/// Every field has a default. Build with [`build`](Self::build) (statistical kinds) or
/// [`build_with_forecaster`](Self::build_with_forecaster) (`forecast-residual`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AnomalyDetectorConfig {
    /// [`RollingMad`]: robust z-score against the median and MAD of the last `window` points.
    RollingMad {
        /// Points in the rolling window (>= 3, <= [`MAX_WINDOW`]); default 60 (15 minutes of
        /// 15-second decisions). Nothing is flagged before the window is full.
        #[serde(default = "default_window")]
        window: usize,
        /// Flag when `|robust z| > threshold`; in `(0, MAX_SCORE)`; default 3.5 (Iglewicz &
        /// Hoaglin 1993).
        #[serde(default = "default_threshold")]
        threshold: f64,
    },
    /// [`EwmaZscore`]: z-score against an exponentially weighted mean and variance.
    EwmaZscore {
        /// Weight of the newest point, in `(0, 1]`; default 0.05 (a memory of about
        /// `2 / alpha - 1 = 39` points).
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Flag when `|z| > threshold`; in `(0, MAX_SCORE)`; default 3.5.
        #[serde(default = "default_threshold")]
        threshold: f64,
        /// Points observed before anything is scored or flagged (>= 2); default 30.
        #[serde(default = "default_warm_up")]
        warm_up: usize,
    },
    /// [`ForecastResidual`]: standardised residual of a forecast made `horizon_steps` earlier.
    /// The forecaster itself is passed to
    /// [`build_with_forecaster`](AnomalyDetectorConfig::build_with_forecaster).
    ForecastResidual {
        /// Flag when `|residual / scale| > threshold`; in `(0, MAX_SCORE)`; default 3.5.
        #[serde(default = "default_threshold")]
        threshold: f64,
        /// How the residual is scaled; default `training`.
        #[serde(default)]
        scale: ResidualScale,
    },
}

impl Default for AnomalyDetectorConfig {
    /// A rolling MAD detector with its default window and threshold.
    fn default() -> Self {
        AnomalyDetectorConfig::RollingMad {
            window: default_window(),
            threshold: default_threshold(),
        }
    }
}

impl AnomalyDetectorConfig {
    /// The config's `kind`, as spelled in config files.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RollingMad { .. } => "rolling-mad",
            Self::EwmaZscore { .. } => "ewma-zscore",
            Self::ForecastResidual { .. } => "forecast-residual",
        }
    }

    /// Whether this kind needs a forecaster ([`build_with_forecaster`](Self::build_with_forecaster)).
    pub fn needs_forecaster(&self) -> bool {
        matches!(self, Self::ForecastResidual { .. })
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`AnomalyError::Config`] naming the first bad field: `window` outside
    /// `[3, MAX_WINDOW]`, a `threshold` not in `(0, MAX_SCORE)` (NaN included), `alpha` not in
    /// `(0, 1]`, `warm_up` below 2.
    pub fn validate(&self) -> Result<(), AnomalyError> {
        let err = |field, message: String| Err(AnomalyError::Config { field, message });
        let threshold = match *self {
            Self::RollingMad { window, threshold } => {
                if !(3..=MAX_WINDOW).contains(&window) {
                    return err(
                        "window",
                        format!("must be in [3, {MAX_WINDOW}], got {window}"),
                    );
                }
                threshold
            }
            Self::EwmaZscore {
                alpha,
                threshold,
                warm_up,
            } => {
                if !(alpha > 0.0 && alpha <= 1.0) {
                    return err("alpha", format!("must be in (0, 1], got {alpha}"));
                }
                if warm_up < 2 {
                    return err("warm_up", format!("must be at least 2, got {warm_up}"));
                }
                threshold
            }
            Self::ForecastResidual { threshold, .. } => threshold,
        };
        if !(threshold > 0.0 && threshold < MAX_SCORE) {
            return err(
                "threshold",
                format!("must be in (0, {MAX_SCORE}), got {threshold}"),
            );
        }
        Ok(())
    }

    /// Builds a statistical detector ([`RollingMad`] or [`EwmaZscore`]).
    ///
    /// # Errors
    /// The errors of [`validate`](Self::validate); [`AnomalyError::Config`] on `forecaster` for
    /// a `forecast-residual` config, which needs
    /// [`build_with_forecaster`](Self::build_with_forecaster).
    pub fn build(&self) -> Result<Box<dyn AnomalyDetector>, AnomalyError> {
        self.validate()?;
        match *self {
            Self::RollingMad { window, threshold } => {
                Ok(Box::new(RollingMad::new(window, threshold)?))
            }
            Self::EwmaZscore {
                alpha,
                threshold,
                warm_up,
            } => Ok(Box::new(EwmaZscore::new(alpha, threshold, warm_up)?)),
            Self::ForecastResidual { .. } => Err(AnomalyError::Config {
                field: "forecaster",
                message: "is needed by a forecast-residual detector: build it with \
                          build_with_forecaster"
                    .into(),
            }),
        }
    }

    /// Builds a [`ForecastResidual`] detector around `forecaster` (fit it with
    /// [`AnomalyDetector::fit`] before use).
    ///
    /// # Errors
    /// The errors of [`validate`](Self::validate); [`AnomalyError::Config`] on `kind` for a
    /// statistical config, which takes no forecaster.
    pub fn build_with_forecaster(
        &self,
        forecaster: Box<dyn Forecaster>,
    ) -> Result<Box<dyn AnomalyDetector>, AnomalyError> {
        self.validate()?;
        match *self {
            Self::ForecastResidual { threshold, scale } => Ok(Box::new(ForecastResidual::new(
                forecaster, threshold, scale,
            )?)),
            _ => Err(AnomalyError::Config {
                field: "kind",
                message: format!("`{}` takes no forecaster", self.kind()),
            }),
        }
    }
}

/// `dev / scale`, clamped to `±MAX_SCORE`; 0 when `dev` is 0 (also for a zero scale), and
/// `±MAX_SCORE` for a non-zero `dev` over a zero scale.
fn standardise(dev: f64, scale: f64) -> f64 {
    if dev == 0.0 {
        0.0
    } else if scale > 0.0 {
        (dev / scale).clamp(-MAX_SCORE, MAX_SCORE)
    } else {
        MAX_SCORE.copysign(dev)
    }
}

/// Median of `values` (non-empty), reordering them: O(n) with `select_nth_unstable_by`.
fn median_in_place(values: &mut [f64]) -> f64 {
    let n = values.len();
    let (lower, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let below = lower
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .unwrap_or(upper);
        (below + upper) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------
// Rolling median / MAD
// ---------------------------------------------------------------------------------------------

/// Robust z-score against the last `window` points (Iglewicz & Hoaglin 1993):
/// `z = 0.6745 (x - median) / MAD`, with `MAD = median(|x_i - median|)` over the window.
///
/// Where the MAD is 0 (more than half of the window equal to its median), the scale falls
/// back to `1.2533 x` the mean absolute deviation from the median; where that is 0 too (every
/// point of the window equal), any other value scores `±`[`MAX_SCORE`]. The window is kept
/// twice, in arrival order (a ring) and sorted, so each step costs O(window) and allocates
/// nothing (both buffers are allocated once at `window` capacity).
#[derive(Debug, Clone)]
pub struct RollingMad {
    window: usize,
    threshold: f64,
    /// The window in arrival order; `head` is the oldest once full.
    ring: Vec<f64>,
    head: usize,
    /// The same values, sorted by `f64::total_cmp`.
    sorted: Vec<f64>,
    /// Scratch for the absolute deviations.
    scratch: Vec<f64>,
}

impl RollingMad {
    /// A detector over the last `window` points flagging `|robust z| > threshold`.
    ///
    /// # Errors
    /// [`AnomalyError::Config`] as in [`AnomalyDetectorConfig::validate`].
    pub fn new(window: usize, threshold: f64) -> Result<Self, AnomalyError> {
        AnomalyDetectorConfig::RollingMad { window, threshold }.validate()?;
        Ok(Self {
            window,
            threshold,
            ring: Vec::with_capacity(window),
            head: 0,
            sorted: Vec::with_capacity(window),
            scratch: Vec::with_capacity(window),
        })
    }

    /// Median and scale (an estimate of the standard deviation, series unit) of the full
    /// window; the scale is 0 only when every point of the window is equal.
    fn median_and_scale(&mut self) -> (f64, f64) {
        let n = self.sorted.len();
        let median = if n % 2 == 1 {
            self.sorted[n / 2]
        } else {
            (self.sorted[n / 2 - 1] + self.sorted[n / 2]) / 2.0
        };
        self.scratch.clear();
        self.scratch
            .extend(self.sorted.iter().map(|v| (v - median).abs()));
        let mean_ad = self.scratch.iter().sum::<f64>() / n as f64;
        let mad = median_in_place(&mut self.scratch);
        let scale = if mad > 0.0 {
            mad / MAD_TO_SIGMA
        } else {
            MEAN_AD_TO_SIGMA * mean_ad
        };
        (median, scale)
    }

    /// Adds `x` to the window, dropping the oldest point once full.
    fn push(&mut self, x: f64) {
        if self.ring.len() == self.window {
            let old = std::mem::replace(&mut self.ring[self.head], x);
            self.head = (self.head + 1) % self.window;
            if let Ok(i) = self.sorted.binary_search_by(|p| p.total_cmp(&old)) {
                self.sorted.remove(i);
            }
        } else {
            self.ring.push(x);
        }
        let at = self
            .sorted
            .partition_point(|p| p.total_cmp(&x) == std::cmp::Ordering::Less);
        self.sorted.insert(at, x);
    }
}

impl AnomalyDetector for RollingMad {
    fn name(&self) -> &str {
        "rolling-mad"
    }

    fn observe(&mut self, value: f64) -> AnomalyScore {
        if !value.is_finite() {
            return AnomalyScore::NONE;
        }
        let result = if self.sorted.len() == self.window {
            let (median, scale) = self.median_and_scale();
            let score = standardise(value - median, scale);
            AnomalyScore {
                score,
                flagged: score.abs() > self.threshold,
            }
        } else {
            AnomalyScore::NONE
        };
        self.push(value);
        result
    }

    fn reset(&mut self) {
        self.ring.clear();
        self.sorted.clear();
        self.head = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// EWMA z-score
// ---------------------------------------------------------------------------------------------

/// z-score against an exponentially weighted moving mean and variance (Finch 2009):
/// `z = (x - mean) / sqrt(var)` with the estimates before `x`, then
///
/// ```text
/// diff = x - mean;  mean <- mean + alpha * diff;  var <- (1 - alpha) * (var + alpha * diff^2)
/// ```
///
/// The first point sets `mean = x`, `var = 0`. Nothing is scored before `warm_up` points have
/// been observed. O(1) per step, no allocation.
#[derive(Debug, Clone)]
pub struct EwmaZscore {
    alpha: f64,
    threshold: f64,
    warm_up: usize,
    mean: f64,
    var: f64,
    seen: usize,
}

impl EwmaZscore {
    /// A detector with weight `alpha` on the newest point, flagging `|z| > threshold` once
    /// `warm_up` points have been seen.
    ///
    /// # Errors
    /// [`AnomalyError::Config`] as in [`AnomalyDetectorConfig::validate`].
    pub fn new(alpha: f64, threshold: f64, warm_up: usize) -> Result<Self, AnomalyError> {
        AnomalyDetectorConfig::EwmaZscore {
            alpha,
            threshold,
            warm_up,
        }
        .validate()?;
        Ok(Self {
            alpha,
            threshold,
            warm_up,
            mean: 0.0,
            var: 0.0,
            seen: 0,
        })
    }

    /// The current weighted mean and variance (series unit and its square); `None` before the
    /// first point.
    pub fn estimates(&self) -> Option<(f64, f64)> {
        (self.seen > 0).then_some((self.mean, self.var))
    }
}

impl AnomalyDetector for EwmaZscore {
    fn name(&self) -> &str {
        "ewma-zscore"
    }

    fn observe(&mut self, value: f64) -> AnomalyScore {
        if !value.is_finite() {
            return AnomalyScore::NONE;
        }
        if self.seen == 0 {
            self.mean = value;
            self.var = 0.0;
            self.seen = 1;
            return AnomalyScore::NONE;
        }
        let diff = value - self.mean;
        let result = if self.seen >= self.warm_up {
            let score = standardise(diff, self.var.sqrt());
            AnomalyScore {
                score,
                flagged: score.abs() > self.threshold,
            }
        } else {
            AnomalyScore::NONE
        };
        let incr = self.alpha * diff;
        self.mean += incr;
        self.var = (1.0 - self.alpha) * (self.var + diff * incr);
        self.seen = self.seen.saturating_add(1);
        result
    }

    fn reset(&mut self) {
        self.mean = 0.0;
        self.var = 0.0;
        self.seen = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// Forecast residual (learned)
// ---------------------------------------------------------------------------------------------

/// Flags values far from what a [`Forecaster`] predicted for them `horizon_steps` earlier.
///
/// [`fit`](AnomalyDetector::fit) fits the forecaster on the training series, then replays it:
/// every point `t >= min_history + horizon - 1` gets the residual `train[t] - forecast` of the
/// forecast made from `train[..=t - horizon]`, and the residual scale is `1.4826 x` their MAD
/// (robust to anomalies in the training window; their RMS where the MAD is 0). While
/// streaming, each value is scored as `(value - forecast.mean) / scale` against the forecast
/// made `horizon_steps` values earlier, with the scale of [`ResidualScale`]. Until a forecast
/// is due (the first `min_history + horizon - 1` values of a stream), or when no scale is known
/// (not fitted and no forecast `std`), the score is 0. Forecast errors (none on finite input of
/// `min_history` points) count as no forecast.
///
/// Each step keeps the last `min_history` values in a ring (made contiguous in place, no
/// allocation) and `horizon_steps` pending forecasts; its cost is one forecast.
pub struct ForecastResidual {
    forecaster: Box<dyn Forecaster>,
    name: String,
    threshold: f64,
    scale_mode: ResidualScale,
    /// Residual scale from the training window (series unit), once fitted.
    train_scale: Option<f64>,
    history: VecDeque<f64>,
    /// Forecasts for the next `horizon_steps` values, oldest (due next) first.
    pending: VecDeque<Option<Forecast>>,
}

impl std::fmt::Debug for ForecastResidual {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForecastResidual")
            .field("name", &self.name)
            .field("threshold", &self.threshold)
            .field("scale_mode", &self.scale_mode)
            .field("train_scale", &self.train_scale)
            .field("history_len", &self.history.len())
            .finish_non_exhaustive()
    }
}

impl ForecastResidual {
    /// A detector around `forecaster` (fitted by [`fit`](AnomalyDetector::fit), not here),
    /// flagging `|residual / scale| > threshold`.
    ///
    /// # Errors
    /// [`AnomalyError::Config`] on `threshold` as in [`AnomalyDetectorConfig::validate`], or
    /// on `forecaster` if its `horizon_steps()` or `min_history()` is 0 or its window is over
    /// [`MAX_WINDOW`].
    pub fn new(
        forecaster: Box<dyn Forecaster>,
        threshold: f64,
        scale: ResidualScale,
    ) -> Result<Self, AnomalyError> {
        AnomalyDetectorConfig::ForecastResidual { threshold, scale }.validate()?;
        let (h, m) = (forecaster.horizon_steps(), forecaster.min_history());
        if h == 0 || m == 0 || h > MAX_WINDOW || m > MAX_WINDOW {
            return Err(AnomalyError::Config {
                field: "forecaster",
                message: format!(
                    "`{}` has horizon_steps {h} and min_history {m}; both must be in \
                     [1, {MAX_WINDOW}]",
                    forecaster.name()
                ),
            });
        }
        Ok(Self {
            name: format!("forecast-residual/{}", forecaster.name()),
            threshold,
            scale_mode: scale,
            train_scale: None,
            history: VecDeque::with_capacity(m),
            pending: VecDeque::with_capacity(h),
            forecaster,
        })
    }

    /// The residual scale estimated on the training window (series unit); `None` before
    /// [`fit`](AnomalyDetector::fit).
    pub fn train_scale(&self) -> Option<f64> {
        self.train_scale
    }

    /// The wrapped forecaster.
    pub fn forecaster(&self) -> &dyn Forecaster {
        self.forecaster.as_ref()
    }
}

/// Robust standard deviation of `residuals` (non-empty): `1.4826 x MAD`, or their RMS if the MAD
/// is 0. Reorders `residuals`.
fn robust_sigma(residuals: &mut [f64]) -> f64 {
    let rms = (residuals.iter().map(|r| r * r).sum::<f64>() / residuals.len() as f64).sqrt();
    let median = median_in_place(residuals);
    for r in residuals.iter_mut() {
        *r = (*r - median).abs();
    }
    let mad = median_in_place(residuals);
    if mad > 0.0 {
        mad / MAD_TO_SIGMA
    } else {
        rms
    }
}

impl AnomalyDetector for ForecastResidual {
    fn name(&self) -> &str {
        &self.name
    }

    fn observe(&mut self, value: f64) -> AnomalyScore {
        if !value.is_finite() {
            return AnomalyScore::NONE;
        }
        let horizon = self.forecaster.horizon_steps();
        let due = if self.pending.len() == horizon {
            self.pending.pop_front().flatten()
        } else {
            None
        };
        let result = match due {
            Some(f) => {
                let scale = match self.scale_mode {
                    ResidualScale::Training => self.train_scale,
                    ResidualScale::ForecastStd => f.std.or(self.train_scale),
                };
                match scale {
                    Some(s) => {
                        let score = standardise(value - f.mean, s);
                        AnomalyScore {
                            score,
                            flagged: score.abs() > self.threshold,
                        }
                    }
                    None => AnomalyScore::NONE,
                }
            }
            None => AnomalyScore::NONE,
        };
        if self.history.len() == self.forecaster.min_history() {
            self.history.pop_front();
        }
        self.history.push_back(value);
        let next = if self.history.len() == self.forecaster.min_history() {
            self.forecaster
                .forecast(self.history.make_contiguous())
                .ok()
        } else {
            None
        };
        self.pending.push_back(next);
        result
    }

    fn reset(&mut self) {
        self.history.clear();
        self.pending.clear();
    }

    fn fit(&mut self, train: &[f64]) -> Result<(), AnomalyError> {
        self.reset();
        self.forecaster.fit(train)?;
        let (h, m) = (
            self.forecaster.horizon_steps(),
            self.forecaster.min_history(),
        );
        let needed = m + h;
        if train.len() < needed {
            return Err(AnomalyError::TrainingTooShort {
                needed,
                got: train.len(),
            });
        }
        // Target t is forecast from train[..=t - h]; the first with min_history points is
        // t = m + h - 1. forecast_targets lets forecasters that batch (the LSTM) do so.
        let targets = needed - 1..train.len();
        let forecasts = self.forecaster.forecast_targets(train, targets.clone())?;
        let mut residuals: Vec<f64> = targets
            .zip(&forecasts)
            .map(|(t, f)| train[t] - f.mean)
            .collect();
        self.train_scale = Some(robust_sigma(&mut residuals));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
