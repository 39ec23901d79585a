//! Background load jobs: `POST /workload/cpu` burns a share of one core, `POST /workload/memory`
//! holds memory, each for a bounded time; `GET /workload/jobs` lists the running ones.
//!
//! Admission happens under one lock: at most `--max-jobs` jobs run at once and memory jobs
//! together reserve at most `--max-memory-mb` (a job's memory is reserved before it is
//! allocated, so concurrent requests cannot overshoot the budget).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::config::secs;
use super::metrics::{JobKind, KindLabel};
use super::{error_response, spin_for, AppState};

/// Length of one duty-cycle slice of a CPU job.
pub const CPU_SLICE: Duration = Duration::from_millis(100);

const MIB: u64 = 1024 * 1024;

/// A running job, as listed by `GET /workload/jobs` and answered (202) on creation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobInfo {
    /// Id, unique within this process (from 1).
    pub job_id: u64,
    /// `cpu` or `memory`.
    pub kind: JobKind,
    /// CPU jobs: percent of one core burnt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intensity: Option<f64>,
    /// Memory jobs: MiB held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_mb: Option<u64>,
    /// How long the job runs, seconds.
    pub duration_s: f64,
}

/// The running jobs and the memory they reserved.
#[derive(Debug, Default)]
pub struct Jobs {
    table: Mutex<JobTable>,
}

#[derive(Debug, Default)]
struct JobTable {
    next_id: u64,
    active: BTreeMap<u64, JobInfo>,
    reserved_bytes: u64,
}

impl Jobs {
    /// The running jobs, by id.
    pub fn list(&self) -> Vec<JobInfo> {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.active.values().cloned().collect()
    }

    fn finish(&self, state: &AppState, job_id: u64) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = t.active.remove(&job_id) {
            t.reserved_bytes -= job.size_mb.unwrap_or(0) * MIB;
            state
                .metrics
                .active_jobs
                .get_or_create(&KindLabel { kind: job.kind })
                .dec();
        }
    }
}

type Params = HashMap<String, String>;

/// A refusal (boxed: responses are large).
type Reject = Box<Response>;

/// A 400 answer naming `name`.
fn bad(name: &str, msg: String) -> Reject {
    Box::new(error_response(
        StatusCode::BAD_REQUEST,
        msg,
        "parameter",
        name,
    ))
}

