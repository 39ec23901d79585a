//! `plots/pareto_<trace>.png` of a sweep: per autoscaler family (agent kind), every
//! configuration as a faint circle and the family's cost/SLO Pareto front as a line; the
//! learned agents as labelled crosses and the oracles as black triangles, so where each learned
//! agent sits against the best-tuned peers shows at a glance.

use std::path::Path;

use anyhow::bail;
use plotters::prelude::*;

use crate::cost_slo_plot::{cost_slo_chart, CostSloChart, SLO_FLOOR_PCT};
use crate::plots::{color, draw_legend, plot_err, render, value_range, FONT};
use crate::sweep_summary::SweepSummary;

/// Draws `text` in `col` just right of and above the point `at` (`x_span`: the x axis' width).
fn draw_label(
    chart: &mut CostSloChart<'_, '_>,
    text: &str,
    at: (f64, f64),
    x_span: f64,
    col: RGBColor,
) -> anyhow::Result<()> {
    chart
        .draw_series([Text::new(
            text.to_string(),
            (at.0 + x_span * 0.01, at.1 * 1.15),
            (FONT, 15).into_font().color(&col),
        )])
        .map_err(plot_err)?;
    Ok(())
}

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
        let caption = format!(
            "Cost/SLO Pareto fronts per family: sweep {} on {trace}",
            s.sweep
        );
        let mut chart = cost_slo_chart(
            root,
            &caption,
            22,
            (x.clone(), y.clone()),
            (
                "pod-hours (mean over seeds)",
                "SLO violation time %, log scale (below 0.01 drawn at 0.01)",
            ),
        )?;
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
        let x_span = x.end - x.start;
        for e in entries.iter().filter(|e| e.0 == "oracle") {
            let at = (e.3, floor(e.4));
            chart
                .draw_series([TriangleMarker::new(at, 9, BLACK.filled())])
                .map_err(plot_err)?;
            draw_label(&mut chart, e.1, at, x_span, BLACK)?;
        }
        for (j, e) in entries.iter().filter(|e| e.2).enumerate() {
            let col = color(families.len() + j);
            let at = (e.3, floor(e.4));
            chart
                .draw_series([Cross::new(at, 8, col.stroke_width(3))])
                .map_err(plot_err)?;
            draw_label(&mut chart, e.1, at, x_span, col)?;
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
