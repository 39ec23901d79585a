//! Tests of [`super`]: hand-computed scores (the arithmetic is in the comments), config
//! validation, NaN handling, and properties of the statistical detectors.

use super::*;
use proptest::prelude::*;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// Feeds `values`, returning every score.
fn feed(d: &mut dyn AnomalyDetector, values: &[f64]) -> Vec<AnomalyScore> {
    values.iter().map(|&v| d.observe(v)).collect()
}

#[test]
fn rolling_mad_matches_hand_computed_robust_z() {
    let mut d = RollingMad::new(5, 3.5).unwrap();
    // Warm-up: nothing scored until the window of 5 is full.
    assert!(feed(&mut d, &[1.0, 2.0, 3.0, 4.0, 100.0])
        .iter()
        .all(|s| *s == AnomalyScore::NONE));
    // Window 1 2 3 4 100: median 3; |x - 3| = 2 1 0 1 97, sorted 0 1 1 2 97: MAD 1.
    // z(6) = 0.6745 * (6 - 3) / 1 = 2.0235: not flagged at 3.5.
    let s = d.observe(6.0);
    close(s.score, 2.0235);
    assert!(!s.flagged);
    // 1 dropped: window 2 3 4 100 6, sorted 2 3 4 6 100: median 4; deviations 2 1 0 96 2,
    // sorted 0 1 2 2 96: MAD 2. z(20) = 0.6745 * 16 / 2 = 5.396: flagged.
    let s = d.observe(20.0);
    close(s.score, 5.396);
    assert!(s.flagged);
    // Window 3 4 100 6 20: median 6, so z(6) = 0.
    assert_eq!(d.observe(6.0), AnomalyScore::NONE);
    // Window 4 100 6 20 6: median 6; deviations 2 94 0 14 0, sorted 0 0 2 14 94: MAD 2.
    // z(0) = 0.6745 * (0 - 6) / 2 = -2.0235.
    close(d.observe(0.0).score, -2.0235);
}

#[test]
fn rolling_mad_even_window_averages_the_middle_pair() {
    let mut d = RollingMad::new(4, 3.5).unwrap();
    feed(&mut d, &[1.0, 2.0, 3.0, 10.0]);
    // Sorted 1 2 3 10: median (2 + 3) / 2 = 2.5; deviations 1.5 0.5 0.5 7.5, sorted
    // 0.5 0.5 1.5 7.5: MAD (0.5 + 1.5) / 2 = 1. z(7) = 0.6745 * 4.5 = 3.03525.
    let s = d.observe(7.0);
    close(s.score, 3.03525);
    assert!(!s.flagged);
}

#[test]
fn rolling_mad_falls_back_to_mean_absolute_deviation_then_to_the_cap() {
    let mut d = RollingMad::new(5, 3.5).unwrap();
    feed(&mut d, &[5.0, 5.0, 5.0, 5.0, 9.0]);
    // Median 5, deviations 0 0 0 0 4: MAD 0; mean absolute deviation 0.8, so the scale is
    // 1.2533141 * 0.8 = 1.0026513 and z(7) = 2 / 1.0026513 = 1.9947114.
    close(d.observe(7.0).score, 2.0 / (MEAN_AD_TO_SIGMA * 0.8));
    let mut d = RollingMad::new(3, 3.5).unwrap();
    feed(&mut d, &[5.0, 5.0, 5.0]);
    // No spread at all: equal scores 0, anything else scores the cap (with its sign).
    assert_eq!(d.observe(5.0), AnomalyScore::NONE);
    let s = d.observe(4.9);
    assert_eq!((s.score, s.flagged), (-MAX_SCORE, true));
}

#[test]
fn rolling_mad_is_allocation_free_once_warm() {
    let mut d = RollingMad::new(7, 3.5).unwrap();
    for i in 0..1000 {
        d.observe(((i * 37) % 11) as f64);
    }
    assert_eq!(d.ring.capacity(), 7);
    assert_eq!(d.sorted.capacity(), 7);
    assert_eq!(d.scratch.capacity(), 7);
    // The sorted copy is the ring, sorted: the last 7 values of (i * 37) % 11.
    let mut ring = d.ring.clone();
    ring.sort_by(f64::total_cmp);
    assert_eq!(ring, d.sorted);
}

