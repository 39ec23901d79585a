//! The decision traits every controller implements: [`Autoscaler`] (cluster state in, desired
//! replicas out) and [`Policy`] (encoded observation in, discrete action out), plus
//! [`PolicyAutoscaler`], which turns a trained [`Policy`] into an [`Autoscaler`] with the same
//! [`ObsEncoder`] and [`ActionMap`] the training environment used, so training and serving
//! cannot drift apart.
//!
//! The decision core is synchronous and does no I/O: the same object runs in the simulator and,
//! later, behind the live adapter. Replica bounds and cooldown are not the autoscaler's business;
//! the caller applies them with an [`envs::ScaleGuard`].

use sim::{ClusterState, ScaleDecision};

use envs::{ActionMap, ObsEncoder};

/// A controller that decides the desired replica count of one Deployment.
///
/// Implementations must be deterministic given their construction (any randomness comes from a
/// seeded generator they own) and must not perform I/O: [`Autoscaler::decide`] is called once
/// per control interval, in the simulator as on a live cluster.
pub trait Autoscaler: Send {
    /// Short, stable name used in logs, result files and plots (e.g. `hpa`, `threshold`).
    fn name(&self) -> &str;

    /// The desired `spec.replicas` for the observed `state`, with a reason.
    ///
    /// The returned count is a wish: the caller clamps it to the replica bounds and applies the
    /// cooldown ([`envs::ScaleGuard`]).
    fn decide(&mut self, state: &ClusterState) -> ScaleDecision;

    /// Forgets everything learned from past observations of the current run (a new episode or
    /// evaluation run). Trained parameters are kept. The default does nothing.
    fn reset(&mut self) {}
}

impl<A: Autoscaler + ?Sized> Autoscaler for Box<A> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        (**self).decide(state)
    }
    fn reset(&mut self) {
        (**self).reset();
    }
}

/// The Kubernetes HPA as an [`Autoscaler`] named `hpa` (delegates to
/// [`Hpa::decide`](crate::hpa::Hpa::decide) and [`Hpa::reset`](crate::hpa::Hpa::reset)).
impl Autoscaler for crate::hpa::Hpa {
    fn name(&self) -> &str {
        "hpa"
    }
    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        // Path syntax resolves to the inherent method, not this trait method.
        crate::hpa::Hpa::decide(self, state)
    }
    fn reset(&mut self) {
        crate::hpa::Hpa::reset(self);
    }
}

/// A decision rule over encoded observations: the greedy action of a trained agent.
///
/// `obs` is an [`ObsEncoder`] output (every feature in `[0, 1]`, length
/// [`ObsEncoder::dim`]); the returned action indexes an [`ActionMap`] (`0..ActionMap::n()`).
pub trait Policy: Send {
    /// The action to take for `obs` (greedy: no exploration).
    fn act(&mut self, obs: &[f32]) -> usize;
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn act(&mut self, obs: &[f32]) -> usize {
        (**self).act(obs)
    }
}

/// Serves a [`Policy`] as an [`Autoscaler`]: encodes the state with `encoder`, asks the policy
/// for an action, and maps it to a replica target with `actions` relative to
/// `state.desired_replicas`.
///
/// `encoder` and `actions` must be the ones the training environment used. The trend feature
/// (if enabled) needs the request rate of the previous decision; the first decision after
/// construction or [`Autoscaler::reset`] uses the current rate as the previous one (trend 0,
/// encoded as 0.5). Each [`Autoscaler::decide`] call is allocation-free.
#[derive(Debug, Clone)]
pub struct PolicyAutoscaler<P: Policy> {
    policy: P,
    encoder: ObsEncoder,
    actions: ActionMap,
    name: String,
    /// Request rate seen at the previous decision, requests per second (NaN = none yet).
    prev_rate: f64,
    /// Observation buffer, reused across calls (capacity `encoder.dim()`).
    obs: Vec<f32>,
}

impl<P: Policy> PolicyAutoscaler<P> {
    /// Wraps `policy`, reporting itself as `name` (e.g. `q-learning`).
    pub fn new(
        policy: P,
        encoder: ObsEncoder,
        actions: ActionMap,
        name: impl Into<String>,
    ) -> Self {
        let obs = Vec::with_capacity(encoder.dim());
        Self {
            policy,
            encoder,
            actions,
            name: name.into(),
            prev_rate: f64::NAN,
            obs,
        }
    }

    /// The wrapped policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The wrapped policy, mutably.
    pub fn policy_mut(&mut self) -> &mut P {
        &mut self.policy
    }

    /// The observation encoder.
    pub fn encoder(&self) -> &ObsEncoder {
        &self.encoder
    }

    /// The action map.
    pub fn actions(&self) -> &ActionMap {
        &self.actions
    }

    /// The observation the last decision was made on (empty before the first decision).
    pub fn last_obs(&self) -> &[f32] {
        &self.obs
    }

    /// Unwraps the policy.
    pub fn into_policy(self) -> P {
        self.policy
    }
}

