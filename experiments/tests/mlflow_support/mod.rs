//! Test support for `tests/mlflow.rs`: a real MLflow server in a temp folder, a REST reader,
//! and a proxy that goes away after a number of requests. Shared by `tests/mlflow.rs` and
//! `tests/mlflow_sweep.rs`, each of which uses a subset.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest wait for the server's `/health` (a fresh sqlite store runs its migrations
/// first: about 20 s on a quiet 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(240);

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An `mlflow server` process group (a watchdog shell, the server and its workers), killed on
/// drop.
pub struct MlflowServer {
    child: Child,
    url: String,
    bin: PathBuf,
    dir: PathBuf,
}

impl MlflowServer {
    /// Installs MLflow (scripts/python-env.sh, once per machine) and starts a server on a free
    /// loopback port with a sqlite store and artifact folder in a new temp folder; waits for
    /// `GET /health`.
    ///
    /// # Errors
    /// The install fails, or the server exits or is not ready in time (its log attached).
    pub fn start() -> Result<MlflowServer, String> {
        let bin = crate::common::python_bin()?;
        let dir =
            std::env::temp_dir().join(format!("nimbusguard-mlflow-server-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let port = closed_port();
        let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
        // The shell stops the server when this test process is gone (killed, not only ended).
        let watchdog = r#"
"$BIN/mlflow" server --host 127.0.0.1 --port "$PORT" \
  --backend-store-uri "sqlite:///$DIR/mlflow.db" --artifacts-destination "$DIR/artifacts" \
  --serve-artifacts --workers 1 &
srv=$!
trap 'kill $srv 2>/dev/null; wait $srv; exit 0' TERM INT
while kill -0 "$TEST_PID" 2>/dev/null && kill -0 $srv 2>/dev/null; do sleep 1; done
kill $srv 2>/dev/null
wait $srv
"#;
        let child = Command::new("bash")
            .args(["-c", watchdog])
            .env("BIN", &bin)
            .env("PORT", port.to_string())
            .env("DIR", &dir)
            .env("TEST_PID", std::process::id().to_string())
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start mlflow server: {e}"))?;
        let mut server = MlflowServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            bin,
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("mlflow server exited ({status}):\n{}", self.log()));
            }
            if let Ok(r) = http.get(format!("{}/health", self.url)).send() {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!(
            "mlflow server not ready after {READY_TIMEOUT:?}:\n{}",
            self.log()
        ))
    }

