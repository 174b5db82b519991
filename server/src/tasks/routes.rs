//! `POST /tasks/task` (rate limited) and `GET /tasks/task/{task_id}`.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::Example,
};
use serde_json::{Value, json};

use crate::{
    api::{ApiTags, OperationLink},
    error::{AppError, ErrorExamples, Errors},
    http::responses::{Created, example_timestamp},
    queue::{JobInfo, JobStatus, QueueError},
    rate_limit::rate_limited,
    state::AppState,
    tasks::jobs::SAMPLE_TASK,
};

const EXAMPLE_JOB_ID: &str = "8f14e45fceea167a5a36dedd4bea2543";

/// The enqueued job.
#[derive(Debug, Object)]
#[oai(example)]
pub struct TaskCreated {
    /// The job id, for `GET /tasks/task/{task_id}`.
    pub id: String,
}

impl Example for TaskCreated {
    fn example() -> Self {
        Self {
            id: EXAMPLE_JOB_ID.into(),
        }
    }
}

/// Where a job is: waiting, running, or ended (with success or not).
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    InProgress,
    Complete,
    Failed,
}

/// A job and, once it ended, its outcome.
#[derive(Debug, Object)]
#[oai(example)]
pub struct TaskInfo {
    /// The job id.
    pub id: String,
    /// The job function's name.
    pub function: String,
    /// Its arguments, as a JSON array.
    pub args: Value,
    // Described by its schema (see `ErrorBody::detail`).
    pub status: TaskStatus,
    /// When the job was enqueued (UTC).
    pub enqueue_time: DateTime<Utc>,
    /// When the latest try started; `null` while queued.
    #[oai(nullable)]
    pub start_time: Option<DateTime<Utc>>,
    /// When the job ended; `null` until then.
    #[oai(nullable)]
    pub finish_time: Option<DateTime<Utc>>,
    /// Whether the job succeeded; `null` until it ends.
    #[oai(nullable)]
    pub success: Option<bool>,
    /// The function's result, or the error of a failed job; `null` until the job ends. Any JSON
    /// value, so the schema has no type.
    pub result: Value,
    /// Tries so far, this one included.
    pub job_try: i32,
}

impl Example for TaskInfo {
    fn example() -> Self {
        let enqueued = example_timestamp();
        Self {
            id: EXAMPLE_JOB_ID.into(),
            function: SAMPLE_TASK.into(),
            args: json!(["hello"]),
            status: TaskStatus::Complete,
            enqueue_time: enqueued,
            start_time: Some(enqueued + chrono::Duration::milliseconds(12)),
            finish_time: Some(enqueued + chrono::Duration::milliseconds(5020)),
            success: Some(true),
            result: json!("Task hello is complete!"),
            job_try: 1,
        }
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl From<JobInfo> for TaskInfo {
    fn from(job: JobInfo) -> Self {
        Self {
            id: job.id,
            function: job.function,
            args: job.args,
            status: match job.status {
                JobStatus::Queued => TaskStatus::Queued,
                JobStatus::InProgress => TaskStatus::InProgress,
                JobStatus::Complete => TaskStatus::Complete,
                JobStatus::Failed => TaskStatus::Failed,
            },
            enqueue_time: time(job.enqueue_time),
            start_time: job.start_time.map(time),
            finish_time: job.finish_time.map(time),
            success: job.success,
            result: job.result.unwrap_or(Value::Null),
            job_try: i32::try_from(job.job_try).unwrap_or(i32::MAX),
        }
    }
}

const QUEUE_UNAVAILABLE: &str = "Task queue unavailable, try again later";
const QUEUE_FULL: &str = "Task queue is full, try again later";
const TASK_NOT_FOUND: &str = "Task not found";

pub struct TaskApi;

#[OpenApi(tag = "ApiTags::Tasks")]
impl TaskApi {
    /// Enqueue the sample background task (rate limited)
    ///
    /// Returns the job id at once; the job runs on a worker and returns `Task <message> is
    /// complete!`. Rate limited per user (by their tier's rule for this path) or per client
    /// address; 503 while the queue is unavailable, or full (`QUEUE_MAX_JOBS` jobs waiting or
    /// running).
    #[oai(
        path = "/tasks/task",
        method = "post",
        operation_id = "create_task",
        transform = "rate_limited"
    )]
    async fn create_task(
        &self,
        state: Data<&AppState>,
        /// Echoed in the task's result; 1 to 1000 characters.
        #[oai(validator(min_length = 1, max_length = 1000))]
        message: Query<String>,
    ) -> Result<Created<TaskCreated>, Errors<422, 429, 503>> {
        let args = Value::Array(vec![Value::String(message.0)]);
        let id = state
            .queue
            .enqueue(SAMPLE_TASK, args, state.settings.queue.max_tries)
            .await
            .map_err(|err| match err {
                QueueError::Full(depth) => {
                    tracing::warn!(depth, "enqueue refused: the queue is full");
                    AppError::Unavailable(QUEUE_FULL.into())
                }
                QueueError::Backend(_) => {
                    tracing::error!(error = %err, "enqueue failed");
                    AppError::Unavailable(QUEUE_UNAVAILABLE.into())
                }
            })?;
        Ok(Created(TaskCreated { id }))
    }

    /// A task's status, and its result once it ended
    ///
    /// `queued`, `in_progress`, `complete` or `failed`. Results are kept for an hour by default,
    /// then the id answers 404 like an unknown one.
    #[oai(
        path = "/tasks/task/:task_id",
        method = "get",
        operation_id = "read_task"
    )]
    async fn read_task(
        &self,
        state: Data<&AppState>,
        task_id: Path<String>,
    ) -> Result<Json<TaskInfo>, Errors<404, 503>> {
        // Ids are 32 hex characters: anything else is not looked up.
        if task_id.len() != 32 || !task_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AppError::not_found(TASK_NOT_FOUND).into());
        }
        let info = state.queue.info(&task_id).await.map_err(|err| {
            tracing::error!(error = %err, "task lookup failed");
            AppError::Unavailable(QUEUE_UNAVAILABLE.into())
        })?;
        let info = info.ok_or(AppError::not_found(TASK_NOT_FOUND))?;
        Ok(Json(info.into()))
    }
}

/// The messages of this domain's errors, for the spec.
/// A created task leads to its state.
pub(crate) const LINKS: &[OperationLink] = &[OperationLink {
    from: "create_task",
    status: "201",
    to: "read_task",
    parameters: &[("task_id", "$response.body#/id")],
}];

pub(crate) fn error_examples() -> Vec<ErrorExamples> {
    vec![
        ErrorExamples::new("create_task", 503, [QUEUE_UNAVAILABLE, QUEUE_FULL]),
        ErrorExamples::new("read_task", 404, [TASK_NOT_FOUND]),
        ErrorExamples::new("read_task", 503, [QUEUE_UNAVAILABLE]),
    ]
}