#[test]
fn ewma_zscore_matches_hand_computed_updates() {
    let mut d = EwmaZscore::new(0.5, 3.5, 2).unwrap();
    // 10: mean 10, var 0. 12 (1 point seen < warm-up 2, not scored): diff 2, mean 11,
    // var = 0.5 * (0 + 0.5 * 2^2) = 1. 11: diff 0, z 0; var = 0.5 * 1 = 0.5.
    let s = feed(&mut d, &[10.0, 12.0, 11.0]);
    assert!(s.iter().all(|s| *s == AnomalyScore::NONE));
    assert_eq!(d.estimates(), Some((11.0, 0.5)));
    // 30: z = 19 / sqrt(0.5) = 26.870058; then mean 20.5, var 0.5 * (0.5 + 0.5 * 19^2) = 90.5.
    let s = d.observe(30.0);
    close(s.score, 19.0 / 0.5f64.sqrt());
    assert!(s.flagged);
    assert_eq!(d.estimates(), Some((20.5, 90.5)));
    d.reset();
    assert_eq!(d.estimates(), None);
}

/// A test-only forecaster: the last value, `horizon` steps ahead, with a fixed `std`.
struct Last {
    horizon: usize,
    std: Option<f64>,
}

impl Forecaster for Last {
    fn name(&self) -> &str {
        "last"
    }
    fn horizon_steps(&self) -> usize {
        self.horizon
    }
    fn min_history(&self) -> usize {
        1
    }
    fn fit(&mut self, _train: &[f64]) -> Result<(), ForecastError> {
        Ok(())
    }
    fn forecast(&self, history: &[f64]) -> Result<Forecast, ForecastError> {
        let mean = *history
            .last()
            .ok_or(ForecastError::TooShort { needed: 1, got: 0 })?;
        Ok(Forecast {
            mean,
            std: self.std,
        })
    }
}

fn residual(horizon: usize, std: Option<f64>, scale: ResidualScale) -> ForecastResidual {
    ForecastResidual::new(Box::new(Last { horizon, std }), 3.5, scale).unwrap()
}

const TRAIN: [f64; 6] = [10.0, 11.0, 10.0, 12.0, 10.0, 11.0];

#[test]
fn forecast_residual_one_step_scale_and_scores() {
    let mut d = residual(1, None, ResidualScale::Training);
    assert_eq!(d.name(), "forecast-residual/last");
    d.fit(&TRAIN).unwrap();
    // One-step residuals 1 -1 2 -2 1: median 1; |r - 1| = 0 2 1 3 0, sorted 0 0 1 2 3: MAD 1,
    // so the scale is 1 / 0.6745 = 1.48258.
    close(d.train_scale().unwrap(), 1.0 / 0.6745);
    // 10: nothing due. 11: forecast 10, residual 1: score 0.6745. 20: forecast 11, residual
    // 9: score 6.0705, flagged.
    let s = feed(&mut d, &[10.0, 11.0, 20.0]);
    assert_eq!(s[0], AnomalyScore::NONE);
    close(s[1].score, 0.6745);
    close(s[2].score, 9.0 * 0.6745);
    assert!(!s[1].flagged && s[2].flagged);
}

