//! Sweep files (TOML, unknown keys rejected): a base experiment config and axes over any of its
//! keys, expanded into a deterministic plan of runs.
//!
//! A sweep's points are the union, in this order, of
//! - `[grid]`: the Cartesian product of its axes (keys in lexicographic order, the last key
//!   varying fastest),
//! - `[random]`: `samples` points drawn from per-key distributions with a seeded ChaCha8
//!   stream (`uniform`, `log_uniform`, `int_uniform`, `choice`),
//! - `[[points]]`: explicit points, each a table of key = value.
//!
//! Every point runs on every trace of `traces` (or the base config's workload when there are
//! none), with `seeds` evaluation seeds inside each run: one run = one `nimbusguard run` of the
//! base config with the point's overrides, so agents are paired over seeds within a run exactly as
//! in `nimbusguard run`. Keys are dotted config paths as in `--set` (`agents.0.hpa.target_cpu_utilization`);
//! in TOML they may be written quoted (`"workload.peak_rps" = [...]`) or as nested tables.
//!
//! ```toml
//! base = "../quickstart.toml"       # relative to this file
//! seeds = 5                          # evaluation.seeds of every run (default: the base's)
//! traces = ["datasets/nasa_http_requests_5min.csv"]
//!
//! [fixed]                            # applied to every run before the axes
//! "training.seed" = 7
//!
//! [grid]
//! "agents.0.hpa.target_cpu_utilization" = [0.5, 0.6, 0.7]
//!
//! [random]
//! seed = 1
//! samples = 4
//! [random.axes]
//! "agents.1.q_learning.alpha" = { log_uniform = [0.01, 0.5] }
//!
//! [[points]]
//! "env.cooldown_s" = 60.0
//! ```
//!
//! Every run's config is loaded and validated when the plan is made ([`SweepPlan::load`]), so a
//! key of the wrong type, an unknown key or an empty axis is reported, naming the key, before
//! anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::ExperimentConfig;

/// The most points a sweep may expand to (grid product + samples + explicit points).
pub const MAX_POINTS: usize = 100_000;

/// A sweep file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Sweep name (MLflow parent runs, reports). Default: the file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// The base experiment config, relative to the sweep file's folder (else to the current
    /// folder or the repository root).
    pub base: PathBuf,
    /// `evaluation.seeds` of every run; default: the base config's.
    #[serde(default)]
    pub seeds: Option<u64>,
    /// Traces (`timestamp_s,value` CSVs) every point runs on; each sets `workload.trace`.
    /// Default: the base config's workload.
    #[serde(default, deserialize_with = "non_empty_traces")]
    pub traces: Vec<PathBuf>,
    /// Overrides applied to every run before the axes (dotted keys, any TOML value).
    #[serde(default)]
    pub fixed: toml::Table,
    /// Grid axes: dotted key = list of values.
    #[serde(default)]
    pub grid: toml::Table,
    /// Random axes.
    #[serde(default)]
    pub random: Option<RandomSection>,
    /// Explicit points: each a table of dotted key = value.
    #[serde(default)]
    pub points: Vec<toml::Table>,
}

/// `[random]`: `samples` points drawn with a seeded stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSection {
    /// Seed of the ChaCha8 stream the samples are drawn from.
    pub seed: u64,
    /// Number of points to draw (at least 1).
    pub samples: usize,
    /// Dotted key = distribution (`{ uniform = [lo, hi] }`, ...).
    pub axes: toml::Table,
}

/// A distribution of a random axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Uniform on `[lo, hi]`, a float.
    Uniform([f64; 2]),
    /// Log-uniform on `[lo, hi]` (0 < lo <= hi), a float: exp of a uniform on `[ln lo, ln hi]`.
    LogUniform([f64; 2]),
    /// Uniform integer on `[lo, hi]`, both included.
    IntUniform([i64; 2]),
    /// One of the listed values, equally likely.
    Choice(Vec<toml::Value>),
}

const DISTRIBUTIONS: [&str; 4] = ["uniform", "log_uniform", "int_uniform", "choice"];

