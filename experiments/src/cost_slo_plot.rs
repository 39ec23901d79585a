//! `plots/cost_slo.png`: every agent's mean pod-hours against its mean SLO-violation time, with
//! 95% confidence intervals as error bars, so each agent's place between the clairvoyant oracle
//! (drawn as black triangles, the bounds) and the HPA shows at a glance.

use std::ops::Range;
use std::path::Path;

use anyhow::bail;
use plotters::prelude::*;

use crate::plots::{color, fmt_tick, plot_err, render, value_range, FONT};
use crate::report::SummaryJson;

/// Where an SLO-violation time of 0% is drawn on the log axis, % (here and in a sweep's
/// Pareto plots).
pub(crate) const SLO_FLOOR_PCT: f64 = 0.01;

/// A chart of pod-hours (x, linear) against SLO-violation time in % (y, log axis).
pub(crate) type CostSloChart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, LogCoord<f64>>,
>;

/// The chart every cost/SLO plot draws on: titled `caption` (`caption_px` pixels high),
/// pod-hours over `x` across and SLO-violation time in % over `y` on a log axis, the mesh
/// drawn with the axis names `x_desc` and `y_desc`.
///
/// # Errors
/// plotters' error, as [`plot_err`].
pub(crate) fn cost_slo_chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    caption_px: u32,
    (x, y): (Range<f64>, Range<f64>),
    (x_desc, y_desc): (&str, &str),
) -> anyhow::Result<CostSloChart<'a, 'b>> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, caption_px))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x, y.log_scale())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| fmt_tick(*v))
        .y_label_formatter(&|v| fmt_log_tick(*v))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(plot_err)?;
    Ok(chart)
}

/// One point as the drawing code reads it: label, kind, pod-hours and SLO % (mean, low, high).
type Point<'a> = (&'a str, &'a str, [f64; 3], [f64; 3]);

/// One point of a cost-SLO plot: its label, the agent's kind (`oracle` is drawn as a black
/// triangle), and (mean, 95% CI low, 95% CI high) of pod-hours and of SLO-violation time in %.
#[derive(Debug, Clone, PartialEq)]
pub struct CostSloPoint {
    /// Text drawn beside the point (the agent's name, or `folder/agent` in a report).
    pub label: String,
    /// Agent kind.
    pub kind: String,
    /// Pod-hours: mean, CI low, CI high (a non-finite CI end replaced by the mean).
    pub cost: [f64; 3],
    /// SLO-violation time in %: mean, CI low, CI high (non-finite CI ends as for `cost`).
    pub slo: [f64; 3],
}

/// The points of `s`: every agent with both pod-hours and SLO figures, labelled
/// `label_prefix` followed by its name.
pub fn summary_points(s: &SummaryJson, label_prefix: &str) -> Vec<CostSloPoint> {
    s.agents
        .iter()
        .filter_map(|(name, a)| {
            let c = a.metrics.get("pod_hours").filter(|m| m.n > 0)?;
            let v = a.metrics.get("slo_violation_pct").filter(|m| m.n > 0)?;
            let ci = |m: &crate::stats::Summary| {
                let lo = if m.ci95_low.is_finite() {
                    m.ci95_low
                } else {
                    m.mean
                };
                let hi = if m.ci95_high.is_finite() {
                    m.ci95_high
                } else {
                    m.mean
                };
                [m.mean, lo, hi]
            };
            Some(CostSloPoint {
                label: format!("{label_prefix}{name}"),
                kind: a.kind.clone(),
                cost: ci(c),
                slo: ci(v),
            })
        })
        .collect()
}

/// Draws the cost-SLO plot of `s` into the PNG at `path` (1200 x 700 pixels): x = pod-hours,
/// y = SLO-violation time in %, one labelled point per agent (`oracle` agents as black
/// triangles). Errors if no agent has both figures.
pub fn plot_cost_slo(path: impl AsRef<Path>, s: &SummaryJson) -> anyhow::Result<()> {
    let caption = format!("Cost and SLO per agent ({}, {} seeds)", s.trace, s.seeds);
    plot_cost_slo_points(path, &caption, &summary_points(s, ""))
}

