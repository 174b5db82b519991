//! The HTTP benchmark: every hot path of the release server, loaded by wrk from a second
//! process, reported side by side with `/health` in the same run (the server's own ceiling), and
//! `/health` beside a bare poem-openapi endpoint (what the request middleware costs).
//!
//! `cargo bench -p tests --bench http_load` builds the server in release and runs it on the
//! embedded defaults and on PostgreSQL + Redis (`BENCH_DATABASE_URL`, `BENCH_REDIS_URL`; the local
//! servers by default). Each backend gets 1,000 users with 20 posts each and two tiers; every
//! endpoint is warmed up, then loaded with 50 connections for 10 s, in 3 interleaved rounds.
//! Medians (with min–max) go to `tests/benches/results/http_load.{json,md}`.
//!
//! `BENCH_SMOKE=1`: the embedded default only, 2 s per endpoint, one round, results under
//! `target/bench/`; it fails on errors (a non-2xx answer where 2xx is expected, a dead server),
//! never on speed.

mod load;
mod process;
mod seed;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use load::{Endpoint, Measured};
use process::Served;
use serde_json::{Value, json};

const CONNECTIONS: u32 = 50;
/// Concurrent logins: a few over the hashing bound, so the queue in front of argon2 is measured
/// without requests waiting past `PASSWORD_HASH_MAX_WAIT_MS` (which answers 503 by design).
const LOGIN_CONNECTIONS: u32 = 4;
const LOGINS_PER_SECOND: u64 = 20;

struct Plan {
    smoke: bool,
    duration: Duration,
    warm_up: Duration,
    rounds: usize,
}

/// Where the server keeps its data.
struct Backend {
    name: &'static str,
    env: Vec<(String, String)>,
    database_url: String,
    /// PostgreSQL: the server database to drop the benchmark's database from, afterwards.
    admin_url: Option<String>,
    redis: Option<(String, String)>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--bare-server") {
        let port = args
            .get(i + 1)
            .and_then(|p| p.parse().ok())
            .expect("a port");
        process::bare::serve(port);
    }
    let smoke = std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1");
    let plan = if smoke {
        Plan {
            smoke,
            duration: Duration::from_secs(2),
            warm_up: Duration::from_secs(1),
            rounds: 1,
        }
    } else {
        Plan {
            smoke,
            duration: Duration::from_secs(10),
            warm_up: Duration::from_secs(2),
            rounds: 3,
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let server_bin = process::release_server();
    let mut backends = vec![embedded()];
    if !plan.smoke {
        backends.push(runtime.block_on(postgres_and_redis()));
    }
    let mut results = BTreeMap::new();
    let mut failures = Vec::new();
    for backend in &backends {
        eprintln!("== {}", backend.name);
        let report = runtime.block_on(bench_backend(&plan, &server_bin, backend, &mut failures));
        results.insert(backend.name, report);
        runtime.block_on(clean_up(backend));
    }
    let document = json!({
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "machine": machine(),
        "mode": if plan.smoke { "smoke" } else { "full" },
        "seconds_per_endpoint": plan.duration.as_secs(),
        "rounds": plan.rounds,
        "connections": CONNECTIONS,
        "backends": results,
    });
    let out = output_dir(plan.smoke);
    std::fs::create_dir_all(&out).expect("the results directory");
    let json_path = out.join(if plan.smoke {
        "http_load-smoke.json"
    } else {
        "http_load.json"
    });
    let text = serde_json::to_string_pretty(&document).expect("json");
    std::fs::write(&json_path, text + "\n").expect("the results");
    let markdown = markdown(&document);
    if !plan.smoke {
        std::fs::write(out.join("http_load.md"), &markdown).expect("the table");
    }
    println!("{markdown}");
    eprintln!("results: {}", json_path.display());
    if !failures.is_empty() {
        eprintln!("FAILED:\n{}", failures.join("\n"));
        std::process::exit(1);
    }
}

fn output_dir(smoke: bool) -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    if smoke {
        tests.join("../target/bench")
    } else {
        tests.join("benches/results")
    }
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("http-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn embedded() -> Backend {
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        scratch_dir().join("bench.db").display()
    );
    Backend {
        name: "embedded (SQLite, in-process)",
        env: vec![("DATABASE_URL".into(), database_url.clone())],
        database_url,
        admin_url: None,
        redis: None,
    }
}

