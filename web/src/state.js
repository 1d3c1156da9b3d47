// The client's state, which the components render, and the small helpers every part of the
// store shares: the toast, ids and their comparison, text length.
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
