//! `nimbusguard calibrate`: measures the workload app on this machine and writes a scenario the
//! simulator uses, so the simulated and the live runs model the same system.
//!
//! What is measured, and which simulator parameter it sets (docs/live.md, "Calibration"):
//!
//! | Measured | Written |
//! |---|---|
//! | spawn of `workload-app` -> its `{"event":"listening",..}` line (the container started), mean and sample std over `--starts` starts | `pod.startup_delay_mean_s`, `pod.startup_delay_std_s` |
//! | listening line -> first 200 from `GET /ready` (polled every 20 ms), mean | `pod.readiness_delay_s` |
//! | process CPU (`process_cpu_seconds_total` of `/metrics`) over `--requests` sequential `GET /work`, minus the idle CPU of the same process measured over 1 s before, per request | `service.cpu_per_request_ms` |
//! | coefficient of variation (std / mean) of the client-side latency of those requests: below [`DETERMINISTIC_MAX_CV`] `deterministic`, else `exponential` | `service.cost_distribution` |
//!
//! Every other value of the base config (`--base`) is kept; the experiment is renamed
//! `<base>-calibrated`. The scenario is checked to load with [`ExperimentConfig::load`] (and its
//! traffic to build) before it replaces the output file; `calibration.json` (schema
//! [`SCHEMA`]) beside it holds the raw figures. Every child process is stopped (SIGTERM, SIGKILL
//! after [`STOP_GRACE`]) and reaped, also when a measurement fails.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use sim::config::CostDistribution;

use crate::config::{base_dir, locate_config, ExperimentConfig};
use crate::stats::Summary;

/// Default `--app`: the release build of `workload-app` (relative to the current folder, else
/// to the repository root this binary was built from).
pub const DEFAULT_APP: &str = "target/release/workload-app";
/// Default `--base`: the live test system's experiment config.
pub const DEFAULT_BASE: &str = "experiments/configs/live-spike.toml";
/// Default `--out`: the scenario file; `calibration.json` is written beside it.
pub const DEFAULT_OUT: &str = "results/calibration/scenario.toml";
/// Default `--starts`: process starts timed for the start-up and readiness delays.
pub const DEFAULT_STARTS: usize = 5;
/// Default `--requests`: sequential `GET /work` requests for the CPU cost.
pub const DEFAULT_REQUESTS: usize = 200;
/// Fewest `--starts` accepted (a standard deviation needs two).
pub const MIN_STARTS: usize = 2;
/// Fewest `--requests` accepted.
pub const MIN_REQUESTS: usize = 10;
/// The app arguments used when no `--app-arg` is given: those of the live end-to-end test
/// (`experiments/tests/live_operator.rs`), the system `live-spike.toml` simulates.
pub const DEFAULT_APP_ARGS: &[&str] = &[
    "--cpu-per-request-ms",
    "20",
    "--workers",
    "1",
    "--ready-delay-s",
    "1",
    "--cost-distribution",
    "deterministic",
];
/// `schema` of `calibration.json`.
pub const SCHEMA: &str = "nimbusguard.calibration/v1";
/// Cost-distribution rule: a latency coefficient of variation below this is `deterministic`,
/// at or above it `exponential`. The simulator offers only these two, with CV 0 and 1; 0.5 is
/// the midpoint, so fixed HTTP overhead (which lowers the CV) and scheduling noise on a shared
/// machine (which raises it) do not flip the choice.
pub const DETERMINISTIC_MAX_CV: f64 = 0.5;
/// Interval between two `GET /ready` probes while waiting for readiness.
pub const READY_POLL: Duration = Duration::from_millis(20);
/// Longest wait for the listening line after spawning the app.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for `/ready` to answer 200 after the listening line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Window over which the idle CPU of the ready app is measured before the requests.
pub const IDLE_WINDOW: Duration = Duration::from_secs(1);
/// Requests sent (and not counted) before the CPU measurement: connection set-up, the app's
/// first blocking thread.
pub const WARMUP_REQUESTS: usize = 5;
/// Time between SIGTERM and SIGKILL when stopping an app (its `--shutdown-grace-s` defaults to
/// 10 s, and nothing is in flight when it is stopped).
pub const STOP_GRACE: Duration = Duration::from_secs(15);
/// Timeout of one HTTP request to the app.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of the app's stderr kept for error messages.
const STDERR_TAIL: usize = 20;

