//! `summary.json` and `summary.md`: what a run found, per agent and against the baseline.
//!
//! [`summarize`] turns the episode records of a run (one per agent x seed) into a
//! [`SummaryJson`] (schema [`SUMMARY_SCHEMA`], `../shared/DESIGN.md` section 6): per agent and
//! metric a [`Summary`] over seeds, and a paired [`Comparison`] of every other agent against the
//! baseline on every metric. [`render_markdown`] renders it for people; [`write_summary`] writes
//! both files.
//!
//! ```
//! use experiments::records::{EpisodeMetrics, EpisodeRecord};
//! use experiments::report::{render_markdown, summarize};
//!
//! let rec = |agent: &str, seed: u64, pod_hours: f64| EpisodeRecord {
//!     agent: agent.into(),
//!     kind: agent.into(),
//!     seed,
//!     metrics: EpisodeMetrics { pod_hours, ..Default::default() },
//!     ticks: 3600,
//!     arrivals_total: 0.0,
//!     served_total: 0.0,
//!     dropped_total: 0.0,
//!     backlog_end: 0.0,
//!     anomaly_flags: None,
//! };
//! let records = [rec("hpa", 1, 10.0), rec("hpa", 2, 12.0), rec("static", 1, 20.0), rec("static", 2, 20.0)];
//! let s = summarize("demo", "scaling-v0", "trace.csv", &records, "hpa");
//! assert_eq!(s.seeds, 2);
//! assert_eq!(s.agents["hpa"].metrics["pod_hours"].mean, 11.0);
//! assert_eq!(s.comparisons.len(), 9); // static vs hpa, every metric
//! assert!(render_markdown(&s, &[]).contains("more pod-hours than hpa"));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::bounds::{BoundsReference, Regret};
use crate::records::{EpisodeRecord, METRIC_NAMES};
use crate::stats::{Comparison, PairedTest, Summary};

/// The value of `summary.json`'s `schema` field.
pub const SUMMARY_SCHEMA: &str = "nimbusguard.summary/v1";

/// Significance level used to mark comparisons in `summary.md`.
pub const ALPHA: f64 = 0.05;

/// One agent's entry in `summary.json`'s `agents` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSummary {
    /// Agent kind (`hpa`, `static`, `threshold`, `q-learning`, ...).
    pub kind: String,
    /// Per metric name (see [`METRIC_NAMES`]), its summary over seeds.
    pub metrics: BTreeMap<String, Summary>,
    /// Regret against the realistic oracle and the share of the HPA-to-oracle gap closed
    /// (`cost_regret_pct`, `slo_regret_pct`, `cost_gap_closed_pct`, `slo_gap_closed_pct`, next
    /// to `kind` and `metrics`); absent without an oracle ([`crate::bounds`]).
    #[serde(flatten)]
    pub regret: Regret,
}

/// The content of `summary.json` (schema `nimbusguard.summary/v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryJson {
    /// Always [`SUMMARY_SCHEMA`].
    pub schema: String,
    /// Experiment name (the config's `experiment` field).
    pub experiment: String,
    /// Versioned environment id, e.g. `scaling-v0`.
    pub env_id: String,
    /// The evaluation trace: the file name of the `timestamp_s,value` CSV, or `<pattern>`.
    pub trace: String,
    /// Number of distinct evaluation seeds in the records.
    pub seeds: u64,
    /// Per agent name, its kind and metric summaries.
    pub agents: BTreeMap<String, AgentSummary>,
    /// Every other agent against the baseline on every metric, paired by seed; ordered by agent
    /// name, then metric in [`METRIC_NAMES`] order, then test.
    pub comparisons: Vec<Comparison>,
    /// The oracle and the HPA the agents' regret figures refer to; absent when the experiment
    /// has no realistic oracle ([`crate::bounds`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounds: Option<BoundsReference>,
}

/// Summarises `records` with paired t-tests against `baseline`; see [`summarize_with_tests`].
pub fn summarize(
    experiment: &str,
    env_id: &str,
    trace: &str,
    records: &[EpisodeRecord],
    baseline: &str,
) -> SummaryJson {
    summarize_with_tests(
        experiment,
        env_id,
        trace,
        records,
        baseline,
        &[PairedTest::PairedT],
    )
}

