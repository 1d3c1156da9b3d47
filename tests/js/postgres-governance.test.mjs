// Room governance across two chatroom processes on one PostgreSQL (docs/protocol.md part 2):
// a removal given through one process silences the removed user's sockets on the other before
// the room's next message is delivered there; a rotated code is gone at once on both; people
// joining through one `maxUses` invite on both processes at the same moment are counted
// exactly; an edit, a reaction and a deletion on one process reach the other as
// `message_updated`, and reactions racing on both processes all count. Needs
// CHATROOM_TEST_DATABASE_URL, as postgres.test.mjs does; skipped without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  startServer, register, createRoom, joinRoom, send, messagesIn, waitFor, barrier, delay,
  closeAll, assertOk,
} from './helpers.mjs';
import {
  gov, okNull, roomList, watcher, roomEvents, roomLog, assertRoomEvent, assertP2Error,
} from './part2.mjs';
import {
  assertMsg, post, edit, del, react, updates, updateAt, current,
} from './messages.mjs';

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

for (const how of ['ban', 'kick']) {
  test(`a ${how} through one process silences the user's sockets on the other before the next message`, { skip, timeout: 90_000 }, async () => {
    const [a, b] = await cluster(2);
    // The removal is given on `given`; the removed user and a witness listen on `far`.
    const [given, far] = how === 'ban' ? [a, b] : [b, a];
    const open = [];
    try {
      const owner = await register(given.url);
      const room = await createRoom(given.url, owner.token);
      const [victim, witness] = [await register(far.url), await register(far.url)];
      await joinRoom(far.url, victim.token, room.room_hash_id);
      await joinRoom(far.url, witness.token, room.room_hash_id);
      const so = await watcher(given.url, owner, [room.id]);
      const sw = await watcher(far.url, witness, [room.id]);
      const v1 = await watcher(far.url, victim, [room.id]);
      const v2 = await watcher(far.url, victim, [room.id], ['polling']);
      open.push(so, sw, v1, v2);
      const warm = await send(so, room.id, 'everyone hears this');
      await waitFor(() => [sw, v1, v2].every((s) => messagesIn(s, room.id).some((m) => m.seq === warm.seq)), { message: 'the first message reaches the far process' });

      const type = how === 'ban' ? 'banned' : 'kicked';
      if (how === 'ban') await okNull(gov.ban(given.url, owner.token, room.id, victim.id, { reason: 'across' }), 'ban');
      else await okNull(gov.kick(given.url, owner.token, room.id, victim.id, { reason: 'across' }), 'kick');
      const next = await send(so, room.id, 'the next message');

      await waitFor(() => messagesIn(sw, room.id).some((m) => m.seq === next.seq), { message: 'the witness gets the next message' });
      for (const v of [v1, v2]) {
        await waitFor(() => roomEvents(v, room.id, type).length === 1, { message: `the removed socket gets its ${type}` });
        await barrier(v, [v]);
        await delay(300);
        assert.ok(!messagesIn(v, room.id).some((m) => m.seq === next.seq), `a ${type} user's socket on the other process got the next message`);
        const last = roomLog(v, room.id).at(-1);
        assert.equal(last.event, 'room_event', `the removal is the last event: ${JSON.stringify(last)}`);
        assertRoomEvent(last.data, { type, roomId: room.id, user: victim, by: owner });
      }
      const seen = roomEvents(sw, room.id, type);
      assert.equal(seen.length, 1);
      assert.equal(seen[0].version, roomEvents(v1, room.id, type)[0].version, 'one version on both processes');
      await waitFor(async () => (await gov.history(far.url, victim.token, room.id)).status === 403, { timeout: 1_000, message: 'history is 403 on the far process within a second' });
      assert.ok(!(await roomList(far.url, victim.token)).some((x) => x.id === room.id));
      if (how === 'ban') assertP2Error(await gov.join(far.url, victim.token, room.room_hash_id), 403, 'banned', 'rejoin on the far process');
      else assert.equal((await joinRoom(far.url, victim.token, room.room_hash_id)).id, room.id, 'a kicked user may rejoin');
    } finally {
      closeAll(open);
      await a.cleanup();
      await b.cleanup();
    }
  });
}