/// What `nimbusguard calibrate` measures and where it writes (its flags).
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateOptions {
    /// `--app`: the `workload-app` binary; `None` = [`DEFAULT_APP`].
    pub app: Option<PathBuf>,
    /// `--base`: the experiment config the scenario starts from.
    pub base: PathBuf,
    /// `--out`: the scenario file written; `calibration.json` goes beside it.
    pub out: PathBuf,
    /// `--starts`: process starts timed (>= [`MIN_STARTS`]).
    pub starts: usize,
    /// `--requests`: sequential `/work` requests for the CPU cost (>= [`MIN_REQUESTS`]).
    pub requests: usize,
    /// `--app-arg`: arguments passed to every `workload-app` after `--listen 127.0.0.1:0`;
    /// empty = [`DEFAULT_APP_ARGS`].
    pub app_args: Vec<String>,
    /// The command line recorded in the outputs (see [`this_command_line`]).
    pub command: String,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        Self {
            app: None,
            base: PathBuf::from(DEFAULT_BASE),
            out: PathBuf::from(DEFAULT_OUT),
            starts: DEFAULT_STARTS,
            requests: DEFAULT_REQUESTS,
            app_args: Vec::new(),
            command: "nimbusguard calibrate".into(),
        }
    }
}

/// This process's command line as a shell would take it (`nimbusguard` and its arguments,
/// quoted where needed), for the outputs' record of how they were made.
pub fn this_command_line() -> String {
    let mut parts = vec!["nimbusguard".to_string()];
    parts.extend(std::env::args().skip(1).map(|a| shell_quote(&a)));
    parts.join(" ")
}

fn shell_quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%".contains(c));
    if plain {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// The machine the figures were measured on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// Host name (`/proc/sys/kernel/hostname`; `unknown` if unreadable).
    pub hostname: String,
    /// Cores this process may use (`std::thread::available_parallelism`).
    pub cores: usize,
    /// CPU model (`model name` of `/proc/cpuinfo`; empty if unknown).
    pub cpu_model: String,
}

impl Machine {
    /// This machine.
    pub fn this() -> Self {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default();
        Self {
            hostname,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
        }
    }
}

/// One timed start of the app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartFigures {
    /// Process id of the started app (gone once calibration returns).
    pub pid: u32,
    /// Spawn to the listening line on stdout, seconds.
    pub startup_s: f64,
    /// Listening line to the first 200 answer of `GET /ready`, seconds (polled every
    /// [`READY_POLL`], so up to that much late).
    pub readiness_s: f64,
    /// SIGTERM to exit, seconds (polled every 5 ms); not written to the scenario.
    pub stop_s: f64,
}

