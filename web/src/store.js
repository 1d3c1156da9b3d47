// The client's state: session, rooms, and one chat timeline per room, kept in step with the
// server over REST (history) and Socket.IO (live messages, resume after a disconnect).
import { reactive, markRaw } from 'vue'
import { io } from 'socket.io-client'
import { api, setToken, setUnauthorizedHandler, ApiError } from './api.js'
import { socketErrorText } from './errors.js'

const TOKEN_KEY = 'chatroom.token'
const USER_KEY = 'chatroom.user'
export const PAGE = 50
export const MAX_TEXT = 4000
const ACK_TIMEOUT = 15000

function readUser() {
  try {
    return JSON.parse(localStorage.getItem(USER_KEY) || 'null')
  } catch {
    return null
  }
}

export const state = reactive({
  token: localStorage.getItem(TOKEN_KEY) || '',
  user: readUser(),
  rooms: [],
  roomsLoaded: false,
  roomsError: '',
  activeRoomId: null,
  conn: 'idle', // idle | connecting | online | offline
  connError: '',
  chats: {}, // roomId -> chat (see newChat)
  toast: null, // {text, kind}
})

setToken(state.token)

let socket = null
let toastTimer = null
let roomsPromise = null
let roomsFresh = false // a room list load started that the next connect can reuse
let gapFilling = new Set()

export function showToast(text, kind = 'error', ms = 6000) {
  state.toast = { text, kind, at: Date.now() }
  clearTimeout(toastTimer)
  if (ms) toastTimer = setTimeout(() => (state.toast = null), ms)
}

export function dismissToast() {
  state.toast = null
}

/* ---------------------------------------------------------------- ids & helpers */

export function newId() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

// Ids are opaque: compare them as strings, never do arithmetic on them.
const key = (id) => String(id)
export const sameId = (a, b) => a != null && b != null && key(a) === key(b)

export function codePoints(text) {
  return [...text].length
}

