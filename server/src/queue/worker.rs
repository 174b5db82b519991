//! The worker: claims due jobs, runs their functions with bounded concurrency, renews their
//! leases while they run, retries failures with backoff, and on shutdown stops claiming, lets
//! running jobs finish within a grace period and hands the rest back.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    sync::{Semaphore, watch},
    task::JoinSet,
};
use tracing::Instrument;

use super::{Claim, Outcome, QueueBackend, Registry};
use crate::telemetry::metrics::{JobOutcome, Metrics};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs running at once.
    pub concurrency: usize,
    /// How long a claim lasts unless renewed (renewed every third of it).
    pub lease: Duration,
    pub poll_interval: Duration,
    pub job_timeout: Duration,
    /// The wait before the second try; doubled for each further one.
    pub retry_backoff: Duration,
    pub keep_result: Duration,
    /// How long running jobs may take to finish once shutdown begins.
    pub shutdown_grace: Duration,
    /// Where job outcomes are counted.
    pub metrics: Metrics,
}

type Running = Arc<Mutex<HashMap<String, Claim>>>;

/// How often the worker logs the queue's depth (jobs waiting or running).
const DEPTH_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Runs until `shutdown` turns true.
pub async fn run(
    backend: Arc<dyn QueueBackend>,
    registry: Registry,
    config: WorkerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let running: Running = Arc::default();
    let mut tasks = JoinSet::new();
    let mut failing = false;
    let mut depth_logged_at: Option<tokio::time::Instant> = None;
    tracing::info!(
        backend = backend.kind(),
        concurrency = config.concurrency,
        "worker started"
    );
    while !*shutdown.borrow() {
        while tasks.try_join_next().is_some() {}
        if depth_logged_at.is_none_or(|at| at.elapsed() >= DEPTH_LOG_INTERVAL) {
            depth_logged_at = Some(tokio::time::Instant::now());
            if let Ok(depth) = backend.depth().await {
                let running = config.concurrency.max(1) - slots.available_permits();
                tracing::info!(depth, running, "queue depth");
            }
        }
        let free = slots.available_permits();
        if free > 0 {
            match backend.claim(free, config.lease, config.keep_result).await {
                Ok(claims) => {
                    if failing {
                        failing = false;
                        tracing::info!("worker: queue backend available again");
                    }
                    for claim in claims {
                        let Ok(permit) = slots.clone().try_acquire_owned() else {
                            // Cannot happen: at most `free` claims. Hand it back rather than overrun.
                            let _ = backend.release(&claim).await;
                            continue;
                        };
                        running
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(claim.id.clone(), claim.clone());
                        let job = run_job(
                            backend.clone(),
                            registry.clone(),
                            config.clone(),
                            claim,
                            running.clone(),
                        );
                        tasks.spawn(async move {
                            job.await;
                            drop(permit);
                        });
                    }
                }
                Err(err) => {
                    if !failing {
                        failing = true;
                        tracing::error!(error = %err, "worker: cannot claim jobs; retrying");
                    }
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(config.poll_interval) => {}
        }
    }
    // Shutdown: no more claims; give running jobs their grace, then hand the rest back.
    let _ = tokio::time::timeout(config.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let unfinished: Vec<Claim> = running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, c)| c)
        .collect();
    for claim in unfinished {
        match backend.release(&claim).await {
            Ok(_) => {
                config.metrics.job_finished(JobOutcome::HandedBack);
                tracing::info!(job_id = %claim.id, "worker: job handed back at shutdown");
            }
            Err(err) => {
                tracing::warn!(job_id = %claim.id, error = %err, "worker: job not handed back; it runs again when its lease ends")
            }
        }
    }
    tracing::info!("worker stopped");
}

/// Runs one claimed job to its outcome.
async fn run_job(
    backend: Arc<dyn QueueBackend>,
    registry: Registry,
    config: WorkerConfig,
    claim: Claim,
    running: Running,
) {
    let span = tracing::info_span!("job", job_id = %claim.id, function = %claim.function, job_try = claim.job_try);
    async move {
        let outcome = match registry.get(&claim.function) {
            None => Err(format!("unknown function {:?}", claim.function)),
            Some(function) => {
                // Its own task, so that a panic is caught and a timeout can abort it.
                let mut job = tokio::spawn(function(claim.args.clone()));
                let mut renewals = tokio::time::interval(config.lease / 3);
                renewals.tick().await;
                let deadline = tokio::time::sleep(config.job_timeout);
                tokio::pin!(deadline);
                let result = loop {
                    tokio::select! {
                        result = &mut job => break result,
                        _ = renewals.tick() => {
                            if !matches!(backend.renew(&claim, config.lease).await, Ok(true)) {
                                // The claim is gone (another worker has the job): stop running it.
                                job.abort();
                                tracing::warn!("job lost its claim; abandoned");
                                config.metrics.job_finished(JobOutcome::Abandoned);
                                running.lock().unwrap_or_else(|e| e.into_inner()).remove(&claim.id);
                                return;
                            }
                        }
                        _ = &mut deadline => {
                            job.abort();
                            break Ok(Err(format!("timed out after {} s", config.job_timeout.as_secs())));
                        }
                    }
                };
                match result {
                    Ok(outcome) => outcome,
                    Err(err) if err.is_panic() => Err("the job panicked".to_string()),
                    Err(err) => Err(format!("the job was cancelled: {err}")),
                }
            }
        };
        let done = match outcome {
            Ok(value) => {
                tracing::info!("job complete");
                config.metrics.job_finished(JobOutcome::Complete);
                backend.finish(&claim, &Outcome::Complete(value), config.keep_result).await
            }
            Err(error) if claim.job_try < claim.max_tries => {
                let delay = config.retry_backoff * 2u32.saturating_pow(claim.job_try.saturating_sub(1));
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "job failed; retrying");
                config.metrics.job_finished(JobOutcome::Retried);
                backend.retry(&claim, delay).await
            }
            Err(error) => {
                tracing::error!(%error, "job failed; no tries left");
                config.metrics.job_finished(JobOutcome::Failed);
                backend.finish(&claim, &Outcome::Failed(error), config.keep_result).await
            }
        };
        if let Err(err) = done {
            tracing::error!(error = %err, "job outcome not recorded; it runs again when its lease ends");
        }
        running.lock().unwrap_or_else(|e| e.into_inner()).remove(&claim.id);
    }
    .instrument(span)
    .await
}
