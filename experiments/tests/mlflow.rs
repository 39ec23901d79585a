//! MLflow logging against a real MLflow server (3.17.2, installed by `scripts/python-env.sh`
//! into a venv and started on a free loopback port with a sqlite store in a temp folder, once
//! for the whole file). Runs are read back through MLflow's REST API and its Python client.
//!
//! Trials:
//! - `run_is_mirrored`: `nimbusguard run tiny.toml` with `MLFLOW_TRACKING_URI`: one parent
//!   and one child per agent x seed, with the episode metrics, dotted params, tags, curves,
//!   artifacts and a registered model version per trained policy; the controller's
//!   `mlflowModel` loader downloads the registered q and dqn policies, which decide as the
//!   local ones.
//! - `server_down_spools_then_sync_uploads`: nothing listens at the URI; the run succeeds with
//!   complete results and a spool; `mlflow sync` to a dead server fails and keeps it; `mlflow
//!   sync` to the server uploads it; syncing the same spool again adds nothing, and a run left
//!   unfinished is replaced.
//! - `server_stopped_mid_upload`: the server goes away after a number of requests (a proxy
//!   in front of it stops accepting connections): the run succeeds, the spool holds the
//!   runs, `mlflow sync` completes the upload without duplicates.
//!
//! The server process group is killed when the file's trials end (also after a panic), and a
//! watchdog in its shell stops it if this process dies.

mod common;
mod mlflow_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use common::{ok, root, tmp};
use libtest_mimic::{Arguments, Failed, Trial};
use mlflow_support::{closed_port, metric, param, tag, CutProxy, Mlflow, MlflowServer};
use serde_json::{json, Value};

/// Runs `nimbusguard ARGS` in the repository root, with `MLFLOW_TRACKING_URI` = `uri` if given.
fn nimbusguard(args: &[&str], uri: Option<&str>) -> Output {
    let mut c = common::command(args);
    if let Some(u) = uri {
        c.env("MLFLOW_TRACKING_URI", u);
    }
    c.output().expect("the binary runs")
}

/// `run tiny.toml --out DIR` for experiment `name` (time series every 60 s, 2 seeds).
fn run_tiny(name: &str, out: &Path, uri: &str) -> String {
    let tiny = root().join("experiments/tests/data/tiny.toml");
    let set_name = format!("experiment={name}");
    let args = [
        "run",
        tiny.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        &set_name,
        "--set",
        "evaluation.seeds=2",
        "--set",
        "output.timeseries_interval_s=60",
    ];
    ok(nimbusguard(&args, Some(uri)), "nimbusguard run").1
}

/// Every output file of a finished run is there and readable.
fn assert_results_complete(dir: &Path) -> Vec<BTreeMap<String, String>> {
    for f in [
        "config.toml",
        "timeseries.csv",
        "training.csv",
        "summary.md",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["seeds"], 2);
    let rows = episodes(dir);
    assert_eq!(rows.len(), 12 * 2, "12 agents x 2 seeds");
    for p in [
        "q.json",
        "q-hybrid.json",
        "dqn.dqn/model.bpk",
        "v0.dqn/dqn.json",
    ] {
        assert!(dir.join("policies").join(p).is_file(), "policy {p} missing");
    }
    rows
}

