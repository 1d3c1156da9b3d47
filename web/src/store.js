// The client's session, rooms and connection, kept in step with the server over REST and
// Socket.IO (live messages, resume after a disconnect); the state it keeps is in state.js, each
// room's timeline and history in timeline.js, messages that change in messages.js.
import { reactive, markRaw } from 'vue'
import { io } from 'socket.io-client'
import { api, setToken, setUnauthorizedHandler, ApiError } from './api.js'
import { socketErrorText } from './errors.js'
import { state, TOKEN_KEY, USER_KEY, key, sameId, newId, showToast, notePerson } from './state.js'
import {
  chatOf,
  roomById,
  lastSeqOf,
  sinceFor,
  addMessages,
  reloadHistory,
  resetTimelines,
} from './timeline.js'
import { applyRoomEvent, noteVersion, versionFor, noteVanished, loadMembers } from './governance.js'
import { applyMessageUpdated, useRequester } from './messages.js'
import { noteReadState, noteJoined, onReadUpdated, onPresence, onTyping, useSocket, resetLive } from './live.js'
import { isDirect, loadBlocks } from './direct.js'
import { onJoinNotice } from './notices.js'

export { state, PAGE, MAX_TEXT, showToast, dismissToast, newId, sameId, codePoints, personOf } from './state.js'
export { chatOf, roomById, openRoom, retryHistory, hasOlder, loadOlder } from './timeline.js'
export * from './governance.js'
export * from './messages.js'
export { markRead, noteTyping, typingText } from './live.js'
export * from './direct.js'

const ACK_TIMEOUT = 15000

let socket = null
let roomsPromise = null
let roomsFresh = false // a room list load started that the next connect can reuse

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

// Ends the session on this page; `reason` stays on the login screen until dismissed.
export function clearSession(reason, kind = 'error') {
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
  state.people = {}
  state.members = {}
  state.removals = []
  state.blocks = []
  state.blocksLoaded = false
  state.activeRoomId = null
  state.conn = 'idle'
  state.connError = ''
  roomsPromise = null
  resetTimelines()
  resetLive()
  clearInterval(discoverTimer)
  clearTimeout(inboxTimer)
  inboxTimer = null
  inbox = []
  if (location.hash) history.replaceState(null, '', location.pathname + location.search)
  if (reason) showToast(reason, kind, 0)
  else state.toast = null
}

setUnauthorizedHandler(() => {
  if (state.token) clearSession('Your session has expired. Please log in again.')
})

// The account's profile as the server now has it (after a rename or a new avatar).
export function setUser(user) {
  if (!state.token || !user) return
  saveSession(state.token, user)
  notePerson({ id: user.userId, name: user.name, avatarImage: user.avatar_image || '' })
}

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
    if (data && data.userInfo) setUser(data.userInfo)
  } catch (e) {
    // 401 is handled by the unauthorized handler; otherwise the server is unreachable: keep going
  }
}

function start() {
  loadRooms()
  loadBlocks()
  connect()
  clearInterval(discoverTimer)
  discoverTimer = setInterval(discoverRooms, DISCOVER_EVERY)
}

/* ---------------------------------------------------------------- rooms */

