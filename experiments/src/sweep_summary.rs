//! The summary of a finished sweep: every run x agent's metrics over seeds, a ranking of the
//! configurations per metric with 95% confidence intervals, and per trace the cost/SLO Pareto
//! front of each autoscaler family (agent kind) with where every learned agent sits on it.
//!
//! Writes `sweep_summary.json` (schema [`SWEEP_SCHEMA`]) and `sweep_summary.md`. Everything is
//! computed from the runs' `episodes.csv` in plan order, so the files are identical for any
//! thread count or sharding (no timings, no paths of the machine).
//!
//! Cost is `pod_hours`, SLO is `slo_violation_pct` (both lower is better), each a mean over the
//! run's seeds. A configuration is on its family's front when no other configuration of the
//! family is at most as costly and at most as violating, and strictly better in one.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::records::{lower_is_better, read_episodes_csv, METRIC_NAMES};
use crate::stats::Summary;
use crate::sweep_config::SweepPlan;

/// Schema id of `sweep_summary.json`.
pub const SWEEP_SCHEMA: &str = "nimbusguard.sweep/v1";

/// One agent in one run: its configuration and metrics over the run's seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepEntry {
    /// Run id (`runs/<run>/`).
    pub run: String,
    /// Point id.
    pub point: String,
    /// Trace file name.
    pub trace: String,
    /// The point's overrides, dotted key = TOML value.
    pub overrides: BTreeMap<String, String>,
    /// The overrides that concern this agent, short: its own `agents.N.` keys without the
    /// prefix, its fields when the point replaces the `agents` list (name and kind left out),
    /// and every key outside `agents` and `evaluation.baseline`; comma-separated.
    pub settings: String,
    /// Agent name.
    pub agent: String,
    /// Agent kind (the family of the Pareto fronts).
    pub kind: String,
    /// Whether the agent is trained (`q-learning`, `dqn`, `nimbusguard-v0`).
    pub learned: bool,
    /// Metric name -> summary over seeds (mean, std, 95% CI, n).
    pub metrics: BTreeMap<String, Summary>,
}

/// One place in a metric's ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// 1 = best.
    pub rank: usize,
    /// Run id.
    pub run: String,
    /// Agent name.
    pub agent: String,
    /// Mean over seeds, in the metric's unit.
    pub mean: f64,
    /// 95% CI of the mean.
    pub ci95_low: f64,
    /// 95% CI of the mean.
    pub ci95_high: f64,
}

/// A configuration on a Pareto front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontPoint {
    /// Run id.
    pub run: String,
    /// Agent name.
    pub agent: String,
    /// Mean pod-hours.
    pub pod_hours: f64,
    /// Mean SLO violation, percent of evaluation time.
    pub slo_violation_pct: f64,
}

/// Where one agent sits relative to one family's front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Family (agent kind) of the front.
    pub family: String,
    /// Configurations of the family that dominate the agent (no costlier, no more violating,
    /// strictly better in one).
    pub dominated_by: usize,
    /// The cheapest configuration of the family whose SLO violation is at most the agent's;
    /// `None` when none is.
    pub cheapest_at_slo: Option<FrontPoint>,
    /// 100 * (agent pod-hours / that configuration's - 1): positive when the agent pays more
    /// for the same or worse SLO; `None` with it.
    pub extra_cost_pct: Option<f64>,
}

/// A learned agent's place against every family's front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedPosition {
    /// Run id.
    pub run: String,
    /// Agent name.
    pub agent: String,
    /// Agent kind.
    pub kind: String,
    /// Mean pod-hours.
    pub pod_hours: f64,
    /// Mean SLO violation, percent.
    pub slo_violation_pct: f64,
    /// One per family of untrained agents (peers, baselines, oracles).
    pub against: Vec<Position>,
}

/// `sweep_summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    /// [`SWEEP_SCHEMA`].
    pub schema: String,
    /// Sweep name.
    pub sweep: String,
    /// Number of runs.
    pub runs: usize,
    /// Every run x agent, in plan and config order.
    pub entries: Vec<SweepEntry>,
    /// Metric -> trace -> every run x agent ranked (best first; ties keep plan order).
    pub rankings: BTreeMap<String, BTreeMap<String, Vec<Ranked>>>,
    /// Trace -> family -> its Pareto front, by increasing pod-hours.
    pub pareto: BTreeMap<String, BTreeMap<String, Vec<FrontPoint>>>,
    /// Trace -> every learned agent's place against the other families' fronts.
    pub learned: BTreeMap<String, Vec<LearnedPosition>>,
}

fn mean_of(e: &SweepEntry, metric: &str) -> f64 {
    e.metrics.get(metric).map_or(f64::NAN, |s| s.mean)
}

