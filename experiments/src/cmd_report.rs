//! `nimbusguard report DIR... [--out DIR] [--baseline AGENT]`: comparison tables and a plot
//! across any set of result folders.
//!
//! Each folder is read from its Parquet tables, or from its CSVs when it predates them
//! ([`crate::result_dir::read_episodes`]); its experiment name and baseline come from
//! `summary.json` or `config.toml` when present. Per folder, every agent's metrics are summarised
//! over seeds and compared with the baseline, paired by seed, exactly as a run's `summary.json`
//! is ([`crate::report::summarize`]). Written into the output folder (default [`DEFAULT_OUT`]):
//!
//! - `report.parquet` and `report.csv`: the long table, columns [`REPORT_COLUMNS`], one
//!   [`ReportRow`] per folder x agent x metric x statistic (schema: `docs/results.md`);
//! - `report.md`: the folders, a cost and SLO table across all of them, then each folder's
//!   tables and verdicts as in `summary.md`;
//! - `plots/cost_slo.png`: pod-hours against SLO-violation time, one point per folder x agent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cost_slo_plot::{plot_cost_slo_points, summary_points};
use crate::records::{EpisodeRecord, METRIC_NAMES};
use crate::report::{by_seed, comparison_cell, fmt_summary, summarize, SummaryJson, ALPHA};
use crate::result_dir::read_episodes;
use crate::tables::write_parquet;

/// Output folder when `--out` is not given.
pub const DEFAULT_OUT: &str = "results/report";

/// Columns of `report.parquet` and `report.csv`, in order (see [`ReportRow`]).
pub const REPORT_COLUMNS: [&str; 18] = [
    "folder",
    "experiment",
    "agent",
    "kind",
    "metric",
    "statistic",
    "baseline",
    "mean",
    "ci95_low",
    "ci95_high",
    "n",
    "p_value",
    "test",
    "bootstrap_ci95_low",
    "bootstrap_ci95_high",
    "effect_size_dz",
    "wilcoxon_p_value",
    "p_value_holm",
];

/// `statistic` of a row holding a metric's mean over seeds.
pub const STAT_MEAN: &str = "mean";
/// `statistic` of a row holding the paired change against the baseline, in % of its mean.
pub const STAT_CHANGE: &str = "relative_change_pct";

/// One row of the report's long table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The folder's label: its name, or the path as given when two folders share a name.
    pub folder: String,
    /// The experiment name (`summary.json`, else `config.toml`, else the folder's name).
    pub experiment: String,
    /// Agent name.
    pub agent: String,
    /// Agent kind (`hpa`, `q-learning`, ...).
    pub kind: String,
    /// Metric name, one of [`METRIC_NAMES`].
    pub metric: String,
    /// [`STAT_MEAN`]: `mean` is the metric's mean over seeds, in its unit, with the 95% t
    /// interval of the mean. [`STAT_CHANGE`]: `mean` is 100 * mean(agent - baseline) /
    /// |mean(baseline)| over the seeds both ran, in %, with its 95% t interval and p-value.
    pub statistic: String,
    /// The baseline of a [`STAT_CHANGE`] row; `None` (empty, null) for [`STAT_MEAN`] rows.
    pub baseline: Option<String>,
    /// See `statistic`; `None` when undefined (no samples, or a baseline mean of 0).
    pub mean: Option<f64>,
    /// Lower end of the 95% confidence interval of `mean`; `None` when `mean` is.
    pub ci95_low: Option<f64>,
    /// Upper end of the 95% confidence interval of `mean`; `None` when `mean` is.
    pub ci95_high: Option<f64>,
    /// Seeds used: with a value of the metric ([`STAT_MEAN`]), or paired ([`STAT_CHANGE`]).
    pub n: u64,
    /// Two-sided p-value of `test` ([`STAT_CHANGE`] rows); `None` when undefined.
    pub p_value: Option<f64>,
    /// `paired-t` on [`STAT_CHANGE`] rows; `None` otherwise.
    pub test: Option<String>,
    /// [`STAT_CHANGE`] rows: lower end of the 95% percentile-bootstrap interval of `mean`, in %
    /// ([`crate::ab::bootstrap_relative_ci95`]); `None` otherwise or when undefined.
    pub bootstrap_ci95_low: Option<f64>,
    /// Upper end of the bootstrap interval; `None` when the lower end is.
    pub bootstrap_ci95_high: Option<f64>,
    /// [`STAT_CHANGE`] rows: Cohen's d_z of the paired differences (dimensionless).
    pub effect_size_dz: Option<f64>,
    /// [`STAT_CHANGE`] rows: two-sided Wilcoxon signed-rank p-value of the paired differences.
    pub wilcoxon_p_value: Option<f64>,
    /// [`STAT_CHANGE`] rows: `p_value` after the Holm-Bonferroni correction over the folder's
    /// comparisons of the same metric (every agent against the baseline).
    pub p_value_holm: Option<f64>,
}

