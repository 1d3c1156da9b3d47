//! A socket's events: checked and queued on arrival ([`accept`]), carried out in order by one
//! worker task per socket ([`run`]), which runs while there is work and a second after.

use super::sink::SocketSink;
use super::{Ctx, Failure, NAMESPACE, QUEUE, Reply};
use crate::app::Shared;
use actors::Subscriber;
use serde_json::{Map, Value, json};
use socketioxide::extract::SocketRef;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// How long a worker waits for more work before it ends (the next event starts another).
const LINGER: Duration = Duration::from_secs(1);

/// A socket's queued jobs and joined rooms, behind its lock.
#[derive(Default)]
pub(crate) struct Work {
    queue: VecDeque<Box<Job>>,
    /// Whether a worker task runs (or is about to): only one does at a time.
    running: bool,
    /// The rooms this socket subscribed to, to unsubscribe when it leaves.
    joined: Vec<String>,
}

/// A checked event waiting for the worker.
pub(crate) enum Job {
    Join {
        rooms: Vec<Value>,
        since: Map<String, Value>,
        one: bool,
        reply: Reply,
    },
    Send {
        room_id: String,
        id: Value,
        key: String,
        text: String,
        reply: Reply,
        arrived: std::time::Instant,
    },
    TestInput {
        reply: Reply,
    },
}

impl Job {
    fn reply(&self) -> &Reply {
        match self {
            Job::Join { reply, .. } | Job::Send { reply, .. } | Job::TestInput { reply } => reply,
        }
    }

    fn into_reply(self) -> Reply {
        match self {
            Job::Join { reply, .. } | Job::Send { reply, .. } | Job::TestInput { reply } => reply,
        }
    }
}

fn bad(message: impl Into<String>) -> Failure {
    Failure::new("bad_request", message)
}

/// Checks the payload's identity claim: a `userId` must be the token's user.
fn check_user(ctx: &Ctx, data: &Value) -> Result<(), Failure> {
    match data.get("userId") {
        None => Ok(()),
        Some(Value::String(s)) if *s == ctx.session.user_id => Ok(()),
        Some(_) => Err(Failure::new(
            "forbidden",
            "userId does not match the logged-in user",
        )),
    }
}

fn since_value(v: &Value) -> Result<Option<u64>, Failure> {
    match v {
        Value::Null => Ok(None),
        v => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad("since must be a whole number of 0 or more")),
    }
}

/// Checks an event on arrival and queues it; refusals are answered at once.
pub(crate) fn accept(app: &Shared, ctx: &Arc<Ctx>, event: &str, data: Value, reply: Reply) {
    let id = data.get("id").cloned();
    let job = match parse(app, ctx, event, data, reply) {
        Ok(job) => job,
        Err((failure, reply)) => {
            reply.fail(failure, id.as_ref());
            return;
        }
    };
    let start = {
        let mut work = ctx.work.lock().expect("socket work");
        if work.queue.len() >= QUEUE {
            drop(work);
            let failure = Failure::new("rate_limited", "too many requests in flight; slow down");
            job.into_reply().fail(failure, id.as_ref());
            return;
        }
        let start = !std::mem::replace(&mut work.running, true);
        let socket = start.then(|| job.reply().socket.clone());
        // Boxed: the queue's slots are pointers, whatever the size of a job.
        work.queue.push_back(Box::new(job));
        socket
    };
    if let Some(socket) = start {
        tokio::spawn(run(app.clone(), socket, ctx.clone()));
    } else {
        ctx.more.notify_one();
    }
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
pub(crate) fn leave_unless_running(app: &Shared, ctx: &Ctx) {
    let joined = {
        let mut work = ctx.work.lock().expect("socket work");
        if work.running {
            return;
        }
        std::mem::take(&mut work.joined)
    };
    for room in joined {
        app.rooms.unsubscribe(&room, ctx.id);
    }
}

fn parse(
    app: &Shared,
    ctx: &Ctx,
    event: &str,
    data: Value,
    reply: Reply,
) -> Result<Job, (Failure, Reply)> {
    macro_rules! fail {
        ($e:expr) => {
            return Err(($e, reply))
        };
    }
    if let Err(f) = check_user(ctx, &data) {
        fail!(f);
    }
    match event {
        "test_input" => {
            if !app.send_limit.take(&ctx.session.user_id) {
                fail!(Failure::new(
                    "rate_limited",
                    "sending too fast; wait a moment"
                ));
            }
            Ok(Job::TestInput { reply })
        }
        "join_one_chat" => {
            if !app.write_limit.take(&ctx.session.user_id) {
                fail!(Failure::new(
                    "rate_limited",
                    "joining rooms too fast; wait a moment"
                ));
            }
            let Some(obj) = data.as_object() else {
                fail!(bad("join_one_chat needs {\"roomId\", \"since\"}"));
            };
            let Some(room) = obj.get("roomId").cloned() else {
                fail!(bad("roomId is missing"));
            };
            let mut since = Map::new();
            match since_value(obj.get("since").unwrap_or(&Value::Null)) {
                Ok(Some(s)) => {
                    if let Some(key) = room.as_str() {
                        since.insert(key.to_owned(), json!(s));
                    }
                }
                Ok(None) => {}
                Err(f) => fail!(f),
            }
            Ok(Job::Join {
                rooms: vec![room],
                since,
                one: true,
                reply,
            })
        }
        "join_all" => {
            if !app.write_limit.take(&ctx.session.user_id) {
                fail!(Failure::new(
                    "rate_limited",
                    "joining rooms too fast; wait a moment"
                ));
            }
            let Some(list) = data.get("roomList").and_then(Value::as_array) else {
                fail!(bad("join_all needs {\"roomList\": [roomId, ...]}"));
            };
            if list.len() > 1000 {
                fail!(Failure::new(
                    "too_large",
                    "at most 1000 rooms in one join_all"
                ));
            }
            let since = match data.get("since") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m.clone(),
                Some(_) => fail!(bad("since must be an object {roomId: seq}")),
            };
            Ok(Job::Join {
                rooms: list.clone(),
                since,
                one: false,
                reply,
            })
        }
        "user_send_message" => {
            let Some(room_id) = data.get("roomId").and_then(Value::as_str) else {
                fail!(bad("roomId must be a room id"));
            };
            let (id, key) = match data.get("id") {
                Some(Value::String(s)) => (json!(s), s.clone()),
                Some(Value::Number(n)) => (json!(n), n.to_string()),
                _ => fail!(bad("id must be the message's own id (a string or number)")),
            };
            let Some(text) = data.get("message").and_then(Value::as_str) else {
                fail!(bad("message must be text"));
            };
            match data.get("type") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) if t == "input" => {}
                Some(_) => fail!(bad("type must be \"input\"")),
            }
            if let Err(r) = actors::room::check_text(text) {
                fail!(actors::Error::Rejected(r).into());
            }
            if !app.send_limit.take(&ctx.session.user_id) {
                fail!(Failure::new(
                    "rate_limited",
                    "sending too fast; retry with the same id"
                ));
            }
            Ok(Job::Send {
                room_id: room_id.to_owned(),
                id,
                key,
                text: text.to_owned(),
                reply,
                arrived: std::time::Instant::now(),
            })
        }
        _ => fail!(bad("unknown event")),
    }
}

