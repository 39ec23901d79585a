//! Result records of an evaluation run and their CSV files.
//!
//! These are the rows of the files `nimbusguard run` writes (`../shared/DESIGN.md`, section 6):
//!
//! | type               | file              | one row per                       |
//! |--------------------|-------------------|-----------------------------------|
//! | [`EpisodeRecord`]  | `episodes.csv`    | agent x seed (evaluation episode) |
//! | [`TickRecord`]     | `timeseries.csv`  | agent x seed x tick (or interval) |
//! | [`TrainingPoint`]  | `training.csv`    | agent x training episode          |
//!
//! Every file starts with a header row, also when there are no records, so that a reader always
//! finds the columns. Column names are the field names; the metric `return_` is written as
//! `return`. `episodes.csv` is flat: `agent,kind,seed`, then the nine [`METRIC_NAMES`], then
//! `ticks,arrivals_total,served_total,dropped_total,backlog_end,anomaly_flags` (the last empty
//! without an `[anomaly]` detector). Floats that are not a number
//! are written as `NaN`.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Names of the per-episode metrics, in column order; also the keys of `summary.json`'s
/// `metrics` objects. See [`EpisodeMetrics`] for units.
pub const METRIC_NAMES: [&str; 9] = [
    "pod_hours",
    "cpu_core_hours",
    "slo_violation_pct",
    "p95_latency_ms",
    "p99_latency_ms",
    "dropped_pct",
    "scaling_actions",
    "cpu_utilization_mean",
    "return",
];

/// Whether a smaller value of metric `name` is better.
///
/// Every metric in [`METRIC_NAMES`] is a cost (lower is better) except `return` and
/// `cpu_utilization_mean`, where higher is better. Returns `None` for an unknown name.
pub fn lower_is_better(name: &str) -> Option<bool> {
    match name {
        "return" | "cpu_utilization_mean" => Some(false),
        n if METRIC_NAMES.contains(&n) => Some(true),
        _ => None,
    }
}

/// The metrics of one evaluation episode (one agent, one seed), each a plain `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EpisodeMetrics {
    /// Pod time paid for, in pod-hours: the sum over ticks of the billed pods (pods occupying a
    /// node, terminating ones included) x tick length in hours. Lower is better.
    pub pod_hours: f64,
    /// Requested CPU of the billed pods integrated over time, in core-hours: the sum over ticks
    /// of their CPU requests (cores) x tick length in hours. Lower is better.
    pub cpu_core_hours: f64,
    /// Share of evaluation time, in percent (0-100), during which the SLO was violated: p95
    /// latency above the SLO or more than 1% of requests dropped. Lower is better.
    pub slo_violation_pct: f64,
    /// 95th percentile of request latency over the episode, in milliseconds. Lower is better.
    pub p95_latency_ms: f64,
    /// 99th percentile of request latency over the episode, in milliseconds. Lower is better.
    pub p99_latency_ms: f64,
    /// Dropped requests as a percentage (0-100) of arrived requests. Lower is better.
    pub dropped_pct: f64,
    /// Number of times the desired replica count changed (count). Lower is better.
    pub scaling_actions: f64,
    /// Mean CPU utilization of ready pods as a fraction of their CPU request (as the HPA measures
    /// it; 1.0 = 100% of the request, can exceed 1). Higher is better.
    pub cpu_utilization_mean: f64,
    /// Undiscounted sum of the environment's rewards over the episode (unitless; depends on the
    /// reward function). Higher is better. Serialized as `return`.
    #[serde(rename = "return")]
    pub return_: f64,
}

impl EpisodeMetrics {
    /// The value of the metric called `name` (one of [`METRIC_NAMES`]), or `None` for an unknown
    /// name.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "pod_hours" => self.pod_hours,
            "cpu_core_hours" => self.cpu_core_hours,
            "slo_violation_pct" => self.slo_violation_pct,
            "p95_latency_ms" => self.p95_latency_ms,
            "p99_latency_ms" => self.p99_latency_ms,
            "dropped_pct" => self.dropped_pct,
            "scaling_actions" => self.scaling_actions,
            "cpu_utilization_mean" => self.cpu_utilization_mean,
            "return" => self.return_,
            _ => return None,
        })
    }

    /// The metric values in the order of [`METRIC_NAMES`].
    pub fn values(&self) -> [f64; 9] {
        [
            self.pod_hours,
            self.cpu_core_hours,
            self.slo_violation_pct,
            self.p95_latency_ms,
            self.p99_latency_ms,
            self.dropped_pct,
            self.scaling_actions,
            self.cpu_utilization_mean,
            self.return_,
        ]
    }
}

