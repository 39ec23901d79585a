//! The reference cases through the harness, plus malformed inputs.

use std::collections::BTreeMap;

use super::*;

fn public_cases() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/hpa-cases-public.json"
    );
    let text = std::fs::read_to_string(path).expect("read the public cases");
    serde_json::from_str(&text).expect("parse the public cases")
}

#[test]
fn public_reference_cases_pass() {
    let cases = public_cases();
    let results = run_cases(&cases).unwrap();
    let (cases, results) = (cases.as_array().unwrap(), results.as_array().unwrap());
    assert_eq!(cases.len(), results.len());
    // level -> (passed, total); failures listed with their reason.
    let mut per_level: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for (case, result) in cases.iter().zip(results) {
        if case.get("asserted_by_go_test") == Some(&Value::Bool(false)) {
            continue;
        }
        let level = case["level"].as_str().unwrap_or("?").to_string();
        let entry = per_level.entry(level).or_default();
        entry.1 += 1;
        assert_eq!(case["id"], result["id"]);
        match check_case(case, result) {
            Ok(()) => entry.0 += 1,
            Err(e) => failures.push(format!("{}: {e}", case["id"])),
        }
    }
    let summary: Vec<String> = per_level
        .iter()
        .map(|(l, (p, t))| format!("{l}: {p}/{t}"))
        .collect();
    assert!(
        failures.is_empty(),
        "per level {summary:?}\nfailures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn malformed_cases_yield_errors_naming_the_field() {
    let out = run_cases(&json!([
        {"id": "a", "level": "no_such_level", "inputs": {}},
        {"id": "b", "level": "legacy_clamp", "inputs": {"current_replicas": "x"}},
        {"id": "c", "level": "controller_reconcile", "inputs": {"hpa": {"max_replicas": 3}}},
        {"id": "d"},
        {"id": "e", "level": "replica_calculator", "inputs": {"current_replicas": 1,
            "metric": {"source_type": "Resource", "target": {"type": "Utilization",
            "average_utilization_percent": 50}}, "pods": [{"name": "p", "phase": "Exploded"}]}}
    ]))
    .unwrap();
    let errors: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert!(errors[0].contains("level"), "{}", errors[0]);
    assert!(
        errors[1].contains("inputs.current_replicas"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("inputs.scale"), "{}", errors[2]);
    assert!(errors[3].contains("level"), "{}", errors[3]);
    assert!(errors[4].contains("inputs.pods[0].phase"), "{}", errors[4]);
    assert!(run_cases(&json!(3)).is_err());
}

#[test]
fn single_case_object_and_unwrapping() {
    let case = json!({
        "id": "x", "level": "legacy_clamp",
        "inputs": {"current_replicas": 3, "desired_replicas": {"value": 1000, "inferred": true},
                   "min_replicas": 1, "max_replicas": 2000},
        "expected": {"replicas": {"value": 24, "inferred": true}, "condition_reason": "ScaleUpLimit"}
    });
    let out = run_cases(&case).unwrap();
    // factor 8 (Go test default): max(8 * 3, 4) = 24.
    assert_eq!(
        out,
        json!([{"id": "x", "replicas": 24, "condition_reason": "ScaleUpLimit"}])
    );
    assert_eq!(check_case(&case, &out[0]), Ok(()));
}

#[test]
fn check_case_reports_mismatches() {
    let case = json!({"id": "x", "expected": {"replicas": 5, "error_contains": null}});
    assert!(check_case(&case, &json!({"id": "x", "replicas": 4}))
        .unwrap_err()
        .contains("replicas"));
    let case = json!({"id": "y", "expected": {"error_contains": "no metrics"}});
    assert!(check_case(&case, &json!({"id": "y", "error": "boom"})).is_err());
    assert!(check_case(
        &case,
        &json!({"id": "y", "error": "x: no metrics returned"})
    )
    .is_ok());
}

/// A `controller_reconcile` case in the layout of the reference file, built like
/// `horizontal_test.go` (`pods` as `(cpu request per pod, Ready status)`).
fn reconcile_case(
    hpa: Value,
    spec: i64,
    pods: &[(i64, &str)],
    data: Value,
    history: Value,
) -> Value {
    let pods: Vec<Value> = pods
        .iter()
        .enumerate()
        .map(|(i, (request, ready))| {
            json!({"name": format!("test-pod-{i}"), "phase": "Running", "ready_condition": ready,
                   "start_time": "zero_time", "ready_last_transition": "zero_time",
                   "deleting": false, "cpu_request_milli": request})
        })
        .collect();
    json!({
        "id": "t", "level": "controller_reconcile",
        "inputs": {"hpa": hpa, "scale": {"spec_replicas": spec, "status_replicas": spec},
                   "pods": pods, "metric_data": data, "recommendation_history": history,
                   "tolerance": {"scale_up": 0.1, "scale_down": 0.1},
                   "controller_config": {"legacy_scale_up_limit_factor": 8}},
        "expected": {"desired_replicas": null, "scale_updated": null, "conditions": null}
    })
}

fn reasons(result: &Value) -> Vec<String> {
    result["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn mirrors_of_other_go_controller_tests() {
    let cpu = |t: i64| json!([{"type": "Resource", "resource": "cpu", "target": {"type": "Utilization", "average_utilization_percent": t}}]);
    // TestUpscaleCapGreaterThanMaxReplicas: 600m over 300m requested at target 10%:
    // 200 / 10 = 20 -> ceil(60); Percent 700 per 60 s allows ceil(3 * 8) = 24; max 20 wins.
    let hpa = json!({"min_replicas": 1, "max_replicas": 20, "metrics": cpu(10),
        "behavior": {"scale_up": {"stabilization_window_s": 0, "select_policy": "Max",
                                  "policies": [{"type": "Percent", "value": 700, "period_s": 60}]},
                     "scale_down": null}});
    let case = reconcile_case(
        hpa,
        3,
        &[(100, "True"); 3],
        json!({"cpu_usage_milli_per_pod": [100, 200, 300]}),
        json!("controller_initializes"),
    );
    let r = &run_cases(&case).unwrap()[0];
    assert_eq!(r["desired_replicas"], 20);
    assert_eq!(
        reasons(r),
        ["SucceededRescale", "ValidMetricFound", "TooManyReplicas"]
    );

    // TestSuperfluousMetrics: 6 samples for 4 pods; 23500 / 4000 = 587% -> ceil(5.87 * 4) = 24,
    // capped at max 6.
    let hpa = json!({"min_replicas": 2, "max_replicas": 6, "metrics": cpu(100), "behavior": null});
    let data = json!({"cpu_usage_milli_per_pod": [4000, 9500, 3000, 7000, 3200, 2000]});
    let case = reconcile_case(
        hpa,
        4,
        &[(1000, "True"); 4],
        data,
        json!("controller_initializes"),
    );
    let r = &run_cases(&case).unwrap()[0];
    assert_eq!(
        (r["desired_replicas"].as_i64(), reasons(r).last().cloned()),
        (Some(6), Some("TooManyReplicas".into()))
    );

    // TestEmptyCPURequest: no pod at all ("reportedCPURequests: []").
    let hpa = json!({"min_replicas": 1, "max_replicas": 5, "metrics": cpu(100), "behavior": null});
    let case = reconcile_case(
        hpa,
        1,
        &[],
        json!({"cpu_usage_milli_per_pod": [200]}),
        json!("controller_initializes"),
    );
    let r = &run_cases(&case).unwrap()[0];
    assert_eq!(r["desired_replicas"], 1);
    assert_eq!(reasons(r), ["SucceededGetScale", "FailedGetResourceMetric"]);

    // TestScaleDownWithScalingRules: proposal 3 (28% of 50%), no history; the default
    // scale-down policy (100% per 15 s) allows it.
    let hpa = json!({"min_replicas": 2, "max_replicas": 6, "metrics": cpu(50),
        "behavior": {"scale_up": {"stabilization_window_s": 30, "select_policy": "Max",
                                  "policies": [{"type": "Percent", "value": 100, "period_s": 15}]},
                     "scale_down": null}});
    let data = json!({"cpu_usage_milli_per_pod": [100, 300, 500, 250, 250]});
    let case = reconcile_case(hpa, 5, &[(1000, "True"); 5], data, json!([]));
    assert_eq!(run_cases(&case).unwrap()[0]["desired_replicas"], 3);

    // TestMinReplicasDesiredZero: all idle -> proposal 0 -> TooFewReplicas at min 2.
    let hpa = json!({"min_replicas": 2, "max_replicas": 5, "metrics": cpu(90), "behavior": null});
    let case = reconcile_case(
        hpa,
        3,
        &[(1000, "True"); 3],
        json!({"cpu_usage_milli_per_pod": [0, 0, 0]}),
        json!([]),
    );
    let r = &run_cases(&case).unwrap()[0];
    assert_eq!(r["desired_replicas"], 2);
    assert_eq!(
        reasons(r),
        ["SucceededRescale", "ValidMetricFound", "TooFewReplicas"]
    );

    // TestConditionFailedGetMetrics: each failing API gives its own reason, nothing changes.
    let specs = [
        ("Resource", cpu(10)[0].clone()),
        (
            "Pods",
            json!({"type": "Pods", "metric": "qps", "target": {"type": "AverageValue", "average_value_milli": 10000}}),
        ),
        (
            "Object",
            json!({"type": "Object", "metric": "qps", "target": {"type": "Value", "value_milli": 10000}}),
        ),
        (
            "External",
            json!({"type": "External", "metric": "qps", "target": {"type": "Value", "value_milli": 300000}}),
        ),
    ];
    for (source, spec) in specs {
        let hpa =
            json!({"min_replicas": 1, "max_replicas": 100, "metrics": [spec], "behavior": null});
        let data =
            json!({"cpu_usage_milli_per_pod": [100, 200, 300], "failing_metric_sources": [source]});
        let case = reconcile_case(
            hpa,
            10,
            &[(100, "True"); 3],
            data,
            json!("controller_initializes"),
        );
        let r = &run_cases(&case).unwrap()[0];
        assert_eq!(r["desired_replicas"], 10);
        assert_eq!(
            reasons(r),
            [
                "SucceededGetScale".to_string(),
                format!("FailedGet{source}Metric")
            ]
        );
    }
}
