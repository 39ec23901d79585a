//! `nimbusguard forecast [CONFIG] [--trace CSV]... [--out DIR]`: trains and scores every
//! forecaster on every trace (DESIGN.md section 6).
//!
//! Per trace: load it ([`sim::trace::Trace::load`]), resample to its step (the config's
//! `step_s`, or the trace's own median step when coarser, or a per-trace override) with the
//! gap policy, split into the first `train_fraction` (training) and the rest (test); fit
//! `lstm`, `last-value`, `seasonal-naive`, `ewma` and `holt-winters` on the training window and
//! score each with [`agents::forecast::metrics::evaluate`] on the test window, `horizon_steps =
//! max(1, round(horizon_s / step))` ahead. Traces run in parallel (one thread each, results
//! independent of the thread count). A seasonal forecaster whose period does not fit the trace
//! is skipped and the reason recorded; a config that cannot work (an LSTM window longer than
//! the training window, a missing trace) is an error before anything is written.
//!
//! Writes `forecast.json` (schema [`FORECAST_SCHEMA`]), `forecast.md`, `forecast_config.toml`
//! (resolved), `plots/forecast_<trace stem>.png` and `models/<trace stem>/` (the trained LSTM).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use agents::forecast::lstm::TrainEvent;
use agents::forecast::metrics::evaluate_with_forecasts;
use agents::forecast::{
    Ewma, ForecastError, Forecaster, HoltWinters, LastValue, LstmForecaster, Scores, SeasonalNaive,
};
use anyhow::{bail, Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rayon::prelude::*;
use sim::trace::{Trace, ValueKind};

use crate::forecast_config::{resolve_trace, ForecastConfig, DEFAULT_FORECAST_CONFIG};

/// `schema` of `forecast.json`.
pub const FORECAST_SCHEMA: &str = "nimbusguard.forecast/v1";

/// Forecaster names in report order.
pub const FORECASTERS: [&str; 5] = [
    "lstm",
    "last-value",
    "seasonal-naive",
    "ewma",
    "holt-winters",
];

/// One trace, resampled and split, ready to forecast.
#[derive(Debug, Clone)]
pub struct PreparedTrace {
    /// File name (the key in `forecast.json`).
    pub name: String,
    /// Resolved path.
    pub path: PathBuf,
    /// Training window (series unit: requests/s or CPU percent).
    pub train: Vec<f64>,
    /// Test window.
    pub test: Vec<f64>,
    /// What trace and results describe besides the scores.
    pub info: TraceInfo,
}

/// Per-trace facts written under `trace_info` in `forecast.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TraceInfo {
    /// The trace file as given (resolved).
    pub path: String,
    /// What the values measure (inferred from the file name).
    pub value_kind: ValueKind,
    /// Median step of the raw trace, seconds.
    pub trace_step_s: Option<f64>,
    /// Step of the resampled series, seconds.
    pub step_s: f64,
    /// Forecast horizon in steps, `max(1, round(horizon_s / step_s))`.
    pub horizon_steps: usize,
    /// Effective horizon, seconds (`horizon_steps * step_s`).
    pub effective_horizon_s: f64,
    /// Seasonal period in steps, where one fits.
    pub season_steps: Option<usize>,
    /// Training points.
    pub train_points: usize,
    /// Test points.
    pub test_points: usize,
    /// Gaps (steps over 1.5 median steps) filled while resampling.
    pub gaps: usize,
    /// Forecasters not scored on this trace, with the reason.
    pub skipped: BTreeMap<String, String>,
    /// LSTM training facts (epochs, kept epoch, losses, speed).
    pub lstm: Option<LstmInfo>,
    /// Smoothing parameters picked by Holt-Winters' fit.
    pub holt_winters: Option<agents::forecast::baselines::HoltWintersParams>,
}

