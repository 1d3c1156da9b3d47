//! The PostgreSQL log's writer: one task per process that takes whatever appends are waiting
//! and writes them in one transaction, committing once (`synchronous_commit` stays on) before
//! answering them all.
//!
//! When it knows the heads of the group's streams (it remembers those it last read or wrote)
//! a group takes one round trip: the begin, the advisory lock, the insert of every event, the
//! notification and the commit, pipelined. The unique index on `(stream_id, version)` checks
//! the known heads: a stale one (another process appended since) makes the insert collide
//! with the event that process wrote, the pipeline's commit then rolls back, and the group is
//! written in two round trips instead, the first reading the heads of its streams under the
//! lock, so checking expected versions against them is exact.
//!
//! Every append transaction takes the same transaction-level advisory lock first, so appends
//! from all processes commit one after another, each visible before the next takes a
//! position: a reader by position never sees position N while a smaller one is still to
//! commit (the sequence-gap trap).

use crate::envelope::{NewEvent, Recorded, seal};
use crate::memory::check_expected;
use crate::store::{Error, Expected};
use deadpool_postgres::Pool;
use futures::TryFutureExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::error::SqlState;

/// Key of the advisory lock every append transaction takes.
pub const APPEND_LOCK: i64 = 0x6368_6174_6c6f_6721; // "chatlog!"
/// The NOTIFY channel.
pub(crate) const CHANNEL: &str = "chatroom_log";
/// Most appends committed together.
const MAX_GROUP: usize = 1024;

/// One append, waiting for the writer.
pub struct WriteRequest {
    /// The stream appended to.
    pub stream: String,
    /// What the caller expects the stream to be at.
    pub expected: Expected,
    /// The events, in order.
    pub events: Vec<NewEvent>,
    /// Where the answer goes once the group is committed.
    pub reply: oneshot::Sender<Result<Vec<Recorded>, Error>>,
}

/// The error with its causes: a database error's own text ("db error") says nothing of what
/// the database refused, its source does.
pub(crate) fn unavailable(e: impl std::error::Error) -> Error {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Unavailable(text)
}

/// Moves `head` forward to `position` (never back).
pub(crate) fn bump(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|h| {
        let moved = position > *h;
        *h = (*h).max(position);
        moved
    });
}

/// Writes groups until every sender is gone. `writing_since` holds when the group being
/// written began (milliseconds since the epoch; 0 between groups).
pub(crate) async fn writer_loop(
    pool: Pool,
    mut rx: mpsc::UnboundedReceiver<WriteRequest>,
    head: watch::Sender<u64>,
    writer_id: String,
    writing_since: Arc<AtomicI64>,
) {
    let mut known = Known::default();
    while let Some(first) = rx.recv().await {
        writing_since.store(crate::now_ms(), Ordering::Release);
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let results = match write_group(&pool, &group, &writer_id, &mut known).await {
            Ok(r) => r,
            Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
        };
        if let Some(p) = results
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|v| v.last()).map(|e| e.position))
            .max()
        {
            bump(&head, p);
        }
        for (req, result) in group.into_iter().zip(results) {
            let _ = req.reply.send(result);
        }
        writing_since.store(0, Ordering::Release);
    }
}

/// The newest event of each of a group's streams.
pub const HEADS_OF: &str = "select s.id, e.version, e.hash from unnest($1::text[]) as s(id)
     cross join lateral (
         select version, hash from event where stream_id = s.id
         order by version desc limit 1
     ) e";

/// Every accepted event of a group, in order.
const INSERT: &str = "insert into event (stream_id, version, event_id, event_type, schema_version,
                        recorded_at, payload, hash)
     select s, v, id, t, sv, ra, p, h
     from unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::smallint[],
                 $6::bigint[], $7::bytea[], $8::bytea[])
          with ordinality as u(s, v, id, t, sv, ra, p, h, n)
     order by n
     returning position";