/// Mean, sample standard deviation, 95% CI of the mean, min and max of one quantity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Mean and the rest ([`Summary`]: `mean`, `std` (n - 1), `ci95_low`, `ci95_high`, `n`).
    #[serde(flatten)]
    pub summary: Summary,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Stats {
    /// Summarises `xs` (non-empty, no NaN).
    pub fn of(xs: &[f64]) -> Self {
        Self {
            summary: Summary::from_samples(xs),
            min: xs.iter().copied().fold(f64::INFINITY, f64::min),
            max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// The CPU cost of `/work` requests on one ready app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuFigures {
    /// Requests measured (sequential, one at a time).
    pub requests: usize,
    /// Length of the idle window, seconds.
    pub idle_window_s: f64,
    /// CPU the idle app used, millicores (CPU milliseconds per second); `/metrics` scrapes
    /// included. Resolution: the kernel's CPU accounting tick (10 ms per window).
    pub idle_cpu_millicores: f64,
    /// Wall time of the measured requests (first send to last answer), seconds.
    pub window_s: f64,
    /// Process CPU (user + system) used over that window, seconds.
    pub process_cpu_s: f64,
    /// `(process_cpu_s - idle CPU over window_s) / requests`, milliseconds: what the app burns
    /// per request plus its HTTP overhead.
    pub cpu_per_request_ms: f64,
    /// Client-side latency of each request (send to end of body), milliseconds.
    pub latency_ms: Stats,
    /// Coefficient of variation of the latency (std / mean).
    pub latency_cv: f64,
    /// Median latency, milliseconds (nearest rank).
    pub latency_p50_ms: f64,
    /// 95th percentile of the latency, milliseconds (nearest rank).
    pub latency_p95_ms: f64,
    /// Mean of the `cost_ms` the app reports it burned (its drawn cost), milliseconds.
    pub app_reported_cost_ms_mean: f64,
}

/// The values written to the scenario (rounded: seconds to 0.1 ms, CPU to 1 µs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Written {
    /// `pod.startup_delay_mean_s`, seconds.
    pub startup_delay_mean_s: f64,
    /// `pod.startup_delay_std_s`, seconds.
    pub startup_delay_std_s: f64,
    /// `pod.readiness_delay_s`, seconds.
    pub readiness_delay_s: f64,
    /// `service.cpu_per_request_ms`, milliseconds of CPU on one core.
    pub cpu_per_request_ms: f64,
    /// `service.cost_distribution`.
    pub cost_distribution: CostDistribution,
}

/// Everything one calibration measured and wrote: the content of `calibration.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// When the calibration finished, UTC, ISO 8601 (`2025-01-31T12:00:00Z`).
    pub created_utc: String,
    /// The machine measured on.
    pub machine: Machine,
    /// The command line (see [`this_command_line`]).
    pub command: String,
    /// The `workload-app` binary.
    pub app: PathBuf,
    /// Arguments given to every app after `--listen 127.0.0.1:0`.
    pub app_args: Vec<String>,
    /// The base config.
    pub base: PathBuf,
    /// The scenario written.
    pub scenario: PathBuf,
    /// Experiment name of the scenario (`<base>-calibrated`).
    pub experiment: String,
    /// Every timed start, in order.
    pub starts: Vec<StartFigures>,
    /// Start-up delay over the starts, seconds.
    pub startup_s: Stats,
    /// Readiness delay over the starts, seconds.
    pub readiness_s: Stats,
    /// Stop time over the starts, seconds (informational).
    pub stop_s: Stats,
    /// The CPU cost figures.
    pub cpu: CpuFigures,
    /// The cost-distribution rule applied to `cpu.latency_cv`.
    pub cost_distribution_rule: String,
    /// The values written to the scenario.
    pub written: Written,
}

