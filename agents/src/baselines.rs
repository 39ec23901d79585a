//! Non-learning baselines: [`StaticReplicas`] (a fixed count, what an unmanaged Deployment does)
//! and [`ThresholdRule`] (the classic rule-based autoscaler: add pods above a CPU threshold,
//! remove pods below another).
//!
//! Both are memoryless [`Autoscaler`]s; replica bounds and cooldown are applied by the caller's
//! [`envs::ScaleGuard`].

use sim::{ClusterState, ScaleDecision};

use crate::autoscaler::Autoscaler;

/// Always asks for the same replica count (`kind = "static"`).
///
/// The count is not clamped here: the caller's [`envs::ScaleGuard`] keeps it inside the
/// Deployment's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticReplicas {
    /// Replica count to hold, pods.
    pub replicas: u32,
}

impl StaticReplicas {
    /// A baseline that always asks for `replicas` pods.
    pub fn new(replicas: u32) -> Self {
        Self { replicas }
    }
}

impl Autoscaler for StaticReplicas {
    fn name(&self) -> &str {
        "static"
    }
    fn decide(&mut self, _state: &ClusterState) -> ScaleDecision {
        ScaleDecision::new(self.replicas, "StaticReplicas")
    }
}

/// Configuration of [`ThresholdRule`] (`kind = "threshold"`). Utilizations are fractions of
/// the CPU request, as the HPA defines them ([`ClusterState::cpu_utilization`]: 1.0 = 100 %).
///
/// The defaults (up above 0.8 by 2 pods, down below 0.3 by 1 pod) follow the usual
/// step-scaling practice of adding capacity faster than removing it: an overloaded service
/// violates its SLO at once, an over-provisioned one only costs money.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdConfig {
    /// Scale up when CPU utilization is strictly above this, fraction of the CPU request,
    /// in `(0, 5]` and greater than `scale_down_utilization`. Default 0.8.
    pub scale_up_utilization: f64,
    /// Scale down when CPU utilization is strictly below this, fraction of the CPU request,
    /// in `(0, 5]`. Default 0.3.
    pub scale_down_utilization: f64,
    /// Pods added per scale-up decision, at least 1. Default 2.
    pub step_up: u32,
    /// Pods removed per scale-down decision, at least 1. Default 1.
    pub step_down: u32,
}

impl Default for ThresholdConfig {
    fn default() -> Self {
        Self {
            scale_up_utilization: 0.8,
            scale_down_utilization: 0.3,
            step_up: 2,
            step_down: 1,
        }
    }
}

/// A configuration value out of range; the run cannot start with this configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid threshold config: `{field}` {message}")]
pub struct ThresholdConfigError {
    /// Name of the offending field, as spelled in the config file.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ThresholdConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// A [`ThresholdConfigError`] naming the first bad field: a threshold outside `(0, 5]`
    /// (NaN included), `scale_up_utilization <= scale_down_utilization`, or a step of 0.
    pub fn validate(&self) -> Result<(), ThresholdConfigError> {
        let err = |field, message: String| Err(ThresholdConfigError { field, message });
        for (field, v) in [
            ("scale_up_utilization", self.scale_up_utilization),
            ("scale_down_utilization", self.scale_down_utilization),
        ] {
            if !(v > 0.0 && v <= 5.0) {
                return err(field, format!("must be in (0, 5], got {v}"));
            }
        }
        if self.scale_up_utilization <= self.scale_down_utilization {
            return err(
                "scale_up_utilization",
                format!(
                    "must be greater than scale_down_utilization ({}), got {}",
                    self.scale_down_utilization, self.scale_up_utilization
                ),
            );
        }
        if self.step_up == 0 {
            return err("step_up", "must be at least 1, got 0".into());
        }
        if self.step_down == 0 {
            return err("step_down", "must be at least 1, got 0".into());
        }
        Ok(())
    }
}

