//! End-to-end tests of the `nimbusguard` binary: determinism across thread counts, output
//! schema, `--set`, and clear errors (never a panic) on bad input.

mod common;

use common::{nimbusguard, s, tmp};
use std::path::{Path, PathBuf};
use std::process::Output;

fn tiny() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny.toml")
}

fn run_ok(args: &[&str]) -> Output {
    let out = nimbusguard(args);
    assert!(
        out.status.success(),
        "nimbusguard {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `run CONFIG --out DIR EXTRA...` for each `(EXTRA, expected)` case: each must fail
/// with a clear error containing `expected`, without writing to `DIR`.
fn expect_errors(config: &Path, cases: &[(&[&str], &str)]) {
    for (extra, expect) in cases {
        let out = tmp("expect-error");
        let mut args = vec!["run", s(config), "--out", s(&out)];
        args.extend_from_slice(extra);
        let err = run_err(&args);
        assert!(
            err.contains(expect),
            "{extra:?}: expected {expect:?} in:\n{err}"
        );
        assert!(
            !out.join("config.toml").exists(),
            "{extra:?} touched the output folder"
        );
    }
}

/// Runs with `args` expecting failure; returns stderr, checked to be a clean error.
fn run_err(args: &[&str]) -> String {
    let out = nimbusguard(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "nimbusguard {args:?} should fail");
    assert!(
        !err.contains("panicked"),
        "nimbusguard {args:?} panicked:\n{err}"
    );
    // Progress lines ("nimbusguard: training ...") may come first when training ran.
    assert!(
        err.lines().any(|l| l.starts_with("error: ")),
        "no clear error for {args:?}:\n{err}"
    );
    err
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let (a, b) = (tmp("t1"), tmp("t2"));
    run_ok(&["run", s(&tiny()), "--threads", "1", "--out", s(&a)]);
    run_ok(&["run", s(&tiny()), "--threads", "2", "--out", s(&b)]);
    for f in [
        "episodes.csv",
        "timeseries.csv",
        "training.csv",
        "episodes.parquet",
        "timeseries.parquet",
        "training.parquet",
        "policies/q.json",
        "policies/q-hybrid.json",
        "policies/dqn.dqn/dqn.json",
    ] {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(x == y, "{f} differs between --threads 1 and 2");
    }
    // burnpack files carry random parameter ids; the weights themselves must be identical.
    for d in [
        "policies/dqn.dqn",
        "policies/dqn-hybrid.dqn",
        "policies/v0.dqn",
    ] {
        let x = agents::dqn::Dqn::load(a.join(d)).unwrap().weights();
        let y = agents::dqn::Dqn::load(b.join(d)).unwrap().weights();
        assert!(x == y, "{d}: weights differ between --threads 1 and 2");
    }
    // Schema of summary.json (DESIGN.md section 6).
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    assert_eq!(j["schema"], "nimbusguard.summary/v1");
    assert_eq!(j["experiment"], "tiny");
    assert_eq!(j["env_id"], "scaling-v0");
    assert_eq!(j["seeds"], 3);
    for agent in [
        "hpa",
        "static-6",
        "threshold",
        "q",
        "dqn",
        "dqn-hybrid",
        "q-hybrid",
        "proactive",
        "v0",
        "oracle",
        "keda",
        "kpa",
    ] {
        let m = &j["agents"][agent]["metrics"];
        for metric in [
            "pod_hours",
            "cpu_core_hours",
            "slo_violation_pct",
            "p95_latency_ms",
            "p99_latency_ms",
            "dropped_pct",
            "scaling_actions",
            "cpu_utilization_mean",
            "return",
        ] {
            for k in ["mean", "std", "ci95_low", "ci95_high", "n"] {
                assert!(!m[metric][k].is_null(), "{agent}.{metric}.{k} missing");
            }
            assert_eq!(m[metric]["n"], 3);
        }
    }
    let c = j["comparisons"].as_array().unwrap();
    assert!(c
        .iter()
        .any(|c| c["agent"] == "q" && c["baseline"] == "hpa"));
    // Regret against the realistic oracle, and the share of the HPA-to-oracle gap closed.
    assert_eq!(j["bounds"]["oracle"], "oracle");
    assert_eq!(j["bounds"]["hpa"], "hpa");
    assert_eq!(j["agents"]["oracle"]["cost_regret_pct"]["mean"], 0.0);
    assert!(
        j["agents"]["hpa"]["cost_regret_pct"]["mean"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(j["agents"]["hpa"]["slo_regret_pct"]["n"] == 3);
    assert_eq!(j["agents"]["hpa"]["cost_gap_closed_pct"], 0.0);
    let md = std::fs::read_to_string(a.join("summary.md")).unwrap();
    assert!(md.contains("## Reference bounds"), "{md}");
    // 12 agents x 3 seeds, conservation in every row.
    let rows = std::fs::read_to_string(a.join("episodes.csv")).unwrap();
    let mut lines = rows.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let mut n = 0;
    for line in lines {
        let f: Vec<f64> = line
            .split(',')
            .skip(2)
            .map(|x| x.parse().unwrap())
            .collect();
        let g = |name: &str| f[col(name) - 2];
        let lhs = g("arrivals_total");
        let rhs = g("served_total") + g("dropped_total") + g("backlog_end");
        assert!(
            (lhs - rhs).abs() <= 1e-6 * lhs,
            "requests not conserved: {line}"
        );
        n += 1;
    }
    assert_eq!(n, 36);
    // DQN's training curve carries its loss; Q-learning's loss cells are empty.
    let training = std::fs::read_to_string(a.join("training.csv")).unwrap();
    assert!(training.starts_with("agent,episode,return,epsilon,loss\n"));
    assert!(training
        .lines()
        .any(|l| l.starts_with("dqn,") && !l.ends_with(',')));
    assert!(training
        .lines()
        .any(|l| l.starts_with("q,") && l.ends_with(',')));
}

#[test]
fn set_overrides_and_retargets_the_trace() {
    let out = tmp("set");
    run_ok(&[
        "run",
        s(&tiny()),
        "--out",
        s(&out),
        "--set",
        "workload.trace=datasets/nab_aws_elb_request_count_5min.csv",
        "--set",
        "workload.start_s=0",
        "--set",
        "workload.duration_s=21600",
        "--set",
        "evaluation.seeds=2",
    ]);
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("nab_aws_elb_request_count_5min.csv"), "{cfg}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(j["trace"], "nab_aws_elb_request_count_5min.csv");
    assert_eq!(j["seeds"], 2);
}

#[test]
fn bad_configs_get_clear_errors() {
    let t = tiny();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "workload.peek_rps=3"],
            "unknown field `peek_rps`",
        ),
        (
            &["--set", "pod.cpu_request_milli=0"],
            "pod.cpu_request_milli",
        ),
        (
            &["--set", "cluster.node_cpu_milli=0"],
            "cluster.node_cpu_milli",
        ),
        (
            &[
                "--set",
                "deployment.min_replicas=9",
                "--set",
                "deployment.max_replicas=3",
            ],
            "min_replicas",
        ),
        (&["--set", "workload.peak_rps=-5"], "workload.peak_rps"),
        (
            &["--set", "workload.trace=datasets/missing.csv"],
            "missing.csv",
        ),
        (&["--set", "workload.start_s=99999999"], "empty"),
        (&["--set", "evaluation.seeds=1"], "evaluation.seeds"),
        (
            &["--set", "evaluation.baseline=nobody"],
            "evaluation.baseline",
        ),
        (&["--set", "agents.0.kind=dqn-x"], "unknown variant"),
        (&["--set", "service.timeout_s=0"], "service.timeout_s"),
        (&["--set", "agents.5.dqn.gamma=2"], "dqn.gamma"),
        (
            &["--set", "agents.7.predictive.horizon_s=1e21"],
            "`agents[7] (proactive).predictive.horizon_s`",
        ),
        (
            &["--set", "agents.6.q_learning.extra_bins=[5]"],
            "q_learning.extra_bins",
        ),
        (&["--set", "agents.0.predictive={}"], "only allowed"),
        // The reference-bound agents (v0 = agents[8], oracle = agents[9]).
        (
            &["--set", "agents.9.cooldown_s=60"],
            "`agents[9] (oracle).cooldown_s`: an oracle is a bound",
        ),
        (
            &["--set", "service.slo_p95_ms=50"],
            "`service.slo_p95_ms`: no replica count meets",
        ),
        (
            &[
                "--set",
                "agents.9.oracle={ variant = \"instant\", startup_quantile = 0.9 }",
            ],
            "`agents[9] (oracle).oracle.startup_quantile`: only applies",
        ),
        (
            &["--set", "agents.9.oracle.startup_quantile=1.0"],
            "`agents[9] (oracle).oracle.startup_quantile`: expected a number in (0, 1)",
        ),
        (
            &["--set", "agents.9.oracle.variant=psychic"],
            "unknown variant",
        ),
        (&["--set", "agents.9.oracle.lead=3"], "unknown field"),
        (&["--set", "agents.1.oracle={}"], "only allowed"),
        (
            &["--set", "agents.8.nimbusguard_v0.total_steps=10"],
            "`agents[8] (v0).nimbusguard_v0.total_steps`: must exceed batch_size",
        ),
        (
            &["--set", "agents.8.nimbusguard_v0.cpu_weight=1.5"],
            "`agents[8] (v0).nimbusguard_v0.cpu_weight`",
        ),
        (&["--set", "agents.8.predictive={}"], "only allowed"),
        // Peers (keda = agents[10], kpa = agents[11]).
        (
            &["--set", "agents.10.keda.target_per_replica=0"],
            "`agents[10] (keda).keda.target_per_replica`",
        ),
        (
            &["--set", "agents.10.hpa.tolerance=-1"],
            "`agents[10] (keda).hpa`",
        ),
        (
            &["--set", "agents.11.kpa.stable_window_s=2"],
            "`agents[11] (kpa).kpa.stable_window_s`: expected a number in [6, 3600]",
        ),
        (&["--set", "agents.11.kpa.window=60"], "unknown field"),
        (&["--set", "agents.11.keda={}"], "only allowed"),
        // Fails only when fitting, after the other agents trained: still before any output.
        (
            &[
                "--set",
                "agents.7.predictive.forecaster={ kind = \"holt-winters\" }",
            ],
            "predictive.forecaster`: cannot be fitted on the training window",
        ),
    ];
    expect_errors(&t, cases);
    let err = run_err(&["run", "no/such/config.toml"]);
    assert!(err.contains("no/such/config.toml"), "{err}");
}

#[test]
fn bad_traces_get_errors_naming_file_and_line() {
    let dir = tmp("traces");
    let cases = [
        ("header.csv", "time,value\n0,1\n", ":1:"),
        ("nan.csv", "timestamp_s,value\n0,1\n60,NaN\n", ":3:"),
        ("negative.csv", "timestamp_s,value\n0,1\n60,-2\n", ":3:"),
        (
            "backwards.csv",
            "timestamp_s,value\n0,1\n120,2\n60,3\n",
            ":4:",
        ),
        ("empty.csv", "", "empty"),
    ];
    for (name, text, expect) in cases {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let set = format!("workload.trace={}", p.display());
        let out = dir.join("out");
        let err = run_err(&[
            "run",
            s(&tiny()),
            "--out",
            s(&out),
            "--set",
            &set,
            "--set",
            "workload.start_s=0",
        ]);
        assert!(err.contains(name), "{name}: file not named:\n{err}");
        assert!(
            err.contains(expect),
            "{name}: expected {expect:?} in:\n{err}"
        );
    }
}

#[test]
fn unknown_key_in_config_file_is_rejected() {
    let dir = tmp("cfg");
    let p = dir.join("x.toml");
    let text = std::fs::read_to_string(tiny())
        .unwrap()
        .replace("[evaluation]", "[evaluation]\nseedz = 3");
    std::fs::write(&p, text).unwrap();
    let err = run_err(&["run", s(&p), "--out", s(&dir.join("o"))]);
    assert!(
        err.contains("unknown field `seedz`") && err.contains("x.toml"),
        "{err}"
    );
}

#[test]
fn a_failed_run_leaves_earlier_results_alone() {
    let out = tmp("keep");
    run_ok(&[
        "run",
        s(&tiny()),
        "--out",
        s(&out),
        "--set",
        "evaluation.seeds=2",
    ]);
    let before = std::fs::read(out.join("config.toml")).unwrap();
    let err = run_err(&[
        "run",
        s(&tiny()),
        "--out",
        s(&out),
        "--set",
        "workload.trace=datasets/nope.csv",
    ]);
    assert!(err.contains("nope.csv"), "{err}");
    assert_eq!(std::fs::read(out.join("config.toml")).unwrap(), before);
    assert!(out.join("summary.json").exists());
    // A successful run without the learned agent removes the stale policy.
    run_ok(&[
        "run",
        s(&tiny()),
        "--out",
        s(&out),
        "--set",
        "evaluation.seeds=2",
        "--set",
        "agents=[{name=\"hpa\",kind=\"hpa\"}]",
    ]);
    assert!(!out.join("policies/q.json").exists());
}

#[test]
fn out_of_range_values_are_refused_before_any_work() {
    let t = tiny();
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "env.cooldown_s=1e20"], "env.cooldown_s"),
        (&["--set", "agents.2.cooldown_s=1e20"], "cooldown_s"),
        (&["--set", "metrics.window_s=1e12"], "metrics.window_s"),
        (&["--set", "metrics.window_s=1e8"], "metrics.window_s"),
        (
            &["--set", "deployment.max_replicas=4000000000"],
            "deployment.max_replicas",
        ),
        (&["--set", "experiment=../escape"], "`experiment`"),
        (&["--set", "workload.peak_rps=abc"], "`workload.peak_rps`"),
        (&["--set", "agents.1.foo=3"], "`agents[1].foo`"),
        (&["--threads", "100000"], "--threads"),
    ];
    expect_errors(&t, cases);
}

