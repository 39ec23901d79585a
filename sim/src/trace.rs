//! Real workload traces: loading `timestamp_s,value` CSV files and turning them into
//! fixed-step request-rate series.
//!
//! # File format
//!
//! Every trace in `datasets/` is a CSV file whose header is exactly `timestamp_s,value`:
//! `timestamp_s` is seconds since the start of the file (`>= 0`, strictly increasing, steps
//! may be irregular and rows may be missing), `value` is a non-negative finite number.
//! [`Trace::load`] checks all of this and reports the first problem with the file name and
//! the 1-based line number (the header is line 1). It never panics.
//!
//! # What a sample means, and the gap policy
//!
//! A sample `(t_i, v_i)` describes the rate from `t_i` until the next sample `t_{i+1}`; the
//! last sample describes the rate for one *median step* of the trace after it (see
//! [`Trace::median_step_s`]), so a trace covers `[t_0, t_last + median step)`. This is how the
//! datasets were built (each row is the mean over the bin that starts at its timestamp).
//!
//! Between two samples the rate is filled according to the [`GapPolicy`]:
//!
//! * [`GapPolicy::Hold`]: the rate is `v_i` on the whole of `[t_i, t_{i+1})` (a step function).
//!   Resampling then preserves the time integral (the total number of requests) exactly.
//! * [`GapPolicy::Interpolate`]: the rate goes linearly from `v_i` at `t_i` to `v_{i+1}` at
//!   `t_{i+1}` (the last sample is held, as there is no next one).
//!
//! The policy applies to every step, not only to gaps: a step longer than `max_gap_s` is filled
//! in the same way, but counted in the [`ResampleReport`] so callers can tell how much of the
//! series was made up (resampling never fails because of a gap).
//!
//! # Resampling
//!
//! [`Trace::resample`] produces a [`RateSeries`] whose bin `i` holds the exact mean of the
//! filled rate over `[t_0 + i*step_s, t_0 + (i+1)*step_s)`. When the trace is finer than the
//! step this averages the samples in the bin, each weighted by the time it covers; when it is
//! coarser the bins read the held or interpolated rate. The series has
//! `ceil((t_last + median step - t_0) / step_s)` bins; past the end of the trace the last value
//! is held, so a last, partial bin is filled with the last sample's rate.
//!
//! # CPU-percent traces
//!
//! Some traces record the CPU utilisation of a machine in percent ([`ValueKind::CpuPercent`])
//! rather than a request rate. They become request rates through the service model: a CPU
//! percent `p` of the source machine is read as an offered load of `p/100` of that machine's
//! capacity, so the request rate is proportional to `p`. The proportionality constant (the
//! source machine's capacity) is unknown, and it does not matter: the workload pipeline always
//! applies [`RateSeries::scale_to_peak`], after which the selected window's peak maps to
//! `peak_rps`, i.e. `rate(t) = peak_rps * p(t) / max p`. Request-rate traces are scaled the
//! same way, so both kinds keep their shape and differ only in how they were measured.

use std::path::{Path, PathBuf};

use crate::{Error, Result, SimTime};

/// The header every trace file must start with.
pub const TRACE_HEADER: &str = "timestamp_s,value";

/// Largest number of bins a resampled or rendered series may have (about 160 MB of `f64`).
///
/// Guards against a tiny step over a long trace exhausting memory.
pub const MAX_BINS: usize = 20_000_000;

/// Default gap threshold as a multiple of the trace's median step (see [`Trace::resample`]).
pub const DEFAULT_GAP_FACTOR: f64 = 1.5;

/// Relative tolerance used when snapping times to whole bins, so that `300 / 60` is 5 bins and
/// not 6 because of rounding.
const BIN_TOLERANCE: f64 = 1e-9;

/// How the rate between two samples is filled when a trace is resampled.
///
/// Serialized in kebab case: `"hold"` or `"interpolate"`. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GapPolicy {
    /// Hold each sample until the next one (a step function). Preserves the total number of
    /// requests exactly.
    #[default]
    Hold,
    /// Interpolate linearly between neighbouring samples (the last sample is held).
    Interpolate,
}

