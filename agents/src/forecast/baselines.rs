//! Simple forecasters the LSTM must beat: [`LastValue`], [`SeasonalNaive`], [`Ewma`] and
//! additive [`HoltWinters`].
//!
//! Each forecasts the value `horizon_steps` steps after the last history point and, once
//! fitted, gives a `std`: the root mean square of its `horizon_steps`-ahead residuals on the
//! training window (the forecast error's standard deviation if the forecast is unbiased).
//! Before `fit` the std is `None`.
//!
//! Holt-Winters is written here rather than taken from a crate: `augurs-ets` (the augurs
//! project's ETS models) implements only non-seasonal AutoETS, so it lacks the seasonal model
//! this baseline needs. The formulas are those of Hyndman & Athanasopoulos, *Forecasting:
//! Principles and Practice* (3rd ed., 2021), section 8.3, "Holt-Winters' additive method".

use super::{check_finite, Forecast, ForecastError, Forecaster};

/// Checks `horizon_steps >= 1`.
fn check_horizon(horizon_steps: usize) -> Result<(), ForecastError> {
    if horizon_steps == 0 {
        Err(ForecastError::Config(
            "horizon_steps: expected at least 1 step ahead, got 0".into(),
        ))
    } else {
        Ok(())
    }
}

/// The trailing `min_history` points of `history`, checked for length and finiteness.
fn tail(history: &[f64], min_history: usize) -> Result<&[f64], ForecastError> {
    if history.len() < min_history {
        return Err(ForecastError::TooShort {
            needed: min_history,
            got: history.len(),
        });
    }
    let start = history.len() - min_history;
    let tail = &history[start..];
    check_finite(tail).map_err(|e| match e {
        ForecastError::NotFinite { index, value } => ForecastError::NotFinite {
            index: index + start,
            value,
        },
        other => other,
    })?;
    Ok(tail)
}

/// Root mean square of `residuals`; `None` when there are none.
fn rms(residuals: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = residuals.fold((0.0, 0usize), |(s, n), r| (s + r * r, n + 1));
    (n > 0).then(|| (sum / n as f64).sqrt())
}

/// Checks a training series: finite and at least `needed` points long.
fn check_train(train: &[f64], needed: usize) -> Result<(), ForecastError> {
    check_finite(train)?;
    if train.len() < needed {
        return Err(ForecastError::TooShort {
            needed,
            got: train.len(),
        });
    }
    Ok(())
}

/// The naive forecast: the last observed value, `y_hat[t+h] = y[t]` (`last-value`).
#[derive(Debug, Clone, PartialEq)]
pub struct LastValue {
    horizon_steps: usize,
    residual_std: Option<f64>,
}

impl LastValue {
    /// A last-value forecaster `horizon_steps` ahead.
    ///
    /// # Errors
    /// [`ForecastError::Config`] when `horizon_steps` is 0.
    pub fn new(horizon_steps: usize) -> Result<Self, ForecastError> {
        check_horizon(horizon_steps)?;
        Ok(Self {
            horizon_steps,
            residual_std: None,
        })
    }
}

impl Forecaster for LastValue {
    fn name(&self) -> &str {
        "last-value"
    }
    fn horizon_steps(&self) -> usize {
        self.horizon_steps
    }
    fn min_history(&self) -> usize {
        1
    }
    /// Estimates the std from `y[t] - y[t-h]` over the training window; needs `h + 1` points.
    fn fit(&mut self, train: &[f64]) -> Result<(), ForecastError> {
        let h = self.horizon_steps;
        check_train(train, h + 1)?;
        self.residual_std = rms(train.windows(h + 1).map(|w| w[h] - w[0]));
        Ok(())
    }
    fn forecast(&self, history: &[f64]) -> Result<Forecast, ForecastError> {
        let last = tail(history, 1)?[0];
        Ok(Forecast {
            mean: last,
            std: self.residual_std,
        })
    }
}

/// The seasonal naive forecast (`seasonal-naive`): the value observed at the same phase of the
/// last complete period before the target, `y_hat[t+h] = y[t + h - k*m]` with
/// `k = ceil(h / m)` (so the value read is at or before `t`) and `m = period_steps`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeasonalNaive {
    period_steps: usize,
    horizon_steps: usize,
    residual_std: Option<f64>,
}

