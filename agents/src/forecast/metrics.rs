//! Forecast accuracy: MAE, sMAPE and MASE, and [`evaluate`], which rolls a forecaster over a
//! test window.
//!
//! Definitions (Hyndman & Koehler, "Another look at measures of forecast accuracy",
//! International Journal of Forecasting 22(4), 2006), with actuals `y_t`, forecasts `f_t` over
//! `n` test points:
//!
//! - `MAE = mean |y_t - f_t|`, in the series unit.
//! - `sMAPE = 100/n * sum 2|y_t - f_t| / (|y_t| + |f_t|)`, in percent from 0 to 200; a term
//!   with `y_t = f_t = 0` counts as 0 (a perfect forecast of an idle period). sMAPE is
//!   unstable near zero (a forecast of 0.01 for an actual 0 costs the full 200): read it with
//!   care on traces with idle periods.
//! - `MASE = MAE / Q`, where `Q = mean_{t=h..T-1} |y_t - y_{t-h}|` is the in-sample MAE of the
//!   naive forecast of the *same horizon* `h` on the training window `y_0..y_{T-1}`. This is
//!   Hyndman & Koehler's scaling with the `h`-step naive forecast instead of the one-step one
//!   (their eq. for non-seasonal series uses one step), so that MASE < 1 means "better than
//!   forecasting the last value", whatever the horizon; it equals the ratio of the
//!   forecaster's test MAE to the last-value forecaster's training MAE. `Q = 0` (a constant
//!   training window) leaves MASE undefined (`None`).

use super::{check_finite, Forecast, ForecastError, Forecaster};

/// Accuracy of one forecaster on one test window (JSON `{mae, smape, mase, n}`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Mean absolute error, series unit.
    pub mae: f64,
    /// Symmetric mean absolute percentage error, percent in `[0, 200]`.
    pub smape: f64,
    /// Mean absolute scaled error (scale: in-sample MAE of the naive forecast of the same
    /// horizon on the training window); `None` (JSON `null`) when that scale is 0.
    pub mase: Option<f64>,
    /// Number of forecasts scored.
    pub n: usize,
}

/// Mean absolute error of `forecast` against `actual` (equal lengths; 0 for empty input).
///
/// # Panics
/// Never; extra points of the longer slice are ignored.
pub fn mae(actual: &[f64], forecast: &[f64]) -> f64 {
    mean(actual.iter().zip(forecast).map(|(a, f)| (a - f).abs()))
}

/// Symmetric MAPE in percent (`[0, 200]`, 0/0 = 0; 0 for empty input). See the module docs.
pub fn smape(actual: &[f64], forecast: &[f64]) -> f64 {
    100.0
        * mean(actual.iter().zip(forecast).map(|(a, f)| {
            let denom = a.abs() + f.abs();
            if denom == 0.0 {
                0.0
            } else {
                2.0 * (a - f).abs() / denom
            }
        }))
}

/// The MASE scale: in-sample MAE of the `horizon_steps`-ahead naive forecast on `train`,
/// `mean_{t>=h} |train[t] - train[t-h]|`; `None` when `train` has at most `h` points or the
/// scale is 0 (or `h` is 0).
pub fn naive_scale(train: &[f64], horizon_steps: usize) -> Option<f64> {
    let h = horizon_steps;
    if h == 0 || train.len() <= h {
        return None;
    }
    let q = mean(train.windows(h + 1).map(|w| (w[h] - w[0]).abs()));
    (q > 0.0 && q.is_finite()).then_some(q)
}