/// One evaluation episode of one agent on one seed: a row of `episodes.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// Agent name, unique within the experiment (the config's `[[agents]] name`).
    pub agent: String,
    /// Agent kind (`hpa`, `static`, `threshold`, `q-learning`, ...).
    pub kind: String,
    /// Evaluation seed; records of different agents with the same seed saw the same traffic.
    pub seed: u64,
    /// The episode's metrics.
    pub metrics: EpisodeMetrics,
    /// Number of simulator ticks in the episode.
    pub ticks: u64,
    /// Requests that arrived during the episode (count).
    pub arrivals_total: f64,
    /// Requests served during the episode (count).
    pub served_total: f64,
    /// Requests dropped during the episode (count).
    pub dropped_total: f64,
    /// Requests still waiting in the backlog at the end of the episode (count).
    pub backlog_end: f64,
    /// Decisions at which the `[anomaly]` detector flagged the scraped request rate (count;
    /// `None`, an empty CSV cell, without a detector).
    pub anomaly_flags: Option<u64>,
}

/// The flat CSV form of [`EpisodeRecord`] (the csv crate cannot flatten nested structs).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EpisodeRow {
    agent: String,
    kind: String,
    seed: u64,
    pod_hours: f64,
    cpu_core_hours: f64,
    slo_violation_pct: f64,
    p95_latency_ms: f64,
    p99_latency_ms: f64,
    dropped_pct: f64,
    scaling_actions: f64,
    cpu_utilization_mean: f64,
    #[serde(rename = "return")]
    return_: f64,
    ticks: u64,
    arrivals_total: f64,
    served_total: f64,
    dropped_total: f64,
    backlog_end: f64,
    #[serde(default)]
    anomaly_flags: Option<u64>,
}

impl From<&EpisodeRecord> for EpisodeRow {
    fn from(r: &EpisodeRecord) -> Self {
        let m = &r.metrics;
        EpisodeRow {
            agent: r.agent.clone(),
            kind: r.kind.clone(),
            seed: r.seed,
            pod_hours: m.pod_hours,
            cpu_core_hours: m.cpu_core_hours,
            slo_violation_pct: m.slo_violation_pct,
            p95_latency_ms: m.p95_latency_ms,
            p99_latency_ms: m.p99_latency_ms,
            dropped_pct: m.dropped_pct,
            scaling_actions: m.scaling_actions,
            cpu_utilization_mean: m.cpu_utilization_mean,
            return_: m.return_,
            ticks: r.ticks,
            arrivals_total: r.arrivals_total,
            served_total: r.served_total,
            dropped_total: r.dropped_total,
            backlog_end: r.backlog_end,
            anomaly_flags: r.anomaly_flags,
        }
    }
}

impl From<EpisodeRow> for EpisodeRecord {
    fn from(r: EpisodeRow) -> Self {
        EpisodeRecord {
            agent: r.agent,
            kind: r.kind,
            seed: r.seed,
            metrics: EpisodeMetrics {
                pod_hours: r.pod_hours,
                cpu_core_hours: r.cpu_core_hours,
                slo_violation_pct: r.slo_violation_pct,
                p95_latency_ms: r.p95_latency_ms,
                p99_latency_ms: r.p99_latency_ms,
                dropped_pct: r.dropped_pct,
                scaling_actions: r.scaling_actions,
                cpu_utilization_mean: r.cpu_utilization_mean,
                return_: r.return_,
            },
            ticks: r.ticks,
            arrivals_total: r.arrivals_total,
            served_total: r.served_total,
            dropped_total: r.dropped_total,
            backlog_end: r.backlog_end,
            anomaly_flags: r.anomaly_flags,
        }
    }
}

/// Column names of `episodes.csv`, in order.
pub const EPISODE_COLUMNS: [&str; 18] = [
    "agent",
    "kind",
    "seed",
    "pod_hours",
    "cpu_core_hours",
    "slo_violation_pct",
    "p95_latency_ms",
    "p99_latency_ms",
    "dropped_pct",
    "scaling_actions",
    "cpu_utilization_mean",
    "return",
    "ticks",
    "arrivals_total",
    "served_total",
    "dropped_total",
    "backlog_end",
    "anomaly_flags",
];

/// The state of one agent's simulation over one tick, or over `output.timeseries_interval_s`
/// (ticks aggregated): a row of `timeseries.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickRecord {
    /// Agent name.
    pub agent: String,
    /// Evaluation seed.
    pub seed: u64,
    /// Time since the start of the evaluation episode, in seconds (end of the tick).
    pub time_s: f64,
    /// Request arrival rate during the tick, in requests per second.
    pub arrival_rps: f64,
    /// Requests served during the tick, in requests per second.
    pub served_rps: f64,
    /// Requests dropped during the tick, in requests per second.
    pub dropped_rps: f64,
    /// Requests waiting in the backlog at the end of the tick (count).
    pub backlog: f64,
    /// Desired replica count of the Deployment (what the autoscaler asked for).
    pub desired_replicas: u32,
    /// Replicas Ready to serve.
    pub ready_replicas: u32,
    /// Replicas created but not Ready yet (Pending, Starting or not ready).
    pub pending_replicas: u32,
    /// CPU utilization of ready pods as a fraction of their CPU request (1.0 = 100%).
    pub cpu_utilization: f64,
    /// Median request latency during the tick, in milliseconds.
    pub p50_latency_ms: f64,
    /// 95th percentile request latency during the tick, in milliseconds.
    pub p95_latency_ms: f64,
    /// 99th percentile request latency during the tick, in milliseconds.
    pub p99_latency_ms: f64,
    /// Whether the SLO was violated during the tick (p95 over the SLO or drops over 1%).
    pub slo_violated: bool,
}

