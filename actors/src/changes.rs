//! What each event of a room's stream shows its subscribers: a message, a message as it is
//! after a change, a `room_event`, or nothing (invites are for admins, who list them over
//! REST). Used for live fan-out, for events another process wrote, and for replay; messages
//! are always shown as they are now.

use crate::delivery::{Change, Delivery, Message, RoomEvent, RoomView};
use crate::room::{Fact, State};
use events::event::MessagePosted;
use events::event::room_stream;
use events::keys::Keys;
use events::seal::Subject;
use events::{Event, Recorded, Store};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The text of `m`, `None` when its key was destroyed (its author erased, or past retention).
///
/// # Errors
/// `Unavailable` when the key store fails.
pub async fn open_text(keys: &Keys, m: &MessagePosted) -> Result<Option<String>, events::Error> {
    keys.open(&m.subject(), &m.text)
        .await
        .map_err(|e| events::Error::Unavailable(e.to_string()))
}

/// The room as `state` has it, for an `updated` change.
///
/// # Errors
/// `Unavailable` when the key store fails.
pub async fn view(keys: &Keys, state: &State) -> Result<RoomView, events::Error> {
    let join_code = match &state.join_code {
        Some(sealed) => keys
            .open(&Subject::Room(state.room_id.clone()), sealed)
            .await
            .map_err(|e| events::Error::Unavailable(e.to_string()))?
            .unwrap_or_default(),
        None => String::new(),
    };
    let s = &state.settings;
    Ok(RoomView {
        id: state.room_id.clone(),
        name: s.name.clone(),
        description: s.description.clone(),
        owner: state.owner.clone(),
        avatar_image: s.avatar_image.clone(),
        join_code,
        created_at: s.created_at,
        updated_at: s.updated_at,
        member_count: state.members.len() as u64,
        archived: s.archived,
        last_seq: state.last_seq,
        retention_days: s.retention_days,
    })
}

/// Messages already read and opened while showing one batch of changes, by `seq` and the
/// version of their current text: a flood of reactions on one message reads its post and
/// opens its text once a batch rather than once a reaction (at 5,000 reactions a second
/// those reads held the room's posts back). It lives for one batch only, so a text whose key
/// is destroyed (erasure, retention) is never shown from it afterwards.
#[derive(Default)]
pub struct Shown(HashMap<(u64, u64), Base>);

/// What a message shows besides its version, edit time and reactions.
#[derive(Clone)]
struct Base {
    message_id: String,
    user_id: String,
    reply_to: Option<u64>,
    time_ms: i64,
    text: Option<String>,
}

/// Message `seq` as it is now in `state`, shown with `version`; `posted` is its
/// `MessagePosted` record when the caller has it at hand (else it is read from the log, or
/// taken from `shown`).
///
/// # Errors
/// `Unavailable` when the log or the key store fails; `Corrupt` when the log does not hold
/// what the room's state says it does.
pub async fn current(
    store: &dyn Store,
    keys: &Keys,
    state: &State,
    seq: u64,
    version: u64,
    posted: Option<(&Recorded, &MessagePosted)>,
    shown: &mut Shown,
) -> Result<Option<Message>, events::Error> {
    let Some(fact) = state.fact(seq) else {
        return Ok(None);
    };
    let memo = (seq, if fact.deleted { 0 } else { fact.text });
    let base = match shown.0.get(&memo) {
        Some(base) if posted.is_none() => base.clone(),
        _ => {
            let base = base_of(store, keys, state, fact, posted).await?;
            shown.0.insert(memo, base.clone());
            base
        }
    };
    let message = Message::new(
        Arc::from(state.room_id.as_str()),
        seq,
        version,
        base.message_id,
        base.user_id,
        base.text,
        base.time_ms,
    )
    .replying_to(base.reply_to)
    .changed(
        (fact.edited_at != 0).then_some(fact.edited_at),
        state.reactions_of(seq).to_vec(),
    );
    Ok(Some(message))
}