impl<P: Policy> Autoscaler for PolicyAutoscaler<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        let prev = if self.prev_rate.is_nan() {
            state.request_rate_per_s
        } else {
            self.prev_rate
        };
        self.encoder.encode_into(state, prev, &mut self.obs);
        self.prev_rate = state.request_rate_per_s;
        let a = self.policy.act(&self.obs);
        let reason = match self.actions.delta(a) {
            d if d > 0 => "PolicyScaleUp",
            d if d < 0 => "PolicyScaleDown",
            _ => "PolicyNoChange",
        };
        ScaleDecision::new(self.actions.target(a, state.desired_replicas), reason)
    }

    fn reset(&mut self) {
        self.prev_rate = f64::NAN;
        self.obs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Always returns the same action and records the observations it saw.
    struct Fixed {
        action: usize,
        seen: Vec<Vec<f32>>,
    }

    impl Policy for Fixed {
        fn act(&mut self, obs: &[f32]) -> usize {
            self.seen.push(obs.to_vec());
            self.action
        }
    }

    fn encoder(trend: bool) -> ObsEncoder {
        ObsEncoder {
            rate_scale_rps: 100.0,
            max_replicas: 50,
            trend_feature: trend,
        }
    }

    #[test]
    fn maps_actions_relative_to_desired_replicas() {
        let actions = ActionMap { max_step: 10 };
        let state = ClusterState {
            desired_replicas: 5,
            ..Default::default()
        };
        // Action 13 = +3 pods: 5 -> 8.
        let mut up = PolicyAutoscaler::new(
            Fixed {
                action: 13,
                seen: vec![],
            },
            encoder(false),
            actions,
            "fixed",
        );
        assert_eq!(up.name(), "fixed");
        assert_eq!(up.decide(&state), ScaleDecision::new(8, "PolicyScaleUp"));
        // Action 0 = -10 pods: 5 -> 0 (not clamped here; the ScaleGuard clamps).
        let mut down = PolicyAutoscaler::new(
            Fixed {
                action: 0,
                seen: vec![],
            },
            encoder(false),
            actions,
            "d",
        );
        assert_eq!(
            down.decide(&state),
            ScaleDecision::new(0, "PolicyScaleDown")
        );
        let mut hold = PolicyAutoscaler::new(
            Fixed {
                action: 10,
                seen: vec![],
            },
            encoder(false),
            actions,
            "h",
        );
        assert_eq!(hold.decide(&state), ScaleDecision::new(5, "PolicyNoChange"));
    }

    #[test]
    fn encodes_with_the_shared_encoder_and_tracks_the_trend() {
        let enc = encoder(true);
        let mut a = PolicyAutoscaler::new(
            Fixed {
                action: 10,
                seen: vec![],
            },
            enc.clone(),
            ActionMap::default(),
            "p",
        );
        let s1 = ClusterState {
            desired_replicas: 10,
            request_rate_per_s: 50.0,
            ..Default::default()
        };
        let s2 = ClusterState {
            desired_replicas: 10,
            request_rate_per_s: 70.0,
            ..Default::default()
        };
        a.decide(&s1);
        a.decide(&s2);
        // First call: previous rate = current rate -> trend (0/100 + 1)/2 = 0.5.
        // Second call: trend (20/100 + 1)/2 = 0.6. Rate 50/100 -> 0.5/2 = 0.25; 70 -> 0.35.
        // Replicas 10/50 = 0.2. No pods -> utilizations 0.
        let mut expected = Vec::new();
        enc.encode_into(&s1, 50.0, &mut expected);
        assert_eq!(a.policy().seen[0], expected);
        assert_eq!(a.policy().seen[0], vec![0.0, 0.0, 0.25, 0.2, 0.5]);
        assert_eq!(a.policy().seen[1], vec![0.0, 0.0, 0.35, 0.2, 0.6]);
        // After reset the trend starts from "no change" again.
        a.reset();
        a.decide(&s2);
        assert_eq!(a.policy().seen[2], vec![0.0, 0.0, 0.35, 0.2, 0.5]);
    }

    #[test]
    fn hpa_delegates_to_its_inherent_methods() {
        use crate::hpa::{Hpa, HpaConfig};
        use sim::{PodPhase, PodView, SimTime};
        let pod = |id, usage| PodView {
            id,
            phase: PodPhase::Running,
            ready: true,
            ready_last_transition: Some(SimTime::from_secs(10)),
            start_time: Some(SimTime::from_secs(5)),
            deleting: false,
            cpu_request_milli: 500,
            memory_request_bytes: 1 << 28,
            cpu_usage_milli: Some(usage),
            memory_usage_bytes: Some(1 << 27),
            metric_timestamp: Some(SimTime::from_secs(990)),
            metric_window_s: 30,
        };
        let state = ClusterState {
            time: SimTime::from_secs(1000),
            desired_replicas: 2,
            status_replicas: 2,
            ready_replicas: 2,
            pods: vec![pod(0, 700), pod(1, 700)],
            ..Default::default()
        };
        let mut inherent = Hpa::new(HpaConfig::default()).unwrap();
        let mut dynamic: Box<dyn Autoscaler> = Box::new(Hpa::new(HpaConfig::default()).unwrap());
        assert_eq!(dynamic.name(), "hpa");
        let expected = inherent.decide(&state);
        assert_eq!(dynamic.decide(&state), expected);
        // 140 % of request against a 70 % target: the HPA scales up.
        assert!(expected.desired_replicas > 2, "{expected:?}");
        dynamic.reset();
        inherent.reset();
        assert_eq!(dynamic.decide(&state), inherent.decide(&state));
    }

    #[test]
    fn boxed_autoscalers_are_autoscalers() {
        let mut boxed: Box<dyn Autoscaler> = Box::new(PolicyAutoscaler::new(
            Fixed {
                action: 11,
                seen: vec![],
            },
            encoder(false),
            ActionMap::default(),
            "boxed",
        ));
        let state = ClusterState {
            desired_replicas: 1,
            ..Default::default()
        };
        assert_eq!(boxed.name(), "boxed");
        assert_eq!(boxed.decide(&state).desired_replicas, 2);
        boxed.reset();
    }
}
