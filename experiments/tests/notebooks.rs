//! The notebooks in `notebooks/` cannot rot: each is executed headless with nbconvert in the
//! test Python environment (`scripts/python-env.sh` creates it on first use), against the
//! reference results and against a fresh run, and must finish with its self-checks passing.
//! They are stored without outputs.

mod common;

use common::{ok, root, tmp};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Seconds one cell may run before nbconvert gives up on it.
const CELL_TIMEOUT_S: u32 = 600;

fn notebooks() -> Vec<PathBuf> {
    let mut nbs: Vec<PathBuf> = std::fs::read_dir(root().join("notebooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ipynb"))
        .collect();
    nbs.sort();
    assert!(!nbs.is_empty(), "no notebooks in notebooks/");
    nbs
}

/// The environment variable naming the folder `nb` reads (unset: its reference folder).
fn input_var(nb: &Path) -> &'static str {
    if nb.ends_with("pareto_fronts.ipynb") {
        "NIMBUSGUARD_SWEEP"
    } else {
        "NIMBUSGUARD_RESULTS"
    }
}

/// Executes `nb` with its input variable ([`input_var`]) = `results` (or unset); returns the
/// executed notebook as JSON, or panics with nbconvert's output (the failing cell's traceback).
fn execute(bin: &Path, nb: &Path, results: Option<&Path>, out: &Path) -> serde_json::Value {
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut cmd = Command::new(bin.join("jupyter"));
    cmd.args(["nbconvert", "--to", "notebook", "--execute"])
        .arg(format!("--ExecutePreprocessor.timeout={CELL_TIMEOUT_S}"))
        // Tracebacks without terminal colour codes, readable in the test's failure message.
        .arg("--ExecutePreprocessor.extra_arguments=['--InteractiveShell.colors=NoColor']")
        .arg("--output-dir")
        .arg(out)
        .arg(nb)
        .env("PATH", path)
        .env_remove("NIMBUSGUARD_RESULTS")
        .env_remove("NIMBUSGUARD_SWEEP")
        .current_dir(root());
    if let Some(r) = results {
        cmd.env(input_var(nb), r);
    }
    let run = cmd.output().unwrap();
    assert!(
        run.status.success(),
        "{} failed ({}={results:?}):\n{}\n{}",
        nb.display(),
        input_var(nb),
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let executed = out.join(nb.file_name().unwrap());
    serde_json::from_str(&std::fs::read_to_string(executed).unwrap()).unwrap()
}

/// Everything the executed notebook printed.
fn printed(nb: &serde_json::Value) -> String {
    let mut text = String::new();
    for cell in nb["cells"].as_array().unwrap() {
        for o in cell["outputs"].as_array().into_iter().flatten() {
            if o["output_type"] == "stream" {
                for line in o["text"].as_array().into_iter().flatten() {
                    text.push_str(line.as_str().unwrap_or_default());
                }
            }
        }
    }
    text
}

#[test]
fn notebooks_are_stored_without_outputs() {
    for nb in notebooks() {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&nb).unwrap()).unwrap();
        for cell in v["cells"].as_array().unwrap() {
            if cell["cell_type"] == "code" {
                assert_eq!(cell["outputs"], serde_json::json!([]), "{}", nb.display());
                assert!(cell["execution_count"].is_null(), "{}", nb.display());
            }
        }
    }
}

#[test]
fn notebooks_execute_headless() {
    let bin = common::python_bin().unwrap();
    // Fresh results, so the notebooks also read what this build writes, not only the reference:
    // a run, and a sweep (7 runs of 2 seeds; HPA, KPA and a learned Q-learning agent).
    let fresh = tmp("run");
    let config = root().join("experiments/tests/data/tables.toml");
    ok(
        common::nimbusguard(&[
            "run",
            config.to_str().unwrap(),
            "--out",
            fresh.to_str().unwrap(),
        ]),
        "nimbusguard run",
    );
    let fresh_sweep = tmp("sweep");
    let sweep = root().join("experiments/tests/data/sweep.toml");
    ok(
        common::nimbusguard(&[
            "sweep",
            sweep.to_str().unwrap(),
            "--out",
            fresh_sweep.to_str().unwrap(),
        ]),
        "nimbusguard sweep",
    );
    for nb in notebooks() {
        let pareto = nb.ends_with("pareto_fronts.ipynb");
        let fresh = if pareto { &fresh_sweep } else { &fresh };
        for results in [None, Some(fresh.as_path())] {
            let out = tmp("executed");
            let executed = execute(&bin, &nb, results, &out);
            let text = printed(&executed);
            let want = match (pareto, results.is_none()) {
                // 9 metrics x 8 agents (reference) or x 3 agents (the fresh run).
                (false, true) => "72 agent x metric summaries equal summary.json's".to_string(),
                (false, false) => "27 agent x metric summaries equal summary.json's".to_string(),
                // pareto-nasa: 26 runs, the last with 3 agents; fronts of hpa, keda, kpa,
                // oracle and the 2 learned kinds; 2 learned agents x 4 untrained families.
                (true, true) => "28 entries, 6 fronts and 8 learned positions".to_string(),
                // The test sweep: 7 runs x 3 agents; fronts of hpa, kpa, q-learning; 7
                // Q-learning agents x 2 untrained families.
                (true, false) => "21 entries, 3 fronts and 14 learned positions".to_string(),
            };
            assert!(
                text.contains(&want),
                "{}: want {want:?} in\n{text}",
                nb.display()
            );
        }
    }
}
