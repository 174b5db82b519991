//! Test fixtures: a live server per test, on port 0, with a fresh database.
//!
//! Backends come from the environment:
//! - `TEST_DATABASE_URL` (PostgreSQL): each test gets a database of its own on that server,
//!   dropped when the test ends. Unset: an SQLite file in a temporary directory.
//! - `TEST_REDIS_URL`: the server uses that Redis, under a random key prefix.
//!
//! A configured server that cannot be reached fails the test; nothing is skipped.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use client::{Client, types};
use progenitor_client::{Error as ClientError, ResponseValue};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use server::{Application, Settings, redis_store::RedisStore, state::AppState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const PASSWORD: &str = "s3cure-passw0rd";

pub struct TestApp {
    pub base_url: String,
    /// An anonymous client.
    pub api: Client,
    pub state: AppState,
    _database: TestDatabase,
}

enum TestDatabase {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            let label = name.clone();
            // Drop runs inside the test's runtime; the clean-up needs a runtime of its own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime
                    .block_on(async {
                        let db = Database::connect(&admin_url).await?;
                        db.execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await?;
                        Ok::<_, sea_orm::DbErr>(())
                    })
                    .map_err(std::io::Error::other)
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("warning: test database {label} was not dropped");
            }
        }
    }
}

/// Replaces the database name of a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > base.find("//").map_or(0, |j| j + 1) => &base[..i],
        _ => base,
    };
    match query {
        Some(query) => format!("{prefix}/{name}?{query}"),
        None => format!("{prefix}/{name}"),
    }
}

async fn test_database() -> (String, TestDatabase) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) if !admin_url.trim().is_empty() => {
            let name = format!("it_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url).await.unwrap_or_else(|err| {
                panic!("TEST_DATABASE_URL={admin_url} is set but unreachable: {err}")
            });
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
            admin.close().await.ok();
            let url = with_database(&admin_url, &name);
            (url, TestDatabase::Postgres { admin_url, name })
        }
        _ => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            (url, TestDatabase::Sqlite(dir))
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// The settings of a test server: a fresh database, the configured Redis under a key prefix
/// of its own, then `overrides` (environment variable names and values).
async fn test_environment(overrides: &[(&str, &str)]) -> (HashMap<String, String>, TestDatabase) {
    let (database_url, database) = test_database().await;
    let mut env: HashMap<String, String> = HashMap::from([
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("DATABASE_URL".into(), database_url),
        ("SECRET_KEY".into(), uuid::Uuid::new_v4().to_string()),
        ("ADMIN_USERNAME".into(), "admin".into()),
        ("ADMIN_EMAIL".into(), "admin@example.com".into()),
        ("ADMIN_PASSWORD".into(), PASSWORD.into()),
    ]);
    if let Ok(redis_url) = std::env::var("TEST_REDIS_URL")
        && !redis_url.trim().is_empty()
    {
        env.insert("REDIS_URL".into(), redis_url);
        env.insert(
            "REDIS_KEY_PREFIX".into(),
            format!("it:{}:", uuid::Uuid::new_v4().simple()),
        );
    }
    for (key, value) in overrides {
        env.insert(key.to_string(), value.to_string());
    }
    (env, database)
}

/// Starts the server with extra settings (environment variable names and values).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let (env, database) = test_environment(overrides).await;
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).expect("valid settings");
    if std::env::var_os("TEST_LOG").is_some() {
        // The writer lives as long as the test process.
        if let Some(guard) = server::telemetry::init(settings.log_format) {
            std::mem::forget(guard);
        }
    }
    let app = Application::build(settings)
        .await
        .unwrap_or_else(|err| panic!("the server did not start: {err:#}"));
    let base_url = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        api: Client::new(&base_url),
        base_url,
        state,
        _database: database,
    }
}

impl TestApp {
    /// A second instance on the same database and Redis, with the same settings: what a load
    /// balancer would have in front of it. Its state, and its base URL.
    pub async fn second_instance(&self) -> (AppState, String) {
        let settings = (*self.state.settings).clone();
        let app = Application::build(settings)
            .await
            .unwrap_or_else(|err| panic!("the second instance did not start: {err:#}"));
        let base_url = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        tokio::spawn(app.run_until_stopped());
        (state, base_url)
    }
}

/// A signed-up, logged-in user.
pub struct TestUser {
    pub user: types::UserRead,
    pub token: types::Token,
    /// A client that sends this user's access token.
    pub api: Client,
}

