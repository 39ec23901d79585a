//! Reference bounds in the summaries: every agent's cost and SLO regret against the realistic
//! clairvoyant oracle (`kind = "oracle"`, [`agents::oracle`]) and the share of the gap between
//! the HPA and that oracle it closes.
//!
//! Per agent, paired by seed with the oracle (`a` the agent, `o` the oracle):
//! - `cost_regret_pct` = `100 (pod_hours_a - pod_hours_o) / pod_hours_o`, a [`Summary`] over
//!   seeds (% of the oracle's pod-hours; negative when the agent is cheaper, which it can only be
//!   by violating the SLO more);
//! - `slo_regret_pct` = `slo_violation_pct_a - slo_violation_pct_o` over seeds, in percentage
//!   points of SLO-violation time;
//! - `cost_gap_closed_pct` = `100 (mean_h - mean_a) / (mean_h - mean_o)` on pod-hours, with `h`
//!   the HPA (the baseline if it is an `hpa` agent, else the first `hpa` agent): 0 = as the HPA,
//!   100 = as the oracle; `slo_gap_closed_pct` the same on SLO-violation time. Absent unless
//!   the HPA exceeds the oracle by at least 0.1% of the oracle's pod-hours, or 0.005 pp of SLO
//!   time (a smaller gap is noise; a negative one, an HPA with less SLO violation than the
//!   oracle, has no share to close).
//!
//! [`add_bounds`] fills these into a [`SummaryJson`]; [`render_bounds`] is the Markdown section.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::records::EpisodeRecord;
use crate::report::{by_seed, SummaryJson};
use crate::stats::Summary;

/// Which agents the bounds of a summary refer to (`summary.json`'s `bounds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundsReference {
    /// The realistic oracle every regret is measured against.
    pub oracle: String,
    /// The HPA whose gap to the oracle the `*_gap_closed_pct` figures divide by (`null` when
    /// the experiment has no `hpa` agent; the shares are then left out).
    pub hpa: Option<String>,
}

/// One agent's figures against the oracle: fields of `summary.json`'s `agents.<name>` (each
/// left out when it cannot be computed, e.g. without an oracle in the experiment).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Regret {
    /// Pod-hours above the oracle's, % of the oracle's, over seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_regret_pct: Option<Summary>,
    /// SLO-violation time above the oracle's, percentage points, over seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_regret_pct: Option<Summary>,
    /// Share of the HPA-to-oracle pod-hours gap the agent closes, % (means).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_gap_closed_pct: Option<f64>,
    /// Share of the HPA-to-oracle SLO-violation gap the agent closes, % (means).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_gap_closed_pct: Option<f64>,
}

/// Smallest HPA-to-oracle gaps a share is computed for: 0.1% of the oracle's pod-hours, and
/// 0.005 percentage points of SLO-violation time.
const MIN_COST_GAP: f64 = 1e-3;
const MIN_SLO_GAP_PP: f64 = 0.005;

fn mean(xs: &BTreeMap<u64, &EpisodeRecord>, f: fn(&EpisodeRecord) -> f64) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.values().map(|r| f(r)).sum::<f64>() / xs.len() as f64)
}

