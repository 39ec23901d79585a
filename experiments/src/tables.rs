//! Results as tables: the records of a run as polars DataFrames and Parquet files.
//!
//! Next to its CSVs ([`crate::records`]), every run writes the same rows as Parquet, typed, with
//! the same column names in the same order (schema: `docs/results.md`):
//!
//! | file                 | records            | one row per                       |
//! |----------------------|--------------------|-----------------------------------|
//! | `episodes.parquet`   | [`EpisodeRecord`]  | agent x seed (evaluation episode) |
//! | `timeseries.parquet` | [`TickRecord`]     | agent x seed x tick (or interval) |
//! | `training.parquet`   | [`TrainingPoint`]  | agent x training episode          |
//!
//! Types: names (`agent`, `kind`) are `String`; counts and seeds `UInt64`; replica counts
//! `UInt32`; measurements `Float64` (NaN kept as NaN); `slo_violated` `Boolean`. Only
//! `anomaly_flags` (no detector) and `loss` (no gradient update) may be null. Files are
//! zstd-compressed. [`crate::result_dir`] loads a result folder from these files, or from the CSVs
//! of folders written before they existed.
//!
//! ```
//! use experiments::records::{EpisodeMetrics, EpisodeRecord};
//! use experiments::tables::{episodes_frame, read_episodes_parquet, write_episodes_parquet};
//!
//! let rec = EpisodeRecord {
//!     agent: "hpa".into(),
//!     kind: "hpa".into(),
//!     seed: 1000,
//!     metrics: EpisodeMetrics { pod_hours: 12.5, ..Default::default() },
//!     ticks: 3600,
//!     arrivals_total: 1e5,
//!     served_total: 1e5,
//!     dropped_total: 0.0,
//!     backlog_end: 0.0,
//!     anomaly_flags: None,
//! };
//! let df = episodes_frame(std::slice::from_ref(&rec)).unwrap();
//! assert_eq!(df.shape(), (1, 18));
//! let path = std::env::temp_dir().join(format!("doc-episodes-{}.parquet", std::process::id()));
//! write_episodes_parquet(&path, std::slice::from_ref(&rec)).unwrap();
//! assert_eq!(read_episodes_parquet(&path).unwrap(), vec![rec]);
//! # std::fs::remove_file(&path).unwrap();
//! ```

use std::fs::File;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::{Column, DataFrame, DataType, ParquetReader, ParquetWriter, SerReader};

use crate::records::{
    EpisodeMetrics, EpisodeRecord, TickRecord, TrainingPoint, EPISODE_COLUMNS, METRIC_NAMES,
    TICK_COLUMNS, TRAINING_COLUMNS,
};

/// File name of the per-episode table.
pub const EPISODES_PARQUET: &str = "episodes.parquet";
/// File name of the per-tick table.
pub const TIMESERIES_PARQUET: &str = "timeseries.parquet";
/// File name of the training-curve table.
pub const TRAINING_PARQUET: &str = "training.parquet";

/// A named column of `values` (anything polars builds a column from: `Vec<f64>`, `Vec<&str>`,
/// `Vec<Option<u64>>`, ...).
fn col<T, P>(name: &str, values: T) -> Column
where
    polars::prelude::Series: polars::prelude::NamedFrom<T, P>,
    P: ?Sized,
{
    Column::new(name.into(), values)
}

/// The frame of `columns`, all of length `height`.
fn frame(height: usize, columns: Vec<Column>) -> Result<DataFrame> {
    DataFrame::new(height, columns).context("cannot build the table")
}

