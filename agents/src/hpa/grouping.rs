//! Pod grouping (`groupPods`), requests (`calculateRequests`) and per-pod usage
//! (`getPodMetrics`, `getContainerMetrics`) of `pkg/controller/podautoscaler/`.

use super::{ConditionStatus, HpaError, Millis, PodMetricsInfo, PodPhase, PodRecord, PodSample};

/// The bucket `groupPods` puts a pod in (hpa-algorithm.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodGroup {
    /// Deleting or `Failed`: contributes nothing, ever.
    Ignored,
    /// `Pending`, or (CPU only) not ready / still warming up: counted at 0 on a scale-up only.
    Unready,
    /// No sample: filled in on the fill-in path.
    Missing,
    /// Its sample is used (`readyPodCount`).
    Ready,
}

/// Bucket sizes returned by [`group_pods`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCounts {
    /// `readyPodCount`.
    pub ready: usize,
    /// `len(unreadyPods)`.
    pub unready: usize,
    /// `len(missingPods)`.
    pub missing: usize,
    /// `len(ignoredPods)`.
    pub ignored: usize,
}

/// Readiness settings of `groupPods`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadinessConfig {
    /// CPU initialization period, ms (`cpuInitializationPeriod`).
    pub cpu_initialization_period_ms: Millis,
    /// Initial readiness delay, ms (`delayOfInitialReadinessStatus`).
    pub initial_readiness_delay_ms: Millis,
}

/// Classifies one pod (`groupPods` loop body).
///
/// `sample` is the pod's entry in the metrics map; `cpu` is true when the metric is the `cpu`
/// resource (only then do the readiness rules apply). All comparisons are strict, as in Go:
/// - inside the initialization period iff `start + period > now`;
/// - there, unready iff Ready is `False` or `sample.timestamp < transition + sample.window`;
/// - after it, unready iff Ready is `False` and `start + delay > transition`.
pub fn classify_pod(
    pod: &PodRecord,
    sample: Option<&PodSample>,
    cpu: bool,
    now_ms: Millis,
    readiness: ReadinessConfig,
) -> PodGroup {
    if pod.deleting || pod.phase == PodPhase::Failed {
        return PodGroup::Ignored;
    }
    if pod.phase == PodPhase::Pending {
        return PodGroup::Unready;
    }
    let Some(sample) = sample else {
        return PodGroup::Missing;
    };
    if cpu {
        let unready = match (pod.ready, pod.start_time_ms) {
            (Some(condition), Some(start)) => {
                let not_ready = condition.status == ConditionStatus::False;
                if start.saturating_add(readiness.cpu_initialization_period_ms) > now_ms {
                    // Still warming up: ignore the sample unless the pod is ready and one full
                    // metric window was collected after the readiness transition.
                    not_ready
                        || sample.timestamp_ms
                            < condition
                                .last_transition_ms
                                .saturating_add(sample.window_ms)
                } else {
                    // Ignore only a pod that went unready within the delay after its start
                    // (assumed never ready).
                    not_ready
                        && start.saturating_add(readiness.initial_readiness_delay_ms)
                            > condition.last_transition_ms
                }
            }
            _ => true,
        };
        if unready {
            return PodGroup::Unready;
        }
    }
    PodGroup::Ready
}

/// `groupPods`: classifies every pod into `groups` (cleared first, one entry per pod).
pub fn group_pods(
    pods: &[PodRecord],
    metrics: &PodMetricsInfo,
    cpu: bool,
    now_ms: Millis,
    readiness: ReadinessConfig,
    groups: &mut Vec<PodGroup>,
) -> GroupCounts {
    groups.clear();
    let mut counts = GroupCounts::default();
    for (i, pod) in pods.iter().enumerate() {
        let sample = metrics.per_pod.get(i).and_then(|s| s.as_ref());
        let group = classify_pod(pod, sample, cpu, now_ms, readiness);
        match group {
            PodGroup::Ignored => counts.ignored += 1,
            PodGroup::Unready => counts.unready += 1,
            PodGroup::Missing => counts.missing += 1,
            PodGroup::Ready => counts.ready += 1,
        }
        groups.push(group);
    }
    counts
}

