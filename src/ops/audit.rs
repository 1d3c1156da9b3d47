//! `chatroom audit`: a room's or a user's history, straight from the log, streamed; sealed
//! fields are opened with the key store where their keys remain ("(erased)" where not), and
//! join codes are never printed.

use super::times::parse_time;
use crate::config::{Audit, Format};
use crate::storage::Storage;
use events::event::{join_code_hash, room_stream, user_stream, username_stream};
use events::keys::Keys;
use events::{Event, Recorded, Store};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// Events read per page: output streams, memory stays flat whatever the room's size.
const PAGE: usize = 1000;

struct Names<'a> {
    store: &'a dyn Store,
    keys: &'a Keys,
    known: HashMap<String, String>,
}

impl Names<'_> {
    /// A user's name as the log last gives it, opened with the key store: "Deleted user"
    /// once they are erased.
    async fn of(&mut self, user_id: &str) -> anyhow::Result<String> {
        if let Some(n) = self.known.get(user_id) {
            return Ok(n.clone());
        }
        let mut name = String::new();
        let mut from = 1;
        loop {
            let page = self
                .store
                .read_stream(&user_stream(user_id), from, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            from = last.version + 1;
            for rec in &page {
                let event = rec.decode()?;
                if matches!(event, Event::UserRegistered(_) | Event::UserRenamed(_)) {
                    name = opened(self.keys, &event).await?;
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        self.known.insert(user_id.to_owned(), name.clone());
        Ok(name)
    }
}

/// What an audit shows of a sealed field: its text when the key store still has its key, else
/// that it was erased.
const ERASED: &str = "(erased)";

async fn opened(keys: &Keys, event: &Event) -> anyhow::Result<String> {
    let Some((subject, sealed)) = event.sealed() else {
        return Ok(String::new());
    };
    Ok(keys
        .open(&subject, sealed)
        .await?
        .unwrap_or_else(|| ERASED.to_owned()))
}

/// One line of output.
struct Line {
    rec: Recorded,
    room_id: Option<String>,
    user_id: Option<String>,
    user_name: Option<String>,
    seq: Option<u64>,
    what: String,
}

/// What an event says, for a person: sealed fields opened where their keys remain; join codes
/// and credentials are never shown.
struct Said {
    room_id: Option<String>,
    /// Who did it.
    user_id: Option<String>,
    /// Whom a moderator's or owner's act was about.
    target: Option<String>,
    seq: Option<u64>,
    what: String,
}

async fn describe(keys: &Keys, names: &mut Names<'_>, event: &Event) -> anyhow::Result<Said> {
    let clear = opened(keys, event).await?;
    let said = |room: Option<&String>, user: Option<&String>, what: String| Said {
        room_id: room.cloned(),
        user_id: user.cloned(),
        target: None,
        seq: None,
        what,
    };
    // An act on someone: "<verb> <id> (<name>)" plus whatever follows.
    let on = |room: &String, by: Option<&String>, whom: &String, verb: &str, rest: String| {
        let room = room.clone();
        let by = by.cloned();
        let whom = whom.clone();
        let verb = verb.to_owned();
        async move {
            let name = names.of(&whom).await?;
            anyhow::Ok(Said {
                room_id: Some(room),
                user_id: by,
                what: format!("{verb} {whom} ({name:?}){rest}"),
                target: Some(whom),
                seq: None,
            })
        }
    };
    let reason = |sealed: bool| {
        if sealed {
            format!(", reason {clear:?}")
        } else {
            String::new()
        }
    };
    let until = |t: Option<i64>| match t {
        Some(t) => format!(" until {}", crate::wire::time(t)),
        None => " until lifted".to_owned(),
    };
    Ok(match event {
        Event::LogStarted(l) => said(None, None, format!("log started (format {})", l.format)),
        Event::UserNameClaimed(c) => said(None, Some(&c.user_id), "claimed a name".into()),
        Event::UserNameReleased(c) => said(None, Some(&c.user_id), "let a name go".into()),
        Event::UserRegistered(u) => {
            said(None, Some(&u.user_id), format!("registered as {clear:?}"))
        }
        Event::UserRenamed(u) => said(None, Some(&u.user_id), format!("renamed to {clear:?}")),
        Event::AvatarChanged(u) => said(
            None,
            Some(&u.user_id),
            format!("changed avatar to {clear:?}"),
        ),
        Event::PasswordChanged(u) => said(None, Some(&u.user_id), "changed password".into()),
        Event::UserErased(u) => said(
            None,
            Some(&u.user_id),
            if u.by_operator {
                "erased by an operator"
            } else {
                "erased their account"
            }
            .into(),
        ),
        Event::RoomCreated(r) => said(
            Some(&r.room_id),
            Some(&r.owner),
            format!("created room {:?} ({:?})", r.name, r.description),
        ),
        Event::MemberJoined(j) => said(
            Some(&j.room_id),
            Some(&j.user_id),
            match &j.invite {
                Some(i) => format!("joined with invite {i}"),
                None => "joined".into(),
            },
        ),
        Event::MemberLeft(j) => said(Some(&j.room_id), Some(&j.user_id), "left".into()),
        Event::MemberKicked(k) => {
            let r = reason(k.reason.is_some());
            on(&k.room_id, Some(&k.by), &k.user_id, "kicked", r).await?
        }
        Event::MemberBanned(b) => {
            let r = format!("{}{}", until(b.until), reason(b.reason.is_some()));
            on(&b.room_id, Some(&b.by), &b.user_id, "banned", r).await?
        }
        Event::MemberUnbanned(l) => {
            on(
                &l.room_id,
                Some(&l.by),
                &l.user_id,
                "unbanned",
                String::new(),
            )
            .await?
        }
        Event::MemberMuted(m) => {
            let r = until(Some(m.until));
            on(&m.room_id, Some(&m.by), &m.user_id, "muted", r).await?
        }
        Event::MemberUnmuted(l) => {
            on(
                &l.room_id,
                Some(&l.by),
                &l.user_id,
                "unmuted",
                String::new(),
            )
            .await?
        }
        Event::RoleChanged(c) => {
            let r = format!(" to {}", c.role.as_str());
            let verb = if c.by.is_some() {
                "changed the role of"
            } else {
                "passed the erased owner's room: changed the role of"
            };
            on(&c.room_id, c.by.as_ref(), &c.user_id, verb, r).await?
        }
        Event::RoomUpdated(u) => {
            let mut parts = Vec::new();
            if let Some(n) = &u.name {
                parts.push(format!("name {n:?}"));
            }
            if let Some(d) = &u.description {
                parts.push(format!("description {d:?}"));
            }
            if let Some(a) = &u.avatar_image {
                parts.push(format!("avatar {a:?}"));
            }
            if let Some(r) = &u.retention_days {
                parts.push(match r {
                    Some(d) => format!("retention {d} days"),
                    None => "retention off".into(),
                });
            }
            said(
                Some(&u.room_id),
                Some(&u.by),
                format!("updated the room: {}", parts.join(", ")),
            )
        }
        Event::RoomArchived(a) => said(
            Some(&a.room_id),
            a.by.as_ref(),
            if a.by.is_some() {
                "archived the room"
            } else {
                "archived the room: nobody is left in it"
            }
            .into(),
        ),
        Event::RoomUnarchived(a) => said(
            Some(&a.room_id),
            a.by.as_ref(),
            "unarchived the room".into(),
        ),
        Event::JoinCodeRotated(r) => said(
            Some(&r.room_id),
            Some(&r.by),
            "rotated the join code".into(),
        ),
        Event::InviteCreated(i) => said(
            Some(&i.room_id),
            Some(&i.by),
            format!(
                "created invite {} (max uses {}, expires {})",
                i.invite_id,
                i.max_uses.map_or("unlimited".to_owned(), |m| m.to_string()),
                i.expires_at.map_or("never".to_owned(), crate::wire::time)
            ),
        ),
        Event::InviteRevoked(i) => said(
            Some(&i.room_id),
            Some(&i.by),
            format!("revoked invite {}", i.invite_id),
        ),
        Event::MessagePosted(m) => Said {
            seq: Some(m.seq),
            ..said(Some(&m.room_id), Some(&m.user_id), clear)
        },
    })
}

struct Out<W: Write> {
    w: W,
    format: Format,
}

fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

impl<W: Write> Out<W> {
    fn header(&mut self) -> std::io::Result<()> {
        if self.format == Format::Csv {
            writeln!(
                self.w,
                "position,time,event_id,stream,version,type,schema_version,room_id,seq,user_id,user_name,text"
            )?;
        }
        Ok(())
    }

    fn line(&mut self, l: &Line) -> std::io::Result<()> {
        let time = crate::wire::time(l.rec.recorded_at);
        match self.format {
            Format::Text => {
                let who = match (&l.user_name, &l.user_id) {
                    (Some(n), Some(id)) => format!("{n} ({id})"),
                    (None, Some(id)) => id.clone(),
                    _ => String::new(),
                };
                let seq = l.seq.map(|s| format!("#{s} ")).unwrap_or_default();
                let what = if l.seq.is_some() {
                    format!("said {:?}", l.what)
                } else {
                    l.what.clone()
                };
                writeln!(
                    self.w,
                    "{time}  pos {:<6} {} v{}  {}{who} {what}  [{} v{} event {}]",
                    l.rec.position,
                    l.rec.stream_id,
                    l.rec.version,
                    seq,
                    l.rec.event_type,
                    l.rec.schema_version,
                    l.rec.event_id
                )
            }
            Format::Json => {
                let v = json!({
                    "position": l.rec.position,
                    "time": time,
                    "event_id": l.rec.event_id.to_string(),
                    "stream": l.rec.stream_id,
                    "version": l.rec.version,
                    "type": l.rec.event_type,
                    "schema_version": l.rec.schema_version,
                    "room_id": l.room_id,
                    "seq": l.seq,
                    "user_id": l.user_id,
                    "user_name": l.user_name,
                    "text": l.what,
                });
                writeln!(self.w, "{v}")
            }
            Format::Csv => writeln!(
                self.w,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                l.rec.position,
                time,
                l.rec.event_id,
                csv(&l.rec.stream_id),
                l.rec.version,
                l.rec.event_type,
                l.rec.schema_version,
                csv(l.room_id.as_deref().unwrap_or("")),
                l.seq.map(|s| s.to_string()).unwrap_or_default(),
                csv(l.user_id.as_deref().unwrap_or("")),
                csv(l.user_name.as_deref().unwrap_or("")),
                csv(&l.what)
            ),
        }
    }

    fn summary(&mut self, title: &str, v: Value) -> std::io::Result<()> {
        match self.format {
            Format::Json => writeln!(self.w, "{}", json!({"summary": title, "state": v})),
            Format::Text => writeln!(self.w, "-- {title}: {v}"),
            Format::Csv => Ok(()),
        }
    }
}

/// Finds the room named by an id or a join code; join codes are looked up in the read tables
/// when they have the room, else in the log itself.
async fn resolve_room(storage: &Storage, arg: &str) -> anyhow::Result<String> {
    let is_code = arg.len() == 32 && arg.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_code {
        if storage
            .store
            .stream_version(&room_stream(arg))
            .await?
            .is_none()
        {
            anyhow::bail!("no room has the id {arg:?}");
        }
        return Ok(arg.to_owned());
    }
    if let Ok(Some(room)) = storage.reads.room_by_code(arg).await {
        return Ok(room.id);
    }
    let mut after = 0;
    loop {
        let page = storage.store.read_all(after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for rec in page {
            if rec.event_type == "RoomCreated"
                && let Event::RoomCreated(r) = rec.decode()?
                && r.join_code_hash == join_code_hash(arg)
            {
                return Ok(r.room_id);
            }
        }
    }
    anyhow::bail!("no room has the id or join code {arg:?}")
}

/// Finds the user named by an id or a name (the name's holder today, or its last holder).
pub async fn resolve_user(storage: &Storage, arg: &str) -> anyhow::Result<String> {
    if storage
        .store
        .stream_version(&user_stream(arg))
        .await?
        .is_some()
    {
        return Ok(arg.to_owned());
    }
    let stream = username_stream(&storage.keys.name_hash(arg));
    let mut holder = None;
    for rec in storage.store.read_stream(&stream, 1, PAGE).await? {
        if let Event::UserNameClaimed(c) = rec.decode()? {
            holder = Some(c.user_id);
        }
    }
    holder.ok_or_else(|| anyhow::anyhow!("no user has the id or name {arg:?}"))
}

/// Runs `chatroom audit`.
///
/// # Errors
/// When the store cannot be read or the subject does not exist.
pub async fn audit(args: Audit) -> anyhow::Result<()> {
    let since = args.since.as_deref().map(parse_time).transpose()?;
    let until = args.until.as_deref().map(parse_time).transpose()?;
    let storage = Storage::open(&args.store).await?;
    let store = storage.store.clone();
    let stdout = std::io::stdout();
    let mut out = Out {
        w: std::io::BufWriter::new(stdout.lock()),
        format: args.format,
    };
    let keys = storage.keys.clone();
    let mut names = Names {
        store: &*store,
        keys: &keys,
        known: HashMap::new(),
    };
    let in_window = |t: i64| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u);
    out.header()?;
    if let Some(room) = &args.room {
        let room_id = resolve_room(&storage, room).await?;
        let stream = room_stream(&room_id);
        let mut members: BTreeMap<String, String> = BTreeMap::new();
        let (mut last_seq, mut messages, mut name) = (0, 0u64, String::new());
        let mut from = 1;
        'pages: loop {
            let page = store.read_stream(&stream, from, PAGE).await?;
            let Some(last) = page.last() else { break };
            from = last.version + 1;
            for rec in page {
                if until.is_some_and(|u| rec.recorded_at > u) {
                    break 'pages;
                }
                let event = rec.decode()?;
                match &event {
                    Event::RoomCreated(r) => name = r.name.clone(),
                    Event::MemberJoined(j) => {
                        let n = names.of(&j.user_id).await?;
                        members.insert(j.user_id.clone(), n);
                    }
                    Event::MemberLeft(events::event::MemberLeft { user_id, .. })
                    | Event::MemberKicked(events::event::MemberKicked { user_id, .. })
                    | Event::MemberBanned(events::event::MemberBanned { user_id, .. }) => {
                        members.remove(user_id);
                    }
                    Event::RoomUpdated(events::event::RoomUpdated { name: Some(n), .. }) => {
                        name = n.clone()
                    }
                    Event::MessagePosted(m) => {
                        last_seq = m.seq;
                        messages += 1;
                    }
                    _ => {}
                }
                if !in_window(rec.recorded_at) {
                    continue;
                }
                let said = describe(&keys, &mut names, &event).await?;
                let user_name = match &said.user_id {
                    Some(u) => Some(names.of(u).await?),
                    None => None,
                };
                out.line(&Line {
                    rec,
                    room_id: said.room_id,
                    user_id: said.user_id,
                    user_name,
                    seq: said.seq,
                    what: said.what,
                })?;
            }
        }
        if let Some(u) = until
            && since.is_none()
        {
            out.summary(
                &format!("room as it stood at {}", crate::wire::time(u)),
                json!({
                    "room_id": room_id,
                    "name": name,
                    "members": members.iter().map(|(id, n)| json!({"user_id": id, "name": n})).collect::<Vec<_>>(),
                    "messages": messages,
                    "last_seq": last_seq,
                }),
            )?;
        }
    } else if let Some(user) = &args.user {
        let user_id = resolve_user(&storage, user).await?;
        let mut after = 0;
        loop {
            let page = store.read_all(after, 5000).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            for rec in page {
                if !in_window(rec.recorded_at) {
                    continue;
                }
                let event = rec.decode()?;
                let said = describe(&keys, &mut names, &event).await?;
                let me = Some(user_id.as_str());
                if said.user_id.as_deref() != me && said.target.as_deref() != me {
                    continue;
                }
                let user_name = match &said.user_id {
                    Some(u) => Some(names.of(u).await?),
                    None => None,
                };
                out.line(&Line {
                    rec,
                    room_id: said.room_id,
                    user_id: said.user_id,
                    user_name,
                    seq: said.seq,
                    what: said.what,
                })?;
            }
        }
    }
    out.w.flush()?;
    drop(out);
    storage.close();
    Ok(())
}
