//! `adapters::k8s::node_agent` against a REAL Kubernetes 1.20.2 control plane
//! (deploy/local/up.sh: etcd, kube-apiserver, kube-controller-manager, kube-scheduler; no
//! kubelet). The ReplicaSet controller and the scheduler are Kubernetes' own; the agent plays
//! kubelet with real `workload-app` processes. Skipped (with a "skipped:" line) when up.sh
//! exits 3 (the control plane cannot be built on this machine).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use adapters::k8s::node_agent::{NodeAgent, NodeAgentConfig, NodeCapacity};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The control plane in a temporary folder; `down.sh` on drop (also when the test fails).
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Runs up.sh; `None` (after printing why) when it exits 3.
    fn up() -> Option<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("nimbusguard-na-")
            .tempdir()
            .expect("tempdir");
        let t = Instant::now();
        let out = Command::new(repo_root().join("deploy/local/up.sh"))
            .arg(dir.path())
            .output()
            .expect("cannot run deploy/local/up.sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {
                println!("control plane up in {:.1} s", t.elapsed().as_secs_f64());
                Some(Cluster { dir })
            }
            Some(3) => {
                println!(
                    "skipped: deploy/local/up.sh cannot build the control plane here: {}",
                    stderr.trim()
                );
                None
            }
            other => panic!("deploy/local/up.sh failed ({other:?}):\n{stderr}"),
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let st = Command::new(repo_root().join("deploy/local/down.sh"))
            .arg(self.dir.path())
            .status();
        if !matches!(st, Ok(s) if s.success()) {
            eprintln!(
                "deploy/local/down.sh {} failed: {st:?}",
                self.dir.path().display()
            );
        }
    }
}

async fn connect(kubeconfig: &Path) -> Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("admin.kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kube config");
    Client::try_from(cfg).expect("kube client")
}

/// Polls `f` every 100 ms until `Some`, panicking with `what` after `timeout`.
async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn deployment(name: &str, image: &str, replicas: i32, args: &[&str]) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 20,
                    "automountServiceAccountToken": false,
                    "containers": [{
                        "name": "app",
                        "image": image,
                        "command": ["workload-app"],
                        "args": args,
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        ],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
                    }],
                },
            },
        },
    }))
    .expect("valid Deployment")
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pid_of(p: &Pod) -> Option<u32> {
    let id = p
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .container_id
        .as_deref()?;
    id.strip_prefix("process://")?.parse().ok()
}

async fn pods(api: &Api<Pod>, app: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// Waits until `app` has exactly `n` pods, all Running and Ready; returns them.
async fn wait_ready(api: &Api<Pod>, app: &str, n: usize, timeout: Duration) -> Vec<Pod> {
    wait_for(
        timeout,
        &format!("{n} Running+Ready pods of {app}"),
        || async {
            let ps = pods(api, app).await;
            let ok = ps.len() == n
                && ps.iter().all(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && pod_ready(p)
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                });
            ok.then_some(ps)
        },
    )
    .await
}

