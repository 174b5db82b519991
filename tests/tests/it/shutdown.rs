//! SIGTERM to the server process under load: the requests in flight are answered, the worker
//! hands back the job it cannot finish, and the process exits within its grace period.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;

use client::types::{self, TaskStatus};
use progenitor_client::ResponseValue;
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, ServerProcess, login_form, run_concurrently, signup_body};

/// A client looping on `/health` from its own keep-alive connection until told to stop: what
/// it saw before the signal, and after.
struct Load {
    stop: Arc<AtomicBool>,
    signalled: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failed_before_signal: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(server: &ServerProcess, clients: usize) -> Self {
        let load = Self {
            stop: Arc::default(),
            signalled: Arc::default(),
            answered: Arc::default(),
            failed_before_signal: Arc::default(),
            tasks: Vec::new(),
        };
        let tasks = (0..clients)
            .map(|_| {
                let url = server.url("/api/v1/health");
                let (stop, signalled) = (load.stop.clone(), load.signalled.clone());
                let (answered, failed) = (load.answered.clone(), load.failed_before_signal.clone());
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        // Read before sending: a failure counts against the server only if
                        // the signal had not been sent when the request started.
                        let before_signal = !signalled.load(Ordering::SeqCst);
                        match http.get(&url).send().await {
                            Ok(response) if response.status() == StatusCode::OK => {
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            _ if before_signal => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                            // After the signal the listener is closed: refusals are expected.
                            _ => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                })
            })
            .collect();
        Self { tasks, ..load }
    }

    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        (
            self.answered.load(Ordering::Relaxed),
            self.failed_before_signal.load(Ordering::Relaxed),
        )
    }
}

#[tokio::test]
async fn sigterm_answers_every_request_in_flight_then_exits() {
    // One hashing slot: twenty logins queue up behind it, in flight for a while.
    let mut server = ServerProcess::start(&[
        ("PASSWORD_HASH_CONCURRENCY", "1"),
        ("PASSWORD_HASH_MAX_WAIT_MS", "60000"),
        // Every login counts as an attempt until it succeeds: let hundreds run at once.
        ("LOGIN_FAILURES_PER_USERNAME", "10000"),
        ("LOGIN_FAILURES_PER_IP", "10000"),
        ("SHUTDOWN_GRACE_SECONDS", "30"),
    ])
    .await;
    let load = Load::start(&server, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logins = queued_logins(&server, 20).await;
    // Requests the load generator starts from now on may meet a closed connection; those it
    // started before have a moment to finish first (a health check takes a few milliseconds).
    load.signalled.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let signalled_at = Instant::now();
    server.signal("-TERM");

    // Statuses only: the answers carry tokens, which must not reach the test log.
    let logins: Vec<_> = logins.await.unwrap().iter().map(login_outcome).collect();
    assert!(
        logins.iter().all(|outcome| outcome == "200"),
        "requests in flight were cut: {logins:?}"
    );

    let status = server.exited_within(Duration::from_secs(30)).await;
    assert!(
        status.is_some_and(|status| status.success()),
        "the process did not exit cleanly: {status:?}\n{}",
        server.log()
    );
    let (answered, failed) = load.finish().await;
    assert!(answered > 0, "the load generator was never answered");
    assert_eq!(failed, 0, "requests failed before the signal");
    // Once the listener is closed, nothing new is accepted.
    assert!(reqwest::get(server.url("/api/v1/health")).await.is_err());
    let log = server.log();
    assert!(log.contains("all connections drained"), "{log}");
    assert!(signalled_at.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn past_its_grace_period_the_process_exits_and_the_running_job_is_handed_back() {
    // A job that would run for a minute, and requests that would take far longer than the
    // one second of grace.
    let mut server = ServerProcess::start(&[
        ("SAMPLE_TASK_DELAY_MS", "60000"),
        ("QUEUE_POLL_INTERVAL_MS", "20"),
        ("WORKER_SHUTDOWN_GRACE_SECONDS", "1"),
        ("SHUTDOWN_GRACE_SECONDS", "1"),
        ("PASSWORD_HASH_CONCURRENCY", "1"),
        ("PASSWORD_HASH_MAX_WAIT_MS", "60000"),
        // Every login counts as an attempt until it succeeds: let hundreds run at once.
        ("LOGIN_FAILURES_PER_USERNAME", "10000"),
        ("LOGIN_FAILURES_PER_IP", "10000"),
    ])
    .await;
    let task = server
        .api
        .create_task()
        .message("long")
        .send()
        .await
        .unwrap();
    let task_id = task.into_inner().id;
    let mut running = false;
    for _ in 0..250 {
        let info = server
            .api
            .read_task()
            .task_id(&task_id)
            .send()
            .await
            .unwrap();
        if info.into_inner().status == TaskStatus::InProgress {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(running, "the job never started");
    let logins = queued_logins(&server, 400).await;

    server.signal("-TERM");
    let signalled_at = Instant::now();
    let status = server.exited_within(Duration::from_secs(15)).await;
    let waited = signalled_at.elapsed();
    assert!(status.is_some(), "the process outlived its grace period");
    // The grace periods (one second each, running side by side), and the exit itself.
    assert!(waited < Duration::from_secs(8), "exited after {waited:?}");
    let log = server.log();
    assert!(log.contains("job handed back at shutdown"), "{log}");
    assert!(
        log.contains("still open after the shutdown grace period"),
        "{log}"
    );
    let logins = logins.await.unwrap();
    assert!(
        logins.iter().any(|login| login.is_err()),
        "the logins all finished within the grace"
    );
}

/// Signs a user up, then starts `count` logins at once and gives them the moment they need to
/// reach the server (and queue up behind the hashing slots): their outcomes, when awaited.
async fn queued_logins(server: &ServerProcess, count: usize) -> JoinHandle<Vec<LoginResult>> {
    server
        .api
        .create_user()
        .body(signup_body("alice"))
        .send()
        .await
        .expect("signed up");
    let api = server.api.clone();
    let logins = tokio::spawn(run_concurrently((0..count).map(move |_| {
        let api = api.clone();
        async move { api.login().body(login_form("alice", PASSWORD)).send().await }
    })));
    tokio::time::sleep(Duration::from_millis(200)).await;
    logins
}

type LoginResult = Result<ResponseValue<types::Token>, progenitor_client::Error<types::ErrorBody>>;

/// A login's status, or the kind of transport error that ended it.
fn login_outcome(login: &LoginResult) -> String {
    match login {
        Ok(response) => response.status().as_u16().to_string(),
        Err(progenitor_client::Error::ErrorResponse(response)) => {
            response.status().as_u16().to_string()
        }
        Err(err) => format!(
            "transport error: {}",
            err.status().map_or("none".into(), |s| s.to_string())
        ),
    }
}
