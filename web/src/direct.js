// Direct conversations and blocks: which rooms are a conversation of two, who the other person
// is, and the people the user blocked (one-way; it concerns direct rooms only).
import { api } from './api.js'
import { state, key, sameId, notePerson } from './state.js'

export const isDirect = (room) => !!room && room.kind === 'direct'

// The other person of a direct room, once its members list is loaded.
export function otherOf(roomId) {
  const p = state.members[key(roomId)]
  return (p && p.list.find((m) => !(state.user && sameId(m.id, state.user.userId)))) || null
}

export function isBlocked(userId) {
  return state.blocks.some((b) => sameId(b.id, userId))
}

export async function loadBlocks() {
  try {
    const data = await api.blocks()
    const list = (data && data.blocks) || []
    for (const b of list) notePerson(b)
    state.blocks = list
    state.blocksLoaded = true
    return true
  } catch {
    return false // the menus offer "Block" until the list is known; the server decides anyway
  }
}

export async function block(user) {
  await api.block(user.id)
  notePerson(user)
  if (!isBlocked(user.id)) state.blocks = state.blocks.concat([{ id: user.id, name: user.name, avatarImage: user.avatarImage || '' }])
}

export async function unblock(userId) {
  await api.unblock(userId)
  state.blocks = state.blocks.filter((b) => !sameId(b.id, userId))
}
