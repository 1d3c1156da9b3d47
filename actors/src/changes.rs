//! What each event of a room's stream shows its subscribers: a message, a `room_event`, or
//! nothing (invites are for admins, who list them over REST). Used for live fan-out, for
//! events another process wrote, and for replay by version.

use crate::delivery::{Change, Delivery, Message, RoomEvent, RoomView};
use crate::room::State;
use events::event::MessagePosted;
use events::keys::Keys;
use events::seal::Subject;
use events::{Event, Recorded};
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

/// What `event` (recorded as `rec`, already folded into `state`) shows subscribers.
///
/// # Errors
/// `Unavailable` when the key store fails.
pub async fn delivery_of(
    keys: &Keys,
    state: &State,
    room_id: &Arc<str>,
    rec: &Recorded,
    event: Event,
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
            let text = open_text(keys, &m).await?;
            return Ok(Some(Delivery::Message(Arc::new(Message::new(
                room_id.clone(),
                m.seq,
                rec.version,
                m.message_id,
                m.user_id,
                text,
                rec.recorded_at,
            )))));
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
