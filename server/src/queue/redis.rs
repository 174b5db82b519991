//! The Redis backend. Every key of the queue shares one hash tag (`{arq:queue}`), and every
//! script declares the keys it touches, so the queue works on Redis Cluster. Time comes from
//! Redis (`TIME`), so instances need no clock agreement.
//!
//! Keys: `{arq:queue}:queue` (sorted set: job id → not visible before, in ms),
//! `{arq:queue}:job:<id>` (hash: function, args, enqueue_time, job_try, max_tries, state,
//! start_time, token), `{arq:queue}:result:<id>` (hash, expiring after the keep time).

use std::{collections::HashMap, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use redis::Script;
use serde_json::Value;

use super::{Claim, JobInfo, JobStatus, Outcome, QueueBackend, QueueError, millis, new_id};
use crate::redis_store::RedisStore;

/// The Lua prelude every script starts with: the time in ms, from Redis.
macro_rules! script {
    ($body:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                "local t = redis.call('TIME')\n",
                "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n",
                $body
            ))
        })
    };
}

/// KEYS: queue, job. ARGV: id, function, args, max_tries, capacity.
/// Returns the enqueue time, or -1 - the depth when the queue is full.
static ENQUEUE: LazyLock<Script> = script!(
    r"
local depth = redis.call('ZCARD', KEYS[1])
if depth >= tonumber(ARGV[5]) then return -1 - depth end
redis.call('HSET', KEYS[2], 'function', ARGV[2], 'args', ARGV[3], 'enqueue_time', now,
  'job_try', 0, 'max_tries', ARGV[4], 'state', 'queued')
redis.call('ZADD', KEYS[1], now, ARGV[1])
return now
"
);

/// KEYS: queue. ARGV: how many. The ids that are due.
static DUE: LazyLock<Script> = script!(
    r"
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])
"
);

/// KEYS: queue, job, result. ARGV: id, lease ms, token, keep ms.
/// Claims the job if it is still due; fails it instead when it is out of tries.
static ACQUIRE: LazyLock<Script> = script!(
    r"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > now then return false end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
local try = redis.call('HINCRBY', KEYS[2], 'job_try', 1)
local max = tonumber(redis.call('HGET', KEYS[2], 'max_tries'))
if try > max then
  local job = redis.call('HMGET', KEYS[2], 'function', 'args', 'enqueue_time', 'start_time')
  redis.call('HSET', KEYS[3], 'function', job[1], 'args', job[2], 'enqueue_time', job[3],
    'start_time', job[4] or '', 'finish_time', now, 'success', '0',
    'result', cjson.encode('max ' .. max .. ' tries exceeded'), 'job_try', try - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'in_progress', 'start_time', now, 'token', ARGV[3])
local job = redis.call('HMGET', KEYS[2], 'function', 'args')
return {job[1], job[2], tostring(try), tostring(max)}
"
);

/// KEYS: queue, job. ARGV: id, token, lease ms.
static RENEW: LazyLock<Script> = script!(
    r"
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
"
);

/// KEYS: queue, job, result. ARGV: id, token, success (1/0), result JSON, keep ms.
static FINISH: LazyLock<Script> = script!(
    r"
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then return 0 end
local job = redis.call('HMGET', KEYS[2], 'function', 'args', 'enqueue_time', 'start_time', 'job_try')
redis.call('HSET', KEYS[3], 'function', job[1], 'args', job[2], 'enqueue_time', job[3],
  'start_time', job[4], 'finish_time', now, 'success', ARGV[3], 'result', ARGV[4], 'job_try', job[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"
);

/// KEYS: queue, job. ARGV: id, token, delay ms, tries to give back (0 or 1).
static REQUEUE: LazyLock<Script> = script!(
    r"
if redis.call('HGET', KEYS[2], 'token') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], 'state', 'queued')
redis.call('HDEL', KEYS[2], 'token')
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[2], 'job_try', -1) end
return 1
"
);

/// KEYS: queue, job, result. ARGV: id. Flat replies: `result` then its fields, or `job`, its
/// score, the time, then its fields; or nothing.
static INFO: LazyLock<Script> = script!(
    r"
local result = redis.call('HGETALL', KEYS[3])
if #result > 0 then
  table.insert(result, 1, 'result')
  return result
end
local job = redis.call('HGETALL', KEYS[2])
if #job > 0 then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0'
  table.insert(job, 1, tostring(now))
  table.insert(job, 1, score)
  table.insert(job, 1, 'job')
  return job
end
return {}
"
);

pub struct RedisQueue {
    redis: RedisStore,
    /// Jobs waiting or running, at most (results expire on their own).
    capacity: u64,
}

impl RedisQueue {
    pub fn new(redis: RedisStore, capacity: u64) -> Self {
        Self { redis, capacity }
    }

    fn queue_key(&self) -> String {
        self.redis.key("{arq:queue}:queue")
    }

    fn job_key(&self, id: &str) -> String {
        self.redis.key(&format!("{{arq:queue}}:job:{id}"))
    }

    fn result_key(&self, id: &str) -> String {
        self.redis.key(&format!("{{arq:queue}}:result:{id}"))
    }

