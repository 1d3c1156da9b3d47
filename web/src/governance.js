// Rooms people govern: each room's members (roles, mutes), the moderation calls, the room's
// settings and invites, and the `room_event`s that keep all of it live, the caller's own
// removal included. Also each room's `version`, which a reconnect resumes from.
import { api } from './api.js'
import { state, key, sameId, newId, notePerson, personOf } from './state.js'
import { chatOf, roomById, lastSeqOf } from './timeline.js'
import { untilText } from './format.js'

const RANK = { owner: 0, admin: 1, member: 2 }
export const ROLE_LABEL = { owner: 'Owner', admin: 'Admin', member: 'Member' }

const isMe = (userId) => !!state.user && sameId(userId, state.user.userId)
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/* ---------------------------------------------------------------- versions */

// The newest version of the room this page has taken in: a reconnect asks for what follows.
export function noteVersion(roomId, version) {
  const v = num(version)
  if (v == null) return
  const chat = chatOf(roomId)
  if (chat.version == null || v > chat.version) chat.version = v
}

export function versionFor(roomId) {
  const chat = state.chats[key(roomId)]
  return chat && chat.version != null ? chat.version : null
}

/* ---------------------------------------------------------------- roles and members */

// The caller's role; a room from before roles knows only its owner.
export function myRole(room) {
  if (!room) return 'member'
  if (RANK[room.role] != null) return room.role
  return isMe(room.owner) ? 'owner' : 'member'
}

export function isAdmin(room) {
  return RANK[myRole(room)] <= RANK.admin
}

// An admin acts on members only; the owner on anyone but itself.
export function canActOn(room, member) {
  if (!member || isMe(member.id)) return false
  const mine = myRole(room)
  if (mine === 'owner') return member.role !== 'owner'
  return mine === 'admin' && member.role === 'member'
}

export function mutedUntil(member, now = Date.now()) {
  const t = member && member.mutedUntil ? Date.parse(member.mutedUntil) : NaN
  return Number.isFinite(t) && t > now ? member.mutedUntil : null
}

export function membersOf(roomId) {
  const k = key(roomId)
  if (!state.members[k]) state.members[k] = { list: [], loaded: false, loading: false, error: '', bans: [], joins: 0 }
  return state.members[k]
}

export function myMember(roomId) {
  const p = state.members[key(roomId)]
  return (p && p.list.find((m) => isMe(m.id))) || null
}

// Owner, admins, members; within a role in the order they joined, as the server lists them.
function sortMembers(p) {
  p.list.sort((a, b) => RANK[a.role] - RANK[b.role] || a.order - b.order)
}

// `member` may be partial ({id, role}); someone new to the list needs at least a name.
function putMember(roomId, member) {
  if (!member || member.id == null) return
  const p = membersOf(roomId)
  const named = typeof member.name === 'string'
  if (named) notePerson(member)
  const i = p.list.findIndex((m) => sameId(m.id, member.id))
  if (i >= 0) p.list[i] = { ...p.list[i], ...member }
  else if (named) p.list.push({ role: 'member', mutedUntil: null, online: false, ...member, order: p.joins++ })
  if (member.role && isMe(member.id)) setMyRole(roomId, member.role)
  sortMembers(p)
}

function dropMember(roomId, userId) {
  const p = state.members[key(roomId)]
  if (p) p.list = p.list.filter((m) => !sameId(m.id, userId))
}

function setMyRole(roomId, role) {
  patchRoom(roomId, role === 'owner' ? { role, owner: state.user.userId } : { role })
}

export async function loadMembers(roomId) {
  const p = membersOf(roomId)
  p.loading = true
  try {
    const data = await api.members(roomId)
    p.list = []
    p.joins = 0
    for (const m of (data && data.members) || []) putMember(roomId, m)
    p.loaded = true
    p.error = ''
    countMembers(roomId, 0)
  } catch (e) {
    p.error = e.message
  } finally {
    p.loading = false
  }
}

/* ---------------------------------------------------------------- moderation */

const reasonBody = (reason) => (reason && reason.trim() ? { reason: reason.trim() } : {})

export async function changeRole(roomId, userId, role) {
  const data = await api.setRole(roomId, userId, role)
  if (data && data.member) putMember(roomId, data.member)
  if (role === 'owner') {
    // a transfer: the old owner is an admin now
    patchRoom(roomId, { owner: userId, role: 'admin' })
    const me = myMember(roomId)
    if (me) putMember(roomId, { id: me.id, role: 'admin' })
  }
}

export async function kick(roomId, userId, reason) {
  await api.kick(roomId, userId, reasonBody(reason))
  dropMember(roomId, userId)
  countMembers(roomId, -1)
}

