//! Governing a room: settings, leaving, members, roles and moderation (invites are in
//! [`super::invites`]). Every right is checked
//! by the room's actor against its stream ([`actors::room`]); this layer reads the body, seals
//! what is personal (reasons, codes), and answers with the read side once it has caught up.

use super::error::{ApiError, ok};
use super::extract::{Auth, Body, OptionalBody};
use super::openapi::{Envelope, Null};
use crate::app::Shared;
use crate::avatar;
use crate::wire::{self, Room};
use actors::room::{Act, Change, Command};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use events::event::Role;
use events::seal::Subject;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Longest moderator's reason, in characters after trimming.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest ban or mute: one year.
pub const MAX_DURATION_SECS: u64 = 365 * 24 * 3600;

/// A field that may be sent as `null` (`Some(None)`), which is not the same as leaving it out.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `PATCH /api/room/{roomId}`: at least one field.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RoomChange {
    /// 1 to 64 characters after trimming (admin).
    name: Option<String>,
    /// At most 256 characters (admin).
    description: Option<String>,
    /// A data URL as for creation, or `""` for none (admin).
    #[serde(rename = "avatarImage")]
    avatar_image: Option<String>,
    /// Read-only or not (owner).
    archived: Option<bool>,
    /// `null` (off) or 1 to 36,500 days (owner).
    #[serde(rename = "retentionDays", default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>)]
    retention_days: Option<Option<u32>>,
}

/// Body of a kick.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Kick {
    /// Why, at most 500 characters; sealed in the log.
    reason: Option<String>,
}

/// Body of a ban.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Ban {
    /// Why, at most 500 characters; sealed in the log.
    reason: Option<String>,
    /// 1 s to one year; without it, until lifted.
    #[serde(rename = "durationSecs")]
    duration_secs: Option<u64>,
}

/// Body of a mute.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Mute {
    /// 1 s to one year.
    #[serde(rename = "durationSecs")]
    duration_secs: u64,
}

/// Body of a role change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleChange {
    /// `admin`, `member`, or `owner` (a transfer: the old owner becomes admin).
    role: String,
}

/// `member`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    id: String,
    name: String,
    #[serde(rename = "avatarImage")]
    avatar_image: String,
    /// `owner`, `admin` or `member`.
    role: String,
    /// Whether they have a socket connected, on any node.
    online: bool,
    /// End of a mute in force, or null.
    #[serde(rename = "mutedUntil")]
    muted_until: Option<String>,
}

/// `data` of a call answering a member.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberData {
    member: Member,
}

/// `data` of `GET /api/room/{roomId}/members`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Members {
    members: Vec<Member>,
}

/// `data` of a room's change.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomData<'a> {
    room: Room<'a>,
}

fn until(duration_secs: u64) -> Result<i64, ApiError> {
    if !(1..=MAX_DURATION_SECS).contains(&duration_secs) {
        return Err(ApiError::bad_request(
            "durationSecs must be a whole number from 1 to 31536000",
        ));
    }
    Ok(events::now_ms() + duration_secs as i64 * 1000)
}

/// A reason sealed for the moderator who gives it; blank is none.
async fn reason(
    app: &Shared,
    by: &str,
    reason: Option<String>,
) -> Result<Option<events::seal::Sealed>, ApiError> {
    let Some(reason) = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
    else {
        return Ok(None);
    };
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request("a reason has at most 500 characters"));
    }
    let sealed = app
        .keys
        .seal(&Subject::User(by.to_owned()), &reason)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Some(sealed))
}

/// Has the room carry out `command`, then waits until the caller's reads show it.
pub(super) async fn run(
    app: &Shared,
    user_id: &str,
    room_id: &str,
    command: Command,
) -> Result<(), ApiError> {
    let applied = app.rooms.command(room_id, command).await?;
    app.wrote(user_id, applied.position);
    app.wait_for(applied.position).await;
    Ok(())
}

pub(super) fn done() -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "ok", Null))
}

pub(super) async fn the_room(
    app: &Shared,
    user_id: &str,
    room_id: &str,
) -> Result<Response, ApiError> {
    let row = app
        .read
        .room_for(room_id, user_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such room"))?;
    Ok(ok(
        StatusCode::OK,
        "ok",
        RoomData {
            room: wire::room(&row),
        },
    ))
}

/// The caller's role in the room: 404 for an unknown room, 403 for a non-member.
pub(super) async fn role_of(
    app: &Shared,
    user_id: &str,
    room_id: &str,
) -> Result<String, ApiError> {
    if app.read.room_by_id(room_id).await?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such room"));
    }
    app.read
        .member_role(room_id, user_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(StatusCode::FORBIDDEN, "you are not a member of this room")
                .code("not_member")
        })
}

