//! [`build_runs`]: the MLflow runs of a result folder (`../shared/DESIGN.md`, section 6).
//!
//! From the files `nimbusguard run` wrote ([`crate::cmd_run::write_results`]) it builds:
//! - a parent run (the experiment run, or the sweep point given as [`ParentRun`]): params from
//!   the whole `config.toml` (agents by name: `agents.dqn.dqn.total_steps`), the mean of every
//!   summary metric per agent (`hpa/pod_hours`), and the artifacts `config.toml`,
//!   `summary.json`, `summary.md`, `episodes.csv`, `training.csv`, `timeseries.csv`, the same
//!   tables as `.parquet` (where the run wrote them), `plots/`;
//! - one child run per agent x seed (a row of `episodes.csv`): tags `agent`, `agent_kind`,
//!   `seed`, `env_id`, `trace`; params from `config.toml` without the agent list plus the
//!   agent's own section as `agent.*`; the episode metrics ([`METRIC_NAMES`] and the counts)
//!   at step 0; the seed's time series if `timeseries.csv` has it (`timeseries/<column>` for
//!   8 columns, step = simulated second, averaged into at most [`MAX_CURVE_POINTS`] points);
//!   artifacts `config.toml` and `summary.json`. An agent is trained once for all seeds, so
//!   its training curve (`training/return`, `training/epsilon`, `training/loss`, step =
//!   training episode) and trained policy (`policies/<agent>.json` or `policies/<agent>.dqn/`)
//!   go with its first seed's run, where the policy is registered as a version of the model
//!   `nimbusguard-<experiment>-<agent>` (tag `nimbusguard.policy` = its artifact path).
//!
//! Every run carries `mlflow.source.git.commit` (from `git rev-parse HEAD`, when available).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::now_ms;
use super::run_log::{flatten_toml, Artifact, ModelRegistration, RunLog};
use crate::records::{
    read_episodes_csv, read_timeseries_csv, read_training_csv, EpisodeRecord, TickRecord,
    METRIC_NAMES,
};
use crate::report::read_summary;

/// Most points of one curve in one run: longer curves are averaged over consecutive rows.
/// MLflow's charts sample 320 points per line by default, and a sqlite-backed server stores
/// about 1500 metric values per second on a 2-core machine, so more would only slow the
/// upload; the full series is in the parent run's `timeseries.csv` artifact.
pub const MAX_CURVE_POINTS: usize = 250;

/// The run that a result folder's agent x seed runs nest under. `nimbusguard run` passes
/// none and gets the experiment run; a sweep passes its point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParentRun {
    /// Stable unique key (tag `nimbusguard.run_key`), e.g. `<sweep id>/point-3`; the child
    /// runs get `<key>/<agent>/seed-<seed>`. Must differ between executions, or a second
    /// execution is taken for the first and skipped.
    pub key: String,
    /// Display name, e.g. `point-3 workload.peak_rps=300`.
    pub name: String,
    /// Params on top of those of `config.toml` (same name: this value wins), e.g. the swept
    /// values.
    pub params: BTreeMap<String, String>,
    /// Extra tags.
    pub tags: BTreeMap<String, String>,
    /// Key of an already logged (or earlier spooled) run to nest this one under, e.g. the
    /// sweep's own run.
    pub parent_key: Option<String>,
}

