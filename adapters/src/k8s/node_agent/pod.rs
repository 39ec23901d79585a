//! One pod as the agent runs it: its state machine ([`Run`]), starting its process,
//! handling its exit (restart back-off), stopping it and force-deleting the pod, and the
//! status the API should show.

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Preconditions};
use kube::Api;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::launch::{launch, ProbeTarget};
use super::reconcile::Shared;
use super::status::{ts, ContainerState, PodStatusView, Terminated};
use super::AgentPod;

/// What starting and restarting processes needs from the configuration.
pub(super) struct ProcessCtx {
    pub(super) logs_dir: PathBuf,
    pub(super) listen_flag: String,
    pub(super) backoff_initial: Duration,
    pub(super) backoff_max: Duration,
    pub(super) shared: Arc<Shared>,
}

/// What the agent runs for one pod.
pub(super) enum Run {
    /// Cannot be started (unmapped image, unsupported pod, no free IP): Pending.
    Unstartable {
        reason: &'static str,
        message: String,
    },
    Running {
        child: Child,
        pid: u32,
        since: Instant,
    },
    BackOff {
        until: Instant,
        reason: &'static str,
        message: String,
    },
    /// Ended and not restarted (restart policy `Never`/`OnFailure`).
    Done { succeeded: bool },
    /// Being stopped (and force-deleted) by a task.
    Terminating {
        task: JoinHandle<TermOutcome>,
        pid: Option<u32>,
    },
    /// Stopped; waits for the pod to leave the API. `deleted`: the force delete succeeded.
    Gone { deleted: bool },
}

pub(super) struct TermOutcome {
    pub(super) exit: Option<ExitStatus>,
    pub(super) deleted: bool,
}

pub(super) struct Managed {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) uid: String,
    pub(super) node: String,
    pub(super) pod: Pod,
    pub(super) container: Option<Container>,
    pub(super) binary: Option<PathBuf>,
    pub(super) ip: Option<Ipv4Addr>,
    pub(super) probe: ProbeTarget,
    pub(super) run: Run,
    pub(super) restarts: u32,
    pub(super) ready: bool,
    pub(super) ready_since: Timestamp,
    pub(super) start_time: Timestamp,
    /// Start of the current (or last) process.
    pub(super) current_started: Timestamp,
    pub(super) scheduled_at: String,
    pub(super) last: Option<Terminated>,
    pub(super) container_id: Option<String>,
    pub(super) backoff: Duration,
    pub(super) last_patch: Option<Value>,
    pub(super) seen_at: SystemTime,
    pub(super) first_start: Option<SystemTime>,
    pub(super) first_ready: Option<SystemTime>,
}

impl Managed {
    pub(super) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub(super) fn set_ready(&mut self, ready: bool) {
        if ready != self.ready {
            self.ready = ready;
            self.ready_since = Timestamp::now();
            if ready && self.first_ready.is_none() {
                self.first_ready = Some(SystemTime::now());
            }
            tracing::info!(pod = %self.key(), ready, "pod readiness changed");
        }
    }

    pub(super) fn deleting(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }

    /// The status the API should show; `None` when the agent no longer speaks for it.
    pub(super) fn status_view(&self, shutdown: bool) -> Option<PodStatusView> {
        let m = self;
        let c = m.container.as_ref()?;
        let restart_count = m.restarts;
        let running = || ContainerState::Running {
            started_at: ts(m.current_started),
        };
        let (phase, state) = match &m.run {
            Run::Unstartable { reason, message } => (
                "Pending",
                ContainerState::Waiting {
                    reason: reason.to_string(),
                    message: message.clone(),
                },
            ),
            Run::Running { .. } | Run::Terminating { .. } if !shutdown => ("Running", running()),
            Run::BackOff {
                reason, message, ..
            } => (
                "Running",
                ContainerState::Waiting {
                    reason: reason.to_string(),
                    message: message.clone(),
                },
            ),
            Run::Done { succeeded } => (
                if *succeeded { "Succeeded" } else { "Failed" },
                ContainerState::Terminated(m.last.clone()?),
            ),
            Run::Gone { .. } | Run::Running { .. } | Run::Terminating { .. } => {
                let mut t = m.last.clone()?;
                t.reason = "NodeAgentStopped".into();
                ("Running", ContainerState::Terminated(t))
            }
        };
        let last_state = match &state {
            ContainerState::Terminated(_) => None,
            _ => m.last.clone(),
        };
        Some(PodStatusView {
            phase,
            pod_ip: m.ip,
            start_time: ts(m.start_time),
            scheduled_at: m.scheduled_at.clone(),
            container: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            image_id: m
                .binary
                .as_ref()
                .map_or_else(String::new, |b| format!("binary://{}", b.display())),
            container_id: m.container_id.clone(),
            restart_count,
            ready: m.ready && !shutdown,
            ready_since: ts(m.ready_since),
            state,
            last_state,
        })
    }

