//! Smoke test of the LSTM forecaster (STYLE.md lesson 14): the real training loop for a few
//! hundred gradient steps on a sine wave, which it must forecast with MASE well under 1, then
//! save, reload and identical forecasts; plus determinism and clean errors on bad input
//! (wrong shape or version of a saved model, a window longer than the series, horizon 0).
//!
//! The network is smaller than the seed's (2 x 16 units over a 24-step window) so the test
//! runs in seconds in the dev profile; the training loop is the same.

use std::path::PathBuf;

use agents::forecast::lstm::TrainEvent;
use agents::forecast::{evaluate, ForecastError, Forecaster, LstmForecaster, LstmForecasterConfig};

/// `10 + 5 sin(2 pi t / 20)`: period 20 steps.
fn sine(n: usize) -> Vec<f64> {
    (0..n)
        .map(|t| 10.0 + 5.0 * (2.0 * std::f64::consts::PI * t as f64 / 20.0).sin())
        .collect()
}

fn small_config() -> LstmForecasterConfig {
    LstmForecasterConfig {
        window: 24,
        horizon_steps: 3,
        hidden_size: 16,
        num_layers: 2,
        dropout: 0.1,
        learning_rate: 0.01,
        epochs: 15,
        batch_size: 16,
        max_samples_per_epoch: 320,
        validation_fraction: 0.1,
        ..LstmForecasterConfig::default()
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nimbusguard-lstm-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn learns_a_sine_wave_then_saves_and_reloads_identically() {
    let series = sine(400);
    let (train, test) = series.split_at(300);
    let mut lstm = LstmForecaster::new(small_config()).unwrap();
    let (mut steps, mut epoch_losses) = (0, Vec::new());
    lstm.fit_with_progress(train, &mut |event| match event {
        TrainEvent::Batch { .. } => steps += 1,
        TrainEvent::Epoch { train_loss, .. } => epoch_losses.push(*train_loss),
    })
    .unwrap();
    // 300 - 24 - 3 + 1 = 274 windows, 27 held out for validation, 247 for training: 16
    // batches an epoch, 15 epochs, 240 gradient steps.
    assert_eq!(steps, 15 * 247usize.div_ceil(16));
    assert!(
        epoch_losses.last().unwrap() < &(0.5 * epoch_losses[0]),
        "training loss did not fall: {epoch_losses:?}"
    );
    let scores = evaluate(&lstm, train, test).unwrap();
    // The 3-step naive forecast's MAE on a sine of amplitude 5, period 20, is about 2.9.
    let mase = scores.mase.unwrap();
    assert!(mase < 0.5, "MASE {mase} (MAE {})", scores.mae);
    assert_eq!(scores.n, 100);
    let std = lstm.forecast(train).unwrap().std.unwrap();
    assert!(std > 0.0 && std < 2.0, "residual std {std}");

    let dir = tmp("roundtrip");
    lstm.save(&dir).unwrap();
    let loaded = LstmForecaster::load(&dir).unwrap();
    assert_eq!(loaded.config(), lstm.config());
    let a = lstm.forecast_targets(&series, 300..400).unwrap();
    let b = loaded.forecast_targets(&series, 300..400).unwrap();
    assert_eq!(a, b);

    // A config that says 32 hidden units for a record of 16: a clean error naming the file.
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        text.replace("\"hidden_size\": 16", "\"hidden_size\": 32"),
    )
    .unwrap();
    match LstmForecaster::load(&dir) {
        Err(ForecastError::Model { path, reason }) => {
            assert!(path.ends_with("model.bpk"), "{path}");
            assert!(reason.contains("shape"), "{reason}");
        }
        other => panic!("expected a model error, got {other:?}"),
    }
    // Another version of the layout.
    std::fs::write(
        &config_path,
        text.replace("\"version\": 1", "\"version\": 99"),
    )
    .unwrap();
    let err = LstmForecaster::load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("config.json") && err.contains("version 99"),
        "{err}"
    );
    // Not JSON at all.
    std::fs::write(&config_path, "{ not json").unwrap();
    assert!(matches!(
        LstmForecaster::load(&dir),
        Err(ForecastError::Model { .. })
    ));
    // A truncated record.
    std::fs::write(&config_path, &text).unwrap();
    let record = std::fs::read(dir.join("model.bpk")).unwrap();
    std::fs::write(dir.join("model.bpk"), &record[..record.len() / 2]).unwrap();
    let err = LstmForecaster::load(&dir).unwrap_err().to_string();
    assert!(err.contains("model.bpk"), "{err}");
    // No folder at all.
    assert!(matches!(
        LstmForecaster::load(&dir.join("missing")),
        Err(ForecastError::Model { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn same_seed_same_forecasts() {
    let series = sine(120);
    let config = LstmForecasterConfig {
        window: 10,
        horizon_steps: 1,
        hidden_size: 4,
        num_layers: 2,
        epochs: 2,
        batch_size: 8,
        max_samples_per_epoch: 32,
        ..LstmForecasterConfig::default()
    };
    let fit = |seed| {
        let mut f = LstmForecaster::new(LstmForecasterConfig {
            seed,
            ..config.clone()
        })
        .unwrap();
        f.fit(&series).unwrap();
        f.forecast_targets(&series, 100..120).unwrap()
    };
    let a = fit(1);
    assert_eq!(a, fit(1));
    assert_ne!(a, fit(2));
}

#[test]
fn bad_input_gives_clear_errors() {
    // Horizon 0 and other out-of-range fields name the field.
    let err = LstmForecaster::new(LstmForecasterConfig {
        horizon_steps: 0,
        ..LstmForecasterConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("lstm.horizon_steps"), "{err}");
    assert!(LstmForecaster::new(LstmForecasterConfig {
        dropout: 1.0,
        ..LstmForecasterConfig::default()
    })
    .is_err());
    // A window longer than the series: 60 + 5 points needed, 30 given.
    let mut lstm = LstmForecaster::new(LstmForecasterConfig::default()).unwrap();
    assert!(matches!(
        lstm.fit(&sine(30)),
        Err(ForecastError::TooShort {
            needed: 65,
            got: 30
        })
    ));
    // Forecasting before training, a NaN in the training series.
    assert!(matches!(
        lstm.forecast(&sine(60)),
        Err(ForecastError::Config(_))
    ));
    let mut series = sine(100);
    series[42] = f64::NAN;
    assert!(matches!(
        lstm.fit(&series),
        Err(ForecastError::NotFinite { index: 42, .. })
    ));
}
