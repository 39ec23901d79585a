//! The simulator adapter: configuration, one decision, stabilization across calls, reset.

use super::*;

fn pod(id: u64, usage: Option<u64>) -> PodView {
    PodView {
        id,
        phase: sim::PodPhase::Running,
        ready: true,
        ready_last_transition: Some(SimTime::from_secs(10)),
        start_time: Some(SimTime::from_secs(5)),
        deleting: false,
        cpu_request_milli: 1000,
        memory_request_bytes: 1 << 20,
        cpu_usage_milli: usage,
        memory_usage_bytes: None,
        metric_timestamp: Some(SimTime::from_secs(995)),
        metric_window_s: 30,
    }
}

fn state(t_s: u64, replicas: u32, usage: u64) -> ClusterState {
    ClusterState {
        time: SimTime::from_secs(t_s),
        desired_replicas: replicas,
        status_replicas: replicas,
        ready_replicas: replicas,
        pods: (0..u64::from(replicas))
            .map(|i| pod(i, Some(usage)))
            .collect(),
        ..ClusterState::default()
    }
}

#[test]
fn config_defaults_and_validation() {
    let c = HpaConfig::default();
    assert_eq!(
        (
            c.target_cpu_utilization_percent,
            c.min_replicas,
            c.max_replicas
        ),
        (70, 1, 50)
    );
    assert!(Hpa::new(c.clone()).is_ok());
    let bad = HpaConfig {
        min_replicas: 5,
        max_replicas: 2,
        ..c.clone()
    };
    assert!(matches!(Hpa::new(bad), Err(HpaError::InvalidConfig(_))));
    let bad = HpaConfig {
        tolerance: -0.1,
        ..c.clone()
    };
    assert!(Hpa::new(bad).is_err());
    let bad = HpaConfig {
        target_cpu_utilization_percent: 0,
        ..c
    };
    assert!(Hpa::new(bad).is_err());
    // Unknown fields are rejected, missing ones take defaults.
    let parsed: HpaConfig = serde_json::from_str(r#"{"max_replicas": 10}"#).unwrap();
    assert_eq!(parsed.max_replicas, 10);
    assert_eq!(parsed.tolerance, 0.1);
    assert!(serde_json::from_str::<HpaConfig>(r#"{"max_replica": 10}"#).is_err());
    let with_behavior: HpaConfig = serde_json::from_str(
        r#"{"behavior": {"scale_up": {"policies": [{"type": "Pods", "value": 1, "period_s": 60}]}}}"#,
    )
    .unwrap();
    assert!(Hpa::new(with_behavior).is_ok());
}

#[test]
fn scale_up_follows_the_formula() {
    // 3 pods of 1000m at 900m, target 70%: utilization 90, ratio 90 / 70 = 1.2857,
    // ceil(1.2857 * 3) = ceil(3.857) = 4; legacy cap max(2 * 3, 4) = 6 -> 4.
    let mut hpa = Hpa::new(HpaConfig::default()).unwrap();
    let d = hpa.decide(&state(1000, 3, 900));
    assert_eq!(d.desired_replicas, 4);
    assert_eq!(d.reason, "DesiredWithinRange");
}

#[test]
fn scale_down_waits_for_the_window_and_reset_forgets() {
    // 4 pods at 140m of 1000m: utilization 14, ratio 0.2 -> ceil(0.2 * 4) = 1. The initial
    // recommendation (4, recorded at the first call) holds the size for 300 s.
    let mut hpa = Hpa::new(HpaConfig::default()).unwrap();
    let d = hpa.decide(&state(1000, 4, 140));
    assert_eq!(
        (d.desired_replicas, d.reason.as_ref()),
        (4, "ScaleDownStabilized")
    );
    // 285 s later the first recommendation is still inside the window.
    assert_eq!(hpa.decide(&state(1285, 4, 140)).desired_replicas, 4);
    // At exactly 300 s it is outside (strict comparison); the later 1s are all that remain.
    assert_eq!(hpa.decide(&state(1300, 4, 140)).desired_replicas, 1);
    // After reset the current size is recorded again and holds the next scale-down.
    hpa.reset();
    assert_eq!(hpa.decide(&state(1315, 4, 140)).desired_replicas, 4);
}

#[test]
fn no_samples_keeps_current() {
    let mut hpa = Hpa::new(HpaConfig::default()).unwrap();
    let mut s = state(1000, 3, 0);
    for p in &mut s.pods {
        p.cpu_usage_milli = None;
    }
    let d = hpa.decide(&s);
    assert_eq!(
        (d.desired_replicas, d.reason.as_ref()),
        (3, "FailedGetResourceMetric")
    );
    assert!(hpa.last_outcome().and_then(|o| o.error.as_ref()).is_some());
}

#[test]
fn disabled_at_zero_and_clamped_above_max() {
    let mut hpa = Hpa::new(HpaConfig {
        max_replicas: 5,
        ..HpaConfig::default()
    })
    .unwrap();
    let d = hpa.decide(&state(1000, 0, 0));
    assert_eq!(
        (d.desired_replicas, d.reason.as_ref()),
        (0, "ScalingDisabled")
    );
    let d = hpa.decide(&state(1015, 8, 100));
    assert_eq!(
        (d.desired_replicas, d.reason.as_ref()),
        (5, "CurrentAboveMaxReplicas")
    );
}

#[test]
fn behavior_rate_limits_across_calls() {
    // Scale-up limited to 1 pod per 60 s: 2 -> 3, then held at 3 within the period, then 4.
    let config: HpaConfig = serde_json::from_str(
        r#"{"behavior": {"scale_up": {"policies": [{"type": "Pods", "value": 1, "period_s": 60}]}}}"#,
    )
    .unwrap();
    let mut hpa = Hpa::new(config).unwrap();
    // 2000m of 1000m: utilization 200, ratio 2.857, proposal ceil(2.857 * 2) = 6.
    let d = hpa.decide(&state(1000, 2, 2000));
    assert_eq!((d.desired_replicas, d.reason.as_ref()), (3, "ScaleUpLimit"));
    // The +1 event of t = 1000 s is inside the 60 s period: start 2, limit 3.
    assert_eq!(hpa.decide(&state(1015, 3, 2000)).desired_replicas, 3);
    // At exactly 60 s it is outside: start 3, limit 4.
    assert_eq!(hpa.decide(&state(1060, 3, 2000)).desired_replicas, 4);
}