/// One result folder, loaded and summarised.
#[derive(Debug, Clone)]
pub struct ResultFolder {
    /// Label in the report's tables and plot (see [`ReportRow::folder`]).
    pub label: String,
    /// The folder as given.
    pub path: PathBuf,
    /// The file its episodes were read from (`episodes.parquet` or `episodes.csv`).
    pub source: PathBuf,
    /// The baseline of its comparisons.
    pub baseline: String,
    /// Its episodes summarised against `baseline` (experiment name in `summary.experiment`).
    pub summary: SummaryJson,
    /// Its episode records.
    pub episodes: Vec<EpisodeRecord>,
}

/// What a folder's `summary.json` and `config.toml` say about it; `None` where neither does.
#[derive(Debug, Default, PartialEq)]
struct Meta {
    experiment: Option<String>,
    baseline: Option<String>,
    env_id: Option<String>,
    trace: Option<String>,
}

/// Reads the names the report needs from `dir`'s `summary.json` and `config.toml` (the config
/// wins on the baseline, the summary on the rest).
///
/// # Errors
/// A file exists but is not valid JSON or TOML (the file is named).
fn read_meta(dir: &Path) -> Result<Meta> {
    let mut m = Meta::default();
    let str_at = |v: Option<&toml::Value>| v.and_then(|v| v.as_str()).map(String::from);
    let config = dir.join("config.toml");
    if config.is_file() {
        let text = std::fs::read_to_string(&config)
            .with_context(|| format!("while reading {}", config.display()))?;
        let v: toml::Value =
            toml::from_str(&text).with_context(|| format!("while parsing {}", config.display()))?;
        m.experiment = str_at(v.get("experiment"));
        m.baseline = str_at(v.get("evaluation").and_then(|e| e.get("baseline")));
        m.trace = str_at(v.get("workload").and_then(|w| w.get("trace"))).map(|t| {
            Path::new(&t)
                .file_name()
                .map_or(t.clone(), |f| f.to_string_lossy().into())
        });
    }
    let summary = dir.join("summary.json");
    if summary.is_file() {
        let text = std::fs::read_to_string(&summary)
            .with_context(|| format!("while reading {}", summary.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("while parsing {}", summary.display()))?;
        let s = |key: &str| v.get(key).and_then(|x| x.as_str()).map(String::from);
        m.experiment = s("experiment").or(m.experiment);
        m.env_id = s("env_id");
        m.trace = s("trace").or(m.trace);
        let first = v["comparisons"].get(0).and_then(|c| c["baseline"].as_str());
        m.baseline = m.baseline.or(first.map(String::from));
    }
    Ok(m)
}

/// Loads the result folder `dir`: its episodes ([`read_episodes`]) summarised against
/// `baseline`, else the folder's own baseline (config, then summary), else `hpa`.
///
/// # Errors
/// `dir` is not a folder, has no episode table, or one of its files cannot be read (each named);
/// the table has no rows.
pub fn load_folder(dir: &Path, baseline: Option<&str>) -> Result<ResultFolder> {
    if !dir.is_dir() {
        bail!(
            "{}: not a folder (expected a result folder of `nimbusguard run`)",
            dir.display()
        );
    }
    let (episodes, source) = read_episodes(dir)?;
    if episodes.is_empty() {
        bail!("{}: no episode records", source.display());
    }
    let meta = read_meta(dir)?;
    let name = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
    let experiment = meta.experiment.unwrap_or_else(|| name.clone());
    let baseline = baseline
        .map(String::from)
        .or(meta.baseline)
        .unwrap_or_else(|| "hpa".into());
    let env_id = meta
        .env_id
        .unwrap_or_else(|| crate::runner::RUN_ENV_ID.into());
    let trace = meta.trace.unwrap_or_else(|| "<unknown>".into());
    let summary = summarize(&experiment, &env_id, &trace, &episodes, &baseline);
    Ok(ResultFolder {
        label: name,
        path: dir.to_path_buf(),
        source,
        baseline,
        summary,
        episodes,
    })
}

/// Seeds on which both `agent` and `baseline` have a value of `metric` (the pairs behind a
/// comparison).
fn pair_count(episodes: &[EpisodeRecord], agent: &str, baseline: &str, metric: &str) -> u64 {
    let of = |name: &str| {
        let recs: Vec<&EpisodeRecord> = episodes.iter().filter(|r| r.agent == name).collect();
        by_seed(&recs)
            .into_iter()
            .filter_map(|(seed, r)| Some((seed, r.metrics.get(metric).filter(|x| !x.is_nan())?)))
            .collect::<BTreeMap<u64, f64>>()
    };
    let base = of(baseline);
    of(agent).keys().filter(|s| base.contains_key(s)).count() as u64
}

/// The long table of `folders`: per folder, agent (name order) and metric ([`METRIC_NAMES`]
/// order), a [`STAT_MEAN`] row, then for agents other than the baseline a [`STAT_CHANGE`] row.
pub fn report_rows(folders: &[ResultFolder]) -> Vec<ReportRow> {
    let finite = |x: f64| Some(x).filter(|x| x.is_finite());
    let mut rows = Vec::new();
    for f in folders {
        let s = &f.summary;
        for (agent, a) in &s.agents {
            for metric in METRIC_NAMES {
                let row = |statistic: &str| ReportRow {
                    folder: f.label.clone(),
                    experiment: s.experiment.clone(),
                    agent: agent.clone(),
                    kind: a.kind.clone(),
                    metric: metric.to_string(),
                    statistic: statistic.to_string(),
                    baseline: None,
                    mean: None,
                    ci95_low: None,
                    ci95_high: None,
                    n: 0,
                    p_value: None,
                    test: None,
                    bootstrap_ci95_low: None,
                    bootstrap_ci95_high: None,
                    effect_size_dz: None,
                    wilcoxon_p_value: None,
                    p_value_holm: None,
                };
                if let Some(m) = a.metrics.get(metric) {
                    rows.push(ReportRow {
                        mean: finite(m.mean),
                        ci95_low: finite(m.ci95_low),
                        ci95_high: finite(m.ci95_high),
                        n: m.n as u64,
                        ..row(STAT_MEAN)
                    });
                }
                let comparison = s.comparisons.iter().find(|c| {
                    c.agent == *agent
                        && c.metric == metric
                        && c.test == crate::stats::PairedTest::PairedT
                });
                if let Some(c) = comparison {
                    rows.push(ReportRow {
                        baseline: Some(c.baseline.clone()),
                        mean: c.relative_change_pct,
                        ci95_low: c.ci95_low,
                        ci95_high: c.ci95_high,
                        n: pair_count(&f.episodes, agent, &c.baseline, metric),
                        p_value: c.p_value,
                        test: Some(c.test.as_str().to_string()),
                        bootstrap_ci95_low: c.bootstrap_ci95_low,
                        bootstrap_ci95_high: c.bootstrap_ci95_high,
                        effect_size_dz: c.effect_size_dz,
                        wilcoxon_p_value: c.wilcoxon_p_value,
                        p_value_holm: c.p_value_holm,
                        ..row(STAT_CHANGE)
                    });
                }
            }
        }
    }
    rows
}

/// `rows` as a DataFrame with the columns [`REPORT_COLUMNS`]: strings String (`baseline` and
/// `test` nullable), `n` UInt64, every other column nullable Float64.
///
/// # Errors
/// Never in practice; polars' error otherwise.
pub fn report_frame(rows: &[ReportRow]) -> Result<polars::prelude::DataFrame> {
    use polars::prelude::{Column, DataFrame};
    let s = |name: &str, get: fn(&ReportRow) -> &str| {
        Column::new(name.into(), rows.iter().map(get).collect::<Vec<_>>())
    };
    let o = |name: &str, get: fn(&ReportRow) -> Option<&str>| {
        Column::new(name.into(), rows.iter().map(get).collect::<Vec<_>>())
    };
    let f = |name: &str, get: fn(&ReportRow) -> Option<f64>| {
        Column::new(name.into(), rows.iter().map(get).collect::<Vec<_>>())
    };
    let columns = vec![
        s("folder", |r| &r.folder),
        s("experiment", |r| &r.experiment),
        s("agent", |r| &r.agent),
        s("kind", |r| &r.kind),
        s("metric", |r| &r.metric),
        s("statistic", |r| &r.statistic),
        o("baseline", |r| r.baseline.as_deref()),
        f("mean", |r| r.mean),
        f("ci95_low", |r| r.ci95_low),
        f("ci95_high", |r| r.ci95_high),
        Column::new("n".into(), rows.iter().map(|r| r.n).collect::<Vec<u64>>()),
        f("p_value", |r| r.p_value),
        o("test", |r| r.test.as_deref()),
        f("bootstrap_ci95_low", |r| r.bootstrap_ci95_low),
        f("bootstrap_ci95_high", |r| r.bootstrap_ci95_high),
        f("effect_size_dz", |r| r.effect_size_dz),
        f("wilcoxon_p_value", |r| r.wilcoxon_p_value),
        f("p_value_holm", |r| r.p_value_holm),
    ];
    DataFrame::new(rows.len(), columns).context("cannot build the report table")
}

/// Labels for `folders`: each folder's name, or the path as given where names repeat.
fn set_labels(folders: &mut [ResultFolder]) {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for f in folders.iter() {
        *count.entry(f.label.clone()).or_default() += 1;
    }
    for f in folders.iter_mut() {
        if count[&f.label] > 1 {
            f.label = f.path.display().to_string();
        }
    }
}

/// Agent names of `s`, its baseline first.
fn agent_order<'a>(s: &'a SummaryJson, baseline: &str) -> Vec<&'a str> {
    let mut order: Vec<&str> = s.agents.keys().map(String::as_str).collect();
    order.sort_by_key(|a| *a != baseline);
    order
}