/// Reads what `current` shows of a message from the log and the key store.
async fn base_of(
    store: &dyn Store,
    keys: &Keys,
    state: &State,
    fact: &Fact,
    posted: Option<(&Recorded, &MessagePosted)>,
) -> Result<Base, events::Error> {
    let stream = room_stream(&state.room_id);
    let read = |at: u64| {
        let stream = stream.clone();
        async move {
            let page = store.read_stream(&stream, at, 1).await?;
            let rec = page
                .into_iter()
                .next()
                .filter(|r| r.version == at)
                .ok_or_else(|| events::Error::Corrupt(format!("{stream} v{at} is missing")))?;
            let event = rec
                .decode()
                .map_err(|e| events::Error::Corrupt(format!("{stream} v{at}: {e}")))?;
            Ok::<_, events::Error>((rec, event))
        }
    };
    let owned;
    let (rec, m) = match posted {
        Some(p) => p,
        None => {
            owned = match read(fact.posted).await? {
                (rec, Event::MessagePosted(m)) => (rec, m),
                (rec, _) => {
                    return Err(events::Error::Corrupt(format!(
                        "{} v{} is not a message",
                        rec.stream_id, rec.version
                    )));
                }
            };
            (&owned.0, &owned.1)
        }
    };
    let text = if fact.deleted {
        None
    } else if fact.text == fact.posted {
        open_text(keys, m).await?
    } else {
        match read(fact.text).await? {
            (_, Event::MessageEdited(e)) => keys
                .open(&e.subject(), &e.text)
                .await
                .map_err(|e| events::Error::Unavailable(e.to_string()))?,
            (rec, _) => {
                return Err(events::Error::Corrupt(format!(
                    "{} v{} is not an edit",
                    rec.stream_id, rec.version
                )));
            }
        }
    };
    Ok(Base {
        message_id: m.message_id.clone(),
        user_id: m.user_id.clone(),
        reply_to: m.reply_to,
        time_ms: rec.recorded_at,
        text,
    })
}

/// What `event` (recorded as `rec`, already folded into `state`) shows subscribers.
///
/// # Errors
/// `Unavailable` when the log or the key store fails.
pub async fn delivery_of(
    store: &dyn Store,
    keys: &Keys,
    state: &State,
    room_id: &Arc<str>,
    rec: &Recorded,
    event: Event,
    shown: &mut Shown,
) -> Result<Option<Delivery>, events::Error> {
    let change = |change, user: &str, by: Option<&str>| RoomEvent {
        room_id: room_id.clone(),
        version: rec.version,
        change,
        user: Some(user.to_owned()),
        by: by.map(str::to_owned),
        role: None,
        until: None,
        room: None,
        rendered: OnceLock::new(),
    };
    let event = match event {
        Event::MessagePosted(m) => {
            let message = current(
                store,
                keys,
                state,
                m.seq,
                rec.version,
                Some((rec, &m)),
                shown,
            )
            .await?;
            return Ok(message.map(|m| Delivery::Message(Arc::new(m))));
        }
        Event::MessageEdited(events::event::MessageEdited { seq, .. })
        | Event::MessageDeleted(events::event::MessageDeleted { seq, .. })
        | Event::ReactionAdded(events::event::Reaction { seq, .. })
        | Event::ReactionRemoved(events::event::Reaction { seq, .. }) => {
            let message = current(store, keys, state, seq, rec.version, None, shown).await?;
            return Ok(message.map(|m| Delivery::Updated(Arc::new(m))));
        }
        Event::MemberJoined(j) => change(Change::Joined, &j.user_id, None),
        Event::MemberLeft(l) => change(Change::Left, &l.user_id, None),
        Event::MemberKicked(k) => change(Change::Kicked, &k.user_id, Some(&k.by)),
        Event::MemberBanned(b) => RoomEvent {
            until: b.until,
            ..change(Change::Banned, &b.user_id, Some(&b.by))
        },
        Event::MemberUnbanned(l) => change(Change::Unbanned, &l.user_id, Some(&l.by)),
        Event::MemberMuted(m) => RoomEvent {
            until: Some(m.until),
            ..change(Change::Muted, &m.user_id, Some(&m.by))
        },
        Event::MemberUnmuted(l) => change(Change::Unmuted, &l.user_id, Some(&l.by)),
        Event::RoleChanged(c) => RoomEvent {
            role: Some(c.role),
            ..change(Change::RoleChanged, &c.user_id, c.by.as_deref())
        },
        Event::RoomUpdated(events::event::RoomUpdated { by, .. })
        | Event::JoinCodeRotated(events::event::JoinCodeRotated { by, .. }) => RoomEvent {
            user: None,
            room: Some(view(keys, state).await?),
            ..change(Change::Updated, "", Some(&by))
        },
        Event::RoomArchived(a) => RoomEvent {
            user: None,
            ..change(Change::Archived, "", a.by.as_deref())
        },
        Event::RoomUnarchived(a) => RoomEvent {
            user: None,
            ..change(Change::Unarchived, "", a.by.as_deref())
        },
        _ => return Ok(None),
    };
    Ok(Some(Delivery::Event(Arc::new(event))))
}

/// The user whose membership `delivery` ends, if it does.
pub fn removed(delivery: &Delivery) -> Option<&str> {
    match delivery {
        Delivery::Event(e) if e.change.removes() => e.user.as_deref(),
        _ => None,
    }
}
