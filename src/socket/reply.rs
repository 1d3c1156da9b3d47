//! Answers to a client's events: the contract's error codes, and the acknowledgement (or,
//! when the client asked for none, `chat_error`) that carries them.

use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef};
use socketioxide::handler::FromMessageParts;
use std::sync::Arc;

/// An error code and message of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// One of the contract's codes (`bad_request`, `forbidden`, ...).
    pub code: &'static str,
    /// What a person can act on.
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A `bad_request`.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new("bad_request", message)
    }

    pub(crate) fn json(&self) -> Value {
        json!({"code": self.code, "message": self.message})
    }
}

impl From<actors::Error> for Failure {
    fn from(e: actors::Error) -> Self {
        match e {
            actors::Error::Rejected(r) => Failure::new(r.code(), r.to_string()),
            actors::Error::Busy => Failure::new(
                "rate_limited",
                "this room is too busy right now; retry with the same id shortly",
            ),
            actors::Error::Unavailable(cause) => {
                tracing::warn!(%cause, "socket request failed: unavailable");
                Failure::new(
                    "unavailable",
                    "the server cannot store messages right now; retry with the same id",
                )
            }
        }
    }
}

/// An event's acknowledgement, or, when the client asked for none, `chat_error`.
pub(crate) struct Reply {
    ack: AckSender,
    pub(crate) wanted: bool,
    pub(crate) socket: SocketRef,
}

impl FromMessageParts<socketioxide::adapter::LocalAdapter> for Reply {
    type Error = std::convert::Infallible;

    fn from_message_parts(
        s: &Arc<socketioxide::socket::Socket>,
        v: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        Ok(Self {
            ack: AckSender::from_message_parts(s, v, ack_id)?,
            wanted: ack_id.is_some(),
            socket: SocketRef::from_message_parts(s, v, ack_id)?,
        })
    }
}

impl Reply {
    pub(crate) fn ok(self, data: &(impl serde::Serialize + ?Sized)) {
        let _ = self.ack.send(data);
    }

    pub(crate) fn fail(self, failure: Failure, id: Option<&Value>) {
        crate::metrics::rejected(failure.code);
        if self.wanted {
            let _ = self
                .ack
                .send(&json!({"ok": false, "error": failure.json()}));
        } else {
            let _ = self.socket.emit(
                "chat_error",
                &json!({"code": failure.code, "message": failure.message, "id": id.cloned().unwrap_or(Value::Null)}),
            );
        }
    }
}
