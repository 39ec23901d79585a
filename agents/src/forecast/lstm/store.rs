//! Saving and loading a trained [`LstmForecaster`]: a folder with `config.json` (format,
//! version, config, normalisation, training summary) and `model.bpk` (burn's burnpack record
//! of the network). Loading checks the format, the version, the config's ranges and the
//! record's shapes against the config, and reports every problem as
//! [`ForecastError::Model`] with the file and the reason, never a panic.

use std::path::Path;

use burn::module::Module;
use burn::store::ModuleRecord;

use super::{
    not_fitted, Fitted, LstmForecaster, Normalization, SavedLstm, LSTM_FORMAT, LSTM_FORMAT_VERSION,
};
use crate::forecast::ForecastError;
use crate::nn;

/// A [`ForecastError::Model`] for `path`.
fn model_error(path: &Path, reason: impl std::fmt::Display) -> ForecastError {
    ForecastError::Model {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl LstmForecaster {
    /// Writes the trained forecaster to the folder `dir` (created if missing): `config.json`
    /// and `model.bpk`.
    ///
    /// # Errors
    /// [`ForecastError::Config`] when not trained; [`ForecastError::Model`] naming the file
    /// that could not be written.
    pub fn save(&self, dir: &Path) -> Result<(), ForecastError> {
        let fitted = self.fitted.as_ref().ok_or_else(not_fitted)?;
        std::fs::create_dir_all(dir).map_err(|e| model_error(dir, e))?;
        let saved = SavedLstm {
            format: LSTM_FORMAT.into(),
            version: LSTM_FORMAT_VERSION,
            config: self.config.clone(),
            normalization: fitted.norm,
            residual_std: fitted.residual_std,
            training: fitted.summary.clone(),
        };
        let config_path = dir.join("config.json");
        let json =
            serde_json::to_string_pretty(&saved).map_err(|e| model_error(&config_path, e))?;
        std::fs::write(&config_path, json).map_err(|e| model_error(&config_path, e))?;
        let model_path = dir.join("model.bpk");
        fitted
            .model
            .clone()
            .into_record()
            .save(&model_path)
            .map_err(|e| model_error(&model_path, e))
    }

    /// Reads a forecaster written by [`LstmForecaster::save`] from the folder `dir`.
    ///
    /// # Errors
    /// [`ForecastError::Model`] naming the file and the reason when `config.json` is missing,
    /// not valid JSON, of another format or version, or has an invalid config or
    /// normalisation, or when `model.bpk` is missing, unreadable or of another shape than the
    /// config describes (e.g. another hidden size or number of layers). Never panics.
    pub fn load(dir: &Path) -> Result<Self, ForecastError> {
        let config_path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| model_error(&config_path, e))?;
        let head: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| model_error(&config_path, e))?;
        let format = head.get("format").and_then(|v| v.as_str()).unwrap_or("");
        if format != LSTM_FORMAT {
            return Err(model_error(
                &config_path,
                format!("format {format:?}, expected {LSTM_FORMAT:?}"),
            ));
        }
        let version = head.get("version").and_then(|v| v.as_u64());
        if version != Some(u64::from(LSTM_FORMAT_VERSION)) {
            return Err(model_error(
                &config_path,
                format!(
                    "version {}, this build reads version {LSTM_FORMAT_VERSION}",
                    head.get("version")
                        .map_or("missing".into(), |v| v.to_string())
                ),
            ));
        }
        let saved: SavedLstm =
            serde_json::from_value(head).map_err(|e| model_error(&config_path, e))?;
        saved
            .config
            .validate()
            .map_err(|e| model_error(&config_path, e))?;
        let Normalization { mean, std } = saved.normalization;
        if !(mean.is_finite() && std.is_finite() && std > 0.0) {
            return Err(model_error(
                &config_path,
                format!("normalization mean {mean} / std {std}: expected finite, std > 0"),
            ));
        }
        let model_path = dir.join("model.bpk");
        if !model_path.is_file() {
            return Err(model_error(&model_path, "no such file"));
        }
        let record = ModuleRecord::load(&model_path).map_err(|e| model_error(&model_path, e))?;
        let device = nn::device();
        let model = saved
            .config
            .net()
            .init(&device)
            .try_load_record(record)
            .map_err(|e| model_error(&model_path, e))?;
        let weights = model.weights();
        Ok(Self {
            config: saved.config,
            fitted: Some(Fitted {
                model,
                weights,
                norm: saved.normalization,
                residual_std: saved.residual_std,
                summary: saved.training,
            }),
        })
    }
}
