//! Who is online, across processes, and the rest of a chat's live state that is not in the
//! log: read markers ([`markers`]) and the typing limit ([`typing`]).
//!
//! Each process keeps, per user, the set of nodes where the user has a socket. Its own
//! sockets it knows (the socket registry reports each user's first socket and last one);
//! the other nodes announce their users' transitions on the signal bus, each numbered by a
//! per-node change count. With PostgreSQL, every node also keeps its users in tables beside a
//! heartbeat ([`nodes`]): a node that starts late reads who is online from them, a signal
//! lost is mended by the next read, and a node whose heartbeat stopped (killed) is dropped
//! with its users. A user's global transition (no node to some node, and back) is handed to
//! the socket layer, which tells the subscribers of the user's rooms. Nothing here waits for
//! a room actor or the database on a socket's path.

pub mod markers;
mod nodes;
pub mod typing;
mod view;

use crate::signals::{Bus, Signal};
use dashmap::DashSet;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use view::{Change, View};

/// What the presence task is told.
enum Input {
    /// This node now has (`online`) or no longer has sockets of a user.
    Local { user: String, online: bool },
    /// The other nodes and their users, as the tables hold them (PostgreSQL).
    Snapshot(view::Snapshot),
}

/// A user's global transition: online on some node, or on none any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The user.
    pub user: String,
    /// Whether they are online now.
    pub online: bool,
}

/// The presence of every user, as this process sees it.
pub struct Presence {
    online: Arc<DashSet<String>>,
    input: mpsc::UnboundedSender<Input>,
    transitions: Mutex<Option<mpsc::UnboundedReceiver<Transition>>>,
    nodes: Option<nodes::Nodes>,
}

impl Presence {
    /// Starts the presence task on `bus`; with `pool` (PostgreSQL shared with other
    /// processes), also the heartbeat and the tables.
    pub fn start(bus: &Bus, pool: Option<deadpool_postgres::Pool>) -> Arc<Self> {
        let (input, input_rx) = mpsc::unbounded_channel();
        let (transitions_tx, transitions_rx) = mpsc::unbounded_channel();
        let online = Arc::new(DashSet::new());
        let (nodes, announce) = match pool {
            Some(pool) => {
                let (nodes, announce) =
                    nodes::Nodes::start(pool, bus.node().clone(), input.clone());
                (Some(nodes), Some(announce))
            }
            None => (None, None),
        };
        let view = View::new(bus.node().clone());
        tokio::spawn(run(
            view,
            bus.clone(),
            input_rx,
            announce,
            online.clone(),
            transitions_tx,
        ));
        Arc::new(Self {
            online,
            input,
            transitions: Mutex::new(Some(transitions_rx)),
            nodes,
        })
    }

    /// This node now has its first socket of `user` (`online`), or has closed its last. Called
    /// in the order the registry saw them.
    pub fn local(&self, user: &str, online: bool) {
        let _ = self.input.send(Input::Local {
            user: user.to_owned(),
            online,
        });
    }

    /// Whether `user` has a socket on any node.
    pub fn is_online(&self, user: &str) -> bool {
        self.online.contains(user)
    }

    /// The users' global transitions, in order; taken once, by the socket layer.
    pub fn transitions(&self) -> Option<mpsc::UnboundedReceiver<Transition>> {
        self.transitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Takes this node out of the tables and tells the others at once, so that its users go
    /// offline there without waiting for its heartbeat to age.
    pub async fn stop(&self, bus: &Bus) {
        if let Some(nodes) = &self.nodes {
            nodes.stop().await;
        }
        bus.publish(Signal::NodeGone);
    }
}

/// Keeps the view: local changes (announced on the bus and, with PostgreSQL, written to the
/// tables), other nodes' signals and the tables' snapshots; hands on global transitions.
async fn run(
    mut view: View,
    bus: Bus,
    mut input: mpsc::UnboundedReceiver<Input>,
    announce: Option<mpsc::UnboundedSender<nodes::Announce>>,
    online: Arc<DashSet<String>>,
    transitions: mpsc::UnboundedSender<Transition>,
) {
    let mut heard = bus.subscribe();
    loop {
        let changes = tokio::select! {
            next = input.recv() => match next {
                None => return,
                Some(Input::Local { user, online }) => {
                    let (version, changes) = view.local(&user, online);
                    bus.publish(Signal::Presence { user: user.clone(), online, version });
                    if let Some(a) = &announce {
                        let _ = a.send(nodes::Announce { user, online, version });
                    }
                    changes
                }
                Some(Input::Snapshot(snapshot)) => view.snapshot(snapshot),
            },
            signal = heard.recv() => match signal {
                Ok(e) if *e.node == **view.node() => continue,
                Ok(e) => match &e.signal {
                    Signal::Presence { user, online, version } => {
                        view.remote(&e.node, user, *online, *version)
                    }
                    Signal::NodeGone => view.drop_node(&e.node),
                    _ => continue,
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    // The tables' next snapshot mends what was missed.
                    tracing::warn!(missed = n, "presence fell behind the signal bus");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        };
        for Change { user, online: now } in changes {
            if now {
                online.insert(user.clone());
            } else {
                online.remove(&user);
            }
            let _ = transitions.send(Transition { user, online: now });
        }
    }
}

/// The live state a server shares between REST and sockets: the bus, presence, read markers
/// and the typing limit.
pub struct Live {
    /// The signal bus.
    pub bus: Bus,
    /// Who is online.
    pub presence: Arc<Presence>,
    /// Read markers.
    pub markers: markers::ReadMarkers,
    /// One `typing` a second per user and room.
    pub typing: typing::TypingLimit,
}

impl Live {
    /// Starts presence on `bus` (with its tables in `pool` when processes share PostgreSQL),
    /// beside `markers`.
    pub fn start(
        bus: Bus,
        pool: Option<deadpool_postgres::Pool>,
        markers: markers::ReadMarkers,
    ) -> Arc<Self> {
        let presence = Presence::start(&bus, pool);
        Arc::new(Self {
            bus,
            presence,
            markers,
            typing: typing::TypingLimit::default(),
        })
    }

    /// Leaves the other processes' view of who is online (a clean stop).
    pub async fn stop(&self) {
        self.presence.stop(&self.bus).await;
    }
}
