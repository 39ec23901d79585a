//! [`AppConfig`]: every flag of `workload-app`, also buildable in-process (tests, `ProcessScaler`).

use std::net::SocketAddr;
use std::time::Duration;

use sim::config::CostDistribution;

use super::kafka::{self, OffsetReset};
use crate::{Error, Result};

/// Configuration of one workload-app process (one pod). The fields are the CLI flags of
/// `workload-app` (`--listen`, `--pod-name`, ...; clap derives them from this struct, so flags,
/// defaults and docs cannot drift) and can also be read from TOML (`deny_unknown_fields`).
/// [`AppConfig::validate`] checks the values; the server refuses to start with invalid ones.
#[derive(Debug, Clone, PartialEq, clap::Args, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// Address to listen on (`IP:PORT`; port 0 picks a free port, printed in the
    /// `{"event":"listening","addr":..}` line).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Pod name, exported as `workload_info{pod="..."} 1` and echoed in `/work` answers.
    #[arg(long, default_value = "workload-0")]
    pub pod_name: String,
    /// Seconds after start before `/ready` answers 200 (503 before). >= 0.
    #[arg(long, default_value_t = 5.0)]
    pub ready_delay_s: f64,
    /// Mean CPU time one `/work` request costs on one core, milliseconds (the simulator's
    /// `service.cpu_per_request_ms`). >= 0; 0 makes `/work` free.
    #[arg(long, default_value_t = 20.0)]
    pub cpu_per_request_ms: f64,
    /// Distribution of the per-request CPU cost: `exponential` (mean `cpu_per_request_ms`) or
    /// `deterministic` (exactly `cpu_per_request_ms`).
    #[arg(long, default_value = "exponential", value_parser = parse_cost_distribution)]
    pub cost_distribution: CostDistribution,
    /// Seed of the ChaCha8 stream the per-request costs are drawn from.
    #[arg(long, default_value_t = 0)]
    pub cost_seed: u64,
    /// `/work` requests served at once (the pod's CPU limit in cores); the others wait FIFO.
    /// >= 1.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// A `/work` request still waiting for a worker after this many seconds is answered 503
    /// and counted dropped (the simulator's `service.timeout_s`). > 0.
    #[arg(long, default_value_t = 5.0)]
    pub request_timeout_s: f64,
    /// A `/work` request arriving while this many already wait is answered 503 at once
    /// (dropped).
    #[arg(long, default_value_t = 1000)]
    pub max_queue: usize,
    /// Largest `intensity` of a CPU job, percent of one core. In (0, 100].
    #[arg(long, default_value_t = 100.0)]
    pub max_cpu_intensity: f64,
    /// Largest `duration` of a CPU or memory job, seconds. > 0.
    #[arg(long, default_value_t = 600.0)]
    pub max_duration_s: f64,
    /// Memory all memory jobs together may hold, MiB; also the largest single `size_mb`.
    #[arg(long, default_value_t = 512)]
    pub max_memory_mb: u64,
    /// Concurrent CPU plus memory jobs; more are answered 429.
    #[arg(long, default_value_t = 16)]
    pub max_jobs: usize,
    /// Largest request body, bytes; larger bodies are answered 413.
    #[arg(long, default_value_t = 16384)]
    pub max_body_bytes: usize,
    /// Where `/events/trigger` events are forwarded (POST, same JSON body, 2 s timeout); none
    /// = not forwarded.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_trigger_url: Option<String>,
    /// After SIGTERM or Ctrl-C, in-flight requests get this many seconds to finish before the
    /// process exits anyway. >= 0.
    #[arg(long, default_value_t = 10.0)]
    pub shutdown_grace_s: f64,
    /// Kafka brokers to consume trigger events from, `HOST:PORT[,HOST:PORT..]`; none = no
    /// consumer. Each message of `--kafka-topic` is handled like a `POST /events/trigger` body
    /// (see [`super::kafka`]).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_brokers: Option<String>,
    /// Topic of the trigger events (with `--kafka-brokers`).
    #[arg(long, default_value = kafka::DEFAULT_TOPIC)]
    pub kafka_topic: String,
    /// Consumer group (with `--kafka-brokers`); replicas sharing it split the topic's
    /// partitions, so each event is handled by one replica.
    #[arg(long, default_value = kafka::DEFAULT_GROUP)]
    pub kafka_group: String,
    /// Consumer group session timeout, milliseconds, in [1000, 3600000] (the broker's own
    /// bounds may be narrower; Kafka's default minimum is 6000). Heartbeats every twelfth of it.
    #[arg(long, default_value_t = 6000)]
    pub kafka_session_timeout_ms: u32,
    /// Where a group without committed offsets starts: `latest` (only new events) or
    /// `earliest` (everything the topic holds).
    #[arg(long, value_enum, default_value_t = OffsetReset::Latest)]
    #[serde(default)]
    pub kafka_offset_reset: OffsetReset,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            pod_name: "workload-0".into(),
            ready_delay_s: 5.0,
            cpu_per_request_ms: 20.0,
            cost_distribution: CostDistribution::Exponential,
            cost_seed: 0,
            workers: 1,
            request_timeout_s: 5.0,
            max_queue: 1000,
            max_cpu_intensity: 100.0,
            max_duration_s: 600.0,
            max_memory_mb: 512,
            max_jobs: 16,
            max_body_bytes: 16384,
            operator_trigger_url: None,
            shutdown_grace_s: 10.0,
            kafka_brokers: None,
            kafka_topic: kafka::DEFAULT_TOPIC.into(),
            kafka_group: kafka::DEFAULT_GROUP.into(),
            kafka_session_timeout_ms: 6000,
            kafka_offset_reset: OffsetReset::Latest,
        }
    }
}