async fn postgres_and_redis() -> Backend {
    use sea_orm::ConnectionTrait;
    let admin_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis_url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let name = format!("bench_{}", std::process::id());
    let admin = sea_orm::Database::connect(&admin_url)
        .await
        .expect("PostgreSQL (BENCH_DATABASE_URL) is reachable");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("a benchmark database");
    let (base, _) = admin_url.rsplit_once('/').expect("a database URL");
    let database_url = format!("{base}/{name}");
    let prefix = format!("{name}:");
    Backend {
        name: "PostgreSQL + Redis",
        env: vec![
            ("DATABASE_URL".into(), database_url.clone()),
            ("REDIS_URL".into(), redis_url.clone()),
            ("REDIS_KEY_PREFIX".into(), prefix.clone()),
        ],
        database_url,
        admin_url: Some(admin_url),
        redis: Some((redis_url, prefix)),
    }
}

async fn clean_up(backend: &Backend) {
    use sea_orm::ConnectionTrait;
    if let Some(admin_url) = &backend.admin_url
        && let Ok(admin) = sea_orm::Database::connect(admin_url).await
    {
        let name = backend.database_url.rsplit('/').next().unwrap_or_default();
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
    if let Some((url, prefix)) = &backend.redis
        && let Ok(client) = redis::Client::open(url.as_str())
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
        }
    }
}