/// `records` as a DataFrame with the columns of `episodes.csv` ([`EPISODE_COLUMNS`], in order):
/// `agent`, `kind` String; `seed`, `ticks` UInt64; the nine metrics and the request totals
/// Float64; `anomaly_flags` UInt64, null without a detector. One row per record.
///
/// # Errors
/// Never in practice (the columns are built with equal lengths); polars' error otherwise.
pub fn episodes_frame(records: &[EpisodeRecord]) -> Result<DataFrame> {
    let f = |get: fn(&EpisodeRecord) -> f64| records.iter().map(get).collect::<Vec<f64>>();
    let mut columns = vec![
        col(
            "agent",
            records.iter().map(|r| r.agent.as_str()).collect::<Vec<_>>(),
        ),
        col(
            "kind",
            records.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ),
        col("seed", records.iter().map(|r| r.seed).collect::<Vec<u64>>()),
    ];
    for (i, name) in METRIC_NAMES.iter().enumerate() {
        let values: Vec<f64> = records.iter().map(|r| r.metrics.values()[i]).collect();
        columns.push(col(name, values));
    }
    columns.extend([
        col(
            "ticks",
            records.iter().map(|r| r.ticks).collect::<Vec<u64>>(),
        ),
        col("arrivals_total", f(|r| r.arrivals_total)),
        col("served_total", f(|r| r.served_total)),
        col("dropped_total", f(|r| r.dropped_total)),
        col("backlog_end", f(|r| r.backlog_end)),
        col(
            "anomaly_flags",
            records
                .iter()
                .map(|r| r.anomaly_flags)
                .collect::<Vec<Option<u64>>>(),
        ),
    ]);
    frame(records.len(), columns)
}

/// `ticks` as a DataFrame with the columns of `timeseries.csv` ([`TICK_COLUMNS`], in order):
/// `agent` String; `seed` UInt64; rates, backlog, utilization and latencies Float64; replica
/// counts UInt32; `slo_violated` Boolean. One row per record.
///
/// # Errors
/// Never in practice; polars' error otherwise.
pub fn timeseries_frame(ticks: &[TickRecord]) -> Result<DataFrame> {
    let f = |get: fn(&TickRecord) -> f64| ticks.iter().map(get).collect::<Vec<f64>>();
    let u = |get: fn(&TickRecord) -> u32| ticks.iter().map(get).collect::<Vec<u32>>();
    let columns = vec![
        col(
            "agent",
            ticks.iter().map(|t| t.agent.as_str()).collect::<Vec<_>>(),
        ),
        col("seed", ticks.iter().map(|t| t.seed).collect::<Vec<u64>>()),
        col("time_s", f(|t| t.time_s)),
        col("arrival_rps", f(|t| t.arrival_rps)),
        col("served_rps", f(|t| t.served_rps)),
        col("dropped_rps", f(|t| t.dropped_rps)),
        col("backlog", f(|t| t.backlog)),
        col("desired_replicas", u(|t| t.desired_replicas)),
        col("ready_replicas", u(|t| t.ready_replicas)),
        col("pending_replicas", u(|t| t.pending_replicas)),
        col("cpu_utilization", f(|t| t.cpu_utilization)),
        col("p50_latency_ms", f(|t| t.p50_latency_ms)),
        col("p95_latency_ms", f(|t| t.p95_latency_ms)),
        col("p99_latency_ms", f(|t| t.p99_latency_ms)),
        col(
            "slo_violated",
            ticks.iter().map(|t| t.slo_violated).collect::<Vec<bool>>(),
        ),
    ];
    frame(ticks.len(), columns)
}

/// `points` as a DataFrame with the columns of `training.csv` ([`TRAINING_COLUMNS`]): `agent`
/// String, `episode` UInt64, `return` and `epsilon` Float64, `loss` Float64 (null without a
/// gradient update). One row per point.
///
/// # Errors
/// Never in practice; polars' error otherwise.
pub fn training_frame(points: &[TrainingPoint]) -> Result<DataFrame> {
    let columns = vec![
        col(
            "agent",
            points.iter().map(|p| p.agent.as_str()).collect::<Vec<_>>(),
        ),
        col(
            "episode",
            points.iter().map(|p| p.episode).collect::<Vec<u64>>(),
        ),
        col(
            "return",
            points.iter().map(|p| p.return_).collect::<Vec<f64>>(),
        ),
        col(
            "epsilon",
            points.iter().map(|p| p.epsilon).collect::<Vec<f64>>(),
        ),
        col(
            "loss",
            points.iter().map(|p| p.loss).collect::<Vec<Option<f64>>>(),
        ),
    ];
    frame(points.len(), columns)
}

