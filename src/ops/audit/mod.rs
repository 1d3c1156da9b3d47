//! `chatroom audit`: a room's or a user's history, straight from the log, streamed; sealed
//! fields are opened with the key store where their keys remain ("(erased)" where not), and
//! join codes are never printed.

use super::times::parse_time;
use crate::config::{Audit, Format};
use crate::storage::Storage;
use events::event::{join_code_hash, room_stream, user_stream, username_stream};
use events::{Event, Recorded};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;

mod describe;
use describe::{Names, describe};

/// Events read per page: output streams, memory stays flat whatever the room's size.
const PAGE: usize = 1000;

/// One line of output.
struct Line {
    rec: Recorded,
    room_id: Option<String>,
    user_id: Option<String>,
    user_name: Option<String>,
    seq: Option<u64>,
    what: String,
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
    let mut names = Names::new(&*store, &keys);
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
                    names.saw(&rec, &event);
                    continue;
                }
                let said = describe(&keys, &mut names, &event).await?;
                names.saw(&rec, &event);
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
                let event = rec.decode()?;
                if !in_window(rec.recorded_at) {
                    names.saw(&rec, &event);
                    continue;
                }
                let said = describe(&keys, &mut names, &event).await?;
                names.saw(&rec, &event);
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
