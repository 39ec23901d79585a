//! ProcessScaler with real workload-app processes: process table, file_sd, front, readiness.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use adapters::{ProcessScaler, ProcessScalerConfig, Scaler};
use common::{poll, proc_state, workload_app};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn config(sd: &Path, extra: &[&str]) -> ProcessScalerConfig {
    ProcessScalerConfig {
        binary: workload_app(),
        extra_args: extra.iter().map(|s| s.to_string()).collect(),
        file_sd_path: Some(sd.join("workload.json")),
        stop_grace_s: 5.0,
        ..ProcessScalerConfig::default()
    }
}

/// `(pod, target)` pairs of the file_sd file.
fn file_sd(sd: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(sd.join("workload.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let targets = g["targets"].as_array().unwrap();
            assert_eq!(targets.len(), 1, "{text}");
            (
                g["labels"]["pod"].as_str().unwrap().to_string(),
                targets[0].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn expected_sd(s: &ProcessScaler) -> Vec<(String, String)> {
    s.pods()
        .iter()
        .map(|p| (p.name.clone(), p.addr.unwrap().to_string()))
        .collect()
}

fn get(url: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// Sum of the samples of metric `name` (any labels) in Prometheus text.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn scale_up_down_process_table_file_sd_and_front() {
    let sd = tempfile::tempdir().unwrap();
    let mut s = ProcessScaler::new(config(
        sd.path(),
        &["--cpu-per-request-ms", "1", "--ready-delay-s", "0"],
    ))
    .unwrap();
    assert_eq!(file_sd(sd.path()), vec![]);
    let front = format!("http://{}/work", s.front().addr());
    assert_eq!(get(&front).0, 503, "no replica: the front drops");

    s.set_replicas(3).unwrap();
    assert_eq!(s.desired_replicas(), 3);
    let pids = s.pids();
    let names: Vec<&str> = pids.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["workload-0", "workload-1", "workload-2"]);
    for (name, pid) in &pids {
        let st = proc_state(*pid);
        assert!(
            matches!(st, Some(c) if c != 'Z'),
            "{name} (pid {pid}) not alive: {st:?}"
        );
    }
    assert_eq!(file_sd(sd.path()), expected_sd(&s));
    let ports: BTreeSet<u16> = s.pods().iter().map(|p| p.addr.unwrap().port()).collect();
    assert_eq!(ports.len(), 3, "distinct ports");

    s.wait_ready(3, READY_TIMEOUT).unwrap();
    assert!(s.pods().iter().all(|p| p.ready && p.ready_since.is_some()));
    assert_eq!(s.front().backends().len(), 3);
    for _ in 0..30 {
        assert_eq!(get(&front).0, 200);
    }
    let counts = s.front().forwarded_counts();
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10],
        "{counts:?}"
    );

    s.set_replicas(1).unwrap();
    assert_eq!(s.pids(), pids[..1].to_vec(), "the oldest replica stays");
    for (name, pid) in &pids[1..] {
        assert_eq!(
            proc_state(*pid),
            None,
            "{name} (pid {pid}) still in the process table"
        );
    }
    assert!(proc_state(pids[0].1).is_some_and(|c| c != 'Z'));
    assert_eq!(file_sd(sd.path()), expected_sd(&s));
    assert_eq!(s.front().backends().len(), 1);
    assert_eq!(s.front().backends()[0].name, "workload-0");
    assert_eq!(get(&front).0, 200);

    // An unexpected exit is noticed, counted and removed; set_replicas replaces it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0].1 as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    poll(Duration::from_secs(10), "exit noticed", || {
        s.refresh().unwrap();
        (s.unexpected_exits() == 1).then_some(())
    });
    assert!(s.pods().is_empty());
    assert_eq!(proc_state(pids[0].1), None, "reaped");
    assert_eq!(file_sd(sd.path()), vec![]);
    assert_eq!(get(&front).0, 503);
    s.set_replicas(1).unwrap();
    assert_eq!(s.pods()[0].name, "workload-3", "names are never reused");

    // Drop stops every child.
    let last = s.pids()[0].1;
    drop(s);
    assert_eq!(proc_state(last), None);
}

#[test]
fn front_sends_traffic_to_ready_replicas_only() {
    let sd = tempfile::tempdir().unwrap();
    let mut s = ProcessScaler::new(config(sd.path(), &["--ready-delay-s", "2"])).unwrap();
    let front = format!("http://{}/work", s.front().addr());
    s.set_replicas(1).unwrap();
    s.refresh().unwrap();
    let p0 = s.pods()[0].clone();
    // Probed right after start, 2 s before its ready delay ends: not Ready, no backend.
    assert!(!p0.ready, "{p0:?}");
    assert_eq!(s.front().backends(), vec![]);
    assert_eq!(get(&front).0, 503, "no Ready replica yet");
    s.wait_ready(1, READY_TIMEOUT).unwrap();
    assert_eq!(get(&front).0, 200);

    // A second replica: while its /ready is 503, all traffic goes to workload-0.
    s.set_replicas(2).unwrap();
    let p1 = s.pods()[1].clone();
    assert_eq!(p1.name, "workload-1");
    let p1_url = format!("http://{}", p1.addr.unwrap());
    let mut sent = 0;
    for _ in 0..10 {
        s.refresh().unwrap();
        if s.pods()[1].ready {
            break;
        }
        assert_eq!(get(&front).0, 200);
        sent += 1;
    }
    assert!(
        sent > 0,
        "workload-1 was Ready at once despite --ready-delay-s 2"
    );
    // Requests were only sent while the probe said not Ready: the app itself saw none.
    assert_eq!(s.front().forwarded_counts().get("workload-1"), None);
    let (_, metrics) = get(&format!("{p1_url}/metrics"));
    assert_eq!(
        metric_sum(&metrics, "workload_requests_total"),
        0.0,
        "{metrics}"
    );
    s.wait_ready(2, READY_TIMEOUT).unwrap();
    for _ in 0..4 {
        assert_eq!(get(&front).0, 200);
    }
    assert!(s.front().forwarded_counts()["workload-1"] >= 2);
    let (_, metrics) = get(&format!("{p1_url}/metrics"));
    assert!(
        metric_sum(&metrics, "workload_requests_total") >= 2.0,
        "{metrics}"
    );

    // The front's own metrics count what happened.
    let (_, fm) = get(&format!("http://{}/metrics", s.front().addr()));
    assert!(metric_sum(&fm, "front_requests_total") >= 6.0, "{fm}");
    assert_eq!(metric_sum(&fm, "front_ready_backends"), 2.0, "{fm}");
}
