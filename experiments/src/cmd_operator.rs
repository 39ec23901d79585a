//! `nimbusguard operator CONFIG.toml`: the live operator loop (see
//! [`adapters::operator`]) over Prometheus and a scaler, deciding with the HPA rules or an agent
//! trained in the simulator ([`crate::saved_agent`]).
//!
//! At start it prints one JSON line to stdout,
//! `{"event":"operator","listen":"ADDR","front":"ADDR","agent":"NAME"}`: the operator's own
//! endpoint (`/metrics`, `POST /trigger`, `/health`) and the front the traffic should go to.
//! It runs until SIGTERM or SIGINT (or `--for-s` seconds), then stops every replica it started
//! and prints a JSON summary line `{"event":"stopped","decisions":N,"fallbacks":N,...}`.
//!
//! With a `[kafka]` section it also consumes trigger events from Kafka
//! ([`adapters::kafka::KafkaTriggers`]); each valid one forces a decision, as `POST /trigger`
//! does, and the summary line counts them (`kafka_events`, `kafka_malformed`).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use adapters::operator::stages::{DecisionAgent, DecisionSource, RewardStage};
use adapters::operator::telemetry::{OperatorMetrics, TelemetryServer};
use adapters::operator::Operator;
use adapters::{
    KafkaTriggerMetrics, KafkaTriggers, ProcessScaler, PrometheusClient, Scaler, StateObserver,
};
use agents::autoscaler::Autoscaler;
use agents::hpa::Hpa;
use anyhow::{anyhow, Context, Result};
use envs::RewardCalculator;

use crate::operator_config::{AgentSource, OperatorConfig, ScalerSection};
use crate::saved_agent::saved_agent;

/// Runs the operator of the config at `path` (with `--set` overrides) until a signal, or for
/// `for_s` seconds.
///
/// # Errors
/// The config is invalid; the agent cannot be built (missing run folder or policy); the scaler
/// cannot start its front or its first replicas; the operator's endpoint cannot be bound; the
/// trace file cannot be created. Once running, failures (Prometheus down, a failed scale) are
/// handled by the loop, logged and counted, never fatal.
pub fn execute(path: &Path, overrides: &[String], for_s: Option<f64>) -> Result<()> {
    let cfg = OperatorConfig::load(path, overrides)?;
    let hpa = cfg.hpa_rules();
    let agent: Box<dyn Autoscaler> = match &cfg.agent {
        AgentSource::Hpa => Box::new(Hpa::new(hpa.clone()).map_err(|e| anyhow!("hpa: {e}"))?),
        AgentSource::Saved { run, name } => {
            saved_agent(run, name)
                .with_context(|| format!("agent: cannot serve agent {name} of {}", run.display()))?
                .autoscaler
        }
    };
    let fallback = Hpa::new(hpa).map_err(|e| anyhow!("hpa: {e}"))?;
    let client = PrometheusClient::new(
        &cfg.prometheus.url,
        Duration::from_secs_f64(cfg.prometheus.timeout_s),
    )
    .context("prometheus.url")?;
    let observer = StateObserver::new(client, cfg.state.clone(), SystemTime::now())?;
    let ScalerSection::Process(pc) = &cfg.scaler;
    let mut scaler = ProcessScaler::new(pc.clone()).context("cannot start the process scaler")?;
    scaler
        .set_replicas(cfg.operator.initial_replicas)
        .context("cannot start the initial replicas")?;
    let front = scaler.front().addr();
    let (tx, rx) = mpsc::channel();
    let kafka_metrics = KafkaTriggerMetrics::new();
    // The Kafka counters are served on the operator's /metrics with its own.
    let metrics = OperatorMetrics::with(|r| kafka_metrics.register(r));
    let kafka = match &cfg.kafka {
        Some(k) => Some(
            KafkaTriggers::start(k, kafka_metrics.clone(), tx.clone())
                .context("kafka: cannot start the trigger consumer")?,
        ),
        None => None,
    };
    let server = TelemetryServer::start(cfg.operator.listen, metrics.clone(), tx)
        .with_context(|| format!("operator.listen: cannot bind {}", cfg.operator.listen))?;
    let trace: Option<Box<dyn Write + Send>> = match &cfg.operator.trace {
        Some(p) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(p)
                .with_context(|| format!("operator.trace: cannot create {}", p.display()))?,
        ))),
        None => None,
    };
    let agent_name = agent.name().to_string();
    let reward = RewardStage::new(RewardCalculator::new(&cfg.reward_env()), cfg.slo);
    let mut op = Operator::new(
        &cfg.operator.loop_config(),
        observer,
        DecisionAgent::new(agent, fallback),
        scaler,
        reward,
        metrics,
        trace,
    );
    println!(
        "{}",
        serde_json::json!({
            "event": "operator",
            "listen": server.addr().to_string(),
            "front": front.to_string(),
            "agent": agent_name,
        })
    );
    let _ = std::io::stdout().flush();

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install the signal handlers")?;
    }
    let until = for_s.map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    op.run(&rx, &stop, until);

    let h = op.history();
    let decisions = h.len();
    let fallbacks = h
        .iter()
        .filter(|t| t.decision.source == DecisionSource::HpaFallback)
        .count();
    let failures = h.iter().filter(|t| t.action.error.is_some()).count();
    let max_replicas = h.iter().map(|t| t.action.to).max().unwrap_or(0);
    let final_replicas = op.scaler().desired_replicas();
    drop(kafka);
    drop(op);
    drop(server);
    println!(
        "{}",
        serde_json::json!({
            "event": "stopped",
            "decisions": decisions,
            "fallbacks": fallbacks,
            "action_failures": failures,
            "max_replicas": max_replicas,
            "final_replicas": final_replicas,
            "kafka_events": kafka_metrics.events_total(),
            "kafka_malformed": kafka_metrics.malformed.get(),
        })
    );
    Ok(())
}
