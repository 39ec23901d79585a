//! The workload app over real HTTP: in-process servers (bad input, metrics, triggers) and
//! `workload-app` child processes (job limits, memory bound, readiness, drops, SIGTERM).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, get_text, metric, poll, AppProcess};
use workload::app::{self, App, AppConfig};

/// Serves `config` in-process on a free port; returns the base URL and the app.
async fn serve(config: AppConfig) -> (String, App) {
    let app = App::new(config).expect("valid config");
    let listener = app::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let a = app.clone();
    tokio::spawn(async move { a.serve(listener, std::future::pending()).await });
    (base, app)
}

async fn json(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_4xx_naming_the_parameter() {
    let (base, _app) = serve(AppConfig {
        max_body_bytes: 256,
        ..AppConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let cases = [
        (
            "/workload/cpu?intensity=150&duration=10",
            "intensity",
            "(0, 100]",
        ),
        (
            "/workload/cpu?intensity=abc&duration=10",
            "intensity",
            "not a number",
        ),
        (
            "/workload/cpu?intensity=0&duration=10",
            "intensity",
            "out of range",
        ),
        ("/workload/cpu?intensity=50", "duration", "missing"),
        (
            "/workload/cpu?intensity=50&duration=601",
            "duration",
            "(0, 600]",
        ),
        (
            "/workload/cpu?intensity=50&duration=NaN",
            "duration",
            "out of range",
        ),
        (
            "/workload/memory?size_mb=0&duration=5",
            "size_mb",
            "1..=512",
        ),
        (
            "/workload/memory?size_mb=1.5&duration=5",
            "size_mb",
            "not an integer",
        ),
        ("/workload/memory?duration=5", "size_mb", "missing"),
        (
            "/workload/memory?size_mb=4&duration=5&x=1",
            "x",
            "unknown parameter",
        ),
    ];
    for (path, param, text) in cases {
        let (status, body) = json(c.post(format!("{base}{path}")).send().await.unwrap()).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["parameter"], param, "{path}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(msg.contains(text), "{path}: {msg}");
    }
    let trigger = format!("{base}/events/trigger");
    let post = |body: String| {
        c.post(&trigger)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, body) = json(post("{nope".into()).await.unwrap()).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("body")),
        "{body}"
    );
    let (status, body) = json(
        post(r#"{"event_type":"meteor","service":"s","value":1}"#.into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("event_type")),
        "{body}"
    );
    let (status, body) = json(
        post(r#"{"event_type":"traffic_spike","value":1}"#.into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("service")),
        "{body}"
    );
    let big = format!(
        r#"{{"event_type":"traffic_spike","service":"{}","value":1}}"#,
        "s".repeat(300)
    );
    assert_eq!(post(big).await.unwrap().status().as_u16(), 413);
    let (status, body) = json(c.get(format!("{base}/no/such/route")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["path"].as_str()),
        (404, Some("/no/such/route"))
    );
    // Bad flags are refused before serving.
    let e = App::new(AppConfig {
        request_timeout_s: 0.0,
        ..AppConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("--request-timeout-s"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_the_exact_names() {
    let (base, _app) = serve(AppConfig {
        pod_name: "pod-7".into(),
        cpu_per_request_ms: 1.0,
        ready_delay_s: 0.0,
        ..AppConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let (status, body) = json(c.get(format!("{base}/work")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["pod"], "pod-7");
    assert!(body["cost_ms"].as_f64().unwrap() > 0.0 && body["wait_ms"].as_f64().is_some());
    assert_eq!(
        c.post(format!("{base}/work"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let resp = c.get(format!("{base}/metrics")).send().await.unwrap();
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let text = resp.text().await.unwrap();
    let expect = [
        ("workload_requests_total{outcome=\"served\"}", Some(2.0)),
        ("workload_requests_total{outcome=\"dropped\"}", Some(0.0)),
        ("workload_request_duration_seconds_count", Some(2.0)),
        (
            "workload_request_duration_seconds_bucket{le=\"10.0\"}",
            Some(2.0),
        ),
        ("workload_requests_in_flight", Some(0.0)),
        ("workload_active_jobs{kind=\"cpu\"}", Some(0.0)),
        ("workload_active_jobs{kind=\"memory\"}", Some(0.0)),
        ("workload_memory_held_bytes", Some(0.0)),
        (
            "workload_triggers_forwarded_total{result=\"ok\"}",
            Some(0.0),
        ),
        ("workload_ready", Some(1.0)),
        ("workload_info{pod=\"pod-7\"}", Some(1.0)),
    ];
    for (series, value) in expect {
        assert_eq!(metric(&text, series), value, "{series} in\n{text}");
    }
    assert!(
        metric(&text, "process_cpu_seconds_total").unwrap() > 0.0,
        "{text}"
    );
    assert!(
        metric(&text, "process_resident_memory_bytes").unwrap() > 1e6,
        "{text}"
    );
    assert!(
        metric(&text, "process_start_time_seconds").unwrap() > 1.6e9,
        "{text}"
    );
    assert!(
        text.contains("# TYPE workload_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("workload_request_duration_seconds_bucket{le=\"0.005\"}"),
        "{text}"
    );
    assert!(!text.contains("_total_total"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_are_counted_and_forwarded() {
    // A tiny operator that records what it receives.
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let r = received.clone();
    let operator = axum::Router::new().route(
        "/trigger",
        axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
            let r = r.clone();
            async move {
                r.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let op_url = format!("http://{}/trigger", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, operator).await });

    let (base, app) = serve(AppConfig {
        operator_trigger_url: Some(op_url),
        ..AppConfig::default()
    })
    .await;
    let c = reqwest::Client::new();
    let events = [
        ("traffic_spike", 500.0),
        ("traffic_spike", 600.0),
        ("scale_down_request", 2.0),
    ];
    for (kind, value) in events {
        let body = serde_json::json!({"event_type": kind, "service": "web", "value": value});
        let (status, answer) = json(
            c.post(format!("{base}/events/trigger"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202);
        assert_eq!(
            answer,
            serde_json::json!({"accepted": true, "forwarded": true})
        );
    }
    let m = app.metrics();
    let forwarded = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let text = m.render();
            if metric(&text, "workload_triggers_forwarded_total{result=\"ok\"}") == Some(3.0) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("3 triggers forwarded");
    assert_eq!(
        metric(
            &forwarded,
            "workload_triggers_received_total{event_type=\"traffic_spike\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &forwarded,
            "workload_triggers_received_total{event_type=\"scale_down_request\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &forwarded,
            "workload_triggers_forwarded_total{result=\"error\"}"
        ),
        Some(0.0)
    );
    let mut got = received.lock().unwrap().clone();
    got.sort_by(|a, b| {
        a["value"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["value"].as_f64().unwrap())
    });
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0],
        serde_json::json!({"event_type": "scale_down_request", "service": "web", "value": 2.0})
    );
    assert_eq!(got[2]["value"], 600.0);

    // Without an operator URL nothing is forwarded; with a dead one the error is counted.
    let (base2, _) = serve(AppConfig::default()).await;
    let body = serde_json::json!({"event_type": "high_cpu_usage", "service": "web", "value": 90});
    let (_, answer) = json(
        c.post(format!("{base2}/events/trigger"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer["forwarded"], false);
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/trigger", dead.local_addr().unwrap());
    drop(dead);
    let (base3, app3) = serve(AppConfig {
        operator_trigger_url: Some(dead_url),
        ..AppConfig::default()
    })
    .await;
    c.post(format!("{base3}/events/trigger"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let m3 = app3.metrics();
    tokio::time::timeout(Duration::from_secs(20), async {
        while metric(
            &m3.render(),
            "workload_triggers_forwarded_total{result=\"error\"}",
        ) != Some(1.0)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the failed forward is counted");
}

#[test]
fn concurrent_jobs_are_capped_at_max_jobs() {
    let app = AppProcess::start(&["--max-jobs", "16", "--ready-delay-s", "0"]);
    let url = app.url("/workload/cpu?intensity=1&duration=60");
    let statuses = fire(&url, 300);
    assert_eq!(statuses.iter().filter(|(s, _)| *s == 202).count(), 16);
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(refused.len(), 284);
    assert!(refused.iter().all(|(_, b)| b["reason"] == "max_jobs"));
    let c = client();
    let jobs: serde_json::Value = c
        .get(app.url("/workload/jobs"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 16);
    let text = get_text(&c, &app.url("/metrics"));
    assert_eq!(
        metric(&text, "workload_active_jobs{kind=\"cpu\"}"),
        Some(16.0)
    );
}

#[test]
fn memory_jobs_stay_within_the_budget() {
    let app = AppProcess::start(&["--max-jobs", "1000", "--max-memory-mb", "64"]);
    let rss = |pid: u32| {
        let stat = procfs::process::Process::new(pid as i32)
            .unwrap()
            .stat()
            .unwrap();
        stat.rss * procfs::page_size()
    };
    let base_rss = rss(app.pid());
    let statuses = fire(&app.url("/workload/memory?size_mb=8&duration=60"), 300);
    assert_eq!(statuses.iter().filter(|(s, _)| *s == 202).count(), 8);
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(refused.len(), 292);
    assert!(
        refused.iter().all(|(_, b)| b["reason"] == "max_memory"),
        "{:?}",
        refused[0]
    );
    let c = client();
    let held = poll(Duration::from_secs(30), || {
        let text = get_text(&c, &app.url("/metrics"));
        let held = metric(&text, "workload_memory_held_bytes")?;
        (held == 64.0 * 1048576.0).then_some(held)
    });
    assert_eq!(held, Some(64.0 * 1048576.0));
    let now = rss(app.pid());
    // The 64 MiB are resident (touched), and nothing beyond the budget is (32 MiB slack for
    // the 300 connections and allocator overhead).
    assert!(now >= base_rss + 60 * 1048576, "rss {now} base {base_rss}");
    assert!(
        now <= base_rss + (64 + 32) * 1048576,
        "rss {now} base {base_rss}"
    );
}

/// POSTs `url` `n` times concurrently; the statuses and JSON bodies.
fn fire(url: &str, n: usize) -> Vec<(u16, serde_json::Value)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (c, url) = (c.clone(), url.to_string());
            set.spawn(async move { json(c.post(url).send().await.unwrap()).await });
        }
        set.join_all().await
    })
}

#[test]
fn ready_answers_503_until_the_delay_then_200() {
    let app = AppProcess::start(&["--ready-delay-s", "3"]);
    let c = client();
    assert_eq!(
        c.get(app.url("/health")).send().unwrap().status().as_u16(),
        200
    );
    assert_eq!(
        c.get(app.url("/ready")).send().unwrap().status().as_u16(),
        503
    );
    assert_eq!(
        metric(&get_text(&c, &app.url("/metrics")), "workload_ready"),
        Some(0.0)
    );
    let ok = poll(Duration::from_secs(30), || {
        (c.get(app.url("/ready")).send().ok()?.status().as_u16() == 200).then_some(())
    });
    assert!(ok.is_some());
    assert_eq!(
        metric(&get_text(&c, &app.url("/metrics")), "workload_ready"),
        Some(1.0)
    );
}

#[test]
fn work_counts_agree_with_requests_sent() {
    let app = AppProcess::start(&[
        "--workers",
        "2",
        "--cpu-per-request-ms",
        "2",
        "--cost-distribution",
        "deterministic",
        "--max-queue",
        "1000",
        "--request-timeout-s",
        "30",
    ]);
    let statuses = fire(&app.url("/work"), 120);
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count() as f64;
    let unavailable = statuses.iter().filter(|(s, _)| *s == 503).count() as f64;
    assert_eq!(ok + unavailable, 120.0);
    assert!(statuses
        .iter()
        .filter(|(s, _)| *s == 200)
        .all(|(_, b)| b["cost_ms"] == 2.0));
    let text = get_text(&client(), &app.url("/metrics"));
    let served = metric(&text, "workload_requests_total{outcome=\"served\"}").unwrap();
    let dropped = metric(&text, "workload_requests_total{outcome=\"dropped\"}").unwrap();
    assert_eq!((served, dropped), (ok, unavailable));
    assert_eq!(
        metric(&text, "workload_request_duration_seconds_count"),
        Some(served)
    );
    assert_eq!(metric(&text, "workload_requests_in_flight"), Some(0.0));
}

#[test]
fn requests_without_a_worker_in_time_are_dropped() {
    // One worker busy for 1.5 s of CPU; the other two requests give up after 0.3 s.
    let app = AppProcess::start(&[
        "--workers",
        "1",
        "--cpu-per-request-ms",
        "1500",
        "--cost-distribution",
        "deterministic",
        "--request-timeout-s",
        "0.3",
    ]);
    let statuses = fire(&app.url("/work"), 3);
    let codes: Vec<u16> = statuses.iter().map(|(s, _)| *s).collect();
    assert_eq!(codes.iter().filter(|&&s| s == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&s| s == 503).count(), 2, "{codes:?}");
    let text = get_text(&client(), &app.url("/metrics"));
    assert_eq!(
        metric(&text, "workload_requests_total{outcome=\"dropped\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(&text, "workload_requests_total{outcome=\"served\"}"),
        Some(1.0)
    );
    // A full queue drops at once: with --max-queue 0 a request finding the worker busy is refused.
    let app = AppProcess::start(&[
        "--workers",
        "1",
        "--cpu-per-request-ms",
        "1000",
        "--cost-distribution",
        "deterministic",
        "--max-queue",
        "0",
    ]);
    let codes: Vec<u16> = fire(&app.url("/work"), 4).iter().map(|(s, _)| *s).collect();
    assert_eq!(codes.iter().filter(|&&s| s == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|&&s| s == 503).count(), 3, "{codes:?}");
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_0() {
    let mut app = AppProcess::start(&[
        "--workers",
        "1",
        "--cpu-per-request-ms",
        "1000",
        "--cost-distribution",
        "deterministic",
        "--shutdown-grace-s",
        "30",
    ]);
    let url = app.url("/work");
    let request = std::thread::spawn(move || {
        let r = client().get(url).send().expect("answered");
        (r.status().as_u16(), r.json::<serde_json::Value>().unwrap())
    });
    let c = client();
    let in_flight = poll(Duration::from_secs(20), || {
        let text = c.get(app.url("/metrics")).send().ok()?.text().ok()?;
        (metric(&text, "workload_requests_in_flight")? == 1.0).then_some(())
    });
    assert!(in_flight.is_some());
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &app.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (status, body) = request.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["cost_ms"], 1000.0);
    assert_eq!(app.wait_exit(Duration::from_secs(30)), Some(0));
}
