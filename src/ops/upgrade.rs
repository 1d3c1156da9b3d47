//! `chatroom upgrade`: copies a log written by an earlier version (log format 1, personal data
//! in clear) into a new log under today's rules, keeping the old one until the operator
//! removes it.
//!
//! The old log is verified first (as `chatroom verify` does). Then every event is copied in
//! global order, after a first [`LogStarted`], with its id, stream version and time: names are
//! sealed for their user, a name's claim moves to the stream named by its keyed hash, password
//! hashes go to the credential table, join codes are kept as their hash and a sealed copy, and
//! message texts are sealed for their author, room and period. The new log is written beside
//! the old one and only takes its place once complete ([`embedded`], [`postgres`]), so a crash
//! at any point leaves the old log whole and the command can simply be run again.

mod embedded;
mod postgres;

use super::progress::Bar;
use crate::auth::Sessions;
use crate::config::StoreArgs;
use anyhow::{Context, bail};
use events::codec::{DecodeError, legacy};
use events::event::{
    Event, LOG_FORMAT, LOG_STREAM, LogStarted, MessagePosted, RoomCreated, UserNameClaimed,
    UserRegistered, join_code_hash, username_stream,
};
use events::keys::Keys;
use events::seal::{Subject, period_of};
use events::{NewEvent, Recorded, Store};
use std::collections::HashMap;

/// Events read from the old log at a time.
const PAGE: usize = 5000;

/// Runs `chatroom upgrade`: exit status 0 when the log was upgraded or needed nothing, 1 when
/// the old log fails verification (and nothing was changed).
///
/// # Errors
/// When the data cannot be read or written; the old log is then left as it was.
pub async fn upgrade(args: StoreArgs) -> anyhow::Result<i32> {
    #[cfg(feature = "eventstoredb")]
    if args.eventstore_url.is_some() {
        bail!(
            "`chatroom upgrade` copies logs of the embedded store and of PostgreSQL; an \
             EventStoreDB log is not upgraded in place"
        );
    }
    match &args.database_url {
        None => embedded::upgrade(&args.data_dir).await,
        Some(url) => postgres::upgrade(url).await,
    }
}

/// Looks at the old log: whether it needs an upgrade, and whether it verifies. `Ok(events)`
/// when it is an old log that verifies; else what was found is printed and the command's exit
/// code comes back: 0 when there is nothing to upgrade, 1 when the old log fails verification.
async fn check(old: &dyn Store, whose: &str) -> anyhow::Result<Result<u64, i32>> {
    let nothing = match crate::storage::format(old).await? {
        crate::storage::Format::Current => {
            format!("{whose} is already in today's format ({LOG_FORMAT}): nothing to upgrade")
        }
        crate::storage::Format::Empty => format!(
            "{whose} holds no event yet: nothing to upgrade (the server starts it under \
             today's rules)"
        ),
        crate::storage::Format::Old => String::new(),
    };
    if !nothing.is_empty() {
        println!("{nothing}");
        return Ok(Err(0));
    }
    let head = *old.head().borrow();
    let mut bar = Bar::new("verifying the old log", 0);
    let (count, finding) = super::verify::check(old, |at| bar.update(at, head)).await?;
    bar.finish(head, head);
    Ok(match finding {
        None => Ok(count),
        Some(f) => {
            println!(
                "TAMPERED: event {} at position {} (stream {}, version {}): {}\n\
                 the old log fails verification, so it was not upgraded; nothing was changed",
                f.event_id, f.position, f.stream, f.version, f.problem
            );
            Err(1)
        }
    })
}

/// Where the new log's events go, in order; each batch is durable once `write` returns.
pub(crate) trait NewLog {
    /// Writes `events` (positions left to the log) after those already written.
    async fn write(&mut self, events: &[Recorded]) -> anyhow::Result<()>;
}

/// What the copy did, for the operator.
#[derive(Debug, Default)]
struct Copied {
    events: u64,
    users: u64,
    rooms: u64,
    messages: u64,
}

impl std::fmt::Display for Copied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events copied ({} users, {} rooms, {} messages); names, join codes and message \
             texts are sealed, password hashes moved to the credential table",
            self.events, self.users, self.rooms, self.messages
        )
    }
}

