// Read state, presence and typing across chatroom processes on one PostgreSQL (docs/protocol.md
// part 2, "Read state, presence, typing"): a user connected only to process B is online for a
// member watching through process A, and so for a process started later; typing and
// read_updated cross processes; a process killed with SIGKILL takes its users offline on the
// others within 30 s. Needs CHATROOM_TEST_DATABASE_URL, as postgres.test.mjs does; skipped
// without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  startServer, register, createRoom, joinRoom, connect, emitAck, send, waitFor, delay,
  closeAll, barrier,
} from './helpers.mjs';
import { watcher } from './part2.mjs';
import {
  markRead, markReadRest, listed, presenceOf, typingIn, readUpdates, onlineIn, assertPresence,
  assertTyping,
} from './presence.mjs';

const ADMIN = process.env.CHATROOM_TEST_DATABASE_URL;
const skip = ADMIN ? false : 'CHATROOM_TEST_DATABASE_URL is not set: no PostgreSQL to test on';

function database() {
  const name = `chatroom_e2e_${randomUUID().replaceAll('-', '')}`;
  execSync(`psql "${ADMIN}" -q -c "create database ${name}"`);
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  return u.toString();
}

const node = (db) => startServer({ args: ['--database-url', db, '--send-rate-limit', '0'] });

test('presence, typing and read_updated cross processes; a late process knows who is online', { skip, timeout: 120_000 }, async () => {
  const db = database();
  const [a, b] = [await node(db), await node(db)];
  const nodes = [a, b];
  const open = [];
  try {
    const [alice, bob] = [await register(a.url), await register(a.url)];
    const room = await createRoom(a.url, alice.token);
    await joinRoom(a.url, bob.token, room.room_hash_id);
    const sa = await watcher(a.url, alice, [room.id]);
    open.push(sa);
    assert.equal(await onlineIn(a.url, alice.token, room.id, bob.id), false);

    // Bob only on B: online for alice on A, live and in the members list of both.
    const b1 = await watcher(b.url, bob, [room.id]);
    open.push(b1);
    await waitFor(() => presenceOf(sa, room.id, bob.id).length === 1, { message: 'alice on A hears bob come online on B' });
    assertPresence(presenceOf(sa, room.id, bob.id)[0], room.id, bob.id, true);
    for (const n of [a, b]) {
      await waitFor(() => onlineIn(n.url, alice.token, room.id, bob.id), { timeout: 2_000, message: `bob online in members on ${n === a ? 'A' : 'B'}` });
    }
    assert.equal(await onlineIn(b.url, bob.token, room.id, alice.id), true, 'alice on A is online on B');

    // A process started now learns from the tables who is online.
    const c = await node(db);
    nodes.push(c);
    await waitFor(() => onlineIn(c.url, alice.token, room.id, bob.id), { timeout: 10_000, message: 'a late process knows bob is online' });
    assert.equal(await onlineIn(c.url, alice.token, room.id, alice.id), true);

    // Typing crosses processes, both ways, and never reaches the typist.
    assert.deepEqual(await emitAck(b1, 'typing', { roomId: room.id }), { ok: true });
    await waitFor(() => typingIn(sa, room.id).length === 1, { message: 'alice on A hears bob type on B' });
    assertTyping(typingIn(sa, room.id)[0], room.id, bob);
    assert.deepEqual(await emitAck(sa, 'typing', { roomId: room.id }), { ok: true });
    await waitFor(() => typingIn(b1, room.id).length === 1, { message: 'bob on B hears alice type on A' });
    assertTyping(typingIn(b1, room.id)[0], room.id, alice);
    await delay(300);
    assert.equal(typingIn(sa, room.id).length, 1, 'alice does not hear herself');

    // read_updated: the marking socket's other sockets on every process.
    const b2 = await watcher(a.url, bob); // bob on A too, not subscribed
    open.push(b2);
    for (let i = 0; i < 3; i += 1) await send(sa, room.id, `m${i}`);
    await waitFor(async () => (await listed(b.url, bob.token, room.id)).last_seq === 3, { message: 'B reads the messages' });
    assert.equal(await markRead(b1, room.id, 2), 2);
    await waitFor(() => readUpdates(b2, room.id).length === 1, { message: 'bob\'s socket on A hears of the marker set on B' });
    assert.deepEqual(readUpdates(b2, room.id)[0], { roomId: room.id, lastReadSeq: 2 });
    assert.equal(await markReadRest(a.url, bob.token, room.id, 3), 3);
    await waitFor(() => readUpdates(b1, room.id).length === 1 && readUpdates(b2, room.id).length === 2, { message: 'a REST marker on A reaches bob everywhere' });
    await barrier(b1, [b1]);
    assert.equal(readUpdates(b1, room.id)[0].lastReadSeq, 3, 'the socket that marked on B heard only the REST marker');
    assert.equal(readUpdates(sa, room.id).length, 0, 'nobody else');
    // The marker is one, whichever process reads it.
    for (const n of [a, b, c]) {
      const r = await listed(n.url, bob.token, room.id);
      assert.deepEqual([r.last_read_seq, r.unread], [3, 0]);
    }
    assert.equal(await markRead(b1, room.id, 1), 3, 'forward only on every process');

    // Bob's last socket anywhere going takes him offline; one of two is not enough.
    b1.close();
    await delay(700);
    assert.equal(presenceOf(sa, room.id, bob.id).length, 1, 'bob still has a socket on A');
    assert.equal(await onlineIn(a.url, alice.token, room.id, bob.id), true);
    b2.close();
    await waitFor(() => presenceOf(sa, room.id, bob.id).length === 2, { message: 'alice hears bob go offline' });
    assertPresence(presenceOf(sa, room.id, bob.id)[1], room.id, bob.id, false);
    for (const n of [a, b, c]) {
      await waitFor(async () => !(await onlineIn(n.url, alice.token, room.id, bob.id)), { timeout: 2_000, message: 'bob offline everywhere' });
    }
  } finally {
    closeAll(open);
    for (const n of nodes) await n.cleanup();
  }
});