export async function ban(roomId, user, reason, durationSecs) {
  const body = reasonBody(reason)
  if (durationSecs) body.durationSecs = durationSecs
  await api.ban(roomId, user.id, body)
  dropMember(roomId, user.id)
  countMembers(roomId, -1)
  noteBan(roomId, user, durationSecs ? new Date(Date.now() + durationSecs * 1000).toISOString() : null)
}

export async function unban(roomId, userId) {
  await api.unban(roomId, userId)
  forgetBan(roomId, userId)
}

export async function mute(roomId, userId, durationSecs) {
  const data = await api.mute(roomId, userId, durationSecs)
  putMember(roomId, (data && data.member) || { id: userId, mutedUntil: new Date(Date.now() + durationSecs * 1000).toISOString() })
}

export async function unmute(roomId, userId) {
  const data = await api.unmute(roomId, userId)
  putMember(roomId, (data && data.member) || { id: userId, mutedUntil: null })
}

// A loaded members list is the count; without one, the change is applied to the last count.
function countMembers(roomId, delta) {
  const p = state.members[key(roomId)]
  if (p && p.loaded) return patchRoom(roomId, { member_count: p.list.length })
  const n = Number(roomById(roomId)?.member_count)
  if (Number.isFinite(n) && n + delta >= 0) patchRoom(roomId, { member_count: n + delta })
}

// Bans are not in the members list: the panel keeps the ones this page has seen, to lift them.
function noteBan(roomId, user, until) {
  const p = membersOf(roomId)
  notePerson(user)
  p.bans = p.bans.filter((b) => !sameId(b.user.id, user.id)).concat([{ user, until }])
}

function forgetBan(roomId, userId) {
  const p = membersOf(roomId)
  p.bans = p.bans.filter((b) => !sameId(b.user.id, userId))
}

/* ---------------------------------------------------------------- settings, leaving */

function patchRoom(roomId, fields) {
  const i = state.rooms.findIndex((r) => sameId(r.id, roomId))
  if (i >= 0) state.rooms[i] = { ...state.rooms[i], ...fields }
}

// The fields of a room every member shares; the caller's own (role, read marker, unread) are
// kept as this page knows them, since another member's change carries none.
function roomFields(room) {
  const shared = { ...room }
  for (const own of ['role', 'last_read_seq', 'unread']) delete shared[own]
  return shared
}

// The room as it was before this page's own change: the timeline line of that change (which
// may come before or after the answer) says what it changed, not what it found unchanged.
const ownBefore = new Map()
function beforeOwnChange(roomId) {
  const room = roomById(roomId)
  if (room) ownBefore.set(key(roomId), { ...room })
}

export async function updateRoom(roomId, changes) {
  beforeOwnChange(roomId)
  const data = await api.updateRoom(roomId, changes)
  if (data && data.room) patchRoom(roomId, roomFields(data.room))
}

export async function leaveRoom(roomId) {
  const room = roomById(roomId)
  await api.leaveRoom(roomId)
  if (room) dropRoom(roomId, `You left ${room.name}.`)
}

// The room leaves the page: its list entry, timeline and members; `text` says why.
export function dropRoom(roomId, text) {
  const k = key(roomId)
  if (!roomById(roomId)) return
  state.rooms = state.rooms.filter((r) => !sameId(r.id, roomId))
  delete state.chats[k]
  delete state.members[k]
  if (text) state.removals.push({ key: newId(), text })
}

// Rooms of an earlier list missing from a fresh one: the user was removed while away.
export function noteVanished(before, after) {
  const still = new Set(after.map((r) => key(r.id)))
  for (const r of before) {
    if (!still.has(key(r.id))) {
      state.removals.push({ key: newId(), text: `You are no longer a member of ${r.name}.` })
      delete state.chats[key(r.id)]
      delete state.members[key(r.id)]
    }
  }
}

export function dismissRemoval(k) {
  state.removals = state.removals.filter((r) => r.key !== k)
}

/* ---------------------------------------------------------------- invites */

export async function rotateCode(roomId) {
  beforeOwnChange(roomId)
  const data = await api.rotateCode(roomId)
  if (data && data.room) patchRoom(roomId, roomFields(data.room))
}

export async function listInvites(roomId) {
  const data = await api.invites(roomId)
  return (data && data.invites) || []
}

export async function createInvite(roomId, { maxUses, expiresInSecs }) {
  const limits = {}
  if (maxUses) limits.maxUses = maxUses
  if (expiresInSecs) limits.expiresInSecs = expiresInSecs
  const data = await api.createInvite(roomId, limits)
  return data && data.invite
}

export async function revokeInvite(roomId, inviteId) {
  await api.revokeInvite(roomId, inviteId)
}

/* ---------------------------------------------------------------- live changes */

function who(user, start) {
  if (!user) return start ? 'Someone' : 'someone'
  if (isMe(user.id)) return start ? 'You' : 'you'
  return personOf(user).name
}

