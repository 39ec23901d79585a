//! [`NodeAgent`]: a process-backed stand-in for kubelet, so that a real control plane without
//! kubelet (deploy/local/up.sh: Kubernetes 1.20.2 built from source) runs its Deployments,
//! ReplicaSets and scheduler unchanged while every pod is a real local process that answers
//! HTTP and that Prometheus' `kubernetes_sd` (role `pod`) finds at `podIP:port`.
//!
//! # What it does
//! - **Nodes**: registers each configured Node (creates it, or keeps an existing one), then
//!   patches `/status` with capacity = allocatable ([`NodeCapacity`]), addresses (`InternalIP`
//!   127.0.0.1, `Hostname`), `nodeInfo` (`kubeletVersion` v1.20.2) and conditions (`Ready`
//!   True, the three pressure conditions False), and heart-beats them every
//!   `heartbeat_interval_s` (a Node deleted meanwhile is registered again).
//! - **Pods** (those with `spec.nodeName` = one of its nodes, listed with a field selector per
//!   node every `poll_interval_s`): each new pod gets its own loopback IP (the lowest free one
//!   of `pod_ip_first..=pod_ip_last`, 127.0.0.2 up by default), so every pod listens on its
//!   container port (8080 for all of them) as in a cluster. Its only container's image is
//!   mapped to a binary (`images`) and run as:
//!   `BINARY command[1..] args` — `command[0]`, the entrypoint inside the image, is replaced by
//!   the binary; `$(VAR)` references are expanded as Kubernetes does; the host of
//!   `--listen HOST:PORT` / `--listen=HOST:PORT` becomes the pod IP, and `--listen
//!   POD_IP:PORT` (first containerPort) is appended when absent (`listen_flag`). Environment:
//!   the agent's `PATH`, `HOSTNAME` = pod name, then `env[]` (`value`, and `valueFrom.fieldRef`
//!   for metadata name/namespace/uid/labels/annotations, spec nodeName/serviceAccountName,
//!   status podIP/hostIP; other sources are logged and left unset). Working directory: the
//!   agent's. Stdout and stderr append to `STATE_DIR/pods/<namespace>_<pod>.log`, with a
//!   header line per start. Each process is its own process group.
//! - **Status**: phase Running, `hostIP`, `podIP`, `podIPs`, `startTime`, the container status
//!   (`running.startedAt`, `restartCount`, `ready`, `image`, `imageID` `binary://PATH`,
//!   `containerID` `process://PID`, `lastState.terminated` with exit code and the log's last
//!   lines) and the conditions `PodScheduled` (the scheduler's time, kept), `Initialized`,
//!   `ContainersReady` and `Ready`, whose `lastTransitionTime` changes only on transitions.
//!   Statuses are JSON merge patches of `pods/status`, sent only when they change.
//! - **Readiness**: `readinessProbe.httpGet` (path; port by number or name; `HTTPS` without
//!   certificate checks, as kubelet) or `tcpSocket`, run every poll interval on `podIP:port`
//!   with `probe_timeout_s`: Ready while it answers 2xx (connects). `initialDelaySeconds`,
//!   `periodSeconds` and the thresholds are ignored. No probe, or an `exec`/`grpc` one (not
//!   supported): Ready once running. Liveness and startup probes are not run.
//! - **Exits**: with `restartPolicy` Always (or OnFailure and a non-zero exit) the pod gets
//!   `restartCount + 1`, state `waiting` `CrashLoopBackOff`, Ready False, and a restart after
//!   the back-off (`restart_backoff_initial_s` doubling to `restart_backoff_max_s`: 1 s to 30 s
//!   by default, kubelet's 10 s to 5 min scaled down; reset after a run of twice the cap).
//!   Otherwise the pod ends `Succeeded` or `Failed`. A binary that cannot be executed gives
//!   `RunContainerError` and the same back-off.
//! - **Unrunnable pods** stay Pending, never panic: an image that is not in the map gives
//!   `waiting` reason `ErrImagePull` (the message names the image and the map's keys); a pod
//!   with several containers or init containers gives `CreateContainerError`; an exhausted
//!   IP range gives `ContainerCreating`.
//! - **Deletion**: a pod with `deletionTimestamp` gets SIGTERM, then SIGKILL after
//!   min(`deletionGracePeriodSeconds` (else `terminationGracePeriodSeconds`, else 30),
//!   `termination_grace_cap_s`), and is then force-deleted (`gracePeriodSeconds: 0`, UID
//!   precondition): without kubelet a pod stays Terminating forever. A failed delete is retried
//!   every poll. A pod that vanished from the API has its process stopped the same way.
//! - **Shutdown** ([`NodeAgent::shutdown`]): stops every process (SIGTERM, the grace cap,
//!   SIGKILL, reaped), then per [`ShutdownMode`]: Nodes NotReady and pods shown terminated
//!   (default), or Nodes deleted. Dropping a `NodeAgent` without `shutdown` asks its tasks to
//!   stop the processes; if the runtime itself goes away, tokio kills them (`kill_on_drop`).
//!   A SIGKILLed agent leaves its processes running (no `PR_SET_PDEATHSIG` without `unsafe`).
//!
//! Every start, exit, readiness change, stop and delete is logged with `tracing`;
//! [`NodeAgent::stats`] counts them and [`NodeAgent::pods`] lists what runs.
//!
//! Not done: volumes, service-account tokens, resource limits (processes are not confined),
//! `hostPort`, ConfigMap/Secret env, Lease heartbeats (`kube-node-lease`: the node status
//! heartbeat suffices for 1.20's node lifecycle controller), pod-level `exec`/`logs`.

