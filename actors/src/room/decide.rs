//! [`decide`]: what a command does to a room, or why it is refused.

use super::{
    Act, Change, Command, Decision, MAX_EMOJI, MAX_EMOJI_CHARS, MAX_TEXT_CHARS, Pending, Rejection,
    State,
};
use events::Event;
use events::event::{
    Archival, InviteCreated, InviteRevoked, JoinCodeRotated, Lifted, MemberBanned, MemberJoined,
    MemberKicked, MemberLeft, MemberMuted, MessageDeleted, Reaction, Role, RoleChanged,
    RoomUpdated,
};

/// Longest room name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest room description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// Longest retention a room may set, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Checks a message text the way the contract counts it.
///
/// # Errors
/// [`Rejection::Empty`] or [`Rejection::TooLong`].
pub fn check_text(text: &str) -> Result<(), Rejection> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Rejection::Empty);
    }
    if trimmed.chars().count() > MAX_TEXT_CHARS {
        return Err(Rejection::TooLong);
    }
    Ok(())
}

/// Decides what `command` does to a room in `state` at `now` (ms), given `next_seq` as the seq
/// a new message would get (the actor passes `last_seq + 1 + messages already waiting in its
/// batch`).
///
/// # Errors
/// The [`Rejection`] that stops the command; nothing is appended then.
pub fn decide(
    state: &State,
    next_seq: u64,
    now: i64,
    command: &Command,
) -> Result<Decision, Rejection> {
    decide_with(state, &Pending::default(), next_seq, now, command)
}

