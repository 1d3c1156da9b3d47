//! The key store's unit tests.

use super::*;

fn text(user: &str, room: &str, period: i64) -> Subject {
    Subject::Text {
        user: user.into(),
        room: room.into(),
        period,
    }
}

#[tokio::test]
async fn destroyed_keys_are_gone_and_held_ones_stay() {
    let keys = Keys::memory();
    let ann = Subject::User("ann".into());
    let sealed = keys.seal(&ann, "Ann").await.unwrap();
    let in_r = keys.seal(&text("ann", "r", 1), "hello").await.unwrap();
    let in_held = keys.seal(&text("ann", "held", 1), "kept").await.unwrap();
    let bob = keys.seal(&text("bob", "r", 1), "bob's").await.unwrap();
    keys.add_hold(Covers::Room("held".into()), "case 12")
        .await
        .unwrap();

    assert_eq!(keys.destroy(&Destroy::User("ann".into())).await.unwrap(), 2);
    assert_eq!(keys.open(&ann, &sealed).await.unwrap(), None);
    assert_eq!(keys.open(&text("ann", "r", 1), &in_r).await.unwrap(), None);
    assert_eq!(
        keys.open(&text("ann", "held", 1), &in_held)
            .await
            .unwrap()
            .as_deref(),
        Some("kept")
    );
    assert_eq!(keys.held(&Destroy::User("ann".into())).await.unwrap(), 1);
    assert_eq!(
        keys.open(&text("bob", "r", 1), &bob)
            .await
            .unwrap()
            .as_deref(),
        Some("bob's")
    );
    // Nothing is sealed again for an erased subject.
    assert!(keys.seal(&ann, "Ann").await.is_err());

    let hold = keys.holds().await.unwrap().remove(0);
    assert_eq!(hold.reason, "case 12");
    assert!(keys.remove_hold(&hold.id).await.unwrap());
    assert!(!keys.remove_hold(&hold.id).await.unwrap());
    assert_eq!(keys.destroy(&Destroy::User("ann".into())).await.unwrap(), 1);
    assert_eq!(keys.held(&Destroy::User("ann".into())).await.unwrap(), 0);
}

#[tokio::test]
async fn retention_destroys_old_periods_only() {
    let keys = Keys::memory();
    for p in 1..=3 {
        keys.seal(&text("u", "r", p), "t").await.unwrap();
        keys.seal(&text("u", "s", p), "t").await.unwrap();
    }
    let before = |period, room: Option<&str>| Destroy::TextsBefore {
        period,
        room: room.map(str::to_owned),
    };
    assert_eq!(keys.destroy(&before(2, Some("r"))).await.unwrap(), 1);
    assert_eq!(keys.destroy(&before(3, None)).await.unwrap(), 3);
    assert!(keys.key(&text("u", "r", 3)).await.unwrap().is_some());
    assert!(keys.key(&text("u", "s", 2)).await.unwrap().is_none());
}

#[tokio::test]
async fn names_hash_ignoring_case_and_a_backup_restores() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::open_file(&dir.path().join("keys.db")).unwrap();
    assert_eq!(keys.name_hash("Ann"), keys.name_hash(" aNN "));
    assert_ne!(keys.name_hash("Ann"), keys.name_hash("Anna"));
    assert_ne!(keys.name_hash("Ann"), Keys::memory().name_hash("Ann"));
    let ann = Subject::User("ann".into());
    let sealed = keys.seal(&ann, "Ann").await.unwrap();
    let file = dir.path().join("backup.db");
    assert_eq!(keys.backup(&file).await.unwrap(), 1);
    assert!(keys.backup(&file).await.is_err());
    keys.destroy(&Destroy::User("ann".into())).await.unwrap();
    assert_eq!(keys.open(&ann, &sealed).await.unwrap(), None);
    assert_eq!(keys.restore(&file).await.unwrap(), 1);
    assert_eq!(
        keys.open(&ann, &sealed).await.unwrap().as_deref(),
        Some("Ann")
    );

    // A new, empty store takes the backup whole, secret included.
    let other = Keys::open_file(&dir.path().join("other.db")).unwrap();
    other.restore(&file).await.unwrap();
    assert_eq!(other.name_hash("Ann"), keys.name_hash("Ann"));
    // A store with keys of its own refuses another store's backup.
    let third = Keys::memory();
    third.seal(&ann, "x").await.unwrap();
    assert!(third.restore(&file).await.is_err());
}

#[tokio::test]
async fn destroyed_keys_leave_no_trace_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.db");
    let keys = Keys::open_file(&path).unwrap();
    let subject = Subject::User("ann".into());
    let key = keys.key_for_sealing(&subject).await.unwrap();
    let raw = |p: &Path| std::fs::read(p).unwrap_or_default();
    let found = |key: &Key| {
        ["keys.db", "keys.db-wal"].iter().any(|f| {
            raw(&dir.path().join(f))
                .windows(32)
                .any(|w| w == key.0.as_slice())
        })
    };
    assert!(found(&key));
    keys.destroy(&Destroy::User("ann".into())).await.unwrap();
    assert!(!found(&key));
}

#[test]
fn a_pair_has_one_direct_room_whoever_asks() {
    let keys = Keys::memory();
    let id = keys.direct_room_id("ann", "bob");
    assert_eq!(id, keys.direct_room_id("bob", "ann"));
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_ne!(id, keys.direct_room_id("ann", "bo"));
    assert_ne!(id, keys.direct_room_id("annb", "ob"));
    assert_ne!(id, Keys::memory().direct_room_id("ann", "bob"));
}
