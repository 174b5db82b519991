//! The queue: the conformance suite of its backends (in process, on a Redis Cluster, and on
//! `TEST_REDIS_URL` when it is set), and the worker over each.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use server::{
    queue::{
        Claim, JobStatus, Outcome, QueueBackend, QueueError, Registry,
        memory::MemoryQueue,
        redis::RedisQueue,
        worker::{self, WorkerConfig},
    },
    telemetry::metrics::Metrics,
};
use tokio::sync::watch;

use crate::helpers::conformance_redis;

const CAPACITY: u64 = 1_000;

fn backends() -> Vec<Arc<dyn QueueBackend>> {
    backends_holding(CAPACITY)
}

fn backends_holding(capacity: u64) -> Vec<Arc<dyn QueueBackend>> {
    let mut backends: Vec<Arc<dyn QueueBackend>> = vec![Arc::new(MemoryQueue::new(capacity))];
    for redis in conformance_redis("queue-conformance") {
        backends.push(Arc::new(RedisQueue::new(redis, capacity)));
    }
    backends
}

const LEASE: Duration = Duration::from_secs(30);
const KEEP: Duration = Duration::from_secs(60);

async fn claim_one_of(queue: &dyn QueueBackend, max: usize) -> Claim {
    let mut claims = queue.claim(max, LEASE, KEEP).await.unwrap();
    assert_eq!(claims.len(), max, "{}", queue.kind());
    claims.remove(0)
}

async fn claim_one(queue: &dyn QueueBackend, lease: Duration) -> Claim {
    let mut claims = queue.claim(10, lease, KEEP).await.unwrap();
    assert_eq!(claims.len(), 1, "{}: one due job", queue.kind());
    claims.remove(0)
}

#[tokio::test]
async fn a_full_queue_refuses_jobs_until_one_finishes() {
    for queue in backends_holding(3) {
        let queue = queue.as_ref();
        for i in 0..3 {
            queue.enqueue("f", json!([i]), 5).await.unwrap();
        }
        for _ in 0..2 {
            let refused = queue.enqueue("f", json!(["over"]), 5).await;
            assert!(
                matches!(refused, Err(QueueError::Full(3))),
                "{}: {refused:?}",
                queue.kind()
            );
        }
        assert_eq!(queue.depth().await.unwrap(), 3, "{}", queue.kind());

        let claim = claim_one_of(queue, 1).await;
        assert!(
            queue.enqueue("f", json!(["x"]), 5).await.is_err(),
            "running jobs count"
        );
        queue
            .finish(&claim, &Outcome::Complete(json!(null)), KEEP)
            .await
            .unwrap();
        queue.enqueue("f", json!(["room again"]), 5).await.unwrap();
        assert_eq!(queue.depth().await.unwrap(), 3, "{}", queue.kind());
    }
}

