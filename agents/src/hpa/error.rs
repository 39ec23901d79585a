//! [`HpaError`]: the errors of the HPA algorithm, with the Go error strings.

/// Errors of the HPA algorithm. The messages reproduce the Go error strings
/// (`replica_calculator.go`, `metrics/*_client.go`, `horizontal.go`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HpaError {
    /// The resource metrics API returned no pod at all (`resourceMetricsClient.GetResourceMetric`).
    #[error("no metrics returned from resource metrics API")]
    NoResourceMetrics,
    /// The custom metrics API returned no value (`customMetricsClient.GetRawMetric`).
    #[error("no metrics returned from custom metrics API")]
    NoCustomMetrics,
    /// The external metrics API returned no series (`externalMetricsClient.GetExternalMetric`).
    #[error("no metrics returned from external metrics API")]
    NoExternalMetrics,
    /// A metrics API call failed (fake failing source, missing object value...).
    #[error("{0}")]
    MetricFetch(String),
    /// The selector matched no pod (`GetResourceReplicas`, `calcPlainMetricReplicas`,
    /// `getReadyPodsCount`).
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    /// Every sample belonged to an ignored or unready pod (`GetResourceReplicas`).
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetricsForTargetedPods,
    /// A container counted for the request has no request for the resource
    /// (`calculateRequests`).
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        /// Resource name (`cpu`).
        resource: String,
        /// Container name.
        container: String,
        /// Pod name.
        pod: String,
    },
    /// The named container of a ContainerResource metric is not in the pod spec
    /// (`calculateRequests`, newest version).
    #[error(
        "missing request for {resource} in container {container} of Pod {pod}: container not found"
    )]
    ContainerNotFound {
        /// Resource name (`cpu`).
        resource: String,
        /// Container name.
        container: String,
        /// Pod name.
        pod: String,
    },
    /// The named container is absent from a pod's metrics (`getContainerMetrics`).
    #[error("failed to get container metrics: container {container} not present in metrics for pod {pod}")]
    ContainerNotInMetrics {
        /// Container name.
        container: String,
        /// Pod name.
        pod: String,
    },
    /// No sample matched a pod with a request (`GetResourceUtilizationRatio`).
    #[error("no metrics returned matched known pods")]
    NoMatchingMetrics,
    /// The metric spec has a type the controller does not know (`computeReplicasForMetric`).
    #[error("unknown metric source type {0:?}: invalid metric source type")]
    InvalidMetricSourceType(String),
    /// A Resource/ContainerResource target with neither utilization nor average value.
    #[error("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set")]
    InvalidResourceTarget,
    /// An Object/External/Pods target without a usable value (`computeStatusFor*Metric`).
    #[error(
        "invalid {kind} metric source: neither a value target nor an average value target was set"
    )]
    InvalidValueTarget {
        /// `object`, `external` or `pods`.
        kind: &'static str,
    },
    /// An error with the context the Go code wraps around it (`fmt.Errorf("...: %v", err)`).
    #[error("{context}: {source}")]
    Context {
        /// The wrapping text.
        context: String,
        /// The wrapped error.
        source: Box<HpaError>,
    },
    /// Some metrics failed (`computeReplicasForMetrics`).
    #[error("invalid metrics ({invalid} invalid out of {total}), first error is: {first}")]
    InvalidMetrics {
        /// Number of failed metrics.
        invalid: usize,
        /// Number of metric specs.
        total: usize,
        /// The first failure.
        first: Box<HpaError>,
    },
    /// A configuration value is out of range ([`crate::hpa::Hpa::new`]).
    #[error("invalid HPA configuration: {0}")]
    InvalidConfig(String),
    /// A reference case could not be read ([`crate::hpa::cases`]); the message names the field.
    #[error("invalid case input: {0}")]
    CaseInput(String),
}

impl HpaError {
    /// Wraps `self` with a context string, as Go's `fmt.Errorf("context: %v", err)`.
    pub fn context(self, context: impl Into<String>) -> HpaError {
        HpaError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }
}
