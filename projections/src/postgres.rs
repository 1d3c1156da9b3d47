//! The read tables in PostgreSQL: the sink that applies [`Change`]s with the checkpoint in the
//! same transaction, and the queries the server answers from them.

use crate::projection::{Change, Projection, Target};
use crate::sqlite::{Error, RecordRow, RoomRow, UserRow};
use deadpool_postgres::{GenericClient, Pool};
use events::migrate::Migration;
use events::{Event, Recorded};

/// The read tables' migration for PostgreSQL.
pub const MIGRATION: Migration = Migration {
    version: 2,
    name: "read_tables",
    sql: include_str!("../../migrations/postgres/0002_read_tables.sql"),
};

/// The search column's migration for PostgreSQL.
pub const SEARCH_MIGRATION: Migration = Migration {
    version: 4,
    name: "search_text",
    sql: include_str!("../../migrations/postgres/0004_search_text.sql"),
};

pub(crate) fn pg(e: impl std::fmt::Display) -> Error {
    Error::Task(format!("postgres: {e}"))
}

/// The checkpoint of `projection`.
///
/// # Errors
/// When the database cannot be read.
pub async fn checkpoint(c: &impl GenericClient, projection: Projection) -> Result<u64, Error> {
    checkpoint_of(c, &Target::Live.checkpoint(projection), false).await
}

/// The stored checkpoint called `name`; with `lock`, its row is locked for the transaction
/// (creating it at 0 first), so a rebuild's switch and a worker's batch take turns.
///
/// # Errors
/// When the database cannot be read.
pub async fn checkpoint_of(c: &impl GenericClient, name: &str, lock: bool) -> Result<u64, Error> {
    if lock {
        c.execute(
            "insert into projection_checkpoint (projection, position) values ($1, 0)
             on conflict (projection) do nothing",
            &[&name],
        )
        .await
        .map_err(pg)?;
    }
    let sql = if lock {
        "select position from projection_checkpoint where projection = $1 for update"
    } else {
        "select position from projection_checkpoint where projection = $1"
    };
    let row = c.query_opt(sql, &[&name]).await.map_err(pg)?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
}

/// Applies a batch to one projection and moves its checkpoint, in one transaction; events at
/// or below the checkpoint are skipped.
///
/// # Errors
/// Database errors or an undecodable event; nothing of the batch is applied then.
pub async fn apply_batch(
    pool: &Pool,
    projection: Projection,
    target: Target,
    batch: &[Recorded],
) -> Result<u64, Error> {
    let mut client = pool.get().await.map_err(pg)?;
    let tx = client.transaction().await.map_err(pg)?;
    let at = apply_in(&tx, projection, target, batch).await?;
    tx.commit().await.map_err(pg)?;
    Ok(at)
}

/// Applies a batch inside a transaction the caller holds, moving the target's checkpoint
/// (whose row it locks first).
///
/// # Errors
/// Database errors or an undecodable event.
pub async fn apply_in(
    tx: &impl GenericClient,
    projection: Projection,
    target: Target,
    batch: &[Recorded],
) -> Result<u64, Error> {
    let name = target.checkpoint(projection);
    let mut at = checkpoint_of(tx, &name, true).await?;
    let mut changes = Vec::new();
    for rec in batch {
        if rec.position <= at {
            continue;
        }
        let event: Event = rec.decode().map_err(|e| Error::Decode {
            position: rec.position,
            reason: e.to_string(),
        })?;
        changes.extend(projection.changes(rec, &event));
        at = rec.position;
    }
    // Pipelined: every statement is sent before the first answer is awaited (tokio-postgres
    // keeps them in order on the connection), so a batch costs about one round trip, not one
    // per row.
    for chunk in changes.chunks(500) {
        futures::future::try_join_all(chunk.iter().map(|c| apply_change(tx, c, target))).await?;
    }
    tx.execute(
        "update projection_checkpoint set position = $2 where projection = $1",
        &[&name, &(at as i64)],
    )
    .await
    .map_err(pg)?;
    Ok(at)
}

