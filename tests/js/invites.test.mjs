// Invites (docs/protocol.md part 2, "Invites" and its details) through the real binary: the
// standing code rotated (the old one 410 at once), extra invites with `maxUses` and
// `expiresInSecs`, their list and revocation, used-up and expired codes, a ban beating every
// invite, members joining again for free, invalid bodies, the rights of each role, and many
// people joining through one limited invite at the same moment.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  startServer, api, assertOk, assertError, assertRoom, assertId, assertTime, register,
  registerMany, createRoom, joinRoom, delay, closeAll,
} from './helpers.mjs';
import {
  gov, okNull, roomList, membersOf, memberData, assertP2Error, assertPerson, assertRoomEvent,
  watcher, waitRoomEvent, unknownCode, HEX32,
} from './part2.mjs';

let server;
let url;
const open = [];

before(async () => {
  server = await startServer({ args: ['--send-rate-limit', '0'] });
  url = server.url;
});
after(async () => {
  closeAll(open);
  await server?.cleanup();
});
afterEach(() => closeAll(open.splice(0)));

/** A room with its owner, an admin and a member. */
async function room3() {
  const [owner, admin, member] = await registerMany(url, 3, 'Inv');
  const room = await createRoom(url, owner.token);
  await joinRoom(url, admin.token, room.room_hash_id);
  await joinRoom(url, member.token, room.room_hash_id);
  memberData(await gov.role(url, owner.token, room.id, admin.id, 'admin'), 'promote', { user: admin, role: 'admin' });
  return { room, owner, admin, member };
}

/** Create an invite and check its shape; returns it. */
async function invite(token, roomId, body, creator) {
  const data = assertOk(await gov.createInvite(url, token, roomId, body), 201, `create invite ${JSON.stringify(body)}`);
  const inv = data.invite;
  for (const k of ['id', 'code', 'maxUses', 'uses', 'expiresAt', 'createdBy']) assert.ok(k in inv, `invite lacks ${k}: ${JSON.stringify(inv)}`);
  assert.match(inv.code, HEX32, 'an invite code is 32 lowercase hex');
  assert.equal(inv.uses, 0);
  assert.equal(inv.maxUses, body?.maxUses ?? null);
  if (body?.expiresInSecs === undefined) assert.equal(inv.expiresAt, null);
  else assertTime(inv.expiresAt, 'expiresAt');
  if (creator) assertPerson(inv.createdBy, creator, 'createdBy');
  return inv;
}

async function listInvites(token, roomId) {
  const data = assertOk(await gov.invites(url, token, roomId), 200, 'list invites');
  assert.ok(Array.isArray(data.invites), 'invites is an array');
  return data.invites;
}

async function memberCount(token, roomId) {
  return (await roomList(url, token)).find((x) => x.id === roomId).member_count;
}

describe('rotating the standing code', () => {
  it('gives a new code; the old one is 410 gone at once; members see it as room_event updated', async () => {
    const { room, owner, admin, member } = await room3();
    const w = await watcher(url, member, [room.id]);
    open.push(w);
    const [late, later] = await registerMany(url, 2, 'Rot');
    const data = assertOk(await gov.rotate(url, admin.token, room.id), 200, 'rotate');
    assertRoom(data.room);
    const code = data.room.room_hash_id;
    assert.match(code, HEX32);
    assert.notEqual(code, room.room_hash_id);
    assertP2Error(await gov.join(url, late.token, room.room_hash_id), 410, 'gone', 'the old code');
    assert.equal((await roomList(url, late.token)).length, 0, 'the refusal joins nothing');
    assert.equal((await joinRoom(url, late.token, code)).id, room.id);
    const ev = assertRoomEvent(await waitRoomEvent(w, room.id, 'updated'), { type: 'updated', roomId: room.id, by: admin });
    assert.equal(ev.room.room_hash_id, code);
    assert.equal((await roomList(url, member.token)).find((x) => x.id === room.id).room_hash_id, code, 'members see the new code');

    // Rotating again retires the second code too.
    const third = assertOk(await gov.rotate(url, owner.token, room.id), 200, 'rotate again').room.room_hash_id;
    assertP2Error(await gov.join(url, later.token, code), 410, 'gone', 'the second code');
    await joinRoom(url, later.token, third);
  });

  it('is for admins: a member 403, an outsider 403, an unknown room 404, no token 401', async () => {
    const { room, member } = await room3();
    const outsider = await register(url);
    assertP2Error(await gov.rotate(url, member.token, room.id), 403, 'forbidden', 'member');
    assertP2Error(await gov.rotate(url, outsider.token, room.id), 403, ['not_member', 'forbidden'], 'outsider');
    assertP2Error(await gov.rotate(url, member.token, randomUUID()), 404, 'not_found', 'unknown room');
    assertError(await gov.rotate(url, undefined, room.id), 401, 'no token');
    assert.equal((await roomList(url, member.token)).find((x) => x.id === room.id).room_hash_id, room.room_hash_id, 'nothing rotated');
  });
});

