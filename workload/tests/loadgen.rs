//! The `loadgen` binary end to end against a real `workload-app`, and its input errors.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{client, get_text, metric, poll, AppProcess};
use workload::loadgen::Summary;

fn loadgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run loadgen")
}

#[test]
fn spike_replay_matches_the_apps_request_count() {
    let app = AppProcess::start(&["--workers", "4", "--cpu-per-request-ms", "1"]);
    let target = app.url("/work");
    let trigger_url = app.url("/events/trigger");
    let dir = std::env::temp_dir().join(format!("loadgen-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let summary_path = dir.join("summary.json");
    // 8 s of pattern in 2 s bins, compressed 4x: 4 bins of 0.5 s at 20, 20, 100, 20 req/s.
    let config = dir.join("spike.toml");
    std::fs::write(
        &config,
        "[workload]\nresample_s = 2.0\ntime_compression = 4.0\n\
         pattern = { kind = \"spike\", base_rps = 20, spike_rps = 100, start_s = 4, \
         spike_duration_s = 2, duration_s = 8 }\n",
    )
    .unwrap();
    let out = loadgen(&[
        "--config",
        config.to_str().unwrap(),
        "--target",
        &target,
        "--seed",
        "5",
        "--summary",
        summary_path.to_str().unwrap(),
        "--trigger",
        "0.5:traffic_spike:100",
        "--trigger-url",
        &trigger_url,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Summary = serde_json::from_slice(&out.stdout).expect("summary JSON on stdout");
    let written: Summary =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert_eq!(printed, written);
    let s = printed;
    assert_eq!(s.schema, "nimbusguard.loadgen/v1");
    assert_eq!(s.schedule_duration_s, 2.0);
    let rates: Vec<f64> = s.bins.iter().map(|b| b.intended_rate_per_s).collect();
    assert_eq!(rates, vec![20.0, 20.0, 100.0, 20.0]);
    // Invariants of the summary.
    assert_eq!(s.intended, s.sent + s.skipped_in_flight);
    assert_eq!(s.sent, s.ok + s.errors.total());
    assert_eq!(s.bins.iter().map(|b| b.sent).sum::<u64>(), s.sent);
    assert_eq!(s.bins.iter().map(|b| b.ok).sum::<u64>(), s.ok);
    // Poisson(80) requests expected; within 5 standard deviations.
    assert!(
        (s.intended as f64 - 80.0).abs() <= 5.0 * 80f64.sqrt(),
        "{}",
        s.intended
    );
    assert_eq!(s.triggers.sent, 1);
    assert_eq!(s.triggers.ok, 1);
    // The app saw exactly the requests that were sent.
    let c = client();
    let text = get_text(&c, &app.url("/metrics"));
    let served = metric(&text, "workload_requests_total{outcome=\"served\"}").unwrap();
    let dropped = metric(&text, "workload_requests_total{outcome=\"dropped\"}").unwrap();
    assert_eq!(served + dropped, s.sent as f64);
    assert_eq!(served, s.ok as f64);
    let spikes = poll(Duration::from_secs(10), || {
        let text = get_text(&c, &app.url("/metrics"));
        metric(
            &text,
            "workload_triggers_received_total{event_type=\"traffic_spike\"}",
        )
    });
    assert_eq!(spikes, Some(1.0));

    // The same seed gives the same schedule: a deterministic replay against a dead target
    // intends exactly the series' 80 requests, all connection errors.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/work", dead.local_addr().unwrap());
    drop(dead);
    let out = loadgen(&[
        "--config",
        config.to_str().unwrap(),
        "--target",
        &dead_url,
        "--arrivals",
        "deterministic",
        "--window",
        "evaluation",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Summary = serde_json::from_slice(&out.stdout).unwrap();
    // Evaluation window: bins 100 and 20 req/s of 0.5 s -> 50 + 10.
    assert_eq!((s.intended, s.sent, s.ok), (60, 60, 0));
    assert_eq!(s.errors.connect + s.errors.other, 60);
    let per_bin: Vec<u64> = s.bins.iter().map(|b| b.sent).collect();
    assert_eq!(per_bin, vec![50, 10]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_inputs_give_errors_naming_the_flag() {
    let pattern = "{ kind = \"constant\", rps = 5, duration_s = 10 }";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--pattern", pattern], "--target"),
        (
            vec!["--pattern", pattern, "--target", "localhost:80"],
            "--target",
        ),
        (vec!["--target", "http://127.0.0.1:9/work"], "--config"),
        (
            vec![
                "--pattern",
                pattern,
                "--trace",
                "x.csv",
                "--target",
                "http://127.0.0.1:9/",
            ],
            "--trace and --pattern",
        ),
        (
            vec![
                "--trace",
                "no/such/trace.csv",
                "--target",
                "http://127.0.0.1:9/",
            ],
            "does not exist",
        ),
        (
            vec![
                "--pattern",
                "{ kind = \"wave\" }",
                "--target",
                "http://127.0.0.1:9/",
            ],
            "--pattern",
        ),
        (
            vec![
                "--pattern",
                pattern,
                "--peak-rps=-3",
                "--target",
                "http://127.0.0.1:9/",
            ],
            "workload.peak_rps",
        ),
        (
            vec![
                "--pattern",
                pattern,
                "--target",
                "http://127.0.0.1:9/",
                "--trigger",
                "1:boom",
            ],
            "--trigger",
        ),
        (
            vec![
                "--pattern",
                pattern,
                "--target",
                "http://127.0.0.1:9/",
                "--arrivals",
                "burst",
            ],
            "--arrivals",
        ),
    ];
    for (args, needle) in cases {
        let out = loadgen(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_max_in_flight_are_skipped_and_counted() {
    use sim::trace::RateSeries;
    use sim::workload::Arrivals;
    use workload::loadgen::{parse_target, run, RunOptions, Schedule};

    // Each request holds the only worker for 300 ms of CPU; 20 requests in 1 s with at most
    // one outstanding: most are skipped.
    let app = AppProcess::start(&[
        "--workers",
        "1",
        "--cpu-per-request-ms",
        "300",
        "--cost-distribution",
        "deterministic",
    ]);
    let series = RateSeries {
        step_s: 0.5,
        values: vec![20.0, 20.0],
    };
    let schedule = Schedule::new(series, Arrivals::Deterministic, 0).unwrap();
    let targets = vec![parse_target(&app.url("/work")).unwrap()];
    let options = RunOptions {
        max_in_flight: 1,
        ..RunOptions::default()
    };
    let s = run(&schedule, &targets, &options).await.unwrap();
    assert_eq!(s.intended, 20);
    assert_eq!(s.intended, s.sent + s.skipped_in_flight);
    assert_eq!(s.sent, s.ok + s.errors.total());
    assert!(s.skipped_in_flight >= 10, "{s:?}");
    assert!(s.sent >= 1);
    // An empty target list is refused.
    let e = run(&schedule, &[], &options).await.unwrap_err();
    assert!(e.to_string().contains("--target"), "{e}");
}
