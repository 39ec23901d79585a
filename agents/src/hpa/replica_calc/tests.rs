//! Hand-computed checks of the ratio arithmetic and the replica formula.

use super::*;
use crate::hpa::fake::{FakePod, FakeResourceSample, FakeSource};
use crate::hpa::grouping::ContainerValue;
use crate::hpa::{ConditionStatus, PodPhase, ReadyCondition, ZERO_TIME_MS};

const READINESS: ReadinessConfig = ReadinessConfig {
    cpu_initialization_period_ms: 120_000,
    initial_readiness_delay_ms: 10_000,
};
const TOL: Tolerances = Tolerances::symmetric(0.1);

fn calc() -> ReplicaCalculator {
    ReplicaCalculator::new(READINESS, ControllerVariant::Newest)
}

fn containers(per_container: &[Option<i64>]) -> Vec<ContainerValue> {
    per_container
        .iter()
        .enumerate()
        .map(|(i, &milli)| ContainerValue {
            name: format!("container{}", i + 1),
            milli,
        })
        .collect()
}

/// A long-running pod (started at the zero time) with one container requesting `request`.
fn pod(name: &str, ready: bool, request: i64) -> FakePod {
    let status = if ready {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    FakePod {
        name: name.to_string(),
        record: PodRecord {
            phase: PodPhase::Running,
            ready: Some(ReadyCondition {
                status,
                last_transition_ms: ZERO_TIME_MS,
            }),
            start_time_ms: Some(ZERO_TIME_MS),
            deleting: false,
        },
        containers: containers(&[Some(request)]),
    }
}

fn sample(name: &str, usage: i64) -> FakeResourceSample {
    FakeResourceSample {
        pod: name.to_string(),
        containers: containers(&[Some(usage)]),
        timestamp_ms: ZERO_TIME_MS,
        window_ms: 60_000,
    }
}

fn cpu_source(pods: Vec<FakePod>, samples: Vec<FakeResourceSample>) -> FakeSource {
    let mut source = FakeSource::new(pods);
    source.resource_samples = Ok(samples);
    source
}

#[test]
fn utilization_scale_up_uses_ready_pod_count() {
    // 3 pods requesting 1000m, each using 900m, target 50%:
    // utilization = floor(100 * 2700 / 3000) = 90, ratio = 90 / 50 = 1.8,
    // replicas = ceil(1.8 * 3) = ceil(5.4) = 6; raw average = 2700 / 3 = 900.
    let pods = (0..3).map(|i| pod(&format!("p{i}"), true, 1000)).collect();
    let samples = (0..3).map(|i| sample(&format!("p{i}"), 900)).collect();
    let source = cpu_source(pods, samples);
    let got = calc()
        .resource_replicas(&source, 0, 3, 50, "cpu", None, TOL)
        .unwrap();
    assert_eq!(
        got,
        ResourceProposal {
            replicas: 6,
            utilization_percent: 90,
            raw_average_milli: 900
        }
    );
}

#[test]
fn utilization_is_truncated_before_the_ratio() {
    // 2 samples (800m + 190m) over requests 2000m + 2000m: 100 * 990 / 4000 = 24.75 -> 24.
    let metrics = PodMetricsInfo {
        per_pod: vec![
            Some(PodSample {
                value_milli: 800,
                timestamp_ms: 0,
                window_ms: 0,
            }),
            Some(PodSample {
                value_milli: 190,
                timestamp_ms: 0,
                window_ms: 0,
            }),
            None,
        ],
        strays: vec![5000],
    };
    let (ratio, utilization, raw) =
        resource_utilization_ratio(&metrics, &[2000, 2000, 2000], 100).unwrap();
    // ratio = 24 / 100 (from the truncated integer), raw = 990 / 2 = 495; the stray sample has
    // no request and is skipped.
    assert_eq!((utilization, raw), (24, 495));
    assert_eq!(ratio, 0.24);
    // Plain average counts the stray: (800 + 190 + 5000) / 3 = 1996 (floor of 1996.67).
    assert_eq!(metric_usage_ratio(&metrics, 1996), (1.0, 1996));
    // Nothing matched a request: error.
    let none = PodMetricsInfo {
        per_pod: vec![None],
        strays: vec![1],
    };
    assert_eq!(
        resource_utilization_ratio(&none, &[1000], 50),
        Err(HpaError::NoMatchingMetrics)
    );
}

#[test]
fn missing_pods_on_scale_down_count_at_full_request() {
    // 4 pods requesting 2000m, samples 800m and 190m, 2 pods without samples, target 100%:
    // utilization 24 (ratio 0.24 < 1) -> missing pods filled at max(100, 100)% = 2000m each:
    // 100 * (990 + 4000) / 8000 = 62.375 -> 62, ratio 0.62, outside [0.9, 1.1], no flip;
    // ceil(0.62 * 4) = ceil(2.48) = 3 (below current 4, consistent with ratio < 1).
    let pods = (0..4).map(|i| pod(&format!("p{i}"), true, 2000)).collect();
    let source = cpu_source(pods, vec![sample("p0", 800), sample("p1", 190)]);
    let got = calc()
        .resource_replicas(&source, 0, 4, 100, "cpu", None, TOL)
        .unwrap();
    assert_eq!(
        got,
        ResourceProposal {
            replicas: 3,
            utilization_percent: 24,
            raw_average_milli: 495
        }
    );
}

#[test]
fn missing_pod_fallback_uses_target_above_100_percent() {
    // 2 pods requesting 1000m, one sample of 500m, target 200%:
    // utilization 50 -> ratio 0.25 (scale-down); the missing pod counts at 200% = 2000m:
    // 100 * 2500 / 2000 = 125 -> ratio 0.625 -> ceil(0.625 * 2) = 2 = current -> 2.
    // Older controllers fill at 100% = 1000m: 100 * 1500 / 2000 = 75 -> ratio 0.375 ->
    // ceil(0.75) = 1.
    let pods = vec![pod("a", true, 1000), pod("b", true, 1000)];
    let source = cpu_source(pods, vec![sample("a", 500)]);
    let got = calc()
        .resource_replicas(&source, 0, 2, 200, "cpu", None, TOL)
        .unwrap();
    assert_eq!(got.replicas, 2);
    let mut older = ReplicaCalculator::new(READINESS, ControllerVariant::Older);
    assert_eq!(
        older
            .resource_replicas(&source, 0, 2, 200, "cpu", None, TOL)
            .unwrap()
            .replicas,
        1
    );
}

#[test]
fn unready_pods_at_zero_can_flip_direction() {
    // 1 ready pod at 800m of 2000m (40%) with target 30%: ratio 1.33 (scale-up) with 2 unready
    // pods -> they count at 0: 100 * 800 / 6000 = 13 -> ratio 0.43 < 1: direction flip, hold 3.
    let pods = vec![
        pod("a", true, 2000),
        pod("b", false, 2000),
        pod("c", false, 2000),
    ];
    let samples = vec![sample("a", 800), sample("b", 1000), sample("c", 1400)];
    let source = cpu_source(pods, samples);
    let got = calc()
        .resource_replicas(&source, 0, 3, 30, "cpu", None, TOL)
        .unwrap();
    assert_eq!(
        got,
        ResourceProposal {
            replicas: 3,
            utilization_percent: 40,
            raw_average_milli: 800
        }
    );
}

#[test]
fn tolerance_boundary_differs_between_versions() {
    // 3 pods of 1000m using 1100m: utilization 110, ratio 1.1. Newest: 1.1 <= 1 + 0.1 holds ->
    // hold 3. Older: |1 - 1.1| = 0.10000000000000009 > 0.1 -> ceil(1.1 * 3) = 4.
    let pods: Vec<_> = (0..3).map(|i| pod(&format!("p{i}"), true, 1000)).collect();
    let samples = (0..3).map(|i| sample(&format!("p{i}"), 1100)).collect();
    let source = cpu_source(pods, samples);
    assert_eq!(
        calc()
            .resource_replicas(&source, 0, 3, 100, "cpu", None, TOL)
            .unwrap()
            .replicas,
        3
    );
    let mut older = ReplicaCalculator::new(READINESS, ControllerVariant::Older);
    assert_eq!(
        older
            .resource_replicas(&source, 0, 3, 100, "cpu", None, TOL)
            .unwrap()
            .replicas,
        4
    );
}

#[test]
fn error_order() {
    // No sample at all: the metrics API error comes first.
    let source = cpu_source(vec![pod("a", true, 1000)], vec![]);
    let err = calc()
        .resource_replicas(&source, 0, 1, 50, "cpu", None, TOL)
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("no metrics returned from resource metrics API"));
    // Only an unready pod has a sample: "did not receive metrics for targeted pods".
    let source = cpu_source(vec![pod("a", false, 1000)], vec![sample("a", 10)]);
    let err = calc()
        .resource_replicas(&source, 0, 1, 50, "cpu", None, TOL)
        .unwrap_err();
    assert_eq!(err, HpaError::NoMetricsForTargetedPods);
    // A container without request fails the metric.
    let mut p = pod("a", true, 1000);
    p.containers = containers(&[Some(100), None]);
    let source = cpu_source(vec![p], vec![sample("a", 10)]);
    let err = calc()
        .resource_replicas(&source, 0, 1, 50, "cpu", None, TOL)
        .unwrap_err();
    assert!(err.to_string().contains("missing request for cpu"));
}

