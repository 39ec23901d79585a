//! The config of `nimbusguard anomaly` (TOML, `deny_unknown_fields`): which traces, which
//! labels, the probationary fraction, and the detectors with their forecasters. Every field is
//! documented below; `experiments/configs/anomaly.toml` is the reference config.

use std::path::{Path, PathBuf};

use agents::anomaly::{AnomalyDetector, AnomalyDetectorConfig};
use agents::forecast::{Ewma, ForecastError, Forecaster, HoltWinters, LastValue, SeasonalNaive};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

fn default_experiment() -> String {
    "anomaly-nab".into()
}
fn default_labels() -> PathBuf {
    PathBuf::from("datasets/labels/nab_windows.json")
}
fn default_traces() -> Vec<PathBuf> {
    [
        "datasets/nab_aws_elb_request_count_5min.csv",
        "datasets/nab_aws_ec2_cpu_ac20cd_5min.csv",
        "datasets/nab_aws_ec2_cpu_5f5533_5min.csv",
    ]
    .map(PathBuf::from)
    .to_vec()
}
fn default_probation() -> f64 {
    0.15
}
fn one() -> usize {
    1
}
fn two() -> usize {
    2
}

/// The anomaly evaluation config (TOML). Relative paths resolve against the current folder,
/// then the config's folder, then the repository root the binary was built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyExperiment {
    /// Name of the evaluation; the default output folder is `results/<experiment>`. Default
    /// `anomaly-nab`.
    #[serde(default = "default_experiment")]
    pub experiment: String,
    /// The labelled windows (JSON, layout of `datasets/labels/nab_windows.json`).
    #[serde(default = "default_labels")]
    pub labels: PathBuf,
    /// Traces (`timestamp_s,value` CSV); each file name must have an entry in `labels`.
    /// Default: the three NAB traces of `datasets/`.
    #[serde(default = "default_traces")]
    pub traces: Vec<PathBuf>,
    /// Share of each file (from its start) that is probationary: training data for learned
    /// detectors, not scored. NAB's value, 0.15, by default; in `[0, 0.9]`. The probationary
    /// length in points is NAB's `min(floor(f * points), floor(f * 5000))`.
    #[serde(default = "default_probation")]
    pub probationary_fraction: f64,
    /// The detectors to evaluate (at least one).
    pub detectors: Vec<DetectorSpec>,
}

/// One detector of the evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSpec {
    /// Unique name in reports and plots.
    pub name: String,
    /// The detector and its parameters (`{ kind = "rolling-mad", window = 288 }`, ...).
    pub detector: AnomalyDetectorConfig,
    /// The forecaster of a `forecast-residual` detector (required there, refused elsewhere).
    #[serde(default)]
    pub forecaster: Option<ForecasterSpec>,
}

/// A baseline forecaster of [`agents::forecast`] for a `forecast-residual` detector. Steps are
/// points of the trace (5 minutes for the NAB traces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ForecasterSpec {
    /// The last value ([`LastValue`]).
    LastValue {
        /// Steps ahead (default 1).
        #[serde(default = "one")]
        horizon_steps: usize,
    },
    /// The value one period earlier ([`SeasonalNaive`]).
    SeasonalNaive {
        /// Season length in steps (288 = one day of 5-minute points).
        period_steps: usize,
        /// Steps ahead (default 1).
        #[serde(default = "one")]
        horizon_steps: usize,
    },
    /// Exponentially weighted mean ([`Ewma`]).
    Ewma {
        /// Weight of the newest point, in `(0, 1]`.
        alpha: f64,
        /// Steps ahead (default 1).
        #[serde(default = "one")]
        horizon_steps: usize,
    },
    /// Additive Holt-Winters, smoothing weights fitted on the training window
    /// ([`HoltWinters`]).
    HoltWinters {
        /// Season length in steps.
        period_steps: usize,
        /// Periods of history each forecast reads (default 2, so that a 15% probationary
        /// period of two weeks of 5-minute data, 604 points, can train it).
        #[serde(default = "two")]
        history_periods: usize,
        /// Steps ahead (default 1).
        #[serde(default = "one")]
        horizon_steps: usize,
    },
}

impl ForecasterSpec {
    /// Builds the (unfitted) forecaster.
    ///
    /// # Errors
    /// The forecaster's [`ForecastError::Config`] for a bad period, horizon or weight.
    pub fn build(&self) -> Result<Box<dyn Forecaster>, ForecastError> {
        Ok(match *self {
            Self::LastValue { horizon_steps } => Box::new(LastValue::new(horizon_steps)?),
            Self::SeasonalNaive {
                period_steps,
                horizon_steps,
            } => Box::new(SeasonalNaive::new(period_steps, horizon_steps)?),
            Self::Ewma {
                alpha,
                horizon_steps,
            } => Box::new(Ewma::new(alpha, horizon_steps)?),
            Self::HoltWinters {
                period_steps,
                history_periods,
                horizon_steps,
            } => Box::new(
                HoltWinters::new(period_steps, horizon_steps)?
                    .with_history_periods(history_periods)?,
            ),
        })
    }
}

impl DetectorSpec {
    /// Builds the detector (with its forecaster where it has one), not yet fitted.
    ///
    /// # Errors
    /// An invalid detector or forecaster config, a missing or superfluous forecaster; the
    /// message names the detector.
    pub fn build(&self) -> Result<Box<dyn AnomalyDetector>> {
        let ctx = || format!("detector `{}`", self.name);
        match (&self.forecaster, self.detector.needs_forecaster()) {
            (Some(f), true) => {
                let f = f
                    .build()
                    .with_context(|| format!("{}: forecaster", ctx()))?;
                Ok(self.detector.build_with_forecaster(f).with_context(ctx)?)
            }
            (None, false) => Ok(self.detector.build().with_context(ctx)?),
            (None, true) => bail!(
                "{}: a forecast-residual detector needs a `forecaster`",
                ctx()
            ),
            (Some(_), false) => bail!(
                "{}: `forecaster` is only for forecast-residual detectors, not {}",
                ctx(),
                self.detector.kind()
            ),
        }
    }
}

impl AnomalyExperiment {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// Unreadable file, TOML syntax, unknown fields or wrong types (naming the field), and the
    /// errors of [`validate`](Self::validate).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read anomaly config {}", path.display()))?;
        // Errors carry the line, column and key.
        let cfg: Self = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
            .with_context(|| format!("invalid anomaly config {}", path.display()))?;
        cfg.validate()
            .with_context(|| format!("invalid anomaly config {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks the fields and builds every detector once.
    ///
    /// # Errors
    /// No detectors or traces, duplicate detector names, `probationary_fraction` outside
    /// `[0, 0.9]`, or a detector that cannot be built.
    pub fn validate(&self) -> Result<()> {
        if self.detectors.is_empty() {
            bail!("`detectors`: at least one detector is needed");
        }
        if self.traces.is_empty() {
            bail!("`traces`: at least one trace is needed");
        }
        if !(0.0..=0.9).contains(&self.probationary_fraction) {
            bail!(
                "`probationary_fraction`: must be in [0, 0.9], got {}",
                self.probationary_fraction
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for d in &self.detectors {
            if !names.insert(d.name.as_str()) {
                bail!("`detectors`: the name `{}` is used twice", d.name);
            }
            d.build()?;
        }
        Ok(())
    }
}