impl TestApp {
    /// Cuts every connection the server holds to its database (`pg_terminate_backend`), as a
    /// failover or a restart would; `None` on SQLite, which has no connections to cut.
    pub async fn cut_database_connections(&self) -> Option<u64> {
        let TestDatabase::Postgres { admin_url, name } = &self._database else {
            return None;
        };
        let admin = Database::connect(admin_url)
            .await
            .expect("the admin database");
        let cut = admin
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ),
            ))
            .await
            .expect("terminating the server's connections");
        admin.close().await.ok();
        Some(cut.len() as u64)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn authed(&self, access_token: &str) -> Client {
        client::with_bearer(&self.base_url, access_token).expect("a client")
    }

    pub async fn signup(&self, username: &str) -> types::UserRead {
        self.api
            .create_user()
            .body(signup_body(username))
            .send()
            .await
            .expect("sign-up succeeds")
            .into_inner()
    }

    pub async fn login(&self, username: &str, password: &str) -> types::Token {
        self.api
            .login()
            .body(login_form(username, password))
            .send()
            .await
            .expect("login succeeds")
            .into_inner()
    }

    pub async fn fx_user(&self, username: &str) -> TestUser {
        let user = self.signup(username).await;
        let token = self.login(username, PASSWORD).await;
        let api = self.authed(&token.access_token);
        TestUser { user, token, api }
    }

    /// The superuser from the `ADMIN_*` settings, created by the admin command's code.
    pub async fn fx_superuser(&self) -> TestUser {
        server::admin::create_superuser(&self.state.db, &self.state.settings)
            .await
            .expect("superuser created");
        let token = self.login("admin", PASSWORD).await;
        let api = self.authed(&token.access_token);
        let user = api.read_users_me().send().await.expect("me").into_inner();
        TestUser { user, token, api }
    }
}

pub fn signup_body(username: &str) -> types::UserCreate {
    types::UserCreate {
        name: format!("User {username}")
            .as_str()
            .try_into()
            .expect("valid name"),
        username: username.try_into().expect("valid username"),
        email: format!("{username}@example.com")
            .as_str()
            .try_into()
            .expect("valid email"),
        password: PASSWORD.try_into().expect("valid password"),
    }
}

pub fn login_form(username: &str, password: &str) -> types::LoginForm {
    types::LoginForm {
        username: username.into(),
        password: password.into(),
        grant_type: None,
        scope: None,
        client_id: None,
        client_secret: None,
    }
}

/// An error answer from the server, as the typed client reports it.
pub struct ApiFailure {
    pub status: StatusCode,
    pub body: types::ErrorBody,
    pub headers: reqwest::header::HeaderMap,
}

impl ApiFailure {
    /// The `detail` message; panics on a validation list.
    pub fn message(&self) -> &str {
        match &self.body.detail {
            types::ErrorDetail::String(message) => message,
            types::ErrorDetail::Array(issues) => panic!("expected a message, got {issues:?}"),
        }
    }

    pub fn assert_is(&self, status: StatusCode, message: &str) {
        assert_eq!((self.status, self.message()), (status, message));
    }
}

/// Unwraps the error of a client call; panics if the call succeeded or never got an answer.
pub fn failure<T: std::fmt::Debug>(
    result: Result<ResponseValue<T>, ClientError<types::ErrorBody>>,
) -> ApiFailure {
    match result {
        Err(ClientError::ErrorResponse(response)) => ApiFailure {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.into_inner(),
        },
        Ok(ok) => panic!(
            "expected an error response, got {:?} {:?}",
            ok.status(),
            ok.into_inner()
        ),
        Err(other) => panic!("expected an error response, got {other:?}"),
    }
}

/// Runs the futures as concurrent tasks; their outputs in the same order.
pub async fn run_concurrently<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

/// The status of a client call's answer, success or error; panics if there was none.
pub fn status_of<T>(
    result: &Result<ResponseValue<T>, ClientError<types::ErrorBody>>,
) -> StatusCode {
    match result {
        Ok(ok) => ok.status(),
        Err(ClientError::ErrorResponse(response)) => response.status(),
        Err(other) => panic!("no answer: {other:?}"),
    }
}

/// Sends a request the typed client cannot express and reads its JSON answer.
pub async fn exchange(request: reqwest::RequestBuilder) -> (StatusCode, serde_json::Value) {
    raw_json(request.send().await.expect("the server answers")).await
}

/// Raw JSON answer, for what the typed client cannot send.
pub async fn raw_json(response: reqwest::Response) -> (StatusCode, serde_json::Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "expected JSON, got {content_type:?} with status {status}"
    );
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

/// The server binary as a process of its own, for what only a process shows: signals, exit.
pub struct ServerProcess {
    pub base_url: String,
    /// An anonymous client.
    pub api: Client,
    process: Child,
    log: tempfile::NamedTempFile,
    _database: TestDatabase,
}

impl ServerProcess {
    /// Builds `target/debug/server` if it is not up to date, starts it with the test settings
    /// and `overrides`, and waits until it answers.
    pub async fn start(overrides: &[(&str, &str)]) -> Self {
        let (mut env, database) = test_environment(overrides).await;
        let port = free_port();
        env.insert("PORT".into(), port.to_string());
        env.entry("RUST_LOG".into())
            .or_insert_with(|| "info".into());
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let process = Command::new(server_binary())
            .env_clear()
            .envs(std::env::vars().filter(|(name, _)| name == "PATH" || name == "HOME"))
            .envs(&env)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("the log file"))
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("the server binary starts");
        let base_url = format!("http://127.0.0.1:{port}");
        let server = Self {
            api: Client::new(&base_url),
            base_url,
            process,
            log,
            _database: database,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(server.url("/api/v1/health")).await
                && response.status() == StatusCode::OK
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the server process did not start: {}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.process.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit; its exit status then.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.process.try_wait().expect("the process status") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// What the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.process.kill().ok();
        self.process.wait().ok();
    }
}

