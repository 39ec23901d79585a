//! `experiments`: the `nimbusguard` binary's library: experiment configs, the parallel
//! runner, statistics across seeds, reports, plots, the HPA reference-case harness and the
//! benchmark.
//!
//! Modules:
//! - [`config`] — experiment configs (TOML, `deny_unknown_fields`), `--set` overrides.
//! - [`runner`] — training on the training window, evaluation over seeds (rayon).
//! - [`cmd_run`] — `nimbusguard run`, writing every output file.
//! - [`saved_agent`] — an agent of a finished run rebuilt from its folder, for serving live.
//! - [`records`] — rows of `episodes.csv`, `timeseries.csv`, `training.csv`.
//! - [`tables`] — the same rows as polars DataFrames and Parquet files.
//! - [`result_dir`] — a result folder's tables, from Parquet or (older runs) CSV.
//! - [`stats`] — means, 95% confidence intervals and paired tests (statrs).
//! - [`ab`] — A/B statistics: bootstrap CIs, effect sizes, Holm-Bonferroni correction.
//! - [`report`] — `summary.json` (`nimbusguard.summary/v1`) and `summary.md`.
//! - [`bounds`] — regret against the clairvoyant oracle, share of the HPA-to-oracle gap closed.
//! - [`plots`] — PNG plots (plotters).
//! - [`cost_slo_plot`] — `plots/cost_slo.png`: each agent's cost and SLO beside the oracle bounds.
//! - [`sweep_config`] — sweep files: a base config, axes (grid, random, points), traces; the plan.
//! - [`cmd_sweep`] — `nimbusguard sweep`: runs a plan in parallel, resumable, sharded, merged.
//! - [`pareto_plot`] — a sweep's per-family cost/SLO Pareto fronts with the learned agents.
//! - [`sweep_summary`] — rankings with CIs and per-family cost/SLO Pareto fronts of a sweep.
//! - [`tracking`] — the MLflow mirror (REST client, spool, `Tracker` trait) of every run.
//! - [`cmd_mlflow`] — `nimbusguard mlflow sync DIR`: uploads spooled runs.
//! - [`cmd_operator`] — `nimbusguard operator`: the live operator loop over Prometheus and a scaler.
//! - [`cmd_controller`] — `nimbusguard controller` and `crd`: the NimbusScaler controller on Kubernetes.
//! - [`cmd_node_agent`] — `nimbusguard node-agent`: the process-backed kubelet stand-in for a
//!   local control plane.
//! - [`operator_config`] — the operator config (TOML, `deny_unknown_fields`).
//! - [`cmd_live`] — `nimbusguard live`: the live A/B beside the simulated run of the same segment.
//! - [`live_config`] — the live A/B config (TOML, `deny_unknown_fields`).
//! - [`live_round`] — one live run: an agent on real processes through `LiveEnv`.
//! - [`sim_to_real`] — live vs simulated metrics per agent (`sim_to_real.{json,md}`).
//! - [`cmd_hpa`] — `nimbusguard hpa CASES.json`.
//! - [`cmd_calibrate`] — `nimbusguard calibrate`: measures the workload app, writes a scenario.
//! - [`cmd_report`] — `nimbusguard report DIR...`: comparison tables and a plot across result folders.
//! - [`cmd_anomaly`] — `nimbusguard anomaly`: streaming anomaly detectors scored on NAB's windows.
//! - [`anomaly_plot`] — the per-trace plot of `nimbusguard anomaly`.
//! - [`anomaly_config`] — the anomaly config (TOML, `deny_unknown_fields`): traces, detectors.
//! - [`cmd_forecast`] — `nimbusguard forecast`: forecasters trained and scored per trace.
//! - [`forecast_config`] — the forecast config (TOML, `deny_unknown_fields`).
//! - [`forecast_plot`] — the per-trace plot of `nimbusguard forecast`.
//! - [`bench`](mod@bench) — `nimbusguard bench`.
//! - [`bench_sweep`] — `nimbusguard bench --sweep`: a 40-run sweep on 1 and 2 threads.
//!
//! ```
//! use experiments::config::apply_override;
//! let mut doc: toml::Value = toml::from_str("[workload]\npeak_rps = 100.0").unwrap();
//! apply_override(&mut doc, "workload.peak_rps=250.0").unwrap();
//! assert_eq!(doc["workload"]["peak_rps"].as_float(), Some(250.0));
//! ```

pub mod ab;
pub mod anomaly_config;
pub mod anomaly_plot;
pub mod bench;
pub mod bench_sweep;
pub mod bounds;
pub mod cmd_anomaly;
pub mod cmd_calibrate;
pub mod cmd_controller;
pub mod cmd_forecast;
pub mod cmd_hpa;
pub mod cmd_live;
pub mod cmd_mlflow;
pub mod cmd_node_agent;
pub mod cmd_operator;
pub mod cmd_report;
pub mod cmd_run;
pub mod cmd_sweep;
pub mod config;
pub mod cost_slo_plot;
pub mod forecast_config;
pub mod forecast_plot;
pub mod live_config;
pub mod live_round;
pub mod operator_config;
pub mod pareto_plot;
pub mod plots;
pub mod records;
pub mod report;
pub mod result_dir;
pub mod runner;
pub mod saved_agent;
pub mod sim_to_real;
pub mod stats;
pub mod sweep_config;
pub mod sweep_summary;
pub mod tables;
pub mod tracking;
