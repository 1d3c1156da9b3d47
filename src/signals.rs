//! The signal bus: what the server tells its sockets but never stores (`read_updated`,
//! `typing`, presence), published by any process and heard by every one.
//!
//! In one process (the embedded store, or an EventStoreDB log with the read side in the data
//! folder) the bus is a [`tokio::sync::broadcast`] channel. With the read side in PostgreSQL
//! it is also PostgreSQL's own `NOTIFY`/`LISTEN` on a channel of its own ([`CHANNEL`]),
//! heard on a dedicated connection that reconnects forever. Each process has a random node id:
//! it delivers its own signals at once and ignores their echo. Payloads carry ids only (no
//! names or texts), well under PostgreSQL's 8,000 bytes; a signal lost while the listener
//! reconnects is gone (presence is mended by the heartbeat tables, see [`crate::presence`]).

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// The `NOTIFY` channel of signals (the log's own is another).
pub const CHANNEL: &str = "chatroom_signal";

/// Signals a process may have waiting for its subscribers before the slowest misses some.
const CAPACITY: usize = 16_384;

/// What one process tells the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Signal {
    /// `user`'s read marker in `room` moved to `seq`: their other sockets are told.
    ReadUpdated {
        /// Whose marker.
        user: String,
        /// Which room.
        room: String,
        /// The marker now.
        seq: u64,
        /// The socket (of the publishing node) that moved it, which is not told.
        except: Option<u64>,
    },
    /// `user` is typing in `room`.
    Typing {
        /// The room.
        room: String,
        /// The typist.
        user: String,
    },
    /// The publishing node now has (`online`) or no longer has sockets of `user`; `version`
    /// counts the node's changes, so a stale view of its users is told from a newer one.
    Presence {
        /// The user.
        user: String,
        /// Whether the node has sockets of them now.
        online: bool,
        /// The node's change count after this change.
        version: u64,
    },
    /// The publishing node is stopping: its users are no longer online through it.
    NodeGone,
}

/// A signal and the node that published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The publishing node.
    pub node: String,
    /// What it says.
    pub signal: Signal,
}

/// The bus of one process.
#[derive(Clone)]
pub struct Bus {
    node: Arc<str>,
    local: broadcast::Sender<Arc<Envelope>>,
    /// Signals to send to the other processes (PostgreSQL), in order.
    remote: Option<mpsc::UnboundedSender<Arc<Envelope>>>,
}

/// A random node id: a process's, new at every start.
fn node_id() -> Arc<str> {
    hex::encode(rand::random::<[u8; 8]>()).into()
}

impl Bus {
    /// The bus of a process alone with its sockets.
    pub fn local() -> Self {
        Self {
            node: node_id(),
            local: broadcast::channel(CAPACITY).0,
            remote: None,
        }
    }

    /// The bus of a process sharing PostgreSQL at `url` (whose `pool` sends the notifications)
    /// with others.
    pub fn postgres(url: &str, pool: deadpool_postgres::Pool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let bus = Self {
            node: node_id(),
            local: broadcast::channel(CAPACITY).0,
            remote: Some(tx),
        };
        tokio::spawn(notify(pool, rx));
        tokio::spawn(listen(url.to_owned(), bus.node.clone(), bus.local.clone()));
        bus
    }

    /// This process's node id.
    pub fn node(&self) -> &Arc<str> {
        &self.node
    }

    /// Whether other processes hear this bus.
    pub fn shared(&self) -> bool {
        self.remote.is_some()
    }

    /// Delivers `signal` to this process's subscribers at once and sends it to the others.
    pub fn publish(&self, signal: Signal) {
        let envelope = Arc::new(Envelope {
            node: self.node.to_string(),
            signal,
        });
        if let Some(remote) = &self.remote {
            let _ = remote.send(envelope.clone());
        }
        // No subscriber yet (a server still starting) is not an error.
        let _ = self.local.send(envelope);
    }

    /// Every signal published from now on, by this process or another.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.local.subscribe()
    }
}

/// Sends queued signals as notifications, those waiting together in one round trip.
async fn notify(pool: deadpool_postgres::Pool, mut rx: mpsc::UnboundedReceiver<Arc<Envelope>>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 256).await > 0 {
        let payloads: Vec<String> = batch
            .drain(..)
            .filter_map(|e| serde_json::to_string(&*e).ok())
            .collect();
        let sent = async {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let statement = client
                .prepare_cached("select pg_notify($1, $2)")
                .await
                .map_err(|e| e.to_string())?;
            let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 2]> =
                payloads.iter().map(|p| [&CHANNEL as _, p as _]).collect();
            let sends = params.iter().map(|p| client.execute(&statement, p));
            futures::future::try_join_all(sends)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        };
        if let Err(e) = sent.await {
            tracing::warn!(error = %e, dropped = payloads.len(), "could not send signals to the other processes");
        }
    }
}

/// Hears the other processes' signals on a connection of its own, reconnecting forever, and
/// hands them to this process's subscribers (its own echoes are dropped).
async fn listen(url: String, node: Arc<str>, local: broadcast::Sender<Arc<Envelope>>) {
    events::postgres::follow_notifications(url, CHANNEL, "signals", move |payload| {
        match serde_json::from_str::<Envelope>(payload) {
            Ok(e) if *e.node != *node => {
                let _ = local.send(Arc::new(e));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "an unreadable signal was ignored"),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::{Bus, Envelope, Signal};

    #[tokio::test]
    async fn a_local_signal_reaches_every_subscriber_at_once() {
        let bus = Bus::local();
        let (mut a, mut b) = (bus.subscribe(), bus.subscribe());
        bus.publish(Signal::Typing {
            room: "r".into(),
            user: "u".into(),
        });
        for rx in [&mut a, &mut b] {
            let e = rx.try_recv().expect("delivered at once");
            assert_eq!(e.node, &**bus.node());
            assert!(matches!(&e.signal, Signal::Typing { room, .. } if room == "r"));
        }
    }

    #[test]
    fn a_signal_is_small_json_of_ids() {
        let e = Envelope {
            node: "0123456789abcdef".into(),
            signal: Signal::ReadUpdated {
                user: "u-1".into(),
                room: "r-1".into(),
                seq: 42,
                except: Some(7),
            },
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"node":"0123456789abcdef","signal":{"t":"read_updated","user":"u-1","room":"r-1","seq":42,"except":7}}"#
        );
        assert_eq!(serde_json::from_str::<Envelope>(&text).unwrap(), e);
        assert!(text.len() < 8000);
    }
}
