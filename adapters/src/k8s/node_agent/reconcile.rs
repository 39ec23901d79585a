//! The pod loop: every poll interval, list the nodes' pods, start, restart, probe, stop and
//! force-delete their processes, and patch their statuses. One task owns all pod state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::watch;

use super::config::{binary_for_image, NodeAgentConfig, ShutdownMode};
use super::launch::{free_ip, readiness_target, ProbeTarget};
use super::pod::{stop_and_delete, terminated, Managed, ProcessCtx, Run, TermOutcome};
use super::status::{pod_status, ts};
use super::{AgentPod, NodeAgentStats};

/// State shared between the loop and [`NodeAgent`](super::NodeAgent)'s accessors.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub stats: Mutex<NodeAgentStats>,
    pub pods: Mutex<Vec<AgentPod>>,
}

impl Shared {
    pub(crate) fn count(&self, f: impl FnOnce(&mut NodeAgentStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Everything the loop needs, owned by its task.
pub(crate) struct Reconciler {
    client: Client,
    config: NodeAgentConfig,
    images: BTreeMap<String, PathBuf>,
    http: reqwest::Client,
    shared: Arc<Shared>,
    ctx: ProcessCtx,
    pods: HashMap<String, Managed>,
}

impl Reconciler {
    pub(crate) fn new(
        client: Client,
        config: NodeAgentConfig,
        images: BTreeMap<String, PathBuf>,
        logs_dir: PathBuf,
        http: reqwest::Client,
        shared: Arc<Shared>,
    ) -> Self {
        let ctx = ProcessCtx {
            logs_dir,
            listen_flag: config.listen_flag.clone(),
            backoff_initial: Duration::from_secs_f64(config.restart_backoff_initial_s),
            backoff_max: Duration::from_secs_f64(config.restart_backoff_max_s),
            shared: Arc::clone(&shared),
        };
        Self {
            client,
            config,
            images,
            http,
            shared,
            ctx,
            pods: HashMap::new(),
        }
    }

    /// Ticks every poll interval until `stop` turns true, then stops every process.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.config.poll_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopped = tokio::select! {
                _ = stop.wait_for(|s| *s) => true,
                _ = tick.tick() => false,
            };
            if stopped {
                break;
            }
            self.tick().await;
        }
        self.stop_all().await;
    }

    async fn tick(&mut self) {
        let (listed, complete) = self.list().await;
        let mut seen = HashSet::new();
        for (node, pod) in listed {
            let Some(uid) = pod.metadata.uid.clone() else {
                continue;
            };
            seen.insert(uid.clone());
            match self.pods.get_mut(&uid) {
                Some(m) => m.pod = pod,
                None => {
                    let terminal = matches!(
                        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    );
                    if !terminal || pod.metadata.deletion_timestamp.is_some() {
                        let m = self.admit(uid.clone(), node, pod);
                        self.pods.insert(uid, m);
                    }
                }
            }
        }
        let uids: Vec<String> = self.pods.keys().cloned().collect();
        for uid in uids {
            let listed = seen.contains(&uid);
            if !listed && !complete {
                continue; // a node's list failed: absence proves nothing
            }
            let remove = self.step(&uid, listed).await;
            if remove {
                self.pods.remove(&uid);
            }
        }
        self.probe_all().await;
        self.patch_all().await;
        self.publish();
    }