/// Column names of `timeseries.csv`, in order.
pub const TICK_COLUMNS: [&str; 15] = [
    "agent",
    "seed",
    "time_s",
    "arrival_rps",
    "served_rps",
    "dropped_rps",
    "backlog",
    "desired_replicas",
    "ready_replicas",
    "pending_replicas",
    "cpu_utilization",
    "p50_latency_ms",
    "p95_latency_ms",
    "p99_latency_ms",
    "slo_violated",
];

/// One training episode of a learning agent: a row of `training.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingPoint {
    /// Agent name.
    pub agent: String,
    /// Training episode index, from 0.
    pub episode: u64,
    /// Undiscounted episode return (sum of rewards). Serialized as `return`.
    #[serde(rename = "return")]
    pub return_: f64,
    /// Exploration rate (epsilon of epsilon-greedy) during the episode, in [0, 1].
    pub epsilon: f64,
    /// Mean loss of the gradient updates made during the episode (DQN's Huber loss); empty for
    /// agents without one (Q-learning) or an episode without updates.
    pub loss: Option<f64>,
}

/// Column names of `training.csv`, in order.
pub const TRAINING_COLUMNS: [&str; 5] = ["agent", "episode", "return", "epsilon", "loss"];

/// Writes `rows` as CSV to `path` with the header `columns` (written even when `rows` is empty).
fn write_csv<T: Serialize>(
    path: &Path,
    columns: &[&str],
    rows: impl IntoIterator<Item = T>,
) -> anyhow::Result<()> {
    let write = || -> anyhow::Result<()> {
        let file = File::create(path)?;
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(file));
        w.write_record(columns)?;
        for row in rows {
            w.serialize(row)?;
        }
        w.flush()?;
        Ok(())
    };
    write().with_context(|| format!("while writing {}", path.display()))
}

/// Reads all rows of the CSV file at `path` (with a header row).
fn read_csv<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let read = || -> anyhow::Result<Vec<T>> {
        let file = File::open(path)?;
        let mut r = csv::Reader::from_reader(BufReader::new(file));
        let mut out = Vec::new();
        for row in r.deserialize() {
            out.push(row?);
        }
        Ok(out)
    };
    read().with_context(|| format!("while reading {}", path.display()))
}

/// Writes `episodes.csv`: one row per record, columns [`EPISODE_COLUMNS`].
pub fn write_episodes_csv(path: impl AsRef<Path>, records: &[EpisodeRecord]) -> anyhow::Result<()> {
    write_csv(
        path.as_ref(),
        &EPISODE_COLUMNS,
        records.iter().map(EpisodeRow::from),
    )
}

/// Reads an `episodes.csv` written by [`write_episodes_csv`].
pub fn read_episodes_csv(path: impl AsRef<Path>) -> anyhow::Result<Vec<EpisodeRecord>> {
    let rows: Vec<EpisodeRow> = read_csv(path.as_ref())?;
    Ok(rows.into_iter().map(EpisodeRecord::from).collect())
}

/// Writes `timeseries.csv`: one row per tick record, columns [`TICK_COLUMNS`].
pub fn write_timeseries_csv(path: impl AsRef<Path>, ticks: &[TickRecord]) -> anyhow::Result<()> {
    write_csv(path.as_ref(), &TICK_COLUMNS, ticks)
}

/// Reads a `timeseries.csv` written by [`write_timeseries_csv`].
pub fn read_timeseries_csv(path: impl AsRef<Path>) -> anyhow::Result<Vec<TickRecord>> {
    read_csv(path.as_ref())
}

/// Writes `training.csv`: one row per training episode, columns [`TRAINING_COLUMNS`].
pub fn write_training_csv(path: impl AsRef<Path>, points: &[TrainingPoint]) -> anyhow::Result<()> {
    write_csv(path.as_ref(), &TRAINING_COLUMNS, points)
}

