//! `nimbusguard sweep` end to end: results identical for any thread count and sharding (N
//! shards merged equal one unsharded run, bit for bit), a sweep killed mid-run resumes to the
//! same results without recomputing finished runs, and malformed sweep files are rejected
//! before anything runs, with the key named.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::tmp;

const SWEEP: &str = "tests/data/sweep.toml";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nimbusguard"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("MLFLOW_TRACKING_URI");
    c
}

/// `out`'s stdout; panics with stdout and stderr unless the sweep succeeded.
fn ok(out: Output) -> String {
    common::ok(out, "sweep").0
}

fn sweep(args: &[&str]) -> Output {
    let out = bin().arg("sweep").args(args).output().unwrap();
    out
}

fn assert_same_files(a: &Path, b: &Path) {
    let (fa, fb) = (common::files(a, &[]), common::files(b, &[]));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "{} and {} hold different files",
        a.display(),
        b.display()
    );
    for (k, v) in &fa {
        assert!(
            v == &fb[k],
            "{k} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn finished_runs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("runs")) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".partial"))
        .collect();
    v.sort();
    v
}

#[test]
fn threads_and_shards_give_identical_results_and_rankings_hold() {
    let tmp = tmp("shards");
    let one = tmp.join("one");
    let two = tmp.join("two");
    ok(sweep(&[
        SWEEP,
        "--out",
        one.to_str().unwrap(),
        "--threads",
        "1",
    ]));
    ok(sweep(&[
        SWEEP,
        "--out",
        two.to_str().unwrap(),
        "--threads",
        "2",
    ]));
    assert_same_files(&one, &two);

    // 3 shards into their own folders, merged: the same files.
    let mut from = Vec::new();
    for i in 0..3 {
        let d = tmp.join(format!("shard{i}"));
        let stdout = ok(sweep(&[
            SWEEP,
            "--out",
            d.to_str().unwrap(),
            "--shard",
            &format!("{i}/3"),
        ]));
        assert!(
            !d.join("sweep_summary.json").exists(),
            "a shard alone is not the sweep"
        );
        assert!(stdout.contains("--merge"), "{stdout}");
        from.push(d);
    }
    // Shard i holds the runs whose index is i mod 3: 7 runs -> 3, 2, 2.
    let counts: Vec<usize> = from.iter().map(|d| finished_runs(d).len()).collect();
    assert_eq!(counts, [3, 2, 2]);
    let merged = tmp.join("merged");
    let mut args = vec![SWEEP, "--merge", "--out", merged.to_str().unwrap()];
    for d in &from {
        args.extend(["--from", d.to_str().unwrap()]);
    }
    ok(sweep(&args));
    assert_same_files(&one, &merged);

    // Shards sharing one folder (a shared volume): the last one writes the summary.
    let shared = tmp.join("shared");
    for i in 0..2 {
        ok(sweep(&[
            SWEEP,
            "--out",
            shared.to_str().unwrap(),
            "--shard",
            &format!("{i}/2"),
        ]));
    }
    assert_same_files(&one, &shared);

    // The summary agrees with the runs' own files: every entry's mean pod-hours is the mean of
    // its episodes, and rankings are sorted best first.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(one.join("sweep_summary.json")).unwrap()).unwrap();
    assert_eq!(summary["schema"], "nimbusguard.sweep/v1");
    assert_eq!(summary["runs"], 7);
    let entries = summary["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 7 * 3, "7 runs x 3 agents");
    for e in entries {
        let run = e["run"].as_str().unwrap();
        let agent = e["agent"].as_str().unwrap();
        let csv = std::fs::read_to_string(one.join("runs").join(run).join("episodes.csv")).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let (ia, ip) = (
            header.iter().position(|h| *h == "agent").unwrap(),
            header.iter().position(|h| *h == "pod_hours").unwrap(),
        );
        let xs: Vec<f64> = lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|c| c[ia] == agent)
            .map(|c| c[ip].parse().unwrap())
            .collect();
        assert_eq!(xs.len(), 2, "seeds = 2 in the sweep file");
        let mean = xs.iter().sum::<f64>() / 2.0;
        let got = e["metrics"]["pod_hours"]["mean"].as_f64().unwrap();
        assert!(
            (got - mean).abs() <= 1e-9 * mean.abs().max(1.0),
            "{run} {agent}"
        );
    }
    let ranked = summary["rankings"]["pod_hours"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(ranked.len(), entries.len());
    for w in ranked.windows(2) {
        assert!(w[0]["mean"].as_f64().unwrap() <= w[1]["mean"].as_f64().unwrap());
    }
    let ranked = summary["rankings"]["return"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    let ranked = ranked.as_array().unwrap();
    for w in ranked.windows(2) {
        assert!(
            w[0]["mean"].as_f64().unwrap() >= w[1]["mean"].as_f64().unwrap(),
            "higher is better"
        );
    }
    // Each family's front has no point dominated by another configuration of the family.
    for fronts in summary["pareto"].as_object().unwrap().values() {
        for (family, front) in fronts.as_object().unwrap() {
            let family_points: Vec<(f64, f64)> = entries
                .iter()
                .filter(|e| e["kind"] == family.as_str())
                .map(|e| {
                    (
                        e["metrics"]["pod_hours"]["mean"].as_f64().unwrap(),
                        e["metrics"]["slo_violation_pct"]["mean"].as_f64().unwrap(),
                    )
                })
                .collect();
            assert!(!front.as_array().unwrap().is_empty(), "{family}");
            for p in front.as_array().unwrap() {
                let (c, s) = (
                    p["pod_hours"].as_f64().unwrap(),
                    p["slo_violation_pct"].as_f64().unwrap(),
                );
                assert!(!family_points
                    .iter()
                    .any(|&(c2, s2)| c2 <= c && s2 <= s && (c2 < c || s2 < s)));
            }
        }
    }
    // The learned agent is placed against the hpa and kpa fronts.
    let learned = summary["learned"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(learned.as_array().unwrap().len(), 7, "one q agent per run");
    let families: Vec<&str> = learned[0]["against"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["family"].as_str().unwrap())
        .collect();
    assert_eq!(families, ["hpa", "kpa"]);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_killed_sweep_resumes_to_the_same_results_without_recomputing() {
    let tmp = tmp("resume");
    let reference = tmp.join("reference");
    ok(sweep(&[
        SWEEP,
        "--out",
        reference.to_str().unwrap(),
        "--threads",
        "1",
    ]));

    let out = tmp.join("interrupted");
    let mut child = bin()
        .args([
            "sweep",
            SWEEP,
            "--out",
            out.to_str().unwrap(),
            "--threads",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while finished_runs(&out).len() < 2 && started.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup
    child.wait().unwrap();
    let done = finished_runs(&out);
    assert!(done.len() >= 2, "the sweep never finished two runs");
    assert!(
        done.len() < 7,
        "the sweep finished before it could be killed"
    );
    assert!(!out.join("sweep_summary.json").exists());
    // Finished runs are kept byte for byte: remember one, and mark it to catch a recompute.
    let kept = out.join("runs").join(&done[0]);
    let before = common::files(&kept, &[]);
    let marker = kept.join("untouched");
    std::fs::write(&marker, "a recomputed run would remove this file").unwrap();

    let stdout = ok(sweep(&[
        SWEEP,
        "--out",
        out.to_str().unwrap(),
        "--threads",
        "2",
    ]));
    assert!(
        stdout.contains(&format!(
            "{} ran, {} already done",
            7 - done.len(),
            done.len()
        )),
        "{stdout}"
    );
    assert!(marker.exists(), "a finished run was recomputed");
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(common::files(&kept, &[]), before);
    assert!(finished_runs(&out).iter().all(|r| !r.ends_with(".partial")));
    assert_same_files(&reference, &out);

    // A second resume has nothing left to do and changes nothing.
    let stdout = ok(sweep(&[SWEEP, "--out", out.to_str().unwrap()]));
    assert!(stdout.contains("0 ran, 7 already done"), "{stdout}");
    assert_same_files(&reference, &out);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Writes a sweep file into `dir` (its base is the tests' sweep base) and returns its path.
fn sweep_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sweep-base.toml");
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!("base = {:?}\n{body}", base.display().to_string()),
    )
    .unwrap();
    p
}

#[test]
fn malformed_sweep_files_are_rejected_before_anything_runs() {
    let tmp = tmp("malformed");
    let one_point = "[[points]]\n\"agents.2.q_learning.episodes\" = 1\n";
    let cases: [(&str, String, &[&str]); 12] = [
        ("unknown-key", "seeds = 2\ngrd = 1\n".into(), &["grd", "unknown field"]),
        (
            "empty-axis",
            "[grid]\n\"agents.0.hpa.target_cpu_utilization_percent\" = []\n"
                .into(),
            &["agents.0.hpa.target_cpu_utilization_percent", "empty axis"],
        ),
        (
            "wrong-type",
            "[grid]\n\"agents.0.hpa.target_cpu_utilization_percent\" = [50, \"high\"]\n"
                .into(),
            &["agents.0.hpa.target_cpu_utilization_percent", "p001", "invalid type"],
        ),
        (
            "unknown-config-key",
            "[[points]]\n\"agents.0.hpa.target_cpu\" = 50\n"
                .into(),
            &["target_cpu", "unknown field"],
        ),
        (
            "axis-not-a-list",
            "[grid]\n\"env.decision_interval_s\" = 15.0\n"
                .into(),
            &["env.decision_interval_s", "expected a list"],
        ),
        (
            "bad-distribution",
            "[random]\nseed = 1\nsamples = 2\n[random.axes]\n\"agents.1.kpa.target\" = { uniform = [2.0, 1.0] }\n"
                .into(),
            &["agents.1.kpa.target", "lo <= hi"],
        ),
        ("no-points", "seeds = 2\n".into(), &["no points"]),
        (
            "reserved",
            "seeds = 2\n[grid]\n\"evaluation.seeds\" = [2, 3]\n"
                .into(),
            &["evaluation.seeds", "seeds"],
        ),
        (
            "empty-traces",
            format!("traces = []\n{one_point}"),
            &["`traces`", "empty list"],
        ),
        (
            "one-seed",
            format!("seeds = 1\n{one_point}"),
            &["`seeds`", "at least 2"],
        ),
        (
            "path-name",
            format!("name = \"../escape\"\n{one_point}"),
            &["`name`", "plain folder name"],
        ),
        (
            "missing-trace-on-an-axis",
            "[grid]\n\"workload.trace\" = [\"no-such-trace.csv\"]\n".into(),
            &["p000", "`workload.trace`", "no trace at"],
        ),
    ];
    for (name, body, expected) in cases {
        let path = sweep_file(&tmp, &format!("{name}.toml"), &body);
        let out_dir = tmp.join(format!("{name}-out"));
        let out = sweep(&[path.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted");
        for e in expected {
            assert!(stderr.contains(e), "{name}: {e:?} not in {stderr}");
        }
        assert!(
            stderr.contains(&format!("{name}.toml")),
            "{name}: file not named: {stderr}"
        );
        assert!(!out_dir.exists(), "{name}: the output folder was created");
    }
    // Bad --shard values, and --merge with runs missing.
    let good = sweep_file(
        &tmp,
        "good.toml",
        "seeds = 2\n[[points]]\n\"agents.2.q_learning.episodes\" = 1\n",
    );
    for shard in ["3/3", "1", "a/2", "0/0"] {
        let out = sweep(&[good.to_str().unwrap(), "--shard", shard]);
        assert!(!out.status.success(), "--shard {shard} accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--shard"));
    }
    let out = sweep(&[
        good.to_str().unwrap(),
        "--merge",
        "--out",
        tmp.join("m").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 1 runs missing"));

    // A run folder of another plan is not silently reused.
    let d = tmp.join("changed");
    ok(sweep(&[
        good.to_str().unwrap(),
        "--out",
        d.to_str().unwrap(),
    ]));
    let changed = sweep_file(
        &tmp,
        "good.toml",
        "seeds = 2\n[[points]]\n\"agents.2.q_learning.episodes\" = 2\n",
    );
    let plan_before = std::fs::read(d.join("sweep.json")).unwrap();
    let out = sweep(&[changed.to_str().unwrap(), "--out", d.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another plan") && stderr.contains("overrides"),
        "{stderr}"
    );
    // Refused before anything is written: the folder still describes its own plan.
    assert_eq!(std::fs::read(d.join("sweep.json")).unwrap(), plan_before);

    // The same sweep file over a changed base config: the finished run is not taken as done.
    let base_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sweep-base.toml"),
    )
    .unwrap();
    let base2 = tmp.join("base2.toml");
    let datasets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/");
    std::fs::write(
        &base2,
        base_text
            .replace("peak_rps = 150.0", "peak_rps = 300.0")
            .replace("\"datasets/", &format!("\"{}", datasets.display())),
    )
    .unwrap();
    let d2 = tmp.join("base-changed");
    let write = |base: &Path| {
        let p = tmp.join("over-base.toml");
        std::fs::write(
            &p,
            format!("base = {:?}\n{one_point}", base.display().to_string()),
        )
        .unwrap();
        p
    };
    ok(sweep(&[
        write(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sweep-base.toml"))
            .to_str()
            .unwrap(),
        "--out",
        d2.to_str().unwrap(),
    ]));
    let out = sweep(&[
        write(&base2).to_str().unwrap(),
        "--out",
        d2.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success(),
        "a changed base config reused the old run"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("base config"), "{stderr}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The Indexed Job's shard count agrees with its completions and parallelism, and each pod's
/// shard is its completion index.
#[test]
fn the_sweep_job_runs_one_shard_per_completion_index() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let job = std::fs::read_to_string(root.join("deploy/sweep/job.yaml")).unwrap();
    let field = |key: &str| -> String {
        job.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("job.yaml has no {key}"))
            .trim()
            .to_string()
    };
    assert_eq!(field("completionMode:"), "Indexed");
    let n = field("completions:");
    assert_eq!(field("parallelism:"), n);
    assert!(
        job.contains(&format!("{{name: SHARDS, value: \"{n}\"}}")),
        "SHARDS != {n}"
    );
    assert!(job.contains("--shard \"${JOB_COMPLETION_INDEX}/${SHARDS}\""));
    // The sweep it names exists and loads.
    let sweep_file = job
        .lines()
        .find_map(|l| l.trim().strip_prefix("- {name: SWEEP_FILE, value: "))
        .and_then(|v| v.strip_suffix('}'))
        .unwrap();
    let plan = experiments::sweep_config::SweepPlan::load(&root.join(sweep_file)).unwrap();
    assert!(
        plan.runs.len() >= n.parse::<usize>().unwrap(),
        "fewer runs than shards"
    );
}
