//! Rooms: create, list mine, join by code, and history.

use super::error::{ApiError, ok};
use super::extract::{Auth, Body};
use crate::app::Shared;
use crate::{avatar, wire};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

/// Body of `POST /api/room/create`.
#[derive(Debug, Deserialize)]
pub struct NewRoom {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "avatarImage")]
    avatar_image: String,
}

/// Body of `POST /api/room/join`.
#[derive(Debug, Deserialize)]
pub struct JoinRoom {
    #[serde(rename = "roomIdHash")]
    room_id_hash: String,
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

/// `POST /api/room/create`.
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
    let room = room_row(&app, &created.room_id).await?;
    Ok(ok(
        StatusCode::CREATED,
        "room created",
        json!({"room": wire::room(&room)}),
    ))
}

/// `GET /api/room/list`.
pub async fn list(State(app): State<Shared>, Auth(s): Auth) -> Result<Response, ApiError> {
    app.own_writes(&s.user_id).await;
    let rooms = app.read.rooms_of(&s.user_id).await?;
    let list: Vec<_> = rooms.iter().map(wire::room).collect();
    Ok(ok(StatusCode::OK, "ok", json!({"roomList": list})))
}

fn is_join_code(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `POST /api/room/join`.
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
    let room = app
        .read
        .room_by_code(&code)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no room has this join code"))?;
    let joined = app.rooms.join(&room.id, &s.user_id).await?;
    app.wrote(&s.user_id, joined.position);
    app.wait_for(joined.position).await;
    let room = room_row(&app, &room.id).await?;
    Ok(ok(
        StatusCode::OK,
        "joined",
        json!({"room": wire::room(&room)}),
    ))
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

/// `GET /api/room/{roomId}/messages?before=<seq>&limit=<n>`.
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
        ));
    };
    let list: Vec<_> = rows.iter().map(wire::record).collect();
    Ok(ok(StatusCode::OK, "ok", json!({"messages": list})))
}

/// `GET /api/room/{roomId}/search?q=<text>&limit=<n>`: the room's messages whose text contains
/// `q` (ignoring case and runs of white space), newest first.
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
        ));
    };
    let list: Vec<_> = rows.iter().map(wire::record).collect();
    Ok(ok(StatusCode::OK, "ok", json!({"messages": list})))
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