/// What the `value` column of a trace measures.
///
/// Serialized in kebab case: `"request-rate"` or `"cpu-percent"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueKind {
    /// Requests per second.
    RequestRate,
    /// CPU utilisation of the source machine in percent (0-100, may slightly exceed 100).
    /// Read as a request rate proportional to the value (see the module docs).
    CpuPercent,
}

impl ValueKind {
    /// Infers the kind from a trace's file name, following the `datasets/` naming: a file name
    /// containing `_cpu_` or `bitbrains` (case-insensitive) is [`ValueKind::CpuPercent`],
    /// anything else [`ValueKind::RequestRate`]. Only the file name is looked at, not the
    /// directories above it. Never fails.
    pub fn infer(path: &Path) -> ValueKind {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if name.contains("_cpu_") || name.contains("bitbrains") {
            ValueKind::CpuPercent
        } else {
            ValueKind::RequestRate
        }
    }
}

/// What resampling had to make up: inter-sample steps longer than the gap threshold.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ResampleReport {
    /// Number of steps between consecutive samples longer than the gap threshold `max_gap_s`.
    /// They were filled by the [`GapPolicy`] like any other step.
    pub gaps: usize,
    /// Length of the longest such gap in seconds (0 when `gaps == 0`).
    pub longest_gap_s: f64,
}

/// A trace as read from disk: samples `(timestamps_s[i], values[i])`.
///
/// [`Trace::load`] guarantees: at least one sample, equal lengths, every number finite and
/// `>= 0`, timestamps strictly increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The file the trace was read from (used in error messages).
    pub path: PathBuf,
    /// Sample times in seconds since the start of the file, strictly increasing.
    pub timestamps_s: Vec<f64>,
    /// Sample values: requests per second or CPU percent (see [`ValueKind`]), `>= 0`.
    pub values: Vec<f64>,
}

