// End-to-end test of the web client's messages that change (replies and their quotes, edits,
// deletions, reactions, the server's refusals, resume by version) against the real chatroom
// server, in headless Chromium (see harness.mjs). Alice owns the room, Bob joins and becomes its
// admin, Cara is a member on a phone; Dan is a script (socket.io-client) that fills the room.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { DESKTOP, PHONE, T, sleep, setUp, tearDown, newUserPage, shot, register, sendText, waitConfirmed, escapeRe, call, session, scriptMember } from './harness.mjs'

before(setUp)
after(tearDown)

const password = 'correct horse battery'

/* ------------------------------------------------------------------ outside the browser */

// A member that is a script: posts and reacts over Socket.IO, as a bot would.
async function bot(name, code) {
  const { room, ack } = await scriptMember(name, password, code)
  return {
    post: async (from, to, text) => {
      for (let i = from; i <= to; i += 20) {
        const batch = []
        for (let k = i; k <= Math.min(to, i + 19); k++) {
          batch.push(ack('user_send_message', { roomId: room.id, id: `${name}-${k}`, message: `${text} ${k}`, type: 'input' }))
        }
        await Promise.all(batch)
      }
    },
    react: (seq, emoji) => ack('react', { roomId: room.id, seq, emoji, on: true }),
  }
}

/* ------------------------------------------------------------------ steps on the page */

// The confirmed message whose own text (not a quote of it) is exactly `text`.
function msg(page, text) {
  return page.locator('.messages .msg[data-seq]', {
    has: page.locator('.msg-text', { hasText: new RegExp(`^${escapeRe(text)}$`) }),
  })
}
const bySeq = (page, seq) => page.locator(`.messages .msg[data-seq="${seq}"]`)
const seqOf = async (m) => Number(await m.getAttribute('data-seq', { timeout: T }))

// A message's actions show on hover, or on a phone after a tap on the message.
async function reveal(m) {
  await m.scrollIntoViewIfNeeded({ timeout: T })
  if (m.page().viewportSize().width >= 700) return m.locator('.msg-foot').hover()
  if (!(await m.evaluate((e) => e.classList.contains('selected')))) await m.locator('.msg-foot').tap()
  await m.and(m.page().locator('.msg.selected')).waitFor({ timeout: T })
}

async function act(m, name) {
  await reveal(m)
  await m.getByRole('button', { name, exact: true }).click({ timeout: T })
}

async function actions(m) {
  await reveal(m)
  const group = m.getByRole('group', { name: /^Actions for the message from / })
  if (!(await group.count())) return []
  return group.getByRole('button').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')))
}

const chip = (m, emoji, count) => m.getByRole('button', { name: `${emoji} ${count}`, exact: true })

async function whoReacted(m, emoji, count) {
  const c = chip(m, emoji, count)
  await c.waitFor({ timeout: T })
  await c.hover()
  const tip = m.locator('.reaction-wrap', { has: m.page().getByRole('button', { name: `${emoji} ${count}`, exact: true }) }).getByRole('tooltip')
  await tip.waitFor({ state: 'visible', timeout: T })
  return tip.textContent()
}

async function reactWith(page, m, emoji) {
  await act(m, 'Add reaction')
  const picker = m.getByRole('group', { name: 'Add a reaction' })
  await picker.waitFor({ timeout: T })
  await picker.getByRole('button', { name: `React with ${emoji}` }).click()
  await picker.waitFor({ state: 'detached', timeout: T })
}

async function reactOther(m, text) {
  await act(m, 'Add reaction')
  const picker = m.getByRole('group', { name: 'Add a reaction' })
  await picker.getByLabel('Other reaction').fill(text)
  await picker.getByRole('button', { name: 'Add', exact: true }).click()
  return picker
}

// Scrolls a page's timeline up, history loading as it goes, until `text` is there.
async function scrollUpTo(page, text) {
  const log = page.getByRole('log', { name: 'Messages' })
  for (let i = 0; i < 60 && !(await msg(page, text).count()); i++) {
    await log.evaluate((el) => (el.scrollTop = 0))
    await sleep(250)
  }
  await msg(page, text).waitFor({ timeout: T })
}

