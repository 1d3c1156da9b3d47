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
    /// An error with this status and message, and the contract's code for the status (a
    /// more precise one, such as `not_member` for a 403, is set with [`ApiError::code`]).
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => Some("bad_request"),
            StatusCode::FORBIDDEN => Some("forbidden"),
            StatusCode::NOT_FOUND => Some("not_found"),
            StatusCode::CONFLICT => Some("conflict"),
            StatusCode::GONE => Some("gone"),
            StatusCode::PAYLOAD_TOO_LARGE => Some("too_large"),
            StatusCode::TOO_MANY_REQUESTS => Some("rate_limited"),
            StatusCode::SERVICE_UNAVAILABLE => Some("unavailable"),
            _ => None,
        };
        Self {
            status,
            message: message.into(),
            code,
        }
    }

    /// The same error carrying another error code (`"code"` in the body, as the socket's).
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
                    "too_large" => StatusCode::PAYLOAD_TOO_LARGE,
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
        let body = Envelope {
            status: self.status.as_u16(),
            message: &self.message,
            data: Null,
            code: self.code,
        };
        (self.status, Json(body)).into_response()
    }
}

/// A success in the contract's envelope.
pub fn ok(status: StatusCode, message: &str, data: impl Serialize) -> Response {
    let body = Envelope {
        status: status.as_u16(),
        message,
        data,
        code: None,
    };
    (status, Json(body)).into_response()
}
