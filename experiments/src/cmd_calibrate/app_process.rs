//! The `workload-app` calibrate starts: its binary ([`resolve_app`]), its processes
//! ([`AppProcess`]: spawn, wait for the listening line and readiness, stop and reap, also on
//! drop) and the CPU measurement on a ready one ([`measure_cpu`]).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use adapters::process::listening_addr;
use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{CpuFigures, Stats, DEFAULT_APP, IDLE_WINDOW, READY_POLL, STOP_GRACE, WARMUP_REQUESTS};
use crate::stats::Summary;

/// Lines of the app's stderr kept for error messages.
const STDERR_TAIL: usize = 20;

/// `--app` as given, or the default (current folder, else the repository root); an error
/// naming `--app` when it does not exist.
pub(super) fn resolve_app(app: Option<&Path>) -> Result<PathBuf> {
    let path = match app {
        Some(p) => p.to_path_buf(),
        None => {
            let here = PathBuf::from(DEFAULT_APP);
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(DEFAULT_APP);
            if !here.exists() && root.exists() {
                root
            } else {
                here
            }
        }
    };
    if !path.is_file() {
        bail!(
            "--app: no workload-app binary at {}; build it with `cargo build --release -p \
             workload --bins` (it lands in $CARGO_TARGET_DIR/release, default target/release) \
             or pass --app PATH",
            path.display()
        );
    }
    Ok(path)
}

/// A running `workload-app`, stopped (SIGTERM, SIGKILL after [`STOP_GRACE`]) and reaped when
/// dropped.
pub(super) struct AppProcess {
    child: Option<Child>,
    /// Process id.
    pub(super) pid: u32,
    spawned: Instant,
    listening: Option<(Instant, SocketAddr)>,
    lines: mpsc::Receiver<(Instant, SocketAddr)>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    app: PathBuf,
}

impl AppProcess {
    /// Spawns `app --listen 127.0.0.1:0 ARGS...` with stdout and stderr read by threads.
    pub(super) fn spawn(app: &Path, args: &[String]) -> Result<Self> {
        let spawned = Instant::now();
        let mut child = Command::new(app)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            // An app that refuses its arguments must say why in the few stderr lines kept,
            // not in a backtrace.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("--app: cannot start {}", app.display()))?;
        let pid = child.id();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take();
        let stderr_pipe = child.stderr.take();
        // From here on the guard owns the child: every error path below stops and reaps it.
        let mut p = Self {
            child: Some(child),
            pid,
            spawned,
            listening: None,
            lines,
            stderr: Arc::new(Mutex::new(VecDeque::new())),
            stderr_reader: None,
            app: app.to_path_buf(),
        };
        if let Some(out) = stdout {
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if !sent {
                        if let Some(addr) = listening_addr(&line) {
                            sent = tx.send((Instant::now(), addr)).is_ok();
                        }
                    }
                }
            });
        }
        if let Some(err) = stderr_pipe {
            let tail = Arc::clone(&p.stderr);
            p.stderr_reader = Some(std::thread::spawn(move || keep_tail(err, &tail)));
        }
        Ok(p)
    }

    /// Waits for the listening line; returns spawn -> listening.
    pub(super) fn wait_listening(&mut self, timeout: Duration) -> Result<Duration> {
        match self.lines.recv_timeout(timeout) {
            Ok((at, addr)) => {
                self.listening = Some((at, addr));
                Ok(at.duration_since(self.spawned))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.wait_exit(Duration::from_secs(5));
                Err(self.failure(&format!(
                    "exited ({}) before printing its listening line",
                    status.map_or("still running".into(), |s| s.to_string())
                )))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Err(self.failure(&format!(
                "printed no listening line within {} s",
                timeout.as_secs()
            ))),
        }
    }

    /// Polls `GET /ready` every [`READY_POLL`] until it answers 200; returns listening -> that
    /// answer.
    pub(super) fn wait_ready(
        &mut self,
        client: &reqwest::blocking::Client,
        timeout: Duration,
    ) -> Result<Duration> {
        let (listening, addr) = self
            .listening
            .ok_or_else(|| anyhow!("wait_ready before the listening line"))?;
        let url = format!("http://{addr}/ready");
        loop {
            let sent = Instant::now();
            if let Ok(r) = client.get(&url).timeout(Duration::from_secs(2)).send() {
                if r.status() == reqwest::StatusCode::OK {
                    return Ok(Instant::now().duration_since(listening));
                }
            }
            if let Some(status) = self.exited() {
                return Err(self.failure(&format!("exited ({status}) before /ready answered 200")));
            }
            if listening.elapsed() > timeout {
                return Err(self.failure(&format!(
                    "/ready did not answer 200 within {} s of listening (is --ready-delay-s larger?)",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep((sent + READY_POLL).saturating_duration_since(Instant::now()));
        }
    }

    fn addr(&self) -> Result<SocketAddr> {
        self.listening
            .map(|(_, a)| a)
            .ok_or_else(|| anyhow!("the app is not listening"))
    }

    /// The exit status if the child has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// An error naming the app, `what` happened, and its stderr's last lines.
    fn failure(&self, what: &str) -> anyhow::Error {
        // Let the stderr reader catch the last lines: it ends when the pipe closes (the app
        // exited); for an app still running, 2 s.
        let end = Instant::now() + Duration::from_secs(2);
        while self
            .stderr_reader
            .as_ref()
            .is_some_and(|h| !h.is_finished())
            && Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let tail = self
            .stderr
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default();
        anyhow!(
            "workload-app {} (pid {}) {what}; its stderr ends:\n{}",
            self.app.display(),
            self.pid,
            if tail.is_empty() { "(nothing)" } else { &tail }
        )
    }

    /// SIGTERM, SIGKILL after [`STOP_GRACE`], reap; returns SIGTERM -> exit. Idempotent.
    pub(super) fn stop(&mut self) -> Result<Duration> {
        let Some(mut child) = self.child.take() else {
            return Ok(Duration::ZERO);
        };
        let t = Instant::now();
        if let Ok(Some(status)) = child.try_wait() {
            tracing::warn!(pid = self.pid, %status, "workload-app had already exited");
            return Ok(Duration::ZERO);
        }
        let signalled = i32::try_from(self.pid)
            .ok()
            .map(|raw| kill(Pid::from_raw(raw), Signal::SIGTERM).is_ok())
            .unwrap_or(false);
        let deadline = t + if signalled {
            STOP_GRACE
        } else {
            Duration::ZERO
        };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        tracing::warn!(pid = self.pid, %status, "workload-app exited with an error after SIGTERM");
                    }
                    return Ok(t.elapsed());
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "workload-app (pid {}) did not exit within {} s of SIGTERM: killed",
                        self.pid,
                        STOP_GRACE.as_secs()
                    );
                }
            }
        }
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("{e:#}");
        }
    }
}