/// Rejects query parameters other than `allowed`.
fn only(params: &Params, allowed: &[&str]) -> Result<(), Reject> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(
            k,
            format!(
                "unknown parameter `{k}`; expected only {}",
                allowed.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// A required number in `(0, max]`.
fn number(params: &Params, name: &str, max: f64, unit: &str) -> Result<f64, Reject> {
    let range = format!("a number in (0, {max}] {unit}");
    let raw = params.get(name).ok_or_else(|| {
        bad(
            name,
            format!("missing parameter `{name}`; expected {range}"),
        )
    })?;
    match raw.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= max => Ok(x),
        Ok(x) => Err(bad(
            name,
            format!("`{name}` = {x} is out of range; expected {range}"),
        )),
        Err(_) => Err(bad(
            name,
            format!("`{name}` = `{raw}` is not a number; expected {range}"),
        )),
    }
}

/// A required integer in `1..=max`.
fn integer(params: &Params, name: &str, max: u64, unit: &str) -> Result<u64, Reject> {
    let range = format!("an integer in 1..={max} {unit}");
    let raw = params.get(name).ok_or_else(|| {
        bad(
            name,
            format!("missing parameter `{name}`; expected {range}"),
        )
    })?;
    match raw.trim().parse::<u64>() {
        Ok(x) if (1..=max).contains(&x) => Ok(x),
        Ok(x) => Err(bad(
            name,
            format!("`{name}` = {x} is out of range; expected {range}"),
        )),
        Err(_) => Err(bad(
            name,
            format!("`{name}` = `{raw}` is not an integer; expected {range}"),
        )),
    }
}

/// Admits a job or answers 429 (too many jobs, memory budget exceeded).
fn admit(state: &AppState, mut info: JobInfo) -> Result<JobInfo, Reject> {
    let cfg = &state.config;
    let bytes = info.size_mb.unwrap_or(0) * MIB;
    let mut t = state.jobs.table.lock().unwrap_or_else(|e| e.into_inner());
    let too_many = |reason: &str, msg: String| {
        let body = serde_json::json!({"error": msg, "reason": reason});
        Err(Box::new(
            (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response(),
        ))
    };
    if t.active.len() >= cfg.max_jobs {
        return too_many(
            "max_jobs",
            format!(
                "{} jobs already running; the limit is {} (--max-jobs)",
                t.active.len(),
                cfg.max_jobs
            ),
        );
    }
    if t.reserved_bytes + bytes > cfg.max_memory_mb * MIB {
        return too_many(
            "max_memory",
            format!(
                "{} MiB already held; {} more would exceed the budget of {} MiB (--max-memory-mb)",
                t.reserved_bytes / MIB,
                bytes / MIB,
                cfg.max_memory_mb
            ),
        );
    }
    t.next_id += 1;
    info.job_id = t.next_id;
    t.reserved_bytes += bytes;
    t.active.insert(info.job_id, info.clone());
    state
        .metrics
        .active_jobs
        .get_or_create(&KindLabel { kind: info.kind })
        .inc();
    Ok(info)
}

/// `POST /workload/cpu?intensity=PERCENT&duration=SECONDS`: 202 with the [`JobInfo`].
pub(super) async fn cpu(State(state): State<Arc<AppState>>, Query(p): Query<Params>) -> Response {
    let parsed = (|| {
        only(&p, &["intensity", "duration"])?;
        let intensity = number(
            &p,
            "intensity",
            state.config.max_cpu_intensity,
            "percent of one core",
        )?;
        let duration_s = number(&p, "duration", state.config.max_duration_s, "seconds")?;
        admit(
            &state,
            JobInfo {
                job_id: 0,
                kind: JobKind::Cpu,
                intensity: Some(intensity),
                size_mb: None,
                duration_s,
            },
        )
    })();
    let info = match parsed {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let (st, id, busy) = (
        state.clone(),
        info.job_id,
        CPU_SLICE.mul_f64(info.intensity.unwrap_or(0.0) / 100.0),
    );
    let duration = secs(info.duration_s);
    let spawned = std::thread::Builder::new()
        .name(format!("cpu-job-{id}"))
        .spawn(move || {
            let end = Instant::now() + duration;
            while !st.stopping.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let slice_end = (now + CPU_SLICE).min(end);
                spin_for(busy.min(slice_end - now));
                std::thread::sleep(slice_end.saturating_duration_since(Instant::now()));
            }
            st.jobs.finish(&st, id);
        });
    if let Err(e) = spawned {
        state.jobs.finish(&state, id);
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot start a thread: {e}"),
            "parameter",
            "",
        );
    }
    tracing::info!(
        job_id = id,
        intensity = info.intensity,
        duration_s = info.duration_s,
        "cpu job started"
    );
    (StatusCode::ACCEPTED, Json(info)).into_response()
}

/// `POST /workload/memory?size_mb=MIB&duration=SECONDS`: 202 with the [`JobInfo`].
pub(super) async fn memory(
    State(state): State<Arc<AppState>>,
    Query(p): Query<Params>,
) -> Response {
    let parsed = (|| {
        only(&p, &["size_mb", "duration"])?;
        let size_mb = integer(&p, "size_mb", state.config.max_memory_mb, "MiB")?;
        let duration_s = number(&p, "duration", state.config.max_duration_s, "seconds")?;
        admit(
            &state,
            JobInfo {
                job_id: 0,
                kind: JobKind::Memory,
                intensity: None,
                size_mb: Some(size_mb),
                duration_s,
            },
        )
    })();
    let info = match parsed {
        Ok(i) => i,
        Err(r) => return *r,
    };
    let (st, id) = (state.clone(), info.job_id);
    let bytes = info.size_mb.unwrap_or(0) * MIB;
    let duration = secs(info.duration_s);
    tokio::spawn(async move {
        let buf = tokio::task::spawn_blocking(move || touch_alloc(bytes as usize)).await;
        match buf {
            Ok(Some(buf)) => {
                st.metrics.memory_held_bytes.inc_by(bytes as i64);
                let mut stop = st.stop_tx.subscribe();
                tokio::select! {
                    _ = tokio::time::sleep(duration) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                drop(buf);
                st.metrics.memory_held_bytes.dec_by(bytes as i64);
            }
            _ => tracing::warn!(job_id = id, bytes, "memory job could not allocate"),
        }
        st.jobs.finish(&st, id);
    });
    tracing::info!(
        job_id = id,
        size_mb = info.size_mb,
        duration_s = info.duration_s,
        "memory job started"
    );
    (StatusCode::ACCEPTED, Json(info)).into_response()
}

/// Allocates `bytes` and writes one byte per 4 KiB page so the memory is resident; `None` if
/// the allocation fails (no abort).
fn touch_alloc(bytes: usize) -> Option<Vec<u8>> {
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(bytes).ok()?;
    v.resize(bytes, 0);
    for i in (0..bytes).step_by(4096) {
        v[i] = 1;
    }
    Some(v)
}

/// `GET /workload/jobs`: `{"jobs":[JobInfo..],"memory_reserved_mb":..}`.
pub(super) async fn list(State(state): State<Arc<AppState>>) -> Response {
    let reserved = state
        .jobs
        .table
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .reserved_bytes;
    Json(serde_json::json!({"jobs": state.jobs.list(), "memory_reserved_mb": reserved / MIB}))
        .into_response()
}
