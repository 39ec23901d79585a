//! `POST /events/trigger`: scaling-relevant events sent to the app (by tests, the load generator
//! or a person), counted and optionally forwarded to the operator. The Kafka consumer
//! ([`super::kafka`]) reads the same JSON body from a topic and hands it to the same path.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::metrics::{
    label_value, EventLabel, ForwardResult, ResultLabel, SourceLabel, TriggerSource,
};
use super::{error_response, AppState};

/// Timeout of one forwarding POST to `--operator-trigger-url`.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// What happened (closed set; snake_case in JSON and in the `event_type` label).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// `high_cpu_usage`: CPU use is high (`value`: utilisation, e.g. percent).
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
label_value!(EventType);

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

/// The JSON body of `POST /events/trigger` (unknown fields rejected).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerEvent {
    /// What happened.
    pub event_type: EventType,
    /// The service it concerns (free text, e.g. the Deployment name).
    pub service: String,
    /// A magnitude whose unit depends on `event_type` (finite).
    pub value: f64,
}

/// Parses a trigger body. Errors name the field (`event_type`, `service`, `value`, or `body`
/// for malformed JSON).
pub fn parse_trigger(body: &[u8]) -> Result<TriggerEvent, (String, String)> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let event: TriggerEvent = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        let field = if syntax {
            "body".to_string()
        } else if !matches!(path.as_str(), "." | "" | "?") {
            path
        } else if let Some(f) = msg
            .strip_prefix("missing field `")
            .or_else(|| msg.strip_prefix("unknown field `"))
            .and_then(|r| r.split('`').next())
        {
            f.to_string()
        } else {
            "body".to_string()
        };
        (field, msg)
    })?;
    if !event.value.is_finite() {
        return Err(("value".into(), "expected a finite number".into()));
    }
    Ok(event)
}

/// `POST /events/trigger`: 202 `{"accepted":true,"forwarded":bool}`, 400 naming the field.
pub(super) async fn trigger(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let event = match parse_trigger(&body) {
        Ok(e) => e,
        Err((field, msg)) => {
            return error_response(StatusCode::BAD_REQUEST, msg, "field", &field);
        }
    };
    let forwarded = accept(&state, event, TriggerSource::Http);
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"accepted": true, "forwarded": forwarded})),
    )
        .into_response()
}

/// Handles one valid event, whatever its source: counts it
/// (`workload_triggers_received_total{event_type}`, `workload_triggers_by_source_total{source}`),
/// logs it, and forwards it to `--operator-trigger-url` in a task of its own. Returns whether
/// forwarding was started. Must be called inside the app's tokio runtime.
pub(super) fn accept(state: &Arc<AppState>, event: TriggerEvent, source: TriggerSource) -> bool {
    let m = &state.metrics;
    m.triggers_received
        .get_or_create(&EventLabel {
            event_type: event.event_type,
        })
        .inc();
    m.triggers_by_source
        .get_or_create(&SourceLabel { source })
        .inc();
    tracing::info!(event_type = event.event_type.as_str(), service = %event.service,
        value = event.value, source = source.as_str(), "trigger received");
    let Some(url) = &state.config.operator_trigger_url else {
        return false;
    };
    let (client, url, st) = (state.client.clone(), url.clone(), state.clone());
    tokio::spawn(async move {
        let res = client
            .post(&url)
            .timeout(FORWARD_TIMEOUT)
            .json(&event)
            .send()
            .await;
        let result = match res {
            Ok(r) if r.status().is_success() => ForwardResult::Ok,
            Ok(r) => {
                tracing::warn!(status = %r.status(), %url, "operator refused trigger");
                ForwardResult::Error
            }
            Err(e) => {
                tracing::warn!(error = %e, %url, "cannot forward trigger");
                ForwardResult::Error
            }
        };
        st.metrics
            .triggers_forwarded
            .get_or_create(&ResultLabel { result })
            .inc();
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_fields() {
        let ok = parse_trigger(br#"{"event_type":"traffic_spike","service":"web","value":3}"#);
        assert_eq!(ok.unwrap().event_type, EventType::TrafficSpike);
        let e = parse_trigger(br#"{"event_type":"boom","service":"web","value":3}"#).unwrap_err();
        assert_eq!(e.0, "event_type");
        assert!(e.1.contains("high_cpu_usage"), "{}", e.1);
        let e = parse_trigger(br#"{"event_type":"traffic_spike","service":"web"}"#).unwrap_err();
        assert_eq!(e.0, "value");
        let e =
            parse_trigger(br#"{"event_type":"traffic_spike","service":1,"value":3}"#).unwrap_err();
        assert_eq!(e.0, "service");
        assert_eq!(parse_trigger(b"{not json").unwrap_err().0, "body");
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
    }
}