#[test]
fn plain_metric_at_exactly_target_with_missing_pods_holds() {
    // 5 pods, 3 samples 20000 + 19000 + 21000 -> average 20000 = target: ratio exactly 1.0,
    // missing pods are filled in neither direction, new ratio 1.0 is within tolerance -> 5.
    let pods = (0..5).map(|i| pod(&format!("p{i}"), true, 1000)).collect();
    let mut source = FakeSource::new(pods);
    source.pods_metric = Ok(vec![
        ("p0".into(), 20000),
        ("p1".into(), 19000),
        ("p2".into(), 21000),
    ]);
    let got = calc()
        .pods_metric_replicas(&source, 0, 5, 20000, "qps", TOL)
        .unwrap();
    assert_eq!(
        got,
        UsageProposal {
            replicas: 5,
            usage_milli: 20000
        }
    );
}

#[test]
fn object_and_external_arithmetic() {
    let pods: Vec<_> = (0..5)
        .map(|i| pod(&format!("p{i}"), i != 4, 1000))
        .collect();
    let mut source = FakeSource::new(pods);
    // Value target: 12000 / 20000 = 0.6 over the 4 Running+Ready pods: ceil(2.4) = 3.
    source.object_value = Ok(12000);
    let c = calc();
    assert_eq!(
        c.object_value_replicas(&source, 5, 20000, "qps", TOL)
            .unwrap()
            .replicas,
        3
    );
    // From zero: ratio 12000 / 12000 = 1.0 gives ceil(1.0) = 1 without tolerance.
    assert_eq!(
        c.object_value_replicas(&source, 0, 12000, "qps", TOL)
            .unwrap()
            .replicas,
        1
    );
    // AverageValue: 20000 over 3 pods at 5000 each: ratio 20000 / 15000 = 1.33 ->
    // ceil(20000 / 5000) = 4; usage per pod ceil(20000 / 3) = 6667.
    assert_eq!(
        c.per_pod_replicas(3, 20000, 5000, TOL),
        UsageProposal {
            replicas: 4,
            usage_milli: 6667
        }
    );
    // Overflow: MaxInt64 / 1 clamps to MaxInt32 replicas and MaxInt64 usage.
    assert_eq!(
        c.per_pod_replicas(1, i64::MAX, 1, TOL),
        UsageProposal {
            replicas: i32::MAX,
            usage_milli: i64::MAX
        }
    );
    // External sums saturate at MaxInt64.
    source.external_series = Ok(vec![i64::MAX, 5]);
    let mut c = calc();
    let got = c
        .external_per_pod_replicas(&source, 1, 1, "qps", TOL)
        .unwrap();
    assert_eq!(got.usage_milli, i64::MAX);
}