#[tokio::test]
async fn a_job_goes_from_queued_to_in_progress_to_complete_then_expires() {
    for queue in backends() {
        let queue = queue.as_ref();
        let id = queue.enqueue("f", json!(["hi"]), 5).await.unwrap();
        assert_eq!(id.len(), 32);
        let queued = queue.info(&id).await.unwrap().unwrap();
        assert_eq!(
            (queued.status, queued.job_try, queued.args.clone()),
            (JobStatus::Queued, 0, json!(["hi"]))
        );
        assert_eq!(queue.depth().await.unwrap(), 1);

        let claim = claim_one(queue, LEASE).await;
        assert_eq!(
            (claim.id.as_str(), claim.function.as_str(), claim.job_try),
            (id.as_str(), "f", 1)
        );
        assert!(
            queue.claim(10, LEASE, KEEP).await.unwrap().is_empty(),
            "a claimed job is not due"
        );
        let running = queue.info(&id).await.unwrap().unwrap();
        assert_eq!(running.status, JobStatus::InProgress);

        let keep = Duration::from_millis(400);
        assert!(
            queue
                .finish(&claim, &Outcome::Complete(json!("done")), keep)
                .await
                .unwrap()
        );
        let done = queue.info(&id).await.unwrap().unwrap();
        assert_eq!(
            (done.status, done.success, done.result.clone()),
            (JobStatus::Complete, Some(true), Some(json!("done")))
        );
        let (start, finish) = (done.start_time.unwrap(), done.finish_time.unwrap());
        assert!(done.enqueue_time <= start && start <= finish, "{done:?}");
        assert_eq!(queue.depth().await.unwrap(), 0);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(queue.claim(10, LEASE, KEEP).await.unwrap().is_empty());
        assert_eq!(
            queue.info(&id).await.unwrap(),
            None,
            "{}: results expire",
            queue.kind()
        );
        assert_eq!(
            queue
                .info("0123456789abcdef0123456789abcdef")
                .await
                .unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn an_expired_lease_lets_another_worker_claim_and_fences_the_first() {
    for queue in backends() {
        let queue = queue.as_ref();
        let id = queue.enqueue("f", json!([]), 5).await.unwrap();
        let first = claim_one(queue, Duration::from_millis(200)).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = claim_one(queue, LEASE).await;
        assert_eq!((second.id.as_str(), second.job_try), (id.as_str(), 2));
        assert_ne!(first.token, second.token);
        // The first worker's late moves are refused.
        assert!(!queue.renew(&first, LEASE).await.unwrap());
        assert!(
            !queue
                .finish(&first, &Outcome::Complete(json!(1)), KEEP)
                .await
                .unwrap()
        );
        assert!(!queue.retry(&first, Duration::ZERO).await.unwrap());
        assert!(queue.renew(&second, LEASE).await.unwrap());
        assert!(
            queue
                .finish(&second, &Outcome::Complete(json!(2)), KEEP)
                .await
                .unwrap()
        );
        let done = queue.info(&id).await.unwrap().unwrap();
        assert_eq!(
            (done.result, done.job_try),
            (Some(json!(2)), 2),
            "{}",
            queue.kind()
        );
    }
}

#[tokio::test]
async fn retries_wait_their_delay_releases_give_the_try_back_and_tries_are_capped() {
    for queue in backends() {
        let queue = queue.as_ref();
        let id = queue.enqueue("f", json!([]), 2).await.unwrap();
        let first = claim_one(queue, LEASE).await;
        assert!(
            queue
                .retry(&first, Duration::from_millis(300))
                .await
                .unwrap()
        );
        assert!(
            queue.claim(10, LEASE, KEEP).await.unwrap().is_empty(),
            "not before its delay"
        );
        assert_eq!(
            queue.info(&id).await.unwrap().unwrap().status,
            JobStatus::Queued
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let second = claim_one(queue, LEASE).await;
        assert_eq!(second.job_try, 2);

        assert!(queue.release(&second).await.unwrap());
        let again = claim_one(queue, Duration::from_millis(100)).await;
        assert_eq!(
            again.job_try,
            2,
            "{}: a release spends no try",
            queue.kind()
        );

        // The lease lapses with no tries left: the claim fails the job instead.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(queue.claim(10, LEASE, KEEP).await.unwrap().is_empty());
        let failed = queue.info(&id).await.unwrap().unwrap();
        assert_eq!(failed.status, JobStatus::Failed, "{}", queue.kind());
        assert_eq!(failed.result, Some(json!("max 2 tries exceeded")));
    }
}

fn config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        lease: Duration::from_millis(600),
        poll_interval: Duration::from_millis(10),
        job_timeout: Duration::from_secs(30),
        retry_backoff: Duration::from_millis(10),
        keep_result: KEEP,
        shutdown_grace: Duration::from_secs(5),
        metrics: Metrics::disabled(),
    }
}

fn spawn_worker(
    queue: Arc<dyn QueueBackend>,
    registry: Registry,
    config: WorkerConfig,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(false);
    (
        stop,
        tokio::spawn(worker::run(queue, registry, config, stopped)),
    )
}

async fn until_ended(queue: &dyn QueueBackend, id: &str) -> server::queue::JobInfo {
    for _ in 0..500 {
        let info = queue.info(id).await.unwrap().expect("the job exists");
        if matches!(info.status, JobStatus::Complete | JobStatus::Failed) {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} never ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_and_panicking_jobs_are_retried_then_failed_and_the_worker_lives_on() {
    for queue in backends() {
        let registry = Registry::default()
            .register("fails", |_| async { Err::<Value, _>("boom".to_string()) })
            .register("panics", |_| async { panic!("kaboom") })
            .register("echo", |args| async move { Ok(args) });
        let (stop, worker) = spawn_worker(queue.clone(), registry, config());
        let fails = queue.enqueue("fails", json!([]), 3).await.unwrap();
        let panics = queue.enqueue("panics", json!([]), 3).await.unwrap();
        let unknown = queue.enqueue("nobody", json!([]), 1).await.unwrap();
        let failed = until_ended(queue.as_ref(), &fails).await;
        assert_eq!(
            (failed.status, failed.job_try, failed.result),
            (JobStatus::Failed, 3, Some(json!("boom")))
        );
        let panicked = until_ended(queue.as_ref(), &panics).await;
        assert_eq!((panicked.status, panicked.job_try), (JobStatus::Failed, 3));
        assert_eq!(panicked.result, Some(json!("the job panicked")));
        let unknown = until_ended(queue.as_ref(), &unknown).await;
        assert_eq!(unknown.result, Some(json!("unknown function \"nobody\"")));
        let echo = queue
            .enqueue("echo", json!({"still": "alive"}), 3)
            .await
            .unwrap();
        let echoed = until_ended(queue.as_ref(), &echo).await;
        assert_eq!(
            echoed.result,
            Some(json!({"still": "alive"})),
            "{}",
            queue.kind()
        );
        stop.send(true).unwrap();
        worker.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_run_each_of_200_jobs_exactly_once() {
    for queue in backends() {
        let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let counted = runs.clone();
        let registry = Registry::default().register("count", move |args| {
            let runs = counted.clone();
            async move {
                let key = args.to_string();
                *runs.lock().unwrap().entry(key).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok(Value::Null)
            }
        });
        let workers: Vec<_> = (0..2)
            .map(|_| spawn_worker(queue.clone(), registry.clone(), config()))
            .collect();
        let mut ids = Vec::new();
        for n in 0..200 {
            ids.push(queue.enqueue("count", json!([n]), 3).await.unwrap());
        }
        for id in &ids {
            assert_eq!(
                until_ended(queue.as_ref(), id).await.status,
                JobStatus::Complete
            );
        }
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs.len(), 200);
        assert!(runs.values().all(|n| *n == 1), "{}: {runs:?}", queue.kind());
        for (stop, worker) in workers {
            stop.send(true).unwrap();
            worker.await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_workers_job_runs_again_and_shutdown_hands_a_job_back() {
    for queue in backends() {
        let registry = Registry::default()
            .register("slow", |_| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(Value::Null)
            })
            .register("quick", |_| async { Ok(json!("ran")) });
        let cfg = WorkerConfig {
            lease: Duration::from_millis(300),
            ..config()
        };

        // A worker dies mid-job (its task is dropped, nothing is released)...
        let id = queue.enqueue("quick", json!([]), 3).await.unwrap();
        let dying = Registry::default().register("quick", |_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Value::Null)
        });
        let (_stop, dead) = spawn_worker(queue.clone(), dying, cfg.clone());
        for _ in 0..200 {
            if queue.info(&id).await.unwrap().unwrap().status == JobStatus::InProgress {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        dead.abort();
        let _ = dead.await;
        // ...and, once its lease ends, another worker runs the job again.
        let (stop, worker) = spawn_worker(queue.clone(), registry.clone(), cfg.clone());
        let rerun = until_ended(queue.as_ref(), &id).await;
        assert_eq!(
            (rerun.status, rerun.job_try, rerun.result),
            (JobStatus::Complete, 2, Some(json!("ran")))
        );

        // Graceful shutdown with no grace left hands the running job back, its try unspent.
        let slow = queue.enqueue("slow", json!([]), 3).await.unwrap();
        for _ in 0..200 {
            if queue.info(&slow).await.unwrap().unwrap().status == JobStatus::InProgress {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
        worker.await.unwrap();
        drop(registry);
        let handed_back = queue.info(&slow).await.unwrap().unwrap();
        assert_eq!(
            (handed_back.status, handed_back.job_try),
            (JobStatus::Queued, 0),
            "{}",
            queue.kind()
        );
    }
}