/// Summarises `records` (one per agent x seed) into a [`SummaryJson`].
///
/// Records are grouped by agent; an agent's kind is that of its first record. Every metric of
/// [`METRIC_NAMES`] gets a [`Summary`] over the agent's records (NaN values skipped). Every
/// agent other than `baseline` is compared with it on every metric, once per test in `tests`,
/// pairing records by seed (seeds that only one of the two has are left out; if an agent has
/// several records for one seed, the first is used). If `baseline` has no records, there are
/// no comparisons (and a warning is logged).
pub fn summarize_with_tests(
    experiment: &str,
    env_id: &str,
    trace: &str,
    records: &[EpisodeRecord],
    baseline: &str,
    tests: &[PairedTest],
) -> SummaryJson {
    let mut by_agent: BTreeMap<&str, Vec<&EpisodeRecord>> = BTreeMap::new();
    for r in records {
        by_agent.entry(r.agent.as_str()).or_default().push(r);
    }
    let seeds: BTreeSet<u64> = records.iter().map(|r| r.seed).collect();

    let agents = by_agent
        .iter()
        .map(|(name, recs)| {
            let metrics = metric_summaries(recs);
            let kind = recs[0].kind.clone();
            (
                name.to_string(),
                AgentSummary {
                    kind,
                    metrics,
                    regret: Regret::default(),
                },
            )
        })
        .collect();

    let mut comparisons = Vec::new();
    match by_agent.get(baseline) {
        None if by_agent.len() > 1 => {
            tracing::warn!(baseline, "baseline agent has no records; no comparisons")
        }
        None => {}
        Some(base_recs) => {
            let base = by_seed(base_recs);
            for (name, recs) in by_agent.iter().filter(|(n, _)| **n != baseline) {
                let own = by_seed(recs);
                for metric in METRIC_NAMES {
                    let pairs: Vec<(f64, f64)> = own
                        .iter()
                        .filter_map(|(seed, r)| {
                            let b = base.get(seed)?;
                            Some((r.metrics.get(metric)?, b.metrics.get(metric)?))
                        })
                        .collect();
                    for &test in tests {
                        comparisons.push(Comparison::paired(name, baseline, metric, &pairs, test));
                    }
                }
            }
        }
    }

    adjust_holm(&mut comparisons);
    SummaryJson {
        schema: SUMMARY_SCHEMA.to_string(),
        experiment: experiment.to_string(),
        env_id: env_id.to_string(),
        trace: trace.to_string(),
        seeds: seeds.len() as u64,
        agents,
        comparisons,
        bounds: None,
    }
}

/// Every metric of [`METRIC_NAMES`] summarised over `recs` (one agent's episodes; NaN values
/// skipped), keyed by metric name.
pub(crate) fn metric_summaries(recs: &[&EpisodeRecord]) -> BTreeMap<String, Summary> {
    METRIC_NAMES
        .iter()
        .map(|m| {
            let xs: Vec<f64> = recs.iter().filter_map(|r| r.metrics.get(m)).collect();
            (m.to_string(), Summary::from_samples(&xs))
        })
        .collect()
}

/// Fills `p_value_holm` of every comparison: one Holm-Bonferroni family per (metric, test),
/// i.e. every agent against the baseline on that metric.
fn adjust_holm(comparisons: &mut [Comparison]) {
    let mut families: BTreeMap<(String, &'static str), Vec<usize>> = BTreeMap::new();
    for (i, c) in comparisons.iter().enumerate() {
        families
            .entry((c.metric.clone(), c.test.as_str()))
            .or_default()
            .push(i);
    }
    for idx in families.values() {
        let p: Vec<Option<f64>> = idx.iter().map(|&i| comparisons[i].p_value).collect();
        for (&i, adj) in idx.iter().zip(crate::ab::holm_adjust(&p)) {
            comparisons[i].p_value_holm = adj;
        }
    }
}

/// One agent's records by seed, for pairing: the first record of each seed (a duplicate is
/// logged and left out).
pub(crate) fn by_seed<'a>(recs: &[&'a EpisodeRecord]) -> BTreeMap<u64, &'a EpisodeRecord> {
    let mut m = BTreeMap::new();
    for r in recs {
        match m.entry(r.seed) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(*r);
            }
            std::collections::btree_map::Entry::Occupied(_) => {
                tracing::warn!(agent = %r.agent, seed = r.seed, "duplicate episode record");
            }
        }
    }
    m
}