/// Writes `df` to the Parquet file at `path` (zstd-compressed), replacing it.
///
/// # Errors
/// The file cannot be created or written (the path is named).
pub fn write_parquet(path: impl AsRef<Path>, df: &mut DataFrame) -> Result<()> {
    let path = path.as_ref();
    let mut write = || -> Result<()> {
        let file = File::create(path)?;
        // Sequential: the files are small, and the bytes do not depend on a thread pool.
        ParquetWriter::new(file).set_parallel(false).finish(df)?;
        Ok(())
    };
    write().with_context(|| format!("while writing {}", path.display()))
}

/// Reads the Parquet file at `path` into a DataFrame.
///
/// # Errors
/// The file cannot be opened or is not Parquet (the path is named).
pub fn read_parquet(path: impl AsRef<Path>) -> Result<DataFrame> {
    let path = path.as_ref();
    let read = || -> Result<DataFrame> {
        let file = File::open(path)?;
        Ok(ParquetReader::new(file).finish()?)
    };
    read().with_context(|| format!("while reading {}", path.display()))
}

/// Writes `episodes.parquet` (see [`episodes_frame`]) at `path`.
///
/// # Errors
/// As [`write_parquet`].
pub fn write_episodes_parquet(path: impl AsRef<Path>, records: &[EpisodeRecord]) -> Result<()> {
    write_parquet(path, &mut episodes_frame(records)?)
}

/// Writes `timeseries.parquet` (see [`timeseries_frame`]) at `path`.
///
/// # Errors
/// As [`write_parquet`].
pub fn write_timeseries_parquet(path: impl AsRef<Path>, ticks: &[TickRecord]) -> Result<()> {
    write_parquet(path, &mut timeseries_frame(ticks)?)
}

/// Writes `training.parquet` (see [`training_frame`]) at `path`.
///
/// # Errors
/// As [`write_parquet`].
pub fn write_training_parquet(path: impl AsRef<Path>, points: &[TrainingPoint]) -> Result<()> {
    write_parquet(path, &mut training_frame(points)?)
}

/// Writes the three tables of a run into `dir`: [`EPISODES_PARQUET`], [`TIMESERIES_PARQUET`],
/// [`TRAINING_PARQUET`] (each also when it has no rows, so readers always find the columns).
///
/// # Errors
/// A file cannot be written (its path is named).
pub fn write_tables(
    dir: &Path,
    episodes: &[EpisodeRecord],
    ticks: &[TickRecord],
    training: &[TrainingPoint],
) -> Result<()> {
    write_episodes_parquet(dir.join(EPISODES_PARQUET), episodes)?;
    write_timeseries_parquet(dir.join(TIMESERIES_PARQUET), ticks)?;
    write_training_parquet(dir.join(TRAINING_PARQUET), training)
}

/// The column `name` of `df` (read from `file`), checked to have type `want`.
fn typed<'a>(df: &'a DataFrame, file: &Path, name: &str, want: &DataType) -> Result<&'a Column> {
    let c = df
        .column(name)
        .map_err(|_| anyhow!("{}: no column `{name}` (expected {want:?})", file.display()))?;
    if c.dtype() != want {
        bail!(
            "{}: column `{name}` is {:?}, expected {want:?} (docs/results.md)",
            file.display(),
            c.dtype()
        );
    }
    Ok(c)
}

