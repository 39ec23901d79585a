//! [`NodeAgentConfig`]: nodes, capacity, timings, the image → binary map, and its validation.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Settings of a [`NodeAgent`](super::NodeAgent). Every field has a default; TOML or JSON
/// with an unknown key is rejected (`deny_unknown_fields`). [`NodeAgentConfig::validate`]
/// names the offending field in its error (`node_agent.FIELD ...`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeAgentConfig {
    /// Names of the Nodes this agent registers and runs pods for (DNS-1123 subdomains,
    /// distinct). Default `["local-node-1"]`.
    pub nodes: Vec<String>,
    /// Capacity (and allocatable) each node reports to the scheduler.
    pub capacity: NodeCapacity,
    /// Seconds between two node status heartbeats (the Ready condition's
    /// `lastHeartbeatTime`). In (0, 40): kube-controller-manager's node lifecycle controller
    /// marks a node NotReady after 40 s without one. Default 10.
    pub heartbeat_interval_s: f64,
    /// Seconds between two passes over the nodes' pods (list, process exits, restarts,
    /// readiness probes, status patches). > 0. Default 0.5.
    pub poll_interval_s: f64,
    /// Container image → binary that plays it. A pod's image matches a key exactly, or by its
    /// repository without tag or digest (`nimbusguard/workload:dev` matches the key
    /// `nimbusguard/workload`), or an untagged image matches `IMAGE:latest`. Relative binary
    /// paths are relative to the agent's working directory; every binary must exist when the
    /// agent starts. Default empty (every pod gets `ErrImagePull`).
    pub images: BTreeMap<String, PathBuf>,
    /// Folder of the pods' logs: `STATE_DIR/pods/<namespace>_<pod>.log` holds the stdout and
    /// stderr of every start of that pod's container. Created if missing. Default
    /// `target/node-agent`.
    pub state_dir: PathBuf,
    /// First restart back-off after a container exits, seconds; it doubles on each further
    /// exit up to `restart_backoff_max_s`. Kubelet uses 10 s doubling to 5 min; this scale
    /// (1 s to 30 s) keeps crash loops visible within a test. A container that ran for at
    /// least twice the cap gets the initial back-off again (as kubelet). > 0. Default 1.
    pub restart_backoff_initial_s: f64,
    /// Longest restart back-off, seconds. >= `restart_backoff_initial_s`. Default 30.
    pub restart_backoff_max_s: f64,
    /// Longest wait between SIGTERM and SIGKILL when a pod is deleted, seconds: the pod's
    /// grace period (`deletionGracePeriodSeconds`, else `terminationGracePeriodSeconds`, else
    /// 30) is cut to this. Also the wait on [`NodeAgent::shutdown`](super::NodeAgent::shutdown).
    /// >= 0. Default 10.
    pub termination_grace_cap_s: f64,
    /// Timeout of one readiness probe (HTTP GET or TCP connect), seconds. > 0. Default 1.
    pub probe_timeout_s: f64,
    /// First pod IP handed out; pods get the lowest free address in
    /// `pod_ip_first..=pod_ip_last`. Both must lie in 127.0.0.0/8 (all of it is loopback on
    /// Linux) and not be 127.0.0.1 (the node's own address). Two agents on one machine need
    /// disjoint ranges. Default 127.0.0.2.
    pub pod_ip_first: Ipv4Addr,
    /// Last pod IP handed out. Default 127.0.0.254.
    pub pod_ip_last: Ipv4Addr,
    /// The flag that tells a binary where to listen (`FLAG HOST:PORT` or `FLAG=HOST:PORT`):
    /// its HOST is replaced by the pod IP; when absent and the container declares a port,
    /// `FLAG POD_IP:FIRST_CONTAINER_PORT` is appended. Default `--listen`.
    pub listen_flag: String,
    /// What [`NodeAgent::shutdown`](super::NodeAgent::shutdown) does to the nodes after every
    /// process is stopped. Default [`ShutdownMode::NotReady`].
    pub on_shutdown: ShutdownMode,
}

/// Capacity of one node; allocatable is the same (nothing is reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeCapacity {
    /// CPU, millicores (> 0). Default 4000 (4 cores).
    pub cpu_millicores: u64,
    /// Memory, bytes (> 0). Default 8 GiB.
    pub memory_bytes: u64,
    /// Most pods the scheduler binds to the node (> 0). Default 110 (kubelet's default).
    pub pods: u32,
}

impl Default for NodeCapacity {
    fn default() -> Self {
        Self {
            cpu_millicores: 4000,
            memory_bytes: 8 << 30,
            pods: 110,
        }
    }
}

