//! A socket's events: checked and queued on arrival ([`accept`]), carried out in order by one
//! worker task per socket ([`run`]), which runs while there is work and a second after.

use super::payload::{self, Common, Event, Request, SinceMap};
use super::reply::{Failure, Reply};
use super::services::{NAMESPACE, Shared};
use super::sink::SocketSink;
use crate::auth::Session;
use actors::Subscriber;
use serde_json::{Value, json};
use socketioxide::extract::SocketRef;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a worker waits for more work before it ends (the next event starts another).
const LINGER: Duration = Duration::from_secs(1);
/// Jobs a socket may have queued before further events are refused.
const QUEUE: usize = 512;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a socket knows about itself.
pub(crate) struct Ctx {
    pub(crate) id: u64,
    pub(crate) session: Session,
    /// The socket's queued work and joined rooms.
    work: std::sync::Mutex<Work>,
    /// Wakes a worker waiting for work.
    more: tokio::sync::Notify,
    /// Cancelled when the socket disconnects: its worker stops, and the socket's rooms are
    /// unsubscribed. (A cancellation token is about a third of the size of a `watch` channel.)
    pub(crate) gone: CancellationToken,
}

impl Ctx {
    /// A socket of `session` with nothing queued or joined, under a number of its own.
    pub(crate) fn new(session: Session) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            session,
            work: Default::default(),
            more: tokio::sync::Notify::new(),
            gone: CancellationToken::new(),
        }
    }
}

/// A socket's queued jobs and joined rooms, behind its lock.
#[derive(Default)]
struct Work {
    queue: VecDeque<Box<Job>>,
    /// Whether a worker task runs (or is about to): only one does at a time.
    running: bool,
    /// The rooms this socket subscribed to, to unsubscribe when it leaves.
    joined: Vec<String>,
}

/// A checked event waiting for the worker.
struct Job {
    request: Request,
    reply: Reply,
    arrived: Instant,
}

/// Checks an event on arrival and queues it; refusals are answered at once.
pub(crate) fn accept(svc: &Shared, ctx: &Arc<Ctx>, event: Event, data: &Value, reply: Reply) {
    let common = Common::of(data);
    let request = match check(svc, ctx, event, data, &common) {
        Ok(request) => request,
        Err(failure) => return reply.fail(failure, common.echo()),
    };
    let start = {
        let mut work = ctx.work.lock().expect("socket work");
        if work.queue.len() >= QUEUE {
            drop(work);
            let failure = Failure::new("rate_limited", "too many requests in flight; slow down");
            return reply.fail(failure, common.echo());
        }
        let start = !std::mem::replace(&mut work.running, true);
        let socket = start.then(|| reply.socket.clone());
        // Boxed: the queue's slots are pointers, whatever the size of a job.
        work.queue.push_back(Box::new(Job {
            request,
            reply,
            arrived: Instant::now(),
        }));
        socket
    };
    if let Some(socket) = start {
        tokio::spawn(run(svc.clone(), socket, ctx.clone()));
    } else {
        ctx.more.notify_one();
    }
}

