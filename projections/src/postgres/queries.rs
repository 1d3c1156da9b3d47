//! The queries the server answers from the PostgreSQL read tables, returning the rows the
//! SQLite queries return.

use crate::error::{Error, pg};
use crate::markers::{READ_COLUMNS, READ_JOIN};
use crate::sqlite::{
    INVITES, InviteRow, MEMBERS, MemberRow, OWN_MESSAGES, OwnMessage, RECORD_COLUMNS, RECORDS,
    ROOM_COLUMNS, RecordRow, RoomRow, UserRow, add_reactions, own_messages, reactions_sql,
};
use deadpool_postgres::Pool;

fn user_row(r: &tokio_postgres::Row) -> UserRow {
    UserRow {
        id: r.get(0),
        name: r.get(1),
        erased: r.get(2),
        avatar_image: r.get(3),
    }
}

fn room_row(r: &tokio_postgres::Row) -> RoomRow {
    let role: Option<String> = r.get(14);
    // The read state is the member's: none for a room read for nobody.
    let read = |i: usize| {
        role.as_ref()
            .and(r.get::<_, Option<i64>>(i))
            .map(|n| n as u64)
    };
    RoomRow {
        id: r.get(0),
        name: r.get(1),
        description: r.get(2),
        owner: r.get(3),
        avatar_image: r.get(4),
        room_hash_id: r.get(5),
        create_time: r.get(6),
        update_time: r.get(7),
        member_count: r.get::<_, i64>(8) as u64,
        last_seq: r.get::<_, i64>(9) as u64,
        archived: r.get(10),
        retention_days: r.get::<_, Option<i64>>(11).map(|d| d as u32),
        direct: r
            .get::<_, Option<String>>(12)
            .zip(r.get::<_, Option<String>>(13))
            .map(|(a, b)| [a, b]),
        last_read_seq: read(15),
        unread: read(16),
        role,
    }
}

pub(crate) async fn user_by(
    pool: &Pool,
    column: &str,
    value: &str,
) -> Result<Option<UserRow>, Error> {
    let c = pool.get().await.map_err(pg)?;
    let sql = format!(
        "select id, name, erased_at is not null, avatar_image from \"user\" where {column} = $1"
    );
    Ok(c.query_opt(&sql, &[&value])
        .await
        .map_err(pg)?
        .as_ref()
        .map(user_row))
}

pub(crate) async fn room_by(
    pool: &Pool,
    column: &str,
    value: &str,
) -> Result<Option<RoomRow>, Error> {
    let c = pool.get().await.map_err(pg)?;
    let sql = format!(
        "select {ROOM_COLUMNS}, null::text, null::bigint, null::bigint from room r where r.{column} = $1"
    );
    Ok(c.query_opt(&sql, &[&value])
        .await
        .map_err(pg)?
        .as_ref()
        .map(room_row))
}

pub(crate) async fn rooms_of(pool: &Pool, user_id: &str) -> Result<Vec<RoomRow>, Error> {
    let c = pool.get().await.map_err(pg)?;
    let sql = format!(
        "select {ROOM_COLUMNS}, m.role, {READ_COLUMNS} from room_member m
         join room r on r.id = m.room_id {READ_JOIN}
         where m.user_id = $1 order by r.update_time desc, r.id"
    );
    Ok(c.query(&sql, &[&user_id])
        .await
        .map_err(pg)?
        .iter()
        .map(room_row)
        .collect())
}

pub(crate) async fn room_for(
    pool: &Pool,
    room_id: &str,
    user_id: &str,
) -> Result<Option<RoomRow>, Error> {
    let c = pool.get().await.map_err(pg)?;
    let sql = format!(
        "select {ROOM_COLUMNS}, m.role, {READ_COLUMNS} from room r
         left join room_member m on m.room_id = r.id and m.user_id = $2 {READ_JOIN}
         where r.id = $1"
    );
    Ok(c.query_opt(&sql, &[&room_id, &user_id])
        .await
        .map_err(pg)?
        .as_ref()
        .map(room_row))
}

pub(crate) async fn room_of_code(pool: &Pool, hash: &[u8; 32]) -> Result<Option<String>, Error> {
    let c = pool.get().await.map_err(pg)?;
    Ok(c.query_opt(
        "select room_id from room_code where code_hash = $1",
        &[&hash.as_slice()],
    )
    .await
    .map_err(pg)?
    .map(|r| r.get(0)))
}

pub(crate) async fn members(pool: &Pool, room_id: &str) -> Result<Vec<MemberRow>, Error> {
    let c = pool.get().await.map_err(pg)?;
    Ok(c.query(MEMBERS, &[&room_id])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| MemberRow {
            user_id: r.get(0),
            name: r.get(1),
            avatar_image: r.get(2),
            role: r.get(3),
            muted_until: r.get(4),
            joined_at: r.get(5),
        })
        .collect())
}

pub(crate) async fn member_role(
    pool: &Pool,
    room_id: &str,
    user_id: &str,
) -> Result<Option<String>, Error> {
    let c = pool.get().await.map_err(pg)?;
    Ok(c.query_opt(
        "select role from room_member where room_id = $1 and user_id = $2",
        &[&room_id, &user_id],
    )
    .await
    .map_err(pg)?
    .map(|r| r.get(0)))
}

