//! The app's Prometheus metrics (prometheus-client registry, text exposition at `/metrics`).
//!
//! prometheus-client appends `_total` to counters itself, so counters are registered without
//! the suffix; the exposed names are the ones listed on [`Metrics`].

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::events::EventType;

/// Buckets of `workload_request_duration_seconds`, seconds.
pub const DURATION_BUCKETS_S: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Content type of `/metrics` answers (OpenMetrics text, which Prometheus >= 2.5 reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Implements [`EncodeLabelValue`] for a label enum from its `as_str`.
macro_rules! label_value {
    ($t:ty) => {
        impl prometheus_client::encoding::EncodeLabelValue for $t {
            fn encode(
                &self,
                encoder: &mut prometheus_client::encoding::LabelValueEncoder,
            ) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}
pub(crate) use label_value;

/// How a `/work` request ended (label `outcome`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// `served`: answered 200 after its CPU cost was burnt.
    Served,
    /// `dropped`: answered 503 (queue full or no worker within `--request-timeout-s`).
    Dropped,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::Dropped => "dropped",
        }
    }
}
label_value!(Outcome);

/// Label set `{outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// How the request ended.
    pub outcome: Outcome,
}

/// Kind of a background job (label `kind`; `"cpu"` or `"memory"` in JSON).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// `cpu`: burns a share of one core.
    Cpu,
    /// `memory`: holds memory.
    Memory,
}

impl JobKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Cpu => "cpu",
            JobKind::Memory => "memory",
        }
    }
}
label_value!(JobKind);

/// Label set `{kind}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The job kind.
    pub kind: JobKind,
}

/// Label set `{event_type}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// The trigger's event type.
    pub event_type: EventType,
}

/// Result of forwarding a trigger (label `result`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ForwardResult {
    /// `ok`: the operator answered 2xx.
    Ok,
    /// `error`: connection error, timeout (2 s) or a non-2xx answer.
    Error,
}

impl ForwardResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardResult::Ok => "ok",
            ForwardResult::Error => "error",
        }
    }
}
label_value!(ForwardResult);

/// Label set `{result}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// The forwarding result.
    pub result: ForwardResult,
}

/// Where an accepted trigger event came from (label `source`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum TriggerSource {
    /// `http`: `POST /events/trigger`.
    Http,
    /// `kafka`: a message of `--kafka-topic` (`--kafka-brokers`).
    Kafka,
}

impl TriggerSource {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerSource::Http => "http",
            TriggerSource::Kafka => "kafka",
        }
    }
}
label_value!(TriggerSource);

/// Label set `{source}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// Where the event came from.
    pub source: TriggerSource,
}

/// Label set `{pod}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PodLabel {
    /// The pod name (`--pod-name`).
    pub pod: String,
}

/// Every metric the app exports, by exposed name.
#[derive(Debug)]
pub struct Metrics {
    /// `workload_requests_total{outcome="served"|"dropped"}`: finished `/work` requests.
    pub requests: Family<OutcomeLabel, Counter>,
    /// `workload_request_duration_seconds`: arrival to response of served `/work` requests.
    pub duration: Histogram,
    /// `workload_requests_in_flight`: accepted `/work` requests not yet answered.
    pub in_flight: Gauge,
    /// `workload_active_jobs{kind}`: running CPU and memory jobs.
    pub active_jobs: Family<KindLabel, Gauge>,
    /// `workload_memory_held_bytes`: bytes allocated and held by memory jobs.
    pub memory_held_bytes: Gauge,
    /// `workload_triggers_received_total{event_type}`: accepted `/events/trigger` events.
    pub triggers_received: Family<EventLabel, Counter>,
    /// `workload_triggers_by_source_total{source="http"|"kafka"}`: accepted trigger events by
    /// where they came from (the same events as `workload_triggers_received_total`).
    pub triggers_by_source: Family<SourceLabel, Counter>,
    /// `workload_triggers_forwarded_total{result}`: forwarding attempts to the operator.
    pub triggers_forwarded: Family<ResultLabel, Counter>,
    /// `workload_kafka_malformed_events_total`: Kafka messages skipped because they are not a
    /// valid trigger event (empty, over `--max-body-bytes`, bad JSON, unknown `event_type`,
    /// non-finite `value`, unknown field).
    pub kafka_malformed: Counter,
    /// `workload_kafka_consumer_errors_total`: errors the Kafka consumer reported (broker
    /// unreachable, unknown topic, ...); librdkafka retries by itself.
    pub kafka_errors: Counter,
    /// `workload_kafka_assigned_partitions`: partitions of `--kafka-topic` this replica
    /// consumes (0 before it joined its group or without `--kafka-brokers`).
    pub kafka_assigned_partitions: Gauge,
    /// `workload_ready`: 1 once `/ready` answers 200, else 0.
    pub ready: Gauge,
    /// `workload_info{pod}`: always 1.
    pub info: Family<PodLabel, Gauge>,
    /// `process_cpu_seconds_total`: user + system CPU of this process (from /proc at scrape).
    pub process_cpu_seconds: Counter<f64, AtomicU64>,
    /// `process_resident_memory_bytes`: resident set size (from /proc at scrape).
    pub process_resident_memory_bytes: Gauge<f64, AtomicU64>,
    /// `process_start_time_seconds`: start of this process, Unix seconds.
    pub process_start_time_seconds: Gauge<f64, AtomicU64>,
    registry: Registry,
    /// Serialises scrapes (the CPU counter advances by a delta per scrape).
    scrape: Mutex<()>,
}

