//! The `NimbusScaler` custom resource (group `nimbusguard.io`, version `v1alpha1`, namespaced,
//! short name `nsc`): what the controller reconciles. `nimbusguard crd` prints its
//! CustomResourceDefinition ([`crd_yaml`]); `deploy/base/crd.yaml` is that output.
//!
//! Field names follow the `autoscaling/v2` HorizontalPodAutoscaler where the meaning is the
//! same (`scaleTargetRef`, `minReplicas`, `maxReplicas`, `targetCPUUtilizationPercentage` of
//! `autoscaling/v1`), and status conditions follow the Kubernetes API conventions
//! (`type`, `status`, `reason`, `message`, `lastTransitionTime`).

use kube::CustomResource;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a `NimbusScaler`: which Deployment, which policy, within which limits.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "nimbusguard.io",
    version = "v1alpha1",
    kind = "NimbusScaler",
    namespaced,
    status = "NimbusScalerStatus",
    shortname = "nsc",
    category = "all",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.scaleTargetRef.name"}"#,
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.minReplicas"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.maxReplicas"}"#,
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".status.replicas"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.desiredReplicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".status.lastDecision.source"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NimbusScalerSpec {
    /// The Deployment to scale, in the resource's namespace (through its `scale` subresource).
    pub scale_target_ref: ScaleTargetRef,
    /// Lower bound on replicas. Default 1.
    #[serde(default = "default_min_replicas")]
    pub min_replicas: u32,
    /// Upper bound on replicas.
    pub max_replicas: u32,
    /// Largest change of one decision, replicas. Default 4.
    #[serde(default = "default_max_step")]
    pub max_step: u32,
    /// Minimum time between two replica changes, seconds. Default 30.
    #[serde(default = "default_cooldown_seconds")]
    pub cooldown_seconds: u32,
    /// Time between two decisions, seconds (the HPA's sync period is 15). Default 15.
    #[serde(default = "default_decision_interval_seconds")]
    pub decision_interval_seconds: u32,
    /// Who decides while the metrics are fresh. Default: the HPA rules.
    #[serde(default)]
    pub policy: PolicySource,
    /// The HPA rules that decide while the metrics are stale, missing or unreachable.
    #[serde(default)]
    pub fallback: FallbackSpec,
    /// Where the metrics come from.
    #[serde(default)]
    pub prometheus: PrometheusSpec,
    /// How failed scale-ups are detected and handled.
    #[serde(default)]
    pub self_healing: SelfHealingSpec,
}

/// The scaled Deployment (`apps/v1`, same namespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    /// Deployment name.
    pub name: String,
}

/// Where the serving policy comes from (exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PolicySource {
    /// The Kubernetes HPA rules (`fallback`'s target) decide always.
    Hpa {},
    /// A `nimbusguard run` output folder inside the operator's image or a mounted volume.
    File {
        /// The folder (`config.toml`, `policies/`).
        run: String,
        /// The agent's name in that run's config.
        agent: String,
    },
    /// A ConfigMap in the resource's namespace holding a run folder's `config.toml` and
    /// `policies/<agent>.json` (key `<agent>.json`).
    ConfigMap {
        /// ConfigMap name.
        name: String,
        /// The agent's name in the run's config.
        agent: String,
    },
    /// A model version of MLflow's registry, as `nimbusguard run` registers each trained
    /// policy; downloaded with its run's config and loaded like a run folder.
    MlflowModel {
        /// `models:/<name>/<version>`, the version a number or `latest`.
        uri: String,
        /// MLflow tracking server, e.g. `http://mlflow:5000` (absent or empty: the controller's
        /// `MLFLOW_TRACKING_URI`).
        #[serde(
            rename = "trackingUri",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        tracking_uri: Option<String>,
    },
}

impl Default for PolicySource {
    fn default() -> Self {
        PolicySource::Hpa {}
    }
}