mod config;
mod launch;
mod pod;
mod reconcile;
mod status;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{binary_for_image, image_repository, NodeAgentConfig, NodeCapacity, ShutdownMode};

use crate::error::{Error, Result};
use reconcile::{Reconciler, Shared};
use status::{node_object, node_status, ts, NodeReady};

/// Counters of a [`NodeAgent`] since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeAgentStats {
    /// Pods whose container was started for the first time.
    pub pods_started: u64,
    /// Container restarts after an exit.
    pub restarts: u64,
    /// Container exits the agent did not ask for.
    pub exits: u64,
    /// Processes stopped by the agent (deletion, pod gone, shutdown).
    pub processes_stopped: u64,
    /// Pods force-deleted from the API after their process stopped.
    pub pods_deleted: u64,
    /// Pods refused with `ErrImagePull` (image not in the map).
    pub image_errors: u64,
    /// Node status heartbeats sent (one per node per interval, the first included).
    pub heartbeats: u64,
    /// Failed API calls (each one logged; the agent retries on the next poll or heartbeat).
    pub api_errors: u64,
}

/// One pod as the agent runs it (see [`NodeAgent::pods`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentPod {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Pod UID.
    pub uid: String,
    /// The agent's node it is bound to.
    pub node: String,
    /// Pod IP, once allocated.
    pub ip: Option<Ipv4Addr>,
    /// Process id while the process runs (or is being stopped).
    pub pid: Option<u32>,
    /// Last readiness.
    pub ready: bool,
    /// Container restarts.
    pub restarts: u32,
    /// `Running`, `CrashLoopBackOff`, `RunContainerError`, `ErrImagePull`,
    /// `CreateContainerError`, `ContainerCreating`, `Succeeded`, `Failed`, `Terminating` or
    /// `Stopped`.
    pub state: String,
    /// When the agent first listed it (bound to its node).
    pub seen_at: SystemTime,
    /// When its process first started.
    pub started_at: Option<SystemTime>,
    /// When it first became Ready.
    pub ready_at: Option<SystemTime>,
}

/// A running node agent (see the module docs). Its tasks run on the tokio runtime that
/// called [`NodeAgent::start`].
pub struct NodeAgent {
    client: Client,
    config: NodeAgentConfig,
    logs_dir: PathBuf,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for NodeAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeAgent")
            .field("nodes", &self.config.nodes)
            .field("stats", &self.stats())
            .finish()
    }
}

fn kube_error(what: String, e: kube::Error) -> Error {
    match &e {
        kube::Error::Api(s) if s.code == 403 => Error::KubeForbidden {
            verb: what.split(' ').next().unwrap_or_default().to_string(),
            resource: what.split(' ').nth(1).unwrap_or_default().to_string(),
            namespace: "(cluster scope)".into(),
            message: s.message.clone(),
        },
        kube::Error::Api(s) if s.code == 401 => Error::KubeUnauthorized { what },
        _ => Error::Kube {
            what,
            attempts: 1,
            source: e,
        },
    }
}

impl NodeAgent {
    /// Validates `config`, resolves the image binaries, creates `STATE_DIR/pods`, registers
    /// every Node and marks it Ready, then spawns the heartbeat and pod loops on the current
    /// tokio runtime.
    ///
    /// # Errors
    /// [`Error::Config`] (invalid value, missing binary: the message names the field or the
    /// image), [`Error::Io`] (the state folder cannot be created), [`Error::KubeForbidden`] or
    /// [`Error::Kube`] (a Node cannot be created or its status patched; the call is named).
    pub async fn start(client: Client, config: NodeAgentConfig) -> Result<NodeAgent> {
        config.validate()?;
        let images = config.resolve_binaries()?;
        let logs_dir = config.state_dir.join("pods");
        std::fs::create_dir_all(&logs_dir).map_err(|source| Error::Io {
            path: logs_dir.clone(),
            source,
        })?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the probe HTTP client: {e}")))?;
        let shared = Arc::new(Shared::default());
        let since = ts(Timestamp::now());
        for node in &config.nodes {
            register(&client, node).await?;
            heartbeat(&client, &config, node, &ready(true, &since)).await?;
            shared.count(|s| s.heartbeats += 1);
            tracing::info!(%node, "node agent: node registered and Ready");
        }
        let (stop, stop_rx) = watch::channel(false);
        let hb = tokio::spawn(heartbeat_loop(
            client.clone(),
            config.clone(),
            Arc::clone(&shared),
            stop_rx.clone(),
            since,
        ));
        let rec = Reconciler::new(
            client.clone(),
            config.clone(),
            images,
            logs_dir.clone(),
            http,
            Arc::clone(&shared),
        );
        let pods = tokio::spawn(rec.run(stop_rx));
        Ok(NodeAgent {
            client,
            config,
            logs_dir,
            shared,
            stop,
            tasks: vec![hb, pods],
        })
    }

