//! The Socket.IO namespace `/chatroom`.
//!
//! A connection is authenticated by a middleware from `auth.token`. The event handler is a
//! plain closure that checks the payload, the caller's identity and the rate limit on the spot
//! (socketioxide calls it in the order the frames arrived) and queues the work in the socket's
//! bounded queue; a worker task, started when work arrives and gone a second after the queue
//! ran dry, hands it to room actors in that order without waiting for each to be written, so
//! one socket's messages keep their order while many of them share a batch. An idle socket
//! holds no task and no queue, however many rooms it joined. Deliveries go out through
//! [`sink::SocketSink`].

mod registry;
mod sink;
mod worker;

pub use registry::Registry;

use crate::app::Shared;
use crate::auth::Session;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// The namespace of the contract.
pub const NAMESPACE: &str = "/chatroom";
/// Jobs a socket may have queued before further events are refused.
const QUEUE: usize = 512;

/// What a socket knows about itself.
pub(crate) struct Ctx {
    pub(crate) id: u64,
    pub(crate) session: Session,
    /// The socket's queued work and joined rooms.
    pub(crate) work: std::sync::Mutex<worker::Work>,
    /// Wakes a worker waiting for work.
    pub(crate) more: tokio::sync::Notify,
    /// Cancelled when the socket disconnects: its worker stops, and the socket's rooms are
    /// unsubscribed. (A cancellation token is about a third of the size of a `watch` channel.)
    pub(crate) gone: CancellationToken,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Why a connection was refused; its text is the client's `connect_error` message.
#[derive(Debug)]
enum Refused {
    Unauthorized,
    TooManyConnections,
}

use Refused::Unauthorized;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Unauthorized => "unauthorized",
            Refused::TooManyConnections => "too_many_connections",
        })
    }
}

/// An error code and message of the contract.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn json(&self) -> Value {
        json!({"code": self.code, "message": self.message})
    }
}

impl From<actors::Error> for Failure {
    fn from(e: actors::Error) -> Self {
        use actors::room::Rejection;
        match e {
            actors::Error::Rejected(r) => {
                let code = match r {
                    Rejection::NotFound => "not_found",
                    Rejection::NotMember => "not_member",
                    Rejection::TooLong => "too_large",
                    Rejection::Empty | Rejection::BadId => "bad_request",
                };
                Failure::new(code, r.to_string())
            }
            actors::Error::Busy => Failure::new(
                "rate_limited",
                "this room is too busy right now; retry with the same id shortly",
            ),
            actors::Error::Unavailable(cause) => {
                tracing::warn!(%cause, "socket request failed: unavailable");
                Failure::new(
                    "unavailable",
                    "the server cannot store messages right now; retry with the same id",
                )
            }
        }
    }
}

/// An event's acknowledgement, or, when the client asked for none, `chat_error`.
pub(crate) struct Reply {
    ack: AckSender,
    wanted: bool,
    socket: SocketRef,
}

impl FromMessageParts<socketioxide::adapter::LocalAdapter> for Reply {
    type Error = std::convert::Infallible;

    fn from_message_parts(
        s: &Arc<socketioxide::socket::Socket>,
        v: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        Ok(Self {
            ack: AckSender::from_message_parts(s, v, ack_id)?,
            wanted: ack_id.is_some(),
            socket: SocketRef::from_message_parts(s, v, ack_id)?,
        })
    }
}

impl Reply {
    pub(crate) fn ok(self, data: &(impl serde::Serialize + ?Sized)) {
        let _ = self.ack.send(data);
    }

    pub(crate) fn fail(self, failure: Failure, id: Option<&Value>) {
        crate::metrics::rejected(failure.code);
        if self.wanted {
            let _ = self
                .ack
                .send(&json!({"ok": false, "error": failure.json()}));
        } else {
            let _ = self.socket.emit(
                "chat_error",
                &json!({"code": failure.code, "message": failure.message, "id": id.cloned().unwrap_or(Value::Null)}),
            );
        }
    }
}

/// Installs the namespace on `io`.
pub fn install(io: &SocketIo) {
    io.ns(NAMESPACE, on_connect.with(authenticate));
}

