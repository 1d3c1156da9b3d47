// End-to-end test of the web client (web/dist) against the real chatroom server binary,
// driven through Debian's headless Chromium with playwright-core (see harness.mjs).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { io } from 'socket.io-client'
import {
  DESKTOP,
  PHONE,
  T,
  base,
  sleep,
  setUp,
  tearDown,
  stopServer,
  restartServer,
  newUserPage,
  shot,
  register,
  sendText,
  confirmed,
  waitConfirmed,
  assertNoDuplicates,
  makePng,
} from './harness.mjs'

before(setUp)
after(tearDown)

/* ------------------------------------------------------------------ the story */

test('two people chat through the web client, across a network drop and a server restart', async (t) => {
  const password = 'correct horse battery'
  // every run has its own fresh data folder, so plain names are free
  const aliceName = 'Alice'
  const bobName = 'Bob'
  const roomName = 'Book club'
  let alice, bob, code

  await t.test('both register (desktop and phone); a taken name is refused with a clear sentence', async () => {
    alice = await newUserPage(DESKTOP, { timezoneId: 'Asia/Tokyo', tap: true })
    bob = await newUserPage(PHONE, { timezoneId: 'America/New_York', tap: true })
    await alice.page.getByLabel('Username').waitFor({ timeout: T })
    await shot(alice.page, 'desktop-login')
    await shot(bob.page, 'phone-login')
    await register(alice.page, aliceName, password)
    await alice.page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T })

    // the same name in other capitals is taken
    await register(bob.page, aliceName.toUpperCase(), password)
    await bob.page.getByText('That username is already taken').waitFor({ timeout: T })
    // a short password is caught before it is sent
    await bob.page.getByLabel('Username').fill(bobName)
    await bob.page.getByLabel('Password').fill('short')
    await bob.page.getByRole('button', { name: 'Create account' }).click()
    await bob.page.getByText('at least 8 characters', { exact: false }).first().waitFor({ timeout: T })
    await bob.page.getByLabel('Password').fill(password)
    await bob.page.getByRole('button', { name: 'Create account' }).click()
    await bob.page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T })
    await bob.page.getByText('You are in no room yet').waitFor({ timeout: T })
  })

  await t.test('alice creates a room with a description and an avatar, and shows its join code', async () => {
    const p = alice.page
    await p.getByRole('button', { name: /New room/ }).click()
    await p.getByLabel('Name', { exact: true }).fill(roomName)
    await p.getByLabel(/Description/).fill('Reading one chapter a week')
    await p.locator('#room-avatar').setInputFiles({ name: 'avatar.png', mimeType: 'image/png', buffer: makePng() })
    // the preview shows the chosen picture
    await p.locator('.modal .avatar-pick img[src^="data:image/png;base64,"]').waitFor({ timeout: T })
    await shot(p, 'desktop-create-room')
    await p.getByRole('button', { name: 'Create room' }).click()
    await p.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    // the room list shows the uploaded avatar, served from /media/
    const src = await p.locator('.room-item .avatar img').first().getAttribute('src', { timeout: T })
    assert.match(src, /^\/media\//)
    const img = await p.request.get(`${base}${src}`)
    assert.equal(img.status(), 200)

    await p.getByRole('button', { name: 'Join code' }).click()
    code = await p.locator('#room-code').inputValue()
    assert.match(code, /^[0-9a-f]{32}$/)
    await p.getByRole('button', { name: 'Copy' }).click()
    await p.locator('.copied').filter({ hasText: /Copied|copy it/ }).waitFor({ timeout: T })
    await p.getByRole('button', { name: 'Join code' }).click()
  })

  await t.test('bob joins by code (a wrong code gets a clear sentence)', async () => {
    const p = bob.page
    await p.getByRole('button', { name: 'Join with code' }).click()
    await p.getByLabel('Join code').fill('0123456789abcdef0123456789abcdef')
    await p.getByRole('button', { name: 'Join room' }).click()
    await p.getByText('No room has this join code').waitFor({ timeout: T })
    await p.getByLabel('Join code').fill(code)
    await p.getByRole('button', { name: 'Join room' }).click()
    // on a phone the chat replaces the list
    await p.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    assert.equal(await p.locator('aside.sidebar').isVisible(), false)
    // alice sees bob come in: one line, his membership (a room_event joined), which part 1's join
    // notice of the same join does not repeat
    await alice.page.locator('.notice', { hasText: `${bobName} joined the room` }).first().waitFor({ timeout: T })
    assert.equal(await alice.page.locator('.notice', { hasText: `${bobName} entered the room` }).count(), 0)
  })

  await t.test('they chat both ways; own messages are confirmed by the ack', async () => {
    await sendText(alice.page, 'Hello Bob! Chapter one?')
    await waitConfirmed(alice.page, 'Hello Bob! Chapter one?')
    await waitConfirmed(bob.page, 'Hello Bob! Chapter one?')
    await sendText(bob.page, 'Hi Alice, sounds good.')
    await waitConfirmed(bob.page, 'Hi Alice, sounds good.')
    await waitConfirmed(alice.page, 'Hi Alice, sounds good.')
    // Shift+Enter makes a new line instead of sending
    const box = alice.page.getByLabel(/^Message to /)
    await box.fill('Two lines:')
    await box.press('Shift+Enter')
    await box.type('second line')
    await box.press('Enter')
    await waitConfirmed(bob.page, 'Two lines:\nsecond line')

    // times are shown in each reader's own time zone
    const dt = await alice.page.locator('.messages .msg[data-seq] time').first().getAttribute('datetime')
    const fmt = (tz) => new Intl.DateTimeFormat('en-US', { hour: '2-digit', minute: '2-digit', timeZone: tz }).format(new Date(dt))
    const aliceTime = await alice.page.locator('.messages .msg[data-seq] time').first().textContent()
    const bobTime = await bob.page.locator('.messages .msg[data-seq] time').first().textContent()
    assert.equal(aliceTime, fmt('Asia/Tokyo'))
    assert.equal(bobTime, fmt('America/New_York'))
  })

  await t.test('a refused message is marked failed; Retry sends it again with the same id', async () => {
    const p = alice.page
    alice.tap.refuse = 'This one gets refused first'
    await sendText(p, 'This one gets refused first')
    const failed = p.locator('.messages .msg[data-status="failed"]', { hasText: 'This one gets refused first' })
    await failed.waitFor({ timeout: T })
    await failed.getByText('You are sending messages too fast').waitFor({ timeout: T })
    await failed.getByRole('button', { name: 'Retry' }).click()
    await waitConfirmed(p, 'This one gets refused first')
    await waitConfirmed(bob.page, 'This one gets refused first')
    const tries = alice.tap.sent.filter((m) => m.message === 'This one gets refused first')
    assert.equal(tries.length, 2)
    assert.equal(tries[0].id, tries[1].id, 'a retry reuses the message id')
    assert.equal((await confirmed(bob.page)).filter((m) => m.text === 'This one gets refused first').length, 1)
  })

  await t.test('markup in a message is shown as text, never run', async () => {
    const evil = '<img src=x onerror=alert(1)> <b>bold?</b> <script>alert(2)</script>'
    await sendText(bob.page, evil)
    await waitConfirmed(alice.page, evil)
    await waitConfirmed(bob.page, evil)
    for (const { page } of [alice, bob]) {
      assert.equal(await page.locator('.messages img[src="x"]').count(), 0)
      assert.equal(await page.locator('.messages b, .messages script').count(), 0)
      const texts = (await confirmed(page)).map((m) => m.text)
      assert.ok(texts.includes(evil))
    }
    await sleep(300)
    assert.deepEqual(alice.page.alerts, [])
    assert.deepEqual(bob.page.alerts, [])
  })

  await t.test('bob goes offline while alice posts; back online he sees each missed message once', async () => {
    const seenBefore = Math.max(...(await confirmed(bob.page)).map((m) => m.seq))
    const roomId = bob.tap.sent[bob.tap.sent.length - 1].roomId
    const joinsBefore = bob.tap.events.length
    await bob.context.setOffline(true)
    await bob.page.getByText('You are offline').waitFor({ timeout: T })
    for (let i = 1; i <= 3; i++) {
      await sendText(alice.page, `While you were away #${i}`)
      await waitConfirmed(alice.page, `While you were away #${i}`)
    }
    // bob writes while offline: shown at once, pending
    await sendText(bob.page, 'Am I online?')
    await bob.page.locator('.messages .msg[data-status="pending"]', { hasText: 'Am I online?' }).waitFor({ timeout: T })
    await shot(bob.page, 'phone-offline')
    await bob.context.setOffline(false)
    for (let i = 1; i <= 3; i++) await waitConfirmed(bob.page, `While you were away #${i}`)
    await waitConfirmed(bob.page, 'Am I online?')
    await waitConfirmed(alice.page, 'Am I online?')
    // he caught up by resuming from the last seq he had seen
    const rejoin = bob.tap.events.slice(joinsBefore).find((e) => e.event === 'join_all')
    assert.ok(rejoin, 'the client sent join_all after reconnecting')
    assert.equal(rejoin.payload.since[roomId], seenBefore)
    await sleep(1000) // let any late duplicate arrive
    for (const { page } of [alice, bob]) {
      const list = await confirmed(page)
      assertNoDuplicates(list, 'after offline')
      for (let i = 1; i <= 3; i++) {
        assert.equal(list.filter((m) => m.text === `While you were away #${i}`).length, 1)
      }
      assert.equal(list.filter((m) => m.text === 'Am I online?').length, 1)
      assert.equal(await page.locator('.messages .msg[data-status="pending"]').count(), 0)
    }
  })

  await t.test('the server restarts; both reconnect by themselves and nothing is lost or doubled', async () => {
    await stopServer()
    await alice.page.locator('.banner').waitFor({ timeout: T })
    // alice writes while the server is down: pending, then sent once it is back
    await sendText(alice.page, 'Is the server back?')
    await alice.page.locator('.messages .msg[data-status="pending"]', { hasText: 'Is the server back?' }).waitFor({ timeout: T })
    await restartServer()
    await waitConfirmed(alice.page, 'Is the server back?')
    await waitConfirmed(bob.page, 'Is the server back?')
    await sendText(bob.page, 'Yes, and I missed nothing.')
    await waitConfirmed(alice.page, 'Yes, and I missed nothing.')
    await alice.page.locator('.banner').waitFor({ state: 'detached', timeout: T })
    await sleep(1000)
    for (const { page } of [alice, bob]) {
      const list = await confirmed(page)
      assertNoDuplicates(list, 'after restart')
      assert.equal(list.filter((m) => m.text === 'Is the server back?').length, 1)
      // no hole: seqs are 1..n
      assert.deepEqual(
        list.map((m) => m.seq),
        list.map((_, i) => list[0].seq + i),
      )
    }
    await shot(alice.page, 'desktop-chat')
    await shot(bob.page, 'phone-chat')
  })

  await t.test('history: a reload keeps the session, and older pages load on scroll', async () => {
    // enough messages for more than one page of history
    const p = alice.page
    for (let i = 1; i <= 55; i++) await sendText(p, `Filler message ${i}`)
    await waitConfirmed(p, 'Filler message 55')
    await waitConfirmed(bob.page, 'Filler message 55')
    const total = (await confirmed(p)).length
    assert.ok(total > 60, `expected more than 60 messages, have ${total}`)

    await bob.page.reload()
    await bob.page.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    await waitConfirmed(bob.page, 'Filler message 55')
    const firstPage = await confirmed(bob.page)
    assert.ok(firstPage.length < total, 'only the newest page is loaded first')
    // scroll to the top until the beginning of the room shows
    for (let i = 0; i < 20; i++) {
      await bob.page.locator('.messages').evaluate((el) => (el.scrollTop = 0))
      if (await bob.page.getByText('This is the beginning of the room.').isVisible()) break
      await sleep(300)
    }
    await bob.page.getByText('This is the beginning of the room.').waitFor({ timeout: T })
    const all = await confirmed(bob.page)
    assertNoDuplicates(all, 'after paging')
    assert.equal(all.length, total)
    assert.equal(all[0].seq, 1)
    assert.equal(all[0].text, 'Hello Bob! Chapter one?')

    // back to the list on the phone: the room shows its last activity
    await bob.page.getByRole('button', { name: 'Back to rooms' }).click()
    await bob.page.locator('.room-item', { hasText: roomName }).waitFor({ timeout: T })
    await bob.page.locator('.room-item .room-preview', { hasText: 'Filler message 55' }).waitFor({ timeout: T })
    await shot(bob.page, 'phone-rooms')
  })

  await t.test('log out, wrong password, log in again', async () => {
    const p = alice.page
    await p.getByRole('button', { name: 'Log out' }).click()
    await p.getByRole('button', { name: 'Log in', exact: true }).waitFor({ timeout: T })
    await p.reload()
    await p.getByRole('button', { name: 'Log in', exact: true }).waitFor({ timeout: T })
    await p.getByLabel('Username').fill(aliceName.toLowerCase())
    await p.getByLabel('Password').fill('not the password')
    await p.getByRole('button', { name: 'Log in', exact: true }).click()
    await p.getByText('Wrong username or password.').waitFor({ timeout: T })
    await p.getByLabel('Password').fill(password)
    await p.getByRole('button', { name: 'Log in', exact: true }).click()
    await p.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T })
    await p.locator('.room-item', { hasText: roomName }).click()
    await waitConfirmed(p, 'Filler message 55')
    await shot(p, 'desktop-after-login')
    for (const { page } of [alice, bob]) assert.deepEqual(page.consoleErrors, [])
  })

  await t.test('bob misses more than 1,000 messages: he reloads the newest page instead of a replay', async () => {
    // a third member, outside the browser, floods the room while bob is offline
    const api = async (p, body, token) => {
      const res = await fetch(`${base}${p}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      })
      assert.ok(res.ok, `${p}: ${res.status}`)
      return (await res.json()).data
    }
    const carol = await api('/api/register', { username: 'Carol', password })
    const { room } = await api('/api/room/join', { roomIdHash: code }, carol.token)
    await bob.page.locator('.room-item', { hasText: roomName }).click()
    await waitConfirmed(bob.page, 'Filler message 55')
    await bob.context.setOffline(true)
    await bob.page.getByText('You are offline').waitFor({ timeout: T })
    const sock = io(`${base}/chatroom`, { auth: { token: carol.token }, transports: ['websocket'] })
    try {
      await new Promise((resolve, reject) => {
        sock.once('connect', resolve)
        sock.once('connect_error', reject)
      })
      // a few at a time; a refusal for having too many in flight is retried with the same id
      const N = 1005
      const sendOne = async (i) => {
        for (let attempt = 0; ; attempt++) {
          const payload = { roomId: room.id, id: `bulk-${i}`, message: `Bulk ${i}`, type: 'input' }
          const r = await sock.timeout(60000).emitWithAck('user_send_message', payload)
          if (r.ok) return r
          assert.ok(r.error.code === 'rate_limited' && attempt < 100, JSON.stringify(r))
          await sleep(50)
        }
      }
      for (let i = 1; i <= N; i += 25) {
        await Promise.all(Array.from({ length: Math.min(25, N - i + 1) }, (_, k) => sendOne(i + k)))
      }
    } finally {
      sock.close()
    }
    await waitConfirmed(alice.page, 'Bulk 1005')
    const seenBefore = Math.max(...(await confirmed(bob.page)).map((m) => m.seq))
    const eventsBefore = bob.tap.events.length
    await bob.context.setOffline(false)
    await waitConfirmed(bob.page, 'Bulk 1005')
    await sleep(1500)
    // he asked for a replay from where he was; the server refused it (over 1,000 missed)
    const rejoin = bob.tap.events.slice(eventsBefore).find((e) => e.event === 'join_all')
    assert.ok(rejoin, 'the client sent join_all after reconnecting')
    assert.equal(rejoin.payload.since[room.id], seenBefore)
    const list = await confirmed(bob.page)
    assertNoDuplicates(list, 'after a long absence')
    assert.deepEqual(
      list.map((m) => m.seq),
      list.map((_, i) => list[0].seq + i),
      'no hole in what bob sees',
    )
    // ... so he shows the newest page of history, loaded over REST, with more above it
    assert.ok(list.length <= 60, `bob got the newest page over REST, not ${list.length} replayed messages`)
    assert.equal(await bob.page.getByText('This is the beginning of the room.').count(), 0)
    const aliceList = await confirmed(alice.page)
    assertNoDuplicates(aliceList, 'alice during the flood')
    assert.equal(aliceList[aliceList.length - 1].text, 'Bulk 1005')
    assert.deepEqual(
      aliceList.map((m) => m.seq),
      aliceList.map((_, i) => aliceList[0].seq + i),
      'no hole in what alice sees',
    )
    // a long room keeps only a window of it in the page while following the newest messages
    assert.ok(aliceList.length <= 200, `alice renders ${aliceList.length} messages`)
    for (const { page } of [alice, bob]) assert.deepEqual(page.consoleErrors, [])
  })
})
