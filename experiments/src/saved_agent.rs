//! Agents of finished runs, rebuilt for serving: [`saved_agent`] reads a `nimbusguard run`
//! output folder (`config.toml`, `policies/`) and returns the agent as an
//! [`Autoscaler`], with the encoder and action map of the env it was trained in, for the live
//! operator (`nimbusguard operator`).

use std::path::Path;

use agents::autoscaler::Autoscaler;
use agents::dqn::Dqn;
use agents::tabular_q::QLearning;
use anyhow::{anyhow, bail, Context, Result};

use crate::config::{kebab, AgentKind, ExperimentConfig};
use crate::runner::{build_agent, env_for, traffic, Trained, TrainedPolicy};

/// An agent of a finished `nimbusguard run`, rebuilt from its output folder for serving (the
/// live operator): its config, the trained policy from `policies/`, and the encoder and action
/// map of the env it was trained in.
pub struct SavedAgent {
    /// The run's resolved config (`config.toml`).
    pub config: ExperimentConfig,
    /// The agent, ready to decide.
    pub autoscaler: Box<dyn Autoscaler>,
    /// The workload peak its observations are scaled by, requests per second.
    pub peak_rps: f64,
}

/// Rebuilds agent `name` of the run in `run_dir` (a `nimbusguard run --out` folder:
/// `config.toml` plus `policies/<name>.json` for Q-learning or `policies/<name>.dqn/` for DQN).
/// Rule-based agents (hpa, static, threshold, keda, kpa) need no policy file.
///
/// # Errors
/// `config.toml` is missing or invalid; no agent `name` in it; its policy file is missing or
/// unreadable; the agent needs a fitted forecaster (predictive, proactive) or the trace (oracle),
/// which are not saved.
pub fn saved_agent(run_dir: &Path, name: &str) -> Result<SavedAgent> {
    let config_path = run_dir.join("config.toml");
    let cfg = ExperimentConfig::load(&config_path, &[])
        .with_context(|| format!("while loading the run config {}", config_path.display()))?;
    let spec = cfg
        .agents
        .iter()
        .find(|a| a.name == name)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = cfg.agents.iter().map(|a| a.name.as_str()).collect();
            anyhow!(
                "{}: no agent named {name:?} (agents: {})",
                config_path.display(),
                names.join(", ")
            )
        })?;
    if spec.predictive_config().is_some()
        || matches!(spec.kind, AgentKind::Proactive | AgentKind::Oracle)
    {
        bail!(
            "agent {name} ({}) cannot be served from a run folder: it needs a fitted forecaster \
             or the trace itself, which runs do not save",
            kebab(spec.kind)
        );
    }
    let t = traffic(&cfg, &config_path)?;
    let mut trained = Trained::default();
    let policies = run_dir.join("policies");
    match spec.kind {
        AgentKind::QLearning => {
            let p = policies.join(format!("{name}.json"));
            let q = QLearning::load(&p)
                .with_context(|| format!("cannot load the Q-learning policy {}", p.display()))?;
            trained
                .policies
                .push((name.to_string(), TrainedPolicy::QLearning(Box::new(q))));
        }
        AgentKind::Dqn | AgentKind::NimbusguardV0 => {
            let p = policies.join(format!("{name}.dqn"));
            let d = Dqn::load(&p)
                .with_context(|| format!("cannot load the DQN policy {}", p.display()))?;
            trained
                .policies
                .push((name.to_string(), TrainedPolicy::Dqn(Box::new(d))));
        }
        _ => {}
    }
    let env = env_for(&cfg, &spec, t.evaluation.clone(), t.peak_rps)?;
    let autoscaler = build_agent(&cfg, &spec, &trained, &env, &t, 0)?;
    Ok(SavedAgent {
        config: cfg,
        autoscaler,
        peak_rps: t.peak_rps,
    })
}