/// Reads `r` line by line, keeping the last [`STDERR_TAIL`] lines in `tail`.
fn keep_tail(r: impl Read, tail: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(r).lines() {
        let Ok(line) = line else { break };
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_TAIL {
                t.pop_front();
            }
            t.push_back(line);
        }
    }
}

/// The value of `process_cpu_seconds_total` in a Prometheus/OpenMetrics text exposition.
pub fn parse_process_cpu(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn scrape_cpu(client: &reqwest::blocking::Client, addr: SocketAddr) -> Result<f64> {
    let text = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .with_context(|| format!("GET http://{addr}/metrics failed"))?;
    parse_process_cpu(&text)
        .ok_or_else(|| anyhow!("http://{addr}/metrics has no process_cpu_seconds_total"))
}

/// One `GET /work`; the `cost_ms` the app reports.
fn get_work(client: &reqwest::blocking::Client, url: &str) -> Result<f64> {
    let r = client
        .get(url)
        .send()
        .with_context(|| format!("GET {url} failed"))?;
    let status = r.status();
    let body = r
        .text()
        .with_context(|| format!("GET {url}: reading the answer"))?;
    if status != reqwest::StatusCode::OK {
        bail!("GET {url} answered {status}: {body}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON: {body}"))?;
    Ok(v.get("cost_ms")
        .and_then(|c| c.as_f64())
        .unwrap_or(f64::NAN))
}

/// Idle CPU over [`IDLE_WINDOW`], then `requests` sequential `/work` requests on `p`.
pub(super) fn measure_cpu(
    p: &AppProcess,
    client: &reqwest::blocking::Client,
    requests: usize,
) -> Result<CpuFigures> {
    let addr = p.addr()?;
    let url = format!("http://{addr}/work");
    for _ in 0..WARMUP_REQUESTS {
        get_work(client, &url)?;
    }
    let (c0, t0) = (scrape_cpu(client, addr)?, Instant::now());
    std::thread::sleep(IDLE_WINDOW);
    let (c1, t1) = (scrape_cpu(client, addr)?, Instant::now());
    let idle_window_s = t1.duration_since(t0).as_secs_f64();
    let idle_rate = ((c1 - c0) / idle_window_s).max(0.0);

    let c2 = scrape_cpu(client, addr)?;
    let t2 = Instant::now();
    let mut latency = Vec::with_capacity(requests);
    let mut costs = Vec::with_capacity(requests);
    for _ in 0..requests {
        let s = Instant::now();
        costs.push(get_work(client, &url)?);
        latency.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let t3 = Instant::now();
    let c3 = scrape_cpu(client, addr)?;
    let window_s = t3.duration_since(t2).as_secs_f64();
    let process_cpu_s = c3 - c2;
    let cpu_per_request_ms =
        ((process_cpu_s - idle_rate * window_s).max(0.0) / requests as f64) * 1000.0;
    let latency_ms = Stats::of(&latency);
    let mut sorted = latency.clone();
    sorted.sort_by(f64::total_cmp);
    let rank =
        |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    let (latency_p50_ms, latency_p95_ms) = (rank(0.5), rank(0.95));
    let latency_cv = latency_ms.summary.std / latency_ms.summary.mean;
    Ok(CpuFigures {
        requests,
        idle_window_s,
        idle_cpu_millicores: idle_rate * 1000.0,
        window_s,
        process_cpu_s,
        cpu_per_request_ms,
        latency_ms,
        latency_cv,
        latency_p50_ms,
        latency_p95_ms,
        app_reported_cost_ms_mean: Summary::from_samples(&costs).mean,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line_and_the_cpu_counter() {
        assert_eq!(
            listening_addr(r#"{"event":"listening","addr":"127.0.0.1:4137"}"#),
            Some("127.0.0.1:4137".parse().unwrap())
        );
        assert_eq!(
            listening_addr(r#"{"event":"other","addr":"127.0.0.1:1"}"#),
            None
        );
        assert_eq!(listening_addr("listening"), None);
        let text = "# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total 1.25\n\
                    process_resident_memory_bytes 100\n# EOF\n";
        assert_eq!(parse_process_cpu(text), Some(1.25));
        assert_eq!(parse_process_cpu("x 1\n"), None);
    }
}
