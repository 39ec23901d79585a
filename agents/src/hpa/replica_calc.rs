//! Ratio arithmetic (`metrics/utilization.go`) and per-metric replica proposals
//! (`ReplicaCalculator` of `replica_calculator.go`, newest version): hpa-algorithm.md
//! sections 6 to 9.

use super::grouping::{
    group_pods, remove_ignored_and_unready, GroupCounts, PodGroup, ReadinessConfig,
};
use super::{
    f64_to_i32, f64_to_i64, i128_to_i64, i64_to_i32, ControllerVariant, HpaError, MetricsSource,
    Millis, PodMetricsInfo, PodRecord, PodSample, Tolerances,
};

/// Proposal of a Resource/ContainerResource `Utilization` metric (`GetResourceReplicas`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceProposal {
    /// Proposed replicas.
    pub replicas: i32,
    /// Current utilization as reported in status, integer percent of the request (unfilled).
    pub utilization_percent: i32,
    /// Raw average usage of the counted samples, milli-units (unfilled).
    pub raw_average_milli: i64,
}

/// Proposal of a plain, Object or External metric: replicas and the usage reported in status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageProposal {
    /// Proposed replicas.
    pub replicas: i32,
    /// Reported usage, milli-units: the per-pod average (plain), the object value, the external
    /// sum, or the per-pod usage `ceil(total / status)` (AverageValue targets).
    pub usage_milli: i64,
}

/// `GetResourceUtilizationRatio`: over the samples whose pod has a request (strays have none),
/// `utilization = floor(100 * sum(usage) / sum(request))` (integer percent),
/// `ratio = utilization / target`, `raw average = floor(sum(usage) / count)`.
///
/// Returns `(ratio, utilization percent, raw average milli)`; errors with
/// [`HpaError::NoMatchingMetrics`] when the requests sum to 0 (no sample matched).
pub fn resource_utilization_ratio(
    metrics: &PodMetricsInfo,
    requests: &[i64],
    target_percent: i32,
) -> Result<(f64, i32, i64), HpaError> {
    let (mut usage_total, mut request_total, mut entries) = (0i128, 0i128, 0i128);
    for (sample, request) in metrics.per_pod.iter().zip(requests) {
        if let Some(sample) = sample {
            usage_total += i128::from(sample.value_milli);
            request_total += i128::from(*request);
            entries += 1;
        }
    }
    if request_total == 0 || entries == 0 {
        return Err(HpaError::NoMatchingMetrics);
    }
    let utilization = i64_to_i32(i128_to_i64(usage_total * 100 / request_total));
    let raw_average = i128_to_i64(usage_total / entries);
    Ok((
        f64::from(utilization) / f64::from(target_percent),
        utilization,
        raw_average,
    ))
}

/// `GetMetricUsageRatio`: `average = floor(sum / count)` over every entry of the map (strays
/// included), `ratio = average / target`. Returns `(ratio, average milli)`; `(NaN, 0)` for an
/// empty map (callers check emptiness first, as Go does).
pub fn metric_usage_ratio(metrics: &PodMetricsInfo, target_milli: i64) -> (f64, i64) {
    let mut total: i128 = metrics.strays.iter().map(|&v| i128::from(v)).sum();
    for sample in metrics.per_pod.iter().flatten() {
        total += i128::from(sample.value_milli);
    }
    let count = metrics.len() as i128;
    if count == 0 {
        return (f64::NAN, 0);
    }
    let average = i128_to_i64(total / count);
    (average as f64 / target_milli as f64, average)
}

/// `ceil(ratio * count)` converted like the controller (saturating at the `i32` range).
pub fn ceil_replicas(ratio: f64, count: usize) -> i32 {
    f64_to_i32((ratio * count as f64).ceil())
}

/// The replica calculator: readiness settings plus reusable buffers, so that a reconcile does
/// not allocate on the hot path.
#[derive(Debug, Clone)]
pub struct ReplicaCalculator {
    /// CPU initialization period and initial readiness delay.
    pub readiness: ReadinessConfig,
    /// Newest or older controller arithmetic (tolerance test, missing-pod fallback).
    pub variant: ControllerVariant,
    metrics: PodMetricsInfo,
    groups: Vec<PodGroup>,
    requests: Vec<i64>,
    series: Vec<i64>,
}

impl ReplicaCalculator {
    /// A calculator with the given readiness settings and variant.
    pub fn new(readiness: ReadinessConfig, variant: ControllerVariant) -> Self {
        ReplicaCalculator {
            readiness,
            variant,
            metrics: PodMetricsInfo::default(),
            groups: Vec::new(),
            requests: Vec::new(),
            series: Vec::new(),
        }
    }

