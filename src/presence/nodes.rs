//! Presence in PostgreSQL, for processes that share it: this node's heartbeat and users in
//! `presence_node` / `presence_user`, and the other nodes read back from them.
//!
//! Every [`HEARTBEAT`] the node stamps its row with the database's time (one clock for every
//! process), drops the nodes not stamped for [`STALE`] (a process killed without a word: its
//! users go offline within `STALE` + `HEARTBEAT` everywhere), and reads the live nodes' users,
//! which the presence task compares with what their signals said. A node that finds its own
//! row gone (it was thought dead) writes itself back with all its users.

use super::Input;
use super::view::{NodeUsers, Snapshot};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often a node stamps its heartbeat and reads the others.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A node not stamped for this long is dropped with its users.
pub const STALE: Duration = Duration::from_secs(15);

/// A change of this node's users, to write.
pub struct Announce {
    pub user: String,
    pub online: bool,
    pub version: u64,
}

/// The running heartbeat.
pub struct Nodes {
    pool: deadpool_postgres::Pool,
    node: Arc<str>,
    task: tokio::task::JoinHandle<()>,
}

impl Nodes {
    /// Starts the heartbeat of `node`; snapshots of the others go to `input`. Changes of this
    /// node's users are written from the sender returned, in order.
    pub fn start(
        pool: deadpool_postgres::Pool,
        node: Arc<str>,
        input: mpsc::UnboundedSender<Input>,
    ) -> (Self, mpsc::UnboundedSender<Announce>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(pool.clone(), node.clone(), rx, input));
        (Self { pool, node, task }, tx)
    }

    /// Stops the heartbeat and removes this node's rows.
    pub async fn stop(&self) {
        self.task.abort();
        let removed = async {
            let c = self.pool.get().await.map_err(|e| e.to_string())?;
            c.execute("delete from presence_node where node = $1", &[&&*self.node])
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(e) = removed.await {
            tracing::warn!(error = %e, "could not remove this node's presence rows");
        }
    }
}

/// What the heartbeat keeps of this node.
struct Own {
    node: Arc<str>,
    version: u64,
    users: HashSet<String>,
    /// The tables may not hold `users`: write them all at the next beat.
    dirty: bool,
}

async fn run(
    pool: deadpool_postgres::Pool,
    node: Arc<str>,
    mut changes: mpsc::UnboundedReceiver<Announce>,
    input: mpsc::UnboundedSender<Input>,
) {
    let mut own = Own {
        node,
        version: 0,
        users: HashSet::new(),
        dirty: true,
    };
    let mut beat = tokio::time::interval(HEARTBEAT);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            n = changes.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    return;
                }
                let mut changed: HashMap<String, bool> = HashMap::new();
                for a in batch.drain(..) {
                    own.version = own.version.max(a.version);
                    if a.online {
                        own.users.insert(a.user.clone());
                    } else {
                        own.users.remove(&a.user);
                    }
                    changed.insert(a.user, a.online);
                }
                if !own.dirty
                    && let Err(e) = write_changes(&pool, &own, changed).await
                {
                    tracing::warn!(error = %e, "could not write presence; retrying at the next beat");
                    own.dirty = true;
                }
            }
            _ = beat.tick() => {
                match beat_once(&pool, &mut own).await {
                    Ok(snapshot) => {
                        let _ = input.send(Input::Snapshot(snapshot));
                    }
                    Err(e) => tracing::warn!(error = %e, "presence heartbeat failed; retrying"),
                }
            }
        }
    }
}

/// Writes the users whose presence changed on this node (`true`: online), and the node's
/// change count; a node row that had to be made again (the node was thought dead) gets every
/// user.
async fn write_changes(
    pool: &deadpool_postgres::Pool,
    own: &Own,
    changed: HashMap<String, bool>,
) -> Result<(), String> {
    let (on, off): (Vec<_>, Vec<_>) = changed.into_iter().partition(|(_, online)| *online);
    let on: Vec<String> = on.into_iter().map(|(u, _)| u).collect();
    let off: Vec<String> = off.into_iter().map(|(u, _)| u).collect();
    let mut c = pool.get().await.map_err(|e| e.to_string())?;
    let tx = c.transaction().await.map_err(|e| e.to_string())?;
    let node: &str = &own.node;
    let version = own.version as i64;
    let made: bool = tx
        .query_one(
            "insert into presence_node (node, seen_at, version) values ($1, now(), $2)
             on conflict (node) do update
             set seen_at = now(), version = greatest(presence_node.version, excluded.version)
             returning xmax = 0",
            &[&node, &version],
        )
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    if made {
        // Thought dead and dropped with its users: they are all written again.
        let all: Vec<&str> = own.users.iter().map(String::as_str).collect();
        tx.execute(
            "insert into presence_user (node, user_id) select $1, unnest($2::text[])",
            &[&node, &all],
        )
        .await
        .map_err(|e| e.to_string())?;
        return tx.commit().await.map_err(|e| e.to_string());
    }
    tx.execute(
        "delete from presence_user where node = $1 and user_id = any($2)",
        &[&node, &off],
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.execute(
        "insert into presence_user (node, user_id) select $1, unnest($2::text[])
         on conflict do nothing",
        &[&node, &on],
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())
}

/// Writes every user of this node again, with its change count.
async fn write_all(pool: &deadpool_postgres::Pool, own: &Own) -> Result<(), String> {
    let mut c = pool.get().await.map_err(|e| e.to_string())?;
    let tx = c.transaction().await.map_err(|e| e.to_string())?;
    let node: &str = &own.node;
    let users: Vec<&str> = own.users.iter().map(String::as_str).collect();
    tx.execute(
        "insert into presence_node (node, seen_at, version) values ($1, now(), $2)
         on conflict (node) do update set seen_at = now(), version = excluded.version",
        &[&node, &(own.version as i64)],
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.execute("delete from presence_user where node = $1", &[&node])
        .await
        .map_err(|e| e.to_string())?;
    tx.execute(
        "insert into presence_user (node, user_id) select $1, unnest($2::text[])",
        &[&node, &users],
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())
}

/// One heartbeat: stamps this node (writing it all again when it was dropped or a write
/// failed), drops the stale nodes, and reads the live ones.
async fn beat_once(pool: &deadpool_postgres::Pool, own: &mut Own) -> Result<Snapshot, String> {
    if !own.dirty {
        let c = pool.get().await.map_err(|e| e.to_string())?;
        let stamped = c
            .execute(
                "update presence_node set seen_at = now() where node = $1",
                &[&&*own.node],
            )
            .await
            .map_err(|e| e.to_string())?;
        own.dirty = stamped == 0;
    }
    if own.dirty {
        write_all(pool, own).await?;
        own.dirty = false;
    }
    let c = pool.get().await.map_err(|e| e.to_string())?;
    let stale = format!("{} seconds", STALE.as_secs());
    c.execute(
        "delete from presence_node where seen_at < now() - $1::text::interval",
        &[&stale],
    )
    .await
    .map_err(|e| e.to_string())?;
    let rows = c
        .query(
            "select n.node, n.version, u.user_id from presence_node n
             left join presence_user u on u.node = n.node
             where n.seen_at >= now() - $1::text::interval",
            &[&stale],
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut snapshot = Snapshot::new();
    for r in rows {
        let entry: &mut NodeUsers = snapshot.entry(r.get(0)).or_default();
        entry.version = r.get::<_, i64>(1) as u64;
        if let Some(user) = r.get::<_, Option<String>>(2) {
            entry.users.insert(user);
        }
    }
    Ok(snapshot)
}
