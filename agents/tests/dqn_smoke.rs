//! DQN smoke tests: the real training loop on tiny MDPs with known answers, the TD target's
//! treatment of terminated vs truncated transitions, reproducibility, and save/load.

use agents::dqn::{td_targets, Dqn, DqnConfig, DqnEvent};
use agents::Policy;
use envs::spaces::BoxSpace;
use envs::{Discrete, Env, Step};

/// A chain of `n` states; action 1 moves right, action 0 moves left (clamped at 0). Reaching the
/// last state gives +1 and terminates; every other step gives -0.01. An episode is truncated
/// after `limit` steps. Observation: one-hot state. Optimal policy: always right (action 1).
struct Chain {
    n: usize,
    limit: usize,
    pos: usize,
    t: usize,
    obs_space: BoxSpace,
    act_space: Discrete,
}

impl Chain {
    fn new(n: usize, limit: usize) -> Self {
        Self {
            n,
            limit,
            pos: 0,
            t: 0,
            obs_space: BoxSpace::new(vec![0.0; n], vec![1.0; n]),
            act_space: Discrete::new(2),
        }
    }
    fn obs(&self) -> Vec<f32> {
        let mut o = vec![0.0; self.n];
        o[self.pos] = 1.0;
        o
    }
}

impl Env for Chain {
    type Obs = Vec<f32>;
    type Action = usize;
    type Info = ();
    type ObsSpace = BoxSpace;
    type ActionSpace = Discrete;
    fn id(&self) -> &str {
        "chain-v0"
    }
    fn reset(&mut self, _seed: Option<u64>) -> (Vec<f32>, ()) {
        self.pos = 0;
        self.t = 0;
        (self.obs(), ())
    }
    fn step(&mut self, a: usize) -> Step<Vec<f32>, ()> {
        self.t += 1;
        self.pos = if a == 1 {
            self.pos + 1
        } else {
            self.pos.saturating_sub(1)
        };
        let terminated = self.pos == self.n - 1;
        Step {
            obs: self.obs(),
            reward: if terminated { 1.0 } else { -0.01 },
            terminated,
            truncated: !terminated && self.t >= self.limit,
            info: (),
        }
    }
    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }
    fn action_space(&self) -> &Discrete {
        &self.act_space
    }
}

/// One state, one action, reward 1, and every episode ends after one step: `terminated` or
/// `truncated` as configured. With discount `gamma`, Q converges to 1 when the step terminates
/// (no bootstrapping) and to `1 / (1 - gamma)` when it is truncated (bootstrapping from the same
/// state).
struct OneStep {
    terminate: bool,
    obs_space: BoxSpace,
    act_space: Discrete,
}

impl Env for OneStep {
    type Obs = Vec<f32>;
    type Action = usize;
    type Info = ();
    type ObsSpace = BoxSpace;
    type ActionSpace = Discrete;
    fn id(&self) -> &str {
        "one-step-v0"
    }
    fn reset(&mut self, _seed: Option<u64>) -> (Vec<f32>, ()) {
        (vec![1.0], ())
    }
    fn step(&mut self, _a: usize) -> Step<Vec<f32>, ()> {
        Step {
            obs: vec![1.0],
            reward: 1.0,
            terminated: self.terminate,
            truncated: !self.terminate,
            info: (),
        }
    }
    fn observation_space(&self) -> &BoxSpace {
        &self.obs_space
    }
    fn action_space(&self) -> &Discrete {
        &self.act_space
    }
}

fn chain_config() -> DqnConfig {
    DqnConfig {
        hidden_sizes: vec![32],
        learning_rate: 5e-3,
        gamma: 0.9,
        buffer_size: 1_000,
        batch_size: 32,
        learning_starts: 100,
        train_frequency: 1,
        target_update_interval: 50,
        exploration_fraction: 0.5,
        total_steps: 800,
        ..DqnConfig::default()
    }
}

