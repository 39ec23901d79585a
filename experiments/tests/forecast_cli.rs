//! End-to-end tests of `nimbusguard forecast`: the `forecast.json` schema on a tiny trace with
//! a tiny LSTM, last-value's MAE against a hand computation, and clear errors (never a panic)
//! for a missing trace, a zero horizon and a window longer than the trace.

mod common;

use common::{nimbusguard, s, tmp};
use std::path::{Path, PathBuf};

/// 100 one-minute points of a saw-tooth with period 10 plus a slow ramp.
fn values() -> Vec<f64> {
    (0..100)
        .map(|i| 10.0 + (i % 10) as f64 + 0.05 * i as f64)
        .collect()
}

/// Writes the tiny trace and a config with a tiny LSTM; returns (config, trace).
fn setup(dir: &Path, extra: &str) -> (PathBuf, PathBuf) {
    let trace = dir.join("tiny_1min.csv");
    let mut csv = String::from("timestamp_s,value\n");
    for (i, v) in values().iter().enumerate() {
        csv.push_str(&format!("{},{v}\n", i * 60));
    }
    std::fs::write(&trace, csv).unwrap();
    let config = dir.join("forecast.toml");
    std::fs::write(
        &config,
        format!(
            "experiment = \"tiny-forecast\"\ntraces = [\"tiny_1min.csv\"]\nhorizon_s = 120.0\n\
             step_s = 60.0\ntrain_fraction = 0.7\nseason_s = 600.0\nplot_points = 20\n{extra}\n\
             [lstm]\nwindow = 8\nhidden_size = 4\nnum_layers = 2\nepochs = 2\nbatch_size = 8\n\
             max_samples_per_epoch = 32\n"
        ),
    )
    .unwrap();
    (config, trace)
}

#[test]
fn writes_the_v1_schema_and_scores_last_value_by_hand() {
    let dir = tmp("schema");
    let (config, _) = setup(&dir, "");
    let out = dir.join("out");
    let run = nimbusguard(&["forecast", s(&config), "--out", s(&out)]);
    assert!(
        run.status.success(),
        "forecast failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("forecast.json")).unwrap()).unwrap();
    assert_eq!(json["schema"], "nimbusguard.forecast/v1");
    assert_eq!(json["horizon_s"], 120.0);
    let scores = json["traces"]["tiny_1min.csv"].as_object().unwrap();
    let mut names: Vec<&str> = scores.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "ewma",
            "holt-winters",
            "last-value",
            "lstm",
            "seasonal-naive"
        ]
    );
    for (name, s) in scores {
        for key in ["mae", "smape", "mase"] {
            assert!(
                s[key].as_f64().is_some_and(f64::is_finite),
                "{name}.{key}: {s}"
            );
        }
        assert_eq!(s["n"], 30, "{name}");
    }
    let info = &json["trace_info"]["tiny_1min.csv"];
    assert_eq!(info["horizon_steps"], 2);
    assert_eq!(info["season_steps"], 10);
    assert_eq!(info["train_points"], 70);

    // Last value two steps ahead: test point k (series index 70 + k) is forecast by the value
    // at 68 + k. The saw-tooth rises by 1.05 a step except where it wraps to the next tooth.
    let v = values();
    let want: f64 = (70..100).map(|t| (v[t] - v[t - 2]).abs()).sum::<f64>() / 30.0;
    // By hand: 24 targets at +2.1 (two rises of 1.05) and 6 wrapping targets (t % 10 in
    // {0, 1}) at |2 * 0.05 - 8| = 7.9: (24 * 2.1 + 6 * 7.9) / 30 = 3.26.
    assert!((want - 3.26).abs() < 1e-9, "{want}");
    let got = scores["last-value"]["mae"].as_f64().unwrap();
    assert!(
        (got - want).abs() < 1e-9,
        "last-value MAE {got}, expected {want}"
    );
    assert!(out.join("forecast.md").exists());
    assert!(out.join("plots/forecast_tiny_1min.png").exists());
    assert!(out.join("models/tiny_1min/model.bpk").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tmp("errors");
    let cases: [(&str, &[&str], &str); 4] = [
        ("", &["--trace", "no/such/trace.csv"], "no/such/trace.csv"),
        ("horizon_s = 0.0", &[], "horizon_s"),
        ("", &[], "lstm.window"),
        ("horizon = 3", &[], "unknown field"),
    ];
    for (i, (extra, args, expect)) in cases.iter().enumerate() {
        let case = dir.join(format!("case{i}"));
        std::fs::create_dir_all(&case).unwrap();
        // The third case: a 60-step window over a 70-point training window fails with the
        // horizon; the others keep the tiny window.
        let (config, _) = setup(&case, extra);
        if i == 2 {
            let text = std::fs::read_to_string(&config).unwrap();
            std::fs::write(&config, text.replace("window = 8", "window = 69")).unwrap();
        }
        let out = case.join("out");
        let mut all = vec!["forecast", s(&config), "--out", s(&out)];
        all.extend_from_slice(args);
        let run = nimbusguard(&all);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "case {i} should fail");
        assert!(!err.contains("panicked"), "case {i} panicked:\n{err}");
        assert!(
            err.starts_with("error: "),
            "case {i}: no clear error:\n{err}"
        );
        assert!(
            err.contains(expect),
            "case {i}: expected {expect:?} in:\n{err}"
        );
        assert!(
            !out.join("forecast.json").exists(),
            "case {i} wrote results"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
