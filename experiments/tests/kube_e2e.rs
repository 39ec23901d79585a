//! End to end on a real Kubernetes control plane (v1.20.2 built from Debian's source package by
//! deploy/local/; the test is skipped, with the reason printed, only where that build cannot
//! run): the manifests of deploy/ are checked against it (every kustomization built and
//! dry-run server-side, the operator's RBAC probed: deploy/check.sh), the NimbusScaler CRD and a
//! NimbusScaler are applied with kube-rs, and `nimbusguard controller` runs with the
//! operator ServiceAccount's own token. A process-backed node agent (`nimbusguard node-agent`)
//! plays kubelet, so the
//! Deployment, ReplicaSet and scheduler are Kubernetes' own and the pods are real workload-app
//! processes that Debian's Prometheus discovers through the API (kubernetes_sd) and scrapes.
//! Load makes the controller scale the Deployment up; without load it scales down. A second
//! Deployment that crash-loops exercises self-healing (retry, then revert). Then Prometheus
//! stops (the HPA fallback decides, and the agent again once it is back) and the API server is
//! killed and restarted (the controller keeps deciding). Asserted on the API objects, the
//! NimbusScaler's status and events, the controller's per-resource metrics, and Prometheus.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use adapters::k8s::crd::NimbusScaler;
use adapters::k8s::{KubeScaler, KubeScalerConfig};
use adapters::local_prometheus::{free_port, LocalPrometheus, ScrapeJob};
use adapters::{Backend, Front, FrontConfig};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt, ResourceExt};

use common::{root, s, tmp, workload_bins, Guard};

const NS: &str = "nimbusguard";

/// The local control plane; stopped (deploy/local/down.sh) when dropped.
struct Cluster {
    state: PathBuf,
    env: BTreeMap<String, String>,
}

impl Cluster {
    /// Starts one, or `None` (after printing why) where it cannot be built here.
    fn up(state: &Path) -> Option<Cluster> {
        let t0 = Instant::now();
        let out = Command::new("bash")
            .arg(root().join("deploy/local/up.sh"))
            .arg(state)
            .stderr(Stdio::inherit())
            .output()
            .expect("bash runs");
        if out.status.code() == Some(3) {
            eprintln!("kube_e2e skipped: the local control plane cannot be built here (deploy/local/up.sh exit 3; see its message above)");
            return None;
        }
        assert!(
            out.status.success(),
            "deploy/local/up.sh failed: {}",
            out.status
        );
        let env_file = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let env = std::fs::read_to_string(&env_file)
            .expect("cluster.env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.trim_matches('"').trim_matches('\'').to_string(),
                )
            })
            .collect();
        eprintln!("control plane up in {:.1} s", t0.elapsed().as_secs_f64());
        Some(Cluster {
            state: state.to_path_buf(),
            env,
        })
    }

    fn get(&self, k: &str) -> &str {
        self.env
            .get(k)
            .unwrap_or_else(|| panic!("cluster.env has no {k}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("deploy/local/down.sh"))
            .arg(&self.state)
            .status();
    }
}

/// PIDs of the processes running `binary` (their /proc/PID/exe).
fn processes_of(binary: &Path) -> Vec<u32> {
    let want = std::fs::canonicalize(binary).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|x| x == want))
        .collect()
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            eprintln!("{what}: after {:.1} s", t0.elapsed().as_secs_f64());
            return v;
        }
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A kubeconfig with `token` against the cluster.
fn kubeconfig(c: &Cluster, token: &str, path: &Path) {
    let body = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: local\n  context: {{cluster: local, user: u}}\ncurrent-context: local\n",
        c.get("APISERVER_URL"),
        c.get("CA_FILE")
    );
    std::fs::write(path, body).unwrap();
}

