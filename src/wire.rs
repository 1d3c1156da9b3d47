//! The JSON shapes of the contract, built from read rows and actor deliveries.

use projections::{RecordRow, RoomRow, UserRow};
use serde::Serialize;
use serde_json::{Value, json};

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// `userInfo`.
pub fn user_info(u: &UserRow) -> Value {
    json!({"userId": u.id, "name": u.name, "avatar_image": u.avatar_image})
}

/// `room`.
pub fn room(r: &RoomRow) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "owner": r.owner,
        "avatar_image": r.avatar_image,
        "room_hash_id": r.room_hash_id,
        "create_time": time(r.create_time),
        "update_time": time(r.update_time),
        "member_count": r.member_count,
        "last_seq": r.last_seq,
    })
}

/// The `user` inside a message or join notice.
#[derive(Debug, Clone, Serialize)]
pub struct Author {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Avatar path or empty.
    #[serde(rename = "avatarImage")]
    pub avatar_image: String,
}

/// `message`.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    /// The client's id.
    pub id: &'a str,
    /// Seq.
    pub seq: u64,
    /// Room.
    #[serde(rename = "roomId")]
    pub room_id: &'a str,
    /// Author.
    pub user: &'a Author,
    /// Text.
    pub message: &'a str,
    /// Always "input".
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Time.
    pub time: String,
}

/// A history row as a `message`.
pub fn record(r: &RecordRow) -> Value {
    let author = Author {
        id: r.user_id.clone(),
        name: r.user_name.clone(),
        avatar_image: r.user_avatar.clone(),
    };
    serde_json::to_value(Message {
        id: &r.message_id,
        seq: r.seq,
        room_id: &r.room_id,
        user: &author,
        message: &r.message,
        kind: "input",
        time: time(r.time),
    })
    .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(super::time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::time(1_764_129_662_345), "2025-11-26T04:01:02.345Z");
    }
}
