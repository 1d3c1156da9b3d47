//! The queries the server answers from the SQLite read tables, and the rows they return
//! (the PostgreSQL queries return the same rows).

use crate::error::Error;
use crate::markers::{READ_COLUMNS, READ_JOIN};
use rusqlite::{Connection, OptionalExtension, params};

pub use super::rows::{RoomRow, UserRow};

/// A `room_member` row with the member's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The member's id.
    pub user_id: String,
    /// Their name as the `user` row gives it ("Deleted user" once erased).
    pub name: String,
    /// Their avatar path or empty.
    pub avatar_image: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// End of their mute (ms), if they were muted; it may have passed.
    pub muted_until: Option<i64>,
    /// When they joined (ms).
    pub joined_at: i64,
}

/// A live `room_invite` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRow {
    /// The invite's id.
    pub invite_id: String,
    /// Its code.
    pub code: String,
    /// Joins made with it.
    pub uses: u64,
    /// Joins it allows; `None`: any number.
    pub max_uses: Option<u64>,
    /// When it stops working (ms); `None`: never.
    pub expires_at: Option<i64>,
    /// Id of the admin who made it.
    pub created_by: String,
    /// When it was made (ms).
    pub created_at: i64,
}

/// A `room_record` row joined with its author and its reactions: a message as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// Room.
    pub room_id: String,
    /// Seq.
    pub seq: u64,
    /// Client id.
    pub message_id: String,
    /// Author id.
    pub user_id: String,
    /// Author name.
    pub user_name: String,
    /// Author avatar.
    pub user_avatar: String,
    /// Text (the latest); empty for a placeholder.
    pub message: String,
    /// Time of the post, ms.
    pub time: i64,
    /// Whether it is a placeholder: deleted, or its text gone (erasure, retention).
    pub deleted: bool,
    /// The room's version at the message's latest change: its post, an edit, its deletion
    /// or a reaction.
    pub version: u64,
    /// The seq of the message it answers; `None` for none, and for a placeholder.
    pub reply_to: Option<u64>,
    /// Time of its latest edit, ms; `None` when never edited.
    pub edited_at: Option<i64>,
    /// Each symbol with the users who reacted with it, in the order of reacting; the symbols in
    /// the order they came (one that nobody uses any more goes, and comes back last); empty for
    /// none, and for a placeholder.
    pub reactions: Vec<(String, Vec<String>)>,
}

/// One text a message had, as its author's export lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextVersion {
    /// The text.
    pub message: String,
    /// When it was written (posted or edited), ms.
    pub time: i64,
}

/// A message of its author with every text it had, for their export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnMessage {
    /// Room.
    pub room_id: String,
    /// Seq.
    pub seq: u64,
    /// Client id.
    pub message_id: String,
    /// Whether it is a placeholder now.
    pub deleted: bool,
    /// Its texts, oldest first: the post, then each edit; those of a deleted message stay
    /// until erasure or retention makes them unreadable.
    pub versions: Vec<TextVersion>,
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        name: r.get(1)?,
        erased: r.get(2)?,
        avatar_image: r.get(3)?,
    })
}

/// The user whose name is `name`, ignoring case.
///
/// # Errors
/// SQLite errors.
pub fn user_by_name(conn: &Connection, name: &str) -> Result<Option<UserRow>, Error> {
    Ok(conn
        .prepare_cached(
            "select id, name, erased_at is not null, avatar_image from user where name_lower = ?1",
        )?
        .query_row([name.to_lowercase()], user_row)
        .optional()?)
}

/// The user with this id.
///
/// # Errors
/// SQLite errors.
pub fn user_by_id(conn: &Connection, id: &str) -> Result<Option<UserRow>, Error> {
    Ok(conn
        .prepare_cached(
            "select id, name, erased_at is not null, avatar_image from user where id = ?1",
        )?
        .query_row([id], user_row)
        .optional()?)
}

/// The columns of a [`RoomRow`] but its role, of `room r`. The member count is counted from
/// the member rows, with the index of their key.
pub(crate) const ROOM_COLUMNS: &str = "r.id, r.name, r.description, r.owner, r.avatar_image, \
     r.room_hash_id, r.create_time, r.update_time, \
     (select count(*) from room_member c where c.room_id = r.id), r.last_seq, r.archived, \
     r.retention_days, r.direct_a, r.direct_b";

