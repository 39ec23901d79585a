//! Experiment configs: one TOML file per experiment (`experiments/configs/*.toml`), serde
//! structs with defaults and `deny_unknown_fields`, `--set key.path=value` overrides, and the
//! resolved config written back next to the results.
//!
//! Top-level tables: `experiment` (name), `[workload]` ([`sim::workload::WorkloadConfig`]),
//! the scenario tables `[cluster]`, `[pod]`, `[deployment]`, `[service]`, `[metrics]`
//! ([`sim::config`]), `[env]` ([`envs::ScalingEnvConfig`]), `[training]`, `[evaluation]`,
//! `[output]` and one `[[agents]]` entry per agent.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use agents::anomaly::AnomalyDetectorConfig;
use agents::baselines::ThresholdConfig;
use agents::dqn::{DqnConfig, DqnError};
use agents::hpa::HpaConfig;
use agents::nimbusguard_v0::V0Config;
use agents::oracle::{OracleConfig, OracleError, OracleVariant, ServiceBound};
use agents::peers::{KedaConfig, KpaConfig};
use agents::predictive::PredictiveConfig;
use agents::tabular_q::QLearningConfig;
use envs::ScalingEnvConfig;
use sim::config::{ClusterConfig, DeploymentConfig, MetricsConfig, PodConfig, ServiceConfig};
use sim::workload::WorkloadConfig;
use sim::Scenario;

/// The default experiment config, relative to the repository root.
pub const DEFAULT_CONFIG: &str = "experiments/configs/quickstart.toml";

/// The most evaluation seeds an experiment may ask for.
pub const MAX_SEEDS: u64 = 100_000;

/// Which algorithm an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// The Kubernetes HorizontalPodAutoscaler ([`agents::hpa`]).
    Hpa,
    /// A fixed replica count.
    Static,
    /// Step up above one CPU threshold, down below another.
    Threshold,
    /// Tabular Q-learning over the `scaling-v0` env, trained on the training window.
    QLearning,
    /// DQN (replay buffer, target network, double DQN) over the same env.
    Dqn,
    /// The HPA plus a floor for the forecast peak within the pod start-up time.
    Proactive,
    /// The clairvoyant oracle ([`agents::oracle`]): a cost bound, `instant` or `realistic`.
    Oracle,
    /// The original NimbusGuard Double DQN ([`agents::nimbusguard_v0`]), trained like `dqn`.
    NimbusguardV0,
    /// A KEDA-style scaler: the HPA on an External metric ([`agents::peers::Keda`]).
    Keda,
    /// Knative's pod autoscaler ([`agents::peers::Kpa`]).
    Kpa,
}

/// One `[[agents]]` entry. Only the table matching `kind` may be given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Unique name, used in tables, file names and comparisons.
    pub name: String,
    /// Algorithm.
    pub kind: AgentKind,
    /// Minimum time between two replica changes, seconds, applied by the env's guard.
    /// Default: `env.cooldown_s` for `q-learning` and `threshold`, 0 for `hpa` (it has its own
    /// stabilization window) and `static`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_s: Option<f64>,
    /// `kind = "hpa"`: the HPA's settings (default: CPU target 70%, production defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaConfig>,
    /// `kind = "static"`: the replica count (default `deployment.initial_replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// `kind = "threshold"`: thresholds and steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<ThresholdConfig>,
    /// `kind = "q-learning"`: hyperparameters (default: the seed's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q_learning: Option<QLearningConfig>,
    /// `kind = "dqn"`: hyperparameters (default: [`DqnConfig::default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dqn: Option<DqnConfig>,
    /// `kind = "q-learning"` or `"dqn"`: makes the agent a predictive hybrid (forecast features
    /// in its observation); `kind = "proactive"`: the rule's forecaster and horizon (default:
    /// [`PredictiveConfig::default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictive: Option<PredictiveConfig>,
    /// `kind = "oracle"`: `variant` (`instant` or `realistic`, the default) and the start-up
    /// quantile the realistic oracle orders ahead by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<OracleConfig>,
    /// `kind = "nimbusguard-v0"`: the seed's hyperparameters, reward and shield (default:
    /// [`V0Config::default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nimbusguard_v0: Option<V0Config>,
    /// `kind = "keda"`: the `ScaledObject`'s trigger, target, polling and cooldown (its HPA
    /// settings come from the `hpa` table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keda: Option<KedaConfig>,
    /// `kind = "kpa"`: Knative's autoscaler settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kpa: Option<KpaConfig>,
}

