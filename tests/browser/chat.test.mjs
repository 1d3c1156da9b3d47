// End-to-end test of the web client (web/dist) against the real chatroom server binary,
// driven through Debian's headless Chromium with playwright-core.
//
//   CHATROOM_BIN  server binary (default ../../target/debug/chatroom; see ../js/server.mjs)
//   CHROMIUM      browser (default /usr/bin/chromium)
//   SCREENSHOTS   where screenshots go (default ../../test-output/screenshots)
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { io } from 'socket.io-client'
import { BIN, launch } from '../js/server.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const WEB = path.resolve(here, '../../web/dist')
const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium'
const SHOTS = path.resolve(here, process.env.SCREENSHOTS || '../../test-output/screenshots')
const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const T = 20000 // how long to wait for something to show up

/* ------------------------------------------------------------------ server */

let dataDir
let server = null
let base = ''
let port = 0

// the same start as the end-to-end suites (tests/js/server.mjs); no send limit: one step posts
// over a thousand messages at once
async function startServer(listen) {
  const run = launch(dataDir, ['--web-dir', WEB], {
    listen,
    env: { RUST_LOG: process.env.RUST_LOG || 'warn', CHATROOM_SEND_RATE_LIMIT: '0' },
  })
  return { child: run.proc, url: await run.ready }
}

async function stopServer() {
  if (!server) return
  const child = server
  server = null
  if (child.exitCode != null || child.signalCode != null) return
  const gone = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL') // the contract says acked messages survive even this
  await gone
}

async function restartServer() {
  await stopServer()
  // same port, so the pages keep their origin; the port may take a moment to be free
  let lastErr
  for (let i = 0; i < 40; i++) {
    try {
      const s = await startServer(`127.0.0.1:${port}`)
      server = s.child
      return
    } catch (e) {
      lastErr = e
      await sleep(250)
    }
  }
  throw lastErr
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/* ------------------------------------------------------------------ browser helpers */

let browser
const contexts = []

// Sits on the page's Socket.IO WebSocket: records what the page sends, and can answer one
// chosen message with a refusal, as the server would when rate-limited.
function tapSocket(context) {
  const tap = { sent: [], events: [], refuse: null }
  // one Socket.IO packet from the page (an Engine.IO message without its leading 4):
  // returns the packet to answer with instead of passing it on, or null
  const seen = (packet) => {
    const m = /^2\/chatroom,(\d*)(\[.*)$/s.exec(packet)
    if (!m) return null
    const [event, payload] = JSON.parse(m[2])
    tap.events.push({ event, payload })
    if (event !== 'user_send_message') return null
    tap.sent.push(payload)
    if (tap.refuse && payload.message === tap.refuse && m[1]) {
      tap.refuse = null
      const error = { code: 'rate_limited', message: 'too many messages' }
      return `3/chatroom,${m[1]}${JSON.stringify([{ ok: false, error }])}`
    }
    return null
  }
  // the HTTP long-polling transport (used first on every connect): record only
  const polling = context.route(/\/socket\.io\/.*transport=polling/, async (route) => {
    const req = route.request()
    if (req.method() === 'POST') {
      for (const frame of (req.postData() || '').split('\x1e')) if (frame.startsWith('4')) seen(frame.slice(1))
    }
    await route.continue().catch(() => {})
  })
  // the WebSocket transport: record, and refuse the chosen message
  const websocket = context.routeWebSocket(/\/socket\.io\//, (ws) => {
    const server = ws.connectToServer()
    ws.onMessage((frame) => {
      if (typeof frame === 'string' && frame.startsWith('4')) {
        const reply = seen(frame.slice(1))
        if (reply) return ws.send(`4${reply}`)
      }
      server.send(frame)
    })
  })
  return Promise.all([polling, websocket]).then(() => tap)
}

async function newUserPage(viewport, { timezoneId, tap = false } = {}) {
  const context = await browser.newContext({
    viewport,
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId,
    isMobile: viewport.width < 700,
    hasTouch: viewport.width < 700,
  })
  contexts.push(context)
  const origin = base
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin }).catch(() => {})
  const socketTap = tap ? await tapSocket(context) : null
  const page = await context.newPage()
  page.tap = socketTap
  page.alerts = []
  page.consoleErrors = []
  page.on('dialog', async (d) => {
    page.alerts.push(d.message())
    await d.dismiss()
  })
  page.on('pageerror', (e) => page.consoleErrors.push(String(e)))
  page.on('console', (m) => {
    if (process.env.SHOW_CONSOLE && ['error', 'warning'].includes(m.type())) console.log(`[browser ${m.type()}] ${m.text()}`)
  })
  await page.goto(`${base}/`)
  return { context, page, tap: socketTap }
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true })
  const file = path.join(SHOTS, `${name}.png`)
  await page.screenshot({ path: file })
  return file
}