/// The workload-app Deployment of deploy/base, sped up for a test (1 s readiness delay) and
/// renamed `name` with `args` appended.
fn workload_deployment(name: &str, extra_args: &[&str]) -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("deploy/base/workload-app.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut d = docs
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment in workload-app.yaml");
    d["metadata"]["name"] = name.into();
    d["metadata"]["namespace"] = NS.into();
    // Its own labels and selector: two Deployments must not select each other's pods.
    d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = name.into();
    d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = name.into();
    d["spec"]["replicas"] = 1.into();
    let c = &mut d["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<serde_json::Value> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !a.as_str().unwrap_or("").starts_with("--ready-delay-s"))
        .cloned()
        .chain(["--ready-delay-s=1"].iter().map(|a| (*a).into()))
        .chain(extra_args.iter().map(|a| (*a).into()))
        .collect();
    c["args"] = args.into();
    d
}

fn nimbus_scaler(name: &str, target: &str, prom: &str, extra: serde_json::Value) -> NimbusScaler {
    let mut spec = serde_json::json!({
        "scaleTargetRef": {"name": target},
        "minReplicas": 1,
        "maxReplicas": 4,
        "maxStep": 2,
        "cooldownSeconds": 2,
        "decisionIntervalSeconds": 2,
        "policy": {"hpa": {}},
        "fallback": {"targetCPUUtilizationPercentage": 50, "scaleDownStabilizationSeconds": 6,
                     "cpuInitializationPeriodSeconds": 5, "initialReadinessDelaySeconds": 5},
        "prometheus": {"url": prom, "staleAfterSeconds": 10}
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "nimbusguard.io/v1alpha1", "kind": "NimbusScaler",
        "metadata": {"name": name, "namespace": NS}, "spec": spec
    }))
    .unwrap()
}

