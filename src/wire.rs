//! The JSON shapes of the contract, built from read rows and actor deliveries.

use projections::{RecordRow, RoomRow, UserRow};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds
/// (`2025-11-26T04:01:02.345Z`).
///
/// Written out by hand for the years 0 to 9999: every message and every ack carries a time,
/// and the `time` crate's general formatter was about 2 % of the server's CPU at full load.
/// Other years take that formatter.
pub fn time(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return time_by_crate(ms);
    }
    let (secs, milli) = (in_day / 1000, in_day % 1000);
    let fields = [
        (year, 4),
        (month, 2),
        (day, 2),
        (secs / 3600, 2),
        (secs / 60 % 60, 2),
        (secs % 60, 2),
        (milli, 3),
    ];
    let mut out = String::with_capacity(24);
    for ((value, width), after) in fields.into_iter().zip(["-", "-", "T", ":", ":", ".", "Z"]) {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (value / 10_i64.pow(place) % 10) as u8));
        }
        out.push_str(after);
    }
    out
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// [`time`] by the `time` crate: any year it can represent, the epoch beyond.
fn time_by_crate(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// `userInfo`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo<'a> {
    /// The user's id.
    #[serde(rename = "userId")]
    pub user_id: &'a str,
    /// The name as registered.
    pub name: &'a str,
    /// `/media/<file>`, or `""` for none.
    pub avatar_image: &'a str,
}

/// `userInfo` of a user row.
pub fn user_info(u: &UserRow) -> UserInfo<'_> {
    UserInfo {
        user_id: &u.id,
        name: &u.name,
        avatar_image: &u.avatar_image,
    }
}

/// `room`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Room<'a> {
    /// The room's id.
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its description, possibly empty.
    pub description: &'a str,
    /// The id of its owner (its creator until ownership is transferred); null for a direct
    /// room, which nobody owns.
    pub owner: Option<&'a str>,
    /// `/media/<file>`, or `""` for none.
    pub avatar_image: &'a str,
    /// The join code: 32 lowercase hex characters; `""` for a direct room, which has none.
    pub room_hash_id: &'a str,
    /// When it was created (RFC 3339 UTC with milliseconds).
    #[schema(format = DateTime)]
    pub create_time: String,
    /// Its last join or message.
    #[schema(format = DateTime)]
    pub update_time: String,
    /// How many members it has.
    pub member_count: u64,
    /// Its newest `seq`, as the read tables know it.
    pub last_seq: u64,
    /// `"group"` (every room made by `POST /api/room/create`) or `"direct"` (the room of
    /// two people opened by `POST /api/dm`).
    #[schema(example = "group")]
    pub kind: &'static str,
    /// The caller's role: `owner`, `admin` or `member`; left out where the room is not
    /// anyone's own view (a `room_event` `updated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "member")]
    pub role: Option<&'a str>,
    /// Whether it is read-only.
    pub archived: bool,
    /// Its own retention limit in days, or null for none.
    pub retention_days: Option<u32>,
    /// The caller's read marker (0: nothing read); left out with `role`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_read_seq: Option<u64>,
    /// The caller's unread messages: after the marker, written by others, not deleted; left
    /// out with `role`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<u64>,
}

/// `room` of a room row, with the role it was read with (if any). A direct room's row has
/// no name of its own: the caller puts the other person's there first
/// ([`crate::http`]'s direct rooms).
pub fn room(r: &RoomRow) -> Room<'_> {
    let direct = r.direct.is_some();
    Room {
        kind: if direct { "direct" } else { "group" },
        role: r.role.as_deref(),
        archived: r.archived,
        retention_days: r.retention_days,
        id: &r.id,
        name: &r.name,
        description: &r.description,
        owner: (!direct).then_some(r.owner.as_str()),
        avatar_image: &r.avatar_image,
        room_hash_id: if direct { "" } else { &r.room_hash_id },
        create_time: time(r.create_time),
        update_time: time(r.update_time),
        member_count: r.member_count,
        last_seq: r.last_seq,
        last_read_seq: r.last_read_seq,
        unread: r.unread,
    }
}

/// The `user` inside a message or join notice.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Author {
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub name: String,
    /// `/media/<file>`, or `""` for none.
    #[serde(rename = "avatarImage")]
    pub avatar_image: String,
}

