//! [`KubeScaler`]: a Deployment's replicas through the Kubernetes API (kube-rs): reads and
//! patches the `scale` subresource (`autoscaling/v1` Scale, as the HPA controller does) and
//! lists the Deployment's pods (phase, readiness, start times, requests, restarts) to fill the
//! [`ClusterState`](sim::ClusterState) together with Prometheus.
//!
//! Conflicts (409), throttling (429), server errors (5xx) and transport failures are retried
//! with exponential back-off; 403 and 404 fail at once with [`Error::KubeForbidden`] and
//! [`Error::KubeNotFound`], which name the verb, resource and namespace.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

use super::quantity::{cpu_millicores, memory_bytes};
use crate::error::{Error, Result};
use crate::scaler::{PodInfo, Scaler};

/// Retry settings of [`KubeScaler`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeScalerConfig {
    /// Retries of a transient failure (409, 429, 5xx, transport) after the first attempt.
    /// Default 4.
    pub retries: u32,
    /// First back-off delay, milliseconds (doubles each retry, with jitter). Default 100.
    pub backoff_initial_ms: u64,
    /// Longest back-off delay, milliseconds. Default 2000.
    pub backoff_max_ms: u64,
}

impl Default for KubeScalerConfig {
    fn default() -> Self {
        Self {
            retries: 4,
            backoff_initial_ms: 100,
            backoff_max_ms: 2000,
        }
    }
}

/// One pod of the target as the API shows it (more than [`PodInfo`]: what self-healing and
/// the state need).
#[derive(Debug, Clone, PartialEq)]
pub struct PodDetail {
    /// Pod name.
    pub name: String,
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: String,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `metadata.creationTimestamp`.
    pub created_at: Option<SystemTime>,
    /// Sum of the containers' restart counts.
    pub restarts: u32,
    /// A container's `state.waiting.reason` (e.g. `CrashLoopBackOff`), if any.
    pub waiting_reason: Option<String>,
    /// Sum of the containers' CPU requests, millicores (0 when unset).
    pub cpu_request_milli: u64,
    /// Sum of the containers' memory requests, bytes (0 when unset).
    pub memory_request_bytes: u64,
    /// Assigned node (`spec.nodeName`), if scheduled.
    pub node: Option<String>,
}

/// A Deployment scaled through its `scale` subresource. Blocking [`Scaler`] methods run the
/// async kube-rs calls on `handle`: call them from a blocking thread (e.g. inside
/// `tokio::task::spawn_blocking`), never from an async task.
pub struct KubeScaler {
    name: String,
    deployments: Api<Deployment>,
    pods_api: Api<Pod>,
    handle: tokio::runtime::Handle,
    namespace: String,
    deployment: String,
    config: KubeScalerConfig,
    desired: u32,
    selector: Option<String>,
    pods: Vec<PodInfo>,
    details: Vec<PodDetail>,
}

impl KubeScaler {
    /// A scaler for Deployment `deployment` in `namespace`; reads nothing yet (call
    /// [`Scaler::refresh`] or [`KubeScaler::refresh_async`]).
    pub fn new(
        client: Client,
        handle: tokio::runtime::Handle,
        namespace: &str,
        deployment: &str,
        config: KubeScalerConfig,
    ) -> Self {
        Self {
            name: format!("kube:{namespace}/{deployment}"),
            deployments: Api::namespaced(client.clone(), namespace),
            pods_api: Api::namespaced(client, namespace),
            handle,
            namespace: namespace.to_string(),
            deployment: deployment.to_string(),
            config,
            desired: 0,
            selector: None,
            pods: Vec::new(),
            details: Vec::new(),
        }
    }

    /// The pods as of the last refresh, with phase, restarts and requests, oldest first.
    pub fn pod_details(&self) -> &[PodDetail] {
        &self.details
    }

    /// The Deployment's pod label selector (from the Scale's `status.selector`), once read.
    pub fn selector(&self) -> Option<&str> {
        self.selector.as_deref()
    }