describe('extra invites', () => {
  it('create, list with codes, join through them (uses counted), revoke then 410', async () => {
    const { room, owner, admin } = await room3();
    const [u1, u2, u3] = await registerMany(url, 3, 'Ext');
    const plain = await invite(admin.token, room.id, {}, admin);
    const limited = await invite(owner.token, room.id, { maxUses: 5, expiresInSecs: 3600 }, owner);
    const t = Date.parse(limited.expiresAt);
    assert.ok(Math.abs(t - (Date.now() + 3_600_000)) < 60_000, `expiresAt ${limited.expiresAt} about an hour from now`);
    assertId(plain.id, 'invite.id');
    assert.notEqual(plain.id, limited.id);
    assert.notEqual(plain.code, limited.code);
    assert.ok(![plain.code, limited.code].includes(room.room_hash_id), 'an invite code is not the standing code');

    let list = await listInvites(admin.token, room.id);
    assert.deepEqual(list.map((i) => i.id).sort(), [plain.id, limited.id].sort());
    assert.equal(list.find((i) => i.id === limited.id).code, limited.code, 'the list shows codes');

    assert.equal((await joinRoom(url, u1.token, limited.code)).id, room.id);
    assert.equal((await joinRoom(url, u2.token, plain.code)).id, room.id);
    list = await listInvites(owner.token, room.id);
    assert.equal(list.find((i) => i.id === limited.id).uses, 1);
    assert.equal(list.find((i) => i.id === plain.id).uses, 1);

    await okNull(gov.revoke(url, admin.token, room.id, limited.id), 'revoke');
    assertP2Error(await gov.join(url, u3.token, limited.code), 410, 'gone', 'a revoked invite');
    assert.deepEqual((await listInvites(admin.token, room.id)).map((i) => i.id), [plain.id], 'a revoked invite is not listed');
    assertP2Error(await gov.revoke(url, admin.token, room.id, randomUUID()), 404, 'not_found', 'revoke an unknown invite');
    assert.equal((await joinRoom(url, u3.token, room.room_hash_id)).id, room.id, 'the standing code still works');
  });

  it('used up after maxUses: 410 gone, no longer listed', async () => {
    const { room, owner } = await room3();
    const [u1, u2, u3] = await registerMany(url, 3, 'Use');
    const inv = await invite(owner.token, room.id, { maxUses: 2 });
    await joinRoom(url, u1.token, inv.code);
    await joinRoom(url, u2.token, inv.code);
    const before = await memberCount(owner.token, room.id);
    assertP2Error(await gov.join(url, u3.token, inv.code), 410, 'gone', 'a used-up invite');
    assert.equal(await memberCount(owner.token, room.id), before, 'nobody joined');
    assert.ok(!(await listInvites(owner.token, room.id)).some((i) => i.id === inv.id), 'a used-up invite is not live');
  });

  it('expires after expiresInSecs: 410 gone, no longer listed', async () => {
    const { room, owner } = await room3();
    const [u1, u2] = await registerMany(url, 2, 'Exp');
    const inv = await invite(owner.token, room.id, { expiresInSecs: 1 });
    const two = await invite(owner.token, room.id, { expiresInSecs: 2, maxUses: 10 });
    await joinRoom(url, u1.token, two.code);
    await delay(2_300);
    assertP2Error(await gov.join(url, u2.token, inv.code), 410, 'gone', 'an expired invite');
    assertP2Error(await gov.join(url, u2.token, two.code), 410, 'gone', 'the other expired invite');
    assert.deepEqual(await listInvites(owner.token, room.id), [], 'expired invites are not live');
  });

  it('a ban beats any invite (403 banned); a member joining again with any code is 200 and uses nothing up', async () => {
    const { room, owner, admin, member } = await room3();
    const [banned, fresh] = await registerMany(url, 2, 'Ban');
    const one = await invite(owner.token, room.id, { maxUses: 1 });
    await okNull(gov.ban(url, admin.token, room.id, banned.id, {}), 'ban a non-member');
    assertP2Error(await gov.join(url, banned.token, one.code), 403, 'banned', 'banned, extra invite');
    assertP2Error(await gov.join(url, banned.token, room.room_hash_id), 403, 'banned', 'banned, standing code');
    const gone = await invite(owner.token, room.id, { maxUses: 1 });
    await okNull(gov.revoke(url, owner.token, room.id, gone.id), 'revoke');
    assertP2Error(await gov.join(url, banned.token, gone.code), 403, 'banned', 'banned beats gone');

    for (const u of [member, admin, owner]) {
      const again = assertOk(await gov.join(url, u.token, one.code), 200, 'a member joining again');
      assert.equal(again.room.id, room.id);
    }
    assert.equal((await listInvites(owner.token, room.id)).find((i) => i.id === one.id).uses, 0, 'members use nothing up');
    await joinRoom(url, fresh.token, one.code);
    assertP2Error(await gov.join(url, banned.token, one.code), 403, 'banned', 'banned, used-up invite');
    const roles = await membersOf(url, owner.token, room.id);
    assert.deepEqual(roles.map((x) => x.role), ['owner', 'admin', 'member', 'member'], 'joining again keeps roles');
  });

  it('refuses invalid bodies with 400, non-admins with 403, creates nothing', async () => {
    const { room, owner, member } = await room3();
    const outsider = await register(url);
    const bad = [
      { maxUses: 0 }, { maxUses: -1 }, { maxUses: 1.5 }, { maxUses: '3' }, { maxUses: true },
      { expiresInSecs: 0 }, { expiresInSecs: -5 }, { expiresInSecs: 2.5 }, { expiresInSecs: '60' }, { expiresInSecs: [] },
    ];
    for (const body of bad) {
      assertP2Error(await gov.createInvite(url, owner.token, room.id, body), 400, 'bad_request', `invite ${JSON.stringify(body)}`);
    }
    assertP2Error(await api(url, 'POST', `/api/room/${room.id}/invites`, { token: owner.token, raw: '{"maxUses": ' }), 400, 'bad_request', 'malformed JSON');
    assertP2Error(await api(url, 'POST', `/api/room/${room.id}/invites`, { token: owner.token, raw: '[1]' }), 400, 'bad_request', 'not an object');
    assert.deepEqual(await listInvites(owner.token, room.id), [], 'nothing created');

    const inv = await invite(owner.token, room.id, { maxUses: 3 });
    assertP2Error(await gov.createInvite(url, member.token, room.id, {}), 403, 'forbidden', 'member creates');
    assertP2Error(await gov.invites(url, member.token, room.id), 403, 'forbidden', 'member lists');
    assertP2Error(await gov.revoke(url, member.token, room.id, inv.id), 403, 'forbidden', 'member revokes');
    assertP2Error(await gov.createInvite(url, outsider.token, room.id, {}), 403, ['not_member', 'forbidden'], 'outsider creates');
    assertP2Error(await gov.invites(url, outsider.token, room.id), 403, ['not_member', 'forbidden'], 'outsider lists');
    assertP2Error(await gov.invites(url, owner.token, randomUUID()), 404, 'not_found', 'unknown room');
    assertError(await gov.invites(url, undefined, room.id), 401, 'no token');
    assert.deepEqual((await listInvites(owner.token, room.id)).map((i) => i.id), [inv.id], 'the refusals created and revoked nothing');
  });

  it('an unknown code is 404, a malformed one 400 or 404, and neither joins anything', async () => {
    const u = await register(url);
    assertP2Error(await gov.join(url, u.token, unknownCode()), 404, 'not_found', 'unknown code');
    for (const code of ['', 'xyz', 'A'.repeat(32), 5]) {
      const res = await gov.join(url, u.token, code);
      assertError(res, [400, 404], `code ${JSON.stringify(code)}`);
      assert.ok(['bad_request', 'not_found'].includes(res.body.code), `code: ${res.text}`);
    }
    assert.deepEqual(await roomList(url, u.token), []);
  });

  it('many people joining through one maxUses 3 invite at once: exactly 3 get in', async () => {
    const { room, owner } = await room3();
    const inv = await invite(owner.token, room.id, { maxUses: 3 });
    const people = await registerMany(url, 12, 'Race');
    const before = await memberCount(owner.token, room.id);
    const results = await Promise.all(people.map((p) => gov.join(url, p.token, inv.code)));
    const ok = results.filter((x) => x.status === 200);
    assert.equal(ok.length, 3, `statuses: ${results.map((x) => x.status).join(',')}`);
    for (const x of results.filter((y) => y.status !== 200)) assertP2Error(x, 410, 'gone', 'the losers');
    assert.equal(await memberCount(owner.token, room.id), before + 3);
    const joined = new Set((await membersOf(url, owner.token, room.id)).map((x) => x.id));
    assert.equal(people.filter((p) => joined.has(p.id)).length, 3);
    assert.ok(!(await listInvites(owner.token, room.id)).some((i) => i.id === inv.id), 'used up');
  });
});