impl Trace {
    /// Reads and validates a `timestamp_s,value` CSV file.
    ///
    /// # Errors
    ///
    /// * [`Error::TraceIo`] if the file cannot be opened or read (missing, a directory, ...).
    /// * [`Error::TraceFormat`] naming the file and 1-based line (header = line 1) if the header
    ///   is not exactly `timestamp_s,value`, a row does not have exactly two fields, a field is
    ///   not a number or is NaN/infinite, a value or timestamp is negative, a timestamp is not
    ///   greater than the previous one, or a line is not valid UTF-8.
    /// * [`Error::EmptyWindow`] if the file is empty or holds only the header.
    pub fn load(path: &Path) -> Result<Trace> {
        // Traces are small (every dataset is under 5 MiB); reading the whole file lets line
        // numbers be computed from byte offsets, which stay right across blank lines (the csv
        // crate's own line count skips those).
        let bytes = std::fs::read(path).map_err(|source| Error::TraceIo {
            path: path.to_path_buf(),
            source,
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes.as_slice());
        let mut lines = LineCounter::new(&bytes);
        let format_err = |line: usize, message: String| Error::TraceFormat {
            path: path.to_path_buf(),
            line,
            message,
        };

        let mut record = csv::StringRecord::new();
        let mut next = |record: &mut csv::StringRecord| -> Result<Option<usize>> {
            match reader.read_record(record) {
                Ok(false) => Ok(None),
                Ok(true) => Ok(Some(
                    lines.line_at(record.position().map(csv::Position::byte)),
                )),
                Err(err) => {
                    let line = lines.line_at(err.position().map(csv::Position::byte));
                    match err.into_kind() {
                        csv::ErrorKind::Io(source) => Err(Error::TraceIo {
                            path: path.to_path_buf(),
                            source,
                        }),
                        csv::ErrorKind::Utf8 { .. } => {
                            Err(format_err(line, "line is not valid UTF-8".to_string()))
                        }
                        other => Err(format_err(line, format!("malformed CSV: {other:?}"))),
                    }
                }
            }
        };

        // Header.
        let Some(line) = next(&mut record)? else {
            return Err(Error::EmptyWindow {
                path: path.to_path_buf(),
                message: format!(
                    "the file is empty; expected the header `{TRACE_HEADER}` and at least one row"
                ),
            });
        };
        let fields: Vec<&str> = record.iter().collect();
        let first = fields.first().map(|f| f.trim_start_matches('\u{feff}'));
        if fields.len() != 2 || first != Some("timestamp_s") || fields[1] != "value" {
            let mut found = fields.join(",");
            if let Some(stripped) = found.strip_prefix('\u{feff}') {
                found = stripped.to_string();
            }
            return Err(format_err(
                line,
                format!("expected the header `{TRACE_HEADER}`, found `{found}`"),
            ));
        }

        // Rows.
        let mut timestamps_s = Vec::new();
        let mut values = Vec::new();
        while let Some(line) = next(&mut record)? {
            if record.len() != 2 {
                return Err(format_err(
                    line,
                    format!(
                        "expected 2 fields `{TRACE_HEADER}`, found {} (`{}`)",
                        record.len(),
                        record.iter().collect::<Vec<_>>().join(",")
                    ),
                ));
            }
            let t = parse_field(&record[0], "timestamp_s").map_err(|m| format_err(line, m))?;
            let v = parse_field(&record[1], "value").map_err(|m| format_err(line, m))?;
            if let Some(&prev) = timestamps_s.last() {
                if t <= prev {
                    let what = if t == prev {
                        "repeats"
                    } else {
                        "goes backwards from"
                    };
                    return Err(format_err(
                        line,
                        format!(
                            "timestamp_s {t} {what} the previous row's {prev}; expected strictly increasing timestamps"
                        ),
                    ));
                }
            }
            timestamps_s.push(t);
            values.push(v);
        }
        if timestamps_s.is_empty() {
            return Err(Error::EmptyWindow {
                path: path.to_path_buf(),
                message: format!(
                    "the file holds only the header `{TRACE_HEADER}`; expected at least one row"
                ),
            });
        }
        Ok(Trace {
            path: path.to_path_buf(),
            timestamps_s,
            values,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.timestamps_s.len()
    }

    /// Whether the trace has no samples (never true for a loaded trace).
    pub fn is_empty(&self) -> bool {
        self.timestamps_s.is_empty()
    }

    /// The median step between consecutive samples in seconds; for an even number of steps the
    /// lower of the two middle ones, so it is always a step that occurs in the trace. `None` for
    /// a trace with fewer than two samples.
    pub fn median_step_s(&self) -> Option<f64> {
        let mut steps: Vec<f64> = self.timestamps_s.windows(2).map(|w| w[1] - w[0]).collect();
        if steps.is_empty() {
            return None;
        }
        let mid = (steps.len() - 1) / 2;
        let (_, median, _) = steps.select_nth_unstable_by(mid, f64::total_cmp);
        Some(*median)
    }

    /// Seconds covered by the trace: `t_last - t_first + median step` (0 for fewer than two
    /// samples, whose extent is only fixed by the resampling step).
    pub fn duration_s(&self) -> f64 {
        match (
            self.timestamps_s.first(),
            self.timestamps_s.last(),
            self.median_step_s(),
        ) {
            (Some(first), Some(last), Some(step)) => last - first + step,
            _ => 0.0,
        }
    }

    /// Resamples to a fixed step with the default gap threshold
    /// `max_gap_s = DEFAULT_GAP_FACTOR (1.5) * median step` (a missing sample or more counts as
    /// a gap; the jitter of irregular traces does not). See
    /// [`Trace::resample_with_max_gap`].
    ///
    /// # Errors
    ///
    /// As [`Trace::resample_with_max_gap`].
    pub fn resample(&self, step_s: f64, policy: GapPolicy) -> Result<(RateSeries, ResampleReport)> {
        self.resample_impl(step_s, policy, None)
    }

    /// Resamples to bins of `step_s` seconds, filling between samples by `policy`; bin `i` is
    /// the mean rate over `[t_0 + i*step_s, t_0 + (i+1)*step_s)` (see the module docs).
    ///
    /// Steps between samples longer than `max_gap_s` seconds are filled the same way and
    /// counted in the returned [`ResampleReport`]. A single-sample trace covers one step.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidConfig`] (`workload.resample_s`) if `step_s` is not finite and `> 0`,
    ///   or the series would have more than [`MAX_BINS`] bins; (`workload.max_gap_s`) if
    ///   `max_gap_s` is NaN or `<= 0`.
    /// * [`Error::EmptyWindow`] if the trace has no samples.
    /// * [`Error::TraceFormat`] if the (public) fields were modified into an invalid trace:
    ///   lengths differ, a number is negative or not finite, timestamps not increasing.
    pub fn resample_with_max_gap(
        &self,
        step_s: f64,
        policy: GapPolicy,
        max_gap_s: f64,
    ) -> Result<(RateSeries, ResampleReport)> {
        self.resample_impl(step_s, policy, Some(max_gap_s))
    }

    /// [`Trace::resample_with_max_gap`], with the default threshold when `max_gap_s` is `None`.
    fn resample_impl(
        &self,
        step_s: f64,
        policy: GapPolicy,
        max_gap_s: Option<f64>,
    ) -> Result<(RateSeries, ResampleReport)> {
        if !(step_s.is_finite() && step_s > 0.0) {
            return Err(Error::config(
                "workload.resample_s",
                format!("expected a finite step > 0 seconds, got {step_s}"),
            ));
        }
        self.check_invariants()?;
        let max_gap_s = max_gap_s.unwrap_or_else(|| {
            self.median_step_s()
                .map_or(f64::INFINITY, |m| DEFAULT_GAP_FACTOR * m)
        });
        if max_gap_s.is_nan() || max_gap_s <= 0.0 {
            return Err(Error::config(
                "workload.max_gap_s",
                format!("expected a gap threshold > 0 seconds, got {max_gap_s}"),
            ));
        }
        let ts = &self.timestamps_s;
        let vs = &self.values;
        let n = ts.len();
        let t0 = ts[0];
        let tail = self.median_step_s().unwrap_or(step_s);
        let span = ts[n - 1] + tail - t0;
        let bins = ceil_bins(span / step_s);
        if bins.is_nan() || bins > MAX_BINS as f64 {
            return Err(Error::config(
                "workload.resample_s",
                format!(
                    "a step of {step_s} s over {span} s of trace gives {bins} bins, more than the limit of {MAX_BINS}; expected a larger step"
                ),
            ));
        }
        let bins = (bins as usize).max(1);

        let mut report = ResampleReport::default();
        for w in ts.windows(2) {
            let dt = w[1] - w[0];
            if dt > max_gap_s {
                report.gaps += 1;
                report.longest_gap_s = report.longest_gap_s.max(dt);
            }
        }

        // Integral of the filled rate over [x, y] inside segment j (j = n-1 extends forever).
        let integral = |j: usize, x: f64, y: f64| -> f64 {
            let width = y - x;
            if width <= 0.0 {
                return 0.0;
            }
            match policy {
                GapPolicy::Interpolate if j + 1 < n => {
                    let slope = (vs[j + 1] - vs[j]) / (ts[j + 1] - ts[j]);
                    let rx = vs[j] + slope * (x - ts[j]);
                    let ry = vs[j] + slope * (y - ts[j]);
                    0.5 * (rx + ry) * width
                }
                _ => vs[j] * width,
            }
        };

        let mut values = Vec::with_capacity(bins);
        let mut seg = 0usize;
        for k in 0..bins {
            let a = t0 + k as f64 * step_s;
            let b = t0 + (k + 1) as f64 * step_s;
            while seg + 1 < n && ts[seg + 1] <= a {
                seg += 1;
            }
            let mut acc = 0.0;
            let mut j = seg;
            let mut x = a;
            loop {
                let seg_end = if j + 1 < n { ts[j + 1] } else { f64::INFINITY };
                let y = b.min(seg_end);
                acc += integral(j, x, y);
                if seg_end >= b {
                    break;
                }
                x = seg_end;
                j += 1;
            }
            values.push((acc / (b - a)).max(0.0));
        }
        Ok((RateSeries { step_s, values }, report))
    }

    /// Checks what [`Trace::load`] guarantees, for traces built or modified by hand.
    fn check_invariants(&self) -> Result<()> {
        let err = |line: usize, message: String| Error::TraceFormat {
            path: self.path.clone(),
            line,
            message,
        };
        if self.timestamps_s.len() != self.values.len() {
            return Err(err(
                1,
                format!(
                    "{} timestamps but {} values; expected one value per timestamp",
                    self.timestamps_s.len(),
                    self.values.len()
                ),
            ));
        }
        if self.timestamps_s.is_empty() {
            return Err(Error::EmptyWindow {
                path: self.path.clone(),
                message: "the trace has no samples".to_string(),
            });
        }
        for (i, (&t, &v)) in self.timestamps_s.iter().zip(&self.values).enumerate() {
            let line = i + 2;
            if !(t.is_finite() && t >= 0.0 && v.is_finite() && v >= 0.0) {
                return Err(err(
                    line,
                    format!("sample ({t}, {v}); expected finite numbers >= 0"),
                ));
            }
            if i > 0 && t <= self.timestamps_s[i - 1] {
                return Err(err(
                    line,
                    format!(
                        "timestamp_s {t} is not after the previous {}; expected strictly increasing timestamps",
                        self.timestamps_s[i - 1]
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Maps byte offsets of CSV records to 1-based line numbers, counting `\n`, `\r\n` and a lone
/// `\r` as line ends (as the csv crate does). Offsets must be queried in increasing order.
struct LineCounter<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            pos: 0,
            line: 1,
        }
    }

    /// The line of the record that starts at or after `byte` (blank lines before it are
    /// skipped); without an offset (never seen in practice), the current line.
    fn line_at(&mut self, byte: Option<u64>) -> usize {
        let Some(byte) = byte else {
            self.skip_line_ends();
            return self.line;
        };
        let target = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while self.pos < target {
            self.step();
        }
        self.skip_line_ends();
        self.line
    }

    fn skip_line_ends(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b'\r' | b'\n')) {
            self.step();
        }
    }

    fn step(&mut self) {
        match self.bytes[self.pos] {
            b'\n' => self.line += 1,
            b'\r' if self.bytes.get(self.pos + 1) != Some(&b'\n') => self.line += 1,
            _ => {}
        }
        self.pos += 1;
    }
}

/// Parses one field as a finite, non-negative number; the error message names the column.
fn parse_field(raw: &str, column: &str) -> std::result::Result<f64, String> {
    let x: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("{column} `{raw}` is not a number; expected a finite number >= 0"))?;
    if !x.is_finite() {
        return Err(format!(
            "{column} `{raw}` is not finite; expected a finite number >= 0"
        ));
    }
    if x < 0.0 {
        return Err(format!(
            "{column} {x} is negative; expected a finite number >= 0"
        ));
    }
    Ok(x)
}

/// `ceil(x)` that treats values within [`BIN_TOLERANCE`] (relative) of an integer as that
/// integer. Returns an `f64` so callers can range-check before casting.
pub(crate) fn ceil_bins(x: f64) -> f64 {
    let r = x.round();
    if (x - r).abs() <= BIN_TOLERANCE * r.abs().max(1.0) {
        r
    } else {
        x.ceil()
    }
}

/// `floor(x)` with the same tolerance as [`ceil_bins`].
fn floor_bins(x: f64) -> f64 {
    let r = x.round();
    if (x - r).abs() <= BIN_TOLERANCE * r.abs().max(1.0) {
        r
    } else {
        x.floor()
    }
}

/// A request rate on a fixed grid: `values[i]` is the mean rate in requests per second over
/// `[i*step_s, (i+1)*step_s)`, measured from the start of the series.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateSeries {
    /// Bin width in seconds (> 0).
    pub step_s: f64,
    /// Mean rate of each bin in requests per second (>= 0).
    pub values: Vec<f64>,
}

/// Path used in [`Error::EmptyWindow`] raised by [`RateSeries`] methods, which do not know the
/// file they came from (the workload pipeline replaces it with the trace path).
pub const SERIES_PATH: &str = "<series>";

fn series_empty(message: String) -> Error {
    Error::EmptyWindow {
        path: PathBuf::from(SERIES_PATH),
        message,
    }
}

impl RateSeries {
    /// Length of the series in seconds: `values.len() * step_s`.
    pub fn duration_s(&self) -> f64 {
        self.values.len() as f64 * self.step_s
    }

    /// Largest bin rate in requests per second (0 for an empty series).
    pub fn peak(&self) -> f64 {
        self.values.iter().copied().fold(0.0, f64::max)
    }

    /// Time-averaged rate in requests per second (0 for an empty series).
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            0.0
        } else {
            self.values.iter().sum::<f64>() / self.values.len() as f64
        }
    }

    /// Total number of requests the series offers: the time integral of the rate (`sum of
    /// values * step_s`).
    pub fn total_requests(&self) -> f64 {
        self.values.iter().sum::<f64>() * self.step_s
    }

    /// The rate in requests per second at time `t` after the start of the series: the value of
    /// the bin containing `t` (piecewise constant), the last value past the end, 0 for an empty
    /// series. O(1), no allocation.
    pub fn rate_at(&self, t: SimTime) -> f64 {
        let Some(&last) = self.values.last() else {
            return 0.0;
        };
        let step_ms = self.step_s * 1000.0;
        if step_ms.is_nan() || step_ms <= 0.0 {
            return last;
        }
        // Float-to-int `as` saturates (NaN -> 0), so this cannot overflow.
        let idx = (t.as_millis() as f64 / step_ms).floor() as usize;
        self.values.get(idx).copied().unwrap_or(last)
    }

    /// The part of the series from `start_s` seconds for `duration_s` seconds (`None`: to the
    /// end). Times are snapped outward to whole bins: the window starts with the bin containing
    /// `start_s` and has `ceil(duration_s / step_s)` bins. A window running past the end is cut
    /// at the end.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidConfig`] (`workload.start_s`) if `start_s` is NaN, infinite or
    ///   negative; (`workload.duration_s`) if `duration_s` is NaN.
    /// * [`Error::EmptyWindow`] if `start_s` is at or past the end of the series or
    ///   `duration_s <= 0` (path [`SERIES_PATH`]).
    pub fn window(&self, start_s: f64, duration_s: Option<f64>) -> Result<RateSeries> {
        if !(start_s.is_finite() && start_s >= 0.0) {
            return Err(Error::config(
                "workload.start_s",
                format!("expected a finite start >= 0 seconds, got {start_s}"),
            ));
        }
        if let Some(d) = duration_s {
            if d.is_nan() {
                return Err(Error::config(
                    "workload.duration_s",
                    "expected a duration > 0 seconds, got NaN",
                ));
            }
            if d <= 0.0 {
                return Err(series_empty(format!(
                    "window duration {d} s; expected a duration > 0 seconds"
                )));
            }
        }
        let first = floor_bins(start_s / self.step_s);
        if first.is_nan() || first >= self.values.len() as f64 {
            return Err(series_empty(format!(
                "window starts at {start_s} s but the series ends at {} s",
                self.duration_s()
            )));
        }
        let first = first as usize;
        let end = match duration_s {
            Some(d) => {
                let count = ceil_bins(d / self.step_s).max(1.0);
                let end = first as f64 + count;
                if end < self.values.len() as f64 {
                    end as usize
                } else {
                    self.values.len()
                }
            }
            None => self.values.len(),
        };
        Ok(RateSeries {
            step_s: self.step_s,
            values: self.values[first..end].to_vec(),
        })
    }

    /// Splits into `(train, evaluation)`: train is the first `round(len * train_fraction)` bins
    /// (at least 1, at most `len - 1`), evaluation the rest.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidConfig`] (`workload.train_fraction`) unless `0 < train_fraction < 1`.
    /// * [`Error::EmptyWindow`] if the series has fewer than 2 bins, so one part would be empty.
    pub fn split(&self, train_fraction: f64) -> Result<(RateSeries, RateSeries)> {
        if !(train_fraction > 0.0 && train_fraction < 1.0) {
            return Err(Error::config(
                "workload.train_fraction",
                format!("expected a fraction strictly between 0 and 1, got {train_fraction}"),
            ));
        }
        let len = self.values.len();
        if len < 2 {
            return Err(series_empty(format!(
                "cannot split a series of {len} bin(s) into non-empty train and evaluation parts; expected at least 2 bins"
            )));
        }
        let n_train = ((len as f64 * train_fraction).round() as usize).clamp(1, len - 1);
        let (train, eval) = self.values.split_at(n_train);
        Ok((
            RateSeries {
                step_s: self.step_s,
                values: train.to_vec(),
            },
            RateSeries {
                step_s: self.step_s,
                values: eval.to_vec(),
            },
        ))
    }

    /// Multiplies every value so the largest becomes `peak_rps` requests per second.
    ///
    /// # Errors
    ///
    /// * [`Error::InvalidConfig`] (`workload.peak_rps`) unless `peak_rps` is finite and `> 0`.
    /// * [`Error::EmptyWindow`] if the series is empty or all zero (no shape to scale).
    pub fn scale_to_peak(&self, peak_rps: f64) -> Result<RateSeries> {
        if !(peak_rps.is_finite() && peak_rps > 0.0) {
            return Err(Error::config(
                "workload.peak_rps",
                format!("expected a finite peak > 0 requests/s, got {peak_rps}"),
            ));
        }
        let peak = self.peak();
        if peak.is_nan() || peak <= 0.0 {
            return Err(series_empty(format!(
                "the window's {} bin(s) are all zero, so it cannot be scaled to a peak of {peak_rps} requests/s",
                self.values.len()
            )));
        }
        let factor = peak_rps / peak;
        let values = self
            .values
            .iter()
            .map(|&v| if v == peak { peak_rps } else { v * factor })
            .collect();
        Ok(RateSeries {
            step_s: self.step_s,
            values,
        })
    }

    /// Time compression: the same rates played `factor` times faster (`step_s / factor`; a day
    /// compressed by 24 lasts an hour). Rates are unchanged, so the total number of requests
    /// shrinks by `factor`. A `factor` that is not finite and `> 0` leaves the series unchanged
    /// (the workload config rejects such factors before this is called).
    pub fn compress(&self, factor: f64) -> RateSeries {
        let step_s = if factor.is_finite() && factor > 0.0 {
            self.step_s / factor
        } else {
            self.step_s
        };
        RateSeries {
            step_s,
            values: self.values.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(ts: &[f64], vs: &[f64]) -> Trace {
        Trace {
            path: PathBuf::from("mem.csv"),
            timestamps_s: ts.to_vec(),
            values: vs.to_vec(),
        }
    }

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn infer_value_kind_from_dataset_names() {
        let cpu = [
            "nab_aws_ec2_cpu_ac20cd_5min.csv",
            "bitbrains_rnd_vm411_aug2013_5min.csv",
        ];
        for name in cpu {
            assert_eq!(
                ValueKind::infer(Path::new(name)),
                ValueKind::CpuPercent,
                "{name}"
            );
        }
        let rr = [
            "nasa_http_jul1995_1min.csv",
            "nab_aws_elb_request_count_5min.csv",
            "cpu_dir/x.csv",
        ];
        for name in rr {
            assert_eq!(
                ValueKind::infer(Path::new(name)),
                ValueKind::RequestRate,
                "{name}"
            );
        }
    }

    #[test]
    fn median_step_is_lower_middle() {
        assert_eq!(
            trace(&[0.0, 300.0, 900.0], &[1.0; 3]).median_step_s(),
            Some(300.0)
        );
        assert_eq!(
            trace(&[0.0, 1.0, 3.0, 6.0], &[1.0; 4]).median_step_s(),
            Some(2.0)
        );
        assert_eq!(trace(&[5.0], &[1.0]).median_step_s(), None);
    }

    #[test]
    fn single_sample_covers_one_step() {
        let (s, r) = trace(&[0.0], &[3.0])
            .resample(60.0, GapPolicy::Interpolate)
            .unwrap();
        assert_close(&s.values, &[3.0]);
        assert_eq!(r, ResampleReport::default());
    }

    #[test]
    fn partial_last_bin_holds_last_value() {
        // Covers [0, 90): bins [0,60) = 1, [60,120) = 2 held past the end.
        let (s, _) = trace(&[0.0, 30.0, 60.0], &[1.0, 1.0, 2.0])
            .resample(60.0, GapPolicy::Hold)
            .unwrap();
        assert_close(&s.values, &[1.0, 2.0]);
    }

    #[test]
    fn trace_not_starting_at_zero_is_relative_to_first_sample() {
        let (s, _) = trace(&[100.0, 160.0], &[1.0, 5.0])
            .resample(60.0, GapPolicy::Hold)
            .unwrap();
        assert_close(&s.values, &[1.0, 5.0]);
    }

    #[test]
    fn resample_rejects_bad_steps_and_hand_made_invalid_traces() {
        let t = trace(&[0.0, 1.0], &[1.0, 1.0]);
        for step in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                t.resample(step, GapPolicy::Hold),
                Err(Error::InvalidConfig { ref field, .. }) if field == "workload.resample_s"
            ));
        }
        assert!(matches!(
            t.resample(1e-9, GapPolicy::Hold),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            t.resample_with_max_gap(1.0, GapPolicy::Hold, 0.0),
            Err(Error::InvalidConfig { ref field, .. }) if field == "workload.max_gap_s"
        ));
        let bad = trace(&[0.0, 0.0], &[1.0, 1.0]);
        assert!(matches!(
            bad.resample(1.0, GapPolicy::Hold),
            Err(Error::TraceFormat { line: 3, .. })
        ));
        let bad = trace(&[0.0, 1.0], &[1.0]);
        assert!(matches!(
            bad.resample(1.0, GapPolicy::Hold),
            Err(Error::TraceFormat { .. })
        ));
        let empty = trace(&[], &[]);
        assert!(matches!(
            empty.resample(1.0, GapPolicy::Hold),
            Err(Error::EmptyWindow { .. })
        ));
    }