/// [`decide`], seeing also the message changes `pending` in the actor's batch.
///
/// # Errors
/// The [`Rejection`] that stops the command; nothing is appended then.
pub fn decide_with(
    state: &State,
    pending: &Pending,
    next_seq: u64,
    now: i64,
    command: &Command,
) -> Result<Decision, Rejection> {
    if !state.exists {
        return Err(Rejection::NotFound);
    }
    let room_id = || state.room_id.clone();
    let one = |e: Event| Ok(Decision::Append(vec![e]));
    if state.is_direct()
        && let Some(refusal) = super::direct::refused(command)
    {
        return Err(Rejection::Forbidden(refusal));
    }
    match command {
        Command::Reopen { user_id } => super::direct::reopen(state, user_id),
        Command::Join { user_id, code_hash } => {
            if state.is_member(user_id) {
                return Ok(Decision::AlreadyDone(None));
            }
            if state
                .bans
                .get(user_id)
                .is_some_and(|until| until.is_none_or(|u| now < u))
            {
                return Err(Rejection::Banned);
            }
            let invite = if *code_hash == state.join_code_hash {
                None
            } else {
                match state
                    .invites
                    .iter()
                    .find(|(_, i)| i.code_hash == *code_hash)
                {
                    Some((id, i)) if i.usable(now) => Some(id.clone()),
                    _ => return Err(Rejection::Gone),
                }
            };
            if state.settings.archived {
                return Err(Rejection::Archived);
            }
            one(Event::MemberJoined(MemberJoined {
                room_id: room_id(),
                user_id: user_id.clone(),
                invite,
            }))
        }
        Command::Post {
            user_id,
            message_id,
            text,
            reply_to,
        } => {
            let Some(member) = state.members.get(user_id) else {
                return Err(Rejection::NotMember);
            };
            if message_id.is_empty() || message_id.chars().count() > 128 {
                return Err(Rejection::BadId);
            }
            check_text(text)?;
            if reply_to.is_some_and(|r| r == 0 || r >= next_seq) {
                return Err(Rejection::BadReply);
            }
            // A retry of a stored message answers with it, whatever changed since.
            if let Some((seq, _)) = state.recent(message_id) {
                return Ok(Decision::AlreadyDone(Some(seq)));
            }
            if state.settings.archived {
                return Err(Rejection::Archived);
            }
            if member.muted_until.is_some_and(|u| now < u) {
                return Err(Rejection::Muted);
            }
            Ok(Decision::Post(next_seq))
        }
        Command::Edit { user_id, seq, text } => {
            let member = state.members.get(user_id).ok_or(Rejection::NotMember)?;
            let fact = state.fact(*seq).ok_or(Rejection::NoSuchMessage)?;
            if state.author_of(fact) != user_id {
                return Err(Rejection::Forbidden("only its author may edit a message"));
            }
            if fact.deleted || pending.deleted.contains(seq) {
                return Err(Rejection::Conflict("a deleted message cannot be edited"));
            }
            check_text(text)?;
            if state.settings.archived {
                return Err(Rejection::Archived);
            }
            if member.muted_until.is_some_and(|u| now < u) {
                return Err(Rejection::Muted);
            }
            Ok(Decision::Edit {
                seq: *seq,
                period: fact.period,
            })
        }
        Command::Delete { by, seq } => {
            let role = state.role_of(by).ok_or(Rejection::NotMember)?;
            let fact = state.fact(*seq).ok_or(Rejection::NoSuchMessage)?;
            let author = state.author_of(fact);
            // An author deletes their own; an admin members' (and former members'); the
            // owner anyone's.
            let allowed = author == by
                || match role {
                    Role::Owner => true,
                    Role::Admin => {
                        !matches!(state.role_of(author), Some(Role::Owner | Role::Admin))
                    }
                    Role::Member => false,
                };
            if !allowed {
                return Err(Rejection::Forbidden(
                    "an author deletes their own messages, an admin members', the owner anyone's",
                ));
            }
            if fact.deleted || pending.deleted.contains(seq) {
                return Ok(Decision::AlreadyDone(None));
            }
            if state.settings.archived {
                return Err(Rejection::Archived);
            }
            one(Event::MessageDeleted(MessageDeleted {
                room_id: room_id(),
                seq: *seq,
                by: by.clone(),
            }))
        }
        Command::React {
            user_id,
            seq,
            emoji,
            on,
        } => {
            let member = state.members.get(user_id).ok_or(Rejection::NotMember)?;
            let n = emoji.chars().count();
            if n == 0 || n > MAX_EMOJI_CHARS || emoji.chars().any(char::is_whitespace) {
                return Err(Rejection::BadEmoji);
            }
            let fact = state.fact(*seq).ok_or(Rejection::NoSuchMessage)?;
            if fact.deleted || pending.deleted.contains(seq) {
                return Err(Rejection::Conflict("a deleted message takes no reactions"));
            }
            if state.settings.archived {
                return Err(Rejection::Archived);
            }
            if member.muted_until.is_some_and(|u| now < u) {
                return Err(Rejection::Muted);
            }
            if reacted(state, pending, *seq, emoji, user_id) == *on {
                return Ok(Decision::AlreadyDone(None));
            }
            if *on
                && !has_symbol(state, pending, *seq, emoji)
                && symbols(state, pending, *seq) >= MAX_EMOJI
            {
                return Err(Rejection::Conflict(
                    "a message holds at most 20 distinct emoji",
                ));
            }
            let reaction = Reaction {
                room_id: room_id(),
                seq: *seq,
                user_id: user_id.clone(),
                emoji: emoji.clone(),
            };
            one(if *on {
                Event::ReactionAdded(reaction)
            } else {
                Event::ReactionRemoved(reaction)
            })
        }
        Command::Leave { user_id } => match state.role_of(user_id) {
            None => Err(Rejection::NotMember),
            Some(Role::Owner) => Err(Rejection::OwnerMustTransfer),
            Some(_) => one(left(state, user_id)),
        },
        Command::Erase { user_id } => Ok(erase(state, user_id)),
        Command::Moderate { by, user_id, act } => moderate(state, now, by, user_id, act),
        Command::SetRole { by, user_id, role } => {
            match state.role_of(by) {
                None => return Err(Rejection::NotMember),
                Some(Role::Owner) => {}
                Some(_) => return Err(Rejection::Forbidden("only the owner changes roles")),
            }
            if by == user_id {
                return Err(Rejection::Forbidden("the owner cannot change its own role"));
            }
            let Some(current) = state.role_of(user_id) else {
                return Err(Rejection::NoSuchMember);
            };
            if current == *role {
                return Ok(Decision::AlreadyDone(None));
            }
            let changed = |user: &str, role| {
                Event::RoleChanged(RoleChanged {
                    room_id: room_id(),
                    user_id: user.to_owned(),
                    by: Some(by.clone()),
                    role,
                })
            };
            let mut events = vec![changed(user_id, *role)];
            if *role == Role::Owner {
                events.push(changed(by, Role::Admin));
            }
            Ok(Decision::Append(events))
        }
        Command::Update { by, change } => update(state, by, change),
        Command::RotateCode {
            by,
            join_code_hash,
            join_code,
        } => {
            admin(state, by)?;
            one(Event::JoinCodeRotated(JoinCodeRotated {
                room_id: room_id(),
                by: by.clone(),
                join_code_hash: *join_code_hash,
                join_code: join_code.clone(),
            }))
        }
        Command::CreateInvite {
            by,
            invite_id,
            code_hash,
            code,
            max_uses,
            expires_at,
        } => {
            admin(state, by)?;
            if max_uses == &Some(0) {
                return Err(Rejection::Invalid("maxUses must be a positive integer"));
            }
            one(Event::InviteCreated(InviteCreated {
                room_id: room_id(),
                invite_id: invite_id.clone(),
                by: by.clone(),
                code_hash: *code_hash,
                code: code.clone(),
                max_uses: *max_uses,
                expires_at: *expires_at,
            }))
        }
        Command::RevokeInvite { by, invite_id } => {
            admin(state, by)?;
            if !state.invites.contains_key(invite_id) {
                return Err(Rejection::NoSuchInvite);
            }
            one(Event::InviteRevoked(InviteRevoked {
                room_id: room_id(),
                invite_id: invite_id.clone(),
                by: by.clone(),
            }))
        }
    }
}