/// The values of a column without nulls; a null is an error naming `file`, `name` and the row
/// (1-based, as in the CSV without its header).
fn required<T>(file: &Path, name: &str, values: impl Iterator<Item = Option<T>>) -> Result<Vec<T>> {
    values
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| {
                anyhow!(
                    "{}: column `{name}`, row {}: null, expected a value",
                    file.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// Typed access to the columns of one table read from `file`.
struct Table<'a> {
    df: &'a DataFrame,
    file: &'a Path,
}

impl Table<'_> {
    fn strings(&self, name: &str) -> Result<Vec<String>> {
        let c = typed(self.df, self.file, name, &DataType::String)?.str()?;
        required(self.file, name, c.iter().map(|v| v.map(String::from)))
    }
    fn u64s(&self, name: &str) -> Result<Vec<u64>> {
        let c = typed(self.df, self.file, name, &DataType::UInt64)?.u64()?;
        required(self.file, name, c.iter())
    }
    fn opt_u64s(&self, name: &str) -> Result<Vec<Option<u64>>> {
        let c = typed(self.df, self.file, name, &DataType::UInt64)?.u64()?;
        Ok(c.iter().collect())
    }
    fn u32s(&self, name: &str) -> Result<Vec<u32>> {
        let c = typed(self.df, self.file, name, &DataType::UInt32)?.u32()?;
        required(self.file, name, c.iter())
    }
    fn f64s(&self, name: &str) -> Result<Vec<f64>> {
        let c = typed(self.df, self.file, name, &DataType::Float64)?.f64()?;
        required(self.file, name, c.iter())
    }
    fn opt_f64s(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let c = typed(self.df, self.file, name, &DataType::Float64)?.f64()?;
        Ok(c.iter().collect())
    }
    fn bools(&self, name: &str) -> Result<Vec<bool>> {
        let c = typed(self.df, self.file, name, &DataType::Boolean)?.bool()?;
        required(self.file, name, c.iter())
    }
}

/// Checks that `df` has exactly the columns `want`, in order.
fn check_columns(df: &DataFrame, file: &Path, want: &[&str]) -> Result<()> {
    let got: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
    if got != want {
        bail!(
            "{}: columns {got:?}, expected {want:?} (docs/results.md)",
            file.display()
        );
    }
    Ok(())
}

/// Episode records from a DataFrame laid out as [`episodes_frame`] writes it (`file` names
/// its source in errors).
///
/// # Errors
/// A column is missing, of another type or out of order, or a null where a value is required;
/// the message names `file`, the column and the row.
pub fn episodes_from_frame(df: &DataFrame, file: &Path) -> Result<Vec<EpisodeRecord>> {
    check_columns(df, file, &EPISODE_COLUMNS)?;
    let t = Table { df, file };
    let (agent, kind, seed) = (t.strings("agent")?, t.strings("kind")?, t.u64s("seed")?);
    let m: Vec<Vec<f64>> = METRIC_NAMES
        .iter()
        .map(|name| t.f64s(name))
        .collect::<Result<_>>()?;
    let ticks = t.u64s("ticks")?;
    let [arrivals, served, dropped, backlog] = [
        "arrivals_total",
        "served_total",
        "dropped_total",
        "backlog_end",
    ]
    .map(|n| t.f64s(n));
    let (arrivals, served, dropped, backlog) = (arrivals?, served?, dropped?, backlog?);
    let flags = t.opt_u64s("anomaly_flags")?;
    Ok((0..df.height())
        .map(|i| EpisodeRecord {
            agent: agent[i].clone(),
            kind: kind[i].clone(),
            seed: seed[i],
            metrics: EpisodeMetrics {
                pod_hours: m[0][i],
                cpu_core_hours: m[1][i],
                slo_violation_pct: m[2][i],
                p95_latency_ms: m[3][i],
                p99_latency_ms: m[4][i],
                dropped_pct: m[5][i],
                scaling_actions: m[6][i],
                cpu_utilization_mean: m[7][i],
                return_: m[8][i],
            },
            ticks: ticks[i],
            arrivals_total: arrivals[i],
            served_total: served[i],
            dropped_total: dropped[i],
            backlog_end: backlog[i],
            anomaly_flags: flags[i],
        })
        .collect())
}

/// Tick records from a DataFrame laid out as [`timeseries_frame`] writes it.
///
/// # Errors
/// As [`episodes_from_frame`].
pub fn timeseries_from_frame(df: &DataFrame, file: &Path) -> Result<Vec<TickRecord>> {
    check_columns(df, file, &TICK_COLUMNS)?;
    let t = Table { df, file };
    let (agent, seed) = (t.strings("agent")?, t.u64s("seed")?);
    let f: Vec<Vec<f64>> = [
        "time_s",
        "arrival_rps",
        "served_rps",
        "dropped_rps",
        "backlog",
        "cpu_utilization",
        "p50_latency_ms",
        "p95_latency_ms",
        "p99_latency_ms",
    ]
    .iter()
    .map(|n| t.f64s(n))
    .collect::<Result<_>>()?;
    let u: Vec<Vec<u32>> = ["desired_replicas", "ready_replicas", "pending_replicas"]
        .iter()
        .map(|n| t.u32s(n))
        .collect::<Result<_>>()?;
    let slo = t.bools("slo_violated")?;
    Ok((0..df.height())
        .map(|i| TickRecord {
            agent: agent[i].clone(),
            seed: seed[i],
            time_s: f[0][i],
            arrival_rps: f[1][i],
            served_rps: f[2][i],
            dropped_rps: f[3][i],
            backlog: f[4][i],
            desired_replicas: u[0][i],
            ready_replicas: u[1][i],
            pending_replicas: u[2][i],
            cpu_utilization: f[5][i],
            p50_latency_ms: f[6][i],
            p95_latency_ms: f[7][i],
            p99_latency_ms: f[8][i],
            slo_violated: slo[i],
        })
        .collect())
}

/// Training points from a DataFrame laid out as [`training_frame`] writes it.
///
/// # Errors
/// As [`episodes_from_frame`].
pub fn training_from_frame(df: &DataFrame, file: &Path) -> Result<Vec<TrainingPoint>> {
    check_columns(df, file, &TRAINING_COLUMNS)?;
    let t = Table { df, file };
    let (agent, episode) = (t.strings("agent")?, t.u64s("episode")?);
    let (ret, eps, loss) = (t.f64s("return")?, t.f64s("epsilon")?, t.opt_f64s("loss")?);
    Ok((0..df.height())
        .map(|i| TrainingPoint {
            agent: agent[i].clone(),
            episode: episode[i],
            return_: ret[i],
            epsilon: eps[i],
            loss: loss[i],
        })
        .collect())
}

/// Reads an `episodes.parquet` written by [`write_episodes_parquet`].
///
/// # Errors
/// The file cannot be read, or its columns are not those of [`episodes_frame`] (file, column
/// and row named).
pub fn read_episodes_parquet(path: impl AsRef<Path>) -> Result<Vec<EpisodeRecord>> {
    let path = path.as_ref();
    episodes_from_frame(&read_parquet(path)?, path)
}

/// Reads a `timeseries.parquet` written by [`write_timeseries_parquet`].
///
/// # Errors
/// As [`read_episodes_parquet`].
pub fn read_timeseries_parquet(path: impl AsRef<Path>) -> Result<Vec<TickRecord>> {
    let path = path.as_ref();
    timeseries_from_frame(&read_parquet(path)?, path)
}

/// Reads a `training.parquet` written by [`write_training_parquet`].
///
/// # Errors
/// As [`read_episodes_parquet`].
pub fn read_training_parquet(path: impl AsRef<Path>) -> Result<Vec<TrainingPoint>> {
    let path = path.as_ref();
    training_from_frame(&read_parquet(path)?, path)
}

/// Whether two lists of records hold the same values, NaN equal to NaN (the records' `Debug`
/// form prints every float exactly, so equal text means equal bits up to NaN payloads).
pub fn same_records<T: std::fmt::Debug>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| format!("{x:?}") == format!("{y:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{episode, scratch_dir};

    fn ticks() -> Vec<TickRecord> {
        (0..3u32)
            .map(|i| TickRecord {
                agent: ["hpa", "hpa", "q"][i as usize].into(),
                seed: 7,
                time_s: 15.0 * f64::from(i + 1),
                arrival_rps: 100.25 + f64::from(i),
                served_rps: 99.0,
                dropped_rps: 1.25,
                backlog: 4.0,
                desired_replicas: 5 + i,
                ready_replicas: 4,
                pending_replicas: i,
                cpu_utilization: 0.8,
                p50_latency_ms: 20.0,
                p95_latency_ms: if i == 2 { f64::NAN } else { 80.0 },
                p99_latency_ms: 150.0,
                slo_violated: i == 1,
            })
            .collect()
    }

    fn points() -> Vec<TrainingPoint> {
        vec![
            TrainingPoint {
                agent: "q".into(),
                episode: 0,
                return_: -10.5,
                epsilon: 1.0,
                loss: None,
            },
            TrainingPoint {
                agent: "dqn".into(),
                episode: 1,
                return_: -8.0,
                epsilon: 0.995,
                loss: Some(0.25),
            },
        ]
    }

    #[test]
    fn tables_round_trip_with_types_nan_and_nulls() {
        let dir = scratch_dir("tables-round-trip");
        let mut eps = vec![
            episode("hpa", "hpa", 1, 10.0),
            episode("q", "q-learning", 2, 8.5),
        ];
        eps[0].anomaly_flags = Some(3);
        eps[1].metrics.p99_latency_ms = f64::NAN;
        write_tables(&dir, &eps, &ticks(), &points()).unwrap();

        let df = read_parquet(dir.join(EPISODES_PARQUET)).unwrap();
        let names: Vec<&str> = df.get_column_names().iter().map(|c| c.as_str()).collect();
        assert_eq!(names, EPISODE_COLUMNS);
        assert_eq!(df.column("seed").unwrap().dtype(), &DataType::UInt64);
        assert_eq!(df.column("return").unwrap().dtype(), &DataType::Float64);
        assert_eq!(df.column("anomaly_flags").unwrap().null_count(), 1);
        let back = read_episodes_parquet(dir.join(EPISODES_PARQUET)).unwrap();
        assert_eq!(back[0], eps[0]);
        assert!(back[1].metrics.p99_latency_ms.is_nan());
        assert!(same_records(&back, &eps));

        let df = read_parquet(dir.join(TIMESERIES_PARQUET)).unwrap();
        assert_eq!(
            df.column("ready_replicas").unwrap().dtype(),
            &DataType::UInt32
        );
        assert_eq!(
            df.column("slo_violated").unwrap().dtype(),
            &DataType::Boolean
        );
        let back = read_timeseries_parquet(dir.join(TIMESERIES_PARQUET)).unwrap();
        assert!(same_records(&back, &ticks()));
        assert_eq!(back[1].desired_replicas, 6);
        assert!(back[1].slo_violated && !back[0].slo_violated);

        assert_eq!(
            read_training_parquet(dir.join(TRAINING_PARQUET)).unwrap(),
            points()
        );
        // Empty tables keep their columns and types.
        write_tables(&dir, &[], &[], &[]).unwrap();
        let df = read_parquet(dir.join(TIMESERIES_PARQUET)).unwrap();
        assert_eq!(df.shape(), (0, TICK_COLUMNS.len()));
        assert!(read_episodes_parquet(dir.join(EPISODES_PARQUET))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn same_records_treats_nan_as_equal_and_sees_one_bit() {
        let mut a = episode("a", "hpa", 1, 1.0);
        a.metrics.p95_latency_ms = f64::NAN;
        let mut b = a.clone();
        assert!(same_records(&[a.clone()], &[b.clone()]));
        b.metrics.pod_hours = f64::from_bits(1.0f64.to_bits() + 1);
        assert!(!same_records(&[a.clone()], &[b]));
        assert!(!same_records(&[a.clone()], &[]));
    }

    #[test]
    fn bad_files_get_errors_naming_file_column_and_row() {
        let dir = scratch_dir("tables-bad");
        let path = dir.join("episodes.parquet");
        let err = |df: &mut DataFrame| {
            write_parquet(&path, df).unwrap();
            format!("{:#}", read_episodes_parquet(&path).unwrap_err())
        };
        let good = episodes_frame(&[episode("a", "hpa", 1, 1.0)]).unwrap();
        // A column missing.
        let e = err(&mut good.drop("ticks").unwrap());
        assert!(
            e.contains("episodes.parquet: columns") && e.contains("\"ticks\""),
            "{e}"
        );
        // Wrong type: seed as Float64.
        let mut df = good.clone();
        df.with_column(col("seed", vec![1.0f64])).unwrap();
        let e = err(&mut df);
        assert!(
            e.contains("column `seed` is Float64, expected UInt64"),
            "{e}"
        );
        // A null where a value is required.
        let mut df = good.clone();
        df.with_column(col("pod_hours", vec![None::<f64>])).unwrap();
        let e = err(&mut df);
        assert!(e.contains("column `pod_hours`, row 1: null"), "{e}");
        // Not Parquet at all.
        std::fs::write(&path, "agent,kind\n").unwrap();
        let e = format!("{:#}", read_episodes_parquet(&path).unwrap_err());
        assert!(
            e.contains("while reading") && e.contains("episodes.parquet"),
            "{e}"
        );
    }
}