fn point_of(e: &SweepEntry) -> FrontPoint {
    FrontPoint {
        run: e.run.clone(),
        agent: e.agent.clone(),
        pod_hours: mean_of(e, "pod_hours"),
        slo_violation_pct: mean_of(e, "slo_violation_pct"),
    }
}

fn dominates(a: &FrontPoint, b: &FrontPoint) -> bool {
    a.pod_hours <= b.pod_hours
        && a.slo_violation_pct <= b.slo_violation_pct
        && (a.pod_hours < b.pod_hours || a.slo_violation_pct < b.slo_violation_pct)
}

/// The non-dominated points of `points` (NaN coordinates left out), by increasing cost, then
/// violation. Of several points with equal coordinates (configurations whose overrides did not
/// change the agent) only the first is kept.
pub fn pareto_front(points: &[FrontPoint]) -> Vec<FrontPoint> {
    let finite: Vec<&FrontPoint> = points
        .iter()
        .filter(|p| p.pod_hours.is_finite() && p.slo_violation_pct.is_finite())
        .collect();
    let same = |a: &FrontPoint, b: &FrontPoint| {
        a.pod_hours == b.pod_hours && a.slo_violation_pct == b.slo_violation_pct
    };
    let mut front: Vec<FrontPoint> = finite
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            !finite.iter().any(|q| dominates(q, p)) && !finite[..*i].iter().any(|q| same(q, p))
        })
        .map(|(_, p)| (*p).clone())
        .collect();
    front.sort_by(|a, b| {
        a.pod_hours
            .total_cmp(&b.pod_hours)
            .then(a.slo_violation_pct.total_cmp(&b.slo_violation_pct))
    });
    front
}

/// Dotted key = value pairs of a TOML value (tables flattened), for [`SweepEntry::settings`].
fn flat_pairs(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flat_pairs(&key, x, out);
            }
        }
        _ => out.push(format!("{prefix}={v}")),
    }
}

/// [`SweepEntry::settings`] of agent `name` (at `index` in the run's `agents`).
fn settings_of(overrides: &BTreeMap<String, String>, index: usize, name: &str) -> String {
    let own = format!("agents.{index}.");
    let mut out = Vec::new();
    for (k, v) in overrides {
        if k == "agents" {
            let parsed: Option<toml::Value> = toml::from_str::<toml::Table>(&format!("v = {v}"))
                .ok()
                .and_then(|mut t| t.remove("v"));
            let agent = parsed.as_ref().and_then(|a| a.as_array()).and_then(|a| {
                a.iter()
                    .find(|x| x.get("name").and_then(|n| n.as_str()) == Some(name))
            });
            if let Some(toml::Value::Table(t)) = agent {
                for (field, x) in t.iter().filter(|(f, _)| *f != "name" && *f != "kind") {
                    flat_pairs(field, x, &mut out);
                }
            }
        } else if let Some(rest) = k.strip_prefix(&own) {
            out.push(format!("{rest}={v}"));
        } else if !k.starts_with("agents.") && k != "evaluation.baseline" {
            out.push(format!("{k}={v}"));
        }
    }
    out.join(", ")
}

