//! `nimbusguard anomaly` end to end, and the NAB windows transcribed in
//! `datasets/labels/nab_windows.json` checked against the raw NAB files.

mod common;

use std::path::Path;

use common::{nimbusguard, root, tmp};
use experiments::cmd_anomaly::{probationary_points, NabLabels};

/// Seconds since 1970-01-01 of a naive `YYYY-MM-DD HH:MM:SS[.ffffff]` timestamp (H. Hinnant's
/// days-from-civil; NAB states no time zone, and only differences matter here).
fn seconds(ts: &str) -> i64 {
    let n: Vec<i64> = ts
        .split(|c: char| !c.is_ascii_digit())
        .take(6)
        .map(|p| p.parse().unwrap())
        .collect();
    let (y, m, d) = (n[0] - i64::from(n[1] <= 2), n[1], n[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n[3] * 3600 + n[4] * 60 + n[5]
}

#[test]
fn transcribed_windows_match_nab_and_lie_inside_each_trace() {
    let labels = NabLabels::load(&root().join("datasets/labels/nab_windows.json")).unwrap();
    assert_eq!(labels.source["repository"], "numenta/NAB");
    // Counts in NAB's labels/combined_windows.json (commit 450b949) and combined_labels.json.
    let expected = [
        (
            "nab_aws_elb_request_count_5min.csv",
            "elb_request_count_8c0756.csv",
            2,
        ),
        (
            "nab_aws_ec2_cpu_ac20cd_5min.csv",
            "ec2_cpu_utilization_ac20cd.csv",
            1,
        ),
        (
            "nab_aws_ec2_cpu_5f5533_5min.csv",
            "ec2_cpu_utilization_5f5533.csv",
            2,
        ),
    ];
    assert_eq!(labels.traces.len(), expected.len());
    for (ours, nab, count) in expected {
        let t = &labels.traces[ours];
        assert_eq!(t.nab_file, format!("data/realAWSCloudwatch/{nab}"));
        assert_eq!((t.windows.len(), t.labels.len()), (count, count), "{ours}");
        let raw = std::fs::read_to_string(root().join("datasets/raw/nab_aws").join(nab)).unwrap();
        let rows: Vec<&str> = raw.lines().skip(1).collect();
        let first = rows[0].split(',').next().unwrap();
        assert_eq!(first, t.first_timestamp);
        assert_eq!(rows.len(), t.rows);
        let trace = std::fs::read_to_string(root().join("datasets").join(ours)).unwrap();
        let ts: Vec<f64> = trace
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ts.len(), t.rows);
        assert_eq!(*ts.last().unwrap(), t.last_timestamp_s);
        let rel = |s: &str| (seconds(s) - seconds(first)) as f64;
        let probation_end = ts[probationary_points(0.15, ts.len())];
        for (w, l) in t.windows.iter().zip(&t.labels) {
            assert_eq!(rel(&w.start), w.start_timestamp_s, "{ours} {}", w.start);
            assert_eq!(rel(&w.end), w.end_timestamp_s, "{ours} {}", w.end);
            assert_eq!(rel(&l.timestamp), l.timestamp_s, "{ours} {}", l.timestamp);
            // Inside the trace, after the probationary period, around its point label.
            assert!(
                probation_end < w.start_timestamp_s,
                "{ours}: window in probation"
            );
            assert!(w.start_timestamp_s < l.timestamp_s && l.timestamp_s < w.end_timestamp_s);
            assert!(
                w.end_timestamp_s <= t.last_timestamp_s,
                "{ours}: window past the end"
            );
        }
    }
}

#[test]
fn anomaly_writes_consistent_counts_and_plots() {
    let out = tmp("run");
    let run = nimbusguard(&["anomaly", "--out", out.to_str().unwrap()]);
    assert!(
        run.status.success(),
        "nimbusguard anomaly failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("anomaly.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], "nimbusguard.anomaly/v1");
    let traces = json["traces"].as_object().unwrap();
    assert_eq!(traces.len(), 3);
    let names: Vec<&str> = json["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"rolling-mad") && names.contains(&"residual-holt-winters"));
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    for (file, t) in traces {
        assert_eq!((n(&t["points"]), n(&t["probationary_points"])), (4032, 604));
        let stem = file.trim_end_matches(".csv");
        assert!(out.join(format!("plots/anomaly_{stem}.png")).is_file());
        for name in &names {
            let s = &t["detectors"][name];
            assert_eq!(n(&s["tp"]) + n(&s["fp"]), n(&s["flags"]), "{file} {name}");
            assert!(n(&s["windows_detected"]) <= n(&s["windows"]));
            let per_window: u64 = s["per_window"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| n(&w["flags"]))
                .sum();
            assert_eq!(per_window, n(&s["tp"]), "{file} {name}");
        }
    }
    for name in &names {
        let o = &json["overall"][name];
        let sum = |k: &str| {
            traces
                .values()
                .map(|t| n(&t["detectors"][name][k]))
                .sum::<u64>()
        };
        assert_eq!(
            (n(&o["flags"]), n(&o["tp"]), n(&o["windows"])),
            (sum("flags"), sum("tp"), 5)
        );
    }
    let md = std::fs::read_to_string(out.join("anomaly.md")).unwrap();
    assert!(md.contains("| all | rolling-mad |"), "{md}");
}

#[test]
fn bad_anomaly_configs_fail_with_clear_errors() {
    let dir = tmp("bad");
    let cases = [
        ("detectors = []\n", "at least one detector"),
        (
            "[[detectors]]\nname = \"x\"\ndetector = { kind = \"rolling-mad\", windw = 5 }\n",
            "unknown field `windw`",
        ),
        (
            "[[detectors]]\nname = \"x\"\ndetector = { kind = \"rolling-mad\", window = 2 }\n",
            "`window` must be in [3,",
        ),
        (
            "[[detectors]]\nname = \"x\"\ndetector = { kind = \"forecast-residual\" }\n",
            "needs a `forecaster`",
        ),
        (
            "probationary_fraction = 1.5\n[[detectors]]\nname = \"x\"\ndetector = { kind = \"ewma-zscore\" }\n",
            "probationary_fraction",
        ),
    ];
    for (i, (toml, expect)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.toml"));
        std::fs::write(&path, toml).unwrap();
        let run = nimbusguard(&[
            "anomaly",
            path.to_str().unwrap(),
            "--out",
            dir.join("out").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{toml} should fail");
        assert!(
            err.starts_with("error: ") && !err.contains("panicked"),
            "{err}"
        );
        assert!(err.contains(expect), "expected {expect:?} in:\n{err}");
        assert!(!Path::new(&dir.join("out/anomaly.json")).exists());
    }
}
