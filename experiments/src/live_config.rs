//! The config of `nimbusguard live` (TOML, unknown keys rejected at every level): which
//! simulated scenario trains the agents, which agents run live, the traffic segment replayed
//! live and simulated, and how the local replicas run.
//!
//! ```toml
//! experiment = "live-ab"
//! scenario = "live-spike.toml"     # the simulated twin (relative to this file): trains the
//!                                  # policies and simulates the segment
//! agents = ["hpa", "q-learning"]   # agents of the scenario, run live one after the other
//! rounds = 1                       # live runs per agent (loadgen seeds 0, 1, ...)
//!
//! [segment]                        # the traffic: a [workload] table (trace or pattern)
//! pattern = { kind = "spike", base_rps = 5, spike_rps = 60, start_s = 10, spike_duration_s = 40, duration_s = 100 }
//! resample_s = 1.0
//!
//! [app]                            # the replicas: workload-app binary and its flags
//! binary = "target/release/workload-app"
//! args = ["--cpu-per-request-ms", "20", "--workers", "1", "--ready-delay-s", "1", "--cost-distribution", "deterministic"]
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sim::trace::RateSeries;
use sim::workload::WorkloadConfig;

use crate::config::{kebab, AgentKind, AgentSpec, ExperimentConfig};

/// The default config of `nimbusguard live`.
pub const DEFAULT_CONFIG: &str = "experiments/configs/live-ab.toml";

/// The whole `nimbusguard live` config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// Name of the experiment (the default output folder is `results/<experiment>`).
    pub experiment: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The experiment config (`nimbusguard run` format) of the simulated twin of the live
    /// system; relative paths are taken from this file's folder, then the current folder.
    pub scenario: PathBuf,
    /// Names of the scenario's agents to run live, in this order (at least one). The oracle
    /// cannot run live (it reads the simulated arrivals).
    pub agents: Vec<String>,
    /// Live runs per agent; run `r` replays the segment with arrival seed `r`. Default 1.
    #[serde(default = "one")]
    pub rounds: u64,
    /// The traffic replayed, live by the load generator and in the simulator: a `[workload]`
    /// table (both of its windows, in order: the whole series).
    pub segment: WorkloadConfig,
    /// Extra seconds to keep observing after the segment ends (scale-down). Default 0.
    #[serde(default)]
    pub tail_s: f64,
    /// The replicas.
    #[serde(default)]
    pub app: AppSection,
    /// Staleness limit of the metrics, seconds: older data makes the decision fall back to the
    /// HPA rules, as in the operator. Default 10.
    #[serde(default = "stale_after_s")]
    pub stale_after_s: f64,
    /// Seconds to wait once Prometheus scrapes the replicas, before the segment starts (so
    /// the first rates exist). Default 3.
    #[serde(default = "settle_s")]
    pub settle_s: f64,
    /// A request without an answer after this long is a failure, seconds. Default 10.
    #[serde(default = "request_timeout_s")]
    pub request_timeout_s: f64,
}

fn one() -> u64 {
    1
}
fn stale_after_s() -> f64 {
    10.0
}
fn settle_s() -> f64 {
    3.0
}
fn request_timeout_s() -> f64 {
    10.0
}

/// `[app]`: the `workload-app` replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSection {
    /// Path of the `workload-app` binary (relative to the current folder). Default
    /// `target/release/workload-app` (`cargo build --release -p workload --bins`).
    pub binary: PathBuf,
    /// Flags of every replica. They must describe the scenario's service (CPU per request,
    /// cost distribution, workers = CPU limit in cores, readiness delay): a calibrated scenario
    /// (`nimbusguard calibrate`) is measured with the same flags. Default: the live test
    /// system's `--cpu-per-request-ms 20 --workers 1 --ready-delay-s 1 --cost-distribution
    /// deterministic`.
    pub args: Vec<String>,
}