/// How a metric is shown in `summary.md`.
struct Column {
    metric: &'static str,
    header: &'static str,
    /// Factor applied to values for display (CPU utilization: fraction -> %).
    scale: f64,
    /// In the comparison table: a difference in percentage points instead of a relative change.
    points: bool,
}

const MAIN_COLUMNS: [Column; 8] = [
    Column {
        metric: "pod_hours",
        header: "Pod-hours",
        scale: 1.0,
        points: false,
    },
    Column {
        metric: "cpu_core_hours",
        header: "CPU core-hours",
        scale: 1.0,
        points: false,
    },
    Column {
        metric: "slo_violation_pct",
        header: "SLO violation %",
        scale: 1.0,
        points: true,
    },
    Column {
        metric: "p95_latency_ms",
        header: "p95 latency ms",
        scale: 1.0,
        points: false,
    },
    Column {
        metric: "dropped_pct",
        header: "Dropped %",
        scale: 1.0,
        points: true,
    },
    Column {
        metric: "scaling_actions",
        header: "Scaling actions",
        scale: 1.0,
        points: false,
    },
    Column {
        metric: "cpu_utilization_mean",
        header: "CPU util %",
        scale: 100.0,
        points: false,
    },
    Column {
        metric: "return",
        header: "Return",
        scale: 1.0,
        points: false,
    },
];

const COMPARE_COLUMNS: [&str; 7] = [
    "pod_hours",
    "cpu_core_hours",
    "slo_violation_pct",
    "p95_latency_ms",
    "dropped_pct",
    "scaling_actions",
    "return",
];

fn column(metric: &str) -> &'static Column {
    MAIN_COLUMNS
        .iter()
        .find(|c| c.metric == metric)
        .expect("known column")
}

/// Decimals that show `hw` with two significant digits (or `mean` with three when `hw` is 0).
fn decimals(mean: f64, hw: f64) -> usize {
    let (r, digits) = if hw > 0.0 && hw.is_finite() {
        (hw, 1.0)
    } else {
        (mean.abs(), 2.0)
    };
    if r == 0.0 || !r.is_finite() {
        return 1;
    }
    (digits - r.log10().floor()).clamp(0.0, 4.0) as usize
}

/// `mean ± half-width` of `s` times `scale`, or `n/a` when there are no samples.
pub(crate) fn fmt_summary(s: Option<&Summary>, scale: f64) -> String {
    match s {
        Some(s) if s.n > 0 => {
            let (m, hw) = (s.mean * scale, s.half_width() * scale);
            let d = decimals(m, hw);
            format!("{m:.d$} ± {hw:.d$}")
        }
        _ => "n/a".to_string(),
    }
}

/// `p=0.012`, `p<0.001` or `p=n/a`.
fn fmt_p(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => "p<0.001".to_string(),
        Some(p) => format!("p={p:.3}"),
        None => "p=n/a".to_string(),
    }
}

/// A metric's difference agent - baseline in the unit of the metric (used for percentage
/// metrics, shown in percentage points), with its CI where it can be recovered.
struct PointDiff {
    diff: f64,
    ci: Option<(f64, f64)>,
}

/// The difference of means in the metric's own unit: from the comparison's relative change and
/// the baseline's mean when possible (same pairing as the test), otherwise the difference of the
/// two agents' means (no CI).
fn point_diff(
    c: &Comparison,
    agent: Option<&Summary>,
    base: Option<&Summary>,
) -> Option<PointDiff> {
    let base_mean = base.filter(|b| b.n > 0)?.mean;
    if let (Some(r), Some(lo), Some(hi)) = (c.relative_change_pct, c.ci95_low, c.ci95_high) {
        let k = base_mean.abs() / 100.0;
        return Some(PointDiff {
            diff: r * k,
            ci: Some((lo * k, hi * k)),
        });
    }
    let a = agent.filter(|a| a.n > 0)?.mean;
    Some(PointDiff {
        diff: a - base_mean,
        ci: None,
    })
}

