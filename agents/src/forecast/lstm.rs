//! LSTM load forecaster (`lstm`), CleanRL style: config, data, network, training loop, save
//! and load, top to bottom.
//!
//! Model (the seed design, DESIGN.md section 5): 3 stacked LSTM layers x 128 hidden units over
//! a 60-step window of the series, dropout 0.2 between layers, a linear head, predicting the
//! value `horizon_steps` steps after the window's last point. See [`net`] for the layers.
//!
//! Implementation details and deviations:
//! - Values are scaled by the training window's standard deviation (mean and std are stored in
//!   the saved `config.json`). In the default [`LstmMode::Relative`] the network sees the
//!   window relative to its last value, `(y[t-i] - y[t]) / std`, and predicts the change
//!   `(y[t+h] - y[t]) / std`: it cannot tell one level from another, so it cannot learn to pull
//!   forecasts towards the training window's level (on the NAB CPU traces, whose level shifts
//!   between training and test, the level-aware modes were worse than the last value, see the
//!   README); an untrained network starts as the last-value forecast.
//!   [`LstmMode::Change`] feeds z-normalised levels and predicts the change,
//!   [`LstmMode::Level`] predicts the z-normalised level.
//! - Training: Adam (Kingma & Ba 2015) on the mean squared error of the normalised target,
//!   gradient norm clipped; each epoch draws at most
//!   [`LstmForecasterConfig::max_samples_per_epoch`] windows without replacement from all
//!   training windows, shuffled by our own seeded ChaCha8 RNG; dropout masks come from another
//!   seeded stream; the network is seeded and initialised under [`crate::nn::seeded_init`].
//!   The last [`LstmForecasterConfig::validation_fraction`] of the windows (by time) is held
//!   out and the epoch with the lowest validation loss is kept (early-stopping by selection).
//! - Inference runs on a plain-Rust copy of the weights ([`net::Weights`]), not through burn:
//!   one forecast (about 20 M multiply-adds) takes 2.5 ms there against 4.3 ms through burn's
//!   forward with a batch of one (one core, 3 x 128 units, 60 steps).
//! - `std` of a forecast: the root mean square of the forecast errors (series unit) on the
//!   validation windows (without validation, on up to `ceil(max_samples_per_epoch / 2)`
//!   training windows spread over the training window).
//!
//! Saved layout ([`LstmForecaster::save`]): a folder with `config.json` (format, version,
//! config, normalisation, training summary) and `model.bpk` (burn's burnpack record).

pub mod net;
mod store;

use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use self::net::{LstmNet, LstmNetConfig, Weights};
use super::{check_finite, Forecast, ForecastError, Forecaster};
use crate::nn;

/// `format` field of a saved `config.json`.
pub const LSTM_FORMAT: &str = "nimbusguard.lstm-forecaster";
/// `version` of the saved layout this code writes and reads.
pub const LSTM_FORMAT_VERSION: u32 = 1;

/// Hyperparameters of [`LstmForecaster`] (TOML/JSON; unknown fields rejected; every field has
/// the default given).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LstmForecasterConfig {
    /// Input window in steps of the series, 1..=10000. Default 60.
    pub window: usize,
    /// Steps ahead of the window's last point that are forecast, 1..=100000. Default 5
    /// (5 minutes at 1-minute steps).
    pub horizon_steps: usize,
    /// Hidden units per LSTM layer, 1..=1024. Default 128.
    pub hidden_size: usize,
    /// Stacked LSTM layers, 1..=8. Default 3.
    pub num_layers: usize,
    /// Dropout probability between LSTM layers during training, in `[0, 1)`. Default 0.2.
    pub dropout: f64,
    /// Adam learning rate, finite and > 0. Default 0.001.
    pub learning_rate: f64,
    /// Training epochs, 1..=10000. Default 6.
    pub epochs: usize,
    /// Windows per gradient step, 1..=4096. Default 32.
    pub batch_size: usize,
    /// Windows drawn per epoch (without replacement, fresh each epoch), at least 1; all
    /// training windows when there are fewer. Caps the training cost on long traces.
    /// Default 512.
    pub max_samples_per_epoch: usize,
    /// Fraction of the windows (the last ones in time) held out to pick the best epoch, in
    /// `[0, 0.5]`, at most `ceil(max_samples_per_epoch / 2)` windows (the most recent ones);
    /// 0 keeps the last epoch. Default 0.1.
    pub validation_fraction: f64,
    /// Largest L2 norm of the gradient (clipped above), finite and > 0. Default 1.0.
    pub grad_clip_norm: f64,
    /// What the network sees and predicts (`"relative"`, `"change"` or `"level"`, see
    /// [`LstmMode`]). Default `"relative"`.
    pub mode: LstmMode,
    /// Seed of initialisation, shuffling and dropout. Default 0.
    pub seed: u64,
}

