//! `nimbusguard calibrate` on real `workload-app` processes (the test-profile build): the
//! measured CPU per request, start-up and readiness delays match what the app was told to do,
//! the written scenario loads (in `request` service mode) and runs, every started app is gone
//! afterwards, and bad inputs are refused naming the flag.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Instant;

use common::{command, ok, s, tmp, workload_bins};
use experiments::config::ExperimentConfig;

fn calibrate(args: &[&str]) -> Output {
    let mut all = vec!["calibrate"];
    all.extend_from_slice(args);
    command(&all).output().expect("the binary runs")
}

/// `--app-arg A --app-arg B ...` for every element of `app_args`.
fn app_arg_flags<'a>(app_args: &[&'a str]) -> Vec<&'a str> {
    app_args.iter().flat_map(|a| ["--app-arg", a]).collect()
}

/// Whether `pid` is a live `workload-app` process (not gone, not a zombie).
fn is_live_app(pid: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((head, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let comm = head.split_once('(').map_or("", |x| x.1);
    let state = rest.split_whitespace().next().unwrap_or("");
    comm.starts_with("workload-app") && state != "Z"
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn calibrates_the_app_and_the_scenario_loads_and_runs() {
    let (app, _) = workload_bins();
    let dir = tmp("calibrate");
    let out = dir.join("scenario.toml");
    let app_args = [
        "--cpu-per-request-ms",
        "20",
        "--workers",
        "1",
        "--ready-delay-s",
        "0.5",
        "--cost-distribution",
        "deterministic",
    ];
    let mut args = vec![
        "--app",
        s(&app),
        "--starts",
        "3",
        "--requests",
        "100",
        "--out",
        s(&out),
    ];
    args.extend(app_arg_flags(&app_args));
    let started = Instant::now();
    let (stdout, _) = ok(calibrate(&args), "nimbusguard calibrate");
    eprintln!(
        "calibrate took {:.1} s:\n{stdout}",
        started.elapsed().as_secs_f64()
    );

    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("calibration.json")).unwrap())
            .unwrap();
    assert_eq!(j["schema"], "nimbusguard.calibration/v1");
    assert_eq!(j["app_args"], serde_json::json!(app_args));
    assert_eq!(j["experiment"], "live-spike-calibrated");
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let cpu = f(&j["cpu"]["cpu_per_request_ms"]);
    assert!((17.0..=30.0).contains(&cpu), "cpu per request {cpu} ms");
    // One worker, one request at a time: the CPU of a request fits in its latency.
    let latency = f(&j["cpu"]["latency_ms"]["mean"]);
    assert!(cpu <= latency + 1.0, "cpu {cpu} ms, latency {latency} ms");
    let readiness = f(&j["readiness_s"]["mean"]);
    assert!((0.45..=1.0).contains(&readiness), "readiness {readiness} s");
    let startup = f(&j["startup_s"]["mean"]);
    assert!(startup > 0.0 && startup < 5.0, "start-up {startup} s");
    assert!(f(&j["startup_s"]["std"]) >= 0.0);
    assert_eq!(j["written"]["cost_distribution"], "deterministic");
    // The live replicas are FIFO servers behind a round-robin front: `request` mode.
    assert_eq!(j["written"]["service_mode"], "request");
    assert!(f(&j["cpu"]["latency_cv"]) < 0.5, "{}", j["cpu"]);
    assert_eq!(j["cpu"]["requests"], 100);
    let starts = j["starts"].as_array().unwrap();
    assert_eq!(starts.len(), 3);
    // Every started app was stopped and reaped.
    for st in starts {
        let pid = st["pid"].as_u64().unwrap();
        assert!(!is_live_app(pid), "workload-app {pid} is still running");
        assert!(
            f(&st["startup_s"]) > 0.0 && f(&st["readiness_s"]) > 0.0,
            "{st}"
        );
    }
    for k in [
        "service.cpu_per_request_ms",
        "pod.readiness_delay_s",
        "deterministic",
        "service.mode = request",
    ] {
        assert!(stdout.contains(k), "{k} missing from the table:\n{stdout}");
    }

    // The scenario loads and holds the written values; everything else is the base's.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("# Calibrated scenario"), "{text}");
    let cfg = ExperimentConfig::load(&out, &[]).unwrap();
    let w = &j["written"];
    assert_eq!(cfg.experiment, "live-spike-calibrated");
    assert_eq!(cfg.pod.startup_delay_mean_s, f(&w["startup_delay_mean_s"]));
    assert_eq!(cfg.pod.startup_delay_std_s, f(&w["startup_delay_std_s"]));
    assert_eq!(cfg.pod.readiness_delay_s, f(&w["readiness_delay_s"]));
    assert_eq!(cfg.service.cpu_per_request_ms, f(&w["cpu_per_request_ms"]));
    assert!((cfg.service.cpu_per_request_ms - cpu).abs() < 0.001);
    assert!((cfg.pod.readiness_delay_s - readiness).abs() < 0.0001);
    assert_eq!(
        cfg.service.cost_distribution,
        sim::config::CostDistribution::Deterministic
    );
    assert_eq!(cfg.service.mode, sim::config::ServiceMode::Request);
    assert!(text.contains("mode = \"request\""), "{text}");
    let base = ExperimentConfig::load(
        &common::root().join("experiments/configs/live-spike.toml"),
        &[],
    )
    .unwrap();
    assert_eq!(cfg.deployment, base.deployment);
    assert_eq!(cfg.agents, base.agents);
    assert_eq!(cfg.pod.cpu_limit_milli, base.pod.cpu_limit_milli);

    // And the simulator runs it (a short training to keep the test quick).
    let run = dir.join("run");
    ok(
        command(&[
            "run",
            s(&out),
            "--set",
            "evaluation.seeds=2",
            "--set",
            "agents.1.q_learning.episodes=5",
            "--set",
            "output.plots=false",
            "--out",
            s(&run),
        ])
        .output()
        .unwrap(),
        "nimbusguard run of the calibrated scenario",
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["experiment"], "live-spike-calibrated");
    assert_eq!(summary["seeds"], 2);
}

#[test]
fn bad_inputs_are_refused_naming_the_flag() {
    let dir = tmp("bad");
    let out = dir.join("scenario.toml");
    let missing = dir.join("no-such-workload-app");
    let e = failure(&calibrate(&["--app", s(&missing), "--out", s(&out)]));
    assert!(
        e.contains("--app") && e.contains("no-such-workload-app"),
        "{e}"
    );
    assert!(
        e.contains("cargo build --release -p workload --bins"),
        "{e}"
    );

    let e = failure(&calibrate(&["--starts", "1", "--out", s(&out)]));
    assert!(e.contains("--starts"), "{e}");
    let e = failure(&calibrate(&["--requests", "9", "--out", s(&out)]));
    assert!(e.contains("--requests"), "{e}");

    // The base config is checked before any app starts (a real app path, so only --base fails).
    let (app, _) = workload_bins();
    let bad_base = dir.join("no-such-base.toml");
    let e = failure(&calibrate(&[
        "--app",
        s(&app),
        "--base",
        s(&bad_base),
        "--out",
        s(&out),
    ]));
    assert!(
        e.contains("--base") && e.contains("no-such-base.toml"),
        "{e}"
    );
    let e = failure(&calibrate(&[
        "--app",
        s(&app),
        "--out",
        s(&out),
        "--app-arg",
        "--listen",
        "--app-arg",
        "127.0.0.1:9",
    ]));
    assert!(e.contains("--app-arg") && e.contains("--listen"), "{e}");

    // An app that refuses its arguments: its exit and stderr are reported, nothing written.
    let e = failure(&calibrate(&[
        "--app",
        s(&app),
        "--out",
        s(&out),
        "--app-arg",
        "--workers",
        "--app-arg",
        "0",
    ]));
    assert!(e.contains("before printing its listening line"), "{e}");
    assert!(e.contains("--workers"), "{e}");
    assert!(!Path::new(&out).exists());
    assert!(!dir.join("calibration.json").exists());
}
