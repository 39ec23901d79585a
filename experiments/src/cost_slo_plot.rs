//! `plots/cost_slo.png`: every agent's mean pod-hours against its mean SLO-violation time, with
//! 95% confidence intervals as error bars, so each agent's place between the clairvoyant oracle
//! (drawn as black diamonds, the bounds) and the HPA shows at a glance.

use std::path::Path;

use anyhow::bail;
use plotters::prelude::*;

use crate::plots::{color, fmt_tick, plot_err, render, value_range, FONT};
use crate::report::SummaryJson;

/// One point of the plot: agent, kind, (mean, CI low, CI high) of pod-hours and of SLO %.
type Point<'a> = (&'a str, &'a str, [f64; 3], [f64; 3]);

/// Draws the cost-SLO plot of `s` into the PNG at `path` (1200 x 700 pixels): x = pod-hours,
/// y = SLO-violation time in %, one labelled point per agent (`oracle` agents as black
/// diamonds). Errors if no agent has both figures.
pub fn plot_cost_slo(path: impl AsRef<Path>, s: &SummaryJson) -> anyhow::Result<()> {
    let points: Vec<Point<'_>> = s
        .agents
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
            Some((name.as_str(), a.kind.as_str(), ci(c), ci(v)))
        })
        .collect();
    if points.is_empty() {
        bail!("no agent has pod-hours and SLO figures to plot");
    }
    let x = value_range(points.iter().flat_map(|p| [p.2[1], p.2[2]]), 0.08, true);
    let y = value_range(points.iter().flat_map(|p| [p.3[1], p.3[2]]), 0.12, true);
    render(path.as_ref(), 700, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Cost and SLO per agent ({}, {} seeds)", s.trace, s.seeds),
                (FONT, 24),
            )
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x.clone(), y.clone())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("pod-hours (mean, 95% CI)")
            .y_desc("SLO violation time % (mean, 95% CI)")
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_tick(*v))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .draw()
            .map_err(plot_err)?;
        for (i, (name, kind, c, v)) in points.iter().enumerate() {
            let col = if *kind == "oracle" { BLACK } else { color(i) };
            let style = ShapeStyle::from(&col).stroke_width(2);
            chart
                .draw_series([
                    PathElement::new(vec![(c[1], v[0]), (c[2], v[0])], style),
                    PathElement::new(vec![(c[0], v[1]), (c[0], v[2])], style),
                ])
                .map_err(plot_err)?;
            let at = (c[0], v[0]);
            if *kind == "oracle" {
                chart
                    .draw_series([Polygon::new(
                        vec![
                            (c[0] - (x.end - x.start) * 0.006, v[0]),
                            (c[0], v[0] + (y.end - y.start) * 0.012),
                            (c[0] + (x.end - x.start) * 0.006, v[0]),
                            (c[0], v[0] - (y.end - y.start) * 0.012),
                        ],
                        col.filled(),
                    )])
                    .map_err(plot_err)?;
            } else {
                chart
                    .draw_series([Circle::new(at, 6, col.filled())])
                    .map_err(plot_err)?;
            }
            chart
                .draw_series([Text::new(
                    name.to_string(),
                    (
                        c[0] + (x.end - x.start) * 0.01,
                        v[0] + (y.end - y.start) * 0.015,
                    ),
                    (FONT, 15).into_font().color(&col),
                )])
                .map_err(plot_err)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::{episode, scratch_dir};
    use crate::report::summarize;

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
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let empty = summarize("t", "scaling-v0", "x.csv", &[], "hpa");
        assert!(plot_cost_slo(dir.join("none.png"), &empty).is_err());
        assert!(!dir.join("none.png").exists());
    }
}
