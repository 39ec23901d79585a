//! The plot of `nimbusguard anomaly`: one PNG per trace (1200 pixels wide) with the series on
//! top and one strip per detector below, marking its flags; NAB's labelled windows are shaded
//! red and the probationary period grey in both. Time is in days since the trace's start.
//! Drawn with plotters' bitmap backend and the bundled DejaVu Sans font, like [`crate::plots`].

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::anomaly_config::DetectorSpec;
use crate::cmd_anomaly::TraceResult;
use crate::plots::{plot_err, FONT};

const WIDTH: u32 = 1200;
const SERIES_HEIGHT: u32 = 380;
const STRIP_HEIGHT: u32 = 44;
const SECONDS_PER_DAY: f64 = 86_400.0;
/// matplotlib's tab10, cycled over detectors in config order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// Plots `result` (the series, windows, probation and each detector's flags) to the PNG at
/// `path`, creating its folder.
///
/// # Errors
/// The font cannot be registered, the file cannot be written, or the series is empty.
pub fn plot_trace(
    path: impl AsRef<Path>,
    trace: &str,
    result: &TraceResult,
    detectors: &[DetectorSpec],
) -> Result<()> {
    let path = path.as_ref();
    draw(path, trace, result, detectors)
        .with_context(|| format!("while plotting {}", path.display()))
}

fn draw(path: &Path, trace: &str, r: &TraceResult, detectors: &[DetectorSpec]) -> Result<()> {
    let (ts, vs) = &r.series;
    let (Some(&t0), Some(&t1)) = (ts.first(), ts.last()) else {
        anyhow::bail!("the series is empty");
    };
    crate::plots::ensure_font()?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let days = |t: f64| t / SECONDS_PER_DAY;
    let x_range = days(t0)..days(t1).max(days(t0) + 1e-9);
    let (lo, hi) = vs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let y_range = lo - pad..hi + pad;
    let k = detectors.len();
    let height = SERIES_HEIGHT + STRIP_HEIGHT * k as u32 + 70;
    let probation_end = ts.get(r.probationary_points).copied().unwrap_or(t1);

    let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (top, bottom) = root.split_vertically(SERIES_HEIGHT);

    let mut chart = ChartBuilder::on(&top)
        .caption(
            format!("{trace}: NAB windows (red), probationary period (grey)"),
            (FONT, 22),
        )
        .margin(10)
        .x_label_area_size(0)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.clone(), y_range.clone())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .y_desc("value")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(BLACK.mix(0.05))
        .draw()
        .map_err(plot_err)?;
    let shade = |a: f64, b: f64, y0: f64, y1: f64, c: RGBAColor| {
        Rectangle::new([(days(a), y0), (days(b), y1)], c.filled())
    };
    let mut shades = vec![shade(
        t0,
        probation_end,
        y_range.start,
        y_range.end,
        BLACK.mix(0.08),
    )];
    for w in &r.windows {
        let c = RED.mix(0.15);
        shades.push(shade(
            w.start_timestamp_s,
            w.end_timestamp_s,
            y_range.start,
            y_range.end,
            c,
        ));
    }
    chart.draw_series(shades).map_err(plot_err)?;
    chart
        .draw_series(LineSeries::new(
            ts.iter().zip(vs).map(|(&t, &v)| (days(t), v)),
            BLACK.mix(0.8).stroke_width(1),
        ))
        .map_err(plot_err)?;

    let rows = -0.5..k as f64 - 0.5;
    let mut strips = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.clone(), rows.clone())
        .map_err(plot_err)?;
    strips
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_desc("days since the start of the trace")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(BLACK.mix(0.05))
        .draw()
        .map_err(plot_err)?;
    let mut shades = vec![shade(
        t0,
        probation_end,
        rows.start,
        rows.end,
        BLACK.mix(0.08),
    )];
    for w in &r.windows {
        let c = RED.mix(0.15);
        shades.push(shade(
            w.start_timestamp_s,
            w.end_timestamp_s,
            rows.start,
            rows.end,
            c,
        ));
    }
    strips.draw_series(shades).map_err(plot_err)?;
    for (i, d) in detectors.iter().enumerate() {
        // Row 0 at the top.
        let y = (k - 1 - i) as f64;
        let col = PALETTE[i % PALETTE.len()];
        let flags = r.flag_indices.get(&d.name).map_or(&[][..], Vec::as_slice);
        strips
            .draw_series(flags.iter().map(|&j| {
                let x = days(ts[j]);
                PathElement::new(vec![(x, y - 0.35), (x, y + 0.35)], col.stroke_width(1))
            }))
            .map_err(plot_err)?;
        let label = format!("{} ({} flags)", d.name, flags.len());
        strips
            .draw_series(std::iter::once(Text::new(
                label,
                (x_range.start, y + 0.45),
                (FONT, 13).into_font().color(&col),
            )))
            .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}
