//! The `user` and `room` rows the read queries return, on either engine.

/// A `user` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// Name as registered.
    pub name: String,
    /// Whether the user was erased (the name then reads as "Deleted user").
    pub erased: bool,
    /// Avatar path or empty.
    pub avatar_image: String,
}

/// A `room` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Owner's id.
    pub owner: String,
    /// Avatar path or empty.
    pub avatar_image: String,
    /// Join code.
    pub room_hash_id: String,
    /// Creation time, ms.
    pub create_time: i64,
    /// Last change (join or message), ms.
    pub update_time: i64,
    /// Members.
    pub member_count: u64,
    /// Newest seq.
    pub last_seq: u64,
    /// Whether it is read-only.
    pub archived: bool,
    /// Its own retention limit in days, if it has one.
    pub retention_days: Option<u32>,
    /// The role of the user it was read for (`owner`, `admin` or `member`); `None` when read
    /// for nobody, or for someone not a member.
    pub role: Option<String>,
    /// That member's read marker (0: nothing read); `None` with `role`.
    pub last_read_seq: Option<u64>,
    /// That member's unread messages: after the marker, by others, not deleted; `None` with
    /// `role`.
    pub unread: Option<u64>,
    /// The two people of a direct room, in the order of their ids; `None` for a group room.
    pub direct: Option<[String; 2]>,
}
