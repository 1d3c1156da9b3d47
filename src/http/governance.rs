//! Governing a room: settings, leaving, roles, moderation and invites. Every right is checked
//! by the room's actor against its stream ([`actors::room`]); this layer reads the body, seals
//! what is personal (reasons, codes), and answers with the read side once it has caught up.

use super::error::{ApiError, ok};
use super::extract::{Auth, Body, OptionalBody};
use super::openapi::{Envelope, Null};
use crate::app::Shared;
use crate::avatar;
use crate::wire::{self, Author, Room};
use actors::room::{Act, Change, Command};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use events::event::{Role, join_code_hash};
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

/// Body of an invite's creation.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct NewInvite {
    /// How many joins it allows; any number without it.
    #[serde(rename = "maxUses")]
    max_uses: Option<u32>,
    /// Seconds until it stops working; never without it.
    #[serde(rename = "expiresInSecs")]
    expires_in_secs: Option<u64>,
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
    /// Whether they have a socket connected (false until presence is built).
    online: bool,
    /// End of a mute in force, or null.
    #[serde(rename = "mutedUntil")]
    muted_until: Option<String>,
}

/// `invite`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Invite {
    id: String,
    /// 32 lowercase hex characters.
    code: String,
    #[serde(rename = "maxUses")]
    max_uses: Option<u64>,
    uses: u64,
    #[serde(rename = "expiresAt")]
    expires_at: Option<String>,
    #[serde(rename = "createdBy")]
    created_by: Author,
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

/// `data` of an invite's creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct InviteData {
    invite: Invite,
}

/// `data` of `GET /api/room/{roomId}/invites`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Invites {
    invites: Vec<Invite>,
}

/// `data` of a room's change.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomData<'a> {
    room: Room<'a>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).code("bad_request")
}

fn until(duration_secs: u64) -> Result<i64, ApiError> {
    if !(1..=MAX_DURATION_SECS).contains(&duration_secs) {
        return Err(bad(
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
        return Err(bad("a reason has at most 500 characters"));
    }
    let sealed = app
        .keys
        .seal(&Subject::User(by.to_owned()), &reason)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Some(sealed))
}

/// Has the room carry out `command`, then waits until the caller's reads show it.
async fn run(app: &Shared, user_id: &str, room_id: &str, command: Command) -> Result<(), ApiError> {
    let applied = app.rooms.command(room_id, command).await?;
    app.wrote(user_id, applied.position);
    app.wait_for(applied.position).await;
    Ok(())
}

fn done() -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "ok", Null))
}

async fn the_room(app: &Shared, user_id: &str, room_id: &str) -> Result<Response, ApiError> {
    let row =
        app.read.room_for(room_id, user_id).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "no such room").code("not_found")
        })?;
    Ok(ok(
        StatusCode::OK,
        "ok",
        RoomData {
            room: wire::room(&row),
        },
    ))
}

/// The caller's role in the room: 404 for an unknown room, 403 for a non-member.
async fn role_of(app: &Shared, user_id: &str, room_id: &str) -> Result<String, ApiError> {
    if app.read.room_by_id(room_id).await?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such room").code("not_found"));
    }
    app.read
        .member_role(room_id, user_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(StatusCode::FORBIDDEN, "you are not a member of this room")
                .code("not_member")
        })
}

fn member(row: projections::MemberRow) -> Member {
    Member {
        id: row.user_id,
        name: row.name,
        avatar_image: row.avatar_image,
        role: row.role,
        online: false,
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
            .code("not_found")
        })?;
    let data = MemberData {
        member: member(row),
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
        return Err(bad(
            "give at least one of name, description, avatarImage, archived, retentionDays",
        ));
    }
    let avatar_image = match c.avatar_image.as_deref() {
        None => None,
        Some("") => Some(String::new()),
        Some(url) => {
            let image = avatar::decode(url).map_err(|e| match e {
                avatar::Error::TooLarge => {
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).code("too_large")
                }
                other => bad(other.to_string()),
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
        members: members.into_iter().map(member).collect(),
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
    let role = Role::parse(&r.role).ok_or_else(|| bad("role is admin, member or owner"))?;
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

/// A new code, sealed for the room, and its hash.
async fn new_code(
    app: &Shared,
    room_id: &str,
) -> Result<(String, [u8; 32], events::seal::Sealed), ApiError> {
    let code = hex::encode(rand::random::<[u8; 16]>());
    let sealed = app
        .keys
        .seal(&Subject::Room(room_id.to_owned()), &code)
        .await
        .map_err(ApiError::unavailable)?;
    let hash = join_code_hash(&code);
    Ok((code, hash, sealed))
}

/// Replaces the standing join code (`POST /api/room/{roomId}/invite/rotate`, admin).
#[utoipa::path(
    post,
    path = "/room/{roomId}/invite/rotate",
    tag = "governance",
    security(("bearer" = [])),
    params(("roomId" = String, Path, description = "The room's id")),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "The room with its new code", body = Envelope<RoomData>),
        (status = 403, description = "Not an admin", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
    ),
)]
pub async fn rotate(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, join_code_hash, join_code) = new_code(&app, &room_id).await?;
    let command = Command::RotateCode {
        by: s.user_id.clone(),
        join_code_hash,
        join_code,
    };
    run(&app, &s.user_id, &room_id, command).await?;
    the_room(&app, &s.user_id, &room_id).await
}

