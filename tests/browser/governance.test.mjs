// End-to-end test of the web client's room governance (members panel, roles, mute, kick, ban,
// room settings, invites, archive, leaving, resume by version) against the real chatroom
// server, in headless Chromium (see harness.mjs). Olivia owns the room, Adam becomes its
// admin, Mia (on a phone) and Kim are members.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { DESKTOP, PHONE, T, sleep, setUp, tearDown, newUserPage, shot, register, sendText, waitConfirmed, escapeRe } from './harness.mjs'

before(setUp)
after(tearDown)

/* ------------------------------------------------------------------ steps on the page */

async function openRoom(page, name) {
  const heading = page.getByRole('heading', { name, level: 2 })
  if (await heading.isVisible()) return
  await page.locator('.room-item', { hasText: name }).click()
  await page.getByRole('heading', { name, level: 2 }).waitFor({ timeout: T })
}

async function openMembers(page) {
  const panel = page.locator('.members-panel')
  if (!(await panel.isVisible())) await page.getByRole('button', { name: 'Members', exact: true }).click()
  await panel.locator('li.member').first().waitFor({ timeout: T })
  return panel
}

async function closeMembers(page) {
  const panel = page.locator('.members-panel')
  if (await panel.isVisible()) await panel.getByRole('button', { name: 'Close members' }).click()
  await panel.waitFor({ state: 'detached', timeout: T })
}

// The members panel's row of one person.
function row(panel, name) {
  return panel.getByRole('list', { name: 'Members of the room' }).locator('li.member', { has: panel.page().locator('.member-name', { hasText: new RegExp(`^${escapeRe(name)}( \\(you\\))?$`) }) })
}

async function waitRole(panel, name, role) {
  await row(panel, name).locator('.role-badge', { hasText: new RegExp(`^${role}$`) }).waitFor({ timeout: T })
}

async function manage(page, name) {
  const panel = await openMembers(page)
  await panel.getByRole('button', { name: `Manage ${name}`, exact: true }).click()
  const dialog = page.getByRole('dialog', { name: `Manage ${name}` })
  await dialog.waitFor({ timeout: T })
  return dialog
}

async function openSettings(page) {
  await page.getByRole('button', { name: 'Room settings', exact: true }).click()
  const dialog = page.getByRole('dialog', { name: 'Room settings' })
  await dialog.waitFor({ timeout: T })
  return dialog
}

async function closeDialog(page, name) {
  const dialog = page.getByRole('dialog', { name })
  if (!(await dialog.count())) return
  await dialog.getByRole('button', { name: 'Close', exact: true }).click()
  await dialog.waitFor({ state: 'detached', timeout: T })
}

// Fills the join dialog; leaves it open on a refusal, so the caller can read the sentence.
async function tryCode(page, code) {
  await page.getByRole('button', { name: 'Join with code' }).click()
  const dialog = page.getByRole('dialog', { name: 'Join a room' })
  await dialog.getByLabel('Join code').fill(code)
  await dialog.getByRole('button', { name: 'Join room' }).click()
  return dialog
}

async function refusedCode(page, code, sentence) {
  const dialog = await tryCode(page, code)
  await dialog.getByRole('alert').filter({ hasText: sentence }).waitFor({ timeout: T })
  return dialog
}

const composer = (page) => page.getByLabel(/^Message to /)
const roomItem = (page, name) => page.locator('.room-item', { hasText: name })
const line = (page, text) => page.locator('.messages .notice', { hasText: text })

/* ------------------------------------------------------------------ the story */