    /// Re-reads `spec.replicas` from the scale subresource and lists the Deployment's pods.
    ///
    /// # Errors
    /// [`Error::KubeForbidden`] (RBAC lacks `get deployments/scale` or `list pods`),
    /// [`Error::KubeNotFound`] (no such Deployment), [`Error::Kube`] after the retries.
    pub async fn refresh_async(&mut self) -> Result<()> {
        let (deployments, name) = (self.deployments.clone(), self.deployment.clone());
        let scale = self
            .call("get", "deployments/scale", &name, || {
                let (d, n) = (deployments.clone(), name.clone());
                async move { d.get_scale(&n).await }
            })
            .await?;
        self.desired = scale
            .spec
            .and_then(|s| s.replicas)
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(0);
        let selector = scale.status.map(|s| s.selector).unwrap_or_default();
        if let Some(sel) = selector.filter(|s| !s.is_empty()) {
            self.selector = Some(sel);
        }
        let Some(selector) = self.selector.clone() else {
            // A Deployment always has a selector; the Scale shows it once the controller has
            // observed the Deployment. Until then there are no pods to show.
            self.pods.clear();
            self.details.clear();
            return Ok(());
        };
        let pods_api = self.pods_api.clone();
        let list = self
            .call("list", "pods", &selector, || {
                let (p, lp) = (pods_api.clone(), ListParams::default().labels(&selector));
                async move { p.list(&lp).await }
            })
            .await?;
        let mut pods: Vec<&Pod> = list.items.iter().collect();
        pods.sort_by(|a, b| {
            let key = |p: &Pod| {
                (
                    p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    p.metadata.name.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        self.pods = pods.iter().map(|p| pod_info(p)).collect();
        self.details = pods.iter().map(|p| pod_detail(p)).collect();
        Ok(())
    }

    /// Patches the scale subresource's `spec.replicas` to `n` (merge patch).
    ///
    /// # Errors
    /// [`Error::KubeForbidden`] (RBAC lacks `patch deployments/scale`), [`Error::KubeNotFound`],
    /// [`Error::Kube`] after the retries.
    pub async fn set_replicas_async(&mut self, n: u32) -> Result<()> {
        let (deployments, name) = (self.deployments.clone(), self.deployment.clone());
        let patch = serde_json::json!({"spec": {"replicas": n}});
        self.call("patch", "deployments/scale", &name, || {
            let (d, nm, p) = (deployments.clone(), name.clone(), patch.clone());
            async move {
                d.patch_scale(&nm, &PatchParams::default(), &Patch::Merge(&p))
                    .await
            }
        })
        .await?;
        self.desired = n;
        Ok(())
    }

    /// Runs `f` with retries of transient failures and maps the final error.
    async fn call<T, F, Fut>(&self, verb: &str, resource: &str, name: &str, f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
    {
        let mut attempts = 0_u32;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.config.backoff_initial_ms))
            .with_max_delay(Duration::from_millis(self.config.backoff_max_ms))
            .with_max_times(self.config.retries as usize)
            .with_jitter();
        let result = f
            .retry(backoff)
            .when(is_transient)
            .notify(|e, delay| {
                attempts += 1;
                tracing::warn!(error = %e, ?delay, verb, resource, name, "Kubernetes API call failed; retrying");
            })
            .await;
        result.map_err(|e| self.map_error(e, verb, resource, name, attempts + 1))
    }

    fn map_error(
        &self,
        e: kube::Error,
        verb: &str,
        resource: &str,
        name: &str,
        attempts: u32,
    ) -> Error {
        api_error(e, verb, resource, &self.namespace, name, attempts)
    }
}

/// A failed API call as this crate's error: 401 is [`Error::KubeUnauthorized`], 403
/// [`Error::KubeForbidden`] and 404 [`Error::KubeNotFound`] (naming the verb, resource and
/// namespace), anything else
/// [`Error::Kube`] with `verb resource namespace/name` and the attempts made.
pub fn api_error(
    e: kube::Error,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
    attempts: u32,
) -> Error {
    match &e {
        kube::Error::Api(s) if s.is_forbidden() => Error::KubeForbidden {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            message: s.message.clone(),
        },
        kube::Error::Api(s) if s.code == 401 => Error::KubeUnauthorized {
            what: format!("{verb} {resource} {namespace}/{name}"),
        },
        kube::Error::Api(s) if s.is_not_found() => Error::KubeNotFound {
            resource: resource.into(),
            name: name.into(),
            namespace: namespace.into(),
        },
        _ => Error::Kube {
            what: format!("{verb} {resource} {namespace}/{name}"),
            attempts,
            source: e,
        },
    }
}

/// Conflicts, throttling, server errors and transport failures are worth a retry; 4xx
/// answers other than 409 and 429 are not.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 409 || s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

impl Scaler for KubeScaler {
    fn name(&self) -> &str {
        &self.name
    }

    fn desired_replicas(&self) -> u32 {
        self.desired
    }

    fn pods(&self) -> Vec<PodInfo> {
        self.pods.clone()
    }

    fn set_replicas(&mut self, n: u32) -> Result<()> {
        let handle = self.handle.clone();
        handle.block_on(self.set_replicas_async(n))
    }

    fn refresh(&mut self) -> Result<()> {
        let handle = self.handle.clone();
        handle.block_on(self.refresh_async())
    }
}

fn is_ready(p: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// A pod as a [`PodInfo`]: address = pod IP and the first container's first port (the port
/// named `http` if any), readiness = the `Ready` condition, start = the first container's
/// `state.running.startedAt` (else `status.startTime` once Running).
pub fn pod_info(p: &Pod) -> PodInfo {
    let status = p.status.as_ref();
    let ready_cond = is_ready(p);
    let ready = ready_cond.is_some_and(|c| c.status == "True");
    let ip: Option<IpAddr> = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|s| s.parse().ok());
    let port = p.spec.as_ref().and_then(|s| {
        let ports: Vec<_> = s
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .collect();
        ports
            .iter()
            .find(|p| p.name.as_deref() == Some("http"))
            .or(ports.first())
            .and_then(|p| u16::try_from(p.container_port).ok())
    });
    let started_at = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|st| st.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .map(|t| SystemTime::from(t.0))
        .or_else(|| {
            status
                .filter(|s| s.phase.as_deref() == Some("Running"))
                .and_then(|s| s.start_time.as_ref())
                .map(|t| SystemTime::from(t.0))
        });
    PodInfo {
        name: p.metadata.name.clone().unwrap_or_default(),
        addr: ip.zip(port).map(|(ip, port)| SocketAddr::new(ip, port)),
        ready,
        ready_since: ready_cond
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| SystemTime::from(t.0)),
        started_at,
        terminating: p.metadata.deletion_timestamp.is_some(),
    }
}

/// A pod as a [`PodDetail`].
pub fn pod_detail(p: &Pod) -> PodDetail {
    let status = p.status.as_ref();
    let statuses = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let (mut cpu, mut mem) = (0_u64, 0_u64);
    if let Some(spec) = &p.spec {
        for c in &spec.containers {
            if let Some(req) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) {
                cpu += req
                    .get("cpu")
                    .and_then(|q| cpu_millicores(&q.0))
                    .unwrap_or(0);
                mem += req
                    .get("memory")
                    .and_then(|q| memory_bytes(&q.0))
                    .unwrap_or(0);
            }
        }
    }
    PodDetail {
        name: p.metadata.name.clone().unwrap_or_default(),
        phase: status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into()),
        ready: is_ready(p).is_some_and(|c| c.status == "True"),
        created_at: p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| SystemTime::from(t.0)),
        restarts: statuses
            .iter()
            .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
            .sum(),
        waiting_reason: statuses
            .iter()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone()),
        cpu_request_milli: cpu,
        memory_request_bytes: mem,
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn api_errors_name_the_status_the_call_and_what_to_do() {
        let msg = |code: u16, reason: &str, verb: &str, attempts: u32| {
            let e = kube::core::Status::failure("refused", reason).with_code(code);
            api_error(
                kube::Error::Api(e.boxed()),
                verb,
                "deployments/scale",
                "ns",
                "web",
                attempts,
            )
            .to_string()
        };
        assert_eq!(
            msg(401, "Unauthorized", "get", 1),
            "Kubernetes API: `get deployments/scale ns/web`: the credentials were rejected \
             (HTTP 401 Unauthorized): check the kubeconfig's token or client certificate"
        );
        let e = msg(403, "Forbidden", "patch", 1);
        assert!(
            e.starts_with(
                "Kubernetes API: `patch` on deployments/scale in namespace ns is forbidden"
            ) && e.ends_with(": refused"),
            "{e}"
        );
        assert_eq!(
            msg(404, "NotFound", "get", 1),
            "Kubernetes API: deployments/scale web not found in namespace ns"
        );
        assert_eq!(
            msg(500, "InternalError", "get", 3),
            "Kubernetes API: `get deployments/scale ns/web` failed after 3 attempt(s)"
        );
    }

    #[test]
    fn a_running_ready_pod() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2026-11-30T10:00:00Z"},
            "spec": {"nodeName": "node-a", "containers": [{
                "name": "app", "image": "nimbusguard/workload:dev",
                "ports": [{"containerPort": 9000, "name": "metrics"}, {"containerPort": 8080, "name": "http"}],
                "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}
            }, {
                "name": "sidecar", "image": "x",
                "resources": {"requests": {"cpu": "0.5", "memory": "1G"}}
            }]},
            "status": {
                "phase": "Running", "podIP": "127.0.0.7",
                "startTime": "2026-11-30T10:00:01Z",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T10:00:05Z"}],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 2, "image": "x", "imageID": "",
                    "state": {"running": {"startedAt": "2026-11-30T10:00:02Z"}}}]
            }
        }));
        let info = pod_info(&p);
        assert_eq!(info.name, "web-1");
        assert_eq!(info.addr, Some("127.0.0.7:8080".parse().unwrap()));
        assert!(info.ready);
        assert!(!info.terminating);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_032_800);
        assert_eq!(info.started_at, Some(t0 + Duration::from_secs(2)));
        assert_eq!(info.ready_since, Some(t0 + Duration::from_secs(5)));
        let d = pod_detail(&p);
        assert_eq!(d.phase, "Running");
        assert_eq!(d.restarts, 2);
        assert_eq!(d.cpu_request_milli, 750);
        assert_eq!(d.memory_request_bytes, 64 * 1024 * 1024 + 1_000_000_000);
        assert_eq!(d.node.as_deref(), Some("node-a"));
        assert_eq!(d.created_at, Some(t0));
    }

    #[test]
    fn a_pending_pod_and_a_crash_looping_one() {
        let pending = pod(serde_json::json!({
            "metadata": {"name": "web-2"},
            "spec": {"containers": [{"name": "app", "image": "x"}]},
            "status": {"phase": "Pending"}
        }));
        let info = pod_info(&pending);
        assert_eq!(info.addr, None);
        assert!(!info.ready);
        assert_eq!(info.started_at, None);
        assert_eq!(pod_detail(&pending).cpu_request_milli, 0);

        let looping = pod(serde_json::json!({
            "metadata": {"name": "web-3", "deletionTimestamp": "2026-11-30T10:00:00Z"},
            "spec": {"containers": [{"name": "app", "image": "x"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "app", "ready": false,
                "restartCount": 5, "image": "x", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        }));
        let d = pod_detail(&looping);
        assert_eq!(d.waiting_reason.as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(d.restarts, 5);
        assert!(pod_info(&looping).terminating);
    }

    #[test]
    fn transient_errors() {
        let status = |code: u16| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..Default::default()
            }))
        };
        for code in [409, 429, 500, 503] {
            assert!(is_transient(&status(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(!is_transient(&status(code)), "{code}");
        }
    }
}
