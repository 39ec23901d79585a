//! [`ProcessScaler`]: replicas as real `workload-app` processes on loopback ports, behind a
//! [`Front`], announced to Prometheus through file-based service discovery.
//!
//! Lifecycle of a replica, as a ReplicaSet would run it:
//! 1. **Start**: `BINARY --listen 127.0.0.1:0 --pod-name workload-N EXTRA_ARGS...`; the scaler
//!    reads the `{"event":"listening","addr":"127.0.0.1:PORT"}` line from its stdout (other
//!    stdout and all stderr lines go to `tracing` at debug level). `N` grows from 0 and is never
//!    reused, so every pod name (Prometheus' `pod` label) is unique within a scaler's life.
//! 2. **Ready**: [`Scaler::refresh`] probes `GET /ready` of every replica; only replicas whose
//!    last probe answered 200 are backends of the front.
//! 3. **Stop** (scale down): victims are the not-Ready replicas first, then the newest; they
//!    leave the front and the file_sd file first, then get SIGTERM, then SIGKILL after
//!    `stop_grace_s`; every child is reaped (`wait`).
//! 4. **Unexpected exit**: noticed by the next refresh: logged, counted
//!    ([`ProcessScaler::unexpected_exits`]) and removed. It is not replaced automatically; the
//!    next [`Scaler::set_replicas`] starts replacements (it compares with live replicas).
//!
//! The file_sd file (`file_sd_path`) always lists exactly the live replicas:
//! `[{"targets":["127.0.0.1:P"],"labels":{"pod":"workload-0"}}, ...]`, written to
//! `PATH.tmp` and renamed on every change. Dropping the scaler stops every child (also while
//! unwinding from a panic).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::front::{Backend, Front, FrontConfig};
use crate::scaler::{PodInfo, Scaler};

/// Configuration of a [`ProcessScaler`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessScalerConfig {
    /// Path of the `workload-app` binary. Default `workload-app` (looked up on `PATH`).
    pub binary: PathBuf,
    /// Arguments appended after `--listen` and `--pod-name` (e.g. `--cpu-per-request-ms 5`,
    /// `--workers 2`, `--ready-delay-s 2`). Default none.
    pub extra_args: Vec<String>,
    /// Pod name prefix: replicas are `PREFIX-0`, `PREFIX-1`, ... Default `workload`.
    pub name_prefix: String,
    /// Prometheus file_sd JSON file kept equal to the live replicas. Default none (not written).
    pub file_sd_path: Option<PathBuf>,
    /// Longest wait for a new replica's listening line, seconds. Default 30.
    pub start_timeout_s: f64,
    /// Time between SIGTERM and SIGKILL on scale down, seconds. Default 10.
    pub stop_grace_s: f64,
    /// Timeout of one `/ready` probe, seconds. Default 1.
    pub probe_timeout_s: f64,
    /// The front's settings.
    pub front: FrontConfig,
}

impl Default for ProcessScalerConfig {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("workload-app"),
            extra_args: Vec::new(),
            name_prefix: "workload".into(),
            file_sd_path: None,
            start_timeout_s: 30.0,
            stop_grace_s: 10.0,
            probe_timeout_s: 1.0,
            front: FrontConfig::default(),
        }
    }
}

