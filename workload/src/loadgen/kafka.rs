//! `--trigger` events produced to Kafka (`--kafka-brokers`, `--kafka-topic`) instead of
//! POSTed to `--trigger-url`: one message per event, key = the event's `service`, value = the
//! JSON body `POST /events/trigger` takes (`{"event_type","service","value"}`), which the
//! workload app's consumer (`workload-app --kafka-brokers`) and the operator's trigger source
//! (`adapters::kafka`) read.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::app::kafka::{check_topic, parse_brokers, DEFAULT_TOPIC};
use crate::app::TriggerEvent;
use crate::{Error, Result};

/// Where `--trigger` events go when they go to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSink {
    /// Bootstrap brokers, `HOST:PORT[,HOST:PORT..]` (`--kafka-brokers`).
    pub brokers: String,
    /// Topic (`--kafka-topic`, default `nimbusguard-triggers`).
    pub topic: String,
}

impl KafkaSink {
    /// A sink for `brokers` and `topic` (default topic when `None`), checked.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `--kafka-brokers` or `--kafka-topic`.
    pub fn new(brokers: &str, topic: Option<&str>) -> Result<KafkaSink> {
        let list = parse_brokers("--kafka-brokers", brokers)?;
        let topic = topic.unwrap_or(DEFAULT_TOPIC);
        check_topic("--kafka-topic", topic)?;
        Ok(KafkaSink {
            brokers: list.join(","),
            topic: topic.to_string(),
        })
    }

    /// A producer whose deliveries time out after `timeout` (`--timeout-s`).
    ///
    /// # Errors
    ///
    /// [`Error::Setup`] if librdkafka refuses the configuration.
    pub(crate) fn producer(&self, timeout: Duration) -> Result<FutureProducer> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "nimbusguard-loadgen")
            .set("message.timeout.ms", timeout.as_millis().max(1).to_string())
            // An event is sent at its instant, not batched with later ones.
            .set("linger.ms", "0")
            .create()
            .map_err(|e| Error::Setup {
                what: "Kafka producer (--kafka-brokers)",
                source: Box::new(e),
            })
    }
}

/// Produces `event` to `topic` and waits for the broker's acknowledgement (or `timeout`).
/// Returns whether it was delivered; failures are logged.
pub(crate) async fn produce(
    producer: &FutureProducer,
    topic: &str,
    event: &TriggerEvent,
    timeout: Duration,
) -> bool {
    let payload = match serde_json::to_vec(event) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot serialize a trigger event");
            return false;
        }
    };
    let record = FutureRecord::to(topic)
        .key(event.service.as_bytes())
        .payload(&payload);
    match producer.send(record, timeout).await {
        Ok(_) => true,
        Err((e, _)) => {
            tracing::warn!(error = %e, topic, "cannot produce a trigger event to Kafka");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_check_brokers_and_topic() {
        let s = KafkaSink::new("127.0.0.1:9092, 127.0.0.1:9093", None).unwrap();
        assert_eq!(s.brokers, "127.0.0.1:9092,127.0.0.1:9093");
        assert_eq!(s.topic, "nimbusguard-triggers");
        let e = KafkaSink::new("nohost", None).unwrap_err().to_string();
        assert!(e.contains("--kafka-brokers"), "{e}");
        let e = KafkaSink::new("h:1", Some("a b")).unwrap_err().to_string();
        assert!(e.contains("--kafka-topic"), "{e}");
    }
}