/// What the LSTM's training did on one trace.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LstmInfo {
    /// Epochs run.
    pub epochs: usize,
    /// Epoch whose weights were kept (lowest validation loss).
    pub best_epoch: usize,
    /// Training windows available, validation windows held out.
    pub train_windows: usize,
    /// Validation windows.
    pub validation_windows: usize,
    /// Training loss (normalised MSE) of the first and the last epoch.
    pub train_loss_first_last: (f64, f64),
    /// Lowest validation loss (normalised MSE).
    pub best_validation_loss: Option<f64>,
    /// Training windows per second.
    pub samples_per_s: f64,
    /// Wall time of fitting, seconds.
    pub fit_s: f64,
}

/// Results of one trace.
#[derive(Debug)]
pub struct TraceResult {
    /// The trace (with its info completed).
    pub trace: PreparedTrace,
    /// Scores per forecaster name.
    pub scores: BTreeMap<String, Scores>,
    /// Forecast means over the test window per forecaster (for the plot).
    pub forecasts: BTreeMap<String, Vec<f64>>,
    /// The trained LSTM.
    pub lstm: LstmForecaster,
}

/// `forecast.json`.
#[derive(Debug, serde::Serialize)]
pub struct ForecastReport {
    /// [`FORECAST_SCHEMA`].
    pub schema: &'static str,
    /// The config's experiment name.
    pub experiment: String,
    /// Configured horizon, seconds.
    pub horizon_s: f64,
    /// Fraction of each trace used for training.
    pub train_fraction: f64,
    /// Scores: trace file name -> forecaster name -> `{mae, smape, mase, n}`.
    pub traces: BTreeMap<String, BTreeMap<String, Scores>>,
    /// Facts per trace file name (step, horizon steps, skipped forecasters, LSTM training).
    pub trace_info: BTreeMap<String, TraceInfo>,
}

/// Runs `nimbusguard forecast`: `config` (default [`DEFAULT_FORECAST_CONFIG`]), `traces`
/// replacing the config's list when not empty, outputs under `out` (default
/// `results/<experiment>`), `threads` workers (0 = all cores). Returns the output folder.
///
/// # Errors
/// Config errors (field named), a missing or malformed trace (file named), an LSTM window or
/// horizon longer than a trace's training window (field and file named), I/O errors.
pub fn execute(
    config: Option<&Path>,
    traces: &[PathBuf],
    out: Option<&Path>,
    threads: usize,
) -> Result<PathBuf> {
    let started = Instant::now();
    if threads > crate::cmd_run::MAX_THREADS {
        bail!(
            "--threads: expected 0 (all cores) to {}, got {threads}",
            crate::cmd_run::MAX_THREADS
        );
    }
    let config_path =
        crate::config::locate_config(config.unwrap_or(Path::new(DEFAULT_FORECAST_CONFIG)));
    let mut cfg = ForecastConfig::load(&config_path)?;
    if !traces.is_empty() {
        cfg.traces = traces.to_vec();
    }
    let mut prepared = Vec::with_capacity(cfg.traces.len());
    for t in &cfg.traces {
        prepared.push(prepare(&cfg, &resolve_trace(t, &config_path))?);
    }
    let mut names = std::collections::BTreeSet::new();
    for p in &prepared {
        if !names.insert(p.name.clone()) {
            bail!(
                "`traces`: two traces share the file name {} (results are keyed by it)",
                p.name
            );
        }
    }
    let dir = out.map_or_else(
        || PathBuf::from("results").join(&cfg.experiment),
        Path::to_path_buf,
    );
    prepare_out_dir(&dir)?;
    let mut resolved = cfg.clone();
    resolved.traces = prepared.iter().map(|p| p.path.clone()).collect();
    let text = toml::to_string_pretty(&resolved).context("cannot render the resolved config")?;
    write(&dir.join("forecast_config.toml"), text.as_bytes())?;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start the thread pool")?;
    let bars = MultiProgress::new();
    note_progress(&format!(
        "forecast: training and scoring {} forecasters on {} trace(s)",
        FORECASTERS.len(),
        prepared.len()
    ));
    let results: Vec<Result<TraceResult>> = pool.install(|| {
        prepared
            .into_par_iter()
            .map(|p| run_trace(&cfg, p, &bars))
            .collect()
    });
    let results: Vec<TraceResult> = results.into_iter().collect::<Result<_>>()?;

    let report = ForecastReport {
        schema: FORECAST_SCHEMA,
        experiment: cfg.experiment.clone(),
        horizon_s: cfg.horizon_s,
        train_fraction: cfg.train_fraction,
        traces: results
            .iter()
            .map(|r| (r.trace.name.clone(), r.scores.clone()))
            .collect(),
        trace_info: results
            .iter()
            .map(|r| (r.trace.name.clone(), r.trace.info.clone()))
            .collect(),
    };
    let json = serde_json::to_string_pretty(&report).context("cannot render forecast.json")?;
    write(&dir.join("forecast.json"), json.as_bytes())?;
    let md = render_markdown(&report, started.elapsed().as_secs_f64());
    write(&dir.join("forecast.md"), md.as_bytes())?;
    for r in &results {
        let stem = stem(&r.trace.name);
        if cfg.save_models {
            r.lstm
                .save(&dir.join("models").join(&stem))
                .with_context(|| format!("while saving the LSTM of {}", r.trace.name))?;
        }
        crate::forecast_plot::plot_forecasts(
            &dir.join("plots").join(format!("forecast_{stem}.png")),
            r,
            cfg.plot_points,
        )?;
    }
    Ok(dir)
}

