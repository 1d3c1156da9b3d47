//! The read tables in PostgreSQL: the sink that applies [`Change`]s with the checkpoint in the
//! same transaction, and the queries the server answers from them.

use crate::plan::Plan;
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
/// or below the checkpoint are skipped. Into the [`Target::Shadow`], the commit does not wait
/// for the write-ahead log to reach the disk.
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
    if target == Target::Shadow {
        // A rebuild's batch need not wait for its log flush: lost in a crash, it goes with its
        // checkpoint (same transaction) and the rebuild resumes before it. Nothing reads the
        // shadow before the switch, whose commit does wait, flushing every batch before it.
        tx.batch_execute("set local synchronous_commit = off")
            .await
            .map_err(pg)?;
    }
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
    apply_plan(tx, &Plan::new(changes), target).await?;
    tx.execute(
        "update projection_checkpoint set position = $2 where projection = $1",
        &[&name, &(at as i64)],
    )
    .await
    .map_err(pg)?;
    Ok(at)
}

/// Applies a plan with at most one statement per table and one for the room updates, each
/// taking its rows as arrays (`unnest`), so a batch costs the same few round trips whatever
/// its size.
async fn apply_plan(tx: &impl GenericClient, plan: &Plan, target: Target) -> Result<(), Error> {
    let mut users = Users::default();
    let mut rooms = Rooms::default();
    let mut members = Members::default();
    let mut records = Records::default();
    for change in &plan.inserts {
        match change {
            Change::InsertUser {
                id,
                name,
                password_hash,
                created_at,
            } => {
                users.id.push(id);
                users.name.push(name);
                users.name_lower.push(name.to_lowercase());
                users.password_hash.push(password_hash);
                users.created_at.push(*created_at);
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
                rooms.id.push(id);
                rooms.name.push(name);
                rooms.description.push(description);
                rooms.owner.push(owner);
                rooms.avatar_image.push(avatar_image);
                rooms.room_hash_id.push(room_hash_id);
                rooms.time.push(*time);
            }
            Change::InsertMember {
                room_id,
                user_id,
                joined_at,
            } => {
                members.room_id.push(room_id);
                members.user_id.push(user_id);
                members.joined_at.push(*joined_at);
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
                records.room_id.push(room_id);
                records.seq.push(*seq as i64);
                records.message_id.push(message_id);
                records.user_id.push(user_id);
                records.message.push(message);
                records.time.push(*time);
                records.event_id.push(event_id.as_slice());
                records.position.push(*position as i64);
                records.search_text.push(search_text);
            }
            // Plan::new keeps the room updates out of the inserts.
            Change::CountMember { .. } | Change::TouchRoom { .. } => {}
        }
    }
    if !users.id.is_empty() {
        tx.execute(
            &format!(
                "insert into \"{}\" (id, name, name_lower, password_hash, created_at)
                 select * from unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                      $5::int8[])",
                target.table("user")
            ),
            &[
                &users.id,
                &users.name,
                &users.name_lower,
                &users.password_hash,
                &users.created_at,
            ],
        )
        .await
        .map_err(pg)?;
    }
    if !rooms.id.is_empty() {
        tx.execute(
            &format!(
                "insert into {} (id, name, description, owner, avatar_image, room_hash_id,
                                 create_time, update_time)
                 select id, name, description, owner, avatar_image, room_hash_id, time, time
                 from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::int8[])
                      as v(id, name, description, owner, avatar_image, room_hash_id, time)",
                target.table("room")
            ),
            &[
                &rooms.id,
                &rooms.name,
                &rooms.description,
                &rooms.owner,
                &rooms.avatar_image,
                &rooms.room_hash_id,
                &rooms.time,
            ],
        )
        .await
        .map_err(pg)?;
    }
    if !members.room_id.is_empty() {
        tx.execute(
            &format!(
                // A member already in the table (a second join, possible only in a log
                // written by a faulty writer) must not stop the projection.
                "insert into {} (room_id, user_id, joined_at)
                 select * from unnest($1::text[], $2::text[], $3::int8[])
                 on conflict do nothing",
                target.table("room_member")
            ),
            &[&members.room_id, &members.user_id, &members.joined_at],
        )
        .await
        .map_err(pg)?;
    }
    if !records.room_id.is_empty() {
        tx.execute(
            &format!(
                "insert into {} (room_id, seq, message_id, user_id, message, time,
                                 event_id, position, search_text)
                 select * from unnest($1::text[], $2::int8[], $3::text[], $4::text[],
                                      $5::text[], $6::int8[], $7::bytea[], $8::int8[],
                                      $9::text[])",
                target.table("room_record")
            ),
            &[
                &records.room_id,
                &records.seq,
                &records.message_id,
                &records.user_id,
                &records.message,
                &records.time,
                &records.event_id,
                &records.position,
                &records.search_text,
            ],
        )
        .await
        .map_err(pg)?;
    }
    if !plan.rooms.is_empty() {
        let mut id = Vec::with_capacity(plan.rooms.len());
        let mut joins = Vec::with_capacity(plan.rooms.len());
        let mut last_seq = Vec::with_capacity(plan.rooms.len());
        let mut update_time = Vec::with_capacity(plan.rooms.len());
        for u in &plan.rooms {
            id.push(u.room_id.as_str());
            joins.push(u.members);
            last_seq.push(u.last_seq);
            update_time.push(u.update_time);
        }
        // One row per room (Plan::new), so each room is updated once; `greatest` ignores the
        // null `last_seq` of a room without messages.
        tx.execute(
            &format!(
                "update {} as r set member_count = r.member_count + u.members,
                                    last_seq = greatest(r.last_seq, u.last_seq),
                                    update_time = greatest(r.update_time, u.update_time)
                 from unnest($1::text[], $2::int8[], $3::int8[], $4::int8[])
                      as u(id, members, last_seq, update_time)
                 where r.id = u.id",
                target.table("room")
            ),
            &[&id, &joins, &last_seq, &update_time],
        )
        .await
        .map_err(pg)?;
    }
    Ok(())
}

/// The columns of new `user` rows.
#[derive(Default)]
struct Users<'a> {
    id: Vec<&'a str>,
    name: Vec<&'a str>,
    name_lower: Vec<String>,
    password_hash: Vec<&'a str>,
    created_at: Vec<i64>,
}

/// The columns of new `room` rows.
#[derive(Default)]
struct Rooms<'a> {
    id: Vec<&'a str>,
    name: Vec<&'a str>,
    description: Vec<&'a str>,
    owner: Vec<&'a str>,
    avatar_image: Vec<&'a str>,
    room_hash_id: Vec<&'a str>,
    time: Vec<i64>,
}

/// The columns of new `room_member` rows.
#[derive(Default)]
struct Members<'a> {
    room_id: Vec<&'a str>,
    user_id: Vec<&'a str>,
    joined_at: Vec<i64>,
}

/// The columns of new `room_record` rows.
#[derive(Default)]
struct Records<'a> {
    room_id: Vec<&'a str>,
    seq: Vec<i64>,
    message_id: Vec<&'a str>,
    user_id: Vec<&'a str>,
    message: Vec<&'a str>,
    time: Vec<i64>,
    event_id: Vec<&'a [u8]>,
    position: Vec<i64>,
    search_text: Vec<&'a str>,
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
