//! `nimbusguard live` end to end on real processes: the HPA rules and a Q-learning policy
//! trained in the simulated twin (experiments/configs/live-spike.toml) each scale real
//! `workload-app` replicas, observed by Debian's Prometheus, while the load generator replays
//! a short spike; the same spike is simulated beside it. Checked: the result files of both
//! sides (summary.json, episodes, timeseries, plots, sim_to_real), request accounting against
//! the load generator's own summary, scale-up during the spike, one decision line per step,
//! and no replica left running. Plus bad inputs that must fail before anything starts.

mod common;

use std::path::Path;

use common::{nimbusguard, ok, s, tmp, workload_bins};
use serde_json::Value;

fn json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// PIDs of running processes whose executable is `exe`.
fn processes_of(exe: &Path) -> Vec<u32> {
    let exe = exe.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe)
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z ")
        })
        .collect()
}

fn rows(csv_path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(csv_path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn f(row: &std::collections::HashMap<String, String>, k: &str) -> f64 {
    row[k]
        .parse()
        .unwrap_or_else(|_| panic!("{k} = {:?}", row[k]))
}

#[test]
fn live_ab_runs_hpa_and_a_trained_policy_beside_the_simulator() {
    let (app, _) = workload_bins();
    let out = tmp("live-ab");
    // The default config's scenario and app flags, with a short spike as the segment:
    // 3 req/s, 60 req/s (1.2 cores of work) from 5 s to 30 s, 3 req/s to 45 s.
    let config = out.join("live.toml");
    std::fs::write(
        &config,
        format!(
            r#"experiment = "live-ab-test"
scenario = "{scenario}"
agents = ["hpa", "q-learning"]
settle_s = 2

[segment]
pattern = {{ kind = "spike", base_rps = 3, spike_rps = 60, start_s = 5, spike_duration_s = 25, duration_s = 45 }}
resample_s = 1.0

[app]
binary = "{app}"
"#,
            scenario = s(&common::root().join("experiments/configs/live-spike.toml")),
            app = s(&app),
        ),
    )
    .unwrap();
    // A relative --out (against the repository root, where the command runs): Prometheus
    // must still find the replicas' file_sd folder under it.
    let rel = format!("target/nimbusguard-live-ab-{}", std::process::id());
    let _ = std::fs::remove_dir_all(common::root().join(&rel));
    let (so, se) = ok(
        nimbusguard(&["live", s(&config), "--out", &rel]),
        "nimbusguard live",
    );
    let out = common::root().join(&rel);
    let _ = se;
    assert!(so.contains("# Sim-to-real"), "{so}");

    // Both sides wrote a run's files.
    for side in ["sim", "live"] {
        let d = out.join(side);
        let summary = json(&d.join("summary.json"));
        assert_eq!(summary["schema"], "nimbusguard.summary/v1", "{side}");
        for f in [
            "episodes.csv",
            "timeseries.csv",
            "summary.md",
            "episodes.parquet",
        ] {
            assert!(d.join(f).is_file(), "{side}/{f}");
        }
        let plots: Vec<_> = std::fs::read_dir(d.join("plots")).unwrap().collect();
        assert!(!plots.is_empty(), "{side}/plots");
    }
    assert!(out.join("train/policies/q-learning.json").is_file());

    // Live: one episode per agent; its request counts are the load generator's.
    let episodes = rows(&out.join("live/episodes.csv"));
    let agents: Vec<&str> = episodes.iter().map(|r| r["agent"].as_str()).collect();
    assert_eq!(agents, ["hpa", "q-learning"]);
    let ticks = rows(&out.join("live/timeseries.csv"));
    for e in &episodes {
        let agent = &e["agent"];
        let run = out.join(format!("live/runs/{agent}-1000"));
        let lg = json(&run.join("loadgen.json"));
        let intended = lg["intended"].as_f64().unwrap();
        // The 45 s spike holds about 3 * 20 + 60 * 25 = 1560 requests (Poisson).
        assert!((1300.0..1850.0).contains(&intended), "{agent}: {intended}");
        assert_eq!(f(e, "arrivals_total"), intended, "{agent}");
        assert_eq!(f(e, "served_total"), lg["ok"].as_f64().unwrap(), "{agent}");
        assert_eq!(
            f(e, "served_total") + f(e, "dropped_total"),
            f(e, "arrivals_total"),
            "{agent}: arrivals = served + dropped"
        );
        // Scaled replicas kept up: at most 5% of the requests failed.
        assert!(f(e, "dropped_pct") <= 5.0, "{agent}: {}", e["dropped_pct"]);
        // (CSV and JSON may round the last digit differently.)
        let client_p95 = lg["latency_ms"]["p95"].as_f64().unwrap();
        assert!(
            (f(e, "p95_latency_ms") - client_p95).abs() <= 1e-9 * client_p95,
            "{agent}: p95 {} is the client's {client_p95}",
            e["p95_latency_ms"]
        );
        // It scaled up during the spike (60 req/s needs 2 replicas at 20 ms each).
        let mine: Vec<_> = ticks.iter().filter(|t| &t["agent"] == agent).collect();
        let peak = mine
            .iter()
            .map(|t| f(t, "desired_replicas"))
            .fold(0.0, f64::max);
        assert!(peak >= 2.0, "{agent} never scaled up (peak {peak})");
        // One decision line per step, each naming its source.
        let decisions = std::fs::read_to_string(run.join("decisions.jsonl")).unwrap();
        assert_eq!(decisions.lines().count() as f64, f(e, "ticks"), "{agent}");
        assert_eq!(mine.len() as f64, f(e, "ticks"), "{agent}");
        for l in decisions.lines() {
            let d: Value = serde_json::from_str(l).unwrap();
            assert!(["agent", "hpa_fallback"].contains(&d["source"].as_str().unwrap()));
        }
    }

    // Sim-to-real: both agents, every compared metric, gaps consistent.
    let cmp = json(&out.join("sim_to_real.json"));
    assert_eq!(cmp["schema"], "nimbusguard.sim_to_real/v1");
    let a = cmp["agents"].as_array().unwrap();
    assert_eq!(a.len(), 2);
    for row in a {
        for m in ["p95_latency_ms", "cpu_utilization_mean", "pod_hours"] {
            let p = &row["metrics"][m];
            let (sim, live, gap) = (
                p["sim"].as_f64().unwrap(),
                p["live"].as_f64().unwrap(),
                p["gap"].as_f64().unwrap(),
            );
            assert!(sim.is_finite() && live.is_finite(), "{row}");
            assert!((live - sim - gap).abs() < 1e-9);
        }
    }
    assert!(out.join("sim_to_real.md").is_file());
    assert!(processes_of(&app).is_empty(), "replicas left running");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_live_inputs_fail_before_anything_starts() {
    let out = tmp("live-bad");
    let run = |extra: &[&str]| {
        let mut args = vec!["live", "experiments/configs/live-ab.toml", "--out", s(&out)];
        args.extend_from_slice(extra);
        let o = nimbusguard(&args);
        assert!(!o.status.success(), "{extra:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = run(&["--set", "app.binary=\"/nonexistent/workload-app\""]);
    assert!(
        e.contains("app.binary") && e.contains("/nonexistent/workload-app"),
        "{e}"
    );
    let e = run(&["--set", "agents=[\"hpa\", \"nope\"]"]);
    assert!(e.contains("no agent named \"nope\""), "{e}");
    let e = run(&["--set", "segment.resample_s=-1"]);
    assert!(e.contains("segment") && e.contains("resample_s"), "{e}");
    let e = run(&["--set", "rounds=0"]);
    assert!(e.contains("rounds"), "{e}");
    // An app that refuses its flags: caught before training, its own words quoted.
    let (app, _) = workload_bins();
    let e = run(&[
        "--set",
        &format!("app.binary=\"{}\"", s(&app)),
        "--set",
        "app.args=[\"--workers\", \"0\"]",
    ]);
    assert!(
        e.contains("does not start a Ready replica") && e.contains("invalid value for `--workers`"),
        "{e}"
    );
    // --out naming a file.
    let file = out.with_extension("file");
    std::fs::write(&file, "keep").unwrap();
    let o = nimbusguard(&[
        "live",
        "experiments/configs/live-ab.toml",
        "--out",
        s(&file),
        "--set",
        &format!("app.binary=\"{}\"", s(&app)),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("is not a folder"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    // Nothing was written.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}
