//! `nimbusguard anomaly [CONFIG] [--out DIR]`: evaluates the streaming anomaly detectors of
//! [`agents::anomaly`] on the NAB traces of `datasets/`, whose anomaly windows NAB publishes
//! (transcribed in `datasets/labels/nab_windows.json`).
//!
//! For each trace and detector the trace is streamed one value at a time, as an autoscaler
//! would see it. As in NAB, the first [`AnomalyExperiment::probationary_fraction`] of each
//! file is a probationary period: learned detectors train on it, every detector warms up on
//! it, and flags in it are not scored. Scoring is NAB's window scoring in spirit (not NAB's
//! weighted score): a flag inside a labelled window (ends included) is a true positive for
//! that window, a flag outside every window a false positive. Reported per trace and
//! detector: window recall (windows with at least one flag / windows), point precision
//! (flags inside windows / all flags), the counts, and the chance precision (the share of
//! scored points inside windows: the precision of flags placed at random).
//!
//! Outputs in DIR (default `results/<experiment>`): `anomaly.toml` (the resolved config),
//! `anomaly.json` (schema [`SCHEMA`]), `anomaly.md`, and `plots/anomaly_<trace>.png` (see
//! [`crate::anomaly_plot`]). The config is [`crate::anomaly_config`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use crate::anomaly_config::{AnomalyExperiment, DetectorSpec, ForecasterSpec};

/// Schema id of `anomaly.json`.
pub const SCHEMA: &str = "nimbusguard.anomaly/v1";
/// The config used when none is given.
pub const DEFAULT_CONFIG: &str = "experiments/configs/anomaly.toml";

/// NAB's probationary length in points for a file of `points` points.
pub fn probationary_points(fraction: f64, points: usize) -> usize {
    let f = |n: f64| (fraction * n).floor() as usize;
    f(points as f64).min(f(5000.0))
}

/// `datasets/labels/nab_windows.json`: NAB windows per trace file name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NabLabels {
    /// `nimbusguard.nab-windows/v1`.
    pub schema: String,
    /// Where the labels come from (repository, paths, commits, licence).
    pub source: serde_json::Value,
    /// Keyed by the trace's file name in `datasets/`.
    pub traces: BTreeMap<String, LabelledTrace>,
}

/// The labels of one trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelledTrace {
    /// The file in NAB's `data/` folder.
    pub nab_file: String,
    /// Timestamp of the first row in NAB's file (`timestamp_s` 0).
    pub first_timestamp: String,
    /// `timestamp_s` of the last row.
    pub last_timestamp_s: f64,
    /// Rows of the file.
    pub rows: usize,
    /// NAB's anomaly windows.
    pub windows: Vec<Window>,
    /// NAB's point labels (the anomalies the windows are centred on).
    pub labels: Vec<PointLabel>,
}

/// One labelled window, both ends included.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    /// Start in NAB's timestamps.
    pub start: String,
    /// End in NAB's timestamps.
    pub end: String,
    /// Start, seconds since the first row.
    pub start_timestamp_s: f64,
    /// End, seconds since the first row.
    pub end_timestamp_s: f64,
}

impl Window {
    /// Whether `t` (seconds since the first row) lies in the window, ends included.
    pub fn contains(&self, t: f64) -> bool {
        (self.start_timestamp_s..=self.end_timestamp_s).contains(&t)
    }
}

/// One NAB point label.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointLabel {
    /// NAB's timestamp.
    pub timestamp: String,
    /// Seconds since the first row.
    pub timestamp_s: f64,
}

impl NabLabels {
    /// Reads the labels file.
    ///
    /// # Errors
    /// Unreadable file or invalid JSON.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read labels {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("invalid labels {}", path.display()))
    }
}

/// Scores of one detector on one trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorScores {
    /// Flags after the probationary period.
    pub flags: usize,
    /// Flags inside a labelled window.
    pub tp: usize,
    /// Flags outside every window.
    pub fp: usize,
    /// Labelled windows.
    pub windows: usize,
    /// Windows with at least one flag.
    pub windows_detected: usize,
    /// `windows_detected / windows` (`null` without windows).
    pub window_recall: Option<f64>,
    /// `tp / flags` (`null` without flags).
    pub point_precision: Option<f64>,
    /// Per window: its flags and the delay of the first one from the window's start (s).
    pub per_window: Vec<WindowScore>,
}

