//! The calibrated scenario: its text ([`scenario_text`]: the base config with the measured
//! values and a header), and writing it with `calibration.json` once it is checked to load
//! ([`write_outputs`], [`check_scenario`]).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::{distribution_name, mode_name, Calibration, Written};
use crate::config::{base_dir, ExperimentConfig};

/// The scenario's text: `base_doc` with the measured values, the experiment renamed, a
/// relative trace made absolute where it would not resolve from `out`'s folder, and a header
/// naming the machine, date and command.
///
/// # Errors
/// `base_doc` is not a table, or a value cannot be rendered.
pub fn scenario_text(
    c: &Calibration,
    mut base_doc: toml::Value,
    base_cfg: &ExperimentConfig,
    base: &Path,
    out: &Path,
) -> Result<String> {
    let root = base_doc
        .as_table_mut()
        .ok_or_else(|| anyhow!("--base: not a TOML table"))?;
    root.insert(
        "experiment".into(),
        toml::Value::String(c.experiment.clone()),
    );
    let w = &c.written;
    let section = |root: &mut toml::Table, name: &str| -> Result<toml::Table> {
        match root.remove(name) {
            None => Ok(toml::Table::new()),
            Some(toml::Value::Table(t)) => Ok(t),
            Some(_) => bail!("--base: `{name}` is not a table"),
        }
    };
    let mut pod = section(root, "pod")?;
    pod.insert("startup_delay_mean_s".into(), w.startup_delay_mean_s.into());
    pod.insert("startup_delay_std_s".into(), w.startup_delay_std_s.into());
    pod.insert("readiness_delay_s".into(), w.readiness_delay_s.into());
    root.insert("pod".into(), toml::Value::Table(pod));
    let mut service = section(root, "service")?;
    service.insert("mode".into(), mode_name(w.service_mode).into());
    service.insert("cpu_per_request_ms".into(), w.cpu_per_request_ms.into());
    service.insert(
        "cost_distribution".into(),
        distribution_name(w.cost_distribution).into(),
    );
    root.insert("service".into(), toml::Value::Table(service));
    if let Some(t) = base_cfg.workload.trace.as_ref().filter(|t| t.is_relative()) {
        let from_base = base_dir(base_cfg, base).join(t).canonicalize();
        let from_out = base_dir(base_cfg, out).join(t).canonicalize();
        match (from_base, from_out) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), _) => {
                let s = a
                    .to_str()
                    .ok_or_else(|| anyhow!("the trace path {} is not UTF-8", a.display()))?;
                if let Some(toml::Value::Table(wl)) = root.get_mut("workload") {
                    wl.insert("trace".into(), s.into());
                }
            }
            (Err(_), _) => {}
        }
    }
    let body = toml::to_string_pretty(&base_doc).context("cannot render the scenario")?;
    let m = &c.machine;
    let mut head = String::new();
    let _ = writeln!(
        head,
        "# Calibrated scenario, written by `nimbusguard calibrate` on {} ({} cores{}), {}.",
        m.hostname,
        m.cores,
        if m.cpu_model.is_empty() {
            String::new()
        } else {
            format!(", {}", m.cpu_model)
        },
        c.created_utc
    );
    let _ = writeln!(head, "# Command: {}", c.command);
    let _ = writeln!(
        head,
        "# App: {} --listen 127.0.0.1:0 {}",
        c.app.display(),
        c.app_args.join(" ")
    );
    let _ = writeln!(
        head,
        "# Base: {} (its comments are not copied). Measured over {} starts and {} requests:",
        c.base.display(),
        c.starts.len(),
        c.cpu.requests
    );
    let _ = writeln!(
        head,
        "#   start-up {:.4} s (std {:.4}), readiness {:.4} s, CPU {:.3} ms per request, latency CV {:.3} -> {}.",
        c.startup_s.summary.mean,
        c.startup_s.summary.std,
        c.readiness_s.summary.mean,
        c.cpu.cpu_per_request_ms,
        c.cpu.latency_cv,
        distribution_name(w.cost_distribution)
    );
    let _ = writeln!(
        head,
        "# Set here: pod.startup_delay_mean_s, pod.startup_delay_std_s, pod.readiness_delay_s,"
    );
    let _ = writeln!(
        head,
        "# service.cpu_per_request_ms, service.cost_distribution, service.mode = \"{}\" (the live",
        mode_name(w.service_mode)
    );
    let _ = writeln!(
        head,
        "# replicas are FIFO servers behind a round-robin front). Raw figures: calibration.json.\n"
    );
    Ok(head + &body)
}

/// Writes the scenario (checked to load first) and `calibration.json` beside it.
pub(super) fn write_outputs(
    c: &Calibration,
    base_doc: toml::Value,
    base_cfg: &ExperimentConfig,
    base: &Path,
    out: &Path,
) -> Result<()> {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out: cannot create {}", dir.display()))?;
    let text = scenario_text(c, base_doc, base_cfg, base, out)?;
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out: {} names no file", out.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    let checked = check_scenario(&tmp, &c.written);
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context("the calibrated scenario does not load (nothing written)"));
    }
    std::fs::rename(&tmp, out)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), out.display()))?;
    let json_path = dir.join("calibration.json");
    let json = serde_json::to_string_pretty(c)? + "\n";
    std::fs::write(&json_path, json)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    Ok(())
}

/// Loads `path` as an experiment config, builds its traffic and checks it holds `w`.
fn check_scenario(path: &Path, w: &Written) -> Result<()> {
    let cfg = ExperimentConfig::load(path, &[])?;
    crate::runner::traffic(&cfg, path)?;
    let got = Written {
        startup_delay_mean_s: cfg.pod.startup_delay_mean_s,
        startup_delay_std_s: cfg.pod.startup_delay_std_s,
        readiness_delay_s: cfg.pod.readiness_delay_s,
        cpu_per_request_ms: cfg.service.cpu_per_request_ms,
        cost_distribution: cfg.service.cost_distribution,
        service_mode: cfg.service.mode,
    };
    if &got != w {
        bail!("it holds {got:?}, not the measured {w:?}");
    }
    Ok(())
}
