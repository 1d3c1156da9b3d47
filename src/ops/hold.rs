//! `chatroom hold add | remove | list`: legal holds. A hold keeps the keys it covers from
//! being destroyed, so that an operator can still read that data with `chatroom audit`;
//! what people see in the chat follows an erasure or the retention limit at once all the
//! same. Lifting a hold carries out at once what it kept pending ([`crate::erasure::sweep`]).

use super::erase::{caught_up, state};
use crate::config::{HoldAdd, RetentionArgs, StoreArgs};
use crate::storage::Storage;
use events::event::room_stream;
use events::keys::{Covers, Destroy, Hold, Keys};
use events::seal::period_of;
use std::collections::HashMap;

/// Longest reason, in characters: a reference to a case, not a file.
const REASON_MAX: usize = 1000;

/// Runs `chatroom hold add`: prints the new hold's id.
///
/// # Errors
/// An empty or overlong reason, an unknown room or user, or a storage failure.
pub async fn hold_add(args: HoldAdd) -> anyhow::Result<()> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        anyhow::bail!("--reason must say why the data is held");
    }
    if reason.chars().count() > REASON_MAX {
        anyhow::bail!("--reason is longer than {REASON_MAX} characters");
    }
    let storage = Storage::open(&args.store).await?;
    let placed = add(&storage, &args, reason).await;
    storage.close();
    println!("{}", placed?.id);
    Ok(())
}

async fn add(storage: &Storage, args: &HoldAdd, reason: &str) -> anyhow::Result<Hold> {
    let covers = match (&args.room, &args.user) {
        (Some(room), _) => {
            if storage
                .store
                .stream_version(&room_stream(room))
                .await?
                .is_none()
            {
                anyhow::bail!("no room has the id {room:?}");
            }
            Covers::Room(room.clone())
        }
        (None, Some(user)) => Covers::User(super::audit::resolve_user(storage, user).await?),
        (None, None) => anyhow::bail!("name a room (--room) or a user (--user)"),
    };
    Ok(storage.keys.add_hold(covers, reason).await?)
}

/// Runs `chatroom hold remove`: lifts the hold, then destroys what it kept.
///
/// # Errors
/// An unknown hold (nothing is changed), a server running on the embedded store, or a
/// storage failure.
pub async fn hold_remove(
    store: StoreArgs,
    retention: RetentionArgs,
    id: String,
) -> anyhow::Result<()> {
    let state = state(&store, retention.retention_days).await?;
    let done = async {
        let app = &state.app;
        if !app.keys.holds().await?.iter().any(|h| h.id == id) {
            anyhow::bail!("no hold has the id {id:?}");
        }
        if !app.keys.remove_hold(&id).await? {
            anyhow::bail!("no hold has the id {id:?} (another command lifted it)");
        }
        caught_up(app).await?;
        crate::erasure::sweep(app).await?;
        Ok(())
    }
    .await;
    state.stop().await;
    done?;
    println!("hold {id} lifted; the erasures and expiries it kept pending are carried out");
    Ok(())
}

/// Runs `chatroom hold list`.
///
/// # Errors
/// When the storage cannot be read.
pub async fn hold_list(store: StoreArgs, retention: RetentionArgs) -> anyhow::Result<()> {
    let storage = Storage::open(&store).await?;
    let listed = list(&storage, retention.retention_days).await;
    storage.close();
    print!("{}", listed?);
    Ok(())
}

/// Keys an erased user still has because a hold covers them, by user.
async fn pending_erasures(storage: &Storage) -> anyhow::Result<HashMap<String, u64>> {
    let mut pending = HashMap::new();
    for user in storage.reads.erased_users().await? {
        let held = storage.keys.held(&Destroy::User(user.clone())).await?;
        if held > 0 {
            pending.insert(user, held);
        }
    }
    Ok(pending)
}

fn past_limit(period: i64, room: Option<&str>) -> Destroy {
    Destroy::TextsBefore {
        period,
        room: room.map(str::to_owned),
    }
}

async fn list(storage: &Storage, retention_days: u32) -> anyhow::Result<String> {
    use std::fmt::Write;
    let keys: &Keys = &storage.keys;
    let holds = keys.holds().await?;
    let mut erasures = pending_erasures(storage).await?;
    let limit = (retention_days > 0)
        .then(|| period_of(events::now_ms() - i64::from(retention_days) * 86_400_000));
    let mut out = String::new();
    if holds.is_empty() {
        out.push_str("no legal holds\n");
    }
    for hold in &holds {
        let (what, id) = match &hold.covers {
            Covers::Room(r) => ("room", r),
            Covers::User(u) => ("user", u),
        };
        writeln!(
            out,
            "{}  {what} {id}  since {}  reason {:?}",
            hold.id,
            crate::wire::time(hold.created_at),
            hold.reason
        )?;
        match &hold.covers {
            Covers::User(u) => {
                if let Some(n) = erasures.remove(u) {
                    writeln!(out, "    pending: the erasure of this user ({n} keys kept)")?;
                }
            }
            Covers::Room(r) => {
                if let Some(period) = limit {
                    let n = keys.held(&past_limit(period, Some(r))).await?;
                    if n > 0 {
                        writeln!(
                            out,
                            "    pending: {n} text keys of this room past the {retention_days}-day retention limit"
                        )?;
                    }
                }
            }
        }
    }
    // What room holds keep of erased users: a key of one room's texts may be under several.
    let mut rest: Vec<_> = erasures.into_iter().collect();
    rest.sort();
    for (user, n) in rest {
        writeln!(
            out,
            "pending under the room holds: the erasure of user {user} ({n} keys kept)"
        )?;
    }
    if let Some(period) = limit {
        let n = keys.held(&past_limit(period, None)).await?;
        if n > 0 {
            writeln!(
                out,
                "pending in all: {n} text keys past the {retention_days}-day retention limit"
            )?;
        }
    }
    Ok(out)
}