/// The HPA fallback rules (the Kubernetes HPA controller's algorithm; the timing fields are
/// kube-controller-manager's `--horizontal-pod-autoscaler-*` flags, with their defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct FallbackSpec {
    /// Target CPU utilization, percent of the pods' CPU request (`autoscaling/v1`'s field).
    /// Default 50.
    #[serde(rename = "targetCPUUtilizationPercentage")]
    pub target_cpu_utilization_percentage: u32,
    /// Scale-down stabilization window, seconds (`--horizontal-pod-autoscaler-downscale-
    /// stabilization`). Default 300.
    pub scale_down_stabilization_seconds: u32,
    /// CPU samples of pods younger than this are treated with care, seconds
    /// (`--horizontal-pod-autoscaler-cpu-initialization-period`). Default 300.
    pub cpu_initialization_period_seconds: u32,
    /// Readiness changes within this time of the start are taken as start-up, seconds
    /// (`--horizontal-pod-autoscaler-initial-readiness-delay`). Default 30.
    pub initial_readiness_delay_seconds: u32,
}

impl Default for FallbackSpec {
    fn default() -> Self {
        Self {
            target_cpu_utilization_percentage: 50,
            scale_down_stabilization_seconds: 300,
            cpu_initialization_period_seconds: 300,
            initial_readiness_delay_seconds: 30,
        }
    }
}

/// The Prometheus server the state is read from (queries:
/// [`PromQueries::in_cluster`](crate::state::PromQueries::in_cluster): job `workload`, pods
/// labelled `pod`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Base URL. Default `http://prometheus:9090`.
    pub url: String,
    /// Metrics older than this are stale (the HPA fallback decides), seconds. Default 60.
    #[serde(default = "default_stale_after_seconds")]
    pub stale_after_seconds: u32,
}

impl Default for PrometheusSpec {
    fn default() -> Self {
        Self {
            url: "http://prometheus:9090".into(),
            stale_after_seconds: default_stale_after_seconds(),
        }
    }
}

/// Self-healing: a scale-up whose new pods stay Pending or crash-loop longer than
/// `pendingDeadlineSeconds` is retried up to `maxRetries` times (with back-off), then reverted
/// to the replicas that were Ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelfHealingSpec {
    /// How long a new pod may stay un-Ready (Pending, crash-looping), seconds. Default 120.
    pub pending_deadline_seconds: u32,
    /// Scale-up retries before reverting. Default 3.
    pub max_retries: u32,
}

impl Default for SelfHealingSpec {
    fn default() -> Self {
        Self {
            pending_deadline_seconds: 120,
            max_retries: 3,
        }
    }
}

fn default_min_replicas() -> u32 {
    1
}
fn default_max_step() -> u32 {
    4
}
fn default_cooldown_seconds() -> u32 {
    30
}
fn default_decision_interval_seconds() -> u32 {
    15
}
fn default_stale_after_seconds() -> u32 {
    60
}

impl NimbusScalerSpec {
    /// Checks the fields the schema cannot.
    ///
    /// # Errors
    /// A message naming the field (`spec.maxReplicas`, ...) and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        if self.scale_target_ref.name.is_empty() {
            return Err("spec.scaleTargetRef.name: expected a Deployment name".into());
        }
        if self.min_replicas == 0 {
            return Err("spec.minReplicas: expected at least 1".into());
        }
        if self.max_replicas < self.min_replicas {
            return Err(format!(
                "spec.maxReplicas: expected >= spec.minReplicas ({}), got {}",
                self.min_replicas, self.max_replicas
            ));
        }
        if self.max_step == 0 {
            return Err("spec.maxStep: expected at least 1".into());
        }
        if self.decision_interval_seconds == 0 {
            return Err("spec.decisionIntervalSeconds: expected at least 1".into());
        }
        let t = self.fallback.target_cpu_utilization_percentage;
        if t == 0 || t > 1000 {
            return Err(format!(
                "spec.fallback.targetCPUUtilizationPercentage: expected 1..=1000, got {t}"
            ));
        }
        if self.prometheus.url.is_empty() {
            return Err("spec.prometheus.url: expected a URL".into());
        }
        if let PolicySource::MlflowModel { uri, .. } = &self.policy {
            parse_model_uri(uri).map_err(|e| format!("spec.policy.mlflowModel.uri: {e}"))?;
        }
        Ok(())
    }
}