async fn authenticate(
    s: SocketRef,
    TryData(auth): TryData<Value>,
    State(app): State<Shared>,
) -> Result<(), Refused> {
    let token = auth
        .ok()
        .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_owned))
        .ok_or(Unauthorized)?;
    let session = app
        .sessions
        .check(&token)
        .await
        .ok()
        .flatten()
        .ok_or(Unauthorized)?;
    if app.sockets.of_user(&session.user_id) >= app.max_sockets_per_user {
        crate::metrics::rejected("too_many_connections");
        return Err(Refused::TooManyConnections);
    }
    // Warm the profile cache: deliveries render the author's name from it.
    app.profiles.fetch(&session.user_id).await;
    let ctx = Arc::new(Ctx {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        session,
        work: Default::default(),
        more: tokio::sync::Notify::new(),
        gone: CancellationToken::new(),
    });
    s.extensions.insert(ctx.clone());
    // The handler is registered here, before the client is told it is connected: the connect
    // handler runs as a task of its own, and an event sent right after `connect` could
    // otherwise arrive before it had registered anything.
    register(&app, &s, &ctx);
    Ok(())
}

/// Gives a Socket.IO request a URI of its own.
///
/// hyper parses a request head in place: its URI is a slice of the connection's 8 KiB read
/// buffer. engineioxide keeps the method, URI and version of every session's first request
/// for the session's lifetime (our copy drops the headers and extensions, see
/// `vendor/README.md`), and a kept slice would keep that whole buffer, so an idle socket held
/// 8 KiB or more for a URI of a hundred bytes. Only a request that opens a session (no `sid`
/// yet) is kept, so only that one is copied: a long-polling client's later requests pass as
/// they are.
pub async fn detach_head(req: axum::extract::Request) -> axum::extract::Request {
    let opens_session = req.uri().path().starts_with("/socket.io")
        && !req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sid=")));
    if !opens_session {
        return req;
    }
    let (mut parts, body) = req.into_parts();
    if let Ok(uri) = parts.uri.to_string().parse::<axum::http::Uri>() {
        parts.uri = uri;
    }
    axum::extract::Request::from_parts(parts, body)
}

async fn on_connect(s: SocketRef, State(app): State<Shared>) {
    match s.extensions.get::<Arc<Ctx>>() {
        Some(ctx) if s.connected() => app.sockets.add(ctx.id, s.clone(), ctx.session.clone()),
        Some(_) => {}
        None => {
            let _ = s.disconnect();
        }
    }
}

/// The events of the contract; others are refused (when the client asked for an ack) or
/// ignored.
const EVENTS: [&str; 4] = [
    "join_all",
    "join_one_chat",
    "user_send_message",
    "test_input",
];

fn register(app: &Shared, s: &SocketRef, ctx: &Arc<Ctx>) {
    // One handler for every event, not one per event: socketioxide keeps a socket's handlers
    // in a map of boxed closures, which an idle socket held for nothing (about 0.5 KB).
    let (handler_app, handler_ctx) = (app.clone(), ctx.clone());
    s.on_fallback(
        move |Event(event): Event, TryData(data): TryData<Value>, reply: Reply| {
            match (EVENTS.iter().find(|e| **e == event), data) {
                (None, _) if !reply.wanted => {}
                (None, _) => reply.fail(Failure::new("bad_request", "unknown event"), None),
                (Some(event), Ok(data)) => {
                    worker::accept(&handler_app, &handler_ctx, event, data, reply);
                }
                (Some(_), Err(_)) => reply.fail(
                    Failure::new(
                        "bad_request",
                        "the event's data is not valid JSON (a lone surrogate in a string?)",
                    ),
                    None,
                ),
            }
            std::future::ready(())
        },
    );
    let on_leave = ctx.clone();
    s.on_disconnect(move |State(app): State<Shared>| {
        app.sockets.remove(on_leave.id);
        on_leave.gone.cancel();
        // A running worker unsubscribes the rooms when it sees `gone`; otherwise it is done
        // here.
        worker::leave_unless_running(&app, &on_leave);
        std::future::ready(())
    });
}

#[cfg(test)]
mod tests {
    use super::detach_head;
    use axum::body::Body;
    use axum::http::{Request, Uri};
    use bytes::Bytes;

    fn request(buffer: &Bytes, path: &str) -> axum::extract::Request {
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = Uri::from_maybe_shared(buffer.slice(0..path.len())).unwrap();
        req
    }

    #[tokio::test]
    async fn a_socket_request_no_longer_holds_the_read_buffer() {
        let path = "/socket.io/?EIO=4&transport=websocket";
        let buffer = Bytes::from(path.to_owned());
        let req = detach_head(request(&buffer, path)).await;
        assert!(
            buffer.is_unique(),
            "the request's URI still points into the buffer"
        );
        assert_eq!(req.uri(), path);

        // Other requests are left alone.
        let other = Bytes::from("/api/rooms".to_owned());
        let req = detach_head(request(&other, "/api/rooms")).await;
        assert!(!other.is_unique());
        drop(req);
    }
}
