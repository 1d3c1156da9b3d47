//! Governance events of a room and changes of its messages, built as the room actor writes
//! them, for the read tests.
#![allow(dead_code)]

use events::Event;
use events::event::{
    Archival, InviteCreated, InviteRevoked, JoinCodeRotated, Lifted, MemberBanned, MemberJoined,
    MemberKicked, MemberLeft, MemberMuted, MessageDeleted, MessageEdited, Reaction, Role,
    RoleChanged, RoomUpdated, join_code_hash,
};
use events::seal::Subject;
use events::testing::seal;

/// `user_id` joins `room` with the extra invite `invite`.
pub fn joined_with(room: &str, user_id: &str, invite: &str) -> Event {
    Event::MemberJoined(MemberJoined {
        room_id: room.into(),
        user_id: user_id.into(),
        invite: Some(invite.into()),
    })
}

/// `user_id` leaves `room`.
pub fn left(room: &str, user_id: &str) -> Event {
    Event::MemberLeft(MemberLeft {
        room_id: room.into(),
        user_id: user_id.into(),
    })
}

/// `by` kicks `user_id` out of `room`, giving a reason.
pub fn kicked(room: &str, user_id: &str, by: &str) -> Event {
    Event::MemberKicked(MemberKicked {
        room_id: room.into(),
        user_id: user_id.into(),
        by: by.into(),
        reason: Some(seal(&Subject::User(by.into()), "spam")),
    })
}

/// `by` bans `user_id` from `room` until `until` (ms), or until lifted.
pub fn banned(room: &str, user_id: &str, by: &str, until: Option<i64>) -> Event {
    Event::MemberBanned(MemberBanned {
        room_id: room.into(),
        user_id: user_id.into(),
        by: by.into(),
        reason: None,
        until,
    })
}

/// `by` lifts the ban of `user_id`.
pub fn unbanned(room: &str, user_id: &str, by: &str) -> Event {
    Event::MemberUnbanned(Lifted {
        room_id: room.into(),
        user_id: user_id.into(),
        by: by.into(),
    })
}

/// `by` mutes `user_id` until `until` (ms).
pub fn muted(room: &str, user_id: &str, by: &str, until: i64) -> Event {
    Event::MemberMuted(MemberMuted {
        room_id: room.into(),
        user_id: user_id.into(),
        by: by.into(),
        until,
    })
}

/// `by` lifts the mute of `user_id`.
pub fn unmuted(room: &str, user_id: &str, by: &str) -> Event {
    Event::MemberUnmuted(Lifted {
        room_id: room.into(),
        user_id: user_id.into(),
        by: by.into(),
    })
}

/// `by` gives `user_id` the role `role`.
pub fn role(room: &str, user_id: &str, by: &str, role: Role) -> Event {
    Event::RoleChanged(RoleChanged {
        room_id: room.into(),
        user_id: user_id.into(),
        by: Some(by.into()),
        role,
    })
}

/// `by` changes the settings of `room` given (`None`: unchanged).
pub fn updated(
    room: &str,
    by: &str,
    name: Option<&str>,
    description: Option<&str>,
    retention_days: Option<Option<u32>>,
) -> Event {
    Event::RoomUpdated(RoomUpdated {
        room_id: room.into(),
        by: by.into(),
        name: name.map(str::to_owned),
        description: description.map(str::to_owned),
        avatar_image: None,
        retention_days,
    })
}

/// `room` archived (`true`) or unarchived by `by`.
pub fn archived(room: &str, by: &str, archived: bool) -> Event {
    let a = Archival {
        room_id: room.into(),
        by: Some(by.into()),
    };
    if archived {
        Event::RoomArchived(a)
    } else {
        Event::RoomUnarchived(a)
    }
}

/// A join code of 32 hex characters made from `tag`.
pub fn code(tag: &str) -> String {
    format!("{tag:f>32}")
}

/// `by` replaces the standing code of `room` with `code(tag)`.
pub fn rotated(room: &str, by: &str, tag: &str) -> Event {
    Event::JoinCodeRotated(JoinCodeRotated {
        room_id: room.into(),
        by: by.into(),
        join_code_hash: join_code_hash(&code(tag)),
        join_code: seal(&Subject::Room(room.into()), &code(tag)),
    })
}

/// `by` makes invite `id` of `room`, whose code is `code(id)`.
pub fn invite(
    room: &str,
    id: &str,
    by: &str,
    max_uses: Option<u32>,
    expires_at: Option<i64>,
) -> Event {
    Event::InviteCreated(InviteCreated {
        room_id: room.into(),
        invite_id: id.into(),
        by: by.into(),
        code_hash: join_code_hash(&code(id)),
        code: seal(&Subject::Room(room.into()), &code(id)),
        max_uses,
        expires_at,
    })
}

/// `by` revokes invite `id` of `room`.
pub fn revoked(room: &str, id: &str, by: &str) -> Event {
    Event::InviteRevoked(InviteRevoked {
        room_id: room.into(),
        invite_id: id.into(),
        by: by.into(),
    })
}

/// Message `seq` of `room` posted by `user_id` as an answer to `reply_to`.
pub fn replied(room: &str, seq: u64, user_id: &str, text: &str, reply_to: u64) -> Event {
    match events::testing::posted(room, seq, user_id, text) {
        Event::MessagePosted(m) => Event::MessagePosted(events::event::MessagePosted {
            reply_to: Some(reply_to),
            ..m
        }),
        _ => unreachable!("posted builds a MessagePosted"),
    }
}

/// Its author `user_id` edits message `seq` of `room` (posted by `events::testing::posted`,
/// in period 0) to `text`.
pub fn edited(room: &str, seq: u64, user_id: &str, text: &str) -> Event {
    Event::MessageEdited(MessageEdited {
        room_id: room.into(),
        seq,
        user_id: user_id.into(),
        text: seal(
            &Subject::Text {
                user: user_id.into(),
                room: room.into(),
                period: 0,
            },
            text,
        ),
        period: 0,
    })
}

/// `by` deletes message `seq` of `room`.
pub fn deleted(room: &str, seq: u64, by: &str) -> Event {
    Event::MessageDeleted(MessageDeleted {
        room_id: room.into(),
        seq,
        by: by.into(),
    })
}

/// `user_id` reacts to message `seq` of `room` with `emoji` (`on`), or takes it back.
pub fn reacted(room: &str, seq: u64, user_id: &str, emoji: &str, on: bool) -> Event {
    let r = Reaction {
        room_id: room.into(),
        seq,
        user_id: user_id.into(),
        emoji: emoji.into(),
    };
    if on {
        Event::ReactionAdded(r)
    } else {
        Event::ReactionRemoved(r)
    }
}

/// Every migration of the log and the read side on PostgreSQL, in order.
pub const POSTGRES_MIGRATIONS: [events::migrate::Migration; 9] = [
    events::postgres::MIGRATION,
    projections::postgres::MIGRATION,
    projections::postgres::SEARCH_MIGRATION,
    projections::postgres::SEALED_MIGRATION,
    projections::postgres::GOVERNANCE_MIGRATION,
    projections::postgres::MESSAGES_MIGRATION,
    projections::markers::POSTGRES_MIGRATION,
    projections::postgres::DIRECT_MIGRATION,
    projections::dead::POSTGRES_MIGRATION,
];