    async fn list(&self) -> (Vec<(String, Pod)>, bool) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let (mut out, mut complete) = (Vec::new(), true);
        for node in &self.config.nodes {
            let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
            match api.list(&lp).await {
                Ok(l) => out.extend(l.items.into_iter().map(|p| (node.clone(), p))),
                Err(e) => {
                    complete = false;
                    self.shared.count(|s| s.api_errors += 1);
                    tracing::warn!(%node, error = %e, "node agent: cannot list the node's pods");
                }
            }
        }
        (out, complete)
    }

    /// A pod seen for the first time: pick its binary, IP and probe, start its process.
    fn admit(&mut self, uid: String, node: String, pod: Pod) -> Managed {
        let now = Timestamp::now();
        let status = pod.status.as_ref();
        let scheduled_at = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
            .and_then(|c| c.last_transition_time.as_ref())
            .map_or_else(|| ts(now), |t| ts(t.0));
        let restarts = status
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.first())
            .map_or(0, |c| u32::try_from(c.restart_count).unwrap_or(0));
        let spec = pod.spec.clone().unwrap_or_default();
        let container = spec.containers.first().cloned();
        let mut m = Managed {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid,
            node,
            container: container.clone(),
            binary: None,
            ip: None,
            probe: ProbeTarget::None,
            run: Run::Gone { deleted: false },
            restarts,
            ready: false,
            ready_since: now,
            start_time: now,
            current_started: now,
            scheduled_at,
            last: None,
            container_id: None,
            backoff: Duration::from_secs_f64(self.config.restart_backoff_initial_s),
            last_patch: None,
            seen_at: SystemTime::now(),
            first_start: None,
            first_ready: None,
            pod,
        };
        if m.deleting() {
            return m; // deleted before it ever ran here: `step` force-deletes it
        }
        tracing::info!(pod = %m.key(), node = %m.node, "node agent: new pod");
        let unsupported = spec.containers.len() != 1
            || spec.init_containers.as_ref().is_some_and(|c| !c.is_empty());
        m.run = if unsupported {
            Run::Unstartable {
                reason: "CreateContainerError",
                message: format!(
                    "the node agent runs pods of exactly one container and no init container; \
                     this one has {} container(s) and {} init container(s)",
                    spec.containers.len(),
                    spec.init_containers.as_ref().map_or(0, Vec::len)
                ),
            }
        } else if let Some(c) = &container {
            match binary_for_image(&self.images, c.image.as_deref().unwrap_or_default()) {
                None => {
                    self.shared.count(|s| s.image_errors += 1);
                    let keys: Vec<&str> = self.images.keys().map(String::as_str).collect();
                    let message = format!(
                        "image `{}` is not in the node agent's image map (images: {keys:?})",
                        c.image.as_deref().unwrap_or_default()
                    );
                    tracing::warn!(pod = %m.key(), %message, "node agent: ErrImagePull");
                    Run::Unstartable {
                        reason: "ErrImagePull",
                        message,
                    }
                }
                Some(bin) => {
                    m.binary = Some(bin.to_path_buf());
                    self.allocate_and_spawn(&mut m)
                }
            }
        } else {
            Run::Unstartable {
                reason: "CreateContainerError",
                message: "no container".into(),
            }
        };
        m
    }

    fn allocate_and_spawn(&self, m: &mut Managed) -> Run {
        let used: HashSet<Ipv4Addr> = self.pods.values().filter_map(|p| p.ip).collect();
        let (first, last) = (self.config.pod_ip_first, self.config.pod_ip_last);
        let Some(ip) = free_ip(first, last, &used) else {
            return Run::Unstartable {
                reason: "ContainerCreating",
                message: format!(
                    "no free pod IP in {first}..={last} (node_agent.pod_ip_first/last)"
                ),
            };
        };
        m.ip = Some(ip);
        if let Some(c) = &m.container {
            m.probe = readiness_target(c, ip);
            if let ProbeTarget::Invalid(why) = &m.probe {
                tracing::warn!(pod = %m.key(), %why, "node agent: readiness probe can never pass");
            }
        }
        m.spawn(&self.ctx)
    }

    /// Advances one pod; true when its entry can go.
    async fn step(&mut self, uid: &str, listed: bool) -> bool {
        let grace_cap = self.config.termination_grace_cap_s;
        let Some(m) = self.pods.get_mut(uid) else {
            return true;
        };
        // A finished stop task becomes Gone.
        if let Run::Terminating { task, .. } = &mut m.run {
            if !task.is_finished() {
                return false;
            }
            let outcome = task.await.unwrap_or(TermOutcome {
                exit: None,
                deleted: false,
            });
            if let Some(status) = outcome.exit {
                m.last = Some(terminated(m, status, String::new()));
            }
            m.run = Run::Gone {
                deleted: outcome.deleted,
            };
        }
        if !listed {
            if let Run::Gone { .. } = m.run {
                return true;
            }
            tracing::info!(pod = %m.key(), "node agent: pod left the API; stopping its process");
            self.begin_stop(uid, false, Duration::from_secs_f64(grace_cap));
            return false;
        }
        if m.deleting() {
            if !matches!(m.run, Run::Gone { deleted: true }) {
                let grace = m
                    .pod
                    .metadata
                    .deletion_grace_period_seconds
                    .or(m
                        .pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds))
                    .unwrap_or(30)
                    .max(0) as f64;
                self.begin_stop(uid, true, Duration::from_secs_f64(grace.min(grace_cap)));
            }
            return false;
        }
        let policy = m.pod.spec.as_ref().and_then(|s| s.restart_policy.clone());
        match &mut m.run {
            Run::Running { child, .. } => match child.try_wait() {
                Ok(Some(status)) => m.exited(status, policy.as_deref(), &self.ctx),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(pod = %m.key(), error = %e, "node agent: cannot check the process")
                }
            },
            Run::BackOff { until, .. } if Instant::now() >= *until => {
                m.run = m.spawn(&self.ctx);
            }
            _ => {}
        }
        false
    }

    /// Hands the pod's process (if any) to a task that stops it (SIGTERM, `grace`, SIGKILL)
    /// and, with `delete`, force-deletes the pod.
    fn begin_stop(&mut self, uid: &str, delete: bool, grace: Duration) {
        let Some(m) = self.pods.get_mut(uid) else {
            return;
        };
        if matches!(m.run, Run::Terminating { .. }) {
            return;
        }
        let prev = std::mem::replace(&mut m.run, Run::Gone { deleted: false });
        let (child, pid) = match prev {
            Run::Running { child, pid, .. } => (Some(child), Some(pid)),
            _ => (None, None),
        };
        m.set_ready(false);
        let api = delete.then(|| {
            (
                Api::<Pod>::namespaced(self.client.clone(), &m.namespace),
                m.name.clone(),
                m.uid.clone(),
            )
        });
        let (key, shared) = (m.key(), Arc::clone(&self.shared));
        let task = tokio::spawn(stop_and_delete(key, child, grace, api, shared));
        m.run = Run::Terminating { task, pid };
    }

    async fn probe_all(&mut self) {
        let timeout = Duration::from_secs_f64(self.config.probe_timeout_s);
        let mut checks = Vec::new();
        for (uid, m) in &self.pods {
            if !matches!(m.run, Run::Running { .. }) || m.deleting() {
                continue;
            }
            let (uid, target, http) = (uid.clone(), m.probe.clone(), self.http.clone());
            checks.push(async move {
                let ok = match target {
                    ProbeTarget::None => true,
                    ProbeTarget::Invalid(_) => false,
                    ProbeTarget::Http(url) => http
                        .get(&url)
                        .timeout(timeout)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success()),
                    ProbeTarget::Tcp(addr) => {
                        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
                            .await
                            .is_ok_and(|r| r.is_ok())
                    }
                };
                (uid, ok)
            });
        }
        for (uid, ok) in futures::future::join_all(checks).await {
            if let Some(m) = self.pods.get_mut(&uid) {
                m.set_ready(ok);
            }
        }
    }

    async fn patch_all(&mut self) {
        let uids: Vec<String> = self.pods.keys().cloned().collect();
        for uid in uids {
            let Some(m) = self.pods.get(&uid) else {
                continue;
            };
            if matches!(m.run, Run::Gone { .. }) {
                continue;
            }
            let Some(view) = m.status_view(false) else {
                continue;
            };
            let body = pod_status(&view);
            if m.last_patch.as_ref() == Some(&body) {
                continue;
            }
            if self.patch(m, &body).await {
                if let Some(m) = self.pods.get_mut(&uid) {
                    m.last_patch = Some(body);
                }
            }
        }
    }

    async fn patch(&self, m: &Managed, body: &Value) -> bool {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &m.namespace);
        match api
            .patch_status(&m.name, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(_) => true,
            Err(kube::Error::Api(s)) if s.code == 404 => true,
            Err(e) => {
                self.shared.count(|s| s.api_errors += 1);
                tracing::warn!(pod = %m.key(), error = %e, "node agent: cannot patch the pod status");
                false
            }
        }
    }

    fn publish(&self) {
        let mut list: Vec<AgentPod> = self.pods.values().map(Managed::agent_pod).collect();
        list.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        *self.shared.pods.lock().unwrap_or_else(|e| e.into_inner()) = list;
    }

    /// Stops every process (SIGTERM, the grace cap, SIGKILL) and, in `NotReady` mode, tells
    /// the API the containers terminated.
    async fn stop_all(&mut self) {
        let grace = Duration::from_secs_f64(self.config.termination_grace_cap_s);
        // Pods with a process or a pending restart; pods that never ran or ended (Done) keep
        // their status.
        let uids: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, m)| {
                matches!(
                    m.run,
                    Run::Running { .. } | Run::BackOff { .. } | Run::Terminating { .. }
                )
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in &uids {
            self.begin_stop(uid, false, grace);
        }
        for uid in &uids {
            if let Some(m) = self.pods.get_mut(uid) {
                if let Run::Terminating { task, .. } = &mut m.run {
                    let wait = grace + Duration::from_secs(15);
                    let outcome = match tokio::time::timeout(wait, &mut *task).await {
                        Ok(Ok(o)) => Some(o),
                        _ => {
                            task.abort();
                            None
                        }
                    };
                    if let Some(status) = outcome.and_then(|o| o.exit) {
                        m.last = Some(terminated(m, status, String::new()));
                    }
                    m.run = Run::Gone { deleted: false };
                }
            }
        }
        if self.config.on_shutdown == ShutdownMode::NotReady {
            for uid in &uids {
                let Some(m) = self.pods.get(uid) else {
                    continue;
                };
                if m.deleting() {
                    continue;
                }
                if let Some(view) = m.status_view(true) {
                    self.patch(m, &pod_status(&view)).await;
                }
            }
        }
        self.publish();
    }
}