    /// The tolerance test of the configured variant.
    pub fn is_within(&self, tolerances: Tolerances, ratio: f64) -> bool {
        match self.variant {
            ControllerVariant::Newest => tolerances.is_within(ratio),
            ControllerVariant::Older => tolerances.is_within_legacy(ratio),
        }
    }

    /// Groups of the last grouped metric, one per pod (for inspection and the case harness).
    pub fn last_groups(&self) -> &[PodGroup] {
        &self.groups
    }

    /// `GetResourceReplicas`: a Resource/ContainerResource `Utilization` target
    /// (hpa-algorithm.md section 7). `current` is the spec replica count.
    #[allow(clippy::too_many_arguments)]
    pub fn resource_replicas<S: MetricsSource + ?Sized>(
        &mut self,
        source: &S,
        now_ms: Millis,
        current: i32,
        target_percent: i32,
        resource: &str,
        container: Option<&str>,
        tolerances: Tolerances,
    ) -> Result<ResourceProposal, HpaError> {
        let pods = source.pods();
        self.metrics.reset(pods.len());
        source
            .resource_metric(resource, container, &mut self.metrics)
            .map_err(|e| e.context(format!("unable to get metrics for resource {resource}")))?;
        let counts = self.ready_samples(pods, resource == "cpu", now_ms)?;
        self.requests.clear();
        for i in 0..pods.len() {
            let request = source.pod_request(i, resource, container)?;
            self.requests.push(request);
        }
        let (ratio, utilization, raw_average_milli) =
            resource_utilization_ratio(&self.metrics, &self.requests, target_percent)?;
        let proposal = |replicas| ResourceProposal {
            replicas,
            utilization_percent: utilization,
            raw_average_milli,
        };

        let scale_up_with_unready = counts.unready > 0 && ratio > 1.0;
        if !scale_up_with_unready && counts.missing == 0 {
            if self.is_within(tolerances, ratio) {
                return Ok(proposal(current));
            }
            return Ok(proposal(ceil_replicas(ratio, counts.ready)));
        }

        if counts.missing > 0 {
            // Scale-down: missing pods at max(100, target)% of their request (older: 100%);
            // scale-up: at 0; exactly 1.0: left out.
            let fill_percent = match self.variant {
                ControllerVariant::Newest => i128::from(target_percent.max(100)),
                ControllerVariant::Older => 100,
            };
            if ratio < 1.0 {
                for i in 0..pods.len() {
                    if self.groups[i] == PodGroup::Missing {
                        let v = i128::from(self.requests[i]) * fill_percent / 100;
                        self.metrics.per_pod[i] = Some(filled(i128_to_i64(v)));
                    }
                }
            } else if ratio > 1.0 {
                self.fill(PodGroup::Missing, 0);
            }
        }
        if scale_up_with_unready {
            self.fill(PodGroup::Unready, 0);
        }

        let (new_ratio, _, _) =
            resource_utilization_ratio(&self.metrics, &self.requests, target_percent)?;
        Ok(proposal(self.settle(current, ratio, new_ratio, tolerances)))
    }

    /// `GetRawResourceReplicas`: a Resource/ContainerResource `AverageValue` target (plain
    /// average; CPU readiness rules still apply for `cpu`).
    #[allow(clippy::too_many_arguments)]
    pub fn raw_resource_replicas<S: MetricsSource + ?Sized>(
        &mut self,
        source: &S,
        now_ms: Millis,
        current: i32,
        target_milli: i64,
        resource: &str,
        container: Option<&str>,
        tolerances: Tolerances,
    ) -> Result<UsageProposal, HpaError> {
        let pods = source.pods();
        self.metrics.reset(pods.len());
        source
            .resource_metric(resource, container, &mut self.metrics)
            .map_err(|e| e.context(format!("unable to get metrics for resource {resource}")))?;
        self.plain_metric_replicas(
            pods,
            now_ms,
            current,
            target_milli,
            resource == "cpu",
            tolerances,
        )
    }

    /// `GetMetricReplicas`: a Pods metric with an `AverageValue` target (no readiness rules).
    pub fn pods_metric_replicas<S: MetricsSource + ?Sized>(
        &mut self,
        source: &S,
        now_ms: Millis,
        current: i32,
        target_milli: i64,
        metric: &str,
        tolerances: Tolerances,
    ) -> Result<UsageProposal, HpaError> {
        let pods = source.pods();
        self.metrics.reset(pods.len());
        source
            .pods_metric(metric, &mut self.metrics)
            .map_err(|e| e.context(format!("unable to get metric {metric}")))?;
        self.plain_metric_replicas(pods, now_ms, current, target_milli, false, tolerances)
    }

