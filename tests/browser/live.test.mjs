// End-to-end test of the web client's read state, presence, typing and direct conversations
// against the real chatroom server, in headless Chromium (see harness.mjs). Alice and Bob share
// a room; Bob has two tabs of the page (one browser context); Cara and Dan are scripts
// (socket.io-client) that type; Bob comes back on a phone at the end, where Erin (a script)
// opens a conversation with him.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { DESKTOP, PHONE, T, base, sleep, setUp, tearDown, newUserPage, shot, register, sendText, waitConfirmed, escapeRe, call, session, scriptMember } from './harness.mjs'

before(setUp)
after(tearDown)

const password = 'correct horse battery'

/* ------------------------------------------------------------------ outside the browser */

// A member that is a script, subscribed to the room, that only types.
async function typist(name, code) {
  const { room, ack } = await scriptMember(name, password, code)
  await ack('join_one_chat', { roomId: room.id })
  return { type: () => ack('typing', { roomId: room.id }) }
}

/* ------------------------------------------------------------------ steps on the page */

const roomItem = (page, name) =>
  page.locator('.room-item', { has: page.locator('.room-name', { hasText: new RegExp(`^${escapeRe(name)}$`) }) })

// The room's unread badge shows `n` (0: no badge at all).
async function badge(page, name, n) {
  const b = roomItem(page, name).locator('.badge')
  if (n === 0) return b.waitFor({ state: 'detached', timeout: T })
  await b.filter({ hasText: new RegExp(`^${n}$`) }).waitFor({ timeout: T })
  // the number is read out as words with the room, not as a bare figure
  await roomItem(page, name).getByText(`, ${n} unread`, { exact: true }).waitFor({ state: 'attached', timeout: T })
}

async function openRoom(page, name) {
  await roomItem(page, name).click()
  await page.getByRole('heading', { name, level: 2 }).waitFor({ timeout: T })
}

// The texts of the chat's messages and dividers, in order.
const timeline = (page) =>
  page.$$eval('.messages .msg[data-seq] .msg-text, .messages .unread-divider', (els) =>
    els.map((e) => (e.classList.contains('unread-divider') ? '--- new ---' : e.textContent)),
  )

const typingLine = (page) => page.locator('.typing-line')

async function membersPanel(page) {
  const panel = page.locator('.members-panel')
  if (!(await panel.count())) await page.getByRole('button', { name: 'Members', exact: true }).click()
  await panel.locator('.member').first().waitFor({ timeout: T })
  return panel
}
const memberRow = (panel, name) => panel.locator('.member', { has: panel.page().locator('.member-name', { hasText: new RegExp(`^${escapeRe(name)}`) }) })

const countEvents = (tap, from, event) => tap.events.slice(from).filter((e) => e.event === event)

/* ------------------------------------------------------------------ the test */