impl Calibration {
    /// A short Markdown table of the figures and what they set, for the terminal.
    pub fn table(&self) -> String {
        let w = &self.written;
        let c = &self.cpu;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Calibration of {} ({}) on {} ({} cores), {}\n",
            self.app.display(),
            self.app_args.join(" "),
            self.machine.hostname,
            self.machine.cores,
            self.created_utc
        );
        let _ = writeln!(s, "| Measured | Value | Written |");
        let _ = writeln!(s, "|---|---|---|");
        let _ = writeln!(
            s,
            "| Start-up (spawn -> listening), s, {} starts | {:.4} ± {:.4} (min {:.4}, max {:.4}) | pod.startup_delay_mean_s = {}, pod.startup_delay_std_s = {} |",
            self.starts.len(),
            self.startup_s.summary.mean,
            self.startup_s.summary.std,
            self.startup_s.min,
            self.startup_s.max,
            w.startup_delay_mean_s,
            w.startup_delay_std_s
        );
        let _ = writeln!(
            s,
            "| Readiness (listening -> /ready 200), s | {:.4} ± {:.4} (min {:.4}, max {:.4}) | pod.readiness_delay_s = {} |",
            self.readiness_s.summary.mean,
            self.readiness_s.summary.std,
            self.readiness_s.min,
            self.readiness_s.max,
            w.readiness_delay_s
        );
        let _ = writeln!(
            s,
            "| CPU per request, ms ({} requests, {:.3} s CPU in {:.3} s, idle {:.1} millicores) | {:.3} | service.cpu_per_request_ms = {} |",
            c.requests, c.process_cpu_s, c.window_s, c.idle_cpu_millicores, c.cpu_per_request_ms,
            w.cpu_per_request_ms
        );
        let _ = writeln!(
            s,
            "| Latency, ms (p50 {:.2}, p95 {:.2}) | {:.2} ± {:.2}, CV {:.3} | service.cost_distribution = {} |",
            c.latency_p50_ms,
            c.latency_p95_ms,
            c.latency_ms.summary.mean,
            c.latency_ms.summary.std,
            c.latency_cv,
            distribution_name(w.cost_distribution)
        );
        let _ = writeln!(
            s,
            "| Stop (SIGTERM -> exit), s | {:.4} ± {:.4} | (not written) |",
            self.stop_s.summary.mean, self.stop_s.summary.std
        );
        s
    }
}

/// The kebab-case name of `d` (as in configs and `--cost-distribution`).
pub fn distribution_name(d: CostDistribution) -> &'static str {
    match d {
        CostDistribution::Exponential => "exponential",
        CostDistribution::Deterministic => "deterministic",
    }
}

/// The cost distribution for a latency coefficient of variation `cv` (rule:
/// [`DETERMINISTIC_MAX_CV`]).
pub fn choose_distribution(cv: f64) -> CostDistribution {
    if cv < DETERMINISTIC_MAX_CV {
        CostDistribution::Deterministic
    } else {
        CostDistribution::Exponential
    }
}