pub(crate) async fn invites(
    pool: &Pool,
    room_id: &str,
    now_ms: i64,
) -> Result<Vec<InviteRow>, Error> {
    let c = pool.get().await.map_err(pg)?;
    Ok(c.query(INVITES, &[&room_id, &now_ms])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| InviteRow {
            invite_id: r.get(0),
            code: r.get(1),
            uses: r.get::<_, i64>(2) as u64,
            max_uses: r.get::<_, Option<i64>>(3).map(|n| n as u64),
            expires_at: r.get(4),
            created_by: r.get(5),
            created_at: r.get(6),
        })
        .collect())
}

pub(crate) async fn retention_rooms(pool: &Pool) -> Result<Vec<(String, u32)>, Error> {
    let c = pool.get().await.map_err(pg)?;
    Ok(c.query(
        "select id, retention_days from room where retention_days is not null order by id",
        &[],
    )
    .await
    .map_err(pg)?
    .iter()
    .map(|r| (r.get(0), r.get::<_, i64>(1) as u32))
    .collect())
}

/// A row of [`RECORD_COLUMNS`], without its reactions yet.
fn record_row(r: &tokio_postgres::Row) -> RecordRow {
    RecordRow {
        room_id: r.get(0),
        seq: r.get::<_, i64>(1) as u64,
        message_id: r.get(2),
        user_id: r.get(3),
        user_name: r.get(4),
        user_avatar: r.get(5),
        message: r.get(6),
        time: r.get(7),
        deleted: r.get(8),
        version: r.get::<_, i64>(9) as u64,
        reply_to: r.get::<_, Option<i64>>(10).map(|s| s as u64),
        edited_at: r.get(11),
        reactions: Vec::new(),
    }
}

/// `rows` of `room_id` with their reactions, read in one query.
async fn with_reactions(
    c: &deadpool_postgres::Object,
    room_id: &str,
    rows: Vec<tokio_postgres::Row>,
) -> Result<Vec<RecordRow>, Error> {
    let mut out: Vec<RecordRow> = rows.iter().map(record_row).collect();
    let seqs: Vec<i64> = out
        .iter()
        .filter(|r| !r.deleted)
        .map(|r| r.seq as i64)
        .collect();
    if seqs.is_empty() {
        return Ok(out);
    }
    let found = c
        .query(&reactions_sql("seq = any($2)"), &[&room_id, &seqs])
        .await
        .map_err(pg)?;
    add_reactions(
        &mut out,
        found
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get(1), r.get(2))),
    );
    Ok(out)
}

pub(crate) async fn member_messages(
    pool: &Pool,
    room_id: &str,
    user_id: &str,
    before: Option<u64>,
    limit: u64,
) -> Result<Option<Vec<RecordRow>>, Error> {
    let c = pool.get().await.map_err(pg)?;
    let member: bool = c
        .query_one(
            "select exists(select 1 from room_member where room_id = $1 and user_id = $2)",
            &[&room_id, &user_id],
        )
        .await
        .map_err(pg)?
        .get(0);
    if !member {
        return Ok(None);
    }
    let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
    let mut rows = c
        .query(
            &format!(
                "select {RECORD_COLUMNS} from {RECORDS}
                 where rr.room_id = $1 and rr.seq < $2
                 order by rr.seq desc limit $3"
            ),
            &[&room_id, &before, &(limit as i64)],
        )
        .await
        .map_err(pg)?;
    rows.reverse();
    with_reactions(&c, room_id, rows).await.map(Some)
}

pub(crate) async fn message(
    pool: &Pool,
    room_id: &str,
    seq: u64,
) -> Result<Option<RecordRow>, Error> {
    let Ok(seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    let c = pool.get().await.map_err(pg)?;
    let rows = c
        .query(
            &format!(
                "select {RECORD_COLUMNS} from {RECORDS} where rr.room_id = $1 and rr.seq = $2"
            ),
            &[&room_id, &seq],
        )
        .await
        .map_err(pg)?;
    Ok(with_reactions(&c, room_id, rows).await?.pop())
}

pub(crate) async fn search(
    pool: &Pool,
    room_id: &str,
    query: &str,
    limit: u64,
) -> Result<Vec<RecordRow>, Error> {
    let pattern = crate::projection::like_pattern(query);
    let c = pool.get().await.map_err(pg)?;
    let rows = c
        .query(
            &format!(
                "select {RECORD_COLUMNS} from {RECORDS}
                 where rr.room_id = $1 and not rr.deleted
                   and rr.search_text like $2 escape '\\'
                 order by rr.seq desc limit $3"
            ),
            &[&room_id, &pattern, &(limit as i64)],
        )
        .await
        .map_err(pg)?;
    with_reactions(&c, room_id, rows).await
}

/// Every message of `user_id` with its texts, oldest first.
///
/// # Errors
/// Database errors.
pub async fn messages_by(pool: &Pool, user_id: &str) -> Result<Vec<OwnMessage>, Error> {
    let client = pool.get().await.map_err(pg)?;
    let rows = client.query(OWN_MESSAGES, &[&user_id]).await.map_err(pg)?;
    Ok(own_messages(rows.iter().map(|r| {
        (
            r.get(0),
            r.get::<_, i64>(1) as u64,
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
        )
    })))
}
