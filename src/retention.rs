//! Retention limits: the server-wide one (`--retention-days N`) and each room's own
//! (`retention_days`, set by its owner); where both apply, the shorter wins. Messages older than
//! the limit become unreadable the way an erasure makes them so. History shows them as
//! placeholders from the next sweep on ([`crate::erasure::SWEEP_EVERY`]); the keys of every
//! period wholly past the limit are destroyed, so the log forgets them within a period
//! ([`events::seal::PERIOD_MS`]) more. Keys a legal hold covers stay until it is lifted.

use crate::app::App;
use crate::erasure::Error;
use events::keys::Destroy;
use events::seal::period_of;

pub(crate) const DAY_MS: i64 = 86_400_000;

/// Applies the server-wide limit (`server_days`, if set) to every room, then each room's own
/// limit to the room where it is shorter.
///
/// # Errors
/// When the storage fails.
pub async fn apply(app: &App, server_days: Option<u32>) -> Result<(), Error> {
    let unavailable = |e: projections::sqlite::Error| Error::Unavailable(e.to_string());
    let now = events::now_ms();
    let (mut destroyed, mut scrubbed) = (0, 0);
    if let Some(days) = server_days {
        let (d, s) = before(app, now - i64::from(days) * DAY_MS, None).await?;
        (destroyed, scrubbed) = (destroyed + d, scrubbed + s);
    }
    for (room, days) in app.read.retention_rooms().await.map_err(unavailable)? {
        if server_days.is_some_and(|s| s <= days) {
            continue;
        }
        let (d, s) = before(app, now - i64::from(days) * DAY_MS, Some(room)).await?;
        (destroyed, scrubbed) = (destroyed + d, scrubbed + s);
    }
    if destroyed > 0 || scrubbed > 0 {
        tracing::info!(?server_days, destroyed, scrubbed, "retention applied");
        crate::erasure::scrub_files(app).await;
    }
    Ok(())
}

/// Makes the texts older than `cutoff` (ms) unreadable, of `room` or of every room: how many
/// keys went and how many messages became placeholders.
async fn before(app: &App, cutoff: i64, room: Option<String>) -> Result<(u64, u64), Error> {
    let destroyed = app
        .keys
        .destroy(&Destroy::TextsBefore {
            period: period_of(cutoff),
            room: room.clone(),
        })
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let scrubbed = app
        .read
        .scrub_before(cutoff, room.as_deref())
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok((destroyed, scrubbed))
}
