//! The read tables in PostgreSQL: the sink that applies [`Change`]s with the checkpoint in the
//! same transaction, and the queries the server answers from them.

use crate::projection::{Change, Projection};
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

pub(crate) fn pg(e: impl std::fmt::Display) -> Error {
    Error::Task(format!("postgres: {e}"))
}

/// The checkpoint of `projection`.
///
/// # Errors
/// When the database cannot be read.
pub async fn checkpoint(c: &impl GenericClient, projection: Projection) -> Result<u64, Error> {
    let row = c
        .query_opt(
            "select position from projection_checkpoint where projection = $1",
            &[&projection.name()],
        )
        .await
        .map_err(pg)?;
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
    batch: &[Recorded],
) -> Result<u64, Error> {
    let mut client = pool.get().await.map_err(pg)?;
    let tx = client.transaction().await.map_err(pg)?;
    let mut at = checkpoint(&tx, projection).await?;
    for rec in batch {
        if rec.position <= at {
            continue;
        }
        let event: Event = rec.decode().map_err(|e| Error::Decode {
            position: rec.position,
            reason: e.to_string(),
        })?;
        for change in projection.changes(rec, &event) {
            apply_change(&tx, &change).await?;
        }
        at = rec.position;
    }
    tx.execute(
        "insert into projection_checkpoint (projection, position) values ($1, $2)
         on conflict (projection) do update set position = excluded.position",
        &[&projection.name(), &(at as i64)],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(at)
}

async fn apply_change(tx: &impl GenericClient, change: &Change) -> Result<(), Error> {
    match change {
        Change::InsertUser {
            id,
            name,
            password_hash,
            created_at,
        } => {
            tx.execute(
                "insert into \"user\" (id, name, name_lower, password_hash, created_at)
                 values ($1, $2, $3, $4, $5)",
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
                "insert into room (id, name, description, owner, avatar_image, room_hash_id,
                                   create_time, update_time)
                 values ($1, $2, $3, $4, $5, $6, $7, $7)",
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
                "update room set member_count = member_count + 1,
                                 update_time = greatest(update_time, $2)
                 where id = $1",
                &[room_id, time],
            )
            .await
        }
        Change::TouchRoom { room_id, seq, time } => {
            tx.execute(
                "update room set last_seq = greatest(last_seq, $2),
                                 update_time = greatest(update_time, $3)
                 where id = $1",
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
                "insert into room_member (room_id, user_id, joined_at) values ($1, $2, $3)",
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
            time,
            event_id,
            position,
        } => {
            tx.execute(
                "insert into room_record (room_id, seq, message_id, user_id, message, time,
                                          event_id, position)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    room_id,
                    &(*seq as i64),
                    message_id,
                    user_id,
                    message,
                    time,
                    &event_id.as_slice(),
                    &(*position as i64),
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
    let mut out: Vec<RecordRow> = rows
        .iter()
        .map(|r| RecordRow {
            room_id: r.get(0),
            seq: r.get::<_, i64>(1) as u64,
            message_id: r.get(2),
            user_id: r.get(3),
            user_name: r.get(4),
            user_avatar: r.get(5),
            message: r.get(6),
            time: r.get(7),
        })
        .collect();
    out.reverse();
    Ok(Some(out))
}