/// The runs of the result folder `dir`: the parent first, then one per agent x seed (see the
/// module docs).
///
/// # Errors
/// `config.toml`, `summary.json` or `episodes.csv` is missing or malformed (named);
/// `training.csv` or `timeseries.csv` is malformed (a missing one counts as empty).
pub fn build_runs(dir: &Path, parent: Option<&ParentRun>) -> Result<Vec<RunLog>> {
    let config_path = dir.join("config.toml");
    let config: toml::Value = std::fs::read_to_string(&config_path)
        .with_context(|| format!("cannot read {}", config_path.display()))?
        .parse()
        .with_context(|| format!("{} is not valid TOML", config_path.display()))?;
    let summary = read_summary(dir.join("summary.json"))?;
    let episodes = read_episodes_csv(dir.join("episodes.csv"))?;
    let training = match dir.join("training.csv") {
        p if p.is_file() => read_training_csv(p)?,
        _ => Vec::new(),
    };
    let ticks = match dir.join("timeseries.csv") {
        p if p.is_file() => read_timeseries_csv(p)?,
        _ => Vec::new(),
    };
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let start = mtime_ms(&config_path).unwrap_or_else(now_ms);
    let end = mtime_ms(&dir.join("summary.json")).unwrap_or_else(now_ms);
    let experiment = summary.experiment.clone();
    let agents: Vec<toml::Value> = config
        .get("agents")
        .and_then(|a| a.as_array())
        .cloned()
        .unwrap_or_default();
    let agent_table = |name: &str| {
        agents
            .iter()
            .find(|a| a.get("name").and_then(|n| n.as_str()) == Some(name))
    };

    let mut common = BTreeMap::new();
    common.insert("env_id".to_string(), summary.env_id.clone());
    common.insert("trace".to_string(), summary.trace.clone());
    // A sweep mirrors a run from `runs/<id>.partial/` just before renaming it to `runs/<id>/`:
    // the tag names the folder the results will be in.
    let final_dir = match abs.to_str().and_then(|s| s.strip_suffix(".partial")) {
        Some(s) => PathBuf::from(s),
        None => abs.clone(),
    };
    common.insert(
        "nimbusguard.result_dir".to_string(),
        final_dir.display().to_string(),
    );
    common.insert("mlflow.source.name".to_string(), "nimbusguard".to_string());
    common.insert("mlflow.source.type".to_string(), "LOCAL".to_string());
    if let Some(commit) = git_commit() {
        common.insert("mlflow.source.git.commit".to_string(), commit);
    }
    if let Some(user) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        common.insert("mlflow.user".to_string(), user);
    }

    // The parent.
    let default_key = format!("{experiment}/{:x}-{:08x}", now_ms(), random_u32());
    let (key, name) = match parent {
        Some(p) => (p.key.clone(), p.name.clone()),
        None => (default_key, experiment.clone()),
    };
    let mut top = RunLog::new(&experiment, &key, &name, start);
    top.end_time_ms = end;
    top.parent_key = parent.and_then(|p| p.parent_key.clone());
    let key = top.run_key.clone();
    let mut by_name = config.clone();
    if let Some(t) = by_name.as_table_mut() {
        let named: toml::map::Map<String, toml::Value> = agents
            .iter()
            .filter_map(|a| {
                let n = a.get("name")?.as_str()?.to_string();
                let mut a = a.clone();
                a.as_table_mut()?.remove("name");
                Some((n, a))
            })
            .collect();
        t.insert("agents".into(), toml::Value::Table(named));
    }
    let mut flat = BTreeMap::new();
    flatten_toml("", &by_name, &mut flat);
    for (k, v) in flat
        .iter()
        .chain(parent.map(|p| &p.params).into_iter().flatten())
    {
        top.param(k.clone(), v);
    }
    for (k, v) in common.iter() {
        top.tag(k.clone(), v);
    }
    top.tag(
        "nimbusguard.kind",
        if parent.is_some() {
            "sweep-point"
        } else {
            "experiment"
        },
    );
    for (k, v) in parent.map(|p| &p.tags).into_iter().flatten() {
        top.tag(k.clone(), v);
    }
    for (agent, s) in &summary.agents {
        for (metric, m) in &s.metrics {
            if m.mean.is_finite() {
                top.metric(format!("{agent}/{metric}"), m.mean, 0);
            }
        }
    }
    for f in [
        "config.toml",
        "summary.json",
        "summary.md",
        "episodes.csv",
        "training.csv",
        "timeseries.csv",
        "episodes.parquet",
        "training.parquet",
        "timeseries.parquet",
    ] {
        add_file(&mut top, dir, f);
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("plots")) {
        let mut pngs: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".png"))
            .collect();
        pngs.sort();
        for p in pngs {
            add_file(&mut top, dir, &format!("plots/{p}"));
        }
    }

    // The children.
    let mut shared = BTreeMap::new();
    let mut without_agents = config.clone();
    if let Some(t) = without_agents.as_table_mut() {
        t.remove("agents");
    }
    flatten_toml("", &without_agents, &mut shared);
    let mut runs = vec![top];
    let mut trained = std::collections::HashSet::new();
    for e in sorted_by_seed(&episodes) {
        let mut run = RunLog::new(
            &experiment,
            &format!("{key}/{}/seed-{}", e.agent, e.seed),
            &format!("{}-seed-{}", e.agent, e.seed),
            start,
        );
        run.end_time_ms = end;
        run.parent_key = Some(key.clone());
        for (k, v) in &shared {
            run.param(k.clone(), v);
        }
        if let Some(a) = agent_table(&e.agent) {
            let mut own = BTreeMap::new();
            flatten_toml("agent", a, &mut own);
            for (k, v) in &own {
                run.param(k.clone(), v);
            }
        }
        for (k, v) in common.iter() {
            run.tag(k.clone(), v);
        }
        run.tag("agent", &e.agent);
        run.tag("agent_kind", &e.kind);
        run.tag("seed", &e.seed.to_string());
        run.tag("nimbusguard.kind", "episode");
        add_episode_metrics(&mut run, e);
        add_timeseries(&mut run, &ticks, &e.agent, e.seed);
        add_file(&mut run, dir, "config.toml");
        add_file(&mut run, dir, "summary.json");
        // An agent is trained once, whatever the seeds: its curve and policy go with its
        // first seed.
        if trained.insert(e.agent.clone()) {
            add_training_curves(&mut run, &training, &e.agent);
            add_policy(&mut run, dir, &experiment, e);
        }
        runs.push(run);
    }
    Ok(runs)
}