/// The regret of every agent of `records` against `oracle`, and its share of the gap between
/// `hpa` and the oracle. Agents without a seed in common with the oracle get no regret.
pub fn regrets(
    records: &[EpisodeRecord],
    oracle: &str,
    hpa: Option<&str>,
) -> BTreeMap<String, Regret> {
    let mut by_agent: BTreeMap<&str, Vec<&EpisodeRecord>> = BTreeMap::new();
    for r in records {
        by_agent.entry(r.agent.as_str()).or_default().push(r);
    }
    let seeds = |agent: &str| by_agent.get(agent).map(|v| by_seed(v)).unwrap_or_default();
    let o = seeds(oracle);
    let cost = |r: &EpisodeRecord| r.metrics.pod_hours;
    let slo = |r: &EpisodeRecord| r.metrics.slo_violation_pct;
    let (o_cost, o_slo) = (mean(&o, cost), mean(&o, slo));
    let h = hpa.map(seeds);
    let gap = |h_mean: Option<f64>, o_mean: Option<f64>, a_mean: Option<f64>, min: f64| {
        let (h, o, a) = (h_mean?, o_mean?, a_mean?);
        (h - o >= min).then(|| 100.0 * (h - a) / (h - o))
    };
    let mut out = BTreeMap::new();
    for (name, recs) in &by_agent {
        let a = by_seed(recs);
        let (mut dc, mut ds) = (Vec::new(), Vec::new());
        for (seed, r) in &a {
            if let Some(or) = o.get(seed) {
                if or.metrics.pod_hours > 0.0 {
                    dc.push(
                        100.0 * (r.metrics.pod_hours - or.metrics.pod_hours) / or.metrics.pod_hours,
                    );
                }
                ds.push(r.metrics.slo_violation_pct - or.metrics.slo_violation_pct);
            }
        }
        let (h_cost, h_slo) = match &h {
            Some(h) => (mean(h, cost), mean(h, slo)),
            None => (None, None),
        };
        let min_cost = o_cost.unwrap_or(0.0).abs() * MIN_COST_GAP;
        let regret = Regret {
            cost_regret_pct: (!dc.is_empty()).then(|| Summary::from_samples(&dc)),
            slo_regret_pct: (!ds.is_empty()).then(|| Summary::from_samples(&ds)),
            cost_gap_closed_pct: gap(h_cost, o_cost, mean(&a, cost), min_cost.max(1e-12)),
            slo_gap_closed_pct: gap(h_slo, o_slo, mean(&a, slo), MIN_SLO_GAP_PP),
        };
        out.insert(name.to_string(), regret);
    }
    out
}

/// Fills the bounds into `s`: `s.bounds` and every agent's regret fields.
pub fn add_bounds(s: &mut SummaryJson, records: &[EpisodeRecord], oracle: &str, hpa: Option<&str>) {
    for (name, r) in regrets(records, oracle, hpa) {
        if let Some(a) = s.agents.get_mut(&name) {
            a.regret = r;
        }
    }
    s.bounds = Some(BoundsReference {
        oracle: oracle.to_string(),
        hpa: hpa.map(str::to_string),
    });
}

fn fmt_opt_summary(s: Option<&Summary>, unit: &str, d: usize) -> String {
    match s {
        Some(s) if s.n > 0 => format!("{:+.d$}{unit} ± {:.d$}", s.mean + 0.0, s.half_width()),
        _ => "n/a".to_string(),
    }
}

/// A share of the gap, `n/a` when there is none; below -100% (more than twice the HPA's
/// distance from the oracle) it reads `< -100%` (`summary.json` keeps the number).
fn fmt_share(x: Option<f64>) -> String {
    match x {
        None => "n/a".to_string(),
        Some(v) if v < -100.0 => "< -100%".to_string(),
        Some(v) => format!("{:.0}%", v + 0.0),
    }
}

