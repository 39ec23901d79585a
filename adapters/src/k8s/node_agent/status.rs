//! The JSON the agent writes: Node objects and statuses, pod statuses. Built as plain JSON
//! (not k8s-openapi types) so only fields the 1.20 server knows are sent; patched with JSON
//! merge patches, whose arrays (conditions, containerStatuses) replace the server's whole.

use std::net::Ipv4Addr;

use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

use super::config::NodeCapacity;

/// The kubelet version the agent reports (the control plane's).
pub(crate) const KUBELET_VERSION: &str = "v1.20.2";

/// `t` as Kubernetes writes times (RFC 3339, whole seconds, UTC).
pub(crate) fn ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A new Node object named `name`, labelled as kubelet labels its node.
pub(crate) fn node_object(name: &str) -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": arch,
                "node.nimbusguard.io/agent": "process",
            },
        },
    })
}

/// The Ready condition of a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeReady {
    /// `True` or `False`.
    pub ready: bool,
    /// CamelCase reason (`KubeletReady`, `NodeAgentStopped`).
    pub reason: &'static str,
    /// Human message.
    pub message: String,
    /// When `ready` last changed (RFC 3339).
    pub since: String,
}

/// A node status merge patch: capacity, allocatable, addresses, nodeInfo and the conditions
/// (Ready plus the three pressure conditions, all False), heart-beaten at `now`.
pub(crate) fn node_status(name: &str, cap: &NodeCapacity, ready: &NodeReady, now: &str) -> Value {
    let resources = json!({
        "cpu": format!("{}m", cap.cpu_millicores),
        "memory": cap.memory_bytes.to_string(),
        "pods": cap.pods.to_string(),
    });
    let pressure = |t: &str, reason: &str, msg: &str| {
        json!({"type": t, "status": "False", "reason": reason, "message": msg,
               "lastHeartbeatTime": now, "lastTransitionTime": ready.since})
    };
    json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": name},
        ],
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "",
            "kernelVersion": "", "osImage": "NimbusGuard node agent (processes)",
            "containerRuntimeVersion": "process://0.1",
            "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux", "architecture": std::env::consts::ARCH,
        },
        "conditions": [
            pressure("MemoryPressure", "KubeletHasSufficientMemory", "node agent has sufficient memory available"),
            pressure("DiskPressure", "KubeletHasNoDiskPressure", "node agent has no disk pressure"),
            pressure("PIDPressure", "KubeletHasSufficientPID", "node agent has sufficient PID available"),
            {"type": "Ready", "status": if ready.ready { "True" } else { "False" },
             "reason": ready.reason, "message": ready.message,
             "lastHeartbeatTime": now, "lastTransitionTime": ready.since},
        ],
    }})
}

/// A container that ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Terminated {
    /// Exit code (128 + signal when killed by one, as container runtimes report).
    pub exit_code: i32,
    /// Signal number, when killed by one.
    pub signal: Option<i32>,
    /// `Completed` (exit 0), `Error`, or another CamelCase reason.
    pub reason: String,
    /// The end of its log (up to 1 KiB), as kubelet's `FallbackToLogsOnError`.
    pub message: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub finished_at: String,
    /// `process://PID`.
    pub container_id: String,
}

impl Terminated {
    fn json(&self) -> Value {
        let mut t = json!({
            "exitCode": self.exit_code, "reason": self.reason,
            "startedAt": self.started_at, "finishedAt": self.finished_at,
            "containerID": self.container_id,
        });
        if let Some(s) = self.signal {
            t["signal"] = json!(s);
        }
        if !self.message.is_empty() {
            t["message"] = json!(self.message);
        }
        t
    }
}

/// The state of the (single) container.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ContainerState {
    /// Running since (RFC 3339).
    Running { started_at: String },
    /// Not running: `ErrImagePull`, `CrashLoopBackOff`, `ContainerCreating`, ...
    Waiting { reason: String, message: String },
    /// Ended and not restarted (restart policy, shutdown).
    Terminated(Terminated),
}

/// Everything a pod status is built from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PodStatusView {
    /// `Pending`, `Running`, `Succeeded` or `Failed`.
    pub phase: &'static str,
    /// The pod IP, once allocated.
    pub pod_ip: Option<Ipv4Addr>,
    /// `status.startTime`: when the agent admitted the pod.
    pub start_time: String,
    /// `PodScheduled` transition time (the scheduler's, kept).
    pub scheduled_at: String,
    /// Container name.
    pub container: String,
    /// Container image (as in the spec).
    pub image: String,
    /// `imageID`: `binary://PATH`, empty when the image is not mapped.
    pub image_id: String,
    /// `process://PID` of the current or last process.
    pub container_id: Option<String>,
    /// Restarts so far.
    pub restart_count: u32,
    /// Ready (container and pod).
    pub ready: bool,
    /// When `ready` last changed (RFC 3339).
    pub ready_since: String,
    /// Current state.
    pub state: ContainerState,
    /// The previous run, once there was one.
    pub last_state: Option<Terminated>,
}