/// The records ordered by agent (first appearance), then seed.
fn sorted_by_seed(episodes: &[EpisodeRecord]) -> Vec<&EpisodeRecord> {
    let mut order: Vec<&str> = Vec::new();
    for e in episodes {
        if !order.contains(&e.agent.as_str()) {
            order.push(&e.agent);
        }
    }
    let mut out: Vec<&EpisodeRecord> = episodes.iter().collect();
    out.sort_by_key(|e| (order.iter().position(|a| *a == e.agent), e.seed));
    out
}

fn add_episode_metrics(run: &mut RunLog, e: &EpisodeRecord) {
    for (name, v) in METRIC_NAMES.iter().zip(e.metrics.values()) {
        run.metric(*name, v, 0);
    }
    run.metric("ticks", e.ticks as f64, 0);
    run.metric("arrivals_total", e.arrivals_total, 0);
    run.metric("served_total", e.served_total, 0);
    run.metric("dropped_total", e.dropped_total, 0);
    run.metric("backlog_end", e.backlog_end, 0);
    if let Some(f) = e.anomaly_flags {
        run.metric("anomaly_flags", f as f64, 0);
    }
}

fn add_training_curves(run: &mut RunLog, training: &[crate::records::TrainingPoint], agent: &str) {
    let rows: Vec<_> = training.iter().filter(|t| t.agent == agent).collect();
    let step = |i: usize| rows[i].episode as i64;
    add_curve(run, "training/return", rows.len(), step, |i| {
        rows[i].return_
    });
    add_curve(run, "training/epsilon", rows.len(), step, |i| {
        rows[i].epsilon
    });
    add_curve(run, "training/loss", rows.len(), step, |i| {
        rows[i].loss.unwrap_or(f64::NAN)
    });
}