/// The "Reference bounds" section of `summary.md`: each agent's pod-hours and SLO-violation
/// time beside its regret against the oracle and the share of the HPA-to-oracle gap it closes;
/// empty when `s` has no bounds.
pub fn render_bounds(s: &SummaryJson) -> String {
    let Some(b) = &s.bounds else {
        return String::new();
    };
    let mut out = String::new();
    let _ = writeln!(out, "\n## Reference bounds\n");
    let hpa = b.hpa.as_deref().unwrap_or("the HPA");
    let _ = writeln!(
        out,
        "Regret against `{}` (the clairvoyant oracle with real start-up delays), paired by seed: \
         extra pod-hours in % of the oracle's and extra SLO-violation time in percentage points \
         (mean ± 95% CI half-width). Gap closed: the share of the distance from {hpa} to the \
         oracle each agent covers (0% = as {hpa}, 100% = as the oracle, negative = further \
         from it than {hpa}; n/a without an HPA, or when {hpa} is within 0.1% (cost) or \
         0.005 pp (SLO) of the oracle or better than it).\n",
        b.oracle
    );
    out.push_str(
        "| Agent | Kind | Pod-hours | SLO violation % | Cost regret | SLO regret | Cost gap closed | SLO gap closed |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    // Cheapest first: the bounds, then the agents between them, then the costliest.
    let mut rows: Vec<(&String, &crate::report::AgentSummary)> = s.agents.iter().collect();
    let ph =
        |a: &crate::report::AgentSummary| a.metrics.get("pod_hours").map_or(f64::NAN, |m| m.mean);
    rows.sort_by(|x, y| ph(x.1).total_cmp(&ph(y.1)).then_with(|| x.0.cmp(y.0)));
    for (name, a) in rows {
        let r = a.regret;
        let m = |k: &str, d: usize| {
            a.metrics
                .get(k)
                .filter(|m| m.n > 0)
                .map_or_else(|| "n/a".to_string(), |m| format!("{:.d$}", m.mean))
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            a.kind,
            m("pod_hours", 1),
            m("slo_violation_pct", 3),
            fmt_opt_summary(r.cost_regret_pct.as_ref(), "%", 1),
            fmt_opt_summary(r.slo_regret_pct.as_ref(), " pp", 3),
            fmt_share(r.cost_gap_closed_pct),
            fmt_share(r.slo_gap_closed_pct),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(agent: &str, seed: u64, pod_hours: f64, slo_pct: f64) -> EpisodeRecord {
        let mut r = crate::records::tests::episode(agent, agent, seed, pod_hours);
        r.metrics.slo_violation_pct = slo_pct;
        r
    }

    #[test]
    fn regret_and_gap_closed_by_hand() {
        // Oracle 100 pod-hours, 0.1% SLO; HPA 200, 0.5%; agent 150 / 130, 0.3% / 0.5%.
        let recs = vec![
            episode("oracle", 1, 100.0, 0.1),
            episode("oracle", 2, 100.0, 0.1),
            episode("hpa", 1, 200.0, 0.5),
            episode("hpa", 2, 200.0, 0.5),
            episode("a", 1, 150.0, 0.3),
            episode("a", 2, 130.0, 0.5),
        ];
        let r = regrets(&recs, "oracle", Some("hpa"));
        let a = r["a"];
        // Cost regret per seed: +50%, +30% -> mean 40%.
        assert!((a.cost_regret_pct.unwrap().mean - 40.0).abs() < 1e-9);
        // SLO regret: +0.2, +0.4 pp -> 0.3 pp.
        assert!((a.slo_regret_pct.unwrap().mean - 0.3).abs() < 1e-9);
        // Gap closed on means: (200 - 140) / (200 - 100) = 60%; SLO (0.5 - 0.4) / 0.4 = 25%.
        assert!((a.cost_gap_closed_pct.unwrap() - 60.0).abs() < 1e-9);
        assert!((a.slo_gap_closed_pct.unwrap() - 25.0).abs() < 1e-9);
        // The HPA closes none of its own gap, the oracle all of it, with zero regret.
        assert!(r["hpa"].cost_gap_closed_pct.unwrap().abs() < 1e-9);
        assert!((r["oracle"].cost_gap_closed_pct.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(r["oracle"].cost_regret_pct.unwrap().mean, 0.0);
        // Without an HPA: regrets, no shares.
        let r = regrets(&recs, "oracle", None);
        assert!(r["a"].cost_gap_closed_pct.is_none() && r["a"].cost_regret_pct.is_some());
    }

    #[test]
    fn a_negligible_gap_gives_no_share() {
        let recs = vec![
            episode("oracle", 1, 100.0, 0.0),
            episode("hpa", 1, 100.05, 0.001),
            episode("a", 1, 120.0, 0.0),
        ];
        let r = regrets(&recs, "oracle", Some("hpa"));
        assert!(r["a"].cost_gap_closed_pct.is_none());
        assert!(r["a"].slo_gap_closed_pct.is_none());
        // An HPA with less SLO violation than the oracle: no SLO share.
        let recs = vec![
            episode("oracle", 1, 100.0, 0.1),
            episode("hpa", 1, 200.0, 0.0),
            episode("a", 1, 120.0, 0.0),
        ];
        let r = regrets(&recs, "oracle", Some("hpa"));
        assert!(r["a"].slo_gap_closed_pct.is_none());
        assert!((r["a"].cost_gap_closed_pct.unwrap() - 80.0).abs() < 1e-9);
    }
}