/// The listeners' wake-up, with the log's newest position and the writer's id: under the
/// append lock that position is the group's last event, so it needs no answer from the insert
/// and goes out with it.
pub const NOTIFY: &str =
    "select pg_notify($1, (select max(position) from event)::text || ' ' || $2)";

/// The heads (version and hash of the last event) of the streams this process's writer last
/// read or wrote. They may be stale: another process may have appended since.
#[derive(Default)]
pub struct Known {
    /// Stream to (version, hash) of its last event as this writer last saw it.
    pub heads: HashMap<String, (u64, [u8; 32])>,
}

/// Streams whose heads the writer keeps at most; past that it forgets them all and reads
/// them again as they come.
const KNOWN_MAX: usize = 100_000;

impl Known {
    fn learn(&mut self, stream: &str, head: (u64, [u8; 32])) {
        if self.heads.len() >= KNOWN_MAX && !self.heads.contains_key(stream) {
            self.heads.clear();
        }
        self.heads.insert(stream.to_owned(), head);
    }

    /// Learns the heads that a group's successful appends left.
    pub fn learn_results(&mut self, results: &[Result<Vec<Recorded>, Error>]) {
        for recs in results.iter().flatten() {
            if let Some(last) = recs.last() {
                self.learn(&last.stream_id, (last.version, last.hash));
            }
        }
    }
}

/// Writes a group (see the module's documentation). A failed statement aborts the
/// transaction, and the commit pipelined behind it then rolls back: nothing of the group is
/// stored, and every request in it is answered `Unavailable`. The known heads are then
/// forgotten: a database that lost commits (restored, or failed over to a replica that was
/// behind) comes back through errors, and must not be trusted to hold the heads this writer
/// saw.
async fn write_group(
    pool: &Pool,
    group: &[WriteRequest],
    writer_id: &str,
    known: &mut Known,
) -> Result<Vec<Result<Vec<Recorded>, Error>>, Error> {
    let client = pool.get().await.map_err(unavailable)?;
    let statements = Statements::prepare(&client).await?;
    let written = match write_known(&client, &statements, group, writer_id, known).await {
        Ok(None) => write_read(&client, &statements, group, writer_id, known).await,
        Ok(Some(results)) => Ok(results),
        Err(e) => Err(e),
    };
    match written {
        Ok(results) => {
            known.learn_results(&results);
            Ok(results)
        }
        Err(e) => {
            known.heads.clear();
            release_after_failure(client).await;
            Err(e)
        }
    }
}

/// Returns a connection to its pool after a failed transaction. The transaction may still be
/// open (aborted, or cut short before its commit): it is ended first, or the connection
/// dropped when it cannot be.
pub async fn release_after_failure(client: deadpool_postgres::Client) {
    if client.batch_execute("rollback").await.is_err() {
        drop(deadpool_postgres::Object::take(client));
    }
}

/// The writer's statements, from the connection's statement cache. Statements polled together
/// are pipelined: sent at once, answered in order. So all are prepared before any is sent: one
/// still to prepare would go out after those polled with it, the commit before the insert.
/// (A statement given as text is parsed again each time, one more round trip per statement
/// while holding the lock.)
pub struct Statements {
    begin: tokio_postgres::Statement,
    lock: tokio_postgres::Statement,
    heads_of: tokio_postgres::Statement,
    insert: tokio_postgres::Statement,
    notify: tokio_postgres::Statement,
    commit: tokio_postgres::Statement,
}

impl Statements {
    /// Prepares them on `client` (once per connection: they come from its statement cache).
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the database refuses one.
    pub async fn prepare(client: &deadpool_postgres::Client) -> Result<Self, Error> {
        let statement = |sql: &'static str| async move {
            client.prepare_cached(sql).await.map_err(unavailable)
        };
        Ok(Self {
            begin: statement("begin").await?,
            lock: statement("select pg_advisory_xact_lock($1)").await?,
            heads_of: statement(HEADS_OF).await?,
            insert: statement(INSERT).await?,
            notify: statement(NOTIFY).await?,
            commit: statement("commit").await?,
        })
    }
}

