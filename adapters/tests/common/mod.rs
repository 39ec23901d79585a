//! Shared fixtures of the integration tests: the `workload-app` binary, a real Prometheus server
//! (killed on drop), polling helpers.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use adapters::PrometheusClient;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("adapters has a parent folder")
        .to_path_buf()
}

/// Builds `workload-app` once per test binary (`$CARGO build -p workload --bin workload-app`)
/// and returns its path (`$CARGO_TARGET_DIR` or `<workspace>/target`, then `debug/`).
pub fn workload_app() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "workload", "--bin", "workload-app"])
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

/// Path of a Prometheus binary (`scripts/prometheus.sh` installs it when missing).
pub fn prometheus_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new("bash")
            .arg(workspace_root().join("scripts/prometheus.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run scripts/prometheus.sh");
        assert!(out.status.success(), "scripts/prometheus.sh failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .clone()
}

/// Polls `f` every 100 ms until it returns `Some`, panicking with `what` after `timeout`.
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free port")
        .port()
}

/// A Prometheus server on a free loopback port with a temporary TSDB; killed on drop.
///
/// Jobs (scrape and evaluation every 1 s): `prometheus` (itself), `workload` (file_sd over
/// `SD_DIR/*.json`, refreshed every 1 s) when a folder is given, `front` (a static target)
/// when an address is given.
pub struct PrometheusServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Writes the config, starts Prometheus and waits for `/-/ready`.
    pub fn start(sd_dir: Option<&Path>, front: Option<SocketAddr>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n\
             \x20 - job_name: prometheus\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        );
        if let Some(sd) = sd_dir {
            config.push_str(&format!(
                "  - job_name: workload\n    file_sd_configs: [{{files: ['{}/*.json'], refresh_interval: 1s}}]\n",
                sd.display()
            ));
        }
        if let Some(f) = front {
            config.push_str(&format!(
                "  - job_name: front\n    static_configs: [{{targets: ['{f}']}}]\n"
            ));
        }
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write config");
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.start_again();
        server
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client with a 5 s timeout.
    pub fn client(&self) -> PrometheusClient {
        PrometheusClient::new(&self.url(), Duration::from_secs(5)).expect("client")
    }

    /// Starts the server (again, on the same port and TSDB) and waits until it is ready.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "Prometheus is already running");
        let log = std::fs::File::create(self.dir.path().join("prometheus.log")).expect("log");
        let child = Command::new(prometheus_bin())
            .arg(format!(
                "--config.file={}",
                self.dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("cannot start prometheus");
        self.child = Some(child);
        if let Err(e) = self.client().wait_ready(Duration::from_secs(60)) {
            panic!("Prometheus not ready: {e}\nlog:\n{}", self.log());
        }
    }

    /// Stops the server (SIGTERM, SIGKILL after 10 s) and reaps it; the TSDB stays.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Waits until `sum(up{job="JOB"}) >= n` (the first scrape comes ~5 s after start).
    pub fn wait_up(&self, job: &str, n: usize, timeout: Duration) {
        let client = self.client();
        let q = format!("sum(up{{job=\"{job}\"}})");
        poll(timeout, &format!("{n} targets of job {job} up"), || {
            let v = client.query(&q, None).ok()?.single_value()?;
            (v >= n as f64).then_some(())
        });
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `Z`, ...), `None` when the process is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}
