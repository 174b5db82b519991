//! Response shapes shared across domains.

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{
    ApiResponse, Object,
    payload::Json,
    registry::{MetaResponses, Registry},
    types::{ParseFromJSON, ToJSON},
};

/// `{"message": "..."}`: the answer of updates and deletes.
#[derive(Debug, Clone, Object)]
pub struct Message {
    pub message: String,
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
