//! The app's Kafka trigger consumer (`--kafka-brokers`): each message of `--kafka-topic` is one
//! trigger event, exactly the JSON body of `POST /events/trigger`
//! (`{"event_type","service","value"}`), parsed and validated by the same
//! [`super::events::parse_trigger`], counted in the same metrics (with
//! `source="kafka"`) and forwarded to `--operator-trigger-url` like an HTTP event.
//!
//! - A malformed message (empty, over `--max-body-bytes`, bad JSON, unknown `event_type`,
//!   non-finite `value`, unknown field) is counted in `workload_kafka_malformed_events_total`,
//!   logged (warn, naming the field) and skipped; it never stops the consumer.
//! - Consumer errors (broker gone, unknown topic) are counted in
//!   `workload_kafka_consumer_errors_total` and logged; librdkafka reconnects by itself.
//! - Offsets are stored after each message is handled (valid or skipped) and committed by
//!   librdkafka every 5 s and when the app stops (at-least-once).
//! - The replicas of one service share `--kafka-group`, so each event is handled by one replica
//!   (Kafka assigns each partition to one member of a group).
//! - A group without committed offsets starts at `--kafka-offset-reset` (`latest` by default:
//!   events produced while no replica ran are not replayed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::ClientContext;

use super::events::{accept, parse_trigger};
use super::metrics::TriggerSource;
use super::{AppConfig, AppState};
use crate::{Error, Result};

/// Default `--kafka-topic`.
pub const DEFAULT_TOPIC: &str = "nimbusguard-triggers";
/// Default `--kafka-group`.
pub const DEFAULT_GROUP: &str = "workload-app";

/// After a consumer error is logged as a warning, the next ones within this time are logged at
/// debug level (a broker that is away yields several per second).
const QUIET: Duration = Duration::from_secs(10);

/// Where a consumer group without committed offsets starts reading (`auto.offset.reset`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OffsetReset {
    /// `latest`: only events produced from now on.
    #[default]
    Latest,
    /// `earliest`: every event the topic still holds.
    Earliest,
}

impl OffsetReset {
    /// librdkafka's name (`latest`, `earliest`).
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Latest => "latest",
            OffsetReset::Earliest => "earliest",
        }
    }
}

/// Splits and checks a broker list `HOST:PORT[,HOST:PORT..]` (spaces around entries ignored).
///
/// # Errors
///
/// [`Error::InvalidInput`] naming `flag` for an empty list, an entry without a host, or a port
/// that is not a number in 1..=65535.
pub fn parse_brokers(flag: &str, s: &str) -> Result<Vec<String>> {
    let bad = |msg: String| Error::input(flag, format!("`{s}`: {msg}; expected HOST:PORT[,..]"));
    let mut out = Vec::new();
    for entry in s.split(',').map(str::trim) {
        let Some((host, port)) = entry.rsplit_once(':') else {
            return Err(bad(format!("`{entry}` has no `:PORT`")));
        };
        if host.is_empty() {
            return Err(bad(format!("`{entry}` has no host")));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => out.push(entry.to_string()),
            _ => return Err(bad(format!("port `{port}` is not in 1..=65535"))),
        }
    }
    Ok(out)
}

/// Checks a topic name against Kafka's rule: 1 to 249 characters of `[A-Za-z0-9._-]`, not `.`
/// or `..`.
///
/// # Errors
///
/// [`Error::InvalidInput`] naming `flag`.
pub fn check_topic(flag: &str, s: &str) -> Result<()> {
    let ok_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if s.is_empty() || s.len() > 249 || !ok_chars || s == "." || s == ".." {
        return Err(Error::input(
            flag,
            format!("`{s}`: expected 1 to 249 characters of A-Z a-z 0-9 . _ - (not `.` or `..`)"),
        ));
    }
    Ok(())
}

/// Checks the consumer options of `config` (`--kafka-*`), when `--kafka-brokers` is set.
///
/// # Errors
///
/// [`Error::InvalidInput`] naming the flag.
pub(super) fn validate(config: &AppConfig) -> Result<()> {
    let Some(brokers) = &config.kafka_brokers else {
        return Ok(());
    };
    parse_brokers("--kafka-brokers", brokers)?;
    check_topic("--kafka-topic", &config.kafka_topic)?;
    if config.kafka_group.trim().is_empty() || config.kafka_group.len() > 255 {
        return Err(Error::input(
            "--kafka-group",
            format!(
                "`{}`: expected a non-blank group id of at most 255 bytes",
                config.kafka_group
            ),
        ));
    }
    let t = config.kafka_session_timeout_ms;
    if !(1_000..=3_600_000).contains(&t) {
        return Err(Error::input(
            "--kafka-session-timeout-ms",
            format!("expected milliseconds in [1000, 3600000], got {t}"),
        ));
    }
    Ok(())
}

/// The consumer's context: partition count on (re)assignment, librdkafka's logs to tracing.
pub(super) struct Ctx {
    assigned: Gauge,
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            // librdkafka logs a refused connection as an error; it retries, so a warning.
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Notice => tracing::info!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", fac, "{message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // The consumer's poll returns the same error, logged (throttled) there.
        tracing::debug!(target: "librdkafka", %error, reason, "Kafka client error (it retries)");
    }
}

impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let n = tpl.count();
                self.assigned.set(i64::try_from(n).unwrap_or(i64::MAX));
                tracing::info!(partitions = n, "Kafka partitions assigned");
            }
            Rebalance::Revoke(_) => {
                self.assigned.set(0);
                tracing::info!("Kafka partitions revoked");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "Kafka rebalance failed"),
        }
    }
}

/// The consumer, subscribed to `--kafka-topic`, if `--kafka-brokers` is set.
///
/// # Errors
///
/// [`Error::Setup`] if librdkafka refuses the configuration or the subscription.
pub(super) fn consumer(state: &AppState) -> Result<Option<StreamConsumer<Ctx>>> {
    let c = &state.config;
    let Some(brokers) = &c.kafka_brokers else {
        return Ok(None);
    };
    let setup = |e: KafkaError| Error::Setup {
        what: "Kafka consumer (--kafka-brokers, --kafka-topic, --kafka-group)",
        source: Box::new(e),
    };
    let session = c.kafka_session_timeout_ms;
    let consumer: StreamConsumer<Ctx> = ClientConfig::new()
        .set("bootstrap.servers", brokers.replace(' ', ""))
        .set("group.id", &c.kafka_group)
        .set("client.id", format!("workload-app-{}", c.pod_name))
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", c.kafka_offset_reset.as_str())
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 12).max(1).to_string())
        // Triggers are rare and urgent: ask the broker to answer a fetch within 100 ms.
        .set("fetch.wait.max.ms", "100")
        .create_with_context(Ctx {
            assigned: state.metrics.kafka_assigned_partitions.clone(),
        })
        .map_err(setup)?;
    consumer.subscribe(&[&c.kafka_topic]).map_err(setup)?;
    tracing::info!(brokers = %brokers, topic = %c.kafka_topic, group = %c.kafka_group,
        "consuming Kafka trigger events");
    Ok(Some(consumer))
}

/// Consumes until the app stops (its stop signal), then leaves the group, committing the
/// stored offsets.
pub(super) async fn run(state: Arc<AppState>, consumer: StreamConsumer<Ctx>) {
    let mut stop = state.stop_tx.subscribe();
    let mut last_warn: Option<Instant> = None;
    loop {
        let received = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            m = consumer.recv() => m,
        };
        match received {
            Ok(msg) => {
                handle(&state, &msg);
                if let Err(e) = consumer.store_offset_from_message(&msg) {
                    tracing::warn!(error = %e, "cannot store the Kafka offset");
                }
            }
            Err(e) => {
                state.metrics.kafka_errors.inc();
                if last_warn.is_none_or(|t| t.elapsed() >= QUIET) {
                    tracing::warn!(error = %e, "Kafka consumer error (librdkafka retries; \
                        more within 10 s are logged at debug level)");
                    last_warn = Some(Instant::now());
                } else {
                    tracing::debug!(error = %e, "Kafka consumer error");
                }
                // Errors come in bursts while a broker is away: do not spin on them.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    // Closing leaves the group and commits; it blocks on the broker, so not on a runtime thread.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
    state.metrics.kafka_assigned_partitions.set(0);
    tracing::info!("Kafka consumer stopped");
}

/// One message: a valid event goes the way of `POST /events/trigger`; anything else is counted
/// malformed and skipped.
fn handle(state: &Arc<AppState>, msg: &BorrowedMessage<'_>) {
    let max = state.config.max_body_bytes;
    let parsed = match msg.payload() {
        None | Some([]) => Err((
            "body".to_string(),
            "empty payload; expected a JSON trigger event {event_type, service, value}".to_string(),
        )),
        Some(p) if p.len() > max => Err((
            "body".to_string(),
            format!("{} bytes, over --max-body-bytes ({max})", p.len()),
        )),
        Some(p) => parse_trigger(p),
    };
    match parsed {
        Ok(event) => {
            accept(state, event, TriggerSource::Kafka);
        }
        Err((field, error)) => {
            state.metrics.kafka_malformed.inc();
            tracing::warn!(
                topic = msg.topic(),
                partition = msg.partition(),
                offset = msg.offset(),
                field,
                error,
                "malformed Kafka trigger event skipped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_lists_and_topics_are_checked() {
        assert_eq!(
            parse_brokers("--kafka-brokers", "127.0.0.1:9092, kafka-0.kafka:19092").unwrap(),
            vec![
                "127.0.0.1:9092".to_string(),
                "kafka-0.kafka:19092".to_string()
            ]
        );
        for bad in ["", "host", ":9092", "h:0", "h:99999", "a:1,,b:2"] {
            let e = parse_brokers("--kafka-brokers", bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("--kafka-brokers"), "{bad}: {e}");
        }
        assert!(check_topic("--kafka-topic", "nimbusguard-triggers.v1_a").is_ok());
        for bad in ["", ".", "..", "a b", "ä", &"x".repeat(250)] {
            let e = check_topic("--kafka-topic", bad).unwrap_err().to_string();
            assert!(e.contains("--kafka-topic"), "{bad}: {e}");
        }
    }
}