#[test]
fn type_errors_in_the_file_name_line_and_key() {
    let dir = tmp("types");
    let p = dir.join("t.toml");
    let text = std::fs::read_to_string(tiny())
        .unwrap()
        .replace("peak_rps = 150.0", "peak_rps = \"150\"");
    std::fs::write(&p, text).unwrap();
    let err = run_err(&["run", s(&p), "--out", s(&dir.join("o"))]);
    assert!(err.contains("line 9") && err.contains("peak_rps"), "{err}");
}

#[test]
fn out_folder_holding_the_config_is_refused_and_other_files_are_kept() {
    let dir = tmp("own");
    let cfg = dir.join("config.toml");
    std::fs::copy(tiny(), &cfg).unwrap();
    let before = std::fs::read(&cfg).unwrap();
    let err = run_err(&["run", s(&cfg), "--out", s(&dir)]);
    assert!(err.contains("config being run"), "{err}");
    assert_eq!(std::fs::read(&cfg).unwrap(), before);
    // A user's file in plots/ survives a run into that folder.
    let out = dir.join("out");
    std::fs::create_dir_all(out.join("plots")).unwrap();
    std::fs::write(out.join("plots/notes.txt"), "mine").unwrap();
    run_ok(&[
        "run",
        s(&cfg),
        "--out",
        s(&out),
        "--set",
        "evaluation.seeds=2",
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("plots/notes.txt")).unwrap(),
        "mine"
    );
}

