//! The server-wide retention limit (`--retention-days N`): messages older than `N` days
//! become unreadable the way an erasure makes them so. History shows them as placeholders
//! from the next sweep on ([`crate::erasure::SWEEP_EVERY`]); the keys of every period wholly
//! past the limit are destroyed, so the log forgets them within a period
//! ([`events::seal::PERIOD_MS`]) more. Keys a legal hold covers stay until it is lifted.

use crate::app::App;
use crate::erasure::Error;
use events::keys::Destroy;
use events::seal::period_of;

/// Applies a retention of `days` now.
///
/// # Errors
/// When the storage fails.
pub async fn apply(app: &App, days: u32) -> Result<(), Error> {
    let cutoff = events::now_ms() - i64::from(days) * 86_400_000;
    let destroyed = app
        .keys
        .destroy(&Destroy::TextsBefore {
            period: period_of(cutoff),
            room: None,
        })
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let scrubbed = app
        .read
        .scrub_before(cutoff)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    if destroyed > 0 || scrubbed > 0 {
        tracing::info!(days, destroyed, scrubbed, "retention applied");
        crate::erasure::scrub_files(app).await;
    }
    Ok(())
}
