//! The caller's own account: rename and avatar, password, export of their data, erasure.

use super::error::{ApiError, ok};
use super::extract::{Auth, Body};
use super::openapi::{Envelope, Null};
use super::users::{UserData, check_name, check_password};
use crate::app::Shared;
use crate::avatar;
use crate::wire;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Body of `PATCH /api/user/info`: at least one field.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InfoChange {
    /// A new name: 1 to 64 characters after trimming, unique ignoring case.
    name: Option<String>,
    /// A new avatar as a data URL (PNG, JPEG, GIF or WebP, at most 1 MiB), or `""` for none.
    #[serde(rename = "avatarImage")]
    avatar_image: Option<String>,
}

/// Body of `POST /api/user/password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    /// The current password.
    #[serde(rename = "oldPassword")]
    old_password: String,
    /// The new one: 8 to 128 characters.
    #[serde(rename = "newPassword")]
    new_password: String,
}

/// Body of `DELETE /api/user`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Deletion {
    /// The current password.
    password: String,
}

async fn me(app: &Shared, user_id: &str) -> Result<projections::UserRow, ApiError> {
    app.own_writes(user_id).await;
    app.read
        .user_by_id(user_id)
        .await?
        .filter(|u| !u.erased)
        .ok_or_else(ApiError::unauthorized)
}

async fn check_old_password(app: &Shared, user_id: &str, password: String) -> Result<(), ApiError> {
    let hash = app
        .sessions
        .password_of(user_id)
        .await
        .map_err(ApiError::unavailable)?
        .unwrap_or_else(|| crate::auth::dummy_hash().to_owned());
    let matches =
        tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
            .await
            .unwrap_or(false);
    if matches {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "that is not your current password",
        ))
    }
}

/// Renames the caller or changes their avatar (`PATCH /api/user/info`).
#[utoipa::path(
    patch,
    path = "/user/info",
    tag = "users",
    security(("bearer" = [])),
    request_body = InfoChange,
    responses(
        (status = 200, description = "Changed", body = Envelope<UserData>),
        (status = 400, description = "No known field, a bad name or avatar", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 409, description = "The name is taken (ignoring case)", body = Envelope<Null>),
        (status = 413, description = "The avatar is too large", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn patch_info(
    State(app): State<Shared>,
    Auth(s): Auth,
    Body(c): Body<InfoChange>,
) -> Result<Response, ApiError> {
    if c.name.is_none() && c.avatar_image.is_none() {
        return Err(ApiError::bad_request(
            "give a name or an avatarImage to change",
        ));
    }
    let name = c.name.as_deref().map(check_name).transpose()?;
    let image = match c.avatar_image.as_deref() {
        None | Some("") => None,
        Some(url) => Some(avatar::decode(url).map_err(|e| match e {
            avatar::Error::TooLarge => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
            other => ApiError::bad_request(other.to_string()),
        })?),
    };
    let user = me(&app, &s.user_id).await?;
    let mut position = 0;
    if let Some(name) = &name
        && *name != user.name
    {
        position = actors::users::rename(&*app.store, &app.keys, &user.id, &user.name, name)
            .await
            .map_err(|e| match e {
                actors::users::Error::NameTaken => {
                    ApiError::new(StatusCode::CONFLICT, "that user name is taken")
                }
                e => ApiError::unavailable(e),
            })?;
    }
    if let Some(url) = &c.avatar_image {
        let path = match image {
            None => String::new(),
            Some(image) => {
                let dir = app.media_dir.clone();
                tokio::task::spawn_blocking(move || avatar::store(&dir, &image))
                    .await
                    .map_err(ApiError::unavailable)?
                    .map_err(ApiError::unavailable)?
            }
        };
        debug_assert!(url.is_empty() == path.is_empty());
        position = actors::users::change_avatar(&*app.store, &app.keys, &user.id, &path)
            .await
            .map_err(ApiError::unavailable)?;
        // The old file is the person's data too: it goes once nothing names it.
        remove_media(&app, &user.avatar_image);
    }
    if position > 0 {
        app.wrote(&user.id, position);
        // Forgotten once the read tables hold the change: a delivery rendered before that
        // would cache the old profile again.
        app.wait_for(position).await;
        app.profiles.forget(&user.id);
    }
    let user = me(&app, &s.user_id).await?;
    let data = UserData {
        user_info: wire::user_info(&user),
    };
    Ok(ok(StatusCode::OK, "changed", data))
}

fn remove_media(app: &Shared, path: &str) {
    if let Some(name) = path.strip_prefix("/media/")
        && !name.is_empty()
        && !name.contains('/')
        && let Err(e) = std::fs::remove_file(app.media_dir.join(name))
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, "could not remove a replaced avatar");
    }
}

