//! A result folder's tables: loaded from its Parquet files ([`crate::tables`]), or from its CSVs
//! ([`crate::records`]) when it was written before the Parquet files existed; and Parquet files
//! added to such a folder from its CSVs (`examples/tables_from_csv.rs`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::records::{
    read_episodes_csv, read_timeseries_csv, read_training_csv, EpisodeRecord, TickRecord,
    TrainingPoint,
};
use crate::tables::{
    read_episodes_parquet, read_timeseries_parquet, read_training_parquet, same_records,
    write_episodes_parquet, write_timeseries_parquet, write_training_parquet,
};

/// The table `stem` of the result folder `dir`: `<stem>.parquet` if it exists, else
/// `<stem>.csv`; with the path it was read from. Errors name the folder and both files when
/// neither exists.
fn read_either<T>(
    dir: &Path,
    stem: &str,
    parquet: fn(&Path) -> Result<Vec<T>>,
    csv: fn(&Path) -> Result<Vec<T>>,
) -> Result<(Vec<T>, PathBuf)> {
    let (pq, text) = (
        dir.join(format!("{stem}.parquet")),
        dir.join(format!("{stem}.csv")),
    );
    if pq.is_file() {
        Ok((parquet(&pq)?, pq))
    } else if text.is_file() {
        Ok((csv(&text)?, text))
    } else {
        bail!(
            "{}: no {stem}.parquet or {stem}.csv (a folder written by `nimbusguard run`)",
            dir.display()
        )
    }
}

/// The episode records of the result folder `dir`, from `episodes.parquet`, or `episodes.csv`
/// when there is no Parquet file (folders written before it existed); with the file read.
///
/// # Errors
/// `dir` has neither file (both named), or the file cannot be read (file, column and row named).
pub fn read_episodes(dir: &Path) -> Result<(Vec<EpisodeRecord>, PathBuf)> {
    read_either(
        dir,
        "episodes",
        |p| read_episodes_parquet(p),
        |p| read_episodes_csv(p),
    )
}

/// The tick records of the result folder `dir` (`timeseries.parquet`, else `timeseries.csv`).
///
/// # Errors
/// As [`read_episodes`].
pub fn read_timeseries(dir: &Path) -> Result<(Vec<TickRecord>, PathBuf)> {
    read_either(
        dir,
        "timeseries",
        |p| read_timeseries_parquet(p),
        |p| read_timeseries_csv(p),
    )
}

/// The training points of the result folder `dir` (`training.parquet`, else `training.csv`).
///
/// # Errors
/// As [`read_episodes`].
pub fn read_training(dir: &Path) -> Result<(Vec<TrainingPoint>, PathBuf)> {
    read_either(
        dir,
        "training",
        |p| read_training_parquet(p),
        |p| read_training_csv(p),
    )
}

/// Writes the Parquet files of the result folder `dir` from its CSVs (`episodes.csv` and, where
/// present, `timeseries.csv` and `training.csv`), then reads each back and checks it holds the
/// same values as its CSV. Returns the files written.
///
/// # Errors
/// `dir` has no `episodes.csv`; a file cannot be read or written; a Parquet file read back
/// differs from its CSV (which would be a bug).
pub fn tables_from_csv(dir: &Path) -> Result<Vec<PathBuf>> {
    fn convert<T: std::fmt::Debug>(
        csv: &Path,
        out: &Path,
        read_csv: fn(&Path) -> Result<Vec<T>>,
        write: fn(&Path, &[T]) -> Result<()>,
        read_back: fn(&Path) -> Result<Vec<T>>,
    ) -> Result<()> {
        let rows = read_csv(csv)?;
        write(out, &rows)?;
        if !same_records(&rows, &read_back(out)?) {
            bail!("{} read back differs from {}", out.display(), csv.display());
        }
        Ok(())
    }
    if !dir.join("episodes.csv").is_file() {
        bail!("{}: no episodes.csv to convert", dir.display());
    }
    let mut written = Vec::new();
    for stem in ["episodes", "timeseries", "training"] {
        let csv = dir.join(format!("{stem}.csv"));
        if !csv.is_file() {
            continue;
        }
        let out = dir.join(format!("{stem}.parquet"));
        match stem {
            "episodes" => convert(
                &csv,
                &out,
                |p| read_episodes_csv(p),
                |p, r| write_episodes_parquet(p, r),
                |p| read_episodes_parquet(p),
            )?,
            "timeseries" => convert(
                &csv,
                &out,
                |p| read_timeseries_csv(p),
                |p, r| write_timeseries_parquet(p, r),
                |p| read_timeseries_parquet(p),
            )?,
            _ => convert(
                &csv,
                &out,
                |p| read_training_csv(p),
                |p, r| write_training_parquet(p, r),
                |p| read_training_parquet(p),
            )?,
        }
        written.push(out);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{episode, scratch_dir};
    use crate::records::write_episodes_csv;
    use crate::tables::EPISODES_PARQUET;

    #[test]
    fn folders_load_from_parquet_then_csv_and_convert() {
        let dir = scratch_dir("tables-folder");
        let err = format!("{:#}", read_episodes(&dir).unwrap_err());
        assert!(err.contains("no episodes.parquet or episodes.csv"), "{err}");
        assert!(format!("{:#}", tables_from_csv(&dir).unwrap_err()).contains("no episodes.csv"));
        let eps = vec![
            episode("hpa", "hpa", 1, 10.0),
            episode("hpa", "hpa", 2, 11.0),
        ];
        write_episodes_csv(dir.join("episodes.csv"), &eps).unwrap();
        let (back, from) = read_episodes(&dir).unwrap();
        assert_eq!((back, from), (eps.clone(), dir.join("episodes.csv")));
        let written = tables_from_csv(&dir).unwrap();
        assert_eq!(written, vec![dir.join(EPISODES_PARQUET)]);
        let (back, from) = read_episodes(&dir).unwrap();
        assert_eq!((back, from), (eps, dir.join(EPISODES_PARQUET)));
        assert!(read_training(&dir).is_err());
    }
}