/// Copies the whole old log into `out` under today's rules.
async fn copy(
    old: &dyn Store,
    total: u64,
    keys: &Keys,
    sessions: &Sessions,
    out: &mut impl NewLog,
) -> anyhow::Result<Copied> {
    let mut heads: HashMap<String, (u64, [u8; 32])> = HashMap::new();
    let started = Event::LogStarted(LogStarted { format: LOG_FORMAT });
    let first = chain(&mut heads, LOG_STREAM, 1, NewEvent::new(&started))?;
    out.write(&[first]).await?;
    let mut copied = Copied::default();
    let mut bar = Bar::new("copying", 0);
    let mut after = 0;
    loop {
        let page = old.read_all(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        let mut batch = Vec::with_capacity(page.len());
        for rec in &page {
            let (stream, event) = transform(rec, keys, sessions)
                .await
                .with_context(|| format!("event {} at position {}", rec.event_id, rec.position))?;
            match &event {
                Event::UserRegistered(_) => copied.users += 1,
                Event::RoomCreated(_) => copied.rooms += 1,
                Event::MessagePosted(_) => copied.messages += 1,
                _ => {}
            }
            let new = NewEvent::with_id(rec.event_id, &event, rec.recorded_at);
            batch.push(chain(&mut heads, &stream, rec.version, new)?);
        }
        out.write(&batch).await?;
        copied.events += batch.len() as u64;
        bar.update(after, total);
    }
    bar.finish(after, total.max(after));
    Ok(copied)
}

/// Chains `event` to its new stream as version `version`, which must follow the stream's last
/// version: versions are kept, so two old streams must not become one.
fn chain(
    heads: &mut HashMap<String, (u64, [u8; 32])>,
    stream: &str,
    version: u64,
    event: NewEvent,
) -> anyhow::Result<Recorded> {
    let head = heads.get(stream).copied();
    let at = head.map_or(0, |(v, _)| v);
    if version != at + 1 {
        bail!(
            "it would be version {} of stream {stream}, not {version} as in the old log: two old \
             streams fall into one (two user names equal ignoring case and spaces?)",
            at + 1
        );
    }
    let rec = events::envelope::seal(stream, head, std::slice::from_ref(&event))
        .pop()
        .expect("one event in, one out");
    heads.insert(stream.to_owned(), (rec.version, rec.hash));
    Ok(rec)
}

/// Today's stream and event for an old event, sealing what it holds in clear (and storing a
/// password hash in the credential table).
async fn transform(
    rec: &Recorded,
    keys: &Keys,
    sessions: &Sessions,
) -> anyhow::Result<(String, Event)> {
    let old = match rec.decode() {
        Ok(Event::LogStarted(_)) => {
            bail!("a LogStarted event amid a log of an earlier format: the log is not one log")
        }
        Ok(event) => return Ok((rec.stream_id.clone(), event)),
        Err(DecodeError::Legacy { .. }) => {
            legacy::decode(&rec.event_type, rec.schema_version, &rec.payload)?
        }
        Err(e) => return Err(e.into()),
    };
    let stream = rec.stream_id.clone();
    Ok(match old {
        legacy::Legacy::UserNameClaimed(c) => (
            username_stream(&keys.name_hash(&c.name)),
            Event::UserNameClaimed(UserNameClaimed { user_id: c.user_id }),
        ),
        legacy::Legacy::UserRegistered(r) => {
            sessions
                .set_password(&r.user_id, &r.password_hash)
                .await
                .context("storing a password hash in the credential table")?;
            let name = keys
                .seal(&Subject::User(r.user_id.clone()), &r.name)
                .await?;
            let event = Event::UserRegistered(UserRegistered {
                user_id: r.user_id,
                name,
            });
            (stream, event)
        }
        legacy::Legacy::RoomCreated(r) => {
            let join_code = keys
                .seal(&Subject::Room(r.room_id.clone()), &r.join_code)
                .await?;
            let event = Event::RoomCreated(RoomCreated {
                join_code_hash: join_code_hash(&r.join_code),
                join_code,
                room_id: r.room_id,
                name: r.name,
                description: r.description,
                owner: r.owner,
                avatar_image: r.avatar_image,
            });
            (stream, event)
        }
        legacy::Legacy::MemberJoined(m) => (stream, Event::MemberJoined(m)),
        legacy::Legacy::MessagePosted(m) => {
            let period = period_of(rec.recorded_at);
            let subject = Subject::Text {
                user: m.user_id.clone(),
                room: m.room_id.clone(),
                period,
            };
            let text = keys.seal(&subject, &m.text).await?;
            let event = Event::MessagePosted(MessagePosted {
                room_id: m.room_id,
                seq: m.seq,
                message_id: m.message_id,
                user_id: m.user_id,
                text,
                kind: m.kind,
                reply_to: None,
                period,
            });
            (stream, event)
        }
    })
}