async function register(page, name, password) {
  await page.getByRole('tab', { name: 'Register' }).click()
  await page.getByLabel('Username').fill(name)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Create account' }).click()
}

async function sendText(page, text) {
  const box = page.getByLabel(/^Message to /)
  await box.fill(text)
  await box.press('Enter')
}

// The texts of the confirmed messages in the open chat, in order, with their seqs.
async function confirmed(page) {
  return page.$$eval('.messages .msg[data-seq]', (els) =>
    els.map((e) => ({ seq: Number(e.dataset.seq), text: e.querySelector('.msg-text').textContent })),
  )
}

function msgLocator(page, text) {
  return page.locator('.messages .msg .msg-text', { hasText: text }).filter({ hasText: new RegExp(`^${escapeRe(text)}$`) })
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

let failures = 0
async function waitConfirmed(page, text) {
  try {
    await page
      .locator('.messages .msg[data-status="sent"] .msg-text')
      .filter({ hasText: new RegExp(`^${escapeRe(text)}$`) })
      .first()
      .waitFor({ timeout: T })
  } catch (e) {
    // say what the page shows instead, for whoever reads the CI log
    const list = await confirmed(page).catch(() => [])
    const banner = await page.locator('.banner').allTextContents().catch(() => [])
    const name = `failure-${++failures}`
    await shot(page, name).catch(() => {})
    e.message += `\nwaiting for ${JSON.stringify(text)}; the page shows ${list.length} messages, the last: ${JSON.stringify(list.slice(-3))}; banner: ${JSON.stringify(banner)}; screenshot ${name}.png`
    throw e
  }
}

function assertNoDuplicates(list, label) {
  const seqs = list.map((m) => m.seq)
  assert.equal(new Set(seqs).size, seqs.length, `${label}: a seq is shown twice: ${seqs.join(',')}`)
  const sorted = [...seqs].sort((a, b) => a - b)
  assert.deepEqual(seqs, sorted, `${label}: messages are out of order`)
}

// A small real PNG (a coloured square), for the room avatar upload.
function makePng(size = 48) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    return c >>> 0
  })
  const crc = (buf) => {
    let c = 0xffffffff
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8)
    return (c ^ 0xffffffff) >>> 0
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const td = Buffer.concat([Buffer.from(type), data])
    const c = Buffer.alloc(4)
    c.writeUInt32BE(crc(td))
    return Buffer.concat([len, td, c])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(size, 0)
  ihdr.writeUInt32BE(size, 4)
  ihdr[8] = 8 // bit depth
  ihdr[9] = 2 // RGB
  const rows = []
  for (let y = 0; y < size; y++) {
    const row = [0]
    for (let x = 0; x < size; x++) {
      const d = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 2.6) ** 2
      row.push(d ? 255 : 20, d ? 180 : 160, d ? 40 : 140)
    }
    rows.push(Buffer.from(row))
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

/* ------------------------------------------------------------------ setup */

before(async () => {
  assert.ok(fs.existsSync(BIN), `server binary not found at ${BIN} (build it, or set CHATROOM_BIN)`)
  assert.ok(fs.existsSync(path.join(WEB, 'index.html')), `web client not built: run "npm ci && npm run build" in web/`)
  assert.ok(fs.existsSync(BROWSER), `Chromium not found at ${BROWSER} (apt-get install chromium)`)
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatroom-browser-'))
  const s = await startServer('127.0.0.1:0')
  server = s.child
  base = s.url
  port = Number(new URL(base).port)
  browser = await chromium.launch({
    executablePath: BROWSER,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
})

after(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  if (browser) await browser.close().catch(() => {})
  await stopServer()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

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
    // alice sees bob come in
    await alice.page.locator('.notice', { hasText: `${bobName} entered the room` }).first().waitFor({ timeout: T })
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