fn member(app: &Shared, row: projections::MemberRow) -> Member {
    Member {
        online: app.live.presence.is_online(&row.user_id),
        id: row.user_id,
        name: row.name,
        avatar_image: row.avatar_image,
        role: row.role,
        muted_until: row
            .muted_until
            .filter(|u| *u > events::now_ms())
            .map(wire::time),
    }
}

async fn the_member(app: &Shared, room_id: &str, user_id: &str) -> Result<Response, ApiError> {
    let row = app
        .read
        .members(room_id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "that user is not a member of this room",
            )
        })?;
    let data = MemberData {
        member: member(app, row),
    };
    Ok(ok(StatusCode::OK, "ok", data))
}

/// Changes a room's settings (`PATCH /api/room/{roomId}`).
#[utoipa::path(
    patch,
    path = "/room/{roomId}",
    tag = "governance",
    security(("bearer" = [])),
    params(("roomId" = String, Path, description = "The room's id")),
    request_body = RoomChange,
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "The room as it is now", body = Envelope<RoomData>),
        (status = 400, description = "No known field, or one out of range", body = Envelope<Null>),
        (status = 403, description = "Not a member, or not allowed (admin; owner for archived and retentionDays)", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
        (status = 413, description = "The avatar is too large", body = Envelope<Null>),
    ),
)]
pub async fn patch_room(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
    Body(c): Body<RoomChange>,
) -> Result<Response, ApiError> {
    if c.name.is_none()
        && c.description.is_none()
        && c.avatar_image.is_none()
        && c.archived.is_none()
        && c.retention_days.is_none()
    {
        return Err(ApiError::bad_request(
            "give at least one of name, description, avatarImage, archived, retentionDays",
        ));
    }
    let avatar_image = match c.avatar_image.as_deref() {
        None => None,
        Some("") => Some(String::new()),
        Some(url) => {
            let image = avatar::decode(url).map_err(|e| match e {
                avatar::Error::TooLarge => {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
                }
                other => ApiError::bad_request(other.to_string()),
            })?;
            let dir = app.media_dir.clone();
            let path = tokio::task::spawn_blocking(move || avatar::store(&dir, &image))
                .await
                .map_err(ApiError::unavailable)?
                .map_err(ApiError::unavailable)?;
            Some(path)
        }
    };
    let change = Change {
        name: c.name,
        description: c.description,
        avatar_image,
        archived: c.archived,
        retention_days: c.retention_days,
    };
    let by = s.user_id.clone();
    run(&app, &s.user_id, &room_id, Command::Update { by, change }).await?;
    the_room(&app, &s.user_id, &room_id).await
}

/// Leaves a room (`POST /api/room/{roomId}/leave`); the owner must transfer first.
#[utoipa::path(
    post,
    path = "/room/{roomId}/leave",
    tag = "governance",
    security(("bearer" = [])),
    params(("roomId" = String, Path, description = "The room's id")),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "Left", body = Envelope<Null>),
        (status = 403, description = "Not a member", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
        (status = 409, description = "The owner must transfer ownership first", body = Envelope<Null>),
    ),
)]
pub async fn leave(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
) -> Result<Response, ApiError> {
    let user_id = s.user_id.clone();
    run(&app, &s.user_id, &room_id, Command::Leave { user_id }).await?;
    done()
}

/// Lists a room's members (`GET /api/room/{roomId}/members`): owner, admins, members, each
/// by join time.
#[utoipa::path(
    get,
    path = "/room/{roomId}/members",
    tag = "governance",
    security(("bearer" = [])),
    params(("roomId" = String, Path, description = "The room's id")),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "The members", body = Envelope<Members>),
        (status = 403, description = "Not a member", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
    ),
)]
pub async fn members(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
) -> Result<Response, ApiError> {
    app.own_writes(&s.user_id).await;
    role_of(&app, &s.user_id, &room_id).await?;
    let members = app.read.members(&room_id).await?;
    let data = Members {
        members: members.into_iter().map(|m| member(&app, m)).collect(),
    };
    Ok(ok(StatusCode::OK, "ok", data))
}

/// Sets a member's role (`POST /api/room/{roomId}/members/{userId}/role`, owner).
#[utoipa::path(
    post,
    path = "/room/{roomId}/members/{userId}/role",
    tag = "governance",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("userId" = String, Path, description = "The member's id"),
    ),
    request_body = RoleChange,
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "The member as they are now", body = Envelope<MemberData>),
        (status = 400, description = "Not a role", body = Envelope<Null>),
        (status = 403, description = "Not the owner, or the owner's own role", body = Envelope<Null>),
        (status = 404, description = "No such room, or the user is not a member", body = Envelope<Null>),
    ),
)]
pub async fn set_role(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path((room_id, user_id)): Path<(String, String)>,
    Body(r): Body<RoleChange>,
) -> Result<Response, ApiError> {
    let role = Role::parse(&r.role)
        .ok_or_else(|| ApiError::bad_request("role is admin, member or owner"))?;
    let command = Command::SetRole {
        by: s.user_id.clone(),
        user_id: user_id.clone(),
        role,
    };
    run(&app, &s.user_id, &room_id, command).await?;
    the_member(&app, &room_id, &user_id).await
}

