//! [`LocalPrometheus`]: a Prometheus server run as a child process on loopback, with its own
//! config and TSDB folder, for local live runs (`nimbusguard operator` experiments,
//! `nimbusguard live`) and the tests. Killed when dropped.
//!
//! The binary is Debian's `prometheus` (2.42); `scripts/prometheus.sh` installs it when it is
//! missing and prints its path ([`LocalPrometheus::binary`] runs that script).
//! The generated config scrapes every 1 s (`scrape_interval` and `evaluation_interval`):
//! job `prometheus` (itself), one job per [`ScrapeJob`]. Note the first scrape comes about 5 s
//! after start (target updates are batched): wait with [`LocalPrometheus::wait_up`], do not
//! sleep a fixed time.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::prometheus::PrometheusClient;

/// One scrape job of the generated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScrapeJob {
    /// Targets from file-based service discovery: every `*.json` of `dir`, re-read every 1 s
    /// (what [`crate::ProcessScaler`] writes).
    FileSd {
        /// Job name (the `job` label).
        name: String,
        /// Folder of the file_sd JSON files.
        dir: PathBuf,
    },
    /// Fixed targets.
    Static {
        /// Job name (the `job` label).
        name: String,
        /// `host:port` of each target.
        targets: Vec<SocketAddr>,
    },
    /// A scrape config written as it is (YAML of one `scrape_configs` entry, starting with
    /// `- job_name:` and indented by two spaces), e.g. `kubernetes_sd_configs` against a
    /// local API server.
    Raw {
        /// The YAML block.
        yaml: String,
    },
}

/// A Prometheus child process (see the module docs).
#[derive(Debug)]
pub struct LocalPrometheus {
    binary: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// Polls `f` every 100 ms until it returns `Some`, or `None` after `timeout`.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free loopback port (bound then released; another process may take it meanwhile, which
/// [`LocalPrometheus::start`] then reports as a failed start).
///
/// # Errors
/// [`Error::Io`] when no port can be bound.
pub fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| Error::Io {
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })
}

impl LocalPrometheus {
    /// The Prometheus binary: `scripts/prometheus.sh` of this checkout (which installs
    /// Debian's package when none is on `PATH`), else `prometheus` from `PATH`.
    ///
    /// # Errors
    /// [`Error::Config`] when the script fails or prints nothing.
    pub fn binary() -> Result<PathBuf> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("scripts/prometheus.sh");
        if !script.exists() {
            return Ok(PathBuf::from("prometheus"));
        }
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| Error::Config(format!("cannot run {}: {e}", script.display())))?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || path.is_empty() {
            return Err(Error::Config(format!(
                "{} failed ({}): no Prometheus binary",
                script.display(),
                out.status
            )));
        }
        Ok(PathBuf::from(path))
    }

    /// Writes `dir/prometheus.yml` with `jobs`, starts `binary` on a free loopback port with
    /// its TSDB in `dir/tsdb` and its log in `dir/prometheus.log`, and waits for `/-/ready`
    /// (up to 60 s).
    ///
    /// # Errors
    /// [`Error::Io`] when `dir` cannot be written, [`Error::Spawn`] when the binary cannot
    /// start, [`Error::NotReady`]-like [`Error::Config`] (with the log's tail) when it is not
    /// ready in time.
    pub fn start(binary: &Path, dir: &Path, jobs: &[ScrapeJob]) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let port = free_port()?;
        let mut config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n\
             \x20 - job_name: prometheus\n\
             \x20   static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        );
        for job in jobs {
            match job {
                // Prometheus reads relative file_sd paths against its config file's folder,
                // not the current one: always write an absolute path.
                ScrapeJob::FileSd { name, dir } => config.push_str(&format!(
                    "  - job_name: {name}\n    file_sd_configs: [{{files: ['{}/*.json'], refresh_interval: 1s}}]\n",
                    std::path::absolute(dir)
                        .map_err(|source| Error::Io {
                            path: dir.clone(),
                            source,
                        })?
                        .display()
                )),
                ScrapeJob::Raw { yaml } => {
                    config.push_str(yaml);
                    if !yaml.ends_with('\n') {
                        config.push('\n');
                    }
                }
                ScrapeJob::Static { name, targets } => {
                    let t: Vec<String> = targets.iter().map(|a| format!("'{a}'")).collect();
                    config.push_str(&format!(
                        "  - job_name: {name}\n    static_configs: [{{targets: [{}]}}]\n",
                        t.join(", ")
                    ));
                }
            }
        }
        let path = dir.join("prometheus.yml");
        std::fs::write(&path, config).map_err(|source| Error::Io { path, source })?;
        let mut p = Self {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        p.start_again()?;
        Ok(p)
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client of this server with a 5 s timeout.
    ///
    /// # Errors
    /// As [`PrometheusClient::new`].
    pub fn client(&self) -> Result<PrometheusClient> {
        PrometheusClient::new(&self.url(), Duration::from_secs(5))
    }

    /// PID of the running server (`None` while stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the server (again: same port, config and TSDB) and waits until it is ready.
    /// Does nothing if it is running.
    ///
    /// # Errors
    /// As [`LocalPrometheus::start`].
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let log_path = self.dir.join("prometheus.log");
        let io = |source| Error::Io {
            path: log_path.clone(),
            source,
        };
        let log = std::fs::File::create(&log_path).map_err(io)?;
        let log2 = log.try_clone().map_err(io)?;
        let child = Command::new(&self.binary)
            .arg(format!(
                "--config.file={}",
                self.dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| Error::Spawn {
                pod: "prometheus".into(),
                binary: self.binary.clone(),
                source,
            })?;
        self.child = Some(child);
        let client = self.client()?;
        if let Err(e) = client.wait_ready(Duration::from_secs(60)) {
            let log = self.log();
            let tail: String = log
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            self.stop();
            return Err(Error::Config(format!(
                "Prometheus on port {} not ready: {e}; log tail:\n{tail}",
                self.port
            )));
        }
        Ok(())
    }

    /// Stops the server (SIGTERM, SIGKILL after 10 s) and reaps it; the TSDB stays.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
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
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Waits until `sum(up{job="JOB"}) >= n`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the job after `timeout`.
    pub fn wait_up(&self, job: &str, n: usize, timeout: Duration) -> Result<()> {
        let client = self.client()?;
        let q = format!("sum(up{{job=\"{job}\"}})");
        poll_until(timeout, || {
            let v = client.query(&q, None).ok()?.single_value()?;
            (v >= n as f64).then_some(())
        })
        .ok_or_else(|| {
            Error::Config(format!(
                "fewer than {n} targets of job {job} up after {timeout:?}"
            ))
        })
    }
}

impl Drop for LocalPrometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
