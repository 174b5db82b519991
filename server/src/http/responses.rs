//! Response shapes shared across domains.

use chrono::{DateTime, Utc};
use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{
    ApiResponse, Object,
    payload::Json,
    registry::{MetaResponses, Registry},
    types::{Example, ParseFromJSON, ToJSON},
};

/// `{"message": "..."}`: the answer of updates and deletes.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct Message {
    /// What was done, in words.
    pub message: String,
}

impl Example for Message {
    fn example() -> Self {
        Self {
            message: "Post updated".into(),
        }
    }
}

/// The one moment every example in the spec shows, so examples agree with each other.
pub fn example_timestamp() -> DateTime<Utc> {
    DateTime::from_timestamp(1_796_117_400, 0).unwrap_or_default()
}

impl Message {
    pub fn json(message: impl Into<String>) -> Json<Message> {
        Json(Message {
            message: message.into(),
        })
    }
}

/// A JSON body with status 201.
pub struct Created<T>(pub T);

impl<T: ToJSON> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        Json(self.0)
            .into_response()
            .with_status(StatusCode::CREATED)
            .into_response()
    }
}

impl<T: ToJSON + ParseFromJSON> ApiResponse for Created<T> {
    fn meta() -> MetaResponses {
        let mut meta = Json::<T>::meta();
        for response in &mut meta.responses {
            response.status = Some(201);
            response.description = "Created";
        }
        meta
    }

    fn register(registry: &mut Registry) {
        Json::<T>::register(registry);
    }
}
