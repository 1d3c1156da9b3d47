//! Subscribing a sink to a room: replaying what it missed, by `seq` (part 1's `since`) or by
//! version (`sinceVersion`), before it gets anything live.

use super::{READ_PAGE, RoomActor, RoomState, catch_up, fan_out};
use crate::changes;
use crate::command::{Error, MAX_REPLAY, Resume, Subscribed};
use crate::delivery::{Delivery, JoinNotice, Subscriber};
use crate::room::Rejection;
use events::Event;
use std::sync::Arc;

impl RoomActor {
    pub(super) async fn subscribe(
        &self,
        state: &mut RoomState,
        subscriber: Subscriber,
        resume: Resume,
    ) -> Result<Subscribed, Error> {
        // Another process may have written since we last looked: be current before comparing
        // the resume point with the room's newest.
        catch_up(&*self.store, &self.settings.keys, state, true)
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        if !state.room.exists {
            return Err(Rejection::NotFound.into());
        }
        if !state.room.is_member(&subscriber.user_id) {
            return Err(Rejection::NotMember.into());
        }
        let (last_seq, last_version) = (state.room.last_seq, state.room.version);
        let recovered = match resume {
            Resume::No => false,
            Resume::Seq(since) if since == last_seq => true,
            Resume::Seq(since) if since < last_seq && last_seq - since <= MAX_REPLAY => {
                let Some(from) = state.room.version_of(since + 1) else {
                    return Err(Error::Unavailable("resume point not found".into()));
                };
                self.replay(
                    state,
                    &subscriber,
                    from,
                    |e| matches!(e, Event::MessagePosted(m) if m.seq > since),
                )
                .await?;
                true
            }
            Resume::Version(since) if since == last_version => true,
            Resume::Version(since)
                if since < last_version && last_version - since <= MAX_REPLAY =>
            {
                self.replay(state, &subscriber, since + 1, |_| true).await?;
                true
            }
            Resume::Seq(_) | Resume::Version(_) => false,
        };
        let user_id = subscriber.user_id.clone();
        state
            .subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(subscriber.id, subscriber);
        fan_out(
            state,
            &Delivery::Joined(Arc::new(JoinNotice::new(
                state.room_id.clone(),
                user_id,
                last_version,
            ))),
        );
        Ok(Subscribed {
            last_seq,
            last_version,
            recovered,
        })
    }

    /// Sends `subscriber` what the room's events from version `from` up to the state's show,
    /// for those `wanted` picks, with contents as they are now.
    async fn replay(
        &self,
        state: &RoomState,
        subscriber: &Subscriber,
        mut from: u64,
        wanted: impl Fn(&Event) -> bool,
    ) -> Result<(), Error> {
        let unavailable = |e: events::Error| Error::Unavailable(e.to_string());
        let mut shown = changes::Shown::default();
        while from <= state.room.version {
            let page = self
                .store
                .read_stream(&state.stream, from, READ_PAGE)
                .await
                .map_err(unavailable)?;
            let Some(last) = page.last() else { break };
            from = last.version + 1;
            for rec in page {
                if rec.version > state.room.version {
                    // Written elsewhere and not yet folded in: the next catch-up delivers it.
                    break;
                }
                let Ok(event) = rec.decode() else { continue };
                if !wanted(&event) {
                    continue;
                }
                let delivery = changes::delivery_of(
                    &*self.store,
                    &self.settings.keys,
                    &state.room,
                    &state.room_id,
                    &rec,
                    event,
                    &mut shown,
                )
                .await
                .map_err(unavailable)?;
                if let Some(d) = delivery
                    && !subscriber.sink.deliver(&d)
                {
                    subscriber.sink.closed();
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
