//! The config of `nimbusguard forecast` (TOML, unknown keys rejected, every field optional
//! with the default given on it). Documented field by field in `docs/config.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agents::forecast::LstmForecasterConfig;
use anyhow::{anyhow, bail, Context, Result};
use sim::trace::GapPolicy;

/// Default config of `nimbusguard forecast`.
pub const DEFAULT_FORECAST_CONFIG: &str = "experiments/configs/forecast.toml";

/// Longest forecast horizon accepted, seconds (one year).
pub const MAX_HORIZON_S: f64 = 365.0 * 86_400.0;

/// Everything `nimbusguard forecast` needs (see `docs/config.md`, section "Forecast config").
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForecastConfig {
    /// Name of the experiment; the default output folder is `results/<experiment>`.
    /// Default `"forecast"`.
    pub experiment: String,
    /// `timestamp_s,value` CSV traces to forecast, one result row each. Relative paths resolve
    /// against the current folder, then the config's folder, then the repository root.
    /// `--trace` replaces this list. Default: the NASA 1-minute trace.
    pub traces: Vec<PathBuf>,
    /// How far ahead every forecaster predicts, seconds, > 0. Each trace's horizon in steps is
    /// `max(1, round(horizon_s / step))`. Default 300 (5 minutes).
    pub horizon_s: f64,
    /// Resampling step, seconds, > 0: traces whose median step is finer are averaged into bins
    /// of this width; coarser traces keep their median step. Default 60.
    pub step_s: f64,
    /// Per-trace step in seconds, keyed by the trace's file name, replacing `step_s` for that
    /// trace (e.g. a 1-hour trace at 10 s). Default empty.
    pub step_overrides: BTreeMap<String, f64>,
    /// How the rate between trace samples (and over gaps) is filled when resampling:
    /// `"hold"` or `"interpolate"`. Default `"hold"`.
    pub gap_policy: GapPolicy,
    /// Fraction of each resampled trace used for training (the first part); the rest is the
    /// test window. Strictly between 0 and 1. Default 0.7.
    pub train_fraction: f64,
    /// Seasonal period of `seasonal-naive` and `holt-winters`, seconds, > 0. Default 86400
    /// (daily).
    pub season_s: f64,
    /// Period used instead when `season_s` is under two steps of a trace (daily traces):
    /// seconds, > 0. Default 604800 (weekly).
    pub fallback_season_s: f64,
    /// Smoothing weight of the `ewma` forecaster, in (0, 1]. Default 0.3.
    pub ewma_alpha: f64,
    /// Periods of history a `holt-winters` forecast re-runs its recursion over, >= 2.
    /// Default 4.
    pub holt_winters_history_periods: usize,
    /// Test points shown in each plot (the start of the test window), >= 10. Default 720.
    pub plot_points: usize,
    /// Write each trace's trained LSTM to `models/<trace stem>/` in the output folder.
    /// Default true.
    pub save_models: bool,
    /// The LSTM forecaster's hyperparameters (`[lstm]`, see `docs/config.md`).
    /// `horizon_steps` is set per trace from `horizon_s`; a value given here is replaced.
    pub lstm: LstmForecasterConfig,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            experiment: "forecast".into(),
            traces: vec![PathBuf::from(sim::workload::DEFAULT_TRACE)],
            horizon_s: 300.0,
            step_s: 60.0,
            step_overrides: BTreeMap::new(),
            gap_policy: GapPolicy::Hold,
            train_fraction: 0.7,
            season_s: 86_400.0,
            fallback_season_s: 604_800.0,
            ewma_alpha: 0.3,
            holt_winters_history_periods: 4,
            plot_points: 720,
            save_models: true,
            lstm: LstmForecasterConfig::default(),
        }
    }
}

fn positive(field: &str, x: f64, unit: &str) -> Result<()> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        bail!("`{field}`: expected a finite number > 0 {unit}, got {x}")
    }
}