    fn log(&self) -> String {
        let s = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = s.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// A reader for this server.
    pub fn client(&self) -> Mlflow {
        Mlflow {
            url: self.url.clone(),
            bin: self.bin.clone(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Reads an MLflow server through its REST API.
pub struct Mlflow {
    /// The server's URL.
    pub url: String,
    /// The venv's bin folder (python with the mlflow client).
    pub bin: PathBuf,
    http: reqwest::blocking::Client,
}

impl Mlflow {
    /// `GET /api/2.0/mlflow/<endpoint>?<query>`; panics on an error status.
    pub fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        let mut url =
            reqwest::Url::parse(&format!("{}/api/2.0/mlflow/{endpoint}", self.url)).unwrap();
        url.query_pairs_mut().extend_pairs(query);
        let r = self.http.get(url).send().unwrap();
        let status = r.status();
        let body = r.text().unwrap();
        assert!(status.is_success(), "GET {endpoint}: {status} {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// `POST /api/2.0/mlflow/<endpoint>` with `body`; panics on an error status.
    pub fn post(&self, endpoint: &str, body: &Value) -> Value {
        let r = self
            .http
            .post(format!("{}/api/2.0/mlflow/{endpoint}", self.url))
            .json(body)
            .send()
            .unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert!(status.is_success(), "POST {endpoint}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The id of experiment `name`.
    pub fn experiment_id(&self, name: &str) -> String {
        self.get("experiments/get-by-name", &[("experiment_name", name)])["experiment"]
            ["experiment_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The active runs of experiment `exp` (all pages).
    pub fn runs(&self, exp: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut body = serde_json::json!({
                "experiment_ids": [exp], "run_view_type": "ACTIVE_ONLY", "max_results": 1000
            });
            if !token.is_empty() {
                body["page_token"] = token.clone().into();
            }
            let v = self.post("runs/search", &body);
            out.extend(v["runs"].as_array().cloned().unwrap_or_default());
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => token = t.to_string(),
                _ => return out,
            }
        }
    }

    /// The history of metric `key` of run `run`, by step.
    pub fn history(&self, run: &str, key: &str) -> Vec<Value> {
        let mut h = self.get(
            "metrics/get-history",
            &[
                ("run_id", run),
                ("metric_key", key),
                ("max_results", "25000"),
            ],
        )["metrics"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        h.sort_by_key(|m| m["step"].as_i64());
        h
    }

    /// An artifact's bytes through the proxy (`path` = `<exp>/<run>/artifacts/<file>`).
    pub fn download(&self, path: &str) -> Vec<u8> {
        let r = self
            .http
            .get(format!(
                "{}/api/2.0/mlflow-artifacts/artifacts/{path}",
                self.url
            ))
            .send()
            .unwrap();
        assert!(
            r.status().is_success(),
            "GET artifact {path}: {}",
            r.status()
        );
        r.bytes().unwrap().to_vec()
    }
}

/// A TCP proxy to an MLflow server that forwards `limit` connections, one request each (it
/// asks for `Connection: close`), then stops listening: to a client, the server went away in
/// the middle of an upload.
pub struct CutProxy {
    /// The proxy's URL.
    pub url: String,
    stop: Arc<AtomicBool>,
}

impl CutProxy {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub fn start(upstream: &str, limit: usize) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = upstream.trim_start_matches("http://").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for _ in 0..limit {
                let Ok((client, _)) = listener.accept() else {
                    return;
                };
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let up = up.clone();
                // One at a time: the next connection is accepted after this request is done.
                let _ = forward(client, &up);
            }
            // Dropping the listener: connections are refused from now on.
        });
        CutProxy { url, stop }
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Forwards one request from `client` to `upstream` with `Connection: close`, and the
/// response back.
fn forward(mut client: TcpStream, upstream: &str) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut len = 0usize;
    let mut lines: Vec<&str> = Vec::new();
    for l in text.trim_end().split("\r\n") {
        let lower = l.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            lines.push(l);
        }
    }
    let mut body = vec![0u8; len];
    client.read_exact(&mut body)?;
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(format!("{}\r\nConnection: close\r\n\r\n", lines.join("\r\n")).as_bytes())?;
    up.write_all(&body)?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp)?;
    // Tell the client too, so it never reuses this connection.
    if let Some(i) = resp.windows(2).position(|w| w == b"\r\n") {
        let lower = String::from_utf8_lossy(&resp).to_ascii_lowercase();
        if !lower.contains("\r\nconnection: close") {
            resp.splice(i + 2..i + 2, b"Connection: close\r\n".iter().copied());
        }
    }
    client.write_all(&resp)?;
    client.shutdown(Shutdown::Both)
}

/// The value of tag `key` of `run` (a run as MLflow's REST API returns it).
pub fn tag<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    entry(run, "tags", key)?.as_str()
}

/// The value of param `key` of `run`.
pub fn param<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    entry(run, "params", key)?.as_str()
}

/// The latest value of metric `key` of `run`.
pub fn metric(run: &Value, key: &str) -> Option<f64> {
    entry(run, "metrics", key)?.as_f64()
}

/// The `value` of the entry with `key` in `run.data.<list>`.
fn entry<'a>(run: &'a Value, list: &str, key: &str) -> Option<&'a Value> {
    Some(
        &run["data"][list]
            .as_array()?
            .iter()
            .find(|t| t["key"] == key)?["value"],
    )
}
