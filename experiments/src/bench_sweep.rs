//! `nimbusguard bench --sweep`: the parallel efficiency of `nimbusguard sweep`. Runs the
//! 40-run sweep [`BENCH_SWEEP`] (the HPA over 40 CPU targets, runs of equal cost) with 1 and
//! then 2 threads into temporary folders, times both, and checks that the two give
//! byte-identical summaries.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cmd_sweep::{execute, SweepOptions};

/// The sweep measured, relative to the repository root.
pub const BENCH_SWEEP: &str = "experiments/configs/sweeps/bench-40.toml";

/// The `sweep` object of `nimbusguard bench --json --sweep`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepScaling {
    /// Runs in the sweep.
    pub runs: usize,
    /// Wall seconds with one thread.
    pub one_thread_s: f64,
    /// Wall seconds with two threads.
    pub two_threads_s: f64,
    /// `one_thread_s / two_threads_s`.
    pub speedup_2_threads: f64,
    /// Cores the machine reports (a speedup near 2 needs at least 2 idle ones).
    pub available_cores: usize,
}

fn timed(sweep: &Path, out: &Path, threads: usize) -> Result<f64> {
    let _ = std::fs::remove_dir_all(out);
    let t0 = Instant::now();
    execute(
        sweep,
        &SweepOptions {
            out: Some(out.to_path_buf()),
            threads,
            ..SweepOptions::default()
        },
    )?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Times [`BENCH_SWEEP`] with 1 and 2 threads (in a temporary folder, removed after).
///
/// # Errors
/// The sweep fails, or the two runs' summaries differ (a determinism bug).
pub fn measure() -> Result<SweepScaling> {
    let sweep = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(BENCH_SWEEP);
    let tmp = std::env::temp_dir().join(format!("nimbusguard-bench-sweep-{}", std::process::id()));
    let (one, two) = (tmp.join("one"), tmp.join("two"));
    let one_thread_s = timed(&sweep, &one, 1)?;
    let two_threads_s = timed(&sweep, &two, 2)?;
    let read = |d: &Path| {
        std::fs::read(d.join("sweep_summary.json"))
            .with_context(|| format!("cannot read {}", d.join("sweep_summary.json").display()))
    };
    if read(&one)? != read(&two)? {
        bail!(
            "the sweep's summary differs between 1 and 2 threads (kept in {})",
            tmp.display()
        );
    }
    let runs = crate::sweep_config::SweepPlan::load(&sweep)?.runs.len();
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(SweepScaling {
        runs,
        one_thread_s,
        two_threads_s,
        speedup_2_threads: one_thread_s / two_threads_s,
        available_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}
