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
//! | (not measured: how the live system serves) | `service.mode` = [`SERVICE_MODE`] (`request`) |
//!
//! `service.mode` is always `request`: the live replicas are FIFO servers behind a round-robin
//! front, which the simulator's `request` mode models request by request (exact latency). The
//! `fluid` mode's sojourn at a pod is exponential (M/M/1-like, see `sim::service`), which with a
//! deterministic cost overstates the tail: on the NASA segment of `nimbusguard live`, with the
//! HPA, the simulated p95 was 89 ms in `fluid` mode against 49 ms live.
//!
//! Every other value of the base config (`--base`) is kept; the experiment is renamed
//! `<base>-calibrated`. The scenario is checked to load with [`ExperimentConfig::load`] (and its
//! traffic to build) before it replaces the output file; `calibration.json` (schema
//! [`SCHEMA`]) beside it holds the raw figures. Every child process is stopped (SIGTERM, SIGKILL
//! after [`STOP_GRACE`]) and reaped, also when a measurement fails.
//!
//! Submodules:
//! - `app_process`: the `workload-app` binary and its started processes (spawn, listening line,
//!   readiness, stop and reap, also on drop), the `/metrics` and `/work` calls and the CPU
//!   measurement; [`parse_process_cpu`] (the listening line is read with
//!   [`adapters::process::listening_addr`]).
//! - `scenario`: the scenario's text ([`scenario_text`]), checked to load before it and
//!   `calibration.json` are written.
//!
//! This file holds the flags and constants, the figures ([`Calibration`] and its parts, the
//! distribution rule) and [`execute`], which runs the steps in order.

mod app_process;
mod scenario;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use sim::config::{CostDistribution, ServiceMode};

pub use app_process::parse_process_cpu;
pub use scenario::scenario_text;

use crate::config::{locate_config, ExperimentConfig};
use crate::stats::Summary;
use app_process::{measure_cpu, resolve_app, AppProcess};
use scenario::write_outputs;

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
/// `service.mode` of every calibrated scenario: the live replicas are FIFO servers behind a
/// round-robin front, which `request` mode models exactly; `fluid` mode's exponential sojourn
/// overstates the tail of a deterministic cost (module docs).
pub const SERVICE_MODE: ServiceMode = ServiceMode::Request;

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
    /// `service.mode`: always [`SERVICE_MODE`].
    pub service_mode: ServiceMode,
}

/// Everything one calibration measured and wrote: the content of `calibration.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// When the calibration finished, UTC, RFC 3339 to the second (`2025-01-31T12:00:00Z`).
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
            "| Serving (FIFO replicas behind round-robin) | not measured | service.mode = {} |",
            mode_name(w.service_mode)
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

/// The kebab-case name of `m` (as in configs).
pub fn mode_name(m: ServiceMode) -> &'static str {
    match m {
        ServiceMode::Fluid => "fluid",
        ServiceMode::Request => "request",
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
        service_mode: SERVICE_MODE,
    };
    let experiment = format!("{}-calibrated", base_cfg.experiment);
    let machine = Machine::this();
    let created_utc = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
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

/// `x` rounded to `digits` decimals.
fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;

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
