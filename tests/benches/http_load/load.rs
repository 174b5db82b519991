//! Load from a second process: wrk, driven by `wrk.lua`, one endpoint at a time.

use std::{path::Path, process::Command, time::Duration};

use serde::Serialize;

const SCRIPT: &str = include_str!("wrk.lua");

/// One kind of request, and what a correct answer is.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: &'static str,
    pub what: &'static str,
    pub method: &'static str,
    /// Taken in turn; more than one spreads the load over keys.
    pub paths: Vec<String>,
    pub body: Option<(String, &'static str)>,
    pub token: Option<String>,
    pub connections: u32,
    /// `false` for the 429 flood, where refusals are the point.
    pub expect_success: bool,
}

/// What wrk measured.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Measured {
    pub requests: u64,
    pub duration_us: u64,
    pub bytes: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub errors: Errors,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    /// Answers that were not 2xx or 3xx.
    pub status: u64,
    pub timeout: u64,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }

    pub fn transport_errors(&self) -> u64 {
        let e = &self.errors;
        e.connect + e.read + e.write + e.timeout
    }
}

/// Loads `endpoint` on `base` for `duration`.
pub fn run(base: &str, endpoint: &Endpoint, duration: Duration, scratch: &Path) -> Measured {
    let script = scratch.join("bench.lua");
    let paths = scratch.join(format!("{}.paths", endpoint.name));
    std::fs::write(&script, SCRIPT).expect("the wrk script");
    std::fs::write(&paths, endpoint.paths.join("\n")).expect("the paths");
    let threads = endpoint.connections.clamp(1, 2);
    let mut command = Command::new("wrk");
    command
        .arg(format!("--threads={threads}"))
        .arg(format!("--connections={}", endpoint.connections))
        .arg(format!("--duration={}s", duration.as_secs().max(1)))
        .arg("--timeout=5s")
        .arg(format!("--script={}", script.display()))
        .arg(base)
        .env("BENCH_METHOD", endpoint.method)
        .env("BENCH_PATHS", &paths);
    if let Some((body, content_type)) = &endpoint.body {
        command
            .env("BENCH_BODY", body)
            .env("BENCH_CONTENT_TYPE", content_type);
    }
    if let Some(token) = &endpoint.token {
        command.env("BENCH_TOKEN", token);
    }
    let output = command.output().expect("wrk runs (apt-get install wrk)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no result for {}: {stdout}{}",
                endpoint.name,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    serde_json::from_str(json).expect("wrk's result")
}
