//! Per-resource metrics of the controller, labelled `{namespace, name}` of the NimbusScaler,
//! served on its `/metrics` beside the operator loop's totals
//! ([`crate::operator::telemetry`]), which add up every resource.
//!
//! | name | type | extra labels | meaning |
//! |---|---|---|---|
//! | `nimbusguard_scaler_decisions_total` | counter | `source` (`agent`, `hpa_fallback`) | decisions taken for this resource |
//! | `nimbusguard_scaler_desired_replicas` | gauge | | `spec.replicas` of the target after the last decision |
//! | `nimbusguard_scaler_replicas` | gauge | | pods of the target (not terminating) |
//! | `nimbusguard_scaler_ready_replicas` | gauge | | Ready pods of the target |
//! | `nimbusguard_scaler_reward` | gauge | | reward of the last scored decision |
//! | `nimbusguard_scaler_fallback_active` | gauge | | 1 while the HPA fallback decides |
//! | `nimbusguard_scaler_self_healing_total` | counter | `action` (`retry`, `revert`, `recovered`) | self-healing actions |
//! | `nimbusguard_scaler_reconcile_errors_total` | counter | | reconciles that failed (retried after 5 s) |
//!
//! The series of a resource are removed once it is deleted ([`ScalerMetrics::forget`], at the
//! controller's next reconcile).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::healing::HealAction;
use crate::k8s::crd::NimbusScalerStatus;

/// Label set `{namespace, name}` of a NimbusScaler.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The resource's namespace.
    pub namespace: String,
    /// The resource's name.
    pub name: String,
}

/// `{namespace, name, source}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// The resource's namespace.
    pub namespace: String,
    /// The resource's name.
    pub name: String,
    /// `agent` or `hpa_fallback`.
    pub source: String,
}

/// `{namespace, name, action}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// The resource's namespace.
    pub namespace: String,
    /// The resource's name.
    pub name: String,
    /// `retry`, `revert` or `recovered`.
    pub action: String,
}

const SOURCES: [&str; 2] = ["agent", "hpa_fallback"];
const ACTIONS: [&str; 3] = ["retry", "revert", "recovered"];

/// The per-resource metrics (see the module docs); cheap to clone (shared counters).
#[derive(Clone, Default, Debug)]
pub struct ScalerMetrics {
    decisions: Family<SourceLabels, Counter>,
    desired_replicas: Family<ResourceLabels, Gauge>,
    replicas: Family<ResourceLabels, Gauge>,
    ready_replicas: Family<ResourceLabels, Gauge>,
    reward: Family<ResourceLabels, Gauge<f64, AtomicU64>>,
    fallback_active: Family<ResourceLabels, Gauge>,
    self_healing: Family<ActionLabels, Counter>,
    reconcile_errors: Family<ResourceLabels, Counter>,
}

