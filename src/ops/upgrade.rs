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
//! at any point leaves the old log whole and the command can simply be run again. A log in
//! EventStoreDB is copied into another server, whose events cannot be taken back, so there a
//! second run resumes: each event already in the new log is checked against the old one it
//! stands for and kept ([`eventstore`]).

mod embedded;
#[cfg(any(feature = "eventstoredb", test))]
mod eventstore;
mod postgres;

use super::progress::Bar;
use crate::auth::Sessions;
use crate::config::Upgrade;
use anyhow::{Context, bail};
use events::codec::{DecodeError, legacy};
use events::envelope::GENESIS;
use events::event::{
    Event, LOG_FORMAT, LOG_STREAM, LogStarted, MessagePosted, RoomCreated, UserNameClaimed,
    UserRegistered, join_code_hash, username_stream,
};
use events::keys::Keys;
use events::seal::{Sealed, Subject, period_of};
use events::{NewEvent, Recorded, Store};
use std::collections::{HashMap, VecDeque};
use std::path::Path;

/// Events read from the old log at a time.
const PAGE: usize = 5000;

/// Runs `chatroom upgrade`: exit status 0 when the log was upgraded or needed nothing, 1 when
/// the old log fails verification (and nothing was changed).
///
/// # Errors
/// When the data cannot be read or written; the old log is then left as it was.
pub async fn upgrade(args: Upgrade) -> anyhow::Result<i32> {
    match target(&args)? {
        Target::Folder(dir) => embedded::upgrade(dir).await,
        Target::Postgres(url) => postgres::upgrade(url).await,
        #[cfg(feature = "eventstoredb")]
        Target::EventStore { old, new } => eventstore::upgrade(&args.store, old, new).await,
    }
}

/// The log that the arguments name, and where its copy goes.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// The data folder's log, copied beside it.
    Folder(&'a Path),
    /// The database's log, copied into a schema of its own.
    Postgres(&'a str),
    /// The log on the server `old`, copied to the server `new`.
    #[cfg(feature = "eventstoredb")]
    EventStore { old: &'a str, new: &'a str },
}

/// Checks the arguments before anything is opened.
fn target(args: &Upgrade) -> anyhow::Result<Target<'_>> {
    #[cfg(feature = "eventstoredb")]
    match (
        args.store.eventstore_url.as_deref(),
        args.to_eventstore_url.as_deref(),
    ) {
        (Some(old), Some(new)) => {
            let same = events::esdb::same_server(old, new).context(
                "reading the connection strings of --eventstore-url and --to-eventstore-url",
            )?;
            if same {
                bail!(
                    "--eventstore-url and --to-eventstore-url name the same server: the upgraded \
                     log must go to another one (a server holds one log, whose streams cannot be \
                     renamed, and the old log is kept until you remove it)"
                );
            }
            return Ok(Target::EventStore { old, new });
        }
        (Some(_), None) => bail!(
            "the log is in EventStoreDB, which holds one log per server and cannot rename \
             streams: name the server to write the upgraded log to with --to-eventstore-url \
             (the old log stays on --eventstore-url)"
        ),
        (None, Some(_)) => bail!(
            "--to-eventstore-url is where an EventStoreDB log is copied to: name the server of \
             the old log with --eventstore-url too"
        ),
        (None, None) => {}
    }
    Ok(match &args.store.database_url {
        None => Target::Folder(&args.store.data_dir),
        Some(url) => Target::Postgres(url),
    })
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

    /// Up to `limit` of the events already in the new log after position `after`, in order:
    /// an interrupted run's, which the copy checks and keeps. A new log that each run starts
    /// over holds none.
    async fn written(&mut self, _after: u64, _limit: usize) -> anyhow::Result<Vec<Recorded>> {
        Ok(Vec::new())
    }
}

/// The events an interrupted run left in the new log, a page at a time, up to the first
/// missing one; once it is missing nothing more is read, as the copy writes from there.
#[derive(Default)]
struct Written {
    page: VecDeque<Recorded>,
    after: u64,
    done: bool,
}

impl Written {
    async fn next(&mut self, out: &mut impl NewLog) -> anyhow::Result<Option<Recorded>> {
        if self.page.is_empty() && !self.done {
            self.page = out.written(self.after, PAGE).await?.into();
            match self.page.back() {
                Some(last) => self.after = last.position,
                None => self.done = true,
            }
        }
        Ok(self.page.pop_front())
    }
}

/// What the copy did, for the operator.
#[derive(Debug, Default)]
struct Copied {
    events: u64,
    /// Events an interrupted run had written, checked and kept.
    kept: u64,
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
            self.events + self.kept,
            self.users,
            self.rooms,
            self.messages
        )?;
        if self.kept > 0 {
            write!(
                f,
                "; {} of them were already there from an interrupted run, checked and kept",
                self.kept
            )?;
        }
        Ok(())
    }
}

/// The error of an event in the new log that is not the copy of the old event it stands for.
fn not_ours(w: &Recorded, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "the new log's event {} at position {} (stream {}, version {}) is not this upgrade's \
         copy of the old log: {why}. Nothing more was written: is the new log another one, or \
         are the key store and credentials not those of the run that wrote it?",
        w.event_id,
        w.position,
        w.stream_id,
        w.version
    )
}

