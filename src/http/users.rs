//! Register, log in, who am I, log out.

use super::error::{ApiError, ok};
use super::extract::{Auth, Body};
use super::openapi::{Envelope, Null};
use crate::app::Shared;
use crate::wire::{self, UserInfo};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of register and login.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    /// 1 to 64 characters after trimming, no control characters; unique ignoring case.
    username: String,
    /// 8 to 128 characters.
    password: String,
}

/// `data` of register and login.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionData<'a> {
    /// The bearer token for every other call and for Socket.IO.
    token: String,
    #[serde(rename = "userInfo")]
    user_info: UserInfo<'a>,
}

/// `data` of `GET /api/user/info`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserData<'a> {
    #[serde(rename = "userInfo")]
    pub(crate) user_info: UserInfo<'a>,
}

/// Checks a user name as the contract counts it and returns it trimmed.
pub(crate) fn check_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err(ApiError::bad_request(
            "username must have 1 to 64 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "username may not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

pub(crate) fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err(ApiError::bad_request(
            "password must have 8 to 128 characters",
        ));
    }
    Ok(())
}

pub(crate) async fn session_answer(
    app: &Shared,
    status: StatusCode,
    message: &str,
    user: &projections::UserRow,
) -> Result<Response, ApiError> {
    let (token, _) = app
        .sessions
        .issue(&user.id)
        .await
        .map_err(ApiError::unavailable)?;
    let data = SessionData {
        token,
        user_info: wire::user_info(user),
    };
    Ok(ok(status, message, data))
}

/// Registers a user and logs them in (`POST /api/register`).
#[utoipa::path(
    post,
    path = "/register",
    tag = "users",
    request_body = Credentials,
    responses(
        (status = 201, description = "Registered and logged in", body = Envelope<SessionData>),
        (status = 400, description = "A bad name or password, or a body that is not the JSON expected", body = Envelope<Null>),
        (status = 409, description = "The name is taken (ignoring case)", body = Envelope<Null>),
        (status = 413, description = "The body is too large", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn register(
    State(app): State<Shared>,
    Body(c): Body<Credentials>,
) -> Result<Response, ApiError> {
    let name = check_name(&c.username)?;
    check_password(&c.password)?;
    let taken = app.read.user_by_name(&name).await?.is_some();
    if taken {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "that user name is taken",
        ));
    }
    let password = c.password;
    let hash = tokio::task::spawn_blocking(move || crate::auth::hash_password(&password))
        .await
        .map_err(ApiError::unavailable)?;
    // The credential first: a user in the log always has one (a crash in between leaves
    // only a credential nobody can use).
    let user_id = actors::users::new_id();
    app.sessions
        .set_password(&user_id, &hash)
        .await
        .map_err(ApiError::unavailable)?;
    let position = match actors::users::register(&*app.store, &app.keys, &user_id, &name).await {
        Ok(p) => p,
        Err(e) => {
            let _ = app.sessions.forget_password(&user_id).await;
            return Err(match e {
                actors::users::Error::NameTaken => {
                    ApiError::new(StatusCode::CONFLICT, "that user name is taken")
                }
                e => ApiError::unavailable(e),
            });
        }
    };
    app.wrote(&user_id, position);
    app.wait_for(position).await;
    let user = projections::UserRow {
        id: user_id,
        name,
        erased: false,
        avatar_image: String::new(),
    };
    session_answer(&app, StatusCode::CREATED, "registered", &user).await
}

/// Logs in (`POST /api/login`): the name is matched ignoring case.
#[utoipa::path(
    post,
    path = "/login",
    tag = "users",
    request_body = Credentials,
    responses(
        (status = 200, description = "Logged in", body = Envelope<SessionData>),
        (status = 400, description = "A body that is not the JSON expected", body = Envelope<Null>),
        (status = 401, description = "Wrong user name or password", body = Envelope<Null>),
        (status = 413, description = "The body is too large", body = Envelope<Null>),
        (status = 429, description = "Too many failed logins for this name; wait 15 minutes", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn login(
    State(app): State<Shared>,
    Body(c): Body<Credentials>,
) -> Result<Response, ApiError> {
    let name = c.username.trim().to_owned();
    let Some(attempt) = app.throttle.begin(&name) else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins for this user name; wait 15 minutes and try again",
        ));
    };
    // On an error the attempt is dropped: its slot comes back, nothing counts.
    let user = app.read.user_by_name(&name).await?;
    let stored = match &user {
        Some(u) => app
            .sessions
            .password_of(&u.id)
            .await
            .map_err(ApiError::unavailable)?,
        None => None,
    };
    let hash = stored.unwrap_or_else(|| crate::auth::dummy_hash().to_owned());
    let password = c.password;
    let matches =
        tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
            .await
            .unwrap_or(false);
    match user {
        Some(user) if matches => {
            attempt.finish(true);
            session_answer(&app, StatusCode::OK, "logged in", &user).await
        }
        _ => {
            attempt.finish(false);
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong user name or password",
            ))
        }
    }
}

/// The caller's `userInfo` (`GET /api/user/info`).
#[utoipa::path(
    get,
    path = "/user/info",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Envelope<UserData>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn info(State(app): State<Shared>, Auth(s): Auth) -> Result<Response, ApiError> {
    let user = app
        .read
        .user_by_id(&s.user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let data = UserData {
        user_info: wire::user_info(&user),
    };
    Ok(ok(StatusCode::OK, "ok", data))
}

/// Logs out (`POST /api/logout`): revokes the token and disconnects its sockets.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token is revoked and its sockets disconnected", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn logout(State(app): State<Shared>, Auth(s): Auth) -> Result<Response, ApiError> {
    app.sessions
        .revoke(&s.token_hash)
        .await
        .map_err(ApiError::unavailable)?;
    app.sockets.disconnect_token(&s.token_hash);
    Ok(ok(StatusCode::OK, "logged out", Null))
}
