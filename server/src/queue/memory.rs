//! The in-process backend (no Redis configured): the same records and state machine as the
//! Redis one, under one lock. Jobs do not survive a restart.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use serde_json::Value;

use super::{Claim, JobInfo, JobStatus, Outcome, QueueBackend, QueueError, millis, new_id};

struct Job {
    function: String,
    args: Value,
    enqueue_time: i64,
    job_try: u32,
    max_tries: u32,
    start_time: Option<i64>,
    token: Option<String>,
    /// Not visible before (epoch ms): due time, or lease end while running.
    due: i64,
}

struct Finished {
    info: JobInfo,
    expires: i64,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, Job>,
    results: HashMap<String, Finished>,
}

pub struct MemoryQueue {
    state: Mutex<State>,
    /// Jobs waiting or running, at most; and as many results kept, at most.
    capacity: usize,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(millis(duration)).unwrap_or(i64::MAX)
}

impl MemoryQueue {
    pub fn new(capacity: u64) -> Self {
        Self {
            state: Mutex::default(),
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX).max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// The job, if `claim` still holds it.
    fn claimed(&mut self, claim: &Claim) -> Option<&mut Job> {
        self.jobs
            .get_mut(&claim.id)
            .filter(|job| job.token.as_deref() == Some(claim.token.as_str()))
    }

    fn finish(&mut self, id: &str, outcome: &Outcome, keep: Duration, now: i64, capacity: usize) {
        let Some(job) = self.jobs.remove(id) else {
            return;
        };
        let (success, result) = match outcome {
            Outcome::Complete(value) => (true, value.clone()),
            Outcome::Failed(error) => (false, Value::String(error.clone())),
        };
        let info = JobInfo {
            id: id.to_string(),
            function: job.function,
            args: job.args,
            status: if success {
                JobStatus::Complete
            } else {
                JobStatus::Failed
            },
            enqueue_time: job.enqueue_time,
            start_time: job.start_time,
            finish_time: Some(now),
            success: Some(success),
            result: Some(result),
            job_try: job.job_try,
        };
        self.make_room_for_a_result(now, capacity);
        self.results.insert(
            id.to_string(),
            Finished {
                info,
                expires: now + ms(keep),
            },
        );
    }
}

impl State {
    /// Results are kept for their keep time, but never more than `capacity` of them: past
    /// that, the one closest to expiring goes first.
    fn make_room_for_a_result(&mut self, now: i64, capacity: usize) {
        if self.results.len() < capacity {
            return;
        }
        self.results.retain(|_, finished| finished.expires > now);
        if self.results.len() >= capacity
            && let Some(oldest) = self
                .results
                .iter()
                .min_by_key(|(_, finished)| finished.expires)
                .map(|(id, _)| id.clone())
        {
            self.results.remove(&oldest);
        }
    }
}

#[async_trait]
impl QueueBackend for MemoryQueue {
    async fn enqueue(
        &self,
        function: &str,
        args: Value,
        max_tries: u32,
    ) -> Result<String, QueueError> {
        let id = new_id();
        let now = now_ms();
        let job = Job {
            function: function.to_string(),
            args,
            enqueue_time: now,
            job_try: 0,
            max_tries,
            start_time: None,
            token: None,
            due: now,
        };
        let mut state = self.lock();
        if state.jobs.len() >= self.capacity {
            return Err(QueueError::Full(state.jobs.len() as u64));
        }
        state.jobs.insert(id.clone(), job);
        Ok(id)
    }

    async fn claim(
        &self,
        max: usize,
        lease: Duration,
        keep: Duration,
    ) -> Result<Vec<Claim>, QueueError> {
        let now = now_ms();
        let mut state = self.lock();
        state.results.retain(|_, finished| finished.expires > now);
        let mut due: Vec<(i64, String)> = state
            .jobs
            .iter()
            .filter(|(_, job)| job.due <= now)
            .map(|(id, job)| (job.due, id.clone()))
            .collect();
        due.sort();
        let mut claims = Vec::new();
        for (_, id) in due {
            if claims.len() >= max {
                break;
            }
            let Some(job) = state.jobs.get_mut(&id) else {
                continue;
            };
            job.job_try += 1;
            if job.job_try > job.max_tries {
                let error = format!("max {} tries exceeded", job.max_tries);
                job.job_try -= 1;
                state.finish(&id, &Outcome::Failed(error), keep, now, self.capacity);
                continue;
            }
            let token = new_id();
            job.token = Some(token.clone());
            job.start_time = Some(now);
            job.due = now + ms(lease);
            claims.push(Claim {
                id,
                function: job.function.clone(),
                args: job.args.clone(),
                job_try: job.job_try,
                max_tries: job.max_tries,
                token,
            });
        }
        Ok(claims)
    }

    async fn renew(&self, claim: &Claim, lease: Duration) -> Result<bool, QueueError> {
        let mut state = self.lock();
        Ok(state
            .claimed(claim)
            .map(|job| job.due = now_ms() + ms(lease))
            .is_some())
    }

    async fn finish(
        &self,
        claim: &Claim,
        outcome: &Outcome,
        keep: Duration,
    ) -> Result<bool, QueueError> {
        let mut state = self.lock();
        if state.claimed(claim).is_none() {
            return Ok(false);
        }
        state.finish(&claim.id, outcome, keep, now_ms(), self.capacity);
        Ok(true)
    }

    async fn retry(&self, claim: &Claim, delay: Duration) -> Result<bool, QueueError> {
        let mut state = self.lock();
        Ok(state
            .claimed(claim)
            .map(|job| {
                job.token = None;
                job.due = now_ms() + ms(delay);
            })
            .is_some())
    }

    async fn release(&self, claim: &Claim) -> Result<bool, QueueError> {
        let mut state = self.lock();
        Ok(state
            .claimed(claim)
            .map(|job| {
                job.token = None;
                job.job_try = job.job_try.saturating_sub(1);
                job.due = now_ms();
            })
            .is_some())
    }

    async fn info(&self, id: &str) -> Result<Option<JobInfo>, QueueError> {
        let now = now_ms();
        let state = self.lock();
        if let Some(finished) = state.results.get(id).filter(|f| f.expires > now) {
            return Ok(Some(finished.info.clone()));
        }
        Ok(state.jobs.get(id).map(|job| JobInfo {
            id: id.to_string(),
            function: job.function.clone(),
            args: job.args.clone(),
            status: if job.token.is_some() && job.due > now {
                JobStatus::InProgress
            } else {
                JobStatus::Queued
            },
            enqueue_time: job.enqueue_time,
            start_time: job.start_time,
            finish_time: None,
            success: None,
            result: None,
            job_try: job.job_try,
        }))
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        Ok(self.lock().jobs.len() as u64)
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
