//! `nimbusguard`: the NimbusGuard command line (DESIGN.md section 6).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nimbusguard",
    version,
    about = "Research framework for Kubernetes autoscaling"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train what needs training, then evaluate every agent on every seed and write results.
    Run {
        /// Experiment config (TOML).
        #[arg(default_value = experiments::config::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Override a config field: `--set workload.peak_rps=300` (repeatable).
        #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
        set: Vec<String>,
        /// Output folder (default `results/<experiment>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads for the evaluation (0 = all cores). Results do not depend on it.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Run the HPA implementation on reference cases (one case or an array, JSON).
    Hpa {
        /// Cases file in the layout of Kubernetes' reference cases
        /// (agents/tests/data/hpa-cases-public.json).
        cases: PathBuf,
    },
    /// Score the streaming anomaly detectors on the NAB traces' labelled windows.
    Anomaly {
        /// Anomaly evaluation config (TOML).
        #[arg(default_value = experiments::cmd_anomaly::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Output folder (default `results/<experiment>`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Train and score forecasters (LSTM and baselines) on traces; writes forecast.json.
    Forecast {
        /// Forecast config (TOML; default experiments/configs/forecast.toml).
        config: Option<PathBuf>,
        /// A trace to forecast (repeatable); replaces the config's list of traces.
        #[arg(long = "trace", value_name = "CSV")]
        traces: Vec<PathBuf>,
        /// Output folder (default `results/<experiment>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads, one trace each (0 = all cores). Results do not depend on it.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Compare any set of result folders: tables (Markdown, Parquet, CSV) and a cost-SLO plot.
    Report {
        /// Result folders written by `nimbusguard run` (Parquet tables, or CSVs of older runs).
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Output folder (default `results/report`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Compare every agent against this one in each folder (default: each folder's own
        /// `evaluation.baseline`).
        #[arg(long, value_name = "AGENT")]
        baseline: Option<String>,
    },
    /// Run a sweep: a base config x axes (grid, random, points) x traces, one run per thread,
    /// resumable; `--shard I/N` runs a deterministic share, `--merge` combines shards.
    Sweep {
        /// Sweep file (TOML; see docs/sweeps.md).
        sweep: PathBuf,
        /// Run shard I of N (0-based): the runs whose plan index is I modulo N.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Output folder (default `results/sweeps/<name>`); shards may share it.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Concurrent runs (0 = all cores). Results do not depend on it.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Run nothing: gather the finished runs (from each --from, then --out) and write the
        /// sweep summary; fails naming the runs still missing.
        #[arg(long)]
        merge: bool,
        /// With --merge: a shard's output folder to copy finished runs from (repeatable).
        #[arg(long, value_name = "DIR")]
        from: Vec<PathBuf>,
    },
    /// Run the live operator loop: observe through Prometheus, decide (HPA rules or a trained
    /// agent), scale the replicas; until SIGTERM/SIGINT.
    Operator {
        /// Operator config (TOML), e.g. experiments/configs/operator-process.toml.
        config: PathBuf,
        /// Override a config value, e.g. `--set operator.max_replicas=6` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Stop after this many seconds instead of waiting for a signal.
        #[arg(long, value_name = "SECONDS")]
        for_s: Option<f64>,
    },
    /// Live A/B: the same traffic segment against each agent on real workload-app processes
    /// (Prometheus, the operator's loop), and simulated beside it; writes summary.json and
    /// plots for both, and sim_to_real.{json,md}.
    Live {
        /// Live config (TOML).
        #[arg(default_value = experiments::live_config::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Override a config value, e.g. `--set rounds=3` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output folder (default `results/<experiment>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads for training and the simulated runs (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Print the NimbusScaler CustomResourceDefinition (YAML; deploy/base/crd.yaml is this).
    Crd,
    /// Run the NimbusScaler controller against the cluster of the kubeconfig (KUBECONFIG,
    /// ~/.kube/config, or in-cluster): a decision per resource every decisionIntervalSeconds,
    /// status, events, self-healing; until SIGTERM/SIGINT.
    Controller {
        /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, then in-cluster).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Watch this namespace only (default: all namespaces, which needs a ClusterRole).
        #[arg(long)]
        namespace: Option<String>,
        /// Address of /metrics, POST /trigger and /health.
        #[arg(long, default_value = "0.0.0.0:9464")]
        listen: std::net::SocketAddr,
        /// Folder where ConfigMap policies are written (`DIR/<namespace>/<name>/gen-N/`) and
        /// MLflow models are downloaded (`DIR/mlflow-models/<model>/<version>/`); default: a
        /// temp folder.
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// Exit with an error when the first list of NimbusScalers keeps failing this long
        /// (CRD not installed, credentials rejected, API server unreachable), seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
        startup_timeout_seconds: f64,
        /// Kafka brokers (`host:port[,host:port]`): trigger events on `--kafka-topic` make the
        /// NimbusScalers named by their `service` decide at once.
        #[arg(long, value_name = "BROKERS")]
        kafka_brokers: Option<String>,
        /// Topic of the trigger events.
        #[arg(long, default_value = "nimbusguard-triggers")]
        kafka_topic: String,
        /// Consumer group of the controller.
        #[arg(long, default_value = "nimbusguard-operator")]
        kafka_group: String,
    },
    /// Play kubelet for a local control plane (deploy/local/up.sh): register Nodes, heart-beat
    /// them and run each pod bound to them as a local process (its image mapped to a binary)
    /// on its own loopback IP, with readiness probes and restarts; until SIGTERM/SIGINT.
    NodeAgent {
        /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// TOML file of the agent's settings (nodes, capacity, timings, images, ...); the
        /// flags below override it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A Node to register and run pods for (repeatable; default local-node-1).
        #[arg(long = "node", value_name = "NAME")]
        nodes: Vec<String>,
        /// Image to binary, `IMAGE=BINARY` (repeatable; default nimbusguard/workload = the
        /// workload-app next to this binary).
        #[arg(long = "image", value_name = "IMAGE=BINARY")]
        images: Vec<String>,
        /// Folder of the pods' logs (default target/node-agent).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// MLflow tracking: upload runs spooled while the server was unreachable.
    Mlflow {
        #[command(subcommand)]
        command: MlflowCommand,
    },
    /// Measure env steps per second and simulated seconds per wall second.
    Bench {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Seconds spent measuring env steps per second (the cluster-size rows take a third
        /// of it each); the other figures time whole runs.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Also time the 40-run sweep experiments/configs/sweeps/bench-40.toml with 1 and 2
        /// threads, five times each (about 90 s).
        #[arg(long)]
        sweep: bool,
    },
    /// Measure the workload app on this machine (start-up and readiness delays, CPU per
    /// request) and write a calibrated scenario for the simulator, plus calibration.json.
    Calibrate {
        /// The workload-app binary (default target/release/workload-app; build it with
        /// `cargo build --release -p workload --bins`).
        #[arg(long, value_name = "PATH")]
        app: Option<PathBuf>,
        /// Experiment config the scenario starts from.
        #[arg(long, value_name = "CONFIG", default_value = experiments::cmd_calibrate::DEFAULT_BASE)]
        base: PathBuf,
        /// Scenario file to write; calibration.json is written beside it.
        #[arg(long, value_name = "FILE", default_value = experiments::cmd_calibrate::DEFAULT_OUT)]
        out: PathBuf,
        /// Process starts timed for the start-up and readiness delays (>= 2).
        #[arg(long, value_name = "N", default_value_t = experiments::cmd_calibrate::DEFAULT_STARTS)]
        starts: usize,
        /// Sequential GET /work requests for the CPU cost per request (>= 10).
        #[arg(long, value_name = "N", default_value_t = experiments::cmd_calibrate::DEFAULT_REQUESTS)]
        requests: usize,
        /// An argument for every workload-app (repeatable, in order; e.g. `--app-arg
        /// --workers --app-arg 1`). Default: the live test's `--cpu-per-request-ms 20
        /// --workers 1 --ready-delay-s 1 --cost-distribution deterministic`.
        #[arg(long = "app-arg", value_name = "ARG", allow_hyphen_values = true)]
        app_args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum MlflowCommand {
    /// Upload the runs spooled in DIR/mlflow-spool/ (and in every mlflow-spool/ below DIR, as
    /// in a sweep's folder) to MLflow, removing them from the spool once logged.
    Sync {
        /// A result folder (or a folder of result folders).
        dir: PathBuf,
        /// Tracking server URL (default: the MLFLOW_TRACKING_URI environment variable).
        #[arg(long, value_name = "URL")]
        tracking_uri: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run {
        config: PathBuf::from(experiments::config::DEFAULT_CONFIG),
        set: Vec::new(),
        out: None,
        threads: 0,
    });
    let result = match command {
        Command::Run {
            config,
            set,
            out,
            threads,
        } => experiments::cmd_run::execute(&config, &set, out.as_deref(), threads).map(|dir| {
            let md = std::fs::read_to_string(dir.join("summary.md")).unwrap_or_default();
            println!("{md}");
            println!("Results written to {}", dir.display());
        }),
        Command::Hpa { cases } => experiments::cmd_hpa::run(&cases),
        Command::Anomaly { config, out } => {
            experiments::cmd_anomaly::execute(&config, out.as_deref()).map(|dir| {
                let md = std::fs::read_to_string(dir.join("anomaly.md")).unwrap_or_default();
                println!("{md}");
                println!("Results written to {}", dir.display());
            })
        }
        Command::Forecast {
            config,
            traces,
            out,
            threads,
        } => {
            experiments::cmd_forecast::execute(config.as_deref(), &traces, out.as_deref(), threads)
                .map(|dir| {
                    let md = std::fs::read_to_string(dir.join("forecast.md")).unwrap_or_default();
                    println!("{md}");
                    println!("Results written to {}", dir.display());
                })
        }
        Command::Report {
            dirs,
            out,
            baseline,
        } => experiments::cmd_report::execute(&dirs, out.as_deref(), baseline.as_deref()).map(
            |dir| {
                println!("Report written to {}", dir.join("report.md").display());
            },
        ),
        Command::Sweep {
            sweep,
            shard,
            out,
            threads,
            merge,
            from,
        } => {
            let sweep_path = sweep.clone();
            shard
                .as_deref()
                .map(experiments::sweep_config::parse_shard)
                .transpose()
                .and_then(|shard| {
                    let opts = experiments::cmd_sweep::SweepOptions {
                        shard,
                        out,
                        threads,
                        merge,
                        from,
                    };
                    experiments::cmd_sweep::execute(&sweep, &opts)
                })
                .map(|o| {
                    if o.summarized {
                        let md = std::fs::read_to_string(o.dir.join("sweep_summary.md"))
                            .unwrap_or_default();
                        println!("{md}");
                    }
                    println!(
                        "{} runs planned here: {} ran, {} already done. {}",
                        o.planned,
                        o.ran,
                        o.skipped,
                        if o.summarized {
                            format!(
                                "Summary written to {}",
                                o.dir.join("sweep_summary.md").display()
                            )
                        } else {
                            format!(
                            "Runs written to {}; when every shard is done: nimbusguard sweep {} \
                             --merge --out {} (add --from DIR for each shard that wrote to \
                             another --out)",
                            o.dir.join("runs").display(),
                            sweep_path.display(),
                            o.dir.display()
                        )
                        }
                    );
                })
        }
        Command::Operator { config, set, for_s } => {
            experiments::cmd_operator::execute(&config, &set, for_s)
        }
        Command::Crd => experiments::cmd_controller::print_crd(&mut std::io::stdout()),
        Command::Controller {
            kubeconfig,
            namespace,
            listen,
            work_dir,
            startup_timeout_seconds,
            kafka_brokers,
            kafka_topic,
            kafka_group,
        } => {
            experiments::cmd_controller::execute(&experiments::cmd_controller::ControllerOptions {
                kubeconfig,
                namespace,
                listen,
                work_dir,
                startup_timeout_s: startup_timeout_seconds,
                kafka: kafka_brokers.map(|brokers| adapters::KafkaTriggerConfig {
                    brokers,
                    topic: kafka_topic,
                    group_id: kafka_group,
                    ..adapters::KafkaTriggerConfig::default()
                }),
            })
        }
        Command::NodeAgent {
            kubeconfig,
            config,
            nodes,
            images,
            state_dir,
        } => experiments::cmd_node_agent::execute(&experiments::cmd_node_agent::NodeAgentOptions {
            kubeconfig,
            config,
            nodes,
            images,
            state_dir,
        }),
        Command::Mlflow {
            command: MlflowCommand::Sync { dir, tracking_uri },
        } => experiments::cmd_mlflow::sync(&dir, tracking_uri.as_deref()),
        Command::Bench {
            json,
            seconds,
            sweep,
        } => experiments::bench::run(json, seconds, sweep),
        Command::Live {
            config,
            set,
            out,
            threads,
        } => experiments::cmd_live::execute(&config, &set, out.as_deref(), threads).map(|dir| {
            eprintln!("nimbusguard: live A/B written to {}", dir.display());
        }),
        Command::Calibrate {
            app,
            base,
            out,
            starts,
            requests,
            app_args,
        } => experiments::cmd_calibrate::execute(&experiments::cmd_calibrate::CalibrateOptions {
            app,
            base,
            out,
            starts,
            requests,
            app_args,
            command: experiments::cmd_calibrate::this_command_line(),
        })
        .map(|c| {
            println!("{}", c.table());
            println!(
                "Scenario written to {}; figures in {}",
                c.scenario.display(),
                c.scenario.with_file_name("calibration.json").display()
            );
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
