// Direct messages and blocks (docs/protocol.md part 2, "Direct messages"), on the embedded
// store, over the wire with the official socket.io-client against the real binary: one room
// per pair whoever opens it, each side's `name` the other person's, no codes, invites, roles,
// moderation or settings, leaving and coming back, live messages between the two, blocks
// and their effects both ways, the blocks list, the export, and the erasure of one side.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, api, assertOk, assertId, assertTime, register, createRoom, connect, emitAck,
  send, messagesIn, waitFor, closeAll, newMsgId, PASSWORD,
} from './helpers.mjs';
import { gov, okNull, roomList, assertP2Error, assertRoomP2, membersOf } from './part2.mjs';

const dm = (url, token, username) => api(url, 'POST', '/api/dm', { token, body: { username } });
const blockPath = (userId) => `/api/user/blocks/${encodeURIComponent(userId)}`;
const block = (url, token, userId) => api(url, 'POST', blockPath(userId), { token });
const unblock = (url, token, userId) => api(url, 'DELETE', blockPath(userId), { token });

async function blocksOf(url, token) {
  const data = assertOk(await api(url, 'GET', '/api/user/blocks', { token }), 200, 'blocks');
  assert.deepEqual(Object.keys(data), ['blocks']);
  return data.blocks;
}

/** The direct room as `user` sees it, checked against the contract. */
function assertDirect(room, other) {
  assertId(room.id, 'room.id');
  assert.equal(room.kind, 'direct');
  assert.equal(room.name, other.name, 'a direct room is named after the other person');
  assert.equal(room.owner, null, 'nobody owns a direct room');
  assert.equal(room.description, '');
  assert.equal(room.avatar_image, '');
  assert.equal(room.room_hash_id, '', 'a direct room has no code');
  assertTime(room.create_time, 'create_time');
  assertRoomP2(room, { role: 'member', kind: 'direct' });
}

async function openPair(url) {
  const [a, b] = [await register(url), await register(url)];
  const room = assertOk(await dm(url, a.token, b.name), 201, 'first open').room;
  return { a, b, room };
}

