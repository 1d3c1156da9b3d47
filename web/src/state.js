// The client's state, which the components render, and the small helpers every part of the
// store shares: the toast, ids and their comparison, text length, people's current names.
import { reactive } from 'vue'
import { setToken } from './api.js'

export const TOKEN_KEY = 'chatroom.token'
export const USER_KEY = 'chatroom.user'
export const PAGE = 50
export const MAX_TEXT = 4000

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
  people: {}, // userId -> {name, avatarImage}: the newest seen (see notePerson)
  members: {}, // roomId -> the room's members panel (see governance.js)
  removals: [], // {key, text}: rooms the user was removed from (or left), until dismissed
  blocks: [], // {id, name, avatarImage}: the people the user blocked (see direct.js)
  blocksLoaded: false,
  toast: null, // {text, kind}
})

setToken(state.token)

let toastTimer = null

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
export const key = (id) => String(id)
export const sameId = (a, b) => a != null && b != null && key(a) === key(b)

export function codePoints(text) {
  return [...text].length
}

/* ---------------------------------------------------------------- people */

// A message shows its author's current name and avatar. The server sends them with every
// delivery, so the newest one seen for a user replaces what older messages in memory carry:
// after a rename, the next message or join of that user renames them everywhere on the page.
export function notePerson(user) {
  if (!user || user.id == null) return
  const k = key(user.id)
  const name = typeof user.name === 'string' ? user.name : ''
  const avatarImage = user.avatarImage || ''
  const known = state.people[k]
  if (!known || known.name !== name || known.avatarImage !== avatarImage) state.people[k] = { name, avatarImage }
}

export function personOf(user) {
  if (!user) return { name: '?', avatarImage: '' }
  return (user.id != null && state.people[key(user.id)]) || { name: user.name, avatarImage: user.avatarImage || '' }
}