fn room_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RoomRow> {
    let role: Option<String> = r.get(14)?;
    let read = |i: usize| match role {
        Some(_) => r.get::<_, Option<i64>>(i).map(|n| n.map(|n| n as u64)),
        None => Ok(None),
    };
    Ok(RoomRow {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        owner: r.get(3)?,
        avatar_image: r.get(4)?,
        room_hash_id: r.get(5)?,
        create_time: r.get(6)?,
        update_time: r.get(7)?,
        member_count: r.get::<_, i64>(8)? as u64,
        last_seq: r.get::<_, i64>(9)? as u64,
        archived: r.get(10)?,
        retention_days: r.get::<_, Option<i64>>(11)?.map(|d| d as u32),
        direct: r
            .get::<_, Option<String>>(12)?
            .zip(r.get(13)?)
            .map(|(a, b)| [a, b]),
        last_read_seq: read(15)?,
        unread: read(16)?,
        role,
    })
}

/// The room with this id.
///
/// # Errors
/// SQLite errors.
pub fn room_by_id(conn: &Connection, id: &str) -> Result<Option<RoomRow>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "select {ROOM_COLUMNS}, null, null, null from room r where r.id = ?1"
        ))?
        .query_row([id], room_row)
        .optional()?)
}

/// The room with this join code.
///
/// # Errors
/// SQLite errors.
pub fn room_by_code(conn: &Connection, code: &str) -> Result<Option<RoomRow>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "select {ROOM_COLUMNS}, null, null, null from room r where r.room_hash_id = ?1"
        ))?
        .query_row([code], room_row)
        .optional()?)
}

/// The rooms `user_id` is a member of, most recently active first, with their role.
///
/// # Errors
/// SQLite errors.
pub fn rooms_of(conn: &Connection, user_id: &str) -> Result<Vec<RoomRow>, Error> {
    let mut s = conn.prepare_cached(&format!(
        "select {ROOM_COLUMNS}, m.role, {READ_COLUMNS} from room_member m
         join room r on r.id = m.room_id {READ_JOIN}
         where m.user_id = ?1 order by r.update_time desc, r.id"
    ))?;
    let rows = s.query_map([user_id], room_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The room with this id, with the role `user_id` has in it (none when not a member).
///
/// # Errors
/// SQLite errors.
pub fn room_for(conn: &Connection, room_id: &str, user_id: &str) -> Result<Option<RoomRow>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "select {ROOM_COLUMNS}, m.role, {READ_COLUMNS} from room r
             left join room_member m on m.room_id = r.id and m.user_id = ?2 {READ_JOIN}
             where r.id = ?1"
        ))?
        .query_row([room_id, user_id], room_row)
        .optional()?)
}

/// The room a join code (by its [`join_code_hash`](events::event::join_code_hash)) ever
/// belonged to, standing or extra, whether it still works or not.
///
/// # Errors
/// SQLite errors.
pub fn room_of_code(conn: &Connection, hash: &[u8; 32]) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached("select room_id from room_code where code_hash = ?1")?
        .query_row([hash.as_slice()], |r| r.get(0))
        .optional()?)
}

/// The SQL of [`members`], shared with PostgreSQL: `$1` the room; `user` quoted for it.
pub(crate) const MEMBERS: &str = "select m.user_id, coalesce(u.name, ''), \
     coalesce(u.avatar_image, ''), m.role, m.muted_until, m.joined_at \
     from room_member m left join \"user\" u on u.id = m.user_id where m.room_id = $1 \
     order by case m.role when 'owner' then 0 when 'admin' then 1 else 2 end, \
              m.joined_at, m.user_id";