impl Distribution {
    fn check(&self, key: &str) -> Result<()> {
        let ok = |lo: f64, hi: f64| lo.is_finite() && hi.is_finite() && lo <= hi;
        match self {
            Distribution::Uniform([lo, hi]) if !ok(*lo, *hi) => {
                bail!("random.axes.`{key}`: uniform needs finite lo <= hi, got [{lo}, {hi}]")
            }
            Distribution::LogUniform([lo, hi]) if !ok(*lo, *hi) || *lo <= 0.0 => {
                bail!("random.axes.`{key}`: log_uniform needs 0 < lo <= hi, got [{lo}, {hi}]")
            }
            Distribution::IntUniform([lo, hi]) if lo > hi => {
                bail!("random.axes.`{key}`: int_uniform needs lo <= hi, got [{lo}, {hi}]")
            }
            Distribution::Choice(v) if v.is_empty() => {
                bail!("random.axes.`{key}`: choice is empty; expected at least one value")
            }
            _ => Ok(()),
        }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> toml::Value {
        match self {
            Distribution::Uniform([lo, hi]) => {
                toml::Value::Float(lo + (hi - lo) * rng.random::<f64>())
            }
            Distribution::LogUniform([lo, hi]) => {
                let (a, b) = (lo.ln(), hi.ln());
                toml::Value::Float((a + (b - a) * rng.random::<f64>()).exp())
            }
            Distribution::IntUniform([lo, hi]) => toml::Value::Integer(rng.random_range(*lo..=*hi)),
            Distribution::Choice(v) => v[rng.random_range(0..v.len())].clone(),
        }
    }
}

/// One point of a sweep: the overrides it applies, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Point id, `p000`, `p001`, ... in expansion order.
    pub id: String,
    /// Where it comes from: `grid`, `random` or `points`.
    pub source: String,
    /// Dotted key = value (TOML syntax), in application order.
    pub overrides: BTreeMap<String, String>,
}

/// One run of a sweep: a point on one trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Run id, the folder name under `runs/`: the point id, with `-tNN` when there are
    /// several traces.
    pub id: String,
    /// Index of the run in the plan (sharding uses it).
    pub index: usize,
    /// The point's id.
    pub point: String,
    /// The trace's file name (`<base>` when the sweep names no traces).
    pub trace: String,
    /// Every `--set` override of the run, in application order.
    pub overrides: Vec<String>,
}

/// A loaded, validated sweep: its points and the runs they expand to.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    /// Sweep name.
    pub name: String,
    /// The sweep file.
    pub path: PathBuf,
    /// The base config as located.
    pub base: PathBuf,
    /// The points, in expansion order.
    pub points: Vec<Point>,
    /// The runs: points x traces, point-major.
    pub runs: Vec<PlannedRun>,
    /// The validated config of each run (same order as `runs`).
    pub configs: Vec<ExperimentConfig>,
    /// Each run's [`config_fingerprint`] (same order as `runs`).
    pub fingerprints: Vec<String>,
}

/// A fingerprint of a run's whole config: xxh3-64 (a fixed, specified hash: the same on every
/// machine and toolchain) of its TOML rendering, as 16 hex digits. Two runs with the same
/// fingerprint compute the same results with the same binary.
///
/// # Errors
/// The config cannot be rendered as TOML (never for a loaded config).
pub fn config_fingerprint(cfg: &ExperimentConfig) -> Result<String> {
    let text = toml::to_string(cfg).context("cannot render a run's config")?;
    Ok(format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    ))
}

/// `traces` as written, refusing an empty list (serde's default would read it as no key).
fn non_empty_traces<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    let traces = Vec::<PathBuf>::deserialize(d)?;
    if traces.is_empty() {
        return Err(serde::de::Error::custom(
            "empty list (leave `traces` out to use the base config's workload)",
        ));
    }
    Ok(traces)
}

/// Turns a TOML table whose keys may be nested tables into dotted key = leaf value pairs.
/// `is_leaf` says which tables are values themselves (random distributions).
fn flatten(
    prefix: &str,
    table: &toml::Table,
    is_leaf: &dyn Fn(&toml::Table) -> bool,
    out: &mut Vec<(String, toml::Value)>,
) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) if !is_leaf(t) => flatten(&key, t, is_leaf, out),
            _ => out.push((key, v.clone())),
        }
    }
}

