use super::*;
use crate::test_support::ready_pod;

/// `n` Ready pods, `desired` spec replicas, scraped rate `rps`, p50 `p50_ms`, at `t` s.
fn state(t: u64, n: u32, rps: f64, p50_ms: f64) -> ClusterState {
    let pod = |id| ready_pod(id, 250, 1 << 28, 1 << 27, SimTime::from_secs(t));
    ClusterState {
        time: SimTime::from_secs(t),
        desired_replicas: n,
        status_replicas: n,
        ready_replicas: n,
        pods: (0..u64::from(n)).map(pod).collect(),
        request_rate_per_s: rps,
        p50_latency_ms: p50_ms,
        ..Default::default()
    }
}

fn rps_kpa() -> Kpa {
    let c = KpaConfig {
        metric: KpaMetric::Rps,
        target: 10.0,
        ..KpaConfig::default()
    };
    Kpa::new(c, 1, 50).unwrap()
}

#[test]
fn kpa_stable_mode_by_hand() {
    // target' = 10 x 0.7 = 7 req/s per pod; 28 req/s on 3 ready pods: ceil(28 / 7) = 4, and
    // 4 / 3 < 200%: stable mode, 4 pods.
    let mut k = rps_kpa();
    let d = k.decide(&state(0, 3, 28.0, 50.0));
    assert_eq!((d.desired_replicas, d.reason.as_ref()), (4, "KpaStable"));
    assert!(!k.panicking());
    // The stable window averages what it holds: 28 and 49 -> 38.5 -> ceil(5.5) = 6 pods; the
    // panic window holds only the latest, 49 -> 7 pods, 7 / 4 < 200%: still stable.
    assert_eq!(k.decide(&state(15, 4, 49.0, 50.0)).desired_replicas, 6);
    assert!(!k.panicking());
    // No load on 10 pods: at most halved per decision (max_scale_down_rate 2).
    let mut k = rps_kpa();
    assert_eq!(k.decide(&state(0, 10, 0.0, 0.0)).desired_replicas, 5);
}

#[test]
fn kpa_panics_on_a_burst_and_never_scales_down_while_panicking() {
    let mut k = rps_kpa();
    k.decide(&state(0, 2, 14.0, 50.0)); // 2 pods, stable
                                        // 70 req/s: panic count ceil(70 / 7) = 10 = 5x the 2 ready pods: panic, 10 pods.
    let d = k.decide(&state(15, 2, 70.0, 50.0));
    assert_eq!((d.desired_replicas, d.reason.as_ref()), (10, "KpaPanic"));
    // The load falls at once: still panicking (no scale-down) until a stable window passes
    // without reaching the threshold (last reached at 15 s).
    for t in [30, 45, 60] {
        let d = k.decide(&state(t, 10, 7.0, 50.0));
        assert_eq!(d.desired_replicas, 10, "t = {t}");
        assert!(k.panicking());
    }
    let d = k.decide(&state(75, 10, 7.0, 50.0));
    assert_eq!(d.reason.as_ref(), "KpaStable");
    // Stable window (60 s) at 75 s holds 30..75: 7 req/s -> 1 pod, but at most halved: 5.
    assert_eq!(d.desired_replicas, 5);
}

#[test]
fn kpa_concurrency_is_littles_law_on_the_scraped_rate_and_p50() {
    // 100 req/s, p50 69.3147 ms -> mean 100 ms -> 10 in flight; target 1 x 0.7 = 0.7 ->
    // ceil(14.29) = 15 pods (15 / 8 < 2: stable).
    let k = Kpa::new(KpaConfig::default(), 1, 50).unwrap();
    let s = state(0, 8, 100.0, 1000.0 * LN_2 / 10.0);
    assert!((k.observe(&s) - 10.0).abs() < 1e-9);
    let mut k = k;
    let d = k.decide(&s);
    assert_eq!((d.desired_replicas, d.reason.as_ref()), (15, "KpaStable"));
}