impl Default for LstmForecasterConfig {
    fn default() -> Self {
        Self {
            window: 60,
            horizon_steps: 5,
            hidden_size: 128,
            num_layers: 3,
            dropout: 0.2,
            learning_rate: 1e-3,
            epochs: 6,
            batch_size: 32,
            max_samples_per_epoch: 512,
            validation_fraction: 0.1,
            grad_clip_norm: 1.0,
            mode: LstmMode::Relative,
            seed: 0,
        }
    }
}

impl LstmForecasterConfig {
    /// Checks every field against the ranges documented on it.
    ///
    /// # Errors
    /// [`ForecastError::Config`] naming the first field out of range and its value.
    pub fn validate(&self) -> Result<(), ForecastError> {
        let int = |name: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ForecastError::Config(format!(
                    "lstm.{name}: expected {lo}..={hi}, got {v}"
                )))
            }
        };
        int("window", self.window, 1, 10_000)?;
        int("horizon_steps", self.horizon_steps, 1, 100_000)?;
        int("hidden_size", self.hidden_size, 1, 1024)?;
        int("num_layers", self.num_layers, 1, 8)?;
        int("epochs", self.epochs, 1, 10_000)?;
        int("batch_size", self.batch_size, 1, 4096)?;
        int(
            "max_samples_per_epoch",
            self.max_samples_per_epoch,
            1,
            usize::MAX,
        )?;
        let float = |name: &str, v: f64, ok: bool, want: &str| {
            if ok {
                Ok(())
            } else {
                Err(ForecastError::Config(format!(
                    "lstm.{name}: expected {want}, got {v}"
                )))
            }
        };
        let d = self.dropout;
        float(
            "dropout",
            d,
            (0.0..1.0).contains(&d),
            "a probability in [0, 1)",
        )?;
        let lr = self.learning_rate;
        float(
            "learning_rate",
            lr,
            lr.is_finite() && lr > 0.0,
            "a finite rate > 0",
        )?;
        let v = self.validation_fraction;
        float(
            "validation_fraction",
            v,
            (0.0..=0.5).contains(&v),
            "a fraction in [0, 0.5]",
        )?;
        let g = self.grad_clip_norm;
        float(
            "grad_clip_norm",
            g,
            g.is_finite() && g > 0.0,
            "a finite norm > 0",
        )
    }

    fn net(&self) -> LstmNetConfig {
        LstmNetConfig::new(self.num_layers, self.hidden_size)
    }
}

/// What the LSTM forecaster's network sees and predicts (`std` is the training window's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LstmMode {
    /// Inputs `(y[t-i] - y[t]) / std` (the window relative to its last value), target
    /// `(y[t+h] - y[t]) / std`. Level-invariant.
    Relative,
    /// Inputs `(y[t-i] - mean) / std`, target `(y[t+h] - y[t]) / std`.
    Change,
    /// Inputs `(y[t-i] - mean) / std`, target `(y[t+h] - mean) / std`.
    Level,
}

impl LstmMode {
    /// The network's input for one window of z-normalised values.
    fn input(self, z: &[f32]) -> impl Iterator<Item = f32> + '_ {
        let offset = match (self, z.last()) {
            (LstmMode::Relative, Some(&last)) => last,
            _ => 0.0,
        };
        z.iter().map(move |v| v - offset)
    }
}

/// The training window's mean and standard deviation (series unit), used to normalise.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Mean of the training window.
    pub mean: f64,
    /// Population standard deviation of the training window (1 when it is 0).
    pub std: f64,
}

