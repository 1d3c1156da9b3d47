//! A batch's [`Change`]s regrouped so that a sink can apply each kind with one statement,
//! whatever the size of the batch: the inserts in log order, then the updates of `room`
//! coalesced into one per room.
//!
//! Applying a [`Plan`] (every insert, then every room update) leaves the tables as applying
//! the changes one by one in log order does, or fails as that does:
//!
//! - The room updates are commutative (a sum and two maxima), so all of a room's updates in a
//!   batch add up to one, applied in any order.
//! - Nothing an update writes (`member_count`, `last_seq`, `update_time`) is a key or is read
//!   by an insert, so whether an insert succeeds does not depend on the updates, and any
//!   failing insert fails the whole batch either way (one transaction).
//! - The one insert an update depends on is [`Change::InsertRoom`] of its room. In the log a
//!   room is created before anyone joins or writes in it, so its updates follow its insert and
//!   apply to the new row once moved after all inserts. An update that came *before* its room's
//!   insert in the batch (only in a log written by a faulty writer) found no row, or else the
//!   insert failed on the existing one and the batch with it: the plan drops such updates.
//! - [`Change::InsertMember`] does nothing when the member exists; a second join of the same
//!   user within the batch is dropped here, so that the first one's row stays (as one by one)
//!   and a multi-row insert need not resolve conflicts among its own rows.
//!
//! - The rare changes of users and members ([`Change::UpdateUser`], [`Change::EraseUser`],
//!   [`Change::ScrubRecords`], [`Change::RemoveMember`]) stay among the inserts in log order,
//!   after the insert of the row they change.
//!
//! Which projection emits what: `user` [`Change::InsertUser`], [`Change::UpdateUser`] and
//! [`Change::EraseUser`]; `room_member` [`Change::InsertMember`] and
//! [`Change::RemoveMember`]; `room_record` [`Change::InsertRecord`] and
//! [`Change::ScrubRecords`]; `room` [`Change::InsertRoom`], [`Change::CountMember`],
//! [`Change::UncountMember`] and [`Change::TouchRoom`].

use crate::projection::Change;
use std::collections::{HashMap, HashSet};

/// The coalesced [`Change::CountMember`] and [`Change::TouchRoom`] changes of one room in a
/// batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomUpdate {
    /// Room.
    pub room_id: String,
    /// Joins: `member_count` grows by this many.
    pub members: i64,
    /// The highest seq of the room's messages as the table stores it (`seq as i64`), `None`
    /// without messages: `last_seq` becomes at least this.
    pub last_seq: Option<i64>,
    /// The latest time of the joins and messages: `update_time` becomes at least this.
    pub update_time: i64,
}

/// A batch of changes regrouped for applying each kind at once (see the [module](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every [`Change::InsertUser`], [`Change::InsertRoom`], [`Change::InsertMember`] (the
    /// first per member) and [`Change::InsertRecord`], in log order; applied first.
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
            let (room_id, members_delta, seq, time) = match change {
                Change::CountMember { room_id, time } => (room_id, 1, None, time),
                Change::UncountMember { room_id, time } => (room_id, -1, None, time),
                Change::TouchRoom { room_id, seq, time } => (room_id, 0, Some(seq as i64), time),
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
                // The rare changes of one user or member keep their place among the inserts:
                // each follows the insert of the row it changes.
                Change::InsertUser { .. }
                | Change::InsertRecord { .. }
                | Change::UpdateUser { .. }
                | Change::EraseUser { .. }
                | Change::ScrubRecords { .. }
                | Change::RemoveMember { .. } => {
                    inserts.push(change);
                    continue;
                }
            };
            match room_at.get(&room_id).and_then(|&i| rooms[i].as_mut()) {
                Some(u) => {
                    u.members += members_delta;
                    u.last_seq = u.last_seq.max(seq);
                    u.update_time = u.update_time.max(time);
                }
                None => {
                    room_at.insert(room_id.clone(), rooms.len());
                    rooms.push(Some(RoomUpdate {
                        room_id,
                        members: members_delta,
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
            time,
        }
    }

    fn join(room_id: &str, time: i64) -> Change {
        Change::CountMember {
            room_id: room_id.into(),
            time,
        }
    }

    fn touch(room_id: &str, seq: u64, time: i64) -> Change {
        Change::TouchRoom {
            room_id: room_id.into(),
            seq,
            time,
        }
    }

    fn member(room_id: &str, user_id: &str, joined_at: i64) -> Change {
        Change::InsertMember {
            room_id: room_id.into(),
            user_id: user_id.into(),
            joined_at,
        }
    }

    fn update(room_id: &str, members: i64, last_seq: Option<i64>, time: i64) -> RoomUpdate {
        RoomUpdate {
            room_id: room_id.into(),
            members,
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
            [update("a", 2, Some(3), 17), update("b", 1, Some(2), 16)]
        );
    }

    #[test]
    fn joins_alone_leave_last_seq_alone() {
        let plan = Plan::new(vec![join("a", 5), join("a", 3)]);
        assert!(plan.inserts.is_empty());
        assert_eq!(plan.rooms, [update("a", 2, None, 5)]);
    }

    #[test]
    fn seqs_compare_as_the_table_stores_them() {
        let plan = Plan::new(vec![touch("a", 7, 1), touch("a", u64::MAX, 1)]);
        assert_eq!(plan.rooms, [update("a", 0, Some(7), 1)]);
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
        assert_eq!(
            plan.rooms,
            [update("b", 1, None, 3), update("a", 1, None, 5)]
        );
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
        };
        let changes = vec![user("x"), record(2), user("y"), record(1), record(2)];
        assert_eq!(Plan::new(changes.clone()).inserts, changes);
    }
}