impl SeasonalNaive {
    /// A seasonal naive forecaster with a period of `period_steps` steps (e.g. 1440 for a daily
    /// period at 1-minute steps), `horizon_steps` ahead.
    ///
    /// # Errors
    /// [`ForecastError::Config`] when `period_steps` or `horizon_steps` is 0.
    pub fn new(period_steps: usize, horizon_steps: usize) -> Result<Self, ForecastError> {
        check_horizon(horizon_steps)?;
        if period_steps == 0 {
            return Err(ForecastError::Config(
                "period_steps: expected a seasonal period of at least 1 step, got 0".into(),
            ));
        }
        Ok(Self {
            period_steps,
            horizon_steps,
            residual_std: None,
        })
    }

    /// How far back from the target the value read lies: `k*m`, `k = ceil(h/m)`.
    fn lag(&self) -> usize {
        self.horizon_steps.div_ceil(self.period_steps) * self.period_steps
    }
}

impl Forecaster for SeasonalNaive {
    fn name(&self) -> &str {
        "seasonal-naive"
    }
    fn horizon_steps(&self) -> usize {
        self.horizon_steps
    }
    /// `k*m - h + 1`: the value read is the `(k*m - h + 1)`-th last point.
    fn min_history(&self) -> usize {
        self.lag() - self.horizon_steps + 1
    }
    /// Estimates the std from `y[t] - y[t - k*m]`; needs `k*m + 1` points.
    fn fit(&mut self, train: &[f64]) -> Result<(), ForecastError> {
        let lag = self.lag();
        check_train(train, lag + 1)?;
        self.residual_std = rms(train.windows(lag + 1).map(|w| w[lag] - w[0]));
        Ok(())
    }
    fn forecast(&self, history: &[f64]) -> Result<Forecast, ForecastError> {
        let window = tail(history, self.min_history())?;
        Ok(Forecast {
            mean: window[0],
            std: self.residual_std,
        })
    }
}

/// Exponentially weighted moving average (`ewma`, simple exponential smoothing, FPP3 8.1): the
/// level `l_t = alpha * y_t + (1 - alpha) * l_{t-1}` is the (flat) forecast for every horizon.
///
/// The level starts at the first point of the trailing window of
/// [`Forecaster::min_history`] points, long enough that the start's weight `(1 - alpha)^n`
/// is below [`Ewma::START_WEIGHT`].
#[derive(Debug, Clone, PartialEq)]
pub struct Ewma {
    alpha: f64,
    horizon_steps: usize,
    window: usize,
    residual_std: Option<f64>,
}

impl Ewma {
    /// Largest weight the level's starting point keeps after the window: `(1-alpha)^n < 1e-3`.
    pub const START_WEIGHT: f64 = 1e-3;
    /// Longest window read, whatever `alpha` (reached for `alpha` below about 0.0007).
    pub const MAX_WINDOW: usize = 10_000;

    /// An EWMA forecaster with smoothing weight `alpha` in `(0, 1]` (1 = last value),
    /// `horizon_steps` ahead.
    ///
    /// # Errors
    /// [`ForecastError::Config`] when `alpha` is outside `(0, 1]` or `horizon_steps` is 0.
    pub fn new(alpha: f64, horizon_steps: usize) -> Result<Self, ForecastError> {
        check_horizon(horizon_steps)?;
        if !(alpha > 0.0 && alpha <= 1.0) {
            return Err(ForecastError::Config(format!(
                "alpha: expected a smoothing weight in (0, 1], got {alpha}"
            )));
        }
        // n = ceil(ln(w) / ln(1 - alpha)) so that (1 - alpha)^n <= w.
        let window = if alpha >= 1.0 {
            1
        } else {
            let n = (Self::START_WEIGHT.ln() / (1.0 - alpha).ln()).ceil();
            (n as usize).clamp(1, Self::MAX_WINDOW)
        };
        Ok(Self {
            alpha,
            horizon_steps,
            window,
            residual_std: None,
        })
    }

    /// The smoothing weight.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The level after running the recursion over `window` (first point = start level).
    fn level(&self, window: &[f64]) -> f64 {
        window[1..]
            .iter()
            .fold(window[0], |l, &y| self.alpha * y + (1.0 - self.alpha) * l)
    }
}

