//! The workload a scenario offers: a real trace or a synthetic pattern, turned into a
//! training window and an evaluation window of request rates.
//!
//! # Pipeline
//!
//! [`WorkloadConfig::build`] runs, for a trace (`workload.trace`):
//!
//! 1. **load** the `timestamp_s,value` CSV ([`Trace::load`]; relative paths resolve against the
//!    `base_dir` passed to `build`);
//! 2. **resample** it to bins of `resample_s` seconds, filling between samples by the
//!    [`GapPolicy`] (`hold`: step function, preserves total requests; `interpolate`: straight
//!    lines between neighbouring samples). Steps longer than `max_gap_s` are filled the same
//!    way and counted in the [`ResampleReport`];
//! 3. **window**: keep `duration_s` seconds from `start_s` (snapped outward to whole bins; a
//!    window running past the end of the trace is cut there);
//! 4. **scale** the selected window so its peak is `peak_rps` (the scale is computed over the
//!    whole window, before the split, so train and evaluation share one scale and only the part
//!    holding the window's peak reaches `peak_rps`). CPU-percent traces become request rates
//!    here: rate(t) = `peak_rps * p(t) / max p` (see the [`crate::trace`] module docs);
//! 5. **split** into the first `train_fraction` (training) and the rest (evaluation);
//! 6. **compress** time by `time_compression` (the same rates, played that many times faster).
//!
//! A synthetic [`Pattern`] (`workload.pattern`) is rendered at `resample_s` and then goes through
//! steps 3, 5 and 6; it is **not** scaled, its numbers are absolute requests per second.
//! Exactly one of `trace` and `pattern` is set; a config file that sets neither gets the default
//! trace ([`DEFAULT_TRACE`]).

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use crate::trace::{
    ceil_bins, GapPolicy, RateSeries, ResampleReport, Trace, ValueKind, MAX_BINS, SERIES_PATH,
};
use crate::{Error, Result};

/// The trace used when a config names neither a trace nor a pattern, relative to `base_dir`.
pub const DEFAULT_TRACE: &str = "datasets/nasa_http_jul1995_1min.csv";

/// Path used in [`Error::EmptyWindow`] for synthetic workloads.
pub const PATTERN_PATH: &str = "<pattern>";

/// How requests arrive within a bin. Carried for the simulation engine, which draws the
/// arrivals; serialized in kebab case (`"poisson"`, `"deterministic"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arrivals {
    /// A Poisson process with the bin's rate (exponential inter-arrival times).
    #[default]
    Poisson,
    /// Evenly spaced arrivals at the bin's rate.
    Deterministic,
}

/// Where the offered load comes from and how it is cut into windows (`[workload]` in a
/// scenario file). Unknown fields are rejected. See the module docs for the pipeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, from = "RawWorkloadConfig")]
pub struct WorkloadConfig {
    /// A `timestamp_s,value` CSV trace; relative paths resolve against the `base_dir` given to
    /// [`WorkloadConfig::build`]. Default [`DEFAULT_TRACE`] (set when a config names neither a
    /// trace nor a pattern). Exactly one of `trace` and `pattern` must be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<PathBuf>,
    /// A synthetic load pattern in absolute requests per second, used instead of a trace.
    /// Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
    /// What the trace's `value` column measures; default none = inferred from the file name
    /// ([`ValueKind::infer`]). Ignored for patterns (always request rates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_kind: Option<ValueKind>,
    /// How the rate between trace samples is filled when resampling. Default `hold`.
    pub gap_policy: GapPolicy,
    /// Steps between trace samples longer than this many seconds are reported as gaps; default
    /// none = 1.5 x the trace's median step. Must be > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gap_s: Option<f64>,
    /// Bin width of the rate series in seconds (trace resampling step, pattern rendering
    /// step), before time compression. Default 60; must be > 0.
    pub resample_s: f64,
    /// Start of the selected window in seconds from the start of the trace or pattern (trace
    /// time, before compression). Default 0; must be >= 0.
    pub start_s: f64,
    /// Length of the selected window in seconds (trace time); default none = to the end. Must
    /// be > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Fraction of the selected window used for training (the first part); the rest is for
    /// evaluation. Default 0.5; must be strictly between 0 and 1.
    pub train_fraction: f64,
    /// Requests per second the selected trace window's peak is scaled to. Default 100; must be
    /// > 0. Not applied to patterns.
    pub peak_rps: f64,
    /// Time compression factor: the series is played this many times faster (bins of
    /// `resample_s / time_compression` seconds, same rates). Default 1; must be > 0.
    pub time_compression: f64,
    /// How requests arrive within a bin (used by the engine). Default `poisson`.
    pub arrivals: Arrivals,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            trace: Some(PathBuf::from(DEFAULT_TRACE)),
            pattern: None,
            value_kind: None,
            gap_policy: GapPolicy::Hold,
            max_gap_s: None,
            resample_s: 60.0,
            start_s: 0.0,
            duration_s: None,
            train_fraction: 0.5,
            peak_rps: 100.0,
            time_compression: 1.0,
            arrivals: Arrivals::Poisson,
        }
    }
}

