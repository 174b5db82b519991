//! The background job queue: an ARQ-shaped design (see the README), one backend interface
//! with a Redis and an in-process implementation, and a worker that runs registered functions.
//!
//! A job stays in the queue until it finishes. Its score is "not visible before": a claim
//! pushes it one lease ahead, a running worker renews the lease, and a job whose worker died
//! becomes due again and is claimed with `job_try + 1`. Every change after the claim is fenced
//! by the claim's token, so two workers never both finish one job.

pub mod memory;
pub mod redis;
pub mod worker;

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde_json::Value;

/// A job as the status endpoint shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    pub id: String,
    pub function: String,
    pub args: Value,
    pub status: JobStatus,
    /// Epoch milliseconds.
    pub enqueue_time: i64,
    pub start_time: Option<i64>,
    pub finish_time: Option<i64>,
    pub success: Option<bool>,
    pub result: Option<Value>,
    pub job_try: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    InProgress,
    Complete,
    Failed,
}

/// A claimed job: what the worker runs, and the token that fences its later changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub id: String,
    pub function: String,
    pub args: Value,
    pub job_try: u32,
    /// The job's own cap, set when it was enqueued.
    pub max_tries: u32,
    pub token: String,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Complete(Value),
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// As many jobs as the queue's capacity are waiting or running.
    #[error("the queue is full: {0} jobs are waiting or running")]
    Full(u64),
    #[error("queue backend: {0}")]
    Backend(String),
}

impl From<::redis::RedisError> for QueueError {
    fn from(err: ::redis::RedisError) -> Self {
        Self::Backend(err.to_string())
    }
}

impl From<serde_json::Error> for QueueError {
    fn from(err: serde_json::Error) -> Self {
        Self::Backend(err.to_string())
    }
}

/// The queue's storage. The Redis and in-process implementations pass one conformance suite
/// (`tests/it/queue_store.rs`).
#[async_trait]
pub trait QueueBackend: Send + Sync {
    /// Adds a job, due now; returns its id (a UUID v4, unguessable). Refused with
    /// [`QueueError::Full`] when the queue already holds its capacity of jobs, so that callers
    /// cannot grow it without bound while no worker drains it.
    async fn enqueue(
        &self,
        function: &str,
        args: Value,
        max_tries: u32,
    ) -> Result<String, QueueError>;

    /// Claims up to `max` due jobs, each leased for `lease`. A job past its `max_tries` is
    /// failed here instead (this bounds a job that keeps killing its worker).
    async fn claim(
        &self,
        max: usize,
        lease: Duration,
        keep: Duration,
    ) -> Result<Vec<Claim>, QueueError>;

    /// Extends a claim's lease; `false` when the claim is no longer this worker's.
    async fn renew(&self, claim: &Claim, lease: Duration) -> Result<bool, QueueError>;

    /// Records the outcome, kept for `keep`, and removes the job.
    async fn finish(
        &self,
        claim: &Claim,
        outcome: &Outcome,
        keep: Duration,
    ) -> Result<bool, QueueError>;

    /// Puts the job back, due after `delay`, for another try.
    async fn retry(&self, claim: &Claim, delay: Duration) -> Result<bool, QueueError>;

    /// Puts the job back, due now, without spending a try (a worker shutting down).
    async fn release(&self, claim: &Claim) -> Result<bool, QueueError>;

    async fn info(&self, id: &str) -> Result<Option<JobInfo>, QueueError>;

    /// Jobs waiting or running.
    async fn depth(&self) -> Result<u64, QueueError>;

    async fn ping(&self) -> Result<(), QueueError>;

    fn kind(&self) -> &'static str;
}

/// A job function: JSON arguments in, a JSON result or an error message out.
pub type JobFuture = Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;
pub type JobFn = Arc<dyn Fn(Value) -> JobFuture + Send + Sync>;

/// The functions workers can run, by name.
#[derive(Clone, Default)]
pub struct Registry {
    functions: HashMap<&'static str, JobFn>,
}

impl Registry {
    /// Registers `function` under `name`.
    pub fn register<F, Fut>(mut self, name: &'static str, function: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, String>> + Send + 'static,
    {
        let function = Arc::new(function);
        self.functions.insert(
            name,
            Arc::new(move |args| {
                let function = function.clone();
                Box::pin(async move { function(args).await }) as JobFuture
            }),
        );
        self
    }

    pub fn get(&self, name: &str) -> Option<JobFn> {
        self.functions.get(name).cloned()
    }
}

/// Milliseconds of a duration, at least one.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