describe('direct rooms', () => {
  let srv;
  let url;
  before(async () => {
    srv = await startServer({ args: ['--send-rate-limit', '0'] });
    url = srv.url;
  });
  after(async () => { await srv?.cleanup(); });

  it('opens once (201), then returns the same room (200) to either side, named after the other', async () => {
    const { a, b, room } = await openPair(url);
    assertDirect(room, b);
    assert.equal(room.member_count, 2, 'both are members from the start');
    const again = assertOk(await dm(url, a.token, b.name.toUpperCase()), 200, 'again, other case').room;
    assert.equal(again.id, room.id);
    const theirs = assertOk(await dm(url, b.token, `  ${a.name} `), 200, 'from the other side').room;
    assert.equal(theirs.id, room.id);
    assertDirect(theirs, a);
    const listA = (await roomList(url, a.token)).find((r) => r.id === room.id);
    const listB = (await roomList(url, b.token)).find((r) => r.id === room.id);
    assertDirect(listA, b);
    assertDirect(listB, a);
    const members = await membersOf(url, a.token, room.id);
    assert.deepEqual(members.map((m) => m.role), ['member', 'member']);
    assert.deepEqual(new Set(members.map((m) => m.id)), new Set([a.id, b.id]));
    // A group room of the same people is another room, and says so.
    const group = await createRoom(url, a.token);
    assert.equal(group.kind, 'group');
  });

  it('refuses oneself (400), an unknown name (404) and a bad body (400)', async () => {
    const a = await register(url);
    assertP2Error(await dm(url, a.token, a.name), 400, 'bad_request', 'self');
    assertP2Error(await dm(url, a.token, a.name.toUpperCase()), 400, 'bad_request', 'self, other case');
    assertP2Error(await dm(url, a.token, `nobody_${newMsgId()}`), 404, 'not_found', 'unknown');
    const bad = await api(url, 'POST', '/api/dm', { token: a.token, body: { username: 5 } });
    assert.equal(bad.status, 400);
    const none = await api(url, 'POST', '/api/dm', { body: { username: a.name } });
    assert.equal(none.status, 401);
  });

  it('has no codes, invites, roles, moderation or settings', async () => {
    const { a, b, room } = await openPair(url);
    const forbidden = (res, what) => assertP2Error(res, 403, 'forbidden', what);
    forbidden(await gov.rotate(url, a.token, room.id), 'rotate');
    forbidden(await gov.createInvite(url, a.token, room.id, {}), 'create invite');
    forbidden(await gov.patch(url, a.token, room.id, { name: 'renamed' }), 'patch');
    forbidden(await gov.patch(url, a.token, room.id, { archived: true }), 'archive');
    forbidden(await gov.role(url, a.token, room.id, b.id, 'admin'), 'role');
    forbidden(await gov.kick(url, a.token, room.id, b.id), 'kick');
    forbidden(await gov.ban(url, a.token, room.id, b.id), 'ban');
    forbidden(await gov.mute(url, a.token, room.id, b.id, { durationSecs: 60 }), 'mute');
    // Its code is empty and no code finds it.
    assert.equal(room.room_hash_id, '');
    const joined = await gov.join(url, a.token, room.id);
    assert.equal(joined.status, 400, 'an id is not a code');
    const members = await membersOf(url, b.token, room.id);
    assert.deepEqual(members.map((m) => m.role), ['member', 'member'], 'nothing changed');
  });

  it('lets either leave, and brings the leaver back into the same room', async () => {
    const { a, b, room } = await openPair(url);
    await okNull(gov.leave(url, b.token, room.id), 'leave');
    assert.ok(!(await roomList(url, b.token)).some((r) => r.id === room.id), 'gone from the list');
    assert.equal((await gov.history(url, b.token, room.id)).status, 403);
    const back = assertOk(await dm(url, b.token, a.name), 200, 'back').room;
    assert.equal(back.id, room.id);
    assertDirect(back, a);
    assert.equal(back.member_count, 2);
    assert.ok((await roomList(url, b.token)).some((r) => r.id === room.id));
  });

  it('carries messages between the two, live', async () => {
    const { a, b, room } = await openPair(url);
    const [sa, sb] = [await connect(url, a.token), await connect(url, b.token)];
    try {
      for (const s of [sa, sb]) assert.equal((await emitAck(s, 'join_all', { roomList: [room.id] })).ok, true);
      await send(sa, room.id, 'hello you');
      await waitFor(() => messagesIn(sb, room.id).some((m) => m.message === 'hello you' && m.user.id === a.id), { message: 'b gets a message' });
      await send(sb, room.id, 'hi back');
      await waitFor(() => messagesIn(sa, room.id).some((m) => m.message === 'hi back' && m.user.id === b.id), { message: 'a gets the answer' });
    } finally {
      closeAll(sa, sb);
    }
  });

  it('blocks: one-way, refusing the blocked one\'s opening and posts, until unblocked', async () => {
    const { a, b, room } = await openPair(url);
    const c = await register(url);
    await okNull(block(url, a.token, b.id), 'a blocks b');
    await okNull(block(url, a.token, b.id), 'twice changes nothing');
    await okNull(block(url, a.token, c.id), 'a blocks c, who has no room with a');
    const list = await blocksOf(url, a.token);
    assert.deepEqual(list, [
      { id: b.id, name: b.name, avatarImage: '' },
      { id: c.id, name: c.name, avatarImage: '' },
    ]);
    assert.deepEqual(await blocksOf(url, b.token), [], 'a block is one-way');

    assertP2Error(await dm(url, b.token, a.name), 403, 'forbidden', 'b reopens');
    assertP2Error(await dm(url, c.token, a.name), 403, 'forbidden', 'c opens');
    const sb = await connect(url, b.token);
    const sa = await connect(url, a.token);
    try {
      assert.equal((await emitAck(sb, 'join_all', { roomList: [room.id] })).ok, true);
      assert.equal((await emitAck(sa, 'join_all', { roomList: [room.id] })).ok, true);
      const refused = await emitAck(sb, 'user_send_message', { roomId: room.id, id: newMsgId(), message: 'let me in', type: 'input' });
      assert.equal(refused.ok, false, JSON.stringify(refused));
      assert.equal(refused.error.code, 'forbidden');
      assertP2Error(await gov.restSend(url, b.token, room.id, { id: newMsgId(), message: 'rest' }), 403, 'forbidden', 'REST post');
      // The blocker still writes, and may open the room.
      await send(sa, room.id, 'from a');
      assertOk(await dm(url, a.token, b.name), 200, 'the blocker opens');
      // A block concerns direct rooms only.
      const group = await createRoom(url, a.token);
      assertOk(await gov.join(url, b.token, group.room_hash_id), 200, 'join a group');
      assert.equal((await emitAck(sb, 'join_all', { roomList: [group.id] })).ok, true);
      await send(sb, group.id, 'in a group');

      await okNull(unblock(url, a.token, b.id), 'unblock');
      await okNull(unblock(url, a.token, b.id), 'unblocking again changes nothing');
      assert.deepEqual((await blocksOf(url, a.token)).map((u) => u.id), [c.id]);
      await send(sb, room.id, 'free again');
      assertOk(await dm(url, b.token, a.name), 200, 'b opens again');
    } finally {
      closeAll(sa, sb);
    }
  });

  it('refuses blocking oneself (400) and an unknown user (404)', async () => {
    const a = await register(url);
    assertP2Error(await block(url, a.token, a.id), 400, 'bad_request', 'self');
    assertP2Error(await unblock(url, a.token, a.id), 400, 'bad_request', 'unblock self');
    assertP2Error(await block(url, a.token, '00000000-0000-7000-8000-000000000000'), 404, 'not_found', 'unknown');
    assertP2Error(await unblock(url, a.token, 'nope'), 404, 'not_found', 'unknown unblock');
    assert.equal((await api(url, 'GET', '/api/user/blocks')).status, 401);
  });

  it('exports the blocks and the direct rooms', async () => {
    const { a, b, room } = await openPair(url);
    await okNull(block(url, a.token, b.id), 'block');
    const data = assertOk(await api(url, 'GET', '/api/user/export', { token: a.token }), 200, 'export');
    assert.deepEqual(data.blocks, [b.id]);
    const entry = data.rooms.find((r) => r.room.id === room.id);
    assert.equal(entry.role, 'member');
    assertDirect(entry.room, b);
    const theirs = assertOk(await api(url, 'GET', '/api/user/export', { token: b.token }), 200, 'export b');
    assert.deepEqual(theirs.blocks, []);
  });

  it('follows renames, and reads "Deleted user" once the other side is erased', async () => {
    const { a, b, room } = await openPair(url);
    await okNull(block(url, a.token, b.id), 'a blocks b');
    await okNull(block(url, b.token, a.id), 'b blocks a');
    const newName = `renamed_${newMsgId().slice(0, 12)}`;
    assertOk(await api(url, 'PATCH', '/api/user/info', { token: b.token, body: { name: newName } }), 200, 'rename');
    assert.equal((await roomList(url, a.token)).find((r) => r.id === room.id).name, newName);
    assertOk(await api(url, 'DELETE', '/api/user', { token: b.token, body: { password: PASSWORD } }), 200, 'erase b');
    const mine = (await roomList(url, a.token)).find((r) => r.id === room.id);
    assert.equal(mine.name, 'Deleted user');
    assert.equal(mine.member_count, 1, 'their membership ended');
    assert.deepEqual(await blocksOf(url, a.token), [], 'the erased user leaves the blocks list');
    const data = assertOk(await api(url, 'GET', '/api/user/export', { token: a.token }), 200, 'export');
    assert.deepEqual(data.blocks, []);
    assertP2Error(await dm(url, a.token, newName), 404, 'not_found', 'nobody has that name any more');
  });
});