/// `removeMetricsForPods(metrics, ignoredPods)` and `(metrics, unreadyPods)`.
pub fn remove_ignored_and_unready(metrics: &mut PodMetricsInfo, groups: &[PodGroup]) {
    for (slot, group) in metrics.per_pod.iter_mut().zip(groups) {
        if matches!(group, PodGroup::Ignored | PodGroup::Unready) {
            *slot = None;
        }
    }
}

/// A named per-container quantity: a request or a usage, milli-units (`None` = not set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerValue {
    /// Container name.
    pub name: String,
    /// Quantity in milli-units, `None` when the container has none for the resource.
    pub milli: Option<i64>,
}

/// One pod of `calculateRequests` (newest version): the named container's request, or the sum
/// over all regular (and restartable init) containers, which the caller lists in `containers`.
///
/// Errors: a counted container without a request ([`HpaError::MissingRequest`]); a named
/// container absent from the pod ([`HpaError::ContainerNotFound`]).
pub fn pod_request(
    pod_name: &str,
    containers: &[ContainerValue],
    container: Option<&str>,
    resource: &str,
) -> Result<i64, HpaError> {
    let mut sum: i64 = 0;
    let mut found = false;
    for c in containers {
        if container.is_none_or(|name| name == c.name) {
            found = true;
            match c.milli {
                Some(v) => sum = sum.saturating_add(v),
                None => {
                    return Err(HpaError::MissingRequest {
                        resource: resource.to_string(),
                        container: c.name.clone(),
                        pod: pod_name.to_string(),
                    })
                }
            }
        }
    }
    match container {
        Some(name) if !found => Err(HpaError::ContainerNotFound {
            resource: resource.to_string(),
            container: name.to_string(),
            pod: pod_name.to_string(),
        }),
        _ => Ok(sum),
    }
}