/// The identity claim, the payload and the caller's rate limits, in the order the contract
/// answers them: a refused send may be retried with the same id, so a malformed one takes no
/// token; an empty `join_all` (a client's barrier) takes none either.
fn check(
    svc: &Shared,
    ctx: &Ctx,
    event: Event,
    data: &Value,
    common: &Common,
) -> Result<Request, Failure> {
    let user = &ctx.session.user_id;
    common.check_user(user)?;
    let limit = |buckets: &crate::ratelimit::Buckets, message: &str| {
        if buckets.take(user) {
            Ok(())
        } else {
            Err(Failure::new("rate_limited", message))
        }
    };
    match event {
        Event::TestInput => limit(&svc.send_limit, "sending too fast; wait a moment")?,
        Event::JoinOneChat => limit(&svc.write_limit, "joining rooms too fast; wait a moment")?,
        Event::JoinAll
        | Event::UserSendMessage
        | Event::EditMessage
        | Event::DeleteMessage
        | Event::React
        | Event::MarkRead
        | Event::Typing => {}
    }
    let request = payload::parse(event, data)?;
    match event {
        Event::JoinAll if request.joins_rooms() => {
            limit(&svc.write_limit, "joining rooms too fast; wait a moment")?;
        }
        Event::UserSendMessage => {
            limit(&svc.send_limit, "sending too fast; retry with the same id")?
        }
        Event::EditMessage | Event::DeleteMessage | Event::React => {
            limit(&svc.send_limit, "changing messages too fast; wait a moment")?
        }
        Event::MarkRead => limit(&svc.send_limit, "marking read too fast; wait a moment")?,
        _ => {}
    }
    Ok(request)
}

/// Counts a running worker in `/metrics` for as long as it lives.
struct Running;

impl Running {
    fn count() -> Self {
        crate::metrics::METRICS.socket_workers.inc();
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        crate::metrics::METRICS.socket_workers.dec();
    }
}

/// Unsubscribes a socket that left from its rooms, unless a worker runs (it does it when it
/// sees the socket gone).
pub(crate) fn leave_unless_running(svc: &Shared, ctx: &Ctx) {
    let joined = {
        let mut work = ctx.work.lock().expect("socket work");
        if work.running {
            return;
        }
        std::mem::take(&mut work.joined)
    };
    for room in joined {
        svc.rooms.unsubscribe(&room, ctx.id);
        svc.sockets.unsubscribed(&room, ctx.id);
    }
}

/// Carries out a socket's jobs in order. Ends when nothing more came for [`LINGER`], or when
/// the socket left and its queue is empty, unsubscribing it then.
async fn run(svc: Shared, socket: SocketRef, ctx: Arc<Ctx>) {
    let _counted = Running::count();
    let sink = Arc::new(SocketSink {
        socket: socket.clone(),
        profiles: svc.profiles.clone(),
        id: ctx.id,
        user_id: ctx.session.user_id.as_str().into(),
        registry: svc.sockets.clone(),
    });

    // socketioxide sends the client its `connect` answer a moment before it marks the socket
    // connected, and emits to a socket not yet marked fail as if it were closed. A client may
    // send its first event in that moment: hold the queue (in order) until the mark is set,
    // so a join's replay or notice is not taken for a dead socket.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !socket.connected() && tokio::time::Instant::now() < deadline {
        if ctx.gone.is_cancelled() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    loop {
        // What was queued is carried out even after the socket left, as a queue would be
        // drained: a message already taken in is handed to its room.
        let next = ctx.work.lock().expect("socket work").queue.pop_front();
        let Some(job) = next else {
            if !ctx.gone.is_cancelled() {
                // Either wakes the loop to look at the queue again: what came before the
                // socket left is carried out first.
                tokio::select! {
                    biased;
                    () = ctx.more.notified() => continue,
                    () = ctx.gone.cancelled() => continue,
                    () = tokio::time::sleep(LINGER) => {}
                }
            }
            if end(&svc, &ctx) {
                return;
            }
            continue;
        };
        let Job {
            request,
            reply,
            arrived,
        } = *job;
        match request {
            Request::TestInput => {
                if let Some(ns) = svc.io.get().and_then(|io| io.of(NAMESPACE)) {
                    let _ = Box::pin(ns.emit("test_received", "收到啦")).await;
                }
                reply.ok(&json!({"ok": true}));
            }
            Request::Send {
                room_id,
                id,
                key,
                text,
                reply_to,
            } => {
                // Boxed, like the join below: the worker's own future stays small for the
                // idle socket that holds it, instead of being sized for its largest step.
                let post = (room_id, id, key, text, reply_to);
                Box::pin(send(&svc, &ctx, post, reply, arrived)).await
            }
            Request::Change { room_id, change } => {
                Box::pin(change_message(&svc, &ctx, room_id, change, reply)).await
            }
            Request::MarkRead { room_id, seq } => {
                super::live::mark_read(&svc, &ctx, room_id, seq, reply)
            }
            Request::Typing { room_id } => super::live::typing(&svc, &ctx, room_id, reply),
            Request::Join {
                rooms,
                since,
                since_version,
                one,
            } => {
                let mut entries = Vec::with_capacity(rooms.len());
                for room in rooms {
                    let entry =
                        Box::pin(join(&svc, &ctx, &sink, &room, &since, &since_version)).await;
                    if entry.get("ok") == Some(&Value::Bool(true))
                        && let Some(r) = room.as_str()
                    {
                        let mut work = ctx.work.lock().expect("socket work");
                        if !work.joined.iter().any(|j| j == r) {
                            work.joined.push(r.to_owned());
                        }
                        svc.sockets.subscribed(r, ctx.id);
                    }
                    entries.push(entry);
                }
                if one {
                    let entry = entries.pop().unwrap_or(Value::Null);
                    if entry.get("ok") == Some(&Value::Bool(true)) {
                        reply.ok(&json!({"ok": true, "rooms": [entry]}));
                    } else {
                        let error = &entry["error"];
                        reply.fail(
                            Failure::new(
                                match error["code"].as_str() {
                                    Some("not_member") => "not_member",
                                    Some("not_found") => "not_found",
                                    Some("unavailable") => "unavailable",
                                    _ => "bad_request",
                                },
                                error["message"].as_str().unwrap_or_default(),
                            ),
                            None,
                        );
                    }
                } else {
                    reply.ok(&json!({"ok": true, "rooms": entries}));
                }
            }
        }
    }
}

