//! Shared fixtures of the integration tests: the `workload-app` binary, a real Prometheus server
//! (killed on drop), polling helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use adapters::local_prometheus::{poll_until, LocalPrometheus, ScrapeJob};
use adapters::PrometheusClient;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("adapters has a parent folder")
        .to_path_buf()
}

/// Builds `workload-app` once per test binary (`$CARGO build --profile test -p workload --bin
/// workload-app`: the test profile reuses what `cargo test` already compiled)
/// and returns its path (`$CARGO_TARGET_DIR` or `<workspace>/target`, then `debug/`).
pub fn workload_app() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--profile",
                "test",
                "-p",
                "workload",
                "--bin",
                "workload-app",
            ])
            .current_dir(workspace_root())
            .status()
            .expect("cannot run cargo");
        assert!(status.success(), "building workload-app failed: {status}");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let bin = target.join("debug").join("workload-app");
        assert!(bin.exists(), "{} missing after the build", bin.display());
        bin
    })
    .clone()
}

/// Polls `f` every 100 ms until it returns `Some`, panicking with `what` after `timeout`.
pub fn poll<T>(timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    poll_until(timeout, f).unwrap_or_else(|| panic!("timed out after {timeout:?}: {what}"))
}

/// A [`LocalPrometheus`] in a temporary folder, killed on drop.
///
/// Jobs (scrape and evaluation every 1 s): `prometheus` (itself), `workload` (file_sd over
/// `SD_DIR/*.json`) when a folder is given, `front` (a static target) when an address is given.
pub struct PrometheusServer {
    inner: LocalPrometheus,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Writes the config, starts Prometheus and waits for `/-/ready`.
    pub fn start(sd_dir: Option<&Path>, front: Option<SocketAddr>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut jobs = Vec::new();
        if let Some(sd) = sd_dir {
            jobs.push(ScrapeJob::FileSd {
                name: "workload".into(),
                dir: sd.to_path_buf(),
            });
        }
        if let Some(f) = front {
            jobs.push(ScrapeJob::Static {
                name: "front".into(),
                targets: vec![f],
            });
        }
        let bin = LocalPrometheus::binary().expect("a Prometheus binary");
        let inner = LocalPrometheus::start(&bin, dir.path(), &jobs)
            .unwrap_or_else(|e| panic!("cannot start Prometheus: {e}"));
        Self { inner, _dir: dir }
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.inner.url()
    }

    /// A client with a 5 s timeout.
    pub fn client(&self) -> PrometheusClient {
        self.inner.client().expect("client")
    }

    /// Starts the server again (same port and TSDB) and waits until it is ready.
    pub fn start_again(&mut self) {
        self.inner
            .start_again()
            .unwrap_or_else(|e| panic!("cannot restart Prometheus: {e}"));
    }

    /// Stops the server (SIGTERM, SIGKILL after 10 s); the TSDB stays.
    pub fn stop(&mut self) {
        self.inner.stop();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.inner.log()
    }

    /// Waits until `sum(up{job="JOB"}) >= n` (the first scrape comes ~5 s after start).
    pub fn wait_up(&self, job: &str, n: usize, timeout: Duration) {
        if let Err(e) = self.inner.wait_up(job, n, timeout) {
            panic!("{e}\nPrometheus log:\n{}", self.log());
        }
    }
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `Z`, ...), `None` when the process is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}
