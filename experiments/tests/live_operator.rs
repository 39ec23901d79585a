//! End to end on real processes: Debian's Prometheus (installed by scripts/prometheus.sh when
//! missing) scrapes `workload-app` replicas that `nimbusguard operator` runs through
//! `ProcessScaler`; `loadgen` replays a short spike through the front. The operator, first with
//! the HPA rules and then with a Q-learning policy trained in the simulator
//! (experiments/configs/live-spike.toml), must scale up during the spike and back down after
//! it. Checked on what Prometheus recorded and on the process table; Prometheus is then stopped
//! under the running operator, which must fall back to the HPA rules and keep the replicas
//! within bounds. Every process started is stopped, also when an assertion fails.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adapters::local_prometheus::{free_port, poll_until, LocalPrometheus, ScrapeJob};
use common::{nimbusguard, ok, s, tmp, workload_bins, Guard};

/// PIDs of the live (not zombie) children of `parent` whose command is `workload-app`.
fn replicas_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |x| x.1);
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("");
        let ppid: u32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent && comm.starts_with("workload-app") && state != "Z" {
            out.push(pid);
        }
    }
    out
}

fn operator_config(
    dir: &Path,
    app: &Path,
    agent: &str,
    prom: &str,
    front: SocketAddr,
    listen: SocketAddr,
) -> PathBuf {
    let cfg = format!(
        r#"[operator]
decision_interval_s = 2
min_replicas = 1
max_replicas = 4
max_step = 2
cooldown_s = 4
listen = "{listen}"
trace = "{trace}"
initial_replicas = 1

[agent]
{agent}

[hpa]
target_cpu_utilization_percent = 50
downscale_stabilization_window_s = 10
cpu_initialization_period_s = 5
initial_readiness_delay_s = 5

[prometheus]
url = "{prom}"
timeout_s = 2

[state]
stale_after_s = 10

[scaler]
kind = "process"
binary = "{app}"
extra_args = ["--cpu-per-request-ms", "20", "--workers", "1", "--ready-delay-s", "1", "--cost-distribution", "deterministic"]
file_sd_path = "{sd}"
stop_grace_s = 3

[scaler.front]
listen = "{front}"
"#,
        trace = s(&dir.join("trace.jsonl")),
        app = s(app),
        sd = s(&dir.join("sd/workload.json")),
    );
    let p = dir.join("operator.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

/// One live run: Prometheus, the operator with `agent`, the spike, then Prometheus stopped
/// under the running operator; returns the highest replica count seen in the process table
/// and the count once it came back down (to `floor`, or below the peak when `None`).
fn live_run(
    name: &str,
    agent: &str,
    app: &Path,
    loadgen: &Path,
    floor: Option<usize>,
) -> (usize, usize) {
    let dir = tmp(name);
    std::fs::create_dir_all(dir.join("sd")).unwrap();
    let front: SocketAddr = format!("127.0.0.1:{}", free_port().unwrap())
        .parse()
        .unwrap();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port().unwrap())
        .parse()
        .unwrap();
    let bin = LocalPrometheus::binary().expect("a Prometheus binary");
    let mut prom = LocalPrometheus::start(
        &bin,
        &dir.join("prometheus"),
        &[
            ScrapeJob::FileSd {
                name: "workload".into(),
                dir: dir.join("sd"),
            },
            ScrapeJob::Static {
                name: "front".into(),
                targets: vec![front],
            },
            ScrapeJob::Static {
                name: "operator".into(),
                targets: vec![listen],
            },
        ],
    )
    .expect("Prometheus starts");
    let cfg = operator_config(&dir, app, agent, &prom.url(), front, listen);
    let mut op = Guard(Some(
        common::command(&["operator", s(&cfg)])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("operator.log")).unwrap())
            .spawn()
            .expect("nimbusguard operator starts"),
    ));
    let mut lines = BufReader::new(op.0.as_mut().unwrap().stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let started: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(started["event"], "operator", "{first}");
    assert_eq!(started["front"], front.to_string());
    let log = || std::fs::read_to_string(dir.join("operator.log")).unwrap_or_default();
    for (job, n) in [("workload", 1), ("front", 1), ("operator", 1)] {
        if let Err(e) = prom.wait_up(job, n, Duration::from_secs(90)) {
            panic!("{e}\noperator log:\n{}", log());
        }
    }

    // The spike: 3 req/s, 60 req/s (1.2 cores of work) from 5 s to 35 s, 3 req/s to 60 s.
    let summary = dir.join("loadgen.json");
    let mut lg = Guard(Some(
        Command::new(loadgen)
            .args([
                "--pattern",
                "{ kind = \"spike\", base_rps = 3, spike_rps = 60, start_s = 5, spike_duration_s = 30, duration_s = 60 }",
                "--resample-s",
                "1",
                "--target",
                &format!("http://{front}/work"),
                "--summary",
                s(&summary),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("loadgen starts"),
    ));
    let (opid, mut peak) = (op.pid(), 0usize);
    let t0 = Instant::now();
    let lg_status = poll_until(Duration::from_secs(120), || {
        peak = peak.max(replicas_of(opid).len());
        lg.0.as_mut().unwrap().try_wait().ok().flatten()
    })
    .expect("loadgen ends");
    lg.0 = None;
    assert!(lg_status.success(), "loadgen failed");
    assert!(t0.elapsed() >= Duration::from_secs(59));
    let sent =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&summary).unwrap())
            .unwrap()["sent"]
            .as_f64()
            .unwrap();
    // Back down after the spike within 90 s: to `floor` replicas, or (None) below the peak.
    let back_down = poll_until(Duration::from_secs(90), || {
        let n = replicas_of(opid).len();
        (n <= floor.unwrap_or(peak.saturating_sub(1))).then_some(n)
    });
    let now = replicas_of(opid).len();

    // What Prometheus recorded over the run.
    let client = prom.client().unwrap();
    let q = |promql: &str| {
        client
            .query(promql, None)
            .unwrap_or_else(|e| panic!("{promql}: {e}"))
            .single_value()
            .unwrap_or_else(|| panic!("{promql}: no value"))
    };
    let peak_desired = q("max_over_time(nimbusguard_operator_desired_replicas[10m])");
    let peak_up = q("max_over_time(count(up{job=\"workload\"} == 1)[10m:1s])");
    let served = q("sum(max_over_time(workload_requests_total{outcome=\"served\"}[10m]))");
    let agent_decisions = q("sum(nimbusguard_operator_decisions_total{source=\"agent\"})");
    assert!(
        peak_desired >= 2.0,
        "{name}: desired replicas peaked at {peak_desired}\n{}",
        log()
    );
    assert!(
        peak_up >= 2.0,
        "{name}: at most {peak_up} replicas were scraped up"
    );
    assert!(
        agent_decisions >= 10.0,
        "{name}: {agent_decisions} agent decisions"
    );
    // Requests are conserved: everything sent through the front was served by some replica
    // (the front does not retry; drops would show as workload outcome="dropped" or 503s).
    assert!(
        served >= 0.95 * sent && served <= sent,
        "{name}: served {served} of {sent}"
    );
    assert!(
        peak >= 2,
        "{name}: the process table never showed more than {peak} replicas\n{}",
        log()
    );
    assert!(
        back_down.is_some(),
        "{name}: still {now} replicas 90 s after the spike\n{}",
        log()
    );

    // Prometheus down under the running operator: the HPA rules take over, replicas stay in
    // bounds, nothing is started or stopped for lack of metrics.
    prom.stop();
    let fell_back = poll_until(Duration::from_secs(30), || {
        log().contains("metrics=\"unreachable\"").then_some(())
    });
    assert!(fell_back.is_some(), "{name}: no fallback logged\n{}", log());
    let during = replicas_of(opid).len();
    assert!((1..=4).contains(&during));

    let pids = replicas_of(opid);
    let status = op.terminate().expect("the operator exits on SIGTERM");
    assert!(
        status.success(),
        "{name}: operator exit {status}\n{}",
        log()
    );
    let last: serde_json::Value =
        serde_json::from_str(&lines.last().expect("a stopped line").unwrap()).unwrap();
    assert_eq!(last["event"], "stopped");
    assert!(last["fallbacks"].as_u64().unwrap() >= 1);
    assert!(last["max_replicas"].as_u64().unwrap() <= 4);
    // Every replica it started is gone.
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "replica {pid} survived"
        );
    }
    // The decision trace names every stage, and no decision left [1, 4].
    let trace = std::fs::read_to_string(dir.join("trace.jsonl")).unwrap();
    for line in trace.lines() {
        let t: serde_json::Value = serde_json::from_str(line).unwrap();
        let to = t["action"]["to"].as_u64().unwrap();
        assert!((1..=4).contains(&to), "{line}");
        for k in ["metrics", "decision", "action", "reward_of_previous"] {
            assert!(t.get(k).is_some(), "{k} missing: {line}");
        }
    }
    (peak, now)
}

#[test]
fn operator_scales_a_live_spike_with_the_hpa_rules_and_a_trained_policy() {
    let (app, loadgen) = workload_bins();
    let (peak, after) = live_run("hpa", "kind = \"hpa\"", &app, &loadgen, Some(1));
    assert!(peak >= 2 && after == 1, "hpa: peak {peak}, after {after}");

    // A Q-learning policy trained in the simulated twin of this system.
    let run = tmp("trained");
    ok(
        nimbusguard(&[
            "run",
            "experiments/configs/live-spike.toml",
            "--out",
            s(&run),
        ]),
        "training the live-spike policy",
    );
    assert!(run.join("policies/q-learning.json").exists());
    let agent = format!(
        "kind = \"saved\"\nrun = \"{}\"\nname = \"q-learning\"",
        s(&run)
    );
    let (peak, after) = live_run("q-learning", &agent, &app, &loadgen, None);
    assert!(
        peak >= 2 && after < peak,
        "q-learning: peak {peak}, after {after}"
    );
}
