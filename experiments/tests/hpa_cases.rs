//! Reference cases of the Kubernetes HPA (`agents/tests/data/hpa-cases-public.json`) through
//! the `nimbusguard hpa` command: the binary runs once, then one trial per case
//! (`hpa_case::<id>`) compares every non-null field of the case's `expected` block with the
//! computed output (see `agents::hpa::cases::check_case`). The one row the Go test skips
//! (`asserted_by_go_test: false`) is reported as ignored.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

/// The public cases file.
const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../agents/tests/data/hpa-cases-public.json"
);

/// Runs `nimbusguard hpa CASES` once; returns the cases and the results by id.
fn run_binary() -> Result<(Vec<Value>, HashMap<String, Value>), String> {
    let bin = env!("CARGO_BIN_EXE_nimbusguard");
    let cases_text =
        std::fs::read_to_string(CASES).map_err(|e| format!("cannot read {CASES}: {e}"))?;
    let cases: Vec<Value> = serde_json::from_str(&cases_text)
        .map_err(|e| format!("{CASES} is not a JSON array: {e}"))?;
    let output = Command::new(bin)
        .arg("hpa")
        .arg(Path::new(CASES))
        .output()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`nimbusguard hpa` exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).map_err(|e| {
        let head: String = String::from_utf8_lossy(&output.stdout)
            .chars()
            .take(200)
            .collect();
        format!("`nimbusguard hpa` did not print a JSON array ({e}); stdout starts with {head:?}")
    })?;
    let by_id = results
        .into_iter()
        .filter_map(|r| Some((r.get("id")?.as_str()?.to_string(), r)))
        .collect();
    Ok((cases, by_id))
}

fn main() {
    let args = Arguments::from_args();
    let trials = match run_binary() {
        Ok((cases, results)) => cases
            .into_iter()
            .map(|case| {
                let id = case
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("<no id>")
                    .to_string();
                let skipped = case.get("asserted_by_go_test") == Some(&Value::Bool(false));
                let result = results.get(&id).cloned();
                Trial::test(format!("hpa_case::{id}"), move || match result {
                    None => Err(Failed::from(format!("no result for case {id}"))),
                    Some(result) => {
                        agents::hpa::cases::check_case(&case, &result).map_err(Failed::from)
                    }
                })
                .with_ignored_flag(skipped)
            })
            .collect(),
        Err(e) => vec![Trial::test("hpa_case::run_binary", move || {
            Err(Failed::from(e))
        })],
    };
    libtest_mimic::run(&args, trials).exit();
}