impl Default for AppSection {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("target/release/workload-app"),
            args: crate::cmd_calibrate::DEFAULT_APP_ARGS
                .iter()
                .map(|a| (*a).to_string())
                .collect(),
        }
    }
}

/// A loaded live config with its scenario.
#[derive(Debug, Clone)]
pub struct LoadedLive {
    /// The live config.
    pub config: LiveConfig,
    /// Where it was read from.
    pub path: PathBuf,
    /// The scenario, loaded and checked.
    pub scenario: ExperimentConfig,
    /// Where the scenario was read from.
    pub scenario_path: PathBuf,
    /// The agents to run live, in config order.
    pub agents: Vec<AgentSpec>,
}

impl LiveConfig {
    /// Reads `path`, applies `--set key.path=value` overrides, loads the scenario and checks
    /// everything that can be checked before a process starts.
    ///
    /// # Errors
    /// The file cannot be read; TOML syntax errors; unknown keys; a field with a wrong type or
    /// value (named by its dotted path); the scenario cannot be loaded; an agent name the
    /// scenario lacks or an agent that cannot run live.
    pub fn load(path: &Path, overrides: &[String]) -> Result<LoadedLive> {
        let cfg: LiveConfig = crate::config::load_toml(path, overrides, "live config")?;
        cfg.validate()
            .with_context(|| format!("invalid live config {}", path.display()))?;
        let scenario_path = relative_to(path, &cfg.scenario);
        let scenario = ExperimentConfig::load(&scenario_path, &[]).with_context(|| {
            format!(
                "{}: scenario: cannot load {}",
                path.display(),
                scenario_path.display()
            )
        })?;
        let mut agents = Vec::new();
        for name in &cfg.agents {
            let Some(spec) = scenario.agents.iter().find(|a| &a.name == name) else {
                let names: Vec<&str> = scenario.agents.iter().map(|a| a.name.as_str()).collect();
                bail!(
                    "{}: agents: {} has no agent named {name:?} (agents: {})",
                    path.display(),
                    scenario_path.display(),
                    names.join(", ")
                );
            };
            if spec.kind == AgentKind::Oracle {
                bail!(
                    "{}: agents: {name} ({}) cannot run live: it reads the simulated arrivals",
                    path.display(),
                    kebab(spec.kind)
                );
            }
            agents.push(spec.clone());
        }
        Ok(LoadedLive {
            config: cfg,
            path: path.to_path_buf(),
            scenario,
            scenario_path,
            agents,
        })
    }

    /// Checks the fields that need no file.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self) -> Result<()> {
        if !crate::sweep_config::is_plain_name(&self.experiment) {
            bail!(
                "experiment: expected a plain folder name (no `/`, not empty, `.` or `..`), got {:?}",
                self.experiment
            );
        }
        if self.agents.is_empty() {
            bail!("agents: expected at least one agent name");
        }
        for (i, a) in self.agents.iter().enumerate() {
            if self.agents[..i].contains(a) {
                bail!("agents: {a:?} is listed twice");
            }
        }
        if !(1..=100).contains(&self.rounds) {
            bail!("rounds: expected 1 to 100, got {}", self.rounds);
        }
        self.segment
            .validate()
            .map_err(|e| anyhow::anyhow!("segment: {e}"))?;
        for (name, v, min) in [
            ("tail_s", self.tail_s, 0.0),
            ("stale_after_s", self.stale_after_s, 0.0),
            ("settle_s", self.settle_s, 0.0),
        ] {
            if !(v.is_finite() && (min..=86_400.0).contains(&v)) {
                bail!("{name}: expected a number of seconds in [0, 86400], got {v}");
            }
        }
        if !(self.request_timeout_s.is_finite() && self.request_timeout_s > 0.0) {
            bail!(
                "request_timeout_s: expected a number of seconds > 0, got {}",
                self.request_timeout_s
            );
        }
        Ok(())
    }

    /// The segment's rate series (both windows of `[segment]`, in order); a relative trace
    /// path is looked up in the current folder, `config_path`'s folder, then the repository.
    ///
    /// # Errors
    /// The trace is missing or malformed, or the segment is empty.
    pub fn segment_series(&self, config_path: &Path, seed: u64) -> Result<RateSeries> {
        // The first of: the current folder, the config's folder, the repository root this
        // binary was built from, that holds the trace (as `nimbusguard run` resolves traces).
        let config_dir = config_path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let base = match self.segment.trace.as_ref() {
            Some(t) if t.is_relative() => [PathBuf::from("."), config_dir, root]
                .into_iter()
                .find(|d| d.join(t).exists())
                .unwrap_or_else(|| PathBuf::from(".")),
            _ => PathBuf::from("."),
        };
        let w = self
            .segment
            .build(&base, seed)
            .context("while building the traffic of [segment]")?;
        let mut values = w.train.values;
        values.extend(w.evaluation.values);
        Ok(RateSeries {
            step_s: w.train.step_s,
            values,
        })
    }
}