    /// The pod as [`NodeAgent::pods`](super::NodeAgent::pods) lists it.
    pub(super) fn agent_pod(&self) -> AgentPod {
        let m = self;
        AgentPod {
            namespace: m.namespace.clone(),
            name: m.name.clone(),
            uid: m.uid.clone(),
            node: m.node.clone(),
            ip: m.ip,
            pid: match &m.run {
                Run::Running { pid, .. } => Some(*pid),
                Run::Terminating { pid, .. } => *pid,
                _ => None,
            },
            ready: m.ready,
            restarts: m.restarts,
            state: match &m.run {
                Run::Unstartable { reason, .. } | Run::BackOff { reason, .. } => reason.to_string(),
                Run::Running { .. } => "Running".into(),
                Run::Done { succeeded: true } => "Succeeded".into(),
                Run::Done { succeeded: false } => "Failed".into(),
                Run::Terminating { .. } => "Terminating".into(),
                Run::Gone { .. } => "Stopped".into(),
            },
            seen_at: m.seen_at,
            started_at: m.first_start,
            ready_at: m.first_ready,
        }
    }

    /// Starts the container's process (first start or restart).
    pub(super) fn spawn(&mut self, ctx: &ProcessCtx) -> Run {
        let m = self;
        let (Some(c), Some(bin), Some(ip)) = (&m.container, &m.binary, m.ip) else {
            return Run::Unstartable {
                reason: "CreateContainerError",
                message: "nothing to run".into(),
            };
        };
        let l = launch(&m.pod, c, bin, ip, &m.node, &ctx.listen_flag);
        for w in &l.warnings {
            tracing::warn!(pod = %m.key(), warning = %w, "node agent: container spec");
        }
        let log_path = ctx.logs_dir.join(format!("{}_{}.log", m.namespace, m.name));
        let spawned = (|| {
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)?;
            writeln!(
                log,
                "--- node-agent {}: start {} of container {}: {} {:?}",
                ts(Timestamp::now()),
                m.restarts + 1,
                c.name,
                l.binary.display(),
                l.args
            )?;
            let err = log.try_clone()?;
            let mut cmd = Command::new(&l.binary);
            cmd.args(&l.args).env_clear();
            if let Some(path) = std::env::var_os("PATH") {
                cmd.env("PATH", path);
            }
            cmd.envs(l.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
        })();
        match spawned {
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                if m.first_start.is_none() {
                    m.first_start = Some(SystemTime::now());
                    ctx.shared.count(|s| s.pods_started += 1);
                }
                m.container_id = Some(format!("process://{pid}"));
                tracing::info!(pod = %m.key(), pid, %ip, binary = %l.binary.display(),
                    args = ?l.args, "node agent: container started");
                m.set_ready(m.probe == ProbeTarget::None);
                m.current_started = Timestamp::now();
                Run::Running {
                    child,
                    pid,
                    since: Instant::now(),
                }
            }
            Err(e) => {
                let message = format!(
                    "cannot start {} (log {}): {e}",
                    l.binary.display(),
                    log_path.display()
                );
                tracing::warn!(pod = %m.key(), %message, "node agent: container start failed");
                let delay = m.backoff;
                m.backoff = (delay * 2).min(ctx.backoff_max);
                Run::BackOff {
                    until: Instant::now() + delay,
                    reason: "RunContainerError",
                    message,
                }
            }
        }
    }

    /// The process exited on its own with `status`: record it, then back off for a restart
    /// or end the pod, per `policy` (`restartPolicy`).
    pub(super) fn exited(&mut self, status: ExitStatus, policy: Option<&str>, ctx: &ProcessCtx) {
        let (initial, max) = (ctx.backoff_initial, ctx.backoff_max);
        let m = self;
        let Run::Running { since, pid, .. } = &m.run else {
            return;
        };
        let (ran, pid) = (since.elapsed(), *pid);
        let message = log_tail(&ctx.logs_dir.join(format!("{}_{}.log", m.namespace, m.name)));
        let t = terminated(m, status, message);
        let code = t.exit_code;
        tracing::warn!(pod = %m.key(), pid, %status, ran_s = ran.as_secs_f64(), "node agent: container exited");
        m.last = Some(t);
        m.set_ready(false);
        let restart = match policy {
            Some("Never") => false,
            Some("OnFailure") => code != 0,
            _ => true,
        };
        ctx.shared.count(|s| s.exits += 1);
        if !restart {
            m.run = Run::Done {
                succeeded: code == 0,
            };
            return;
        }
        if ran >= 2 * max {
            m.backoff = initial;
        }
        let delay = m.backoff;
        m.backoff = (delay * 2).min(max);
        m.restarts += 1;
        ctx.shared.count(|s| s.restarts += 1);
        let c = m.container.as_ref().map_or("", |c| c.name.as_str());
        m.run = Run::BackOff {
            until: Instant::now() + delay,
            reason: "CrashLoopBackOff",
            message: format!(
                "back-off {:.1}s restarting failed container={c} pod={}_{}({})",
                delay.as_secs_f64(),
                m.name,
                m.namespace,
                m.uid
            ),
        };
    }
}

