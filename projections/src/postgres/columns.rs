//! A [`Plan`]'s changes as PostgreSQL statements: runs of inserts as columns, one array per
//! column, for statements that take them with `unnest` (one statement per table and run),
//! the other changes one statement each in log order, then the room updates in one. A batch
//! of messages and joins costs the same few statements whatever its size.

use crate::plan::Plan;
use crate::projection::{Change, Target};
use events::event::Role;
use tokio_postgres::types::ToSql;

/// A query parameter.
pub(super) type Param<'a> = &'a (dyn ToSql + Sync);

/// A statement and its parameters.
pub(super) type Statement<'a> = (String, Vec<Param<'a>>);

/// An owned query parameter, of a change applied on its own.
pub(super) type Owned = Box<dyn ToSql + Sync + Send>;

/// The statements of a plan, built by [`Columns::of`].
#[derive(Default)]
pub(super) struct Columns<'a> {
    /// In log order: each run's inserts, then the changes of other kinds that followed them.
    runs: Vec<Run<'a>>,
    updates: Updates<'a>,
}

/// Inserts in log order, then the changes of other kinds that came after them and before the
/// next insert: an insert never passes another change (see [`Plan`]).
#[derive(Default)]
struct Run<'a> {
    users: Users<'a>,
    rooms: Rooms<'a>,
    members: Members<'a>,
    records: Records<'a>,
    codes: Codes<'a>,
    /// The other changes, one statement each.
    rare: Vec<(String, Vec<Owned>)>,
}

pub(super) fn owned<T: ToSql + Sync + Send + Clone + 'static>(value: &T) -> Owned {
    Box::new(value.clone())
}

fn role(role: Role) -> &'static str {
    role.as_str()
}

impl<'a> Columns<'a> {
    pub(super) fn of(plan: &'a Plan, target: Target) -> Self {
        let mut c = Columns::default();
        for change in &plan.inserts {
            let fresh = match c.runs.last() {
                None => true,
                Some(run) => Plan::is_insert(change) && !run.rare.is_empty(),
            };
            if fresh {
                c.runs.push(Run::default());
            }
            let run = c.runs.last_mut().expect("a run");
            match change {
                Change::InsertUser {
                    id,
                    name,
                    created_at,
                } => {
                    run.users.id.push(id);
                    run.users
                        .name
                        .push(name.as_deref().unwrap_or(crate::DELETED_USER));
                    run.users
                        .name_lower
                        .push(name.as_deref().map(str::to_lowercase));
                    run.users.created_at.push(*created_at);
                }
                Change::InsertRoom {
                    id,
                    name,
                    description,
                    owner,
                    avatar_image,
                    room_hash_id,
                    direct,
                    time,
                } => {
                    let pair = direct.as_ref();
                    run.rooms.direct_a.push(pair.map(|[a, _]| a.as_str()));
                    run.rooms.direct_b.push(pair.map(|[_, b]| b.as_str()));
                    run.rooms.id.push(id);
                    run.rooms.name.push(name);
                    run.rooms.description.push(description);
                    run.rooms.owner.push(owner);
                    run.rooms.avatar_image.push(avatar_image);
                    run.rooms.room_hash_id.push(room_hash_id);
                    run.rooms.time.push(*time);
                }
                Change::InsertMember {
                    room_id,
                    user_id,
                    role: r,
                    joined_at,
                } => {
                    run.members.room_id.push(room_id);
                    run.members.user_id.push(user_id);
                    run.members.role.push(role(*r));
                    run.members.joined_at.push(*joined_at);
                }
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
                } => {
                    run.records.deleted.push(*deleted);
                    run.records.version.push(*version as i64);
                    run.records.reply_to.push(reply_to.map(|r| r as i64));
                    run.records.room_id.push(room_id);
                    run.records.seq.push(*seq as i64);
                    run.records.message_id.push(message_id);
                    run.records.user_id.push(user_id);
                    run.records.message.push(message);
                    run.records.time.push(*time);
                    run.records.event_id.push(event_id.as_slice());
                    run.records.position.push(*position as i64);
                    run.records.search_text.push(search_text);
                }
                Change::InsertCode {
                    code_hash,
                    room_id,
                    invite_id,
                } => {
                    run.codes.code_hash.push(code_hash.as_slice());
                    run.codes.room_id.push(room_id);
                    run.codes.invite_id.push(invite_id.as_deref());
                }
                other => {
                    if let Some(statement) = single(other, target) {
                        run.rare.push(statement);
                    }
                }
            }
        }
        for u in &plan.rooms {
            c.updates.id.push(u.room_id.as_str());
            c.updates.last_seq.push(u.last_seq);
            c.updates.update_time.push(u.update_time);
        }
        c
    }

    /// The statements that apply the plan, in order: each run's inserts and other changes,
    /// then the room updates.
    pub(super) fn statements(&self, target: Target) -> Vec<Statement<'_>> {
        let mut out: Vec<Statement<'_>> = Vec::new();
        for run in &self.runs {
            run.inserts(target, &mut out);
            for (sql, params) in &run.rare {
                let params = params.iter().map(|p| &**p as Param<'_>).collect();
                out.push((sql.clone(), params));
            }
        }
        let updates = &self.updates;
        if !updates.id.is_empty() {
            // One row per room (Plan::new), so each room is updated once; `greatest` ignores
            // the null `last_seq` of a room without messages.
            out.push((
                format!(
                    "update {} as r set last_seq = greatest(r.last_seq, u.last_seq),
                                        update_time = greatest(r.update_time, u.update_time)
                     from unnest($1::text[], $2::int8[], $3::int8[])
                          as u(id, last_seq, update_time)
                     where r.id = u.id",
                    target.table("room")
                ),
                vec![&updates.id, &updates.last_seq, &updates.update_time],
            ));
        }
        out
    }
}

