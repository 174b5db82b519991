//! The job functions workers can run. Registering one is one line in [`registry`]: a name and
//! an async function from JSON arguments to a JSON result (or an error message).

use std::time::Duration;

use serde_json::Value;

use crate::{config::Settings, queue::Registry};

pub const SAMPLE_TASK: &str = "sample_background_task";

pub fn registry(settings: &Settings) -> Registry {
    let delay = settings.sample_task_delay;
    Registry::default().register(SAMPLE_TASK, move |args| sample_background_task(args, delay))
}

/// The original's sample: waits, then reports the message.
async fn sample_background_task(args: Value, delay: Duration) -> Result<Value, String> {
    let message = args
        .get(0)
        .and_then(Value::as_str)
        .ok_or("expected one string argument")?
        .to_string();
    tokio::time::sleep(delay).await;
    Ok(Value::String(format!("Task {message} is complete!")))
}
