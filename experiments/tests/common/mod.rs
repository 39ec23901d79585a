//! Helpers shared by the integration tests (each test crate that needs them says
//! `mod common;`): the repository root, emptied scratch folders, the `nimbusguard` binary, the
//! test Python environment, and a folder's files for byte-for-byte comparisons.
#![allow(dead_code)] // each test crate uses a subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root (the workspace above this crate).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An empty scratch folder `<temp>/nimbusguard-<test crate>-<pid>-<name>` (emptied first if it
/// exists).
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "nimbusguard-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The `nimbusguard` binary with `args`, to run in the repository root, without the caller's
/// `MLFLOW_TRACKING_URI` (a developer's own MLflow server must not receive the test runs).
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nimbusguard"));
    c.args(args)
        .current_dir(root())
        .env_remove("MLFLOW_TRACKING_URI");
    c
}

/// Runs [`command`]`(args)` to completion.
pub fn nimbusguard(args: &[&str]) -> Output {
    command(args).output().expect("the binary runs")
}

/// `out`'s stdout and stderr as text; panics, naming `what` and showing both, unless it
/// succeeded.
pub fn ok(out: Output, what: &str) -> (String, String) {
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{so}\n{se}",
        out.status
    );
    (so, se)
}

/// `p` as a `&str` (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The bin folder of the test Python environment (`scripts/python-env.sh`: MLflow, headless
/// Jupyter, polars, matplotlib, scipy), created on first use (about 2 minutes once).
///
/// # Errors
/// The script cannot run or fails (its stderr goes to the test's stderr).
pub fn python_bin() -> Result<PathBuf, String> {
    let script = root().join("scripts/python-env.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed ({})", script.display(), out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let bin = stdout.lines().last().unwrap_or_default().trim();
    if bin.is_empty() {
        return Err(format!("{} printed no bin folder", script.display()));
    }
    Ok(PathBuf::from(bin))
}

/// Every file under `dir` (relative path -> bytes), leaving out any folder named in `skip`.
pub fn files(dir: &Path, skip: &[&str]) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, skip: &[&str], out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.file_name().is_some_and(|n| skip.iter().any(|s| n == *s)) {
                    walk(root, &p, skip, out);
                }
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}

/// `workload-app` and `loadgen`, built with the test profile (reusing what `cargo test` compiled).
pub fn workload_bins() -> (PathBuf, PathBuf) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--profile", "test", "-p", "workload", "--bins"])
        .current_dir(root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building workload's binaries failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let d = target.join("debug");
    (d.join("workload-app"), d.join("loadgen"))
}

/// A child process stopped when dropped: SIGTERM, then SIGKILL after 10 s, so that a failing
/// test still lets `nimbusguard operator` or `node-agent` stop the processes they started
/// (SIGKILL alone left them running, orphaned).
pub struct Guard(pub Option<std::process::Child>);

impl Guard {
    /// The child's pid (0 once it was taken).
    pub fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }

    /// SIGTERM, then waits up to `timeout` for the exit status; SIGKILL if it does not come.
    pub fn terminate_within(
        &mut self,
        timeout: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let mut c = self.0.take()?;
        if let Ok(Some(status)) = c.try_wait() {
            return Some(status);
        }
        if let Ok(pid) = i32::try_from(c.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let t0 = std::time::Instant::now();
        while t0.elapsed() < timeout {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// [`Guard::terminate_within`] 30 s.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.terminate_within(std::time::Duration::from_secs(30))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.terminate_within(std::time::Duration::from_secs(10));
    }
}
