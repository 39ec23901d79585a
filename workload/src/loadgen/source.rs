//! The workload to replay: a `[workload]` table from a config file plus command-line overrides,
//! built into one rate series by the simulator's own pipeline (so the load generator accepts
//! exactly the workloads the simulator accepts).

use std::path::{Path, PathBuf};

use sim::trace::RateSeries;
use sim::workload::{Pattern, WorkloadConfig};

use crate::{Error, Result};

/// Which part of the workload to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Window {
    /// The training window only.
    Train,
    /// The evaluation window only.
    Evaluation,
    /// The training window, then the evaluation window.
    #[default]
    All,
}

/// Where the workload comes from: an optional config file and overrides (the `loadgen` flags
/// of the same names). At least one of `config`, `trace` and `pattern` must be given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadSpec {
    /// A TOML file whose `[workload]` table is read (as `sim::workload::WorkloadConfig`; a
    /// file without one gets the simulator's defaults).
    pub config: Option<PathBuf>,
    /// Replaces the workload's source with this trace (`--trace`).
    pub trace: Option<PathBuf>,
    /// Replaces the workload's source with this pattern, an inline TOML table (`--pattern`).
    pub pattern: Option<String>,
    /// Overrides `resample_s` (`--resample-s`), the bin width in seconds before compression.
    pub resample_s: Option<f64>,
    /// Overrides `peak_rps` (`--peak-rps`), requests/s.
    pub peak_rps: Option<f64>,
    /// Overrides `time_compression` (`--time-compression`).
    pub time_compression: Option<f64>,
    /// Overrides `start_s` (`--start-s`), seconds.
    pub start_s: Option<f64>,
    /// Overrides `duration_s` (`--duration-s`), seconds.
    pub duration_s: Option<f64>,
    /// Which window to replay (`--window`).
    pub window: Window,
}

/// Reads the `[workload]` table of a TOML file.
///
/// # Errors
///
/// [`Error::ConfigIo`] if unreadable; [`Error::ConfigParse`] if not TOML or if `[workload]`
/// has an unknown or mistyped field (the message names it).
pub fn load_workload_config(path: &Path) -> Result<WorkloadConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigIo {
        path: path.to_path_buf(),
        source,
    })?;
    let parse = |message: String| Error::ConfigParse {
        path: path.to_path_buf(),
        message,
    };
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| parse(e.to_string()))?;
    match table.remove("workload") {
        None => Ok(WorkloadConfig::default()),
        Some(v) => v
            .try_into::<WorkloadConfig>()
            .map_err(|e| parse(format!("[workload]: {e}"))),
    }
}

/// Parses an inline TOML pattern table, e.g. `{ kind = "constant", rps = 5, duration_s = 10 }`.
///
/// # Errors
///
/// [`Error::InvalidInput`] naming `--pattern` if it is not a TOML inline table or not a valid
/// pattern (unknown kind, missing or unknown field).
pub fn parse_pattern(s: &str) -> Result<Pattern> {
    let doc = format!("pattern = {s}");
    let mut table: toml::Table = toml::from_str(&doc)
        .map_err(|e| Error::input("--pattern", format!("not a TOML inline table: {e}")))?;
    let value = table
        .remove("pattern")
        .ok_or_else(|| Error::input("--pattern", "empty pattern"))?;
    value
        .try_into::<Pattern>()
        .map_err(|e| Error::input("--pattern", e.to_string()))
}