/// A [`Terminated`] record of `m`'s current process ending with `status`.
pub(super) fn terminated(m: &Managed, status: ExitStatus, message: String) -> Terminated {
    let (exit_code, signal) = match (status.code(), status.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        (None, None) => (-1, None),
    };
    let started_at = ts(m.current_started);
    Terminated {
        exit_code,
        signal,
        reason: if exit_code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        },
        message,
        started_at,
        finished_at: ts(Timestamp::now()),
        container_id: m.container_id.clone().unwrap_or_default(),
    }
}

/// The last lines of a pod log (at most 1 KiB), for `terminated.message`.
pub(super) fn log_tail(path: &std::path::Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(1024)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let text = if len > 1024 {
            text.split_once('\n')
                .map_or(text.clone(), |(_, t)| t.to_string())
        } else {
            text
        };
        Ok(text.trim().to_string())
    };
    read().unwrap_or_default()
}

/// SIGTERM to `child`, SIGKILL after `grace`, reap; then, with `api`, force-delete the pod
/// (grace 0, UID precondition). Never panics; failures are logged and counted.
pub(super) async fn stop_and_delete(
    key: String,
    child: Option<Child>,
    grace: Duration,
    api: Option<(Api<Pod>, String, String)>,
    shared: Arc<Shared>,
) -> TermOutcome {
    let mut exit = None;
    if let Some(mut child) = child {
        let pid = child.id();
        tracing::info!(pod = %key, ?pid, grace_s = grace.as_secs_f64(), "node agent: stopping container (SIGTERM)");
        if let Some(raw) = pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
        }
        exit = match tokio::time::timeout(grace, child.wait()).await {
            Ok(r) => r.ok(),
            Err(_) => {
                tracing::warn!(pod = %key, ?pid, "node agent: container ignored SIGTERM: SIGKILL");
                let _ = child.start_kill();
                child.wait().await.ok()
            }
        };
        shared.count(|s| s.processes_stopped += 1);
    }
    let mut deleted = false;
    if let Some((api, name, uid)) = api {
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        deleted = match api.delete(&name, &dp).await {
            Ok(_) => true,
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => true,
            Err(e) => {
                shared.count(|s| s.api_errors += 1);
                tracing::warn!(pod = %key, error = %e, "node agent: force delete failed (retried next poll)");
                false
            }
        };
        if deleted {
            shared.count(|s| s.pods_deleted += 1);
            tracing::info!(pod = %key, "node agent: pod force-deleted");
        }
    }
    TermOutcome { exit, deleted }
}