/// One line on stderr when it is not a terminal (where the progress bars do not show).
fn note_progress(what: &str) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        eprintln!("nimbusguard: {what}");
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The file name without its extension.
fn stem(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_string(), |s| s.to_string_lossy().into_owned())
}

/// Creates `dir`, removing the outputs of an earlier forecast run there (and nothing else).
fn prepare_out_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("--out {}: exists and is not a folder", dir.display());
    }
    for f in ["forecast.json", "forecast.md", "forecast_config.toml"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let remove_matching = |sub: &Path, keep: &dyn Fn(&Path) -> bool| {
        if let Ok(entries) = std::fs::read_dir(sub) {
            for e in entries.flatten() {
                if !keep(&e.path()) {
                    continue;
                }
                if e.path().is_dir() {
                    for f in ["config.json", "model.bpk"] {
                        let _ = std::fs::remove_file(e.path().join(f));
                    }
                    let _ = std::fs::remove_dir(e.path());
                } else {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    };
    remove_matching(&dir.join("plots"), &|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("forecast_"))
    });
    remove_matching(&dir.join("models"), &|p| p.is_dir());
    std::fs::create_dir_all(dir.join("plots"))
        .with_context(|| format!("cannot create {}", dir.join("plots").display()))
}

/// Loads, resamples and splits one trace, checking that the LSTM can train on it.
///
/// # Errors
/// The trace cannot be read or parsed (file and line named); the training window is shorter
/// than `lstm.window + horizon` (field, file and sizes named).
pub fn prepare(cfg: &ForecastConfig, path: &Path) -> Result<PreparedTrace> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let trace =
        Trace::load(path).with_context(|| format!("cannot load trace {}", path.display()))?;
    let median = trace.median_step_s();
    let step_s = cfg.step_for(&name, median);
    let (series, report) = trace
        .resample(step_s, cfg.gap_policy)
        .with_context(|| format!("cannot resample trace {} to {step_s} s", path.display()))?;
    let (train, test) = series
        .split(cfg.train_fraction)
        .with_context(|| format!("cannot split trace {}", path.display()))?;
    let horizon_steps = cfg.horizon_steps(step_s);
    let needed = cfg.lstm.window + horizon_steps;
    if train.values.len() < needed {
        bail!(
            "`lstm.window`: trace {name} has {} training points at a {step_s} s step, fewer than \
             the window of {} plus the horizon of {horizon_steps} steps; shorten the window, \
             lower `step_s` (or `step_overrides.\"{name}\"`) or raise `train_fraction`",
            train.values.len(),
            cfg.lstm.window
        );
    }
    Ok(PreparedTrace {
        info: TraceInfo {
            path: path.display().to_string(),
            value_kind: ValueKind::infer(path),
            trace_step_s: median,
            step_s,
            horizon_steps,
            effective_horizon_s: horizon_steps as f64 * step_s,
            season_steps: cfg.season_steps(step_s),
            train_points: train.values.len(),
            test_points: test.values.len(),
            gaps: report.gaps,
            skipped: BTreeMap::new(),
            lstm: None,
            holt_winters: None,
        },
        name,
        path: path.to_path_buf(),
        train: train.values,
        test: test.values,
    })
}

