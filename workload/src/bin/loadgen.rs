//! `loadgen`: open-loop HTTP load replaying a workload the simulator accepts (a config file's
//! `[workload]` table, a trace or a pattern). Prints the JSON summary on stdout (and writes it
//! to `--summary`); progress on stderr. Flags and figures: `docs/live.md`, "Load generator".

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use sim::workload::Arrivals;
use workload::loadgen::{self, KafkaSink, RunOptions, Schedule, Trigger, Window, WorkloadSpec};
use workload::Error;

/// Replays a workload (trace or pattern, as the simulator builds it) as HTTP requests, open
/// loop: each request is sent at its scheduled instant whatever the answers.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// TOML file whose `[workload]` table describes the workload (e.g. experiments/configs/*.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replay this `timestamp_s,value` trace (replaces the config's source).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Replay this pattern, an inline TOML table, e.g.
    /// '{ kind = "spike", base_rps = 5, spike_rps = 50, start_s = 10, spike_duration_s = 5, duration_s = 30 }'.
    #[arg(long)]
    pattern: Option<String>,
    /// Override `workload.resample_s` (bin width in seconds before compression; the default 60
    /// gives a pattern shorter than 2 minutes too few bins to split).
    #[arg(long)]
    resample_s: Option<f64>,
    /// Override `workload.peak_rps` (requests/s the trace window's peak is scaled to).
    #[arg(long)]
    peak_rps: Option<f64>,
    /// Override `workload.time_compression` (play the series this many times faster).
    #[arg(long)]
    time_compression: Option<f64>,
    /// Override `workload.start_s` (seconds of trace time).
    #[arg(long)]
    start_s: Option<f64>,
    /// Override `workload.duration_s` (seconds of trace time).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Which window to replay.
    #[arg(long, value_enum, default_value_t = Window::All)]
    window: Window,
    /// Full URL of the request endpoint (repeatable; requests go round-robin).
    #[arg(long = "target")]
    targets: Vec<String>,
    /// `poisson` or `deterministic`; default the workload config's `arrivals`.
    #[arg(long, value_parser = parse_arrivals)]
    arrivals: Option<Arrivals>,
    /// Seed of the arrival stream (and of random patterns).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A request without a complete answer after this many seconds is a timeout error.
    #[arg(long, default_value_t = 10.0)]
    timeout_s: f64,
    /// At most this many outstanding requests; more are skipped (`skipped_in_flight`).
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Send an event at an offset: `AT_S:EVENT_TYPE[:VALUE]` (repeatable; needs --trigger-url
    /// or --kafka-brokers).
    #[arg(long = "trigger")]
    triggers: Vec<String>,
    /// Full URL of the `/events/trigger` endpoint the events are POSTed to.
    #[arg(long)]
    trigger_url: Option<String>,
    /// Produce the events to Kafka instead of POSTing them (`HOST:PORT[,..]`; one message per
    /// event, key = --trigger-service, value = the `/events/trigger` JSON body). Exclusive with
    /// --trigger-url.
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// Kafka topic of the events (with --kafka-brokers).
    #[arg(long, default_value = workload::app::kafka::DEFAULT_TOPIC)]
    kafka_topic: String,
    /// `service` field of the events (and their Kafka key).
    #[arg(long, default_value = "workload")]
    trigger_service: String,
}

fn parse_arrivals(s: &str) -> Result<Arrivals, String> {
    match s {
        "poisson" => Ok(Arrivals::Poisson),
        "deterministic" => Ok(Arrivals::Deterministic),
        other => Err(format!(
            "unknown arrivals `{other}`; expected `poisson` or `deterministic`"
        )),
    }
}

fn main() -> anyhow::Result<()> {
    workload::init_tracing();
    let cli = Cli::parse();
    if cli.targets.is_empty() {
        return Err(Error::input(
            "--target",
            "no target given; expected at least one request URL",
        )
        .into());
    }
    let targets = cli
        .targets
        .iter()
        .map(|t| loadgen::parse_target(t))
        .collect::<Result<Vec<_>, _>>()?;
    if !(cli.timeout_s.is_finite() && cli.timeout_s > 0.0) {
        return Err(Error::input(
            "--timeout-s",
            format!("expected a finite number > 0, got {}", cli.timeout_s),
        )
        .into());
    }
    let triggers = cli
        .triggers
        .iter()
        .map(|t| t.parse::<Trigger>())
        .collect::<Result<Vec<_>, _>>()?;
    let trigger_url = cli
        .trigger_url
        .as_deref()
        .map(loadgen::parse_target)
        .transpose()
        .map_err(|_| Error::input("--trigger-url", "expected an http:// or https:// URL"))?;
    let kafka = cli
        .kafka_brokers
        .as_deref()
        .map(|b| KafkaSink::new(b, Some(&cli.kafka_topic)))
        .transpose()?;
    let spec = WorkloadSpec {
        config: cli.config.clone(),
        trace: cli.trace.clone(),
        pattern: cli.pattern.clone(),
        resample_s: cli.resample_s,
        peak_rps: cli.peak_rps,
        time_compression: cli.time_compression,
        start_s: cli.start_s,
        duration_s: cli.duration_s,
        window: cli.window,
    };
    let cwd = std::env::current_dir().context("while reading the current directory")?;
    let (cfg, series) = spec
        .build(&cwd, cli.seed)
        .context("while building the workload")?;
    let arrivals = cli.arrivals.unwrap_or(cfg.arrivals);
    let schedule = Schedule::new(series, arrivals, cli.seed)?;
    tracing::info!(
        duration_s = schedule.duration_s(),
        expected_requests = schedule.expected_requests(),
        bins = schedule.series().values.len(),
        ?arrivals,
        "replaying"
    );
    let options = RunOptions {
        timeout: Duration::from_secs_f64(cli.timeout_s),
        max_in_flight: cli.max_in_flight,
        triggers,
        trigger_url,
        kafka,
        trigger_service: cli.trigger_service,
        progress: true,
    };
    let summary = loadgen::run_blocking(&schedule, &targets, &options)?;
    let json = serde_json::to_string_pretty(&summary).context("while serializing the summary")?;
    if let Some(path) = &cli.summary {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("while writing the summary to {}", path.display()))?;
    }
    println!("{json}");
    Ok(())
}
