//! Sim-to-real: the live and simulated episodes of the same segment, side by side per agent
//! (`sim_to_real.json`, schema `nimbusguard.sim_to_real/v1`, and `sim_to_real.md`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::ExperimentConfig;
use crate::live_config::LiveConfig;
use crate::records::EpisodeRecord;

/// Schema id of `sim_to_real.json`.
pub const SCHEMA: &str = "nimbusguard.sim_to_real/v1";

/// The metrics compared, in table order (names of [`crate::records::METRIC_NAMES`]).
pub const COMPARED: [&str; 7] = [
    "p95_latency_ms",
    "p99_latency_ms",
    "cpu_utilization_mean",
    "pod_hours",
    "slo_violation_pct",
    "dropped_pct",
    "scaling_actions",
];

/// One metric of one agent: the mean over the simulated seeds and over the live rounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// Mean over the simulated episodes (units of the metric).
    pub sim: f64,
    /// Mean over the live episodes.
    pub live: f64,
    /// `live - sim`.
    pub gap: f64,
}

/// One agent's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentComparison {
    /// Agent name.
    pub agent: String,
    /// Simulated episodes averaged (seeds).
    pub sim_episodes: usize,
    /// Live episodes averaged (rounds).
    pub live_episodes: usize,
    /// Metric name -> pair, for every name of [`COMPARED`].
    pub metrics: BTreeMap<String, Pair>,
}

/// The per-agent comparison of `sim` and `live` episodes, agents in `order`; an agent with no
/// live (or no simulated) episode is left out.
pub fn compare(
    sim: &[EpisodeRecord],
    live: &[EpisodeRecord],
    order: &[String],
) -> Vec<AgentComparison> {
    let mean = |eps: &[&EpisodeRecord], m: &str| {
        eps.iter().filter_map(|e| e.metrics.get(m)).sum::<f64>() / eps.len() as f64
    };
    order
        .iter()
        .filter_map(|agent| {
            let s: Vec<&EpisodeRecord> = sim.iter().filter(|e| &e.agent == agent).collect();
            let l: Vec<&EpisodeRecord> = live.iter().filter(|e| &e.agent == agent).collect();
            if s.is_empty() || l.is_empty() {
                return None;
            }
            let metrics = COMPARED
                .iter()
                .map(|m| {
                    let (sim, live) = (mean(&s, m), mean(&l, m));
                    (
                        (*m).to_string(),
                        Pair {
                            sim,
                            live,
                            gap: live - sim,
                        },
                    )
                })
                .collect();
            Some(AgentComparison {
                agent: agent.clone(),
                sim_episodes: s.len(),
                live_episodes: l.len(),
                metrics,
            })
        })
        .collect()
}

/// Writes `sim_to_real.json` and `sim_to_real.md` under `dir`; returns the Markdown.
///
/// # Errors
/// The files cannot be written.
pub fn write_comparison(
    dir: &Path,
    table: &[AgentComparison],
    seg_cfg: &ExperimentConfig,
    live: &LiveConfig,
) -> Result<String> {
    let json = serde_json::json!({
        "schema": SCHEMA,
        "experiment": live.experiment,
        "scenario": seg_cfg.experiment,
        "app_args": live.app.args,
        "agents": table,
    });
    let p = dir.join("sim_to_real.json");
    std::fs::write(&p, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("cannot write {}", p.display()))?;
    let md = render(table);
    let p = dir.join("sim_to_real.md");
    std::fs::write(&p, &md).with_context(|| format!("cannot write {}", p.display()))?;
    Ok(md)
}

/// The Markdown table: one row per agent and metric.
pub fn render(table: &[AgentComparison]) -> String {
    let mut md = String::from(
        "# Sim-to-real\n\nSame segment, live (real processes) and simulated; means over the live \
         rounds and the simulated seeds.\n\n| agent | metric | simulated | live | live - sim |\n\
         |---|---|---:|---:|---:|\n",
    );
    for a in table {
        for m in COMPARED {
            let p = a.metrics[m];
            md.push_str(&format!(
                "| {} | {m} | {} | {} | {} |\n",
                a.agent,
                fmt(p.sim),
                fmt(p.live),
                fmt(p.gap)
            ));
        }
    }
    md
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::episode;

    #[test]
    fn means_per_agent_and_gaps() {
        let sim = vec![
            episode("hpa", "hpa", 0, 1.0),
            episode("hpa", "hpa", 1, 3.0),
            episode("q", "q-learning", 0, 5.0),
        ];
        let live = vec![episode("hpa", "hpa", 0, 2.5)];
        let t = compare(&sim, &live, &["q".into(), "hpa".into()]);
        // q has no live episode: left out.
        assert_eq!(t.len(), 1);
        let hpa = &t[0];
        assert_eq!((hpa.sim_episodes, hpa.live_episodes), (2, 1));
        let p = hpa.metrics["pod_hours"];
        assert_eq!((p.sim, p.live, p.gap), (2.0, 2.5, 0.5));
        let md = render(&t);
        assert!(
            md.contains("| hpa | pod_hours | 2.00 | 2.50 | 0.5000 |"),
            "{md}"
        );
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| hpa")).count(),
            COMPARED.len()
        );
    }
}
