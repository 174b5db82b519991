//! A login flood must not exhaust memory or starve other requests. Measures `/health` alone,
//! then `/health` while 200 clients send wrong-password logins as fast as they can, and the
//! process's peak RSS and thread count. Writes `target/bench/login_flood.json`.
//!
//! The server runs in this process (SQLite, in-process backends), so RSS and threads include
//! the load generator's; the figures compare with each other, in the same run.
//! Run with `cargo bench -p tests --bench login_flood`.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use server::{Application, Settings};

const FLOODERS: usize = 200;
const HEALTH_CLIENTS: usize = 16;
const QUIET: Duration = Duration::from_secs(3);
const FLOOD: Duration = Duration::from_secs(8);

fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Requests per second and latency percentiles of `/health` over `duration`.
async fn health_load(http: &reqwest::Client, url: &str, duration: Duration) -> serde_json::Value {
    let deadline = Instant::now() + duration;
    let clients: Vec<_> = (0..HEALTH_CLIENTS)
        .map(|_| {
            let (http, url) = (http.clone(), url.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    match http.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            latencies.push(started.elapsed().as_secs_f64() * 1000.0)
                        }
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for client in clients {
        if let Ok((l, e)) = client.await {
            latencies.extend(l);
            errors += e;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * q) as usize)
            .copied()
    };
    serde_json::json!({
        "requests_per_s": latencies.len() as f64 / duration.as_secs_f64(),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "errors": errors,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut env: HashMap<&str, String> = HashMap::from([
        ("PORT", "0".to_string()),
        (
            "DATABASE_URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            ),
        ),
        // Measured here: the hashing, not the failed-login throttle in front of it.
        ("LOGIN_FAILURES_PER_IP", "1000000".to_string()),
        ("LOGIN_FAILURES_PER_USERNAME", "1000000".to_string()),
    ]);
    // The bound under test can be set as for the server.
    if let Ok(bound) = std::env::var("PASSWORD_HASH_CONCURRENCY") {
        env.insert("PASSWORD_HASH_CONCURRENCY", bound);
    }
    let settings = Settings::from_lookup(|name| env.get(name).cloned())?;
    let hash_bound = settings.password_hash_concurrency;
    let app = Application::build(settings).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let passwords = app.state().passwords.clone();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let health = format!("{base}/api/v1/health");
    http.post(format!("{base}/api/v1/user"))
        .json(&serde_json::json!({"name": "Bench", "username": "bench",
            "email": "bench@example.com", "password": "s3cure-passw0rd"}))
        .send()
        .await?;

    let quiet = health_load(&http, &health, QUIET).await;
    let rss_before_kib = proc_status("VmHWM:");

    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|_| {
            let (http, url, stop) = (http.clone(), format!("{base}/api/v1/login"), stop.clone());
            tokio::spawn(async move {
                let mut statuses: HashMap<u16, u64> = HashMap::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = http
                        .post(&url)
                        .form(&[("username", "bench"), ("password", "wrong-password")])
                        .send()
                        .await;
                    let status = sent.map(|r| r.status().as_u16()).unwrap_or(0);
                    *statuses.entry(status).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let threads = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(proc_status("Threads:"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = health_load(&http, &health, FLOOD).await;
    stop.store(true, Ordering::Relaxed);
    let mut statuses: HashMap<u16, u64> = HashMap::new();
    for flooder in flooders {
        for (status, n) in flooder.await? {
            *statuses.entry(status).or_default() += n;
        }
    }
    let peak_threads = threads.await?;

    let ratio = during["requests_per_s"].as_f64().unwrap_or(0.0)
        / quiet["requests_per_s"].as_f64().unwrap_or(1.0);
    let report = serde_json::json!({
        "flooders": FLOODERS,
        "password_hash_concurrency": hash_bound,
        "peak_concurrent_hashes": passwords.peak_concurrency(),
        "login_statuses": statuses,
        "health_quiet": quiet,
        "health_during_flood": during,
        "health_rate_during_over_quiet": ratio,
        "peak_rss_mib_before_flood": rss_before_kib as f64 / 1024.0,
        "peak_rss_mib_after_flood": proc_status("VmHWM:") as f64 / 1024.0,
        "peak_threads_during_flood": peak_threads,
    });
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("login_flood.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("{report:#}\nwritten to {}", out.display());
    Ok(())
}
