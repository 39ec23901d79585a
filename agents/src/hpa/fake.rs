//! An in-memory [`MetricsSource`]: the fake pod lister and metrics clients of the Go unit
//! tests (`replica_calculator_test.go`, `horizontal_test.go`), used by the case harness and the
//! unit tests.

use super::grouping::{pod_request, pod_usage, ContainerValue};
use super::{HpaError, MetricsSource, Millis, PodMetricsInfo, PodRecord, PodSample};

/// One pod of the fake pod lister.
#[derive(Debug, Clone, PartialEq)]
pub struct FakePod {
    /// Pod name.
    pub name: String,
    /// What the HPA reads of the pod.
    pub record: PodRecord,
    /// Containers with their CPU requests (milli-units; `None` = no request).
    pub containers: Vec<ContainerValue>,
}

/// One `PodMetrics` entry of the fake resource metrics API.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeResourceSample {
    /// Pod name (need not be a listed pod: a stray sample).
    pub pod: String,
    /// Per-container usage, milli-units.
    pub containers: Vec<ContainerValue>,
    /// Sample timestamp, ms.
    pub timestamp_ms: Millis,
    /// Averaging window, ms.
    pub window_ms: Millis,
}

/// The fake cluster: pods plus what each metrics API answers (an `Err` = a failing API).
///
/// The resource metrics API answers with the same CPU figures whatever resource is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeSource {
    /// Pods matched by the selector, in list order (fixed at [`FakeSource::new`]).
    pods: Vec<FakePod>,
    /// Records of `pods`.
    records: Vec<PodRecord>,
    /// Resource metrics API answer.
    pub resource_samples: Result<Vec<FakeResourceSample>, HpaError>,
    /// Custom metrics API answer for per-pod metrics: `(pod name, value milli)`.
    pub pods_metric: Result<Vec<(String, i64)>, HpaError>,
    /// Custom metrics API answer for the object metric, milli-units.
    pub object_value: Result<i64, HpaError>,
    /// External metrics API answer: every series, milli-units.
    pub external_series: Result<Vec<i64>, HpaError>,
}

impl FakeSource {
    /// A fake with `pods` and metrics APIs that return nothing.
    pub fn new(pods: Vec<FakePod>) -> Self {
        let records = pods.iter().map(|p| p.record).collect();
        FakeSource {
            pods,
            records,
            resource_samples: Ok(Vec::new()),
            pods_metric: Ok(Vec::new()),
            object_value: Err(HpaError::MetricFetch("no object metric configured".into())),
            external_series: Ok(Vec::new()),
        }
    }

    /// The listed pods.
    pub fn fake_pods(&self) -> &[FakePod] {
        &self.pods
    }

    /// Index of the listed pod named `name`.
    pub fn pod_index(&self, name: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.name == name)
    }

    /// Puts `value` in the map under pod `name` (a later entry for the same pod wins, as a Go
    /// map assignment; unlisted pods become strays).
    fn insert(
        &self,
        out: &mut PodMetricsInfo,
        stray_names: &mut Vec<String>,
        name: &str,
        sample: PodSample,
    ) {
        match self.pod_index(name) {
            Some(i) => out.per_pod[i] = Some(sample),
            None => match stray_names.iter().position(|n| n == name) {
                Some(j) => out.strays[j] = sample.value_milli,
                None => {
                    stray_names.push(name.to_string());
                    out.strays.push(sample.value_milli);
                }
            },
        }
    }
}

impl MetricsSource for FakeSource {
    fn pods(&self) -> &[PodRecord] {
        &self.records
    }

    fn pod_request(
        &self,
        pod: usize,
        resource: &str,
        container: Option<&str>,
    ) -> Result<i64, HpaError> {
        match self.pods.get(pod) {
            Some(p) => pod_request(&p.name, &p.containers, container, resource),
            None => Err(HpaError::NoPods),
        }
    }

    fn resource_metric(
        &self,
        _resource: &str,
        container: Option<&str>,
        out: &mut PodMetricsInfo,
    ) -> Result<(), HpaError> {
        let samples = self.resource_samples.as_ref().map_err(Clone::clone)?;
        if samples.is_empty() {
            return Err(HpaError::NoResourceMetrics);
        }
        let mut stray_names = Vec::new();
        for s in samples {
            if let Some(value) = pod_usage(&s.pod, &s.containers, container)? {
                let sample = PodSample {
                    value_milli: value,
                    timestamp_ms: s.timestamp_ms,
                    window_ms: s.window_ms,
                };
                self.insert(out, &mut stray_names, &s.pod, sample);
            }
        }
        Ok(())
    }

    fn pods_metric(&self, _metric: &str, out: &mut PodMetricsInfo) -> Result<(), HpaError> {
        let values = self.pods_metric.as_ref().map_err(Clone::clone)?;
        if values.is_empty() {
            return Err(HpaError::NoCustomMetrics);
        }
        let mut stray_names = Vec::new();
        for (name, value) in values {
            // The custom metrics client stamps samples with the sample time and a 1 min window.
            let sample = PodSample {
                value_milli: *value,
                timestamp_ms: 0,
                window_ms: 60_000,
            };
            self.insert(out, &mut stray_names, name, sample);
        }
        Ok(())
    }

    fn object_metric(&self, _metric: &str) -> Result<i64, HpaError> {
        self.object_value.clone()
    }

    fn external_metric(&self, _metric: &str, out: &mut Vec<i64>) -> Result<(), HpaError> {
        let series = self.external_series.as_ref().map_err(Clone::clone)?;
        if series.is_empty() {
            return Err(HpaError::NoExternalMetrics);
        }
        out.extend_from_slice(series);
        Ok(())
    }
}
