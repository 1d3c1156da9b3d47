// What changes by the second and is never stored in a room's history: each room's read marker
// and unread count (`mark_read`, `read_updated`), who is online (`presence`, `online` in the
// members list) and who is typing (`typing`). None of these carries a `version`, so none of
// them touches the version a reconnect resumes from.
import { api } from './api.js'
import { state, key, sameId, notePerson, personOf } from './state.js'
import { chatOf, roomById, lastSeqOf } from './timeline.js'

let send = async () => ({ ok: false, error: { code: 'offline' } })
let emit = () => {}

// The store's acked request and its fire-and-forget emit, once it has a socket.
export function useSocket(request, plainEmit) {
  send = request
  emit = plainEmit
}

const whole = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null)

/* ---------------------------------------------------------------- read state */

// A room as the server answered it carries the caller's marker and unread count.
export function noteReadState(room) {
  if (!room || room.id == null) return
  const chat = chatOf(room.id)
  // the unread count is as of the room's `last_seq`: a join from there replays what came after
  const last = whole(room.last_seq)
  if (last != null) {
    chat.listedSeq = last
    if (chat.knownSeq == null) chat.knownSeq = last
  }
  const marker = whole(room.last_read_seq)
  if (marker != null && (chat.lastRead == null || marker >= chat.lastRead)) chat.lastRead = marker
  const unread = whole(room.unread)
  if (unread == null) return
  const open = sameId(room.id, state.activeRoomId)
  // reopened after a reload: the divider goes where the server says reading stopped
  if (open && chat.dividerAfter == null && unread > 0 && chat.lastRead != null && !chat.markedHere) {
    chat.dividerAfter = chat.lastRead
  }
  chat.unread = unread
}

// The marker moved (here or in another tab): what is unread is what came after it.
function moveMarker(roomId, lastReadSeq) {
  const seq = whole(lastReadSeq)
  if (seq == null || !roomById(roomId)) return
  const chat = chatOf(roomId)
  if (chat.lastRead != null && seq < chat.lastRead) return
  chat.lastRead = seq
  const m = chat.messages
  const newest = Math.max(lastSeqOf(chat), chat.knownSeq || 0)
  if (seq >= newest) {
    chat.unread = 0
    return
  }
  // the page holds every message after the marker: count them; otherwise the server does
  if (m.length && m[0].seq <= seq + 1 && lastSeqOf(chat) >= newest) {
    chat.unread = m.filter((x) => x.seq > seq && !x.deleted && !(state.user && sameId(x.user.id, state.user.userId))).length
  } else {
    refreshUnread()
  }
}

let unreadTimer = null
function refreshUnread() {
  clearTimeout(unreadTimer)
  unreadTimer = setTimeout(async () => {
    try {
      const data = await api.listRooms()
      for (const r of (data && data.roomList) || []) if (roomById(r.id)) noteReadState(r)
    } catch {
      // the count is corrected by the next room list
    }
  }, 300)
}

// A join's ack: messages that came between the room list and the join are counted by the
// server again (a preview may have shown them without counting them).
export function noteJoined(roomId, lastSeq) {
  const chat = chatOf(roomId)
  const seq = whole(lastSeq)
  if (seq != null && chat.listedSeq != null && seq > chat.listedSeq) {
    chat.listedSeq = seq
    refreshUnread()
  }
}

export function onReadUpdated(ev) {
  if (ev && ev.roomId != null) moveMarker(ev.roomId, ev.lastReadSeq)
}

// At most one `mark_read` a second per room: the newest seq seen when the second is over.
const MARK_EVERY = 1000
const marks = new Map() // roomId -> {at, timer, seq}

// The open room, on a page being looked at: everything it shows is read.
export function markRead(roomId, seq) {
  const chat = state.chats[key(roomId)]
  if (!chat || !Number.isInteger(seq) || seq <= 0) return
  if (chat.lastRead != null && seq <= chat.lastRead) {
    // read here already; what the server counts beyond it arrives live, and is marked then
    chat.unread = 0
    return
  }
  const k = key(roomId)
  const m = marks.get(k) || { at: 0, timer: null, seq: 0 }
  marks.set(k, m)
  m.seq = Math.max(m.seq, seq)
  if (m.timer) return
  const wait = Math.max(0, m.at + MARK_EVERY - Date.now())
  m.timer = setTimeout(() => flushMark(roomId), wait)
}

async function flushMark(roomId) {
  const k = key(roomId)
  const m = marks.get(k)
  if (!m) return
  m.timer = null
  m.at = Date.now()
  const seq = m.seq
  const chat = state.chats[k]
  if (!chat) return
  chat.markedHere = true
  const res = await send('mark_read', { roomId, seq })
  if (res && res.ok) moveMarker(roomId, res.lastReadSeq ?? seq)
  // a refusal (offline, rate limited) is tried again with the next message seen, or the next visit
}

/* ---------------------------------------------------------------- presence */

// A user's first socket came or their last one went: every members list showing them follows.
export function onPresence(ev) {
  if (!ev || ev.userId == null) return
  const online = !!ev.online
  for (const panel of Object.values(state.members)) {
    const m = panel.list.find((x) => sameId(x.id, ev.userId))
    if (m && m.online !== online) m.online = online
  }
}

/* ---------------------------------------------------------------- typing */

const TYPING_LASTS = 5000
const TYPING_EVERY = 2500
const typingTimers = new Map()

export function onTyping(ev) {
  if (!ev || ev.roomId == null || !ev.user || ev.user.id == null || !roomById(ev.roomId)) return
  if (state.user && sameId(ev.user.id, state.user.userId)) return
  notePerson(ev.user)
  const chat = chatOf(ev.roomId)
  const k = key(ev.user.id)
  chat.typing[k] = { user: ev.user, until: Date.now() + TYPING_LASTS }
  const t = `${key(ev.roomId)}|${k}`
  clearTimeout(typingTimers.get(t))
  typingTimers.set(
    t,
    setTimeout(() => {
      typingTimers.delete(t)
      const c = state.chats[key(ev.roomId)]
      if (c && c.typing[k] && c.typing[k].until <= Date.now() + 50) delete c.typing[k]
    }, TYPING_LASTS),
  )
}

// Who is typing in a room, as one line under the composer ('' for nobody).
export function typingText(roomId) {
  const chat = state.chats[key(roomId)]
  const people = chat ? Object.values(chat.typing).map((t) => personOf(t.user).name) : []
  if (!people.length) return ''
  if (people.length === 1) return `${people[0]} is typing…`
  if (people.length === 2) return `${people[0]} and ${people[1]} are typing…`
  return 'Several people are typing…'
}

// The reader is typing: the room hears of it at most once every 2.5 s.
const lastTyped = new Map()
export function noteTyping(roomId) {
  const k = key(roomId)
  const now = Date.now()
  if (now - (lastTyped.get(k) || 0) < TYPING_EVERY) return
  lastTyped.set(k, now)
  emit('typing', { roomId })
}

// Forgets timers and throttles (on logging out).
export function resetLive() {
  for (const m of marks.values()) clearTimeout(m.timer)
  marks.clear()
  for (const t of typingTimers.values()) clearTimeout(t)
  typingTimers.clear()
  lastTyped.clear()
  clearTimeout(unreadTimer)
}