/// Rows of `episodes.csv` as column -> value.
fn episodes(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(dir.join("episodes.csv")).unwrap();
    let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            head.iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// The trained policies of a result folder: agent name and artifact path.
fn policies(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir.join("policies"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| {
            let agent = n.strip_suffix(".json").or(n.strip_suffix(".dqn"))?;
            Some((agent.to_string(), format!("policies/{n}")))
        })
        .collect();
    out.sort();
    out
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// Checks the runs of experiment `name` in MLflow against the result folder `dir`: one
/// finished parent, one finished child per episodes.csv row (tags, params, metrics), each
/// trained policy registered. Returns the runs.
fn check_mirrored(m: &Mlflow, name: &str, dir: &Path) -> Vec<Value> {
    let rows = episodes(dir);
    let exp = m.experiment_id(name);
    let runs = m.runs(&exp);
    assert_eq!(
        runs.len(),
        1 + rows.len(),
        "one parent + one run per agent x seed"
    );
    assert!(runs.iter().all(|r| r["info"]["status"] == "FINISHED"));
    let parents: Vec<&Value> = runs
        .iter()
        .filter(|r| tag(r, "mlflow.parentRunId").is_none())
        .collect();
    assert_eq!(parents.len(), 1);
    let parent_id = parents[0]["info"]["run_id"].as_str().unwrap();
    assert_eq!(tag(parents[0], "nimbusguard.kind"), Some("experiment"));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let hpa_mean = summary["agents"]["hpa"]["metrics"]["pod_hours"]["mean"]
        .as_f64()
        .unwrap();
    assert!(close(
        metric(parents[0], "hpa/pod_hours").unwrap(),
        hpa_mean
    ));
    assert_eq!(param(parents[0], "agents.dqn.dqn.total_steps"), Some("600"));
    let config: toml::Value = std::fs::read_to_string(dir.join("config.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let peak = config["workload"]["peak_rps"].to_string();
    for row in &rows {
        let child = runs
            .iter()
            .find(|r| {
                tag(r, "agent") == Some(&row["agent"]) && tag(r, "seed") == Some(&row["seed"])
            })
            .unwrap_or_else(|| panic!("no run for {} seed {}", row["agent"], row["seed"]));
        assert_eq!(tag(child, "mlflow.parentRunId"), Some(parent_id));
        assert_eq!(tag(child, "agent_kind"), Some(row["kind"].as_str()));
        assert_eq!(tag(child, "env_id"), summary["env_id"].as_str());
        assert_eq!(tag(child, "trace"), summary["trace"].as_str());
        assert_eq!(param(child, "workload.peak_rps"), Some(peak.as_str()));
        assert_eq!(param(child, "agent.name"), Some(row["agent"].as_str()));
        for key in ["pod_hours", "slo_violation_pct", "p95_latency_ms", "return"] {
            let want: f64 = row[key].parse().unwrap();
            let got = metric(child, key).unwrap_or_else(|| panic!("{key} missing"));
            assert!(close(got, want), "{} {key}: {got} != {want}", row["agent"]);
        }
    }
    if let Some(commit) = git_head() {
        assert_eq!(
            tag(parents[0], "mlflow.source.git.commit"),
            Some(commit.as_str())
        );
    }
    for (agent, path) in policies(dir) {
        let model = format!("nimbusguard-{name}-{agent}");
        let versions = m.get(
            "model-versions/search",
            &[("filter", &format!("name='{model}'"))],
        )["model_versions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(versions.len(), 1, "{model}: {versions:?}");
        let v = &versions[0];
        assert!(v["source"].as_str().unwrap().ends_with(&path), "{v}");
        let owner = runs
            .iter()
            .find(|r| r["info"]["run_id"] == v["run_id"])
            .expect("the version's run is in the experiment");
        assert_eq!(tag(owner, "agent"), Some(agent.as_str()));
        assert_eq!(tag(owner, "nimbusguard.policy"), Some(path.as_str()));
    }
    runs
}

fn git_head() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run_is_mirrored(m: &Mlflow) {
    let dir = tmp("live");
    let stderr = run_tiny("nimbusguard-live", &dir, &m.url);
    assert!(
        !dir.join("mlflow-spool").exists(),
        "nothing spooled:\n{stderr}"
    );
    assert!(!stderr.contains("warning: MLflow"), "{stderr}");
    let runs = check_mirrored(m, "nimbusguard-live", &dir);
    let rows = episodes(&dir);
    let id_of = |agent: &str, seed: &str| {
        runs.iter()
            .find(|r| tag(r, "agent") == Some(agent) && tag(r, "seed") == Some(seed))
            .unwrap()["info"]["run_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let seed0 = rows[0]["seed"].clone();
    // Curves with steps: the training returns of q, the time series of the first seed.
    let q = id_of("q", &seed0);
    let training: Vec<f64> = csv_column(&dir.join("training.csv"), "agent", "q", "return");
    let hist = m.history(&q, "training/return");
    assert_eq!(hist.len(), training.len());
    for (i, (h, want)) in hist.iter().zip(&training).enumerate() {
        assert_eq!(h["step"], i as i64);
        assert!(close(h["value"].as_f64().unwrap(), *want));
    }
    let hpa = id_of("hpa", &seed0);
    let replicas: Vec<f64> = csv_column(
        &dir.join("timeseries.csv"),
        "agent",
        "hpa",
        "desired_replicas",
    );
    let hist = m.history(&hpa, "timeseries/desired_replicas");
    assert_eq!(hist.len(), replicas.len());
    assert_eq!(hist[0]["step"], 60);
    assert!(close(hist[5]["value"].as_f64().unwrap(), replicas[5]));
    // Artifacts: the child's config and summary, the parent's files, byte for byte.
    let files = m.get("artifacts/list", &[("run_id", &hpa)])["files"].clone();
    let names: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["config.toml", "summary.json"], "{files}");
    let parent = runs
        .iter()
        .find(|r| tag(r, "mlflow.parentRunId").is_none())
        .unwrap();
    let parent_id = parent["info"]["run_id"].as_str().unwrap();
    let exp = parent["info"]["experiment_id"].as_str().unwrap();
    let listed = m
        .get("artifacts/list", &[("run_id", parent_id)])
        .to_string();
    for f in [
        "episodes.csv",
        "summary.md",
        "timeseries.csv",
        "training.csv",
    ] {
        assert!(listed.contains(f), "{f} not in {listed}");
    }
    let got = m.download(&format!("{exp}/{parent_id}/artifacts/summary.json"));
    assert_eq!(got, std::fs::read(dir.join("summary.json")).unwrap());
    let dqn = id_of("dqn", &seed0);
    let got = m.download(&format!("{exp}/{dqn}/artifacts/policies/dqn.dqn/model.bpk"));
    assert_eq!(
        got,
        std::fs::read(dir.join("policies/dqn.dqn/model.bpk")).unwrap()
    );

    // The same through MLflow's Python client.
    let script = r#"
import json, os, sys, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
c = MlflowClient()
e = c.get_experiment_by_name("nimbusguard-live")
runs = c.search_runs([e.experiment_id], max_results=1000)
child = [r for r in runs if r.data.tags.get("agent") == "hpa"][0]
path = mlflow.artifacts.download_artifacts(run_id=child.info.run_id, artifact_path="summary.json")
versions = c.search_model_versions("name='nimbusguard-nimbusguard-live-q'")
dqn = mlflow.artifacts.download_artifacts("models:/nimbusguard-nimbusguard-live-dqn/1")
print(json.dumps({
    "runs": len(runs),
    "children": sum(1 for r in runs if "mlflow.parentRunId" in r.data.tags),
    "seed": child.data.tags["seed"],
    "pod_hours": child.data.metrics["pod_hours"],
    "peak_rps": child.data.params["workload.peak_rps"],
    "summary": json.load(open(path))["experiment"],
    "q_versions": [v.source for v in versions],
    "dqn_model": sorted(os.listdir(dqn)),
    "q_history": len(c.get_metric_history(
        [r for r in runs if r.data.tags.get("agent") == "q" and "nimbusguard.policy" in r.data.tags][0].info.run_id,
        "training/return")),
}))
"#;
    let out = Command::new(m.bin.join("python"))
        .args(["-c", script, &m.url])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: Value = serde_json::from_slice(&out.stdout).expect("python printed JSON");
    assert_eq!(py["runs"], 1 + rows.len());
    assert_eq!(py["children"], rows.len());
    let hpa_row = rows
        .iter()
        .find(|r| r["agent"] == "hpa" && r["seed"] == py["seed"].as_str().unwrap())
        .unwrap();
    assert!(close(
        py["pod_hours"].as_f64().unwrap(),
        hpa_row["pod_hours"].parse().unwrap()
    ));
    assert_eq!(py["peak_rps"], "150.0");
    assert_eq!(py["summary"], "nimbusguard-live");
    assert!(py["q_versions"][0]
        .as_str()
        .unwrap()
        .ends_with("policies/q.json"));
    assert_eq!(py["q_history"], training.len());
    // A registered DQN downloads as its folder.
    assert_eq!(py["dqn_model"], json!(["dqn.json", "model.bpk"]));
    registered_policies_load(m, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The controller's `mlflowModel` loader: the registered q and dqn policies download as run
/// folders and decide exactly as the local ones; `latest` resolves; unknown models, versions
/// and servers fail with messages naming them.
fn registered_policies_load(m: &Mlflow, dir: &Path) {
    use adapters::k8s::controller::{PolicyLoader, ResolvedPolicy};
    use experiments::cmd_controller::RunFolderLoader;
    use sim::ClusterState;

    let cache = tmp("models");
    let loader = RunFolderLoader {
        mlflow_dir: cache.clone(),
    };
    let mlflow = |uri: &str| ResolvedPolicy::Mlflow {
        uri: uri.into(),
        tracking_uri: m.url.clone(),
    };
    // Observations spanning idle to overload.
    let states: Vec<ClusterState> = (0..24)
        .map(|i| {
            let replicas = 1 + i % 6;
            ClusterState {
                desired_replicas: replicas,
                status_replicas: replicas,
                ready_replicas: replicas,
                request_rate_per_s: f64::from(i * 13 % 160),
                p50_latency_ms: f64::from(5 + i * 7),
                p95_latency_ms: f64::from(10 + i * 29 % 400),
                p99_latency_ms: f64::from(20 + i * 41 % 900),
                queue_length: f64::from(i % 5 * 10),
                ..ClusterState::default()
            }
        })
        .collect();
    for (agent, version) in [("q", "1"), ("dqn", "latest")] {
        let uri = format!("models:/nimbusguard-nimbusguard-live-{agent}/{version}");
        let mut remote = loader
            .load(&mlflow(&uri))
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        let mut local = experiments::saved_agent::saved_agent(dir, agent)
            .unwrap()
            .autoscaler;
        assert_eq!(remote.name(), local.name());
        let (a, b): (Vec<u32>, Vec<u32>) = states
            .iter()
            .map(|s| {
                (
                    remote.decide(s).desired_replicas,
                    local.decide(s).desired_replicas,
                )
            })
            .unzip();
        assert_eq!(a, b, "{uri} decides as the local {agent}");
        let got = cache.join(format!("nimbusguard-nimbusguard-live-{agent}/1"));
        assert!(got.join("config.toml").is_file(), "{}", got.display());
    }
    // Byte for byte, the downloaded policy is the trained one.
    assert_eq!(
        std::fs::read(cache.join("nimbusguard-nimbusguard-live-q/1/policies/q.json")).unwrap(),
        std::fs::read(dir.join("policies/q.json")).unwrap()
    );
    let err = |p: ResolvedPolicy| match loader.load(&p) {
        Ok(a) => panic!("{p:?} loaded as {}", a.name()),
        Err(e) => e,
    };
    let e = err(mlflow("models:/nimbusguard-no-such-model/1"));
    assert!(
        e.contains("nimbusguard-no-such-model") && e.contains("not in the registry"),
        "{e}"
    );
    let e = err(mlflow("models:/nimbusguard-nimbusguard-live-q/99"));
    assert!(
        e.contains("version 99") && e.contains("not in the registry"),
        "{e}"
    );
    let e = err(ResolvedPolicy::Mlflow {
        uri: "models:/nimbusguard-nimbusguard-live-q/1".into(),
        tracking_uri: format!("http://127.0.0.1:{}", closed_port()),
    });
    assert!(e.contains("unreachable"), "{e}");
    let _ = std::fs::remove_dir_all(&cache);
}

/// The values of column `col` in the rows of `path` whose `key` column is `value`.
fn csv_column(path: &Path, key: &str, value: &str, col: &str) -> Vec<f64> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let head = r.headers().unwrap().clone();
    let (k, c) = (
        head.iter().position(|h| h == key).unwrap(),
        head.iter().position(|h| h == col).unwrap(),
    );
    let first_seed = head.iter().position(|h| h == "seed");
    let mut seed0 = None;
    r.records()
        .map(|x| x.unwrap())
        .filter(|x| &x[k] == value)
        .filter(|x| match first_seed {
            // timeseries.csv: the first seed only.
            Some(s) => *seed0.get_or_insert_with(|| x[s].to_string()) == x[s],
            None => true,
        })
        .map(|x| x[c].parse().unwrap())
        .collect()
}

/// Runs spooled in `dir`'s spool (run files).
fn spooled(dir: &Path) -> usize {
    let spool = dir.join("mlflow-spool");
    let Ok(batches) = std::fs::read_dir(&spool) else {
        return 0;
    };
    batches
        .filter_map(|b| std::fs::read_dir(b.ok()?.path().join("runs")).ok())
        .map(|r| r.count())
        .sum()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn sync(dir: &Path, uri: &str) -> Output {
    nimbusguard(&["mlflow", "sync", dir.to_str().unwrap()], Some(uri))
}

fn server_down_spools_then_sync_uploads(m: &Mlflow) {
    let dir = tmp("down");
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let stderr = run_tiny("nimbusguard-down", &dir, &dead);
    let rows = assert_results_complete(&dir);
    assert!(
        stderr.contains("warning: MLflow logging failed"),
        "{stderr}"
    );
    assert!(stderr.contains("nimbusguard mlflow sync"), "{stderr}");
    assert_eq!(spooled(&dir), 1 + rows.len());

    // Still down: a clear error, the spool stays.
    let out = sync(&dir, &dead);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unreachable") && err.contains("stays in the spool"),
        "{err}"
    );
    assert_eq!(spooled(&dir), 1 + rows.len());

    let backup = tmp("down-backup");
    copy_dir(&dir.join("mlflow-spool"), &backup);
    let (stdout, _) = ok(sync(&dir, &m.url), "mlflow sync");
    assert!(
        stdout.contains(&format!(
            "Uploaded {} runs from 1 spool folders",
            1 + rows.len()
        )),
        "{stdout}"
    );
    assert!(!dir.join("mlflow-spool").exists(), "the spool is emptied");
    let runs = check_mirrored(m, "nimbusguard-down", &dir);

    // Syncing the same spool again adds nothing; a run left unfinished is replaced.
    let child = runs
        .iter()
        .find(|r| tag(r, "agent") == Some("threshold"))
        .unwrap()["info"]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    m.post(
        "runs/update",
        &json!({"run_id": child, "status": "RUNNING"}),
    );
    copy_dir(&backup, &dir.join("mlflow-spool"));
    let (stdout, _) = ok(sync(&dir, &m.url), "second mlflow sync");
    assert!(
        stdout.contains("Uploaded 1 runs from 1 spool folders"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("({} were already there)", rows.len())),
        "{stdout}"
    );
    let again = check_mirrored(m, "nimbusguard-down", &dir);
    assert!(again.iter().all(|r| r["info"]["run_id"] != child.as_str()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&backup);
}

fn server_stopped_mid_upload(m: &Mlflow) {
    let dir = tmp("cut");
    // Enough requests for the parent and a few children, then the "server" is gone.
    let proxy = CutProxy::start(&m.url, 60);
    let stderr = run_tiny("nimbusguard-cut", &dir, &proxy.url);
    let rows = assert_results_complete(&dir);
    assert!(
        stderr.contains("warning: MLflow logging failed"),
        "{stderr}"
    );
    assert_eq!(spooled(&dir), 1 + rows.len());
    let exp = m.experiment_id("nimbusguard-cut");
    let before = m.runs(&exp);
    let finished = before
        .iter()
        .filter(|r| r["info"]["status"] == "FINISHED")
        .count();
    assert!(finished >= 2, "the upload got some runs through first");
    assert!(before.len() < 1 + rows.len(), "and was cut short");
    let (stdout, _) = ok(sync(&dir, &m.url), "mlflow sync");
    assert!(
        stdout.contains(&format!("({finished} were already there)")),
        "{stdout}"
    );
    check_mirrored(m, "nimbusguard-cut", &dir);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args = Arguments::from_args();
    let server: Option<Arc<Result<MlflowServer, String>>> = if args.list {
        None
    } else {
        Some(Arc::new(MlflowServer::start()))
    };
    let trial = |name: &str, f: fn(&Mlflow)| {
        let server = server.clone();
        Trial::test(name, move || {
            let s = server.as_ref().expect("not listing");
            match s.as_ref() {
                Ok(s) => {
                    f(&s.client());
                    Ok(())
                }
                Err(e) => Err(Failed::from(format!("MLflow server did not start: {e}"))),
            }
        })
    };
    let trials = vec![
        trial("run_is_mirrored", run_is_mirrored),
        trial(
            "server_down_spools_then_sync_uploads",
            server_down_spools_then_sync_uploads,
        ),
        trial("server_stopped_mid_upload", server_stopped_mid_upload),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    // Stops the server before exiting (process::exit skips destructors).
    drop(server);
    conclusion.exit();
}