/// Parses `exponential` or `deterministic` (the simulator's kebab-case names).
///
/// # Errors
///
/// A message listing the accepted values.
pub fn parse_cost_distribution(s: &str) -> std::result::Result<CostDistribution, String> {
    match s {
        "exponential" => Ok(CostDistribution::Exponential),
        "deterministic" => Ok(CostDistribution::Deterministic),
        other => Err(format!(
            "unknown cost distribution `{other}`; expected `exponential` or `deterministic`"
        )),
    }
}

/// `x` as a duration, for values already validated as finite and >= 0.
pub(crate) fn secs(x: f64) -> Duration {
    Duration::try_from_secs_f64(x).unwrap_or(Duration::ZERO)
}

fn check(field: &str, ok: bool, expected: &str, got: impl std::fmt::Display) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::input(
            field,
            format!("expected {expected}, got {got}"),
        ))
    }
}

impl AppConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the flag (`--workers`, ...) for a NaN, infinite,
    /// negative or out-of-range value, an `--operator-trigger-url` that is not an http(s)
    /// URL, or (with `--kafka-brokers`) a bad broker list, topic, group or session timeout.
    pub fn validate(&self) -> Result<()> {
        let nonneg = |x: f64| x.is_finite() && x >= 0.0;
        let pos = |x: f64| x.is_finite() && x > 0.0;
        let c = &self;
        check(
            "--ready-delay-s",
            nonneg(c.ready_delay_s),
            "a finite number >= 0",
            c.ready_delay_s,
        )?;
        check(
            "--cpu-per-request-ms",
            nonneg(c.cpu_per_request_ms) && c.cpu_per_request_ms <= 600_000.0,
            "a number of milliseconds in [0, 600000]",
            c.cpu_per_request_ms,
        )?;
        check(
            "--workers",
            c.workers >= 1 && c.workers <= 4096,
            "1..=4096",
            c.workers,
        )?;
        check(
            "--request-timeout-s",
            pos(c.request_timeout_s),
            "a finite number > 0",
            c.request_timeout_s,
        )?;
        check(
            "--max-cpu-intensity",
            pos(c.max_cpu_intensity) && c.max_cpu_intensity <= 100.0,
            "a percentage in (0, 100]",
            c.max_cpu_intensity,
        )?;
        check(
            "--max-duration-s",
            pos(c.max_duration_s),
            "a finite number > 0",
            c.max_duration_s,
        )?;
        check(
            "--max-memory-mb",
            c.max_memory_mb >= 1,
            ">= 1",
            c.max_memory_mb,
        )?;
        check("--max-jobs", c.max_jobs >= 1, ">= 1", c.max_jobs)?;
        check(
            "--max-body-bytes",
            c.max_body_bytes >= 1,
            ">= 1",
            c.max_body_bytes,
        )?;
        check(
            "--shutdown-grace-s",
            nonneg(c.shutdown_grace_s),
            "a finite number >= 0",
            c.shutdown_grace_s,
        )?;
        if let Some(url) = &c.operator_trigger_url {
            let ok = reqwest::Url::parse(url)
                .map(|u| matches!(u.scheme(), "http" | "https"))
                .unwrap_or(false);
            check(
                "--operator-trigger-url",
                ok,
                "an http:// or https:// URL",
                url,
            )?;
        }
        kafka::validate(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        app: AppConfig,
    }

    #[test]
    fn clap_defaults_equal_default() {
        let cli = Cli::parse_from(["workload-app"]);
        assert_eq!(cli.app, AppConfig::default());
        assert!(cli.app.validate().is_ok());
    }

    #[test]
    fn flags_parse_and_bad_values_are_named() {
        let cli = Cli::parse_from([
            "workload-app",
            "--workers",
            "3",
            "--cost-distribution",
            "deterministic",
            "--listen",
            "127.0.0.1:0",
        ]);
        assert_eq!(cli.app.workers, 3);
        assert_eq!(cli.app.cost_distribution, CostDistribution::Deterministic);
        assert_eq!(cli.app.listen.port(), 0);
        assert!(Cli::try_parse_from(["w", "--cost-distribution", "gamma"]).is_err());
        let bad = AppConfig {
            workers: 0,
            ..AppConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("--workers"), "{err}");
        let bad = AppConfig {
            operator_trigger_url: Some("ftp://x".into()),
            ..AppConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("--operator-trigger-url"), "{err}");
    }

    #[test]
    fn toml_rejects_unknown_fields() {
        let c: AppConfig = toml::from_str("workers = 2\npod_name = \"p\"").unwrap();
        assert_eq!((c.workers, c.pod_name.as_str()), (2, "p"));
        assert!(toml::from_str::<AppConfig>("worker = 2").is_err());
    }
}