fn invite(row: projections::InviteRow, created_by: Author) -> Invite {
    Invite {
        id: row.invite_id,
        code: row.code,
        max_uses: row.max_uses,
        uses: row.uses,
        expires_at: row.expires_at.map(wire::time),
        created_by,
    }
}

/// Makes an extra invite (`POST /api/room/{roomId}/invites`, admin).
#[utoipa::path(
    post,
    path = "/room/{roomId}/invites",
    tag = "governance",
    security(("bearer" = [])),
    params(("roomId" = String, Path, description = "The room's id")),
    request_body(content = NewInvite, description = "Optional"),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 201, description = "The invite", body = Envelope<InviteData>),
        (status = 400, description = "maxUses or expiresInSecs not a positive integer", body = Envelope<Null>),
        (status = 403, description = "Not an admin", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
    ),
)]
pub async fn create_invite(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
    OptionalBody(n): OptionalBody<NewInvite>,
) -> Result<Response, ApiError> {
    if n.max_uses == Some(0) {
        return Err(bad("maxUses must be a positive integer"));
    }
    let expires_at = match n.expires_in_secs {
        Some(0) => return Err(bad("expiresInSecs must be a positive integer")),
        Some(secs) if secs > MAX_DURATION_SECS * 100 => {
            return Err(bad("expiresInSecs is at most 100 years"));
        }
        Some(secs) => Some(events::now_ms() + secs as i64 * 1000),
        None => None,
    };
    let (code, code_hash, sealed) = new_code(&app, &room_id).await?;
    let invite_id = uuid::Uuid::now_v7().to_string();
    let command = Command::CreateInvite {
        by: s.user_id.clone(),
        invite_id: invite_id.clone(),
        code_hash,
        code: sealed,
        max_uses: n.max_uses,
        expires_at,
    };
    run(&app, &s.user_id, &room_id, command).await?;
    let data = InviteData {
        invite: Invite {
            id: invite_id,
            code,
            max_uses: n.max_uses.map(u64::from),
            uses: 0,
            expires_at: expires_at.map(wire::time),
            created_by: (*app.profiles.get(&s.user_id)).clone(),
        },
    };
    Ok(ok(StatusCode::CREATED, "created", data))
}

/// Lists the live invites with their codes (`GET /api/room/{roomId}/invites`, admin).
#[utoipa::path(
    get,
    path = "/room/{roomId}/invites",
    tag = "governance",
    security(("bearer" = [])),
    params(("roomId" = String, Path, description = "The room's id")),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "Invites not revoked, expired or used up", body = Envelope<Invites>),
        (status = 403, description = "Not an admin", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
    ),
)]
pub async fn invites(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
) -> Result<Response, ApiError> {
    app.own_writes(&s.user_id).await;
    if !matches!(
        role_of(&app, &s.user_id, &room_id).await?.as_str(),
        "owner" | "admin"
    ) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only admins and the owner see the invites",
        )
        .code("forbidden"));
    }
    let rows = app.read.invites(&room_id, events::now_ms()).await?;
    let invites = rows
        .into_iter()
        .map(|row| {
            let by = (*app.profiles.get(&row.created_by)).clone();
            invite(row, by)
        })
        .collect();
    Ok(ok(StatusCode::OK, "ok", Invites { invites }))
}

/// Revokes an invite (`DELETE /api/room/{roomId}/invites/{inviteId}`, admin).
#[utoipa::path(
    delete,
    path = "/room/{roomId}/invites/{inviteId}",
    tag = "governance",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("inviteId" = String, Path, description = "The invite's id"),
    ),
    responses(
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
        (status = 200, description = "Revoked", body = Envelope<Null>),
        (status = 403, description = "Not an admin", body = Envelope<Null>),
        (status = 404, description = "No such room or invite", body = Envelope<Null>),
    ),
)]
pub async fn revoke_invite(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path((room_id, invite_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let command = Command::RevokeInvite {
        by: s.user_id.clone(),
        invite_id,
    };
    run(&app, &s.user_id, &room_id, command).await?;
    done()
}
