//! Direct messages: the one room of two people (`POST /api/dm`) and the blocks one user puts
//! on another (`/api/user/blocks`).
//!
//! A direct room's id is the server's keyed hash of the pair, so every process opens the same
//! room and the log's own version check makes it unique. Its rules (no codes, invites, roles,
//! moderation or settings; a blocked author's posts refused) are the room actor's. A block is
//! an event of the blocker's stream, projected into `user_block`; each call waits for the
//! projection, so the caller's next reads and every process's checks see it.

use super::error::{ApiError, ok};
use super::extract::{Auth, Body};
use super::openapi::{Envelope, Null};
use super::rooms::RoomData;
use crate::app::Shared;
use crate::wire::{self, Author};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use projections::RoomRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /api/dm`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenDirect {
    /// The other person's user name, matched ignoring case.
    username: String,
}

/// `data` of `GET /api/user/blocks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockList {
    /// The users the caller blocks, in the order they were blocked.
    blocks: Vec<Author>,
}

/// Puts into each direct room of `rows` the name it has for `user_id`: the other person's
/// name as it is now ("Deleted user" once they are erased).
///
/// # Errors
/// When the read tables cannot be read.
pub(super) async fn name_for(
    app: &Shared,
    rows: &mut [RoomRow],
    user_id: &str,
) -> Result<(), ApiError> {
    for row in rows.iter_mut() {
        let Some(pair) = &row.direct else { continue };
        let other = events::event::other_of(pair, user_id).unwrap_or(&pair[0]);
        row.name = match app.read.user_by_id(other).await? {
            Some(u) if !u.erased => u.name,
            _ => projections::DELETED_USER.to_owned(),
        };
    }
    Ok(())
}

/// An existing, not erased user by id; 404 otherwise.
async fn known_user(app: &Shared, user_id: &str) -> Result<projections::UserRow, ApiError> {
    app.read
        .user_by_id(user_id)
        .await?
        .filter(|u| !u.erased)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such user").code("not_found"))
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, message).code("forbidden")
}

/// Opens (201) or returns (200) the caller's direct room with a user (`POST /api/dm`).
#[utoipa::path(
    post,
    path = "/dm",
    tag = "direct",
    security(("bearer" = [])),
    request_body = OpenDirect,
    responses(
        (status = 201, description = "The room was opened: both are members; `name` is the other person's", body = Envelope<RoomData>),
        (status = 200, description = "The room existed; the caller is a member of it again if they had left", body = Envelope<RoomData>),
        (status = 400, description = "The caller's own name, or a body that is not the JSON expected", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 403, description = "That user blocks the caller", body = Envelope<Null>),
        (status = 404, description = "No user has this name", body = Envelope<Null>),
        (status = 429, description = "Too many rooms created or joined in a short time", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn open(
    State(app): State<Shared>,
    Auth(s): Auth,
    Body(b): Body<OpenDirect>,
) -> Result<Response, ApiError> {
    if !app.write_limit.take(&s.user_id) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many rooms created or joined in a short time; wait a moment",
        ));
    }
    let other = app
        .read
        .user_by_name(b.username.trim())
        .await?
        .filter(|u| !u.erased)
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "no user has this name").code("not_found")
        })?;
    if other.id == s.user_id {
        return Err(ApiError::bad_request(
            "you cannot open a direct room with yourself",
        ));
    }
    if app.read.blocks(&other.id, &s.user_id).await? {
        return Err(forbidden("this person does not accept your messages"));
    }
    let room_id = app.keys.direct_room_id(&s.user_id, &other.id);
    let (status, message, position) = match app
        .rooms
        .open_direct(&room_id, &s.user_id, &other.id)
        .await?
    {
        actors::Opened::Created(c) => (StatusCode::CREATED, "direct room opened", c.position),
        actors::Opened::Existing { applied, .. } => {
            (StatusCode::OK, "your direct room", applied.position)
        }
    };
    app.wrote(&s.user_id, position);
    app.wait_for(position).await;
    let mut rows = [app
        .read
        .room_for(&room_id, &s.user_id)
        .await?
        .ok_or_else(|| ApiError::unavailable("a direct room just written is not readable"))?];
    name_for(&app, &mut rows, &s.user_id).await?;
    let data = RoomData {
        room: wire::room(&rows[0]),
    };
    Ok(ok(status, message, data))
}

/// Blocks (`on`) or unblocks a user; a change that changes nothing writes nothing.
async fn set_block(app: &Shared, by: &str, user_id: &str, on: bool) -> Result<(), ApiError> {
    if user_id == by {
        return Err(ApiError::bad_request("you cannot block yourself"));
    }
    known_user(app, user_id).await?;
    app.own_writes(by).await;
    if app.read.blocks(by, user_id).await? == on {
        return Ok(());
    }
    let position = actors::users::block(&*app.store, by, user_id, on)
        .await
        .map_err(ApiError::unavailable)?;
    app.wrote(by, position);
    app.wait_for(position).await;
    Ok(())
}

/// Blocks a user: they can no longer open a direct room with the caller, and their posts in
/// it are refused (`POST /api/user/blocks/{userId}`).
#[utoipa::path(
    post,
    path = "/user/blocks/{userId}",
    tag = "direct",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The user to block")),
    responses(
        (status = 200, description = "Blocked (blocking twice changes nothing)", body = Envelope<Null>),
        (status = 400, description = "The caller's own id", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 404, description = "No such user", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn block(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    set_block(&app, &s.user_id, &user_id, true).await?;
    Ok(ok(StatusCode::OK, "blocked", Null))
}

/// Lifts a block (`DELETE /api/user/blocks/{userId}`).
#[utoipa::path(
    delete,
    path = "/user/blocks/{userId}",
    tag = "direct",
    security(("bearer" = [])),
    params(("userId" = String, Path, description = "The user to unblock")),
    responses(
        (status = 200, description = "Unblocked (unblocking someone not blocked changes nothing)", body = Envelope<Null>),
        (status = 400, description = "The caller's own id", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 404, description = "No such user", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn unblock(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    set_block(&app, &s.user_id, &user_id, false).await?;
    Ok(ok(StatusCode::OK, "unblocked", Null))
}

/// The users the caller blocks (`GET /api/user/blocks`).
#[utoipa::path(
    get,
    path = "/user/blocks",
    tag = "direct",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The users the caller blocks, in the order they were blocked", body = Envelope<BlockList>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn blocks(State(app): State<Shared>, Auth(s): Auth) -> Result<Response, ApiError> {
    app.own_writes(&s.user_id).await;
    let blocks = app
        .read
        .blocked_by(&s.user_id)
        .await?
        .into_iter()
        .map(|u| Author {
            id: u.id,
            name: u.name,
            avatar_image: u.avatar_image,
        })
        .collect();
    Ok(ok(StatusCode::OK, "ok", BlockList { blocks }))
}

/// The ids of the users `user_id` blocks, for their export.
///
/// # Errors
/// When the read tables cannot be read.
pub(super) async fn blocked_ids(app: &Shared, user_id: &str) -> Result<Vec<String>, ApiError> {
    Ok(app
        .read
        .blocked_by(user_id)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect())
}

/// The room actors' view of blocks ([`actors::Blocks`]): the read side, which the block calls
/// wait for, so a post in a direct room right after a block on any process is refused.
pub struct ReadBlocks(pub projections::Reads);

impl actors::Blocks for ReadBlocks {
    fn blocks<'a>(
        &'a self,
        by: &'a str,
        user: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, String>> + Send + 'a>>
    {
        Box::pin(async move { self.0.blocks(by, user).await.map_err(|e| e.to_string()) })
    }
}
