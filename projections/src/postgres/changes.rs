//! The changes of messages after their post (edits, deletions, reactions) as PostgreSQL
//! statements, one each: the parts that touch a record's earlier versions or its reactions
//! are data-modifying `with` queries of the record's update, which all read the rows as they
//! were before the statement (so the text kept as an earlier version is the one replaced).

use super::columns::{Owned, owned};
use crate::projection::{Change, Target};

/// The statement of [`Change::EditRecord`], [`Change::DeleteRecord`] or [`Change::React`];
/// `None` for any other change.
pub(super) fn statement(change: &Change, target: Target) -> Option<(String, Vec<Owned>)> {
    let (records, versions, reactions) = (
        target.table("room_record"),
        target.table("room_record_version"),
        target.table("room_reaction"),
    );
    // The text a record has now becomes its earlier version number `edits`.
    let keep_text = format!(
        "kept as (insert into {versions} (room_id, seq, edit, user_id, message, time)
                  select room_id, seq, edits, user_id, message, coalesce(edited_at, time)
                  from {records} where room_id = $1 and seq = $2 and not deleted)"
    );
    let key = |room_id: &String, seq: &u64| vec![owned(room_id), owned(&(*seq as i64))];
    Some(match change {
        Change::EditRecord {
            room_id,
            seq,
            message: Some(message),
            search_text,
            time,
            version,
        } => {
            let mut params = key(room_id, seq);
            params.extend([
                owned(message),
                owned(search_text),
                owned(time),
                owned(&(*version as i64)),
            ]);
            (
                format!(
                    "with {keep_text}
                     update {records} set
                         message = case when deleted then message else $3::text end,
                         search_text = case when deleted then search_text else $4::text end,
                         edited_at = case when deleted then edited_at else $5::int8 end,
                         edits = case when deleted then edits else edits + 1 end,
                         version = $6
                     where room_id = $1 and seq = $2"
                ),
                params,
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
            let mut params = key(room_id, seq);
            params.extend([owned(time), owned(&(*version as i64))]);
            (
                format!(
                    "with versions as (delete from {versions} where room_id = $1 and seq = $2),
                          reactions as (delete from {reactions} where room_id = $1 and seq = $2)
                     update {records} set message = '', search_text = '', deleted = true,
                         reply_to = null, edited_at = $3, edits = edits + 1, version = $4
                     where room_id = $1 and seq = $2"
                ),
                params,
            )
        }
        Change::DeleteRecord {
            room_id,
            seq,
            version,
        } => {
            let mut params = key(room_id, seq);
            params.push(owned(&(*version as i64)));
            (
                format!(
                    "with {keep_text},
                          reactions as (delete from {reactions} where room_id = $1 and seq = $2)
                     update {records} set message = '', search_text = '', deleted = true,
                         reply_to = null, version = $3
                     where room_id = $1 and seq = $2"
                ),
                params,
            )
        }
        Change::React {
            room_id,
            seq,
            emoji,
            user_id,
            on: true,
            position,
            version,
        } => {
            let mut params = key(room_id, seq);
            params.extend([
                owned(emoji),
                owned(user_id),
                owned(&(*position as i64)),
                owned(&(*version as i64)),
            ]);
            (
                format!(
                    "with added as (
                         insert into {reactions} (room_id, seq, emoji, user_id, position, since)
                         select $1::text, $2::int8, $3::text, $4::text, $5::int8,
                                coalesce((select min(since) from {reactions}
                                          where room_id = $1 and seq = $2 and emoji = $3),
                                         $5::int8)
                         where exists (select 1 from {records}
                                       where room_id = $1 and seq = $2 and not deleted)
                         on conflict do nothing)
                     update {records} set version = $6 where room_id = $1 and seq = $2"
                ),
                params,
            )
        }
        Change::React {
            room_id,
            seq,
            emoji,
            user_id,
            on: false,
            version,
            ..
        } => {
            let mut params = key(room_id, seq);
            params.extend([owned(emoji), owned(user_id), owned(&(*version as i64))]);
            (
                format!(
                    "with taken as (delete from {reactions}
                                    where room_id = $1 and seq = $2 and emoji = $3
                                      and user_id = $4)
                     update {records} set version = $5 where room_id = $1 and seq = $2"
                ),
                params,
            )
        }
        _ => return None,
    })
}