/// Splits an MLflow registry URI `models:/<name>/<version>` into name and version: the subset
/// of MLflow's `models:/` forms (`mlflow.store.artifact.utils.models`) that this project
/// serves, a name (not blank, no `/`) and a version that is a positive number or `latest`
/// (any case, as MLflow reads it; returned as `latest`). Stages (`models:/m/Production`,
/// deprecated by MLflow) and aliases (`models:/m@champion`) are not supported.
///
/// # Errors
/// Any other shape, with what was expected.
pub fn parse_model_uri(uri: &str) -> Result<(&str, &str), String> {
    let shape = || format!("expected `models:/<name>/<version>`, got `{uri}`");
    let rest = uri.strip_prefix("models:/").ok_or_else(shape)?;
    let (name, version) = rest
        .split_once('/')
        .filter(|(n, v)| !n.trim().is_empty() && !v.is_empty())
        .ok_or_else(shape)?;
    if version.contains('/') {
        return Err(format!(
            "expected `models:/<name>/<version>` (a name without `/`), got `{uri}`"
        ));
    }
    let numbered =
        version.bytes().all(|b| b.is_ascii_digit()) && version.parse::<u64>().is_ok_and(|v| v > 0);
    if version.eq_ignore_ascii_case("latest") {
        return Ok((name, "latest"));
    }
    if !numbered {
        return Err(format!(
            "{uri}: expected a version number (1, 2, ...) or `latest`, got `{version}`"
        ));
    }
    Ok((name, version))
}

/// Observed state, written by the controller after each decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NimbusScalerStatus {
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods of the target (not terminating).
    #[serde(default)]
    pub replicas: u32,
    /// Ready pods of the target.
    #[serde(default)]
    pub ready_replicas: u32,
    /// The Deployment's `spec.replicas` after the last decision.
    #[serde(default)]
    pub desired_replicas: u32,
    /// The last decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<LastDecision>,
    /// Reward of the decision before the last one (the simulator env's reward), once scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reward: Option<f64>,
    /// Whether the HPA fallback decided the last decision, and why.
    #[serde(default)]
    pub fallback: FallbackStatus,
    /// Self-healing state of the last scale-up.
    #[serde(default)]
    pub self_healing: SelfHealingStatus,
    /// Decisions taken since the controller started for this resource.
    #[serde(default)]
    pub decisions: u64,
    /// `Ready` (deciding), `FallbackActive` (HPA rules decide), `Degraded` (scaling failed,
    /// being healed), with the API conventions' fields.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// One decision as the status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastDecision {
    /// When, RFC 3339.
    pub time: String,
    /// `interval` or `trigger`.
    pub cause: String,
    /// `agent` or `hpa_fallback`.
    pub source: String,
    /// The deciding agent's name.
    pub decided_by: String,
    /// Replicas before.
    pub from: u32,
    /// Replicas asked for (after the safety limits).
    pub to: u32,
    /// Replicas the deciding agent wished for.
    pub wished: u32,
    /// Why: the metrics' health and the limit that applied, in words.
    pub reason: String,
}

/// Fallback state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FallbackStatus {
    /// The HPA rules decided the last decision.
    pub active: bool,
    /// The metrics' health when active (`stale`, `missing`, `unreachable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Self-healing state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelfHealingStatus {
    /// Retries of the current scale-up so far.
    pub retries: u32,
    /// Recoveries (retries and reverts) since the controller started for this resource.
    pub recoveries: u32,
    /// The last recovery, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recovery: Option<String>,
}

/// A status condition (Kubernetes API conventions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `FallbackActive` or `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// When `status` last changed, RFC 3339.
    pub last_transition_time: String,
}