/// What became of each request of a group.
enum Outcome {
    /// Answered without writing.
    Done(Result<Vec<Recorded>, Error>),
    /// Its events are written.
    Accepted(Vec<Recorded>),
}

/// Decides each request of a group in order, as if appended one after another, against the
/// streams' `heads` (moved by each accepted request).
fn decide(group: &[WriteRequest], heads: &mut HashMap<String, (u64, [u8; 32])>) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(group.len());
    for req in group {
        if req.events.is_empty() {
            outcomes.push(Outcome::Done(Err(Error::Empty)));
            continue;
        }
        let head = heads.get(&req.stream).copied();
        if let Err(e) = check_expected(&req.stream, req.expected, head.map(|(v, _)| v)) {
            outcomes.push(Outcome::Done(Err(e)));
            continue;
        }
        let recs = seal(&req.stream, head, &req.events);
        if let Some(last) = recs.last() {
            heads.insert(req.stream.clone(), (last.version, last.hash));
        }
        outcomes.push(Outcome::Accepted(recs));
    }
    outcomes
}

/// A group's accepted events as the insert's columns, in order.
struct Rows<'a> {
    stream_ids: Vec<&'a str>,
    versions: Vec<i64>,
    event_ids: Vec<uuid::Uuid>,
    types: Vec<&'a str>,
    schemas: Vec<i16>,
    times: Vec<i64>,
    payloads: Vec<&'a [u8]>,
    hashes: Vec<&'a [u8]>,
}

impl<'a> Rows<'a> {
    fn of(outcomes: &'a [Outcome]) -> Self {
        let rows: Vec<&Recorded> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Accepted(recs) => Some(recs.iter()),
                Outcome::Done(_) => None,
            })
            .flatten()
            .collect();
        Rows {
            stream_ids: rows.iter().map(|r| r.stream_id.as_str()).collect(),
            versions: rows.iter().map(|r| r.version as i64).collect(),
            event_ids: rows.iter().map(|r| r.event_id).collect(),
            types: rows.iter().map(|r| r.event_type.as_str()).collect(),
            schemas: rows.iter().map(|r| r.schema_version as i16).collect(),
            times: rows.iter().map(|r| r.recorded_at).collect(),
            payloads: rows.iter().map(|r| r.payload.as_slice()).collect(),
            hashes: rows.iter().map(|r| r.hash.as_slice()).collect(),
        }
    }

    fn len(&self) -> usize {
        self.versions.len()
    }

    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 8] {
        [
            &self.stream_ids,
            &self.versions,
            &self.event_ids,
            &self.types,
            &self.schemas,
            &self.times,
            &self.payloads,
            &self.hashes,
        ]
    }
}

/// The answers to a group's requests, once its accepted events have their positions (the
/// insert returns them in the order of its rows, which is the order of `outcomes`).
fn answers(
    outcomes: Vec<Outcome>,
    inserted: Vec<tokio_postgres::Row>,
) -> Vec<Result<Vec<Recorded>, Error>> {
    let mut positions = inserted.iter().map(|row| row.get::<_, i64>(0) as u64);
    outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Done(r) => r,
            Outcome::Accepted(mut recs) => {
                for r in &mut recs {
                    r.position = positions.next().unwrap_or(0);
                }
                Ok(recs)
            }
        })
        .collect()
}