/// The first field in which two events differ, positions aside.
fn difference(a: &Recorded, b: &Recorded) -> Option<&'static str> {
    [
        (a.stream_id != b.stream_id, "stream"),
        (a.version != b.version, "version"),
        (a.event_id != b.event_id, "event id"),
        (a.event_type != b.event_type, "type"),
        (a.schema_version != b.schema_version, "schema version"),
        (a.recorded_at != b.recorded_at, "time"),
        (a.payload != b.payload, "payload"),
        (a.hash != b.hash, "hash"),
    ]
    .into_iter()
    .find_map(|(differs, what)| differs.then_some(what))
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
    let mut written = Written::default();
    match written.next(out).await? {
        // Its id and time are an interrupted run's own.
        Some(first) => {
            let starts = first.stream_id == LOG_STREAM
                && first.version == 1
                && first.hash == first.expected_hash(&GENESIS)
                && matches!(first.decode(), Ok(Event::LogStarted(s)) if s.format == LOG_FORMAT);
            if !starts {
                return Err(not_ours(&first, "a copy begins with today's LogStarted"));
            }
            heads.insert(LOG_STREAM.to_owned(), (1, first.hash));
        }
        None => {
            let started = Event::LogStarted(LogStarted { format: LOG_FORMAT });
            let first = chain(&mut heads, LOG_STREAM, 1, NewEvent::new(&started))?;
            out.write(&[first]).await?;
        }
    }
    let mut copied = Copied::default();
    let mut bar = Bar::new("copying", 0);
    let mut after = 0;
    loop {
        let page = old.read_all(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        let mut batch = Vec::with_capacity(page.len());
        for rec in &page {
            let there = written.next(out).await?;
            let existing = match &there {
                Some(w) => Some(w.decode().map_err(|e| not_ours(w, e))?),
                None => None,
            };
            let sealing = Sealing {
                keys,
                sessions,
                existing: existing.as_ref(),
            };
            let transformed = transform(rec, keys, &sealing).await;
            let (stream, event) = match (&there, transformed) {
                (_, Ok(t)) => t,
                (Some(w), Err(e)) => return Err(not_ours(w, format!("{e:#}"))),
                (None, Err(e)) => {
                    return Err(e.context(format!(
                        "event {} at position {}",
                        rec.event_id, rec.position
                    )));
                }
            };
            match &event {
                Event::UserRegistered(_) => copied.users += 1,
                Event::RoomCreated(_) => copied.rooms += 1,
                Event::MessagePosted(_) => copied.messages += 1,
                _ => {}
            }
            let new = NewEvent::with_id(rec.event_id, &event, rec.recorded_at);
            let chained = chain(&mut heads, &stream, rec.version, new);
            match there {
                None => batch.push(chained?),
                Some(w) => {
                    let chained = chained.map_err(|e| not_ours(&w, e))?;
                    if let Some(what) = difference(&chained, &w) {
                        return Err(not_ours(
                            &w,
                            format!(
                                "its {what} differs from that of old event {} at position {}",
                                rec.event_id, rec.position
                            ),
                        ));
                    }
                    copied.kept += 1;
                }
            }
        }
        if !batch.is_empty() {
            out.write(&batch).await?;
        }
        copied.events += batch.len() as u64;
        bar.update(after, total);
    }
    bar.finish(after, total.max(after));
    if let Some(extra) = written.next(out).await? {
        return Err(not_ours(&extra, "the old log has no event left to copy"));
    }
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

/// How [`transform`] gets the sealed form of a text and what it does with a password hash.
struct Sealing<'a> {
    keys: &'a Keys,
    sessions: &'a Sessions,
    /// The event an interrupted run wrote for this one, when the copy checks it: its sealed
    /// text is taken once it opens to the old clear text, and the password hash must already
    /// be in the credential table. Nothing is then changed.
    existing: Option<&'a Event>,
}

impl Sealing<'_> {
    async fn seal(&self, subject: &Subject, clear: &str) -> anyhow::Result<Sealed> {
        let Some(existing) = self.existing else {
            return Ok(self.keys.seal(subject, clear).await?);
        };
        let sealed = match existing {
            Event::UserRegistered(e) => &e.name,
            Event::RoomCreated(e) => &e.join_code,
            Event::MessagePosted(e) => &e.text,
            other => bail!("it is a {} event", other.type_name()),
        };
        match self.keys.open(subject, sealed).await? {
            Some(text) if text == clear => Ok(sealed.clone()),
            Some(_) => bail!("its sealed text is not the old event's"),
            None => bail!("the key store holds no key of {subject} to open its sealed text"),
        }
    }

    async fn password(&self, user_id: &str, hash: &str) -> anyhow::Result<()> {
        if self.existing.is_none() {
            return self
                .sessions
                .set_password(user_id, hash)
                .await
                .context("storing a password hash in the credential table");
        }
        if self.sessions.password_of(user_id).await?.as_deref() != Some(hash) {
            bail!("the credential table does not hold the password hash of user {user_id}");
        }
        Ok(())
    }
}

/// Today's stream and event for an old event, sealing what it holds in clear (and storing a
/// password hash in the credential table), as `sealing` says.
async fn transform(
    rec: &Recorded,
    keys: &Keys,
    sealing: &Sealing<'_>,
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
            sealing.password(&r.user_id, &r.password_hash).await?;
            let name = sealing
                .seal(&Subject::User(r.user_id.clone()), &r.name)
                .await?;
            let event = Event::UserRegistered(UserRegistered {
                user_id: r.user_id,
                name,
            });
            (stream, event)
        }
        legacy::Legacy::RoomCreated(r) => {
            let join_code = sealing
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
            let text = sealing.seal(&subject, &m.text).await?;
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