fn never_leaf(_: &toml::Table) -> bool {
    false
}

fn is_distribution(t: &toml::Table) -> bool {
    t.len() == 1 && t.keys().all(|k| DISTRIBUTIONS.contains(&k.as_str()))
}

/// A dotted key written as an override (`key=value`, the value in TOML syntax).
fn override_of(key: &str, value: &toml::Value) -> String {
    format!("{key}={value}")
}

/// Keys the sweep itself sets, which axes may not set too.
fn reserved(file: &SweepFile) -> Vec<(&'static str, &'static str)> {
    let mut r = Vec::new();
    if file.seeds.is_some() {
        r.push(("evaluation.seeds", "seeds"));
    }
    if !file.traces.is_empty() {
        r.push(("workload.trace", "traces"));
    }
    r
}

impl SweepFile {
    /// Parses a sweep file's text; `path` names it in errors.
    ///
    /// # Errors
    /// TOML syntax errors and unknown keys (with line and column).
    pub fn parse(text: &str, path: &Path) -> Result<SweepFile> {
        toml::from_str(text)
            .map_err(|e| anyhow!("{}", e.to_string().trim_end()))
            .with_context(|| format!("invalid sweep file {}", path.display()))
    }

    /// Expands the axes into points, checking each axis.
    ///
    /// # Errors
    /// An empty grid axis, a grid axis that is not a list, a malformed or empty random
    /// distribution, `random.samples` = 0, no points at all (without axes or points, `traces`
    /// alone gives one point: the base config on each trace), more than [`MAX_POINTS`], or an
    /// axis that sets a key the sweep sets itself (`evaluation.seeds` with `seeds`,
    /// `workload.trace` with `traces`). Each error names the key.
    pub fn expand(&self) -> Result<Vec<Point>> {
        let mut points: Vec<(String, Vec<(String, toml::Value)>)> = Vec::new();
        let reserved = reserved(self);
        let check_key = |section: &str, key: &str| -> Result<()> {
            if let Some((_, by)) = reserved.iter().find(|(k, _)| *k == key) {
                bail!("{section}.`{key}`: set by the sweep's `{by}`; remove one of the two");
            }
            Ok(())
        };

        let mut grid = Vec::new();
        flatten("", &self.grid, &never_leaf, &mut grid);
        let mut axes: Vec<(String, Vec<toml::Value>)> = Vec::new();
        for (key, v) in grid {
            check_key("grid", &key)?;
            match v {
                toml::Value::Array(values) if values.is_empty() => {
                    bail!("grid.`{key}`: empty axis; expected at least one value")
                }
                toml::Value::Array(values) => axes.push((key, values)),
                other => bail!(
                    "grid.`{key}`: expected a list of values, got {} `{other}`",
                    other.type_str()
                ),
            }
        }
        if !axes.is_empty() {
            let total = axes
                .iter()
                .try_fold(1usize, |acc, (_, v)| acc.checked_mul(v.len()))
                .filter(|&n| n <= MAX_POINTS)
                .ok_or_else(|| anyhow!("grid: more than {MAX_POINTS} points"))?;
            for i in 0..total {
                // Mixed radix, last axis fastest.
                let mut rest = i;
                let mut point = vec![(String::new(), toml::Value::Boolean(false)); axes.len()];
                for (slot, (key, values)) in point.iter_mut().zip(&axes).rev() {
                    *slot = (key.clone(), values[rest % values.len()].clone());
                    rest /= values.len();
                }
                points.push(("grid".into(), point));
            }
        }

        if let Some(r) = &self.random {
            if r.samples == 0 {
                bail!("random.samples: expected at least 1, got 0");
            }
            if r.samples > MAX_POINTS {
                bail!(
                    "random.samples: expected at most {MAX_POINTS}, got {}",
                    r.samples
                );
            }
            let mut leaves = Vec::new();
            flatten("", &r.axes, &is_distribution, &mut leaves);
            if leaves.is_empty() {
                bail!("random.axes: empty; expected at least one `key = {{ uniform = [lo, hi] }}`");
            }
            let mut dists = Vec::new();
            for (key, v) in leaves {
                check_key("random.axes", &key)?;
                let d: Distribution = v.clone().try_into().map_err(|e: toml::de::Error| {
                    anyhow!(
                        "random.axes.`{key}`: expected one of {{ uniform = [lo, hi] }}, \
                         {{ log_uniform = [lo, hi] }}, {{ int_uniform = [lo, hi] }}, \
                         {{ choice = [values] }}: {}",
                        e.message().trim_end()
                    )
                })?;
                d.check(&key)?;
                dists.push((key, d));
            }
            let mut rng = ChaCha8Rng::seed_from_u64(r.seed);
            for _ in 0..r.samples {
                let point = dists
                    .iter()
                    .map(|(k, d)| (k.clone(), d.sample(&mut rng)))
                    .collect();
                points.push(("random".into(), point));
            }
        }

        for (i, t) in self.points.iter().enumerate() {
            let mut point = Vec::new();
            flatten("", t, &never_leaf, &mut point);
            if point.is_empty() {
                bail!("points[{i}]: empty; expected at least one key = value");
            }
            for (k, _) in &point {
                check_key(&format!("points[{i}]"), k)?;
            }
            points.push(("points".into(), point));
        }

        if points.is_empty() && !self.traces.is_empty() {
            // The base config (with `fixed`) on every trace: one point without overrides.
            points.push(("points".into(), Vec::new()));
        }
        if points.is_empty() {
            bail!(
                "no points: expected a [grid] axis, a [random] section, [[points]] or `traces` \
                 (the base config on each trace)"
            );
        }
        if points.len() > MAX_POINTS {
            bail!("{} points: expected at most {MAX_POINTS}", points.len());
        }
        let width = points.len().saturating_sub(1).to_string().len().max(3);
        Ok(points
            .into_iter()
            .enumerate()
            .map(|(i, (source, kv))| Point {
                id: format!("p{i:0width$}"),
                source,
                overrides: kv.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
            })
            .collect())
    }
}

