//! Projections as pure mappings from events to row changes.

use events::{Event, Recorded};

/// A change to the read tables, independent of the engine that applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new `user` row.
    InsertUser {
        /// Id.
        id: String,
        /// Name as registered; `None` when its key is gone (the user was erased).
        name: Option<String>,
        /// Milliseconds since the epoch.
        created_at: i64,
    },
    /// A user's new name or avatar (`None`: unchanged, or its key is gone).
    UpdateUser {
        /// Id.
        id: String,
        /// New name.
        name: Option<String>,
        /// The new name lower-cased, as names are looked up (the same fold on every engine).
        name_lower: Option<String>,
        /// New avatar path.
        avatar_image: Option<String>,
    },
    /// A user erased: the row keeps only the id, reads as "Deleted user", frees the name.
    EraseUser {
        /// Id.
        id: String,
        /// Time of the erasure.
        time: i64,
    },
    /// Every message of an erased user becomes a placeholder without text.
    ScrubRecords {
        /// The author.
        user_id: String,
    },
    /// A member's row goes.
    RemoveMember {
        /// Room.
        room_id: String,
        /// Member.
        user_id: String,
    },
    /// One member fewer in `room`.
    UncountMember {
        /// Room.
        room_id: String,
        /// Time of the leave.
        time: i64,
    },
    /// A new `room` row.
    InsertRoom {
        /// Id.
        id: String,
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Owner's id.
        owner: String,
        /// Avatar path or empty.
        avatar_image: String,
        /// Join code.
        room_hash_id: String,
        /// Creation time.
        time: i64,
    },
    /// One more member in `room`; the room's `update_time` moves.
    CountMember {
        /// Room.
        room_id: String,
        /// Time of the join.
        time: i64,
    },
    /// A message in `room`; its `update_time` and `last_seq` move.
    TouchRoom {
        /// Room.
        room_id: String,
        /// Seq of the message.
        seq: u64,
        /// Time of the message.
        time: i64,
    },
    /// A new `room_member` row.
    InsertMember {
        /// Room.
        room_id: String,
        /// Member.
        user_id: String,
        /// Time of the join.
        joined_at: i64,
    },
    /// A new `room_record` row.
    InsertRecord {
        /// Room.
        room_id: String,
        /// Seq.
        seq: u64,
        /// Client id.
        message_id: String,
        /// Author.
        user_id: String,
        /// Text; empty for a placeholder.
        message: String,
        /// [`search_text`] of the text.
        search_text: String,
        /// Whether its text is gone (key destroyed): a placeholder.
        deleted: bool,
        /// Time.
        time: i64,
        /// Id of the event it came from.
        event_id: [u8; 16],
        /// Global position of that event.
        position: u64,
    },
}

/// Which copy of a projection's table a batch goes to: the live one the server reads, or the
/// shadow that a rebuild fills beside it before switching over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The table the server reads.
    Live,
    /// `<table>__rebuild`, with its checkpoint `<projection>__rebuild`.
    Shadow,
}

/// Suffix of shadow tables and checkpoints.
pub const SHADOW: &str = "__rebuild";

impl Target {
    /// The name of `table` in this target.
    pub fn table(self, table: &str) -> String {
        match self {
            Target::Live => table.to_owned(),
            Target::Shadow => format!("{table}{SHADOW}"),
        }
    }

    /// The name of `projection`'s checkpoint in this target.
    pub fn checkpoint(self, projection: Projection) -> String {
        self.table(projection.name())
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

/// The projections, each keeping its own table(s) and checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    /// The `user` table.
    User,
    /// The `room` table.
    Room,
    /// The `room_member` table.
    RoomMember,
    /// The `room_record` table.
    RoomRecord,
}

/// Every projection, in a fixed order.
pub const ALL: [Projection; 4] = [
    Projection::User,
    Projection::Room,
    Projection::RoomMember,
    Projection::RoomRecord,
];

impl Projection {
    /// The table it keeps (the same name as the projection).
    pub fn table(self) -> &'static str {
        self.name()
    }