/// Draws `points` with the title `caption` into the PNG at `path`, as [`plot_cost_slo`] does.
///
/// # Errors
/// `points` is empty; the file cannot be written.
pub fn plot_cost_slo_points(
    path: impl AsRef<Path>,
    caption: &str,
    points: &[CostSloPoint],
) -> anyhow::Result<()> {
    if points.is_empty() {
        bail!("no agent has pod-hours and SLO figures to plot");
    }
    // Tuples, as the drawing code below reads them.
    let points: Vec<Point<'_>> = points
        .iter()
        .map(|p| (p.label.as_str(), p.kind.as_str(), p.cost, p.slo))
        .collect();
    // Pod-hours are non-negative; a t-interval can reach below 0, the axis does not.
    let mut x = value_range(
        points.iter().flat_map(|p| [p.2[1].max(0.0), p.2[2]]),
        0.08,
        true,
    );
    // Room on the right for the labels (see their placement below): a label of n characters
    // right of a point at c needs a plot width of (c - start) / (1 - 0.01 - 0.0068 n).
    let need = points
        .iter()
        .map(|p| (p.2[0] - x.start) / (0.99 - 0.0068 * p.0.len() as f64).max(0.5))
        .fold(x.end - x.start, f64::max);
    x.end = x.start + need;
    // SLO time spans 0 to tens of %: a log axis from FLOOR (where 0 is drawn) keeps the many
    // agents near 0 apart.
    let floor_y = |v: f64| v.max(SLO_FLOOR_PCT);
    let top = points
        .iter()
        .map(|p| floor_y(p.3[2]))
        .fold(SLO_FLOOR_PCT * 100.0, f64::max);
    let xs = x.end - x.start;
    let decades = (top / SLO_FLOOR_PCT).log10() + 0.5;
    // Labels: right of the point, raised while they would overlap one placed before (points
    // sorted by cost, so each label can only run into those to its left). A character of the
    // 15 px font is about 0.0068 of the plot's width, a line about 0.035 of its height.
    let line = 0.035 * decades;
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[a].2[0].total_cmp(&points[b].2[0]));
    let mut labels = vec![(0.0, 0.0); points.len()];
    let mut placed: Vec<(f64, f64, f64)> = Vec::new();
    for &i in &order {
        let lx = points[i].2[0] + xs * 0.01;
        // In decades: log10 of the label's height.
        let mut ly = floor_y(points[i].3[0]).log10() + 0.5 * line;
        while placed
            .iter()
            .any(|&(px, py, w)| lx - px < w && (py - ly).abs() < line)
        {
            ly += line;
        }
        placed.push((lx, ly, points[i].0.len() as f64 * 0.0068 * xs));
        labels[i] = (lx, 10f64.powf(ly));
    }
    let top_label = placed.iter().map(|p| p.1 + line).fold(f64::MIN, f64::max);
    let y = SLO_FLOOR_PCT * 0.7..top.max(10f64.powf(top_label)) * 1.3;
    render(path.as_ref(), 700, |root| {
        let mut chart = cost_slo_chart(
            root,
            caption,
            24,
            (x.clone(), y.clone()),
            (
                "pod-hours (mean, 95% CI)",
                "SLO violation time %, log scale (mean, 95% CI; below 0.01 drawn at 0.01)",
            ),
        )?;
        for (i, (name, kind, c, v)) in points.iter().enumerate() {
            let col = if *kind == "oracle" { BLACK } else { color(i) };
            let style = ShapeStyle::from(&col).stroke_width(2);
            chart
                .draw_series([
                    PathElement::new(
                        vec![(c[1].max(0.0), floor_y(v[0])), (c[2], floor_y(v[0]))],
                        style,
                    ),
                    PathElement::new(vec![(c[0], floor_y(v[1])), (c[0], floor_y(v[2]))], style),
                ])
                .map_err(plot_err)?;
            let at = (c[0], floor_y(v[0]));
            // A label moved away from its point gets a leader line.
            if (labels[i].1 / at.1).log10() > 0.6 * line {
                chart
                    .draw_series([PathElement::new(
                        vec![at, (labels[i].0, labels[i].1 * 0.93)],
                        ShapeStyle::from(&col.mix(0.6)).stroke_width(1),
                    )])
                    .map_err(plot_err)?;
            }
            if *kind == "oracle" {
                chart
                    .draw_series([TriangleMarker::new(at, 9, col.filled())])
                    .map_err(plot_err)?;
            } else {
                chart
                    .draw_series([Circle::new(at, 6, col.filled())])
                    .map_err(plot_err)?;
            }
            chart
                .draw_series([Text::new(
                    name.to_string(),
                    labels[i],
                    (FONT, 15).into_font().color(&col),
                )])
                .map_err(plot_err)?;
        }
        Ok(())
    })
}

/// A log-axis tick label with two significant digits (`0.012`, `0.5`, `3`, `40`), so
/// neighbouring ticks of a narrow range do not print alike.
pub(crate) fn fmt_log_tick(v: f64) -> String {
    if v >= 1.0 {
        return fmt_tick(v);
    }
    let decimals = (1.0 - v.log10().floor()).clamp(1.0, 8.0) as usize;
    let s = format!("{v:.decimals$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plots::tests::assert_png;
    use crate::records::tests::{episode, scratch_dir};
    use crate::report::summarize;

    #[test]
    fn log_ticks_keep_two_significant_digits() {
        assert_eq!(fmt_log_tick(0.01), "0.01");
        assert_eq!(fmt_log_tick(0.012), "0.012");
        assert_eq!(fmt_log_tick(0.095), "0.095");
        assert_eq!(fmt_log_tick(0.1), "0.1");
        assert_eq!(fmt_log_tick(0.12), "0.12");
        assert_eq!(fmt_log_tick(3.0), "3");
        assert_eq!(fmt_log_tick(40.0), "40");
    }

    #[test]
    fn draws_a_png_and_refuses_an_empty_summary() {
        let dir = scratch_dir("cost-slo");
        let recs = vec![
            episode("hpa", "hpa", 1, 10.0),
            episode("hpa", "hpa", 2, 11.0),
            episode("oracle", "oracle", 1, 5.0),
            episode("oracle", "oracle", 2, 5.5),
        ];
        let s = summarize("t", "scaling-v0", "x.csv", &recs, "hpa");
        let png = dir.join("cost_slo.png");
        plot_cost_slo(&png, &s).unwrap();
        assert_png(&png);
        let empty = summarize("t", "scaling-v0", "x.csv", &[], "hpa");
        assert!(plot_cost_slo(dir.join("none.png"), &empty).is_err());
        assert!(!dir.join("none.png").exists());
        // A real summary: the deep-nasa reference run (eleven agents, the oracles among them).
        let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../results/reference/deep-nasa/summary.json");
        let s = crate::report::read_summary(reference).unwrap();
        plot_cost_slo(dir.join("deep-nasa.png"), &s).unwrap();
        assert_png(&dir.join("deep-nasa.png"));
    }
}
