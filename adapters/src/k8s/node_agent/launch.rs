//! What a pod's container becomes as a process: command line, environment, pod IP, and where
//! its readiness probe points. Pure functions over the pod spec (no I/O).

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A container's process, ready to spawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Launch {
    /// Binary (from the image map).
    pub binary: PathBuf,
    /// Arguments: `command[1..]` then `args`, `$(VAR)` expanded, the listen flag rewritten.
    pub args: Vec<String>,
    /// Environment on top of `PATH`: `HOSTNAME` (the pod name) and the container's `env`.
    pub env: Vec<(String, String)>,
    /// What could not be honoured (env sources other than values and fields); logged.
    pub warnings: Vec<String>,
}

/// Builds the process of `container` (of `pod`, with pod IP `ip` on node `node`): see
/// [`super`] for the rules.
pub(crate) fn launch(
    pod: &Pod,
    container: &Container,
    binary: &Path,
    ip: Ipv4Addr,
    node: &str,
    listen_flag: &str,
) -> Launch {
    let mut warnings = Vec::new();
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let mut env: Vec<(String, String)> = vec![("HOSTNAME".into(), pod_name)];
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for e in container.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            Some(expand(v, &vars))
        } else if let Some(f) = e.value_from.as_ref().and_then(|s| s.field_ref.as_ref()) {
            let v = field_value(pod, &f.field_path, ip, node);
            if v.is_none() {
                warnings.push(format!(
                    "env {}: fieldRef {} is not supported by the node agent",
                    e.name, f.field_path
                ));
            }
            v
        } else if e.value_from.is_some() {
            warnings.push(format!(
                "env {}: only `value` and `valueFrom.fieldRef` are supported (configMap, secret \
                 and resource references are not); left unset",
                e.name
            ));
            None
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            vars.insert(e.name.clone(), v.clone());
            env.retain(|(k, _)| k != &e.name);
            env.push((e.name.clone(), v));
        }
    }
    let mut args: Vec<String> = container
        .command
        .iter()
        .flatten()
        .skip(1)
        .chain(container.args.iter().flatten())
        .map(|a| expand(a, &vars))
        .collect();
    if !rewrite_listen(&mut args, listen_flag, ip) {
        if let Some(port) = container.ports.iter().flatten().next() {
            args.push(listen_flag.to_string());
            args.push(format!("{ip}:{}", port.container_port));
        }
    }
    Launch {
        binary: binary.to_path_buf(),
        args,
        env,
        warnings,
    }
}

/// The value of a `fieldRef` (`metadata.name`, `metadata.namespace`, `metadata.uid`,
/// `metadata.labels['k']`, `metadata.annotations['k']`, `spec.nodeName`,
/// `spec.serviceAccountName`, `status.podIP`, `status.podIPs`, `status.hostIP`); `None` for
/// others.
fn field_value(pod: &Pod, path: &str, ip: Ipv4Addr, node: &str) -> Option<String> {
    let m = &pod.metadata;
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "spec.nodeName" => Some(node.to_string()),
        "spec.serviceAccountName" => Some(
            pod.spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_default(),
        ),
        "status.podIP" | "status.podIPs" => Some(ip.to_string()),
        "status.hostIP" => Some(Ipv4Addr::LOCALHOST.to_string()),
        _ => keyed("metadata.labels['", m.labels.as_ref())
            .or_else(|| keyed("metadata.annotations['", m.annotations.as_ref())),
    }
}

/// Kubernetes' `$(VAR)` expansion of command, args and env values: `$(NAME)` becomes the
/// value of an earlier-defined variable (left as is when undefined), `$$` becomes `$`.
pub(crate) fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Replaces the host of every `FLAG HOST:PORT` / `FLAG=HOST:PORT` by `ip`; true when the flag
/// was present.
fn rewrite_listen(args: &mut [String], flag: &str, ip: Ipv4Addr) -> bool {
    let with_ip = |v: &str| match v.rsplit_once(':') {
        Some((_, port)) => format!("{ip}:{port}"),
        None => v.to_string(),
    };
    let prefix = format!("{flag}=");
    let mut found = false;
    let mut i = 0;
    while i < args.len() {
        if args[i] == flag {
            found = true;
            if let Some(v) = args.get(i + 1).map(|v| with_ip(v)) {
                args[i + 1] = v;
                i += 1;
            }
        } else if let Some(v) = args[i].strip_prefix(&prefix) {
            found = true;
            args[i] = format!("{prefix}{}", with_ip(v));
        }
        i += 1;
    }
    found
}