/// The CustomResourceDefinition of [`NimbusScaler`] as YAML (`apiextensions.k8s.io/v1`), as
/// `nimbusguard crd` prints it and `deploy/base/crd.yaml` holds it.
///
/// # Errors
/// Only if the YAML encoder fails (it does not for this type).
pub fn crd_yaml() -> Result<String, String> {
    let crd = NimbusScaler::crd();
    let body = serde_saphyr::to_string(&crd).map_err(|e| e.to_string())?;
    Ok(format!(
        "# Generated by `nimbusguard crd`; do not edit (the NimbusScaler type in \
         adapters/src/k8s/crd.rs is the source).\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json() -> serde_json::Value {
        serde_json::json!({
            "scaleTargetRef": {"name": "workload-app"},
            "maxReplicas": 10,
            "policy": {"configMap": {"name": "workload-policy", "agent": "q-learning"}},
            "fallback": {"targetCPUUtilizationPercentage": 60}
        })
    }

    #[test]
    fn spec_defaults_and_names_follow_the_hpa() {
        let spec: NimbusScalerSpec = serde_json::from_value(spec_json()).unwrap();
        assert_eq!(spec.min_replicas, 1);
        assert_eq!(spec.max_replicas, 10);
        assert_eq!(spec.decision_interval_seconds, 15);
        assert_eq!(spec.cooldown_seconds, 30);
        assert_eq!(spec.fallback.target_cpu_utilization_percentage, 60);
        assert_eq!(
            spec.policy,
            PolicySource::ConfigMap {
                name: "workload-policy".into(),
                agent: "q-learning".into()
            }
        );
        assert_eq!(spec.prometheus.stale_after_seconds, 60);
        assert_eq!(spec.self_healing, SelfHealingSpec::default());
        spec.validate().unwrap();
        // Round trip keeps the API's field names.
        let back = serde_json::to_value(&spec).unwrap();
        assert_eq!(back["scaleTargetRef"]["name"], "workload-app");
        assert_eq!(back["fallback"]["targetCPUUtilizationPercentage"], 60);
    }

    #[test]
    fn validate_names_the_field() {
        let mut spec: NimbusScalerSpec = serde_json::from_value(spec_json()).unwrap();
        spec.max_replicas = 0;
        assert!(spec.validate().unwrap_err().starts_with("spec.maxReplicas"));
        spec.max_replicas = 3;
        spec.policy = PolicySource::MlflowModel {
            uri: "runs:/abc".into(),
            tracking_uri: Some("http://mlflow:5000".into()),
        };
        assert!(spec
            .validate()
            .unwrap_err()
            .starts_with("spec.policy.mlflowModel.uri"));
    }

    #[test]
    fn model_uris() {
        assert_eq!(parse_model_uri("models:/ng-q/3"), Ok(("ng-q", "3")));
        assert!(parse_model_uri("models:/ng-q").is_err());
        assert!(parse_model_uri("models:/ng-q/").is_err());
        assert!(parse_model_uri("runs:/x/y").is_err());
        assert_eq!(parse_model_uri("models:/m/latest"), Ok(("m", "latest")));
        assert_eq!(parse_model_uri("models:/m/LATEST"), Ok(("m", "latest")));
        assert!(parse_model_uri("models:/ /3").is_err());
        assert!(parse_model_uri("models:/m@champion").is_err());
        for bad in [
            "models:/x/abc",
            "models:/x/0",
            "models:/x/+3",
            "models:/x/-1",
            "models:/x/v1",
        ] {
            let e = parse_model_uri(bad).unwrap_err();
            assert!(
                e.contains("version number (1, 2, ...) or `latest`"),
                "{bad}: {e}"
            );
        }
        let e = parse_model_uri("models:/a/b/3").unwrap_err();
        assert!(e.contains("a name without `/`"), "{e}");
    }

    #[test]
    fn crd_is_namespaced_with_status_and_the_short_name() {
        let yaml = crd_yaml().unwrap();
        let crd: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(crd["kind"], "CustomResourceDefinition");
        assert_eq!(crd["metadata"]["name"], "nimbusscalers.nimbusguard.io");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["shortNames"][0], "nsc");
        let v = &crd["spec"]["versions"][0];
        assert_eq!(v["name"], "v1alpha1");
        assert!(v["subresources"]["status"].is_object());
        let props = &v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert_eq!(props["maxReplicas"]["type"], "integer");
        assert!(props["policy"]["properties"]["configMap"].is_object());
        // The generated file in deploy/ is this output.
        let committed = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/base/crd.yaml"),
        )
        .unwrap();
        assert_eq!(
            committed, yaml,
            "deploy/base/crd.yaml is stale: run `cargo run -- crd > deploy/base/crd.yaml`"
        );
    }
}