/// Changes the caller's password (`POST /api/user/password`); every other token of theirs is
/// revoked and its sockets disconnected.
#[utoipa::path(
    post,
    path = "/user/password",
    tag = "users",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; the caller's other tokens are revoked", body = Envelope<Null>),
        (status = 400, description = "A new password of the wrong length", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 403, description = "The old password is wrong", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn change_password(
    State(app): State<Shared>,
    Auth(s): Auth,
    Body(c): Body<PasswordChange>,
) -> Result<Response, ApiError> {
    check_password(&c.new_password)?;
    check_old_password(&app, &s.user_id, c.old_password).await?;
    let new = c.new_password;
    let hash = tokio::task::spawn_blocking(move || crate::auth::hash_password(&new))
        .await
        .map_err(ApiError::unavailable)?;
    app.sessions
        .set_password(&s.user_id, &hash)
        .await
        .map_err(ApiError::unavailable)?;
    for revoked in app
        .sessions
        .revoke_user(&s.user_id, Some(&s.token_hash))
        .await
        .map_err(ApiError::unavailable)?
    {
        app.sockets.disconnect_token(&revoked);
    }
    let position = actors::users::password_changed(&*app.store, &s.user_id)
        .await
        .map_err(ApiError::unavailable)?;
    app.wrote(&s.user_id, position);
    Ok(ok(StatusCode::OK, "password changed", Null))
}

/// Everything the server holds about the caller (`GET /api/user/export`).
#[utoipa::path(
    get,
    path = "/user/export",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile, rooms with roles, own messages, read markers and blocks", body = Envelope<Export>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn export(State(app): State<Shared>, Auth(s): Auth) -> Result<Response, ApiError> {
    // An export is everything written so far, others' moderation of the caller's messages too.
    let head = (*app.store.head().borrow()).max(*app.store.others_head().borrow());
    app.wait_for(head).await;
    let user = me(&app, &s.user_id).await?;
    let mut rooms = app.read.rooms_of(&user.id).await?;
    super::dm::name_for(&app, &mut rooms, &user.id).await?;
    let messages = app.read.messages_by(&user.id).await?;
    let read_markers: Vec<Value> = (app.read.read_markers(&user.id).await?)
        .into_iter()
        .map(|(room, seq)| json!({"roomId": room, "lastReadSeq": seq}))
        .collect();
    let blocks = super::dm::blocked_ids(&app, &user.id).await?;
    let rooms: Vec<Value> = rooms
        .iter()
        .map(|r| json!({"room": wire::room(r), "role": r.role}))
        .collect();
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            let versions: Vec<Value> = m
                .versions
                .iter()
                .map(|v| json!({"message": v.message, "time": wire::time(v.time)}))
                .collect();
            json!({
                "roomId": m.room_id,
                "seq": m.seq,
                "id": m.message_id,
                "deleted": m.deleted,
                "versions": versions,
            })
        })
        .collect();
    let data = Export {
        profile: wire::user_info(&user),
        rooms,
        messages,
        read_markers,
        blocks,
    };
    Ok(ok(StatusCode::OK, "your data", data))
}

/// `data` of the export.
#[derive(Debug, Serialize, ToSchema)]
pub struct Export<'a> {
    profile: wire::UserInfo<'a>,
    rooms: Vec<Value>,
    messages: Vec<Value>,
    #[serde(rename = "readMarkers")]
    read_markers: Vec<Value>,
    /// The ids of the users the caller blocks.
    blocks: Vec<String>,
}

/// Erases the caller's account (`DELETE /api/user`).
#[utoipa::path(
    delete,
    path = "/user",
    tag = "users",
    security(("bearer" = [])),
    request_body = Deletion,
    responses(
        (status = 200, description = "Erased: tokens revoked, sockets closed, name, avatar, password and message texts unreadable everywhere", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 403, description = "The password is wrong", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn delete(
    State(app): State<Shared>,
    Auth(s): Auth,
    Body(c): Body<Deletion>,
) -> Result<Response, ApiError> {
    check_old_password(&app, &s.user_id, c.password).await?;
    match crate::erasure::erase(&app, &s.user_id, false).await {
        Ok(_) => Ok(ok(StatusCode::OK, "your account is erased", Null)),
        Err(crate::erasure::Error::Unknown) => Err(ApiError::unauthorized()),
        Err(e) => Err(ApiError::unavailable(e)),
    }
}
