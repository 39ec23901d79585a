//! PNG plots of a run, drawn with plotters' bitmap backend and the bundled DejaVu Sans font.
//!
//! - [`plot_load_and_replicas`]: arrival rate (top) and ready replicas per agent (bottom) over
//!   time, for one seed.
//! - [`plot_latency`]: p95 latency per agent over time on a log scale, with the SLO line.
//! - [`plot_training_curve`]: training return per episode per agent, with a moving average.
//!
//! Long series are averaged into at most [`MAX_POINTS_PER_LINE`] points per line
//! ([`downsample_mean`]), so a 10-hour run at 1 s ticks plots quickly. Empty input is an error,
//! not a panic. Time axes are in hours since the start of the evaluation episode.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context};
use plotters::prelude::*;

use crate::records::{TickRecord, TrainingPoint};

/// The bundled font, registered with plotters as `sans-serif`.
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// Font family used for every text element.
pub(crate) const FONT: &str = "sans-serif";

/// Registers the bundled font with plotters once per process; text drawing fails without it.
pub(crate) fn ensure_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| "the bundled DejaVuSans.ttf is not a valid font".to_string())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Most points drawn per line; longer series are averaged into this many buckets.
pub const MAX_POINTS_PER_LINE: usize = 2_000;

/// Plot width in pixels.
const WIDTH: u32 = 1200;
/// Height in pixels of a single-panel plot.
const HEIGHT: u32 = 600;

/// Line colours (matplotlib's tab10), cycled over agents in name order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Averages `points` (x, y) into at most `max_points` consecutive buckets of equal size
/// (ceil(len / max_points) points each, the last one possibly shorter): each bucket becomes the
/// mean x and the mean of its finite y values; buckets without a finite y are dropped. Series no
/// longer than `max_points` come back unchanged except that points with non-finite y are
/// dropped. `max_points` = 0 is treated as 1.
pub fn downsample_mean(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let size = points.len().div_ceil(max_points.max(1)).max(1);
    points
        .chunks(size)
        .filter_map(|chunk| {
            let ys: Vec<f64> = chunk
                .iter()
                .map(|p| p.1)
                .filter(|y| y.is_finite())
                .collect();
            if ys.is_empty() {
                return None;
            }
            let x = chunk.iter().map(|p| p.0).sum::<f64>() / chunk.len() as f64;
            Some((x, ys.iter().sum::<f64>() / ys.len() as f64))
        })
        .collect()
}

/// Trailing moving average with window `w` (the first points average what is available).
fn moving_average(ys: &[f64], w: usize) -> Vec<f64> {
    let w = w.max(1);
    let mut out = Vec::with_capacity(ys.len());
    let mut sum = 0.0;
    for i in 0..ys.len() {
        sum += ys[i];
        if i >= w {
            sum -= ys[i - w];
        }
        out.push(sum / (i + 1).min(w) as f64);
    }
    out
}

/// The tick records of `seed`, per agent (name order), each sorted by time.
fn ticks_by_agent(
    ticks: &[TickRecord],
    seed: u64,
) -> anyhow::Result<BTreeMap<&str, Vec<&TickRecord>>> {
    if ticks.is_empty() {
        bail!("no tick records to plot");
    }
    let mut by_agent: BTreeMap<&str, Vec<&TickRecord>> = BTreeMap::new();
    for t in ticks.iter().filter(|t| t.seed == seed) {
        by_agent.entry(t.agent.as_str()).or_default().push(t);
    }
    if by_agent.is_empty() {
        bail!("no tick records for seed {seed}");
    }
    for v in by_agent.values_mut() {
        v.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
    }
    Ok(by_agent)
}

/// A non-empty range covering the finite values of `xs`, padded by `pad` (fraction) on top and,
/// unless `from_zero`, below.
pub(crate) fn value_range(xs: impl Iterator<Item = f64>, pad: f64, from_zero: bool) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in xs.filter(|x| x.is_finite()) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
    let lo = if from_zero && lo >= 0.0 {
        0.0
    } else {
        lo - pad * span
    };
    lo..hi + pad * span
}

/// A readable axis tick label: no decimals from 100 up, at most one below 100 and two below 1,
/// trailing zeros trimmed.
pub(crate) fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" {
            "0".to_string()
        } else {
            t.to_string()
        }
    } else {
        s
    }
}

/// Runs `draw` with a `WIDTH` x `height` bitmap at `path`, with the font registered; errors carry
/// the path.
pub(crate) fn render(
    path: &Path,
    height: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let go = || -> anyhow::Result<()> {
        ensure_font()?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
        Ok(())
    };
    go().with_context(|| format!("while plotting {}", path.display()))
}