impl AgentSpec {
    /// Whether the agent is trained on the training window (`q-learning`, `dqn`,
    /// `nimbusguard-v0`).
    pub fn is_learned(&self) -> bool {
        matches!(
            self.kind,
            AgentKind::QLearning | AgentKind::Dqn | AgentKind::NimbusguardV0
        )
    }

    /// The oracle settings of a `kind = "oracle"` agent (its default when the table is absent).
    pub fn oracle_config(&self) -> Option<OracleConfig> {
        (self.kind == AgentKind::Oracle).then(|| self.oracle.clone().unwrap_or_default())
    }

    /// Whether this is a realistic oracle, the reference of the regret figures.
    pub fn is_realistic_oracle(&self) -> bool {
        self.oracle_config()
            .is_some_and(|o| o.variant == OracleVariant::Realistic)
    }

    /// The predictive settings of a hybrid or of the proactive rule (its default when the
    /// table is absent); `None` for every other agent.
    pub fn predictive_config(&self) -> Option<PredictiveConfig> {
        match (self.kind, &self.predictive) {
            (AgentKind::Proactive, p) => Some(p.clone().unwrap_or_default()),
            (_, Some(p)) => Some(p.clone()),
            _ => None,
        }
    }
}

/// `[training]`: how learned agents are trained.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Seed of the training run: episode `i` resets the env with
    /// `agents::tabular_q::episode_seed(seed, i)` (a SplitMix64 hash); it also seeds the
    /// `bursty` workload pattern.
    pub seed: u64,
}

/// `[evaluation]`: the benchmark over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// Number of seeds (episodes per agent), at least 2 for confidence intervals.
    pub seeds: u64,
    /// First seed; seeds are `first_seed .. first_seed + seeds`.
    pub first_seed: u64,
    /// Agent every other agent is compared against (paired over seeds).
    pub baseline: String,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            seeds: 10,
            first_seed: 1000,
            baseline: "hpa".into(),
        }
    }
}

/// `[output]`: what is written besides the summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Seeds whose time series go to `timeseries.csv` (the first N seeds).
    pub timeseries_seeds: u64,
    /// Seconds of simulated time per `timeseries.csv` row (rates and utilization averaged,
    /// latency percentiles weighted by requests served, replicas at the row's end). Default:
    /// none = one row per tick (`service.tick_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeseries_interval_s: Option<f64>,
    /// Draw the PNG plots.
    pub plots: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            timeseries_seeds: 1,
            timeseries_interval_s: None,
            plots: true,
        }
    }
}

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name (the MLflow experiment; default output folder `results/<name>`).
    pub experiment: String,
    /// One line on what the experiment asks.
    #[serde(default)]
    pub description: String,
    /// Traffic: trace or pattern, window, train/evaluation split, peak rate.
    #[serde(default)]
    pub workload: WorkloadConfig,
    /// Nodes.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Pod template.
    #[serde(default)]
    pub pod: PodConfig,
    /// Replica bounds.
    #[serde(default)]
    pub deployment: DeploymentConfig,
    /// Service model.
    #[serde(default)]
    pub service: ServiceConfig,
    /// Metrics pipeline.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The `scaling-v0` env (decision interval, cooldown, reward).
    #[serde(default)]
    pub env: ScalingEnvConfig,
    /// Training settings.
    #[serde(default)]
    pub training: TrainingConfig,
    /// Evaluation settings.
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    /// Output settings.
    #[serde(default)]
    pub output: OutputConfig,
    /// `[anomaly]`: a streaming anomaly detector run on the scraped request rate at every
    /// decision of every evaluation episode (flags counted in `episodes.csv`), and the source of
    /// the `anomaly_flag` feature of predictive agents. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<AnomalyDetectorConfig>,
    /// The agents to evaluate.
    pub agents: Vec<AgentSpec>,
}

