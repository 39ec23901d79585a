//! Whole reconciles on the fake sources (mirrors of `horizontal_test.go` scenarios).

use super::*;
use crate::hpa::fake::{FakePod, FakeResourceSample, FakeSource};
use crate::hpa::grouping::ContainerValue;
use crate::hpa::{Behavior, ConditionStatus, PodPhase, PodRecord, ReadyCondition, ZERO_TIME_MS};

fn cpu_cluster(usages: &[i64], request: i64) -> FakeSource {
    let half = |v: i64| {
        vec![
            ContainerValue {
                name: "container1".into(),
                milli: Some(v / 2),
            },
            ContainerValue {
                name: "container2".into(),
                milli: Some(v / 2),
            },
        ]
    };
    let pods = (0..usages.len())
        .map(|i| FakePod {
            name: format!("test-pod-{i}"),
            record: PodRecord {
                phase: PodPhase::Running,
                ready: Some(ReadyCondition {
                    status: ConditionStatus::True,
                    last_transition_ms: ZERO_TIME_MS,
                }),
                start_time_ms: Some(ZERO_TIME_MS),
                deleting: false,
            },
            containers: half(request),
        })
        .collect();
    let mut source = FakeSource::new(pods);
    source.resource_samples = Ok(usages
        .iter()
        .enumerate()
        .map(|(i, &u)| FakeResourceSample {
            pod: format!("test-pod-{i}"),
            containers: half(u),
            timestamp_ms: 0,
            window_ms: 60_000,
        })
        .collect());
    source
}

fn spec(min: i32, max: i32, metrics: Vec<MetricSpec>) -> HpaSpec {
    HpaSpec {
        min_replicas: Some(min),
        max_replicas: max,
        metrics,
        behavior: None,
    }
}

fn cpu(percent: i32) -> MetricSpec {
    MetricSpec::Resource {
        resource: "cpu".into(),
        target: MetricTarget::utilization(percent),
    }
}

fn reasons(o: &ReconcileOutcome) -> Vec<&'static str> {
    o.conditions.iter().map(|c| c.reason).collect()
}

const SCALE5: ScaleSnapshot = ScaleSnapshot {
    spec_replicas: 5,
    status_replicas: 5,
};

#[test]
fn initial_recommendation_holds_scale_down() {
    // Usage 100+300+500+250+250 = 1400 of 5000: 28%, target 50: ratio 0.56 -> ceil(2.8) = 3,
    // but the size 5 recorded at first sight is in the 5-minute window: held at 5.
    let source = cpu_cluster(&[100, 300, 500, 250, 250], 1000);
    let mut c = HorizontalController::new(ControllerConfig::go_test());
    let o = c.reconcile(&spec(2, 6, vec![cpu(50)]), SCALE5, &source, 0);
    assert_eq!(
        (o.desired_replicas, o.scale_updated, o.metric_proposal),
        (5, false, Some(3))
    );
    assert_eq!(
        reasons(&o),
        [
            "ScaleDownStabilized",
            "ValidMetricFound",
            "DesiredWithinRange"
        ]
    );
    // With an explicitly empty history the same proposal scales down to 3.
    let mut c = HorizontalController::new(ControllerConfig::go_test());
    c.set_recommendations(Some(Vec::new()));
    let o = c.reconcile(&spec(2, 6, vec![cpu(50)]), SCALE5, &source, 0);
    assert_eq!((o.desired_replicas, o.scale_updated), (3, true));
    assert_eq!(
        reasons(&o),
        ["SucceededRescale", "ValidMetricFound", "DesiredWithinRange"]
    );
}

#[test]
fn invalid_metric_blocks_scale_down_only() {
    let invalid = MetricSpec::Unknown {
        type_name: "CheddarCheese".into(),
    };
    let source = cpu_cluster(&[100, 300, 500, 250, 250], 1000);
    let mut c = HorizontalController::new(ControllerConfig::go_test());
    c.set_recommendations(Some(Vec::new()));
    let o = c.reconcile(
        &spec(2, 6, vec![cpu(50), invalid.clone()]),
        SCALE5,
        &source,
        0,
    );
    assert_eq!((o.desired_replicas, o.scale_updated), (5, false));
    assert_eq!(
        reasons(&o),
        ["SucceededGetScale", "InvalidMetricSourceType"]
    );
    assert!(o.error.is_some());
    // Scale-up proceeds: 3 pods at 400m of 1000m, target 30%: 40/30 -> ceil(1.33 * 3) = 4.
    let source = cpu_cluster(&[300, 400, 500], 1000);
    let mut c = HorizontalController::new(ControllerConfig::go_test());
    c.set_recommendations(Some(Vec::new()));
    let scale = ScaleSnapshot {
        spec_replicas: 3,
        status_replicas: 3,
    };
    let o = c.reconcile(&spec(1, 6, vec![cpu(30), invalid]), scale, &source, 0);
    assert_eq!((o.desired_replicas, o.scale_updated), (4, true));
    assert!(o.error.is_some());
}

#[test]
fn branches_before_metrics() {
    let source = cpu_cluster(&[], 1000);
    let mut c = HorizontalController::new(ControllerConfig::go_test());
    let zero = ScaleSnapshot {
        spec_replicas: 0,
        status_replicas: 0,
    };
    let o = c.reconcile(&spec(1, 5, vec![cpu(50)]), zero, &source, 0);
    assert_eq!((o.desired_replicas, o.scale_updated), (0, false));
    assert_eq!(reasons(&o), ["SucceededGetScale", "ScalingDisabled"]);
    let o = c.reconcile(&spec(1, 3, vec![cpu(50)]), SCALE5, &source, 0);
    assert_eq!(
        (o.desired_replicas, reasons(&o)),
        (3, vec!["SucceededRescale"])
    );
    let o = c.reconcile(&spec(7, 9, vec![cpu(50)]), SCALE5, &source, 0);
    assert_eq!(o.desired_replicas, 7);
}

#[test]
fn behavior_path_limits_and_records_events() {
    // 3 pods at 1000m of 1000m, target 10%: ratio 10 -> ceil(30) = 30; default scale-up
    // policies allow max(3 + 4, 3 * 2) = 7 per 15 s.
    let source = cpu_cluster(&[1000, 1000, 1000], 1000);
    let mut s = spec(1, 100, vec![cpu(10)]);
    s.behavior = Some(EffectiveBehavior::from_api(&Behavior::default(), 300));
    let mut c = HorizontalController::new(ControllerConfig::go_test());
    let scale = ScaleSnapshot {
        spec_replicas: 3,
        status_replicas: 3,
    };
    let o = c.reconcile(&s, scale, &source, 0);
    assert_eq!(o.desired_replicas, 7);
    assert_eq!(
        reasons(&o),
        ["SucceededRescale", "ValidMetricFound", "ScaleUpLimit"]
    );
    assert_eq!(c.scale_events().0.len(), 1);
    assert_eq!(c.scale_events().0[0].replica_change, 4);
}