test('a code rotated on one process is gone at once on the other', { skip, timeout: 60_000 }, async () => {
  const [a, b] = await cluster(2);
  try {
    const owner = await register(a.url);
    const room = await createRoom(a.url, owner.token);
    const late = await register(b.url);
    const code = assertOk(await gov.rotate(a.url, owner.token, room.id), 200, 'rotate').room.room_hash_id;
    assertP2Error(await gov.join(b.url, late.token, room.room_hash_id), 410, 'gone', 'the old code on the other process');
    assert.equal((await joinRoom(b.url, late.token, code)).id, room.id);
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

test('joins through one maxUses invite on both processes at once are counted exactly', { skip, timeout: 90_000 }, async () => {
  const [a, b] = await cluster(2);
  try {
    const owner = await register(a.url);
    const room = await createRoom(a.url, owner.token);
    const inv = assertOk(await gov.createInvite(a.url, owner.token, room.id, { maxUses: 4 }), 201, 'invite').invite;
    for (let round = 0; round < 2; round += 1) {
      const people = await Promise.all(Array.from({ length: 16 }, (_, i) => register(i % 2 ? a.url : b.url)));
      const results = await Promise.all(people.map((p, i) => gov.join(i % 2 ? a.url : b.url, p.token, inv.code)));
      const wins = results.filter((x) => x.status === 200).length;
      assert.equal(wins, round === 0 ? 4 : 0, `statuses: ${results.map((x) => x.status).join(',')}`);
      for (const x of results.filter((y) => y.status !== 200)) assertP2Error(x, 410, 'gone', 'past maxUses');
    }
    for (const node of [a, b]) {
      await waitFor(async () => (await roomList(node.url, owner.token)).find((x) => x.id === room.id).member_count === 5, {
        timeout: 2_000, message: `member_count 5 on ${node.url}`,
      });
    }
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

test('an edit, a reaction and a deletion made on one process reach a subscriber on the other as message_updated', { skip, timeout: 90_000 }, async () => {
  const [a, b] = await cluster(2);
  const open = [];
  try {
    const owner = await register(a.url);
    const room = await createRoom(a.url, owner.token);
    const far = await register(b.url);
    await joinRoom(b.url, far.token, room.room_hash_id);
    const so = await watcher(a.url, owner, [room.id]);
    const sf = await watcher(b.url, far, [room.id], ['polling']);
    open.push(so, sf);
    const p = await post(so, room.id, 'said on A');
    await waitFor(() => messagesIn(sf, room.id).some((m) => m.seq === p.seq), { message: 'the post reaches B' });
    const e = await edit(so, room.id, p.seq, 'edited on A');
    assertMsg(await updateAt(sf, room.id, e.version, 'of the edit on B'), { seq: p.seq, text: 'edited on A', edited: e.editedAt, version: e.version, user: owner });
    const r = await react(so, room.id, p.seq, '👍');
    assertMsg(await updateAt(sf, room.id, r.version, 'of the reaction on B'), { seq: p.seq, text: 'edited on A', reactions: { '👍': [owner.id] }, version: r.version });
    const d = await del(so, room.id, p.seq);
    assertMsg(await updateAt(sf, room.id, d.version, 'of the deletion on B'), { seq: p.seq, deleted: true, version: d.version });
    assert.deepEqual(updates(sf, room.id).map((m) => m.version), [e.version, r.version, d.version], 'each once, in order');
    await waitFor(async () => (await current(b.url, far.token, room.id, p.seq)).version === d.version, { timeout: 1_000, message: 'B\'s history within a second' });
  } finally {
    closeAll(open);
    await a.cleanup();
    await b.cleanup();
  }
});

test('concurrent reactions to one message from both processes all count exactly', { skip, timeout: 120_000 }, async () => {
  const [a, b] = await cluster(2);
  const open = [];
  try {
    const owner = await register(a.url);
    const room = await createRoom(a.url, owner.token);
    const people = [];
    for (let i = 0; i < 16; i += 1) {
      const node = i % 2 ? b : a;
      const u = await register(node.url);
      await joinRoom(node.url, u.token, room.room_hash_id);
      people.push({ u, node, s: await watcher(node.url, u, [room.id]) });
    }
    open.push(...people.map((x) => x.s));
    const [wa, wb] = [people[0].s, people[1].s];
    const p = await post(wa, room.id, 'react to this from everywhere');
    await waitFor(() => people.every((x) => messagesIn(x.s, room.id).some((m) => m.seq === p.seq)), { message: 'everyone has the message' });

    const on = await Promise.all(people.flatMap((x) => [
      react(x.s, room.id, p.seq, '👍'),
      react(x.s, room.id, p.seq, x.node === a ? ':on-a:' : ':on-b:'),
    ]));
    assert.equal(new Set(on.map((x) => x.version)).size, on.length, 'each reaction took its own version');
    const top = Math.max(...on.map((x) => x.version));
    for (const w of [wa, wb]) {
      await waitFor(() => updates(w, room.id, p.seq).length === on.length, { message: `${on.length} message_updated on both processes` });
      const versions = updates(w, room.id, p.seq).map((m) => m.version);
      assert.deepEqual(versions, [...versions].sort((x, y) => x - y), 'in version order');
      const last = updates(w, room.id, p.seq).at(-1);
      assert.equal(last.version, top);
      assert.deepEqual([...last.reactions['👍']].sort(), people.map((x) => x.u.id).sort(), 'every 👍 once');
      assert.deepEqual([...last.reactions[':on-a:']].sort(), people.filter((x) => x.node === a).map((x) => x.u.id).sort());
      assert.deepEqual([...last.reactions[':on-b:']].sort(), people.filter((x) => x.node === b).map((x) => x.u.id).sort());
    }
    // Half take theirs back at once, from both processes; the rest stay, counted once.
    const off = people.filter((_, i) => i % 4 < 2);
    await Promise.all(off.map((x) => react(x.s, room.id, p.seq, '👍', false)));
    for (const [node, token] of [[a, owner.token], [b, people[1].u.token]]) {
      await waitFor(async () => {
        const m = await current(node.url, token, room.id, p.seq);
        return JSON.stringify([...m.reactions['👍']].sort()) === JSON.stringify(people.filter((x) => !off.includes(x)).map((x) => x.u.id).sort());
      }, { timeout: 2_000, message: `the 👍 of those who stayed, exactly, on ${node.url}` });
    }
  } finally {
    closeAll(open);
    await a.cleanup();
    await b.cleanup();
  }
});
