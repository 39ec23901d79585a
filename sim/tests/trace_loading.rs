//! Loading, resampling and windowing real traces: hand-computed expectations on small
//! fixtures (`tests/data/`), every malformed-input error, and every file in `datasets/`.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sim::trace::{GapPolicy, RateSeries, ResampleReport, Trace, ValueKind};
use sim::workload::WorkloadConfig;
use sim::{Error, SimTime};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn datasets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets")
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "got {got:?}, want {want:?}"
        );
    }
}

fn resample(name: &str, step_s: f64, policy: GapPolicy) -> (RateSeries, ResampleReport) {
    Trace::load(&data(name))
        .unwrap()
        .resample(step_s, policy)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Resampling, hand-computed
// ---------------------------------------------------------------------------------------------

#[test]
fn one_second_trace_to_one_minute_averages() {
    // value = t for t = 0..119: the minutes average 0..59 and 60..119.
    let (s, report) = resample("ramp_1s.csv", 60.0, GapPolicy::Hold);
    assert_eq!(s.step_s, 60.0);
    assert_close(&s.values, &[29.5, 89.5]);
    assert_eq!(
        report,
        ResampleReport {
            gaps: 0,
            longest_gap_s: 0.0
        }
    );
    // Interpolate: each second averages its two ends (i + 0.5); the last second is held (119).
    // Minute 0: mean of 0.5..59.5 = 30. Minute 1: (sum of 60.5..118.5 + 119) / 60.
    let (s, _) = resample("ramp_1s.csv", 60.0, GapPolicy::Interpolate);
    let minute1 = ((60..119).map(|i| i as f64 + 0.5).sum::<f64>() + 119.0) / 60.0;
    assert_close(&s.values, &[30.0, minute1]);
}

#[test]
fn five_minute_trace_to_one_minute_hold_vs_interpolate() {
    // Samples (0, 10), (300, 40), (600, 20); median step 300, so the series covers [0, 900).
    let (hold, report) = resample("step_300s.csv", 60.0, GapPolicy::Hold);
    let mut want = vec![10.0; 5];
    want.extend([40.0; 5]);
    want.extend([20.0; 5]);
    assert_close(&hold.values, &want);
    assert_eq!(report.gaps, 0);

    // Linear between samples: a bin's mean is the line at the bin's midpoint.
    // [0, 300): 10 + 0.1 t at t = 30, 90, ...; [300, 600): 40 - t'/15 at t' = 30, 90, ...;
    // after the last sample 20 is held.
    let (interp, _) = resample("step_300s.csv", 60.0, GapPolicy::Interpolate);
    let want = [
        13.0, 19.0, 25.0, 31.0, 37.0, 38.0, 34.0, 30.0, 26.0, 22.0, 20.0, 20.0, 20.0, 20.0, 20.0,
    ];
    assert_close(&interp.values, &want);
}

#[test]
fn irregular_gap_filled_both_ways_and_reported() {
    // Samples (0, 10), (300, 40), (900, 20): steps 300 and 600, median (lower) 300, so the
    // series covers [0, 1200) and the 600 s step is a gap (> 1.5 x 300).
    let (hold, report) = resample("gap_0_300_900.csv", 300.0, GapPolicy::Hold);
    assert_close(&hold.values, &[10.0, 40.0, 40.0, 20.0]);
    assert_eq!(
        report,
        ResampleReport {
            gaps: 1,
            longest_gap_s: 600.0
        }
    );

    let (interp, report) = resample("gap_0_300_900.csv", 300.0, GapPolicy::Interpolate);
    // [0,300): mean of 10..40 = 25; [300,600): 40 -> 30 = 35; [600,900): 30 -> 20 = 25.
    assert_close(&interp.values, &[25.0, 35.0, 25.0, 20.0]);
    assert_eq!(
        report,
        ResampleReport {
            gaps: 1,
            longest_gap_s: 600.0
        }
    );

    // At 60 s: the gap [300, 900) is 40 held, or 40 - (t - 300)/30 at the bin midpoints.
    let (interp, _) = resample("gap_0_300_900.csv", 60.0, GapPolicy::Interpolate);
    let mut want = vec![13.0, 19.0, 25.0, 31.0, 37.0];
    want.extend([39.0, 37.0, 35.0, 33.0, 31.0, 29.0, 27.0, 25.0, 23.0, 21.0]);
    want.extend([20.0; 5]);
    assert_close(&interp.values, &want);

    // An explicit threshold above the gap reports nothing.
    let trace = Trace::load(&data("gap_0_300_900.csv")).unwrap();
    let (_, report) = trace
        .resample_with_max_gap(300.0, GapPolicy::Hold, 600.0)
        .unwrap();
    assert_eq!(report, ResampleReport::default());
}

#[test]
fn crlf_and_byte_order_mark_are_accepted() {
    let t = Trace::load(&data("crlf_bom.csv")).unwrap();
    assert_eq!(t.timestamps_s, [0.0, 60.0]);
    assert_eq!(t.values, [1.5, 2.5]);
}

// ---------------------------------------------------------------------------------------------
// Window, split, scale, compress
// ---------------------------------------------------------------------------------------------

#[test]
fn window_split_scale_by_hand() {
    let (s, _) = resample("step_300s.csv", 60.0, GapPolicy::Hold);
    assert_eq!(s.duration_s(), 900.0);
    assert_eq!(s.peak(), 40.0);
    assert!((s.mean() - 70.0 / 3.0).abs() < 1e-12);

    let w = s.window(120.0, Some(300.0)).unwrap();
    assert_close(&w.values, &[10.0, 10.0, 10.0, 40.0, 40.0]);
    let scaled = w.scale_to_peak(100.0).unwrap();
    assert_close(&scaled.values, &[25.0, 25.0, 25.0, 100.0, 100.0]);
    let (train, eval) = scaled.split(0.6).unwrap();
    assert_close(&train.values, &[25.0, 25.0, 25.0]);
    assert_close(&eval.values, &[100.0, 100.0]);
    let fast = eval.compress(2.0);
    assert_eq!(fast.step_s, 30.0);
    assert_eq!(fast.duration_s(), 60.0);

    // rate_at: piecewise constant, last value held past the end.
    assert_eq!(s.rate_at(SimTime::from_secs(0)), 10.0);
    assert_eq!(s.rate_at(SimTime::from_millis(299_999)), 10.0);
    assert_eq!(s.rate_at(SimTime::from_secs(300)), 40.0);
    assert_eq!(s.rate_at(SimTime::from_secs(10_000)), 20.0);

    // To the end.
    assert_eq!(s.window(600.0, None).unwrap().values, vec![20.0; 5]);
}

#[test]
fn build_runs_the_whole_pipeline() {
    let cfg = WorkloadConfig {
        trace: Some(PathBuf::from("tests/data/step_300s.csv")),
        start_s: 120.0,
        duration_s: Some(300.0),
        train_fraction: 0.6,
        peak_rps: 100.0,
        time_compression: 2.0,
        ..WorkloadConfig::default()
    };
    let w = cfg.build(Path::new(env!("CARGO_MANIFEST_DIR")), 0).unwrap();
    assert_close(&w.train.values, &[25.0, 25.0, 25.0]);
    assert_close(&w.evaluation.values, &[100.0, 100.0]);
    assert_eq!(w.train.step_s, 30.0);
    assert_eq!(w.evaluation.step_s, 30.0);
    assert_eq!(w.value_kind, ValueKind::RequestRate);
    assert_eq!(w.report, ResampleReport::default());

    let cpu = WorkloadConfig {
        value_kind: Some(ValueKind::CpuPercent),
        ..cfg.clone()
    };
    assert_eq!(
        cpu.build(Path::new(env!("CARGO_MANIFEST_DIR")), 0)
            .unwrap()
            .value_kind,
        ValueKind::CpuPercent
    );

    // Interpolation through the same pipeline: window bins 2..7 of the interpolated series.
    let interp = WorkloadConfig {
        gap_policy: GapPolicy::Interpolate,
        time_compression: 1.0,
        ..cfg
    };
    let w = interp
        .build(Path::new(env!("CARGO_MANIFEST_DIR")), 0)
        .unwrap();
    let f = 100.0 / 38.0;
    assert_close(&w.train.values, &[25.0 * f, 31.0 * f, 37.0 * f]);
    assert_close(&w.evaluation.values, &[100.0, 34.0 * f]);
    assert_eq!(w.train.step_s, 60.0);
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Loads a fixture that must fail with `TraceFormat` at `line`; returns the message.
fn format_error(name: &str, line: usize) -> String {
    match Trace::load(&data(name)) {
        Err(e @ Error::TraceFormat { .. }) => {
            let shown = e.to_string();
            let Error::TraceFormat {
                path,
                line: got,
                message,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(got, line, "{name}: {message}");
            assert_eq!(path, data(name));
            assert!(
                shown.contains(name) && shown.contains(&format!(":{line}:")),
                "{shown}"
            );
            message
        }
        other => panic!("{name}: expected TraceFormat at line {line}, got {other:?}"),
    }
}

#[test]
fn bad_header() {
    let m = format_error("bad_header.csv", 1);
    assert!(
        m.contains("timestamp_s,value") && m.contains("time,value"),
        "{m}"
    );
}

#[test]
fn nan_and_infinite_values() {
    assert!(format_error("nan_value.csv", 3).contains("NaN"));
    assert!(format_error("inf_value.csv", 3).contains("inf"));
}

#[test]
fn negative_value_and_timestamp() {
    let m = format_error("negative_value.csv", 3);
    assert!(m.contains("value") && m.contains("-2"), "{m}");
    let m = format_error("negative_timestamp.csv", 2);
    assert!(m.contains("timestamp_s") && m.contains("-60"), "{m}");
}

#[test]
fn timestamps_backwards_or_repeated() {
    let m = format_error("backwards.csv", 4);
    assert!(m.contains("60") && m.contains("120"), "{m}");
    let m = format_error("duplicate_timestamp.csv", 4);
    assert!(m.contains("60") && m.contains("repeats"), "{m}");
}

#[test]
fn non_number_and_wrong_field_count() {
    assert!(format_error("not_a_number.csv", 3).contains("abc"));
    assert!(format_error("missing_column.csv", 3).contains("found 1"));
    assert!(format_error("extra_column.csv", 2).contains("found 3"));
}

#[test]
fn empty_file_and_header_only() {
    for name in ["empty.csv", "header_only.csv"] {
        match Trace::load(&data(name)) {
            Err(Error::EmptyWindow { path, .. }) => assert_eq!(path, data(name)),
            other => panic!("{name}: expected EmptyWindow, got {other:?}"),
        }
    }
}

#[test]
fn missing_file() {
    let path = data("does_not_exist.csv");
    match Trace::load(&path) {
        Err(e @ Error::TraceIo { .. }) => {
            assert!(e.to_string().contains("does_not_exist.csv"));
            let Error::TraceIo { path: p, source } = e else {
                unreachable!()
            };
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected TraceIo, got {other:?}"),
    }
    // Through the workload, too (relative path resolved against base_dir).
    let cfg = WorkloadConfig {
        trace: Some(PathBuf::from("nope.csv")),
        ..WorkloadConfig::default()
    };
    match cfg.build(&data(""), 0) {
        Err(Error::TraceIo { path, .. }) => assert_eq!(path, data("nope.csv")),
        other => panic!("expected TraceIo, got {other:?}"),
    }
}

#[test]
fn empty_windows() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = WorkloadConfig {
        trace: Some(PathBuf::from("tests/data/step_300s.csv")),
        ..WorkloadConfig::default()
    };
    let expect_empty = |cfg: WorkloadConfig| match cfg.build(base, 0) {
        Err(Error::EmptyWindow { path, message }) => {
            assert_eq!(
                path,
                base.join("tests/data/step_300s.csv").as_path(),
                "{message}"
            )
        }
        other => panic!("expected EmptyWindow, got {other:?}"),
    };
    // Start at/after the end (the series covers [0, 900)).
    expect_empty(WorkloadConfig {
        start_s: 900.0,
        ..cfg.clone()
    });
    expect_empty(WorkloadConfig {
        start_s: 1e6,
        ..cfg.clone()
    });
    // One bin cannot be split into two non-empty parts.
    expect_empty(WorkloadConfig {
        start_s: 840.0,
        ..cfg.clone()
    });
    // Nothing to scale.
    let zero = WorkloadConfig {
        trace: Some(PathBuf::from("tests/data/all_zero.csv")),
        ..cfg.clone()
    };
    assert!(matches!(
        zero.build(base, 0),
        Err(Error::EmptyWindow { .. })
    ));
    // Directly on the series.
    let (s, _) = resample("step_300s.csv", 60.0, GapPolicy::Hold);
    assert!(matches!(
        s.window(900.0, None),
        Err(Error::EmptyWindow { .. })
    ));
    assert!(matches!(
        s.window(0.0, Some(0.0)),
        Err(Error::EmptyWindow { .. })
    ));
    assert!(matches!(
        s.window(0.0, Some(-5.0)),
        Err(Error::EmptyWindow { .. })
    ));
}

#[test]
fn bad_train_fraction() {
    let (s, _) = resample("step_300s.csv", 60.0, GapPolicy::Hold);
    for f in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
        match s.split(f) {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, "workload.train_fraction"),
            other => panic!("train_fraction {f}: expected InvalidConfig, got {other:?}"),
        }
        let cfg = WorkloadConfig {
            train_fraction: f,
            ..WorkloadConfig::default()
        };
        assert!(matches!(
            cfg.build(&datasets_dir(), 0),
            Err(Error::InvalidConfig { ref field, .. }) if field == "workload.train_fraction"
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// The real datasets
// ---------------------------------------------------------------------------------------------

#[test]
fn every_dataset_loads_and_builds_with_the_default_config() {
    let dir = datasets_dir();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest.as_array().unwrap();
    let mut csvs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    csvs.sort();
    assert_eq!(csvs.len(), entries.len(), "every CSV is in manifest.json");

    for path in &csvs {
        let name = path.file_name().unwrap().to_str().unwrap();
        let entry = entries
            .iter()
            .find(|e| e["file"] == name)
            .unwrap_or_else(|| panic!("{name} not in manifest"));
        let trace = Trace::load(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            trace.len() as u64,
            entry["rows"].as_u64().unwrap(),
            "{name}"
        );
        let max = trace.values.iter().copied().fold(0.0, f64::max);
        assert!(
            (max - entry["max"].as_f64().unwrap()).abs() < 1e-6,
            "{name}"
        );
        let kind = if entry["kind"] == "cpu" {
            ValueKind::CpuPercent
        } else {
            ValueKind::RequestRate
        };
        assert_eq!(ValueKind::infer(path), kind, "{name}");
        let median = trace.median_step_s().unwrap();
        let step = entry["step"].as_f64().unwrap();
        assert!(
            (median - step).abs() <= 0.05 * step,
            "{name}: median step {median} vs {step}"
        );

        // Hold preserves the total number of requests: sum(v_i * dt_i) + last value over the
        // rest of the series.
        let (series, report) = trace.resample(60.0, GapPolicy::Hold).unwrap();
        let t0 = trace.timestamps_s[0];
        let last = trace.len() - 1;
        let mut total: f64 = trace
            .timestamps_s
            .windows(2)
            .zip(&trace.values)
            .map(|(w, v)| v * (w[1] - w[0]))
            .sum();
        total += trace.values[last] * (t0 + series.duration_s() - trace.timestamps_s[last]);
        let got = series.total_requests();
        assert!(
            (got - total).abs() <= 1e-9 * total.max(1.0),
            "{name}: {got} vs {total}"
        );
        assert!(
            series.duration_s() >= trace.duration_s()
                && series.duration_s() < trace.duration_s() + 60.0
        );
        if name.starts_with("nab_aws_ec2_cpu_5f5533") {
            assert_eq!(report.gaps, 0, "{name} has regular steps");
        }
        if name.starts_with("wikipedia") || name.starts_with("nab_aws_elb") {
            assert!(report.gaps > 0, "{name} has missing rows");
        }

        let cfg = WorkloadConfig {
            trace: Some(PathBuf::from(name)),
            ..WorkloadConfig::default()
        };
        let w = cfg.build(&dir, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.value_kind, kind, "{name}");
        assert!(
            !w.train.values.is_empty() && !w.evaluation.values.is_empty(),
            "{name}"
        );
        let peak = w.train.peak().max(w.evaluation.peak());
        assert!((peak - 100.0).abs() < 1e-9, "{name}: peak {peak}");
        let n = w.train.values.len() + w.evaluation.values.len();
        assert!(
            w.train.values.len().abs_diff(w.evaluation.values.len()) <= 1,
            "{name}: {n}"
        );
        assert!(w
            .train
            .values
            .iter()
            .chain(&w.evaluation.values)
            .all(|v| v.is_finite() && *v >= 0.0));
    }
}

#[test]
fn default_config_builds_from_the_workspace_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let w = WorkloadConfig::default().build(&root, 0).unwrap();
    // NASA July 1995 at 1 min: 39692 rows, 60 s each.
    assert_eq!(w.train.values.len() + w.evaluation.values.len(), 39_692);
    assert_eq!(w.value_kind, ValueKind::RequestRate);
    assert_eq!(w.train.step_s, 60.0);
}

// ---------------------------------------------------------------------------------------------
// Property: Hold preserves the time integral
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn hold_resampling_preserves_total_requests(
        samples in prop::collection::vec((0.01f64..1000.0, 0.001f64..1000.0), 1..60),
        start in 0.0f64..1e5,
        step_s in 0.5f64..2000.0,
    ) {
        let mut t = start;
        let mut timestamps_s = Vec::new();
        let mut values = Vec::new();
        for (dt, v) in &samples {
            timestamps_s.push(t);
            values.push(*v);
            t += dt;
        }
        let trace = Trace { path: PathBuf::from("prop.csv"), timestamps_s, values };
        let (series, _) = trace.resample(step_s, GapPolicy::Hold).unwrap();
        prop_assert!(series.duration_s() + 1e-9 >= trace.duration_s());
        // Reference: the step function over [t0, t0 + series duration), last value held.
        let ts = &trace.timestamps_s;
        let vs = &trace.values;
        let end = ts[0] + series.duration_s();
        let mut want = 0.0;
        for i in 0..ts.len() {
            let until = if i + 1 < ts.len() { ts[i + 1] } else { end };
            want += vs[i] * (until - ts[i]);
        }
        let got = series.total_requests();
        prop_assert!((got - want).abs() <= 1e-6 * want, "got {}, want {}", got, want);
    }
}

#[test]
fn invalid_utf8_and_blank_lines_keep_line_numbers() {
    assert!(format_error("not_utf8.csv", 3).contains("UTF-8"));
    // Blank lines are skipped but still counted.
    assert!(format_error("blank_line.csv", 4).contains("abc"));
}
