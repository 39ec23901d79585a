//! The open-loop runner: sends every request of a [`Schedule`] at its instant, whatever the
//! answers (one task per request, so a slow target cannot slow the sender), and summarises.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use tokio::time::Instant;

use super::kafka::{self, KafkaSink};
use super::summary::{
    BinSummary, ErrorCounts, LagStats, LatencyStats, LogHistogram, Summary, TriggerCounts, SCHEMA,
};
use super::Schedule;
use crate::app::{EventType, TriggerEvent};
use crate::{Error, Result};

/// An event posted to `/events/trigger` during a run (`--trigger AT_S:EVENT_TYPE[:VALUE]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// When, seconds from the start of the run (within the schedule).
    pub at_s: f64,
    /// What.
    pub event_type: EventType,
    /// Its value (default 1).
    pub value: f64,
}

impl std::str::FromStr for Trigger {
    type Err = Error;

    /// Parses `AT_S:EVENT_TYPE[:VALUE]`, e.g. `30:traffic_spike:500`.
    fn from_str(s: &str) -> Result<Trigger> {
        let bad = |msg: String| Error::input("--trigger", format!("`{s}`: {msg}"));
        let mut parts = s.split(':');
        let (Some(at), Some(kind)) = (parts.next(), parts.next()) else {
            return Err(bad("expected AT_S:EVENT_TYPE[:VALUE]".into()));
        };
        let at_s: f64 = at
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{at}` is not a number of seconds")))?;
        if !(at_s.is_finite() && at_s >= 0.0) {
            return Err(bad(format!("time {at_s} must be finite and >= 0 s")));
        }
        let event_type = kind.trim().parse::<EventType>().map_err(bad)?;
        let value = match parts.next() {
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(format!("value `{v}` is not a finite number")))?,
            None => 1.0,
        };
        if parts.next().is_some() {
            return Err(bad(
                "too many `:` fields; expected AT_S:EVENT_TYPE[:VALUE]".into()
            ));
        }
        Ok(Trigger {
            at_s,
            event_type,
            value,
        })
    }
}

/// How a run sends.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// A request without a complete answer after this long counts as a `timeout` error.
    pub timeout: Duration,
    /// At most this many requests outstanding; a request due beyond it is not sent
    /// (`skipped_in_flight`). >= 1.
    pub max_in_flight: usize,
    /// Events sent during the run (needs `trigger_url` or `kafka`).
    pub triggers: Vec<Trigger>,
    /// Full URL of the `/events/trigger` endpoint the events are POSTed to.
    pub trigger_url: Option<Url>,
    /// Produce the events to this Kafka topic instead (key = `trigger_service`); exclusive
    /// with `trigger_url`.
    pub kafka: Option<KafkaSink>,
    /// `service` field of the posted events.
    pub trigger_service: String,
    /// Show an indicatif progress line on stderr (only if stderr is a terminal).
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: Duration::from_secs(10),
            max_in_flight: 10_000,
            triggers: Vec::new(),
            trigger_url: None,
            kafka: None,
            trigger_service: "workload".into(),
            progress: false,
        }
    }
}

/// Parses a target URL (`--target`).
///
/// # Errors
///
/// [`Error::InvalidInput`] naming `--target` if it is not an http(s) URL with a host.
pub fn parse_target(s: &str) -> Result<Url> {
    let url =
        Url::parse(s).map_err(|e| Error::input("--target", format!("`{s}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::input(
            "--target",
            format!("`{s}`: expected an http:// or https:// URL with a host"),
        ));
    }
    Ok(url)
}

#[derive(Debug, Default)]
struct Bin {
    sent: u64,
    ok: u64,
    errors: u64,
    latency: LogHistogram,
}

#[derive(Debug, Default)]
struct Collector {
    errors: ErrorCounts,
    latency: LogHistogram,
    lag: LogHistogram,
    bins: Vec<Bin>,
    triggers: TriggerCounts,
}

#[derive(Debug, Default)]
struct Live {
    sent: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
}

enum Outcome {
    Ok(f64),
    Err(fn(&mut ErrorCounts) -> &mut u64),
}

async fn one_request(client: &reqwest::Client, url: Url) -> Outcome {
    let start = Instant::now();
    let classify = |e: &reqwest::Error| -> Outcome {
        if e.is_timeout() {
            Outcome::Err(|c| &mut c.timeout)
        } else if e.is_connect() {
            Outcome::Err(|c| &mut c.connect)
        } else {
            Outcome::Err(|c| &mut c.other)
        }
    };
    let resp = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return classify(&e),
    };
    let status = resp.status();
    if let Err(e) = resp.bytes().await {
        return classify(&e);
    }
    if status.is_success() {
        Outcome::Ok(start.elapsed().as_secs_f64() * 1000.0)
    } else if status.is_server_error() {
        Outcome::Err(|c| &mut c.status_5xx)
    } else if status.is_client_error() {
        Outcome::Err(|c| &mut c.status_4xx)
    } else {
        Outcome::Err(|c| &mut c.other)
    }
}