/// What happens to the agent's Nodes when it shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownMode {
    /// As a stopped kubelet: the Nodes stay, Ready=False (reason `NodeAgentStopped`); the
    /// agent's pods stay bound, their status says Ready=False and the container terminated.
    /// An agent started again with the same node names adopts and restarts those pods.
    #[default]
    NotReady,
    /// As a machine that went away: the Nodes are deleted; kube-controller-manager's pod
    /// garbage collector then deletes their pods and the ReplicaSets recreate them (Pending
    /// until a node exists again).
    Delete,
}

impl Default for NodeAgentConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["local-node-1".into()],
            capacity: NodeCapacity::default(),
            heartbeat_interval_s: 10.0,
            poll_interval_s: 0.5,
            images: BTreeMap::new(),
            state_dir: PathBuf::from("target/node-agent"),
            restart_backoff_initial_s: 1.0,
            restart_backoff_max_s: 30.0,
            termination_grace_cap_s: 10.0,
            probe_timeout_s: 1.0,
            pod_ip_first: Ipv4Addr::new(127, 0, 0, 2),
            pod_ip_last: Ipv4Addr::new(127, 0, 0, 254),
            listen_flag: "--listen".into(),
            on_shutdown: ShutdownMode::NotReady,
        }
    }
}

/// Longest heartbeat interval, seconds: the node lifecycle controller's default
/// `--node-monitor-grace-period`.
const NODE_MONITOR_GRACE_S: f64 = 40.0;

fn bad(field: &str, what: impl std::fmt::Display) -> Error {
    Error::Config(format!("node_agent.{field} {what}"))
}

impl NodeAgentConfig {
    /// Checks every value; does not touch the file system (see
    /// [`NodeAgentConfig::resolve_binaries`]).
    ///
    /// # Errors
    /// [`Error::Config`] naming the field (`node_agent.poll_interval_s must be > 0, got 0`).
    pub fn validate(&self) -> Result<()> {
        if self.nodes.is_empty() {
            return Err(bad("nodes", "must name at least one node"));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if let Err(why) = check_dns_subdomain(n) {
                return Err(bad(&format!("nodes[{i}]"), format!("`{n}` {why}")));
            }
            if self.nodes[..i].contains(n) {
                return Err(bad(
                    &format!("nodes[{i}]"),
                    format!("`{n}` is listed twice"),
                ));
            }
        }
        let c = &self.capacity;
        for (field, v) in [
            ("cpu_millicores", c.cpu_millicores),
            ("memory_bytes", c.memory_bytes),
            ("pods", u64::from(c.pods)),
        ] {
            if v == 0 {
                return Err(bad(&format!("capacity.{field}"), "must be > 0"));
            }
        }
        for (field, v) in [
            ("poll_interval_s", self.poll_interval_s),
            ("heartbeat_interval_s", self.heartbeat_interval_s),
            ("restart_backoff_initial_s", self.restart_backoff_initial_s),
            ("restart_backoff_max_s", self.restart_backoff_max_s),
            ("probe_timeout_s", self.probe_timeout_s),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 1e6) {
                return Err(bad(field, format!("must be > 0 (and < 1e6), got {v}")));
            }
        }
        if self.heartbeat_interval_s >= NODE_MONITOR_GRACE_S {
            return Err(bad(
                "heartbeat_interval_s",
                format!(
                    "must be < {NODE_MONITOR_GRACE_S} (the node lifecycle controller marks a \
                     node NotReady after {NODE_MONITOR_GRACE_S} s without heartbeat), got {}",
                    self.heartbeat_interval_s
                ),
            ));
        }
        if self.restart_backoff_max_s < self.restart_backoff_initial_s {
            return Err(bad(
                "restart_backoff_max_s",
                format!(
                    "must be >= restart_backoff_initial_s ({}), got {}",
                    self.restart_backoff_initial_s, self.restart_backoff_max_s
                ),
            ));
        }
        let cap = self.termination_grace_cap_s;
        if !(cap.is_finite() && (0.0..1e6).contains(&cap)) {
            return Err(bad(
                "termination_grace_cap_s",
                format!("must be >= 0 (and < 1e6), got {cap}"),
            ));
        }
        for (field, ip) in [
            ("pod_ip_first", self.pod_ip_first),
            ("pod_ip_last", self.pod_ip_last),
        ] {
            if ip.octets()[0] != 127 || ip == Ipv4Addr::LOCALHOST {
                return Err(bad(
                    field,
                    format!("must be in 127.0.0.0/8 and not 127.0.0.1, got {ip}"),
                ));
            }
        }
        if self.pod_ip_last < self.pod_ip_first {
            return Err(bad(
                "pod_ip_last",
                format!(
                    "must be >= pod_ip_first ({}), got {}",
                    self.pod_ip_first, self.pod_ip_last
                ),
            ));
        }
        if !self.listen_flag.starts_with('-') || self.listen_flag.contains('=') {
            return Err(bad(
                "listen_flag",
                format!(
                    "must start with `-` and hold no `=`, got `{}`",
                    self.listen_flag
                ),
            ));
        }
        for (image, bin) in &self.images {
            if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
                return Err(bad(
                    "images",
                    format!("has an invalid image name `{image}`"),
                ));
            }
            if bin.as_os_str().is_empty() {
                return Err(bad(&format!("images.\"{image}\""), "is an empty path"));
            }
        }
        Ok(())
    }

    /// The image map with every binary made absolute (canonical), so the agent's pods do not
    /// depend on its working directory.
    ///
    /// # Errors
    /// [`Error::Config`] naming the image whose binary does not exist, is not a file or is not
    /// executable.
    pub fn resolve_binaries(&self) -> Result<BTreeMap<String, PathBuf>> {
        let mut out = BTreeMap::new();
        for (image, bin) in &self.images {
            let field = format!("images.\"{image}\"");
            let abs = std::fs::canonicalize(bin).map_err(|e| {
                bad(
                    &field,
                    format!("names {}, which cannot be used: {e}", bin.display()),
                )
            })?;
            if !abs.is_file() {
                return Err(bad(
                    &field,
                    format!("names {}, which is not a file", abs.display()),
                ));
            }
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&abs)
                    .map_err(|e| bad(&field, format!("names {}: {e}", abs.display())))?
                    .permissions(),
            );
            if mode & 0o111 == 0 {
                return Err(bad(
                    &field,
                    format!(
                        "names {}, which is not executable (chmod +x it)",
                        abs.display()
                    ),
                ));
            }
            out.insert(image.clone(), abs);
        }
        Ok(out)
    }

    /// The poll interval as a [`Duration`] (valid config only).
    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval_s)
    }

    /// The heartbeat interval as a [`Duration`] (valid config only).
    pub(crate) fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs_f64(self.heartbeat_interval_s)
    }
}