fn ms_between(a: SystemTime, b: SystemTime) -> i64 {
    match b.duration_since(a) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_agent_runs_real_deployments_as_processes() {
    let t = Instant::now();
    let bin = common::workload_app();
    println!(
        "workload-app built (or up to date) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let Some(cluster) = tokio::task::spawn_blocking(Cluster::up)
        .await
        .expect("up.sh thread")
    else {
        return;
    };
    let t_test = Instant::now();
    let client = connect(&cluster.kubeconfig()).await;
    let node_name = "na-test-node-1";
    let ns = format!("na-{}", std::process::id());
    let config = NodeAgentConfig {
        nodes: vec![node_name.into()],
        capacity: NodeCapacity {
            cpu_millicores: 4000,
            memory_bytes: 8 << 30,
            pods: 20,
        },
        heartbeat_interval_s: 5.0,
        poll_interval_s: 0.25,
        images: [("nimbusguard/workload".to_string(), bin.clone())].into(),
        state_dir: cluster.dir.path().join("agent"),
        restart_backoff_initial_s: 0.5,
        restart_backoff_max_s: 2.0,
        termination_grace_cap_s: 5.0,
        ..NodeAgentConfig::default()
    };
    let agent = NodeAgent::start(client.clone(), config)
        .await
        .expect("node agent starts");

    // The namespace, and its ServiceAccount (the 1.20 ServiceAccount admission rejects pods
    // until it exists; the ReplicaSet controller would back off).
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let nso: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
    namespaces
        .create(&PostParams::default(), &nso)
        .await
        .expect("create namespace");
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    wait_for(
        Duration::from_secs(20),
        "ServiceAccount default",
        || async {
            sas.get_opt("default")
                .await
                .ok()
                .flatten()
                .filter(|sa| sa.secrets.is_some())
        },
    )
    .await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let marker = "--pod-name=$(POD_NAMESPACE).$(POD_NAME)";
    let web_args = [
        "--listen=0.0.0.0:8080",
        marker,
        "--ready-delay-s=1",
        "--shutdown-grace-s=1",
    ];

    // ---- 2 replicas: the ReplicaSet controller creates them, the scheduler binds them ------
    let created = SystemTime::now();
    let t = Instant::now();
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", "nimbusguard/workload:dev", 2, &web_args),
        )
        .await
        .expect("create Deployment web");
    let two = wait_ready(&pod_api, "web", 2, Duration::from_secs(30)).await;
    println!(
        "2 pods Running+Ready {:.2} s after the Deployment was created",
        t.elapsed().as_secs_f64()
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut ips = BTreeSet::new();
    for p in &two {
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(
            spec.node_name.as_deref(),
            Some(node_name),
            "bound by the real scheduler"
        );
        let ip: Ipv4Addr = p
            .status
            .as_ref()
            .unwrap()
            .pod_ip
            .as_deref()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(ip.octets()[..3], [127, 0, 0], "{ip}");
        assert!(ip.octets()[3] >= 2, "{ip}");
        ips.insert(ip);
        let url = format!("http://{ip}:8080/health");
        let r = http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "GET {url}");
        let pid = pid_of(p).expect("containerID process://PID");
        assert!(
            common::proc_state(pid).is_some(),
            "process {pid} of {:?} runs",
            p.metadata.name
        );
        let cs = &p
            .status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0];
        assert!(cs.ready && cs.restart_count == 0 && cs.state.as_ref().unwrap().running.is_some());
        let log = agent.log_path(&ns, p.metadata.name.as_deref().unwrap());
        assert!(log.exists(), "{}", log.display());
    }
    assert_eq!(ips.len(), 2, "distinct pod IPs: {ips:?}");
    let metrics = http
        .get(format!("http://{}:8080/metrics", ips.first().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!("pod=\"{ns}.web-")),
        "the $(VAR)-expanded pod name is exported"
    );

    // Latencies per pod: scheduled (API, 1 s resolution) → seen → started → Ready (agent).
    let by_name: HashMap<String, _> = agent
        .pods()
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    for p in &two {
        let name = p.metadata.name.clone().unwrap();
        let a = &by_name[&name];
        let scheduled = p
            .status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "PodScheduled")
            .and_then(|c| c.last_transition_time.clone())
            .map(|t| SystemTime::from(t.0))
            .unwrap();
        let (started, ready_at) = (a.started_at.unwrap(), a.ready_at.unwrap());
        println!(
            "pod {name}: scheduled {:+} ms (1 s resolution), seen by agent {:+} ms, process started {:+} ms, Ready {:+} ms after the Deployment was created; start→Ready {} ms",
            ms_between(created, scheduled), ms_between(created, a.seen_at), ms_between(created, started), ms_between(created, ready_at), ms_between(started, ready_at)
        );
        assert!(
            ms_between(started, ready_at) >= 900,
            "Ready waited for the real /ready (1 s delay)"
        );
    }

    // ---- scale to 3 through the scale subresource --------------------------------------
    let t = Instant::now();
    let scale = |n: i32| serde_json::json!({"spec": {"replicas": n}});
    deployments
        .patch_scale("web", &PatchParams::default(), &Patch::Merge(&scale(3)))
        .await
        .expect("scale to 3");
    let three = wait_ready(&pod_api, "web", 3, Duration::from_secs(30)).await;
    println!(
        "scale 2→3: 3 Ready pods after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let ip3: BTreeSet<String> = three
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect();
    assert_eq!(ip3.len(), 3, "{ip3:?}");

    // ---- scale to 1: two pods deleted, their processes gone, the pods force-deleted -------
    let t = Instant::now();
    deployments
        .patch_scale("web", &PatchParams::default(), &Patch::Merge(&scale(1)))
        .await
        .expect("scale to 1");
    let one = wait_ready(&pod_api, "web", 1, Duration::from_secs(30)).await;
    println!(
        "scale 3→1: 2 pods stopped and force-deleted after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let kept = one[0].metadata.name.clone().unwrap();
    for p in three
        .iter()
        .filter(|p| p.metadata.name.as_deref() != Some(&kept))
    {
        let pid = pid_of(p).unwrap();
        assert_eq!(
            common::proc_state(pid),
            None,
            "process {pid} of deleted pod {:?} is gone",
            p.metadata.name
        );
        assert!(pod_api
            .get_opt(p.metadata.name.as_deref().unwrap())
            .await
            .unwrap()
            .is_none());
    }
    assert_eq!(agent.stats().pods_deleted, 2);

    // ---- a container that exits at once: CrashLoopBackOff with a growing restartCount -----
    let t = Instant::now();
    deployments
        .create(
            &PostParams::default(),
            &deployment(
                "crash",
                "nimbusguard/workload:dev",
                1,
                &["--no-such-flag", marker],
            ),
        )
        .await
        .expect("create crash");
    let looping = wait_for(
        Duration::from_secs(20),
        "crash pod restarted twice, in CrashLoopBackOff",
        || async {
            pods(&pod_api, "crash").await.into_iter().find(|p| {
                let Some(cs) = p
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|c| c.first().cloned())
                else {
                    return false;
                };
                let waiting = cs
                    .state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some("CrashLoopBackOff");
                cs.restart_count >= 2 && waiting
            })
        },
    )
    .await;
    let cs = looping
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .clone();
    let last = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .expect("lastState.terminated");
    assert_eq!(last.exit_code, 2, "clap's usage error");
    assert!(
        last.message
            .as_deref()
            .unwrap_or_default()
            .contains("no-such-flag"),
        "{last:?}"
    );
    assert!(!pod_ready(&looping) && !cs.ready);
    println!(
        "crash loop: restartCount {} after {:.2} s",
        cs.restart_count,
        t.elapsed().as_secs_f64()
    );

    // ---- an image the agent does not know: ErrImagePull, Pending -------------------------
    deployments
        .create(
            &PostParams::default(),
            &deployment("ghost", "nimbusguard/unknown:1", 1, &[]),
        )
        .await
        .expect("create ghost");
    let ghost = wait_for(
        Duration::from_secs(20),
        "ghost pod in ErrImagePull",
        || async {
            pods(&pod_api, "ghost").await.into_iter().find(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|c| c.first())
                    .and_then(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                    .as_deref()
                    == Some("ErrImagePull")
            })
        },
    )
    .await;
    let st = ghost.status.as_ref().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Pending"));
    let msg = st.container_statuses.as_ref().unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .waiting
        .as_ref()
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(
        msg.contains("nimbusguard/unknown:1") && msg.contains("nimbusguard/workload"),
        "{msg}"
    );

    // ---- the Node ----------------------------------------------------------------------
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get(node_name).await.expect("node");
    let ns_ = node.status.as_ref().unwrap();
    let cap = ns_.capacity.as_ref().unwrap();
    assert_eq!(cap["cpu"].0, "4");
    assert_eq!(cap["memory"].0, "8589934592");
    assert_eq!(cap["pods"].0, "20");
    assert_eq!(ns_.allocatable.as_ref().unwrap()["cpu"].0, "4");
    let ready = ns_
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(ns_.node_info.as_ref().unwrap().kubelet_version, "v1.20.2");
    assert!(
        node.spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_none_or(|t| t.is_empty()),
        "{:?}",
        node.spec
    );

    let stats = agent.stats();
    println!("stats before shutdown: {stats:?}");
    assert_eq!(stats.pods_started, 4, "web ×3 and crash");
    assert!(stats.restarts >= 2 && stats.exits >= 2, "{stats:?}");
    assert_eq!(stats.image_errors, 1);
    assert!(stats.heartbeats >= 1);

    // ---- shutdown: no process left, node NotReady --------------------------------------
    let t = Instant::now();
    let token = format!("--pod-name={ns}.");
    agent.shutdown().await.expect("shutdown");
    println!("agent shutdown in {:.2} s", t.elapsed().as_secs_f64());
    let left = Command::new("pgrep")
        .args(["-f", "--", &token])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "processes left: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    let node = nodes.get(node_name).await.expect("node");
    let ready = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("NodeAgentStopped"))
    );
    println!(
        "test wall time (after the control plane was up): {:.1} s",
        t_test.elapsed().as_secs_f64()
    );
}