/// Mean absolute scaled error: [`mae`] divided by [`naive_scale`] of `train` at
/// `horizon_steps`; `None` when the scale is undefined or 0.
pub fn mase(actual: &[f64], forecast: &[f64], train: &[f64], horizon_steps: usize) -> Option<f64> {
    naive_scale(train, horizon_steps).map(|q| mae(actual, forecast) / q)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Scores a fitted `forecaster` on `test`, the window right after `train`: every test point
/// `test[k]` is forecast from the series `train ++ test` up to `horizon_steps` points before
/// it (so a forecast never sees its target or anything after; early forecasts read the end of
/// the training window). MASE is scaled on `train` (see the module docs).
///
/// # Errors
/// [`ForecastError::Config`] when `test` is empty; [`ForecastError::NotFinite`] for a NaN or
/// infinite point in `train ++ test` (index in that series); [`ForecastError::TooShort`] when
/// the history of the first test point (`train.len() + 1 - horizon_steps` points) is shorter
/// than the forecaster's `min_history()`.
pub fn evaluate<F: Forecaster + ?Sized>(
    forecaster: &F,
    train: &[f64],
    test: &[f64],
) -> Result<Scores, ForecastError> {
    evaluate_with_forecasts(forecaster, train, test).map(|(scores, _)| scores)
}

/// [`evaluate`], also returning the forecast of every test point (same order as `test`).
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_with_forecasts<F: Forecaster + ?Sized>(
    forecaster: &F,
    train: &[f64],
    test: &[f64],
) -> Result<(Scores, Vec<Forecast>), ForecastError> {
    if test.is_empty() {
        return Err(ForecastError::Config(
            "test window: expected at least one point to score, got none".into(),
        ));
    }
    let series: Vec<f64> = train.iter().chain(test).copied().collect();
    check_finite(&series)?;
    let forecasts = forecaster.forecast_targets(&series, train.len()..series.len())?;
    let means: Vec<f64> = forecasts.iter().map(|f| f.mean).collect();
    let scores = Scores {
        mae: mae(test, &means),
        smape: smape(test, &means),
        mase: mase(test, &means, train, forecaster.horizon_steps()),
        n: test.len(),
    };
    Ok((scores, forecasts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::LastValue;

    #[test]
    fn metrics_match_hand_computation() {
        let actual = [2.0, 0.0, 4.0, 1.0];
        let forecast = [1.0, 0.0, 6.0, 3.0];
        // |errors| = 1, 0, 2, 2 -> MAE 5/4.
        assert_eq!(mae(&actual, &forecast), 1.25);
        // sMAPE terms: 2*1/3, 0 (0/0), 2*2/10, 2*2/4 = 0.6667 + 0 + 0.4 + 1 = 2.0667; /4 *100.
        let want = 100.0 * (2.0 / 3.0 + 0.0 + 0.4 + 1.0) / 4.0;
        assert!((smape(&actual, &forecast) - want).abs() < 1e-12);
        // An actual 0 against any non-zero forecast costs the maximum, 200.
        assert_eq!(smape(&[0.0], &[0.5]), 200.0);
        // Scale, h = 2 on [1, 2, 4, 3, 7]: |4-1|, |3-2|, |7-4| = 3, 1, 3 -> 7/3.
        let train = [1.0, 2.0, 4.0, 3.0, 7.0];
        assert!((naive_scale(&train, 2).unwrap() - 7.0 / 3.0).abs() < 1e-12);
        let m = mase(&actual, &forecast, &train, 2).unwrap();
        assert!((m - 1.25 / (7.0 / 3.0)).abs() < 1e-12);
        // Constant training window: scale 0, MASE undefined.
        assert_eq!(mase(&actual, &forecast, &[5.0; 4], 1), None);
        assert_eq!(naive_scale(&train, 5), None);
        assert_eq!(naive_scale(&train, 0), None);
    }

    #[test]
    fn evaluate_rolls_over_the_test_window_without_peeking() {
        // Last value two steps ahead: test[0] = 10 is forecast from train[..len-1] (last point
        // 4), test[1] = 20 from train (last point 8), test[2] = 30 from ...10.
        let train = [1.0, 2.0, 4.0, 8.0];
        let test = [10.0, 20.0, 30.0];
        let mut f = LastValue::new(2).unwrap();
        f.fit(&train).unwrap();
        let (scores, forecasts) = evaluate_with_forecasts(&f, &train, &test).unwrap();
        let means: Vec<f64> = forecasts.iter().map(|f| f.mean).collect();
        assert_eq!(means, vec![4.0, 8.0, 10.0]);
        // |errors| 6, 12, 20 -> MAE 38/3; scale mean(|4-1|, |8-2|) = 4.5.
        assert!((scores.mae - 38.0 / 3.0).abs() < 1e-12);
        assert!((scores.mase.unwrap() - 38.0 / 3.0 / 4.5).abs() < 1e-12);
        assert_eq!(scores.n, 3);
        assert!(matches!(
            evaluate(&f, &train, &[]),
            Err(ForecastError::Config(_))
        ));
        assert!(matches!(
            evaluate(&f, &train, &[1.0, f64::INFINITY]),
            Err(ForecastError::NotFinite { index: 5, .. })
        ));
        // Horizon 2 with a training window of 1 point: the first history is empty.
        assert!(matches!(
            evaluate(&f, &[1.0], &test),
            Err(ForecastError::TooShort { needed: 1, got: 0 })
        ));
    }
}