/// Checks a Kubernetes DNS-1123 subdomain (what a Node name must be): at most 253 characters,
/// lowercase alphanumerics, `-` and `.`, starting and ending alphanumeric.
fn check_dns_subdomain(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("must have 1 to 253 characters");
    }
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !name.chars().all(|c| ok(c) || c == '-' || c == '.') {
        return Err("may hold only lowercase letters, digits, `-` and `.`");
    }
    if !name.starts_with(ok) || !name.ends_with(ok) {
        return Err("must start and end with a lowercase letter or digit");
    }
    Ok(())
}

/// The binary that plays `image`, by the rules of [`NodeAgentConfig::images`]; `None` when no
/// key matches.
pub fn binary_for_image<'a>(
    images: &'a BTreeMap<String, PathBuf>,
    image: &str,
) -> Option<&'a Path> {
    if let Some(b) = images.get(image) {
        return Some(b);
    }
    let repo = image_repository(image);
    if let Some(b) = images.get(repo) {
        return Some(b);
    }
    if repo == image {
        return images.get(&format!("{image}:latest")).map(PathBuf::as_path);
    }
    None
}

/// `image` without its `:tag` and `@digest` (`host:5000/a/b:1.0@sha256:..` → `host:5000/a/b`).
pub fn image_repository(image: &str) -> &str {
    let no_digest = image.split_once('@').map_or(image, |(r, _)| r);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[last_slash..].rfind(':') {
        Some(colon) => &no_digest[..last_slash + colon],
        None => no_digest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = NodeAgentConfig::default();
        c.validate().unwrap();
        assert_eq!(c.nodes, ["local-node-1"]);
        assert_eq!(c.poll_interval(), Duration::from_millis(500));
        assert_eq!(c.heartbeat_interval(), Duration::from_secs(10));
        assert_eq!(c.capacity.memory_bytes, 8_589_934_592);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(NodeAgentConfig, &str)> = vec![
            (
                NodeAgentConfig {
                    nodes: vec![],
                    ..Default::default()
                },
                "node_agent.nodes ",
            ),
            (
                NodeAgentConfig {
                    nodes: vec!["a".into(), "Bad_Name".into()],
                    ..Default::default()
                },
                "node_agent.nodes[1] `Bad_Name`",
            ),
            (
                NodeAgentConfig {
                    nodes: vec!["a".into(), "a".into()],
                    ..Default::default()
                },
                "listed twice",
            ),
            (
                NodeAgentConfig {
                    poll_interval_s: 0.0,
                    ..Default::default()
                },
                "poll_interval_s",
            ),
            (
                NodeAgentConfig {
                    heartbeat_interval_s: 45.0,
                    ..Default::default()
                },
                "heartbeat_interval_s must be < 40",
            ),
            (
                NodeAgentConfig {
                    restart_backoff_max_s: 0.5,
                    ..Default::default()
                },
                "restart_backoff_max_s must be >= restart_backoff_initial_s",
            ),
            (
                NodeAgentConfig {
                    termination_grace_cap_s: f64::NAN,
                    ..Default::default()
                },
                "termination_grace_cap_s",
            ),
            (
                NodeAgentConfig {
                    pod_ip_first: Ipv4Addr::new(10, 0, 0, 1),
                    ..Default::default()
                },
                "pod_ip_first must be in 127.0.0.0/8",
            ),
            (
                NodeAgentConfig {
                    pod_ip_last: Ipv4Addr::new(127, 0, 0, 1),
                    ..Default::default()
                },
                "pod_ip_last",
            ),
            (
                NodeAgentConfig {
                    capacity: NodeCapacity {
                        pods: 0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "capacity.pods must be > 0",
            ),
            (
                NodeAgentConfig {
                    listen_flag: "listen".into(),
                    ..Default::default()
                },
                "listen_flag",
            ),
        ];
        for (c, want) in cases {
            match c.validate() {
                Err(Error::Config(m)) => assert!(m.contains(want), "{m:?} lacks {want:?}"),
                other => panic!("{want}: {other:?}"),
            }
        }
    }

    #[test]
    fn toml_rejects_unknown_keys_and_reads_known_ones() {
        let c: NodeAgentConfig = toml::from_str(
            "nodes = [\"n1\", \"n2\"]\non_shutdown = \"delete\"\n\
             [capacity]\ncpu_millicores = 2000\n[images]\n\"nimbusguard/workload\" = \"bin/app\"\n",
        )
        .unwrap();
        assert_eq!(c.nodes, ["n1", "n2"]);
        assert_eq!(c.on_shutdown, ShutdownMode::Delete);
        assert_eq!(c.capacity.cpu_millicores, 2000);
        assert_eq!(c.capacity.pods, 110);
        assert_eq!(c.images["nimbusguard/workload"], PathBuf::from("bin/app"));
        assert!(toml::from_str::<NodeAgentConfig>("node = [\"x\"]").is_err());
        assert!(toml::from_str::<NodeAgentConfig>("[capacity]\ncpus = 1").is_err());
    }

    #[test]
    fn missing_binary_names_the_image() {
        let mut c = NodeAgentConfig::default();
        c.images
            .insert("img:1".into(), PathBuf::from("/no/such/binary"));
        match c.resolve_binaries() {
            Err(Error::Config(m)) => {
                assert!(
                    m.contains("images.\"img:1\"") && m.contains("/no/such/binary"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_executable_binary_names_the_image() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ng-agent-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("app");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut c = NodeAgentConfig::default();
        c.images.insert("img".into(), bin.clone());
        match c.resolve_binaries() {
            Err(Error::Config(m)) => assert!(
                m.contains("images.\"img\"") && m.contains("not executable"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            c.resolve_binaries().unwrap()["img"],
            bin.canonicalize().unwrap()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn image_matching() {
        assert_eq!(
            image_repository("nimbusguard/workload:dev"),
            "nimbusguard/workload"
        );
        assert_eq!(
            image_repository("host:5000/a/b:1.0@sha256:ab"),
            "host:5000/a/b"
        );
        assert_eq!(image_repository("host:5000/a/b"), "host:5000/a/b");
        assert_eq!(image_repository("busybox"), "busybox");
        let mut m = BTreeMap::new();
        m.insert("nimbusguard/workload".to_string(), PathBuf::from("/w"));
        m.insert("exact:v2".to_string(), PathBuf::from("/e"));
        m.insert("plain:latest".to_string(), PathBuf::from("/p"));
        assert_eq!(
            binary_for_image(&m, "nimbusguard/workload:dev"),
            Some(Path::new("/w"))
        );
        assert_eq!(
            binary_for_image(&m, "nimbusguard/workload"),
            Some(Path::new("/w"))
        );
        assert_eq!(binary_for_image(&m, "exact:v2"), Some(Path::new("/e")));
        assert_eq!(binary_for_image(&m, "exact:v3"), None);
        assert_eq!(binary_for_image(&m, "plain"), Some(Path::new("/p")));
        assert_eq!(binary_for_image(&m, "other/image:dev"), None);
    }
}
