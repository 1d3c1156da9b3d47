//! What the store tests share.

use events::event::MemberJoined;
use events::{Event, NewEvent};

/// A member-joined event for user `u{n}` of room `r`.
pub fn joined(n: u64) -> NewEvent {
    NewEvent::new(&Event::MemberJoined(MemberJoined {
        room_id: "r".into(),
        user_id: format!("u{n}"),
    }))
}

/// A plain connection to `url`, for what a PostgreSQL test checks or changes behind the
/// store's back.
#[allow(dead_code)] // the PostgreSQL tests use it, the others do not
pub async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}