function newChat() {
  return {
    messages: [], // confirmed messages, sorted by seq, contiguous, unique
    notices: [], // join notices: {key, afterSeq, user, time}
    pending: [], // my own messages not yet confirmed: {id, text, status, error, time}
    historyLoaded: false, // the newest page has been fetched over REST
    loadingHistory: false,
    loadingOlder: false,
    historyError: '',
    knownSeq: null, // the room's lastSeq from the last join ack
    joined: false,
    joinError: '',
    unread: 0,
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

function lastSeqOf(chat) {
  const m = chat.messages
  return m.length ? m[m.length - 1].seq : 0
}

// The `since` to send for a room on (re)join: the last seq this client has seen, if it knows one.
function sinceFor(roomId) {
  const chat = state.chats[key(roomId)]
  if (!chat) return null
  const seen = lastSeqOf(chat)
  if (chat.knownSeq == null && !chat.historyLoaded && !seen) return null
  return Math.max(seen, chat.knownSeq || 0)
}

function normalizeMessage(m) {
  return {
    id: m.id,
    seq: Number(m.seq),
    roomId: m.roomId,
    user: m.user || { id: null, name: '?', avatarImage: '' },
    message: typeof m.message === 'string' ? m.message : String(m.message ?? ''),
    type: m.type || 'input',
    time: m.time,
  }
}

// Merge messages into a room's timeline, never twice (dedupe by seq).
// Returns the messages that were new.
function addMessages(roomId, list, { live = false } = {}) {
  if (!state.token) return [] // a late answer after logging out
  const chat = chatOf(roomId)
  const arr = chat.messages
  const added = []
  const fresh = list.map(normalizeMessage).filter((m) => Number.isFinite(m.seq))
  if (!fresh.length) return added
  fresh.sort((a, b) => a.seq - b.seq)
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
      if (have.has(m.seq)) continue
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
  if (live && !sameId(roomId, state.activeRoomId)) {
    chat.unread += added.filter((m) => !(state.user && sameId(m.user.id, state.user.userId))).length
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

/* ---------------------------------------------------------------- session */

function saveSession(token, user) {
  state.token = token
  state.user = user
  setToken(token)
  if (token) {
    localStorage.setItem(TOKEN_KEY, token)
    localStorage.setItem(USER_KEY, JSON.stringify(user))
  } else {
    localStorage.removeItem(TOKEN_KEY)
    localStorage.removeItem(USER_KEY)
  }
}

function clearSession(reason) {
  if (socket) {
    socket.removeAllListeners()
    socket.disconnect()
    socket = null
  }
  saveSession('', null)
  state.rooms = []
  state.roomsLoaded = false
  state.roomsError = ''
  state.chats = {}
  state.activeRoomId = null
  state.conn = 'idle'
  state.connError = ''
  roomsPromise = null
  gapFilling = new Set()
  for (const t of gapTimers.values()) clearTimeout(t)
  gapTimers.clear()
  clearTimeout(inboxTimer)
  inboxTimer = null
  inbox = []
  if (location.hash) history.replaceState(null, '', location.pathname + location.search)
  if (reason) showToast(reason, 'error', 0)
  else state.toast = null
}

setUnauthorizedHandler(() => {
  if (state.token) clearSession('Your session has expired. Please log in again.')
})

export async function register(username, password) {
  const data = await api.register(username, password)
  startSession(data)
}

export async function login(username, password) {
  const data = await api.login(username, password)
  startSession(data)
}

function startSession(data) {
  saveSession(data.token, data.userInfo)
  state.toast = null
  start()
}

export async function logout() {
  try {
    await api.logout()
  } catch {
    // logging out locally is what matters
  }
  clearSession()
}

// Called once at page load: resume a stored session.
export async function boot() {
  window.addEventListener('storage', (e) => {
    if (e.key === TOKEN_KEY && !e.newValue && state.token) clearSession()
  })
  window.addEventListener('offline', () => {
    // don't wait for a heartbeat timeout: drop the transport, Socket.IO reconnects by itself
    if (socket && socket.connected) socket.io.engine && socket.io.engine.close()
    state.conn = state.token ? 'offline' : state.conn
  })
  window.addEventListener('online', () => {
    if (socket && !socket.connected) {
      socket.disconnect()
      socket.connect()
    }
  })
  if (!state.token) return
  start()
  try {
    const data = await api.userInfo()
    if (data && data.userInfo) saveSession(state.token, data.userInfo)
  } catch (e) {
    // 401 is handled by the unauthorized handler; otherwise the server is unreachable: keep going
  }
}

function start() {
  loadRooms()
  connect()
}

/* ---------------------------------------------------------------- rooms */

export function loadRooms() {
  roomsFresh = true
  roomsPromise = (async () => {
    try {
      const data = await api.listRooms()
      const list = (data && data.roomList) || []
      state.rooms = list
      state.roomsLoaded = true
      state.roomsError = ''
      for (const r of list) chatOf(r.id)
      fetchPreviews(list)
      return true
    } catch (e) {
      state.roomsError = e.message
      return false
    }
  })()
  return roomsPromise
}

// The newest message of each room, for the room list (preview and last activity).
async function fetchPreviews(list) {
  for (const r of list.slice(0, 100)) {
    const chat = chatOf(r.id)
    if (chat.messages.length || chat.historyLoaded) continue
    try {
      const data = await api.messages(r.id, { limit: 1 })
      addMessages(r.id, (data && data.messages) || [])
    } catch {
      // a preview is optional
    }
  }
}

function upsertRoom(room) {
  const i = state.rooms.findIndex((r) => sameId(r.id, room.id))
  if (i >= 0) state.rooms[i] = { ...state.rooms[i], ...room }
  else state.rooms.unshift(room)
  chatOf(room.id)
}

export async function createRoom(name, description, avatarImage) {
  const data = await api.createRoom(name, description, avatarImage)
  const room = data.room
  upsertRoom(room)
  const chat = chatOf(room.id)
  chat.historyLoaded = true // a new room has no history
  chat.knownSeq = 0
  joinOne(room.id)
  return room
}

export async function joinByCode(code) {
  const data = await api.joinRoom(code)
  const room = data.room
  const known = roomById(room.id)
  upsertRoom(room)
  if (!known) chatOf(room.id).showOwnJoin = true
  joinOne(room.id)
  return room
}

// The retry button of a room list that failed to load.
export async function refreshRooms() {
  const ok = await loadRooms()
  roomsFresh = false
  if (ok && socket && socket.connected) await joinAll()
}

export function lastActivity(room) {
  const chat = state.chats[key(room.id)]
  let t = Date.parse(room.update_time || room.create_time || '') || 0
  if (chat && chat.messages.length) {
    const mt = Date.parse(chat.messages[chat.messages.length - 1].time) || 0
    if (mt > t) t = mt
  }
  return t
}

/* ---------------------------------------------------------------- history */

export async function openRoom(roomId) {
  state.activeRoomId = roomId
  if (roomId == null) return
  const chat = chatOf(roomId)
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
async function reloadHistory(roomId) {
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

/* ---------------------------------------------------------------- socket */

function connect() {
  if (socket) return
  state.conn = 'connecting'
  socket = markRaw(
    io('/chatroom', {
      path: '/socket.io',
      auth: (cb) => cb({ token: state.token }),
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      timeout: 10000,
    }),
  )
  socket.on('connect', onConnect)
  socket.on('disconnect', onDisconnect)
  socket.on('connect_error', onConnectError)
  socket.on('received', onReceived)
  socket.on('chat_error', onChatError)
}

async function onConnect() {
  state.conn = 'online'
  state.connError = ''
  for (const chat of Object.values(state.chats)) chat.joined = false
  // a reconnect reloads the room list: rooms may have been joined elsewhere meanwhile
  const fresh = roomsFresh && roomsPromise
  roomsFresh = false
  await (fresh ? roomsPromise : loadRooms())
  roomsFresh = false
  if (!socket || !socket.connected) return
  await joinAll()
  flushOutbox()
}

async function joinAll() {
  const ids = state.rooms.map((r) => r.id)
  if (!ids.length) return
  const since = {}
  for (const id of ids) {
    const s = sinceFor(id)
    if (s != null) since[key(id)] = s
  }
  const sent = { ...since }
  let res
  try {
    res = await socket.timeout(ACK_TIMEOUT).emitWithAck('join_all', { roomList: ids, since })
  } catch {
    if (socket && socket.connected) {
      state.connError = 'The server did not answer; retrying…'
      setTimeout(() => socket && socket.connected && joinAll(), 3000)
    }
    return
  }
  if (!res || res.ok === false) {
    state.connError = socketErrorText(res && res.error)
    return
  }
  for (const r of res.rooms || []) handleJoinResult(r, sent[key(r.roomId)])
}

async function joinOne(roomId) {
  if (!socket || !socket.connected) return // joined with everything else on connect
  const s = sinceFor(roomId)
  const payload = { roomId }
  if (s != null) payload.since = s
  try {
    const res = await socket.timeout(ACK_TIMEOUT).emitWithAck('join_one_chat', payload)
    if (!res || res.ok === false) {
      chatOf(roomId).joinError = socketErrorText(res && res.error)
      return
    }
    const r = (res.rooms && res.rooms[0]) || { roomId, ok: true }
    handleJoinResult({ ...r, roomId }, s == null ? undefined : s)
  } catch {
    // reconnect joins again
  }
}

function handleJoinResult(r, sentSince) {
  const chat = chatOf(r.roomId)
  if (r.ok === false) {
    chat.joined = false
    chat.joinError = socketErrorText(r.error)
    return
  }
  chat.joined = true
  chat.joinError = ''
  const lastSeq = Number(r.lastSeq)
  if (Number.isFinite(lastSeq)) chat.knownSeq = lastSeq
  if (sentSince != null && r.recovered === false) {
    // too much was missed (or the server knows less than we do): start again from REST
    reloadHistory(r.roomId)
  } else if (Number.isFinite(lastSeq) && lastSeqOf(chat) > lastSeq) {
    reloadHistory(r.roomId)
  }
}

function onDisconnect(reason) {
  if (!state.token) return
  state.conn = navigator.onLine === false ? 'offline' : 'connecting'
  for (const chat of Object.values(state.chats)) chat.joined = false
  if (reason === 'io server disconnect') {
    // the server closed us: maybe our token was revoked. Check, then come back.
    api
      .userInfo()
      .then(() => socket && socket.connect())
      .catch((e) => {
        if (!(e instanceof ApiError) || e.status !== 401) setTimeout(() => socket && socket.connect(), 2000)
      })
  }
}

function onConnectError(err) {
  if (err && err.message === 'unauthorized') {
    // socket.io does not retry a refused handshake: confirm with REST before logging out
    api
      .userInfo()
      .then(() => setTimeout(() => socket && socket.connect(), 2000))
      .catch((e) => {
        if (!(e instanceof ApiError) || e.status !== 401) setTimeout(() => socket && socket.connect(), 3000)
      })
    return
  }
  state.conn = navigator.onLine === false ? 'offline' : 'connecting'
  state.connError = 'Cannot reach the server; retrying…'
}

// Incoming events are taken in small batches, so a burst (a replay after a reconnect, a busy
// room) costs one render per batch rather than one per message. Order is kept.
let inbox = []
let inboxTimer = null

function onReceived(msg) {
  if (!msg || msg.roomId == null) return
  inbox.push(msg)
  if (!inboxTimer) inboxTimer = setTimeout(flushInbox, 30)
}

function flushInbox() {
  inboxTimer = null
  const batch = inbox
  inbox = []
  let run = []
  let runRoom = null
  const flushRun = () => {
    if (run.length) addMessages(runRoom, run, { live: true })
    run = []
  }
  for (const msg of batch) {
    if (msg.type === 'join') {
      flushRun()
      onJoinNotice(msg)
      continue
    }
    if (!roomById(msg.roomId)) continue
    if (runRoom == null || !sameId(runRoom, msg.roomId)) {
      flushRun()
      runRoom = msg.roomId
    }
    run.push(msg)
  }
  flushRun()
}

function onJoinNotice(n) {
  const room = roomById(n.roomId)
  if (!room) return
  const chat = chatOf(n.roomId)
  const mine = state.user && n.user && sameId(n.user.id, state.user.userId)
  if (mine) {
    if (!chat.showOwnJoin) return
    chat.showOwnJoin = false
  }
  const afterSeq = lastSeqOf(chat)
  const prev = chat.notices[chat.notices.length - 1]
  // someone reconnecting announces themselves again: show one line, not a stack of them
  if (prev && prev.afterSeq === afterSeq && n.user && prev.user && sameId(prev.user.id, n.user.id)) return
  chat.notices.push({ key: newId(), afterSeq, user: n.user || { name: '?' }, time: new Date().toISOString(), mine })
  if (!mine && n.user && !seenMembers.has(`${key(n.roomId)}|${key(n.user.id)}`)) scheduleRoomRefresh()
  if (n.user) seenMembers.add(`${key(n.roomId)}|${key(n.user.id)}`)
}

const seenMembers = new Set()
let refreshTimer = null
function scheduleRoomRefresh() {
  clearTimeout(refreshTimer)
  refreshTimer = setTimeout(async () => {
    try {
      const data = await api.listRooms()
      for (const r of (data && data.roomList) || []) {
        const i = state.rooms.findIndex((x) => sameId(x.id, r.id))
        if (i >= 0) state.rooms[i] = { ...state.rooms[i], ...r }
      }
    } catch {
      // only the member count is stale
    }
  }, 1500)
}

function onChatError(e) {
  if (!e) return
  if (e.id != null) {
    for (const chat of Object.values(state.chats)) {
      const p = chat.pending.find((x) => sameId(x.id, e.id))
      if (p) {
        p.status = 'failed'
        p.error = socketErrorText(e, 'send')
        p.attempt++
        return
      }
    }
  }
  showToast(socketErrorText(e))
}

/* ---------------------------------------------------------------- sending */

export function sendMessage(roomId, text) {
  const chat = chatOf(roomId)
  const p = reactive({ id: newId(), roomId, text, status: 'pending', error: '', time: new Date().toISOString(), attempt: 0 })
  chat.pending.push(p)
  transmit(p)
  return p
}

export function retryMessage(p) {
  p.status = 'pending'
  p.error = ''
  transmit(p)
}

export function discardMessage(p) {
  const chat = chatOf(p.roomId)
  chat.pending = chat.pending.filter((x) => x !== p)
}

async function transmit(p) {
  const attempt = ++p.attempt
  if (!socket || !socket.connected) {
    p.inflight = false // sent when the connection is back
    return
  }
  p.inflight = true
  let res
  try {
    res = await socket
      .timeout(ACK_TIMEOUT)
      .emitWithAck('user_send_message', { roomId: p.roomId, id: p.id, message: p.text, type: 'input' })
  } catch {
    if (attempt !== p.attempt) return
    p.inflight = false
    if (socket && socket.connected) {
      p.status = 'failed'
      p.error = socketErrorText({ code: 'timeout' })
    } // else: resent with the same id once reconnected
    return
  }
  if (attempt !== p.attempt) return
  p.inflight = false
  if (res && res.ok) {
    confirmMessage(p, res)
  } else {
    p.status = 'failed'
    p.error = socketErrorText(res && res.error, 'send')
  }
}

function confirmMessage(p, res) {
  const chat = chatOf(p.roomId)
  chat.pending = chat.pending.filter((x) => x !== p)
  if (res.seq == null) return
  addMessages(p.roomId, [
    {
      id: p.id,
      seq: res.seq,
      roomId: p.roomId,
      user: { id: state.user.userId, name: state.user.name, avatarImage: state.user.avatar_image || '' },
      message: p.text,
      type: 'input',
      time: res.time || p.time,
    },
  ])
}

// After a reconnect: send again (same ids, so never twice) what was waiting for an answer.
function flushOutbox() {
  for (const chat of Object.values(state.chats)) {
    for (const p of chat.pending) {
      if (p.status === 'pending' && !p.inflight) transmit(p)
    }
  }
}