const ROLE_PHRASE = { owner: 'the owner', admin: 'an admin', member: 'a member' }
const until = (t) => (t ? ` until ${untilText(t)}` : '')

function describe(ev, room, before) {
  const u = who(ev.user, true)
  const by = who(ev.by, true)
  switch (ev.type) {
    case 'joined':
      return `${u} joined the room`
    case 'left':
      return `${u} left the room`
    case 'kicked':
      return `${by} removed ${who(ev.user)} from the room`
    case 'banned':
      return `${by} banned ${who(ev.user)}${until(ev.until)}`
    case 'unbanned':
      return `${by} lifted the ban on ${who(ev.user)}`
    case 'muted':
      return `${by} muted ${who(ev.user)}${until(ev.until)}`
    case 'unmuted':
      return `${by} unmuted ${who(ev.user)}`
    case 'role_changed':
      return `${u} ${isMe(ev.user && ev.user.id) ? 'are' : 'is'} now ${ROLE_PHRASE[ev.role] || ev.role}`
    case 'updated': {
      const r = ev.room || {}
      if (r.name != null && r.name !== before.name) return `${by} renamed the room to ${r.name}`
      if (r.room_hash_id != null && r.room_hash_id !== before.room_hash_id) return `${by} replaced the room's join code`
      return `${by} changed the room's details`
    }
    case 'archived':
      return `${by} archived the room: it is read-only now`
    case 'unarchived':
      return `${by} unarchived the room`
    default:
      return ''
  }
}

function removalText(ev, room) {
  const by = ev.by ? ` by ${who(ev.by)}` : ''
  if (ev.type === 'kicked') return `You were removed from ${room.name}${by}.`
  if (ev.type === 'banned') return `You were banned from ${room.name}${by}${until(ev.until)}.`
  return `You left ${room.name}.`
}

// One `room_event`, in its place among the room's messages (see store.js's inbox).
export function applyRoomEvent(ev) {
  const room = roomById(ev.roomId)
  if (!room) return
  const chat = chatOf(ev.roomId)
  const v = num(ev.version)
  if (v != null) {
    if (chat.eventVersion != null && v <= chat.eventVersion) return // replayed again: applied already
    chat.eventVersion = v
    noteVersion(ev.roomId, v)
  }
  if (ev.user) notePerson(ev.user)
  if (ev.by) notePerson(ev.by)
  const userId = ev.user && ev.user.id
  if (['left', 'kicked', 'banned'].includes(ev.type) && isMe(userId)) {
    dropRoom(ev.roomId, removalText(ev, room))
    return
  }
  let before = { ...room }
  if (ev.type === 'updated' && ev.by && isMe(ev.by.id) && ownBefore.has(key(ev.roomId))) {
    before = ownBefore.get(key(ev.roomId))
    ownBefore.delete(key(ev.roomId))
  }
  switch (ev.type) {
    case 'joined':
      if (state.members[key(ev.roomId)]) putMember(ev.roomId, { ...ev.user, role: 'member', mutedUntil: null })
      forgetBan(ev.roomId, userId)
      countMembers(ev.roomId, isMe(userId) ? 0 : 1) // my own join's count came with the room
      break
    case 'left':
    case 'kicked':
      dropMember(ev.roomId, userId)
      countMembers(ev.roomId, -1)
      break
    case 'banned':
      dropMember(ev.roomId, userId)
      countMembers(ev.roomId, -1)
      noteBan(ev.roomId, ev.user, ev.until || null)
      break
    case 'unbanned':
      forgetBan(ev.roomId, userId)
      break
    case 'muted':
    case 'unmuted':
      putMember(ev.roomId, { ...ev.user, mutedUntil: ev.type === 'muted' ? ev.until || null : null })
      break
    case 'role_changed':
      putMember(ev.roomId, { ...ev.user, role: ev.role })
      if (ev.role === 'owner') patchRoom(ev.roomId, { owner: userId })
      break
    case 'updated':
      if (ev.room) patchRoom(ev.roomId, roomFields(ev.room))
      break
    case 'archived':
    case 'unarchived':
      patchRoom(ev.roomId, { archived: ev.type === 'archived' })
      break
    default:
      return
  }
  addLine(chat, ev, describe(ev, roomById(ev.roomId) || room, before))
}

function addLine(chat, ev, text) {
  if (!text) return
  const afterSeq = lastSeqOf(chat)
  const prev = chat.notices[chat.notices.length - 1]
  // one line per join: part 1's join notice of the same join becomes this line
  if (ev.type === 'joined' && prev && prev.afterSeq === afterSeq && prev.user && sameId(prev.user.id, ev.user.id)) {
    if (!prev.text && !prev.mine) prev.text = text
    return
  }
  chat.notices.push({
    key: newId(),
    afterSeq,
    user: ev.type === 'joined' ? ev.user : null,
    text,
    time: new Date().toISOString(),
    mine: false,
  })
}