test('read state, presence, typing and direct conversations on the web page', async (t) => {
  const roomName = 'Book club'
  let alice, bob, bob2, code, roomId

  await t.test('alice creates a room, bob joins it and makes a room of his own', async () => {
    alice = await newUserPage(DESKTOP, { timezoneId: 'Europe/Paris' })
    bob = await newUserPage(DESKTOP, { timezoneId: 'America/Chicago', tap: true })
    for (const [who, name] of [
      [alice, 'Alice'],
      [bob, 'Bob'],
    ]) {
      await register(who.page, name, password)
      await who.page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T })
    }
    const p = alice.page
    await p.getByRole('button', { name: /New room/ }).click()
    await p.getByLabel('Name', { exact: true }).fill(roomName)
    await p.getByRole('button', { name: 'Create room' }).click()
    await p.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    roomId = decodeURIComponent(/#room=(.+)$/.exec(p.url())[1])
    await p.getByRole('button', { name: 'Join code' }).click()
    code = await p.locator('#room-code').inputValue()
    await p.getByRole('button', { name: 'Join code' }).click()
    const b = bob.page
    await b.getByRole('button', { name: 'Join with code' }).click()
    await b.getByLabel('Join code').fill(code)
    await b.getByRole('button', { name: 'Join room' }).click()
    await b.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    await sendText(p, 'Welcome, everyone')
    await waitConfirmed(b, 'Welcome, everyone')
    await b.getByRole('button', { name: /New room/ }).click()
    await b.getByLabel('Name', { exact: true }).fill('Bob’s desk')
    await b.getByRole('button', { name: 'Create room' }).click()
    await b.getByRole('heading', { name: 'Bob’s desk', level: 2 }).waitFor({ timeout: T })
  })

  await t.test('unread badges count others’ messages in rooms not open, and clear as bob reads', async () => {
    const b = bob.page
    for (const text of ['Chapter one tonight', 'Bring snacks', 'And the book']) await sendText(alice.page, text)
    await waitConfirmed(alice.page, 'And the book')
    await badge(b, roomName, 3)
    // one's own messages never count
    await badge(alice.page, roomName, 0)
    assert.match(await b.title(), /^\(3\) /, 'the tab title counts them too')
    await shot(b, 'live-unread-badge-desktop')

    // the badge survives a reload: the count is the server's
    await b.reload()
    await badge(b, roomName, 3)

    const marksFrom = bob.tap.events.length
    await openRoom(b, roomName)
    await waitConfirmed(b, 'And the book')
    await badge(b, roomName, 0)
    // the divider sits above the first unread message, under what bob had read
    assert.deepEqual(await timeline(b), ['Welcome, everyone', '--- new ---', 'Chapter one tonight', 'Bring snacks', 'And the book'])
    await b.getByRole('separator', { name: 'New messages' }).waitFor({ timeout: T })
    await shot(b, 'live-unread-divider-desktop')
    // the page marked the room read, up to the newest message it shows
    const { token } = await session(b)
    for (let i = 0; i < 50; i++) {
      const list = (await call('GET', '/api/room/list', undefined, token)).roomList
      const room = list.find((r) => String(r.id) === roomId)
      if (room.unread === 0) break
      await sleep(200)
    }
    const room = (await call('GET', '/api/room/list', undefined, token)).roomList.find((r) => String(r.id) === roomId)
    assert.equal(room.unread, 0)
    const newest = Number(await b.locator('.messages .msg[data-seq]').last().getAttribute('data-seq'))
    assert.equal(room.last_read_seq, newest)
    const marks = countEvents(bob.tap, marksFrom, 'mark_read')
    assert.ok(marks.length >= 1, 'mark_read was sent')
    assert.equal(marks[marks.length - 1].payload.seq, newest)

    // while the room is open and looked at, new messages are read as they come, a mark a second at most
    const burstFrom = bob.tap.events.length
    for (let i = 1; i <= 8; i++) await sendText(alice.page, `Quick note ${i}`)
    await waitConfirmed(b, 'Quick note 8')
    await sleep(1500)
    await badge(b, roomName, 0)
    const burst = countEvents(bob.tap, burstFrom, 'mark_read')
    assert.ok(burst.length >= 1 && burst.length <= 4, `${burst.length} mark_read for 8 messages`)

    // reopened with nothing unread: no divider
    await openRoom(b, 'Bob’s desk')
    await openRoom(b, roomName)
    await waitConfirmed(b, 'Quick note 8')
    assert.equal(await b.locator('.unread-divider').count(), 0)
    await openRoom(b, 'Bob’s desk')
  })

  await t.test('read state follows bob’s other tab', async () => {
    const b = bob.page
    bob2 = await bob.context.newPage()
    await bob2.goto(`${base}/`)
    await bob2.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T })
    await sendText(alice.page, 'Anyone there?')
    await sendText(alice.page, 'Page 12 is great')
    await badge(b, roomName, 2)
    await badge(bob2, roomName, 2)
    await openRoom(bob2, roomName)
    await waitConfirmed(bob2, 'Page 12 is great')
    // the other tab hears of the marker (read_updated) and clears its badge without reloading
    await badge(b, roomName, 0)
    assert.doesNotMatch(await b.title(), /^\(/)
    await bob2.close()
    bob2 = null
  })

  await t.test('online dots follow bob’s page closing and coming back', async () => {
    const p = alice.page
    const panel = await membersPanel(p)
    const row = memberRow(panel, 'Bob')
    await row.locator('.presence-dot.on').waitFor({ timeout: T })
    await row.getByText('Online', { exact: true }).waitFor({ timeout: T })
    await shot(p, 'live-online-desktop')
    await bob.page.close()
    // a closed page closes its socket; a lost one would take the 25 s ping timeout
    await row.getByText('Offline', { exact: true }).waitFor({ timeout: 40000 })
    assert.equal(await row.locator('.presence-dot.on').count(), 0)
    bob.page = await bob.context.newPage()
    bob.page.consoleErrors = []
    bob.page.on('pageerror', (e) => bob.page.consoleErrors.push(String(e)))
    await bob.page.goto(`${base}/`)
    await row.getByText('Online', { exact: true }).waitFor({ timeout: T })
    await p.getByRole('button', { name: 'Close members' }).click()
  })

  await t.test('"is typing" shows under the composer and goes after 5 s', async () => {
    const b = bob.page
    await openRoom(b, roomName)
    const typedFrom = bob.tap.events.length
    const box = b.getByLabel(/^Message to /)
    await box.pressSequentially('I think the ending was', { delay: 120 }) // about 2.6 s of typing
    await typingLine(alice.page).filter({ hasText: /^Bob is typing…$/ }).waitFor({ timeout: T })
    assert.equal(await typingLine(b).textContent(), '', 'nobody is told of their own typing')
    await shot(alice.page, 'live-typing-desktop')
    const typed = countEvents(bob.tap, typedFrom, 'typing')
    assert.ok(typed.length >= 1 && typed.length <= 2, `${typed.length} typing events for 22 keystrokes`)
    assert.deepEqual(typed[0].payload, { roomId: typed[0].payload.roomId })
    assert.equal(String(typed[0].payload.roomId), roomId)

    // two, then three people typing
    const cara = await typist('Cara', code)
    const dan = await typist('Dan', code)
    await box.pressSequentially(' surprising', { delay: 60 })
    await cara.type()
    await typingLine(alice.page).filter({ hasText: /^(Bob and Cara|Cara and Bob) are typing…$/ }).waitFor({ timeout: T })
    await dan.type()
    await typingLine(alice.page).filter({ hasText: /^Several people are typing…$/ }).waitFor({ timeout: T })

    // nobody types any more: the line is empty within about 5 s
    const quiet = Date.now()
    await typingLine(alice.page).filter({ hasText: /typing/ }).waitFor({ state: 'detached', timeout: 10000 })
    assert.ok(Date.now() - quiet >= 2000, 'typing lasts a few seconds')
    // a message ends its author's typing at once
    await box.press('Enter')
    await waitConfirmed(alice.page, 'I think the ending was surprising')
    assert.equal(await typingLine(alice.page).textContent(), '')
  })

  let dmId
  await t.test('alice starts a direct conversation by name; errors are clear; bob opens the same one', async () => {
    const p = alice.page
    const open = async (page, name) => {
      await page.getByRole('button', { name: 'New message' }).click()
      await page.getByLabel('Username').fill(name)
      await page.getByRole('button', { name: 'Open conversation' }).click()
    }
    await open(p, 'nobody-by-that-name')
    const dialog = p.getByRole('dialog', { name: 'New direct message' })
    await dialog.getByRole('alert').filter({ hasText: /^Nobody has that username/ }).waitFor({ timeout: T })
    await dialog.getByLabel('Username').fill('alice')
    await dialog.getByRole('button', { name: 'Open conversation' }).click()
    await dialog.getByRole('alert').filter({ hasText: /^You cannot start a conversation with yourself/ }).waitFor({ timeout: T })
    await shot(p, 'live-dm-error-desktop')
    // usernames ignore case
    await dialog.getByLabel('Username').fill('BOB')
    await dialog.getByRole('button', { name: 'Open conversation' }).click()
    await dialog.waitFor({ state: 'detached', timeout: T })
    await p.getByRole('heading', { name: 'Bob', level: 2 }).waitFor({ timeout: T })
    dmId = decodeURIComponent(/#room=(.+)$/.exec(p.url())[1])
    assert.notEqual(dmId, roomId)
    await roomItem(p, 'Bob').getByText('Direct', { exact: true }).waitFor({ timeout: T })
    // no join code, no moderation in a conversation of two
    assert.equal(await p.getByRole('button', { name: 'Join code' }).count(), 0)
    const panel = await membersPanel(p)
    assert.equal(await panel.getByRole('button', { name: /^Manage / }).count(), 0)
    await p.getByRole('button', { name: 'Close members' }).click()
    await sendText(p, 'Hi Bob, a word in private')
    await waitConfirmed(p, 'Hi Bob, a word in private')
    await shot(p, 'live-dm-desktop')

    const b = bob.page
    await open(b, 'Alice')
    await b.getByRole('heading', { name: 'Alice', level: 2 }).waitFor({ timeout: T })
    assert.equal(decodeURIComponent(/#room=(.+)$/.exec(b.url())[1]), dmId, 'one room for the pair')
    await waitConfirmed(b, 'Hi Bob, a word in private')
    await roomItem(b, 'Alice').getByText('Direct', { exact: true }).waitFor({ timeout: T })
    await sendText(b, 'Hello Alice')
    await waitConfirmed(p, 'Hello Alice')
  })

  await t.test('alice blocks bob from his message’s menu: his messages are refused, clearly', async () => {
    const p = alice.page
    await openRoom(p, roomName)
    const m = p.locator('.messages .msg[data-seq]', { has: p.locator('.msg-text', { hasText: /^I think the ending was surprising$/ }) })
    await m.getByRole('button', { name: 'Bob: options' }).click()
    const menu = p.getByRole('menu', { name: 'Options for Bob' })
    await menu.getByRole('menuitem', { name: 'Block Bob' }).click()
    await menu.waitFor({ state: 'detached', timeout: T })
    await p.locator('.toast').filter({ hasText: /^You blocked Bob/ }).waitFor({ timeout: T })
    const { token } = await session(p)
    const blocks = (await call('GET', '/api/user/blocks', undefined, token)).blocks
    assert.deepEqual(
      blocks.map((x) => x.name),
      ['Bob'],
    )
    // the members panel's menu says the same
    const panel = await membersPanel(p)
    await memberRow(panel, 'Bob').getByRole('button', { name: 'Options for Bob' }).click()
    await p.getByRole('menu', { name: 'Options for Bob' }).getByRole('menuitem', { name: 'Unblock Bob' }).waitFor({ timeout: T })
    await p.keyboard.press('Escape')
    await p.getByRole('menu').waitFor({ state: 'detached', timeout: T })
    await p.getByRole('button', { name: 'Close members' }).click()

    const b = bob.page
    await sendText(b, 'Are you still there?')
    const failed = b.locator('.messages .msg[data-status="failed"]').filter({ hasText: 'Are you still there?' })
    await failed.getByRole('alert').filter({ hasText: 'Not sent: You cannot message this person: they have blocked you.' }).waitFor({ timeout: T })
    await shot(b, 'live-blocked-desktop')
    // nor can he open the conversation again
    await b.getByRole('button', { name: 'New message' }).click()
    await b.getByLabel('Username').fill('alice')
    await b.getByRole('button', { name: 'Open conversation' }).click()
    const dialog = b.getByRole('dialog', { name: 'New direct message' })
    await dialog.getByRole('alert').filter({ hasText: /they have blocked you/ }).waitFor({ timeout: T })
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    // the room they share is not affected
    await openRoom(b, roomName)
    await sendText(b, 'Still here in the club')
    await waitConfirmed(p, 'Still here in the club')
  })

  await t.test('alice unblocks bob from her list of blocked people; his retry arrives', async () => {
    const p = alice.page
    await p.getByRole('button', { name: 'Account' }).click()
    const dialog = p.getByRole('dialog', { name: 'Your account' })
    const list = dialog.getByRole('list', { name: 'Blocked people' })
    await list.getByText('Bob', { exact: true }).waitFor({ timeout: T })
    await shot(p, 'live-blocked-list-desktop')
    await list.getByRole('button', { name: 'Unblock Bob' }).click()
    await dialog.getByText('You have blocked nobody.').waitFor({ timeout: T })
    await dialog.getByRole('button', { name: 'Close' }).click()
    const { token } = await session(p)
    assert.deepEqual((await call('GET', '/api/user/blocks', undefined, token)).blocks, [])

    const b = bob.page
    await openRoom(b, 'Alice')
    const failed = b.locator('.messages .msg[data-status="failed"]').filter({ hasText: 'Are you still there?' })
    await failed.getByRole('button', { name: 'Retry' }).click()
    await waitConfirmed(b, 'Are you still there?')
    await openRoom(p, 'Bob')
    await waitConfirmed(p, 'Are you still there?')
  })

  await t.test('on a phone: the list keeps its badges and tags within the screen', async () => {
    // the desktop page, which has the conversation open, would read it at once
    const errors = [...alice.page.consoleErrors, ...(bob.page.consoleErrors || [])]
    await bob.page.close()
    const phone = await newUserPage(PHONE, { timezoneId: 'America/Chicago' })
    const b = phone.page
    // the socket's handshake and the list's previews are held until alice's message is stored:
    // it comes after the room list the page counted from, and the preview shows it uncounted
    let release
    const held = new Promise((resolve) => (release = resolve))
    const hold = async (route) => {
      await held
      await route.continue()
    }
    await b.route('**/socket.io/**', hold)
    await b.route('**/api/room/*/messages*', hold)
    await b.getByRole('tab', { name: 'Log in' }).click()
    await b.getByLabel('Username').fill('Bob')
    await b.getByLabel('Password').fill(password)
    await b.getByRole('button', { name: 'Log in', exact: true }).click()
    await b.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T })
    await roomItem(b, 'Alice').waitFor({ timeout: T })
    await sendText(alice.page, 'One more thing')
    await waitConfirmed(alice.page, 'One more thing')
    release()
    await badge(b, 'Alice', 1)
    await roomItem(b, 'Alice').getByText('Direct', { exact: true }).waitFor({ timeout: T })
    const width = await b.evaluate(() => document.documentElement.scrollWidth)
    assert.ok(width <= PHONE.width, `the page is ${width} px wide on a ${PHONE.width} px screen`)
    await shot(b, 'live-list-phone')
    await openRoom(b, 'Alice')
    await waitConfirmed(b, 'One more thing')
    await b.getByRole('button', { name: 'Options for Alice' }).waitFor({ timeout: T })
    const chatWidth = await b.evaluate(() => document.documentElement.scrollWidth)
    assert.ok(chatWidth <= PHONE.width, `the chat is ${chatWidth} px wide on a ${PHONE.width} px screen`)
    await shot(b, 'live-dm-phone')
    // a conversation someone else opens with bob shows up on his page by itself
    const erin = await call('POST', '/api/register', { username: 'Erin', password })
    const { room: withBob } = await call('POST', '/api/dm', { username: 'bob' }, erin.token)
    assert.equal(withBob.kind, 'direct')
    await b.getByRole('button', { name: 'Back to rooms' }).click()
    await roomItem(b, 'Erin').getByText('Direct', { exact: true }).waitFor({ timeout: 45000 })
    assert.deepEqual([...errors, ...b.consoleErrors], [])
  })
})
