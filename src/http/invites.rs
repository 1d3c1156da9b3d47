//! A room's codes: rotating the standing join code, and extra invites with limits, listed
//! and revoked by admins. The room's actor checks the rights and counts the uses; codes are
//! sealed for the room before they reach it.

use super::error::{ApiError, ok};
use super::extract::{Auth, OptionalBody};
use super::governance::{MAX_DURATION_SECS, RoomData, done, role_of, run, the_room};
use super::openapi::{Envelope, Null};
use crate::app::Shared;
use crate::wire::{self, Author};
use actors::room::Command;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use events::event::join_code_hash;
use events::seal::Subject;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
        return Err(ApiError::bad_request("maxUses must be a positive integer"));
    }
    let expires_at = match n.expires_in_secs {
        Some(0) => {
            return Err(ApiError::bad_request(
                "expiresInSecs must be a positive integer",
            ));
        }
        Some(secs) if secs > MAX_DURATION_SECS * 100 => {
            return Err(ApiError::bad_request("expiresInSecs is at most 100 years"));
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
        ));
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