/// Ends a worker whose queue is empty (nothing came for [`LINGER`], or the socket left),
/// giving back the queue's memory; `false`, and nothing changes, when work came meanwhile.
/// The next event starts another worker.
fn end(svc: &Shared, ctx: &Ctx) -> bool {
    let mut work = ctx.work.lock().expect("socket work");
    if !work.queue.is_empty() {
        return false;
    }
    work.running = false;
    work.queue = VecDeque::new();
    drop(work);
    // A socket that left (before or after the look above: its disconnect may have seen this
    // worker running) is unsubscribed from its rooms.
    if ctx.gone.is_cancelled() {
        leave_unless_running(svc, ctx);
    }
    true
}

async fn join(
    svc: &Shared,
    ctx: &Ctx,
    sink: &Arc<SocketSink>,
    room: &Value,
    since: &SinceMap,
    since_version: &SinceMap,
) -> Value {
    let Some(room_id) = room.as_str() else {
        let error = Failure::bad("a room id is a string").json();
        return json!({"roomId": room, "ok": false, "error": error});
    };
    let resume = match payload::resume_of(since, since_version, room_id) {
        Ok(r) => r,
        Err(f) => return json!({"roomId": room, "ok": false, "error": f.json()}),
    };
    let subscriber = Subscriber {
        id: ctx.id,
        user_id: ctx.session.user_id.clone(),
        sink: sink.clone(),
    };
    match svc.rooms.subscribe(room_id, subscriber, resume).await {
        Ok(s) => json!({
            "roomId": room,
            "ok": true,
            "lastSeq": s.last_seq,
            "lastVersion": s.last_version,
            "recovered": s.recovered,
        }),
        Err(e) => json!({"roomId": room, "ok": false, "error": Failure::from(e).json()}),
    }
}

/// The answer to a stored message: a struct rather than a `json!` map, which built a tree of
/// owned keys and values for every message. Its fields are in the order a map would write them.
#[derive(serde::Serialize)]
struct SendAck<'a> {
    duplicate: bool,
    id: &'a Value,
    ok: bool,
    #[serde(rename = "roomId")]
    room_id: &'a str,
    seq: u64,
    time: String,
}