/// The lowest address of `first..=last` not in `used`.
pub(crate) fn free_ip(
    first: Ipv4Addr,
    last: Ipv4Addr,
    used: &HashSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    (u32::from(first)..=u32::from(last))
        .map(Ipv4Addr::from)
        .find(|ip| !used.contains(ip))
}

/// Where a readiness probe points.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ProbeTarget {
    /// No probe, or one the agent cannot run (`exec`, `grpc`): Ready once running.
    None,
    /// `httpGet`: Ready while a GET of this URL answers 2xx.
    Http(String),
    /// `tcpSocket`: Ready while a TCP connect succeeds.
    Tcp(SocketAddr),
    /// A probe that can never succeed (a port name the container does not declare); the
    /// reason is logged.
    Invalid(String),
}

/// The readiness probe target of `container` on pod IP `ip`.
pub(crate) fn readiness_target(container: &Container, ip: Ipv4Addr) -> ProbeTarget {
    let Some(probe) = &container.readiness_probe else {
        return ProbeTarget::None;
    };
    probe_target(probe, container, ip)
}

fn probe_target(probe: &Probe, container: &Container, ip: Ipv4Addr) -> ProbeTarget {
    let port_of = |p: &IntOrString| -> Result<u16, String> {
        match p {
            IntOrString::Int(n) => {
                u16::try_from(*n).map_err(|_| format!("probe port {n} is out of range"))
            }
            IntOrString::String(name) => container
                .ports
                .iter()
                .flatten()
                .find(|cp| cp.name.as_deref() == Some(name.as_str()))
                .and_then(|cp| u16::try_from(cp.container_port).ok())
                .ok_or_else(|| {
                    format!(
                        "probe port `{name}` is not a named port of container {}",
                        container.name
                    )
                }),
        }
    };
    if let Some(h) = &probe.http_get {
        return match port_of(&h.port) {
            Ok(port) => {
                let scheme = if h.scheme.as_deref() == Some("HTTPS") {
                    "https"
                } else {
                    "http"
                };
                let path = h.path.as_deref().unwrap_or("/");
                let slash = if path.starts_with('/') { "" } else { "/" };
                ProbeTarget::Http(format!("{scheme}://{ip}:{port}{slash}{path}"))
            }
            Err(e) => ProbeTarget::Invalid(e),
        };
    }
    if let Some(t) = &probe.tcp_socket {
        return match port_of(&t.port) {
            Ok(port) => ProbeTarget::Tcp(SocketAddr::from((ip, port))),
            Err(e) => ProbeTarget::Invalid(e),
        };
    }
    ProbeTarget::None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    fn workload_pod() -> Pod {
        pod(serde_json::json!({
            "metadata": {"name": "web-abc", "namespace": "ns1", "uid": "u-1",
                         "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "app", "image": "nimbusguard/workload:dev",
                "command": ["workload-app", "--workers=2"],
                "args": ["--listen=0.0.0.0:8080", "--pod-name=$(POD_NAME)", "--x=$$(KEEP)", "$(NOPE)"],
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "GREETING", "value": "hi $(POD_NAME) on $(NODE)"},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                ],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}
            }]}
        }))
    }

    #[test]
    fn command_line_env_and_listen_rewrite() {
        let p = workload_pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let ip = Ipv4Addr::new(127, 0, 0, 9);
        let l = launch(&p, c, Path::new("/bin/app"), ip, "n1", "--listen");
        assert_eq!(l.binary, PathBuf::from("/bin/app"));
        assert_eq!(
            l.args,
            [
                "--workers=2",
                "--listen=127.0.0.9:8080",
                "--pod-name=web-abc",
                "--x=$(KEEP)",
                "$(NOPE)"
            ]
        );
        let env: BTreeMap<_, _> = l.env.iter().cloned().collect();
        assert_eq!(env["HOSTNAME"], "web-abc");
        assert_eq!(env["POD_NAME"], "web-abc");
        assert_eq!(env["APP"], "web");
        // NODE is defined after GREETING: left unexpanded, as Kubernetes does.
        assert_eq!(env["GREETING"], "hi web-abc on $(NODE)");
        assert_eq!(env["NODE"], "n1");
        assert!(!env.contains_key("SECRET"));
        assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
        assert!(l.warnings[0].contains("SECRET"));
        assert_eq!(
            readiness_target(c, ip),
            ProbeTarget::Http("http://127.0.0.9:8080/ready".into())
        );
    }

    #[test]
    fn listen_is_appended_or_rewritten_in_split_form() {
        let mut p = workload_pod();
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        c.command = None;
        c.args = Some(vec!["--listen".into(), "[::]:9000".into(), "--y".into()]);
        let c = c.clone();
        let ip = Ipv4Addr::new(127, 0, 0, 3);
        let l = launch(&p, &c, Path::new("/b"), ip, "n1", "--listen");
        assert_eq!(l.args, ["--listen", "127.0.0.3:9000", "--y"]);
        let mut c2 = c.clone();
        c2.args = None;
        let l = launch(&p, &c2, Path::new("/b"), ip, "n1", "--listen");
        assert_eq!(l.args, ["--listen", "127.0.0.3:8080"]);
        c2.ports = None;
        assert!(launch(&p, &c2, Path::new("/b"), ip, "n1", "--listen")
            .args
            .is_empty());
    }

    #[test]
    fn expansion_rules() {
        let vars: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
        assert_eq!(
            expand("$(A)-$(B)-$$(A)-$$-$x-$(", &vars),
            "1-$(B)-$(A)-$-$x-$("
        );
        assert_eq!(expand("", &vars), "");
        assert_eq!(expand("$", &vars), "$");
    }

    #[test]
    fn ip_allocation_takes_the_lowest_free() {
        let (a, b) = (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 4));
        let mut used = HashSet::new();
        assert_eq!(free_ip(a, b, &used), Some(a));
        used.insert(a);
        used.insert(Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!(free_ip(a, b, &used), Some(b));
        used.insert(b);
        assert_eq!(free_ip(a, b, &used), None);
        used.remove(&Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!(free_ip(a, b, &used), Some(Ipv4Addr::new(127, 0, 0, 3)));
    }

    #[test]
    fn probe_targets() {
        let p = workload_pod();
        let mut c = p.spec.as_ref().unwrap().containers[0].clone();
        let ip = Ipv4Addr::new(127, 0, 0, 5);
        c.readiness_probe = Some(
            serde_json::from_value(serde_json::json!(
            {"httpGet": {"path": "ready", "port": 9090, "scheme": "HTTPS"}}))
            .unwrap(),
        );
        assert_eq!(
            readiness_target(&c, ip),
            ProbeTarget::Http("https://127.0.0.5:9090/ready".into())
        );
        c.readiness_probe = Some(
            serde_json::from_value(serde_json::json!(
            {"tcpSocket": {"port": "http"}}))
            .unwrap(),
        );
        assert_eq!(
            readiness_target(&c, ip),
            ProbeTarget::Tcp("127.0.0.5:8080".parse().unwrap())
        );
        c.readiness_probe = Some(
            serde_json::from_value(serde_json::json!(
            {"httpGet": {"port": "metrics"}}))
            .unwrap(),
        );
        match readiness_target(&c, ip) {
            ProbeTarget::Invalid(m) => assert!(m.contains("`metrics`"), "{m}"),
            other => panic!("{other:?}"),
        }
        c.readiness_probe = Some(
            serde_json::from_value(serde_json::json!(
            {"exec": {"command": ["true"]}}))
            .unwrap(),
        );
        assert_eq!(readiness_target(&c, ip), ProbeTarget::None);
        c.readiness_probe = None;
        assert_eq!(readiness_target(&c, ip), ProbeTarget::None);
    }
}