/// What one training run did, saved next to the model.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TrainingSummary {
    /// Epochs run.
    pub epochs: usize,
    /// Epoch (1-based) whose weights were kept.
    pub best_epoch: usize,
    /// Mean training loss (normalised MSE, dropout on) of each epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss (normalised MSE) of each epoch; empty without validation.
    pub validation_loss: Vec<f64>,
    /// Training windows available (before the per-epoch cap).
    pub train_windows: usize,
    /// Validation windows.
    pub validation_windows: usize,
    /// Training windows processed per wall-clock second (gradient steps only).
    pub samples_per_s: f64,
}

/// One progress report of [`LstmForecaster::fit_with_progress`].
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// A gradient step finished.
    Batch {
        /// Epoch, 1-based.
        epoch: usize,
        /// Batch within the epoch, 1-based.
        batch: usize,
        /// Batches per epoch.
        batches: usize,
        /// This batch's loss (normalised MSE).
        loss: f64,
    },
    /// An epoch finished.
    Epoch {
        /// Epoch, 1-based.
        epoch: usize,
        /// Epochs in the run.
        epochs: usize,
        /// Mean training loss of the epoch.
        train_loss: f64,
        /// Validation loss, when there is a validation set.
        validation_loss: Option<f64>,
    },
}

/// What `config.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedLstm {
    format: String,
    version: u32,
    config: LstmForecasterConfig,
    normalization: Normalization,
    residual_std: Option<f64>,
    training: TrainingSummary,
}

/// The fitted network.
#[derive(Debug)]
struct Fitted {
    /// Inference-mode module (for saving).
    model: LstmNet,
    /// Plain copy of its weights (for forecasting).
    weights: Weights,
    norm: Normalization,
    residual_std: Option<f64>,
    summary: TrainingSummary,
}

/// The LSTM forecaster. Build with [`LstmForecaster::new`], train with [`Forecaster::fit`] or
/// [`LstmForecaster::fit_with_progress`], or load a trained one with [`LstmForecaster::load`].
/// Forecasting before training is a [`ForecastError::Config`] error.
#[derive(Debug)]
pub struct LstmForecaster {
    config: LstmForecasterConfig,
    fitted: Option<Fitted>,
}

/// Training windows per batch tensor: `x: [b, window, 1]`, `y: [b, 1]`.
fn batch_tensors(
    z: &[f32],
    targets: &[f32],
    starts: &[usize],
    window: usize,
    mode: LstmMode,
    device: &Device,
) -> (Tensor<3>, Tensor<2>) {
    let mut x = Vec::with_capacity(starts.len() * window);
    for &s in starts {
        x.extend(mode.input(&z[s..s + window]));
    }
    let y: Vec<f32> = starts.iter().map(|&s| targets[s]).collect();
    (
        Tensor::from_data(TensorData::new(x, [starts.len(), window, 1]), device),
        Tensor::from_data(TensorData::new(y, [starts.len(), 1]), device),
    )
}

