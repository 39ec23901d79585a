//! `nimbusguard report` on two small hand-made result folders (one with only CSVs, as older
//! runs have, one with Parquet tables): the long table's values against means, intervals and
//! paired tests computed by hand, and clear errors naming the folder on bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tmp;
use experiments::records::{write_episodes_csv, EpisodeMetrics, EpisodeRecord};
use experiments::tables::{read_parquet, write_episodes_parquet};
use polars::prelude::DataFrame;

fn rec(agent: &str, kind: &str, seed: u64, pod_hours: f64, slo: f64) -> EpisodeRecord {
    EpisodeRecord {
        agent: agent.into(),
        kind: kind.into(),
        seed,
        metrics: EpisodeMetrics {
            pod_hours,
            slo_violation_pct: slo,
            p95_latency_ms: 100.0,
            ..Default::default()
        },
        ticks: 3600,
        arrivals_total: 1000.0,
        served_total: 1000.0,
        dropped_total: 0.0,
        backlog_end: 0.0,
        anomaly_flags: None,
    }
}

/// Folder `alpha` (CSV only, config names the experiment and the baseline `hpa`) and folder
/// `beta` (Parquet only, no config: experiment = folder name, baseline `hpa` by default).
fn folders(base: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (base.join("alpha"), base.join("beta"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let mut recs = Vec::new();
    for (i, seed) in [1u64, 2, 3].into_iter().enumerate() {
        recs.push(rec("hpa", "hpa", seed, [10.0, 12.0, 14.0][i], 1.0));
        recs.push(rec(
            "q",
            "q-learning",
            seed,
            [8.0, 9.0, 13.0][i],
            [2.0, 4.0, 6.0][i],
        ));
    }
    write_episodes_csv(a.join("episodes.csv"), &recs).unwrap();
    std::fs::write(
        a.join("config.toml"),
        "experiment = \"exp-alpha\"\n[evaluation]\nbaseline = \"hpa\"\n",
    )
    .unwrap();
    let recs = [
        rec("hpa", "hpa", 7, 20.0, 0.0),
        rec("hpa", "hpa", 8, 22.0, 0.0),
        rec("oracle", "oracle", 7, 5.0, 0.0),
        rec("oracle", "oracle", 8, 6.0, 0.0),
    ];
    write_episodes_parquet(b.join("episodes.parquet"), &recs).unwrap();
    (a, b)
}

fn report(args: &[&Path], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nimbusguard"))
        .arg("report")
        .args(args)
        .args(extra)
        .output()
        .unwrap()
}

/// Runs `report` expecting a clean failure; returns stderr.
fn report_err(args: &[&Path], extra: &[&str]) -> String {
    let out = report(args, extra);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "report {args:?} {extra:?} should fail"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The value of `column` in the single row of `df` with the given keys.
fn cell(
    df: &DataFrame,
    folder: &str,
    agent: &str,
    metric: &str,
    stat: &str,
    column: &str,
) -> Option<f64> {
    let s = |c: &str| df.column(c).unwrap().str().unwrap().clone();
    let (f, a, m, st) = (s("folder"), s("agent"), s("metric"), s("statistic"));
    let rows: Vec<usize> = (0..df.height())
        .filter(|&i| {
            f.get(i) == Some(folder)
                && a.get(i) == Some(agent)
                && m.get(i) == Some(metric)
                && st.get(i) == Some(stat)
        })
        .collect();
    assert_eq!(rows.len(), 1, "{folder}/{agent}/{metric}/{stat}");
    let col = df.column(column).unwrap();
    if column == "n" {
        return col.u64().unwrap().get(rows[0]).map(|n| n as f64);
    }
    col.f64().unwrap().get(rows[0])
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

#[test]
fn report_tables_hold_the_hand_computed_statistics() {
    let base = tmp("values");
    let (a, b) = folders(&base);
    let out_dir = base.join("out");
    let out = report(&[&a, &b], &["--out", out_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let df = read_parquet(out_dir.join("report.parquet")).unwrap();
    let names: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
    assert_eq!(names, experiments::cmd_report::REPORT_COLUMNS);
    // alpha: 2 agents x 9 means + 9 changes of q; beta: the same with oracle.
    assert_eq!(df.height(), 54);
    let c = |f: &str, ag: &str, m: &str, st: &str, col: &str| cell(&df, f, ag, m, st, col);
    // hpa pod-hours in alpha: [10, 12, 14], mean 12, sd 2, t(0.975, 2) = 4.302653:
    // CI = 12 -+ 4.302653 * 2 / sqrt(3) = [7.031725, 16.968276].
    assert!(close(c("alpha", "hpa", "pod_hours", "mean", "mean"), 12.0));
    assert!(close(
        c("alpha", "hpa", "pod_hours", "mean", "ci95_low"),
        7.0317245764993395
    ));
    assert_eq!(c("alpha", "hpa", "pod_hours", "mean", "n"), Some(3.0));
    // q: [8, 9, 13], mean 10; SLO [2, 4, 6], mean 4.
    assert!(close(c("alpha", "q", "pod_hours", "mean", "mean"), 10.0));
    assert!(close(
        c("alpha", "q", "slo_violation_pct", "mean", "mean"),
        4.0
    ));
    // q vs hpa pod-hours, paired: d = [-2, -3, -1], mean -2 over mean(hpa) 12 -> -16.667%;
    // sd(d) = 1, hw = 4.302653 / sqrt(3) = 2.484138 -> [-37.367814, +4.034481] %;
    // t = -3.4641, df 2, two-sided p = 0.074180.
    let ch = |col: &str| c("alpha", "q", "pod_hours", "relative_change_pct", col);
    assert!(close(ch("mean"), -200.0 / 12.0));
    assert!(close(ch("ci95_low"), -37.36781426458609));
    assert!(close(ch("ci95_high"), 4.034480931252752));
    assert!((ch("p_value").unwrap() - 0.07417990022744854).abs() < 1e-6);
    assert_eq!(ch("n"), Some(3.0));
    // A/B columns: d_z = mean(d) / sd(d) = -2 / 1; Wilcoxon, exact: all 3 differences negative,
    // 1 of 2^3 sign patterns as extreme on each side -> p = 2/8; Holm over alpha's pod-hours
    // comparisons (q only) leaves p unchanged. Each bootstrap resample's change is a weighted
    // mean (weights hpa's values) of the per-seed ratios d/hpa = -2/10, -3/12, -1/14, so the
    // interval lies within [-25%, -7.142857%].
    assert!(close(ch("effect_size_dz"), -2.0));
    assert!(close(ch("wilcoxon_p_value"), 0.25));
    assert!(close(ch("p_value_holm"), ch("p_value").unwrap()));
    let (lo, hi) = (
        ch("bootstrap_ci95_low").unwrap(),
        ch("bootstrap_ci95_high").unwrap(),
    );
    assert!(
        -25.0 - 1e-9 <= lo && lo < hi && hi <= -100.0 / 14.0 + 1e-9,
        "{lo} {hi}"
    );
    // Mean rows carry no test statistics.
    assert_eq!(c("alpha", "q", "pod_hours", "mean", "effect_size_dz"), None);
    // beta (Parquet, no config): hpa [20, 22] mean 21, oracle [5, 6] mean 5.5;
    // oracle vs hpa: d = [-15, -16], mean -15.5 / 21 = -73.8095%.
    assert!(close(c("beta", "hpa", "pod_hours", "mean", "mean"), 21.0));
    assert!(close(
        c("beta", "oracle", "pod_hours", "relative_change_pct", "mean"),
        -1550.0 / 21.0
    ));
    // SLO change against a baseline mean of 0: undefined (null), not a number.
    assert_eq!(
        c(
            "beta",
            "oracle",
            "slo_violation_pct",
            "relative_change_pct",
            "mean"
        ),
        None
    );

    // The CSV holds the same rows; the Markdown names both folders and their sources.
    let csv = std::fs::read_to_string(out_dir.join("report.csv")).unwrap();
    assert_eq!(csv.lines().count(), 55);
    assert!(csv.starts_with(&experiments::cmd_report::REPORT_COLUMNS.join(",")));
    assert!(csv.contains("alpha,exp-alpha,q,q-learning,pod_hours,relative_change_pct,hpa,"));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.starts_with("# Report: 2 result folders\n"), "{md}");
    assert!(
        md.contains("| alpha | q | q-learning | 10.0 ± 6.6 | -16.7% [-37.4, +4.0], p=0.074 |"),
        "{md}"
    );
    assert!(
        md.contains("`episodes.csv`") && md.contains("`episodes.parquet`"),
        "{md}"
    );
    assert!(md.contains("\n## beta (`beta`)\n"), "{md}");
    let png = std::fs::read(out_dir.join("plots/cost_slo.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // --baseline: every folder compared against q where it exists (alpha only).
    let out = report(
        &[&a, &b],
        &["--out", out_dir.to_str().unwrap(), "--baseline", "q"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let df = read_parquet(out_dir.join("report.parquet")).unwrap();
    // hpa vs q: d = [2, 3, 1], mean 2 over mean(q) 10 -> +20%.
    assert!(close(
        cell(
            &df,
            "alpha",
            "hpa",
            "pod_hours",
            "relative_change_pct",
            "mean"
        ),
        20.0
    ));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("| q (absent: no comparisons) |"), "{md}");
}

#[test]
fn bad_inputs_are_refused_naming_the_folder() {
    let base = tmp("errors");
    let (a, b) = folders(&base);
    let out = base.join("out");
    let o = ["--out", out.to_str().unwrap()];
    let empty = base.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = report_err(&[&a, &empty], &o);
    assert!(
        err.contains(&format!(
            "{}: no episodes.parquet or episodes.csv",
            empty.display()
        )),
        "{err}"
    );
    let missing = base.join("missing");
    let err = report_err(&[&missing], &o);
    assert!(
        err.contains(&format!("{}: not found", missing.display())),
        "{err}"
    );
    let again = base.join("alpha/../alpha");
    let err = report_err(&[&a, &b, &again], &o);
    assert!(err.contains("are the same result folder"), "{err}");
    assert!(err.contains(&again.display().to_string()), "{err}");
    let err = report_err(&[], &o);
    assert!(err.contains("required"), "{err}");
    let err = report_err(
        &[&a, &b],
        &["--out", out.to_str().unwrap(), "--baseline", "nope"],
    );
    assert!(
        err.contains("--baseline nope: no such agent in any folder (agents: hpa, oracle, q)"),
        "{err}"
    );
    let err = report_err(&[&a, &b], &["--out", a.to_str().unwrap()]);
    assert!(err.contains("is the result folder"), "{err}");
    // Nor into a third run's folder, whose plot it would replace.
    let other = base.join("other-run");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("summary.json"), "{}").unwrap();
    let err = report_err(&[&a], &["--out", other.to_str().unwrap()]);
    assert!(err.contains("holds summary.json"), "{err}");
    assert!(!other.join("plots").exists());
    // A broken table names its file and column.
    std::fs::write(
        empty.join("episodes.csv"),
        "agent,kind,seed\nhpa,hpa,not-a-seed\n",
    )
    .unwrap();
    let err = report_err(&[&empty], &o);
    assert!(err.contains("episodes.csv"), "{err}");
    assert!(!out.join("report.md").exists(), "nothing written on errors");
}