    /// The step both calculators start with (`groupPods`, then dropping the samples of ignored
    /// and unready pods): returns the pod counts per group and leaves in the map only the
    /// samples of ready pods (and stray samples of pods not in the list, as Go does).
    ///
    /// # Errors
    /// [`HpaError::NoPods`] for an empty pod list, [`HpaError::NoMetricsForTargetedPods`] if no
    /// sample remains.
    fn ready_samples(
        &mut self,
        pods: &[PodRecord],
        cpu: bool,
        now_ms: Millis,
    ) -> Result<GroupCounts, HpaError> {
        if pods.is_empty() {
            return Err(HpaError::NoPods);
        }
        let counts = group_pods(
            pods,
            &self.metrics,
            cpu,
            now_ms,
            self.readiness,
            &mut self.groups,
        );
        remove_ignored_and_unready(&mut self.metrics, &self.groups);
        if self.metrics.is_empty() {
            return Err(HpaError::NoMetricsForTargetedPods);
        }
        Ok(counts)
    }

    /// `calcPlainMetricReplicas` on the samples already in the calculator's map.
    fn plain_metric_replicas(
        &mut self,
        pods: &[PodRecord],
        now_ms: Millis,
        current: i32,
        target_milli: i64,
        cpu: bool,
        tolerances: Tolerances,
    ) -> Result<UsageProposal, HpaError> {
        let counts = self.ready_samples(pods, cpu, now_ms)?;
        let (ratio, usage_milli) = metric_usage_ratio(&self.metrics, target_milli);
        let proposal = |replicas| UsageProposal {
            replicas,
            usage_milli,
        };

        let scale_up_with_unready = counts.unready > 0 && ratio > 1.0;
        if !scale_up_with_unready && counts.missing == 0 {
            if self.is_within(tolerances, ratio) {
                return Ok(proposal(current));
            }
            return Ok(proposal(ceil_replicas(ratio, counts.ready)));
        }
        if counts.missing > 0 {
            // Scale-down: missing pods exactly at target; scale-up: at 0; exactly 1.0: left out.
            if ratio < 1.0 {
                self.fill(PodGroup::Missing, target_milli);
            } else if ratio > 1.0 {
                self.fill(PodGroup::Missing, 0);
            }
        }
        if scale_up_with_unready {
            self.fill(PodGroup::Unready, 0);
        }
        let (new_ratio, _) = metric_usage_ratio(&self.metrics, target_milli);
        Ok(proposal(self.settle(current, ratio, new_ratio, tolerances)))
    }

    /// Gives every pod of `group` the sample value `value` (the fill-in path).
    fn fill(&mut self, group: PodGroup, value: i64) {
        for (slot, g) in self.metrics.per_pod.iter_mut().zip(&self.groups) {
            if *g == group {
                *slot = Some(filled(value));
            }
        }
    }

    /// Steps 5 to 8 of the fill-in path: hold on tolerance or a direction flip of the ratio,
    /// else `ceil(newRatio * len(metrics))` unless that moves against the ratio.
    fn settle(&self, current: i32, ratio: f64, new_ratio: f64, tolerances: Tolerances) -> i32 {
        if self.is_within(tolerances, new_ratio)
            || (ratio < 1.0 && new_ratio > 1.0)
            || (ratio > 1.0 && new_ratio < 1.0)
        {
            return current;
        }
        let new_replicas = ceil_replicas(new_ratio, self.metrics.len());
        if (new_ratio < 1.0 && new_replicas > current)
            || (new_ratio > 1.0 && new_replicas < current)
        {
            return current;
        }
        new_replicas
    }

    /// `GetObjectMetricReplicas`: an Object metric with a `Value` target.
    pub fn object_value_replicas<S: MetricsSource + ?Sized>(
        &self,
        source: &S,
        current: i32,
        target_milli: i64,
        metric: &str,
        tolerances: Tolerances,
    ) -> Result<UsageProposal, HpaError> {
        let usage = source
            .object_metric(metric)
            .map_err(|e| e.context(format!("unable to get metric {metric}")))?;
        let ratio = usage as f64 / target_milli as f64;
        let replicas = self.usage_ratio_replica_count(source.pods(), current, ratio, tolerances)?;
        Ok(UsageProposal {
            replicas,
            usage_milli: usage,
        })
    }