impl Run<'_> {
    fn inserts<'s>(&'s self, target: Target, out: &mut Vec<Statement<'s>>) {
        let (users, rooms, members, records, codes) = (
            &self.users,
            &self.rooms,
            &self.members,
            &self.records,
            &self.codes,
        );
        if !users.id.is_empty() {
            out.push((
                format!(
                    "insert into {} (id, name, name_lower, created_at)
                     select * from unnest($1::text[], $2::text[], $3::text[], $4::int8[])",
                    quoted(target, "user")
                ),
                vec![&users.id, &users.name, &users.name_lower, &users.created_at],
            ));
        }
        if !rooms.id.is_empty() {
            out.push((
                format!(
                    "insert into {} (id, name, description, owner, avatar_image, room_hash_id,
                                     create_time, update_time, direct_a, direct_b)
                     select id, name, description, owner, avatar_image, room_hash_id, time, time,
                            direct_a, direct_b
                     from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::text[], $7::int8[], $8::text[], $9::text[])
                          as v(id, name, description, owner, avatar_image, room_hash_id, time,
                               direct_a, direct_b)",
                    target.table("room")
                ),
                vec![
                    &rooms.id,
                    &rooms.name,
                    &rooms.description,
                    &rooms.owner,
                    &rooms.avatar_image,
                    &rooms.room_hash_id,
                    &rooms.time,
                    &rooms.direct_a,
                    &rooms.direct_b,
                ],
            ));
        }
        if !members.room_id.is_empty() {
            out.push((
                format!(
                    // The creator's own join finds them there; a second join (possible only
                    // in a log written by a faulty writer) must not stop the projection.
                    "insert into {} (room_id, user_id, role, joined_at)
                     select * from unnest($1::text[], $2::text[], $3::text[], $4::int8[])
                     on conflict do nothing",
                    target.table("room_member")
                ),
                vec![
                    &members.room_id,
                    &members.user_id,
                    &members.role,
                    &members.joined_at,
                ],
            ));
        }
        if !records.room_id.is_empty() {
            out.push((
                format!(
                    "insert into {} (room_id, seq, message_id, user_id, message, time,
                                     event_id, position, search_text, deleted, version,
                                     reply_to)
                     select * from unnest($1::text[], $2::int8[], $3::text[], $4::text[],
                                          $5::text[], $6::int8[], $7::bytea[], $8::int8[],
                                          $9::text[], $10::bool[], $11::int8[], $12::int8[])",
                    target.table("room_record")
                ),
                vec![
                    &records.room_id,
                    &records.seq,
                    &records.message_id,
                    &records.user_id,
                    &records.message,
                    &records.time,
                    &records.event_id,
                    &records.position,
                    &records.search_text,
                    &records.deleted,
                    &records.version,
                    &records.reply_to,
                ],
            ));
        }
        if !codes.room_id.is_empty() {
            out.push((
                format!(
                    // A code is random: the same hash twice is only a faulty writer's, and the
                    // first room keeps it.
                    "insert into {} (code_hash, room_id, invite_id)
                     select * from unnest($1::bytea[], $2::text[], $3::text[])
                     on conflict do nothing",
                    target.table("room_code")
                ),
                vec![&codes.code_hash, &codes.room_id, &codes.invite_id],
            ));
        }
    }
}

