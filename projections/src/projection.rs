//! Projections as pure mappings from events to row changes.

use events::event::Role;
use events::{Event, Recorded};

mod change;
pub use change::Change;

/// Which copy of a projection's table a batch goes to: the live one the server reads, or the
/// shadow that a rebuild fills beside it before switching over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The table the server reads.
    Live,
    /// `<table>__rebuild`, with its checkpoint `<projection>__rebuild`.
    Shadow,
    /// The live tables with a checkpoint of their own, `<projection>__retry`: a parked event
    /// applied again after the live checkpoint has gone past it.
    Retry,
}

/// Suffix of the checkpoint of [`Target::Retry`].
pub const RETRY: &str = "__retry";

/// Suffix of shadow tables and checkpoints.
pub const SHADOW: &str = "__rebuild";

impl Target {
    /// The name of `table` in this target.
    pub fn table(self, table: &str) -> String {
        match self {
            Target::Live | Target::Retry => table.to_owned(),
            Target::Shadow => format!("{table}{SHADOW}"),
        }
    }

    /// The name of `projection`'s checkpoint in this target.
    pub fn checkpoint(self, projection: Projection) -> String {
        match self {
            Target::Retry => format!("{}{RETRY}", projection.name()),
            _ => self.table(projection.name()),
        }
    }
}