/// Runs the calibration of `opts`: checks every input, times `opts.starts` starts, measures
/// the CPU cost on the last started app, writes the scenario and `calibration.json`, and
/// returns what was measured and written.
///
/// # Errors
/// A bad flag (named: `--starts`, `--requests`, `--app`, `--base`, `--app-arg`, `--out`), an
/// app that fails to start, listen, become ready or serve (with its exit status and stderr
/// tail), a scenario that does not load, or I/O errors writing the outputs.
pub fn execute(opts: &CalibrateOptions) -> Result<Calibration> {
    if opts.starts < MIN_STARTS {
        bail!(
            "--starts: expected at least {MIN_STARTS} process starts (a standard deviation needs two), got {}",
            opts.starts
        );
    }
    if opts.requests < MIN_REQUESTS {
        bail!(
            "--requests: expected at least {MIN_REQUESTS} requests, got {}",
            opts.requests
        );
    }
    let app_args: Vec<String> = if opts.app_args.is_empty() {
        DEFAULT_APP_ARGS.iter().map(|s| s.to_string()).collect()
    } else {
        opts.app_args.clone()
    };
    if let Some(a) = app_args
        .iter()
        .find(|a| *a == "--listen" || a.starts_with("--listen="))
    {
        bail!("--app-arg: `{a}` is not allowed; calibrate passes --listen 127.0.0.1:0 itself");
    }
    let app = resolve_app(opts.app.as_deref())?;
    let base = locate_config(&opts.base);
    let base_cfg = ExperimentConfig::load(&base, &[])
        .with_context(|| format!("--base {}", opts.base.display()))?;
    crate::runner::traffic(&base_cfg, &base)
        .with_context(|| format!("--base {}: the workload does not build", base.display()))?;
    let base_text = std::fs::read_to_string(&base)
        .with_context(|| format!("--base: cannot read {}", base.display()))?;
    let base_doc: toml::Value = toml::from_str(&base_text)
        .with_context(|| format!("--base: invalid TOML in {}", base.display()))?;
    if opts.out.is_dir() {
        bail!(
            "--out: {} is a folder; give the scenario file (e.g. {})",
            opts.out.display(),
            Path::new(&opts.out).join("scenario.toml").display()
        );
    }
    if opts.out.file_name().is_none() {
        bail!("--out: {} names no file", opts.out.display());
    }

    let client = reqwest::blocking::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .context("cannot build the HTTP client")?;

    // Starts: all but the last are stopped at once; the last one serves the CPU measurement.
    let mut starts = Vec::with_capacity(opts.starts);
    let mut last = None;
    for i in 0..opts.starts {
        let mut p = AppProcess::spawn(&app, &app_args)?;
        let startup = p.wait_listening(START_TIMEOUT)?;
        let readiness = p.wait_ready(&client, READY_TIMEOUT)?;
        let fig = StartFigures {
            pid: p.pid,
            startup_s: startup.as_secs_f64(),
            readiness_s: readiness.as_secs_f64(),
            stop_s: f64::NAN,
        };
        tracing::info!(start = i, ?fig, "timed a start");
        starts.push(fig);
        if i + 1 == opts.starts {
            last = Some(p);
        } else {
            starts[i].stop_s = p.stop()?.as_secs_f64();
        }
    }
    let mut p = last.ok_or_else(|| anyhow!("no start"))?;
    let cpu = measure_cpu(&p, &client, opts.requests)?;
    if let Some(s) = starts.last_mut() {
        s.stop_s = p.stop()?.as_secs_f64();
    }
    drop(p);

    let col = |f: fn(&StartFigures) -> f64| Stats::of(&starts.iter().map(f).collect::<Vec<_>>());
    let (startup_s, readiness_s, stop_s) = (
        col(|s| s.startup_s),
        col(|s| s.readiness_s),
        col(|s| s.stop_s),
    );
    if cpu.cpu_per_request_ms.is_nan() || cpu.cpu_per_request_ms <= 0.0 {
        bail!(
            "measured CPU per request is {:.4} ms (not positive: {:.3} s of process CPU over {} \
             requests); the simulator needs a positive service.cpu_per_request_ms: give the app \
             a CPU cost (--app-arg --cpu-per-request-ms --app-arg 20) or more --requests",
            cpu.cpu_per_request_ms,
            cpu.process_cpu_s,
            cpu.requests
        );
    }
    let written = Written {
        startup_delay_mean_s: round_to(startup_s.summary.mean, 4),
        startup_delay_std_s: round_to(startup_s.summary.std, 4),
        readiness_delay_s: round_to(readiness_s.summary.mean, 4),
        cpu_per_request_ms: round_to(cpu.cpu_per_request_ms, 3),
        cost_distribution: choose_distribution(cpu.latency_cv),
    };
    let experiment = format!("{}-calibrated", base_cfg.experiment);
    let machine = Machine::this();
    let created_utc = utc_now();
    let calibration = Calibration {
        schema: SCHEMA.into(),
        created_utc,
        machine,
        command: opts.command.clone(),
        app,
        app_args,
        base: base.clone(),
        scenario: opts.out.clone(),
        experiment,
        starts,
        startup_s,
        readiness_s,
        stop_s,
        cpu,
        cost_distribution_rule: format!(
            "latency CV < {DETERMINISTIC_MAX_CV}: deterministic, else exponential"
        ),
        written,
    };
    write_outputs(&calibration, base_doc, &base_cfg, &base, &opts.out)?;
    Ok(calibration)
}

