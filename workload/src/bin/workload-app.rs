//! `workload-app`: the NimbusGuard workload app (one pod). Prints one line
//! `{"event":"listening","addr":"IP:PORT"}` on stdout once bound; logs go to stderr.
//! Endpoints, flags and metrics: `docs/live.md`, section "Workload app".

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use workload::app::{self, App, AppConfig};

/// The NimbusGuard workload app: /work costs CPU like one request of the simulator's service
/// model; bounded CPU/memory jobs, event triggers, Prometheus metrics.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    app: AppConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    workload::init_tracing();
    let cli = Cli::parse();
    let app = App::new(cli.app).context("while checking the flags")?;
    let listener = app::bind(app.config().listen).await?;
    let addr = listener
        .local_addr()
        .context("while reading the bound address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", app::listening_line(addr)).context("while writing to stdout")?;
        out.flush().context("while flushing stdout")?;
    }
    tracing::info!(%addr, pod = %app.config().pod_name, "listening");
    app.serve(listener, app::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