async fn apply_change(
    tx: &impl GenericClient,
    change: &Change,
    target: Target,
) -> Result<(), Error> {
    match change {
        Change::InsertUser {
            id,
            name,
            password_hash,
            created_at,
        } => {
            tx.execute(
                &format!(
                    "insert into \"{}\" (id, name, name_lower, password_hash, created_at)
                     values ($1, $2, $3, $4, $5)",
                    target.table("user")
                ),
                &[id, name, &name.to_lowercase(), password_hash, created_at],
            )
            .await
        }
        Change::InsertRoom {
            id,
            name,
            description,
            owner,
            avatar_image,
            room_hash_id,
            time,
        } => {
            tx.execute(
                &format!(
                    "insert into {} (id, name, description, owner, avatar_image, room_hash_id,
                                     create_time, update_time)
                     values ($1, $2, $3, $4, $5, $6, $7, $7)",
                    target.table("room")
                ),
                &[
                    id,
                    name,
                    description,
                    owner,
                    avatar_image,
                    room_hash_id,
                    time,
                ],
            )
            .await
        }
        Change::CountMember { room_id, time } => {
            tx.execute(
                &format!(
                    "update {} set member_count = member_count + 1,
                                   update_time = greatest(update_time, $2)
                     where id = $1",
                    target.table("room")
                ),
                &[room_id, time],
            )
            .await
        }
        Change::TouchRoom { room_id, seq, time } => {
            tx.execute(
                &format!(
                    "update {} set last_seq = greatest(last_seq, $2),
                                   update_time = greatest(update_time, $3)
                     where id = $1",
                    target.table("room")
                ),
                &[room_id, &(*seq as i64), time],
            )
            .await
        }
        Change::InsertMember {
            room_id,
            user_id,
            joined_at,
        } => {
            tx.execute(
                &format!(
                    "insert into {} (room_id, user_id, joined_at) values ($1, $2, $3)
                     on conflict do nothing",
                    target.table("room_member")
                ),
                &[room_id, user_id, joined_at],
            )
            .await
        }
        Change::InsertRecord {
            room_id,
            seq,
            message_id,
            user_id,
            message,
            search_text,
            time,
            event_id,
            position,
        } => {
            tx.execute(
                &format!(
                    "insert into {} (room_id, seq, message_id, user_id, message, time,
                                     event_id, position, search_text)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    target.table("room_record")
                ),
                &[
                    room_id,
                    &(*seq as i64),
                    message_id,
                    user_id,
                    message,
                    time,
                    &event_id.as_slice(),
                    &(*position as i64),
                    search_text,
                ],
            )
            .await
        }
    }
    .map(|_| ())
    .map_err(pg)
}

fn user_row(r: &tokio_postgres::Row) -> UserRow {
    UserRow {
        id: r.get(0),
        name: r.get(1),
        password_hash: r.get(2),
        avatar_image: r.get(3),
    }
}

fn room_row(r: &tokio_postgres::Row) -> RoomRow {
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
    }
}

const ROOM_COLUMNS: &str = "r.id, r.name, r.description, r.owner, r.avatar_image, \
     r.room_hash_id, r.create_time, r.update_time, r.member_count, r.last_seq";

pub(crate) async fn user_by(
    pool: &Pool,
    column: &str,
    value: &str,
) -> Result<Option<UserRow>, Error> {
    let c = pool.get().await.map_err(pg)?;
    let sql =
        format!("select id, name, password_hash, avatar_image from \"user\" where {column} = $1");
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
    let sql = format!("select {ROOM_COLUMNS} from room r where r.{column} = $1");
    Ok(c.query_opt(&sql, &[&value])
        .await
        .map_err(pg)?
        .as_ref()
        .map(room_row))
}

pub(crate) async fn rooms_of(pool: &Pool, user_id: &str) -> Result<Vec<RoomRow>, Error> {
    let c = pool.get().await.map_err(pg)?;
    let sql = format!(
        "select {ROOM_COLUMNS} from room_member m join room r on r.id = m.room_id
         where m.user_id = $1 order by r.update_time desc, r.id"
    );
    Ok(c.query(&sql, &[&user_id])
        .await
        .map_err(pg)?
        .iter()
        .map(room_row)
        .collect())
}

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
    }
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
    let rows = c
        .query(
            "select rr.room_id, rr.seq, rr.message_id, rr.user_id, coalesce(u.name, ''),
                    coalesce(u.avatar_image, ''), rr.message, rr.time
             from room_record rr left join \"user\" u on u.id = rr.user_id
             where rr.room_id = $1 and rr.seq < $2
             order by rr.seq desc limit $3",
            &[&room_id, &before, &(limit as i64)],
        )
        .await
        .map_err(pg)?;
    let mut out: Vec<RecordRow> = rows.iter().map(record_row).collect();
    out.reverse();
    Ok(Some(out))
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
            "select rr.room_id, rr.seq, rr.message_id, rr.user_id, coalesce(u.name, ''),
                    coalesce(u.avatar_image, ''), rr.message, rr.time
             from room_record rr left join \"user\" u on u.id = rr.user_id
             where rr.room_id = $1 and rr.search_text like $2 escape '\\'
             order by rr.seq desc limit $3",
            &[&room_id, &pattern, &(limit as i64)],
        )
        .await
        .map_err(pg)?;
    Ok(rows.iter().map(record_row).collect())
}