/// `--app` as given, or the default (current folder, else the repository root); an error
/// naming `--app` when it does not exist.
fn resolve_app(app: Option<&Path>) -> Result<PathBuf> {
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

/// `x` rounded to `digits` decimals.
fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A running `workload-app`, stopped (SIGTERM, SIGKILL after [`STOP_GRACE`]) and reaped when
/// dropped.
struct AppProcess {
    child: Option<Child>,
    pid: u32,
    spawned: Instant,
    listening: Option<(Instant, SocketAddr)>,
    lines: mpsc::Receiver<(Instant, SocketAddr)>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    app: PathBuf,
}

impl AppProcess {
    /// Spawns `app --listen 127.0.0.1:0 ARGS...` with stdout and stderr read by threads.
    fn spawn(app: &Path, args: &[String]) -> Result<Self> {
        let spawned = Instant::now();
        let mut child = Command::new(app)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
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
                        if let Some(addr) = parse_listening(&line) {
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
    fn wait_listening(&mut self, timeout: Duration) -> Result<Duration> {
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
    fn wait_ready(
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
    fn stop(&mut self) -> Result<Duration> {
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

/// The address of a `{"event":"listening","addr":"IP:PORT"}` line.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("event")?.as_str()? != "listening" {
        return None;
    }
    v.get("addr")?.as_str()?.parse().ok()
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
fn measure_cpu(
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

/// The scenario's text: `base_doc` with the measured values, the experiment renamed, a
/// relative trace made absolute where it would not resolve from `out`'s folder, and a header
/// naming the machine, date and command.
///
/// # Errors
/// `base_doc` is not a table, or a value cannot be rendered.
pub fn scenario_text(
    c: &Calibration,
    mut base_doc: toml::Value,
    base_cfg: &ExperimentConfig,
    base: &Path,
    out: &Path,
) -> Result<String> {
    let root = base_doc
        .as_table_mut()
        .ok_or_else(|| anyhow!("--base: not a TOML table"))?;
    root.insert(
        "experiment".into(),
        toml::Value::String(c.experiment.clone()),
    );
    let w = &c.written;
    let section = |root: &mut toml::Table, name: &str| -> Result<toml::Table> {
        match root.remove(name) {
            None => Ok(toml::Table::new()),
            Some(toml::Value::Table(t)) => Ok(t),
            Some(_) => bail!("--base: `{name}` is not a table"),
        }
    };
    let mut pod = section(root, "pod")?;
    pod.insert("startup_delay_mean_s".into(), w.startup_delay_mean_s.into());
    pod.insert("startup_delay_std_s".into(), w.startup_delay_std_s.into());
    pod.insert("readiness_delay_s".into(), w.readiness_delay_s.into());
    root.insert("pod".into(), toml::Value::Table(pod));
    let mut service = section(root, "service")?;
    service.insert("cpu_per_request_ms".into(), w.cpu_per_request_ms.into());
    service.insert(
        "cost_distribution".into(),
        distribution_name(w.cost_distribution).into(),
    );
    root.insert("service".into(), toml::Value::Table(service));
    if let Some(t) = base_cfg.workload.trace.as_ref().filter(|t| t.is_relative()) {
        let from_base = base_dir(base_cfg, base).join(t).canonicalize();
        let from_out = base_dir(base_cfg, out).join(t).canonicalize();
        match (from_base, from_out) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), _) => {
                let s = a
                    .to_str()
                    .ok_or_else(|| anyhow!("the trace path {} is not UTF-8", a.display()))?;
                if let Some(toml::Value::Table(wl)) = root.get_mut("workload") {
                    wl.insert("trace".into(), s.into());
                }
            }
            (Err(_), _) => {}
        }
    }
    let body = toml::to_string_pretty(&base_doc).context("cannot render the scenario")?;
    let m = &c.machine;
    let mut head = String::new();
    let _ = writeln!(
        head,
        "# Calibrated scenario, written by `nimbusguard calibrate` on {} ({} cores{}), {}.",
        m.hostname,
        m.cores,
        if m.cpu_model.is_empty() {
            String::new()
        } else {
            format!(", {}", m.cpu_model)
        },
        c.created_utc
    );
    let _ = writeln!(head, "# Command: {}", c.command);
    let _ = writeln!(
        head,
        "# App: {} --listen 127.0.0.1:0 {}",
        c.app.display(),
        c.app_args.join(" ")
    );
    let _ = writeln!(
        head,
        "# Base: {} (its comments are not copied). Measured over {} starts and {} requests:",
        c.base.display(),
        c.starts.len(),
        c.cpu.requests
    );
    let _ = writeln!(
        head,
        "#   start-up {:.4} s (std {:.4}), readiness {:.4} s, CPU {:.3} ms per request, latency CV {:.3} -> {}.",
        c.startup_s.summary.mean,
        c.startup_s.summary.std,
        c.readiness_s.summary.mean,
        c.cpu.cpu_per_request_ms,
        c.cpu.latency_cv,
        distribution_name(w.cost_distribution)
    );
    let _ = writeln!(
        head,
        "# Set here: pod.startup_delay_mean_s, pod.startup_delay_std_s, pod.readiness_delay_s,"
    );
    let _ = writeln!(
        head,
        "# service.cpu_per_request_ms, service.cost_distribution. Raw figures: calibration.json.\n"
    );
    Ok(head + &body)
}

/// Writes the scenario (checked to load first) and `calibration.json` beside it.
fn write_outputs(
    c: &Calibration,
    base_doc: toml::Value,
    base_cfg: &ExperimentConfig,
    base: &Path,
    out: &Path,
) -> Result<()> {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out: cannot create {}", dir.display()))?;
    let text = scenario_text(c, base_doc, base_cfg, base, out)?;
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out: {} names no file", out.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    let checked = check_scenario(&tmp, &c.written);
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context("the calibrated scenario does not load (nothing written)"));
    }
    std::fs::rename(&tmp, out)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
    let json_path = dir.join("calibration.json");
    let json = serde_json::to_string_pretty(c)? + "\n";
    std::fs::write(&json_path, json)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    Ok(())
}

/// Loads `path` as an experiment config, builds its traffic and checks it holds `w`.
fn check_scenario(path: &Path, w: &Written) -> Result<()> {
    let cfg = ExperimentConfig::load(path, &[])?;
    crate::runner::traffic(&cfg, path)?;
    let got = Written {
        startup_delay_mean_s: cfg.pod.startup_delay_mean_s,
        startup_delay_std_s: cfg.pod.startup_delay_std_s,
        readiness_delay_s: cfg.pod.readiness_delay_s,
        cpu_per_request_ms: cfg.service.cpu_per_request_ms,
        cost_distribution: cfg.service.cost_distribution,
    };
    if &got != w {
        bail!("it holds {got:?}, not the measured {w:?}");
    }
    Ok(())
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_string(secs)
}

/// `secs` after the Unix epoch, UTC, as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
pub fn utc_string(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc_string(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_string(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(utc_string(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(utc_string(1_735_689_599), "2024-12-31T23:59:59Z");
    }

    #[test]
    fn parses_the_listening_line_and_the_cpu_counter() {
        assert_eq!(
            parse_listening(r#"{"event":"listening","addr":"127.0.0.1:4137"}"#),
            Some("127.0.0.1:4137".parse().unwrap())
        );
        assert_eq!(
            parse_listening(r#"{"event":"other","addr":"127.0.0.1:1"}"#),
            None
        );
        assert_eq!(parse_listening("listening"), None);
        let text = "# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total 1.25\n\
                    process_resident_memory_bytes 100\n# EOF\n";
        assert_eq!(parse_process_cpu(text), Some(1.25));
        assert_eq!(parse_process_cpu("x 1\n"), None);
    }

    #[test]
    fn distribution_rule() {
        assert_eq!(choose_distribution(0.02), CostDistribution::Deterministic);
        assert_eq!(choose_distribution(0.49), CostDistribution::Deterministic);
        assert_eq!(choose_distribution(0.5), CostDistribution::Exponential);
        assert_eq!(choose_distribution(1.1), CostDistribution::Exponential);
        assert_eq!(choose_distribution(f64::NAN), CostDistribution::Exponential);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--app-arg"), "--app-arg");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