    async fn requeue(
        &self,
        claim: &Claim,
        delay: Duration,
        give_back_try: bool,
    ) -> Result<bool, QueueError> {
        let mut conn = self.redis.connection();
        let done: i64 = REQUEUE
            .key(self.queue_key())
            .key(self.job_key(&claim.id))
            .arg(&claim.id)
            .arg(&claim.token)
            .arg(if delay.is_zero() { 0 } else { millis(delay) })
            .arg(if give_back_try { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }
}

fn number(fields: &HashMap<String, String>, name: &str) -> Option<i64> {
    fields.get(name).and_then(|v| v.parse().ok())
}

fn json(fields: &HashMap<String, String>, name: &str) -> Value {
    fields
        .get(name)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or(Value::Null)
}

fn pairs(flat: &[String]) -> HashMap<String, String> {
    flat.chunks_exact(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

#[async_trait]
impl QueueBackend for RedisQueue {
    async fn enqueue(
        &self,
        function: &str,
        args: Value,
        max_tries: u32,
    ) -> Result<String, QueueError> {
        let id = new_id();
        let mut conn = self.redis.connection();
        let enqueued: i64 = ENQUEUE
            .key(self.queue_key())
            .key(self.job_key(&id))
            .arg(&id)
            .arg(function)
            .arg(serde_json::to_string(&args)?)
            .arg(max_tries)
            .arg(self.capacity)
            .invoke_async(&mut conn)
            .await?;
        if enqueued < 0 {
            return Err(QueueError::Full(enqueued.unsigned_abs() - 1));
        }
        Ok(id)
    }

    async fn claim(
        &self,
        max: usize,
        lease: Duration,
        keep: Duration,
    ) -> Result<Vec<Claim>, QueueError> {
        let mut conn = self.redis.connection();
        let due: Vec<String> = DUE
            .key(self.queue_key())
            .arg(max)
            .invoke_async(&mut conn)
            .await?;
        let mut claims = Vec::new();
        for id in due {
            let token = new_id();
            let claimed: Option<(String, String, String, String)> = ACQUIRE
                .key(self.queue_key())
                .key(self.job_key(&id))
                .key(self.result_key(&id))
                .arg(&id)
                .arg(millis(lease))
                .arg(&token)
                .arg(millis(keep))
                .invoke_async(&mut conn)
                .await?;
            if let Some((function, args, job_try, max_tries)) = claimed {
                claims.push(Claim {
                    id,
                    function,
                    args: serde_json::from_str(&args).unwrap_or(Value::Null),
                    job_try: job_try.parse().unwrap_or(1),
                    max_tries: max_tries.parse().unwrap_or(1),
                    token,
                });
            }
        }
        Ok(claims)
    }

    async fn renew(&self, claim: &Claim, lease: Duration) -> Result<bool, QueueError> {
        let mut conn = self.redis.connection();
        let renewed: i64 = RENEW
            .key(self.queue_key())
            .key(self.job_key(&claim.id))
            .arg(&claim.id)
            .arg(&claim.token)
            .arg(millis(lease))
            .invoke_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    async fn finish(
        &self,
        claim: &Claim,
        outcome: &Outcome,
        keep: Duration,
    ) -> Result<bool, QueueError> {
        let (success, result) = match outcome {
            Outcome::Complete(value) => ("1", serde_json::to_string(value)?),
            Outcome::Failed(error) => ("0", serde_json::to_string(error)?),
        };
        let mut conn = self.redis.connection();
        let finished: i64 = FINISH
            .key(self.queue_key())
            .key(self.job_key(&claim.id))
            .key(self.result_key(&claim.id))
            .arg(&claim.id)
            .arg(&claim.token)
            .arg(success)
            .arg(result)
            .arg(millis(keep))
            .invoke_async(&mut conn)
            .await?;
        Ok(finished == 1)
    }

    async fn retry(&self, claim: &Claim, delay: Duration) -> Result<bool, QueueError> {
        self.requeue(claim, delay, false).await
    }

    async fn release(&self, claim: &Claim) -> Result<bool, QueueError> {
        self.requeue(claim, Duration::ZERO, true).await
    }

    async fn info(&self, id: &str) -> Result<Option<JobInfo>, QueueError> {
        let mut conn = self.redis.connection();
        let reply: Vec<String> = INFO
            .key(self.queue_key())
            .key(self.job_key(id))
            .key(self.result_key(id))
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        let Some(kind) = reply.first() else {
            return Ok(None);
        };
        let info = |fields: &HashMap<String, String>, status| JobInfo {
            id: id.to_string(),
            function: fields.get("function").cloned().unwrap_or_default(),
            args: json(fields, "args"),
            status,
            enqueue_time: number(fields, "enqueue_time").unwrap_or(0),
            start_time: number(fields, "start_time"),
            finish_time: number(fields, "finish_time"),
            success: None,
            result: None,
            job_try: number(fields, "job_try").map_or(0, |n| u32::try_from(n).unwrap_or(0)),
        };
        if kind == "result" {
            let fields = pairs(&reply[1..]);
            let success = fields.get("success").is_some_and(|s| s == "1");
            let status = if success {
                JobStatus::Complete
            } else {
                JobStatus::Failed
            };
            return Ok(Some(JobInfo {
                success: Some(success),
                result: Some(json(&fields, "result")),
                ..info(&fields, status)
            }));
        }
        let (score, now) = match (reply.get(1), reply.get(2)) {
            (Some(score), Some(now)) => (
                score.parse::<f64>().unwrap_or(0.0),
                now.parse::<f64>().unwrap_or(0.0),
            ),
            _ => return Ok(None),
        };
        let fields = pairs(reply.get(3..).unwrap_or_default());
        let running = fields.get("state").is_some_and(|s| s == "in_progress") && score > now;
        let status = if running {
            JobStatus::InProgress
        } else {
            JobStatus::Queued
        };
        Ok(Some(info(&fields, status)))
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let mut conn = self.redis.connection();
        Ok(redis::cmd("ZCARD")
            .arg(self.queue_key())
            .query_async(&mut conn)
            .await?)
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(self.redis.ping().await?)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