    #[test]
    fn rate_at_is_piecewise_constant_and_holds_last() {
        let s = RateSeries {
            step_s: 0.1,
            values: vec![1.0, 2.0, 3.0, 4.0],
        };
        assert_eq!(s.rate_at(SimTime::ZERO), 1.0);
        assert_eq!(s.rate_at(SimTime::from_millis(99)), 1.0);
        assert_eq!(s.rate_at(SimTime::from_millis(100)), 2.0);
        assert_eq!(s.rate_at(SimTime::from_millis(300)), 4.0);
        assert_eq!(s.rate_at(SimTime::from_secs(1_000_000)), 4.0);
        assert_eq!(s.rate_at(SimTime(u64::MAX)), 4.0);
        assert_eq!(
            RateSeries {
                step_s: 1.0,
                values: vec![]
            }
            .rate_at(SimTime::ZERO),
            0.0
        );
    }

    #[test]
    fn window_snaps_to_bins_and_truncates() {
        let s = RateSeries {
            step_s: 60.0,
            values: (0..10).map(f64::from).collect(),
        };
        assert_close(&s.window(90.0, Some(100.0)).unwrap().values, &[1.0, 2.0]);
        assert_close(&s.window(480.0, Some(1e9)).unwrap().values, &[8.0, 9.0]);
        assert_close(
            &s.window(0.0, Some(f64::INFINITY)).unwrap().values,
            &s.values,
        );
        assert!(matches!(
            s.window(600.0, None),
            Err(Error::EmptyWindow { .. })
        ));
        assert!(matches!(
            s.window(0.0, Some(0.0)),
            Err(Error::EmptyWindow { .. })
        ));
        assert!(matches!(
            s.window(-1.0, None),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            s.window(0.0, Some(f64::NAN)),
            Err(Error::InvalidConfig { .. })
        ));
    }

