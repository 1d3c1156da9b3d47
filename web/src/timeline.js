// One timeline per room: the confirmed messages in seq order, never twice and without holes
// (a hole is fetched over REST), and the history pages read over REST.
import { api } from './api.js'
import { state, PAGE, key, sameId, showToast, notePerson } from './state.js'

let gapFilling = new Set()

function newChat() {
  return {
    messages: [], // confirmed messages, sorted by seq, contiguous, unique
    notices: [], // join notices: {key, afterSeq, user, time}
    quotes: {}, // seq -> a message outside `messages` that a reply quotes (see messages.js)
    pending: [], // my own messages not yet confirmed: {id, text, status, error, time}
    historyLoaded: false, // the newest page has been fetched over REST
    loadingHistory: false,
    loadingOlder: false,
    historyError: '',
    knownSeq: null, // the room's lastSeq from the last join ack (or the room list)
    listedSeq: null, // the `last_seq` the room list counted `unread` up to
    joined: false,
    joinError: '',
    unread: 0, // messages of others after the read marker (see live.js)
    lastRead: null, // the read marker: the seq read up to, once the server has said it
    dividerAfter: null, // "New messages" goes above the first message of others after this seq
    typing: {}, // userId -> {user, until}: who is typing here (see live.js)
    markedHere: false, // this page has marked the room read since it was loaded
    showOwnJoin: false,
  }
}

export function chatOf(roomId) {
  const k = key(roomId)
  if (!state.chats[k]) state.chats[k] = newChat()
  return state.chats[k]
}

export function roomById(roomId) {
  return state.rooms.find((r) => sameId(r.id, roomId)) || null
}

export function lastSeqOf(chat) {
  const m = chat.messages
  return m.length ? m[m.length - 1].seq : 0
}

// The `since` to send for a room on (re)join: the last seq this client has seen, if it knows one.
export function sinceFor(roomId) {
  const chat = state.chats[key(roomId)]
  if (!chat) return null
  const seen = lastSeqOf(chat)
  if (chat.knownSeq == null && !chat.historyLoaded && !seen) return null
  return Math.max(seen, chat.knownSeq || 0)
}

const whole = (v) => (v != null && v !== '' && Number.isInteger(Number(v)) ? Number(v) : null)

// `{"<emoji>": [userId, ...]}`, the users in the order they reacted; an emoji with nobody is gone.
function normalizeReactions(r) {
  const out = {}
  if (!r || typeof r !== 'object') return out
  for (const [emoji, users] of Object.entries(r)) {
    if (Array.isArray(users) && users.length) out[emoji] = users.slice()
  }
  return out
}

export function normalizeMessage(m) {
  const deleted = !!m.deleted
  return {
    id: m.id,
    seq: Number(m.seq),
    roomId: m.roomId,
    user: m.user || { id: null, name: '?', avatarImage: '' },
    message: deleted ? '' : typeof m.message === 'string' ? m.message : String(m.message ?? ''),
    type: m.type || 'input',
    time: m.time,
    version: whole(m.version),
    replyTo: deleted ? null : whole(m.replyTo),
    editedAt: typeof m.editedAt === 'string' && m.editedAt ? m.editedAt : null,
    deleted,
    reactions: deleted ? {} : normalizeReactions(m.reactions),
  }
}

// Where `seq` is in a room's confirmed messages (contiguous, so usually one look), or -1.
export function indexOfSeq(arr, seq) {
  if (!arr.length) return -1
  const i = seq - arr[0].seq
  if (i >= 0 && i < arr.length && arr[i].seq === seq) return i
  let lo = 0
  let hi = arr.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (arr[mid].seq === seq) return mid
    if (arr[mid].seq < seq) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}

// A message as it is now replaces the one shown, unless the one shown is already newer.
// `strict`: only a copy that carries a version replaces one (history pages may carry none).
export function mergeMessage(shown, m, { strict = false } = {}) {
  if (m.version == null ? strict : shown.version != null && m.version < shown.version) return false
  Object.assign(shown, m)
  return true
}

// Merge messages into a room's timeline, never twice (dedupe by seq).
// Returns the messages that were new.
export function addMessages(roomId, list, { live = false } = {}) {
  if (!state.token) return [] // a late answer after logging out
  const chat = chatOf(roomId)
  const arr = chat.messages
  const added = []
  const fresh = list.map(normalizeMessage).filter((m) => Number.isFinite(m.seq))
  if (!fresh.length) return added
  fresh.sort((a, b) => a.seq - b.seq)
  for (const m of fresh) notePerson(m.user)
  const last = arr.length ? arr[arr.length - 1].seq : -Infinity
  if (fresh[0].seq > last) {
    // the common case: newer than everything we have
    let prev = last
    for (const m of fresh) {
      if (m.seq === prev) continue
      arr.push(m)
      added.push(m)
      prev = m.seq
    }
  } else {
    const have = new Set(arr.map((m) => m.seq))
    for (const m of fresh) {
      if (have.has(m.seq)) {
        // known already: a copy with a newer version (a live delivery after the ack) wins
        const i = indexOfSeq(arr, m.seq)
        if (i >= 0) mergeMessage(arr[i], m, { strict: true })
        continue
      }
      have.add(m.seq)
      added.push(m)
    }
    if (added.length) {
      const merged = arr.concat(added).sort((a, b) => a.seq - b.seq)
      arr.splice(0, arr.length, ...merged)
    }
  }
  if (!added.length) return added
  // my own messages that are now confirmed leave the pending list
  if (chat.pending.length) {
    const ids = new Set(added.filter((m) => state.user && sameId(m.user.id, state.user.userId)).map((m) => key(m.id)))
    if (ids.size) chat.pending = chat.pending.filter((p) => !ids.has(key(p.id)))
  }
  if (live) {
    const others = added.filter((m) => !(state.user && sameId(m.user.id, state.user.userId)) && !m.deleted)
    for (const m of others) delete chat.typing[key(m.user.id)] // their message ends their typing
    // the open room, on a page being looked at, is marked read instead (see live.js)
    const reading = sameId(roomId, state.activeRoomId) && document.visibilityState === 'visible'
    if (!reading) chat.unread += others.filter((m) => chat.lastRead == null || m.seq > chat.lastRead).length
  }
  if (hasGap(chat.messages)) scheduleGapCheck(roomId)
  return added
}