/// A cell of the comparison table.
fn fmt_comparison_cell(
    c: Option<&Comparison>,
    col: &Column,
    agent: Option<&Summary>,
    base: Option<&Summary>,
) -> String {
    let Some(c) = c else { return "n/a".to_string() };
    let body = if col.points {
        match point_diff(c, agent, base) {
            Some(PointDiff {
                diff,
                ci: Some((lo, hi)),
            }) => {
                format!("{diff:+.2} pp [{lo:+.2}, {hi:+.2}]")
            }
            Some(PointDiff { diff, ci: None }) => format!("{diff:+.2} pp"),
            None => "n/a".to_string(),
        }
    } else {
        match (c.relative_change_pct, c.ci95_low, c.ci95_high) {
            (Some(r), Some(lo), Some(hi)) => format!("{r:+.1}% [{lo:+.1}, {hi:+.1}]"),
            // No seed pairs (every value NaN on one side), else a zero baseline mean.
            _ if c.wilcoxon_p_value.is_none() => "n/a (no seed pairs)".to_string(),
            _ => "n/a (baseline mean 0)".to_string(),
        }
    };
    let cell = format!("{body}, {}", fmt_p(c.p_value));
    if c.is_significant(ALPHA) {
        format!("**{cell}**")
    } else {
        cell
    }
}

/// Direction of a significant difference on a cost-like reading: `Some(true)` if the agent is
/// significantly better, `Some(false)` if significantly worse, `None` if not significant.
fn significant_better(c: &Comparison, diff: f64, lower_better: bool) -> Option<bool> {
    if !c.is_significant(ALPHA) || diff == 0.0 {
        return None;
    }
    Some((diff < 0.0) == lower_better)
}

/// The one-line verdict for `agent` against `baseline` (pod-hours and SLO violation time).
fn verdict<'a>(
    agent: &str,
    baseline: &str,
    lookup: &dyn Fn(&str) -> Option<&'a Comparison>,
    summaries: &dyn Fn(&str, &str) -> Option<Summary>,
) -> String {
    let mut line = format!("**{agent}** ");
    let mut cost = None;
    match lookup("pod_hours") {
        Some(c) => match (c.relative_change_pct, c.ci95_low, c.ci95_high) {
            (Some(r), Some(lo), Some(hi)) => {
                let (word, a, b) = if r < 0.0 {
                    ("fewer", -hi, -lo)
                } else {
                    ("more", lo, hi)
                };
                let _ = write!(
                    line,
                    "uses {:.1}% [{a:.1}, {b:.1}] {word} pod-hours than {baseline} ({})",
                    r.abs(),
                    fmt_p(c.p_value)
                );
                cost = Some(significant_better(c, r, true));
            }
            _ => {
                let _ = write!(line, "uses n/a pod-hours relative to {baseline}");
            }
        },
        None => {
            let _ = write!(line, "has no pod-hours comparison with {baseline}");
        }
    }
    let mut slo = None;
    if let Some(c) = lookup("slo_violation_pct") {
        let pd = point_diff(
            c,
            summaries(agent, "slo_violation_pct").as_ref(),
            summaries(baseline, "slo_violation_pct").as_ref(),
        );
        if let Some(PointDiff { diff, .. }) = pd {
            let p = fmt_p(c.p_value);
            if diff.abs() < 0.005 {
                let _ = write!(line, " with the same SLO violation time ({p})");
            } else {
                let word = if diff > 0.0 { "more" } else { "less" };
                let _ = write!(
                    line,
                    " with {:.2} pp {word} SLO violation time ({p})",
                    diff.abs()
                );
            }
            slo = Some(significant_better(c, diff, true));
        }
    }
    let tag = match (cost.flatten(), slo.flatten()) {
        (Some(true), Some(true)) => "better on both",
        (Some(false), Some(false)) => "worse on both",
        (Some(true), Some(false)) | (Some(false), Some(true)) => "a trade-off",
        (Some(true), None) => "cheaper, no significant SLO difference",
        (Some(false), None) => "costlier, no significant SLO difference",
        (None, Some(true)) => "better SLO, no significant cost difference",
        (None, Some(false)) => "worse SLO, no significant cost difference",
        (None, None) => "no significant difference",
    };
    let _ = write!(line, ": {tag}.");
    line
}