/// The statement of a change applied on its own; `None` for the room updates, which
/// [`Plan::new`] keeps apart.
fn single(change: &Change, target: Target) -> Option<(String, Vec<Owned>)> {
    let t = |table: &str| target.table(table);
    Some(match change {
        Change::UpdateUser {
            id,
            name,
            name_lower,
            avatar_image,
        } => (
            format!(
                "update {} set name = coalesce($2, name),
                               name_lower = coalesce($3, name_lower),
                               avatar_image = coalesce($4, avatar_image)
                 where id = $1 and erased_at is null",
                quoted(target, "user")
            ),
            vec![
                owned(id),
                owned(name),
                owned(name_lower),
                owned(avatar_image),
            ],
        ),
        Change::EraseUser { id, time } => (
            format!(
                "update {} set name = '{}', name_lower = null, avatar_image = '',
                               erased_at = $2
                 where id = $1",
                quoted(target, "user"),
                crate::DELETED_USER
            ),
            vec![owned(id), owned(time)],
        ),
        Change::ScrubRecords { user_id } => (
            format!(
                "with versions as (delete from {v} where user_id = $1),
                      reactions as (delete from {x} x using {r} r
                                    where r.user_id = $1
                                      and x.room_id = r.room_id and x.seq = r.seq)
                 update {r} set message = '', search_text = '', deleted = true, reply_to = null
                 where user_id = $1",
                v = t("room_record_version"),
                x = t("room_reaction"),
                r = t("room_record"),
            ),
            vec![owned(user_id)],
        ),
        Change::EditRecord { .. } | Change::DeleteRecord { .. } | Change::React { .. } => {
            return super::changes::statement(change, target);
        }
        Change::RemoveMember { room_id, user_id } => (
            format!(
                "delete from {} where room_id = $1 and user_id = $2",
                t("room_member")
            ),
            vec![owned(room_id), owned(user_id)],
        ),
        Change::UpdateRoom {
            id,
            name,
            description,
            avatar_image,
            retention_days,
            time,
        } => (
            format!(
                "update {} set name = coalesce($2, name),
                               description = coalesce($3, description),
                               avatar_image = coalesce($4, avatar_image),
                               retention_days = case when $5 then $6 else retention_days end,
                               update_time = greatest(update_time, $7)
                 where id = $1",
                t("room")
            ),
            vec![
                owned(id),
                owned(name),
                owned(description),
                owned(avatar_image),
                owned(&retention_days.is_some()),
                owned(&retention_days.flatten().map(i64::from)),
                owned(time),
            ],
        ),
        Change::ArchiveRoom { id, archived, time } => (
            format!(
                "update {} set archived = $2, update_time = greatest(update_time, $3)
                 where id = $1",
                t("room")
            ),
            vec![owned(id), owned(archived), owned(time)],
        ),
        Change::SetOwner { id, owner } => (
            format!("update {} set owner = $2 where id = $1", t("room")),
            vec![owned(id), owned(owner)],
        ),
        Change::RecodeRoom { id, room_hash_id } => (
            format!("update {} set room_hash_id = $2 where id = $1", t("room")),
            vec![owned(id), owned(room_hash_id)],
        ),
        Change::SetRole {
            room_id,
            user_id,
            role: r,
        } => (
            format!(
                "update {} set role = $3 where room_id = $1 and user_id = $2",
                t("room_member")
            ),
            vec![owned(room_id), owned(user_id), owned(&role(*r))],
        ),
        Change::SetMute {
            room_id,
            user_id,
            until,
        } => (
            format!(
                "update {} set muted_until = $3 where room_id = $1 and user_id = $2",
                t("room_member")
            ),
            vec![owned(room_id), owned(user_id), owned(until)],
        ),
        Change::InsertBan {
            room_id,
            user_id,
            until,
            by,
            banned_at,
        } => (
            format!(
                "insert into {} (room_id, user_id, until, banned_by, banned_at)
                 values ($1, $2, $3, $4, $5)
                 on conflict (room_id, user_id) do update
                 set until = excluded.until, banned_by = excluded.banned_by,
                     banned_at = excluded.banned_at",
                t("room_ban")
            ),
            vec![
                owned(room_id),
                owned(user_id),
                owned(until),
                owned(by),
                owned(banned_at),
            ],
        ),
        Change::RemoveBan { room_id, user_id } => (
            format!(
                "delete from {} where room_id = $1 and user_id = $2",
                t("room_ban")
            ),
            vec![owned(room_id), owned(user_id)],
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
        } => (
            format!(
                "insert into {} (room_id, invite_id, code, code_hash, max_uses, expires_at,
                                 created_by, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
                t("room_invite")
            ),
            vec![
                owned(room_id),
                owned(invite_id),
                owned(code),
                owned(&code_hash.to_vec()),
                owned(&max_uses.map(i64::from)),
                owned(expires_at),
                owned(created_by),
                owned(created_at),
            ],
        ),
        Change::RevokeInvite { room_id, invite_id } => (
            format!(
                "update {} set revoked = true where room_id = $1 and invite_id = $2",
                t("room_invite")
            ),
            vec![owned(room_id), owned(invite_id)],
        ),
        Change::UseInvite { room_id, invite_id } => (
            format!(
                "update {} set uses = uses + 1 where room_id = $1 and invite_id = $2",
                t("room_invite")
            ),
            vec![owned(room_id), owned(invite_id)],
        ),
        Change::InsertBlock { by, user_id, time } => (
            format!(
                "insert into {} (blocker_id, blocked_id, blocked_at) values ($1, $2, $3)
                 on conflict do nothing",
                t("user_block")
            ),
            vec![owned(by), owned(user_id), owned(time)],
        ),
        Change::RemoveBlock { by, user_id } => (
            format!(
                "delete from {} where blocker_id = $1 and blocked_id = $2",
                t("user_block")
            ),
            vec![owned(by), owned(user_id)],
        ),
        Change::EraseBlocks { user_id } => (
            format!(
                "delete from {} where blocker_id = $1 or blocked_id = $1",
                t("user_block")
            ),
            vec![owned(user_id)],
        ),
        Change::TouchRoom { .. }
        | Change::InsertUser { .. }
        | Change::InsertRoom { .. }
        | Change::InsertMember { .. }
        | Change::InsertRecord { .. }
        | Change::InsertCode { .. } => return None,
    })
}