/// An edit, deletion or reaction, answered once durable; like a send, it is handed to the
/// room in this socket's order and waited for elsewhere.
async fn change_message(
    svc: &Shared,
    ctx: &Ctx,
    room_id: String,
    change: payload::MessageChange,
    reply: Reply,
) {
    let edit = matches!(change, payload::MessageChange::Edit { .. });
    let command = change.command(&ctx.session.user_id);
    let receiver = match svc.rooms.room(&room_id).await {
        Ok(room) => match room.change(command) {
            Ok(rx) => rx,
            Err(e) => return reply.fail(e.into(), None),
        },
        Err(e) => return reply.fail(e.into(), None),
    };
    let (written, user) = (svc.written.clone(), ctx.session.user_id.clone());
    tokio::spawn(async move {
        match receiver.await.unwrap_or_else(|_| {
            Err(actors::Error::Unavailable(
                "the room restarted; try again".into(),
            ))
        }) {
            Ok(changed) => {
                written.wrote(&user, changed.position);
                if edit {
                    let edited_at = changed.edited_at.map(crate::wire::time);
                    reply.ok(
                        &json!({"ok": true, "version": changed.version, "editedAt": edited_at}),
                    );
                } else {
                    reply.ok(&json!({"ok": true, "version": changed.version}));
                }
            }
            Err(e) => reply.fail(e.into(), None),
        }
    });
}

async fn send(
    svc: &Shared,
    ctx: &Ctx,
    (room_id, id, key, text, reply_to): (String, Value, String, String, Option<u64>),
    reply: Reply,
    arrived: Instant,
) {
    // Hand the message to the room now (keeping this socket's order), and wait for its write
    // elsewhere so the next message can join the same batch.
    let mut attempt = 0;
    let receiver = loop {
        attempt += 1;
        let room = match svc.rooms.room(&room_id).await {
            Ok(r) => r,
            Err(e) => return reply.fail(e.into(), Some(&id)),
        };
        match room.post(&ctx.session.user_id, &key, &text, reply_to) {
            Ok(rx) => break rx,
            Err(e) if attempt >= 3 => return reply.fail(e.into(), Some(&id)),
            Err(_) => tokio::task::yield_now().await,
        }
    };
    let written = svc.written.clone();
    let user = ctx.session.user_id.clone();
    tokio::spawn(async move {
        match receiver.await {
            Ok(Ok(posted)) => {
                written.wrote(&user, posted.position);
                let m = &crate::metrics::METRICS;
                m.messages_acked.inc();
                m.ack_latency.observe(arrived.elapsed());
                reply.ok(&SendAck {
                    duplicate: posted.duplicate,
                    id: &id,
                    ok: true,
                    room_id: &room_id,
                    seq: posted.seq,
                    time: crate::wire::time(posted.time_ms),
                });
            }
            Ok(Err(e)) => reply.fail(e.into(), Some(&id)),
            Err(_) => reply.fail(
                Failure::new("unavailable", "the room restarted; retry with the same id"),
                Some(&id),
            ),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::SendAck;
    use serde_json::json;

    /// The struct writes the same bytes the `json!` map it replaced wrote.
    #[test]
    fn a_send_ack_is_the_map_it_replaced() {
        for (id, duplicate) in [
            (json!("m-1"), false),
            (json!(42), true),
            (json!(null), false),
        ] {
            let time = crate::wire::time(1_764_129_662_345);
            let ack = SendAck {
                duplicate,
                id: &id,
                ok: true,
                room_id: "r-1",
                seq: 7,
                time: time.clone(),
            };
            let map = json!({
                "ok": true,
                "seq": 7,
                "time": time,
                "id": id,
                "roomId": "r-1",
                "duplicate": duplicate,
            });
            assert_eq!(serde_json::to_value(&ack).unwrap(), map);
        }
    }
}
