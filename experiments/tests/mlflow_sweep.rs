//! A sweep mirrored to a real MLflow server (installed and started as in `tests/mlflow.rs`)
//! that goes away in the middle of the sweep: every local result is complete and identical to a
//! sweep without MLflow, the runs MLflow missed wait in their spools, and `nimbusguard mlflow
//! sync` uploads them later: one finished parent run per sweep run (tagged with the sweep and
//! point, the point's overrides as params) with one child per agent x seed, none twice.

mod common;
mod mlflow_support;

use std::path::Path;
use std::process::Output;

use common::{ok, tmp};
use mlflow_support::{metric, param, tag, CutProxy, Mlflow, MlflowServer};
use serde_json::Value;

const SWEEP: &str = "experiments/tests/data/sweep.toml";

/// Runs `nimbusguard ARGS` in the repository root, with `MLFLOW_TRACKING_URI` = `uri` if given.
fn nimbusguard(args: &[&str], uri: Option<&str>) -> Output {
    let mut c = common::command(args);
    if let Some(u) = uri {
        c.env("MLFLOW_TRACKING_URI", u);
    }
    c.output().expect("the binary runs")
}

fn spools(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_dir(e.path().join("mlflow-spool")).is_ok_and(|mut d| d.next().is_some())
        })
        .count()
}

fn mlflow_stopped_mid_sweep(m: &Mlflow) {
    let dir = tmp("sweep");
    let reference = dir.join("reference");
    ok(
        nimbusguard(
            &[
                "sweep",
                SWEEP,
                "--out",
                reference.to_str().unwrap(),
                "--threads",
                "1",
            ],
            None,
        ),
        "sweep without MLflow",
    );

    // The "server" answers 150 requests (the first runs' uploads), then refuses connections.
    let proxy = CutProxy::start(&m.url, 150);
    let out = dir.join("mirrored");
    let (_, stderr) = ok(
        nimbusguard(
            &[
                "sweep",
                SWEEP,
                "--out",
                out.to_str().unwrap(),
                "--threads",
                "1",
            ],
            Some(&proxy.url),
        ),
        "sweep with MLflow going away",
    );
    assert!(
        stderr.contains("MLflow was unreachable during this sweep"),
        "{stderr}"
    );
    assert!(stderr.contains("nimbusguard mlflow sync"), "{stderr}");
    // Every local result is complete and the same as without MLflow.
    let (a, b) = (
        common::files(&reference, &["mlflow-spool"]),
        common::files(&out, &["mlflow-spool"]),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(v == &b[k], "{k} differs from the sweep without MLflow");
    }
    let waiting = spools(&out);
    assert!(
        (1..7).contains(&waiting),
        "{waiting} of 7 runs spooled: the cut came mid-sweep"
    );

    let exp = m.experiment_id("sweep-base");
    let before = m.runs(&exp).len();
    assert!(before >= 1, "some runs reached MLflow before it went away");
    let (stdout, _) = ok(
        nimbusguard(&["mlflow", "sync", out.to_str().unwrap()], Some(&m.url)),
        "mlflow sync",
    );
    assert_eq!(spools(&out), 0, "the spools are emptied: {stdout}");

    // 7 parents (one per sweep run) and 7 x 3 agents x 2 seeds children, all finished, once.
    let runs = m.runs(&exp);
    assert_eq!(runs.len(), 7 + 7 * 3 * 2, "{stdout}");
    assert!(runs.iter().all(|r| r["info"]["status"] == "FINISHED"));
    let parents: Vec<&Value> = runs
        .iter()
        .filter(|r| tag(r, "mlflow.parentRunId").is_none())
        .collect();
    assert_eq!(parents.len(), 7);
    let plan: Value =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).unwrap()).unwrap();
    for p in &parents {
        assert_eq!(tag(p, "nimbusguard.sweep"), Some("sweep"));
        let run_id = tag(p, "nimbusguard.sweep_run").unwrap();
        let point = tag(p, "nimbusguard.sweep_point").unwrap();
        let planned = plan["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == point)
            .unwrap();
        for (k, v) in planned["overrides"].as_object().unwrap() {
            let got = param(p, k);
            assert_eq!(got, v.as_str(), "{run_id}: param {k}");
        }
        // Its children's pod-hours are the run's episodes.csv values.
        let children: Vec<&Value> = runs
            .iter()
            .filter(|r| tag(r, "mlflow.parentRunId") == p["info"]["run_id"].as_str())
            .collect();
        assert_eq!(children.len(), 6, "{run_id}: 3 agents x 2 seeds");
        // They name the run's final folder, not the `.partial` one it was mirrored from.
        let dir_tag = tag(children[0], "nimbusguard.result_dir").unwrap();
        assert!(
            dir_tag.ends_with(&format!("runs/{run_id}")),
            "{run_id}: {dir_tag}"
        );
        let mut csv =
            csv::Reader::from_path(out.join("runs").join(run_id).join("episodes.csv")).unwrap();
        let head: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
        let col = |n: &str| head.iter().position(|h| h == n).unwrap();
        for rec in csv.records() {
            let rec = rec.unwrap();
            let child = children
                .iter()
                .find(|c| {
                    tag(c, "agent") == Some(&rec[col("agent")])
                        && tag(c, "seed") == Some(&rec[col("seed")])
                })
                .unwrap_or_else(|| panic!("{run_id}: no run for {:?}", rec));
            let want: f64 = rec[col("pod_hours")].parse().unwrap();
            let got = metric(child, "pod_hours").unwrap();
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{run_id}"
            );
        }
    }
    // A second sync has nothing to add.
    ok(
        nimbusguard(&["mlflow", "sync", out.to_str().unwrap()], Some(&m.url)),
        "second mlflow sync",
    );
    assert_eq!(m.runs(&exp).len(), runs.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mlflow_stopped_mid_sweep_loses_nothing_and_syncs_later() {
    let server =
        MlflowServer::start().unwrap_or_else(|e| panic!("MLflow server did not start: {e}"));
    mlflow_stopped_mid_sweep(&server.client());
}