/// The classic rule-based autoscaler (`name = "threshold"`): with `u` the CPU utilization of
/// Ready pods ([`ClusterState::cpu_utilization`]) and `r` the current `desired_replicas`,
///
/// | condition | desired replicas | reason |
/// |---|---|---|
/// | no Ready pod has a CPU sample | `r` | `NoMetrics` |
/// | `u > scale_up_utilization` | `r + step_up` | `ThresholdScaleUp` |
/// | `u < scale_down_utilization` | `max(r - step_down, 1)` | `ThresholdScaleDown` |
/// | otherwise | `r` | `WithinThresholds` |
///
/// Without samples the rule holds rather than reading the missing utilization as 0 (which would
/// scale down every time pods restart or metrics lag). It never asks for fewer than 1 pod: at
/// zero it could not observe load again. Bounds and cooldown are applied by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRule {
    config: ThresholdConfig,
}

impl ThresholdRule {
    /// A rule with a validated configuration.
    ///
    /// # Errors
    /// The [`ThresholdConfigError`] of [`ThresholdConfig::validate`].
    pub fn new(config: ThresholdConfig) -> Result<Self, ThresholdConfigError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The configuration.
    pub fn config(&self) -> &ThresholdConfig {
        &self.config
    }
}

impl Autoscaler for ThresholdRule {
    fn name(&self) -> &str {
        "threshold"
    }