/// Fits and scores every forecaster on one trace.
fn run_trace(
    cfg: &ForecastConfig,
    mut p: PreparedTrace,
    bars: &MultiProgress,
) -> Result<TraceResult> {
    let h = p.info.horizon_steps;
    let ctx = |what: &str| format!("{what} on trace {}", p.name);
    let mut scores = BTreeMap::new();
    let mut forecasts = BTreeMap::new();
    let mut record = |name: &str, f: &dyn Forecaster, info: &mut TraceInfo| -> Result<()> {
        match evaluate_with_forecasts(f, &p.train, &p.test) {
            Ok((s, fc)) => {
                scores.insert(name.to_string(), s);
                forecasts.insert(name.to_string(), fc.iter().map(|f| f.mean).collect());
                Ok(())
            }
            Err(e @ ForecastError::TooShort { .. }) => {
                info.skipped.insert(name.to_string(), e.to_string());
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("scoring {name} on trace {}", p.name)),
        }
    };

    // LSTM.
    let lstm_cfg = agents::forecast::LstmForecasterConfig {
        horizon_steps: h,
        ..cfg.lstm.clone()
    };
    let mut lstm = LstmForecaster::new(lstm_cfg).with_context(|| ctx("configuring lstm"))?;
    let bar = bars.add(ProgressBar::new(0)).with_style(
        ProgressStyle::with_template(
            "{msg:>28} [{bar:30}] {pos}/{len} batches ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(stem(&p.name));
    let fit_started = Instant::now();
    lstm.fit_with_progress(&p.train, &mut |e| match e {
        TrainEvent::Batch { epoch, batch, batches, .. } => {
            bar.set_length((cfg.lstm.epochs * batches) as u64);
            bar.set_position(((epoch - 1) * batches + batch) as u64);
        }
        TrainEvent::Epoch { epoch, epochs, train_loss, validation_loss } => {
            tracing::info!(trace = %p.name, epoch, epochs, train_loss, ?validation_loss, "lstm epoch");
        }
    })
    .with_context(|| ctx("training lstm"))?;
    bar.finish_and_clear();
    let fit_s = fit_started.elapsed().as_secs_f64();
    if let Some(s) = lstm.training_summary() {
        p.info.lstm = Some(LstmInfo {
            epochs: s.epochs,
            best_epoch: s.best_epoch,
            train_windows: s.train_windows,
            validation_windows: s.validation_windows,
            train_loss_first_last: (
                s.train_loss.first().copied().unwrap_or(f64::NAN),
                s.train_loss.last().copied().unwrap_or(f64::NAN),
            ),
            best_validation_loss: s.validation_loss.iter().copied().min_by(f64::total_cmp),
            samples_per_s: s.samples_per_s,
            fit_s,
        });
    }
    let mut info = p.info.clone();
    record("lstm", &lstm, &mut info)?;

    // Baselines.
    let mut last = LastValue::new(h)?;
    last.fit(&p.train)
        .with_context(|| ctx("fitting last-value"))?;
    record("last-value", &last, &mut info)?;
    match info.season_steps {
        Some(period) => {
            let mut sn = SeasonalNaive::new(period, h)?;
            match sn.fit(&p.train) {
                Ok(()) => record("seasonal-naive", &sn, &mut info)?,
                Err(e) => skip(&mut info, "seasonal-naive", &e),
            }
            // As many periods as configured, fewer (at least 2) when the history before the
            // first test point is shorter.
            let periods = cfg
                .holt_winters_history_periods
                .min((p.train.len() + 1).saturating_sub(h) / period)
                .max(2);
            let mut hw = HoltWinters::new(period, h)?.with_history_periods(periods)?;
            match hw.fit(&p.train) {
                Ok(()) => {
                    info.holt_winters = Some(hw.params());
                    record("holt-winters", &hw, &mut info)?;
                }
                Err(e) => skip(&mut info, "holt-winters", &e),
            }
        }
        None => {
            for name in ["seasonal-naive", "holt-winters"] {
                info.skipped
                    .insert(name.into(), "no seasonal period of at least 2 steps".into());
            }
        }
    }
    let mut ewma = Ewma::new(cfg.ewma_alpha, h)?;
    ewma.fit(&p.train).with_context(|| ctx("fitting ewma"))?;
    record("ewma", &ewma, &mut info)?;
    p.info = info;
    Ok(TraceResult {
        trace: p,
        scores,
        forecasts,
        lstm,
    })
}

fn skip(info: &mut TraceInfo, name: &str, e: &ForecastError) {
    info.skipped
        .insert(name.into(), format!("training window too short: {e}"));
}

/// `forecast.md`: MASE per trace and forecaster (best in bold), then MAE and sMAPE.
pub fn render_markdown(report: &ForecastReport, wall_s: f64) -> String {
    let mut md = format!(
        "# Forecast accuracy, {} s ahead\n\nTest window: the last {:.0}% of each trace. MASE < 1 \
         beats the naive (last-value) forecast of the same horizon on the training window; best \
         per trace in bold; `-` = not run (see notes).\n\n",
        report.horizon_s,
        100.0 * (1.0 - report.train_fraction)
    );
    let table = |md: &mut String, title: &str, get: &dyn Fn(&Scores) -> Option<f64>, bold: bool| {
        md.push_str(&format!("## {title}\n\n| trace | step | h | n |"));
        for f in FORECASTERS {
            md.push_str(&format!(" {f} |"));
        }
        md.push_str("\n|---|---:|---:|---:|");
        md.push_str(&"---:|".repeat(FORECASTERS.len()));
        md.push('\n');
        for (name, scores) in &report.traces {
            let info = &report.trace_info[name];
            let best = FORECASTERS
                .iter()
                .filter_map(|f| scores.get(*f).and_then(get))
                .min_by(f64::total_cmp);
            let n = scores.values().map(|s| s.n).max().unwrap_or(0);
            md.push_str(&format!(
                "| `{name}` | {} | {} | {n} |",
                fmt_step(info.step_s),
                info.horizon_steps
            ));
            for f in FORECASTERS {
                let cell = match scores.get(f).and_then(get) {
                    Some(v) if bold && Some(v) == best => format!(" **{}** |", fmt(v)),
                    Some(v) => format!(" {} |", fmt(v)),
                    None => " - |".to_string(),
                };
                md.push_str(&cell);
            }
            md.push('\n');
        }
        md.push('\n');
    };
    table(&mut md, "MASE", &|s| s.mase, true);
    table(&mut md, "MAE (series unit)", &|s| Some(s.mae), true);
    table(&mut md, "sMAPE (%)", &|s| Some(s.smape), true);
    md.push_str("## Notes\n\n");
    for (name, info) in &report.trace_info {
        for (f, why) in &info.skipped {
            md.push_str(&format!("- `{name}`: {f} not run: {why}.\n"));
        }
        if let Some(l) = &info.lstm {
            md.push_str(&format!(
                "- `{name}`: lstm trained {} epochs on {} windows (kept epoch {}), {:.0} windows/s, {:.1} s.\n",
                l.epochs, l.train_windows, l.best_epoch, l.samples_per_s, l.fit_s
            ));
        }
    }
    md.push_str(&format!("\nWall time {wall_s:.1} s.\n"));
    md
}

/// Step in the largest whole unit: `60 s` -> `1 min`, `86400 s` -> `1 d`.
fn fmt_step(s: f64) -> String {
    for (unit, secs) in [("d", 86_400.0), ("h", 3_600.0), ("min", 60.0)] {
        if s >= secs && (s / secs).fract() == 0.0 {
            return format!("{} {unit}", s / secs);
        }
    }
    format!("{s} s")
}

/// Three significant digits, no exponent for usual sizes.
fn fmt(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 || a == 0.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}
