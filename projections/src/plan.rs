//! A batch's [`Change`]s regrouped so that a sink can apply each kind with few statements,
//! whatever the size of the batch: every change but the activity of rooms in log order, then
//! that activity coalesced into one update per room.
//!
//! Applying a [`Plan`] (every change in order, then every room update) leaves the tables as
//! applying the changes one by one in log order does, or fails as that does:
//!
//! - The room updates are commutative (two maxima), so all of a room's updates in a batch add
//!   up to one, applied in any order.
//! - Nothing an update writes (`last_seq`, `update_time`) is a key or is read by another
//!   change (the settings changes move `update_time` by a maximum too), so whether another
//!   change succeeds does not depend on the updates, and any failing one fails the whole batch
//!   either way (one transaction).
//! - The one change an update depends on is [`Change::InsertRoom`] of its room. In the log a
//!   room is created before anyone joins or writes in it, so its updates follow its insert and
//!   apply to the new row once moved after all inserts. An update that came *before* its room's
//!   insert in the batch (only in a log written by a faulty writer) found no row, or else the
//!   insert failed on the existing one and the batch with it: the plan drops such updates.
//! - [`Change::InsertMember`] does nothing when the member exists; a second insert of the same
//!   member within the batch, with no removal of them between, is dropped here, so that the
//!   first one's row stays (as one by one) and a multi-row insert need not resolve conflicts
//!   among its own rows. After a removal (a kick, then a join again) the next insert counts.
//!
//! A sink may gather runs of inserts into one statement per table, but no insert may pass a
//! change of another kind ([`Plan::is_insert`]): a member removed and back within one batch
//! is a removal between two inserts of one row.
//!
//! Which projection emits what: `user` [`Change::InsertUser`], [`Change::UpdateUser`],
//! [`Change::EraseUser`], and for `user_block` [`Change::InsertBlock`], [`Change::RemoveBlock`]
//! and [`Change::EraseBlocks`]; `room_member` [`Change::InsertMember`], [`Change::RemoveMember`],
//! [`Change::SetRole`] and [`Change::SetMute`]; `room_record` [`Change::InsertRecord`],
//! [`Change::EditRecord`], [`Change::DeleteRecord`], [`Change::React`] and
//! [`Change::ScrubRecords`]; `room` [`Change::InsertRoom`], [`Change::TouchRoom`],
//! [`Change::UpdateRoom`], [`Change::ArchiveRoom`], [`Change::SetOwner`] and
//! [`Change::RecodeRoom`]; `room_ban` [`Change::InsertBan`] and [`Change::RemoveBan`];
//! `room_invite` [`Change::InsertInvite`], [`Change::RevokeInvite`] and
//! [`Change::UseInvite`]; `room_code` [`Change::InsertCode`].

use crate::projection::Change;
use std::collections::{HashMap, HashSet};

/// The coalesced [`Change::TouchRoom`] changes of one room in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomUpdate {
    /// Room.
    pub room_id: String,
    /// The highest seq of the room's messages as the table stores it (`seq as i64`), `None`
    /// without messages: `last_seq` becomes at least this.
    pub last_seq: Option<i64>,
    /// The latest time of the room's activity: `update_time` becomes at least this.
    pub update_time: i64,
}

/// A batch of changes regrouped for applying each kind at once (see the [module](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every change but [`Change::TouchRoom`] (and the dropped ones), in log order; applied
    /// first.
    pub inserts: Vec<Change>,
    /// One update per room, in the order of the rooms' first update; applied after the
    /// inserts.
    pub rooms: Vec<RoomUpdate>,
}

impl Plan {
    /// Regroups `changes`, given in log order.
    pub fn new(changes: impl IntoIterator<Item = Change>) -> Self {
        let mut inserts = Vec::new();
        let mut rooms: Vec<Option<RoomUpdate>> = Vec::new();
        let mut room_at: HashMap<String, usize> = HashMap::new();
        let mut members: HashSet<(String, String)> = HashSet::new();
        for change in changes {
            let (room_id, seq, time) = match change {
                Change::TouchRoom { room_id, seq, time } => (room_id, seq.map(|s| s as i64), time),
                Change::InsertRoom { ref id, .. } => {
                    // Updates before the room's insert found no row (see the module).
                    if let Some(i) = room_at.remove(id) {
                        rooms[i] = None;
                    }
                    inserts.push(change);
                    continue;
                }
                Change::InsertMember {
                    ref room_id,
                    ref user_id,
                    ..
                } => {
                    if members.insert((room_id.clone(), user_id.clone())) {
                        inserts.push(change);
                    }
                    continue;
                }
                Change::RemoveMember {
                    ref room_id,
                    ref user_id,
                } => {
                    members.remove(&(room_id.clone(), user_id.clone()));
                    inserts.push(change);
                    continue;
                }
                // Each follows, in log order, the insert of the row it changes.
                _ => {
                    inserts.push(change);
                    continue;
                }
            };
            match room_at.get(&room_id).and_then(|&i| rooms[i].as_mut()) {
                Some(u) => {
                    u.last_seq = u.last_seq.max(seq);
                    u.update_time = u.update_time.max(time);
                }
                None => {
                    room_at.insert(room_id.clone(), rooms.len());
                    rooms.push(Some(RoomUpdate {
                        room_id,
                        last_seq: seq,
                        update_time: time,
                    }));
                }
            }
        }
        Self {
            inserts,
            rooms: rooms.into_iter().flatten().collect(),
        }
    }