impl ProcessScalerConfig {
    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("start_timeout_s", self.start_timeout_s),
            ("stop_grace_s", self.stop_grace_s),
            ("probe_timeout_s", self.probe_timeout_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::Config(format!(
                    "process.{name} must be > 0, got {v}"
                )));
            }
        }
        if self.name_prefix.is_empty() {
            return Err(Error::Config(
                "process.name_prefix must not be empty".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Replica {
    index: u64,
    name: String,
    child: Child,
    addr: SocketAddr,
    started_at: SystemTime,
    ready: bool,
    ready_since: Option<SystemTime>,
}

/// Runs replicas as local `workload-app` processes (see the module docs).
pub struct ProcessScaler {
    config: ProcessScalerConfig,
    replicas: Vec<Replica>,
    next_index: u64,
    desired: u32,
    front: Front,
    http: reqwest::blocking::Client,
    unexpected_exits: u64,
}

impl std::fmt::Debug for ProcessScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessScaler")
            .field("desired", &self.desired)
            .field("replicas", &self.pids())
            .field("front", &self.front.addr())
            .finish()
    }
}

impl ProcessScaler {
    /// Starts the front (no backend yet) and writes an empty file_sd file; no replica runs.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid settings, [`Error::FrontStart`], [`Error::Io`] when the
    /// file_sd file cannot be written.
    pub fn new(config: ProcessScalerConfig) -> Result<Self> {
        config.validate()?;
        let front = Front::start(&config.front)?;
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs_f64(config.probe_timeout_s))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the probe HTTP client: {e}")))?;
        let scaler = Self {
            config,
            replicas: Vec::new(),
            next_index: 0,
            desired: 0,
            front,
            http,
            unexpected_exits: 0,
        };
        scaler.write_file_sd()?;
        Ok(scaler)
    }

    /// The front all traffic should go to.
    pub fn front(&self) -> &Front {
        &self.front
    }

    /// `(pod name, pid)` of every live replica, oldest first.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.replicas
            .iter()
            .map(|r| (r.name.clone(), r.child.id()))
            .collect()
    }

    /// Replicas that exited without being asked to, since the scaler started.
    pub fn unexpected_exits(&self) -> u64 {
        self.unexpected_exits
    }

    /// Calls [`Scaler::refresh`] every 50 ms until at least `n` replicas are Ready.
    ///
    /// # Errors
    /// [`Error::NotReady`] after `timeout`; errors of `refresh`.
    pub fn wait_ready(&mut self, n: u32, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            self.refresh()?;
            let ready = self.ready_count();
            if ready >= n {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(Error::NotReady {
                    ready,
                    wanted: n,
                    waited_s: start.elapsed().as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ready_count(&self) -> u32 {
        self.replicas.iter().filter(|r| r.ready).count() as u32
    }

    /// Spawns `count` replicas at once, then waits for each one's listening line.
    fn start_replicas(&mut self, count: usize) -> Result<()> {
        let mut starting = Vec::with_capacity(count);
        let mut first_err = None;
        for _ in 0..count {
            let index = self.next_index;
            self.next_index += 1;
            match spawn_replica(&self.config, index) {
                Ok(s) => starting.push(s),
                Err(e) => {
                    first_err.get_or_insert(e);
                    break;
                }
            }
        }
        let timeout = Duration::from_secs_f64(self.config.start_timeout_s);
        let deadline = Instant::now() + timeout;
        for (index, name, mut child, rx, stderr_tail) in starting {
            let wait = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(addr) => {
                    tracing::info!(pod = %name, %addr, pid = child.id(), "replica started");
                    self.replicas.push(Replica {
                        index,
                        name,
                        child,
                        addr,
                        started_at: SystemTime::now(),
                        ready: false,
                        ready_since: None,
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    let mut reason = match (e, status) {
                        (mpsc::RecvTimeoutError::Timeout, _) => {
                            format!("no listening line within {timeout:?}")
                        }
                        (mpsc::RecvTimeoutError::Disconnected, Some(s)) => {
                            format!("it exited ({s}) without a listening line")
                        }
                        (mpsc::RecvTimeoutError::Disconnected, None) => {
                            "stdout closed without a listening line".to_string()
                        }
                    };
                    let tail = stderr_tail.finish();
                    if !tail.is_empty() {
                        reason.push_str(&format!("; its stderr ends: {}", tail.join(" | ")));
                    }
                    tracing::warn!(pod = %name, %reason, "replica failed to start");
                    first_err.get_or_insert(Error::ReplicaStart { pod: name, reason });
                }
            }
        }
        self.write_file_sd()?;
        first_err.map_or(Ok(()), Err)
    }

    /// Stops `count` replicas: not-Ready first, then the newest.
    fn stop_replicas(&mut self, count: usize) -> Result<()> {
        let mut order: Vec<usize> = (0..self.replicas.len()).collect();
        order.sort_by_key(|&i| {
            (
                self.replicas[i].ready,
                std::cmp::Reverse(self.replicas[i].index),
            )
        });
        let mut chosen: Vec<usize> = order.into_iter().take(count).collect();
        chosen.sort_unstable_by(|a, b| b.cmp(a));
        let victims: Vec<Replica> = chosen
            .into_iter()
            .map(|i| self.replicas.remove(i))
            .collect();
        // Out of the front and out of discovery first, then signals.
        self.update_front();
        let sd = self.write_file_sd();
        let stopped = stop_all(victims, Duration::from_secs_f64(self.config.stop_grace_s));
        sd.and(stopped)
    }

    fn update_front(&self) {
        let backends = self
            .replicas
            .iter()
            .filter(|r| r.ready)
            .map(|r| Backend {
                name: r.name.clone(),
                addr: r.addr,
            })
            .collect();
        self.front.set_backends(backends);
    }

    fn write_file_sd(&self) -> Result<()> {
        let Some(path) = &self.config.file_sd_path else {
            return Ok(());
        };
        let groups: Vec<serde_json::Value> = self
            .replicas
            .iter()
            .map(
                |r| serde_json::json!({"targets": [r.addr.to_string()], "labels": {"pod": r.name}}),
            )
            .collect();
        let text = serde_json::Value::Array(groups).to_string();
        write_atomically(path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` through `path.tmp` and a rename (readers never see half a file).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|source| Error::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

type Starting = (u64, String, Child, mpsc::Receiver<SocketAddr>, StderrTail);

/// How many of a replica's last stderr lines a start failure reports.
const STDERR_TAIL_LINES: usize = 5;

/// A replica's stderr, drained to the log, with its last lines kept for a start failure.
struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl StderrTail {
    /// The last lines, once the stream closed (the process was reaped first).
    fn finish(mut self) -> Vec<String> {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }
}

fn spawn_replica(config: &ProcessScalerConfig, index: u64) -> Result<Starting> {
    let name = format!("{}-{index}", config.name_prefix);
    let mut child = Command::new(&config.binary)
        .args(["--listen", "127.0.0.1:0", "--pod-name", &name])
        .args(&config.extra_args)
        // A replica that refuses its flags must say why in the stderr lines a start failure
        // quotes, not in a backtrace.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            pod: name.clone(),
            binary: config.binary.clone(),
            source,
        })?;
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        let pod = name.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                match (tx.as_ref(), listening_addr(&line)) {
                    (Some(t), Some(addr)) => {
                        let _ = t.send(addr);
                        tx = None;
                    }
                    _ => tracing::debug!(pod = %pod, stdout = %line),
                }
            }
        });
    }
    let lines = Arc::new(Mutex::new(VecDeque::new()));
    let reader = child.stderr.take().map(|err| {
        let (pod, keep) = (name.clone(), Arc::clone(&lines));
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                tracing::debug!(pod = %pod, stderr = %line);
                let mut k = keep.lock().unwrap_or_else(|e| e.into_inner());
                if k.len() == STDERR_TAIL_LINES {
                    k.pop_front();
                }
                k.push_back(line);
            }
        })
    });
    Ok((index, name, child, rx, StderrTail { lines, reader }))
}

/// The address of a `workload-app`'s first stdout line, `{"event":"listening","addr":"IP:PORT"}`
/// (surrounding whitespace ignored); `None` for any other line. Shared with
/// `nimbusguard calibrate`, which times that line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    if v.get("event")?.as_str()? != "listening" {
        return None;
    }
    v.get("addr")?.as_str()?.parse().ok()
}

/// SIGTERM to every replica, SIGKILL to those still running after `grace`; reaps all.
fn stop_all(mut victims: Vec<Replica>, grace: Duration) -> Result<()> {
    let mut first_err = None;
    for r in &victims {
        let pid = r.child.id();
        tracing::info!(pod = %r.name, pid, "stopping replica (SIGTERM)");
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        match kill(Pid::from_raw(raw), Signal::SIGTERM) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(source) => {
                first_err.get_or_insert(Error::Signal {
                    pod: r.name.clone(),
                    pid,
                    source,
                });
            }
        }
    }
    let deadline = Instant::now() + grace;
    loop {
        victims.retain_mut(|r| match r.child.try_wait() {
            Ok(Some(status)) => {
                tracing::debug!(pod = %r.name, %status, "replica exited");
                false
            }
            Ok(None) => true,
            Err(_) => true,
        });
        if victims.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for mut r in victims {
        tracing::warn!(pod = %r.name, "replica ignored SIGTERM for {grace:?}: SIGKILL");
        let _ = r.child.kill();
        let _ = r.child.wait();
    }
    first_err.map_or(Ok(()), Err)
}

impl Scaler for ProcessScaler {
    fn name(&self) -> &str {
        "process"
    }

    fn desired_replicas(&self) -> u32 {
        self.desired
    }

    fn pods(&self) -> Vec<PodInfo> {
        self.replicas
            .iter()
            .map(|r| PodInfo {
                name: r.name.clone(),
                addr: Some(r.addr),
                ready: r.ready,
                ready_since: r.ready_since,
                started_at: Some(r.started_at),
                terminating: false,
            })
            .collect()
    }

    fn set_replicas(&mut self, n: u32) -> Result<()> {
        self.desired = n;
        let live = self.replicas.len();
        let n = n as usize;
        tracing::info!(from = live, to = n, "process scaler: set replicas");
        if n > live {
            self.start_replicas(n - live)
        } else if n < live {
            self.stop_replicas(live - n)
        } else {
            Ok(())
        }
    }

    fn refresh(&mut self) -> Result<()> {
        let before = self.replicas.len();
        let unexpected = &mut self.unexpected_exits;
        self.replicas.retain_mut(|r| match r.child.try_wait() {
            Ok(Some(status)) => {
                tracing::warn!(pod = %r.name, %status, "replica exited unexpectedly");
                *unexpected += 1;
                false
            }
            _ => true,
        });
        let mut changed = self.replicas.len() != before;
        let now = SystemTime::now();
        for r in &mut self.replicas {
            let ready = self
                .http
                .get(format!("http://{}/ready", r.addr))
                .send()
                .is_ok_and(|resp| resp.status().is_success());
            if ready != r.ready || r.ready_since.is_none() {
                if ready != r.ready {
                    tracing::info!(pod = %r.name, ready, "replica readiness changed");
                    changed = true;
                }
                r.ready = ready;
                r.ready_since = Some(now);
            }
        }
        if changed {
            self.update_front();
        }
        if self.replicas.len() != before {
            self.write_file_sd()?;
        }
        Ok(())
    }
}

impl Drop for ProcessScaler {
    fn drop(&mut self) {
        let victims = std::mem::take(&mut self.replicas);
        if victims.is_empty() {
            return;
        }
        self.front.set_backends(Vec::new());
        let grace = Duration::from_secs_f64(self.config.stop_grace_s.min(5.0));
        if let Err(e) = stop_all(victims, grace) {
            tracing::warn!(error = %e, "stopping replicas on drop");
        }
        let _ = self.write_file_sd();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listening_line() {
        assert_eq!(
            listening_addr(r#"{"event":"listening","addr":"127.0.0.1:4321"}"#),
            Some(SocketAddr::from(([127, 0, 0, 1], 4321)))
        );
        assert_eq!(
            listening_addr(r#"{"event":"other","addr":"127.0.0.1:1"}"#),
            None
        );
        assert_eq!(
            listening_addr(r#"{"event":"listening","addr":"nope"}"#),
            None
        );
        assert_eq!(listening_addr("listening on 127.0.0.1:1"), None);
    }

    #[test]
    fn missing_binary_is_a_spawn_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProcessScaler::new(ProcessScalerConfig {
            binary: dir.path().join("no-such-binary"),
            file_sd_path: Some(dir.path().join("sd.json")),
            ..ProcessScalerConfig::default()
        })
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sd.json")).unwrap(),
            "[]"
        );
        match s.set_replicas(2) {
            Err(Error::Spawn { pod, .. }) => assert_eq!(pod, "workload-0"),
            other => panic!("{other:?}"),
        }
        assert!(s.pods().is_empty());
    }

    #[test]
    fn a_process_without_listening_line_is_reaped() {
        // `true` exits at once without printing: the start fails and leaves no replica.
        let mut s = ProcessScaler::new(ProcessScalerConfig {
            binary: PathBuf::from("true"),
            ..ProcessScalerConfig::default()
        })
        .unwrap();
        match s.set_replicas(1) {
            Err(Error::ReplicaStart { pod, reason }) => {
                assert_eq!(pod, "workload-0");
                assert!(reason.contains("without a listening line"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(s.pods().is_empty());
    }

    #[test]
    fn rejects_bad_config() {
        let c = ProcessScalerConfig {
            stop_grace_s: -1.0,
            ..ProcessScalerConfig::default()
        };
        assert!(
            matches!(ProcessScaler::new(c), Err(Error::Config(m)) if m.contains("stop_grace_s"))
        );
        assert!(toml::from_str::<ProcessScalerConfig>("binary = \"x\"\nworkers = 2").is_err());
    }
}