/// Flags in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowScore {
    /// Window start, seconds since the first row.
    pub start_timestamp_s: f64,
    /// Flags inside the window.
    pub flags: usize,
    /// Seconds from the window's start to its first flag (`null` if none).
    pub first_flag_delay_s: Option<f64>,
}

/// Scores `flagged` (one per point at `timestamps_s`), ignoring points before `first_scored`.
pub fn score_flags(
    timestamps_s: &[f64],
    flagged: &[bool],
    first_scored: usize,
    windows: &[Window],
) -> DetectorScores {
    let mut per_window: Vec<WindowScore> = windows
        .iter()
        .map(|w| WindowScore {
            start_timestamp_s: w.start_timestamp_s,
            flags: 0,
            first_flag_delay_s: None,
        })
        .collect();
    let (mut flags, mut tp) = (0, 0);
    let points = timestamps_s.iter().zip(flagged).skip(first_scored);
    for (&t, _) in points.filter(|(_, &f)| f) {
        flags += 1;
        if let Some(k) = windows.iter().position(|w| w.contains(t)) {
            tp += 1;
            let ws = &mut per_window[k];
            ws.flags += 1;
            ws.first_flag_delay_s
                .get_or_insert(t - windows[k].start_timestamp_s);
        }
    }
    let detected = per_window.iter().filter(|w| w.flags > 0).count();
    DetectorScores {
        flags,
        tp,
        fp: flags - tp,
        windows: windows.len(),
        windows_detected: detected,
        window_recall: (!windows.is_empty()).then(|| detected as f64 / windows.len() as f64),
        point_precision: (flags > 0).then(|| tp as f64 / flags as f64),
        per_window,
    }
}

/// Results for one trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceResult {
    /// Points in the trace.
    pub points: usize,
    /// Probationary points (training, not scored).
    pub probationary_points: usize,
    /// Scored points inside a window / scored points: the precision of random flags.
    pub chance_precision: f64,
    /// The labelled windows.
    pub windows: Vec<Window>,
    /// Scores keyed by detector name.
    pub detectors: BTreeMap<String, DetectorScores>,
    /// Flagged point indices per detector (for plots; not written to JSON).
    #[serde(skip)]
    pub flag_indices: BTreeMap<String, Vec<usize>>,
    /// The series (for plots; not written to JSON).
    #[serde(skip)]
    pub series: (Vec<f64>, Vec<f64>),
}

/// Streams one trace through every detector of `cfg`.
///
/// # Errors
/// A detector that fails to train on the probationary period, naming trace and detector.
pub fn evaluate_trace(
    cfg: &AnomalyExperiment,
    name: &str,
    timestamps_s: &[f64],
    values: &[f64],
    windows: &[Window],
) -> Result<TraceResult> {
    let n = values.len();
    let p = probationary_points(cfg.probationary_fraction, n);
    let scored = &timestamps_s[p.min(n)..];
    let inside = scored
        .iter()
        .filter(|&&t| windows.iter().any(|w| w.contains(t)))
        .count();
    let mut result = TraceResult {
        points: n,
        probationary_points: p,
        chance_precision: inside as f64 / scored.len().max(1) as f64,
        windows: windows.to_vec(),
        detectors: BTreeMap::new(),
        flag_indices: BTreeMap::new(),
        series: (timestamps_s.to_vec(), values.to_vec()),
    };
    for spec in &cfg.detectors {
        let mut d = spec.build()?;
        d.fit(&values[..p])
            .with_context(|| format!("{name}: detector `{}` cannot train", spec.name))?;
        let flagged: Vec<bool> = values.iter().map(|&v| d.observe(v).flagged).collect();
        let scores = score_flags(timestamps_s, &flagged, p, windows);
        let idx = (p..n).filter(|&i| flagged[i]).collect();
        result.flag_indices.insert(spec.name.clone(), idx);
        result.detectors.insert(spec.name.clone(), scores);
    }
    Ok(result)
}

/// The first of the current folder, `config_dir` and the repository root where `path`
/// exists (`path` itself if none).
fn resolve(path: &Path, config_dir: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [PathBuf::from("."), config_dir.to_path_buf(), root]
        .iter()
        .map(|d| d.join(path))
        .find(|p| p.exists())
        .unwrap_or_else(|| path.to_path_buf())
}