    /// Whether `change` is an insert a sink may gather with the other inserts of its table
    /// between two changes of other kinds.
    pub fn is_insert(change: &Change) -> bool {
        matches!(
            change,
            Change::InsertUser { .. }
                | Change::InsertRoom { .. }
                | Change::InsertMember { .. }
                | Change::InsertRecord { .. }
                | Change::InsertCode { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(id: &str, time: i64) -> Change {
        Change::InsertRoom {
            id: id.into(),
            name: format!("name {id}"),
            description: String::new(),
            owner: "o".into(),
            avatar_image: String::new(),
            room_hash_id: format!("code {id}"),
            direct: None,
            time,
        }
    }

    fn join(room_id: &str, time: i64) -> Change {
        Change::TouchRoom {
            room_id: room_id.into(),
            seq: None,
            time,
        }
    }

    fn touch(room_id: &str, seq: u64, time: i64) -> Change {
        Change::TouchRoom {
            room_id: room_id.into(),
            seq: Some(seq),
            time,
        }
    }

    fn member(room_id: &str, user_id: &str, joined_at: i64) -> Change {
        Change::InsertMember {
            room_id: room_id.into(),
            user_id: user_id.into(),
            role: events::event::Role::Member,
            joined_at,
        }
    }

    fn update(room_id: &str, last_seq: Option<i64>, time: i64) -> RoomUpdate {
        RoomUpdate {
            room_id: room_id.into(),
            last_seq,
            update_time: time,
        }
    }

    #[test]
    fn an_empty_batch_plans_nothing() {
        assert_eq!(Plan::new(Vec::new()), Plan::default());
    }

    #[test]
    fn updates_of_interleaved_rooms_add_up_to_one_per_room() {
        let plan = Plan::new(vec![
            room("a", 10),
            join("a", 11),
            room("b", 12),
            join("b", 13),
            touch("a", 1, 14),
            join("a", 15),
            touch("b", 1, 16),
            touch("a", 2, 17),
            // Times and seqs need not grow: the maxima are kept.
            touch("a", 3, 9),
            touch("b", 2, 12),
        ]);
        assert_eq!(plan.inserts, [room("a", 10), room("b", 12)]);
        assert_eq!(
            plan.rooms,
            [update("a", Some(3), 17), update("b", Some(2), 16)]
        );
    }

    #[test]
    fn joins_alone_leave_last_seq_alone() {
        let plan = Plan::new(vec![join("a", 5), join("a", 3)]);
        assert!(plan.inserts.is_empty());
        assert_eq!(plan.rooms, [update("a", None, 5)]);
    }

    #[test]
    fn seqs_compare_as_the_table_stores_them() {
        let plan = Plan::new(vec![touch("a", 7, 1), touch("a", u64::MAX, 1)]);
        assert_eq!(plan.rooms, [update("a", Some(7), 1)]);
    }

    #[test]
    fn updates_before_their_rooms_insert_are_dropped() {
        let plan = Plan::new(vec![
            join("a", 1),
            touch("a", 1, 2),
            join("b", 3),
            room("a", 4),
            join("a", 5),
        ]);
        assert_eq!(plan.inserts, [room("a", 4)]);
        assert_eq!(plan.rooms, [update("b", None, 3), update("a", None, 5)]);
    }

    #[test]
    fn a_second_join_of_a_member_is_dropped_and_the_first_kept() {
        let plan = Plan::new(vec![
            member("a", "u", 1),
            member("b", "u", 2),
            member("a", "v", 3),
            member("a", "u", 4),
        ]);
        assert_eq!(
            plan.inserts,
            [
                member("a", "u", 1),
                member("b", "u", 2),
                member("a", "v", 3)
            ]
        );
        assert!(plan.rooms.is_empty());
    }

    #[test]
    fn a_member_removed_and_back_in_one_batch_is_inserted_again() {
        let remove = Change::RemoveMember {
            room_id: "a".into(),
            user_id: "u".into(),
        };
        let changes = vec![
            member("a", "u", 1),
            remove.clone(),
            member("a", "u", 2),
            member("a", "u", 3),
        ];
        let plan = Plan::new(changes);
        assert_eq!(
            plan.inserts,
            [member("a", "u", 1), remove.clone(), member("a", "u", 2)]
        );
        assert!(!Plan::is_insert(&remove));
        assert!(Plan::is_insert(&member("a", "u", 1)));
    }

    #[test]
    fn other_inserts_keep_their_order() {
        let user = |id: &str| Change::InsertUser {
            id: id.into(),
            name: Some(id.into()),
            created_at: 1,
        };
        let record = |seq: u64| Change::InsertRecord {
            room_id: "a".into(),
            seq,
            message_id: format!("m{seq}"),
            user_id: "u".into(),
            message: "hi".into(),
            search_text: "hi".into(),
            deleted: false,
            time: 1,
            event_id: [seq as u8; 16],
            position: seq,
            version: seq + 2,
            reply_to: None,
        };
        let changes = vec![user("x"), record(2), user("y"), record(1), record(2)];
        assert_eq!(Plan::new(changes.clone()).inserts, changes);
    }
}