    #[test]
    fn split_scale_compress() {
        let s = RateSeries {
            step_s: 10.0,
            values: vec![0.0, 1.0, 2.0, 4.0],
        };
        let (a, b) = s.split(0.01).unwrap();
        assert_eq!((a.values.len(), b.values.len()), (1, 3));
        let (a, b) = s.split(0.99).unwrap();
        assert_eq!((a.values.len(), b.values.len()), (3, 1));
        let scaled = s.scale_to_peak(100.0).unwrap();
        assert_close(&scaled.values, &[0.0, 25.0, 50.0, 100.0]);
        assert_eq!(scaled.peak(), 100.0);
        let c = s.compress(4.0);
        assert_eq!(c.step_s, 2.5);
        assert_eq!(c.values, s.values);
        assert_eq!(s.compress(0.0).step_s, 10.0);
        assert_eq!(s.duration_s(), 40.0);
        assert_eq!(s.mean(), 1.75);
        assert_eq!(s.total_requests(), 70.0);
        let zero = RateSeries {
            step_s: 1.0,
            values: vec![0.0; 3],
        };
        assert!(matches!(
            zero.scale_to_peak(1.0),
            Err(Error::EmptyWindow { .. })
        ));
        let one = RateSeries {
            step_s: 1.0,
            values: vec![1.0],
        };
        assert!(matches!(one.split(0.5), Err(Error::EmptyWindow { .. })));
    }
}