fn event_reasons(rt: &tokio::runtime::Runtime, client: &Client, name: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), NS);
    rt.block_on(api.list(&ListParams::default()))
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| {
                    e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("NimbusScaler") && r.name.as_deref() == Some(name)
                    })
                })
                .filter_map(|e| e.reason)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn controller_scales_a_deployment_on_a_real_control_plane() {
    let dir = tmp("kube");
    let Some(cluster) = Cluster::up(&dir.join("cluster")) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = rt
        .block_on(adapters::k8s::connect(Some(Path::new(
            cluster.get("KUBECONFIG"),
        ))))
        .unwrap();

    // 0. Before the CRD exists, the controller exits within its start-up timeout, saying
    // the CRD is not installed; with a token the API server does not know, it says 401.
    let bogus = dir.join("bogus-token.kubeconfig");
    kubeconfig(&cluster, "not-a-token", &bogus);
    let startup_errors: Vec<_> = [cluster.get("KUBECONFIG"), s(&bogus)]
        .into_iter()
        .map(|kc| {
            common::command(&[
                "controller",
                "--kubeconfig",
                kc,
                "--listen",
                "127.0.0.1:0",
                "--startup-timeout-seconds",
                "3",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (child, expected) in startup_errors.into_iter().zip([
        "the NimbusScaler CRD is not installed",
        "HTTP 401 Unauthorized",
    ]) {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "controller kept running: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: controller: no NimbusScaler list from")
                && last.contains(cluster.get("APISERVER_URL"))
                && last.contains(expected),
            "expected {expected:?} in the last line of:\n{err}"
        );
    }

    // 1. The manifests: every kustomization builds (kubectl 1.20 and a current one where
    // present) and is accepted by this API server in a server-side dry run; the operator's
    // RBAC is probed. This also creates the namespace, CRD, ServiceAccounts and Roles.
    let t0 = Instant::now();
    let check = Command::new("bash")
        .arg(root().join("deploy/check.sh"))
        .env("CHECK_CLUSTER_ENV", cluster.state.join("cluster.env"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    eprintln!(
        "deploy/check.sh ({:.1} s):\n{report}",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        check.status.success(),
        "deploy/check.sh failed:\n{report}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(report.contains(" 0 failed"), "{report}");

    // 2. The CRD with kube-rs (the generated one: `nimbusguard crd`), Established.
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let crd = NimbusScaler::crd();
    rt.block_on(crds.patch(
        "nimbusscalers.nimbusguard.io",
        &PatchParams::apply("kube-e2e").force(),
        &Patch::Apply(&crd),
    ))
    .unwrap();
    wait_for("CRD Established", Duration::from_secs(30), || {
        let c = rt.block_on(crds.get("nimbusscalers.nimbusguard.io")).ok()?;
        c.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    });

    // 3. The node agent (`nimbusguard node-agent`, kubelet's stand-in) running pods as
    // workload-app processes; it prints a line once its Node is registered and Ready.
    let (app, loadgen) = workload_bins();
    let agent_toml = dir.join("node-agent.toml");
    std::fs::write(&agent_toml, "heartbeat_interval_s = 5.0\n").unwrap();
    let mut agent = Guard(Some(
        common::command(&[
            "node-agent",
            "--kubeconfig",
            cluster.get("KUBECONFIG"),
            "--config",
            s(&agent_toml),
            "--image",
            &format!("nimbusguard/workload={}", app.display()),
            "--state-dir",
            s(&dir.join("node-agent")),
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("node-agent.log")).unwrap())
        .spawn()
        .unwrap(),
    ));
    let mut agent_out = std::io::BufReader::new(agent.0.as_mut().unwrap().stdout.take().unwrap());
    let mut started = String::new();
    std::io::BufRead::read_line(&mut agent_out, &mut started).unwrap();
    let started: serde_json::Value = serde_json::from_str(&started).unwrap_or_else(|e| {
        panic!(
            "node-agent start line {started:?}: {e}; log:\n{}",
            std::fs::read_to_string(dir.join("node-agent.log")).unwrap_or_default()
        )
    });
    assert_eq!(started["nodes"], serde_json::json!(["local-node-1"]));

    // 4. Prometheus. Debian's build has no kubernetes_sd, so the pods it scrapes come from a
    // file_sd file that a task keeps equal to what deploy/'s kubernetes_sd config selects:
    // Running pods annotated prometheus.io/scrape, at podIP:prometheus.io/port, label `pod`.
    let prom_bin = LocalPrometheus::binary().unwrap();
    let sd_dir = dir.join("file_sd");
    std::fs::create_dir_all(&sd_dir).unwrap();
    let mut prom = LocalPrometheus::start(
        &prom_bin,
        &dir.join("prometheus"),
        &[ScrapeJob::FileSd {
            name: "workload".into(),
            dir: sd_dir.clone(),
        }],
    )
    .unwrap();
    let pc = prom.client().unwrap();
    let discovery = {
        let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
        let file = sd_dir.join("pods.json");
        rt.spawn(async move {
            loop {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    let targets: Vec<serde_json::Value> = list
                        .items
                        .iter()
                        .filter(|p| {
                            p.annotations().get("prometheus.io/scrape").map(String::as_str) == Some("true")
                                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                        })
                        .filter_map(|p| {
                            let ip = p.status.as_ref()?.pod_ip.clone()?;
                            let port = p.annotations().get("prometheus.io/port")?.clone();
                            Some(serde_json::json!({"targets": [format!("{ip}:{port}")], "labels": {"pod": p.name_any()}}))
                        })
                        .collect();
                    let tmp = file.with_extension("tmp");
                    if std::fs::write(&tmp, serde_json::to_vec(&targets).unwrap()).is_ok() {
                        let _ = std::fs::rename(&tmp, &file);
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    // 5. The Deployments: the base's workload-app, and one whose process exits at once.
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    for d in [
        workload_deployment("workload-app", &[]),
        workload_deployment("crasher", &["--no-such-flag"]),
    ] {
        let d: Deployment = serde_json::from_value(d).unwrap();
        rt.block_on(deployments.create(&PostParams::default(), &d))
            .unwrap();
    }
    rt.block_on(deployments.patch_scale(
        "crasher",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
    ))
    .unwrap();

    // 6. The operator's identity: the ServiceAccount token Secret of deploy/'s RBAC.
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), NS);
    let token = wait_for("operator token Secret", Duration::from_secs(30), || {
        let l = rt.block_on(secrets.list(&ListParams::default())).ok()?;
        l.items.into_iter().find_map(|s| {
            let sa = s
                .annotations()
                .get("kubernetes.io/service-account.name")?
                .clone();
            (sa == "nimbusguard-operator").then_some(())?;
            let t = s.data?.get("token")?.0.clone();
            String::from_utf8(t).ok()
        })
    });
    let sa_kubeconfig = dir.join("operator.kubeconfig");
    kubeconfig(&cluster, &token, &sa_kubeconfig);
    let operator = rt
        .block_on(adapters::k8s::connect(Some(&sa_kubeconfig)))
        .unwrap();
    // A verb the Role does not grant fails loudly, naming what was refused.
    let mut elsewhere = KubeScaler::new(
        operator.clone(),
        rt.handle().clone(),
        "default",
        "web",
        KubeScalerConfig::default(),
    );
    let err = rt
        .block_on(elsewhere.refresh_async())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("forbidden") && err.contains("deployments/scale") && err.contains("default"),
        "{err}"
    );
    let op_deployments: Api<Deployment> = Api::namespaced(operator.clone(), NS);
    let del = rt.block_on(op_deployments.delete("workload-app", &Default::default()));
    assert!(
        matches!(&del, Err(kube::Error::Api(s)) if s.code == 403),
        "{del:?}"
    );

    // 7. The controller, as the ServiceAccount.
    let listen = format!("127.0.0.1:{}", free_port().unwrap());
    let log = std::fs::File::create(dir.join("controller.log")).unwrap();
    let mut controller = Guard(Some(
        common::command(&[
            "controller",
            "--kubeconfig",
            s(&sa_kubeconfig),
            "--namespace",
            NS,
            "--listen",
            &listen,
            "--work-dir",
            s(&dir.join("controller")),
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap(),
    ));
    let scalers: Api<NimbusScaler> = Api::namespaced(admin.clone(), NS);
    for ns in [
        nimbus_scaler(
            "workload-app",
            "workload-app",
            &prom.url(),
            serde_json::json!({}),
        ),
        nimbus_scaler(
            "crasher",
            "crasher",
            &prom.url(),
            serde_json::json!({
                "maxReplicas": 2, "decisionIntervalSeconds": 1,
                "selfHealing": {"pendingDeadlineSeconds": 3, "maxRetries": 1}
            }),
        ),
    ] {
        rt.block_on(scalers.create(&PostParams::default(), &ns))
            .unwrap();
    }
    let status = |name: &str| rt.block_on(scalers.get(name)).ok().and_then(|n| n.status);
    wait_for(
        "first decision in the status",
        Duration::from_secs(60),
        || status("workload-app").filter(|s| s.decisions >= 1),
    );

    // A spec the schema accepts but the operator does not (a `models:/` version that is
    // neither a number nor `latest`): Ready=False, InvalidSpec, a Warning event naming the
    // field; `kubectl get nsc` shows both resources' Ready and Reason columns.
    let bad = nimbus_scaler(
        "bad-model",
        "workload-app",
        &prom.url(),
        serde_json::json!({"policy": {"mlflowModel": {"uri": "models:/q/abc"}}}),
    );
    rt.block_on(scalers.create(&PostParams::default(), &bad))
        .unwrap();
    let ready = |name: &str| {
        status(name).and_then(|s| {
            let c = s.conditions.into_iter().find(|c| c.type_ == "Ready")?;
            Some((c.status, c.reason, c.message))
        })
    };
    let (st, reason, message) = wait_for("bad-model reported", Duration::from_secs(30), || {
        ready("bad-model")
    });
    assert_eq!((st.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(
        message.contains("spec.policy.mlflowModel.uri") && message.contains("`abc`"),
        "{message}"
    );
    wait_for("the InvalidSpec event", Duration::from_secs(10), || {
        event_reasons(&rt, &admin, "bad-model")
            .iter()
            .any(|r| r == "InvalidSpec")
            .then_some(())
    });
    let table = Command::new(cluster.get("KUBECTL"))
        .args([
            "--kubeconfig",
            cluster.get("KUBECONFIG"),
            "-n",
            NS,
            "get",
            "nsc",
        ])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    let cells = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let col = |h: &str| header.iter().position(|c| *c == h);
    let (r, why) = (col("READY").expect(&table), col("REASON").expect(&table));
    assert_eq!(
        (
            cells("bad-model")[r].as_str(),
            cells("bad-model")[why].as_str()
        ),
        ("False", "InvalidSpec"),
        "{table}"
    );
    assert_eq!(
        (
            cells("workload-app")[r].as_str(),
            cells("workload-app")[why].as_str()
        ),
        ("True", "Deciding"),
        "{table}"
    );
    rt.block_on(scalers.delete("bad-model", &Default::default()))
        .unwrap();

    // 8. Load through a front over the Ready pods' addresses (no kube-proxy here).
    let front = Front::start(&FrontConfig::default()).unwrap();
    let pods_api: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let ready_pods = |app_name: &str| -> Vec<Pod> {
        rt.block_on(pods_api.list(&ListParams::default()))
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| {
                p.name_any().starts_with(&format!("{app_name}-"))
                    && p.metadata.deletion_timestamp.is_none()
            })
            .filter(|p| adapters::k8s::scaler::pod_info(p).ready)
            .collect()
    };
    let front_url = format!("http://{}/work", front.addr());
    let mut lg = Guard(Some(
        Command::new(&loadgen)
            .args([
                "--pattern",
                "{ kind = \"spike\", base_rps = 45, spike_rps = 45, start_s = 0, spike_duration_s = 40, duration_s = 40 }",
                "--resample-s",
                "1",
                "--target",
                &front_url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let t_load = Instant::now();
    let mut max_ready = 0;
    while t_load.elapsed() < Duration::from_secs(40) {
        let ready = ready_pods("workload-app");
        max_ready = max_ready.max(ready.len());
        front.set_backends(
            ready
                .iter()
                .filter_map(|p| {
                    let i = adapters::k8s::scaler::pod_info(p);
                    Some(Backend {
                        name: i.name,
                        addr: i.addr?,
                    })
                })
                .collect(),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(lg.0.take().map(|mut c| c.wait()));
    let up = status("workload-app").unwrap();
    eprintln!("after the load: {up:?}");
    assert!(
        max_ready >= 2,
        "the controller never got a second Ready pod (max {max_ready}); status {up:?}"
    );
    let d = rt.block_on(deployments.get("workload-app")).unwrap();
    eprintln!(
        "deployment replicas {:?}",
        d.spec.as_ref().and_then(|s| s.replicas)
    );
    // Every Ready pod is a real process bound to the agent's node, scraped by Prometheus.
    let scraped = pc.query(r#"count(up{job="workload"} == 1)"#, None).unwrap();
    assert!(
        scraped.as_vector().first().map_or(0.0, |s| s.value) >= 2.0,
        "{scraped:?}"
    );
    for p in ready_pods("workload-app") {
        assert_eq!(
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some("local-node-1")
        );
    }

    // 9. No load: back down to minReplicas.
    front.set_backends(Vec::new());
    wait_for("scaled down to 1", Duration::from_secs(90), || {
        let s = status("workload-app")?;
        let d = rt.block_on(deployments.get("workload-app")).ok()?;
        (s.desired_replicas == 1
            && d.spec?.replicas == Some(1)
            && ready_pods("workload-app").len() == 1)
            .then_some(())
    });
    let st = status("workload-app").unwrap();
    let last = st.last_decision.clone().expect("a last decision");
    assert_eq!(st.observed_generation, Some(1));
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
        "{st:?}"
    );
    assert!(
        !last.reason.is_empty() && !last.decided_by.is_empty(),
        "{last:?}"
    );
    let reasons = event_reasons(&rt, &admin, "workload-app");
    assert!(reasons.iter().any(|r| r == "ScaledUp"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r == "ScaledDown"), "{reasons:?}");

    // 10. Self-healing: the crash-looping Deployment is retried once, then reverted to 1.
    wait_for(
        "crasher reverted to 1 replica",
        Duration::from_secs(90),
        || {
            let r = event_reasons(&rt, &admin, "crasher");
            let d = rt.block_on(deployments.get("crasher")).ok()?;
            (r.iter().any(|x| x == "ScaleUpStuck")
                && r.iter().any(|x| x == "ScaleUpReverted")
                && d.spec?.replicas == Some(1))
            .then_some(())
        },
    );
    let cs = status("crasher").unwrap();
    assert!(cs.self_healing.recoveries >= 2, "{cs:?}");

    // 11. Per-resource metrics on the controller's /metrics.
    let metrics_url = format!("http://{listen}/metrics");
    let scrape = || -> String {
        reqwest::blocking::get(&metrics_url)
            .and_then(|r| r.text())
            .unwrap_or_default()
    };
    let sample = |text: &str, series: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
    };
    let text = scrape();
    let w = r#"{namespace="nimbusguard",name="workload-app""#;
    assert_eq!(
        sample(&text, &format!("nimbusguard_scaler_desired_replicas{w}}}")),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            &format!(r#"nimbusguard_scaler_decisions_total{w},source="agent"}}"#)
        )
        .unwrap_or(0.0)
            >= 3.0,
        "{text}"
    );
    let crasher_retries = sample(
        &text,
        r#"nimbusguard_scaler_self_healing_total{namespace="nimbusguard",name="crasher",action="retry"}"#,
    );
    assert!(crasher_retries >= Some(1.0), "{text}");

    // 12. Prometheus goes away: the HPA fallback decides (status, condition, metric), the
    // controller keeps running; when Prometheus is back, the agent decides again.
    prom.stop();
    let st = wait_for(
        "fallback while Prometheus is down",
        Duration::from_secs(30),
        || status("workload-app").filter(|s| s.fallback.active),
    );
    assert_eq!(st.fallback.reason.as_deref(), Some("unreachable"), "{st:?}");
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "FallbackActive" && c.status == "True"),
        "{st:?}"
    );
    assert_eq!(
        sample(
            &scrape(),
            &format!("nimbusguard_scaler_fallback_active{w}}}")
        ),
        Some(1.0)
    );
    assert!(controller.0.as_mut().unwrap().try_wait().unwrap().is_none());
    prom.start_again().unwrap();
    wait_for(
        "the agent decides again after Prometheus is back",
        Duration::from_secs(60),
        || status("workload-app").filter(|s| !s.fallback.active),
    );

    // 13. The API server restarts (killed, started again 3 s later with the same flags): the
    // controller rides it out and keeps deciding.
    let pid_file = cluster.state.join("pids/kube-apiserver.pid");
    let old_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmdline: Vec<String> = std::fs::read(format!("/proc/{old_pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let before = status("workload-app").unwrap().decisions;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    wait_for("the API server gone", Duration::from_secs(10), || {
        (!Path::new(&format!("/proc/{old_pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{old_pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let api_log = std::fs::OpenOptions::new()
        .append(true)
        .open(cluster.state.join("logs/kube-apiserver.log"))
        .unwrap();
    // setsid, as up.sh starts it: its own session, stopped by down.sh through the pid file.
    let mut restarted = Command::new("setsid")
        .args(&cmdline)
        .stdin(Stdio::null())
        .stdout(api_log.try_clone().unwrap())
        .stderr(api_log)
        .spawn()
        .unwrap();
    std::fs::write(&pid_file, restarted.id().to_string()).unwrap();
    wait_for(
        "decisions again after the API server restart",
        Duration::from_secs(90),
        || status("workload-app").filter(|s| s.decisions >= before + 3),
    );
    assert!(
        controller.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the controller exited when the API server restarted"
    );

    // 14. Stop: the controller exits cleanly on SIGTERM; the agent stops every process.
    let c = controller.0.take().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "controller exit: {:?}; log in {}",
        out.status,
        dir.join("controller.log").display()
    );
    let running = processes_of(&app);
    assert!(
        !running.is_empty(),
        "no workload-app process before the agent stops"
    );
    let a = agent.0.take().unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut agent_out, &mut rest).unwrap();
    let out = a.wait_with_output().unwrap();
    assert!(out.status.success(), "node-agent exit: {:?}", out.status);
    let stopped: serde_json::Value = serde_json::from_str(rest.trim()).unwrap();
    assert_eq!(stopped["event"], "stopped", "{rest}");
    assert_eq!(stopped["shutdown_ok"], true, "{rest}");
    assert!(stopped["pods_started"].as_u64() >= Some(4), "{rest}");
    let left = processes_of(&app);
    assert!(left.is_empty(), "pod processes left running: {left:?}");
    discovery.abort();
    drop(prom);
    drop(cluster);
    // down.sh stopped the restarted API server through its pid file: reap it.
    let _ = restarted.wait();
}
