//! The Socket.IO namespace `/chatroom`.
//!
//! A connection is authenticated by a middleware from `auth.token`. The event handler is a
//! plain closure that checks the payload, the caller's identity and the rate limit on the spot
//! (socketioxide calls it in the order the frames arrived) and queues the work in the socket's
//! bounded queue; a worker task, started when work arrives and gone a second after the queue
//! ran dry, hands it to room actors in that order without waiting for each to be written, so
//! one socket's messages keep their order while many of them share a batch. An idle socket
//! holds no task and no queue, however many rooms it joined. Payloads are read by
//! [`payload`], deliveries go out through [`sink::SocketSink`], and everything the layer
//! needs of the server is handed to it as [`Services`].

mod live;
pub mod payload;
mod registry;
mod reply;
mod services;
mod sink;
mod worker;

pub use live::run as deliver_live;
pub use registry::Registry;
pub use reply::Failure;
pub use services::{NAMESPACE, Services, Shared};

use payload::Event;
use reply::Reply;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{Event as EventName, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use std::sync::Arc;
use worker::Ctx;

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

/// Installs the namespace on `io`, whose state must be `svc` (`SocketIo::builder().with_state`).
pub fn install(io: &SocketIo, svc: &Services) {
    let _ = svc.io.set(io.clone());
    io.ns(NAMESPACE, on_connect.with(authenticate));
}

async fn authenticate(
    s: SocketRef,
    TryData(auth): TryData<Value>,
    State(svc): State<Shared>,
) -> Result<(), Refused> {
    let token = auth
        .ok()
        .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_owned))
        .ok_or(Unauthorized)?;
    let session = svc
        .sessions
        .check(&token)
        .await
        .ok()
        .flatten()
        .ok_or(Unauthorized)?;
    if svc.sockets.of_user(&session.user_id) >= svc.max_sockets_per_user {
        crate::metrics::rejected("too_many_connections");
        return Err(Refused::TooManyConnections);
    }
    // Warm the profile cache: deliveries render the author's name from it.
    svc.profiles.fetch(&session.user_id).await;
    let ctx = Arc::new(Ctx::new(session));
    s.extensions.insert(ctx.clone());
    // The handler is registered here, before the client is told it is connected: the connect
    // handler runs as a task of its own, and an event sent right after `connect` could
    // otherwise arrive before it had registered anything.
    register(&svc, &s, &ctx);
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

async fn on_connect(s: SocketRef, State(svc): State<Shared>) {
    match s.extensions.get::<Arc<Ctx>>() {
        Some(ctx) if s.connected() => svc.sockets.add(ctx.id, s.clone(), ctx.session.clone()),
        Some(_) => {}
        None => {
            let _ = s.disconnect();
        }
    }
}

/// Registers the socket's handlers: events of the contract are accepted; others are refused
/// (when the client asked for an ack) or ignored.
fn register(svc: &Shared, s: &SocketRef, ctx: &Arc<Ctx>) {
    // One handler for every event, not one per event: socketioxide keeps a socket's handlers
    // in a map of boxed closures, which an idle socket held for nothing (about 0.5 KB).
    let (handler_svc, handler_ctx) = (svc.clone(), ctx.clone());
    s.on_fallback(
        move |EventName(name): EventName, TryData(data): TryData<Value>, reply: Reply| {
            match (Event::named(&name), data) {
                (None, _) if !reply.wanted => {}
                (None, _) => reply.fail(Failure::bad("unknown event"), None),
                (Some(event), Ok(data)) => {
                    worker::accept(&handler_svc, &handler_ctx, event, &data, reply);
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
    s.on_disconnect(move |State(svc): State<Shared>| {
        svc.sockets.remove(on_leave.id);
        on_leave.gone.cancel();
        // A running worker unsubscribes the rooms when it sees `gone`; otherwise it is done
        // here.
        worker::leave_unless_running(&svc, &on_leave);
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
