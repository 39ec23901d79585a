//! `plots/pareto_<trace>.png` of a sweep: per autoscaler family (agent kind), every
//! configuration as a faint circle and the family's cost/SLO Pareto front as a line; the
//! learned agents as labelled crosses and the oracles as black triangles, so where each learned
//! agent sits against the best-tuned peers shows at a glance.

use std::path::Path;

use anyhow::bail;
use plotters::prelude::*;

use crate::cost_slo_plot::fmt_log_tick;
use crate::plots::{color, draw_legend, fmt_tick, plot_err, render, value_range, FONT};
use crate::sweep_summary::SweepSummary;

/// Where an SLO-violation time of 0% is drawn on the log axis, % (as in `cost_slo.png`).
const SLO_FLOOR_PCT: f64 = 0.01;

/// Draws the Pareto plot of `trace` in `s` into the PNG at `path` (1200 x 700 pixels): x =
/// pod-hours, y = SLO-violation time in % on a log axis (0 drawn at 0.01).
///
/// # Errors
/// The trace has no entry with both figures; the file cannot be written.
pub fn plot_pareto(path: impl AsRef<Path>, s: &SweepSummary, trace: &str) -> anyhow::Result<()> {
    let entries: Vec<(&str, &str, bool, f64, f64)> = s
        .entries
        .iter()
        .filter(|e| e.trace == trace)
        .filter_map(|e| {
            let c = e.metrics.get("pod_hours")?.mean;
            let v = e.metrics.get("slo_violation_pct")?.mean;
            (c.is_finite() && v.is_finite()).then_some((
                e.kind.as_str(),
                e.agent.as_str(),
                e.learned,
                c,
                v,
            ))
        })
        .collect();
    if entries.is_empty() {
        bail!(
            "sweep {}: no configuration on trace {trace} has pod-hours and SLO figures",
            s.sweep
        );
    }
    let floor = |v: f64| v.max(SLO_FLOOR_PCT);
    let x = value_range(entries.iter().map(|e| e.3), 0.08, true);
    let top = entries
        .iter()
        .map(|e| floor(e.4))
        .fold(SLO_FLOOR_PCT * 100.0, f64::max);
    let y = SLO_FLOOR_PCT * 0.7..top * 2.0;
    let fronts = s.pareto.get(trace);
    render(path.as_ref(), 700, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Cost/SLO Pareto fronts per family: sweep {} on {trace}",
                    s.sweep
                ),
                (FONT, 22),
            )
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x.clone(), y.clone().log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("pod-hours (mean over seeds)")
            .y_desc("SLO violation time %, log scale (below 0.01 drawn at 0.01)")
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_log_tick(*v))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 17))
            .draw()
            .map_err(plot_err)?;
        let families: Vec<&str> = {
            let mut f: Vec<&str> = entries
                .iter()
                .filter(|e| !e.2 && e.0 != "oracle")
                .map(|e| e.0)
                .collect();
            f.sort();
            f.dedup();
            f
        };
        for (i, family) in families.iter().enumerate() {
            let col = color(i);
            chart
                .draw_series(
                    entries
                        .iter()
                        .filter(|e| e.0 == *family)
                        .map(|e| Circle::new((e.3, floor(e.4)), 4, col.mix(0.5).stroke_width(1))),
                )
                .map_err(plot_err)?;
            let front: Vec<(f64, f64)> = fronts
                .and_then(|f| f.get(*family))
                .map(|f| {
                    f.iter()
                        .map(|p| (p.pod_hours, floor(p.slo_violation_pct)))
                        .collect()
                })
                .unwrap_or_default();
            chart
                .draw_series(LineSeries::new(front.clone(), col.stroke_width(2)))
                .map_err(plot_err)?
                .label(format!("{family} front"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2))
                });
            chart
                .draw_series(front.iter().map(|&p| Circle::new(p, 4, col.filled())))
                .map_err(plot_err)?;
        }
        for e in entries.iter().filter(|e| e.0 == "oracle") {
            chart
                .draw_series([TriangleMarker::new((e.3, floor(e.4)), 9, BLACK.filled())])
                .map_err(plot_err)?;
            chart
                .draw_series([Text::new(
                    e.1.to_string(),
                    (e.3 + (x.end - x.start) * 0.01, floor(e.4) * 1.15),
                    (FONT, 15).into_font().color(&BLACK),
                )])
                .map_err(plot_err)?;
        }
        for (j, e) in entries.iter().filter(|e| e.2).enumerate() {
            let col = color(families.len() + j);
            let at = (e.3, floor(e.4));
            chart
                .draw_series([Cross::new(at, 8, col.stroke_width(3))])
                .map_err(plot_err)?;
            chart
                .draw_series([Text::new(
                    e.1.to_string(),
                    (e.3 + (x.end - x.start) * 0.01, floor(e.4) * 1.15),
                    (FONT, 15).into_font().color(&col),
                )])
                .map_err(plot_err)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plots::tests::assert_png;
    use crate::records::tests::scratch_dir;

    #[test]
    fn draws_the_reference_sweep_and_refuses_an_unknown_trace() {
        let dir = scratch_dir("pareto");
        let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../results/reference/sweeps/pareto-nasa/sweep_summary.json");
        let s: SweepSummary = serde_json::from_slice(&std::fs::read(reference).unwrap()).unwrap();
        let trace = s.pareto.keys().next().unwrap().clone();
        plot_pareto(dir.join("p.png"), &s, &trace).unwrap();
        assert_png(&dir.join("p.png"));
        assert!(plot_pareto(dir.join("none.png"), &s, "nope.csv").is_err());
        assert!(!dir.join("none.png").exists());
    }
}