/// The members of a room: the owner, the admins, then the members, each by join time.
///
/// # Errors
/// SQLite errors.
pub fn members(conn: &Connection, room_id: &str) -> Result<Vec<MemberRow>, Error> {
    let mut s = conn.prepare_cached(MEMBERS)?;
    let rows = s.query_map([room_id], |r| {
        Ok(MemberRow {
            user_id: r.get(0)?,
            name: r.get(1)?,
            avatar_image: r.get(2)?,
            role: r.get(3)?,
            muted_until: r.get(4)?,
            joined_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The role of `user_id` in `room_id`, `None` when not a member.
///
/// # Errors
/// SQLite errors.
pub fn member_role(
    conn: &Connection,
    room_id: &str,
    user_id: &str,
) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached("select role from room_member where room_id = ?1 and user_id = ?2")?
        .query_row([room_id, user_id], |r| r.get(0))
        .optional()?)
}

/// The SQL of [`invites`], shared with PostgreSQL: `$1` the room, `$2` the time now (ms).
pub(crate) const INVITES: &str = "select invite_id, code, uses, max_uses, expires_at, \
     created_by, created_at from room_invite \
     where room_id = $1 and not revoked and (expires_at is null or expires_at > $2) \
       and (max_uses is null or uses < max_uses) \
     order by created_at, invite_id";

/// The invites of a room that still work at `now_ms`: not revoked, not expired, not used
/// up; oldest first.
///
/// # Errors
/// SQLite errors.
pub fn invites(conn: &Connection, room_id: &str, now_ms: i64) -> Result<Vec<InviteRow>, Error> {
    let mut s = conn.prepare_cached(INVITES)?;
    let rows = s.query_map(params![room_id, now_ms], |r| {
        Ok(InviteRow {
            invite_id: r.get(0)?,
            code: r.get(1)?,
            uses: r.get::<_, i64>(2)? as u64,
            max_uses: r.get::<_, Option<i64>>(3)?.map(|n| n as u64),
            expires_at: r.get(4)?,
            created_by: r.get(5)?,
            created_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every room with a retention limit of its own, with that limit in days.
///
/// # Errors
/// SQLite errors.
pub fn retention_rooms(conn: &Connection) -> Result<Vec<(String, u32)>, Error> {
    let mut s = conn.prepare_cached(
        "select id, retention_days from room where retention_days is not null order by id",
    )?;
    let rows = s.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u32)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `user_id` is a member of `room_id`.
///
/// # Errors
/// SQLite errors.
pub fn is_member(conn: &Connection, room_id: &str, user_id: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached(
            "select exists(select 1 from room_member where room_id = ?1 and user_id = ?2)",
        )?
        .query_row([room_id, user_id], |r| r.get(0))?)
}

/// The columns of a [`RecordRow`] but its reactions, of `room_record rr` joined with its
/// author `u`; shared with PostgreSQL.
pub(crate) const RECORD_COLUMNS: &str = "rr.room_id, rr.seq, rr.message_id, rr.user_id, \
     coalesce(u.name, ''), coalesce(u.avatar_image, ''), rr.message, rr.time, rr.deleted, \
     rr.version, rr.reply_to, rr.edited_at";

/// The tables of [`RECORD_COLUMNS`]; shared with PostgreSQL.
pub(crate) const RECORDS: &str = "room_record rr left join \"user\" u on u.id = rr.user_id";

/// The SQL of the reactions to messages of one room: each symbol in the order it came (and
/// stayed since), its users in the order of reacting; shared with PostgreSQL, which gives `$2`
/// an array of seqs (SQLite one seq).
pub(crate) fn reactions_sql(seqs: &str) -> String {
    format!(
        "select seq, emoji, user_id from room_reaction where room_id = $1 and {seqs}
         order by seq, since, position"
    )
}

/// Adds `(seq, emoji, user)` reactions, in the order of [`reactions_sql`], to the rows of
/// their seqs.
pub(crate) fn add_reactions(
    rows: &mut [RecordRow],
    reactions: impl IntoIterator<Item = (u64, String, String)>,
) {
    let at: std::collections::HashMap<u64, usize> =
        rows.iter().enumerate().map(|(i, r)| (r.seq, i)).collect();
    for (seq, emoji, user) in reactions {
        let Some(row) = at.get(&seq).map(|&i| &mut rows[i]) else {
            continue;
        };
        if row.deleted {
            continue;
        }
        match row.reactions.iter_mut().find(|(e, _)| *e == emoji) {
            Some((_, users)) => users.push(user),
            None => row.reactions.push((emoji, vec![user])),
        }
    }
}

/// A row of [`RECORD_COLUMNS`], without its reactions yet.
fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        room_id: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        message_id: r.get(2)?,
        user_id: r.get(3)?,
        user_name: r.get(4)?,
        user_avatar: r.get(5)?,
        message: r.get(6)?,
        time: r.get(7)?,
        deleted: r.get(8)?,
        version: r.get::<_, i64>(9)? as u64,
        reply_to: r.get::<_, Option<i64>>(10)?.map(|s| s as u64),
        edited_at: r.get(11)?,
        reactions: Vec::new(),
    })
}

/// Fills in the reactions of `rows`, all of `room_id`.
fn with_reactions(
    conn: &Connection,
    room_id: &str,
    mut rows: Vec<RecordRow>,
) -> Result<Vec<RecordRow>, Error> {
    let mut s = conn.prepare_cached(&reactions_sql("seq = $2"))?;
    let mut found = Vec::new();
    for seq in rows.iter().filter(|r| !r.deleted).map(|r| r.seq as i64) {
        let got = s.query_map(params![room_id, seq], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
        })?;
        for g in got {
            found.push(g?);
        }
    }
    add_reactions(&mut rows, found);
    Ok(rows)
}

/// The newest `limit` messages of a room with `seq < before` (all when `None`), oldest first.
///
/// # Errors
/// SQLite errors.
pub fn messages(
    conn: &Connection,
    room_id: &str,
    before: Option<u64>,
    limit: u64,
) -> Result<Vec<RecordRow>, Error> {
    let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
    let mut s = conn.prepare_cached(&format!(
        "select {RECORD_COLUMNS} from {RECORDS}
         where rr.room_id = ?1 and rr.seq < ?2
         order by rr.seq desc limit ?3"
    ))?;
    let rows = s.query_map(params![room_id, before, limit as i64], record_row)?;
    let mut out: Vec<RecordRow> = rows.collect::<Result<_, _>>()?;
    out.reverse();
    with_reactions(conn, room_id, out)
}

/// Message `seq` of a room as it is now.
///
/// # Errors
/// SQLite errors.
pub fn message(conn: &Connection, room_id: &str, seq: u64) -> Result<Option<RecordRow>, Error> {
    let Ok(seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    let row = conn
        .prepare_cached(&format!(
            "select {RECORD_COLUMNS} from {RECORDS} where rr.room_id = ?1 and rr.seq = ?2"
        ))?
        .query_row(params![room_id, seq], record_row)
        .optional()?;
    Ok(with_reactions(conn, room_id, row.into_iter().collect())?.pop())
}

/// Messages of a room whose latest text contains `query` (compared as [`search_text`]),
/// newest first, at most `limit`; never a placeholder.
///
/// [`search_text`]: crate::projection::search_text
///
/// # Errors
/// SQLite errors.
pub fn search(
    conn: &Connection,
    room_id: &str,
    query: &str,
    limit: u64,
) -> Result<Vec<RecordRow>, Error> {
    let pattern = crate::projection::like_pattern(query);
    let mut s = conn.prepare_cached(&format!(
        "select {RECORD_COLUMNS} from {RECORDS}
         where rr.room_id = ?1 and not rr.deleted and rr.search_text like ?2 escape '\\'
         order by rr.seq desc limit ?3"
    ))?;
    let rows = s.query_map(params![room_id, pattern, limit as i64], record_row)?;
    let out = rows.collect::<Result<_, _>>()?;
    with_reactions(conn, room_id, out)
}

/// The SQL of [`messages_by`], shared with PostgreSQL: each message of `$1` with its current
/// text (and that text's time), once per earlier text (or once, with nulls, without any),
/// oldest message first, its earlier texts in the order written. One statement, so that the
/// texts are read as of one moment.
pub(crate) const OWN_MESSAGES: &str = "select rr.room_id, rr.seq, rr.message_id, rr.deleted, \
     rr.message, coalesce(rr.edited_at, rr.time), v.message, v.time \
     from room_record rr left join room_record_version v \
          on v.room_id = rr.room_id and v.seq = rr.seq \
     where rr.user_id = $1 order by rr.time, rr.room_id, rr.seq, v.edit";

/// A row of [`OWN_MESSAGES`].
pub(crate) type OwnRow = (
    String,
    u64,
    String,
    bool,
    String,
    i64,
    Option<String>,
    Option<i64>,
);

/// The rows of [`OWN_MESSAGES`] as messages with their texts.
pub(crate) fn own_messages(rows: impl IntoIterator<Item = OwnRow>) -> Vec<OwnMessage> {
    let mut out: Vec<OwnMessage> = Vec::new();
    // The current text of the last message, added once its earlier ones are in.
    let mut current: Option<TextVersion> = None;
    for (room_id, seq, message_id, deleted, message, time, earlier, earlier_time) in rows {
        let same = out
            .last()
            .is_some_and(|m| m.room_id == room_id && m.seq == seq);
        if !same {
            if let (Some(m), Some(c)) = (out.last_mut(), current.take()) {
                m.versions.push(c);
            }
            current = (!deleted).then_some(TextVersion { message, time });
            out.push(OwnMessage {
                room_id,
                seq,
                message_id,
                deleted,
                versions: Vec::new(),
            });
        }
        if let (Some(message), Some(time), Some(m)) = (earlier, earlier_time, out.last_mut()) {
            m.versions.push(TextVersion { message, time });
        }
    }
    if let (Some(m), Some(c)) = (out.last_mut(), current) {
        m.versions.push(c);
    }
    out
}

/// Every message of `user_id` with its texts, oldest first.
///
/// # Errors
/// SQLite errors.
pub fn messages_by(conn: &Connection, user_id: &str) -> Result<Vec<OwnMessage>, Error> {
    let rows = conn
        .prepare_cached(OWN_MESSAGES)?
        .query_map([user_id], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?
        .collect::<Result<Vec<OwnRow>, _>>()?;
    Ok(own_messages(rows))
}
