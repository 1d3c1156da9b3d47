//! Rooms: create, list mine, join by code, history, and the caller's read marker.

use super::error::{ApiError, ok};
use super::extract::{Auth, Body};
use super::openapi::{Envelope, Null};
use crate::app::Shared;
use crate::avatar;
use crate::wire::{self, Room};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Body of `POST /api/room/create`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewRoom {
    /// 1 to 64 characters after trimming.
    name: String,
    /// At most 256 characters.
    #[serde(default)]
    description: String,
    /// `""`, or a data URL `data:image/<type>;base64,<data>` of a PNG, JPEG, GIF or WebP of
    /// at most 1 MiB decoded.
    #[serde(default, rename = "avatarImage")]
    avatar_image: String,
}

/// Body of `POST /api/room/join`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct JoinRoom {
    /// The room's join code (`room_hash_id`).
    #[serde(rename = "roomIdHash")]
    room_id_hash: String,
}

/// Body of `POST /api/room/{roomId}/read`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MarkRead {
    /// The newest `seq` the caller has read; one past the room's newest is taken as the
    /// newest.
    seq: u64,
}

/// `data` of `POST /api/room/{roomId}/read`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadData {
    /// The caller's marker now: it only moves forward.
    #[serde(rename = "lastReadSeq")]
    last_read_seq: u64,
}

/// `data` of create and join.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomData<'a> {
    pub(super) room: Room<'a>,
}

/// `data` of join.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinedData<'a> {
    room: Room<'a>,
    /// The room's version once the caller is a member: a socket's `sinceVersion` from here
    /// replays every change after the join.
    version: u64,
}

/// `data` of `GET /api/room/list`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomList<'a> {
    /// The caller's rooms.
    #[serde(rename = "roomList")]
    room_list: Vec<Room<'a>>,
}

/// `data` of history and search.
#[derive(Debug, Serialize, ToSchema)]
pub struct Messages {
    #[schema(value_type = Vec<wire::Message>)]
    messages: Vec<Value>,
}

/// Room creations and joins are rate-limited per user, before any work is done.
fn limit_writes(app: &Shared, user_id: &str) -> Result<(), ApiError> {
    if app.write_limit.take(user_id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many rooms created or joined in a short time; wait a moment",
        ))
    }
}