fn train_chain(seed: u64) -> (Dqn, Vec<f64>, Vec<f64>) {
    let mut env = Chain::new(5, 20);
    let mut agent = Dqn::new(chain_config(), 5, 2, seed).unwrap();
    let (mut returns, mut losses) = (Vec::new(), Vec::new());
    agent
        .train(&mut env, seed, |e| match e {
            DqnEvent::Update { loss, .. } => losses.push(loss),
            DqnEvent::Episode { return_, .. } => returns.push(return_),
        })
        .unwrap();
    (agent, returns, losses)
}

#[test]
fn learns_the_optimal_policy_of_a_chain_and_reloads_it() {
    let (mut agent, returns, losses) = train_chain(7);
    // The optimal policy moves right in every non-terminal state.
    for s in 0..4 {
        let mut o = vec![0.0; 5];
        o[s] = 1.0;
        assert_eq!(
            agent.greedy(&o),
            1,
            "state {s}: q = {:?}",
            agent.q_values(&o)
        );
    }
    // The optimal return is 1 - 3 x 0.01 = 0.97 (three -0.01 steps, then +1). The last
    // episodes (epsilon 0.05) come close; the first (epsilon near 1) do not.
    let first = returns[..3].iter().sum::<f64>() / 3.0;
    let last = returns[returns.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(
        last > first,
        "returns did not rise: first {first}, last {last}"
    );
    assert!(last > 0.8, "last returns {last}");
    assert!(
        losses.len() == 700,
        "one update per step after learning_starts: {}",
        losses.len()
    );
    assert!(losses.iter().all(|l| l.is_finite()));

    let dir = tempdir("chain");
    agent.save(&dir).unwrap();
    let mut loaded = Dqn::load(&dir).unwrap();
    assert_eq!(loaded.weights(), agent.weights());
    for s in 0..5 {
        let mut o = vec![0.0; 5];
        o[s] = 1.0;
        assert_eq!(loaded.q_values(&o), agent.q_values(&o));
        assert_eq!(loaded.act(&o), agent.act(&o));
    }
}

#[test]
fn same_seed_same_weights_different_seed_different_weights() {
    let a = train_chain(3).0.weights();
    let b = train_chain(3).0.weights();
    let c = train_chain(4).0.weights();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn truncated_steps_bootstrap_and_terminated_steps_do_not() {
    // gamma 0.5: terminated -> Q = 1; truncated -> Q = 1 / (1 - 0.5) = 2.
    let cfg = DqnConfig {
        hidden_sizes: vec![8],
        learning_rate: 1e-2,
        gamma: 0.5,
        buffer_size: 100,
        batch_size: 16,
        learning_starts: 16,
        train_frequency: 1,
        target_update_interval: 10,
        total_steps: 600,
        ..DqnConfig::default()
    };
    let q_after = |terminate: bool| {
        let mut env = OneStep {
            terminate,
            obs_space: BoxSpace::new(vec![0.0], vec![1.0]),
            act_space: Discrete::new(1),
        };
        let mut agent = Dqn::new(cfg.clone(), 1, 1, 11).unwrap();
        agent.train(&mut env, 11, |_| {}).unwrap();
        agent.q_values(&[1.0])[0]
    };
    let terminated = q_after(true);
    let truncated = q_after(false);
    assert!(
        (terminated - 1.0).abs() < 0.1,
        "terminated: Q = {terminated}, expected 1"
    );
    assert!(
        (truncated - 2.0).abs() < 0.25,
        "truncated: Q = {truncated}, expected 2"
    );
}

#[test]
fn td_targets_by_hand() {
    // Two transitions with reward 1 and the same next-state values; the first terminated.
    // Online picks action 1 (0.5 > 0.2); target values it 3.0 (double) or max 4.0 (plain).
    let online = [0.2, 0.5, 0.2, 0.5];
    let target = [4.0, 3.0, 4.0, 3.0];
    let double = td_targets(&[1.0, 1.0], &[true, false], &online, &target, 2, 0.9, true);
    // Targets are computed in f64, then stored as f32.
    assert_eq!(double, vec![1.0, (1.0 + 0.9f64 * 3.0) as f32]);
    let plain = td_targets(&[1.0, 1.0], &[true, false], &online, &target, 2, 0.9, false);
    assert_eq!(plain, vec![1.0, (1.0 + 0.9f64 * 4.0) as f32]);
}

#[test]
fn epsilon_schedules_by_hand() {
    // Linear (CleanRL): 1.0 -> 0.05 over 0.5 x 1000 = 500 steps.
    let lin = DqnConfig {
        total_steps: 1000,
        learning_starts: 10,
        ..DqnConfig::default()
    };
    assert_eq!(lin.epsilon_at(0), 1.0);
    assert!((lin.epsilon_at(250) - 0.525).abs() < 1e-12);
    assert_eq!(lin.epsilon_at(900), 0.05);
    // Multiplicative (the seed's Keras schedule): x0.995 per gradient update; updates happen
    // at steps 10, 12, 14, ... (learning_starts 10, train_frequency 2).
    let exp = DqnConfig {
        epsilon_decay: Some(0.995),
        epsilon_end: 0.01,
        train_frequency: 2,
        ..lin
    };
    assert_eq!(exp.epsilon_at(10), 1.0); // no update before step 10
    assert_eq!(exp.epsilon_at(11), 0.995); // the update at step 10
    assert_eq!(exp.epsilon_at(13), 0.995 * 0.995); // steps 10 and 12
                                                   // 0.995^k < 0.01 from k = 919 (ln 0.01 / ln 0.995 = 918.7): floored after 919 updates.
    assert!(exp.epsilon_at(10 + 2 * 918) > 0.01);
    assert_eq!(exp.epsilon_at(10 + 2 * 919), 0.01);
    assert!(DqnConfig {
        epsilon_decay: Some(1.0),
        ..DqnConfig::default()
    }
    .validate()
    .is_err());
}

#[test]
fn bad_models_and_configs_give_clear_errors() {
    let dir = tempdir("bad");
    let agent = Dqn::new(
        DqnConfig {
            hidden_sizes: vec![16],
            ..DqnConfig::default()
        },
        4,
        3,
        1,
    )
    .unwrap();
    agent.save(&dir).unwrap();
    // Wrong shape: the config now says 32 hidden units but the weights have 16.
    let meta = dir.join("dqn.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("16", "32")).unwrap();
    let err = Dqn::load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("model.bpk") && err.contains("do not match"),
        "{err}"
    );
    // Wrong version.
    std::fs::write(&meta, text.replace("\"version\": 1", "\"version\": 99")).unwrap();
    let err = Dqn::load(&dir).unwrap_err().to_string();
    assert!(err.contains("version 99"), "{err}");
    // Corrupt weights.
    std::fs::write(&meta, &text).unwrap();
    std::fs::write(dir.join("model.bpk"), b"not a burnpack").unwrap();
    assert!(Dqn::load(&dir)
        .unwrap_err()
        .to_string()
        .contains("model.bpk"));
    // Missing folder.
    assert!(Dqn::load(dir.join("nope"))
        .unwrap_err()
        .to_string()
        .contains("nope"));
    // Bad config fields are named.
    let err = Dqn::new(
        DqnConfig {
            gamma: 1.5,
            ..DqnConfig::default()
        },
        4,
        3,
        1,
    )
    .unwrap_err();
    assert!(err.to_string().contains("dqn.gamma"), "{err}");
    // Env of the wrong shape.
    let mut env = Chain::new(5, 20);
    let mut wrong = Dqn::new(
        DqnConfig {
            total_steps: 10,
            learning_starts: 5,
            batch_size: 4,
            ..DqnConfig::default()
        },
        4,
        2,
        1,
    )
    .unwrap();
    let err = wrong.train(&mut env, 1, |_| {}).unwrap_err();
    assert!(err.to_string().contains("5 features"), "{err}");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ng-dqn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