fn add_timeseries(run: &mut RunLog, ticks: &[TickRecord], agent: &str, seed: u64) {
    let rows: Vec<&TickRecord> = ticks
        .iter()
        .filter(|t| t.agent == agent && t.seed == seed)
        .collect();
    let n = rows.len();
    let step = |i: usize| rows[i].time_s.round() as i64;
    type Col = fn(&TickRecord) -> f64;
    let cols: [(&str, Col); 8] = [
        ("arrival_rps", |t| t.arrival_rps),
        ("served_rps", |t| t.served_rps),
        ("dropped_rps", |t| t.dropped_rps),
        ("desired_replicas", |t| t.desired_replicas as f64),
        ("ready_replicas", |t| t.ready_replicas as f64),
        ("cpu_utilization", |t| t.cpu_utilization),
        ("p95_latency_ms", |t| t.p95_latency_ms),
        ("slo_violated", |t| f64::from(u8::from(t.slo_violated))),
    ];
    for (name, f) in cols {
        add_curve(run, &format!("timeseries/{name}"), n, step, |i| f(rows[i]));
    }
}

/// Adds metric `key` over rows `0..n` (value `value(i)`, step `step(i)`): every row when there
/// are at most [`MAX_CURVE_POINTS`], else the mean of each run of consecutive rows at the
/// step of its last row. Points without a finite value (all rows NaN) are left out.
fn add_curve(
    run: &mut RunLog,
    key: &str,
    n: usize,
    step: impl Fn(usize) -> i64,
    value: impl Fn(usize) -> f64,
) {
    let per = n.div_ceil(MAX_CURVE_POINTS).max(1);
    for start in (0..n).step_by(per) {
        let end = (start + per).min(n);
        let xs: Vec<f64> = (start..end).map(&value).filter(|x| x.is_finite()).collect();
        if !xs.is_empty() {
            run.metric(key, xs.iter().sum::<f64>() / xs.len() as f64, step(end - 1));
        }
    }
}

/// Adds `rel` (a `/`-path under `dir`) as an artifact at the same path, if the file exists.
fn add_file(run: &mut RunLog, dir: &Path, rel: &str) {
    let local = dir.join(rel);
    if local.is_file() {
        run.artifacts.push(Artifact {
            local: std::path::absolute(&local).unwrap_or(local),
            path: rel.to_string(),
        });
    }
}

/// Adds the agent's trained policy, if it has one, and its model registration.
fn add_policy(run: &mut RunLog, dir: &Path, experiment: &str, e: &EpisodeRecord) {
    let file = format!("policies/{}.json", e.agent);
    let folder = format!("policies/{}.dqn", e.agent);
    let source = if dir.join(&file).is_file() {
        add_file(run, dir, &file);
        file
    } else if dir.join(&folder).is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(&folder))
            .map(|it| {
                it.filter_map(|x| x.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        for n in names {
            add_file(run, dir, &format!("{folder}/{n}"));
        }
        folder
    } else {
        return;
    };
    run.tag("nimbusguard.policy", &source);
    let name: String = format!("nimbusguard-{experiment}-{}", e.agent)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut tags = BTreeMap::new();
    tags.insert("agent".to_string(), e.agent.clone());
    tags.insert("agent_kind".to_string(), e.kind.clone());
    tags.insert("experiment".to_string(), experiment.to_string());
    tags.insert("nimbusguard.run_key".to_string(), run.run_key.clone());
    run.models.push(ModelRegistration {
        name,
        artifact_path: source,
        description: format!(
            "{} policy of agent {} trained by nimbusguard (experiment {experiment})",
            e.kind, e.agent
        ),
        tags,
    });
}

fn mtime_ms(p: &Path) -> Option<i64> {
    let t = std::fs::metadata(p).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64)
}

/// 32 random bits (the standard library's randomly seeded hasher; no RNG stream is touched).
fn random_u32() -> u32 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}

