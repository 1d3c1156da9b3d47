// Part 1's join notices: one line in the timeline per person joining (a reconnect announces
// itself again, which shows once), and the room list's member count read again after a new
// member's first notice.
import { api } from './api.js'
import { state, key, sameId, newId, notePerson } from './state.js'
import { chatOf, roomById, lastSeqOf } from './timeline.js'

export function onJoinNotice(n) {
  const room = roomById(n.roomId)
  if (!room) return
  const chat = chatOf(n.roomId)
  const mine = state.user && n.user && sameId(n.user.id, state.user.userId)
  if (n.user) notePerson(n.user)
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