    fn decide(&mut self, state: &ClusterState) -> ScaleDecision {
        let r = state.desired_replicas;
        let has_sample = state
            .pods
            .iter()
            .any(|p| p.ready && !p.deleting && p.cpu_usage_milli.is_some());
        if !has_sample {
            return ScaleDecision::new(r, "NoMetrics");
        }
        let u = state.cpu_utilization();
        let c = &self.config;
        if u > c.scale_up_utilization {
            ScaleDecision::new(r.saturating_add(c.step_up), "ThresholdScaleUp")
        } else if u < c.scale_down_utilization {
            ScaleDecision::new(r.saturating_sub(c.step_down).max(1), "ThresholdScaleDown")
        } else {
            ScaleDecision::new(r, "WithinThresholds")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::{PodPhase, PodView};

    fn pod(id: u64, ready: bool, usage_milli: Option<u64>) -> PodView {
        PodView {
            id,
            phase: PodPhase::Running,
            ready,
            ready_last_transition: None,
            start_time: None,
            deleting: false,
            cpu_request_milli: 500,
            memory_request_bytes: 1 << 28,
            cpu_usage_milli: usage_milli,
            memory_usage_bytes: None,
            metric_timestamp: None,
            metric_window_s: 30,
        }
    }

    fn state(desired: u32, pods: Vec<PodView>) -> ClusterState {
        ClusterState {
            desired_replicas: desired,
            pods,
            ..Default::default()
        }
    }

    #[test]
    fn static_replicas_ignores_the_state() {
        let mut s = StaticReplicas::new(7);
        assert_eq!(s.name(), "static");
        let st = state(3, vec![pod(0, true, Some(500))]);
        assert_eq!(s.decide(&st), ScaleDecision::new(7, "StaticReplicas"));
    }

    #[test]
    fn threshold_rule_hand_computed() {
        let mut rule = ThresholdRule::new(ThresholdConfig::default()).unwrap();
        assert_eq!(rule.name(), "threshold");
        // (450 + 400) / (500 + 500) = 0.85 > 0.8 -> 2 + 2 = 4.
        let up = state(2, vec![pod(0, true, Some(450)), pod(1, true, Some(400))]);
        assert_eq!(rule.decide(&up), ScaleDecision::new(4, "ThresholdScaleUp"));
        // Exactly 0.8 is not above the threshold: (400 + 400) / 1000 = 0.8 -> hold.
        let edge = state(2, vec![pod(0, true, Some(400)), pod(1, true, Some(400))]);
        assert_eq!(
            rule.decide(&edge),
            ScaleDecision::new(2, "WithinThresholds")
        );
        // (100 + 150) / 1000 = 0.25 < 0.3 -> 2 - 1 = 1.
        let down = state(2, vec![pod(0, true, Some(100)), pod(1, true, Some(150))]);
        assert_eq!(
            rule.decide(&down),
            ScaleDecision::new(1, "ThresholdScaleDown")
        );
        // Never below 1: at 1 replica with 0.25 utilization it stays at 1.
        let floor = state(1, vec![pod(0, true, Some(125))]);
        assert_eq!(
            rule.decide(&floor),
            ScaleDecision::new(1, "ThresholdScaleDown")
        );
        // The unready pod (usage 500) is not counted: 100 / 500 = 0.2 < 0.3 -> 3 - 1 = 2.
        let unready = state(3, vec![pod(0, true, Some(100)), pod(1, false, Some(500))]);
        assert_eq!(
            rule.decide(&unready),
            ScaleDecision::new(2, "ThresholdScaleDown")
        );
        // No Ready pod with a sample: hold instead of reading utilization 0 as idle.
        let none = state(3, vec![pod(0, true, None), pod(1, false, Some(500))]);
        assert_eq!(rule.decide(&none), ScaleDecision::new(3, "NoMetrics"));
    }

    #[test]
    fn custom_steps() {
        let cfg = ThresholdConfig {
            scale_up_utilization: 1.2,
            scale_down_utilization: 0.5,
            step_up: 5,
            step_down: 3,
        };
        let mut rule = ThresholdRule::new(cfg).unwrap();
        // 650 / 500 = 1.3 > 1.2 -> 10 + 5 = 15.
        assert_eq!(
            rule.decide(&state(10, vec![pod(0, true, Some(650))]))
                .desired_replicas,
            15
        );
        // 200 / 500 = 0.4 < 0.5 -> 10 - 3 = 7.
        assert_eq!(
            rule.decide(&state(10, vec![pod(0, true, Some(200))]))
                .desired_replicas,
            7
        );
        // 2 - 3 saturates, then the floor of 1 applies.
        assert_eq!(
            rule.decide(&state(2, vec![pod(0, true, Some(200))]))
                .desired_replicas,
            1
        );
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |f: fn(&mut ThresholdConfig)| {
            let mut c = ThresholdConfig::default();
            f(&mut c);
            ThresholdRule::new(c).unwrap_err().field
        };
        assert_eq!(
            bad(|c| c.scale_up_utilization = 0.0),
            "scale_up_utilization"
        );
        assert_eq!(
            bad(|c| c.scale_up_utilization = 5.5),
            "scale_up_utilization"
        );
        assert_eq!(
            bad(|c| c.scale_up_utilization = f64::NAN),
            "scale_up_utilization"
        );
        assert_eq!(
            bad(|c| c.scale_down_utilization = -0.1),
            "scale_down_utilization"
        );
        assert_eq!(
            bad(|c| c.scale_down_utilization = 0.8),
            "scale_up_utilization"
        );
        assert_eq!(bad(|c| c.step_up = 0), "step_up");
        assert_eq!(bad(|c| c.step_down = 0), "step_down");
        // Upper bound is inclusive.
        let c = ThresholdConfig {
            scale_up_utilization: 5.0,
            ..Default::default()
        };
        assert!(c.validate().is_ok());
    }

    #[test]
    fn config_is_data() {
        let c: ThresholdConfig = serde_json::from_str(r#"{"step_up": 3}"#).unwrap();
        assert_eq!(
            c,
            ThresholdConfig {
                step_up: 3,
                ..Default::default()
            }
        );
        assert!(serde_json::from_str::<ThresholdConfig>(r#"{"stepup": 3}"#).is_err());
        let s: StaticReplicas = serde_json::from_str(r#"{"replicas": 4}"#).unwrap();
        assert_eq!(s, StaticReplicas::new(4));
        assert!(serde_json::from_str::<StaticReplicas>(r#"{"replicas": 4, "x": 1}"#).is_err());
    }
}