impl ForecastConfig {
    /// Reads and validates the config at `path`.
    ///
    /// # Errors
    /// The file cannot be read; TOML syntax errors and unknown keys (with line, column and
    /// key); invalid values (see [`ForecastConfig::validate`]).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read forecast config {}", path.display()))?;
        let cfg: ForecastConfig = toml::from_str(&text)
            .map_err(|e| anyhow!("{}", e.to_string().trim_end()))
            .with_context(|| format!("invalid forecast config {}", path.display()))?;
        cfg.validate()
            .with_context(|| format!("invalid forecast config {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks every field's range.
    ///
    /// # Errors
    /// The first invalid field, named by its key.
    pub fn validate(&self) -> Result<()> {
        if self.experiment.is_empty() || self.experiment.contains(['/', '\\']) {
            bail!(
                "`experiment`: expected a non-empty name without path separators, got {:?}",
                self.experiment
            );
        }
        if self.traces.is_empty() {
            bail!("`traces`: expected at least one trace");
        }
        positive("horizon_s", self.horizon_s, "seconds")?;
        if self.horizon_s > MAX_HORIZON_S {
            bail!(
                "`horizon_s`: expected at most {MAX_HORIZON_S} seconds (a year), got {}",
                self.horizon_s
            );
        }
        positive("step_s", self.step_s, "seconds")?;
        for (name, step) in &self.step_overrides {
            positive(&format!("step_overrides.\"{name}\""), *step, "seconds")?;
        }
        if !(self.train_fraction > 0.0 && self.train_fraction < 1.0) {
            bail!(
                "`train_fraction`: expected a fraction strictly between 0 and 1, got {}",
                self.train_fraction
            );
        }
        positive("season_s", self.season_s, "seconds")?;
        positive("fallback_season_s", self.fallback_season_s, "seconds")?;
        if !(self.ewma_alpha > 0.0 && self.ewma_alpha <= 1.0) {
            bail!(
                "`ewma_alpha`: expected a smoothing weight in (0, 1], got {}",
                self.ewma_alpha
            );
        }
        if self.holt_winters_history_periods < 2 {
            bail!(
                "`holt_winters_history_periods`: expected at least 2, got {}",
                self.holt_winters_history_periods
            );
        }
        if self.plot_points < 10 {
            bail!(
                "`plot_points`: expected at least 10, got {}",
                self.plot_points
            );
        }
        self.lstm.validate()?;
        Ok(())
    }

    /// The resampling step for a trace with file name `name` and median step `median_s`:
    /// its override, else `max(step_s, median_s)`.
    pub fn step_for(&self, name: &str, median_s: Option<f64>) -> f64 {
        match self.step_overrides.get(name) {
            Some(&s) => s,
            None => median_s.map_or(self.step_s, |m| m.max(self.step_s)),
        }
    }

    /// Horizon in steps for a step of `step_s` seconds: `max(1, round(horizon_s / step_s))`.
    pub fn horizon_steps(&self, step_s: f64) -> usize {
        ((self.horizon_s / step_s).round() as usize).max(1)
    }

    /// Seasonal period in steps: `round(season_s / step_s)`, or the fallback's if that is
    /// under 2; `None` if both are under 2 steps.
    pub fn season_steps(&self, step_s: f64) -> Option<usize> {
        [self.season_s, self.fallback_season_s]
            .into_iter()
            .map(|s| (s / step_s).round() as usize)
            .find(|&p| p >= 2)
    }
}

/// Where a relative trace path resolves: the first of the current folder, the config's folder
/// and the repository root in which it exists (the path as written if none has it, so the
/// error names it).
pub fn resolve_trace(trace: &Path, config_path: &Path) -> PathBuf {
    if trace.is_absolute() || trace.exists() {
        return trace.to_path_buf();
    }
    let config_dir = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [config_dir, root]
        .into_iter()
        .map(|d| d.join(trace))
        .find(|p| p.exists())
        .unwrap_or_else(|| trace.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_horizons_and_seasons() {
        let cfg = ForecastConfig {
            step_overrides: BTreeMap::from([("a.csv".to_string(), 10.0)]),
            ..ForecastConfig::default()
        };
        // 1-s trace -> 60 s; 5-min trace keeps 300 s; the override wins.
        assert_eq!(cfg.step_for("x.csv", Some(1.0)), 60.0);
        assert_eq!(cfg.step_for("x.csv", Some(300.0)), 300.0);
        assert_eq!(cfg.step_for("a.csv", Some(1.0)), 10.0);
        // 300 s ahead: 5 steps of 60 s, 1 of 300 s, 1 (not 0) of a day.
        assert_eq!(cfg.horizon_steps(60.0), 5);
        assert_eq!(cfg.horizon_steps(300.0), 1);
        assert_eq!(cfg.horizon_steps(86_400.0), 1);
        // Daily period: 1440 minutes, 288 five-minute steps; a daily trace falls back to weekly.
        assert_eq!(cfg.season_steps(60.0), Some(1440));
        assert_eq!(cfg.season_steps(300.0), Some(288));
        assert_eq!(cfg.season_steps(86_400.0), Some(7));
        assert_eq!(cfg.season_steps(1e9), None);
    }

    #[test]
    fn bad_values_name_the_field() {
        let bad = |f: fn(&mut ForecastConfig), field: &str| {
            let mut c = ForecastConfig::default();
            f(&mut c);
            let err = format!("{:#}", c.validate().unwrap_err());
            assert!(err.contains(field), "{field}: {err}");
        };
        bad(|c| c.horizon_s = 0.0, "horizon_s");
        bad(|c| c.step_s = f64::NAN, "step_s");
        bad(|c| c.train_fraction = 1.0, "train_fraction");
        bad(|c| c.traces.clear(), "traces");
        bad(|c| c.ewma_alpha = 0.0, "ewma_alpha");
        bad(|c| c.lstm.window = 0, "lstm.window");
        let err = toml::from_str::<ForecastConfig>("horizon = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
