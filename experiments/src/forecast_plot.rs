//! The plot of `nimbusguard forecast`: one PNG per trace (1200 x 600 pixels) with the actual
//! series (black) and every forecaster's forecast (one colour each) over the start of the test
//! window, each point drawn at the time it forecasts. Time is in hours since the start of the
//! test window (days when the slice spans more than three days). Drawn with plotters' bitmap
//! backend and the bundled DejaVu Sans font, like [`crate::plots`].

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

use crate::cmd_forecast::{TraceResult, FORECASTERS};
use crate::plots::{plot_err, FONT};

/// matplotlib's tab10, one per forecaster in report order.
const PALETTE: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

/// Plots the first `points` test points of `result` and each forecaster's forecasts to the
/// PNG at `path`, creating its folder.
///
/// # Errors
/// The font cannot be registered, the file cannot be written, or the test window is empty.
pub fn plot_forecasts(path: &Path, result: &TraceResult, points: usize) -> Result<()> {
    draw(path, result, points).with_context(|| format!("while plotting {}", path.display()))
}

fn draw(path: &Path, r: &TraceResult, points: usize) -> Result<()> {
    let t = &r.trace;
    let n = t.test.len().min(points);
    if n == 0 {
        anyhow::bail!("the test window is empty");
    }
    crate::plots::ensure_font()?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let step = t.info.step_s;
    let (unit, per) = if n as f64 * step > 3.0 * 86_400.0 {
        ("days", 86_400.0)
    } else {
        ("hours", 3_600.0)
    };
    let x = |i: usize| i as f64 * step / per;
    let lines: Vec<(&str, &[f64])> = FORECASTERS
        .iter()
        .filter_map(|f| r.forecasts.get(*f).map(|v| (*f, &v[..n])))
        .collect();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in t.test[..n]
        .iter()
        .chain(lines.iter().flat_map(|l| l.1.iter()))
    {
        if v.is_finite() {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    let root = BitMapBackend::new(path, (1200, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: forecasts {} s ahead ({} steps of {} s), test window",
                t.name, t.info.effective_horizon_s, t.info.horizon_steps, step
            ),
            (FONT, 22),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x(n - 1).max(1e-9), (lo - pad)..(hi + pad))
        .map_err(plot_err)?;
    let y_desc = match t.info.value_kind {
        sim::trace::ValueKind::CpuPercent => "CPU (%)",
        sim::trace::ValueKind::RequestRate => "request rate (requests/s)",
    };
    chart
        .configure_mesh()
        .x_desc(format!("time since the start of the test window ({unit})"))
        .y_desc(y_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(BLACK.mix(0.05))
        .draw()
        .map_err(plot_err)?;
    chart
        .draw_series(LineSeries::new(
            t.test[..n].iter().enumerate().map(|(i, v)| (x(i), *v)),
            BLACK.stroke_width(2),
        ))
        .map_err(plot_err)?
        .label("actual")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(3)));
    for (name, values) in &lines {
        let k = FORECASTERS.iter().position(|f| f == name).unwrap_or(0);
        let c = PALETTE[k % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, v)| (x(i), *v)),
                c.stroke_width(1),
            ))
            .map_err(plot_err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .label_font((FONT, 16))
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}
