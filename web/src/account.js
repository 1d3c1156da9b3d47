// The account's own actions: rename and new avatar, a new password, the export of everything
// the server holds about the person (saved as a file), and erasing the account.
import { api } from './api.js'
import { state } from './state.js'
import { setUser, clearSession } from './store.js'

// changes: any of {name, avatarImage}; resolves to the profile as the server now has it.
export async function updateProfile(changes) {
  const data = await api.updateUserInfo(changes)
  if (data && data.userInfo) setUser(data.userInfo)
  return state.user
}

// The server keeps this page's token and logs every other session of the account out.
export async function changePassword(oldPassword, newPassword) {
  await api.changePassword(oldPassword, newPassword)
}

// Resolves to the file name it was saved as.
export async function downloadMyData() {
  const data = await api.exportData()
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' })
  const name = exportFileName(state.user && state.user.name, new Date())
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = name
  a.hidden = true
  document.body.append(a)
  a.click()
  a.remove()
  // the browser reads the blob after this task ends: give it time before letting it go
  setTimeout(() => URL.revokeObjectURL(url), 60000)
  return name
}

export function exportFileName(userName, date) {
  // letters of any script are fine in a file name; separators and punctuation are not
  const safe = String(userName || 'account')
    .normalize('NFC')
    .replace(/[^\p{L}\p{N}_-]+/gu, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
  return `chatroom-data-${safe || 'account'}-${date.toISOString().slice(0, 10)}.json`
}

// Erases the account on the server, then leaves this page at the login screen.
export async function deleteAccount(password) {
  await api.deleteAccount(password)
  clearSession('Your account and everything you wrote have been deleted.', 'info')
}
