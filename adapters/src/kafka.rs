//! Kafka as a trigger source of the operator: [`KafkaTriggers`] consumes trigger events
//! (`{"event_type","service","value"}`, the JSON body of the workload app's
//! `POST /events/trigger`, produced by `loadgen --kafka-brokers` or any Kafka client) on its own
//! thread and hands each valid one over: as a [`Trigger`] on the operator loop's channel
//! ([`KafkaTriggers::start`]; [`crate::operator::Operator::run`] decides at once), to a
//! callback ([`KafkaTriggers::start_with`], e.g. to map `service` to a resource a kube-rs
//! controller reconciles), or on a tokio channel ([`KafkaTriggers::start_channel`]).
//!
//! - Validation is the workload app's: the same closed set of event types, a string `service`,
//!   a finite number `value`, no other field, at most `max_message_bytes`. The adapters crate
//!   does not depend on `workload`, so [`TriggerEvent`] is its own small serde type; a test in
//!   `experiments` (which depends on both) checks that the two sets of names agree.
//! - A malformed message is counted (`nimbusguard_operator_kafka_malformed_events_total`),
//!   logged (warn, naming the field) and skipped; consumer errors (broker gone) are counted
//!   (`..._kafka_consumer_errors_total`) and logged, and librdkafka reconnects by itself.
//! - Offsets are stored after each message and committed every 5 s and on stop.
//!
//! ```no_run
//! use std::sync::mpsc;
//! use adapters::kafka::{KafkaTriggerConfig, KafkaTriggerMetrics, KafkaTriggers};
//!
//! let config = KafkaTriggerConfig { brokers: "127.0.0.1:9092".into(), ..Default::default() };
//! let metrics = KafkaTriggerMetrics::new();
//! let mut registry = prometheus_client::registry::Registry::default();
//! metrics.register(&mut registry);
//! let (tx, rx) = mpsc::channel();
//! let triggers = KafkaTriggers::start(&config, metrics, tx)?; // consumes until dropped
//! let first = rx.recv()?; // one valid event, as the operator loop receives it
//! println!("{}", first.body);
//! drop(triggers);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::operator::telemetry::Trigger;

mod event;
pub use event::{EventType, MalformedEvent, TriggerEvent};

/// Default topic (the workload app's and the load generator's default too).
pub const DEFAULT_TOPIC: &str = "nimbusguard-triggers";
/// Default consumer group of the operator.
pub const DEFAULT_GROUP: &str = "nimbusguard-operator";

/// Where a group without committed offsets starts reading (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetReset {
    /// `latest`: only events produced from now on (no replay of old triggers).
    #[default]
    Latest,
    /// `earliest`: every event the topic still holds.
    Earliest,
}

/// The `[kafka]` section of the operator config (unknown keys rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaTriggerConfig {
    /// Bootstrap brokers, `HOST:PORT[,HOST:PORT..]`. Required.
    pub brokers: String,
    /// Topic of the trigger events. Default `nimbusguard-triggers`.
    pub topic: String,
    /// Consumer group. Default `nimbusguard-operator`.
    pub group_id: String,
    /// Group session timeout, milliseconds, in [1000, 3600000]; heartbeats every twelfth of it.
    /// Default 6000 (Kafka's minimum by default; a member that died is replaced within it).
    pub session_timeout_ms: u32,
    /// Where a group without committed offsets starts. Default `latest`.
    pub auto_offset_reset: OffsetReset,
    /// Longest the broker may hold a fetch waiting for data, milliseconds, in [1, 10000].
    /// Default 100 (triggers are rare and urgent).
    pub fetch_wait_max_ms: u32,
    /// Largest valid message value, bytes (>= 1). Default 16384 (as the operator's
    /// `POST /trigger`).
    pub max_message_bytes: usize,
}

impl Default for KafkaTriggerConfig {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            topic: DEFAULT_TOPIC.into(),
            group_id: DEFAULT_GROUP.into(),
            session_timeout_ms: 6000,
            auto_offset_reset: OffsetReset::Latest,
            fetch_wait_max_ms: 100,
            max_message_bytes: 16 * 1024,
        }
    }
}

