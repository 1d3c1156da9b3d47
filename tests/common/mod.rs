//! Starts the real `chatroom` binary on a free port and a fresh data folder, and talks to it
//! over HTTP as a client would.

#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub url: String,
    pub data: PathBuf,
    child: Child,
    _dir: Option<tempfile::TempDir>,
    extra: Vec<String>,
}

fn spawn(data: &Path, extra: &[String]) -> (String, Child) {
    let (child, url) = events::testing::spawn_listening(
        Command::new(env!("CARGO_BIN_EXE_chatroom"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit()),
    );
    (url, child)
}

impl Server {
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (url, child) = spawn(&data, &extra);
        Self {
            url,
            data,
            child,
            _dir: Some(dir),
            extra,
        }
    }

    /// Starts on an existing data folder (kept by the caller).
    pub fn start_on(data: &Path, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (url, child) = spawn(data, &extra);
        Self {
            url,
            data: data.to_owned(),
            child,
            _dir: None,
            extra,
        }
    }

    /// SIGKILL, then start again on the same data folder.
    pub fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.relaunch();
    }

    /// SIGTERM; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data folder (after it stopped).
    pub fn relaunch(&mut self) {
        let (url, child) = spawn(&self.data, &self.extra);
        self.url = url;
        self.child = child;
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn client(&self) -> Client {
        Client {
            url: self.url.clone(),
            http: reqwest::Client::new(),
            token: None,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

impl Client {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.url, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    pub async fn raw(&self, method: &str, path: &str, body: &str) -> Answer {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.url, path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    pub async fn register(&mut self, name: &str) -> Value {
        let a = self
            .call(
                "POST",
                "/api/register",
                Some(json!({"username": name, "password": "password123"})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        self.token = Some(a.data()["token"].as_str().unwrap().to_owned());
        a.data()["userInfo"].clone()
    }

    pub async fn create_room(&self, name: &str) -> Value {
        let a = self
            .call(
                "POST",
                "/api/room/create",
                Some(json!({"name": name, "description": "about", "avatarImage": ""})),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.data()["room"].clone()
    }

    /// Joins `room` (as `create_room` answered it) by its code's hash.
    pub async fn join(&self, room: &Value) -> Answer {
        self.call(
            "POST",
            "/api/room/join",
            Some(json!({"roomIdHash": room["room_hash_id"]})),
        )
        .await
    }
}

/// Runs the `chatroom` binary with `args` and then `store` (its storage options): its exit
/// code and what it printed, stdout then stderr.
pub fn chatroom_cli(args: &[&str], store: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .args(args)
        .args(store)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Copies the files of `from` (not its folders) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Users, rooms and joins over REST: several streams, interleaved in the log.
pub async fn traffic(server: &Server) {
    for _ in 0..3 {
        let mut c = server.client();
        c.register(&unique("u")).await;
        let room = c.create_room("r").await;
        let mut d = server.client();
        d.register(&unique("v")).await;
        let j = d.join(&room).await;
        assert_eq!(j.status, 200);
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())[..20].to_owned()
}

/// Appends message `seq` of `room` by `user` at `time` straight to the log of a stopped
/// server, sealed under the folder's own key store, as a server would have written it then.
pub async fn post_at(data: &Path, room: &str, seq: u64, user: &str, text: &str, time: i64) {
    use events::event::{Event, MessagePosted, room_stream};
    use events::{Expected, NewEvent, Store};
    let keys = events::keys::Keys::open_file(&data.join("keys.db")).unwrap();
    let period = events::seal::period_of(time);
    let subject = events::seal::Subject::Text {
        user: user.to_owned(),
        room: room.to_owned(),
        period,
    };
    let posted = Event::MessagePosted(MessagePosted {
        room_id: room.to_owned(),
        seq,
        message_id: format!("old-{seq}"),
        user_id: user.to_owned(),
        text: keys.seal(&subject, text).await.unwrap(),
        kind: "input".into(),
        period,
        reply_to: None,
    });
    let store = events::SqliteStore::open(data.join("events.db")).unwrap();
    store
        .append(
            &room_stream(room),
            Expected::Any,
            vec![NewEvent::with_id(uuid::Uuid::new_v4(), &posted, time)],
        )
        .await
        .unwrap();
    store.close();
}
