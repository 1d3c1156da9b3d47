// What the browser tests share: the real chatroom server binary started on a throwaway data
// folder and serving web/dist, Debian's headless Chromium driven by playwright-core, and the
// steps a person takes on the page. Each test file runs in its own process (node --test), so
// the one server and the one browser here are that file's.
//
//   CHATROOM_BIN  server binary (default ../../target/debug/chatroom; see ../js/server.mjs)
//   CHROMIUM      browser (default /usr/bin/chromium)
//   SCREENSHOTS   where screenshots go (default ../../test-output/screenshots)
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
export const WEB = path.resolve(here, '../../web/dist')
export const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium'
export const SHOTS = path.resolve(here, process.env.SCREENSHOTS || '../../test-output/screenshots')
export const DESKTOP = { width: 1280, height: 800 }
export const PHONE = { width: 390, height: 844 }
export const T = 20000 // how long to wait for something to show up

/* ------------------------------------------------------------------ server */

let dataDir
let server = null
export let base = ''
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

export async function stopServer() {
  if (!server) return
  const child = server
  server = null
  if (child.exitCode != null || child.signalCode != null) return
  const gone = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL') // the contract says acked messages survive even this
  await gone
}

export async function restartServer() {
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

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/* ------------------------------------------------------------------ browser helpers */

let browser
const contexts = []

// Sits on the page's Socket.IO WebSocket: records what the page sends, can answer one chosen
// message with a refusal, as the server would when rate-limited, and can drop the next event
// of a chosen name, as a connection lost before it arrives would.
export function tapSocket(context) {
  const tap = { sent: [], events: [], refuse: null, swallow: null }
  // one Socket.IO packet from the page (an Engine.IO message without its leading 4):
  // returns the packet to answer with instead of passing it on, or null
  const seen = (packet) => {
    const m = /^2\/chatroom,(\d*)(\[.*)$/s.exec(packet)
    if (!m) return null
    const [event, payload] = JSON.parse(m[2])
    tap.events.push({ event, payload })
    if (event === tap.swallow) {
      tap.swallow = null
      return ''
    }
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
        if (reply === '') return
        if (reply) return ws.send(`4${reply}`)
      }
      server.send(frame)
    })
  })
  return Promise.all([polling, websocket]).then(() => tap)
}

export async function newUserPage(viewport, { timezoneId, tap = false } = {}) {
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

export async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true })
  const file = path.join(SHOTS, `${name}.png`)
  await page.screenshot({ path: file })
  return file
}

export async function register(page, name, password) {
  await page.getByRole('tab', { name: 'Register' }).click()
  await page.getByLabel('Username').fill(name)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Create account' }).click()
}

export async function sendText(page, text) {
  const box = page.getByLabel(/^Message to /)
  await box.fill(text)
  await box.press('Enter')
}

// The texts of the confirmed messages in the open chat, in order, with their seqs.
export async function confirmed(page) {
  return page.$$eval('.messages .msg[data-seq]', (els) =>
    // a message being edited shows its text in a textarea instead
    els.map((e) => ({ seq: Number(e.dataset.seq), text: e.querySelector('.msg-text')?.textContent ?? e.querySelector('textarea')?.value })),
  )
}

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

let failures = 0
export async function waitConfirmed(page, text) {
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

export function assertNoDuplicates(list, label) {
  const seqs = list.map((m) => m.seq)
  assert.equal(new Set(seqs).size, seqs.length, `${label}: a seq is shown twice: ${seqs.join(',')}`)
  const sorted = [...seqs].sort((a, b) => a - b)
  assert.deepEqual(seqs, sorted, `${label}: messages are out of order`)
}

// A small real PNG (a coloured square), for the room avatar upload.
export function makePng(size = 48) {
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

export async function setUp() {
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
}

// A REST call outside the browser; asserts a 2xx and answers `data`.
export async function call(method, path, body, token) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const json = await res.json().catch(() => null)
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`)
  return json && json.data
}

// The token and user id the page keeps.
export const session = async (page) => ({
  token: await page.evaluate(() => localStorage.getItem('chatroom.token')),
  userId: await page.evaluate(() => JSON.parse(localStorage.getItem('chatroom.user')).userId),
})

const scripts = []

// A member that is a script (socket.io-client, as a bot would be): registered, joined to the
// room of `code`, connected; `ack` emits and asserts an ok ack. Closed by tearDown.
export async function scriptMember(name, password, code) {
  const me = await call('POST', '/api/register', { username: name, password })
  const { room } = await call('POST', '/api/room/join', { roomIdHash: code }, me.token)
  const sock = io(`${base}/chatroom`, { auth: { token: me.token }, transports: ['websocket'] })
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve)
    sock.once('connect_error', reject)
  })
  scripts.push(sock)
  const ack = async (event, payload) => {
    const r = await sock.timeout(30000).emitWithAck(event, payload)
    assert.ok(r && r.ok, `${event}: ${JSON.stringify(r)}`)
    return r
  }
  return { me, room, sock, ack }
}

export async function tearDown() {
  for (const s of scripts.splice(0)) s.close()
  for (const c of contexts) await c.close().catch(() => {})
  if (browser) await browser.close().catch(() => {})
  await stopServer()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
}
