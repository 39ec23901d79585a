//! The config of `nimbusguard operator` (TOML, unknown keys rejected at every level).
//!
//! ```toml
//! [operator]              # loop, safety limits, own endpoint (adapters::operator::LoopConfig)
//! decision_interval_s = 15
//! min_replicas = 1
//! max_replicas = 8
//! max_step = 4
//! cooldown_s = 30
//! listen = "127.0.0.1:9464"   # /metrics, /trigger, /health
//! trace = "operator-trace.jsonl"
//!
//! [agent]                 # who decides on fresh metrics
//! kind = "hpa"            # the HPA rules of [hpa]; or:
//! # kind = "saved", run = "results/quickstart", name = "q-learning"
//!
//! [hpa]                   # the HPA rules (agent "hpa" and the fallback): agents::hpa::HpaConfig
//! target_cpu_utilization_percent = 60
//!
//! [slo]                   # what the reward scores against
//! [reward]                # reward kind and band: envs::ScalingEnvConfig's reward fields
//! [prometheus]            # url, timeout_s
//! [state]                 # PromQL and pod requests: adapters::state::StateConfig
//! [scaler]                # kind = "process" + adapters::process::ProcessScalerConfig
//! [kafka]                 # optional: trigger events from Kafka (adapters::kafka::KafkaTriggerConfig)
//! brokers = "127.0.0.1:9092"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use adapters::operator::stages::SloConfig;
use adapters::operator::{LoopConfig, SafetyConfig};
use adapters::process::ProcessScalerConfig;
use adapters::state::StateConfig;
use adapters::KafkaTriggerConfig;
use agents::hpa::HpaConfig;
use anyhow::{bail, Context, Result};
use envs::RewardKind;
use serde::{Deserialize, Serialize};

/// The whole operator config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// The loop and its own endpoint.
    #[serde(default)]
    pub operator: OperatorSection,
    /// Who decides on fresh metrics.
    #[serde(default)]
    pub agent: AgentSource,
    /// The HPA rules: the `hpa` agent and the fallback on stale metrics. Default: the
    /// Kubernetes defaults ([`HpaConfig::default`]), bounds taken from `[operator]`.
    #[serde(default)]
    pub hpa: HpaConfig,
    /// The objective the reward scores against.
    #[serde(default)]
    pub slo: SloConfig,
    /// The reward function.
    #[serde(default)]
    pub reward: RewardSection,
    /// Where Prometheus answers.
    #[serde(default)]
    pub prometheus: PrometheusSection,
    /// PromQL and pod requests.
    #[serde(default)]
    pub state: StateConfig,
    /// What runs the replicas.
    pub scaler: ScalerSection,
    /// Trigger events consumed from Kafka, each forcing a decision like `POST /trigger`.
    /// Default none (no consumer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaTriggerConfig>,
}

/// `[operator]`: the loop's settings, the safety limits and the operator's own endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorSection {
    /// Time between two decisions, seconds. Default 15 (the HPA's sync period).
    pub decision_interval_s: f64,
    /// Lowest replica count the operator sets. Default 1; must be >= 1.
    pub min_replicas: u32,
    /// Highest replica count the operator sets. Default 10.
    pub max_replicas: u32,
    /// Largest change of one decision, pods. Default 4.
    pub max_step: u32,
    /// Minimum time between two changes, seconds (0 = none). Default 30.
    pub cooldown_s: f64,
    /// Address of `/metrics`, `/trigger` and `/health`. Default `127.0.0.1:9464` (port 0 =
    /// any free port; the chosen one is printed at start).
    pub listen: SocketAddr,
    /// A JSON-lines file that receives one decision trace per decision (relative to the
    /// current folder). Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<PathBuf>,
    /// Replicas to start with. Default 1.
    pub initial_replicas: u32,
}

impl Default for OperatorSection {
    fn default() -> Self {
        let l = LoopConfig::default();
        Self {
            decision_interval_s: l.decision_interval_s,
            min_replicas: l.safety.min_replicas,
            max_replicas: l.safety.max_replicas,
            max_step: l.safety.max_step,
            cooldown_s: l.safety.cooldown_s,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            trace: None,
            initial_replicas: 1,
        }
    }
}

/// `[agent]`: who decides on fresh metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AgentSource {
    /// The HPA rules of `[hpa]`.
    #[default]
    Hpa,
    /// Agent `name` of a finished `nimbusguard run` (its output folder `run`: `config.toml`
    /// and `policies/`), e.g. a Q-learning or DQN policy trained in the simulator.
    Saved {
        /// The run's output folder.
        run: PathBuf,
        /// The agent's name in that run's config.
        name: String,
    },
}

/// `[reward]`: which reward scores the decisions (the simulated env's, see
/// [`envs::RewardCalculator`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RewardSection {
    /// `seed-discrete` (default) or `weighted`.
    pub kind: RewardKind,
    /// Lower edge of the utilization band (fraction of CPU request). Default 0.5.
    pub band_low: f64,
    /// Upper edge of the band. Default 0.8.
    pub band_high: f64,
    /// Utilization at which `weighted`'s efficiency term is 1. Default 0.7.
    pub target_utilization: f64,
    /// Sliding window of `weighted`, seconds. Default 600.
    pub window_s: f64,
}

impl Default for RewardSection {
    fn default() -> Self {
        let e = envs::ScalingEnvConfig::default();
        Self {
            kind: e.reward,
            band_low: e.band_low,
            band_high: e.band_high,
            target_utilization: e.target_utilization,
            window_s: e.window_s,
        }
    }
}

/// `[prometheus]`: the Prometheus server the state comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusSection {
    /// Base URL. Default `http://127.0.0.1:9090`.
    pub url: String,
    /// Timeout of one query, seconds. Default 2.
    pub timeout_s: f64,
}

