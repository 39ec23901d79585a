//! `nimbusguard bench --sweep`: the parallel efficiency of `nimbusguard sweep`. Runs the
//! 40-run sweep [`BENCH_SWEEP`] (the HPA over 40 CPU targets, runs of equal cost) with 1 and
//! then 2 threads into temporary folders, each pass as its own `nimbusguard sweep` process,
//! [`PAIRS`] times, and reports the median of each and
//! of the pairs' speedups (this project's 2-core VM varies by up to 50% from one second to the
//! next, so one pair can mislead); checks that every pass gives a byte-identical summary.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// The sweep measured, relative to the repository root.
pub const BENCH_SWEEP: &str = "experiments/configs/sweeps/bench-40.toml";

/// Pairs of passes (1 thread, then 2) measured; the figures are their medians.
pub const PAIRS: usize = 5;

/// The `sweep` object of `nimbusguard bench --json --sweep`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepScaling {
    /// Runs in the sweep.
    pub runs: usize,
    /// Wall seconds with one thread (median of [`PAIRS`] passes).
    pub one_thread_s: f64,
    /// Wall seconds with two threads (median of [`PAIRS`] passes).
    pub two_threads_s: f64,
    /// Median over the [`PAIRS`] pairs of (1-thread time / 2-thread time of the pass right
    /// after it).
    pub speedup_2_threads: f64,
    /// Every pair's speedup, in the order measured.
    pub speedups: Vec<f64>,
    /// Cores the machine reports (a speedup near 2 needs at least 2 idle ones).
    pub available_cores: usize,
}

/// Wall seconds of `nimbusguard sweep SWEEP --out OUT --threads N`, run as its own process
/// (this executable), as a user runs it: a fresh process per pass, so no pass inherits another's
/// heap or thread pools.
///
/// # Errors
/// This executable cannot be found or started, or the sweep fails (its stderr attached).
fn timed(sweep: &Path, out: &Path, threads: usize) -> Result<f64> {
    let _ = std::fs::remove_dir_all(out);
    let exe = std::env::current_exe().context("cannot find the nimbusguard executable")?;
    let t0 = Instant::now();
    let run = std::process::Command::new(&exe)
        .arg("sweep")
        .arg(sweep)
        .arg("--out")
        .arg(out)
        .arg("--threads")
        .arg(threads.to_string())
        .env_remove(crate::tracking::TRACKING_URI_ENV)
        .stdout(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let wall = t0.elapsed().as_secs_f64();
    if !run.status.success() {
        bail!(
            "nimbusguard sweep {} --threads {threads} failed ({}): {}",
            sweep.display(),
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
    }
    Ok(wall)
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
    let read = |d: &Path| {
        std::fs::read(d.join("sweep_summary.json"))
            .with_context(|| format!("cannot read {}", d.join("sweep_summary.json").display()))
    };
    let (mut ones, mut twos, mut speedups) = (Vec::new(), Vec::new(), Vec::new());
    let mut first: Option<Vec<u8>> = None;
    for _ in 0..PAIRS {
        let a = timed(&sweep, &one, 1)?;
        let b = timed(&sweep, &two, 2)?;
        for summary in [read(&one)?, read(&two)?] {
            match &first {
                None => first = Some(summary),
                Some(f) if *f != summary => bail!(
                    "the sweep's summary differs between passes or thread counts (kept in {})",
                    tmp.display()
                ),
                Some(_) => {}
            }
        }
        ones.push(a);
        twos.push(b);
        speedups.push(a / b);
    }
    let runs = crate::sweep_config::SweepPlan::load(&sweep)?.runs.len();
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(SweepScaling {
        runs,
        one_thread_s: median(&ones),
        two_threads_s: median(&twos),
        speedup_2_threads: median(&speedups),
        speedups,
        available_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// The median of `xs` (the middle value; the mean of the two middle ones for an even count);
/// NaN for none.
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_by_hand() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