/// Carries out a socket's jobs in order. Ends when nothing more came for [`LINGER`], or when
/// the socket left and its queue is empty, unsubscribing it then.
pub(crate) async fn run(app: Shared, socket: SocketRef, ctx: Arc<Ctx>) {
    let _counted = Running::count();
    let sink = Arc::new(SocketSink {
        socket: socket.clone(),
        profiles: app.profiles.clone(),
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
            if end(&app, &ctx) {
                return;
            }
            continue;
        };
        match *job {
            Job::TestInput { reply } => {
                if let Some(ns) = app.io.get().and_then(|io| io.of(NAMESPACE)) {
                    let _ = Box::pin(ns.emit("test_received", "收到啦")).await;
                }
                reply.ok(&json!({"ok": true}));
            }
            Job::Send {
                room_id,
                id,
                key,
                text,
                reply,
                arrived,
            } => {
                // Boxed, like the join below: the worker's own future stays small for the
                // idle socket that holds it, instead of being sized for its largest step.
                Box::pin(send(&app, &ctx, (room_id, id, key, text), reply, arrived)).await
            }
            Job::Join {
                rooms,
                since,
                one,
                reply,
            } => {
                let mut entries = Vec::with_capacity(rooms.len());
                for room in rooms {
                    let entry = Box::pin(join(&app, &ctx, &sink, &room, &since)).await;
                    if entry.get("ok") == Some(&Value::Bool(true))
                        && let Some(r) = room.as_str()
                    {
                        let mut work = ctx.work.lock().expect("socket work");
                        if !work.joined.iter().any(|j| j == r) {
                            work.joined.push(r.to_owned());
                        }
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
fn end(app: &Shared, ctx: &Ctx) -> bool {
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
        leave_unless_running(app, ctx);
    }
    true
}

async fn join(
    app: &Shared,
    ctx: &Ctx,
    sink: &Arc<SocketSink>,
    room: &Value,
    since: &Map<String, Value>,
) -> Value {
    let Some(room_id) = room.as_str() else {
        return json!({"roomId": room, "ok": false, "error": bad("a room id is a string").json()});
    };
    let since = match since.get(room_id).map(since_value) {
        None => None,
        Some(Ok(s)) => s,
        Some(Err(f)) => return json!({"roomId": room, "ok": false, "error": f.json()}),
    };
    let subscriber = Subscriber {
        id: ctx.id,
        user_id: ctx.session.user_id.clone(),
        sink: sink.clone(),
    };
    match app.rooms.subscribe(room_id, subscriber, since).await {
        Ok(s) => json!({
            "roomId": room,
            "ok": true,
            "lastSeq": s.last_seq,
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

async fn send(
    app: &Shared,
    ctx: &Ctx,
    (room_id, id, key, text): (String, Value, String, String),
    reply: Reply,
    arrived: std::time::Instant,
) {
    // Hand the message to the room now (keeping this socket's order), and wait for its write
    // elsewhere so the next message can join the same batch.
    let mut attempt = 0;
    let receiver = loop {
        attempt += 1;
        let room = match app.rooms.room(&room_id).await {
            Ok(r) => r,
            Err(e) => return reply.fail(e.into(), Some(&id)),
        };
        match room.post(&ctx.session.user_id, &key, &text) {
            Ok(rx) => break rx,
            Err(e) if attempt >= 3 => return reply.fail(e.into(), Some(&id)),
            Err(_) => tokio::task::yield_now().await,
        }
    };
    let app = app.clone();
    let user = ctx.session.user_id.clone();
    tokio::spawn(async move {
        match receiver.await {
            Ok(Ok(posted)) => {
                app.wrote(&user, posted.position);
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
            assert_eq!(
                serde_json::to_string(&ack).unwrap(),
                serde_json::to_string(&map).unwrap()
            );
        }
    }
}