/// Files this command writes (besides one plot per trace), removed before a new run.
const OUTPUTS: [&str; 3] = ["anomaly.toml", "anomaly.json", "anomaly.md"];

/// Runs the evaluation of the config at `config` (found under the repository root if it is
/// not in the current folder) and writes every output to `out` (default
/// `results/<experiment>`). Returns the output folder.
///
/// # Errors
/// Invalid config or labels, a trace that cannot be read or has no labels, an output folder
/// that cannot be written.
pub fn execute(config: &Path, out: Option<&Path>) -> Result<PathBuf> {
    let config = crate::config::locate_config(config);
    let cfg = AnomalyExperiment::load(&config)?;
    let config_dir = config.parent().unwrap_or(Path::new(".")).to_path_buf();
    let labels = NabLabels::load(&resolve(&cfg.labels, &config_dir))?;
    let mut inputs = Vec::new();
    for t in &cfg.traces {
        let path = resolve(t, &config_dir);
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let Some(lt) = labels.traces.get(&file) else {
            bail!(
                "trace {}: no labelled windows for `{file}` in {}",
                t.display(),
                cfg.labels.display()
            );
        };
        let trace =
            sim::trace::Trace::load(&path).with_context(|| format!("trace {}", t.display()))?;
        inputs.push((file, trace, lt.windows.clone()));
    }
    let results: Vec<(String, TraceResult)> = inputs
        .into_par_iter()
        .map(|(file, trace, windows)| {
            evaluate_trace(&cfg, &file, &trace.timestamps_s, &trace.values, &windows)
                .map(|r| (file, r))
        })
        .collect::<Result<_>>()?;

    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("results").join(&cfg.experiment));
    prepare_out_dir(&dir, &config)?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("cannot write {}", dir.join(name).display()))
    };
    write("anomaly.toml", &toml::to_string_pretty(&cfg)?)?;
    write("anomaly.json", &render_json(&cfg, &labels, &results)?)?;
    write("anomaly.md", &render_markdown(&cfg, &results))?;
    for (file, r) in &results {
        let stem = file.trim_end_matches(".csv");
        crate::anomaly_plot::plot_trace(
            dir.join("plots").join(format!("anomaly_{stem}.png")),
            file,
            r,
            &cfg.detectors,
        )?;
    }
    Ok(dir)
}

/// Creates `dir`, removing this command's earlier outputs there and nothing else.
fn prepare_out_dir(dir: &Path, config: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("--out {}: exists and is not a folder", dir.display());
    }
    let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y);
    if same(&dir.join("anomaly.toml"), config) {
        bail!(
            "--out {}: its anomaly.toml is the config being run and would be overwritten",
            dir.display()
        );
    }
    let mut stale: Vec<PathBuf> = OUTPUTS.iter().map(|n| dir.join(n)).collect();
    if let Ok(entries) = std::fs::read_dir(dir.join("plots")) {
        stale.extend(
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("anomaly_"))
                }),
        );
    }
    for p in stale.iter().filter(|p| p.is_file()) {
        std::fs::remove_file(p)
            .with_context(|| format!("cannot remove the earlier output {}", p.display()))?;
    }
    std::fs::create_dir_all(dir.join("plots"))
        .with_context(|| format!("cannot create output folder {}", dir.display()))
}

