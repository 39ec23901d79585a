//! The clairvoyant oracle is a bound: on several traces and seeds no agent beats it on cost at
//! equal or better SLO, `oracle-instant` never costs more than `oracle-realistic`, and the
//! summary carries every agent's regret against it. (The hand-computed constant-load case is a
//! unit test of `agents::oracle`.)

use std::path::PathBuf;

use experiments::config::ExperimentConfig;
use experiments::records::EpisodeRecord;

/// Twelve hours of `trace` from `start_s` (six to train, six to evaluate), peak 300 req/s,
/// three seeds, the rule baselines at several settings, two short-trained learned agents, the
/// proactive rule and both oracles.
fn config(name: &str, trace: &str, start_s: f64) -> String {
    format!(
        r#"
experiment = "{name}"
[workload]
trace = "{trace}"
start_s = {start_s}
duration_s = 43200.0
train_fraction = 0.5
peak_rps = 300.0
arrivals = "poisson"
[deployment]
initial_replicas = 4
[env]
cooldown_s = 60.0
[evaluation]
seeds = 3
[output]
timeseries_seeds = 0
plots = false
[[agents]]
name = "hpa"
kind = "hpa"
[[agents]]
name = "hpa-50"
kind = "hpa"
hpa = {{ target_cpu_utilization_percent = 50 }}
[[agents]]
name = "hpa-90"
kind = "hpa"
hpa = {{ target_cpu_utilization_percent = 90 }}
[[agents]]
name = "static-6"
kind = "static"
replicas = 6
[[agents]]
name = "static-12"
kind = "static"
replicas = 12
[[agents]]
name = "threshold"
kind = "threshold"
[[agents]]
name = "q-learning"
kind = "q-learning"
q_learning = {{ episodes = 3 }}
[[agents]]
name = "nimbusguard-v0"
kind = "nimbusguard-v0"
nimbusguard_v0 = {{ total_steps = 1500 }}
[[agents]]
name = "proactive"
kind = "proactive"
[[agents]]
name = "oracle-instant"
kind = "oracle"
oracle = {{ variant = "instant" }}
[[agents]]
name = "oracle-realistic"
kind = "oracle"
"#
    )
}

fn run(name: &str, trace: &str, start_s: f64) -> Vec<EpisodeRecord> {
    let dir = std::env::temp_dir().join(format!("nimbusguard-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config(name, trace, start_s)).unwrap();
    let cfg = ExperimentConfig::load(&path, &[]).unwrap();
    experiments::runner::run(&cfg, &path, 0).unwrap().episodes
}

fn get<'a>(recs: &'a [EpisodeRecord], agent: &str, seed: u64) -> &'a EpisodeRecord {
    recs.iter()
        .find(|r| r.agent == agent && r.seed == seed)
        .unwrap_or_else(|| panic!("no record for {agent} seed {seed}"))
}

#[test]
fn no_agent_beats_the_oracle_and_instant_costs_no_more_than_realistic() {
    let traces = [
        (
            "bounds-nasa",
            "datasets/nasa_http_jul1995_1min.csv",
            216_000.0,
        ),
        (
            "bounds-alibaba",
            "datasets/alibaba_gentd26_lora_requests_1min.csv",
            777_600.0,
        ),
        (
            "bounds-elb",
            "datasets/nab_aws_elb_request_count_5min.csv",
            0.0,
        ),
    ];
    for (name, trace, start) in traces {
        let recs = run(name, trace, start);
        let seeds: Vec<u64> = (1000..1003).collect();
        for &seed in &seeds {
            let instant = get(&recs, "oracle-instant", seed);
            let realistic = get(&recs, "oracle-realistic", seed);
            assert!(
                instant.metrics.pod_hours <= realistic.metrics.pod_hours + 1e-9,
                "{name} seed {seed}: oracle-instant {} pod-hours > oracle-realistic {}",
                instant.metrics.pod_hours,
                realistic.metrics.pod_hours
            );
            for oracle in [instant, realistic] {
                for r in recs.iter().filter(|r| r.seed == seed && r.kind != "oracle") {
                    let beaten = r.metrics.pod_hours < oracle.metrics.pod_hours
                        && r.metrics.slo_violation_pct <= oracle.metrics.slo_violation_pct;
                    assert!(
                        !beaten,
                        "{name} seed {seed}: {} ({} pod-hours, {}% SLO violation) beats {} \
                         ({} pod-hours, {}%)",
                        r.agent,
                        r.metrics.pod_hours,
                        r.metrics.slo_violation_pct,
                        oracle.agent,
                        oracle.metrics.pod_hours,
                        oracle.metrics.slo_violation_pct
                    );
                }
            }
            // The oracles keep every tick within the SLO (the realistic one may miss the first
            // start-up delay of the episode, or a pod slower than its lead time): nothing is
            // dropped.
            assert_eq!(instant.metrics.slo_violation_pct, 0.0, "{name} seed {seed}");
            assert!(
                realistic.metrics.slo_violation_pct < 0.05,
                "{name} seed {seed}: oracle-realistic violates the SLO {}% of the time",
                realistic.metrics.slo_violation_pct
            );
            assert_eq!(realistic.dropped_total, 0.0, "{name} seed {seed}");
        }
        // The regret figures of the summary.
        let mut s = experiments::report::summarize(name, "scaling-v0", trace, &recs, "hpa");
        experiments::bounds::add_bounds(&mut s, &recs, "oracle-realistic", Some("hpa"));
        let oracle = &s.agents["oracle-realistic"].regret;
        assert_eq!(oracle.cost_regret_pct.unwrap().mean, 0.0);
        let hpa = &s.agents["hpa"].regret;
        assert!(
            hpa.cost_regret_pct.unwrap().mean > 0.0,
            "{name}: hpa costs more"
        );
        assert!(hpa.cost_gap_closed_pct.unwrap().abs() < 1e-9);
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["agents"]["hpa"]["cost_regret_pct"]["mean"].is_number());
        assert!(json["agents"]["hpa"]["slo_regret_pct"]["mean"].is_number());
        assert_eq!(json["bounds"]["oracle"], "oracle-realistic");
    }
}
