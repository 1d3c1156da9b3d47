//! Messages over REST, for bots and scripts: send, edit and delete with the socket's rules,
//! ids and idempotency window, decided by the room's actor; each answers the message as it is
//! now, read once the read side has caught up.

use super::error::{ApiError, ok};
use super::extract::{Auth, Body};
use super::openapi::{Envelope, Null};
use crate::app::Shared;
use crate::wire;
use actors::room::Command;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};
use utoipa::ToSchema;

/// A message's own id: a string or a number, as on the socket.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageId {
    /// Text.
    Text(String),
    /// A number, kept as its decimal text.
    #[schema(value_type = i64)]
    Number(Number),
}

/// Body of `POST /api/room/{roomId}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMessage {
    /// The sender's own id for the message: a retry with the same id is answered with the
    /// first message.
    id: Option<MessageId>,
    /// 1 to 4,000 characters after trimming.
    message: String,
    /// The `seq` of the message of this room it answers.
    #[serde(rename = "replyTo")]
    reply_to: Option<u64>,
}

/// Body of `PATCH /api/room/{roomId}/messages/{seq}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Edit {
    /// The new text: 1 to 4,000 characters after trimming.
    message: String,
}

/// `data` of the message calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageData {
    #[schema(value_type = wire::Message)]
    message: Value,
}

fn limit(app: &Shared, user_id: &str) -> Result<(), ApiError> {
    if app.send_limit.take(user_id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "sending too fast; retry with the same id in a moment",
        ))
    }
}

/// The message `seq` of `room_id` as the read side has it now.
async fn answer(
    app: &Shared,
    room_id: &str,
    seq: u64,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let row = app.read.message(room_id, seq).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no message of this room has that seq",
        )
    })?;
    let data = MessageData {
        message: wire::record(&row),
    };
    let text = if status == StatusCode::CREATED {
        "created"
    } else {
        "ok"
    };
    Ok(ok(status, text, data))
}

/// Sends a message (`POST /api/room/{roomId}/messages`): 201 with it, or 200 with the first
/// one for a retry of its `id`.
#[utoipa::path(
    post,
    path = "/room/{roomId}/messages",
    tag = "messages",
    security(("bearer" = [])),
    params(("roomId" = String, Path, description = "The room's id")),
    request_body = NewMessage,
    responses(
        (status = 200, description = "A retry: the first message with this id, as it is now", body = Envelope<MessageData>),
        (status = 201, description = "The message", body = Envelope<MessageData>),
        (status = 400, description = "No id, a bad text or replyTo", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 403, description = "Not a member, or muted", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
        (status = 409, description = "The room is archived", body = Envelope<Null>),
        (status = 413, description = "The text is too long", body = Envelope<Null>),
        (status = 429, description = "Sending too fast", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn send(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
    Body(m): Body<NewMessage>,
) -> Result<Response, ApiError> {
    let key = match m.id {
        Some(MessageId::Text(t)) => t,
        Some(MessageId::Number(n)) => n.to_string(),
        None => {
            return Err(ApiError::bad_request(
                "id is required: the message's own id (a string or number)",
            ));
        }
    };
    limit(&app, &s.user_id)?;
    let posted = app
        .rooms
        .reply(&room_id, &s.user_id, &key, &m.message, m.reply_to)
        .await?;
    app.wrote(&s.user_id, posted.position);
    app.wait_for(posted.position).await;
    let status = if posted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    answer(&app, &room_id, posted.seq, status).await
}

async fn change(
    app: &Shared,
    user_id: &str,
    room_id: &str,
    seq: u64,
    command: Command,
) -> Result<Response, ApiError> {
    limit(app, user_id)?;
    let changed = app.rooms.change(room_id, command).await?;
    app.wrote(user_id, changed.position);
    app.wait_for(changed.position).await;
    answer(app, room_id, seq, StatusCode::OK).await
}

/// Edits one's own message (`PATCH /api/room/{roomId}/messages/{seq}`).
#[utoipa::path(
    patch,
    path = "/room/{roomId}/messages/{seq}",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("seq" = u64, Path, description = "The message's seq"),
    ),
    request_body = Edit,
    responses(
        (status = 200, description = "The message as it is now", body = Envelope<MessageData>),
        (status = 400, description = "A bad text or seq", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 403, description = "Not the author, not a member, or muted", body = Envelope<Null>),
        (status = 404, description = "No such room or message", body = Envelope<Null>),
        (status = 409, description = "The message is deleted, or the room archived", body = Envelope<Null>),
        (status = 413, description = "The text is too long", body = Envelope<Null>),
        (status = 429, description = "Changing messages too fast", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn edit(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path((room_id, seq)): Path<(String, String)>,
    Body(e): Body<Edit>,
) -> Result<Response, ApiError> {
    let seq = seq_of(&seq)?;
    let command = Command::Edit {
        user_id: s.user_id.clone(),
        seq,
        text: e.message,
    };
    change(&app, &s.user_id, &room_id, seq, command).await
}

/// Deletes a message (`DELETE /api/room/{roomId}/messages/{seq}`): one's own, a member's as
/// an admin, anyone's as the owner; deleting it again changes nothing.
#[utoipa::path(
    delete,
    path = "/room/{roomId}/messages/{seq}",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("seq" = u64, Path, description = "The message's seq"),
    ),
    responses(
        (status = 200, description = "The placeholder", body = Envelope<MessageData>),
        (status = 400, description = "A bad seq", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 403, description = "Not allowed", body = Envelope<Null>),
        (status = 404, description = "No such room or message", body = Envelope<Null>),
        (status = 409, description = "The room is archived", body = Envelope<Null>),
        (status = 429, description = "Changing messages too fast", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn delete(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path((room_id, seq)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let seq = seq_of(&seq)?;
    let command = Command::Delete {
        by: s.user_id.clone(),
        seq,
    };
    change(&app, &s.user_id, &room_id, seq, command).await
}

/// A path's `seq`: a whole number of 1 or more.
fn seq_of(text: &str) -> Result<u64, ApiError> {
    match text.parse::<u64>() {
        Ok(n) if n > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ApiError::bad_request(
            "seq must be a whole number of 1 or more",
        )),
    }
}