test('a process killed with SIGKILL takes its users offline on the others within 30 s', { skip, timeout: 120_000 }, async (t) => {
  const db = database();
  const [a, b] = [await node(db), await node(db)];
  const open = [];
  try {
    const [alice, bob] = [await register(a.url), await register(a.url)];
    const room = await createRoom(a.url, alice.token);
    await joinRoom(a.url, bob.token, room.room_hash_id);
    const sa = await watcher(a.url, alice, [room.id]);
    const sb = await connect(b.url, bob.token);
    const sb2 = await connect(b.url, bob.token, ['polling']);
    open.push(sa, sb, sb2);
    await waitFor(() => presenceOf(sa, room.id, bob.id).length === 1, { message: 'bob online through B' });
    await waitFor(() => onlineIn(a.url, alice.token, room.id, bob.id), { timeout: 2_000 });
    // Let B's heartbeat write its users: the kill must not be mistaken for a clean stop.
    await delay(1_000);

    const killed = Date.now();
    await b.kill9();
    await waitFor(() => presenceOf(sa, room.id, bob.id).length === 2, { timeout: 30_000, interval: 100, message: 'bob offline on A within 30 s of B\'s SIGKILL' });
    const took = Date.now() - killed;
    assertPresence(presenceOf(sa, room.id, bob.id)[1], room.id, bob.id, false);
    assert.ok(took < 30_000, `offline after ${took} ms`);
    t.diagnostic(`bob went offline on A ${took} ms after B's SIGKILL`);
    assert.equal(await onlineIn(a.url, alice.token, room.id, bob.id), false);
    assert.equal(await onlineIn(a.url, bob.token, room.id, alice.id), true, 'A\'s own users stay online');

    // B comes back (a new process on the same database): bob connecting there is online again.
    await b.restart();
    const again = await connect(b.url, bob.token);
    open.push(again);
    await waitFor(() => presenceOf(sa, room.id, bob.id).length === 3, { message: 'bob online again through the new B' });
    assert.equal(presenceOf(sa, room.id, bob.id)[2].online, true);
  } finally {
    closeAll(open);
    await a.cleanup();
    await b.cleanup();
  }
});