impl Forecaster for Ewma {
    fn name(&self) -> &str {
        "ewma"
    }
    fn horizon_steps(&self) -> usize {
        self.horizon_steps
    }
    fn min_history(&self) -> usize {
        self.window
    }
    /// Estimates the std from `y[t+h] - l_t`, running the level over the whole training
    /// window from its first point; needs `h + 1` points.
    fn fit(&mut self, train: &[f64]) -> Result<(), ForecastError> {
        let h = self.horizon_steps;
        check_train(train, h + 1)?;
        let mut level = train[0];
        let mut residuals = Vec::with_capacity(train.len() - h);
        for t in 0..train.len() - h {
            if t > 0 {
                level = self.alpha * train[t] + (1.0 - self.alpha) * level;
            }
            // Skip the warm-up, where the level still remembers its start.
            if t + 1 >= self.window.min(train.len() - h) {
                residuals.push(train[t + h] - level);
            }
        }
        self.residual_std = rms(residuals.into_iter());
        Ok(())
    }
    fn forecast(&self, history: &[f64]) -> Result<Forecast, ForecastError> {
        // A history shorter than the window still gives a forecast (the level from its
        // first point), so an EWMA works from the first observation.
        let n = history.len().min(self.window).max(1);
        let window = tail(history, n)?;
        Ok(Forecast {
            mean: self.level(window),
            std: self.residual_std,
        })
    }
}

/// Smoothing parameters of [`HoltWinters`]: level `alpha`, trend `beta` (FPP3's `beta*`) and
/// season `gamma`, each in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HoltWintersParams {
    /// Level smoothing weight.
    pub alpha: f64,
    /// Trend (slope) smoothing weight, FPP3's `beta*`.
    pub beta: f64,
    /// Seasonal smoothing weight, `0 <= gamma <= 1 - alpha` in FPP3.
    pub gamma: f64,
}

/// Additive Holt-Winters (`holt-winters`; FPP3 8.3) with period `m`:
///
/// ```text
/// l_t = alpha (y_t - s_{t-m}) + (1 - alpha)(l_{t-1} + b_{t-1})
/// b_t = beta (l_t - l_{t-1}) + (1 - beta) b_{t-1}
/// s_t = gamma (y_t - l_{t-1} - b_{t-1}) + (1 - gamma) s_{t-m}
/// y_hat[t+h|t] = l_t + h b_t + s_{t+h-m(k+1)},  k = floor((h-1)/m)
/// ```
///
/// Initial state (the classical heuristic, FPP3 8.3 / Hyndman et al. 2008 section 2.6): level
/// `l_0` = mean of the first period, trend `b_0` = (mean of the second period - mean of the
/// first) / m, seasonal terms `s_i = y_i - l_0` for the first period; the recursion then runs
/// from the second period on. A forecast re-runs it over the trailing
/// [`HoltWinters::history_periods`] periods of its history, so it uses no state beyond
/// its input.
///
/// [`Forecaster::fit`] picks `(alpha, beta, gamma)` from a grid (alpha in {0.01 .. 0.9},
/// beta in {0 .. 0.2}, gamma in {0 .. 0.5} with `gamma <= 1 - alpha`) minimising the squared
/// `h`-step-ahead error over the training window, after a warm-up of two periods. Until fitted
/// (or given parameters with [`HoltWinters::with_params`]) it uses alpha 0.2, beta 0.01,
/// gamma 0.1.
#[derive(Debug, Clone, PartialEq)]
pub struct HoltWinters {
    period_steps: usize,
    horizon_steps: usize,
    history_periods: usize,
    params: HoltWintersParams,
    fit_params: bool,
    residual_std: Option<f64>,
}

/// Grids searched by [`HoltWinters`]' fit.
const ALPHAS: [f64; 9] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
const BETAS: [f64; 5] = [0.0, 0.005, 0.02, 0.05, 0.2];
const GAMMAS: [f64; 6] = [0.0, 0.02, 0.05, 0.1, 0.2, 0.5];

impl HoltWinters {
    /// Default number of trailing periods a forecast reads.
    pub const DEFAULT_HISTORY_PERIODS: usize = 4;

