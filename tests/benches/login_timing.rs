//! Login timing: an unknown user must cost what a wrong password costs, or login would tell
//! an attacker which usernames exist. Writes the ratio of the two mean latencies (with the
//! successful login as the baseline) to `target/bench/login_timing.json`.
//!
//! Run with `cargo bench -p tests --bench login_timing`.

use std::{collections::HashMap, time::Instant};

use client::{Client, types};
use server::{Application, Settings};

const ROUNDS: usize = 40;
const PASSWORD: &str = "s3cure-passw0rd";

fn form(username: &str, password: &str) -> types::LoginForm {
    types::LoginForm {
        username: username.into(),
        password: password.into(),
        grant_type: None,
        scope: None,
        client_id: None,
        client_secret: None,
    }
}

async fn mean_millis(api: &Client, username: &str, password: &str) -> f64 {
    let started = Instant::now();
    for _ in 0..ROUNDS {
        // Success and failure both count: only the time matters here.
        let _ = api.login().body(form(username, password)).send().await;
    }
    started.elapsed().as_secs_f64() * 1000.0 / ROUNDS as f64
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let env: HashMap<&str, String> = HashMap::from([
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
    let settings = Settings::from_lookup(|name| env.get(name).cloned())?;
    let app = Application::build(settings).await?;
    let api = Client::new(&format!("http://127.0.0.1:{}", app.port()));
    tokio::spawn(app.run_until_stopped());

    api.create_user()
        .body(types::UserCreate {
            name: "Bench User".try_into()?,
            username: "bench".try_into()?,
            email: "bench@example.com".try_into()?,
            password: PASSWORD.try_into()?,
        })
        .send()
        .await?;

    // Warm up connections and the dummy hash before measuring.
    mean_millis(&api, "bench", PASSWORD).await;
    let success = mean_millis(&api, "bench", PASSWORD).await;
    let wrong_password = mean_millis(&api, "bench", "not-the-password").await;
    let unknown_user = mean_millis(&api, "nobody", PASSWORD).await;

    let report = serde_json::json!({
        "rounds": ROUNDS,
        "mean_ms": {
            "success": success,
            "wrong_password": wrong_password,
            "unknown_user": unknown_user,
        },
        "ratio_to_success": {
            "wrong_password": wrong_password / success,
            "unknown_user": unknown_user / success,
        },
        "unknown_user_vs_wrong_password": unknown_user / wrong_password,
    });
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("login_timing.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("{report:#}\nwritten to {}", out.display());
    Ok(())
}
