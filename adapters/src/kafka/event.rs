//! [`TriggerEvent`]: the trigger event's JSON and its validation, the same as the workload app's
//! `POST /events/trigger` (`workload::app::events`).

use serde::{Deserialize, Serialize};

/// What happened (closed set; snake_case in JSON), as the workload app's event types.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// `high_cpu_usage`: CPU use is high (`value`: e.g. percent).
    HighCpuUsage,
    /// `high_memory_usage`: memory use is high (`value`: e.g. percent or MiB).
    HighMemoryUsage,
    /// `traffic_spike`: request rate jumped (`value`: requests/s).
    TrafficSpike,
    /// `latency_degradation`: latency above objective (`value`: e.g. p95 in ms).
    LatencyDegradation,
    /// `scale_up_request`: someone asks for more replicas (`value`: e.g. replicas wanted).
    ScaleUpRequest,
    /// `scale_down_request`: someone asks for fewer replicas (`value`: e.g. replicas wanted).
    ScaleDownRequest,
}

impl EventType {
    /// Every event type, in declaration order.
    pub const ALL: [EventType; 6] = [
        EventType::HighCpuUsage,
        EventType::HighMemoryUsage,
        EventType::TrafficSpike,
        EventType::LatencyDegradation,
        EventType::ScaleUpRequest,
        EventType::ScaleDownRequest,
    ];

    /// The snake_case name (`high_cpu_usage`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::HighCpuUsage => "high_cpu_usage",
            EventType::HighMemoryUsage => "high_memory_usage",
            EventType::TrafficSpike => "traffic_spike",
            EventType::LatencyDegradation => "latency_degradation",
            EventType::ScaleUpRequest => "scale_up_request",
            EventType::ScaleDownRequest => "scale_down_request",
        }
    }
}

impl std::str::FromStr for EventType {
    type Err = String;

    /// Parses a snake_case name; the error lists the accepted names.
    fn from_str(s: &str) -> Result<Self, String> {
        EventType::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = EventType::ALL.iter().map(|e| e.as_str()).collect();
                format!(
                    "unknown event type `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// One trigger event: `{"event_type": .., "service": .., "value": ..}` (no other field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerEvent {
    /// What happened.
    pub event_type: EventType,
    /// The service it concerns (free text, e.g. the Deployment name).
    pub service: String,
    /// A magnitude whose unit depends on `event_type` (finite).
    pub value: f64,
}

/// Why a message is not a valid [`TriggerEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MalformedEvent {
    /// The field at fault (`event_type`, `service`, `value`), or `body` for the message as a
    /// whole (empty, too large, not a JSON object, an unknown field).
    pub field: String,
    /// What was wrong and what was expected.
    pub message: String,
}

fn malformed(field: &str, message: impl Into<String>) -> MalformedEvent {
    MalformedEvent {
        field: field.into(),
        message: message.into(),
    }
}

const FIELDS: [&str; 3] = ["event_type", "service", "value"];

impl TriggerEvent {
    /// Parses and checks one message value of at most `max_bytes`.
    ///
    /// # Errors
    /// [`MalformedEvent`] naming the field: an empty or too large payload, invalid JSON, not an
    /// object, an unknown or missing field, an unknown `event_type`, a `service` that is not a
    /// string, a `value` that is not a finite number.
    pub fn parse(payload: &[u8], max_bytes: usize) -> Result<TriggerEvent, MalformedEvent> {
        if payload.is_empty() {
            return Err(malformed(
                "body",
                "empty payload; expected a JSON trigger event {event_type, service, value}",
            ));
        }
        if payload.len() > max_bytes {
            return Err(malformed(
                "body",
                format!("{} bytes, over the limit of {max_bytes}", payload.len()),
            ));
        }
        let v: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| malformed("body", e.to_string()))?;
        let obj = v.as_object().ok_or_else(|| {
            malformed(
                "body",
                "expected a JSON object {event_type, service, value}",
            )
        })?;
        if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            let k: String = k.chars().take(64).collect();
            return Err(malformed(
                "body",
                format!("unknown field `{k}`; expected only event_type, service, value"),
            ));
        }
        let field = |name: &str| {
            obj.get(name)
                .ok_or_else(|| malformed(name, format!("missing field `{name}`")))
        };
        let event_type = match field("event_type")? {
            serde_json::Value::String(s) => s.parse::<EventType>(),
            other => Err(format!("expected a string, got {other}")),
        }
        .map_err(|m| malformed("event_type", m))?;
        let service = field("service")?
            .as_str()
            .ok_or_else(|| malformed("service", "expected a string"))?
            .to_string();
        let value = field("value")?
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| malformed("value", "expected a finite number"))?;
        Ok(TriggerEvent {
            event_type,
            service,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_events_and_names_the_bad_field() {
        let e = TriggerEvent::parse(
            br#"{"event_type":"traffic_spike","service":"web","value":300}"#,
            1024,
        )
        .unwrap();
        assert_eq!(
            e,
            TriggerEvent {
                event_type: EventType::TrafficSpike,
                service: "web".into(),
                value: 300.0
            }
        );
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event_type":"traffic_spike","service":"web","value":300.0}"#
        );
        let cases: [(&[u8], &str); 11] = [
            (b"", "body"),
            (b"{not json", "body"),
            (b"[1,2]", "body"),
            (
                br#"{"event_type":"boom","service":"w","value":1}"#,
                "event_type",
            ),
            (br#"{"event_type":3,"service":"w","value":1}"#, "event_type"),
            (br#"{"service":"w","value":1}"#, "event_type"),
            (
                br#"{"event_type":"traffic_spike","service":1,"value":1}"#,
                "service",
            ),
            (br#"{"event_type":"traffic_spike","service":"w"}"#, "value"),
            (
                br#"{"event_type":"traffic_spike","service":"w","value":"1"}"#,
                "value",
            ),
            (
                br#"{"event_type":"traffic_spike","service":"w","value":1e999}"#,
                "body",
            ),
            (
                br#"{"event_type":"traffic_spike","service":"w","value":1,"x":0}"#,
                "body",
            ),
        ];
        for (payload, field) in cases {
            let err = TriggerEvent::parse(payload, 1024).unwrap_err();
            assert_eq!(
                err.field,
                field,
                "{}: {err}",
                String::from_utf8_lossy(payload)
            );
        }
        let err = TriggerEvent::parse(b"{\"a\":1}", 4).unwrap_err();
        assert_eq!(err.field, "body");
        assert!(err.message.contains("limit of 4"), "{err}");
        let err = TriggerEvent::parse(br#"{"event_type":"boom","service":"w","value":1}"#, 99)
            .unwrap_err();
        assert!(err.message.contains("high_cpu_usage"), "{err}");
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.as_str())
            );
        }
    }
}