impl Metrics {
    /// Creates and registers every metric; `pod` labels `workload_info`.
    pub fn new(pod: &str) -> Metrics {
        let m = Metrics {
            requests: Family::default(),
            duration: Histogram::new(DURATION_BUCKETS_S),
            in_flight: Gauge::default(),
            active_jobs: Family::default(),
            memory_held_bytes: Gauge::default(),
            triggers_received: Family::default(),
            triggers_by_source: Family::default(),
            triggers_forwarded: Family::default(),
            kafka_malformed: Counter::default(),
            kafka_errors: Counter::default(),
            kafka_assigned_partitions: Gauge::default(),
            ready: Gauge::default(),
            info: Family::default(),
            process_cpu_seconds: Counter::default(),
            process_resident_memory_bytes: Gauge::default(),
            process_start_time_seconds: Gauge::default(),
            registry: Registry::default(),
            scrape: Mutex::new(()),
        };
        let mut r = Registry::default();
        r.register(
            "workload_requests",
            "Finished /work requests by outcome",
            m.requests.clone(),
        );
        r.register(
            "workload_request_duration_seconds",
            "Arrival to response of served /work requests, seconds",
            m.duration.clone(),
        );
        r.register(
            "workload_requests_in_flight",
            "Accepted /work requests not yet answered",
            m.in_flight.clone(),
        );
        r.register(
            "workload_active_jobs",
            "Running background jobs",
            m.active_jobs.clone(),
        );
        r.register(
            "workload_memory_held_bytes",
            "Bytes held by memory jobs",
            m.memory_held_bytes.clone(),
        );
        r.register(
            "workload_triggers_received",
            "Accepted /events/trigger events",
            m.triggers_received.clone(),
        );
        r.register(
            "workload_triggers_by_source",
            "Accepted trigger events by source (http or kafka)",
            m.triggers_by_source.clone(),
        );
        r.register(
            "workload_kafka_malformed_events",
            "Kafka messages skipped as malformed trigger events",
            m.kafka_malformed.clone(),
        );
        r.register(
            "workload_kafka_consumer_errors",
            "Errors reported by the Kafka consumer (it retries)",
            m.kafka_errors.clone(),
        );
        r.register(
            "workload_kafka_assigned_partitions",
            "Partitions of the trigger topic this replica consumes",
            m.kafka_assigned_partitions.clone(),
        );
        r.register(
            "workload_triggers_forwarded",
            "Trigger forwarding attempts to the operator",
            m.triggers_forwarded.clone(),
        );
        r.register(
            "workload_ready",
            "1 when /ready answers 200",
            m.ready.clone(),
        );
        r.register("workload_info", "Pod name", m.info.clone());
        r.register(
            "process_cpu_seconds",
            "User and system CPU time, seconds",
            m.process_cpu_seconds.clone(),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory, bytes",
            m.process_resident_memory_bytes.clone(),
        );
        r.register(
            "process_start_time_seconds",
            "Start of the process since the Unix epoch, seconds",
            m.process_start_time_seconds.clone(),
        );
        m.info
            .get_or_create(&PodLabel {
                pod: pod.to_string(),
            })
            .set(1);
        for outcome in [Outcome::Served, Outcome::Dropped] {
            let _ = m.requests.get_or_create(&OutcomeLabel { outcome });
        }
        for kind in [JobKind::Cpu, JobKind::Memory] {
            let _ = m.active_jobs.get_or_create(&KindLabel { kind });
        }
        for source in [TriggerSource::Http, TriggerSource::Kafka] {
            let _ = m.triggers_by_source.get_or_create(&SourceLabel { source });
        }
        for result in [ForwardResult::Ok, ForwardResult::Error] {
            let _ = m.triggers_forwarded.get_or_create(&ResultLabel { result });
        }
        if let Some(start) = process_start_time_s() {
            m.process_start_time_seconds.set(start);
        }
        Metrics { registry: r, ..m }
    }

    /// Reads /proc/self, updates the process metrics, and encodes every metric in the text
    /// format ([`CONTENT_TYPE`]). A /proc read failure leaves the process metrics at their last
    /// values.
    pub fn render(&self) -> String {
        let _guard = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(stat) = procfs::process::Process::myself().and_then(|p| p.stat()) {
            let tps = procfs::ticks_per_second() as f64;
            let cpu = (stat.utime + stat.stime) as f64 / tps;
            let delta = cpu - self.process_cpu_seconds.get();
            if delta > 0.0 {
                self.process_cpu_seconds.inc_by(delta);
            }
            self.process_resident_memory_bytes
                .set((stat.rss * procfs::page_size()) as f64);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Start time of this process since the Unix epoch, seconds (from /proc), if readable.
fn process_start_time_s() -> Option<f64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    let boot = procfs::boot_time_secs().ok()? as f64;
    Some(boot + stat.starttime as f64 / procfs::ticks_per_second() as f64)
}

/// The current resident set size of this process in bytes, from /proc (None if unreadable).
pub fn resident_bytes() -> Option<u64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some(stat.rss * procfs::page_size())
}
