//! What the store tests share.

use events::NewEvent;

/// A member-joined event for user `u{n}` of room `r`.
pub fn joined(n: u64) -> NewEvent {
    NewEvent::new(&events::testing::joined("r", &format!("u{n}")))
}

/// The PostgreSQL server the tests that need one create their databases on.
///
/// # Panics
/// Without `CHATROOM_TEST_DATABASE_URL`: only a test the build left ignored gets here, when
/// run with `--ignored`.
#[allow(dead_code)] // the PostgreSQL tests use it, the others do not
pub fn admin_url() -> String {
    std::env::var("CHATROOM_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .expect("needs PostgreSQL: set CHATROOM_TEST_DATABASE_URL")
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