async fn moderate(
    app: &Shared,
    by: &str,
    room_id: &str,
    user_id: &str,
    act: Act,
) -> Result<(), ApiError> {
    let command = Command::Moderate {
        by: by.to_owned(),
        user_id: user_id.to_owned(),
        act,
    };
    run(app, by, room_id, command).await
}

/// Removes a member, who may rejoin with a valid code (`POST .../members/{userId}/kick`).
#[utoipa::path(
    post,
    path = "/room/{roomId}/members/{userId}/kick",
    tag = "governance",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("userId" = String, Path, description = "The member's id"),
    ),
    request_body(content = Kick, description = "Optional"),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "Kicked", body = Envelope<Null>),
        (status = 400, description = "A reason over 500 characters", body = Envelope<Null>),
        (status = 403, description = "Not allowed", body = Envelope<Null>),
        (status = 404, description = "No such room, or the user is not a member", body = Envelope<Null>),
    ),
)]
pub async fn kick(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path((room_id, user_id)): Path<(String, String)>,
    OptionalBody(k): OptionalBody<Kick>,
) -> Result<Response, ApiError> {
    let reason = reason(&app, &s.user_id, k.reason).await?;
    moderate(&app, &s.user_id, &room_id, &user_id, Act::Kick { reason }).await?;
    done()
}

/// Bans a user, member or not (`POST .../members/{userId}/ban`).
#[utoipa::path(
    post,
    path = "/room/{roomId}/members/{userId}/ban",
    tag = "governance",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("userId" = String, Path, description = "The user's id"),
    ),
    request_body(content = Ban, description = "Optional"),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "Banned", body = Envelope<Null>),
        (status = 400, description = "A reason over 500 characters, or a duration out of range", body = Envelope<Null>),
        (status = 403, description = "Not allowed", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
    ),
)]
pub async fn ban(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path((room_id, user_id)): Path<(String, String)>,
    OptionalBody(b): OptionalBody<Ban>,
) -> Result<Response, ApiError> {
    let until = b.duration_secs.map(until).transpose()?;
    let reason = reason(&app, &s.user_id, b.reason).await?;
    moderate(
        &app,
        &s.user_id,
        &room_id,
        &user_id,
        Act::Ban { reason, until },
    )
    .await?;
    done()
}

/// Lifts a ban (`DELETE .../members/{userId}/ban`); lifting none changes nothing.
#[utoipa::path(
    delete,
    path = "/room/{roomId}/members/{userId}/ban",
    tag = "governance",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("userId" = String, Path, description = "The user's id"),
    ),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "Lifted (or there was none)", body = Envelope<Null>),
        (status = 403, description = "Not allowed", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
    ),
)]
pub async fn unban(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path((room_id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    moderate(&app, &s.user_id, &room_id, &user_id, Act::Unban).await?;
    done()
}

/// Mutes a member for a while (`POST .../members/{userId}/mute`).
#[utoipa::path(
    post,
    path = "/room/{roomId}/members/{userId}/mute",
    tag = "governance",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("userId" = String, Path, description = "The member's id"),
    ),
    request_body = Mute,
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "The member as they are now", body = Envelope<MemberData>),
        (status = 400, description = "No duration, or one out of range", body = Envelope<Null>),
        (status = 403, description = "Not allowed", body = Envelope<Null>),
        (status = 404, description = "No such room, or the user is not a member", body = Envelope<Null>),
    ),
)]
pub async fn mute(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path((room_id, user_id)): Path<(String, String)>,
    Body(m): Body<Mute>,
) -> Result<Response, ApiError> {
    let until = until(m.duration_secs)?;
    moderate(&app, &s.user_id, &room_id, &user_id, Act::Mute { until }).await?;
    the_member(&app, &room_id, &user_id).await
}

/// Lifts a mute (`DELETE .../members/{userId}/mute`); lifting none changes nothing.
#[utoipa::path(
    delete,
    path = "/room/{roomId}/members/{userId}/mute",
    tag = "governance",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("userId" = String, Path, description = "The member's id"),
    ),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "The member as they are now", body = Envelope<MemberData>),
        (status = 403, description = "Not allowed", body = Envelope<Null>),
        (status = 404, description = "No such room, or the user is not a member", body = Envelope<Null>),
    ),
)]
pub async fn unmute(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path((room_id, user_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    moderate(&app, &s.user_id, &room_id, &user_id, Act::Unmute).await?;
    the_member(&app, &room_id, &user_id).await
}