/// Builds the summary of `plan` from its finished runs in `dir/runs/`.
///
/// # Errors
/// A run's `episodes.csv` is missing or malformed (file named).
pub fn summarize(dir: &Path, plan: &SweepPlan) -> Result<SweepSummary> {
    let mut entries = Vec::new();
    for (run, cfg) in plan.runs.iter().zip(&plan.configs) {
        let path = dir.join("runs").join(&run.id).join("episodes.csv");
        let records = read_episodes_csv(&path)?;
        let overrides = &plan
            .points
            .iter()
            .find(|p| p.id == run.point)
            .with_context(|| format!("run {} names an unknown point {}", run.id, run.point))?
            .overrides;
        for (index, spec) in cfg.agents.iter().enumerate() {
            let recs: Vec<_> = records.iter().filter(|r| r.agent == spec.name).collect();
            let metrics = crate::report::metric_summaries(&recs);
            entries.push(SweepEntry {
                run: run.id.clone(),
                point: run.point.clone(),
                trace: run.trace.clone(),
                overrides: overrides.clone(),
                settings: settings_of(overrides, index, &spec.name),
                agent: spec.name.clone(),
                kind: crate::config::kebab(spec.kind).to_string(),
                learned: spec.is_learned(),
                metrics,
            });
        }
    }
    let traces: Vec<String> = {
        let mut t: Vec<String> = plan.runs.iter().map(|r| r.trace.clone()).collect();
        t.dedup();
        t.sort();
        t.dedup();
        t
    };

    let mut rankings = BTreeMap::new();
    for metric in METRIC_NAMES {
        let lower = lower_is_better(metric).unwrap_or(true);
        let mut per_trace = BTreeMap::new();
        for trace in &traces {
            let mut rows: Vec<&SweepEntry> = entries.iter().filter(|e| &e.trace == trace).collect();
            // NaN last; stable sort keeps plan order among ties.
            rows.sort_by(|a, b| {
                let (x, y) = (mean_of(a, metric), mean_of(b, metric));
                match (x.is_nan(), y.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if lower => x.total_cmp(&y),
                    _ => y.total_cmp(&x),
                }
            });
            let ranked = rows
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let s = e.metrics[metric];
                    Ranked {
                        rank: i + 1,
                        run: e.run.clone(),
                        agent: e.agent.clone(),
                        mean: s.mean,
                        ci95_low: s.ci95_low,
                        ci95_high: s.ci95_high,
                    }
                })
                .collect();
            per_trace.insert(trace.clone(), ranked);
        }
        rankings.insert(metric.to_string(), per_trace);
    }

    let mut pareto = BTreeMap::new();
    let mut learned = BTreeMap::new();
    for trace in &traces {
        let mut families: BTreeMap<String, Vec<FrontPoint>> = BTreeMap::new();
        for e in entries.iter().filter(|e| &e.trace == trace) {
            families
                .entry(e.kind.clone())
                .or_default()
                .push(point_of(e));
        }
        let learned_kinds: std::collections::BTreeSet<&str> = entries
            .iter()
            .filter(|e| e.learned)
            .map(|e| e.kind.as_str())
            .collect();
        let fronts: BTreeMap<String, Vec<FrontPoint>> = families
            .iter()
            .map(|(k, pts)| (k.clone(), pareto_front(pts)))
            .collect();
        let positions = entries
            .iter()
            .filter(|e| &e.trace == trace && e.learned)
            .map(|e| {
                let me = point_of(e);
                let against = families
                    .iter()
                    .filter(|(k, _)| **k != e.kind && !learned_kinds.contains(k.as_str()))
                    .map(|(k, pts)| {
                        let cheapest = fronts[k]
                            .iter()
                            .filter(|p| p.slo_violation_pct <= me.slo_violation_pct)
                            .min_by(|a, b| a.pod_hours.total_cmp(&b.pod_hours))
                            .cloned();
                        let extra = cheapest
                            .as_ref()
                            .filter(|c| c.pod_hours > 0.0)
                            .map(|c| 100.0 * (me.pod_hours / c.pod_hours - 1.0));
                        Position {
                            family: k.clone(),
                            dominated_by: pts.iter().filter(|p| dominates(p, &me)).count(),
                            cheapest_at_slo: cheapest,
                            extra_cost_pct: extra,
                        }
                    })
                    .collect();
                LearnedPosition {
                    run: e.run.clone(),
                    agent: e.agent.clone(),
                    kind: e.kind.clone(),
                    pod_hours: me.pod_hours,
                    slo_violation_pct: me.slo_violation_pct,
                    against,
                }
            })
            .collect();
        pareto.insert(trace.clone(), fronts);
        learned.insert(trace.clone(), positions);
    }

    Ok(SweepSummary {
        schema: SWEEP_SCHEMA.to_string(),
        sweep: plan.name.clone(),
        runs: plan.runs.len(),
        entries,
        rankings,
        pareto,
        learned,
    })
}

/// The markdown report of a sweep summary: per trace, each family's front, the learned agents'
/// positions, and the top 10 of the cost and SLO rankings.
pub fn render_markdown(s: &SweepSummary) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    let _ = writeln!(md, "# Sweep `{}`: {} runs\n", s.sweep, s.runs);
    let label = |run: &str, agent: &str| -> String {
        let e = s.entries.iter().find(|e| e.run == run && e.agent == agent);
        match e.map(|e| e.settings.as_str()).filter(|t| !t.is_empty()) {
            Some(t) => format!("{run} `{agent}` ({t})"),
            None => format!("{run} `{agent}`"),
        }
    };
    for (trace, fronts) in &s.pareto {
        let _ = writeln!(md, "## Trace `{trace}`\n");
        let _ = writeln!(md, "### Cost/SLO Pareto front per family\n");
        let _ = writeln!(
            md,
            "| family | configuration | pod-hours | SLO violation % |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|");
        for (family, front) in fronts {
            for p in front {
                let _ = writeln!(
                    md,
                    "| {family} | {} | {:.1} | {:.3} |",
                    label(&p.run, &p.agent),
                    p.pod_hours,
                    p.slo_violation_pct
                );
            }
        }
        if let Some(pos) = s.learned.get(trace).filter(|p| !p.is_empty()) {
            let _ = writeln!(md, "\n### Learned agents against each family's front\n");
            let _ = writeln!(
                md,
                "| agent | pod-hours | SLO % | family | dominated by | cheapest at <= its SLO | extra cost % |"
            );
            let _ = writeln!(md, "|---|---:|---:|---|---:|---|---:|");
            for lp in pos {
                for a in &lp.against {
                    let (cheap, extra) = match (&a.cheapest_at_slo, a.extra_cost_pct) {
                        (Some(c), Some(x)) => (
                            format!("{} ({:.1} pod-h)", label(&c.run, &c.agent), c.pod_hours),
                            format!("{x:+.1}"),
                        ),
                        _ => ("none meets its SLO".to_string(), "-".to_string()),
                    };
                    let _ = writeln!(
                        md,
                        "| {} | {:.1} | {:.3} | {} | {} | {cheap} | {extra} |",
                        label(&lp.run, &lp.agent),
                        lp.pod_hours,
                        lp.slo_violation_pct,
                        a.family,
                        a.dominated_by
                    );
                }
            }
        }
        for metric in ["pod_hours", "slo_violation_pct"] {
            let Some(rows) = s.rankings.get(metric).and_then(|r| r.get(trace)) else {
                continue;
            };
            let _ = writeln!(md, "\n### Top 10 by `{metric}` (mean, 95% CI over seeds)\n");
            let _ = writeln!(md, "| rank | configuration | mean | 95% CI |");
            let _ = writeln!(md, "|---:|---|---:|---|");
            for r in rows.iter().take(10) {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.3} | [{:.3}, {:.3}] |",
                    r.rank,
                    label(&r.run, &r.agent),
                    r.mean,
                    r.ci95_low,
                    r.ci95_high
                );
            }
        }
        md.push('\n');
    }
    md
}

