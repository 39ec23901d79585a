//! Criterion benches of the LSTM forecaster on the CPU backend, seed shape (3 layers x 128
//! units, 60-step window):
//!
//! - `lstm/train_256_windows_batch32`: one training epoch of 256 windows in batches of 32
//!   (8 Adam steps, forward and backward through burn); throughput is training windows
//!   (samples) per second. Timed with `iter_custom` from the gradient-step time that `fit`
//!   measures itself (`TrainingSummary::samples_per_s`), so building the network and the
//!   residual pass after training are left out.
//! - `lstm/forecast_one`: one forecast from a 60-point history, what a live decision pays.
//!
//! Run: `cargo bench -p agents --bench forecast`.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::time::Duration;

use agents::forecast::{Forecaster, LstmForecaster, LstmForecasterConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn series(n: usize) -> Vec<f64> {
    (0..n)
        .map(|t| {
            let day = (std::f64::consts::TAU * t as f64 / 1440.0).sin();
            100.0 + 40.0 * day + 5.0 * ((t * 7919) % 97) as f64 / 97.0
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("lstm");
    let train = series(2_000);
    let samples = 256;
    let config = LstmForecasterConfig {
        epochs: 1,
        batch_size: 32,
        max_samples_per_epoch: samples,
        validation_fraction: 0.0,
        ..LstmForecasterConfig::default()
    };
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(samples as u64));
    g.bench_function("train_256_windows_batch32", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let mut f = LstmForecaster::new(config.clone()).unwrap();
                    f.fit(&train).unwrap();
                    let rate = f.training_summary().map_or(f64::NAN, |s| s.samples_per_s);
                    Duration::from_secs_f64(samples as f64 / rate)
                })
                .sum()
        })
    });

    let mut f = LstmForecaster::new(config).unwrap();
    f.fit(&train).unwrap();
    let history = &train[train.len() - 60..];
    g.sample_size(100);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(1));
    g.bench_function("forecast_one", |b| b.iter(|| f.forecast(history).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
