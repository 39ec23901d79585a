//! Shared helpers of the integration tests: a `workload-app` child process that is killed on
//! drop (also when a test fails), polling, and metric lookup.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `workload-app`; killed when dropped.
pub struct AppProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl AppProcess {
    /// Starts `workload-app --listen 127.0.0.1:0 ARGS..` and reads its listening line.
    pub fn start(args: &[&str]) -> AppProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_workload-app"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn workload-app");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut proc = AppProcess {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listening line");
        let v: serde_json::Value =
            serde_json::from_str(line.trim()).expect("listening line is JSON");
        assert_eq!(v["event"], "listening", "{line}");
        proc.addr = v["addr"]
            .as_str()
            .expect("addr")
            .parse()
            .expect("addr parses");
        proc
    }

    /// `http://ADDR/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample `series` (name with labels, exactly as exposed) in `text`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let rest = rest.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blocking client with a generous timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// GET `url` and return the body text.
pub fn get_text(c: &reqwest::blocking::Client, url: &str) -> String {
    c.get(url).send().expect("GET").text().expect("body")
}