/// The per-pod value the resource metrics client derives from one `PodMetrics` entry.
///
/// - no container named (`getPodMetrics`): the sum of all containers; `Ok(None)` (pod left out
///   of the map) when the entry has no container or a container lacks the resource;
/// - a container named (`getContainerMetrics`): that container's value (`Ok(None)` if it lacks
///   the resource); an error when the container is not in the entry.
pub fn pod_usage(
    pod_name: &str,
    containers: &[ContainerValue],
    container: Option<&str>,
) -> Result<Option<i64>, HpaError> {
    match container {
        None => {
            if containers.is_empty() {
                return Ok(None);
            }
            let mut sum: i64 = 0;
            for c in containers {
                match c.milli {
                    Some(v) => sum = sum.saturating_add(v),
                    None => return Ok(None),
                }
            }
            Ok(Some(sum))
        }
        Some(name) => match containers.iter().find(|c| c.name == name) {
            Some(c) => Ok(c.milli),
            None => Err(HpaError::ContainerNotInMetrics {
                container: name.to_string(),
                pod: pod_name.to_string(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpa::{ReadyCondition, ZERO_TIME_MS};

    const READINESS: ReadinessConfig = ReadinessConfig {
        cpu_initialization_period_ms: 120_000,
        initial_readiness_delay_ms: 10_000,
    };

    fn pod(status: ConditionStatus, start_s_ago: i64, transition_s_ago: i64) -> PodRecord {
        PodRecord {
            phase: PodPhase::Running,
            ready: Some(ReadyCondition {
                status,
                last_transition_ms: -transition_s_ago * 1000,
            }),
            start_time_ms: Some(-start_s_ago * 1000),
            deleting: false,
        }
    }

    fn sample(ts: Millis, window_ms: Millis) -> PodSample {
        PodSample {
            value_milli: 100,
            timestamp_ms: ts,
            window_ms,
        }
    }

    #[test]
    fn never_ready_boundary_is_strict() {
        // Started 600 s ago (past the 120 s period), not ready since 590 s ago = start + 10 s:
        // `start + delay > transition` is false at equality, so the pod counts as ready.
        let p = pod(ConditionStatus::False, 600, 590);
        let s = sample(ZERO_TIME_MS, 0);
        assert_eq!(
            classify_pod(&p, Some(&s), true, 0, READINESS),
            PodGroup::Ready
        );
        // Not ready since start + 6 s < start + 10 s: never ready, unready.
        let p = pod(ConditionStatus::False, 600, 594);
        assert_eq!(
            classify_pod(&p, Some(&s), true, 0, READINESS),
            PodGroup::Unready
        );
        // Memory skips the readiness rules entirely.
        assert_eq!(
            classify_pod(&p, Some(&s), false, 0, READINESS),
            PodGroup::Ready
        );
    }

    #[test]
    fn sample_window_boundary_inside_initialization_period() {
        // Started and ready 60 s ago (inside the 120 s period); a 60 s window ending exactly
        // at transition + 60 s = now is a full window after readiness: the sample counts.
        let p = pod(ConditionStatus::True, 60, 60);
        assert_eq!(
            classify_pod(&p, Some(&sample(0, 60_000)), true, 0, READINESS),
            PodGroup::Ready
        );
        // One millisecond earlier the window began before readiness: unready.
        assert_eq!(
            classify_pod(&p, Some(&sample(-1, 60_000)), true, 0, READINESS),
            PodGroup::Unready
        );
        // Exactly at the end of the initialization period (start + 120 s = now) the pod is out
        // of it; ready True so it counts even with an old sample.
        let p = pod(ConditionStatus::True, 120, 120);
        assert_eq!(
            classify_pod(&p, Some(&sample(ZERO_TIME_MS, 60_000)), true, 0, READINESS),
            PodGroup::Ready
        );
    }

    #[test]
    fn order_of_buckets() {
        let mut p = pod(ConditionStatus::True, 600, 600);
        p.deleting = true;
        p.phase = PodPhase::Pending;
        // Deletion wins over Pending.
        assert_eq!(
            classify_pod(&p, None, true, 0, READINESS),
            PodGroup::Ignored
        );
        p.deleting = false;
        // Pending wins over a missing sample.
        assert_eq!(
            classify_pod(&p, None, true, 0, READINESS),
            PodGroup::Unready
        );
        p.phase = PodPhase::Running;
        assert_eq!(
            classify_pod(&p, None, true, 0, READINESS),
            PodGroup::Missing
        );
        // No Ready condition: unready for CPU.
        p.ready = None;
        let s = sample(0, 0);
        assert_eq!(
            classify_pod(&p, Some(&s), true, 0, READINESS),
            PodGroup::Unready
        );
    }

    #[test]
    fn requests_sum_and_errors() {
        let cs = vec![
            ContainerValue {
                name: "a".into(),
                milli: Some(300),
            },
            ContainerValue {
                name: "b".into(),
                milli: Some(200),
            },
        ];
        // 300 + 200 = 500 for the pod; the named container alone gives its own request.
        assert_eq!(pod_request("p", &cs, None, "cpu"), Ok(500));
        assert_eq!(pod_request("p", &cs, Some("b"), "cpu"), Ok(200));
        let err = pod_request("p", &cs, Some("c"), "cpu").unwrap_err();
        assert!(err.to_string().contains("missing request for cpu"));
        let cs = vec![ContainerValue {
            name: "a".into(),
            milli: None,
        }];
        let err = pod_request("p", &cs, None, "cpu").unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing request for cpu in container a of Pod p"
        );
    }

    #[test]
    fn usage_sum_and_container() {
        let cs = vec![
            ContainerValue {
                name: "a".into(),
                milli: Some(1000),
            },
            ContainerValue {
                name: "b".into(),
                milli: Some(300),
            },
        ];
        assert_eq!(pod_usage("p", &cs, None), Ok(Some(1300)));
        assert_eq!(pod_usage("p", &cs, Some("b")), Ok(Some(300)));
        assert!(pod_usage("p", &cs, Some("x")).is_err());
        assert_eq!(pod_usage("p", &[], None), Ok(None));
    }
}
