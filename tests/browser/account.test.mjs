// End-to-end test of the web client's account page (rename, avatar, password, download of
// one's data, deleting the account) against the real chatroom server, in headless Chromium
// (see harness.mjs).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { io } from 'socket.io-client'
import {
  DESKTOP,
  PHONE,
  T,
  base,
  setUp,
  tearDown,
  newUserPage,
  shot,
  register,
  sendText,
  waitConfirmed,
  makePng,
} from './harness.mjs'

// plain Socket.IO clients of the test, closed before the server stops
const sockets = []
before(setUp)
after(async () => {
  for (const s of sockets) s.close()
  await tearDown()
})

// One REST call as an outside client makes it; resolves to {status, body}.
async function rest(method, p, { body, token } = {}) {
  const headers = { Accept: 'application/json' }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  if (token) headers.Authorization = `Bearer ${token}`
  const res = await fetch(`${base}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  return { status: res.status, body: await res.json().catch(() => null) }
}

const tokenOf = (page) => page.evaluate(() => localStorage.getItem('chatroom.token'))

async function openAccount(page) {
  await page.getByRole('button', { name: 'Account', exact: true }).click()
  const dialog = page.getByRole('dialog', { name: 'Your account' })
  await dialog.waitFor({ timeout: T })
  return dialog
}

async function closeAccount(page) {
  await page.getByRole('dialog', { name: 'Your account' }).getByRole('button', { name: 'Close' }).click()
  await page.getByRole('dialog', { name: 'Your account' }).waitFor({ state: 'detached', timeout: T })
}

async function logIn(page, name, password) {
  await page.getByLabel('Username').fill(name)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Log in', exact: true }).click()
}

// The `received` messages of a room, as a plain Socket.IO client of that user gets them.
async function listen(token, roomId) {
  const sock = io(`${base}/chatroom`, { auth: { token }, transports: ['websocket'] })
  sockets.push(sock)
  const got = []
  sock.on('received', (m) => m.type !== 'join' && got.push(m))
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve)
    sock.once('connect_error', reject)
  })
  const ack = await sock.timeout(T).emitWithAck('join_one_chat', { roomId })
  assert.equal(ack.ok, true, JSON.stringify(ack))
  return { sock, got }
}

async function until(what, check) {
  const deadline = Date.now() + T
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

test('a person manages their account from the web page', async (t) => {
  const password = 'correct horse battery'
  const newPassword = 'a brand new passphrase'
  const roomName = 'Garden club'
  let alice, bob, room, listener

  await t.test('alice (desktop) and bob (phone) share a room and chat', async () => {
    alice = await newUserPage(DESKTOP, { timezoneId: 'Europe/Paris' })
    bob = await newUserPage(PHONE, { timezoneId: 'Europe/Paris' })
    await register(alice.page, 'Alice', password)
    await register(bob.page, 'Bob', password)
    for (const { page } of [alice, bob]) await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T })
    const created = await rest('POST', '/api/room/create', {
      token: await tokenOf(alice.page),
      body: { name: roomName, description: 'Seeds and such', avatarImage: '' },
    })
    assert.equal(created.status, 201, JSON.stringify(created.body))
    room = created.body.data.room
    const joined = await rest('POST', '/api/room/join', { token: await tokenOf(bob.page), body: { roomIdHash: room.room_hash_id } })
    assert.equal(joined.status, 200, JSON.stringify(joined.body))
    for (const { page } of [alice, bob]) {
      await page.reload()
      await page.locator('.room-item', { hasText: roomName }).click()
      await page.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    }
    await sendText(alice.page, 'Before the rename')
    await waitConfirmed(bob.page, 'Before the rename')
    await bob.page.locator('.msg-author', { hasText: /^Alice$/ }).waitFor({ timeout: T })
    listener = await listen(await tokenOf(bob.page), room.id)
  })

  await t.test('a taken name is refused with a clear sentence and changes nothing', async () => {
    const p = alice.page
    const dialog = await openAccount(p)
    await shot(p, 'account-desktop')
    await dialog.getByLabel('Name', { exact: true }).fill('BOB')
    await dialog.getByRole('button', { name: 'Save profile' }).click()
    await dialog.getByText('That name is already taken').waitFor({ timeout: T })
    await shot(p, 'account-name-taken')
    await closeAccount(p)
    assert.equal(await p.locator('.side-head .me strong').textContent(), 'Alice')
    const info = await rest('GET', '/api/user/info', { token: await tokenOf(p) })
    assert.equal(info.body.data.userInfo.name, 'Alice')
  })

  await t.test('a rename shows in the header and on the messages others receive', async () => {
    const p = alice.page
    const dialog = await openAccount(p)
    await dialog.getByLabel('Name', { exact: true }).fill('Alice Liddell')
    await dialog.getByRole('button', { name: 'Save profile' }).click()
    await dialog.getByText('Your profile is saved').waitFor({ timeout: T })
    await closeAccount(p)
    await p.locator('.side-head .me strong', { hasText: /^Alice Liddell$/ }).waitFor({ timeout: T })
    // the page keeps the new name across a reload
    await p.reload()
    await p.locator('.side-head .me strong', { hasText: /^Alice Liddell$/ }).waitFor({ timeout: T })
    await p.locator('.room-item', { hasText: roomName }).click()

    await sendText(p, 'After the rename')
    await waitConfirmed(bob.page, 'After the rename')
    const got = await until('the message on the plain socket', () => listener.got.find((m) => m.message === 'After the rename'))
    assert.equal(got.user.name, 'Alice Liddell')
    // bob's page shows her current name on her earlier message too
    const earlier = bob.page.locator('.msg', { hasText: 'Before the rename' })
    await earlier.locator('.msg-author', { hasText: /^Alice Liddell$/ }).waitFor({ timeout: T })
    assert.equal(await bob.page.locator('.msg-author', { hasText: /^Alice$/ }).count(), 0)
  })

  await t.test('a new avatar is uploaded, shown in the header and on her messages', async () => {
    const p = alice.page
    const dialog = await openAccount(p)
    await dialog.locator('#account-avatar').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: makePng(40) })
    await dialog.locator('.avatar-pick img[src^="data:image/png;base64,"]').waitFor({ timeout: T })
    await dialog.getByRole('button', { name: 'Save profile' }).click()
    await dialog.getByText('Your profile is saved').waitFor({ timeout: T })
    await closeAccount(p)
    const src = await p.locator('.side-head .avatar img').getAttribute('src', { timeout: T })
    assert.match(src, /^\/media\//)
    assert.equal((await p.request.get(`${base}${src}`)).status(), 200)
    await sendText(p, 'With my new picture')
    await waitConfirmed(bob.page, 'With my new picture')
    const got = await until('the message on the plain socket', () => listener.got.find((m) => m.message === 'With my new picture'))
    assert.equal(got.user.avatarImage, src)
    // ... and on her earlier message, which starts the group
    await bob.page.locator('.msg', { hasText: 'Before the rename' }).locator(`.msg-avatar img[src="${src}"]`).waitFor({ timeout: T })
  })

  await t.test('bob sees the account page on a phone', async () => {
    const p = bob.page
    await p.getByRole('button', { name: 'Back to rooms' }).click()
    const dialog = await openAccount(p)
    const box = await dialog.boundingBox()
    assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, `the dialog fits the phone's width: ${JSON.stringify(box)}`)
    await dialog.getByRole('button', { name: 'Delete my account…' }).scrollIntoViewIfNeeded()
    await shot(p, 'account-phone')
    await closeAccount(p)
  })

  await t.test('a password change needs the current password, then only the new one logs in', async () => {
    const p = alice.page
    // a second session of hers, which the change logs out
    const other = await rest('POST', '/api/login', { body: { username: 'Alice Liddell', password } })
    assert.equal(other.status, 200)
    const dialog = await openAccount(p)
    await dialog.getByLabel('Current password').fill('not my password')
    await dialog.getByLabel('New password', { exact: true }).fill(newPassword)
    await dialog.getByLabel('Confirm new password').fill(newPassword)
    await dialog.getByRole('button', { name: 'Change password' }).click()
    await dialog.getByText('Your current password is wrong').waitFor({ timeout: T })
    assert.equal((await rest('GET', '/api/user/info', { token: other.body.data.token })).status, 200, 'nothing changed')

    await dialog.getByLabel('Current password').fill(password)
    await dialog.getByLabel('Confirm new password').fill(`${newPassword}!`)
    await dialog.getByRole('button', { name: 'Change password' }).click()
    await dialog.getByText('The two new passwords differ').waitFor({ timeout: T })

    await dialog.getByLabel('Confirm new password').fill(newPassword)
    await dialog.getByRole('button', { name: 'Change password' }).click()
    await dialog.getByText('Your password is changed').waitFor({ timeout: T })
    await closeAccount(p)
    assert.equal((await rest('GET', '/api/user/info', { token: other.body.data.token })).status, 401)
    assert.equal((await rest('GET', '/api/user/info', { token: await tokenOf(p) })).status, 200, 'this page stays logged in')

    await p.getByRole('button', { name: 'Log out' }).click()
    await logIn(p, 'alice liddell', password)
    await p.getByText('Wrong username or password.').waitFor({ timeout: T })
    await logIn(p, 'alice liddell', newPassword)
    await p.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T })
  })

  await t.test('download my data saves a JSON file holding her messages', async () => {
    const p = alice.page
    const dialog = await openAccount(p)
    const [download] = await Promise.all([
      p.waitForEvent('download', { timeout: T }),
      dialog.getByRole('button', { name: 'Download my data' }).click(),
    ])
    assert.match(download.suggestedFilename(), /^chatroom-data-Alice-Liddell-\d{4}-\d{2}-\d{2}\.json$/)
    const data = JSON.parse(fs.readFileSync(await download.path(), 'utf8'))
    assert.equal(data.profile.name, 'Alice Liddell')
    assert.ok(data.rooms.some((r) => String(r.room.id) === String(room.id)), JSON.stringify(data.rooms))
    const texts = data.messages.flatMap((m) => m.versions.map((v) => v.message))
    for (const text of ['Before the rename', 'After the rename', 'With my new picture']) {
      assert.ok(texts.includes(text), `${text} in ${JSON.stringify(texts)}`)
    }
    assert.equal(data.messages.every((m) => String(m.roomId) === String(room.id)), true)
    await dialog.getByText(`Saved as ${download.suggestedFilename()}`).waitFor({ timeout: T })
    await closeAccount(p)
  })

  await t.test('deleting the account takes her user name and password; then she cannot log in', async () => {
    const p = alice.page
    const dialog = await openAccount(p)
    await dialog.getByRole('button', { name: 'Delete my account…' }).click()
    const confirmName = dialog.getByLabel('Type your user name')
    await confirmName.fill('Alice')
    await dialog.getByLabel('Your password').fill(newPassword)
    await dialog.getByRole('button', { name: 'Delete my account forever' }).click()
    await dialog.getByText('What you typed is not your user name').waitFor({ timeout: T })
    await shot(p, 'account-delete-refused')
    assert.equal((await rest('GET', '/api/user/info', { token: await tokenOf(p) })).status, 200, 'still there')

    await confirmName.fill('Alice Liddell')
    await dialog.getByLabel('Your password').fill(password) // the old one
    await dialog.getByRole('button', { name: 'Delete my account forever' }).click()
    await dialog.getByText('That password is wrong. Your account was not deleted.').waitFor({ timeout: T })
    assert.equal((await rest('GET', '/api/user/info', { token: await tokenOf(p) })).status, 200, 'still there')

    const token = await tokenOf(p)
    await dialog.getByLabel('Your password').fill(newPassword)
    await dialog.getByRole('button', { name: 'Delete my account forever' }).click()
    await p.getByRole('button', { name: 'Log in', exact: true }).waitFor({ timeout: T })
    await p.getByText('Your account and everything you wrote have been deleted.').waitFor({ timeout: T })
    await shot(p, 'account-deleted')
    assert.equal(await tokenOf(p), null, 'the page forgot the session')
    assert.equal((await rest('GET', '/api/user/info', { token })).status, 401)

    await logIn(p, 'Alice Liddell', newPassword)
    await p.getByText('Wrong username or password.').waitFor({ timeout: T })
    for (const { page } of [alice, bob]) assert.deepEqual(page.consoleErrors, [])
  })
})
