//! Adds the Parquet tables (`episodes.parquet`, and `timeseries.parquet` and `training.parquet`
//! where the CSVs exist) to result folders written before `nimbusguard run` wrote them, from
//! their CSVs; each file is read back and checked to hold the same values as its CSV.
//!
//! This example demonstrates: `experiments::result_dir::tables_from_csv` (CSV -> polars -> Parquet).
//!
//! ```sh
//! cargo run --release -p experiments --example tables_from_csv -- results/reference/quickstart [DIR...]
//! ```

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        bail!("usage: tables_from_csv RUN_DIR... (each holding an episodes.csv)");
    }
    for dir in dirs {
        let dir = std::path::Path::new(&dir);
        let written = experiments::result_dir::tables_from_csv(dir)
            .with_context(|| format!("in run folder {}", dir.display()))?;
        for path in written {
            println!("{}", path.display());
        }
    }
    Ok(())
}
