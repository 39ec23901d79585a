//! `nimbusguard node-agent`: the process-backed kubelet stand-in
//! ([`adapters::k8s::node_agent`]) for a local control plane (`deploy/local/up.sh`): registers
//! Nodes, heart-beats them and runs every pod bound to them as a local process on its own
//! loopback IP, until SIGTERM or SIGINT.
//!
//! At start it prints one JSON line to stdout,
//! `{"event":"node-agent","nodes":[...],"images":{...},"state_dir":"DIR"}`, once the Nodes are
//! registered and Ready; on SIGTERM or SIGINT it stops every pod process, marks the Nodes
//! NotReady (or deletes them, `on_shutdown = "delete"`) and prints
//! `{"event":"stopped","pods_started":N,"restarts":N,...}`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use adapters::k8s::node_agent::{NodeAgent, NodeAgentConfig};
use anyhow::{anyhow, Context, Result};

/// `nimbusguard node-agent` options; flags override the config file.
#[derive(Debug, Clone, Default)]
pub struct NodeAgentOptions {
    /// Kubeconfig (default: KUBECONFIG, ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
    /// A TOML file of [`NodeAgentConfig`] fields (unknown keys rejected).
    pub config: Option<PathBuf>,
    /// Node names (replace the config's `nodes`).
    pub nodes: Vec<String>,
    /// `IMAGE=BINARY` pairs (added to the config's `images`).
    pub images: Vec<String>,
    /// Folder of the pods' logs (replaces `state_dir`).
    pub state_dir: Option<PathBuf>,
}

/// The agent's settings: the config file (or the defaults), then the flags. Without any image,
/// `nimbusguard/workload` is played by the `workload-app` binary next to this executable, when
/// there is one.
///
/// # Errors
/// The file is unreadable or not a valid config (the message names the file and the line); an
/// `--image` is not `IMAGE=BINARY`; no image is mapped at all (no `workload-app` beside this
/// executable either); a value is invalid ([`NodeAgentConfig::validate`] names
/// the field).
pub fn config_of(o: &NodeAgentOptions) -> Result<NodeAgentConfig> {
    let mut cfg = match &o.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<NodeAgentConfig>(&text)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => NodeAgentConfig::default(),
    };
    if !o.nodes.is_empty() {
        cfg.nodes = o.nodes.clone();
    }
    for spec in &o.images {
        let (image, binary) = spec
            .split_once('=')
            .filter(|(i, b)| !i.is_empty() && !b.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "--image {spec:?}: expected IMAGE=BINARY, e.g. \
                     nimbusguard/workload=target/debug/workload-app"
                )
            })?;
        cfg.images.insert(image.to_string(), PathBuf::from(binary));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join("workload-app")));
    if cfg.images.is_empty() {
        if let Some(app) = beside.clone().filter(|p| p.is_file()) {
            cfg.images.insert("nimbusguard/workload".into(), app);
        }
    }
    if let Some(d) = &o.state_dir {
        cfg.state_dir = d.clone();
    }
    cfg.validate().map_err(|e| match &o.config {
        Some(p) => anyhow!("{}: {e}", p.display()),
        None => anyhow!("{e}"),
    })?;
    if cfg.images.is_empty() {
        let beside = beside.map_or_else(|| "workload-app".into(), |p| p.display().to_string());
        return Err(anyhow!(
            "no image is mapped to a binary, so no pod could run: {beside} does not exist \
             (build it with `cargo build --release -p workload`, next to nimbusguard), or map \
             one with --image nimbusguard/workload=PATH or `images` in --config"
        ));
    }
    Ok(cfg)
}

/// Runs the agent until SIGTERM or SIGINT, then shuts it down (see the module docs).
///
/// # Errors
/// As [`config_of`]; no usable Kubernetes configuration; a Node cannot be registered (the
/// call and the refusal are named); the shutdown could not update a Node (the processes are
/// stopped regardless).
pub fn execute(o: &NodeAgentOptions) -> Result<()> {
    let cfg = config_of(o)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async {
        let client = adapters::k8s::connect(o.kubeconfig.as_deref())
            .await
            .context("cannot connect to the Kubernetes API")?;
        let stop = crate::cmd_controller::sigterm_or_sigint()?;
        let agent = NodeAgent::start(client, cfg.clone())
            .await
            .context("node agent")?;
        let images: BTreeMap<&String, String> = cfg
            .images
            .iter()
            .map(|(k, v)| (k, v.display().to_string()))
            .collect();
        print_line(&serde_json::json!({
            "event": "node-agent",
            "nodes": agent.nodes(),
            "images": images,
            "state_dir": agent.state_dir().display().to_string(),
        }))?;
        stop.await;
        tracing::info!("node agent: stopping its pods");
        let s = agent.stats();
        let stopped = agent.shutdown().await;
        print_line(&serde_json::json!({
            "event": "stopped",
            "pods_started": s.pods_started,
            "restarts": s.restarts,
            "exits": s.exits,
            "image_errors": s.image_errors,
            "heartbeats": s.heartbeats,
            "api_errors": s.api_errors,
            "shutdown_ok": stopped.is_ok(),
        }))?;
        stopped.context("node agent shutdown")
    })
}

fn print_line(v: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn flags_override_the_file_and_bad_input_is_named() {
        let dir = std::env::temp_dir().join(format!("ng-node-agent-{}", std::process::id()));
        let bin = write(&dir, "app", "");
        let cfg = write(
            &dir,
            "agent.toml",
            "nodes = [\"a\", \"b\"]\nheartbeat_interval_s = 5.0\n[capacity]\ncpu_millicores = 2000\n",
        );
        let o = NodeAgentOptions {
            config: Some(cfg.clone()),
            nodes: vec!["c".into()],
            images: vec![format!("img={}", bin.display())],
            state_dir: Some(dir.join("state")),
            ..NodeAgentOptions::default()
        };
        let c = config_of(&o).unwrap();
        assert_eq!(c.nodes, ["c"]);
        assert_eq!(c.heartbeat_interval_s, 5.0);
        assert_eq!(c.capacity.cpu_millicores, 2000);
        assert_eq!(c.images["img"], bin);
        assert_eq!(c.state_dir, dir.join("state"));

        let e = config_of(&NodeAgentOptions {
            images: vec!["no-binary".into()],
            ..NodeAgentOptions::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("IMAGE=BINARY"), "{e}");

        let bad = write(&dir, "bad.toml", "nodes = [\"a\"]\nheartbeat_s = 5\n");
        let e = config_of(&NodeAgentOptions {
            config: Some(bad.clone()),
            ..NodeAgentOptions::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("bad.toml") && e.contains("heartbeat_s") && e.contains("line 2"),
            "{e}"
        );
        let e = config_of(&NodeAgentOptions {
            config: Some(cfg),
            nodes: vec!["Not_A_Node".into()],
            ..NodeAgentOptions::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("agent.toml") && e.contains("nodes[0]"), "{e}");
        // No image at all (no workload-app beside the test binary): no agent that could run
        // nothing.
        let e = config_of(&NodeAgentOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no image is mapped") && e.contains("cargo build --release -p workload"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