/// The updates of `room` rows, one per room.
#[derive(Default)]
struct Updates<'a> {
    id: Vec<&'a str>,
    last_seq: Vec<Option<i64>>,
    update_time: Vec<i64>,
}

/// The columns of new `user` rows.
#[derive(Default)]
struct Users<'a> {
    id: Vec<&'a str>,
    name: Vec<&'a str>,
    name_lower: Vec<Option<String>>,
    created_at: Vec<i64>,
}

/// The columns of new `room` rows.
#[derive(Default)]
struct Rooms<'a> {
    id: Vec<&'a str>,
    name: Vec<&'a str>,
    description: Vec<&'a str>,
    owner: Vec<&'a str>,
    avatar_image: Vec<&'a str>,
    room_hash_id: Vec<&'a str>,
    time: Vec<i64>,
    direct_a: Vec<Option<&'a str>>,
    direct_b: Vec<Option<&'a str>>,
}

/// The columns of new `room_member` rows.
#[derive(Default)]
struct Members<'a> {
    room_id: Vec<&'a str>,
    user_id: Vec<&'a str>,
    role: Vec<&'static str>,
    joined_at: Vec<i64>,
}

/// The columns of new `room_record` rows.
#[derive(Default)]
struct Records<'a> {
    room_id: Vec<&'a str>,
    seq: Vec<i64>,
    message_id: Vec<&'a str>,
    user_id: Vec<&'a str>,
    message: Vec<&'a str>,
    time: Vec<i64>,
    event_id: Vec<&'a [u8]>,
    position: Vec<i64>,
    search_text: Vec<&'a str>,
    deleted: Vec<bool>,
    version: Vec<i64>,
    reply_to: Vec<Option<i64>>,
}

/// The columns of new `room_code` rows.
#[derive(Default)]
struct Codes<'a> {
    code_hash: Vec<&'a [u8]>,
    room_id: Vec<&'a str>,
    invite_id: Vec<Option<&'a str>>,
}

/// `table` of `target`, quoted (`user` is a reserved word in PostgreSQL).
fn quoted(target: Target, table: &str) -> String {
    format!("\"{}\"", target.table(table))
}