/// A plotters error (not always `Send + Sync`) as an `anyhow::Error`.
pub(crate) fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("plotters: {e}")
}

/// Styles of the legend box.
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .label_font((FONT, 16))
        .draw()
        .map_err(plot_err)
}

/// Plots, for `seed`, the arrival rate (top panel, requests per second) and every agent's ready
/// replicas (bottom panel, one line per agent with a legend) against time in hours, into the
/// PNG at `path` (1200 x 800 pixels).
///
/// All agents of one seed see the same traffic, so the arrival rate is drawn from the first
/// agent in name order. Errors if there are no tick records for `seed`.
pub fn plot_load_and_replicas(
    path: impl AsRef<Path>,
    ticks: &[TickRecord],
    seed: u64,
) -> anyhow::Result<()> {
    let by_agent = ticks_by_agent(ticks, seed)?;
    let hours = value_range(
        by_agent.values().flatten().map(|t| t.time_s / 3600.0),
        0.0,
        false,
    );
    let (first_agent, first) = by_agent.iter().next().expect("non-empty");
    let arrivals = downsample_mean(
        &first
            .iter()
            .map(|t| (t.time_s / 3600.0, t.arrival_rps))
            .collect::<Vec<_>>(),
        MAX_POINTS_PER_LINE,
    );
    let replicas: Vec<(&str, Vec<(f64, f64)>)> = by_agent
        .iter()
        .map(|(name, ts)| {
            let pts: Vec<(f64, f64)> = ts
                .iter()
                .map(|t| (t.time_s / 3600.0, t.ready_replicas as f64))
                .collect();
            (*name, downsample_mean(&pts, MAX_POINTS_PER_LINE))
        })
        .collect();

    render(path.as_ref(), 800, |root| {
        let (top, bottom) = root.split_vertically(320);

        let rps_range = value_range(arrivals.iter().map(|p| p.1), 0.08, true);
        let mut chart = ChartBuilder::on(&top)
            .caption(
                format!("Load and replicas, seed {seed} (arrival rate from {first_agent})"),
                (FONT, 24),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(hours.clone(), rps_range)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("time (h)")
            .y_desc("arrival rate (requests/s)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_tick(*v))
            .light_line_style(BLACK.mix(0.05))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                arrivals.iter().copied(),
                BLACK.stroke_width(1),
            ))
            .map_err(plot_err)?;

        let max_rep = replicas
            .iter()
            .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
            .fold(1.0f64, f64::max);
        let mut chart = ChartBuilder::on(&bottom)
            .caption("Ready replicas", (FONT, 20))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(hours.clone(), 0.0..(max_rep * 1.1).ceil())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("time (h)")
            .y_desc("ready replicas")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_tick(*v))
            .light_line_style(BLACK.mix(0.05))
            .draw()
            .map_err(plot_err)?;
        for (i, (name, pts)) in replicas.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(1)))
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3))
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// Plots, for `seed`, every agent's p95 latency (milliseconds, log scale) against time in hours,
/// with a dashed line at the SLO `slo_ms`, into the PNG at `path` (1200 x 600 pixels).
///
/// NaN latencies are skipped; infinite ones and values above the axis are drawn at the top of
/// the axis, zero and tiny values at its bottom. Errors if there are no tick records for `seed`
/// or `slo_ms` is not a positive number.
pub fn plot_latency(
    path: impl AsRef<Path>,
    ticks: &[TickRecord],
    seed: u64,
    slo_ms: f64,
) -> anyhow::Result<()> {
    if !(slo_ms.is_finite() && slo_ms > 0.0) {
        bail!("the SLO must be a positive number of milliseconds, got {slo_ms}");
    }
    let by_agent = ticks_by_agent(ticks, seed)?;
    let hours = value_range(
        by_agent.values().flatten().map(|t| t.time_s / 3600.0),
        0.0,
        false,
    );
    let (mut lo, mut hi) = (slo_ms, slo_ms);
    for t in by_agent.values().flatten() {
        let v = t.p95_latency_ms;
        if v.is_finite() && v > 0.0 {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let (y_lo, y_hi) = ((lo / 1.5).max(1e-3), hi * 1.5);
    let lines: Vec<(&str, Vec<(f64, f64)>)> = by_agent
        .iter()
        .map(|(name, ts)| {
            let pts: Vec<(f64, f64)> = ts
                .iter()
                // Rows where nothing was served have no latency (reported as 0): skip them.
                .filter(|t| t.p95_latency_ms > 0.0 && t.served_rps > 0.0)
                .map(|t| (t.time_s / 3600.0, t.p95_latency_ms.min(y_hi)))
                .collect();
            let pts = downsample_mean(&pts, MAX_POINTS_PER_LINE)
                .into_iter()
                .map(|(x, y)| (x, y.clamp(y_lo, y_hi)))
                .collect();
            (*name, pts)
        })
        .collect();

    render(path.as_ref(), HEIGHT, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("p95 latency, seed {seed}"), (FONT, 24))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(hours.clone(), (y_lo..y_hi).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("time (h)")
            .y_desc("p95 latency (ms, log scale)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_tick(*v))
            .light_line_style(BLACK.mix(0.05))
            .draw()
            .map_err(plot_err)?;
        for (i, (name, pts)) in lines.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(1)))
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3))
                });
        }
        let slo_style = BLACK.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(
                [(hours.start, slo_ms), (hours.end, slo_ms)],
                10,
                6,
                slo_style,
            ))
            .map_err(plot_err)?
            .label(format!("SLO ({} ms)", fmt_tick(slo_ms)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], slo_style));
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// Plots every agent's training return per episode (thin, light line) with its trailing moving
/// average (thick line; window max(1, min(50, episodes / 10))) into the PNG at `path`
/// (1200 x 600 pixels). Errors if `points` is empty.
pub fn plot_training_curve(path: impl AsRef<Path>, points: &[TrainingPoint]) -> anyhow::Result<()> {
    if points.is_empty() {
        bail!("no training points to plot");
    }
    let mut by_agent: BTreeMap<&str, Vec<&TrainingPoint>> = BTreeMap::new();
    for p in points {
        by_agent.entry(p.agent.as_str()).or_default().push(p);
    }
    struct Curve<'a> {
        name: &'a str,
        raw: Vec<(f64, f64)>,
        avg: Vec<(f64, f64)>,
        window: usize,
    }
    let curves: Vec<Curve<'_>> = by_agent
        .iter_mut()
        .map(|(name, ps)| {
            ps.sort_by_key(|p| p.episode);
            let xs: Vec<f64> = ps.iter().map(|p| p.episode as f64).collect();
            let ys: Vec<f64> = ps.iter().map(|p| p.return_).collect();
            let window = (ps.len() / 10).clamp(1, 50);
            let avg = moving_average(&ys, window);
            let zip = |ys: &[f64]| -> Vec<(f64, f64)> {
                downsample_mean(
                    &xs.iter()
                        .copied()
                        .zip(ys.iter().copied())
                        .collect::<Vec<_>>(),
                    MAX_POINTS_PER_LINE,
                )
            };
            Curve {
                name,
                raw: zip(&ys),
                avg: zip(&avg),
                window,
            }
        })
        .collect();
    let x_range = value_range(points.iter().map(|p| p.episode as f64), 0.0, false);
    let y_range = value_range(
        curves.iter().flat_map(|c| c.raw.iter().map(|p| p.1)),
        0.05,
        false,
    );

    render(path.as_ref(), HEIGHT, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Training return per episode", (FONT, 24))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d(x_range.clone(), y_range.clone())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("training episode")
            .y_desc("episode return (sum of rewards)")
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_tick(*v))
            .light_line_style(BLACK.mix(0.05))
            .draw()
            .map_err(plot_err)?;
        for (i, c) in curves.iter().enumerate() {
            let col = color(i);
            chart
                .draw_series(LineSeries::new(
                    c.raw.iter().copied(),
                    col.mix(0.3).stroke_width(1),
                ))
                .map_err(plot_err)?;
            chart
                .draw_series(LineSeries::new(c.avg.iter().copied(), col.stroke_width(2)))
                .map_err(plot_err)?
                .label(format!("{} (moving average of {})", c.name, c.window))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3))
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::records::tests::scratch_dir;

    /// Two agents over 3 hours at 1 s ticks (10,800 ticks each, so downsampling is exercised),
    /// on seeds 1 and 2, with a diurnal-ish arrival rate and some deterministic jitter.
    fn ticks() -> Vec<TickRecord> {
        let mut out = Vec::new();
        for seed in [1u64, 2] {
            for (a, agent) in ["hpa", "q-learning"].iter().enumerate() {
                for i in 0..10_800u32 {
                    let t = i as f64;
                    let jitter = ((i.wrapping_mul(2_654_435_761) >> 16) % 100) as f64 / 100.0;
                    let rps =
                        200.0 + 150.0 * (t / 3600.0 * std::f64::consts::PI).sin() + 20.0 * jitter;
                    let ready = (rps / 40.0).ceil() as u32 + a as u32;
                    let p95 =
                        40.0 + 300.0 * jitter.powi(4) + if i % 1000 == 0 { 2_000.0 } else { 0.0 };
                    out.push(TickRecord {
                        agent: agent.to_string(),
                        seed,
                        time_s: t,
                        arrival_rps: rps,
                        served_rps: rps,
                        dropped_rps: 0.0,
                        backlog: 0.0,
                        desired_replicas: ready,
                        ready_replicas: ready,
                        pending_replicas: 0,
                        cpu_utilization: 0.6,
                        p50_latency_ms: 20.0,
                        p95_latency_ms: if i == 5 {
                            f64::INFINITY
                        } else {
                            p95 * (1.0 - 0.4 * a as f64)
                        },
                        p99_latency_ms: p95 * 1.5,
                        slo_violated: p95 > 200.0,
                    });
                }
            }
        }
        out
    }

    /// A PNG file of at least 10 kB (a real plot, not an empty canvas).
    pub(crate) fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
        assert!(
            bytes.len() > 10_000,
            "{} is only {} bytes",
            path.display(),
            bytes.len()
        );
    }

    #[test]
    fn downsample_mean_averages_buckets() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, i as f64 * 2.0)).collect();
        let d = downsample_mean(&pts, 4); // buckets of 3: [0,1,2] [3,4,5] [6,7,8] [9]
        assert_eq!(d, vec![(1.0, 2.0), (4.0, 8.0), (7.0, 14.0), (9.0, 18.0)]);
        assert_eq!(downsample_mean(&pts, 100), pts);
        let with_nan = [
            (0.0, 1.0),
            (1.0, f64::NAN),
            (2.0, f64::NAN),
            (3.0, f64::NAN),
        ];
        assert_eq!(downsample_mean(&with_nan, 2), vec![(0.5, 1.0)]);
        assert!(downsample_mean(&[], 10).is_empty());
        let long: Vec<(f64, f64)> = (0..36_000).map(|i| (i as f64, 1.0)).collect();
        assert!(downsample_mean(&long, MAX_POINTS_PER_LINE).len() <= MAX_POINTS_PER_LINE);
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(fmt_tick(0.5), "0.5");
        assert_eq!(fmt_tick(0.25), "0.25");
        assert_eq!(fmt_tick(0.0), "0");
        assert_eq!(fmt_tick(2.0), "2");
        assert_eq!(fmt_tick(2.5), "2.5");
        assert_eq!(fmt_tick(1000.0), "1000");
        assert_eq!(fmt_tick(-150.0), "-150");
        assert_eq!(fmt_tick(-0.001), "0");
    }

    #[test]
    fn moving_average_is_trailing() {
        assert_eq!(
            moving_average(&[1.0, 3.0, 5.0, 7.0], 2),
            vec![1.0, 2.0, 4.0, 6.0]
        );
        assert_eq!(moving_average(&[1.0, 3.0], 1), vec![1.0, 3.0]);
    }

    #[test]
    fn plots_are_pngs() {
        let dir = scratch_dir("plots").join("plots");
        let ticks = ticks();
        let load = dir.join("load_replicas_seed1.png");
        plot_load_and_replicas(&load, &ticks, 1).unwrap();
        assert_png(&load);
        let lat = dir.join("latency_seed1.png");
        plot_latency(&lat, &ticks, 1, 200.0).unwrap();
        assert_png(&lat);

        let points: Vec<TrainingPoint> = ["q-learning", "dqn"]
            .iter()
            .enumerate()
            .flat_map(|(a, agent)| {
                (0..300u64).map(move |e| {
                    let noise = ((e.wrapping_mul(2_654_435_761) >> 8) % 97) as f64;
                    TrainingPoint {
                        agent: agent.to_string(),
                        episode: e,
                        return_: -500.0 + 400.0 * (1.0 - (-(e as f64) / 80.0).exp()) - 3.0 * noise
                            + 30.0 * a as f64,
                        epsilon: 0.995f64.powi(e as i32),
                        loss: None,
                    }
                })
            })
            .collect();
        let train = dir.join("training.png");
        plot_training_curve(&train, &points).unwrap();
        assert_png(&train);
    }

    #[test]
    fn empty_or_bad_input_is_an_error() {
        let dir = scratch_dir("plots-empty");
        let err = plot_load_and_replicas(dir.join("a.png"), &[], 1).unwrap_err();
        assert!(format!("{err:#}").contains("no tick records"));
        let ticks = ticks();
        let err = plot_latency(dir.join("b.png"), &ticks, 99, 200.0).unwrap_err();
        assert!(format!("{err:#}").contains("seed 99"));
        assert!(plot_latency(dir.join("c.png"), &ticks, 1, 0.0).is_err());
        assert!(plot_training_curve(dir.join("d.png"), &[]).is_err());
        assert!(!dir.join("a.png").exists());
    }
}