/// `message`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message<'a> {
    /// The sender's own id for the message (a number sent is delivered as its text).
    pub id: &'a str,
    /// The message's position in its room: 1, 2, 3, ... with no gaps.
    pub seq: u64,
    /// The room's version at the message's latest change (its post, an edit, its deletion or
    /// a reaction); live, the version of the change delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The room's id.
    #[serde(rename = "roomId")]
    pub room_id: &'a str,
    /// Who sent it.
    pub user: &'a Author,
    /// The text as last edited (exactly as sent when never edited); empty when `deleted`.
    pub message: &'a str,
    /// Whether this is a placeholder: deleted, or its text gone (its author's account was
    /// erased, or it passed the retention limit). Its `seq` stays.
    pub deleted: bool,
    /// The `seq` of the message of the same room it answers, or null (always null when
    /// `deleted`).
    #[serde(rename = "replyTo")]
    pub reply_to: Option<u64>,
    /// When it was last edited (RFC 3339 UTC with milliseconds), or null.
    #[serde(rename = "editedAt")]
    #[schema(format = DateTime)]
    pub edited_at: Option<String>,
    /// Who reacted with what: `{"<emoji>": [userId, ...]}`, users in the order they reacted;
    /// an emoji nobody uses any more is absent; `{}` for none, and when `deleted`.
    #[schema(value_type = std::collections::BTreeMap<String, Vec<String>>)]
    pub reactions: Reactions<'a>,
    /// Always `"input"`.
    #[serde(rename = "type")]
    #[schema(example = "input")]
    pub kind: &'static str,
    /// When it was stored (RFC 3339 UTC with milliseconds).
    #[schema(format = DateTime)]
    pub time: String,
}

/// A message's reactions as the contract writes them: a map from each symbol to who reacted,
/// in the order the symbols first came.
#[derive(Debug, Clone, Copy)]
pub struct Reactions<'a>(pub &'a [(String, Vec<String>)]);

impl Serialize for Reactions<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (emoji, users) in self.0 {
            map.serialize_entry(emoji, users)?;
        }
        map.end()
    }
}

/// A history row (a message as it is now) as a `message`.
pub fn record(r: &RecordRow) -> Value {
    let author = Author {
        id: r.user_id.clone(),
        name: r.user_name.clone(),
        avatar_image: r.user_avatar.clone(),
    };
    serde_json::to_value(Message {
        id: &r.message_id,
        seq: r.seq,
        version: Some(r.version),
        room_id: &r.room_id,
        user: &author,
        message: if r.deleted { "" } else { &r.message },
        deleted: r.deleted,
        reply_to: r.reply_to.filter(|_| !r.deleted),
        edited_at: r.edited_at.map(time),
        reactions: Reactions(if r.deleted { &[] } else { &r.reactions }),
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
        assert_eq!(super::time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(super::time(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    /// The hand-written formatter agrees with the `time` crate's: at every day boundary of
    /// one whole 400-year cycle of leap years (1900 to 2300), of the first and last thousand
    /// days it covers and of the days beyond them, and at a spread of instants from 0 to
    /// 10,000.
    #[test]
    fn times_match_the_time_crate() {
        const DAY: i64 = 86_400_000;
        let first = -719_528 * DAY; // 0000-01-01
        let last = 2_932_897 * DAY; // 10000-01-01
        let y1900 = -25_567; // 1900-01-01, in days; 146,097 days are 400 years
        let days = (y1900..y1900 + 146_097)
            .chain(first / DAY - 1000..first / DAY + 1000)
            .chain(last / DAY - 1000..last / DAY + 1000);
        let mut checked = 0;
        for day in days {
            let at = day * DAY;
            for ms in [at - 1, at, at + 43_199_999] {
                assert_eq!(super::time(ms), super::time_by_crate(ms), "at {ms} ms");
            }
            checked += 1;
        }
        assert_eq!(checked, 146_097 + 4000);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = (x % (last - first) as u64) as i64 + first;
            assert_eq!(super::time(ms), super::time_by_crate(ms), "at {ms} ms");
        }
        for ms in [
            i64::MIN,
            i64::MAX,
            i64::MIN / 1_000_000,
            i64::MAX / 1_000_000,
        ] {
            assert_eq!(super::time(ms), super::time_by_crate(ms), "at {ms} ms");
        }
    }
}
