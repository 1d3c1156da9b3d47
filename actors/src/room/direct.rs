//! The rules only a direct room has: nothing to govern, and its two people may come back.

use super::{Command, Decision, Rejection, State};
use events::Event;
use events::event::MemberJoined;

/// Why a direct room refuses `command`, if it does: it has two people and nothing to govern,
/// so no codes, invites, roles, moderation or settings; a group room is never reopened.
pub(super) fn refused(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::Join { .. } => "a direct room cannot be joined by code",
        Command::RotateCode { .. }
        | Command::CreateInvite { .. }
        | Command::RevokeInvite { .. } => "a direct room has no invites",
        Command::SetRole { .. } => "a direct room has no roles to change",
        Command::Moderate { .. } => "nobody moderates a direct room",
        Command::Update { .. } => "a direct room cannot be changed",
        Command::Reopen { .. }
        | Command::Post { .. }
        | Command::Edit { .. }
        | Command::Delete { .. }
        | Command::React { .. }
        | Command::Leave { .. }
        | Command::Erase { .. } => return None,
    })
}

/// One of the pair opens the room again: back in if they had left.
pub(super) fn reopen(state: &State, user_id: &str) -> Result<Decision, Rejection> {
    if state.other_of(user_id).is_none() {
        return Err(Rejection::Forbidden(
            "only its two people may open a direct room",
        ));
    }
    if state.is_member(user_id) {
        return Ok(Decision::AlreadyDone(None));
    }
    if state.settings.archived {
        return Err(Rejection::Archived);
    }
    Ok(Decision::Append(vec![Event::MemberJoined(MemberJoined {
        room_id: state.room_id.clone(),
        user_id: user_id.to_owned(),
        invite: None,
    })]))
}
