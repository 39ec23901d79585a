//! The notebooks in `notebooks/` cannot rot: each is executed headless with nbconvert in the
//! test Python environment (`scripts/python-env.sh` creates it on first use), against the
//! reference results and against a fresh run, and must finish with its self-checks passing.
//! They are stored without outputs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Seconds one cell may run before nbconvert gives up on it.
const CELL_TIMEOUT_S: u32 = 600;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nimbusguard-nb-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

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

/// The bin folder of the test Python environment (created on first use).
fn python_bin() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-env.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("python-env.sh prints its bin folder")
            .trim(),
    )
}

/// Executes `nb` with `NIMBUSGUARD_RESULTS` = `results` (or unset); returns the executed
/// notebook as JSON, or panics with nbconvert's output (the failing cell's traceback).
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
        .current_dir(root());
    if let Some(r) = results {
        cmd.env("NIMBUSGUARD_RESULTS", r);
    }
    let run = cmd.output().unwrap();
    assert!(
        run.status.success(),
        "{} failed (NIMBUSGUARD_RESULTS={results:?}):\n{}\n{}",
        nb.display(),
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
    let bin = python_bin();
    // A fresh run, so the notebooks also read what this build writes, not only the reference.
    let fresh = tmp("run");
    let config = root().join("experiments/tests/data/tables.toml");
    let run = Command::new(env!("CARGO_BIN_EXE_nimbusguard"))
        .args([
            "run",
            config.to_str().unwrap(),
            "--out",
            fresh.to_str().unwrap(),
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for nb in notebooks() {
        for results in [None, Some(fresh.as_path())] {
            let out = tmp("executed");
            let executed = execute(&bin, &nb, results, &out);
            let text = printed(&executed);
            if nb.ends_with("reproduce_figures.ipynb") {
                // 9 metrics x 8 agents (reference) or x 3 agents (the fresh run).
                let n = if results.is_none() { 72 } else { 27 };
                assert!(
                    text.contains(&format!(
                        "{n} agent x metric summaries equal summary.json's"
                    )),
                    "{}:\n{text}",
                    nb.display()
                );
            }
        }
    }
}
