// REST client for /api. Every response is {status, message, data}.
import { httpErrorText } from './errors.js'

export class ApiError extends Error {
  constructor(status, serverMessage, context, code = '') {
    super(httpErrorText(status, serverMessage, context, code))
    this.status = status
    this.serverMessage = serverMessage || ''
    this.context = context
    this.code = code // part 2 errors name their kind too ("conflict", "forbidden", ...)
  }
}

let token = ''
let onUnauthorized = () => {}

export function setToken(t) {
  token = t || ''
}
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn
}

async function request(method, path, body, context, { auth = true, timeoutMs = 20000 } = {}) {
  const headers = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (auth && token) headers.Authorization = `Bearer ${token}`
  const ctrl = new AbortController()
  const timer = setTimeout(() => ctrl.abort(), timeoutMs)
  let res
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctrl.signal,
    })
  } catch {
    throw new ApiError(0, '', context)
  } finally {
    clearTimeout(timer)
  }
  let json = null
  try {
    json = await res.json()
  } catch {
    json = null
  }
  if (!res.ok) {
    const message = json && typeof json.message === 'string' ? json.message : ''
    const err = new ApiError(res.status, message, context, json && typeof json.code === 'string' ? json.code : '')
    if (res.status === 401 && auth) onUnauthorized(err)
    throw err
  }
  return json ? json.data : null
}

export const api = {
  register: (username, password) =>
    request('POST', '/api/register', { username, password }, 'register', { auth: false }),
  login: (username, password) =>
    request('POST', '/api/login', { username, password }, 'login', { auth: false }),
  userInfo: () => request('GET', '/api/user/info', undefined, 'session'),
  // any of {name, avatarImage}
  updateUserInfo: (changes) => request('PATCH', '/api/user/info', changes, 'profile', { timeoutMs: 60000 }),
  changePassword: (oldPassword, newPassword) =>
    request('POST', '/api/user/password', { oldPassword, newPassword }, 'password'),
  exportData: () => request('GET', '/api/user/export', undefined, 'export', { timeoutMs: 60000 }),
  deleteAccount: (password) => request('DELETE', '/api/user', { password }, 'delete-account'),
  logout: () => request('POST', '/api/logout', undefined, 'logout'),
  createRoom: (name, description, avatarImage) =>
    request('POST', '/api/room/create', { name, description, avatarImage }, 'create', { timeoutMs: 60000 }),
  listRooms: () => request('GET', '/api/room/list', undefined, 'rooms'),
  joinRoom: (roomIdHash) => request('POST', '/api/room/join', { roomIdHash }, 'join'),
  messages: (roomId, { before, limit } = {}) => {
    const q = new URLSearchParams()
    if (before != null) q.set('before', String(before))
    if (limit != null) q.set('limit', String(limit))
    const qs = q.toString()
    return request('GET', `/api/room/${encodeURIComponent(roomId)}/messages${qs ? `?${qs}` : ''}`, undefined, 'history')
  },
  // any of {name, description, avatarImage, archived, retentionDays}
  updateRoom: (roomId, changes) => request('PATCH', room(roomId), changes, 'settings', { timeoutMs: 60000 }),
  leaveRoom: (roomId) => request('POST', `${room(roomId)}/leave`, undefined, 'leave'),
  members: (roomId) => request('GET', `${room(roomId)}/members`, undefined, 'members'),
  setRole: (roomId, userId, role) => request('POST', `${member(roomId, userId)}/role`, { role }, 'moderate'),
  kick: (roomId, userId, body) => request('POST', `${member(roomId, userId)}/kick`, body, 'moderate'),
  ban: (roomId, userId, body) => request('POST', `${member(roomId, userId)}/ban`, body, 'moderate'),
  unban: (roomId, userId) => request('DELETE', `${member(roomId, userId)}/ban`, undefined, 'moderate'),
  mute: (roomId, userId, durationSecs) => request('POST', `${member(roomId, userId)}/mute`, { durationSecs }, 'moderate'),
  unmute: (roomId, userId) => request('DELETE', `${member(roomId, userId)}/mute`, undefined, 'moderate'),
  rotateCode: (roomId) => request('POST', `${room(roomId)}/invite/rotate`, undefined, 'invites'),
  // any of {maxUses, expiresInSecs}
  createInvite: (roomId, limits) => request('POST', `${room(roomId)}/invites`, limits, 'invites'),
  invites: (roomId) => request('GET', `${room(roomId)}/invites`, undefined, 'invites'),
  // the one direct room of the caller and that user: created (201) or found (200)
  openDirect: (username) => request('POST', '/api/dm', { username }, 'dm'),
  blocks: () => request('GET', '/api/user/blocks', undefined, 'blocks'),
  block: (userId) => request('POST', `/api/user/blocks/${encodeURIComponent(userId)}`, undefined, 'block'),
  unblock: (userId) => request('DELETE', `/api/user/blocks/${encodeURIComponent(userId)}`, undefined, 'block'),
  revokeInvite: (roomId, inviteId) =>
    request('DELETE', `${room(roomId)}/invites/${encodeURIComponent(inviteId)}`, undefined, 'invites'),
}

function room(roomId) {
  return `/api/room/${encodeURIComponent(roomId)}`
}
function member(roomId, userId) {
  return `${room(roomId)}/members/${encodeURIComponent(userId)}`
}