#[test]
fn hot_cpu_pod_is_unready_in_initialization_period() {
    // Pod 0 started now (inside the 120 s period) with a sample at the zero time (before
    // transition + window) -> unready; pods 1, 2 started 180 s ago -> ready.
    // Ready: 100 * (1000 + 1400) / 4000 = 60 -> ratio 2.0 with 1 unready: fill 0:
    // 100 * 2400 / 6000 = 40 -> ratio 1.33 -> ceil(1.33 * 3) = 4.
    let mut pods: Vec<_> = (0..3).map(|i| pod(&format!("p{i}"), true, 2000)).collect();
    pods[0].record.start_time_ms = Some(0);
    pods[1].record.start_time_ms = Some(-180_000);
    pods[2].record.start_time_ms = Some(-180_000);
    let samples = vec![sample("p0", 600), sample("p1", 1000), sample("p2", 1400)];
    let source = cpu_source(pods, samples);
    let got = calc()
        .resource_replicas(&source, 0, 3, 30, "cpu", None, TOL)
        .unwrap();
    assert_eq!(
        got,
        ResourceProposal {
            replicas: 4,
            utilization_percent: 60,
            raw_average_milli: 1200
        }
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast path never panics and, inside the band, always returns current.
        #[test]
        fn fast_path_is_total(
            usages in proptest::collection::vec(0i64..100_000, 1..8),
            request in 1i64..10_000,
            target in 1i32..300,
            current in 0i32..100,
        ) {
            let pods = (0..usages.len()).map(|i| pod(&format!("p{i}"), true, request)).collect();
            let samples = usages.iter().enumerate().map(|(i, &u)| sample(&format!("p{i}"), u)).collect();
            let source = cpu_source(pods, samples);
            let got = calc().resource_replicas(&source, 0, current, target, "cpu", None, TOL).unwrap();
            let ratio = f64::from(got.utilization_percent) / f64::from(target);
            if TOL.is_within(ratio) {
                prop_assert_eq!(got.replicas, current);
            } else {
                prop_assert_eq!(got.replicas, ceil_replicas(ratio, usages.len()));
            }
        }
    }
}