impl Default for PrometheusSection {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9090".into(),
            timeout_s: 2.0,
        }
    }
}

/// `[scaler]`: what runs the replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ScalerSection {
    /// Local `workload-app` processes behind a round-robin front
    /// ([`adapters::process::ProcessScaler`]); the other keys are its config.
    Process(ProcessScalerConfig),
}

impl OperatorSection {
    /// The loop settings these fields make.
    pub fn loop_config(&self) -> LoopConfig {
        LoopConfig {
            decision_interval_s: self.decision_interval_s,
            safety: SafetyConfig {
                min_replicas: self.min_replicas,
                max_replicas: self.max_replicas,
                max_step: self.max_step,
                cooldown_s: self.cooldown_s,
            },
        }
    }
}

impl OperatorConfig {
    /// Reads `path`, applies `--set key.path=value` overrides, and checks every section.
    ///
    /// # Errors
    /// The file cannot be read; TOML syntax errors (line and column); unknown keys; a field
    /// with a wrong type or an invalid value (named by its dotted path).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let cfg: OperatorConfig = crate::config::load_toml(path, overrides, "operator config")?;
        cfg.validate()
            .with_context(|| format!("invalid operator config {}", path.display()))?;
        Ok(cfg)
    }

    /// Checks every section.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self) -> Result<()> {
        self.operator
            .loop_config()
            .validate()
            .map_err(anyhow::Error::msg)?;
        let s = &self.operator;
        let init = self.operator.initial_replicas;
        if !(s.min_replicas..=s.max_replicas).contains(&init) {
            bail!(
                "operator.initial_replicas: expected within [min_replicas, max_replicas] = [{}, {}], got {init}",
                s.min_replicas,
                s.max_replicas
            );
        }
        self.hpa_rules()
            .validate()
            .map_err(|e| anyhow::anyhow!("hpa: {e}"))?;
        self.state.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        if !(self.prometheus.timeout_s.is_finite() && self.prometheus.timeout_s > 0.0) {
            bail!(
                "prometheus.timeout_s: expected a finite number > 0 seconds, got {}",
                self.prometheus.timeout_s
            );
        }
        if let Some(k) = &self.kafka {
            k.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let r = &self.reward;
        if !(0.0..=r.band_high).contains(&r.band_low) || !r.band_high.is_finite() {
            bail!(
                "reward.band_low/band_high: expected 0 <= band_low <= band_high, got {} and {}",
                r.band_low,
                r.band_high
            );
        }
        Ok(())
    }

    /// The HPA rules with the operator's bounds and a sync period equal to the decision
    /// interval (rounded up to whole seconds).
    pub fn hpa_rules(&self) -> HpaConfig {
        let s = &self.operator;
        HpaConfig {
            min_replicas: s.min_replicas,
            max_replicas: s.max_replicas,
            sync_period_s: s.decision_interval_s.ceil().max(1.0) as u64,
            ..self.hpa.clone()
        }
    }

    /// The env config the reward is computed with.
    pub fn reward_env(&self) -> envs::ScalingEnvConfig {
        let r = &self.reward;
        envs::ScalingEnvConfig {
            decision_interval_s: self.operator.decision_interval_s,
            reward: r.kind,
            band_low: r.band_low,
            band_high: r.band_high,
            target_utilization: r.target_utilization,
            window_s: r.window_s.max(self.operator.decision_interval_s),
            ..envs::ScalingEnvConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[scaler]\nkind = \"process\"\nbinary = \"workload-app\"\n";

    #[test]
    fn kafka_section_is_optional_checked_and_strict() {
        let cfg: OperatorConfig = toml::from_str(BASE).unwrap();
        assert!(cfg.kafka.is_none());
        let cfg: OperatorConfig = toml::from_str(&format!(
            "{BASE}[kafka]\nbrokers = \"127.0.0.1:9092\"\ntopic = \"t\"\n"
        ))
        .unwrap();
        let k = cfg.kafka.as_ref().unwrap();
        assert_eq!(
            (k.brokers.as_str(), k.topic.as_str()),
            ("127.0.0.1:9092", "t")
        );
        assert_eq!(k.group_id, "nimbusguard-operator");
        cfg.validate().unwrap();
        let bad: OperatorConfig =
            toml::from_str(&format!("{BASE}[kafka]\nbrokers = \"nohost\"\n")).unwrap();
        let err = format!("{:#}", bad.validate().unwrap_err());
        assert!(err.contains("kafka.brokers"), "{err}");
        assert!(toml::from_str::<OperatorConfig>(&format!(
            "{BASE}[kafka]\nbrokers = \"a:1\"\nbrokerz = 1\n"
        ))
        .is_err());
    }

    /// The operator's Kafka events and the workload app's `POST /events/trigger` bodies are the
    /// same JSON: the same event type names, both ways.
    #[test]
    fn kafka_event_types_match_the_workload_apps() {
        use adapters::kafka::EventType as Operator;
        use workload::app::EventType as App;
        assert_eq!(Operator::ALL.len(), App::ALL.len());
        for (o, a) in Operator::ALL.iter().zip(App::ALL) {
            assert_eq!(o.as_str(), a.as_str());
        }
        let body = workload::app::TriggerEvent {
            event_type: App::LatencyDegradation,
            service: "web".into(),
            value: 250.0,
        };
        let json = serde_json::to_vec(&body).unwrap();
        let parsed = adapters::TriggerEvent::parse(&json, 1024).unwrap();
        assert_eq!(parsed.event_type, Operator::LatencyDegradation);
        assert_eq!((parsed.service.as_str(), parsed.value), ("web", 250.0));
    }
}
