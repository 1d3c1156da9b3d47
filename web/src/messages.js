// Messages that change after they are posted: replies and the messages they quote, edits,
// deletions and reactions; who may do which; and `message_updated`, which brings each change
// (the whole message as it is now) to every page of the room, live or replayed on resume.
import { api } from './api.js'
import { state, key, sameId, notePerson, personOf, codePoints, MAX_TEXT } from './state.js'
import { chatOf, roomById, normalizeMessage, indexOfSeq, mergeMessage } from './timeline.js'
import { noteVersion, myRole, membersOf } from './governance.js'
import { socketErrorText } from './errors.js'

export const COMMON_EMOJI = ['👍', '❤️', '😂', '🎉', '😮', '😢', '🙏', '👀']
export const MAX_EMOJI = 32

const isMe = (userId) => !!state.user && sameId(userId, state.user.userId)

// store.js owns the socket; it hands over how to send an event and wait for its ack.
let send = async () => ({ ok: false, error: { code: 'offline' } })
export function useRequester(fn) {
  send = fn
}

/* ---------------------------------------------------------------- finding messages */

// The message of `seq` this page holds: in the timeline, or fetched for a quote.
export function messageOf(roomId, seq) {
  const chat = state.chats[key(roomId)]
  if (!chat || seq == null) return null
  const i = indexOfSeq(chat.messages, seq)
  return i >= 0 ? chat.messages[i] : chat.quotes[seq] || null
}

const fetching = new Set()

// The message a reply quotes; one outside the loaded history is fetched once, on first sight.
export function quoteOf(roomId, seq) {
  const found = messageOf(roomId, seq)
  if (found || seq == null) return found
  const k = `${key(roomId)}|${seq}`
  if (!fetching.has(k)) {
    fetching.add(k)
    api
      .messages(roomId, { before: seq + 1, limit: 1 })
      .then((data) => {
        const m = ((data && data.messages) || []).find((x) => Number(x.seq) === seq)
        const chat = state.chats[key(roomId)]
        if (m && chat && indexOfSeq(chat.messages, seq) < 0) {
          notePerson(m.user)
          chat.quotes[seq] = normalizeMessage(m)
        }
        if (m) fetching.delete(k) // held now; a page logged in again may ask afresh
      })
      .catch(() => fetching.delete(k)) // asked again when shown again
  }
  return null
}

// A quote's short text: the first line, cut to fit.
export function snippet(m, max = 90) {
  if (!m) return ''
  if (m.deleted) return 'Message deleted'
  const first = m.message.split('\n')[0]
  const chars = [...first]
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : first + (m.message.includes('\n') ? ' …' : '')
}

/* ---------------------------------------------------------------- live changes */

// `message_updated`: the whole message after a change, applied by `seq`; one older than what
// the page shows (a replay of a change already seen) changes nothing.
export function applyMessageUpdated(ev) {
  const raw = ev && ev.message && typeof ev.message === 'object' ? { roomId: ev.roomId, ...ev.message } : ev
  if (!raw || raw.roomId == null || !roomById(raw.roomId)) return
  noteVersion(raw.roomId, ev.version ?? raw.version)
  const m = normalizeMessage(raw)
  if (!Number.isFinite(m.seq)) return
  notePerson(m.user)
  const shown = messageOf(raw.roomId, m.seq)
  // a message not in memory is loaded with history, as it is then
  if (shown) mergeMessage(shown, m)
}

// An ack's version and what it changed, applied at once (the `message_updated` of the same
// change, or a later one, says the same or more).
function applyOwn(roomId, seq, version, fields) {
  const shown = messageOf(roomId, seq)
  if (!shown || version == null) return
  if (shown.version != null && version <= shown.version) return
  Object.assign(shown, typeof fields === 'function' ? fields(shown) : fields, { version })
  noteVersion(roomId, version)
}

/* ---------------------------------------------------------------- rights */

function authorRole(roomId, userId) {
  const list = membersOf(roomId).list
  const m = list.find((x) => sameId(x.id, userId))
  return m ? m.role : 'member'
}

export function canEdit(m) {
  return !!m && !m.deleted && isMe(m.user.id)
}

// An author deletes their own; an admin members' messages; the owner anyone's.
export function canDelete(room, m) {
  if (!m || m.deleted) return false
  if (isMe(m.user.id)) return true
  const mine = myRole(room)
  if (mine === 'owner') return true
  return mine === 'admin' && authorRole(room.id, m.user.id) === 'member'
}

/* ---------------------------------------------------------------- reactions */

// The reactions of a message as the page shows them: emoji, count, names, whether mine.
export function reactionsOf(m) {
  return Object.entries((m && m.reactions) || {}).map(([emoji, users]) => {
    const names = users.map((id) => (isMe(id) ? 'You' : personOf({ id, name: 'Someone' }).name))
    return { emoji, count: users.length, names, mine: users.some(isMe) }
  })
}

// What is wrong with a reaction typed by hand, or '' (the server checks the same).
export function emojiProblem(text) {
  if (!text) return 'Type an emoji or a short word to react with.'
  if (/\s/u.test(text)) return 'A reaction has no spaces: one emoji or one word.'
  if (codePoints(text) > MAX_EMOJI) return `A reaction is at most ${MAX_EMOJI} characters.`
  return ''
}

/* ---------------------------------------------------------------- changes */

// Each answers '' once the server accepted the change, else the sentence to show.
function refusal(res, context) {
  return socketErrorText(res && res.error, context)
}

export async function editMessage(roomId, seq, text) {
  const t = text.trim()
  if (!t) return 'A message cannot be empty: delete it instead.'
  if (codePoints(t) > MAX_TEXT) return `This text is ${codePoints(t).toLocaleString()} characters long: the limit is ${MAX_TEXT.toLocaleString()}.`
  const res = await send('edit_message', { roomId, seq, message: t })
  if (!res || !res.ok) return refusal(res, 'edit')
  applyOwn(roomId, seq, res.version, { message: t, editedAt: res.editedAt || new Date().toISOString() })
  return ''
}

export async function deleteMessage(roomId, seq) {
  const res = await send('delete_message', { roomId, seq })
  if (!res || !res.ok) return refusal(res, 'delete')
  applyOwn(roomId, seq, res.version, { deleted: true, message: '', replyTo: null, reactions: {} })
  return ''
}

export async function react(roomId, seq, emoji, on) {
  const problem = emojiProblem(emoji)
  if (problem) return problem
  const res = await send('react', { roomId, seq, emoji, on })
  if (!res || !res.ok) {
    const code = res && res.error && res.error.code
    if (code === 'conflict' && messageOf(roomId, seq)?.deleted) return 'This message was deleted: nobody can react to it any more.'
    return refusal(res, 'react')
  }
  const me = state.user.userId
  applyOwn(roomId, seq, res.version, (shown) => {
    const reactions = { ...shown.reactions }
    const users = (reactions[emoji] || []).filter((id) => !sameId(id, me))
    if (on) users.push(me)
    if (users.length) reactions[emoji] = users
    else delete reactions[emoji]
    return { reactions }
  })
  return ''
}