#[test]
fn forecast_residual_compares_with_the_forecast_made_horizon_steps_earlier() {
    let mut d = residual(2, None, ResidualScale::Training);
    d.fit(&TRAIN).unwrap();
    // Two-step residuals train[t] - train[t - 2]: 0 1 0 -1; median 0, |r| sorted 0 0 1 1:
    // MAD 0.5, scale 0.5 / 0.6745.
    close(d.train_scale().unwrap(), 0.5 / 0.6745);
    // 1, 2: nothing due yet. 3: forecast made at 1, residual 2: 2 * 0.6745 / 0.5 = 2.698.
    // 10: forecast made at 2, residual 8: 10.792, flagged.
    let s = feed(&mut d, &[1.0, 2.0, 3.0, 10.0]);
    assert_eq!(&s[..2], &[AnomalyScore::NONE; 2]);
    close(s[2].score, 2.698);
    close(s[3].score, 10.792);
    assert!(!s[2].flagged && s[3].flagged);
    // reset keeps the scale and forgets the stream.
    d.reset();
    assert_eq!(d.observe(100.0), AnomalyScore::NONE);
    assert!(d.train_scale().is_some());
}

#[test]
fn forecast_residual_scales_by_forecast_std_and_needs_a_scale() {
    let mut d = residual(1, Some(2.0), ResidualScale::ForecastStd);
    // Not fitted, but the forecast carries std 2: residual 8 scores 4 (flagged), 7 scores 3.5
    // (not flagged: the threshold is strict).
    let s = feed(&mut d, &[10.0, 18.0, 25.0]);
    assert_eq!((s[1].score, s[1].flagged), (4.0, true));
    assert_eq!((s[2].score, s[2].flagged), (3.5, false));
    // Training scale, never fitted: no scale, nothing flagged.
    let mut d = residual(1, None, ResidualScale::Training);
    assert!(feed(&mut d, &[1.0, 1e9, -1e9]).iter().all(|s| !s.flagged));
    // Too short to compute any residual.
    let err = d.fit(&[1.0]).unwrap_err();
    assert!(
        matches!(err, AnomalyError::TrainingTooShort { needed: 2, got: 1 }),
        "{err}"
    );
}

#[test]
fn non_finite_input_is_ignored_and_never_flagged() {
    let values = [1.0, 2.0, 1.5, 2.5, 1.0, 9.0, 2.0, 40.0];
    let with_gaps: Vec<f64> = values
        .iter()
        .flat_map(|&v| [v, f64::NAN, f64::INFINITY])
        .collect();
    let detectors = || -> Vec<Box<dyn AnomalyDetector>> {
        vec![
            Box::new(RollingMad::new(3, 3.5).unwrap()),
            Box::new(EwmaZscore::new(0.3, 3.5, 2).unwrap()),
            Box::new(residual(1, Some(1.0), ResidualScale::ForecastStd)),
        ]
    };
    for (mut a, mut b) in detectors().into_iter().zip(detectors()) {
        let clean = feed(a.as_mut(), &values);
        let gappy = feed(b.as_mut(), &with_gaps);
        // Every NaN and infinity scores NONE, and the finite values score as without them.
        for (i, s) in gappy.iter().enumerate().filter(|(i, _)| i % 3 != 0) {
            assert_eq!(*s, AnomalyScore::NONE, "{} at {i}", a.name());
        }
        let finite: Vec<AnomalyScore> = gappy.into_iter().step_by(3).collect();
        assert_eq!(clean, finite, "{}", a.name());
        assert!(
            clean.last().unwrap().flagged,
            "{}: 40 is an outlier",
            a.name()
        );
    }
}