    /// An additive Holt-Winters forecaster with period `period_steps` (at least 2), `horizon_steps`
    /// ahead, whose `fit` estimates the smoothing parameters; forecasts read
    /// [`HoltWinters::DEFAULT_HISTORY_PERIODS`] periods.
    ///
    /// # Errors
    /// [`ForecastError::Config`] when `period_steps < 2` or `horizon_steps` is 0.
    pub fn new(period_steps: usize, horizon_steps: usize) -> Result<Self, ForecastError> {
        check_horizon(horizon_steps)?;
        if period_steps < 2 {
            return Err(ForecastError::Config(format!(
                "period_steps: expected a seasonal period of at least 2 steps, got {period_steps}"
            )));
        }
        Ok(Self {
            period_steps,
            horizon_steps,
            history_periods: Self::DEFAULT_HISTORY_PERIODS,
            params: HoltWintersParams {
                alpha: 0.2,
                beta: 0.01,
                gamma: 0.1,
            },
            fit_params: true,
            residual_std: None,
        })
    }

    /// Fixes the smoothing parameters: `fit` then only estimates the std.
    ///
    /// # Errors
    /// [`ForecastError::Config`] when a parameter is outside `[0, 1]`.
    pub fn with_params(mut self, params: HoltWintersParams) -> Result<Self, ForecastError> {
        for (name, v) in [
            ("alpha", params.alpha),
            ("beta", params.beta),
            ("gamma", params.gamma),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ForecastError::Config(format!(
                    "{name}: expected a smoothing weight in [0, 1], got {v}"
                )));
            }
        }
        self.params = params;
        self.fit_params = false;
        Ok(self)
    }

    /// Sets how many trailing periods a forecast reads (at least 2: one to initialise, one to
    /// run).
    ///
    /// # Errors
    /// [`ForecastError::Config`] when `periods < 2`.
    pub fn with_history_periods(mut self, periods: usize) -> Result<Self, ForecastError> {
        if periods < 2 {
            return Err(ForecastError::Config(format!(
                "history_periods: expected at least 2 periods, got {periods}"
            )));
        }
        self.history_periods = periods;
        Ok(self)
    }

    /// The smoothing parameters in use (fitted ones after `fit`).
    pub fn params(&self) -> HoltWintersParams {
        self.params
    }

    /// How many trailing periods a forecast reads.
    pub fn history_periods(&self) -> usize {
        self.history_periods
    }

    /// Runs the recursion over `y` (at least two periods) with `p`; calls `on_step(t, fc)`
    /// after each point `t >= m` with the `h`-step forecast made at `t`, and returns the
    /// forecast made at the last point.
    fn run(&self, y: &[f64], p: HoltWintersParams, mut on_step: impl FnMut(usize, f64)) -> f64 {
        let m = self.period_steps;
        let h = self.horizon_steps;
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let mut level = mean(&y[..m]);
        let mut trend = (mean(&y[m..2 * m]) - level) / m as f64;
        let mut season: Vec<f64> = y[..m].iter().map(|v| v - level).collect();
        let mut forecast = level + h as f64 * trend + season[(m - 1 + h) % m];
        for (t, &yt) in y.iter().enumerate().skip(m) {
            let phase = t % m;
            let (prev_level, prev_trend) = (level, trend);
            level = p.alpha * (yt - season[phase]) + (1.0 - p.alpha) * (prev_level + prev_trend);
            trend = p.beta * (level - prev_level) + (1.0 - p.beta) * prev_trend;
            season[phase] =
                p.gamma * (yt - prev_level - prev_trend) + (1.0 - p.gamma) * season[phase];
            // The latest estimate of the target's phase is s_{t+h-m(k+1)}.
            forecast = level + h as f64 * trend + season[(t + h) % m];
            on_step(t, forecast);
        }
        forecast
    }
}