/// Locates `p` (a path written in the sweep file): relative to the sweep file's folder if it
/// exists there, else as given (current folder, then the repository root).
fn locate(p: &Path, sweep_dir: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let beside = sweep_dir.join(p);
    if beside.exists() {
        return beside;
    }
    crate::config::locate_config(p)
}

impl SweepPlan {
    /// Reads the sweep file at `path`, expands its points and loads (and validates) the config
    /// of every run, before anything runs.
    ///
    /// # Errors
    /// The file cannot be read; errors of [`SweepFile::parse`] and [`SweepFile::expand`]; a
    /// trace that does not exist; a run whose config is invalid (the point, the override and
    /// the config's own message naming the key).
    pub fn load(path: &Path) -> Result<SweepPlan> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sweep file {}", path.display()))?;
        let file = SweepFile::parse(&text, path)?;
        let points = file
            .expand()
            .with_context(|| format!("invalid sweep file {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let base = locate(&file.base, dir);
        if !base.is_file() {
            bail!(
                "invalid sweep file {}: `base`: no experiment config at {} (relative paths are \
                 resolved from the sweep file's folder, then the current folder)",
                path.display(),
                file.base.display()
            );
        }
        let mut defaults = vec!["output.plots=false".to_string()];
        let mut fixed = Vec::new();
        flatten("", &file.fixed, &never_leaf, &mut fixed);
        for (k, _) in &fixed {
            if let Some((_, by)) = reserved(&file).iter().find(|(r, _)| r == k) {
                bail!(
                    "invalid sweep file {}: fixed.`{k}`: set by the sweep's `{by}`",
                    path.display()
                );
            }
        }
        defaults.extend(fixed.iter().map(|(k, v)| override_of(k, v)));
        if let Some(n) = file.seeds {
            defaults.push(format!("evaluation.seeds={n}"));
        }
        if let Some(n) = file.seeds.filter(|&n| n < 2) {
            bail!(
                "invalid sweep file {}: `seeds`: expected at least 2 (a confidence interval \
                 needs two seeds), got {n}",
                path.display()
            );
        }
        let traces: Vec<Option<PathBuf>> = if file.traces.is_empty() {
            vec![None]
        } else {
            let mut seen = std::collections::BTreeSet::new();
            file.traces
                .iter()
                .map(|t| {
                    let located = locate(t, dir);
                    if !located.is_file() {
                        bail!(
                            "invalid sweep file {}: `traces`: no trace at {}",
                            path.display(),
                            t.display()
                        );
                    }
                    if !seen.insert(located.clone()) {
                        bail!(
                            "invalid sweep file {}: `traces`: {} is listed twice",
                            path.display(),
                            t.display()
                        );
                    }
                    Ok(Some(located))
                })
                .collect::<Result<_>>()?
        };
        let mut runs = Vec::new();
        let mut configs = Vec::new();
        for p in &points {
            for (j, trace) in traces.iter().enumerate() {
                let mut overrides = defaults.clone();
                overrides.extend(p.overrides.iter().map(|(k, v)| format!("{k}={v}")));
                if let Some(t) = trace {
                    overrides.push(override_of(
                        "workload.trace",
                        &toml::Value::String(t.display().to_string()),
                    ));
                }
                let cfg = ExperimentConfig::load(&base, &overrides).map_err(|e| {
                    let sets: Vec<String> = p
                        .overrides
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect();
                    anyhow!(
                        "invalid sweep file {}: point {} ({}): {e:#}",
                        path.display(),
                        p.id,
                        sets.join(", ")
                    )
                })?;
                if let Some(t) = cfg.workload.trace.as_ref() {
                    let at = if t.is_relative() {
                        crate::config::base_dir(&cfg, &base).join(t)
                    } else {
                        t.clone()
                    };
                    if !at.is_file() {
                        bail!(
                            "invalid sweep file {}: point {}: `workload.trace`: no trace at {}",
                            path.display(),
                            p.id,
                            at.display()
                        );
                    }
                }
                let id = if traces.len() > 1 {
                    format!("{}-t{j:02}", p.id)
                } else {
                    p.id.clone()
                };
                let trace_name = trace.as_ref().map_or_else(
                    || {
                        cfg.workload.trace.as_ref().map_or("<pattern>".into(), |t| {
                            t.file_name().map_or_else(
                                || t.display().to_string(),
                                |f| f.to_string_lossy().into_owned(),
                            )
                        })
                    },
                    |t| {
                        t.file_name().map_or_else(
                            || t.display().to_string(),
                            |f| f.to_string_lossy().into_owned(),
                        )
                    },
                );
                runs.push(PlannedRun {
                    id,
                    index: runs.len(),
                    point: p.id.clone(),
                    trace: trace_name,
                    overrides,
                });
                configs.push(cfg);
            }
        }
        let name = file.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "sweep".into(), |s| s.to_string_lossy().into_owned())
        });
        if !is_plain_name(&name) {
            bail!(
                "invalid sweep file {}: `name`: expected a plain folder name (no `/`, not \
                 empty, `.` or `..`; it names results/sweeps/<name>), got {name:?}",
                path.display()
            );
        }
        let fingerprints = configs
            .iter()
            .map(config_fingerprint)
            .collect::<Result<Vec<_>>>()?;
        Ok(SweepPlan {
            name,
            path: path.to_path_buf(),
            base,
            points,
            runs,
            configs,
            fingerprints,
        })
    }

    /// The runs of shard `index` of `count` (0-based): those whose plan index is `index`
    /// modulo `count`. The shards of a plan are disjoint and together hold every run.
    pub fn shard(&self, index: usize, count: usize) -> Vec<usize> {
        (0..self.runs.len())
            .filter(|i| i % count == index)
            .collect()
    }
}