    /// Stops every pod process (SIGTERM, at most `termination_grace_cap_s`, SIGKILL; all
    /// reaped), then marks the Nodes NotReady or deletes them ([`ShutdownMode`]).
    ///
    /// # Errors
    /// [`Error::Kube`] / [`Error::KubeForbidden`] for the first Node that could not be
    /// patched or deleted (the processes are stopped regardless).
    pub async fn shutdown(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        let mut first_err = None;
        let since = ts(Timestamp::now());
        for node in &self.config.nodes {
            let r = match self.config.on_shutdown {
                ShutdownMode::NotReady => {
                    let r = NodeReady {
                        ready: false,
                        reason: "NodeAgentStopped",
                        message: "the NimbusGuard node agent stopped".into(),
                        since: since.clone(),
                    };
                    heartbeat(&self.client, &self.config, node, &r).await
                }
                ShutdownMode::Delete => {
                    let api: Api<Node> = Api::all(self.client.clone());
                    match api.delete(node, &DeleteParams::default()).await {
                        Ok(_) => Ok(()),
                        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                        Err(e) => Err(kube_error(format!("delete nodes {node}"), e)),
                    }
                }
            };
            match r {
                Ok(()) => {
                    tracing::info!(%node, mode = ?self.config.on_shutdown, "node agent: node released")
                }
                Err(e) => {
                    tracing::warn!(%node, error = %e, "node agent: cannot release the node");
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The counters so far.
    pub fn stats(&self) -> NodeAgentStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The pods the agent runs, as of its last poll, sorted by namespace and name.
    pub fn pods(&self) -> Vec<AgentPod> {
        self.shared
            .pods
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The Node names it serves.
    pub fn nodes(&self) -> &[String] {
        &self.config.nodes
    }

    /// The log file of pod `namespace/name` (`STATE_DIR/pods/<namespace>_<name>.log`).
    pub fn log_path(&self, namespace: &str, name: &str) -> PathBuf {
        self.logs_dir.join(format!("{namespace}_{name}.log"))
    }

    /// The state folder (`state_dir` of the config).
    pub fn state_dir(&self) -> &Path {
        &self.config.state_dir
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        // Not shut down: the pod loop still stops every process when it sees the flag.
        let _ = self.stop.send(true);
    }
}

fn ready(ready: bool, since: &str) -> NodeReady {
    NodeReady {
        ready,
        reason: if ready {
            "KubeletReady"
        } else {
            "NodeAgentStopped"
        },
        message: if ready {
            "NimbusGuard node agent is posting ready status".into()
        } else {
            String::new()
        },
        since: since.to_string(),
    }
}

/// Creates Node `name`, or keeps it when it exists.
async fn register(client: &Client, name: &str) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(node_object(name))
        .map_err(|e| Error::Config(format!("node_agent.nodes: cannot build Node {name}: {e}")))?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            tracing::info!(node = %name, "node agent: node exists; keeping it");
            Ok(())
        }
        Err(e) => Err(kube_error(format!("create nodes {name}"), e)),
    }
}

/// Patches Node `name`'s status (capacity, addresses, info, conditions) with a heartbeat now.
async fn heartbeat(
    client: &Client,
    config: &NodeAgentConfig,
    name: &str,
    r: &NodeReady,
) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let body = node_status(name, &config.capacity, r, &ts(Timestamp::now()));
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .map(|_| ())
        .map_err(|e| kube_error(format!("patch nodes/status {name}"), e))
}

async fn heartbeat_loop(
    client: Client,
    config: NodeAgentConfig,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    since: String,
) {
    let period = config.heartbeat_interval();
    let r = ready(true, &since);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(period) => {}
        }
        for node in &config.nodes {
            let mut result = heartbeat(&client, &config, node, &r).await;
            if let Err(Error::Kube {
                source: kube::Error::Api(s),
                ..
            }) = &result
            {
                if s.code == 404 {
                    tracing::warn!(%node, "node agent: node was deleted; registering it again");
                    result = match register(&client, node).await {
                        Ok(()) => heartbeat(&client, &config, node, &r).await,
                        Err(e) => Err(e),
                    };
                }
            }
            match result {
                Ok(()) => shared.count(|s| s.heartbeats += 1),
                Err(e) => {
                    shared.count(|s| s.api_errors += 1);
                    tracing::warn!(%node, error = %e, "node agent: heartbeat failed (retried next interval)");
                }
            }
        }
    }
}