// Whether a message is inside the visible part of its scrolled timeline.
async function inView(page, m) {
  const box = await m.boundingBox()
  const view = await page.getByRole('log', { name: 'Messages' }).boundingBox()
  return !!box && !!view && box.y >= view.y - 1 && box.y + Math.min(box.height, 40) <= view.y + view.height + 1
}

const sentEvents = (tap, from, event) => tap.events.slice(from).filter((e) => e.event === event)

/* ------------------------------------------------------------------ the story */

test('messages that change, on the web page: replies, edits, deletions, reactions', async (t) => {
  const roomName = 'Garden club'
  let alice, bob, cara, dan, code, roomId

  await t.test('alice creates a room; bob and cara (phone) join it; dan fills it', async () => {
    alice = await newUserPage(DESKTOP, { timezoneId: 'Europe/Paris', tap: true })
    bob = await newUserPage(DESKTOP, { timezoneId: 'America/Chicago', tap: true })
    cara = await newUserPage(PHONE, { timezoneId: 'Asia/Kolkata', tap: true })
    for (const [who, name] of [
      [alice, 'Alice'],
      [bob, 'Bob'],
      [cara, 'Cara'],
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
    for (const who of [bob, cara]) {
      await who.page.getByRole('button', { name: 'Join with code' }).click()
      await who.page.getByLabel('Join code').fill(code)
      await who.page.getByRole('button', { name: 'Join room' }).click()
      await who.page.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    }
    await sendText(p, 'Welcome to the garden club')
    await sendText(p, 'Who brings the seeds?')
    await waitConfirmed(cara.page, 'Who brings the seeds?')
    dan = await bot('Dan', code)
    await dan.post(1, 40, 'Weather report')
    for (const who of [alice, bob, cara]) await waitConfirmed(who.page, 'Weather report 40')
  })

  await t.test('bob replies to a message above: both pages show the quote; a click on it scrolls there', async () => {
    const p = bob.page
    const original = msg(p, 'Who brings the seeds?')
    const seq = await seqOf(original)
    const tapFrom = bob.tap.events.length
    await act(original, 'Reply')
    const bar = p.getByRole('group', { name: 'Replying' })
    await bar.getByText('Replying to Alice').waitFor({ timeout: T })
    await bar.getByText('Who brings the seeds?').waitFor({ timeout: T })
    await shot(p, 'messages-reply-composer-desktop')
    // Escape, or the cancel button, drops the reply and keeps what was typed
    const box = p.getByLabel(/^Message to /)
    await box.fill('draft')
    await box.press('Escape')
    await bar.waitFor({ state: 'detached', timeout: T })
    assert.equal(await box.inputValue(), 'draft')
    await act(original, 'Reply')
    await bar.getByRole('button', { name: 'Cancel reply' }).click()
    await bar.waitFor({ state: 'detached', timeout: T })
    await act(original, 'Reply')
    await sendText(p, 'I will bring them')
    await bar.waitFor({ state: 'detached', timeout: T })
    const sent = bob.tap.sent.filter((s) => s.message === 'I will bring them')
    assert.equal(sent.length, 1)
    assert.equal(sent[0].replyTo, seq)
    assert.equal(sentEvents(bob.tap, tapFrom, 'user_send_message').length, 1, 'the cancelled replies sent nothing')

    for (const who of [bob, alice, cara]) {
      await waitConfirmed(who.page, 'I will bring them')
      const quote = msg(who.page, 'I will bring them').getByRole('button', { name: /^In reply to Alice: Who brings the seeds\?/ })
      await quote.waitFor({ timeout: T })
    }
    await shot(alice.page, 'messages-reply-desktop')
    await shot(cara.page, 'messages-reply-phone')
    // the original is out of sight, 40 messages up; the quote brings it into view, marked
    const a = alice.page
    const target = bySeq(a, seq)
    assert.equal(await inView(a, target), false, 'the original starts out of view')
    await msg(a, 'I will bring them').getByRole('button', { name: /^In reply to Alice/ }).click()
    await a.locator(`.messages .msg.highlight[data-seq="${seq}"]`).waitFor({ timeout: T })
    assert.equal(await inView(a, target), true, 'the quoted message is scrolled into view')
    await shot(a, 'messages-quote-jump-desktop')
  })

  await t.test('alice edits her message in place: Escape cancels, Enter saves; the others see it live', async () => {
    const p = alice.page
    await sendText(p, 'The meeting is on Tuesday')
    await waitConfirmed(bob.page, 'The meeting is on Tuesday')
    const m = msg(p, 'The meeting is on Tuesday')
    const seq = await seqOf(m)
    const tapFrom = alice.tap.events.length
    await act(m, 'Edit')
    const box = bySeq(p, seq).getByLabel('Edit message')
    await box.waitFor({ timeout: T })
    assert.equal(await box.inputValue(), 'The meeting is on Tuesday')
    await box.fill('The meeting is on Friday')
    await box.press('Escape')
    await box.waitFor({ state: 'detached', timeout: T })
    await msg(p, 'The meeting is on Tuesday').waitFor({ timeout: T })
    assert.equal(sentEvents(alice.tap, tapFrom, 'edit_message').length, 0, 'a cancelled edit sends nothing')

    await act(bySeq(p, seq), 'Edit')
    await box.fill('The meeting is on Wednesday')
    await shot(p, 'messages-editing-desktop')
    await box.press('Enter')
    await msg(p, 'The meeting is on Wednesday').waitFor({ timeout: T })
    const edits = sentEvents(alice.tap, tapFrom, 'edit_message')
    assert.equal(edits.length, 1)
    assert.deepEqual(edits[0].payload, { roomId, seq, message: 'The meeting is on Wednesday' })
    for (const who of [alice, bob, cara]) {
      const shown = bySeq(who.page, seq)
      await shown.locator('.msg-text', { hasText: /^The meeting is on Wednesday$/ }).waitFor({ timeout: T })
      const mark = shown.locator('time.edited')
      await mark.waitFor({ timeout: T })
      assert.equal(await mark.textContent(), 'edited')
      assert.match(await mark.getAttribute('title'), /^Edited \w+/)
      assert.ok(!Number.isNaN(Date.parse(await mark.getAttribute('datetime'))))
    }
    await shot(bob.page, 'messages-edited-desktop')
    // from the keyboard: Arrow Up in the empty composer edits her newest message
    const composer = p.getByLabel(/^Message to /)
    await composer.fill('')
    await composer.press('ArrowUp')
    await box.waitFor({ timeout: T })
    assert.equal(await box.inputValue(), 'The meeting is on Wednesday')
    await box.press('Escape')
    await box.waitFor({ state: 'detached', timeout: T })
    assert.equal(await composer.evaluate((el) => el === document.activeElement), true, 'the focus is back in the composer')
    // nobody edits someone else's message: bob has no Edit on it
    assert.ok(!(await actions(bySeq(bob.page, seq))).includes('Edit'))
  })

  await t.test('bob deletes his own message after a confirmation: the placeholder on every page', async () => {
    const p = bob.page
    const m = msg(p, 'I will bring them')
    const seq = await seqOf(m)
    await act(m, 'Delete')
    let dialog = p.getByRole('dialog', { name: 'Delete message' })
    await dialog.getByText('Delete your message?').waitFor({ timeout: T })
    await shot(p, 'messages-delete-confirm-desktop')
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    await dialog.waitFor({ state: 'detached', timeout: T })
    await msg(alice.page, 'I will bring them').waitFor({ timeout: T })
    await act(bySeq(p, seq), 'Delete')
    dialog = p.getByRole('dialog', { name: 'Delete message' })
    await dialog.getByRole('button', { name: 'Yes, delete' }).click()
    await dialog.waitFor({ state: 'detached', timeout: T })
    for (const who of [bob, alice, cara]) {
      const shown = bySeq(who.page, seq)
      await shown.locator('.msg-text', { hasText: /^Message deleted$/ }).waitFor({ timeout: T })
      assert.equal(await shown.locator('.quote').count(), 0, 'a placeholder quotes nothing')
    }
    await shot(cara.page, 'messages-deleted-phone')
    assert.deepEqual(await actions(bySeq(p, seq)), [], 'a placeholder has nothing left to do')
  })

  await t.test('bob, made an admin, deletes a member’s message but not the owner’s', async () => {
    const owner = await session(alice.page)
    const b = await session(bob.page)
    await call('POST', `/api/room/${encodeURIComponent(roomId)}/members/${encodeURIComponent(b.userId)}/role`, { role: 'admin' }, owner.token)
    const p = bob.page
    await p.locator('.messages .notice', { hasText: 'You are now an admin' }).waitFor({ timeout: T })
    await sendText(cara.page, 'Cheap pills here')
    await waitConfirmed(p, 'Cheap pills here')
    const spam = msg(p, 'Cheap pills here')
    const seq = await seqOf(spam)
    assert.ok(!(await actions(msg(p, 'The meeting is on Wednesday'))).includes('Delete'), 'an admin does not delete the owner’s message')
    assert.ok(!(await actions(spam)).includes('Edit'), 'an admin does not edit a member’s message')
    await act(spam, 'Delete')
    const dialog = p.getByRole('dialog', { name: 'Delete message' })
    await dialog.getByText('Delete Cara’s message?').waitFor({ timeout: T })
    await dialog.getByRole('button', { name: 'Yes, delete' }).click()
    await dialog.waitFor({ state: 'detached', timeout: T })
    for (const who of [cara, alice]) await bySeq(who.page, seq).locator('.msg-text', { hasText: /^Message deleted$/ }).waitFor({ timeout: T })
    await shot(cara.page, 'messages-admin-deleted-phone')
  })

  await t.test('reactions: counts and who reacted, live on the other pages, toggled by a click', async () => {
    const a = alice.page
    const b = bob.page
    const text = 'The meeting is on Wednesday'
    await reactWith(b, msg(b, text), '👍')
    const mine = chip(msg(b, text), '👍', 1)
    await mine.waitFor({ timeout: T })
    assert.equal(await mine.getAttribute('aria-pressed'), 'true')
    const theirs = chip(msg(a, text), '👍', 1)
    await theirs.waitFor({ timeout: T })
    assert.equal(await theirs.getAttribute('aria-pressed'), 'false')
    assert.equal(await whoReacted(msg(a, text), '👍', 1), 'Bob reacted with 👍')
    // alice adds hers by clicking the same reaction
    await theirs.click()
    assert.equal(await whoReacted(msg(a, text), '👍', 2), 'Bob and you reacted with 👍')
    assert.equal(await whoReacted(msg(b, text), '👍', 2), 'You and Alice reacted with 👍')
    assert.equal(await whoReacted(msg(cara.page, text), '👍', 2), 'Bob and Alice reacted with 👍')
    await shot(a, 'messages-reactions-desktop')
    // cara, on her phone, reacts with text of her own; one with a space never leaves the page
    const c = cara.page
    const tapFrom = cara.tap.events.length
    const picker = await reactOther(msg(c, text), 'two words')
    await picker.getByRole('alert').filter({ hasText: 'A reaction has no spaces' }).waitFor({ timeout: T })
    assert.equal(sentEvents(cara.tap, tapFrom, 'react').length, 0)
    await shot(c, 'messages-picker-phone')
    await picker.getByLabel('Other reaction').fill(':+1:')
    await picker.getByRole('button', { name: 'Add', exact: true }).click()
    await chip(msg(a, text), ':+1:', 1).waitFor({ timeout: T })
    assert.equal(await whoReacted(msg(a, text), ':+1:', 1), 'Cara reacted with :+1:')
    // toggled off: the count falls, and an emoji nobody is left on disappears
    await chip(msg(b, text), '👍', 2).click()
    await chip(msg(a, text), '👍', 1).waitFor({ timeout: T })
    assert.equal(await whoReacted(msg(a, text), '👍', 1), 'You reacted with 👍')
    await chip(msg(a, text), '👍', 1).click()
    await msg(b, text).locator('.reaction', { hasText: '👍' }).waitFor({ state: 'detached', timeout: T })
    await msg(c, text).locator('.reaction', { hasText: '👍' }).waitFor({ state: 'detached', timeout: T })
    const reacts = sentEvents(alice.tap, 0, 'react').map((e) => e.payload)
    assert.deepEqual(
      reacts.map((r) => [r.emoji, r.on]),
      [
        ['👍', true],
        ['👍', false],
      ],
    )
  })

  await t.test('a reply to a message loaded on scroll; a click on its quote loads history', async () => {
    await dan.post(41, 110, 'Weather report')
    await waitConfirmed(cara.page, 'Weather report 110')
    const c = cara.page
    const b = bob.page
    // a fresh page holds only the newest page of history: the welcome is far above
    for (const p of [c, b]) {
      await p.reload()
      await waitConfirmed(p, 'Weather report 110')
      assert.equal(await msg(p, 'Welcome to the garden club').count(), 0)
    }
    await scrollUpTo(c, 'Welcome to the garden club')
    const original = msg(c, 'Welcome to the garden club')
    const seq = await seqOf(original)
    await act(original, 'Reply')
    await c.getByRole('group', { name: 'Replying' }).getByText('Welcome to the garden club').waitFor({ timeout: T })
    await sendText(c, 'Thanks for the welcome')
    await waitConfirmed(c, 'Thanks for the welcome')
    const sent = cara.tap.sent.find((s) => s.message === 'Thanks for the welcome')
    assert.equal(sent.replyTo, seq)

    await waitConfirmed(b, 'Thanks for the welcome')
    assert.equal(await bySeq(b, seq).count(), 0, 'the welcome is not loaded yet')
    // the quote reads the answered message over REST
    const quote = msg(b, 'Thanks for the welcome').getByRole('button', { name: /^In reply to Alice: Welcome to the garden club/ })
    await quote.waitFor({ timeout: T })
    await shot(b, 'messages-quote-of-older-desktop')
    await quote.click()
    await b.locator(`.messages .msg.highlight[data-seq="${seq}"]`).waitFor({ timeout: T })
    assert.equal(await inView(b, bySeq(b, seq)), true, 'the answered message is scrolled into view')
    await shot(b, 'messages-quote-loaded-history-desktop')
    await b.getByRole('log', { name: 'Messages' }).evaluate((el) => (el.scrollTop = el.scrollHeight))
  })

  await t.test('bob misses edits, deletions and reactions while offline; back online he has them', async () => {
    const b = bob.page
    const eventsBefore = bob.tap.events.length
    await bob.context.setOffline(true)
    await b.getByText('You are offline').waitFor({ timeout: T })
    const a = alice.page
    await sendText(a, 'Bring gloves')
    await waitConfirmed(cara.page, 'Bring gloves')
    const gloves = msg(a, 'Bring gloves')
    const seq = await seqOf(gloves)
    await act(gloves, 'Edit')
    const box = bySeq(a, seq).getByLabel('Edit message')
    await box.fill('Bring gloves and a hat')
    await box.press('Enter')
    await msg(cara.page, 'Bring gloves and a hat').waitFor({ timeout: T })
    await reactWith(cara.page, msg(cara.page, 'Bring gloves and a hat'), '🎉')
    const thanks = msg(a, 'Thanks for the welcome')
    const thanksSeq = await seqOf(thanks)
    await act(msg(cara.page, 'Thanks for the welcome'), 'Delete')
    await cara.page.getByRole('dialog', { name: 'Delete message' }).getByRole('button', { name: 'Yes, delete' }).click()
    await bySeq(a, thanksSeq).locator('.msg-text', { hasText: /^Message deleted$/ }).waitFor({ timeout: T })

    await bob.context.setOffline(false)
    await msg(b, 'Bring gloves and a hat').locator('time.edited').waitFor({ timeout: T })
    await chip(msg(b, 'Bring gloves and a hat'), '🎉', 1).waitFor({ timeout: T })
    await bySeq(b, thanksSeq).locator('.msg-text', { hasText: /^Message deleted$/ }).waitFor({ timeout: T })
    const rejoin = bob.tap.events.slice(eventsBefore).find((e) => e.event === 'join_all')
    assert.ok(rejoin, 'the client sent join_all after reconnecting')
    const versions = Object.values(rejoin.payload.sinceVersion || {})
    assert.equal(versions.length, 1, JSON.stringify(rejoin.payload))
    assert.ok(Number.isInteger(versions[0]) && versions[0] > 0, JSON.stringify(rejoin.payload))
    await shot(b, 'messages-after-resume-desktop')
  })

  await t.test('the server’s refusals read clearly: a 21st emoji, a mute, an archived room', async () => {
    const a = alice.page
    const text = 'Bring gloves and a hat'
    const seq = await seqOf(msg(a, text))
    // dan brings the message to 20 distinct emoji (🎉 is one already)
    for (let i = 1; i <= 19; i++) await dan.react(seq, `:r${i}:`)
    await chip(msg(a, text), ':r19:', 1).waitFor({ timeout: T })
    assert.equal(await msg(a, text).locator('.reaction').count(), 20)
    await reactOther(msg(a, text), '🦄')
    await msg(a, text).getByRole('alert').filter({ hasText: 'This message already has 20 different reactions' }).waitFor({ timeout: T })
    assert.equal(await msg(a, text).locator('.reaction').count(), 20)
    await shot(a, 'messages-too-many-reactions-desktop')
    // an existing one may still be added to
    await chip(msg(a, text), '🎉', 1).click()
    await chip(msg(cara.page, text), '🎉', 2).waitFor({ timeout: T })

    // cara is muted: her composer and her actions close, but she still deletes her own
    const owner = await session(a)
    const c = await session(cara.page)
    const room = `/api/room/${encodeURIComponent(roomId)}`
    await call('POST', `${room}/members/${encodeURIComponent(c.userId)}/mute`, { durationSecs: 3600 }, owner.token)
    const cp = cara.page
    await cp.getByText(/You are muted in this room until/).waitFor({ timeout: T })
    await sendText(alice.page, 'Posted while Cara is muted')
    await waitConfirmed(cp, 'Posted while Cara is muted')
    assert.deepEqual(await actions(msg(cp, 'Posted while Cara is muted')), [], 'no reply, reaction or edit while muted')
    // a reaction she clicks anyway is refused by the server, and says why
    await chip(msg(cp, text), '🎉', 2).click()
    await msg(cp, text).getByRole('alert').filter({ hasText: 'You are muted in this room: you cannot react' }).waitFor({ timeout: T })
    await chip(msg(a, text), '🎉', 2).waitFor({ timeout: T })
    await shot(cp, 'messages-muted-phone')
    await call('DELETE', `${room}/members/${encodeURIComponent(c.userId)}/mute`, undefined, owner.token)
    await cp.waitForFunction(() => !document.querySelector('#composer-input')?.disabled, null, { timeout: T })

    // archived: nobody changes anything; a click on a reaction says so
    await call('PATCH', room, { archived: true }, owner.token)
    const b = bob.page
    await b.getByText('This room is archived: it is read-only.').waitFor({ timeout: T })
    assert.deepEqual(await actions(msg(b, 'Posted while Cara is muted')), [], 'nothing to do in an archived room')
    await chip(msg(b, text), '🎉', 2).click()
    await msg(b, text).getByRole('alert').filter({ hasText: 'This room is archived: nobody can react any more.' }).waitFor({ timeout: T })
    await shot(b, 'messages-archived-desktop')
    await call('PATCH', room, { archived: false }, owner.token)
    await b.waitForFunction(() => !document.querySelector('#composer-input')?.disabled, null, { timeout: T })
  })

  await t.test('after a reload, history shows each message as it is now', async () => {
    const b = bob.page
    const gloves = msg(b, 'Bring gloves and a hat')
    await act(gloves, 'Reply')
    await sendText(b, 'Gloves are in the shed')
    await waitConfirmed(alice.page, 'Gloves are in the shed')
    const a = alice.page
    await a.reload()
    await waitConfirmed(a, 'Gloves are in the shed')
    await msg(a, 'Gloves are in the shed').getByRole('button', { name: /^In reply to Alice: Bring gloves and a hat/ }).waitFor({ timeout: T })
    await msg(a, 'Bring gloves and a hat').locator('time.edited').waitFor({ timeout: T })
    await chip(msg(a, 'Bring gloves and a hat'), '🎉', 2).waitFor({ timeout: T })
    assert.equal(await msg(a, 'Bring gloves and a hat').locator('.reaction').count(), 20)
    const thanks = a.locator('.messages .msg.deleted .msg-text', { hasText: /^Message deleted$/ })
    assert.ok((await thanks.count()) >= 1, 'the deleted message stays a placeholder')
    await shot(a, 'messages-after-reload-desktop')
    await sleep(300)
    for (const who of [alice, bob, cara]) assert.deepEqual(who.page.consoleErrors, [])
  })
})