/// `anomaly.json` (schema [`SCHEMA`]): the config's detectors, the labels' source, and per
/// trace its points, windows and every detector's [`DetectorScores`]; `overall` sums the
/// counts of each detector over the traces.
pub fn render_json(
    cfg: &AnomalyExperiment,
    labels: &NabLabels,
    results: &[(String, TraceResult)],
) -> Result<String> {
    let traces: BTreeMap<&str, &TraceResult> =
        results.iter().map(|(f, r)| (f.as_str(), r)).collect();
    let overall: BTreeMap<&str, serde_json::Value> = cfg
        .detectors
        .iter()
        .map(|d| {
            let s = overall(results, &d.name);
            (d.name.as_str(), serde_json::to_value(s).unwrap_or_default())
        })
        .collect();
    let doc = serde_json::json!({
        "schema": SCHEMA,
        "experiment": cfg.experiment,
        "probationary_fraction": cfg.probationary_fraction,
        "labels_source": labels.source,
        "detectors": cfg.detectors,
        "traces": traces,
        "overall": overall,
    });
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

/// The counts of detector `name` summed over `results` (no per-window detail).
fn overall(results: &[(String, TraceResult)], name: &str) -> DetectorScores {
    let all: Vec<&DetectorScores> = results
        .iter()
        .filter_map(|(_, r)| r.detectors.get(name))
        .collect();
    let sum = |f: fn(&DetectorScores) -> usize| all.iter().map(|s| f(s)).sum::<usize>();
    let (flags, tp, windows, detected) = (
        sum(|s| s.flags),
        sum(|s| s.tp),
        sum(|s| s.windows),
        sum(|s| s.windows_detected),
    );
    DetectorScores {
        flags,
        tp,
        fp: flags - tp,
        windows,
        windows_detected: detected,
        window_recall: (windows > 0).then(|| detected as f64 / windows as f64),
        point_precision: (flags > 0).then(|| tp as f64 / flags as f64),
        per_window: Vec::new(),
    }
}

/// `anomaly.md`: one table row per trace and detector, then the totals.
pub fn render_markdown(cfg: &AnomalyExperiment, results: &[(String, TraceResult)]) -> String {
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{:.0}%", 100.0 * v));
    let mut md = format!(
        "# Anomaly detection on NAB: {}\n\nFlags after the probationary period (first {:.0}% \
         of each trace). A flag inside a labelled window is a true positive (TP), outside every \
         window a false positive (FP). Chance precision: share of scored points inside a \
         window.\n\n| trace | detector | windows detected | window recall | flags | TP | FP | \
         point precision | chance precision |\n|---|---|---|---|---|---|---|---|---|\n",
        cfg.experiment,
        100.0 * cfg.probationary_fraction
    );
    for (file, r) in results {
        for d in &cfg.detectors {
            let s = &r.detectors[&d.name];
            md += &format!(
                "| `{file}` | {} | {}/{} | {} | {} | {} | {} | {} | {:.0}% |\n",
                d.name,
                s.windows_detected,
                s.windows,
                pct(s.window_recall),
                s.flags,
                s.tp,
                s.fp,
                pct(s.point_precision),
                100.0 * r.chance_precision
            );
        }
    }
    for d in &cfg.detectors {
        let s = overall(results, &d.name);
        md += &format!(
            "| all | {} | {}/{} | {} | {} | {} | {} | {} | |\n",
            d.name,
            s.windows_detected,
            s.windows,
            pct(s.window_recall),
            s.flags,
            s.tp,
            s.fp,
            pct(s.point_precision)
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(a: f64, b: f64) -> Window {
        Window {
            start: String::new(),
            end: String::new(),
            start_timestamp_s: a,
            end_timestamp_s: b,
        }
    }

    #[test]
    fn flags_are_scored_by_window_after_the_probationary_period() {
        let t: Vec<f64> = (0..10).map(f64::from).collect();
        // Flags at 1 (probationary: ignored), 3 and 4 (window [2, 4]), 5 and 8 (outside).
        let mut flagged = [false; 10];
        for i in [1, 3, 4, 5, 8] {
            flagged[i] = true;
        }
        let s = score_flags(&t, &flagged, 2, &[window(2.0, 4.0), window(7.0, 7.0)]);
        assert_eq!((s.flags, s.tp, s.fp), (4, 2, 2));
        assert_eq!((s.windows, s.windows_detected), (2, 1));
        assert_eq!((s.window_recall, s.point_precision), (Some(0.5), Some(0.5)));
        assert_eq!(s.per_window[0].first_flag_delay_s, Some(1.0));
        assert_eq!(s.per_window[1].first_flag_delay_s, None);
        let none = score_flags(&t, &[false; 10], 0, &[]);
        assert_eq!((none.window_recall, none.point_precision), (None, None));
    }

    #[test]
    fn probation_follows_nab() {
        // NAB: min(floor(0.15 * 4032), floor(0.15 * 5000)) = min(604, 750).
        assert_eq!(probationary_points(0.15, 4032), 604);
        assert_eq!(probationary_points(0.15, 10_000), 750);
        assert_eq!(probationary_points(0.0, 100), 0);
    }
}