/// Reads a `training.csv` written by [`write_training_csv`].
pub fn read_training_csv(path: impl AsRef<Path>) -> anyhow::Result<Vec<TrainingPoint>> {
    read_csv(path.as_ref())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A unique scratch directory under the system temp dir for one test.
    pub(crate) fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("nimbusguard-test-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub(crate) fn episode(agent: &str, kind: &str, seed: u64, pod_hours: f64) -> EpisodeRecord {
        EpisodeRecord {
            agent: agent.into(),
            kind: kind.into(),
            seed,
            metrics: EpisodeMetrics {
                pod_hours,
                cpu_core_hours: pod_hours * 0.5,
                slo_violation_pct: 1.0 + seed as f64,
                p95_latency_ms: 120.0,
                p99_latency_ms: 250.0,
                dropped_pct: 0.1,
                scaling_actions: 12.0,
                cpu_utilization_mean: 0.62,
                return_: -3.5,
            },
            ticks: 3600,
            arrivals_total: 1.0e6,
            served_total: 999_000.0,
            dropped_total: 1000.0,
            backlog_end: 0.0,
            anomaly_flags: None,
        }
    }

    #[test]
    fn metric_names_match_get_and_values() {
        let m = episode("a", "hpa", 1, 7.0).metrics;
        for (i, name) in METRIC_NAMES.iter().enumerate() {
            assert_eq!(m.get(name), Some(m.values()[i]), "{name}");
            assert!(lower_is_better(name).is_some());
        }
        assert_eq!(m.get("nope"), None);
        assert_eq!(lower_is_better("return"), Some(false));
        assert_eq!(lower_is_better("cpu_utilization_mean"), Some(false));
        assert_eq!(lower_is_better("pod_hours"), Some(true));
        assert_eq!(lower_is_better("nope"), None);
        // The metric columns of episodes.csv are METRIC_NAMES, in order.
        assert_eq!(&EPISODE_COLUMNS[3..12], &METRIC_NAMES[..]);
    }

    #[test]
    fn metrics_serialize_return_without_underscore() {
        let json = serde_json::to_value(EpisodeMetrics::default()).unwrap();
        assert!(json.get("return").is_some());
        assert!(json.get("return_").is_none());
    }

    #[test]
    fn episodes_csv_round_trips_with_flat_header() {
        let dir = scratch_dir("episodes");
        let path = dir.join("episodes.csv");
        let mut recs = vec![
            episode("hpa", "hpa", 1, 10.0),
            episode("q", "q-learning", 2, 8.5),
        ];
        recs[1].metrics.p99_latency_ms = f64::NAN;
        write_episodes_csv(&path, &recs).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next().unwrap(), EPISODE_COLUMNS.join(","));
        assert_eq!(text.lines().count(), 3);
        let back = read_episodes_csv(&path).unwrap();
        assert_eq!(back[0], recs[0]);
        assert!(back[1].metrics.p99_latency_ms.is_nan());
        assert_eq!(back[1].metrics.pod_hours, 8.5);
        assert_eq!(back[1].kind, "q-learning");
    }

    #[test]
    fn timeseries_and_training_csv_round_trip() {
        let dir = scratch_dir("ticks");
        let tick = TickRecord {
            agent: "hpa".into(),
            seed: 3,
            time_s: 15.0,
            arrival_rps: 100.5,
            served_rps: 99.0,
            dropped_rps: 1.5,
            backlog: 4.0,
            desired_replicas: 5,
            ready_replicas: 4,
            pending_replicas: 1,
            cpu_utilization: 0.8,
            p50_latency_ms: 20.0,
            p95_latency_ms: 80.0,
            p99_latency_ms: 150.0,
            slo_violated: true,
        };
        let path = dir.join("timeseries.csv");
        write_timeseries_csv(&path, std::slice::from_ref(&tick)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next().unwrap(), TICK_COLUMNS.join(","));
        assert_eq!(read_timeseries_csv(&path).unwrap(), vec![tick]);

        let pts = vec![
            TrainingPoint {
                agent: "q".into(),
                episode: 0,
                return_: -10.0,
                epsilon: 1.0,
                loss: None,
            },
            TrainingPoint {
                agent: "q".into(),
                episode: 1,
                return_: -8.0,
                epsilon: 0.995,
                loss: Some(0.25),
            },
        ];
        let path = dir.join("training.csv");
        write_training_csv(&path, &pts).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "agent,episode,return,epsilon,loss"
        );
        assert_eq!(read_training_csv(&path).unwrap(), pts);
    }

    #[test]
    fn empty_files_still_have_a_header() {
        let dir = scratch_dir("empty");
        let path = dir.join("episodes.csv");
        write_episodes_csv(&path, &[]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            EPISODE_COLUMNS.join(",")
        );
        assert!(read_episodes_csv(&path).unwrap().is_empty());
    }

    #[test]
    fn write_error_names_the_path() {
        let err = write_training_csv("/nonexistent-dir/x/training.csv", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent-dir/x/training.csv"));
    }
}
