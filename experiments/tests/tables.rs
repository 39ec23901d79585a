//! The Parquet tables of a real run: each holds exactly the rows of its CSV, typed as
//! docs/results.md says; a rerun into the same folder replaces them.

use std::path::PathBuf;
use std::process::Command;

use experiments::records::{read_episodes_csv, read_timeseries_csv, read_training_csv};
use experiments::result_dir::read_episodes;
use experiments::tables::{
    read_episodes_parquet, read_parquet, read_timeseries_parquet, read_training_parquet,
    same_records,
};
use polars::prelude::DataType;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn a_runs_parquet_tables_equal_its_csvs() {
    let out = std::env::temp_dir().join(format!("nimbusguard-tables-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let config = root().join("experiments/tests/data/tables.toml");
    let run = Command::new(env!("CARGO_BIN_EXE_nimbusguard"))
        .args([
            "run",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let eps_csv = read_episodes_csv(out.join("episodes.csv")).unwrap();
    let eps = read_episodes_parquet(out.join("episodes.parquet")).unwrap();
    assert_eq!(eps_csv.len(), 9, "3 agents x 3 seeds");
    assert!(same_records(&eps, &eps_csv));
    let ticks_csv = read_timeseries_csv(out.join("timeseries.csv")).unwrap();
    let ticks = read_timeseries_parquet(out.join("timeseries.parquet")).unwrap();
    assert!(!ticks_csv.is_empty());
    assert!(same_records(&ticks, &ticks_csv));
    let train_csv = read_training_csv(out.join("training.csv")).unwrap();
    let train = read_training_parquet(out.join("training.parquet")).unwrap();
    assert_eq!(train_csv.len(), 3, "q's three training episodes");
    assert!(same_records(&train, &train_csv));
    // The folder loads from Parquet first.
    let (_, from) = read_episodes(&out).unwrap();
    assert_eq!(from, out.join("episodes.parquet"));

    // Types as documented, and values a person can check: the CSV's first data row.
    let df = read_parquet(out.join("episodes.parquet")).unwrap();
    assert_eq!(df.column("seed").unwrap().dtype(), &DataType::UInt64);
    assert_eq!(df.column("pod_hours").unwrap().dtype(), &DataType::Float64);
    let text = std::fs::read_to_string(out.join("episodes.csv")).unwrap();
    let first: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let pod_hours = df
        .column("pod_hours")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(pod_hours, first[3].parse::<f64>().unwrap());
    let df = read_parquet(out.join("timeseries.parquet")).unwrap();
    assert_eq!(
        df.column("ready_replicas").unwrap().dtype(),
        &DataType::UInt32
    );
    assert_eq!(
        df.column("slo_violated").unwrap().dtype(),
        &DataType::Boolean
    );
    let df = read_parquet(out.join("training.parquet")).unwrap();
    assert_eq!(
        df.column("loss").unwrap().null_count(),
        3,
        "Q-learning has no loss"
    );

    // A rerun with two seeds replaces the tables (no stale rows).
    let rerun = Command::new(env!("CARGO_BIN_EXE_nimbusguard"))
        .args([
            "run",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--set", "evaluation.seeds=2"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    assert_eq!(
        read_episodes_parquet(out.join("episodes.parquet"))
            .unwrap()
            .len(),
        6
    );
}

#[test]
fn reference_parquet_tables_equal_their_csvs() {
    // Every reference folder of `nimbusguard run` carries episodes.parquet, converted from its
    // CSV by the tables_from_csv example; the values must be the CSV's exactly.
    let reference = root().join("results/reference");
    let mut checked = 0;
    for entry in std::fs::read_dir(&reference).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("episodes.csv").is_file() {
            continue;
        }
        let csv = read_episodes_csv(dir.join("episodes.csv")).unwrap();
        let pq = read_episodes_parquet(dir.join("episodes.parquet"))
            .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
        assert!(same_records(&pq, &csv), "{}", dir.display());
        if dir.join("training.csv").is_file() {
            let csv = read_training_csv(dir.join("training.csv")).unwrap();
            let pq = read_training_parquet(dir.join("training.parquet")).unwrap();
            assert!(same_records(&pq, &csv), "{}", dir.display());
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "quickstart, peers and the three deep-* folders"
    );
    // The quickstart's time series (stored as Parquet only) is the reference run's: seed 1000
    // of its eight agents at 15 s over the two-day evaluation window.
    let ticks = read_timeseries_parquet(reference.join("quickstart/timeseries.parquet")).unwrap();
    assert_eq!(ticks.len(), 8 * 2 * 86_400 / 15);
    assert!(ticks.iter().all(|t| t.seed == 1000));
}