/// The cell of `summary.md`'s comparison table for `agent` against `s`'s baseline on `metric`
/// (paired t-test; relative change in %, or percentage points for SLO violation and drops),
/// `n/a` when there is none or `metric` is not a column of `summary.md`; for the report's tables
/// ([`crate::cmd_report`]).
pub(crate) fn comparison_cell(s: &SummaryJson, agent: &str, metric: &str) -> String {
    let Some(col) = MAIN_COLUMNS.iter().find(|c| c.metric == metric) else {
        return "n/a".to_string();
    };
    let Some(c) = s
        .comparisons
        .iter()
        .find(|c| c.agent == agent && c.metric == metric && c.test == PairedTest::PairedT)
    else {
        return "n/a".to_string();
    };
    let summary = |a: &str| s.agents.get(a).and_then(|x| x.metrics.get(metric));
    fmt_comparison_cell(Some(c), col, summary(agent), summary(&c.baseline))
}

/// Renders `s` as Markdown for a person: a table of every agent's metrics (mean ± 95% CI
/// half-width over seeds), a table of each agent's changes against the baseline with CIs and
/// p-values (significant ones, p < [`ALPHA`], in bold), a one-line verdict per agent, then
/// `extra_notes` as a bullet list.
///
/// The baseline is the one named in `s.comparisons`; it is listed first. Where comparisons of
/// both tests exist, the paired t-test is shown. Percentage metrics (SLO violation, dropped) are
/// compared in percentage points, the others as relative change in % of the baseline's mean.
pub fn render_markdown(s: &SummaryJson, extra_notes: &[String]) -> String {
    let mut out = String::new();
    let baseline = s.comparisons.first().map(|c| c.baseline.clone());
    let _ = writeln!(out, "# {}\n", s.experiment);
    let _ = writeln!(
        out,
        "Environment `{}`, trace `{}`, {} seed{}. Each cell: mean ± half-width of the 95% \
         confidence interval over seeds (Student t).\n",
        s.env_id,
        s.trace,
        s.seeds,
        if s.seeds == 1 { "" } else { "s" }
    );

    // Agents, baseline first.
    let mut order: Vec<&String> = Vec::new();
    if let Some(b) = baseline.as_ref().and_then(|b| s.agents.get_key_value(b)) {
        order.push(b.0);
    }
    order.extend(s.agents.keys().filter(|k| Some(*k) != baseline.as_ref()));

    out.push_str("| Agent | Kind |");
    for c in &MAIN_COLUMNS {
        let _ = write!(out, " {} |", c.header);
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---:|".repeat(MAIN_COLUMNS.len()));
    out.push('\n');
    for name in &order {
        let a = &s.agents[*name];
        let label = if Some(*name) == baseline.as_ref() {
            format!("{name} (baseline)")
        } else {
            name.to_string()
        };
        let _ = write!(out, "| {label} | {} |", a.kind);
        for c in &MAIN_COLUMNS {
            let _ = write!(out, " {} |", fmt_summary(a.metrics.get(c.metric), c.scale));
        }
        out.push('\n');
    }

    if let Some(baseline) = baseline.as_deref() {
        let test = if s.comparisons.iter().any(|c| c.test == PairedTest::PairedT) {
            PairedTest::PairedT
        } else {
            PairedTest::Wilcoxon
        };
        let test_name = match test {
            PairedTest::PairedT => "paired t-test",
            PairedTest::Wilcoxon => "Wilcoxon signed-rank test",
        };
        let find = |agent: &str, metric: &str| {
            s.comparisons
                .iter()
                .find(|c| c.agent == agent && c.metric == metric && c.test == test)
        };
        let summary = |agent: &str, metric: &str| {
            s.agents
                .get(agent)
                .and_then(|a| a.metrics.get(metric))
                .copied()
        };
        let _ = writeln!(out, "\n## vs {baseline}\n");
        let _ = writeln!(
            out,
            "Change of each agent's mean against {baseline}'s, paired by seed, with its 95% CI \
             and the p-value of a two-sided {test_name}: relative change in % of {baseline}'s \
             mean, or for SLO violation and dropped requests the difference in percentage \
             points (pp). **Bold**: p < {ALPHA}.\n"
        );
        out.push_str("| Agent |");
        for m in COMPARE_COLUMNS {
            let c = column(m);
            let header = if c.points {
                c.header.replace(" %", " (pp)")
            } else {
                c.header.replace(" ms", "").to_string()
            };
            let _ = write!(out, " {header} |");
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(COMPARE_COLUMNS.len()));
        out.push('\n');
        let others: Vec<&String> = order.iter().copied().filter(|n| *n != baseline).collect();
        for name in &others {
            let _ = write!(out, "| {name} |");
            for m in COMPARE_COLUMNS {
                let cell = fmt_comparison_cell(
                    find(name, m),
                    column(m),
                    summary(name, m).as_ref(),
                    summary(baseline, m).as_ref(),
                );
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out.push('\n');
        for name in &others {
            let line = verdict(name, baseline, &|m| find(name, m), &summary);
            let _ = writeln!(out, "- {line}");
        }
        out.push_str(&crate::ab::render_ab_section(s));
    }

    out.push_str(&crate::bounds::render_bounds(s));

    if !extra_notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in extra_notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

/// Writes `summary.json` (pretty-printed `s`) and `summary.md` (`md`) into `dir`, creating it.
pub fn write_summary(dir: impl AsRef<Path>, s: &SummaryJson, md: &str) -> anyhow::Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let json_path = dir.join("summary.json");
    let mut json = serde_json::to_string_pretty(s).context("while serializing summary.json")?;
    json.push('\n');
    std::fs::write(&json_path, json)
        .with_context(|| format!("while writing {}", json_path.display()))?;
    let md_path = dir.join("summary.md");
    std::fs::write(&md_path, md).with_context(|| format!("while writing {}", md_path.display()))?;
    Ok(())
}

/// Reads a `summary.json` written by [`write_summary`].
pub fn read_summary(path: impl AsRef<Path>) -> anyhow::Result<SummaryJson> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("while parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{episode, scratch_dir};
    use crate::records::EpisodeMetrics;

    /// hpa and q-learning on seeds 1..=4 (q uses fewer pod-hours on every seed, with more SLO
    /// violation time), plus a static agent that only ran seeds 1 and 2.
    fn records() -> Vec<EpisodeRecord> {
        let mut recs = Vec::new();
        for (i, seed) in (1..=4u64).enumerate() {
            let mut h = episode("hpa", "hpa", seed, [10.0, 11.0, 12.0, 13.0][i]);
            h.metrics.slo_violation_pct = [1.0, 2.0, 1.0, 2.0][i];
            let mut q = episode("q-learning", "q-learning", seed, [8.0, 9.5, 10.0, 11.5][i]);
            q.metrics.slo_violation_pct = [2.0, 3.5, 2.5, 3.0][i];
            recs.push(h);
            recs.push(q);
        }
        for (seed, slo) in [(1, 1.0), (2, 2.0)] {
            let mut st = episode("static", "static", seed, 20.0);
            st.metrics.slo_violation_pct = slo; // same as hpa's
            recs.push(st);
        }
        recs
    }

    #[test]
    fn summarize_groups_and_pairs() {
        let s = summarize("exp", "scaling-v0", "datasets/t.csv", &records(), "hpa");
        assert_eq!(s.schema, SUMMARY_SCHEMA);
        assert_eq!(s.seeds, 4);
        assert_eq!(s.agents.len(), 3);
        assert_eq!(s.agents["q-learning"].kind, "q-learning");
        assert_eq!(s.agents["hpa"].metrics.len(), METRIC_NAMES.len());
        let ph = s.agents["hpa"].metrics["pod_hours"];
        assert_eq!((ph.n, ph.mean), (4, 11.5));
        assert_eq!(s.agents["static"].metrics["pod_hours"].n, 2);
        // Two non-baseline agents x nine metrics, paired t only.
        assert_eq!(s.comparisons.len(), 18);
        assert!(s
            .comparisons
            .iter()
            .all(|c| c.baseline == "hpa" && c.test == PairedTest::PairedT));
        assert_eq!(s.comparisons[0].agent, "q-learning");
        assert_eq!(s.comparisons[0].metric, "pod_hours");
        // q vs hpa pod-hours: d = [-2, -1.5, -2, -1.5], mean -1.75 over mean(y) 11.5.
        let c = &s.comparisons[0];
        assert!((c.relative_change_pct.unwrap() - (-1.75 / 11.5 * 100.0)).abs() < 1e-9);
        // static is paired on seeds 1 and 2 only: d = [10, 9], mean(y) = 10.5.
        let st = s
            .comparisons
            .iter()
            .find(|c| c.agent == "static" && c.metric == "pod_hours")
            .unwrap();
        assert!((st.relative_change_pct.unwrap() - 9.5 / 10.5 * 100.0).abs() < 1e-9);

        let both = summarize_with_tests(
            "exp",
            "scaling-v0",
            "t.csv",
            &records(),
            "hpa",
            &[PairedTest::PairedT, PairedTest::Wilcoxon],
        );
        assert_eq!(both.comparisons.len(), 36);
        assert_eq!(both.comparisons[1].test, PairedTest::Wilcoxon);

        let no_base = summarize("exp", "scaling-v0", "t.csv", &records(), "missing");
        assert!(no_base.comparisons.is_empty());
    }

    #[test]
    fn summary_json_has_the_contract_fields() {
        let s = summarize("exp", "scaling-v0", "t.csv", &records(), "hpa");
        let v = serde_json::to_value(&s).unwrap();
        for key in [
            "schema",
            "experiment",
            "env_id",
            "trace",
            "seeds",
            "agents",
            "comparisons",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["schema"], "nimbusguard.summary/v1");
        let m = &v["agents"]["hpa"]["metrics"]["return"];
        for key in ["mean", "std", "ci95_low", "ci95_high", "n"] {
            assert!(m.get(key).is_some(), "{key}");
        }
        let c = v["comparisons"][0].as_object().unwrap();
        let keys: Vec<&str> = c.keys().map(|k| k.as_str()).collect();
        let mut want = vec![
            "agent",
            "baseline",
            "metric",
            "relative_change_pct",
            "ci95_low",
            "ci95_high",
            "p_value",
            "test",
            // Added by the A/B statistics (the contract changes only by adding).
            "bootstrap_ci95_low",
            "bootstrap_ci95_high",
            "effect_size_dz",
            "wilcoxon_p_value",
            "p_value_holm",
        ];
        want.sort();
        let mut got = keys.clone();
        got.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn markdown_shows_tables_verdicts_and_notes() {
        let s = summarize(
            "quickstart",
            "scaling-v0",
            "datasets/t.csv",
            &records(),
            "hpa",
        );
        let md = render_markdown(&s, &["trained for 200 episodes".to_string()]);
        println!("{md}");
        assert!(md.starts_with("# quickstart\n"));
        assert!(md.contains("Environment `scaling-v0`, trace `datasets/t.csv`, 4 seeds."));
        assert!(md.contains("| Agent | Kind | Pod-hours | CPU core-hours | SLO violation % |"));
        // hpa pod-hours [10, 11, 12, 13]: mean 11.5, sd 1.290994, hw = 2.054260.
        assert!(md.contains("| hpa (baseline) | hpa | 11.5 ± 2.1 |"), "{md}");
        // Baseline row comes first.
        assert!(
            md.find("| hpa (baseline)").unwrap() < md.find("| q-learning | q-learning").unwrap()
        );
        // CPU utilization 0.62 is shown in percent, zero-width CI.
        assert!(md.contains("| 62.0 ± 0.0 |"));
        assert!(md.contains("## vs hpa"));
        // q vs hpa pod-hours: d = [-2, -1.5, -2, -1.5], mean -1.75, sd 0.288675, se 0.144338,
        // hw = 3.182446 * 0.144338 = 0.459346; relative = -15.217% [-19.212, -11.223];
        // t = -12.124, df 3, p = 0.0012.
        assert!(md.contains("**-15.2% [-19.2, -11.2], p=0.001**"), "{md}");
        // SLO violation in pp: d = [1, 1.5, 1.5, 1], mean 1.25, sd 0.288675, hw 0.459346:
        // +1.25 pp [+0.79, +1.71], t = 8.660, p = 0.0032.
        assert!(md.contains("**+1.25 pp [+0.79, +1.71], p=0.003**"), "{md}");
        assert!(md.contains(
            "- **q-learning** uses 15.2% [11.2, 19.2] fewer pod-hours than hpa (p=0.001) \
             with 1.25 pp more SLO violation time (p=0.003): a trade-off."
        ));
        // static: two seeds, +90.5% pod-hours, constant SLO violation differences of 0.
        assert!(md.contains("- **static** uses 90.5% ["), "{md}");
        assert!(
            md.contains("with the same SLO violation time (p=1.000)"),
            "{md}"
        );
        assert!(md.contains("## Notes\n\n- trained for 200 episodes\n"));
    }

    #[test]
    fn markdown_handles_zero_baseline_and_single_agent() {
        // Baseline with 0% SLO violation: relative change undefined, pp difference still shown.
        let mut recs = Vec::new();
        for seed in 1..=3u64 {
            let mut h = episode("hpa", "hpa", seed, 10.0);
            h.metrics.slo_violation_pct = 0.0;
            let mut q = episode("q", "q-learning", seed, 10.0 + seed as f64 * 0.01);
            q.metrics.slo_violation_pct = seed as f64;
            recs.push(h);
            recs.push(q);
        }
        let s = summarize("e", "scaling-v0", "t.csv", &recs, "hpa");
        let md = render_markdown(&s, &[]);
        assert!(md.contains("+2.00 pp, p="), "{md}");
        assert!(md.contains("with 2.00 pp more SLO violation time"), "{md}");
        assert!(!md.contains("## Notes"));

        let only = summarize("e", "scaling-v0", "t.csv", &recs[..1], "hpa");
        let md = render_markdown(&only, &[]);
        assert!(md.contains("| hpa | hpa |"));
        assert!(!md.contains("## vs"));

        let empty = EpisodeRecord {
            metrics: EpisodeMetrics {
                pod_hours: f64::NAN,
                ..Default::default()
            },
            ..episode("x", "static", 1, 0.0)
        };
        let s = summarize("e", "scaling-v0", "t.csv", &[empty], "x");
        assert!(render_markdown(&s, &[]).contains("| x | static | n/a |"));
    }

    #[test]
    fn write_and_read_summary() {
        let dir = scratch_dir("summary").join("out");
        let s = summarize("exp", "scaling-v0", "t.csv", &records(), "hpa");
        let md = render_markdown(&s, &[]);
        write_summary(&dir, &s, &md).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("summary.md")).unwrap(), md);
        let back = read_summary(dir.join("summary.json")).unwrap();
        // serde_json parses floats to within an ulp or so, not always bit-exactly.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
        assert_eq!((back.seeds, back.schema.as_str()), (4, SUMMARY_SCHEMA));
        assert_eq!(
            back.agents.keys().collect::<Vec<_>>(),
            s.agents.keys().collect::<Vec<_>>()
        );
        for (name, a) in &s.agents {
            for (m, x) in &a.metrics {
                let y = back.agents[name].metrics[m];
                assert!(close(x.mean, y.mean) && close(x.ci95_high, y.ci95_high) && x.n == y.n);
            }
        }
        assert_eq!(back.comparisons.len(), s.comparisons.len());
        for (x, y) in s.comparisons.iter().zip(&back.comparisons) {
            assert_eq!((&x.agent, &x.metric, x.test), (&y.agent, &y.metric, y.test));
            assert!(close(x.p_value.unwrap(), y.p_value.unwrap()));
            assert!(close(x.ci95_low.unwrap(), y.ci95_low.unwrap()));
        }
    }
}