impl Forecaster for HoltWinters {
    fn name(&self) -> &str {
        "holt-winters"
    }
    fn horizon_steps(&self) -> usize {
        self.horizon_steps
    }
    /// `history_periods * period_steps`.
    fn min_history(&self) -> usize {
        self.history_periods * self.period_steps
    }
    /// Picks the smoothing parameters (unless fixed) and estimates the std, from the
    /// `h`-step errors at every point after the first two periods; needs `2m + h + 1` points.
    fn fit(&mut self, train: &[f64]) -> Result<(), ForecastError> {
        let (m, h) = (self.period_steps, self.horizon_steps);
        check_train(train, 2 * m + h + 1)?;
        let this = self.clone();
        let sse = |p: HoltWintersParams| {
            let (mut sum, mut n) = (0.0, 0usize);
            this.run(train, p, |t, fc| {
                if t + 1 >= 2 * m && t + h < train.len() {
                    let e = train[t + h] - fc;
                    sum += e * e;
                    n += 1;
                }
            });
            (sum, n)
        };
        if self.fit_params {
            let mut best: Option<(f64, HoltWintersParams)> = None;
            for &alpha in &ALPHAS {
                for &beta in &BETAS {
                    for &gamma in GAMMAS.iter().filter(|&&g| g <= 1.0 - alpha) {
                        let p = HoltWintersParams { alpha, beta, gamma };
                        let (s, _) = sse(p);
                        let better = best.is_none_or(|(b, _)| s.total_cmp(&b).is_lt());
                        if s.is_finite() && better {
                            best = Some((s, p));
                        }
                    }
                }
            }
            if let Some((_, p)) = best {
                self.params = p;
            }
        }
        let (s, n) = sse(self.params);
        self.residual_std = (n > 0 && s.is_finite()).then(|| (s / n as f64).sqrt());
        Ok(())
    }
    fn forecast(&self, history: &[f64]) -> Result<Forecast, ForecastError> {
        let window = tail(history, self.min_history())?;
        Ok(Forecast {
            mean: self.run(window, self.params, |_, _| {}),
            std: self.residual_std,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIES: [f64; 8] = [1.0, 2.0, 4.0, 3.0, 5.0, 6.0, 8.0, 7.0];

    #[test]
    fn last_value_forecasts_the_last_point_with_residual_std() {
        let mut f = LastValue::new(2).unwrap();
        assert!(f.forecast(&SERIES).unwrap().std.is_none());
        f.fit(&SERIES).unwrap();
        // Two-step residuals y[t] - y[t-2]: 3, 1, 1, 3, 3, 1 -> squares 9,1,1,9,9,1 = 30/6 = 5.
        let fc = f.forecast(&SERIES).unwrap();
        assert_eq!(fc.mean, 7.0);
        assert!((fc.std.unwrap() - 5f64.sqrt()).abs() < 1e-12);
        assert!(matches!(
            f.forecast(&[]),
            Err(ForecastError::TooShort { needed: 1, got: 0 })
        ));
        assert!(LastValue::new(0).is_err());
    }

    #[test]
    fn seasonal_naive_reads_the_same_phase_one_period_back() {
        // Period 4, one step ahead: the target t+1 is at the phase of index t+1-4 = t-3,
        // the 4th last point.
        let f = SeasonalNaive::new(4, 1).unwrap();
        assert_eq!(f.min_history(), 4);
        assert_eq!(f.forecast(&SERIES).unwrap().mean, 5.0);
        // Period 4, six steps ahead: k = ceil(6/4) = 2, lag 8 -> index t+6-8 = t-2, the third
        // last point; min history 8 - 6 + 1 = 3.
        let f = SeasonalNaive::new(4, 6).unwrap();
        assert_eq!(f.min_history(), 3);
        assert_eq!(f.forecast(&SERIES).unwrap().mean, 6.0);
        assert!(matches!(
            f.forecast(&[1.0, 2.0]),
            Err(ForecastError::TooShort { needed: 3, got: 2 })
        ));
        // Std from y[t] - y[t-4] with period 4, horizon 1: all four residuals are 4.
        let mut f = SeasonalNaive::new(4, 1).unwrap();
        f.fit(&SERIES).unwrap();
        assert_eq!(f.forecast(&SERIES).unwrap().std, Some(4.0));
    }

    #[test]
    fn ewma_runs_the_level_recursion() {
        // alpha 0.5: window = ceil(ln 1e-3 / ln 0.5) = ceil(9.97) = 10 points.
        let f = Ewma::new(0.5, 1).unwrap();
        assert_eq!(f.min_history(), 10);
        // Short history [2, 4, 8]: l = 2 -> 0.5*4 + 0.5*2 = 3 -> 0.5*8 + 0.5*3 = 5.5.
        assert_eq!(f.forecast(&[2.0, 4.0, 8.0]).unwrap().mean, 5.5);
        // alpha 1 is the last value.
        let f = Ewma::new(1.0, 3).unwrap();
        assert_eq!(f.forecast(&SERIES).unwrap().mean, 7.0);
        assert!(Ewma::new(0.0, 1).is_err());
        assert!(Ewma::new(1.5, 1).is_err());
        assert!(matches!(
            f.forecast(&[1.0, f64::NAN]),
            Err(ForecastError::NotFinite { index: 1, .. })
        ));
    }

    #[test]
    fn holt_winters_follows_the_fpp3_recursion() {
        // m = 2, h = 1, alpha = beta = gamma = 0.5, history [1, 3, 2, 5] (two periods).
        // Init: l0 = mean(1, 3) = 2; b0 = (mean(2, 5) - 2) / 2 = 0.75; s = [1-2, 3-2] = [-1, 1].
        // t=2 (phase 0, y=2): l = 0.5(2+1) + 0.5(2+0.75) = 2.875;
        //   b = 0.5(2.875-2) + 0.5(0.75) = 0.8125; s0 = 0.5(2-2-0.75) + 0.5(-1) = -0.875.
        // t=3 (phase 1, y=5): l = 0.5(5-1) + 0.5(2.875+0.8125) = 3.84375;
        //   b = 0.5(3.84375-2.875) + 0.5(0.8125) = 0.890625; s1 = 1.15625.
        // Forecast of t=4 (phase 0): l + b + s0 = 3.84375 + 0.890625 - 0.875 = 3.859375.
        let hw = HoltWinters::new(2, 1)
            .unwrap()
            .with_history_periods(2)
            .unwrap()
            .with_params(HoltWintersParams {
                alpha: 0.5,
                beta: 0.5,
                gamma: 0.5,
            })
            .unwrap();
        assert_eq!(hw.min_history(), 4);
        let fc = hw.forecast(&[7.0, 1.0, 3.0, 2.0, 5.0]).unwrap().mean;
        assert!((fc - 3.859375).abs() < 1e-12, "{fc}");
        // A purely seasonal series is a fixed point of the recursion (l = 10, b = 0, exact
        // seasonal terms) for any weights: forecasts are exact at every horizon.
        let y: Vec<f64> = (0..24)
            .map(|t| 10.0 + [2.0, -1.0, 0.0, -1.0][t % 4])
            .collect();
        for h in [1, 3, 6] {
            let hw = HoltWinters::new(4, h).unwrap();
            let fc = hw.forecast(&y).unwrap().mean;
            let want = 10.0 + [2.0, -1.0, 0.0, -1.0][(23 + h) % 4];
            assert!((fc - want).abs() < 1e-9, "h={h}: {fc} vs {want}");
        }
    }

    #[test]
    fn holt_winters_fit_beats_seasonal_naive_on_noisy_seasonal_data() {
        // A deterministic pseudo-noise (a multiplicative hash), period 6, slow trend.
        let noise = |t: usize| ((t * 2_654_435_761) % 1000) as f64 / 1000.0 - 0.5;
        let y: Vec<f64> = (0..300)
            .map(|t| {
                50.0 + 0.05 * t as f64 + 5.0 * [3.0, 1.0, 0.0, -1.0, -2.0, -1.0][t % 6] + noise(t)
            })
            .collect();
        let (train, test) = y.split_at(200);
        let mut hw = HoltWinters::new(6, 1).unwrap();
        hw.fit(train).unwrap();
        let mut sn = SeasonalNaive::new(6, 1).unwrap();
        sn.fit(train).unwrap();
        let hw_mae = crate::forecast::evaluate(&hw, train, test).unwrap().mae;
        let sn_mae = crate::forecast::evaluate(&sn, train, test).unwrap().mae;
        // Seasonal naive differences two noise draws (MAE about 0.33 for uniform noise plus
        // the trend's 0.3 per period); smoothing averages the noise out.
        assert!(
            hw_mae < 0.8 * sn_mae,
            "holt-winters {hw_mae} vs seasonal naive {sn_mae}"
        );
        assert!(hw.forecast(train).unwrap().std.is_some());
        assert!(matches!(
            HoltWinters::new(6, 1).unwrap().fit(&y[..12]),
            Err(ForecastError::TooShort {
                needed: 14,
                got: 12
            })
        ));
        assert!(HoltWinters::new(1, 1).is_err());
    }
}