/// What a config file holds: like [`WorkloadConfig`], but `trace` is only the default when no
/// pattern is given (so `[workload.pattern]` alone does not also select the default trace).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWorkloadConfig {
    trace: Option<PathBuf>,
    pattern: Option<Pattern>,
    value_kind: Option<ValueKind>,
    gap_policy: GapPolicy,
    max_gap_s: Option<f64>,
    resample_s: f64,
    start_s: f64,
    duration_s: Option<f64>,
    train_fraction: f64,
    peak_rps: f64,
    time_compression: f64,
    arrivals: Arrivals,
}

impl Default for RawWorkloadConfig {
    fn default() -> Self {
        let d = WorkloadConfig::default();
        RawWorkloadConfig {
            trace: None,
            pattern: None,
            value_kind: d.value_kind,
            gap_policy: d.gap_policy,
            max_gap_s: d.max_gap_s,
            resample_s: d.resample_s,
            start_s: d.start_s,
            duration_s: d.duration_s,
            train_fraction: d.train_fraction,
            peak_rps: d.peak_rps,
            time_compression: d.time_compression,
            arrivals: d.arrivals,
        }
    }
}

impl From<RawWorkloadConfig> for WorkloadConfig {
    fn from(r: RawWorkloadConfig) -> Self {
        let trace = match (&r.trace, &r.pattern) {
            (None, None) => Some(PathBuf::from(DEFAULT_TRACE)),
            _ => r.trace,
        };
        WorkloadConfig {
            trace,
            pattern: r.pattern,
            value_kind: r.value_kind,
            gap_policy: r.gap_policy,
            max_gap_s: r.max_gap_s,
            resample_s: r.resample_s,
            start_s: r.start_s,
            duration_s: r.duration_s,
            train_fraction: r.train_fraction,
            peak_rps: r.peak_rps,
            time_compression: r.time_compression,
            arrivals: r.arrivals,
        }
    }
}

/// The windows a workload offers, ready for the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Windows {
    /// The first `train_fraction` of the selected window (requests/s per bin).
    pub train: RateSeries,
    /// The rest of the selected window (requests/s per bin).
    pub evaluation: RateSeries,
    /// Gaps filled while resampling the whole trace (all zero for patterns).
    pub report: ResampleReport,
    /// What the trace measured (configured or inferred); `RequestRate` for patterns.
    pub value_kind: ValueKind,
}

/// Checks `x` is finite and `> 0`.
fn positive(field: &str, x: f64, unit: &str) -> Result<()> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("expected a finite number > 0 {unit}, got {x}"),
        ))
    }
}

/// Checks `x` is finite and `>= 0`.
fn non_negative(field: &str, x: f64, unit: &str) -> Result<()> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            field,
            format!("expected a finite number >= 0 {unit}, got {x}"),
        ))
    }
}