    /// `GetObjectPerPodMetricReplicas`: an Object metric with an `AverageValue` target, against
    /// `status` replicas.
    pub fn object_per_pod_replicas<S: MetricsSource + ?Sized>(
        &self,
        source: &S,
        status: i32,
        target_milli: i64,
        metric: &str,
        tolerances: Tolerances,
    ) -> Result<UsageProposal, HpaError> {
        let usage = source
            .object_metric(metric)
            .map_err(|e| e.context(format!("unable to get metric {metric}")))?;
        Ok(self.per_pod_replicas(status, usage, target_milli, tolerances))
    }

    /// `GetExternalMetricReplicas`: an External metric with a `Value` target (sum of series).
    pub fn external_value_replicas<S: MetricsSource + ?Sized>(
        &mut self,
        source: &S,
        current: i32,
        target_milli: i64,
        metric: &str,
        tolerances: Tolerances,
    ) -> Result<UsageProposal, HpaError> {
        let usage = self.external_sum(source, metric)?;
        let ratio = usage as f64 / target_milli as f64;
        let replicas = self.usage_ratio_replica_count(source.pods(), current, ratio, tolerances)?;
        Ok(UsageProposal {
            replicas,
            usage_milli: usage,
        })
    }

    /// `GetExternalPerPodMetricReplicas`: an External metric with an `AverageValue` target,
    /// against `status` replicas.
    pub fn external_per_pod_replicas<S: MetricsSource + ?Sized>(
        &mut self,
        source: &S,
        status: i32,
        target_milli: i64,
        metric: &str,
        tolerances: Tolerances,
    ) -> Result<UsageProposal, HpaError> {
        let usage = self.external_sum(source, metric)?;
        Ok(self.per_pod_replicas(status, usage, target_milli, tolerances))
    }

    /// Sum of all series of an external metric, capped at `i64::MAX`.
    fn external_sum<S: MetricsSource + ?Sized>(
        &mut self,
        source: &S,
        metric: &str,
    ) -> Result<i64, HpaError> {
        self.series.clear();
        source
            .external_metric(metric, &mut self.series)
            .map_err(|e| e.context(format!("unable to get external metric {metric}")))?;
        Ok(self
            .series
            .iter()
            .fold(0i64, |acc, &v| acc.saturating_add(v)))
    }

    /// `getUsageRatioReplicaCount`: with `current != 0`, hold inside the tolerance band, else
    /// `ceil(ratio * R)` with R = Running and Ready pods; with `current == 0`, `ceil(ratio)`
    /// without tolerance (scale from zero). Clamped to `i32::MAX`.
    pub fn usage_ratio_replica_count(
        &self,
        pods: &[PodRecord],
        current: i32,
        ratio: f64,
        tolerances: Tolerances,
    ) -> Result<i32, HpaError> {
        if current == 0 {
            return Ok(f64_to_i32(ratio.ceil()));
        }
        if self.is_within(tolerances, ratio) {
            return Ok(current);
        }
        if pods.is_empty() {
            return Err(HpaError::NoPods.context("unable to calculate ready pods"));
        }
        let ready = pods.iter().filter(|p| p.is_running_and_ready()).count();
        Ok(ceil_replicas(ratio, ready))
    }

    /// The per-pod (AverageValue) Object/External arithmetic: with S = `status`,
    /// `ratio = usage / (target * S)`; outside tolerance propose `ceil(usage / target)`, else S.
    /// The reported usage is `ceil(usage / S)`. Clamped to `i32::MAX` / `i64::MAX`.
    pub fn per_pod_replicas(
        &self,
        status: i32,
        usage_milli: i64,
        target_milli: i64,
        tolerances: Tolerances,
    ) -> UsageProposal {
        let ratio = usage_milli as f64 / (target_milli as f64 * f64::from(status));
        let mut replicas = status;
        if !self.is_within(tolerances, ratio) {
            replicas = f64_to_i32((usage_milli as f64 / target_milli as f64).ceil());
        }
        let per_pod = f64_to_i64((usage_milli as f64 / f64::from(status)).ceil());
        UsageProposal {
            replicas,
            usage_milli: per_pod,
        }
    }
}

/// A filled-in sample (only its value is ever read).
fn filled(value_milli: i64) -> PodSample {
    PodSample {
        value_milli,
        timestamp_ms: 0,
        window_ms: 0,
    }
}

#[cfg(test)]
mod tests;
