//! Smoke test of tabular Q-learning (STYLE.md lesson 14): the real training loop on a tiny
//! deterministic env, then save, reload and compare, plus determinism and a corrupted file.
//!
//! The toy env, `match-load-v0`: a load level `target` in `0..=6` and a replica count in
//! `0..=6`, both drawn at reset. Three actions (an [`ActionMap`] with `max_step = 1`: remove a
//! pod, hold, add a pod). Reward +1 and `terminated` when the replica count equals the load
//! after a step, 0 otherwise; [`TimeLimit`] truncates after 20 steps. Observation (length 4, in
//! `[0, 1]`): `[target / 6, 0.5, target / 6, replicas / 6]`, the `ObsEncoder` slots of CPU,
//! memory, request rate and replicas.

use agents::autoscaler::Policy;
use agents::tabular_q::{QLearning, QLearningConfig, QLearningError};
use envs::{check_env, ActionMap, BoxSpace, Discrete, Env, Step, TimeLimit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const LEVELS: u32 = 6;
const MAX_STEPS: usize = 20;

struct MatchLoad {
    rng: ChaCha8Rng,
    target: u32,
    replicas: u32,
    done: bool,
    map: ActionMap,
    obs_space: BoxSpace,
    action_space: Discrete,
}

impl MatchLoad {
    fn new() -> Self {
        let map = ActionMap { max_step: 1 };
        Self {
            rng: ChaCha8Rng::seed_from_u64(0),
            target: 0,
            replicas: 0,
            done: true,
            map,
            obs_space: BoxSpace::new(vec![0.0; 4], vec![1.0; 4]),
            action_space: Discrete::new(map.n()),
        }
    }

    /// Starts an episode from a chosen state (for evaluating the greedy policy everywhere).
    fn start_at(&mut self, target: u32, replicas: u32) -> Vec<f32> {
        self.target = target;
        self.replicas = replicas;
        self.done = false;
        self.obs()
    }

    fn obs(&self) -> Vec<f32> {
        let l = LEVELS as f32;
        vec![
            self.target as f32 / l,
            0.5,
            self.target as f32 / l,
            self.replicas as f32 / l,
        ]
    }
}

impl Env for MatchLoad {
    type Obs = Vec<f32>;
    type Action = usize;
    type Info = ();
    type ObsSpace = BoxSpace;
    type ActionSpace = Discrete;

    fn id(&self) -> &str {
        "match-load-v0"
    }

    fn reset(&mut self, seed: Option<u64>) -> (Vec<f32>, ()) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        let target = self.rng.random_range(0..=LEVELS);
        let replicas = self.rng.random_range(0..=LEVELS);
        (self.start_at(target, replicas), ())
    }

    fn step(&mut self, action: usize) -> Step<Vec<f32>, ()> {
        assert!(
            !self.done,
            "match-load-v0: step() after the episode ended; call reset() first"
        );
        self.replicas = self.map.target(action, self.replicas).min(LEVELS);
        let goal = self.replicas == self.target;
        self.done = goal;
        Step {
            obs: self.obs(),
            reward: if goal { 1.0 } else { 0.0 },
            terminated: goal,
            truncated: false,
            info: (),
        }
    }

    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }

    fn action_space(&self) -> &Discrete {
        &self.action_space
    }
}

fn env() -> TimeLimit<MatchLoad> {
    TimeLimit::new(MatchLoad::new(), MAX_STEPS)
}

/// 400 short episodes, about 1,500 env steps in all. One bin per level for the load (feature 0)
/// and the replicas (feature 3), one bin for the unused features: 49 states x 3 actions.
fn config() -> QLearningConfig {
    QLearningConfig {
        learning_rate: 0.5,
        gamma: 0.9,
        epsilon_start: 1.0,
        epsilon_end: 0.05,
        epsilon_decay: 0.985,
        episodes: 400,
        cpu_bins: LEVELS as usize + 1,
        memory_bins: 1,
        rate_bins: 1,
        replica_bins: LEVELS as usize + 1,
        extra_bins: Vec::new(),
    }
}