    /// Its name, which is also the name of its checkpoint.
    pub fn name(self) -> &'static str {
        match self {
            Projection::User => "user",
            Projection::Room => "room",
            Projection::RoomMember => "room_member",
            Projection::RoomRecord => "room_record",
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
        match (self, event) {
            (Projection::User, Event::UserRegistered(u)) => vec![Change::InsertUser {
                id: u.user_id.clone(),
                name: clear,
                created_at: time,
            }],
            (Projection::User, Event::UserRenamed(u)) => vec![Change::UpdateUser {
                id: u.user_id.clone(),
                name_lower: clear.as_deref().map(str::to_lowercase),
                name: clear,
                avatar_image: None,
            }],
            (Projection::User, Event::AvatarChanged(u)) => vec![Change::UpdateUser {
                id: u.user_id.clone(),
                name: None,
                name_lower: None,
                avatar_image: clear,
            }],
            (Projection::User, Event::UserErased(u)) => vec![Change::EraseUser {
                id: u.user_id.clone(),
                time,
            }],
            (Projection::RoomRecord, Event::UserErased(u)) => vec![Change::ScrubRecords {
                user_id: u.user_id.clone(),
            }],
            (Projection::RoomMember, Event::MemberLeft(l)) => vec![Change::RemoveMember {
                room_id: l.room_id.clone(),
                user_id: l.user_id.clone(),
            }],
            (Projection::Room, Event::MemberLeft(l)) => vec![Change::UncountMember {
                room_id: l.room_id.clone(),
                time,
            }],
            (Projection::Room, Event::RoomCreated(r)) => vec![Change::InsertRoom {
                id: r.room_id.clone(),
                name: r.name.clone(),
                description: r.description.clone(),
                owner: r.owner.clone(),
                avatar_image: r.avatar_image.clone(),
                // The room's key is never destroyed; a code that does not open is not shown.
                room_hash_id: clear.unwrap_or_default(),
                time,
            }],
            (Projection::Room, Event::MemberJoined(j)) => vec![Change::CountMember {
                room_id: j.room_id.clone(),
                time,
            }],
            (Projection::Room, Event::MessagePosted(m)) => vec![Change::TouchRoom {
                room_id: m.room_id.clone(),
                seq: m.seq,
                time,
            }],
            (Projection::RoomMember, Event::MemberJoined(j)) => vec![Change::InsertMember {
                room_id: j.room_id.clone(),
                user_id: j.user_id.clone(),
                joined_at: time,
            }],
            (Projection::RoomRecord, Event::MessagePosted(m)) => vec![Change::InsertRecord {
                room_id: m.room_id.clone(),
                seq: m.seq,
                message_id: m.message_id.clone(),
                user_id: m.user_id.clone(),
                search_text: clear.as_deref().map(search_text).unwrap_or_default(),
                deleted: clear.is_none(),
                message: clear.unwrap_or_default(),
                time,
                event_id: *rec.event_id.as_bytes(),
                position: rec.position,
            }],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::NewEvent;
    use events::event::MemberJoined;

    fn recorded(event: &Event, position: u64) -> Recorded {
        let n = NewEvent::with_id(uuid::Uuid::nil(), event, 42);
        Recorded {
            position,
            stream_id: "room-r".into(),
            version: 1,
            event_id: n.event_id,
            event_type: n.event_type.into(),
            schema_version: n.schema_version,
            recorded_at: n.recorded_at,
            payload: n.payload,
            hash: [0; 32],
        }
    }

    #[test]
    fn a_join_counts_in_room_and_adds_a_member_row() {
        let e = Event::MemberJoined(MemberJoined {
            room_id: "r".into(),
            user_id: "u".into(),
            invite: None,
        });
        let rec = recorded(&e, 5);
        assert_eq!(
            Projection::Room.changes(&rec, &e, None),
            [Change::CountMember {
                room_id: "r".into(),
                time: 42
            }]
        );
        assert_eq!(
            Projection::RoomMember.changes(&rec, &e, None),
            [Change::InsertMember {
                room_id: "r".into(),
                user_id: "u".into(),
                joined_at: 42
            }]
        );
        assert!(Projection::User.changes(&rec, &e, None).is_empty());
        assert!(Projection::RoomRecord.changes(&rec, &e, None).is_empty());
    }

    #[test]
    fn a_message_becomes_a_record_with_its_position() {
        let e = events::testing::posted("r", 3, "u", "<b>hi</b>");
        let rec = recorded(&e, 9);
        match &Projection::RoomRecord.changes(&rec, &e, Some("<b>hi</b>"))[..] {
            [
                Change::InsertRecord {
                    seq: 3,
                    position: 9,
                    message,
                    ..
                },
            ] => assert_eq!(message, "<b>hi</b>"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn search_patterns_escape_like_wildcards() {
        assert_eq!(like_pattern("  Hello\tWorld "), "%hello world%");
        assert_eq!(like_pattern("100%_\\x"), "%100\\%\\_\\\\x%");
    }

    #[test]
    fn names_round_trip() {
        for p in ALL {
            assert_eq!(Projection::by_name(p.name()), Some(p));
        }
        assert_eq!(Projection::by_name("nope"), None);
    }
}
