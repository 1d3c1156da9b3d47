//! Direct rooms in the registry: opening the one room of two people, once, whoever asks and
//! on whichever process.

use super::{Created, Rooms, unavailable};
use crate::command::{self, Applied};
use crate::room::Command;
use events::event::{DirectRoomOpened, MemberJoined, room_stream};
use events::{Event, Expected, NewEvent};

/// What opening a direct room did.
#[derive(Debug, Clone)]
pub enum Opened {
    /// The pair's room did not exist: it was created, both as members.
    Created(Created),
    /// It existed (or another request created it at the same moment); the caller is a member
    /// of it again if they had left.
    Existing {
        /// Its id.
        room_id: String,
        /// What reopening it did.
        applied: Applied,
    },
}

impl Rooms {
    /// Opens the one direct room of `user_id` and `other` (the caller first), whose id is
    /// `room_id` ([`Keys::direct_room_id`](events::keys::Keys::direct_room_id)): creates it
    /// with both as members, or, when it exists, has its actor bring the caller back if they
    /// left. Two requests (on any processes) creating it at once meet in the log as a version
    /// conflict: the loser finds the winner's room.
    ///
    /// # Errors
    /// The room's rejection of the reopening, or `Unavailable`.
    pub async fn open_direct(
        &self,
        room_id: &str,
        user_id: &str,
        other: &str,
    ) -> Result<Opened, command::Error> {
        let stream = room_stream(room_id);
        let exists = self
            .inner
            .store
            .stream_version(&stream)
            .await
            .map_err(unavailable)?
            .is_some();
        if !exists {
            let mut users = [user_id.to_owned(), other.to_owned()];
            users.sort();
            let now = events::now_ms();
            let joined = |user: &str| {
                Event::MemberJoined(MemberJoined {
                    room_id: room_id.to_owned(),
                    user_id: user.to_owned(),
                    invite: None,
                })
            };
            let batch = [
                Event::DirectRoomOpened(DirectRoomOpened {
                    room_id: room_id.to_owned(),
                    users,
                    by: user_id.to_owned(),
                }),
                joined(user_id),
                joined(other),
            ]
            .iter()
            .map(|e| NewEvent::with_id(uuid::Uuid::new_v4(), e, now))
            .collect();
            match self
                .inner
                .store
                .append(&stream, Expected::NoStream, batch)
                .await
            {
                Ok(recorded) => {
                    return Ok(Opened::Created(Created {
                        room_id: room_id.to_owned(),
                        time_ms: now,
                        position: recorded.last().map_or(0, |r| r.position),
                    }));
                }
                Err(events::Error::Conflict { .. }) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        let command = Command::Reopen {
            user_id: user_id.to_owned(),
        };
        let applied = self.command(room_id, command).await?;
        Ok(Opened::Existing {
            room_id: room_id.to_owned(),
            applied,
        })
    }
}