/// Writes `sweep_summary.json`, `sweep_summary.md` and one `plots/pareto_<trace stem>.png` per
/// trace for `plan` into `dir` (the plots last, so a plot that fails loses no summary).
///
/// # Errors
/// Errors of [`summarize`]; `dir` cannot be written; a plot cannot be drawn.
pub fn write(dir: &Path, plan: &SweepPlan) -> Result<SweepSummary> {
    let s = summarize(dir, plan)?;
    let json = serde_json::to_string_pretty(&s).context("cannot render sweep_summary.json")?;
    write_atomic(&dir.join("sweep_summary.json"), (json + "\n").as_bytes())?;
    write_atomic(
        &dir.join("sweep_summary.md"),
        render_markdown(&s).as_bytes(),
    )?;
    for trace in s.pareto.keys() {
        let stem = Path::new(trace)
            .file_stem()
            .map_or_else(|| trace.clone(), |f| f.to_string_lossy().into_owned());
        let png = dir.join("plots").join(format!("pareto_{stem}.png"));
        crate::pareto_plot::plot_pareto(&png, &s, trace)?;
    }
    Ok(s)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader (or a shard writing the same file on a shared volume) never sees half a file.
///
/// # Errors
/// The folder cannot be written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = path.with_file_name(format!(".{name}.{}.{nonce}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(run: &str, cost: f64, slo: f64) -> FrontPoint {
        FrontPoint {
            run: run.into(),
            agent: "a".into(),
            pod_hours: cost,
            slo_violation_pct: slo,
        }
    }

    #[test]
    fn front_keeps_exactly_the_non_dominated_points() {
        let pts = [
            fp("a", 10.0, 5.0),
            fp("b", 12.0, 1.0),
            fp("c", 11.0, 6.0), // dominated by a
            fp("d", 20.0, 1.0), // dominated by b (same SLO, costlier)
            fp("e", 8.0, 9.0),
            fp("f", f64::NAN, 0.0),
            fp("g", 10.0, 5.0), // same as a: a is kept
        ];
        let runs: Vec<String> = pareto_front(&pts).into_iter().map(|p| p.run).collect();
        assert_eq!(runs, ["e", "a", "b"]);
    }

    proptest::proptest! {
        #[test]
        fn no_front_point_is_dominated_and_every_other_point_is(
            xs in proptest::collection::vec((0.0f64..100.0, 0.0f64..10.0), 1..40)
        ) {
            let pts: Vec<FrontPoint> = xs
                .iter()
                .enumerate()
                .map(|(i, (c, s))| fp(&i.to_string(), *c, *s))
                .collect();
            let front = pareto_front(&pts);
            proptest::prop_assert!(!front.is_empty());
            for (i, p) in pts.iter().enumerate() {
                let on = front.iter().any(|f| f.run == p.run);
                let dominated = pts.iter().any(|q| dominates(q, p));
                let repeated = pts[..i].iter().any(|q| {
                    q.pod_hours == p.pod_hours && q.slo_violation_pct == p.slo_violation_pct
                });
                proptest::prop_assert_eq!(on, !dominated && !repeated);
            }
            for w in front.windows(2) {
                proptest::prop_assert!(w[0].pod_hours <= w[1].pod_hours);
                proptest::prop_assert!(w[0].slo_violation_pct >= w[1].slo_violation_pct);
            }
        }
    }
}