/// A kubeconfig whose API server refuses connections (port 1 on loopback).
fn unreachable_kubeconfig(dir: &Path) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    )
    .unwrap();
    p
}

#[test]
fn controller_fails_clearly_on_a_taken_port_and_an_unreachable_api_server() {
    let dir = tmp("controller");
    let kc = unreachable_kubeconfig(&dir);
    // The listen address in use: an error naming it (it used to panic).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = run_err(&["controller", "--kubeconfig", s(&kc), "--listen", &addr]);
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("in use"),
        "{err}"
    );
    // Unreachable: retried, then an error within the start-up timeout that names the URL.
    let args = [
        "controller",
        "--kubeconfig",
        s(&kc),
        "--listen",
        "127.0.0.1:0",
        "--startup-timeout-seconds",
    ];
    let err = run_err(&[&args[..], &["2"]].concat());
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(
            "error: controller: no NimbusScaler list from https://127.0.0.1:1/ within 2 s"
        ) && last.contains("cannot reach the API server at https://127.0.0.1:1/"),
        "{err}"
    );
    for bad in ["0", "NaN", "inf", "1e-12", "1e20"] {
        let err = run_err(&[&args[..], &[bad]].concat());
        assert!(
            err.contains("expected a number of seconds from 0.001 to 1e9"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn controller_stops_on_sigterm_while_the_api_server_is_unreachable() {
    use std::io::BufRead;
    let dir = tmp("controller-sigterm");
    let kc = unreachable_kubeconfig(&dir);
    let mut child = common::command(&[
        "controller",
        "--kubeconfig",
        s(&kc),
        "--listen",
        "127.0.0.1:0",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Its first failed list is logged at warn, naming the URL (it used to be silent).
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("cannot list or watch NimbusScalers") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "stderr ended before the warning"
        );
    }
    assert!(
        line.contains("cannot reach the API server at https://127.0.0.1:1/"),
        "{line}"
    );
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    // It used to ignore SIGTERM until the first list succeeded; now it exits cleanly.
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status after SIGTERM: {status}");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the controller did not stop within 10 s of SIGTERM");
}