/// Parses `--shard I/N` (0 <= I < N).
///
/// # Errors
/// Not of the form `I/N` with integers, N = 0 or I >= N.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| anyhow!("--shard: expected I/N (0 <= I < N), got {s:?}"))?;
    let parse = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|_| anyhow!("--shard: expected I/N with non-negative integers, got {s:?}"))
    };
    let (i, n) = (parse(i)?, parse(n)?);
    if n == 0 || i >= n {
        bail!("--shard: expected 0 <= I < N, got {i}/{n}");
    }
    Ok((i, n))
}

/// Whether `name` can name one folder: not empty, `.` or `..`, no `/`, `\\` or control
/// character (sweep and experiment names become `results/<name>`).
pub fn is_plain_name(name: &str) -> bool {
    !(name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str) -> Result<Vec<Point>> {
        SweepFile::parse(&format!("base = \"b.toml\"\n{text}"), Path::new("s.toml"))?.expand()
    }

    fn sets(p: &Point) -> Vec<String> {
        p.overrides
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    #[test]
    fn grid_is_the_product_with_the_last_key_fastest_then_random_then_points() {
        let pts = expand(
            "[grid]\n\"a.x\" = [1, 2]\nb = { y = [\"u\", \"v\", \"w\"] }\n\
             [[points]]\nc = 0.5\n",
        )
        .unwrap();
        let got: Vec<Vec<String>> = pts.iter().map(sets).collect();
        let want: Vec<Vec<String>> = [
            ["a.x=1", "b.y=\"u\""],
            ["a.x=1", "b.y=\"v\""],
            ["a.x=1", "b.y=\"w\""],
            ["a.x=2", "b.y=\"u\""],
            ["a.x=2", "b.y=\"v\""],
            ["a.x=2", "b.y=\"w\""],
        ]
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .chain(std::iter::once(vec!["c=0.5".to_string()]))
        .collect();
        assert_eq!(got, want);
        let ids: Vec<&str> = pts.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            ["p000", "p001", "p002", "p003", "p004", "p005", "p006"]
        );
        assert_eq!(pts[6].source, "points");
    }

    #[test]
    fn random_points_are_reproducible_and_within_their_distributions() {
        let text = "[random]\nseed = 9\nsamples = 200\n[random.axes]\n\
                    u = { uniform = [1.0, 2.0] }\nl = { log_uniform = [0.01, 1.0] }\n\
                    i = { int_uniform = [3, 5] }\nc = { choice = [\"a\", \"b\"] }\n";
        let a = expand(text).unwrap();
        assert_eq!(a, expand(text).unwrap(), "same seed, same points");
        assert_ne!(a, expand(&text.replace("seed = 9", "seed = 10")).unwrap());
        let mut ints = std::collections::BTreeSet::new();
        for p in &a {
            let f = |k: &str| p.overrides[k].parse::<f64>().unwrap();
            assert!((1.0..=2.0).contains(&f("u")));
            assert!((0.01..=1.0).contains(&f("l")));
            ints.insert(p.overrides["i"].clone());
            assert!(["\"a\"", "\"b\""].contains(&p.overrides["c"].as_str()));
        }
        let ints: Vec<String> = ints.into_iter().collect();
        assert_eq!(ints, ["3", "4", "5"], "both ends of int_uniform are drawn");
    }

    #[test]
    fn traces_alone_make_one_point_and_nothing_at_all_is_refused() {
        let points = expand("traces = [\"a.csv\", \"b.csv\"]\n").unwrap();
        assert_eq!(points.len(), 1);
        assert!(points[0].overrides.is_empty());
        let err = expand("seeds = 2\n").unwrap_err().to_string();
        assert!(err.contains("no points"), "{err}");
    }

    #[test]
    fn shards_partition_the_plan() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sweep.toml");
        let plan = SweepPlan::load(&path).unwrap();
        assert_eq!(plan.runs.len(), 7);
        for n in 1..9usize {
            let mut all: Vec<usize> = (0..n).flat_map(|i| plan.shard(i, n)).collect();
            all.sort();
            assert_eq!(all, (0..plan.runs.len()).collect::<Vec<_>>(), "{n} shards");
        }
        assert_eq!(plan.shard(1, 3), [1, 4]);
        assert_eq!(parse_shard("2/5").unwrap(), (2, 5));
        for bad in ["5/5", "1", "-1/3", "a/b", "0/0"] {
            let e = parse_shard(bad).unwrap_err().to_string();
            assert!(e.contains("--shard"), "{bad}: {e}");
        }
    }
}