impl KafkaTriggerConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field (`kafka.brokers`, ...) and what was expected.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, expected: &str, got: &dyn std::fmt::Display| {
            Err(Error::Config(format!(
                "kafka.{field}: expected {expected}, got `{got}`"
            )))
        };
        for entry in self.brokers.split(',').map(str::trim) {
            let ok = entry.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !ok {
                return bad("brokers", "HOST:PORT[,HOST:PORT..]", &self.brokers);
            }
        }
        let t = &self.topic;
        let chars = t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if t.is_empty() || t.len() > 249 || !chars || t == "." || t == ".." {
            return bad("topic", "1 to 249 characters of A-Z a-z 0-9 . _ -", t);
        }
        if self.group_id.trim().is_empty() || self.group_id.len() > 255 {
            return bad(
                "group_id",
                "a non-blank id of at most 255 bytes",
                &self.group_id,
            );
        }
        if !(1_000..=3_600_000).contains(&self.session_timeout_ms) {
            return bad(
                "session_timeout_ms",
                "[1000, 3600000]",
                &self.session_timeout_ms,
            );
        }
        if !(1..=10_000).contains(&self.fetch_wait_max_ms) {
            return bad("fetch_wait_max_ms", "[1, 10000]", &self.fetch_wait_max_ms);
        }
        if self.max_message_bytes == 0 {
            return bad("max_message_bytes", ">= 1", &self.max_message_bytes);
        }
        Ok(())
    }
}

/// Label set `{event_type}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// The event's type.
    pub event_type: EventTypeLabel,
}

/// [`EventType`] as a label value (snake_case).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub struct EventTypeLabel(pub EventType);

impl EncodeLabelValue for EventTypeLabel {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> std::fmt::Result {
        std::fmt::Write::write_str(encoder, self.0.as_str())
    }
}

/// The trigger source's counters; [`KafkaTriggerMetrics::register`] adds them to a registry.
/// Cheap to clone (shared counters).
#[derive(Debug, Clone, Default)]
pub struct KafkaTriggerMetrics {
    /// `nimbusguard_operator_kafka_events_total{event_type}`: valid events handed over.
    pub events: Family<EventLabel, Counter>,
    /// `nimbusguard_operator_kafka_malformed_events_total`: messages skipped as malformed.
    pub malformed: Counter,
    /// `nimbusguard_operator_kafka_consumer_errors_total`: errors the consumer reported
    /// (librdkafka retries).
    pub errors: Counter,
}

impl KafkaTriggerMetrics {
    /// Fresh counters (every event type at 0).
    pub fn new() -> Self {
        let m = Self::default();
        for t in EventType::ALL {
            let _ = m.events.get_or_create(&EventLabel {
                event_type: EventTypeLabel(t),
            });
        }
        m
    }

    /// Registers the three counters in `registry` under the names above.
    pub fn register(&self, registry: &mut Registry) {
        // prometheus-client appends `_total` to counters itself.
        registry.register(
            "nimbusguard_operator_kafka_events",
            "Valid Kafka trigger events handed to the operator, by type",
            self.events.clone(),
        );
        registry.register(
            "nimbusguard_operator_kafka_malformed_events",
            "Kafka messages skipped as malformed trigger events",
            self.malformed.clone(),
        );
        registry.register(
            "nimbusguard_operator_kafka_consumer_errors",
            "Errors reported by the Kafka consumer (it retries)",
            self.errors.clone(),
        );
    }

    /// Valid events handed over so far, all types together.
    pub fn events_total(&self) -> u64 {
        EventType::ALL
            .iter()
            .map(|&t| {
                self.events
                    .get_or_create(&EventLabel {
                        event_type: EventTypeLabel(t),
                    })
                    .get()
            })
            .sum()
    }
}

/// The consumer's context: partitions held, librdkafka's logs to tracing.
struct Ctx {
    assigned: Arc<AtomicUsize>,
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
                self.assigned.store(tpl.count(), Ordering::SeqCst);
                tracing::info!(
                    partitions = tpl.count(),
                    "Kafka trigger partitions assigned"
                );
            }
            Rebalance::Revoke(_) => self.assigned.store(0, Ordering::SeqCst),
            Rebalance::Error(e) => tracing::warn!(error = %e, "Kafka rebalance failed"),
        }
    }
}

/// A running Kafka trigger consumer (its own thread); stops, leaving its group and committing
/// its offsets, when dropped.
pub struct KafkaTriggers {
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicUsize>,
    metrics: KafkaTriggerMetrics,
    thread: Option<JoinHandle<()>>,
}