/// Whether `user` has reacted `emoji` to `seq`, once the batch is written.
fn reacted(state: &State, pending: &Pending, seq: u64, emoji: &str, user: &str) -> bool {
    if let Some(&on) = pending
        .reactions
        .get(&seq)
        .and_then(|p| p.get(&(emoji.to_owned(), user.to_owned())))
    {
        return on;
    }
    state
        .reactions_of(seq)
        .iter()
        .any(|(e, users)| e == emoji && users.iter().any(|u| u == user))
}

/// Whether `seq` holds `emoji` now or will once the batch is written.
fn has_symbol(state: &State, pending: &Pending, seq: u64, emoji: &str) -> bool {
    state.reactions_of(seq).iter().any(|(e, _)| e == emoji)
        || pending
            .reactions
            .get(&seq)
            .is_some_and(|p| p.iter().any(|((e, _), on)| *on && e == emoji))
}

/// How many distinct symbols `seq` holds now and adds in the batch (one the batch takes
/// away still counts until it is written).
fn symbols(state: &State, pending: &Pending, seq: u64) -> usize {
    let mut all: std::collections::HashSet<&str> = state
        .reactions_of(seq)
        .iter()
        .map(|(e, _)| e.as_str())
        .collect();
    for ((emoji, _), on) in pending.reactions.get(&seq).into_iter().flatten() {
        if *on {
            all.insert(emoji.as_str());
        }
    }
    all.len()
}

fn left(state: &State, user_id: &str) -> Event {
    Event::MemberLeft(MemberLeft {
        room_id: state.room_id.clone(),
        user_id: user_id.to_owned(),
    })
}

/// An erased user's membership ends; an owner's room passes to the longest-standing admin,
/// else member, and a room left with nobody is archived.
fn erase(state: &State, user_id: &str) -> Decision {
    // Each of their messages becomes a placeholder, a change of its own that subscribers see
    // at once (the texts become unreadable anyway once the keys go).
    let mut events: Vec<Event> = state
        .messages
        .iter()
        .zip(1..)
        .filter(|(f, _)| !f.deleted && state.author_of(f) == user_id)
        .map(|(_, seq)| {
            Event::MessageDeleted(MessageDeleted {
                room_id: state.room_id.clone(),
                seq,
                by: user_id.to_owned(),
            })
        })
        .collect();
    let Some(role) = state.role_of(user_id) else {
        return if events.is_empty() {
            Decision::AlreadyDone(None)
        } else {
            Decision::Append(events)
        };
    };
    events.push(left(state, user_id));
    if role == Role::Owner {
        let heir = state
            .members
            .iter()
            .filter(|(id, _)| id.as_str() != user_id)
            .min_by_key(|(_, m)| (m.role != Role::Admin, m.since));
        match heir {
            Some((id, _)) => events.push(Event::RoleChanged(RoleChanged {
                room_id: state.room_id.clone(),
                user_id: id.clone(),
                by: None,
                role: Role::Owner,
            })),
            None if !state.settings.archived => events.push(Event::RoomArchived(Archival {
                room_id: state.room_id.clone(),
                by: None,
            })),
            None => {}
        }
    }
    Decision::Append(events)
}

/// Checks that `by` is an admin or the owner.
fn admin(state: &State, by: &str) -> Result<Role, Rejection> {
    match state.role_of(by) {
        None => Err(Rejection::NotMember),
        Some(Role::Member) => Err(Rejection::Forbidden(
            "only admins and the owner may do this",
        )),
        Some(role) => Ok(role),
    }
}