impl WorkloadSpec {
    /// The workload config after overrides, validated.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if none of `config`, `trace`, `pattern` is given or both
    /// `trace` and `pattern` are (naming `--trace`/`--pattern`), or a bad pattern; config file
    /// errors from [`load_workload_config`]; [`Error::Workload`] from the simulator's
    /// validation (naming `workload.<field>`).
    pub fn resolve(&self) -> Result<WorkloadConfig> {
        if self.trace.is_some() && self.pattern.is_some() {
            return Err(Error::input(
                "--pattern",
                "both --trace and --pattern given; expected at most one",
            ));
        }
        let mut cfg = match &self.config {
            Some(path) => load_workload_config(path)?,
            None if self.trace.is_none() && self.pattern.is_none() => {
                return Err(Error::input(
                    "--config",
                    "no workload given; expected --config FILE, --trace PATH or --pattern TABLE",
                ))
            }
            None => WorkloadConfig::default(),
        };
        if let Some(t) = &self.trace {
            cfg.trace = Some(t.clone());
            cfg.pattern = None;
        }
        if let Some(p) = &self.pattern {
            cfg.pattern = Some(parse_pattern(p)?);
            cfg.trace = None;
        }
        if let Some(v) = self.resample_s {
            cfg.resample_s = v;
        }
        if let Some(v) = self.peak_rps {
            cfg.peak_rps = v;
        }
        if let Some(v) = self.time_compression {
            cfg.time_compression = v;
        }
        if let Some(v) = self.start_s {
            cfg.start_s = v;
        }
        if self.duration_s.is_some() {
            cfg.duration_s = self.duration_s;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Builds the rate series to replay: the simulator's pipeline ([`WorkloadConfig::build`],
    /// relative trace paths against `base_dir`, `seed` for random patterns), then the chosen
    /// window (both windows share one bin width, so `all` is their concatenation).
    ///
    /// # Errors
    ///
    /// As [`WorkloadSpec::resolve`]; [`Error::Workload`] for a missing or malformed trace or an
    /// empty window.
    pub fn build(&self, base_dir: &Path, seed: u64) -> Result<(WorkloadConfig, RateSeries)> {
        let cfg = self.resolve()?;
        if let Some(path) = cfg.trace_path(base_dir) {
            if !path.is_file() {
                return Err(Error::input(
                    if self.trace.is_some() {
                        "--trace"
                    } else {
                        "workload.trace"
                    },
                    format!("trace file {} does not exist", path.display()),
                ));
            }
        }
        let w = cfg.build(base_dir, seed)?;
        let series = match self.window {
            Window::Train => w.train,
            Window::Evaluation => w.evaluation,
            Window::All => {
                let mut values = w.train.values;
                values.extend(w.evaluation.values);
                RateSeries {
                    step_s: w.train.step_s,
                    values,
                }
            }
        };
        Ok((cfg, series))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WorkloadSpec {
        WorkloadSpec {
            pattern: Some("{ kind = \"constant\", rps = 4, duration_s = 20 }".into()),
            ..WorkloadSpec::default()
        }
    }

    #[test]
    fn windows_select_and_concatenate() {
        let dir = std::env::temp_dir().join(format!("loadgen-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[workload]\nresample_s = 5.0\ntime_compression = 5.0\ntrain_fraction = 0.5\n\
             pattern = { kind = \"ramp\", from_rps = 0, to_rps = 40, duration_s = 40 }\n\
             [other]\nignored = 1\n",
        )
        .unwrap();
        let base = WorkloadSpec {
            config: Some(file.clone()),
            ..WorkloadSpec::default()
        };
        let (_, all) = base.build(&dir, 0).unwrap();
        // 8 bins of 5 s, compressed 5x: 1 s bins; ramp means 2.5, 7.5, ..., 37.5 req/s.
        assert_eq!(all.step_s, 1.0);
        assert_eq!(
            all.values,
            vec![2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 32.5, 37.5]
        );
        let train = WorkloadSpec {
            window: Window::Train,
            ..base.clone()
        }
        .build(&dir, 0)
        .unwrap()
        .1;
        let eval = WorkloadSpec {
            window: Window::Evaluation,
            ..base.clone()
        }
        .build(&dir, 0)
        .unwrap()
        .1;
        assert_eq!(train.values, all.values[..4]);
        assert_eq!(eval.values, all.values[4..]);
        // An unknown key inside [workload] is rejected, naming it.
        std::fs::write(&file, "[workload]\nresample = 5.0\n").unwrap();
        let e = base.build(&dir, 0).unwrap_err().to_string();
        assert!(e.contains("resample"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_inputs_name_the_flag_or_field() {
        let tmp = std::env::temp_dir();
        let both = WorkloadSpec {
            trace: Some("x.csv".into()),
            ..spec()
        };
        assert!(both
            .build(&tmp, 0)
            .unwrap_err()
            .to_string()
            .contains("--trace and --pattern"));
        let none = WorkloadSpec::default();
        assert!(none
            .build(&tmp, 0)
            .unwrap_err()
            .to_string()
            .contains("--config"));
        let missing = WorkloadSpec {
            trace: Some("no/such/trace.csv".into()),
            ..WorkloadSpec::default()
        };
        let e = missing.build(&tmp, 0).unwrap_err().to_string();
        assert!(e.contains("--trace") && e.contains("does not exist"), "{e}");
        let bad = WorkloadSpec {
            pattern: Some("{ kind = \"wave\" }".into()),
            ..WorkloadSpec::default()
        };
        let e = bad.build(&tmp, 0).unwrap_err().to_string();
        assert!(e.contains("--pattern") && e.contains("wave"), "{e}");
        let bad = WorkloadSpec {
            pattern: Some("{ kind = \"constant\", rps = -1, duration_s = 5 }".into()),
            ..WorkloadSpec::default()
        };
        let e = bad.build(&tmp, 0).unwrap_err().to_string();
        assert!(e.contains("workload.pattern.rps"), "{e}");
        let e = WorkloadSpec {
            peak_rps: Some(0.0),
            ..spec()
        }
        .build(&tmp, 0)
        .unwrap_err()
        .to_string();
        assert!(e.contains("workload.peak_rps"), "{e}");
        let e = WorkloadSpec {
            config: Some("no/such.toml".into()),
            ..WorkloadSpec::default()
        }
        .build(&tmp, 0)
        .unwrap_err()
        .to_string();
        assert!(e.contains("no/such.toml"), "{e}");
    }
}