impl LstmForecaster {
    /// An untrained forecaster.
    ///
    /// # Errors
    /// [`ForecastError::Config`] from [`LstmForecasterConfig::validate`].
    pub fn new(config: LstmForecasterConfig) -> Result<Self, ForecastError> {
        config.validate()?;
        Ok(Self {
            config,
            fitted: None,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &LstmForecasterConfig {
        &self.config
    }

    /// The last training run's summary, once fitted or loaded.
    pub fn training_summary(&self) -> Option<&TrainingSummary> {
        self.fitted.as_ref().map(|f| &f.summary)
    }

    /// The normalisation of the training window, once fitted or loaded.
    pub fn normalization(&self) -> Option<Normalization> {
        self.fitted.as_ref().map(|f| f.norm)
    }

    /// [`Forecaster::fit`], calling `progress` after every gradient step and every epoch (the
    /// epoch report is also logged with `tracing` at info level).
    ///
    /// # Errors
    /// [`ForecastError::NotFinite`] on a NaN or infinite value; [`ForecastError::TooShort`]
    /// when `train` has fewer than `window + horizon_steps` points (no training window).
    pub fn fit_with_progress(
        &mut self,
        train: &[f64],
        progress: &mut dyn FnMut(&TrainEvent),
    ) -> Result<(), ForecastError> {
        let c = self.config.clone();
        check_finite(train)?;
        let (w, h) = (c.window, c.horizon_steps);
        let needed = w + h;
        if train.len() < needed {
            return Err(ForecastError::TooShort {
                needed,
                got: train.len(),
            });
        }
        let n = train.len() as f64;
        let mean = train.iter().sum::<f64>() / n;
        let var = train.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
        let norm = Normalization { mean, std };
        let z: Vec<f32> = train.iter().map(|v| ((v - mean) / std) as f32).collect();
        // Window s reads z[s..s+w] and targets train[s+w-1+h].
        let n_windows = train.len() - needed + 1;
        let targets: Vec<f32> = (0..n_windows)
            .map(|s| {
                let last = s + w - 1;
                match c.mode {
                    LstmMode::Relative | LstmMode::Change => {
                        ((train[last + h] - train[last]) / std) as f32
                    }
                    LstmMode::Level => z[last + h],
                }
            })
            .collect();
        // The last windows, at most half an epoch's worth (validation runs every epoch).
        let n_val = ((n_windows as f64 * c.validation_fraction).floor() as usize)
            .min(c.max_samples_per_epoch.div_ceil(2));
        let n_val = if n_val >= n_windows { 0 } else { n_val };
        let train_idx: Vec<usize> = (0..n_windows - n_val).collect();
        let val_idx: Vec<usize> = (n_windows - n_val..n_windows).collect();

        let device = nn::device();
        let ad = device.clone().autodiff();
        let mut model = nn::seeded_init(&ad, nn::derive_seed(c.seed, "lstm-init"), || {
            let m = c.net().init(&ad);
            net::materialize(&m);
            m
        });
        let mut optim = AdamConfig::new()
            .with_grad_clipping(Some(GradientClippingConfig::Norm(c.grad_clip_norm as f32)))
            .init();
        let mut shuffle_rng = ChaCha8Rng::seed_from_u64(nn::derive_seed(c.seed, "lstm-shuffle"));
        let mut dropout_rng = ChaCha8Rng::seed_from_u64(nn::derive_seed(c.seed, "lstm-dropout"));
        let per_epoch = train_idx.len().min(c.max_samples_per_epoch);
        let batches = per_epoch.div_ceil(c.batch_size);
        let mut summary = TrainingSummary {
            train_windows: train_idx.len(),
            validation_windows: n_val,
            ..TrainingSummary::default()
        };
        let mut best: Option<(f64, LstmNet)> = None;
        let mut order = train_idx.clone();
        let mut train_time = 0.0;
        tracing::info!(
            ?c,
            train_windows = train_idx.len(),
            validation_windows = n_val,
            "lstm: training"
        );
        for epoch in 1..=c.epochs {
            order.shuffle(&mut shuffle_rng);
            let started = Instant::now();
            let mut loss_sum = 0.0;
            for (b, starts) in order[..per_epoch].chunks(c.batch_size).enumerate() {
                let (x, y) = batch_tensors(&z, &targets, starts, w, c.mode, &ad);
                let out = model.forward(x, Some((&mut dropout_rng, c.dropout)));
                let loss = (out - y).square().mean();
                let value = f64::from(loss.clone().into_scalar::<f32>());
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(c.learning_rate, model, grads);
                loss_sum += value * starts.len() as f64;
                progress(&TrainEvent::Batch {
                    epoch,
                    batch: b + 1,
                    batches,
                    loss: value,
                });
            }
            train_time += started.elapsed().as_secs_f64();
            let train_loss = loss_sum / per_epoch as f64;
            summary.train_loss.push(train_loss);
            let valid = model.valid();
            let validation_loss = (!val_idx.is_empty()).then(|| {
                mse(
                    &valid,
                    &z,
                    &targets,
                    &val_idx,
                    (w, c.mode),
                    c.batch_size.max(256),
                    &device,
                )
            });
            tracing::info!(
                epoch,
                epochs = c.epochs,
                train_loss,
                ?validation_loss,
                "lstm: epoch"
            );
            progress(&TrainEvent::Epoch {
                epoch,
                epochs: c.epochs,
                train_loss,
                validation_loss,
            });
            let score = validation_loss.unwrap_or(0.0);
            summary.epochs = epoch;
            if let Some(v) = validation_loss {
                summary.validation_loss.push(v);
            }
            if best
                .as_ref()
                .is_none_or(|(b, _)| score.total_cmp(b).is_lt() || val_idx.is_empty())
            {
                summary.best_epoch = epoch;
                best = Some((score, valid));
            }
        }
        summary.samples_per_s = (per_epoch * c.epochs) as f64 / train_time.max(1e-9);
        let Some((_, model)) = best else {
            // epochs >= 1 (validated), so at least one epoch ran.
            return Err(ForecastError::Config(
                "lstm.epochs: expected at least 1".into(),
            ));
        };
        let weights = model.weights();
        let mut fitted = Fitted {
            model,
            weights,
            norm,
            residual_std: None,
            summary,
        };
        // Residual std on the validation windows, else on as many training windows, spread out.
        let idx: Vec<usize> = if val_idx.is_empty() {
            let step = train_idx
                .len()
                .div_ceil(c.max_samples_per_epoch.div_ceil(2))
                .max(1);
            train_idx.iter().copied().step_by(step).collect()
        } else {
            val_idx
        };
        let sq: f64 = idx
            .iter()
            .map(|&s| {
                let hist = &train[s..s + w];
                let fc = fitted.predict(&c, hist);
                let e = train[s + w - 1 + h] - fc;
                e * e
            })
            .sum();
        fitted.residual_std = (!idx.is_empty()).then(|| (sq / idx.len() as f64).sqrt());
        self.fitted = Some(fitted);
        Ok(())
    }
}

/// Mean squared error of `model` (inference mode) over the windows starting at `idx`.
fn mse(
    model: &LstmNet,
    z: &[f32],
    targets: &[f32],
    idx: &[usize],
    (window, mode): (usize, LstmMode),
    batch: usize,
    device: &Device,
) -> f64 {
    let mut sum = 0.0;
    for starts in idx.chunks(batch) {
        let (x, y) = batch_tensors(z, targets, starts, window, mode, device);
        let err = (model.forward(x, None) - y).square().sum();
        sum += f64::from(err.into_scalar::<f32>());
    }
    sum / idx.len().max(1) as f64
}

impl Fitted {
    /// Forecast (series unit) from exactly `window` finite points.
    fn predict(&self, c: &LstmForecasterConfig, window: &[f64]) -> f64 {
        let Normalization { mean, std } = self.norm;
        let z: Vec<f32> = window.iter().map(|v| ((v - mean) / std) as f32).collect();
        let x: Vec<f32> = c.mode.input(&z).collect();
        let out = f64::from(self.weights.forward(&x));
        match (c.mode, window.last()) {
            (LstmMode::Relative | LstmMode::Change, Some(last)) => last + out * std,
            _ => mean + out * std,
        }
    }
}

impl Forecaster for LstmForecaster {
    fn name(&self) -> &str {
        "lstm"
    }
    fn horizon_steps(&self) -> usize {
        self.config.horizon_steps
    }
    /// The input window.
    fn min_history(&self) -> usize {
        self.config.window
    }
    fn fit(&mut self, train: &[f64]) -> Result<(), ForecastError> {
        self.fit_with_progress(train, &mut |_| {})
    }
    fn forecast(&self, history: &[f64]) -> Result<Forecast, ForecastError> {
        let fitted = self.fitted.as_ref().ok_or_else(not_fitted)?;
        let w = self.config.window;
        if history.len() < w {
            return Err(ForecastError::TooShort {
                needed: w,
                got: history.len(),
            });
        }
        let start = history.len() - w;
        check_finite(&history[start..]).map_err(|e| match e {
            ForecastError::NotFinite { index, value } => ForecastError::NotFinite {
                index: index + start,
                value,
            },
            other => other,
        })?;
        Ok(Forecast {
            mean: fitted.predict(&self.config, &history[start..]),
            std: fitted.residual_std,
        })
    }
}

fn not_fitted() -> ForecastError {
    ForecastError::Config("lstm: the forecaster is not trained; call fit or load first".into())
}
