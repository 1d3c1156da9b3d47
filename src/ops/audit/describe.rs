//! What an audit says of each event: sealed fields opened with the key store where their
//! keys remain, names looked up in the log, an edit's or deletion's earlier text read back
//! from where the log holds it; never a join code or a credential.

use super::PAGE;
use events::event::{room_stream, user_stream};
use events::keys::Keys;
use events::{Event, Recorded, Store};
use std::collections::HashMap;

pub(super) struct Names<'a> {
    store: &'a dyn Store,
    keys: &'a Keys,
    known: HashMap<String, String>,
    /// Per room and seq, the stream version of the event that holds the message's text as it
    /// stood (its post or latest edit): what an edit or deletion replaced is read from there,
    /// so no text is held in memory.
    texts: HashMap<(String, u64), u64>,
}

impl<'a> Names<'a> {
    /// Names read from `store`, opened with `keys`.
    pub(super) fn new(store: &'a dyn Store, keys: &'a Keys) -> Self {
        Self {
            store,
            keys,
            known: HashMap::new(),
            texts: HashMap::new(),
        }
    }

    /// Notes where the current text of each message is, as the audit reads the log.
    pub(super) fn saw(&mut self, rec: &Recorded, event: &Event) {
        match event {
            Event::MessagePosted(m) => {
                self.texts.insert((m.room_id.clone(), m.seq), rec.version);
            }
            Event::MessageEdited(m) => {
                self.texts.insert((m.room_id.clone(), m.seq), rec.version);
            }
            _ => {}
        }
    }

    /// The text of message `seq` of `room_id` before the event being described.
    async fn text_before(&self, keys: &Keys, room_id: &str, seq: u64) -> anyhow::Result<String> {
        let Some(&version) = self.texts.get(&(room_id.to_owned(), seq)) else {
            return Ok(String::new());
        };
        let page = self
            .store
            .read_stream(&room_stream(room_id), version, 1)
            .await?;
        match page.first() {
            Some(rec) => opened(keys, &rec.decode()?).await,
            None => Ok(String::new()),
        }
    }

    /// A user's name as the log last gives it, opened with the key store: "Deleted user"
    /// once they are erased.
    pub(super) async fn of(&mut self, user_id: &str) -> anyhow::Result<String> {
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

/// What an event says, for a person: sealed fields opened where their keys remain; join codes
/// and credentials are never shown.
pub(super) struct Said {
    pub(super) room_id: Option<String>,
    /// Who did it.
    pub(super) user_id: Option<String>,
    /// Whom a moderator's or owner's act was about.
    pub(super) target: Option<String>,
    pub(super) seq: Option<u64>,
    pub(super) what: String,
}

/// An act on someone: "<verb> <id> (<name>)" plus whatever follows.
async fn act_on(
    names: &mut Names<'_>,
    room: &str,
    by: Option<&String>,
    whom: &str,
    verb: &str,
    rest: String,
) -> anyhow::Result<Said> {
    let name = names.of(whom).await?;
    Ok(Said {
        room_id: Some(room.to_owned()),
        user_id: by.cloned(),
        what: format!("{verb} {whom} ({name:?}){rest}"),
        target: Some(whom.to_owned()),
        seq: None,
    })
}

pub(super) async fn describe(
    keys: &Keys,
    names: &mut Names<'_>,
    event: &Event,
) -> anyhow::Result<Said> {
    let clear = opened(keys, event).await?;
    let said = |room: Option<&String>, user: Option<&String>, what: String| Said {
        room_id: room.cloned(),
        user_id: user.cloned(),
        target: None,
        seq: None,
        what,
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
        Event::DirectRoomOpened(d) => said(
            Some(&d.room_id),
            Some(&d.by),
            format!(
                "opened a direct room with {}",
                d.other(&d.by).unwrap_or("?")
            ),
        ),
        Event::UserBlocked(b) => said(None, Some(&b.by), format!("blocked user {}", b.user_id)),
        Event::UserUnblocked(b) => said(None, Some(&b.by), format!("unblocked user {}", b.user_id)),
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
            act_on(names, &k.room_id, Some(&k.by), &k.user_id, "kicked", r).await?
        }
        Event::MemberBanned(b) => {
            let r = format!("{}{}", until(b.until), reason(b.reason.is_some()));
            act_on(names, &b.room_id, Some(&b.by), &b.user_id, "banned", r).await?
        }
        Event::MemberUnbanned(l) => {
            act_on(
                names,
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
            act_on(names, &m.room_id, Some(&m.by), &m.user_id, "muted", r).await?
        }
        Event::MemberUnmuted(l) => {
            act_on(
                names,
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
            act_on(names, &c.room_id, c.by.as_ref(), &c.user_id, verb, r).await?
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
        Event::MessageEdited(m) => {
            let before = names.text_before(keys, &m.room_id, m.seq).await?;
            Said {
                seq: Some(m.seq),
                ..said(
                    Some(&m.room_id),
                    Some(&m.user_id),
                    format!("edited #{} from {before:?} to {clear:?}", m.seq),
                )
            }
        }
        Event::MessageDeleted(d) => {
            let before = names.text_before(keys, &d.room_id, d.seq).await?;
            Said {
                seq: Some(d.seq),
                ..said(
                    Some(&d.room_id),
                    Some(&d.by),
                    format!("deleted #{} (it said {before:?})", d.seq),
                )
            }
        }
        Event::ReactionAdded(r) => Said {
            seq: Some(r.seq),
            ..said(
                Some(&r.room_id),
                Some(&r.user_id),
                format!("reacted {:?} to #{}", r.emoji, r.seq),
            )
        },
        Event::ReactionRemoved(r) => Said {
            seq: Some(r.seq),
            ..said(
                Some(&r.room_id),
                Some(&r.user_id),
                format!("took back {:?} from #{}", r.emoji, r.seq),
            )
        },
    })
}
