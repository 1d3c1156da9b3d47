// Direct rooms across two chatroom processes on one PostgreSQL (docs/protocol.md part 2,
// "Direct messages"): two people opening their room at the same moment, one on each process,
// always get one room, one 201 and one 200; a block given through one process refuses the
// blocked person's next post on the other. Needs CHATROOM_TEST_DATABASE_URL, as
// postgres.test.mjs does; skipped without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  startServer, api, assertOk, register, connect, emitAck, send, closeAll, newMsgId,
} from './helpers.mjs';
import { okNull } from './part2.mjs';

const ADMIN = process.env.CHATROOM_TEST_DATABASE_URL;
const skip = ADMIN ? false : 'CHATROOM_TEST_DATABASE_URL is not set: no PostgreSQL to test on';

async function cluster(n) {
  const name = `chatroom_e2e_${randomUUID().replaceAll('-', '')}`;
  execSync(`psql "${ADMIN}" -q -c "create database ${name}"`);
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  const nodes = [];
  for (let i = 0; i < n; i += 1) {
    nodes.push(await startServer({ args: ['--database-url', u.toString(), '--send-rate-limit', '0'] }));
  }
  return nodes;
}

const dm = (url, token, username) => api(url, 'POST', '/api/dm', { token, body: { username } });

test('two people opening their room at once on two processes get one room', { skip, timeout: 180_000 }, async () => {
  const [n0, n1] = await cluster(2);
  try {
    for (let i = 0; i < 25; i += 1) {
      const a = await register(n0.url);
      const b = await register(n1.url);
      const [ra, rb] = await Promise.all([dm(n0.url, a.token, b.name), dm(n1.url, b.token, a.name)]);
      const statuses = [ra.status, rb.status].sort();
      assert.deepEqual(statuses, [200, 201], `round ${i}: ${ra.text} / ${rb.text}`);
      const [roomA, roomB] = [ra.body.data.room, rb.body.data.room];
      assert.equal(roomA.id, roomB.id, `round ${i}: one room`);
      assert.equal(roomA.name, b.name);
      assert.equal(roomB.name, a.name);
      for (const [node, user] of [[n0, a], [n1, b], [n1, a], [n0, b]]) {
        const list = assertOk(await api(node.url, 'GET', '/api/room/list', { token: user.token }), 200, 'list').roomList;
        const direct = list.filter((r) => r.kind === 'direct');
        assert.equal(direct.length, 1, `round ${i}: one direct room in the list`);
        assert.equal(direct[0].member_count, 2);
      }
    }
  } finally {
    await Promise.all([n0.cleanup(), n1.cleanup()]);
  }
});

test('a block through one process refuses a post on the other', { skip, timeout: 90_000 }, async () => {
  const [n0, n1] = await cluster(2);
  const a = await register(n0.url);
  const b = await register(n1.url);
  const room = assertOk(await dm(n1.url, b.token, a.name), 201, 'open').room;
  const sb = await connect(n1.url, b.token);
  try {
    assert.equal((await emitAck(sb, 'join_all', { roomList: [room.id] })).ok, true);
    await send(sb, room.id, 'before the block');
    await okNull(api(n0.url, 'POST', `/api/user/blocks/${b.id}`, { token: a.token }), 'block on n0');
    const refused = await emitAck(sb, 'user_send_message', { roomId: room.id, id: newMsgId(), message: 'after', type: 'input' });
    assert.equal(refused.ok, false, JSON.stringify(refused));
    assert.equal(refused.error.code, 'forbidden');
    const reopened = await dm(n1.url, b.token, a.name);
    assert.equal(reopened.status, 403);
    await okNull(api(n0.url, 'DELETE', `/api/user/blocks/${b.id}`, { token: a.token }), 'unblock on n0');
    await send(sb, room.id, 'after the unblock');
  } finally {
    closeAll(sb);
    await Promise.all([n0.cleanup(), n1.cleanup()]);
  }
});