impl ExperimentConfig {
    /// The simulator scenario of this experiment.
    pub fn scenario(&self) -> Scenario {
        Scenario {
            cluster: self.cluster.clone(),
            pod: self.pod.clone(),
            deployment: self.deployment.clone(),
            service: self.service.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Reads `path`, applies `overrides` (`key.path=value`, value parsed as TOML, else taken as
    /// a string) and validates the result.
    ///
    /// # Errors
    /// The file cannot be read; TOML syntax errors (with line and column); unknown keys; a
    /// field with an invalid value (named by its dotted path).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read experiment config {}", path.display()))?;
        let mut value: toml::Value =
            toml::from_str(&text).with_context(|| format!("invalid TOML in {}", path.display()))?;
        let cfg: ExperimentConfig = if overrides.is_empty() {
            // Straight from the text: errors carry the line, column and key.
            toml::from_str(&text)
                .map_err(|e| anyhow!("{}", e.to_string().trim_end()))
                .with_context(|| format!("invalid experiment config {}", path.display()))?
        } else {
            for o in overrides {
                apply_override(&mut value, o).with_context(|| format!("in --set {o}"))?;
            }
            serde_path_to_error::deserialize(value)
                .map_err(|e| {
                    let at = e.path().to_string();
                    anyhow!("`{at}`: {}", e.into_inner().message().trim_end())
                })
                .with_context(|| {
                    format!(
                        "invalid experiment config {} (with --set overrides)",
                        path.display()
                    )
                })?
        };
        cfg.validate()
            .with_context(|| format!("invalid experiment config {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks what serde cannot: value ranges, agent names and kind-specific tables.
    ///
    /// # Errors
    /// The first problem, naming the field.
    pub fn validate(&self) -> Result<()> {
        self.scenario().validate()?;
        self.env.validate()?;
        if self.experiment.is_empty()
            || !self
                .experiment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || self.experiment.starts_with('.')
        {
            bail!(
                "`experiment`: expected a name of letters, digits, '-', '_' or '.' (it names the \
                 output folder results/<experiment>), got {:?}",
                self.experiment
            );
        }
        self.workload.validate()?;
        if let Some(i) = self.output.timeseries_interval_s {
            if !(i.is_finite() && i > 0.0) {
                bail!("`output.timeseries_interval_s`: expected a number of seconds > 0, got {i}");
            }
        }
        if self.evaluation.seeds > MAX_SEEDS {
            bail!(
                "`evaluation.seeds`: expected at most {MAX_SEEDS} seeds, got {}",
                self.evaluation.seeds
            );
        }
        if self
            .evaluation
            .first_seed
            .checked_add(self.evaluation.seeds)
            .is_none()
        {
            bail!("`evaluation.first_seed`: first_seed + seeds overflows a 64-bit seed");
        }
        if self.evaluation.seeds < 2 {
            bail!(
                "`evaluation.seeds`: expected at least 2 seeds, got {}",
                self.evaluation.seeds
            );
        }
        if self.agents.is_empty() {
            bail!("`agents`: expected at least one [[agents]] entry");
        }
        for (i, a) in self.agents.iter().enumerate() {
            let at = format!("agents[{i}] ({})", a.name);
            if a.name.is_empty()
                || !a
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                bail!(
                    "`{at}.name`: expected letters, digits, '-', '_' or '.', got {:?}",
                    a.name
                );
            }
            if self.agents[..i].iter().any(|b| b.name == a.name) {
                bail!("`{at}.name`: duplicate agent name {:?}", a.name);
            }
            let given = [
                ("hpa", a.hpa.is_some(), AgentKind::Hpa),
                ("replicas", a.replicas.is_some(), AgentKind::Static),
                ("threshold", a.threshold.is_some(), AgentKind::Threshold),
                ("q_learning", a.q_learning.is_some(), AgentKind::QLearning),
                ("dqn", a.dqn.is_some(), AgentKind::Dqn),
                ("oracle", a.oracle.is_some(), AgentKind::Oracle),
                (
                    "nimbusguard_v0",
                    a.nimbusguard_v0.is_some(),
                    AgentKind::NimbusguardV0,
                ),
                ("keda", a.keda.is_some(), AgentKind::Keda),
                ("kpa", a.kpa.is_some(), AgentKind::Kpa),
            ];
            for (key, set, kind) in given {
                let also = key == "hpa" && matches!(a.kind, AgentKind::Proactive | AgentKind::Keda);
                if set && kind != a.kind && !also {
                    bail!("`{at}.{key}`: only allowed with kind = {:?}", kebab(kind));
                }
            }
            if a.predictive.is_some()
                && !matches!(
                    a.kind,
                    AgentKind::QLearning | AgentKind::Dqn | AgentKind::Proactive
                )
            {
                bail!("`{at}.predictive`: only allowed with kind = \"q-learning\", \"dqn\" or \"proactive\"");
            }
            if let Some(p) = a.predictive_config() {
                let step = if a.kind == AgentKind::Proactive {
                    self.hpa_config(a).sync_period_s as f64
                } else {
                    self.env.decision_interval_s
                };
                p.validate(step)
                    .map_err(|(field, e)| anyhow!("`{at}.predictive.{field}`: {e}"))?;
                if p.features.anomaly_flag && self.anomaly.is_none() {
                    bail!("`{at}.predictive.features.anomaly_flag`: needs an [anomaly] detector");
                }
                if a.kind == AgentKind::QLearning {
                    let q = a.q_learning.clone().unwrap_or_default();
                    let k = 1
                        + usize::from(p.features.uncertainty)
                        + usize::from(p.features.anomaly_flag);
                    let base = 4 + usize::from(self.env.trend_feature);
                    if q.extra_bins.len() + 4 != base + k {
                        bail!(
                            "`{at}.q_learning.extra_bins`: a predictive q-learning agent reads {} \
                             feature(s) after the first four (trend: {}, predictive: {k}); give \
                             that many bin counts, e.g. extra_bins = {:?}",
                            base + k - 4,
                            self.env.trend_feature,
                            vec![5; base + k - 4]
                        );
                    }
                }
            }
            let dqn_err = |table: &str, e: DqnError| match e {
                DqnError::InvalidConfig { field, reason } => {
                    anyhow!("`{at}.{table}.{field}`: {reason}")
                }
                e => anyhow!("`{at}.{table}`: {e}"),
            };
            if let Some(d) = &a.dqn {
                d.validate().map_err(|e| dqn_err("dqn", e))?;
            }
            if let Some(v) = &a.nimbusguard_v0 {
                v.validate().map_err(|e| dqn_err("nimbusguard_v0", e))?;
            }
            if let Some(o) = &a.oracle {
                o.validate().map_err(|e| match e {
                    OracleError::InvalidConfig { field, reason } => {
                        anyhow!("`{at}.oracle.{field}`: {reason}")
                    }
                })?;
            }
            if a.kind == AgentKind::Keda {
                agents::peers::Keda::new(a.keda.clone().unwrap_or_default(), self.hpa_config(a))
                    .map_err(|e| match e.field {
                        "hpa" => anyhow!("`{at}.hpa`: {}", e.reason),
                        f => anyhow!("`{at}.keda.{f}`: {}", e.reason),
                    })?;
            }
            if let Some(k) = &a.kpa {
                k.validate()
                    .map_err(|e| anyhow!("`{at}.kpa.{}`: {}", e.field, e.reason))?;
            }
            if a.kind == AgentKind::Oracle {
                if a.cooldown_s.is_some_and(|c| c > 0.0) {
                    bail!(
                        "`{at}.cooldown_s`: an oracle is a bound and decides without a cooldown; \
                         remove the key (or set 0)"
                    );
                }
                let bound = ServiceBound::new(&self.scenario(), self.workload.arrivals);
                if !bound.attainable() {
                    bail!(
                        "`service.slo_p95_ms`: no replica count meets a p95 of {} ms (one idle \
                         pod's service time alone has a p95 of ln 20 / mu = {:.0} ms), so \
                         `{at}` would be no bound; raise the objective or remove the oracle",
                        self.service.slo_p95_ms,
                        bound.idle_p95_ms()
                    );
                }
            }
            if let Some(c) = a.cooldown_s {
                if !(c.is_finite() && (0.0..=sim::config::MAX_VALUE).contains(&c)) {
                    bail!("`{at}.cooldown_s`: expected a number of seconds in [0, 1e9], got {c}");
                }
            }
            if let Some(r) = a.replicas {
                let d = &self.deployment;
                if !(d.min_replicas..=d.max_replicas).contains(&r) {
                    bail!(
                        "`{at}.replicas`: expected a value in [{}, {}], got {r}",
                        d.min_replicas,
                        d.max_replicas
                    );
                }
            }
            if a.kind == AgentKind::Hpa {
                agents::hpa::Hpa::new(self.hpa_config(a))
                    .map_err(|e| anyhow!("`{at}.hpa`: {e}"))?;
            }
            if let Some(t) = &a.threshold {
                t.validate().map_err(|e| anyhow!("`{at}.threshold`: {e}"))?;
            }
            if let Some(q) = &a.q_learning {
                q.validate()
                    .map_err(|e| anyhow!("`{at}.q_learning`: {e}"))?;
            }
        }
        if let Some(d) = &self.anomaly {
            d.validate().map_err(|e| anyhow!("`anomaly`: {e}"))?;
            if d.needs_forecaster() {
                bail!(
                    "`anomaly.kind`: {:?} needs a trained forecaster; in experiments use \
                     rolling-mad or ewma-zscore (the learned detector is evaluated by \
                     `nimbusguard anomaly`)",
                    d.kind()
                );
            }
        }
        if !self
            .agents
            .iter()
            .any(|a| a.name == self.evaluation.baseline)
        {
            bail!(
                "`evaluation.baseline`: no agent named {:?} (agents: {})",
                self.evaluation.baseline,
                self.agents
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }

    /// The HPA settings an `hpa` agent runs with: its `hpa` table (or the defaults with the
    /// Deployment's bounds), its bounds narrowed to the Deployment's, which always apply.
    pub fn hpa_config(&self, a: &AgentSpec) -> HpaConfig {
        let d = &self.deployment;
        let mut h = a.hpa.clone().unwrap_or(HpaConfig {
            min_replicas: d.min_replicas,
            max_replicas: d.max_replicas,
            ..HpaConfig::default()
        });
        h.min_replicas = h.min_replicas.max(d.min_replicas).min(d.max_replicas);
        h.max_replicas = h.max_replicas.min(d.max_replicas).max(h.min_replicas);
        h
    }

    /// The cooldown an agent runs with, seconds.
    pub fn cooldown_s(&self, a: &AgentSpec) -> f64 {
        a.cooldown_s.unwrap_or(match a.kind {
            AgentKind::QLearning
            | AgentKind::Dqn
            | AgentKind::NimbusguardV0
            | AgentKind::Threshold => self.env.cooldown_s,
            AgentKind::Hpa
            | AgentKind::Proactive
            | AgentKind::Static
            | AgentKind::Oracle
            | AgentKind::Keda
            | AgentKind::Kpa => 0.0,
        })
    }
}

/// The kebab-case name of a kind (as written in configs).
pub fn kebab(kind: AgentKind) -> &'static str {
    match kind {
        AgentKind::Hpa => "hpa",
        AgentKind::Static => "static",
        AgentKind::Threshold => "threshold",
        AgentKind::QLearning => "q-learning",
        AgentKind::Dqn => "dqn",
        AgentKind::Proactive => "proactive",
        AgentKind::Oracle => "oracle",
        AgentKind::NimbusguardV0 => "nimbusguard-v0",
        AgentKind::Keda => "keda",
        AgentKind::Kpa => "kpa",
    }
}

/// Sets `key.path=value` in a TOML document. Path segments that are integers index arrays
/// (`agents.0.kind=static`). The value is parsed as a TOML value (`3`, `1.5`, `true`,
/// `"text"`, `[1, 2]`); anything that does not parse is taken as a string.
///
/// # Errors
/// No `=`, an empty key, indexing a non-array or a missing array element.
pub fn apply_override(doc: &mut toml::Value, spec: &str) -> Result<()> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| anyhow!("expected key.path=value"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        bail!("expected a dotted key like workload.peak_rps, got {key:?}");
    }
    let value = parse_value(raw.trim());
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = doc;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        cur = match cur {
            toml::Value::Table(t) => {
                if last {
                    t.insert((*part).to_string(), value);
                    return Ok(());
                }
                t.entry((*part).to_string())
                    .or_insert_with(|| toml::Value::Table(toml::map::Map::new()))
            }
            toml::Value::Array(a) => {
                let idx: usize = part.parse().map_err(|_| {
                    anyhow!(
                        "`{}` is an array: expected an index, got {part:?}",
                        parts[..i].join(".")
                    )
                })?;
                let len = a.len();
                let slot = a.get_mut(idx).ok_or_else(|| {
                    anyhow!(
                        "`{}` has {len} elements, no index {idx}",
                        parts[..i].join(".")
                    )
                })?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            _ => bail!("`{}` is not a table", parts[..i].join(".")),
        };
    }
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Where relative paths in a config (the trace) are resolved: the first of the current
/// directory, the config file's directory and the repository root this binary was built from
/// in which the trace exists (the current directory if none has it, so the error names the
/// path as written).
pub fn base_dir(cfg: &ExperimentConfig, config_path: &Path) -> PathBuf {
    let here = PathBuf::from(".");
    let Some(t) = cfg.workload.trace.as_ref().filter(|t| t.is_relative()) else {
        return here;
    };
    let config_dir = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.clone());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [here.clone(), config_dir, root]
        .into_iter()
        .find(|d| d.join(t).exists())
        .unwrap_or(here)
}

/// Reads the TOML file `path` as a `T` after applying the `--set` `overrides` (as
/// [`apply_override`]); `what` names the kind of file in errors (e.g. `operator config`). The
/// commands whose configs are not experiment configs (`operator`, `live`) read them this way.
///
/// # Errors
/// The file cannot be read; TOML syntax errors (line and column); a bad override; unknown
/// keys or a field of the wrong type (named by its dotted path).
pub fn load_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    overrides: &[String],
    what: &str,
) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let mut value: toml::Value =
        toml::from_str(&text).with_context(|| format!("{}: not valid TOML", path.display()))?;
    for o in overrides {
        apply_override(&mut value, o).with_context(|| format!("bad --set {o}"))?;
    }
    serde_path_to_error::deserialize(value)
        .map_err(|e| anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))
}

/// `path` if it exists, else the same relative path under the repository root this binary was
/// built from (so the default config is found from any folder of the checkout).
pub fn locate_config(path: &Path) -> PathBuf {
    if path.exists() || path.is_absolute() {
        return path.to_path_buf();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    if root.exists() {
        root
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_set_nested_keys_and_array_elements() {
        let mut v: toml::Value =
            toml::from_str("[workload]\npeak_rps = 1.0\n[[agents]]\nname = \"a\"\n").unwrap();
        apply_override(&mut v, "workload.peak_rps=250").unwrap();
        apply_override(&mut v, "workload.trace=datasets/x.csv").unwrap();
        apply_override(&mut v, "agents.0.name=\"b\"").unwrap();
        assert_eq!(v["workload"]["peak_rps"].as_integer(), Some(250));
        assert_eq!(v["workload"]["trace"].as_str(), Some("datasets/x.csv"));
        assert_eq!(v["agents"][0]["name"].as_str(), Some("b"));
        assert!(apply_override(&mut v, "agents.3.name=c").is_err());
        assert!(apply_override(&mut v, "novalue").is_err());
        assert!(apply_override(&mut v, "a..b=1").is_err());
    }
}