fn trained(seed: u64) -> (QLearning, Vec<f64>, usize) {
    let mut env = env();
    let mut agent = QLearning::new(config(), env.action_space().n).unwrap();
    let mut logged = Vec::new();
    let report = agent
        .train(&mut env, seed, |log| logged.push(log.return_))
        .unwrap();
    assert_eq!(
        report.returns, logged,
        "the callback sees every episode in order"
    );
    assert_eq!(report.returns.len(), 400);
    assert_eq!(report.env_id, "match-load-v0");
    let total_steps = report.total_steps();
    (agent, report.returns, total_steps)
}

/// Greedy actions on every start state, and the steps the greedy policy needs to reach the
/// goal from each (`None` = not within `MAX_STEPS`).
fn greedy_rollouts(policy: &mut dyn Policy) -> (Vec<usize>, Vec<Option<usize>>) {
    let mut env = MatchLoad::new();
    let (mut actions, mut steps) = (Vec::new(), Vec::new());
    for target in 0..=LEVELS {
        for start in 0..=LEVELS {
            let mut obs = env.start_at(target, start);
            actions.push(policy.act(&obs));
            let mut reached = None;
            for t in 1..=MAX_STEPS {
                let step = env.step(policy.act(&obs));
                obs = step.obs;
                if step.terminated {
                    reached = Some(t);
                    break;
                }
            }
            steps.push(reached);
        }
    }
    (actions, steps)
}

fn temp_dir() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "nimbusguard-tabular-q-smoke-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn toy_env_passes_check_env() {
    check_env(&mut env(), 50).unwrap();
}

#[test]
fn learns_saves_reloads_and_is_deterministic() {
    let (mut agent, returns, total_steps) = trained(42);
    assert!(total_steps < 3_000, "a smoke test: {total_steps} steps");

    // The greedy policy reaches the goal from every one of the 49 start states; from the 42
    // states where replicas and load differ (those the env passes through) by the shortest path,
    // |target - start| steps. A matched start is only seen at reset (reaching it ends the
    // episode), so there it may take a detour, but it still reaches the goal.
    let (actions, steps) = greedy_rollouts(&mut agent);
    let mut i = 0;
    for target in 0..=LEVELS {
        for start in 0..=LEVELS {
            let reached = steps[i];
            let at = format!("greedy policy from target {target}, start {start}: {reached:?}");
            if start == target {
                assert!(reached.is_some(), "{at}");
            } else {
                assert_eq!(reached, Some(target.abs_diff(start) as usize), "{at}");
            }
            i += 1;
        }
    }
    // The share of episodes that reach the goal (return 1) grows as epsilon decays.
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let (early, late) = (mean(&returns[..50]), mean(&returns[350..]));
    assert!(late > early && late > 0.9, "success rate {early} -> {late}");

    // Save, reload: identical greedy actions on every state, identical table.
    let dir = temp_dir();
    let path = dir.join("q.json");
    agent.save(&path).unwrap();
    let mut reloaded = QLearning::load(&path).unwrap();
    assert_eq!(reloaded.config(), agent.config());
    assert_eq!(reloaded.table(), agent.table());
    let (reloaded_actions, reloaded_steps) = greedy_rollouts(&mut reloaded);
    assert_eq!(reloaded_actions, actions);
    assert_eq!(reloaded_steps, steps);
    for s in 0..agent.n_states() {
        assert_eq!(reloaded.q_values(s), agent.q_values(s));
    }

    // A corrupted file is an error, never a panic: truncated JSON, then bytes that are not UTF-8.
    let text = std::fs::read(&path).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, &text[..text.len() / 2]).unwrap();
    assert!(matches!(
        QLearning::load(&bad),
        Err(QLearningError::Format { .. })
    ));
    std::fs::write(&bad, [0xff, 0xfe, 0x00, 0x7b]).unwrap();
    assert!(matches!(
        QLearning::load(&bad),
        Err(QLearningError::Format { .. })
    ));
    let err = QLearning::load(dir.join("missing.json")).unwrap_err();
    assert!(matches!(err, QLearningError::Io { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Same seed: identical returns and table; another seed: a different run.
    let (again, returns_again, _) = trained(42);
    assert_eq!(returns_again, returns);
    assert_eq!(again.table(), agent.table());
    let (_, returns_other, _) = trained(43);
    assert_ne!(returns_other, returns);
}