fn server_command(bin: &Path, backend: &Backend, port: u16, extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new(bin);
    command
        .current_dir(scratch_dir())
        .env("PORT", port.to_string())
        .env("SAMPLE_TASK_DELAY_MS", "0")
        .envs(backend.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(extra.iter().copied());
    command
}

async fn bench_backend(
    plan: &Plan,
    bin: &Path,
    backend: &Backend,
    failures: &mut Vec<String>,
) -> Value {
    let migrate = server_command(bin, backend, 0, &[])
        .arg("migrate")
        .status()
        .expect("server migrate");
    assert!(migrate.success(), "migrations failed");
    let db = sea_orm::Database::connect(&backend.database_url)
        .await
        .expect("the database");
    seed::seed(&db).await;
    db.close().await.ok();

    let port = process::free_port();
    let server = Served::start(
        "server",
        server_command(bin, backend, port, &[("RUN_WORKER", "false")]),
        port,
        "/api/v1/health",
    );
    let uncached_port = process::free_port();
    let uncached = Served::start(
        "server-uncached",
        server_command(
            bin,
            backend,
            uncached_port,
            &[("RESPONSE_CACHE_ENABLED", "false"), ("RUN_WORKER", "false")],
        ),
        uncached_port,
        "/api/v1/health",
    );
    // Enqueueing is measured on a fresh instance of its own each time, without a worker and
    // stopped right after: running the backlog would take CPU from the endpoints measured next
    // (the embedded queue lives in the process, so it goes with it). Its capacity is raised
    // above what a run can enqueue, so every request enqueues; its peak RSS is then mostly the
    // jobs held (the default capacity of 10,000 bounds that in service).
    let queueing = || {
        let port = process::free_port();
        Served::start(
            "server-queue",
            server_command(
                bin,
                backend,
                port,
                &[("RUN_WORKER", "false"), ("QUEUE_MAX_JOBS", "10000000")],
            ),
            port,
            "/api/v1/health",
        )
    };
    let bare_port = process::free_port();
    let mut bare_command = Command::new(std::env::current_exe().expect("this binary"));
    bare_command.args(["--bare-server", &bare_port.to_string()]);
    let bare = Served::start("bare", bare_command, bare_port, "/api/v1/health");

    let token = login(&server.base, &seed::username(seed::ON_EACH_TIER)).await;
    let endpoints = endpoints(&token);
    let scratch = scratch_dir();
    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for round in 1..=plan.rounds {
        for endpoint in &endpoints {
            let fresh = (endpoint.name == "task_create").then(queueing);
            let target = match (endpoint.name, &fresh) {
                (_, Some(fresh)) => fresh,
                ("bare", _) => &bare,
                ("posts_miss" | "post_miss", _) => &uncached,
                _ => &server,
            };
            if round == 1 || fresh.is_some() {
                load::run(&target.base, endpoint, plan.warm_up, &scratch);
            }
            let sample = measure(target, endpoint, plan.duration, &scratch);
            eprintln!(
                "round {round} {:<14} {:>9.0} req/s p99 {:>7.2} ms rss {:>5.1} MiB",
                endpoint.name,
                sample.measured.rate(),
                sample.measured.p99_us as f64 / 1000.0,
                sample.peak_rss_kib as f64 / 1024.0
            );
            check(endpoint, &sample.measured, backend.name, failures);
            samples.entry(endpoint.name).or_default().push(sample);
        }
        if !server.is_running() {
            failures.push(format!("{}: the server died", backend.name));
            break;
        }
    }

    let storm = login_storm(plan, &server, &endpoints, &scratch).await;
    if !server.is_running() {
        failures.push(format!(
            "{}: the server died during the login storm",
            backend.name
        ));
    }
    summarise(&endpoints, &samples, storm)
}

/// One measured run of one endpoint.
struct Sample {
    measured: Measured,
    peak_rss_kib: u64,
    cpu_seconds: f64,
}

/// Time for the previous endpoint's last requests to end (a login's queued hashes take up to a
/// second), so that their memory is not counted as the next endpoint's peak.
const SETTLE: Duration = Duration::from_secs(1);

fn measure(target: &Served, endpoint: &Endpoint, duration: Duration, scratch: &Path) -> Sample {
    std::thread::sleep(SETTLE);
    target.reset_peak_rss();
    let cpu_before = target.cpu_seconds();
    let measured = load::run(&target.base, endpoint, duration, scratch);
    Sample {
        peak_rss_kib: target.peak_rss_kib(),
        cpu_seconds: target.cpu_seconds() - cpu_before,
        measured,
    }
}

fn check(endpoint: &Endpoint, measured: &Measured, backend: &str, failures: &mut Vec<String>) {
    let name = endpoint.name;
    if measured.requests == 0 {
        failures.push(format!("{backend} {name}: no request completed"));
    }
    if measured.transport_errors() > 0 {
        failures.push(format!("{backend} {name}: {:?}", measured.errors));
    }
    if endpoint.expect_success && measured.errors.status > 0 {
        failures.push(format!(
            "{backend} {name}: {} of {} answers were not 2xx",
            measured.errors.status, measured.requests
        ));
    }
}

async fn login(base: &str, username: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/login"))
        .form(&[("username", username), ("password", seed::PASSWORD)])
        .send()
        .await
        .expect("login");
    let token: Value = response.json().await.expect("a token");
    token["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

fn endpoints(token: &str) -> Vec<Endpoint> {
    // Reads spread over 50 users who write nothing during the run; writes go to user0100.
    // Writes come last: each endpoint's peak RSS starts from what the earlier ones left.
    let readers: Vec<usize> = (200..250).collect();
    let writer = seed::username(seed::ON_EACH_TIER);
    let lists: Vec<String> = readers
        .iter()
        .map(|&i| format!("/api/v1/{}/posts", seed::username(i)))
        .collect();
    let posts: Vec<String> = readers
        .iter()
        .flat_map(|&i| (0..5).map(move |n| (i, n)))
        .map(|(i, n)| format!("/api/v1/{}/post/{}", seed::username(i), seed::post_id(i, n)))
        .collect();
    let users: Vec<String> = (0..seed::USERS)
        .map(|i| format!("/api/v1/user/{}", seed::username(i)))
        .collect();
    let get = |name, what, paths: Vec<String>| Endpoint {
        name,
        what,
        method: "GET",
        paths,
        body: None,
        token: None,
        connections: CONNECTIONS,
        expect_success: true,
    };
    let authed = Some(token.to_string());
    vec![
        get(
            "health",
            "GET /health: the ceiling",
            vec!["/api/v1/health".into()],
        ),
        get(
            "bare",
            "a bare poem-openapi endpoint, no middleware",
            vec!["/api/v1/health".into()],
        ),
        get(
            "posts_cached",
            "GET /{username}/posts, cache hit",
            lists.clone(),
        ),
        get(
            "post_cached",
            "GET /{username}/post/{id}, cache hit",
            posts.clone(),
        ),
        get("posts_miss", "GET /{username}/posts, cache off", lists),
        get("post_miss", "GET /{username}/post/{id}, cache off", posts),
        get("user_read", "GET /user/{username}: the database", users),
        Endpoint {
            token: authed.clone(),
            ..get(
                "user_me",
                "GET /user/me: JWT, revocation check, user",
                vec!["/api/v1/user/me".into()],
            )
        },
        Endpoint {
            method: "POST",
            expect_success: false,
            ..get(
                "flood_429",
                "POST /tasks/task past the limit (anonymous): 429s",
                vec!["/api/v1/tasks/task?message=flood".into()],
            )
        },
        Endpoint {
            method: "POST",
            token: authed.clone(),
            ..get(
                "task_create",
                "POST /tasks/task: auth, limiter, enqueue",
                vec!["/api/v1/tasks/task?message=bench".into()],
            )
        },
        Endpoint {
            method: "POST",
            token: authed,
            body: Some((
                r#"{"title":"Benchmark post","text":"Written under load."}"#.into(),
                "application/json",
            )),
            ..get(
                "post_create",
                "POST /{username}/post: write + invalidation",
                vec![format!("/api/v1/{writer}/post")],
            )
        },
        Endpoint {
            method: "POST",
            body: Some((
                format!("username={writer}&password={}", seed::PASSWORD),
                "application/x-www-form-urlencoded",
            )),
            connections: LOGIN_CONNECTIONS,
            ..get("login", "POST /login: argon2", vec!["/api/v1/login".into()])
        },
    ]
}

/// Other endpoints' latency while logins arrive at a steady rate.
async fn login_storm(
    plan: &Plan,
    server: &Served,
    endpoints: &[Endpoint],
    scratch: &Path,
) -> Value {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let storm = {
        let (stop, failed) = (stop.clone(), failed.clone());
        let url = format!("{}/api/v1/login", server.base);
        let form = [
            (
                "username".to_string(),
                seed::username(seed::ON_EACH_TIER + 1),
            ),
            ("password".to_string(), seed::PASSWORD.to_string()),
        ];
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / LOGINS_PER_SECOND));
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (http, url, form, failed) =
                    (http.clone(), url.clone(), form.clone(), failed.clone());
                tokio::spawn(async move {
                    let ok = http
                        .post(url)
                        .form(&form)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                });
                sent += 1;
            }
            sent
        })
    };
    let mut during = serde_json::Map::new();
    for endpoint in endpoints
        .iter()
        .filter(|e| ["health", "posts_cached", "user_me"].contains(&e.name))
    {
        let measured = tokio::task::block_in_place(|| {
            load::run(&server.base, endpoint, plan.duration, scratch)
        });
        during.insert(
            endpoint.name.into(),
            json!({
                "rate": measured.rate().round(),
                "p99_ms": measured.p99_us as f64 / 1000.0,
            }),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let sent = storm.await.unwrap_or(0);
    json!({
        "logins_per_second": LOGINS_PER_SECOND,
        "logins_sent": sent,
        "logins_failed": failed.load(Ordering::Relaxed),
        "during": during,
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn summarise(endpoints: &[Endpoint], samples: &BTreeMap<&str, Vec<Sample>>, storm: Value) -> Value {
    let health = &samples["health"];
    let mut rows = serde_json::Map::new();
    for endpoint in endpoints {
        let runs = &samples[endpoint.name];
        let rates: Vec<f64> = runs.iter().map(|s| s.measured.rate()).collect();
        let mut ratios: Vec<f64> = runs
            .iter()
            .zip(health)
            .map(|(s, h)| s.measured.rate() / h.measured.rate().max(1.0))
            .collect();
        let mut p50: Vec<f64> = runs
            .iter()
            .map(|s| s.measured.p50_us as f64 / 1000.0)
            .collect();
        let mut p99: Vec<f64> = runs
            .iter()
            .map(|s| s.measured.p99_us as f64 / 1000.0)
            .collect();
        let mut cpu: Vec<f64> = runs
            .iter()
            .map(|s| s.cpu_seconds / (s.measured.requests.max(1) as f64) * 1000.0)
            .collect();
        let peak_rss = runs.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
        let refused: u64 = runs.iter().map(|s| s.measured.errors.status).sum();
        let requests: u64 = runs.iter().map(|s| s.measured.requests).sum();
        rows.insert(
            endpoint.name.into(),
            json!({
                "what": endpoint.what,
                "connections": endpoint.connections,
                "rate": median(&mut rates.clone()).round(),
                "rate_min": rates.iter().copied().fold(f64::INFINITY, f64::min).round(),
                "rate_max": rates.iter().copied().fold(0.0, f64::max).round(),
                "ratio_to_health": (median(&mut ratios) * 1000.0).round() / 1000.0,
                "p50_ms": median(&mut p50),
                "p99_ms": median(&mut p99),
                "peak_rss_mib": (peak_rss * 10.0).round() / 10.0,
                "cpu_seconds_per_1000": (median(&mut cpu) * 10000.0).round() / 10000.0,
                "non_2xx": refused,
                "requests": requests,
            }),
        );
    }
    json!({ "endpoints": rows, "login_storm": storm })
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
    })
}

fn markdown(document: &Value) -> String {
    let mut out = format!(
        "HTTP benchmark, {} ({} run): {} cores ({}), wrk with {} connections, {} s per endpoint, \
         {} rounds; medians, with min–max of the rate.\n",
        document["date"].as_str().unwrap_or_default(),
        document["mode"].as_str().unwrap_or_default(),
        document["machine"]["cores"],
        document["machine"]["cpu"].as_str().unwrap_or_default(),
        document["connections"],
        document["seconds_per_endpoint"],
        document["rounds"],
    );
    for (backend, report) in document["backends"].as_object().into_iter().flatten() {
        out += &format!(
            "\n### {backend}\n\n| endpoint | req/s (min–max) | × /health | p50 ms | p99 ms | peak RSS MiB | CPU s / 1k req |\n|---|---|---|---|---|---|---|\n"
        );
        for (name, row) in report["endpoints"].as_object().into_iter().flatten() {
            out += &format!(
                "| `{name}` {} | {:.0} ({:.0}–{:.0}) | {:.2} | {:.2} | {:.2} | {} | {:.3} |\n",
                row["what"].as_str().unwrap_or_default(),
                row["rate"].as_f64().unwrap_or(0.0),
                row["rate_min"].as_f64().unwrap_or(0.0),
                row["rate_max"].as_f64().unwrap_or(0.0),
                row["ratio_to_health"].as_f64().unwrap_or(0.0),
                row["p50_ms"].as_f64().unwrap_or(0.0),
                row["p99_ms"].as_f64().unwrap_or(0.0),
                row["peak_rss_mib"],
                row["cpu_seconds_per_1000"].as_f64().unwrap_or(0.0),
            );
        }
        let storm = &report["login_storm"];
        out += &format!(
            "\nDuring {} logins/s ({} sent, {} failed):",
            storm["logins_per_second"], storm["logins_sent"], storm["logins_failed"]
        );
        for (name, during) in storm["during"].as_object().into_iter().flatten() {
            let quiet = report["endpoints"][name]["p99_ms"].as_f64().unwrap_or(0.0);
            out += &format!(
                " `{name}` p99 {:.2} ms (quiet {:.2} ms);",
                during["p99_ms"].as_f64().unwrap_or(0.0),
                quiet
            );
        }
        out += "\n";
    }
    out
}