/// A pod status merge patch.
pub(crate) fn pod_status(v: &PodStatusView) -> Value {
    let tf = |b: bool| if b { "True" } else { "False" };
    let not_ready = json!({"reason": "ContainersNotReady",
        "message": format!("containers with unready status: [{}]", v.container)});
    let cond = |t: &str, ready: bool| {
        let mut c = json!({"type": t, "status": tf(ready), "lastProbeTime": null,
                           "lastTransitionTime": v.ready_since});
        if !ready {
            c["reason"] = not_ready["reason"].clone();
            c["message"] = not_ready["message"].clone();
        }
        c
    };
    let (state, started) = match &v.state {
        ContainerState::Running { started_at } => {
            (json!({"running": {"startedAt": started_at}}), true)
        }
        ContainerState::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            (json!({"waiting": w}), false)
        }
        ContainerState::Terminated(t) => (json!({"terminated": t.json()}), false),
    };
    let mut cs = json!({
        "name": v.container, "image": v.image, "imageID": v.image_id,
        "ready": v.ready, "started": started, "restartCount": v.restart_count,
        "state": state,
        "lastState": v.last_state.as_ref().map_or(json!({}), |t| json!({"terminated": t.json()})),
    });
    if let Some(id) = &v.container_id {
        cs["containerID"] = json!(id);
    }
    let ip = v.pod_ip.map(|ip| ip.to_string());
    json!({"status": {
        "phase": v.phase,
        "hostIP": "127.0.0.1",
        "podIP": ip,
        "podIPs": ip.as_ref().map(|ip| json!([{"ip": ip}])),
        "startTime": v.start_time,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastProbeTime": null,
             "lastTransitionTime": v.start_time},
            cond("Ready", v.ready),
            cond("ContainersReady", v.ready),
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null,
             "lastTransitionTime": v.scheduled_at},
        ],
        "containerStatuses": [cs],
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_status_has_capacity_addresses_and_heartbeat() {
        let cap = NodeCapacity {
            cpu_millicores: 2500,
            memory_bytes: 1 << 30,
            pods: 7,
        };
        let ready = NodeReady {
            ready: true,
            reason: "KubeletReady",
            message: "ok".into(),
            since: "2026-01-01T00:00:00Z".into(),
        };
        let s = &node_status("n1", &cap, &ready, "2026-01-01T00:00:10Z")["status"];
        assert_eq!(
            s["capacity"],
            json!({"cpu": "2500m", "memory": "1073741824", "pods": "7"})
        );
        assert_eq!(s["allocatable"], s["capacity"]);
        assert_eq!(
            s["addresses"][0],
            json!({"type": "InternalIP", "address": "127.0.0.1"})
        );
        assert_eq!(s["nodeInfo"]["kubeletVersion"], "v1.20.2");
        let conds = s["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 4);
        let r = conds.iter().find(|c| c["type"] == "Ready").unwrap();
        assert_eq!(r["status"], "True");
        assert_eq!(r["lastHeartbeatTime"], "2026-01-01T00:00:10Z");
        assert_eq!(r["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert!(conds
            .iter()
            .filter(|c| c["type"] != "Ready")
            .all(|c| c["status"] == "False"));
        assert_eq!(
            node_object("n1")["metadata"]["labels"]["kubernetes.io/hostname"],
            "n1"
        );
    }

    fn view() -> PodStatusView {
        PodStatusView {
            phase: "Running",
            pod_ip: Some(Ipv4Addr::new(127, 0, 0, 2)),
            start_time: "T0".into(),
            scheduled_at: "TS".into(),
            container: "app".into(),
            image: "img:dev".into(),
            image_id: "binary:///bin/app".into(),
            container_id: Some("process://42".into()),
            restart_count: 0,
            ready: true,
            ready_since: "T1".into(),
            state: ContainerState::Running {
                started_at: "T0".into(),
            },
            last_state: None,
        }
    }

    #[test]
    fn running_ready_pod_status() {
        let s = &pod_status(&view())["status"];
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "127.0.0.2");
        assert_eq!(s["podIPs"], json!([{"ip": "127.0.0.2"}]));
        assert_eq!(s["hostIP"], "127.0.0.1");
        let c = &s["containerStatuses"][0];
        assert_eq!(c["containerID"], "process://42");
        assert_eq!(c["state"], json!({"running": {"startedAt": "T0"}}));
        assert_eq!(c["lastState"], json!({}));
        assert_eq!(
            (c["ready"].clone(), c["started"].clone()),
            (json!(true), json!(true))
        );
        let conds = s["conditions"].as_array().unwrap();
        let get = |t: &str| conds.iter().find(|c| c["type"] == t).unwrap().clone();
        assert_eq!(get("Ready")["status"], "True");
        assert_eq!(get("Ready")["lastTransitionTime"], "T1");
        assert_eq!(get("ContainersReady")["status"], "True");
        assert_eq!(get("PodScheduled")["lastTransitionTime"], "TS");
        assert!(get("Ready").get("reason").is_none());
    }

    #[test]
    fn crash_looping_and_unmapped_pods() {
        let mut v = view();
        v.ready = false;
        v.restart_count = 3;
        v.state = ContainerState::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 4s".into(),
        };
        v.last_state = Some(Terminated {
            exit_code: 2,
            signal: None,
            reason: "Error".into(),
            message: "bad flag".into(),
            started_at: "A".into(),
            finished_at: "B".into(),
            container_id: "process://41".into(),
        });
        let s = &pod_status(&v)["status"];
        let c = &s["containerStatuses"][0];
        assert_eq!(c["restartCount"], 3);
        assert_eq!(c["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(c["lastState"]["terminated"]["exitCode"], 2);
        assert_eq!(c["lastState"]["terminated"]["message"], "bad flag");
        assert_eq!(s["conditions"][1]["reason"], "ContainersNotReady");

        let mut v = view();
        v.phase = "Pending";
        v.pod_ip = None;
        v.container_id = None;
        v.ready = false;
        v.state = ContainerState::Waiting {
            reason: "ErrImagePull".into(),
            message: "no binary".into(),
        };
        let s = &pod_status(&v)["status"];
        assert_eq!(s["phase"], "Pending");
        assert!(s["podIP"].is_null() && s["podIPs"].is_null());
        assert!(s["containerStatuses"][0].get("containerID").is_none());
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["message"],
            "no binary"
        );
    }
}
