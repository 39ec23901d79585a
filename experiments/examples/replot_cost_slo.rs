//! Redraws `plots/cost_slo.png` of finished runs from their `summary.json`, without running
//! anything again (for example after a change to the plot, or for a run made before it
//! existed).
//!
//! ```sh
//! cargo run --release -p experiments --example replot_cost_slo -- results/quickstart [DIR...]
//! ```

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        bail!("usage: replot_cost_slo RUN_DIR... (each holding a summary.json)");
    }
    for dir in dirs {
        let dir = std::path::Path::new(&dir);
        let summary = experiments::report::read_summary(dir.join("summary.json"))
            .with_context(|| format!("in run folder {}", dir.display()))?;
        let png = dir.join("plots").join("cost_slo.png");
        experiments::cost_slo_plot::plot_cost_slo(&png, &summary)?;
        println!("{}", png.display());
    }
    Ok(())
}