#[test]
fn config_defaults_parse_and_round_trip() {
    let c: AnomalyDetectorConfig = serde_json::from_str(r#"{"kind": "ewma-zscore"}"#).unwrap();
    assert_eq!(
        c,
        AnomalyDetectorConfig::EwmaZscore {
            alpha: 0.05,
            threshold: 3.5,
            warm_up: 30
        }
    );
    let c: AnomalyDetectorConfig =
        serde_json::from_str(r#"{"kind": "forecast-residual", "scale": "forecast-std"}"#).unwrap();
    assert!(c.needs_forecaster());
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(
        serde_json::from_str::<AnomalyDetectorConfig>(&json).unwrap(),
        c
    );
    assert_eq!(
        AnomalyDetectorConfig::default(),
        AnomalyDetectorConfig::RollingMad {
            window: 60,
            threshold: 3.5
        }
    );
    let err = serde_json::from_str::<AnomalyDetectorConfig>(r#"{"kind":"rolling-mad","windw":5}"#)
        .unwrap_err();
    assert!(err.to_string().contains("unknown field `windw`"), "{err}");
    assert!(serde_json::from_str::<AnomalyDetectorConfig>(r#"{"kind":"zscore"}"#).is_err());
}

#[test]
fn config_errors_name_the_field() {
    let mad = |window, threshold| AnomalyDetectorConfig::RollingMad { window, threshold };
    let ewma = |alpha, warm_up| AnomalyDetectorConfig::EwmaZscore {
        alpha,
        threshold: 3.5,
        warm_up,
    };
    let cases = [
        (mad(2, 3.5), "window"),
        (mad(MAX_WINDOW + 1, 3.5), "window"),
        (mad(5, 0.0), "threshold"),
        (mad(5, f64::NAN), "threshold"),
        (mad(5, MAX_SCORE), "threshold"),
        (ewma(0.0, 5), "alpha"),
        (ewma(1.5, 5), "alpha"),
        (ewma(f64::NAN, 5), "alpha"),
        (ewma(1.0, 1), "warm_up"),
    ];
    for (config, field) in cases {
        match config.build() {
            Err(AnomalyError::Config { field: f, .. }) => assert_eq!(f, field, "{config:?}"),
            other => panic!(
                "{config:?}: expected an error on {field}, got {:?}",
                other.err()
            ),
        }
    }
    assert!(ewma(1.0, 2).build().is_ok());
    let residual = AnomalyDetectorConfig::ForecastResidual {
        threshold: 3.5,
        scale: ResidualScale::Training,
    };
    let err = residual.build().err().unwrap();
    assert!(err.to_string().contains("`forecaster`"), "{err}");
    let last = || {
        Box::new(Last {
            horizon: 1,
            std: None,
        })
    };
    let err = mad(5, 3.5).build_with_forecaster(last()).err().unwrap();
    assert!(err.to_string().contains("`kind`"), "{err}");
    let err = residual
        .build_with_forecaster(Box::new(Last {
            horizon: 0,
            std: None,
        }))
        .err()
        .unwrap();
    assert!(err.to_string().contains("`forecaster`"), "{err}");
    let d = residual.build_with_forecaster(last()).unwrap();
    fn is_send<T: Send + ?Sized>(_: &T) {}
    is_send(&d);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A constant series is never flagged and always scores 0, whatever the parameters.
    #[test]
    fn constant_series_is_never_flagged(
        c in -1e6f64..1e6, len in 1usize..200, window in 3usize..50,
        alpha in 0.01f64..=1.0, warm_up in 2usize..50,
    ) {
        let mut mad = RollingMad::new(window, 3.5).unwrap();
        let mut ewma = EwmaZscore::new(alpha, 3.5, warm_up).unwrap();
        for _ in 0..len {
            prop_assert_eq!(mad.observe(c), AnomalyScore::NONE);
            prop_assert_eq!(ewma.observe(c), AnomalyScore::NONE);
        }
    }

    /// One huge spike after warm-up, on noise in [0, 1], is flagged by both detectors.
    #[test]
    fn a_spike_after_warm_up_is_flagged(
        noise in proptest::collection::vec(0.0f64..1.0, 50..120),
        window in 3usize..=50, alpha in 0.01f64..=1.0, warm_up in 2usize..=50,
    ) {
        let mut mad = RollingMad::new(window, 3.5).unwrap();
        let mut ewma = EwmaZscore::new(alpha, 3.5, warm_up).unwrap();
        feed(&mut mad, &noise);
        feed(&mut ewma, &noise);
        // MAD <= 0.5 (or the fallbacks) and the EWMA standard deviation <= 1 on [0, 1] noise,
        // so a spike of 1e4 scores far above 3.5.
        let (m, e) = (mad.observe(1e4), ewma.observe(1e4));
        prop_assert!(m.flagged && m.score > 1e3, "{:?}", m);
        prop_assert!(e.flagged && e.score > 1e3, "{:?}", e);
    }
}
