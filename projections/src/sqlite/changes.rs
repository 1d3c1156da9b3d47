//! The changes of messages after their post (edits, deletions, reactions) applied to the
//! SQLite read tables: each may touch the record, its earlier versions and its reactions.

use crate::projection::{Change, Target};
use rusqlite::{Connection, params};

/// Applies [`Change::EditRecord`], [`Change::DeleteRecord`] or [`Change::React`]; any other
/// change is left alone.
pub(super) fn apply(tx: &Connection, change: &Change, target: Target) -> rusqlite::Result<()> {
    let (records, versions, reactions) = (
        target.table("room_record"),
        target.table("room_record_version"),
        target.table("room_reaction"),
    );
    let run = |sql: String, params: &[&dyn rusqlite::ToSql]| {
        tx.prepare_cached(&sql)?.execute(params).map(|_| ())
    };
    // The text a record has now becomes its earlier version number `edits`.
    let keep_text = |room_id: &str, seq: i64| {
        run(
            format!(
                "insert into {versions} (room_id, seq, edit, user_id, message, time)
                 select room_id, seq, edits, user_id, message, coalesce(edited_at, time)
                 from {records} where room_id = ?1 and seq = ?2 and deleted = 0"
            ),
            params![room_id, seq],
        )
    };
    match change {
        Change::EditRecord {
            room_id,
            seq,
            message: Some(message),
            search_text,
            time,
            version,
        } => {
            let seq = *seq as i64;
            keep_text(room_id, seq)?;
            run(
                format!(
                    "update {records} set
                         message = case when deleted then message else ?3 end,
                         search_text = case when deleted then search_text else ?4 end,
                         edited_at = case when deleted then edited_at else ?5 end,
                         edits = case when deleted then edits else edits + 1 end,
                         version = ?6
                     where room_id = ?1 and seq = ?2"
                ),
                params![room_id, seq, message, search_text, time, *version as i64],
            )
        }
        Change::EditRecord {
            room_id,
            seq,
            message: None,
            time,
            version,
            ..
        } => {
            // The text's key is gone: no version of it can be read any more.
            let seq = *seq as i64;
            run(
                format!("delete from {versions} where room_id = ?1 and seq = ?2"),
                params![room_id, seq],
            )?;
            run(
                format!("delete from {reactions} where room_id = ?1 and seq = ?2"),
                params![room_id, seq],
            )?;
            run(
                format!(
                    "update {records} set message = '', search_text = '', deleted = 1,
                         reply_to = null, edited_at = ?3, edits = edits + 1, version = ?4
                     where room_id = ?1 and seq = ?2"
                ),
                params![room_id, seq, time, *version as i64],
            )
        }
        Change::DeleteRecord {
            room_id,
            seq,
            version,
        } => {
            let seq = *seq as i64;
            keep_text(room_id, seq)?;
            run(
                format!("delete from {reactions} where room_id = ?1 and seq = ?2"),
                params![room_id, seq],
            )?;
            run(
                format!(
                    "update {records} set message = '', search_text = '', deleted = 1,
                         reply_to = null, version = ?3
                     where room_id = ?1 and seq = ?2"
                ),
                params![room_id, seq, *version as i64],
            )
        }
        Change::React {
            room_id,
            seq,
            emoji,
            user_id,
            on,
            position,
            version,
        } => {
            let seq = *seq as i64;
            if *on {
                run(
                    format!(
                        "insert into {reactions} (room_id, seq, emoji, user_id, position, since)
                         select ?1, ?2, ?3, ?4, ?5,
                                coalesce((select min(since) from {reactions}
                                          where room_id = ?1 and seq = ?2 and emoji = ?3), ?5)
                         where exists (select 1 from {records}
                                       where room_id = ?1 and seq = ?2 and deleted = 0)
                         on conflict do nothing"
                    ),
                    params![room_id, seq, emoji, user_id, *position as i64],
                )?;
            } else {
                run(
                    format!(
                        "delete from {reactions}
                         where room_id = ?1 and seq = ?2 and emoji = ?3 and user_id = ?4"
                    ),
                    params![room_id, seq, emoji, user_id],
                )?;
            }
            run(
                format!("update {records} set version = ?3 where room_id = ?1 and seq = ?2"),
                params![room_id, seq, *version as i64],
            )
        }
        _ => Ok(()),
    }
}
