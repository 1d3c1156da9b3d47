//! The API's error: the contract's JSON body with the real HTTP status, never an internal
//! cause.

use super::openapi::{Envelope, Null};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to an API caller.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    code: Option<&'static str>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code: None,
        }
    }

    /// The same error carrying a part 2 error code (`"code"` in the body, as the socket's).
    pub fn code(self, code: &'static str) -> Self {
        Self {
            code: Some(code),
            ..self
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "log in first: send Authorization: Bearer <token> with a valid token",
        )
    }

    /// 503 for a store that cannot be reached; the cause goes to the log only.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed: storage unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server cannot store or read data right now; try again shortly",
        )
    }
}

impl From<actors::Error> for ApiError {
    fn from(e: actors::Error) -> Self {
        match e {
            actors::Error::Rejected(r) => {
                let code = r.code();
                let status = match code {
                    "not_found" => StatusCode::NOT_FOUND,
                    "not_member" | "forbidden" | "banned" | "muted" => StatusCode::FORBIDDEN,
                    "gone" => StatusCode::GONE,
                    "archived" | "conflict" => StatusCode::CONFLICT,
                    _ => StatusCode::BAD_REQUEST,
                };
                Self::new(status, r.to_string()).code(code)
            }
            actors::Error::Busy => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "this room is too busy right now; retry shortly",
            ),
            actors::Error::Unavailable(cause) => Self::unavailable(cause),
        }
    }
}

impl From<projections::sqlite::Error> for ApiError {
    fn from(e: projections::sqlite::Error) -> Self {
        Self::unavailable(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::metrics::rejected_status(self.status);
        let body = ErrorBody {
            status: self.status.as_u16(),
            message: &self.message,
            data: Null,
            code: self.code,
        };
        (self.status, Json(body)).into_response()
    }
}

/// An error's body: the envelope, with part 2's error code when there is one.
#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    message: &'a str,
    data: Null,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
}

/// A success in the contract's envelope.
pub fn ok(status: StatusCode, message: &str, data: impl Serialize) -> Response {
    let body = Envelope {
        status: status.as_u16(),
        message,
        data,
    };
    (status, Json(body)).into_response()
}