impl KafkaTriggers {
    /// Starts consuming `config.topic`; each valid event is passed to `on_event` (on the
    /// consumer's thread: keep it short, e.g. a channel send).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config (naming the field), one librdkafka refuses, or
    /// a consumer thread that cannot be spawned.
    pub fn start_with(
        config: &KafkaTriggerConfig,
        metrics: KafkaTriggerMetrics,
        on_event: impl Fn(TriggerEvent) + Send + 'static,
    ) -> Result<Self> {
        config.validate()?;
        let assigned = Arc::new(AtomicUsize::new(0));
        let s = config.session_timeout_ms;
        let consumer: BaseConsumer<Ctx> = ClientConfig::new()
            .set("bootstrap.servers", config.brokers.replace(' ', ""))
            .set("group.id", &config.group_id)
            .set("client.id", "nimbusguard-operator")
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", offset_reset(config.auto_offset_reset))
            .set("session.timeout.ms", s.to_string())
            .set("heartbeat.interval.ms", (s / 12).max(1).to_string())
            .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
            .create_with_context(Ctx {
                assigned: assigned.clone(),
            })
            .map_err(|e| Error::Config(format!("kafka: librdkafka refused the config: {e}")))?;
        consumer
            .subscribe(&[&config.topic])
            .map_err(|e| Error::Config(format!("kafka.topic: cannot subscribe: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            consumer,
            stop: stop.clone(),
            metrics: metrics.clone(),
            max_bytes: config.max_message_bytes,
        };
        let thread = std::thread::Builder::new()
            .name("kafka-triggers".into())
            .spawn(move || worker.run(on_event))
            .map_err(|e| Error::Config(format!("kafka: cannot start the consumer thread: {e}")))?;
        tracing::info!(brokers = %config.brokers, topic = %config.topic,
            group = %config.group_id, "consuming Kafka trigger events");
        Ok(Self {
            stop,
            assigned,
            metrics,
            thread: Some(thread),
        })
    }

    /// [`KafkaTriggers::start_with`] sending each valid event to the operator loop as a
    /// [`Trigger`] whose body is the event's JSON (the channel `POST /trigger` feeds). Events
    /// arriving after the loop stopped are dropped (debug log).
    ///
    /// # Errors
    /// As [`KafkaTriggers::start_with`].
    pub fn start(
        config: &KafkaTriggerConfig,
        metrics: KafkaTriggerMetrics,
        triggers: Sender<Trigger>,
    ) -> Result<Self> {
        Self::start_with(config, metrics, move |event| {
            let body = serde_json::to_string(&event).unwrap_or_default();
            if triggers.send(Trigger { body }).is_err() {
                tracing::debug!("operator loop stopped; Kafka trigger dropped");
            }
        })
    }

    /// [`KafkaTriggers::start_with`] delivering the events on an unbounded tokio channel, for
    /// async callers (a kube-rs controller mapping `service` to the object to reconcile).
    ///
    /// # Errors
    /// As [`KafkaTriggers::start_with`].
    pub fn start_channel(
        config: &KafkaTriggerConfig,
        metrics: KafkaTriggerMetrics,
    ) -> Result<(Self, tokio::sync::mpsc::UnboundedReceiver<TriggerEvent>)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let me = Self::start_with(config, metrics, move |event| {
            let _ = tx.send(event);
        })?;
        Ok((me, rx))
    }

    /// Partitions of the topic this consumer holds now (0 until it joined its group).
    pub fn assigned_partitions(&self) -> usize {
        self.assigned.load(Ordering::SeqCst)
    }

    /// Waits up to `timeout` for a partition assignment; whether one came. Events produced
    /// after that are consumed (with `latest`, those produced before may not be).
    pub fn wait_assigned(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while self.assigned_partitions() == 0 {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The counters.
    pub fn metrics(&self) -> &KafkaTriggerMetrics {
        &self.metrics
    }
}

impl Drop for KafkaTriggers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn offset_reset(r: OffsetReset) -> &'static str {
    match r {
        OffsetReset::Latest => "latest",
        OffsetReset::Earliest => "earliest",
    }
}

/// The consumer thread's state.
struct Worker {
    consumer: BaseConsumer<Ctx>,
    stop: Arc<AtomicBool>,
    metrics: KafkaTriggerMetrics,
    max_bytes: usize,
}

impl Worker {
    fn run(self, on_event: impl Fn(TriggerEvent)) {
        let mut last_warn: Option<Instant> = None;
        while !self.stop.load(Ordering::SeqCst) {
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(msg)) => {
                    self.handle(&msg, &on_event);
                    if let Err(e) = self.consumer.store_offset_from_message(&msg) {
                        tracing::warn!(error = %e, "cannot store the Kafka offset");
                    }
                }
                Some(Err(e)) => {
                    self.metrics.errors.inc();
                    if last_warn.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "Kafka consumer error (librdkafka retries; \
                            more within 10 s are logged at debug level)");
                        last_warn = Some(Instant::now());
                    } else {
                        tracing::debug!(error = %e, "Kafka consumer error");
                    }
                    // Errors come in bursts while a broker is away: do not spin on them.
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        // Dropping the consumer leaves the group and commits the stored offsets.
        drop(self.consumer);
        tracing::info!("Kafka trigger consumer stopped");
    }

    fn handle(&self, msg: &BorrowedMessage<'_>, on_event: &impl Fn(TriggerEvent)) {
        match TriggerEvent::parse(msg.payload().unwrap_or_default(), self.max_bytes) {
            Ok(event) => {
                self.metrics
                    .events
                    .get_or_create(&EventLabel {
                        event_type: EventTypeLabel(event.event_type),
                    })
                    .inc();
                tracing::debug!(event_type = event.event_type.as_str(), service = %event.service,
                    value = event.value, "Kafka trigger event");
                on_event(event);
            }
            Err(e) => {
                self.metrics.malformed.inc();
                tracing::warn!(topic = msg.topic(), partition = msg.partition(),
                    offset = msg.offset(), field = %e.field, error = %e.message,
                    "malformed Kafka trigger event skipped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_toml_and_bad_fields() {
        let c: KafkaTriggerConfig = toml::from_str("brokers = \"127.0.0.1:9092\"").unwrap();
        assert_eq!(c.topic, "nimbusguard-triggers");
        assert_eq!(c.group_id, "nimbusguard-operator");
        assert_eq!((c.session_timeout_ms, c.fetch_wait_max_ms), (6000, 100));
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert!(c.validate().is_ok());
        let e: KafkaTriggerConfig =
            toml::from_str("brokers = \"a:1, b:2\"\nauto_offset_reset = \"earliest\"").unwrap();
        assert_eq!(e.auto_offset_reset, OffsetReset::Earliest);
        assert!(e.validate().is_ok());
        assert!(toml::from_str::<KafkaTriggerConfig>("broker = \"a:1\"").is_err());
        let ok = || KafkaTriggerConfig {
            brokers: "127.0.0.1:9092".into(),
            ..KafkaTriggerConfig::default()
        };
        let cases = [
            ("kafka.brokers", KafkaTriggerConfig::default()),
            (
                "kafka.brokers",
                KafkaTriggerConfig {
                    brokers: "h:0".into(),
                    ..ok()
                },
            ),
            (
                "kafka.topic",
                KafkaTriggerConfig {
                    topic: "a b".into(),
                    ..ok()
                },
            ),
            (
                "kafka.group_id",
                KafkaTriggerConfig {
                    group_id: " ".into(),
                    ..ok()
                },
            ),
            (
                "kafka.session_timeout_ms",
                KafkaTriggerConfig {
                    session_timeout_ms: 10,
                    ..ok()
                },
            ),
            (
                "kafka.fetch_wait_max_ms",
                KafkaTriggerConfig {
                    fetch_wait_max_ms: 0,
                    ..ok()
                },
            ),
            (
                "kafka.max_message_bytes",
                KafkaTriggerConfig {
                    max_message_bytes: 0,
                    ..ok()
                },
            ),
        ];
        for (field, c) in cases {
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn counters_register_under_their_names() {
        let m = KafkaTriggerMetrics::new();
        let mut r = Registry::default();
        m.register(&mut r);
        m.malformed.inc();
        m.events
            .get_or_create(&EventLabel {
                event_type: EventTypeLabel(EventType::TrafficSpike),
            })
            .inc_by(2);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for line in [
            "nimbusguard_operator_kafka_events_total{event_type=\"traffic_spike\"} 2",
            "nimbusguard_operator_kafka_events_total{event_type=\"scale_up_request\"} 0",
            "nimbusguard_operator_kafka_malformed_events_total 1",
            "nimbusguard_operator_kafka_consumer_errors_total 0",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert_eq!(m.events_total(), 2);
    }

    #[test]
    fn a_bad_config_is_refused_before_any_thread_starts() {
        let err = KafkaTriggers::start_with(
            &KafkaTriggerConfig::default(),
            KafkaTriggerMetrics::new(),
            |_| {},
        )
        .err()
        .expect("refused");
        assert!(err.to_string().contains("kafka.brokers"), "{err}");
    }
}
