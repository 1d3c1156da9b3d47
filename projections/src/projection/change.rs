//! The row changes a projection makes of an event, independent of the engine that applies
//! them.

use events::event::Role;

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
    /// Every message of an erased user becomes a placeholder without text, reply or
    /// reactions, and every earlier version of its text goes.
    ScrubRecords {
        /// The author.
        user_id: String,
    },
    /// A member's row goes (left, kicked or banned).
    RemoveMember {
        /// Room.
        room_id: String,
        /// Member.
        user_id: String,
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
        /// The two people of a direct room, in the order of their ids; `None` for a group
        /// room.
        direct: Option<[String; 2]>,
        /// Creation time.
        time: i64,
    },
    /// Activity in `room`: its `update_time` moves, and with a message its `last_seq`.
    TouchRoom {
        /// Room.
        room_id: String,
        /// Seq of the message, `None` for a change of membership.
        seq: Option<u64>,
        /// Time of the activity.
        time: i64,
    },
    /// A room's settings changed (`None`: unchanged); its `update_time` moves.
    UpdateRoom {
        /// Room.
        id: String,
        /// New name.
        name: Option<String>,
        /// New description.
        description: Option<String>,
        /// New avatar path or empty.
        avatar_image: Option<String>,
        /// New retention: `Some(None)` turns the room's own limit off.
        retention_days: Option<Option<u32>>,
        /// Time of the change.
        time: i64,
    },
    /// A room archived or unarchived; its `update_time` moves.
    ArchiveRoom {
        /// Room.
        id: String,
        /// Whether it is read-only now.
        archived: bool,
        /// Time of the change.
        time: i64,
    },
    /// A room passed to a new owner.
    SetOwner {
        /// Room.
        id: String,
        /// The new owner's id.
        owner: String,
    },
    /// A room's standing join code replaced.
    RecodeRoom {
        /// Room.
        id: String,
        /// The new code.
        room_hash_id: String,
    },
    /// A new `room_member` row; a member already there stays as they are.
    InsertMember {
        /// Room.
        room_id: String,
        /// Member.
        user_id: String,
        /// Their role: owner for the creator, member for everyone joining.
        role: Role,
        /// Time of the join.
        joined_at: i64,
    },
    /// A member's new role.
    SetRole {
        /// Room.
        room_id: String,
        /// Member.
        user_id: String,
        /// The role.
        role: Role,
    },
    /// A member muted until a time (ms), or unmuted (`None`).
    SetMute {
        /// Room.
        room_id: String,
        /// Member.
        user_id: String,
        /// End of the mute.
        until: Option<i64>,
    },
    /// A `room_ban` row, replacing the user's earlier ban of the room.
    InsertBan {
        /// Room.
        room_id: String,
        /// The user banned.
        user_id: String,
        /// End of the ban (ms), `None`: until lifted.
        until: Option<i64>,
        /// The moderator.
        by: String,
        /// Time of the ban.
        banned_at: i64,
    },
    /// A ban lifted: its row goes.
    RemoveBan {
        /// Room.
        room_id: String,
        /// The user.
        user_id: String,
    },
    /// A new `room_invite` row.
    InsertInvite {
        /// Room.
        room_id: String,
        /// The invite's id.
        invite_id: String,
        /// Its code; empty when it does not open.
        code: String,
        /// [`join_code_hash`](events::event::join_code_hash) of the code.
        code_hash: [u8; 32],
        /// How many joins it allows; `None`: any number.
        max_uses: Option<u32>,
        /// When it stops working (ms); `None`: never.
        expires_at: Option<i64>,
        /// The admin who made it.
        created_by: String,
        /// Time it was made.
        created_at: i64,
    },
    /// An invite revoked (its row stays, marked).
    RevokeInvite {
        /// Room.
        room_id: String,
        /// The invite.
        invite_id: String,
    },
    /// One more join with an invite.
    UseInvite {
        /// Room.
        room_id: String,
        /// The invite.
        invite_id: String,
    },
    /// A new `room_code` row: how a code finds its room, kept after the code stops working.
    InsertCode {
        /// [`join_code_hash`](events::event::join_code_hash) of the code.
        code_hash: [u8; 32],
        /// Room.
        room_id: String,
        /// The extra invite it belongs to; `None` for a standing code.
        invite_id: Option<String>,
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
        /// [`search_text`](super::search_text) of the text.
        search_text: String,
        /// Whether its text is gone (key destroyed): a placeholder.
        deleted: bool,
        /// Time.
        time: i64,
        /// Id of the event it came from.
        event_id: [u8; 16],
        /// Global position of that event.
        position: u64,
        /// The room's version at the post (its stream version).
        version: u64,
        /// The seq of the message it answers, if any.
        reply_to: Option<u64>,
    },
    /// A message's text replaced by its author; the text it had is kept as an earlier
    /// version. A placeholder keeps its (empty) text.
    EditRecord {
        /// Room.
        room_id: String,
        /// Seq.
        seq: u64,
        /// The new text; `None` when its key is gone: the message becomes a placeholder and
        /// its earlier versions go.
        message: Option<String>,
        /// [`search_text`](super::search_text) of the new text; empty with `None`.
        search_text: String,
        /// Time of the edit.
        time: i64,
        /// The room's version at the edit.
        version: u64,
    },
    /// A message deleted: a placeholder without text, reply or reactions from now on; its
    /// texts stay as earlier versions, for its author's export.
    DeleteRecord {
        /// Room.
        room_id: String,
        /// Seq.
        seq: u64,
        /// The room's version at the deletion.
        version: u64,
    },
    /// A reaction added (`on`) or taken back; either of them twice changes nothing but the
    /// message's version. A placeholder takes no reactions.
    React {
        /// Room.
        room_id: String,
        /// Seq.
        seq: u64,
        /// The symbol.
        emoji: String,
        /// Who reacted.
        user_id: String,
        /// Added or taken back.
        on: bool,
        /// Global position of the event: the order of reacting.
        position: u64,
        /// The room's version at the change.
        version: u64,
    },
    /// `by` blocks `user_id`; a block already there stays as it is.
    InsertBlock {
        /// Who blocks.
        by: String,
        /// Who is blocked.
        user_id: String,
        /// When.
        time: i64,
    },
    /// `by` no longer blocks `user_id`.
    RemoveBlock {
        /// Who blocked.
        by: String,
        /// Who was blocked.
        user_id: String,
    },
    /// An erased user's blocks go, and so do others' blocks of them (nobody can write as
    /// them any more).
    EraseBlocks {
        /// The erased user.
        user_id: String,
    },
}
