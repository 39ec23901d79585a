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
