//! StateObserver against a real Prometheus scraping real workload-app replicas and the front.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use adapters::{Error, ProcessScaler, ProcessScalerConfig, Scaler, StateConfig, StateObserver};
use common::{poll, workload_app, PrometheusServer};

#[test]
fn observe_under_load_then_stale_and_down() {
    let sd = tempfile::tempdir().unwrap();
    let mut scaler = ProcessScaler::new(ProcessScalerConfig {
        binary: workload_app(),
        extra_args: [
            "--cpu-per-request-ms",
            "5",
            "--workers",
            "2",
            "--ready-delay-s",
            "0",
        ]
        .map(String::from)
        .to_vec(),
        file_sd_path: Some(sd.path().join("workload.json")),
        stop_grace_s: 5.0,
        ..ProcessScalerConfig::default()
    })
    .unwrap();
    scaler.set_replicas(2).unwrap();
    scaler.wait_ready(2, Duration::from_secs(60)).unwrap();
    let mut prom = PrometheusServer::start(Some(sd.path()), Some(scaler.front().addr()));
    prom.wait_up("workload", 2, Duration::from_secs(60));
    prom.wait_up("front", 1, Duration::from_secs(60));

    // Load: one client thread sending /work through the front until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let url = format!("http://{}/work", scaler.front().addr());
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut ok = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if client
                    .get(&url)
                    .send()
                    .is_ok_and(|r| r.status().is_success())
                {
                    ok += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            ok
        })
    };

    let config = StateConfig {
        stale_after_s: 3.0,
        ..StateConfig::default()
    };
    let mut observer = StateObserver::new(prom.client(), config, SystemTime::now()).unwrap();
    let obs = poll(Duration::from_secs(60), "rate and CPU of both pods", || {
        scaler.refresh().unwrap();
        let o = observer.observe(&scaler).unwrap();
        let cpu_all = o.state.pods.iter().all(|p| p.cpu_usage_milli.is_some());
        (o.state.request_rate_per_s > 0.0 && cpu_all && o.missing.is_empty()).then_some(o)
    });
    stop.store(true, Ordering::Relaxed);
    assert!(load.join().unwrap() > 0);

    let s = &obs.state;
    assert_eq!(s.desired_replicas, 2);
    assert_eq!(s.ready_replicas, 2);
    assert_eq!(s.status_replicas, 2);
    assert_eq!(s.pending_replicas, 0);
    assert_eq!(
        s.ready_replicas as usize,
        scaler.pods().iter().filter(|p| p.ready).count()
    );
    assert_eq!(s.pods.iter().map(|p| p.id).collect::<Vec<_>>(), vec![0, 1]);
    for p in &s.pods {
        assert!(p.ready);
        assert_eq!(p.cpu_request_milli, 1000);
        assert_eq!(p.memory_request_bytes, 256 << 20);
        assert!(p.memory_usage_bytes.is_some_and(|m| m > 1 << 20), "{p:?}");
        assert!(p.start_time.is_some() && p.metric_timestamp.is_some());
    }
    assert!(s.request_rate_per_s < 1000.0, "{}", s.request_rate_per_s);
    assert!(s.p50_latency_ms > 0.0 && s.p50_latency_ms <= s.p95_latency_ms);
    assert!(s.p95_latency_ms <= s.p99_latency_ms);
    assert!((0.0..=1.0).contains(&s.dropped_ratio));
    assert!(!obs.stale, "{obs:?}");
    assert!(obs.newest_sample_age_s.is_some_and(|a| a < 3.0), "{obs:?}");
    assert!(obs.is_complete());

    // Prometheus down: observing is an error, naming Prometheus' URL.
    prom.stop();
    let stopped_at = Instant::now();
    match observer.observe(&scaler) {
        Err(e @ Error::PromUnreachable { .. }) => assert!(e.to_string().contains(&prom.url())),
        other => panic!("expected PromUnreachable, got {other:?}"),
    }

    // The replicas go away while Prometheus is down; after its restart it has only the old
    // samples (a shutdown writes no staleness markers), which age past stale_after_s.
    scaler.set_replicas(0).unwrap();
    prom.start_again();
    let obs = poll(Duration::from_secs(30), "stale data flagged", || {
        let o = observer.observe(&scaler).unwrap();
        o.stale.then_some(o)
    });
    let age = obs
        .newest_sample_age_s
        .expect("the old samples are still within lookback");
    assert!(age > 3.0, "{obs:?}");
    assert!(age <= stopped_at.elapsed().as_secs_f64() + 2.0, "{obs:?}");
    assert!(!obs.is_complete());
    assert_eq!(obs.state.ready_replicas, 0);
    assert!(obs.state.pods.is_empty());
}