fn moderate(
    state: &State,
    now: i64,
    by: &str,
    user_id: &str,
    act: &Act,
) -> Result<Decision, Rejection> {
    let role = admin(state, by)?;
    if by == user_id {
        return Err(Rejection::Forbidden("you cannot moderate yourself"));
    }
    let target = state.role_of(user_id);
    // The owner acts on anyone but itself; an admin on members (and, for a ban, non-members).
    let allowed = |target: Option<Role>| match target {
        Some(Role::Owner) => false,
        Some(Role::Admin) => role == Role::Owner,
        Some(Role::Member) | None => true,
    };
    let needs_member = matches!(act, Act::Kick { .. } | Act::Mute { .. } | Act::Unmute);
    if needs_member && target.is_none() {
        return Err(Rejection::NoSuchMember);
    }
    if !allowed(target) {
        return Err(Rejection::Forbidden(
            "an admin acts on members only, and nobody acts on the owner",
        ));
    }
    let room_id = state.room_id.clone();
    let (by, user_id) = (by.to_owned(), user_id.to_owned());
    let event = match act {
        Act::Kick { reason } => Event::MemberKicked(MemberKicked {
            room_id,
            user_id,
            by,
            reason: reason.clone(),
        }),
        Act::Ban { reason, until } => Event::MemberBanned(MemberBanned {
            room_id,
            user_id,
            by,
            reason: reason.clone(),
            until: *until,
        }),
        Act::Unban => {
            if !state.bans.contains_key(&user_id) {
                return Ok(Decision::AlreadyDone(None));
            }
            Event::MemberUnbanned(Lifted {
                room_id,
                user_id,
                by,
            })
        }
        Act::Mute { until } => Event::MemberMuted(MemberMuted {
            room_id,
            user_id,
            by,
            until: *until,
        }),
        Act::Unmute => {
            let muted = state
                .members
                .get(&user_id)
                .and_then(|m| m.muted_until)
                .is_some_and(|u| now < u);
            if !muted {
                return Ok(Decision::AlreadyDone(None));
            }
            Event::MemberUnmuted(Lifted {
                room_id,
                user_id,
                by,
            })
        }
    };
    Ok(Decision::Append(vec![event]))
}

fn update(state: &State, by: &str, change: &Change) -> Result<Decision, Rejection> {
    let role = admin(state, by)?;
    let owner_only = change.archived.is_some() || change.retention_days.is_some();
    if owner_only && role != Role::Owner {
        return Err(Rejection::Forbidden(
            "only the owner archives a room or sets its retention",
        ));
    }
    if let Some(n) = &change.name {
        let n = n.trim().chars().count();
        if n == 0 || n > MAX_NAME_CHARS {
            return Err(Rejection::Invalid("a room name has 1 to 64 characters"));
        }
    }
    if change
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
    {
        return Err(Rejection::Invalid(
            "a room description has at most 256 characters",
        ));
    }
    if let Some(Some(days)) = change.retention_days
        && !(1..=MAX_RETENTION_DAYS).contains(&days)
    {
        return Err(Rejection::Invalid("retentionDays is null or 1 to 36500"));
    }
    let s = &state.settings;
    let differs = |new: &Option<String>, old: &String| new.as_ref().filter(|n| *n != old).cloned();
    let updated = RoomUpdated {
        room_id: state.room_id.clone(),
        by: by.to_owned(),
        name: differs(&change.name.as_ref().map(|n| n.trim().to_owned()), &s.name),
        description: differs(&change.description, &s.description),
        avatar_image: differs(&change.avatar_image, &s.avatar_image),
        retention_days: change.retention_days.filter(|r| *r != s.retention_days),
    };
    let mut events = Vec::new();
    if updated.name.is_some()
        || updated.description.is_some()
        || updated.avatar_image.is_some()
        || updated.retention_days.is_some()
    {
        events.push(Event::RoomUpdated(updated));
    }
    match change.archived {
        Some(true) if !s.archived => events.push(Event::RoomArchived(Archival {
            room_id: state.room_id.clone(),
            by: Some(by.to_owned()),
        })),
        Some(false) if s.archived => events.push(Event::RoomUnarchived(Archival {
            room_id: state.room_id.clone(),
            by: Some(by.to_owned()),
        })),
        _ => {}
    }
    if events.is_empty() {
        return Ok(Decision::AlreadyDone(None));
    }
    Ok(Decision::Append(events))
}
