//! One [`Change`] of a plan applied to the SQLite read tables, each with its own prepared
//! statement.

use crate::projection::{Change, Target};
use rusqlite::{Connection, params};

/// Applies one of a plan's changes other than the room updates.
pub(super) fn apply_change(
    tx: &Connection,
    change: &Change,
    target: Target,
) -> rusqlite::Result<()> {
    let run = |sql: &str, table: &str, params: &[&dyn rusqlite::ToSql]| {
        let sql = sql.replace("{t}", &target.table(table));
        tx.prepare_cached(&sql)?.execute(params).map(|_| ())
    };
    match change {
        Change::InsertUser {
            id,
            name,
            created_at,
        } => run(
            "insert into {t} (id, name, name_lower, created_at) values (?1, ?2, ?3, ?4)",
            "user",
            params![
                id,
                name.as_deref().unwrap_or(crate::DELETED_USER),
                name.as_deref().map(str::to_lowercase),
                created_at
            ],
        ),
        Change::UpdateUser {
            id,
            name,
            name_lower,
            avatar_image,
        } => run(
            "update {t} set name = coalesce(?2, name),
                            name_lower = coalesce(?3, name_lower),
                            avatar_image = coalesce(?4, avatar_image)
             where id = ?1 and erased_at is null",
            "user",
            params![id, name, name_lower, avatar_image],
        ),
        Change::EraseUser { id, time } => run(
            "update {t} set name = ?2, name_lower = null, avatar_image = '', erased_at = ?3
             where id = ?1",
            "user",
            params![id, crate::DELETED_USER, time],
        ),
        Change::ScrubRecords { user_id } => {
            run(
                "delete from {t} where user_id = ?1",
                "room_record_version",
                params![user_id],
            )?;
            run(
                &format!(
                    "delete from {{t}} where exists (
                         select 1 from {} r
                         where r.room_id = {{t}}.room_id and r.seq = {{t}}.seq
                           and r.user_id = ?1)",
                    target.table("room_record")
                ),
                "room_reaction",
                params![user_id],
            )?;
            run(
                "update {t} set message = '', search_text = '', deleted = 1, reply_to = null
                 where user_id = ?1",
                "room_record",
                params![user_id],
            )
        }
        Change::RemoveMember { room_id, user_id } => run(
            "delete from {t} where room_id = ?1 and user_id = ?2",
            "room_member",
            params![room_id, user_id],
        ),
        Change::InsertRoom {
            id,
            name,
            description,
            owner,
            avatar_image,
            room_hash_id,
            direct,
            time,
        } => run(
            "insert into {t} (id, name, description, owner, avatar_image, room_hash_id,
                              create_time, update_time, direct_a, direct_b)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
            "room",
            params![
                id,
                name,
                description,
                owner,
                avatar_image,
                room_hash_id,
                time,
                direct.as_ref().map(|[a, _]| a),
                direct.as_ref().map(|[_, b]| b),
            ],
        ),
        Change::UpdateRoom {
            id,
            name,
            description,
            avatar_image,
            retention_days,
            time,
        } => run(
            "update {t} set name = coalesce(?2, name),
                            description = coalesce(?3, description),
                            avatar_image = coalesce(?4, avatar_image),
                            retention_days = case when ?5 then ?6 else retention_days end,
                            update_time = max(update_time, ?7)
             where id = ?1",
            "room",
            params![
                id,
                name,
                description,
                avatar_image,
                retention_days.is_some(),
                retention_days.flatten(),
                time
            ],
        ),
        Change::ArchiveRoom { id, archived, time } => run(
            "update {t} set archived = ?2, update_time = max(update_time, ?3) where id = ?1",
            "room",
            params![id, archived, time],
        ),
        Change::SetOwner { id, owner } => run(
            "update {t} set owner = ?2 where id = ?1",
            "room",
            params![id, owner],
        ),
        Change::RecodeRoom { id, room_hash_id } => run(
            "update {t} set room_hash_id = ?2 where id = ?1",
            "room",
            params![id, room_hash_id],
        ),
        Change::InsertMember {
            room_id,
            user_id,
            role,
            joined_at,
        } => run(
            // The creator's own join finds them there; a second join of one user (possible
            // only in a log written by a faulty writer) must not stop the projection.
            "insert into {t} (room_id, user_id, role, joined_at) values (?1, ?2, ?3, ?4)
             on conflict do nothing",
            "room_member",
            params![room_id, user_id, role.as_str(), joined_at],
        ),
        Change::SetRole {
            room_id,
            user_id,
            role,
        } => run(
            "update {t} set role = ?3 where room_id = ?1 and user_id = ?2",
            "room_member",
            params![room_id, user_id, role.as_str()],
        ),
        Change::SetMute {
            room_id,
            user_id,
            until,
        } => run(
            "update {t} set muted_until = ?3 where room_id = ?1 and user_id = ?2",
            "room_member",
            params![room_id, user_id, until],
        ),
        Change::InsertBan {
            room_id,
            user_id,
            until,
            by,
            banned_at,
        } => run(
            "insert into {t} (room_id, user_id, until, banned_by, banned_at)
             values (?1, ?2, ?3, ?4, ?5)
             on conflict (room_id, user_id) do update
             set until = excluded.until, banned_by = excluded.banned_by,
                 banned_at = excluded.banned_at",
            "room_ban",
            params![room_id, user_id, until, by, banned_at],
        ),
        Change::InsertBlock { by, user_id, time } => run(
            "insert into {t} (blocker_id, blocked_id, blocked_at) values (?1, ?2, ?3)
             on conflict do nothing",
            "user_block",
            params![by, user_id, time],
        ),
        Change::RemoveBlock { by, user_id } => run(
            "delete from {t} where blocker_id = ?1 and blocked_id = ?2",
            "user_block",
            params![by, user_id],
        ),
        Change::EraseBlocks { user_id } => run(
            "delete from {t} where blocker_id = ?1 or blocked_id = ?1",
            "user_block",
            params![user_id],
        ),
        Change::RemoveBan { room_id, user_id } => run(
            "delete from {t} where room_id = ?1 and user_id = ?2",
            "room_ban",
            params![room_id, user_id],
        ),
        Change::InsertInvite {
            room_id,
            invite_id,
            code,
            code_hash,
            max_uses,
            expires_at,
            created_by,
            created_at,
        } => run(
            "insert into {t} (room_id, invite_id, code, code_hash, max_uses, expires_at,
                              created_by, created_at)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            "room_invite",
            params![
                room_id,
                invite_id,
                code,
                code_hash.as_slice(),
                max_uses,
                expires_at,
                created_by,
                created_at
            ],
        ),
        Change::RevokeInvite { room_id, invite_id } => run(
            "update {t} set revoked = 1 where room_id = ?1 and invite_id = ?2",
            "room_invite",
            params![room_id, invite_id],
        ),
        Change::UseInvite { room_id, invite_id } => run(
            "update {t} set uses = uses + 1 where room_id = ?1 and invite_id = ?2",
            "room_invite",
            params![room_id, invite_id],
        ),
        Change::InsertCode {
            code_hash,
            room_id,
            invite_id,
        } => run(
            // A code is random: the same hash twice is only a faulty writer's, and the first
            // room keeps it.
            "insert into {t} (code_hash, room_id, invite_id) values (?1, ?2, ?3)
             on conflict do nothing",
            "room_code",
            params![code_hash.as_slice(), room_id, invite_id],
        ),
        Change::InsertRecord {
            room_id,
            seq,
            message_id,
            user_id,
            message,
            search_text,
            deleted,
            time,
            event_id,
            position,
            version,
            reply_to,
        } => run(
            "insert into {t} (room_id, seq, message_id, user_id, message, time,
                              event_id, position, search_text, deleted, version, reply_to)
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            "room_record",
            params![
                room_id,
                *seq as i64,
                message_id,
                user_id,
                message,
                time,
                event_id.as_slice(),
                *position as i64,
                search_text,
                deleted,
                *version as i64,
                reply_to.map(|r| r as i64)
            ],
        ),
        Change::EditRecord { .. } | Change::DeleteRecord { .. } | Change::React { .. } => {
            super::changes::apply(tx, change, target)
        }
        // `Plan::new` keeps the room updates out of the other changes.
        Change::TouchRoom { .. } => Ok(()),
    }
}