/// The text a message is searched by: lower-cased, runs of white space made one space.
pub fn search_text(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A `like` pattern (escape character `\`) matching texts whose [`search_text`] contains the
/// query's.
pub fn like_pattern(query: &str) -> String {
    let needle = search_text(query)
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{needle}%")
}

/// The projections, each keeping its own table and checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    /// The `user` table, with `user_block` (who blocks whom: the blocks are events of the
    /// users' streams, so the same projection keeps them, with no worker of their own).
    User,
    /// The `room` table.
    Room,
    /// The `room_member` table.
    RoomMember,
    /// The `room_record` table, with `room_reaction` (who reacted to a message with what) and
    /// `room_record_version` (the earlier texts of edited and deleted messages).
    RoomRecord,
    /// The `room_ban` table: who may not join a room, and until when.
    RoomBan,
    /// The `room_invite` table: the extra invites with their limits and uses.
    RoomInvite,
    /// The `room_code` table: every code a room ever had, to find the room by.
    RoomCode,
}

/// Every projection, in a fixed order (new ones last: a projection's place names its
/// PostgreSQL lock).
pub const ALL: [Projection; 7] = [
    Projection::User,
    Projection::Room,
    Projection::RoomMember,
    Projection::RoomRecord,
    Projection::RoomBan,
    Projection::RoomInvite,
    Projection::RoomCode,
];

impl Projection {
    /// Its main table (the same name as the projection).
    pub fn table(self) -> &'static str {
        self.name()
    }

    /// Every table it keeps, the main one first: a rebuild replaces them together.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Projection::User => &["user", "user_block"],
            Projection::Room => &["room"],
            Projection::RoomMember => &["room_member"],
            Projection::RoomRecord => &["room_record", "room_reaction", "room_record_version"],
            Projection::RoomBan => &["room_ban"],
            Projection::RoomInvite => &["room_invite"],
            Projection::RoomCode => &["room_code"],
        }
    }

    /// Its name, which is also the name of its checkpoint.
    pub fn name(self) -> &'static str {
        match self {
            Projection::User => "user",
            Projection::Room => "room",
            Projection::RoomMember => "room_member",
            Projection::RoomRecord => "room_record",
            Projection::RoomBan => "room_ban",
            Projection::RoomInvite => "room_invite",
            Projection::RoomCode => "room_code",
        }
    }

    /// The projection called `name`.
    pub fn by_name(name: &str) -> Option<Self> {
        ALL.into_iter().find(|p| p.name() == name)
    }

    /// The row changes `event` (recorded as `rec`) causes in this projection; `clear` is its
    /// sealed field ([`Event::sealed`]) opened, `None` when that has no key any more.
    pub fn changes(self, rec: &Recorded, event: &Event, clear: Option<&str>) -> Vec<Change> {
        let time = rec.recorded_at;
        let clear = clear.map(str::to_owned);
        match self {
            Projection::User => return user(event, time, clear),
            Projection::Room => room(event, time, clear),
            Projection::RoomMember => member(event, time),
            Projection::RoomRecord => record(rec, event, clear),
            Projection::RoomBan => ban(event, time),
            Projection::RoomInvite => invite(event, time, clear),
            Projection::RoomCode => code(event),
        }
        .into_iter()
        .collect()
    }
}

fn user(event: &Event, time: i64, clear: Option<String>) -> Vec<Change> {
    let mut changes: Vec<Change> = user_row(event, time, clear).into_iter().collect();
    changes.extend(block(event, time));
    changes
}

fn user_row(event: &Event, time: i64, clear: Option<String>) -> Option<Change> {
    Some(match event {
        Event::UserRegistered(u) => Change::InsertUser {
            id: u.user_id.clone(),
            name: clear,
            created_at: time,
        },
        Event::UserRenamed(u) => Change::UpdateUser {
            id: u.user_id.clone(),
            name_lower: clear.as_deref().map(str::to_lowercase),
            name: clear,
            avatar_image: None,
        },
        Event::AvatarChanged(u) => Change::UpdateUser {
            id: u.user_id.clone(),
            name: None,
            name_lower: None,
            avatar_image: clear,
        },
        Event::UserErased(u) => Change::EraseUser {
            id: u.user_id.clone(),
            time,
        },
        _ => return None,
    })
}

fn room(event: &Event, time: i64, clear: Option<String>) -> Option<Change> {
    let touch = |room_id: &str| Change::TouchRoom {
        room_id: room_id.to_owned(),
        seq: None,
        time,
    };
    Some(match event {
        Event::RoomCreated(r) => Change::InsertRoom {
            id: r.room_id.clone(),
            name: r.name.clone(),
            description: r.description.clone(),
            owner: r.owner.clone(),
            avatar_image: r.avatar_image.clone(),
            // The room's key is never destroyed; a code that does not open is not shown.
            room_hash_id: clear.unwrap_or_default(),
            direct: None,
            time,
        },
        // No code: the unique column holds what no code can be (see the migration).
        Event::DirectRoomOpened(d) => Change::InsertRoom {
            id: d.room_id.clone(),
            name: String::new(),
            description: String::new(),
            owner: String::new(),
            avatar_image: String::new(),
            room_hash_id: format!("direct:{}", d.room_id),
            direct: Some(d.users.clone()),
            time,
        },
        Event::MemberJoined(j) => touch(&j.room_id),
        Event::MemberLeft(l) => touch(&l.room_id),
        Event::MemberKicked(k) => touch(&k.room_id),
        Event::MemberBanned(b) => touch(&b.room_id),
        Event::MessagePosted(m) => Change::TouchRoom {
            room_id: m.room_id.clone(),
            seq: Some(m.seq),
            time,
        },
        Event::RoleChanged(c) if c.role == Role::Owner => Change::SetOwner {
            id: c.room_id.clone(),
            owner: c.user_id.clone(),
        },
        Event::RoomUpdated(u) => Change::UpdateRoom {
            id: u.room_id.clone(),
            name: u.name.clone(),
            description: u.description.clone(),
            avatar_image: u.avatar_image.clone(),
            retention_days: u.retention_days,
            time,
        },
        Event::RoomArchived(a) | Event::RoomUnarchived(a) => Change::ArchiveRoom {
            id: a.room_id.clone(),
            archived: matches!(event, Event::RoomArchived(_)),
            time,
        },
        Event::JoinCodeRotated(r) => Change::RecodeRoom {
            id: r.room_id.clone(),
            room_hash_id: clear.unwrap_or_default(),
        },
        _ => return None,
    })
}

fn member(event: &Event, time: i64) -> Option<Change> {
    let remove = |room_id: &str, user_id: &str| Change::RemoveMember {
        room_id: room_id.to_owned(),
        user_id: user_id.to_owned(),
    };
    Some(match event {
        // The creator is the first member, as its owner; their own join that follows finds
        // them there.
        Event::RoomCreated(r) => Change::InsertMember {
            room_id: r.room_id.clone(),
            user_id: r.owner.clone(),
            role: Role::Owner,
            joined_at: time,
        },
        Event::MemberJoined(j) => Change::InsertMember {
            room_id: j.room_id.clone(),
            user_id: j.user_id.clone(),
            role: Role::Member,
            joined_at: time,
        },
        Event::MemberLeft(l) => remove(&l.room_id, &l.user_id),
        Event::MemberKicked(k) => remove(&k.room_id, &k.user_id),
        // A ban of someone not in the room removes nothing.
        Event::MemberBanned(b) => remove(&b.room_id, &b.user_id),
        Event::RoleChanged(c) => Change::SetRole {
            room_id: c.room_id.clone(),
            user_id: c.user_id.clone(),
            role: c.role,
        },
        Event::MemberMuted(m) => Change::SetMute {
            room_id: m.room_id.clone(),
            user_id: m.user_id.clone(),
            until: Some(m.until),
        },
        Event::MemberUnmuted(l) => Change::SetMute {
            room_id: l.room_id.clone(),
            user_id: l.user_id.clone(),
            until: None,
        },
        _ => return None,
    })
}

fn record(rec: &Recorded, event: &Event, clear: Option<String>) -> Option<Change> {
    let version = rec.version;
    Some(match event {
        Event::UserErased(u) => Change::ScrubRecords {
            user_id: u.user_id.clone(),
        },
        Event::MessagePosted(m) => Change::InsertRecord {
            room_id: m.room_id.clone(),
            seq: m.seq,
            message_id: m.message_id.clone(),
            user_id: m.user_id.clone(),
            search_text: clear.as_deref().map(search_text).unwrap_or_default(),
            deleted: clear.is_none(),
            message: clear.unwrap_or_default(),
            time: rec.recorded_at,
            event_id: *rec.event_id.as_bytes(),
            position: rec.position,
            version,
            reply_to: m.reply_to,
        },
        Event::MessageEdited(m) => Change::EditRecord {
            room_id: m.room_id.clone(),
            seq: m.seq,
            search_text: clear.as_deref().map(search_text).unwrap_or_default(),
            message: clear,
            time: rec.recorded_at,
            version,
        },
        Event::MessageDeleted(m) => Change::DeleteRecord {
            room_id: m.room_id.clone(),
            seq: m.seq,
            version,
        },
        Event::ReactionAdded(r) | Event::ReactionRemoved(r) => Change::React {
            room_id: r.room_id.clone(),
            seq: r.seq,
            emoji: r.emoji.clone(),
            user_id: r.user_id.clone(),
            on: matches!(event, Event::ReactionAdded(_)),
            position: rec.position,
            version,
        },
        _ => return None,
    })
}

fn ban(event: &Event, time: i64) -> Option<Change> {
    Some(match event {
        Event::MemberBanned(b) => Change::InsertBan {
            room_id: b.room_id.clone(),
            user_id: b.user_id.clone(),
            until: b.until,
            by: b.by.clone(),
            banned_at: time,
        },
        Event::MemberUnbanned(l) => Change::RemoveBan {
            room_id: l.room_id.clone(),
            user_id: l.user_id.clone(),
        },
        _ => return None,
    })
}

fn invite(event: &Event, time: i64, clear: Option<String>) -> Option<Change> {
    Some(match event {
        Event::InviteCreated(i) => Change::InsertInvite {
            room_id: i.room_id.clone(),
            invite_id: i.invite_id.clone(),
            code: clear.unwrap_or_default(),
            code_hash: i.code_hash,
            max_uses: i.max_uses,
            expires_at: i.expires_at,
            created_by: i.by.clone(),
            created_at: time,
        },
        Event::InviteRevoked(i) => Change::RevokeInvite {
            room_id: i.room_id.clone(),
            invite_id: i.invite_id.clone(),
        },
        Event::MemberJoined(j) => Change::UseInvite {
            room_id: j.room_id.clone(),
            invite_id: j.invite.clone()?,
        },
        _ => return None,
    })
}

fn block(event: &Event, time: i64) -> Option<Change> {
    Some(match event {
        Event::UserBlocked(b) => Change::InsertBlock {
            by: b.by.clone(),
            user_id: b.user_id.clone(),
            time,
        },
        Event::UserUnblocked(b) => Change::RemoveBlock {
            by: b.by.clone(),
            user_id: b.user_id.clone(),
        },
        Event::UserErased(u) => Change::EraseBlocks {
            user_id: u.user_id.clone(),
        },
        _ => return None,
    })
}

fn code(event: &Event) -> Option<Change> {
    Some(match event {
        Event::RoomCreated(r) => Change::InsertCode {
            code_hash: r.join_code_hash,
            room_id: r.room_id.clone(),
            invite_id: None,
        },
        Event::JoinCodeRotated(r) => Change::InsertCode {
            code_hash: r.join_code_hash,
            room_id: r.room_id.clone(),
            invite_id: None,
        },
        Event::InviteCreated(i) => Change::InsertCode {
            code_hash: i.code_hash,
            room_id: i.room_id.clone(),
            invite_id: Some(i.invite_id.clone()),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