impl ScalerMetrics {
    /// Adds the metrics to `registry` (prometheus-client appends `_total` to counters).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "nimbusguard_scaler_decisions",
            "Decisions taken for a NimbusScaler, by source (agent or HPA fallback)",
            self.decisions.clone(),
        );
        registry.register(
            "nimbusguard_scaler_desired_replicas",
            "spec.replicas of the NimbusScaler's target after its last decision",
            self.desired_replicas.clone(),
        );
        registry.register(
            "nimbusguard_scaler_replicas",
            "Pods of the NimbusScaler's target that are not terminating",
            self.replicas.clone(),
        );
        registry.register(
            "nimbusguard_scaler_ready_replicas",
            "Ready pods of the NimbusScaler's target",
            self.ready_replicas.clone(),
        );
        registry.register(
            "nimbusguard_scaler_reward",
            "Reward of the NimbusScaler's last scored decision",
            self.reward.clone(),
        );
        registry.register(
            "nimbusguard_scaler_fallback_active",
            "1 while the HPA fallback decides for the NimbusScaler",
            self.fallback_active.clone(),
        );
        registry.register(
            "nimbusguard_scaler_self_healing",
            "Self-healing actions on stuck scale-ups, by action",
            self.self_healing.clone(),
        );
        registry.register(
            "nimbusguard_scaler_reconcile_errors",
            "Reconciles of the NimbusScaler that failed (retried after 5 s)",
            self.reconcile_errors.clone(),
        );
    }

    /// Records one decision and the status it led to.
    pub fn decided(&self, r: &ResourceLabels, status: &NimbusScalerStatus) {
        let source = status
            .last_decision
            .as_ref()
            .map_or("agent", |d| d.source.as_str());
        self.decisions
            .get_or_create(&SourceLabels {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                source: source.to_string(),
            })
            .inc();
        let gauge = |f: &Family<ResourceLabels, Gauge>, v: u32| {
            f.get_or_create(r).set(i64::from(v));
        };
        gauge(&self.desired_replicas, status.desired_replicas);
        gauge(&self.replicas, status.replicas);
        gauge(&self.ready_replicas, status.ready_replicas);
        gauge(&self.fallback_active, u32::from(status.fallback.active));
        if let Some(x) = status.last_reward {
            self.reward.get_or_create(r).set(x);
        }
    }

    /// Records a self-healing action.
    pub fn healed(&self, r: &ResourceLabels, action: &HealAction) {
        let action = match action {
            HealAction::Retry { .. } => "retry",
            HealAction::Revert { .. } => "revert",
            HealAction::Recovered { .. } => "recovered",
        };
        self.self_healing
            .get_or_create(&ActionLabels {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                action: action.to_string(),
            })
            .inc();
    }

    /// Records a failed reconcile.
    pub fn reconcile_failed(&self, r: &ResourceLabels) {
        self.reconcile_errors.get_or_create(r).inc();
    }

    /// Removes every series of resource `r` (it was deleted).
    pub fn forget(&self, r: &ResourceLabels) {
        for f in [
            &self.desired_replicas,
            &self.replicas,
            &self.ready_replicas,
            &self.fallback_active,
        ] {
            f.remove(r);
        }
        self.reward.remove(r);
        self.reconcile_errors.remove(r);
        for source in SOURCES {
            self.decisions.remove(&SourceLabels {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                source: source.into(),
            });
        }
        for action in ACTIONS {
            self.self_healing.remove(&ActionLabels {
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                action: action.into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::crd::{FallbackStatus, LastDecision};

    fn encode(m: &ScalerMetrics) -> String {
        let mut r = Registry::default();
        m.register(&mut r);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        out
    }

    #[test]
    fn series_per_resource_and_removed_on_delete() {
        let m = ScalerMetrics::default();
        let a = ResourceLabels {
            namespace: "ns".into(),
            name: "a".into(),
        };
        let b = ResourceLabels {
            namespace: "ns".into(),
            name: "b".into(),
        };
        let mut st = NimbusScalerStatus {
            desired_replicas: 4,
            replicas: 3,
            ready_replicas: 2,
            last_reward: Some(-0.5),
            last_decision: Some(LastDecision {
                time: String::new(),
                cause: "interval".into(),
                source: "hpa_fallback".into(),
                decided_by: "hpa".into(),
                from: 3,
                to: 4,
                wished: 4,
                reason: String::new(),
            }),
            fallback: FallbackStatus {
                active: true,
                reason: Some("stale".into()),
            },
            ..NimbusScalerStatus::default()
        };
        m.decided(&a, &st);
        m.decided(&a, &st);
        st.desired_replicas = 1;
        st.fallback.active = false;
        st.last_decision.as_mut().unwrap().source = "agent".into();
        m.decided(&b, &st);
        m.healed(&a, &HealAction::Recovered { retries: 1 });
        m.reconcile_failed(&b);
        let text = encode(&m);
        for line in [
            r#"nimbusguard_scaler_decisions_total{namespace="ns",name="a",source="hpa_fallback"} 2"#,
            r#"nimbusguard_scaler_decisions_total{namespace="ns",name="b",source="agent"} 1"#,
            r#"nimbusguard_scaler_desired_replicas{namespace="ns",name="a"} 4"#,
            r#"nimbusguard_scaler_desired_replicas{namespace="ns",name="b"} 1"#,
            r#"nimbusguard_scaler_ready_replicas{namespace="ns",name="a"} 2"#,
            r#"nimbusguard_scaler_replicas{namespace="ns",name="a"} 3"#,
            r#"nimbusguard_scaler_fallback_active{namespace="ns",name="a"} 1"#,
            r#"nimbusguard_scaler_fallback_active{namespace="ns",name="b"} 0"#,
            r#"nimbusguard_scaler_reward{namespace="ns",name="a"} -0.5"#,
            r#"nimbusguard_scaler_self_healing_total{namespace="ns",name="a",action="recovered"} 1"#,
            r#"nimbusguard_scaler_reconcile_errors_total{namespace="ns",name="b"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        m.forget(&a);
        let text = encode(&m);
        assert!(!text.contains(r#"name="a""#), "{text}");
        assert!(text.contains(r#"nimbusguard_scaler_desired_replicas{namespace="ns",name="b"} 1"#));
    }
}