/// `git rev-parse HEAD` in the current folder, if git and a repository are there.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && s.len() >= 7).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{episode, scratch_dir};
    use crate::records::{
        write_episodes_csv, write_timeseries_csv, write_training_csv, TrainingPoint,
    };
    use crate::report::{summarize, write_summary};
    use std::path::PathBuf;

    /// A result folder as `nimbusguard run` writes it: 2 agents x 2 seeds, a training curve
    /// of 3 episodes for `q`, 2500 ticks of time series for `hpa` seed 1, a Q-table.
    fn result_dir(name: &str) -> PathBuf {
        let dir = scratch_dir(name);
        std::fs::write(
            dir.join("config.toml"),
            "experiment = \"demo\"\n[workload]\npeak_rps = 150.0\n\
             [[agents]]\nname = \"hpa\"\nkind = \"hpa\"\n\
             [[agents]]\nname = \"q\"\nkind = \"q-learning\"\nq_learning = { episodes = 3 }\n",
        )
        .unwrap();
        let eps = vec![
            episode("hpa", "hpa", 1, 10.0),
            episode("hpa", "hpa", 2, 11.0),
            episode("q", "q-learning", 1, 8.0),
            episode("q", "q-learning", 2, 9.5),
        ];
        write_episodes_csv(dir.join("episodes.csv"), &eps).unwrap();
        let s = summarize("demo", "scaling-v0", "nasa.csv", &eps, "hpa");
        write_summary(&dir, &s, "# demo\n").unwrap();
        let training: Vec<TrainingPoint> = (0..3)
            .map(|i| TrainingPoint {
                agent: "q".into(),
                episode: i,
                return_: -(i as f64),
                epsilon: 1.0 - 0.1 * i as f64,
                loss: None,
            })
            .collect();
        write_training_csv(dir.join("training.csv"), &training).unwrap();
        let ticks: Vec<TickRecord> = (0..2500)
            .map(|i| TickRecord {
                agent: "hpa".into(),
                seed: 1,
                time_s: (i + 1) as f64,
                arrival_rps: 100.0,
                served_rps: 100.0,
                dropped_rps: 0.0,
                backlog: 0.0,
                desired_replicas: (i / 100) as u32,
                ready_replicas: 3,
                pending_replicas: 0,
                cpu_utilization: 0.5,
                p50_latency_ms: 50.0,
                // No latency in the first 10 ticks (nothing served).
                p95_latency_ms: if i < 10 { f64::NAN } else { 80.0 },
                p99_latency_ms: 90.0,
                slo_violated: i % 2 == 0,
            })
            .collect();
        write_timeseries_csv(dir.join("timeseries.csv"), &ticks).unwrap();
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        std::fs::write(dir.join("policies/q.json"), "{}").unwrap();
        dir
    }

    #[test]
    fn runs_of_a_result_folder() {
        let dir = result_dir("mirror-build");
        let runs = build_runs(&dir, None).unwrap();
        assert_eq!(runs.len(), 5, "a parent and 2 agents x 2 seeds");
        let top = &runs[0];
        assert_eq!(top.experiment, "demo");
        assert!(top.run_key.starts_with("demo/"));
        assert_eq!(top.params["workload.peak_rps"], "150.0");
        assert_eq!(top.params["agents.q.q_learning.episodes"], "3");
        assert_eq!(top.tags["nimbusguard.kind"], "experiment");
        let mean = top.metrics.iter().find(|m| m.key == "q/pod_hours").unwrap();
        assert_eq!(mean.value, 8.75);
        let files: Vec<&str> = top.artifacts.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            files,
            [
                "config.toml",
                "summary.json",
                "summary.md",
                "episodes.csv",
                "training.csv",
                "timeseries.csv"
            ]
        );

        let hpa1 = &runs[1];
        assert_eq!(hpa1.run_key, format!("{}/hpa/seed-1", top.run_key));
        assert_eq!(hpa1.parent_key.as_deref(), Some(top.run_key.as_str()));
        assert_eq!(
            (
                hpa1.tags["agent"].as_str(),
                hpa1.tags["agent_kind"].as_str(),
                hpa1.tags["seed"].as_str()
            ),
            ("hpa", "hpa", "1")
        );
        assert_eq!(hpa1.tags["env_id"], "scaling-v0");
        assert_eq!(hpa1.tags["trace"], "nasa.csv");
        assert_eq!(hpa1.params["agent.kind"], "hpa");
        assert_eq!(hpa1.params["workload.peak_rps"], "150.0");
        assert!(!hpa1.params.keys().any(|k| k.starts_with("agents")));
        let pod = hpa1.metrics.iter().find(|m| m.key == "pod_hours").unwrap();
        assert_eq!((pod.value, pod.step), (10.0, 0));
        // 2500 ticks averaged 10 at a time into 250 points, at the step of each group's last tick.
        let replicas: Vec<_> = hpa1
            .metrics
            .iter()
            .filter(|m| m.key == "timeseries/desired_replicas")
            .collect();
        assert_eq!(replicas.len(), 250);
        assert_eq!((replicas[0].step, replicas[0].value), (10, 0.0));
        assert_eq!((replicas[249].step, replicas[249].value), (2500, 24.0));
        let slo = hpa1
            .metrics
            .iter()
            .find(|m| m.key == "timeseries/slo_violated")
            .unwrap();
        assert_eq!(slo.value, 0.5);
        // A group without a finite value is left out.
        let p95: Vec<_> = hpa1
            .metrics
            .iter()
            .filter(|m| m.key == "timeseries/p95_latency_ms")
            .collect();
        assert_eq!((p95.len(), p95[0].step, p95[0].value), (249, 20, 80.0));
        assert!(hpa1.models.is_empty());
        // The seed-2 run has no time series (timeseries.csv only has seed 1).
        assert!(!runs[2]
            .metrics
            .iter()
            .any(|m| m.key.starts_with("timeseries/")));

        let q1 = &runs[3];
        assert_eq!(q1.tags["seed"], "1");
        let ret: Vec<(i64, f64)> = q1
            .metrics
            .iter()
            .filter(|m| m.key == "training/return")
            .map(|m| (m.step, m.value))
            .collect();
        assert_eq!(ret, [(0, 0.0), (1, -1.0), (2, -2.0)]);
        assert!(!q1.metrics.iter().any(|m| m.key == "training/loss"));
        assert_eq!(q1.models.len(), 1);
        assert_eq!(q1.models[0].name, "nimbusguard-demo-q");
        assert_eq!(q1.models[0].artifact_path, "policies/q.json");
        assert!(q1.artifacts.iter().any(|a| a.path == "policies/q.json"));
        // The training curve and policy go with the agent's first seed only.
        assert!(runs[4].models.is_empty());
        assert!(!runs[4]
            .metrics
            .iter()
            .any(|m| m.key.starts_with("training/")));
        assert!(!runs[4]
            .artifacts
            .iter()
            .any(|a| a.path.starts_with("policies/")));
    }

    #[test]
    fn a_sweep_point_parent_names_the_runs() {
        let dir = result_dir("mirror-parent");
        let mut params = BTreeMap::new();
        params.insert("workload.peak_rps".to_string(), "300".to_string());
        let parent = ParentRun {
            key: "sweep-1/point-3".into(),
            name: "point-3".into(),
            params,
            tags: [("sweep".to_string(), "sweep-1".to_string())].into(),
            parent_key: Some("sweep-1".into()),
        };
        let runs = build_runs(&dir, Some(&parent)).unwrap();
        assert_eq!(runs[0].run_key, "sweep-1/point-3");
        assert_eq!(runs[0].run_name, "point-3");
        assert_eq!(runs[0].parent_key.as_deref(), Some("sweep-1"));
        assert_eq!(runs[0].params["workload.peak_rps"], "300");
        assert_eq!(runs[0].tags["sweep"], "sweep-1");
        assert_eq!(runs[0].tags["nimbusguard.kind"], "sweep-point");
        assert_eq!(runs[2].run_key, "sweep-1/point-3/hpa/seed-2");
    }

    #[test]
    fn a_broken_result_folder_is_named() {
        let dir = scratch_dir("mirror-broken");
        let e = build_runs(&dir, None).unwrap_err();
        assert!(format!("{e:#}").contains("config.toml"), "{e:#}");
        std::fs::write(dir.join("config.toml"), "experiment = [").unwrap();
        let e = build_runs(&dir, None).unwrap_err();
        assert!(format!("{e:#}").contains("not valid TOML"), "{e:#}");
    }
}
