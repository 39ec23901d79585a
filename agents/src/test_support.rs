//! Fixtures shared by this crate's unit tests.

use sim::{PodPhase, PodView, SimTime};

/// A Running, Ready pod `id` (Ready since t = 0) requesting 500 millicores and
/// `memory_request_bytes`, whose latest metrics-server sample (60 s window, taken at
/// `sample_at`) is `cpu_usage_milli` and `memory_usage_bytes`.
pub(crate) fn ready_pod(
    id: u64,
    cpu_usage_milli: u64,
    memory_request_bytes: u64,
    memory_usage_bytes: u64,
    sample_at: SimTime,
) -> PodView {
    PodView {
        id,
        phase: PodPhase::Running,
        ready: true,
        ready_last_transition: Some(SimTime::ZERO),
        start_time: Some(SimTime::ZERO),
        deleting: false,
        cpu_request_milli: 500,
        memory_request_bytes,
        cpu_usage_milli: Some(cpu_usage_milli),
        memory_usage_bytes: Some(memory_usage_bytes),
        metric_timestamp: Some(sample_at),
        metric_window_s: 60,
    }
}
