//! The shared vocabulary between the simulator, the environments, the agents and (later) the
//! live adapters: what a controller can observe ([`ClusterState`], [`PodView`]) and what it
//! decides ([`ScaleDecision`]).
//!
//! A controller never reads the simulator's true state: the pod list and pod conditions are what
//! the Kubernetes API shows (exact, as in a real cluster), while usage figures come from the
//! lagged metrics pipeline (metrics-server samples for CPU/memory, Prometheus-style scrapes for
//! request rate, latency and queue length).

use std::borrow::Cow;

use crate::SimTime;

/// Phase of a pod as the Kubernetes API reports it (`status.phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PodPhase {
    /// Accepted but not running yet: unscheduled, or scheduled and pulling its image.
    Pending,
    /// Bound to a node with its container started (it may not be Ready yet).
    Running,
    /// Terminated in failure (the HPA ignores such pods).
    Failed,
}

/// One pod of the target Deployment as a controller sees it (the fields the HPA algorithm uses).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PodView {
    /// Unique pod id within the run (pod names are `pod-<id>`).
    pub id: u64,
    /// API phase.
    pub phase: PodPhase,
    /// The pod's `Ready` condition is `True`.
    pub ready: bool,
    /// Last transition time of the `Ready` condition (`None` = no condition yet).
    pub ready_last_transition: Option<SimTime>,
    /// `status.startTime`: when the kubelet accepted the pod (`None` while unscheduled).
    pub start_time: Option<SimTime>,
    /// The pod has a deletion timestamp (it is Terminating).
    pub deleting: bool,
    /// CPU request of the pod, millicores.
    pub cpu_request_milli: u64,
    /// Memory request of the pod, bytes.
    pub memory_request_bytes: u64,
    /// Latest metrics-server sample: CPU usage averaged over `metric_window_s`, millicores.
    /// `None` = the metrics API has no sample for this pod (a "missing" pod for the HPA).
    pub cpu_usage_milli: Option<u64>,
    /// Latest metrics-server sample: memory working set, bytes (`None` = no sample).
    pub memory_usage_bytes: Option<u64>,
    /// Timestamp of that sample (end of its averaging window).
    pub metric_timestamp: Option<SimTime>,
    /// Length of the sample's averaging window, seconds.
    pub metric_window_s: u64,
}

/// What an autoscaler can observe of one Deployment at one instant.
///
/// Built by the simulator ([`crate::Simulation::observe_into`]) and, later, by the live adapter
/// from Prometheus and the Kubernetes API. Reused across steps without reallocating.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterState {
    /// Observation instant.
    pub time: SimTime,
    /// `spec.replicas` of the Deployment's scale subresource (the current desired count).
    pub desired_replicas: u32,
    /// `status.replicas`: pods that exist and are not terminating.
    pub status_replicas: u32,
    /// Pods whose `Ready` condition is true.
    pub ready_replicas: u32,
    /// Pods not yet Ready (unscheduled, starting, or running but not Ready).
    pub pending_replicas: u32,
    /// Every pod of the Deployment, terminating ones included, ordered by id.
    pub pods: Vec<PodView>,
    /// Scraped request arrival rate, requests per second (mean over the last scrape interval).
    pub request_rate_per_s: f64,
    /// Scraped latency percentiles over the last scrape interval, milliseconds.
    pub p50_latency_ms: f64,
    /// See `p50_latency_ms`.
    pub p95_latency_ms: f64,
    /// See `p50_latency_ms`.
    pub p99_latency_ms: f64,
    /// Scraped backlog (requests waiting), at the last scrape.
    pub queue_length: f64,
    /// Scraped share of requests dropped over the last scrape interval, in [0, 1].
    pub dropped_ratio: f64,
}

impl ClusterState {
    /// CPU utilization as the HPA computes it: sum of the latest usage samples of Ready pods
    /// divided by the sum of their CPU requests (a fraction of the request; 1.0 = 100%).
    /// Returns 0 when no Ready pod has a sample.
    pub fn cpu_utilization(&self) -> f64 {
        let (mut used, mut req) = (0u64, 0u64);
        for p in self.pods.iter().filter(|p| p.ready && !p.deleting) {
            if let Some(u) = p.cpu_usage_milli {
                used += u;
                req += p.cpu_request_milli;
            }
        }
        if req == 0 {
            0.0
        } else {
            used as f64 / req as f64
        }
    }

    /// Memory utilization of Ready pods with a sample: usage / requests (fraction of request).
    pub fn memory_utilization(&self) -> f64 {
        let (mut used, mut req) = (0u64, 0u64);
        for p in self.pods.iter().filter(|p| p.ready && !p.deleting) {
            if let Some(u) = p.memory_usage_bytes {
                used += u;
                req += p.memory_request_bytes;
            }
        }
        if req == 0 {
            0.0
        } else {
            used as f64 / req as f64
        }
    }
}

/// An autoscaler's decision: the desired replica count and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleDecision {
    /// Desired `spec.replicas`; the simulator clamps it to the Deployment's bounds.
    pub desired_replicas: u32,
    /// Human-readable reason (e.g. the HPA condition reason `ScaleUpLimit`).
    pub reason: Cow<'static, str>,
}

impl ScaleDecision {
    /// A decision with a static reason (no allocation).
    pub fn new(desired_replicas: u32, reason: &'static str) -> Self {
        Self {
            desired_replicas,
            reason: Cow::Borrowed(reason),
        }
    }
}