/// The group in one round trip on the known heads; `None`, having written nothing, when a
/// head is unknown, an expected version does not match the known one, or the insert collides.
///
/// # Errors
/// [`Error::Unavailable`] when the database fails; nothing of the group is stored.
pub async fn write_known(
    client: &deadpool_postgres::Client,
    st: &Statements,
    group: &[WriteRequest],
    writer_id: &str,
    known: &Known,
) -> Result<Option<Vec<Result<Vec<Recorded>, Error>>>, Error> {
    let mut heads = HashMap::new();
    for req in group {
        match known.heads.get(&req.stream) {
            Some(head) => {
                heads.insert(req.stream.clone(), *head);
            }
            // A stream to create: its version 1, if it exists, makes the insert collide.
            None if req.expected == Expected::NoStream => {}
            None => return Ok(None),
        }
    }
    let outcomes = decide(group, &mut heads);
    if outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Done(Err(Error::Conflict { .. }))))
    {
        // The known head may be stale: only the database can say it is a conflict.
        return Ok(None);
    }
    let rows = Rows::of(&outcomes);
    if rows.len() == 0 {
        return Ok(None);
    }
    let written = {
        let params = rows.params();
        let notice: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&CHANNEL, &writer_id];
        futures::try_join!(
            client.execute(&st.begin, &[]),
            client.execute(&st.lock, &[&APPEND_LOCK]),
            client.query(&st.insert, &params),
            client.execute(&st.notify, &notice),
            client.execute(&st.commit, &[]),
        )
    };
    let accepted = rows.len();
    drop(rows);
    match written {
        Ok((_, _, inserted, _, _)) if inserted.len() == accepted => {
            Ok(Some(answers(outcomes, inserted)))
        }
        Ok(_) => Err(Error::Unavailable(
            "the insert stored another number of events than it was given".into(),
        )),
        // The commit sent behind the insert rolled the transaction back.
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(None),
        Err(e) => Err(unavailable(e)),
    }
}

/// The group in two round trips, reading the heads of its streams under the lock.
///
/// # Errors
/// [`Error::Unavailable`] or [`Error::Corrupt`]; nothing of the group is stored.
pub async fn write_read(
    client: &deadpool_postgres::Client,
    st: &Statements,
    group: &[WriteRequest],
    writer_id: &str,
    known: &mut Known,
) -> Result<Vec<Result<Vec<Recorded>, Error>>, Error> {
    let mut streams: Vec<&str> = group.iter().map(|r| r.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let streams = [&streams as &(dyn tokio_postgres::types::ToSql + Sync)];
    let (_, _, head_rows) = futures::try_join!(
        client.execute(&st.begin, &[]),
        client.execute(&st.lock, &[&APPEND_LOCK]),
        client.query(&st.heads_of, &streams),
    )
    .map_err(unavailable)?;
    let mut heads: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    for row in head_rows {
        let hash: Vec<u8> = row.get(2);
        let hash = hash
            .try_into()
            .map_err(|_| Error::Corrupt("a stored hash has the wrong length".into()))?;
        let stream: String = row.get(0);
        let head = (row.get::<_, i64>(1) as u64, hash);
        known.learn(&stream, head);
        heads.insert(stream, head);
    }
    let outcomes = decide(group, &mut heads);
    let rows = Rows::of(&outcomes);
    if rows.len() == 0 {
        client.execute(&st.commit, &[]).await.map_err(unavailable)?;
        drop(rows);
        return Ok(answers(outcomes, Vec::new()));
    }
    let accepted = rows.len();
    let params = rows.params();
    let notice: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&CHANNEL, &writer_id];
    let (inserted, _, _) = futures::try_join!(
        client.query(&st.insert, &params).map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                // Impossible under the lock unless someone writes without it.
                Error::Unavailable(format!("the log changed under the append lock: {e}"))
            } else {
                unavailable(e)
            }
        }),
        client.execute(&st.notify, &notice).map_err(unavailable),
        client.execute(&st.commit, &[]).map_err(unavailable),
    )?;
    drop(rows);
    if inserted.len() != accepted {
        // Positions are unknown, so nothing is acknowledged.
        return Err(Error::Unavailable(
            "the insert stored another number of events than it was given".into(),
        ));
    }
    Ok(answers(outcomes, inserted))
}