function hasGap(arr) {
  return arr.length > 1 && arr[arr.length - 1].seq - arr[0].seq + 1 !== arr.length
}

// An ack can overtake the broadcast of an earlier message: give a hole a moment to close by
// itself before fetching it.
const gapTimers = new Map()
function scheduleGapCheck(roomId) {
  const k = key(roomId)
  if (gapTimers.has(k)) return
  gapTimers.set(
    k,
    setTimeout(() => {
      gapTimers.delete(k)
      if (state.chats[k] && hasGap(state.chats[k].messages)) checkGaps(roomId)
    }, 1200),
  )
}

// Seqs have no gaps; a hole in our list means we missed something: fetch it over REST.
async function checkGaps(roomId) {
  const k = key(roomId)
  if (gapFilling.has(k)) return
  gapFilling.add(k)
  try {
    for (let round = 0; round < 20; round++) {
      if (!state.chats[k]) return // logged out meanwhile
      const arr = state.chats[k].messages
      let hole = -1
      for (let i = 1; i < arr.length; i++) {
        if (arr[i].seq !== arr[i - 1].seq + 1) {
          hole = i
          break
        }
      }
      if (hole < 0) return
      const missing = arr[hole].seq - arr[hole - 1].seq - 1
      if (missing > 1000) {
        await reloadHistory(roomId)
        return
      }
      const got = await api.messages(roomId, { before: arr[hole].seq, limit: Math.min(200, missing) })
      const before = arr.length
      addMessages(roomId, (got && got.messages) || []) // its own gap check returns at once: we hold the lock
      if (!state.chats[k] || state.chats[k].messages.length === before) return // nothing came: give up
    }
  } catch {
    // a later reconnect or reload tries again
  } finally {
    gapFilling.delete(k)
  }
}

/* ---------------------------------------------------------------- history */

export async function openRoom(roomId) {
  state.activeRoomId = roomId
  if (roomId == null) return
  const chat = chatOf(roomId)
  // the divider stays where the unread messages began for as long as the room is open
  chat.dividerAfter = chat.unread > 0 && chat.lastRead != null ? chat.lastRead : null
  chat.unread = 0
  if (!chat.historyLoaded && !chat.loadingHistory) await loadLatest(roomId)
}

async function loadLatest(roomId) {
  const chat = chatOf(roomId)
  chat.loadingHistory = true
  chat.historyError = ''
  try {
    const data = await api.messages(roomId, { limit: PAGE })
    addMessages(roomId, (data && data.messages) || [])
    chat.historyLoaded = true
  } catch (e) {
    chat.historyError = e.message
  } finally {
    chat.loadingHistory = false
  }
}

// Forget what we have and fetch the newest page again (after missing too much to replay).
export async function reloadHistory(roomId) {
  const chat = chatOf(roomId)
  chat.messages.splice(0)
  chat.notices.splice(0)
  chat.historyLoaded = false
  if (sameId(roomId, state.activeRoomId)) await loadLatest(roomId)
  else {
    try {
      const data = await api.messages(roomId, { limit: 1 })
      addMessages(roomId, (data && data.messages) || [])
    } catch {
      // loaded when opened
    }
  }
}

export function retryHistory(roomId) {
  return loadLatest(roomId)
}

export function hasOlder(roomId) {
  const chat = chatOf(roomId)
  return chat.historyLoaded && chat.messages.length > 0 && chat.messages[0].seq > 1
}

export async function loadOlder(roomId) {
  const chat = chatOf(roomId)
  if (chat.loadingOlder || !hasOlder(roomId)) return 0
  chat.loadingOlder = true
  try {
    const data = await api.messages(roomId, { before: chat.messages[0].seq, limit: PAGE })
    return addMessages(roomId, (data && data.messages) || []).length
  } catch (e) {
    showToast(e.message)
    return 0
  } finally {
    chat.loadingOlder = false
  }
}

// Forgets the gap checks under way or waiting (on logging out).
export function resetTimelines() {
  gapFilling = new Set()
  for (const t of gapTimers.values()) clearTimeout(t)
  gapTimers.clear()
}