/// `report.md`: the folders, the cost and SLO table across them, then each folder's own
/// tables (as in `summary.md`, headings one level down).
pub fn render_report(folders: &[ResultFolder]) -> String {
    let mut out = format!("# Report: {} result folders\n\n", folders.len());
    out.push_str("| Folder | Path | Experiment | Read from | Agents | Seeds | Baseline |\n");
    out.push_str("|---|---|---|---|---:|---:|---|\n");
    for f in folders {
        let s = &f.summary;
        let file = f.source.file_name().unwrap_or_default().to_string_lossy();
        let base = if s.agents.contains_key(&f.baseline) {
            f.baseline.clone()
        } else {
            format!("{} (absent: no comparisons)", f.baseline)
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | `{file}` | {} | {} | {base} |",
            f.label,
            f.path.display(),
            s.experiment,
            s.agents.len(),
            s.seeds
        );
    }
    let _ = writeln!(
        out,
        "\n## Cost and SLO across folders\n\nEach cell: mean ± half-width of the 95% \
         confidence interval over seeds (Student t). \"vs baseline\": the change against the \
         folder's baseline, paired by seed, with its 95% CI and the p-value of a paired t-test \
         (pod-hours in % of the baseline's mean, SLO violation in percentage points; **bold**: \
         p < {ALPHA}).\n"
    );
    out.push_str(
        "| Folder | Agent | Kind | Pod-hours | vs baseline | SLO violation % | vs baseline | \
         p95 latency ms | Dropped % |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for f in folders {
        let s = &f.summary;
        for agent in agent_order(s, &f.baseline) {
            let a = &s.agents[agent];
            let m = |metric: &str| fmt_summary(a.metrics.get(metric), 1.0);
            let vs = |metric: &str| {
                if agent == f.baseline {
                    "(baseline)".to_string()
                } else {
                    comparison_cell(s, agent, metric)
                }
            };
            let _ = writeln!(
                out,
                "| {} | {agent} | {} | {} | {} | {} | {} | {} | {} |",
                f.label,
                a.kind,
                m("pod_hours"),
                vs("pod_hours"),
                m("slo_violation_pct"),
                vs("slo_violation_pct"),
                m("p95_latency_ms"),
                m("dropped_pct"),
            );
        }
    }
    for f in folders {
        let notes = [format!("Read from `{}`.", f.source.display())];
        let md = crate::report::render_markdown(&f.summary, &notes);
        let mut lines = md.lines();
        lines.next(); // "# experiment", replaced by the folder's heading
        let _ = writeln!(out, "\n## {} (`{}`)", f.label, f.summary.experiment);
        for line in lines {
            if line.starts_with('#') {
                out.push('#');
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Runs `nimbusguard report`: loads `dirs` ([`load_folder`], every comparison against
/// `baseline` when given), then writes `report.parquet`, `report.csv`, `report.md` and
/// `plots/cost_slo.png` into `out` (default [`DEFAULT_OUT`]). Returns the output folder.
///
/// # Errors
/// No folder given; a folder given twice (also under another path); a folder that is not one,
/// has no episode table or unreadable files (named with what it lacks); `baseline` names an
/// agent of none of the folders; `out` is one of the result folders or holds the results of a
/// run or sweep; an output cannot be written.
pub fn execute(dirs: &[PathBuf], out: Option<&Path>, baseline: Option<&str>) -> Result<PathBuf> {
    if dirs.is_empty() {
        bail!("no result folders: expected one or more folders written by `nimbusguard run`");
    }
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::new();
    for d in dirs {
        let canon = d.canonicalize().with_context(|| {
            format!(
                "{}: not found (expected a result folder of `nimbusguard run`)",
                d.display()
            )
        })?;
        if let Some((_, first)) = seen.iter().find(|(c, _)| *c == canon) {
            bail!(
                "{} and {} are the same result folder; give each folder once",
                first.display(),
                d.display()
            );
        }
        seen.push((canon, d));
    }
    let mut folders = dirs
        .iter()
        .map(|d| load_folder(d, baseline))
        .collect::<Result<Vec<_>>>()?;
    set_labels(&mut folders);
    if let Some(b) = baseline {
        if !folders.iter().any(|f| f.summary.agents.contains_key(b)) {
            let names: std::collections::BTreeSet<&str> = folders
                .iter()
                .flat_map(|f| f.summary.agents.keys().map(String::as_str))
                .collect();
            let names: Vec<&str> = names.into_iter().collect();
            bail!(
                "--baseline {b}: no such agent in any folder (agents: {})",
                names.join(", ")
            );
        }
    }
    let out = out.unwrap_or(Path::new(DEFAULT_OUT));
    if let Ok(o) = out.canonicalize() {
        if let Some((_, d)) = seen.iter().find(|(c, _)| *c == o) {
            bail!(
                "--out {}: is the result folder {}; choose another",
                out.display(),
                d.display()
            );
        }
    }
    // Another run's folder (or a sweep's) would lose its own plots/cost_slo.png.
    if let Some(f) = [
        "summary.json",
        "episodes.csv",
        "episodes.parquet",
        "sweep.json",
    ]
    .iter()
    .find(|f| out.join(f).is_file())
    {
        bail!(
            "--out {}: holds {f}, the results of a run or sweep, whose plots the report would \
             overwrite; choose another folder",
            out.display()
        );
    }
    std::fs::create_dir_all(out.join("plots"))
        .with_context(|| format!("cannot create output folder {}", out.display()))?;

    let rows = report_rows(&folders);
    write_parquet(out.join("report.parquet"), &mut report_frame(&rows)?)?;
    let csv_path = out.join("report.csv");
    let write_csv = || -> Result<()> {
        let mut w = csv::Writer::from_path(&csv_path)?;
        for r in &rows {
            w.serialize(r)?;
        }
        w.flush()?;
        Ok(())
    };
    write_csv().with_context(|| format!("while writing {}", csv_path.display()))?;
    let md_path = out.join("report.md");
    std::fs::write(&md_path, render_report(&folders))
        .with_context(|| format!("while writing {}", md_path.display()))?;

    let several = folders.len() > 1;
    let points: Vec<_> = folders
        .iter()
        .flat_map(|f| {
            let prefix = if several {
                format!("{}/", f.label)
            } else {
                String::new()
            };
            summary_points(&f.summary, &prefix)
        })
        .collect();
    let caption = format!("Cost and SLO per agent, {} result folders", folders.len());
    plot_cost_slo_points(out.join("plots").join("cost_slo.png"), &caption, &points)?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{episode, scratch_dir};
    use crate::records::write_episodes_csv;

    #[test]
    fn meta_comes_from_config_then_summary() {
        let dir = scratch_dir("report-meta");
        assert_eq!(read_meta(&dir).unwrap(), Meta::default());
        std::fs::write(
            dir.join("config.toml"),
            "experiment = \"cfg\"\n[evaluation]\nbaseline = \"static\"\n\
             [workload]\ntrace = \"datasets/x.csv\"\n",
        )
        .unwrap();
        let m = read_meta(&dir).unwrap();
        assert_eq!(m.experiment.as_deref(), Some("cfg"));
        assert_eq!(m.baseline.as_deref(), Some("static"));
        assert_eq!(m.trace.as_deref(), Some("x.csv"));
        std::fs::write(
            dir.join("summary.json"),
            r#"{"experiment": "sum", "env_id": "scaling-v0", "comparisons": [{"baseline": "hpa"}]}"#,
        )
        .unwrap();
        let m = read_meta(&dir).unwrap();
        assert_eq!(m.experiment.as_deref(), Some("sum"));
        assert_eq!(m.baseline.as_deref(), Some("static"), "the config wins");
        std::fs::write(dir.join("summary.json"), "{").unwrap();
        let e = format!("{:#}", read_meta(&dir).unwrap_err());
        assert!(e.contains("summary.json"), "{e}");
    }

    #[test]
    fn rows_pair_seeds_and_labels_repeat_as_paths() {
        let dir = scratch_dir("report-rows").join("a");
        std::fs::create_dir_all(&dir).unwrap();
        // hpa on seeds 1-3, q on seeds 2-4: two pairs.
        let mut recs: Vec<_> = (1..=3).map(|s| episode("hpa", "hpa", s, 10.0)).collect();
        recs.extend((2..=4).map(|s| episode("q", "q-learning", s, 8.0)));
        write_episodes_csv(dir.join("episodes.csv"), &recs).unwrap();
        let f = load_folder(&dir, None).unwrap();
        assert_eq!((f.label.as_str(), f.baseline.as_str()), ("a", "hpa"));
        assert_eq!(f.summary.experiment, "a");
        let rows = report_rows(std::slice::from_ref(&f));
        // 2 agents x 9 metrics means + 9 changes of q.
        assert_eq!(rows.len(), 27);
        let ph = |stat: &str, agent: &str| {
            rows.iter()
                .find(|r| r.agent == agent && r.metric == "pod_hours" && r.statistic == stat)
                .unwrap()
        };
        assert_eq!(
            (ph(STAT_MEAN, "q").mean, ph(STAT_MEAN, "q").n),
            (Some(8.0), 3)
        );
        let c = ph(STAT_CHANGE, "q");
        assert_eq!(
            (c.mean, c.n, c.baseline.as_deref()),
            (Some(-20.0), 2, Some("hpa"))
        );
        let mut two = vec![f.clone(), f];
        two[1].path = PathBuf::from("elsewhere/a");
        set_labels(&mut two);
        assert_eq!(two[1].label, "elsewhere/a");
        let md = render_report(&two);
        assert!(md.starts_with("# Report: 2 result folders\n"), "{md}");
        assert!(md.contains("\n## elsewhere/a (`a`)\n"), "{md}");
        assert!(md.contains("\n### vs hpa\n"), "{md}");
    }
}