async fn room_row(app: &Shared, room_id: &str) -> Result<projections::RoomRow, ApiError> {
    app.read
        .room_by_id(room_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such room"))
}

/// The room as `user_id` sees it, with their role.
async fn own_room(
    app: &Shared,
    room_id: &str,
    user_id: &str,
) -> Result<projections::RoomRow, ApiError> {
    app.read
        .room_for(room_id, user_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such room"))
}

/// Creates a room owned by the caller, who is its first member (`POST /api/room/create`).
#[utoipa::path(
    post,
    path = "/room/create",
    tag = "rooms",
    security(("bearer" = [])),
    request_body = NewRoom,
    responses(
        (status = 201, description = "The room, with the caller as its owner and member", body = Envelope<RoomData>),
        (status = 400, description = "A bad name, description or avatar, or a body that is not the JSON expected", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 413, description = "The body or the avatar is too large", body = Envelope<Null>),
        (status = 429, description = "Too many rooms created or joined in a short time", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn create(
    State(app): State<Shared>,
    Auth(s): Auth,
    Body(r): Body<NewRoom>,
) -> Result<Response, ApiError> {
    limit_writes(&app, &s.user_id)?;
    let name = r.name.trim().to_owned();
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err(ApiError::bad_request("name must have 1 to 64 characters"));
    }
    if r.description.chars().count() > 256 {
        return Err(ApiError::bad_request(
            "description may have at most 256 characters",
        ));
    }
    let avatar_image = if r.avatar_image.is_empty() {
        String::new()
    } else {
        let image = avatar::decode(&r.avatar_image).map_err(|e| match e {
            avatar::Error::TooLarge => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
            other => ApiError::bad_request(other.to_string()),
        })?;
        let dir = app.media_dir.clone();
        tokio::task::spawn_blocking(move || avatar::store(&dir, &image))
            .await
            .map_err(ApiError::unavailable)?
            .map_err(ApiError::unavailable)?
    };
    let code: [u8; 16] = rand::random();
    let created = app
        .rooms
        .create(actors::NewRoom {
            name,
            description: r.description,
            owner: s.user_id.clone(),
            avatar_image,
            join_code: hex::encode(code),
        })
        .await?;
    app.wrote(&s.user_id, created.position);
    app.wait_for(created.position).await;
    let room = own_room(&app, &created.room_id, &s.user_id).await?;
    let data = RoomData {
        room: wire::room(&room),
    };
    Ok(ok(StatusCode::CREATED, "room created", data))
}

/// The caller's rooms (`GET /api/room/list`).
#[utoipa::path(
    get,
    path = "/room/list",
    tag = "rooms",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's rooms", body = Envelope<RoomList>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn list(State(app): State<Shared>, Auth(s): Auth) -> Result<Response, ApiError> {
    app.own_writes(&s.user_id).await;
    let mut rooms = app.read.rooms_of(&s.user_id).await?;
    super::dm::name_for(&app, &mut rooms, &s.user_id).await?;
    let data = RoomList {
        room_list: rooms.iter().map(wire::room).collect(),
    };
    Ok(ok(StatusCode::OK, "ok", data))
}

fn is_join_code(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Joins a room by its join code (`POST /api/room/join`); joining twice is not an error.
#[utoipa::path(
    post,
    path = "/room/join",
    tag = "rooms",
    security(("bearer" = [])),
    request_body = JoinRoom,
    responses(
        (status = 200, description = "The room joined, and its version then", body = Envelope<JoinedData>),
        (status = 400, description = "Not a join code, or a body that is not the JSON expected", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 404, description = "No room has this join code", body = Envelope<Null>),
        (status = 413, description = "The body is too large", body = Envelope<Null>),
        (status = 429, description = "Too many rooms created or joined in a short time", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn join(
    State(app): State<Shared>,
    Auth(s): Auth,
    Body(j): Body<JoinRoom>,
) -> Result<Response, ApiError> {
    limit_writes(&app, &s.user_id)?;
    let code = j.room_id_hash.trim().to_owned();
    if !is_join_code(&code) {
        return Err(ApiError::bad_request(
            "roomIdHash must be a join code of 32 lowercase hex characters",
        ));
    }
    let room_id = app
        .read
        .room_of_code(&events::event::join_code_hash(&code))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no room has this join code"))?;
    let hash = events::event::join_code_hash(&code);
    let joined = app.rooms.join(&room_id, &s.user_id, hash).await?;
    app.wrote(&s.user_id, joined.position);
    app.wait_for(joined.position).await;
    let room = own_room(&app, &room_id, &s.user_id).await?;
    let data = JoinedData {
        room: wire::room(&room),
        version: joined.version,
    };
    Ok(ok(StatusCode::OK, "joined", data))
}

/// Moves the caller's read marker forward (`POST /api/room/{roomId}/read`); members only.
#[utoipa::path(
    post,
    path = "/room/{roomId}/read",
    tag = "rooms",
    security(("bearer" = [])),
    params(("roomId" = String, Path, description = "The room's id")),
    request_body = MarkRead,
    responses(
        (status = 200, description = "The marker now (a lower `seq` changes nothing; one past the newest message is clamped to it)", body = Envelope<ReadData>),
        (status = 400, description = "`seq` is not a whole number of 0 or more, or a body that is not the JSON expected", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 403, description = "The caller is not a member of the room", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
        (status = 429, description = "Too many sends, changes and markers in a short time", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn mark_read(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
    Body(m): Body<MarkRead>,
) -> Result<Response, ApiError> {
    if !app.send_limit.take(&s.user_id) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "marking read too fast; wait a moment",
        ));
    }
    use crate::presence::markers::MarkError;
    let now = app
        .live
        .markers
        .mark(&room_id, &s.user_id, m.seq, None)
        .await
        .map_err(|e| match e {
            MarkError::NotFound => ApiError::new(StatusCode::NOT_FOUND, "no such room"),
            MarkError::NotMember => {
                ApiError::new(StatusCode::FORBIDDEN, e.to_string()).code("not_member")
            }
            MarkError::Unavailable(cause) => ApiError::unavailable(cause),
        })?;
    let data = ReadData { last_read_seq: now };
    Ok(ok(StatusCode::OK, "ok", data))
}

/// Parses a positive integer query value; anything else is a 400 naming the parameter.
fn positive(name: &str, value: &str) -> Result<u64, ApiError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be a whole number greater than 0"
        ))),
    }
}