export function loadRooms() {
  roomsFresh = true
  roomsPromise = (async () => {
    const before = state.roomsLoaded ? state.rooms.slice() : []
    try {
      const data = await api.listRooms()
      const list = (data && data.roomList) || []
      // rooms this page still shows (not left here meanwhile) that the server no longer lists
      noteVanished(
        before.filter((r) => roomById(r.id)),
        list,
      )
      state.rooms = list
      state.roomsLoaded = true
      state.roomsError = ''
      for (const r of list) noteReadState(r)
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
  noteReadState(room)
}

// Nothing tells a socket of a room it was added to (someone opening a direct conversation with
// the user): a page being looked at reads its room list now and then to find them.
const DISCOVER_EVERY = 30000
let discoverTimer = null
async function discoverRooms() {
  if (document.visibilityState !== 'visible' || !state.roomsLoaded || !socket) return
  try {
    const data = await api.listRooms()
    for (const r of (data && data.roomList) || []) {
      if (roomById(r.id)) continue
      upsertRoom(r)
      joinOne(r.id)
    }
  } catch {
    // found on the next look or the next reconnect
  }
}

// `POST /api/dm`: the one direct room of the caller and that user, new or found again.
export async function openDirect(username) {
  const data = await api.openDirect(username)
  const room = data.room
  upsertRoom(room)
  joinOne(room.id)
  return room
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
  // a reconnect resumes from the join even when this socket's own join goes unanswered
  noteVersion(room.id, data.version)
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
  socket.on('room_event', onRoomEvent)
  socket.on('message_updated', onMessageUpdated)
  socket.on('chat_error', onChatError)
  socket.on('read_updated', onReadUpdated)
  socket.on('presence', onPresence)
  socket.on('typing', onTyping)
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
  const sinceVersion = {}
  for (const id of ids) {
    const s = sinceFor(id)
    if (s != null) since[key(id)] = s
    const v = versionFor(id)
    if (v != null) sinceVersion[key(id)] = v
  }
  const sent = { ...since, ...sinceVersion }
  const payload = { roomList: ids, since }
  if (Object.keys(sinceVersion).length) payload.sinceVersion = sinceVersion
  let res
  try {
    res = await socket.timeout(ACK_TIMEOUT).emitWithAck('join_all', payload)
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
  const v = versionFor(roomId)
  const payload = { roomId }
  if (s != null) payload.since = s
  if (v != null) payload.sinceVersion = v
  try {
    const res = await socket.timeout(ACK_TIMEOUT).emitWithAck('join_one_chat', payload)
    if (!res || res.ok === false) {
      chatOf(roomId).joinError = socketErrorText(res && res.error)
      return
    }
    const r = (res.rooms && res.rooms[0]) || { roomId, ok: true }
    handleJoinResult({ ...r, roomId }, s ?? v ?? undefined)
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
  if (Number.isFinite(lastSeq)) {
    chat.knownSeq = lastSeq
    noteJoined(r.roomId, lastSeq)
  }
  noteVersion(r.roomId, r.lastVersion)
  if (sentSince != null && r.recovered === false) {
    // too much was missed (or the server knows less than we do): start again from REST
    reloadHistory(r.roomId)
    if (state.members[key(r.roomId)]) loadMembers(r.roomId)
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

// A room_event goes through the same inbox, so it keeps its place among the room's messages.
function onRoomEvent(ev) {
  if (!ev || ev.roomId == null) return
  inbox.push({ roomEvent: ev })
  if (!inboxTimer) inboxTimer = setTimeout(flushInbox, 30)
}

// An edit, deletion or reaction change, in its place among the room's messages too.
function onMessageUpdated(ev) {
  if (!ev) return
  inbox.push({ update: ev })
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
    if (msg.roomEvent) {
      flushRun()
      applyRoomEvent(msg.roomEvent)
      continue
    }
    if (msg.update) {
      flushRun()
      applyMessageUpdated(msg.update)
      continue
    }
    if (roomById(msg.roomId)) noteVersion(msg.roomId, msg.version)
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

// An event answered by an ack: the ack, or a refusal of the same shape when none came.
async function request(event, payload) {
  if (!socket || !socket.connected) return { ok: false, error: { code: 'offline' } }
  try {
    return await socket.timeout(ACK_TIMEOUT).emitWithAck(event, payload)
  } catch {
    return { ok: false, error: { code: 'timeout' } }
  }
}
useRequester(request)
useSocket(request, (event, payload) => socket && socket.connected && socket.emit(event, payload))

// `replyTo`: the seq of the message this one answers, or null.
export function sendMessage(roomId, text, replyTo = null) {
  const chat = chatOf(roomId)
  const p = reactive({ id: newId(), roomId, text, replyTo, status: 'pending', error: '', time: new Date().toISOString(), attempt: 0 })
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
  const payload = { roomId: p.roomId, id: p.id, message: p.text, type: 'input' }
  if (p.replyTo != null) payload.replyTo = p.replyTo
  try {
    res = await socket.timeout(ACK_TIMEOUT).emitWithAck('user_send_message', payload)
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
    const context = isDirect(roomById(p.roomId)) ? 'direct' : p.replyTo != null ? 'reply' : 'send'
    p.error = socketErrorText(res && res.error, context)
    // a mute this page had not heard of: the members list has its end, for the composer
    if (res && res.error && res.error.code === 'muted') loadMembers(p.roomId)
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
      replyTo: p.replyTo,
      version: res.version,
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