/// `p` relative to the folder of the file `from` if it exists there, else `p` as given
/// (relative to the current folder), absolute paths unchanged.
pub fn relative_to(from: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let beside = from.parent().unwrap_or(Path::new(".")).join(p);
    if beside.exists() {
        beside
    } else {
        p.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("live-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const SCENARIO: &str = r#"
experiment = "twin"
[workload]
pattern = { kind = "constant", rps = 5, duration_s = 200 }
[[agents]]
name = "hpa"
kind = "hpa"
[[agents]]
name = "oracle"
kind = "oracle"
"#;

    const LIVE: &str = r#"
experiment = "ab"
scenario = "twin.toml"
agents = ["hpa"]
[segment]
pattern = { kind = "ramp", from_rps = 2, to_rps = 8, duration_s = 12 }
resample_s = 1.0
"#;

    #[test]
    fn loads_the_scenario_beside_it_and_builds_the_whole_segment() {
        let d = scratch("ok");
        write(&d, "twin.toml", SCENARIO);
        let p = write(&d, "live.toml", LIVE);
        let l = LiveConfig::load(&p, &[]).unwrap();
        assert_eq!(l.scenario_path, d.join("twin.toml"));
        assert_eq!(l.agents.len(), 1);
        assert_eq!(l.config.rounds, 1);
        // Both windows of the 12 s ramp, 1 s bins: 12 values rising from 2 towards 8.
        let s = l.config.segment_series(&p, 0).unwrap();
        assert_eq!(s.values.len(), 12);
        assert!(s.values.windows(2).all(|w| w[1] >= w[0]));
        assert!(s.values[0] >= 2.0 - 1e-9 && s.values[11] <= 8.0 + 1e-9);
    }

    #[test]
    fn bad_input_names_the_field() {
        let d = scratch("bad");
        write(&d, "twin.toml", SCENARIO);
        let err = |over: &[&str]| {
            let p = write(&d, "live.toml", LIVE);
            let o: Vec<String> = over.iter().map(|s| s.to_string()).collect();
            format!("{:#}", LiveConfig::load(&p, &o).unwrap_err())
        };
        assert!(err(&["agents=[\"nope\"]"]).contains("no agent named \"nope\""));
        assert!(err(&["agents=[\"oracle\"]"]).contains("cannot run live"));
        assert!(err(&["agents=[]"]).contains("agents: expected at least one"));
        assert!(err(&["agents=[\"hpa\",\"hpa\"]"]).contains("listed twice"));
        assert!(err(&["rounds=0"]).contains("rounds"));
        assert!(err(&["tail_s=-1"]).contains("tail_s"));
        assert!(err(&["bogus=1"]).contains("bogus"));
        assert!(err(&["app.bogus=1"]).contains("bogus"));
        assert!(err(&["scenario=\"missing.toml\""]).contains("scenario: cannot load"));
        assert!(err(&["segment.resample_s=-1"]).contains("resample_s"));
    }
}