/// `target/debug/server`, built now when it is missing or stale (a no-op otherwise).
fn server_binary() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "server", "--bin", "server"])
                .current_dir(&workspace)
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the server binary failed");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| workspace.join("target"));
            target.join("debug").join("server")
        })
        .clone()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

/// The Redis servers a backend conformance suite runs on, each under a key prefix of its own
/// (`<suite>:<random>:`): `TEST_REDIS_URL` when set, and always the test process's own
/// three-master cluster.
pub fn conformance_redis(suite: &str) -> Vec<RedisStore> {
    let prefix = || format!("{suite}:{}:", uuid::Uuid::new_v4().simple());
    let mut stores = Vec::new();
    if let Ok(url) = std::env::var("TEST_REDIS_URL")
        && !url.trim().is_empty()
    {
        let store = RedisStore::open(&url, &prefix())
            .unwrap_or_else(|err| panic!("TEST_REDIS_URL={url} is not usable: {err}"));
        stores.push(store);
    }
    let cluster = RedisStore::open(&test_cluster_url(), &prefix()).expect("the cluster URL");
    stores.push(cluster);
    stores
}

/// A Redis Cluster of three masters (`redis-server --cluster-enabled yes` on free ports, joined
/// by `redis-cli --cluster create`), started once per test process; its URL. Each server is
/// watched by a shell that stops it when the test process has gone.
pub fn test_cluster_url() -> String {
    static CLUSTER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(start_cluster).clone()
}

fn start_cluster() -> String {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    for port in &ports {
        let dir = std::env::temp_dir().join(format!("it-redis-cluster-{port}"));
        std::fs::create_dir_all(&dir).expect("a directory for a cluster node");
        let server = format!(
            "redis-server --port {port} --cluster-port {bus} --bind 127.0.0.1 \\
             --cluster-enabled yes --save '' --appendonly no --dir {dir}",
            bus = free_port(),
            dir = dir.display(),
        );
        // The watcher runs in the background of a shell that exits at once.
        let watched = format!(
            "({server} & pid=$!; while kill -0 {parent} 2>/dev/null && kill -0 $pid 2>/dev/null; \\
             do sleep 1; done; kill $pid 2>/dev/null; sleep 1; rm -rf {dir}) &",
            parent = std::process::id(),
            dir = dir.display(),
        );
        let started = Command::new("sh")
            .args(["-c", &watched])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("sh runs");
        assert!(started.success(), "a cluster node was not started");
    }
    let cli = |args: &[&str]| {
        Command::new("redis-cli")
            .args(args)
            .output()
            .expect("redis-cli is installed")
    };
    let nodes: Vec<String> = ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    for port in &ports {
        while cli(&["-p", &port.to_string(), "ping"]).stdout != b"PONG\n" {
            assert!(Instant::now() < deadline, "a cluster node did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut create = vec!["--cluster", "create"];
    create.extend(nodes.iter().map(String::as_str));
    create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
    let created = cli(&create);
    assert!(
        created.status.success(),
        "redis-cli --cluster create failed: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    for port in &ports {
        loop {
            let info = cli(&["-p", &port.to_string(), "cluster", "info"]);
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    format!("{}{}", server::redis_store::CLUSTER_SCHEME, nodes.join(","))
}

/// A `redis-server` of the test's own, on a free port, to stop, pause or restart.
pub struct TestRedis {
    port: u16,
    process: Option<Child>,
}

impl TestRedis {
    /// A port on which no Redis runs yet.
    pub fn stopped() -> Self {
        Self {
            port: free_port(),
            process: None,
        }
    }

    pub async fn start(&mut self) {
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (it runs the tests' own Redis)");
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers().await {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn answers(&self) -> bool {
        let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        let mut reply = [0u8; 7];
        conn.write_all(b"PING\r\n").await.is_ok()
            && conn.read_exact(&mut reply).await.is_ok()
            && &reply == b"+PONG\r\n"
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.process.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().ok();
            process.wait().ok();
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if self.process.is_some() {
            self.signal("-CONT");
        }
        self.stop();
    }
}

#[test]
fn database_name_is_replaced_in_postgres_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "it_x"),
        "postgres://postgres@127.0.0.1:5432/it_x"
    );
    assert_eq!(
        with_database("postgres://u@h/db?sslmode=disable", "it_x"),
        "postgres://u@h/it_x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://u@h", "it_x"),
        "postgres://u@h/it_x"
    );
}