impl WorkloadConfig {
    /// Checks every field without touching the file system.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the field (`workload.<field>`, or
    /// `workload.pattern.<field>`) and what was expected: both or neither of `trace` and
    /// `pattern` set; a NaN, infinite, negative or (where it must be positive) zero number;
    /// `train_fraction` outside (0, 1); an impossible pattern (see [`Pattern::validate`]).
    pub fn validate(&self) -> Result<()> {
        match (&self.trace, &self.pattern) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "workload.pattern",
                    "both `workload.trace` and `workload.pattern` are set; expected exactly one \
                     (set `trace` to none to use a pattern)",
                ))
            }
            (None, None) => {
                return Err(Error::config(
                    "workload.trace",
                    "neither `workload.trace` nor `workload.pattern` is set; expected exactly one",
                ))
            }
            _ => {}
        }
        positive("workload.resample_s", self.resample_s, "seconds")?;
        non_negative("workload.start_s", self.start_s, "seconds")?;
        if let Some(d) = self.duration_s {
            positive("workload.duration_s", d, "seconds")?;
        }
        if let Some(g) = self.max_gap_s {
            positive("workload.max_gap_s", g, "seconds")?;
        }
        if !(self.train_fraction > 0.0 && self.train_fraction < 1.0) {
            return Err(Error::config(
                "workload.train_fraction",
                format!(
                    "expected a fraction strictly between 0 and 1, got {}",
                    self.train_fraction
                ),
            ));
        }
        positive("workload.peak_rps", self.peak_rps, "requests/s")?;
        positive(
            "workload.time_compression",
            self.time_compression,
            "(a speed-up factor)",
        )?;
        if let Some(p) = &self.pattern {
            p.validate()?;
            if ceil_bins(p.duration_s() / self.resample_s) > MAX_BINS as f64 {
                return Err(Error::config(
                    "workload.resample_s",
                    format!(
                        "a step of {} s over a {} s pattern gives more than {MAX_BINS} bins; expected a larger step",
                        self.resample_s,
                        p.duration_s()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The trace file this config reads, resolved against `base_dir` (absolute paths are kept);
    /// `None` for a pattern.
    pub fn trace_path(&self, base_dir: &Path) -> Option<PathBuf> {
        self.trace.as_ref().map(|p| base_dir.join(p))
    }

    /// Builds the training and evaluation windows (see the module docs for the pipeline).
    /// `base_dir` resolves a relative `trace`; `seed` drives random patterns
    /// ([`Pattern::Bursty`]), the same seed giving the same series.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidConfig`] from [`WorkloadConfig::validate`].
    /// * [`Error::TraceIo`], [`Error::TraceFormat`], [`Error::EmptyWindow`] from
    ///   [`Trace::load`].
    /// * [`Error::EmptyWindow`] (naming the trace, or `<pattern>`) if `start_s` lies past the
    ///   end, the selected window is all zero (nothing to scale), or it has fewer than 2 bins
    ///   (one side of the split would be empty).
    pub fn build(&self, base_dir: &Path, seed: u64) -> Result<Windows> {
        self.validate()?;
        if let Some(path) = self.trace_path(base_dir) {
            let with_path = |e: Error| name_series(e, &path);
            let trace = Trace::load(&path)?;
            let value_kind = self.value_kind.unwrap_or_else(|| ValueKind::infer(&path));
            let (series, report) = match self.max_gap_s {
                Some(g) => trace.resample_with_max_gap(self.resample_s, self.gap_policy, g),
                None => trace.resample(self.resample_s, self.gap_policy),
            }?;
            let window = series
                .window(self.start_s, self.duration_s)
                .map_err(with_path)?;
            let scaled = window.scale_to_peak(self.peak_rps).map_err(with_path)?;
            let (train, evaluation) = scaled.split(self.train_fraction).map_err(with_path)?;
            Ok(Windows {
                train: train.compress(self.time_compression),
                evaluation: evaluation.compress(self.time_compression),
                report,
                value_kind,
            })
        } else if let Some(pattern) = &self.pattern {
            let path = PathBuf::from(PATTERN_PATH);
            let with_path = |e: Error| name_series(e, &path);
            let series = pattern.render(self.resample_s, seed)?;
            let window = series
                .window(self.start_s, self.duration_s)
                .map_err(with_path)?;
            let (train, evaluation) = window.split(self.train_fraction).map_err(with_path)?;
            Ok(Windows {
                train: train.compress(self.time_compression),
                evaluation: evaluation.compress(self.time_compression),
                report: ResampleReport::default(),
                value_kind: ValueKind::RequestRate,
            })
        } else {
            // Unreachable after validate(), kept as an error rather than a panic.
            Err(Error::config(
                "workload.trace",
                "expected exactly one of `trace` and `pattern`",
            ))
        }
    }
}

/// Replaces the placeholder path of [`RateSeries`] errors with the workload's source.
fn name_series(e: Error, path: &Path) -> Error {
    match e {
        Error::EmptyWindow { path: p, message } if p == Path::new(SERIES_PATH) => {
            Error::EmptyWindow {
                path: path.to_path_buf(),
                message,
            }
        }
        other => other,
    }
}

/// A synthetic load shape in absolute requests per second, `duration_s` seconds long.
///
/// Written in TOML as a table with a `kind` tag, e.g.
/// `pattern = { kind = "ramp", from_rps = 10, to_rps = 100, duration_s = 3600 }`.
/// Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Pattern {
    /// A flat rate.
    Constant {
        /// Rate in requests/s (>= 0).
        rps: f64,
        /// Length in seconds (> 0).
        duration_s: f64,
    },
    /// A linear ramp from `from_rps` at t = 0 to `to_rps` at `duration_s`.
    Ramp {
        /// Rate at the start in requests/s (>= 0).
        from_rps: f64,
        /// Rate at the end in requests/s (>= 0).
        to_rps: f64,
        /// Length in seconds (> 0).
        duration_s: f64,
    },
    /// `base_rps`, except `spike_rps` during `[start_s, start_s + spike_duration_s)`.
    Spike {
        /// Rate outside the spike in requests/s (>= 0).
        base_rps: f64,
        /// Rate during the spike in requests/s (>= 0).
        spike_rps: f64,
        /// Start of the spike in seconds (>= 0).
        start_s: f64,
        /// Length of the spike in seconds (> 0).
        spike_duration_s: f64,
        /// Length of the whole pattern in seconds (> 0).
        duration_s: f64,
    },
    /// `mean_rps + amplitude_rps * sin(2 pi t / period_s)`.
    Sine {
        /// Mean rate in requests/s (>= 0).
        mean_rps: f64,
        /// Amplitude in requests/s (>= 0 and <= `mean_rps`, so the rate stays >= 0).
        amplitude_rps: f64,
        /// Period in seconds (> 0).
        period_s: f64,
        /// Length in seconds (> 0).
        duration_s: f64,
    },
    /// Alternating quiet periods at `base_rps` and bursts at `burst_rps`, starting quiet; the
    /// lengths of both are drawn from exponential distributions (means `mean_gap_s` and
    /// `mean_burst_s`) with a ChaCha8 stream seeded by the render seed.
    Bursty {
        /// Rate between bursts in requests/s (>= 0).
        base_rps: f64,
        /// Rate during a burst in requests/s (>= 0).
        burst_rps: f64,
        /// Mean burst length in seconds (> 0).
        mean_burst_s: f64,
        /// Mean length of the quiet period between bursts in seconds (> 0).
        mean_gap_s: f64,
        /// Length in seconds (> 0).
        duration_s: f64,
    },
}

impl Pattern {
    /// Length of the pattern in seconds.
    pub fn duration_s(&self) -> f64 {
        match *self {
            Pattern::Constant { duration_s, .. }
            | Pattern::Ramp { duration_s, .. }
            | Pattern::Spike { duration_s, .. }
            | Pattern::Sine { duration_s, .. }
            | Pattern::Bursty { duration_s, .. } => duration_s,
        }
    }

    /// Checks every parameter.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming `workload.pattern.<field>` for a NaN, infinite or
    /// negative number, a zero duration/period/mean, an amplitude above the mean, or (bursty)
    /// more than [`MAX_BINS`] expected on/off periods.
    pub fn validate(&self) -> Result<()> {
        const F: &str = "workload.pattern.";
        let f = |name: &str| format!("{F}{name}");
        positive(&f("duration_s"), self.duration_s(), "seconds")?;
        match *self {
            Pattern::Constant { rps, .. } => non_negative(&f("rps"), rps, "requests/s"),
            Pattern::Ramp {
                from_rps, to_rps, ..
            } => {
                non_negative(&f("from_rps"), from_rps, "requests/s")?;
                non_negative(&f("to_rps"), to_rps, "requests/s")
            }
            Pattern::Spike {
                base_rps,
                spike_rps,
                start_s,
                spike_duration_s,
                ..
            } => {
                non_negative(&f("base_rps"), base_rps, "requests/s")?;
                non_negative(&f("spike_rps"), spike_rps, "requests/s")?;
                non_negative(&f("start_s"), start_s, "seconds")?;
                positive(&f("spike_duration_s"), spike_duration_s, "seconds")
            }
            Pattern::Sine {
                mean_rps,
                amplitude_rps,
                period_s,
                ..
            } => {
                non_negative(&f("mean_rps"), mean_rps, "requests/s")?;
                non_negative(&f("amplitude_rps"), amplitude_rps, "requests/s")?;
                positive(&f("period_s"), period_s, "seconds")?;
                if amplitude_rps > mean_rps {
                    return Err(Error::config(
                        f("amplitude_rps"),
                        format!("amplitude {amplitude_rps} exceeds mean_rps {mean_rps}; expected amplitude <= mean so the rate stays >= 0"),
                    ));
                }
                Ok(())
            }
            Pattern::Bursty {
                base_rps,
                burst_rps,
                mean_burst_s,
                mean_gap_s,
                duration_s,
            } => {
                non_negative(&f("base_rps"), base_rps, "requests/s")?;
                non_negative(&f("burst_rps"), burst_rps, "requests/s")?;
                positive(&f("mean_burst_s"), mean_burst_s, "seconds")?;
                positive(&f("mean_gap_s"), mean_gap_s, "seconds")?;
                let cycles = duration_s / (mean_burst_s + mean_gap_s);
                if cycles.is_nan() || cycles > MAX_BINS as f64 {
                    return Err(Error::config(
                        f("mean_burst_s"),
                        format!("about {cycles} bursts in {duration_s} s, more than {MAX_BINS}; expected longer mean_burst_s/mean_gap_s"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Renders the pattern into bins of `step_s` seconds: bin `i` is the exact mean rate over
    /// `[i*step_s, (i+1)*step_s)`. The series has `ceil(duration_s / step_s)` bins; a last,
    /// partial bin continues the pattern past `duration_s` (a ramp holds `to_rps`, a sine keeps
    /// oscillating). `seed` is used only by [`Pattern::Bursty`] (ChaCha8); the same seed gives
    /// the same series.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] from [`Pattern::validate`], or (`workload.resample_s`) if
    /// `step_s` is not finite and `> 0` or gives more than [`MAX_BINS`] bins.
    pub fn render(&self, step_s: f64, seed: u64) -> Result<RateSeries> {
        self.validate()?;
        positive("workload.resample_s", step_s, "seconds")?;
        let duration_s = self.duration_s();
        let bins = ceil_bins(duration_s / step_s);
        if bins.is_nan() || bins > MAX_BINS as f64 {
            return Err(Error::config(
                "workload.resample_s",
                format!("a step of {step_s} s over a {duration_s} s pattern gives more than {MAX_BINS} bins; expected a larger step"),
            ));
        }
        let bins = (bins as usize).max(1);
        let edge = |k: usize| k as f64 * step_s;
        let values = match *self {
            Pattern::Constant { rps, .. } => vec![rps; bins],
            Pattern::Bursty {
                base_rps,
                burst_rps,
                mean_burst_s,
                mean_gap_s,
                ..
            } => {
                let horizon = edge(bins);
                let mut integrals = vec![0.0; bins];
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let (gap, burst) = match (Exp::new(1.0 / mean_gap_s), Exp::new(1.0 / mean_burst_s))
                {
                    (Ok(g), Ok(b)) => (g, b),
                    _ => {
                        return Err(Error::config(
                            "workload.pattern.mean_burst_s",
                            "expected finite means > 0 seconds",
                        ))
                    }
                };
                let mut t = 0.0;
                let mut bursting = false;
                while t < horizon {
                    let (len, rate): (f64, f64) = if bursting {
                        (burst.sample(&mut rng), burst_rps)
                    } else {
                        (gap.sample(&mut rng), base_rps)
                    };
                    let end = (t + len).min(horizon);
                    // Spread [t, end) over the bins it overlaps.
                    let mut k = ((t / step_s).floor() as usize).min(bins - 1);
                    let mut x = t;
                    while x < end && k < bins {
                        let y = end.min(edge(k + 1));
                        integrals[k] += rate * (y - x);
                        x = y;
                        k += 1;
                    }
                    t += len;
                    bursting = !bursting;
                }
                integrals
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| (i / (edge(k + 1) - edge(k))).max(0.0))
                    .collect()
            }
            _ => (0..bins)
                .map(|k| {
                    let (a, b) = (edge(k), edge(k + 1));
                    ((self.antiderivative(b) - self.antiderivative(a)) / (b - a)).max(0.0)
                })
                .collect(),
        };
        Ok(RateSeries { step_s, values })
    }

    /// Integral of the rate from 0 to `t` in requests (for the deterministic shapes).
    fn antiderivative(&self, t: f64) -> f64 {
        match *self {
            Pattern::Constant { rps, .. } => rps * t,
            Pattern::Ramp {
                from_rps,
                to_rps,
                duration_s,
            } => {
                let u = t.min(duration_s);
                from_rps * u + (to_rps - from_rps) * u * u / (2.0 * duration_s) + to_rps * (t - u)
            }
            Pattern::Spike {
                base_rps,
                spike_rps,
                start_s,
                spike_duration_s,
                ..
            } => {
                let inside = (t.min(start_s + spike_duration_s) - start_s).max(0.0);
                base_rps * t + (spike_rps - base_rps) * inside
            }
            Pattern::Sine {
                mean_rps,
                amplitude_rps,
                period_s,
                ..
            } => mean_rps * t + amplitude_rps * period_s / TAU * (1.0 - (TAU * t / period_s).cos()),
            // Not used: bursty is integrated period by period in `render`.
            Pattern::Bursty { base_rps, .. } => base_rps * t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "got {got:?}, want {want:?}"
            );
        }
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::InvalidConfig { field, .. } => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn patterns_render_exact_bin_means() {
        let c = Pattern::Constant {
            rps: 5.0,
            duration_s: 150.0,
        };
        assert_close(&c.render(60.0, 0).unwrap().values, &[5.0, 5.0, 5.0]);

        let r = Pattern::Ramp {
            from_rps: 0.0,
            to_rps: 30.0,
            duration_s: 300.0,
        };
        // Bin means are the ramp at the bin midpoints: 0.1 rps/s * (30, 90, ...).
        assert_close(
            &r.render(60.0, 0).unwrap().values,
            &[3.0, 9.0, 15.0, 21.0, 27.0],
        );

        let s = Pattern::Spike {
            base_rps: 10.0,
            spike_rps: 100.0,
            start_s: 90.0,
            spike_duration_s: 60.0,
            duration_s: 240.0,
        };
        assert_close(
            &s.render(60.0, 0).unwrap().values,
            &[10.0, 55.0, 55.0, 10.0],
        );

        let sine = Pattern::Sine {
            mean_rps: 10.0,
            amplitude_rps: 5.0,
            period_s: 120.0,
            duration_s: 240.0,
        };
        let v = sine.render(60.0, 0).unwrap().values;
        // First half-period mean: 10 + 5 * 2/pi; second: 10 - 5 * 2/pi.
        let h = 10.0 / std::f64::consts::PI;
        assert_close(&v, &[10.0 + h, 10.0 - h, 10.0 + h, 10.0 - h]);
    }

    #[test]
    fn bursty_is_seeded_and_bounded() {
        let b = Pattern::Bursty {
            base_rps: 2.0,
            burst_rps: 50.0,
            mean_burst_s: 30.0,
            mean_gap_s: 120.0,
            duration_s: 36_000.0,
        };
        let a = b.render(10.0, 7).unwrap();
        assert_eq!(a, b.render(10.0, 7).unwrap());
        assert_ne!(a, b.render(10.0, 8).unwrap());
        assert_eq!(a.values.len(), 3600);
        assert!(a
            .values
            .iter()
            .all(|&v| (2.0 - 1e-9..=50.0 + 1e-9).contains(&v)));
        // Long-run mean approaches (2*120 + 50*30) / 150 = 11.6.
        assert!((a.mean() - 11.6).abs() < 1.5, "mean {}", a.mean());
        assert!(a.values.iter().any(|&v| v > 49.0) && a.values.iter().any(|&v| v < 2.1));
    }

    #[test]
    fn pattern_validation_names_fields() {
        let bad = [
            (
                Pattern::Constant {
                    rps: -1.0,
                    duration_s: 1.0,
                },
                "workload.pattern.rps",
            ),
            (
                Pattern::Constant {
                    rps: 1.0,
                    duration_s: 0.0,
                },
                "workload.pattern.duration_s",
            ),
            (
                Pattern::Ramp {
                    from_rps: f64::NAN,
                    to_rps: 1.0,
                    duration_s: 1.0,
                },
                "workload.pattern.from_rps",
            ),
            (
                Pattern::Sine {
                    mean_rps: 1.0,
                    amplitude_rps: 2.0,
                    period_s: 1.0,
                    duration_s: 1.0,
                },
                "workload.pattern.amplitude_rps",
            ),
            (
                Pattern::Spike {
                    base_rps: 1.0,
                    spike_rps: 1.0,
                    start_s: 0.0,
                    spike_duration_s: 0.0,
                    duration_s: 1.0,
                },
                "workload.pattern.spike_duration_s",
            ),
            (
                Pattern::Bursty {
                    base_rps: 1.0,
                    burst_rps: 1.0,
                    mean_burst_s: 1.0,
                    mean_gap_s: 0.0,
                    duration_s: 1.0,
                },
                "workload.pattern.mean_gap_s",
            ),
        ];
        for (p, field) in bad {
            assert_eq!(field_of(p.render(1.0, 0).unwrap_err()), field, "{p:?}");
        }
        let ok = Pattern::Constant {
            rps: 1.0,
            duration_s: 1e9,
        };
        assert_eq!(
            field_of(ok.render(1.0, 0).unwrap_err()),
            "workload.resample_s"
        );
    }

    #[test]
    fn config_from_toml() {
        let empty: WorkloadConfig = toml::from_str("").unwrap();
        assert_eq!(empty, WorkloadConfig::default());

        let pat: WorkloadConfig = toml::from_str(
            "resample_s = 10\npattern = { kind = \"constant\", rps = 3, duration_s = 100 }\n",
        )
        .unwrap();
        assert_eq!(pat.trace, None);
        assert_eq!(
            pat.pattern,
            Some(Pattern::Constant {
                rps: 3.0,
                duration_s: 100.0
            })
        );
        pat.validate().unwrap();

        let full: WorkloadConfig = toml::from_str(
            "trace = \"x.csv\"\nvalue_kind = \"cpu-percent\"\ngap_policy = \"interpolate\"\n\
             arrivals = \"deterministic\"\nduration_s = 600\n",
        )
        .unwrap();
        assert_eq!(full.value_kind, Some(ValueKind::CpuPercent));
        assert_eq!(full.gap_policy, GapPolicy::Interpolate);
        assert_eq!(full.arrivals, Arrivals::Deterministic);

        // Round trip through TOML.
        let text = toml::to_string(&pat).unwrap();
        assert_eq!(toml::from_str::<WorkloadConfig>(&text).unwrap(), pat);
        let text = toml::to_string(&full).unwrap();
        assert_eq!(toml::from_str::<WorkloadConfig>(&text).unwrap(), full);

        assert!(toml::from_str::<WorkloadConfig>("peak = 3").is_err());
        assert!(toml::from_str::<WorkloadConfig>("gap_policy = \"linear\"").is_err());
        assert!(toml::from_str::<WorkloadConfig>(
            "pattern = { kind = \"constant\", rps = 3, duration_s = 100, extra = 1 }"
        )
        .is_err());
        let both: WorkloadConfig = toml::from_str(
            "trace = \"x.csv\"\npattern = { kind = \"constant\", rps = 3, duration_s = 100 }",
        )
        .unwrap();
        assert_eq!(field_of(both.validate().unwrap_err()), "workload.pattern");
    }

    #[test]
    fn config_validation_names_fields() {
        let d = WorkloadConfig::default;
        let cases: Vec<(WorkloadConfig, &str)> = vec![
            (WorkloadConfig { trace: None, ..d() }, "workload.trace"),
            (
                WorkloadConfig {
                    resample_s: 0.0,
                    ..d()
                },
                "workload.resample_s",
            ),
            (
                WorkloadConfig {
                    resample_s: f64::NAN,
                    ..d()
                },
                "workload.resample_s",
            ),
            (
                WorkloadConfig {
                    start_s: -1.0,
                    ..d()
                },
                "workload.start_s",
            ),
            (
                WorkloadConfig {
                    duration_s: Some(0.0),
                    ..d()
                },
                "workload.duration_s",
            ),
            (
                WorkloadConfig {
                    duration_s: Some(f64::INFINITY),
                    ..d()
                },
                "workload.duration_s",
            ),
            (
                WorkloadConfig {
                    max_gap_s: Some(-5.0),
                    ..d()
                },
                "workload.max_gap_s",
            ),
            (
                WorkloadConfig {
                    train_fraction: 0.0,
                    ..d()
                },
                "workload.train_fraction",
            ),
            (
                WorkloadConfig {
                    train_fraction: 1.0,
                    ..d()
                },
                "workload.train_fraction",
            ),
            (
                WorkloadConfig {
                    train_fraction: f64::NAN,
                    ..d()
                },
                "workload.train_fraction",
            ),
            (
                WorkloadConfig {
                    peak_rps: 0.0,
                    ..d()
                },
                "workload.peak_rps",
            ),
            (
                WorkloadConfig {
                    time_compression: -2.0,
                    ..d()
                },
                "workload.time_compression",
            ),
        ];
        for (cfg, field) in cases {
            assert_eq!(field_of(cfg.validate().unwrap_err()), field);
            // build validates before touching the file system.
            assert_eq!(
                field_of(cfg.build(Path::new("/nonexistent"), 0).unwrap_err()),
                field
            );
        }
        WorkloadConfig::default().validate().unwrap();
    }

    #[test]
    fn pattern_pipeline_splits_and_compresses_without_scaling() {
        let cfg = WorkloadConfig {
            trace: None,
            pattern: Some(Pattern::Ramp {
                from_rps: 0.0,
                to_rps: 30.0,
                duration_s: 300.0,
            }),
            train_fraction: 0.6,
            time_compression: 2.0,
            ..WorkloadConfig::default()
        };
        let w = cfg.build(Path::new("/nonexistent"), 1).unwrap();
        assert_eq!(w.train.step_s, 30.0);
        assert_close(&w.train.values, &[3.0, 9.0, 15.0]);
        assert_close(&w.evaluation.values, &[21.0, 27.0]);
        assert_eq!(w.value_kind, ValueKind::RequestRate);
        assert_eq!(w.report, ResampleReport::default());

        let past = WorkloadConfig {
            start_s: 300.0,
            ..cfg
        };
        match past.build(Path::new("/nonexistent"), 1).unwrap_err() {
            Error::EmptyWindow { path, .. } => assert_eq!(path, Path::new(PATTERN_PATH)),
            other => panic!("{other:?}"),
        }
    }
}