#[test]
fn kpa_config_ranges() {
    let ok = KpaConfig::default();
    assert!(ok.validate().is_ok());
    for bad in [
        KpaConfig {
            target: 0.0,
            ..ok.clone()
        },
        KpaConfig {
            stable_window_s: 5.0,
            ..ok.clone()
        },
        KpaConfig {
            panic_window_percentage: 0.5,
            ..ok.clone()
        },
        KpaConfig {
            panic_threshold_percentage: 100.0,
            ..ok.clone()
        },
        KpaConfig {
            target_utilization: 1.5,
            ..ok.clone()
        },
        KpaConfig {
            max_scale_down_rate: 1.0,
            ..ok.clone()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

fn hpa(min: u32) -> HpaConfig {
    HpaConfig {
        min_replicas: min,
        max_replicas: 50,
        ..HpaConfig::default()
    }
}

#[test]
fn keda_is_the_hpa_on_an_average_value_external_metric() {
    // 300 req/s, target 30 per replica: ceil(300 / 30) = 10, but the legacy scale-up limit
    // allows max(2 x 4, 4) = 8 from 4 replicas.
    let mut k = Keda::new(KedaConfig::default(), hpa(1)).unwrap();
    assert_eq!(k.decide(&state(0, 4, 300.0, 50.0)).desired_replicas, 8);
    // From 5 replicas the limit is 10: 10.
    let mut k = Keda::new(KedaConfig::default(), hpa(1)).unwrap();
    assert_eq!(k.decide(&state(0, 5, 300.0, 50.0)).desired_replicas, 10);
    // Within the 10% tolerance (310 / (30 x 10) = 1.03): hold 10.
    assert_eq!(k.decide(&state(15, 10, 310.0, 50.0)).desired_replicas, 10);
}

#[test]
fn keda_cached_metrics_refresh_only_at_each_poll() {
    let cached = KedaConfig {
        use_cached_metrics: true,
        ..KedaConfig::default()
    };
    let mut k = Keda::new(cached, hpa(1)).unwrap();
    assert_eq!(k.decide(&state(0, 10, 300.0, 50.0)).desired_replicas, 10);
    // 15 s later the rate doubled, but the next poll is at 30 s: still 300 -> 10.
    assert_eq!(k.decide(&state(15, 10, 600.0, 50.0)).desired_replicas, 10);
    // At 30 s the poll sees 600: 20 (limit max(2 x 10, 4) = 20).
    assert_eq!(k.decide(&state(30, 10, 600.0, 50.0)).desired_replicas, 20);
    // Without caching the HPA reads the fresh value at once.
    let mut k = Keda::new(KedaConfig::default(), hpa(1)).unwrap();
    k.decide(&state(0, 10, 300.0, 50.0));
    assert_eq!(k.decide(&state(15, 10, 600.0, 50.0)).desired_replicas, 20);
}

#[test]
fn keda_scales_to_zero_after_the_cooldown_and_activates_on_traffic() {
    let mut k = Keda::new(KedaConfig::default(), hpa(0)).unwrap();
    // Active at 0 s, idle from 30 s: zero only once 300 s passed since the last active poll.
    assert_eq!(k.decide(&state(0, 2, 50.0, 50.0)).desired_replicas, 2);
    assert!(k.decide(&state(30, 2, 0.0, 0.0)).desired_replicas >= 1);
    assert!(k.decide(&state(270, 2, 0.0, 0.0)).desired_replicas >= 1);
    let d = k.decide(&state(300, 2, 0.0, 0.0));
    assert_eq!(
        (d.desired_replicas, d.reason.as_ref()),
        (0, "KedaScaledToZero")
    );
    // Traffic again: the next poll activates one replica.
    let mut zero = state(330, 0, 20.0, 50.0);
    zero.pods.clear();
    let d = k.decide(&zero);
    assert_eq!(
        (d.desired_replicas, d.reason.as_ref()),
        (1, "KedaActivated")
    );
    assert!(KedaConfig {
        target_per_replica: 0.0,
        ..KedaConfig::default()
    }
    .validate()
    .is_err());
}