/// A room's history, oldest first; members only.
///
/// `GET /api/room/{roomId}/messages?before=<seq>&limit=<n>`: the newest `limit` messages whose
/// `seq` is below `before`.
#[utoipa::path(
    get,
    path = "/room/{roomId}/messages",
    tag = "rooms",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("before" = Option<u64>, Query, description = "Only messages with a smaller `seq`; the newest of all without it"),
        ("limit" = Option<u64>, Query, description = "How many, 1 to 200 (more is taken as 200); 50 without it"),
    ),
    responses(
        (status = 200, description = "The messages, oldest first", body = Envelope<Messages>),
        (status = 400, description = "`before` or `limit` is not a whole number greater than 0", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 403, description = "The caller is not a member of the room", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn messages(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut before = None;
    let mut limit = 50;
    for (k, v) in url_pairs(query.as_deref().unwrap_or("")) {
        match k.as_str() {
            "before" => before = Some(positive("before", &v)?),
            "limit" => limit = positive("limit", &v)?.min(200),
            _ => {}
        }
    }
    app.own_writes(&s.user_id).await;
    let room = room_row(&app, &room_id).await?;
    let Some(rows) = app
        .read
        .member_messages(&room.id, &s.user_id, before, limit)
        .await?
    else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only members can read a room's messages",
        )
        .code("not_member"));
    };
    let data = Messages {
        messages: rows.iter().map(wire::record).collect(),
    };
    Ok(ok(StatusCode::OK, "ok", data))
}

/// Searches a room's messages, newest first; members only.
///
/// `GET /api/room/{roomId}/search?q=<text>&limit=<n>`: the messages whose text contains `q`,
/// ignoring case and runs of white space.
#[utoipa::path(
    get,
    path = "/room/{roomId}/search",
    tag = "rooms",
    security(("bearer" = [])),
    params(
        ("roomId" = String, Path, description = "The room's id"),
        ("q" = String, Query, description = "The text to find, 1 to 200 characters; case and runs of white space are ignored"),
        ("limit" = Option<u64>, Query, description = "How many, 1 to 200 (more is taken as 200); 50 without it"),
    ),
    responses(
        (status = 200, description = "The messages found, newest first", body = Envelope<Messages>),
        (status = 400, description = "`q` or `limit` out of bounds", body = Envelope<Null>),
        (status = 401, description = "No token, or one expired or revoked", body = Envelope<Null>),
        (status = 403, description = "The caller is not a member of the room", body = Envelope<Null>),
        (status = 404, description = "No such room", body = Envelope<Null>),
        (status = 503, description = "Storage is unavailable", body = Envelope<Null>),
    ),
)]
pub async fn search(
    State(app): State<Shared>,
    Auth(s): Auth,
    Path(room_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let mut q = None;
    let mut limit = 50;
    for (k, v) in url_pairs(query.as_deref().unwrap_or("")) {
        match k.as_str() {
            "q" => q = Some(v),
            "limit" => limit = positive("limit", &v)?.min(200),
            _ => {}
        }
    }
    let q = q.unwrap_or_default();
    let n = q.trim().chars().count();
    if n == 0 || n > 200 {
        return Err(ApiError::bad_request("q must have 1 to 200 characters"));
    }
    app.own_writes(&s.user_id).await;
    let room = room_row(&app, &room_id).await?;
    let Some(rows) = app.read.search(&room.id, &s.user_id, &q, limit).await? else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only members can search a room's messages",
        )
        .code("not_member"));
    };
    let data = Messages {
        messages: rows.iter().map(wire::record).collect(),
    };
    Ok(ok(StatusCode::OK, "ok", data))
}

/// Splits a query string into decoded pairs.
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escaped = (b == b'%')
            .then(|| Some(hex(*bytes.get(i + 1)?)? * 16 + hex(*bytes.get(i + 2)?)?))
            .flatten();
        match (b, escaped) {
            (_, Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_parameters_are_strict() {
        assert_eq!(positive("limit", "20").unwrap(), 20);
        for bad in ["", "0", "-1", "1.5", "abc", "+3", " 3", "1e3"] {
            assert!(positive("limit", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            url_pairs("limit=5&before=%31%30"),
            [("limit".into(), "5".into()), ("before".into(), "10".into())]
        );
        assert_eq!(decode("%zz%é%4"), "%zz%é%4");
    }
}