fn lock(c: &Mutex<Collector>) -> std::sync::MutexGuard<'_, Collector> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `schedule` against `targets` (round-robin) and returns the summary. Must be called
/// inside a tokio runtime (multi-threaded recommended; see [`run_blocking`]).
///
/// # Errors
///
/// [`Error::InvalidInput`] for no targets (`--target`), `max_in_flight` of 0
/// (`--max-in-flight`), a zero timeout (`--timeout-s`), triggers without a URL or Kafka sink
/// (`--trigger-url`), with both (`--kafka-brokers`) or past the end of the schedule
/// (`--trigger`); [`Error::Setup`] if the HTTP client or the Kafka producer cannot be built.
/// Failed requests and undelivered events are counted, not raised.
pub async fn run(schedule: &Schedule, targets: &[Url], options: &RunOptions) -> Result<Summary> {
    if targets.is_empty() {
        return Err(Error::input(
            "--target",
            "no target given; expected at least one request URL",
        ));
    }
    if options.max_in_flight == 0 {
        return Err(Error::input("--max-in-flight", "expected >= 1"));
    }
    if options.timeout.is_zero() {
        return Err(Error::input("--timeout-s", "expected a timeout > 0 s"));
    }
    if !options.triggers.is_empty() && options.trigger_url.is_none() && options.kafka.is_none() {
        return Err(Error::input(
            "--trigger-url",
            "--trigger needs --trigger-url (the /events/trigger URL) or --kafka-brokers",
        ));
    }
    if options.trigger_url.is_some() && options.kafka.is_some() {
        return Err(Error::input(
            "--kafka-brokers",
            "expected either --kafka-brokers or --trigger-url, not both (events go to one of them)",
        ));
    }
    if let Some(t) = options
        .triggers
        .iter()
        .find(|t| t.at_s > schedule.duration_s())
    {
        return Err(Error::input(
            "--trigger",
            format!(
                "trigger at {} s is past the end of the schedule ({} s)",
                t.at_s,
                schedule.duration_s()
            ),
        ));
    }
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::Setup {
            what: "HTTP client",
            source: Box::new(e),
        })?;
    let producer = match (&options.kafka, options.triggers.is_empty()) {
        (Some(sink), false) => Some(sink.producer(options.timeout)?),
        _ => None,
    };
    let n_bins = schedule.series().values.len();
    let collector = Arc::new(Mutex::new(Collector {
        bins: (0..n_bins).map(|_| Bin::default()).collect(),
        ..Collector::default()
    }));
    let live = Arc::new(Live::default());
    let progress = progress_bar(options.progress, schedule);

    let start = Instant::now();
    let mut trigger_tasks = Vec::new();
    for t in &options.triggers {
        let (client, c) = (client.clone(), collector.clone());
        let url = options
            .trigger_url
            .clone()
            .unwrap_or_else(|| targets[0].clone());
        let body = TriggerEvent {
            event_type: t.event_type,
            service: options.trigger_service.clone(),
            value: t.value,
        };
        let at = start + Duration::from_secs_f64(t.at_s);
        let to_kafka = producer
            .clone()
            .zip(options.kafka.as_ref().map(|k| k.topic.clone()));
        let timeout = options.timeout;
        trigger_tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let ok = match to_kafka {
                Some((p, topic)) => kafka::produce(&p, &topic, &body, timeout).await,
                None => {
                    matches!(client.post(url).json(&body).send().await, Ok(r) if r.status().is_success())
                }
            };
            let mut c = lock(&c);
            c.triggers.sent += 1;
            if ok { c.triggers.ok += 1 } else { c.triggers.errors += 1 }
        }));
    }

    let ticker = progress.clone().map(|pb| {
        let (live, c) = (live.clone(), collector.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let el = start.elapsed().as_secs_f64();
                let sent = live.sent.load(Ordering::Relaxed);
                let p95 = lock(&c).latency.quantile(0.95).unwrap_or(0.0);
                pb.set_position(el as u64);
                pb.set_message(format!(
                    "sent {sent} ({:.0}/s)  ok {}  errors {}  p95 {p95:.1} ms",
                    sent as f64 / el.max(1e-9),
                    live.ok.load(Ordering::Relaxed),
                    live.failed.load(Ordering::Relaxed),
                ));
            }
        })
    });

    let (mut intended, mut skipped) = (0u64, 0u64);
    for (i, offset) in schedule.iter().enumerate() {
        intended += 1;
        let at = start + Duration::from_secs_f64(offset);
        let now = Instant::now();
        if at > now {
            tokio::time::sleep_until(at).await;
        } else if i % 64 == 0 {
            tokio::task::yield_now().await;
        }
        let lag_ms = Instant::now().saturating_duration_since(at).as_secs_f64() * 1000.0;
        let bin = schedule.bin_of(offset);
        lock(&collector).lag.record(lag_ms);
        if live.in_flight.load(Ordering::Relaxed) >= options.max_in_flight as u64 {
            skipped += 1;
            continue;
        }
        live.in_flight.fetch_add(1, Ordering::Relaxed);
        live.sent.fetch_add(1, Ordering::Relaxed);
        lock(&collector).bins[bin].sent += 1;
        let url = targets[i % targets.len()].clone();
        let (client, c, live) = (client.clone(), collector.clone(), live.clone());
        tokio::spawn(async move {
            let outcome = one_request(&client, url).await;
            {
                let mut c = lock(&c);
                match outcome {
                    Outcome::Ok(ms) => {
                        c.latency.record(ms);
                        c.bins[bin].ok += 1;
                        c.bins[bin].latency.record(ms);
                        live.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Err(kind) => {
                        *kind(&mut c.errors) += 1;
                        c.bins[bin].errors += 1;
                        live.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            live.in_flight.fetch_sub(1, Ordering::Relaxed);
        });
    }
    tokio::time::sleep_until(start + Duration::from_secs_f64(schedule.duration_s())).await;
    let duration_s = start.elapsed().as_secs_f64();
    // Every request ends within the client timeout; wait for the stragglers.
    let deadline = Instant::now() + options.timeout + Duration::from_secs(2);
    while live.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in trigger_tasks {
        let _ = t.await;
    }
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }

    let c = lock(&collector);
    let sent = live.sent.load(Ordering::Relaxed);
    let ok: u64 = c.bins.iter().map(|b| b.ok).sum();
    let step = schedule.series().step_s;
    Ok(Summary {
        schema: SCHEMA.into(),
        targets: targets.iter().map(|u| u.to_string()).collect(),
        arrivals: schedule.arrivals(),
        seed: schedule.seed(),
        schedule_duration_s: schedule.duration_s(),
        duration_s,
        intended,
        sent,
        ok,
        errors: c.errors,
        skipped_in_flight: skipped,
        intended_rate_per_s: intended as f64 / schedule.duration_s(),
        achieved_rate_per_s: if duration_s > 0.0 {
            sent as f64 / duration_s
        } else {
            0.0
        },
        send_lag_ms: LagStats {
            p50: c.lag.quantile(0.5),
            p99: c.lag.quantile(0.99),
            max: c.lag.max(),
        },
        latency_ms: LatencyStats {
            p50: c.latency.quantile(0.5),
            p95: c.latency.quantile(0.95),
            p99: c.latency.quantile(0.99),
            max: c.latency.max(),
        },
        triggers: c.triggers,
        bins: c
            .bins
            .iter()
            .enumerate()
            .map(|(i, b)| BinSummary {
                start_s: i as f64 * step,
                intended_rate_per_s: schedule.series().values[i],
                sent: b.sent,
                ok: b.ok,
                errors: b.errors,
                p95_latency_ms: b.latency.quantile(0.95),
            })
            .collect(),
    })
}

fn progress_bar(enabled: bool, schedule: &Schedule) -> Option<indicatif::ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(schedule.duration_s().ceil() as u64);
    let style = indicatif::ProgressStyle::with_template(&format!(
        "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} s  intended {:.0}/s  {{msg}}",
        schedule.expected_requests() / schedule.duration_s()
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    pb.set_style(style);
    Some(pb)
}

/// [`run`] on a new multi-threaded tokio runtime, for callers without one.
///
/// # Errors
///
/// As [`run`]; [`Error::Setup`] if the runtime cannot be built or this is called from inside
/// a tokio runtime (use [`run`] there).
pub fn run_blocking(schedule: &Schedule, targets: &[Url], options: &RunOptions) -> Result<Summary> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Setup {
            what: "tokio runtime",
            source: "run_blocking called inside a tokio runtime; await `run` instead".into(),
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Setup {
            what: "tokio runtime",
            source: Box::new(e),
        })?;
    rt.block_on(run(schedule, targets, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_parse_and_bad_ones_name_the_flag() {
        let t: Trigger = "2.5:traffic_spike:300".parse().unwrap();
        assert_eq!(
            t,
            Trigger {
                at_s: 2.5,
                event_type: EventType::TrafficSpike,
                value: 300.0
            }
        );
        let t: Trigger = "0:scale_up_request".parse().unwrap();
        assert_eq!(t.value, 1.0);
        for bad in [
            "x:traffic_spike",
            "1:boom",
            "1",
            "-1:traffic_spike",
            "1:traffic_spike:x",
            "1:traffic_spike:2:3",
        ] {
            let e = bad.parse::<Trigger>().unwrap_err().to_string();
            assert!(e.contains("--trigger"), "{bad}: {e}");
        }
    }

    #[test]
    fn targets_must_be_http_urls() {
        assert!(parse_target("http://127.0.0.1:8080/work").is_ok());
        for bad in ["127.0.0.1:8080", "ftp://x/y", "not a url"] {
            let e = parse_target(bad).unwrap_err().to_string();
            assert!(e.contains("--target"), "{e}");
        }
    }
}