test('a room governed from the web page: roles, moderation, settings, invites', async (t) => {
  const password = 'correct horse battery'
  let olivia, adam, mia, kim
  let roomName = 'Town hall'
  let standing, oldCode, invite

  await t.test('olivia creates a room; adam, mia (phone) and kim join it with its code', async () => {
    olivia = await newUserPage(DESKTOP, { timezoneId: 'Europe/Berlin' })
    adam = await newUserPage(DESKTOP, { timezoneId: 'Europe/Berlin' })
    mia = await newUserPage(PHONE, { timezoneId: 'Europe/Berlin' })
    kim = await newUserPage(DESKTOP, { timezoneId: 'Europe/Berlin', tap: true })
    for (const [who, name] of [
      [olivia, 'Olivia'],
      [adam, 'Adam'],
      [mia, 'Mia'],
      [kim, 'Kim'],
    ]) {
      await register(who.page, name, password)
      await who.page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: T })
    }
    const p = olivia.page
    await p.getByRole('button', { name: /New room/ }).click()
    await p.getByLabel('Name', { exact: true }).fill(roomName)
    await p.getByRole('button', { name: 'Create room' }).click()
    await p.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    await p.getByRole('button', { name: 'Join code' }).click()
    standing = await p.locator('#room-code').inputValue()
    assert.match(standing, /^[0-9a-f]{32}$/)
    for (const who of [adam, mia, kim]) {
      await tryCode(who.page, standing)
      await who.page.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    }
    const panel = await openMembers(p)
    for (const name of ['Adam', 'Mia', 'Kim']) await waitRole(panel, name, 'Member')
    await waitRole(panel, 'Olivia', 'Owner')
  })

  await t.test('the owner makes adam an admin: both pages show his new role', async () => {
    const dialog = await manage(olivia.page, 'Adam')
    await dialog.getByRole('button', { name: 'Make admin' }).click()
    await dialog.getByText('Adam is now an admin.').waitFor({ timeout: T })
    await closeDialog(olivia.page, 'Manage Adam')
    const panel = await openMembers(olivia.page)
    await waitRole(panel, 'Adam', 'Admin')
    // the list is in role order: owner, admins, members
    const names = await panel.locator('li.member .member-name').allTextContents()
    assert.deepEqual(names.slice(0, 2).map((n) => n.replace(' (you)', '')), ['Olivia', 'Adam'])
    await shot(olivia.page, 'governance-members-desktop')
    // adam's page hears it live: his panel, his timeline, and the admin's controls
    const his = await openMembers(adam.page)
    await waitRole(his, 'Adam', 'Admin')
    await line(adam.page, 'You are now an admin').waitFor({ timeout: T })
    await his.getByRole('button', { name: 'Manage Mia', exact: true }).waitFor({ timeout: T })
    // an admin acts on members only
    assert.equal(await his.getByRole('button', { name: 'Manage Olivia', exact: true }).count(), 0)
  })

  await t.test('a member sees no moderation controls and no settings to change', async () => {
    const p = mia.page
    await openRoom(p, roomName)
    const panel = await openMembers(p)
    await waitRole(panel, 'Adam', 'Admin')
    assert.equal(await panel.getByRole('button', { name: /^Manage / }).count(), 0)
    await shot(p, 'governance-members-phone')
    await closeMembers(p)
    const dialog = await openSettings(p)
    await dialog.getByRole('button', { name: 'Leave room' }).waitFor({ timeout: T })
    for (const control of ['Save details', 'Create invite', 'Archive room', 'Replace code…']) {
      assert.equal(await dialog.getByRole('button', { name: control }).count(), 0, `a member sees ${control}`)
    }
    await closeDialog(p, 'Room settings')
  })

  await t.test('adam mutes mia: the panel shows it, her composer refuses; unmuted she posts', async () => {
    const dialog = await manage(adam.page, 'Mia')
    await dialog.getByLabel('Mute for').selectOption({ label: '1 hour' })
    await dialog.getByRole('button', { name: 'Mute', exact: true }).click()
    await dialog.getByText(/Mia is muted until/).first().waitFor({ timeout: T })
    await closeDialog(adam.page, 'Manage Mia')
    await row(adam.page.locator('.members-panel'), 'Mia').getByText(/^Muted until /).waitFor({ timeout: T })
    // olivia's panel follows live
    await row(olivia.page.locator('.members-panel'), 'Mia').getByText(/^Muted until /).waitFor({ timeout: T })

    const p = mia.page
    await p.getByText(/You are muted in this room until .*: you can read, but not post\./).waitFor({ timeout: T })
    assert.equal(await composer(p).isDisabled(), true, 'a muted member can still type')
    await line(p, /Adam muted you until/).waitFor({ timeout: T })
    await shot(p, 'governance-muted-phone')

    const again = await manage(adam.page, 'Mia')
    await again.getByRole('button', { name: 'Unmute' }).click()
    await again.getByText('Mia may post again.').waitFor({ timeout: T })
    await closeDialog(adam.page, 'Manage Mia')
    await p.waitForFunction(() => !document.querySelector('#composer-input')?.disabled, null, { timeout: T })
    await sendText(p, 'Thanks for unmuting me')
    await waitConfirmed(olivia.page, 'Thanks for unmuting me')
  })

  await t.test('adam renames the room: every member sees the new name at once', async () => {
    const dialog = await openSettings(adam.page)
    roomName = 'Village hall'
    await dialog.getByLabel('Room name').fill(roomName)
    await dialog.getByRole('button', { name: 'Save details' }).click()
    await dialog.getByText('Saved.').waitFor({ timeout: T })
    await closeDialog(adam.page, 'Room settings')
    // the phone shows the open room, not the list
    for (const who of [olivia, kim]) await roomItem(who.page, roomName).waitFor({ timeout: T })
    await mia.page.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    await line(mia.page, `Adam renamed the room to ${roomName}`).waitFor({ timeout: T })
  })

  await t.test('olivia replaces the join code after a confirmation; the old one is gone', async () => {
    const dialog = await openSettings(olivia.page)
    oldCode = await dialog.locator('#standing-code').inputValue()
    assert.equal(oldCode, standing)
    await dialog.getByRole('button', { name: 'Replace code…' }).click()
    // nothing changes before the confirmation
    await dialog.getByText('The current one stops working at once').waitFor({ timeout: T })
    assert.equal(await dialog.locator('#standing-code').inputValue(), oldCode)
    await dialog.getByRole('button', { name: 'Yes, replace the code' }).click()
    await dialog.getByText('The room has a new join code').waitFor({ timeout: T })
    standing = await dialog.locator('#standing-code').inputValue()
    assert.match(standing, /^[0-9a-f]{32}$/)
    assert.notEqual(standing, oldCode)
    await closeDialog(olivia.page, 'Room settings')
    await line(olivia.page, "You replaced the room's join code").waitFor({ timeout: T })
    await line(mia.page, "Olivia replaced the room's join code").waitFor({ timeout: T })
    // a member's join code panel shows the new code, live
    await mia.page.getByRole('button', { name: 'Join code' }).click()
    await mia.page.waitForFunction((code) => document.querySelector('#room-code')?.value === code, standing, { timeout: T })
    await mia.page.getByRole('button', { name: 'Join code' }).click()
  })

  await t.test('adam creates an invite for one use; kim is kicked, then joins with it', async () => {
    const dialog = await openSettings(adam.page)
    await dialog.getByLabel('Max uses').fill('1')
    await dialog.getByLabel('Expires').selectOption({ label: 'In 1 day' })
    await dialog.getByRole('button', { name: 'Create invite' }).click()
    await dialog.getByText('Invite created').waitFor({ timeout: T })
    const item = dialog.locator('.invite-list li').first()
    invite = await item.locator('input').inputValue()
    assert.match(invite, /^[0-9a-f]{32}$/)
    assert.notEqual(invite, standing)
    await item.getByText(/Used 0 of 1 · expires /).waitFor({ timeout: T })
    await item.getByText('by Adam').waitFor({ timeout: T })
    await shot(adam.page, 'governance-invites-desktop')
    await closeDialog(adam.page, 'Room settings')

    // kick kim: her page says who removed her, and the room leaves her list
    const manageKim = await manage(adam.page, 'Kim')
    await manageKim.getByLabel(/Reason/).fill('Testing the door')
    await manageKim.getByRole('button', { name: 'Kick', exact: true }).click()
    await manageKim.waitFor({ state: 'detached', timeout: T })
    await kim.page.getByRole('alert').filter({ hasText: `You were removed from ${roomName} by Adam.` }).waitFor({ timeout: T })
    await roomItem(kim.page, roomName).waitFor({ state: 'detached', timeout: T })
    await line(olivia.page, 'Adam removed Kim from the room').waitFor({ timeout: T })
    await shot(kim.page, 'governance-kicked-desktop')
    await kim.page.getByRole('button', { name: 'Dismiss notice' }).click()

    // the old code is gone for her; the invite lets her back in
    const refused = await refusedCode(kim.page, oldCode, 'That join code is gone')
    await shot(kim.page, 'governance-code-gone')
    await refused.getByLabel('Join code').fill(invite)
    await refused.getByRole('button', { name: 'Join room' }).click()
    await kim.page.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    await row(await openMembers(olivia.page), 'Kim').waitFor({ timeout: T })
  })

  await t.test('a kicked member sees why, and a used-up invite is gone', async () => {
    const dialog = await manage(adam.page, 'Mia')
    await dialog.getByRole('button', { name: 'Kick', exact: true }).click()
    await dialog.waitFor({ state: 'detached', timeout: T })
    const p = mia.page
    await p.getByRole('alert').filter({ hasText: `You were removed from ${roomName} by Adam.` }).waitFor({ timeout: T })
    // the phone is back on the room list, without the room
    await p.getByRole('button', { name: 'Join with code' }).waitFor({ timeout: T })
    assert.equal(await roomItem(p, roomName).count(), 0)
    await shot(p, 'governance-kicked-phone')
    await refusedCode(p, invite, 'That join code is gone')
    await closeDialog(p, 'Join a room')
    // the standing code still lets her back
    await tryCode(p, standing)
    await p.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
  })

  await t.test('olivia bans kim for a day: kim is told, cannot rejoin, until the ban is lifted', async () => {
    const dialog = await manage(olivia.page, 'Kim')
    await dialog.getByLabel(/Reason/).fill('Trolling')
    await dialog.getByLabel('Ban for').selectOption({ label: '1 day' })
    await dialog.getByRole('button', { name: 'Ban', exact: true }).click()
    await dialog.waitFor({ state: 'detached', timeout: T })
    const p = kim.page
    await p.getByRole('alert').filter({ hasText: new RegExp(`^You were banned from ${escapeRe(roomName)} by Olivia until [^.]+\\.`) }).waitFor({ timeout: T })
    await roomItem(p, roomName).waitFor({ state: 'detached', timeout: T })
    await refusedCode(p, standing, 'You are banned from this room')
    await closeDialog(p, 'Join a room')

    const panel = await openMembers(olivia.page)
    await line(olivia.page, /You banned Kim until/).waitFor({ timeout: T })
    assert.equal(await row(panel, 'Kim').count(), 0)
    await shot(olivia.page, 'governance-banned-desktop')
    await panel.getByRole('button', { name: 'Unban Kim' }).click()
    await panel.getByRole('button', { name: 'Unban Kim' }).waitFor({ state: 'detached', timeout: T })
    // her socket's join of the room is lost on the way, as when the connection drops right
    // after joining: the version the REST join answered is where she resumes from
    kim.tap.swallow = 'join_one_chat'
    await tryCode(p, standing)
    await p.getByRole('heading', { name: roomName, level: 2 }).waitFor({ timeout: T })
    for (let i = 0; kim.tap.swallow && i < 100; i += 1) await sleep(100)
    assert.equal(kim.tap.swallow, null, 'the page joined the room on its socket')
  })

  await t.test('kim misses changes while offline; back online she resumes from her version', async () => {
    const p = kim.page
    const eventsBefore = kim.tap.events.length
    await kim.context.setOffline(true)
    await p.getByText('You are offline').waitFor({ timeout: T })
    const dialog = await manage(adam.page, 'Kim')
    await dialog.getByLabel('Mute for').selectOption({ label: '10 minutes' })
    await dialog.getByRole('button', { name: 'Mute', exact: true }).click()
    await dialog.getByText(/Kim is muted until/).first().waitFor({ timeout: T })
    await closeDialog(adam.page, 'Manage Kim')
    await sendText(adam.page, 'Said while Kim was away')
    await waitConfirmed(adam.page, 'Said while Kim was away')
    await kim.context.setOffline(false)
    // the missed mute arrives as the change it was, in its place, and closes her composer
    await line(p, /Adam muted you until/).waitFor({ timeout: T })
    await waitConfirmed(p, 'Said while Kim was away')
    await p.getByText(/You are muted in this room until/).waitFor({ timeout: T })
    const rejoin = kim.tap.events.slice(eventsBefore).find((e) => e.event === 'join_all')
    assert.ok(rejoin, 'the client sent join_all after reconnecting')
    const versions = Object.values(rejoin.payload.sinceVersion || {})
    assert.equal(versions.length, 1, JSON.stringify(rejoin.payload))
    assert.ok(Number.isInteger(versions[0]) && versions[0] > 0, JSON.stringify(rejoin.payload))
    const unmute = await manage(adam.page, 'Kim')
    await unmute.getByRole('button', { name: 'Unmute' }).click()
    await unmute.getByText('Kim may post again.').waitFor({ timeout: T })
    await closeDialog(adam.page, 'Manage Kim')
  })

  await t.test('olivia archives the room: composers close for everyone; unarchived they open', async () => {
    let dialog = await openSettings(olivia.page)
    await dialog.getByRole('button', { name: 'Archive room' }).click()
    await dialog.getByRole('button', { name: 'Unarchive room' }).waitFor({ timeout: T })
    await closeDialog(olivia.page, 'Room settings')
    for (const who of [adam, mia]) {
      await who.page.getByText('This room is archived: it is read-only.').waitFor({ timeout: T })
      assert.equal(await composer(who.page).isDisabled(), true)
    }
    await line(adam.page, 'Olivia archived the room').waitFor({ timeout: T })
    await shot(mia.page, 'governance-archived-phone')
    await shot(adam.page, 'governance-archived-desktop')
    dialog = await openSettings(olivia.page)
    await dialog.getByRole('button', { name: 'Unarchive room' }).click()
    await dialog.getByRole('button', { name: 'Archive room' }).waitFor({ timeout: T })
    await closeDialog(olivia.page, 'Room settings')
    await adam.page.waitForFunction(() => !document.querySelector('#composer-input')?.disabled, null, { timeout: T })
    await sendText(adam.page, 'Open again')
    await waitConfirmed(mia.page, 'Open again')
  })

  await t.test('the owner must hand ownership on before leaving; then she leaves', async () => {
    const p = olivia.page
    let dialog = await openSettings(p)
    await dialog.getByRole('button', { name: 'Leave room' }).click()
    await dialog.getByText('You own this room: make another member the owner first').waitFor({ timeout: T })
    await closeDialog(p, 'Room settings')
    assert.equal(await roomItem(p, roomName).count(), 1)

    dialog = await manage(p, 'Adam')
    await dialog.getByRole('button', { name: 'Transfer ownership…' }).click()
    await dialog.getByText(`Make Adam the owner of ${roomName}?`).waitFor({ timeout: T })
    await dialog.getByRole('button', { name: 'Yes, make Adam the owner' }).click()
    await dialog.getByText('Adam owns the room now; you are an admin.').waitFor({ timeout: T })
    await closeDialog(p, 'Manage Adam')
    const panel = await openMembers(p)
    await waitRole(panel, 'Adam', 'Owner')
    await waitRole(panel, 'Olivia', 'Admin')
    await waitRole(await openMembers(adam.page), 'Adam', 'Owner')
    // the new owner acts on the old one
    await adam.page.getByRole('button', { name: 'Manage Olivia', exact: true }).waitFor({ timeout: T })

    dialog = await openSettings(p)
    await dialog.getByRole('button', { name: 'Leave room' }).click()
    await dialog.getByRole('button', { name: 'Yes, leave' }).click()
    await p.getByRole('alert').filter({ hasText: `You left ${roomName}.` }).waitFor({ timeout: T })
    await roomItem(p, roomName).waitFor({ state: 'detached', timeout: T })
    await line(adam.page, 'Olivia left the room').waitFor({ timeout: T })
    await row(adam.page.locator('.members-panel'), 'Olivia').waitFor({ state: 'detached', timeout: T })
    await sleep(300)
    for (const who of [olivia, adam, mia, kim]) assert.deepEqual(who.page.consoleErrors, [])
  })
})
