// REST client for /api. Every response is {status, message, data}.
import { httpErrorText } from './errors.js'

export class ApiError extends Error {
  constructor(status, serverMessage, context) {
    super(httpErrorText(status, serverMessage, context))
    this.status = status
    this.serverMessage = serverMessage || ''
    this.context = context
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
    const err = new ApiError(res.status, json && typeof json.message === 'string' ? json.message : '', context)
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
}
