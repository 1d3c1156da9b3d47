// Read state, presence and typing on the embedded store (docs/protocol.md part 2, "Read
// state, presence, typing", and the issue 32 section): read markers that only move forward,
// are clamped to the newest message and drive `unread`; `read_updated` to the user's other
// sockets only; `typing` to the room's other subscribers, one a second; `presence` when a
// user's first socket connects and their last goes; `online` in the members list; markers in
// the export, kept across a restart and a rebuild of the read tables, gone with an erasure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  BIN, startServer, register, createRoom, joinRoom, connect, emitAck, send, waitFor, delay,
  closeAll, api, assertOk, assertError, barrier, history,
} from './helpers.mjs';
import { gov, okNull, watcher, assertP2Error } from './part2.mjs';
import { edit, del, post } from './messages.mjs';
import {
  restRead, markRead, markReadRest, listed, presenceOf, typingIn, readUpdates, onlineIn,
  assertPresence, assertTyping,
} from './presence.mjs';

const run = promisify(execFile);

/** A server without a send limit (the tests mark and post in bursts). */
const start = () => startServer({ args: ['--send-rate-limit', '0'] });

/** Lets anything still under way reach `sockets` (a round trip through each), then a little. */
async function settle(sockets) {
  await barrier(sockets[0], sockets);
  await delay(300);
}

test('read markers move forward only, are clamped to the newest message, and drive unread', { timeout: 60_000 }, async () => {
  const server = await start();
  const open = [];
  try {
    const { url } = server;
    const [alice, bob, carol, dave] = [await register(url), await register(url), await register(url), await register(url)];
    const room = await createRoom(url, alice.token);
    for (const u of [bob, carol]) await joinRoom(url, u.token, room.room_hash_id);
    const sa = await watcher(url, alice, [room.id]);
    const sb = await watcher(url, bob, [room.id]);
    open.push(sa, sb);
    for (const t of ['a1', 'a2', 'a3']) await post(sa, room.id, t);
    for (const t of ['b4', 'b5']) await post(sb, room.id, t);
    await post(sa, room.id, 'a6');

    // No marker: nothing read; unread counts the others' messages only. Alice's last post
    // reaches bob's reads within a second (read your writes is the writer's own).
    await waitFor(async () => (await listed(url, bob.token, room.id)).last_seq === 6, { message: 'bob reads alice\'s last post' });
    let b = await listed(url, bob.token, room.id);
    assert.equal(b.last_read_seq, 0);
    assert.equal(b.unread, 4, 'alice wrote 4 of the 6');
    assert.equal(b.last_seq, 6);

    assert.equal(await markRead(sb, room.id, 2), 2);
    b = await listed(url, bob.token, room.id);
    assert.deepEqual([b.last_read_seq, b.unread], [2, 2], 'after 2: alice\'s 3 and 6');
    // Lower or equal changes nothing and answers the marker as it is.
    assert.equal(await markRead(sb, room.id, 1), 2);
    assert.equal(await markRead(sb, room.id, 0), 2);
    assert.equal(await markReadRest(url, bob.token, room.id, 2), 2);

    // An edit changes nothing; a deletion takes the message out of the count.
    await edit(sa, room.id, 3, 'a3 edited');
    assert.equal((await listed(url, bob.token, room.id)).unread, 2);
    await del(sa, room.id, 6);
    // Another's change reaches one's reads within a second (read your writes is one's own).
    await waitFor(async () => (await listed(url, bob.token, room.id)).unread === 1, { message: 'the deletion leaves one unread' });

    // Posting does not move one's marker, and one's own message is never unread.
    await post(sb, room.id, 'b7');
    b = await listed(url, bob.token, room.id);
    assert.deepEqual([b.last_read_seq, b.unread, b.last_seq], [2, 1, 7]);

    // Past the newest message: clamped to it.
    assert.equal(await markRead(sb, room.id, 1_000_000), 7);
    b = await listed(url, bob.token, room.id);
    assert.deepEqual([b.last_read_seq, b.unread], [7, 0]);

    // Carol never marked: everything by others that is not deleted is unread; REST marks.
    await waitFor(async () => (await listed(url, carol.token, room.id)).last_seq === 7, { message: 'carol reads bob\'s post' });
    let c = await listed(url, carol.token, room.id);
    assert.deepEqual([c.last_read_seq, c.unread], [0, 6], 'seqs 1-5 and 7 (6 is deleted)');
    assert.equal(await markReadRest(url, carol.token, room.id, 3), 3);
    assert.equal(await markReadRest(url, carol.token, room.id, 1), 3, 'REST is forward only too');
    c = await listed(url, carol.token, room.id);
    assert.deepEqual([c.last_read_seq, c.unread], [3, 3]);
    // The room object answered to a member carries the read state too.
    const joined = assertOk(await gov.join(url, carol.token, room.room_hash_id), 200, 'join again').room;
    assert.deepEqual([joined.last_read_seq, joined.unread], [3, 3]);
    const fresh = await joinRoom(url, dave.token, room.room_hash_id);
    assert.deepEqual([fresh.last_read_seq, fresh.unread], [0, 6], 'a new member has read nothing');
    const made = await createRoom(url, alice.token);
    assert.deepEqual([made.last_read_seq, made.unread], [0, 0]);

    // Bad input changes nothing.
    for (const body of [{}, { seq: -1 }, { seq: 'x' }, { seq: 1.5 }, { seq: null }]) {
      assertError(await restRead(url, carol.token, room.id, body), 400, `read ${JSON.stringify(body)}`);
    }
    assertError(await api(url, 'POST', `/api/room/${room.id}/read`, { token: carol.token, raw: '{' }), 400, 'malformed JSON');
    for (const payload of [{ roomId: room.id }, { roomId: room.id, seq: -2 }, { seq: 4 }, { roomId: room.id, seq: '4' }]) {
      const ack = await emitAck(sb, 'mark_read', payload);
      assert.equal(ack?.ok, false, JSON.stringify(payload));
      assert.equal(ack.error.code, 'bad_request', JSON.stringify(ack));
    }
    assert.equal((await listed(url, carol.token, room.id)).last_read_seq, 3);

    // Members only: 403 / not_member for a non-member, 404 / not_found for no room.
    const eve = await register(url);
    const se = await connect(url, eve.token);
    open.push(se);
    assertP2Error(await restRead(url, eve.token, room.id, { seq: 1 }), 403, 'not_member', 'non-member REST');
    assertError(await restRead(url, eve.token, 'no-such-room', { seq: 1 }), 404, 'unknown room');
    assertError(await restRead(url, undefined, room.id, { seq: 1 }), 401, 'no token');
    let ack = await emitAck(se, 'mark_read', { roomId: room.id, seq: 1 });
    assert.deepEqual([ack.ok, ack.error?.code], [false, 'not_member'], JSON.stringify(ack));
    ack = await emitAck(se, 'mark_read', { roomId: 'no-such-room', seq: 1 });
    assert.deepEqual([ack.ok, ack.error?.code], [false, 'not_found'], JSON.stringify(ack));

    // A muted member and an archived room still take markers.
    assertOk(await gov.mute(url, alice.token, room.id, carol.id, { durationSecs: 600 }), 200, 'mute');
    assert.equal(await markReadRest(url, carol.token, room.id, 4), 4);
    assertOk(await gov.patch(url, alice.token, room.id, { archived: true }), 200, 'archive');
    assert.equal(await markReadRest(url, carol.token, room.id, 5), 5);
    assert.equal(await markReadRest(url, dave.token, room.id, 7), 7);
  } finally {
    closeAll(open);
    await server.cleanup();
  }
});

test('mark_read and REST read count against the send rate limit', { timeout: 30_000 }, async () => {
  const server = await startServer({ args: ['--send-rate-limit', '1'] });
  const open = [];
  try {
    const { url } = server;
    const alice = await register(url);
    const room = await createRoom(url, alice.token);
    const sa = await watcher(url, alice, [room.id]);
    open.push(sa);
    await send(sa, room.id, 'one');
    // The burst is the limit's (at least 100); past it, markers are refused like sends.
    const answers = [];
    for (let i = 0; i < 150; i += 1) answers.push(await emitAck(sa, 'mark_read', { roomId: room.id, seq: 1 }));
    const refused = answers.filter((a) => a.ok === false);
    assert.ok(refused.length > 0, 'some markers were refused');
    for (const a of refused) assert.equal(a.error.code, 'rate_limited');
    assertError(await restRead(url, alice.token, room.id, { seq: 1 }), 429, 'REST past the limit');
  } finally {
    closeAll(open);
    await server.cleanup();
  }
});

test('read_updated goes to every other socket of the user, never to the one that marked', { timeout: 60_000 }, async () => {
  const server = await start();
  const open = [];
  try {
    const { url } = server;
    const [alice, bob] = [await register(url), await register(url)];
    const room = await createRoom(url, alice.token);
    await joinRoom(url, bob.token, room.room_hash_id);
    const sa = await watcher(url, alice, [room.id]);
    const b1 = await watcher(url, bob, [room.id]);
    const b2 = await watcher(url, bob, [room.id], ['polling']);
    const b3 = await watcher(url, bob); // not subscribed to the room
    open.push(sa, b1, b2, b3);
    for (let i = 0; i < 3; i += 1) await send(sa, room.id, `m${i}`);

    assert.equal(await markRead(b1, room.id, 2), 2);
    await waitFor(() => readUpdates(b2, room.id).length === 1 && readUpdates(b3, room.id).length === 1, { message: 'the other sockets hear of it' });
    for (const s of [b2, b3]) {
      const [u] = readUpdates(s, room.id);
      assert.deepEqual(u, { roomId: room.id, lastReadSeq: 2 }, 'exactly roomId and lastReadSeq, no version');
    }
    await settle([b1, b2, b3, sa]);
    assert.equal(readUpdates(b1, room.id).length, 0, 'not the socket that marked');
    assert.equal(readUpdates(sa, room.id).length, 0, 'nobody else');

    // A marker that does not move tells nobody.
    assert.equal(await markRead(b1, room.id, 1), 2);
    assert.equal(await markReadRest(url, bob.token, room.id, 2), 2);
    await settle([b1, b2, b3]);
    assert.deepEqual([b1, b2, b3].map((s) => readUpdates(s, room.id).length), [0, 1, 1]);

    // Through REST: every socket of the user.
    assert.equal(await markReadRest(url, bob.token, room.id, 3), 3);
    await waitFor(() => [b1, b2, b3].every((s) => readUpdates(s, room.id).at(-1)?.lastReadSeq === 3), { message: 'all of bob\'s sockets hear of a REST marker' });
    assert.deepEqual([b1, b2, b3].map((s) => readUpdates(s, room.id).length), [1, 2, 2]);
    await settle([sa]);
    assert.equal(readUpdates(sa, room.id).length, 0);
  } finally {
    closeAll(open);
    await server.cleanup();
  }
});

test('typing reaches the room\'s other subscribers only, at most once a second, and is never stored', { timeout: 60_000 }, async () => {
  const server = await start();
  const open = [];
  try {
    const { url } = server;
    const [alice, bob, carol, dave] = [await register(url), await register(url), await register(url), await register(url)];
    const room = await createRoom(url, alice.token);
    for (const u of [bob, carol]) await joinRoom(url, u.token, room.room_hash_id);
    const other = await createRoom(url, bob.token);
    const a1 = await watcher(url, alice, [room.id]);
    const a2 = await watcher(url, alice, [room.id], ['polling']);
    const b1 = await watcher(url, bob, [room.id, other.id]);
    const c1 = await watcher(url, carol); // a member, not subscribed
    const d1 = await watcher(url, dave);
    open.push(a1, a2, b1, c1, d1);
    await send(a1, room.id, 'before typing');

    let ack = await emitAck(a1, 'typing', { roomId: room.id });
    assert.deepEqual(ack, { ok: true });
    await waitFor(() => typingIn(b1, room.id).length === 1, { message: 'bob hears alice typing' });
    assertTyping(typingIn(b1, room.id)[0], room.id, alice);
    // Past one a second: dropped silently, still acked ok (from either of alice's sockets).
    assert.deepEqual(await emitAck(a1, 'typing', { roomId: room.id }), { ok: true });
    assert.deepEqual(await emitAck(a2, 'typing', { roomId: room.id }), { ok: true });
    await settle([a1, a2, b1, c1, d1]);
    assert.equal(typingIn(b1, room.id).length, 1, 'the repeats within a second were dropped');
    assert.equal(typingIn(a1, room.id).length + typingIn(a2, room.id).length, 0, 'none of the typist\'s sockets');
    assert.equal(typingIn(c1, room.id).length, 0, 'not a socket that did not subscribe');
    assert.equal(typingIn(d1, room.id).length, 0, 'not a non-member');
    await delay(1_100);
    assert.deepEqual(await emitAck(a2, 'typing', { roomId: room.id }), { ok: true });
    await waitFor(() => typingIn(b1, room.id).length === 2, { message: 'a second later it passes again' });

    // The other way, and per room: bob typing in another room is his own count.
    assert.deepEqual(await emitAck(b1, 'typing', { roomId: other.id }), { ok: true });
    assert.deepEqual(await emitAck(b1, 'typing', { roomId: room.id }), { ok: true });
    await waitFor(() => typingIn(a1, room.id).length === 1 && typingIn(a2, room.id).length === 1, { message: 'alice\'s sockets hear bob' });
    assertTyping(typingIn(a1, room.id)[0], room.id, bob);
    assert.equal(typingIn(a1, other.id).length, 0, 'alice is not in the other room');

    // A member typing without having subscribed; a muted member may type.
    assertOk(await gov.mute(url, alice.token, room.id, carol.id, { durationSecs: 600 }), 200, 'mute');
    assert.deepEqual(await emitAck(c1, 'typing', { roomId: room.id }), { ok: true });
    await waitFor(() => typingIn(b1, room.id).some((t) => t.user.id === carol.id), { message: 'carol (muted, not subscribed) types' });

    // Refusals.
    ack = await emitAck(d1, 'typing', { roomId: room.id });
    assert.deepEqual([ack.ok, ack.error?.code], [false, 'not_member'], JSON.stringify(ack));
    ack = await emitAck(d1, 'typing', { roomId: 'no-such-room' });
    assert.deepEqual([ack.ok, ack.error?.code], [false, 'not_found'], JSON.stringify(ack));
    for (const payload of [{}, { roomId: 7 }, 'room', null]) {
      ack = await emitAck(a1, 'typing', payload);
      assert.deepEqual([ack.ok, ack.error?.code], [false, 'bad_request'], JSON.stringify(payload));
    }
    // A kicked member's socket no longer hears anyone typing.
    await okNull(gov.kick(url, alice.token, room.id, bob.id), 'kick');
    await waitFor(() => b1.log.some((e) => e.event === 'room_event' && e.data.type === 'kicked'), { message: 'bob is told of his kick' });
    await delay(1_100);
    const before = typingIn(b1, room.id).length;
    assert.deepEqual(await emitAck(a1, 'typing', { roomId: room.id }), { ok: true });
    await settle([a1, b1]);
    assert.equal(typingIn(b1, room.id).length, before, 'a removed socket hears nothing of the room');
    ack = await emitAck(b1, 'typing', { roomId: room.id });
    assert.deepEqual([ack.ok, ack.error?.code], [false, 'not_member'], 'nor may it type there');

    const msgs = await history(url, alice.token, room.id);
    assert.deepEqual(msgs.map((m) => m.message), ['before typing'], 'typing is never stored');
  } finally {
    closeAll(open);
    await server.cleanup();
  }
});

test('presence: online with the first socket, offline with the last; online in members', { timeout: 60_000 }, async () => {
  const server = await start();
  const open = [];
  try {
    const { url } = server;
    const [alice, bob, carol] = [await register(url), await register(url), await register(url)];
    const room = await createRoom(url, alice.token);
    const second = await createRoom(url, alice.token);
    const apart = await createRoom(url, carol.token);
    await joinRoom(url, bob.token, room.room_hash_id);
    await joinRoom(url, bob.token, second.room_hash_id);
    await joinRoom(url, carol.token, room.room_hash_id);
    const a1 = await watcher(url, alice, [room.id, second.id]);
    const c1 = await watcher(url, carol, [apart.id]); // only in a room bob is not in
    open.push(a1, c1);
    assert.equal(await onlineIn(url, alice.token, room.id, bob.id), false);
    assert.equal(await onlineIn(url, bob.token, room.id, alice.id), true, 'alice has a socket');

    const b1 = await connect(url, bob.token);
    open.push(b1);
    await waitFor(() => presenceOf(a1, room.id, bob.id).length === 1 && presenceOf(a1, second.id, bob.id).length === 1, { message: 'alice hears bob come online in both rooms' });
    assertPresence(presenceOf(a1, room.id, bob.id)[0], room.id, bob.id, true);
    assert.equal(await onlineIn(url, alice.token, room.id, bob.id), true);

    // A second socket, then closing one of two: no change.
    const b2 = await connect(url, bob.token, ['polling']);
    open.push(b2);
    b1.close();
    await delay(500);
    await settle([a1]);
    assert.equal(presenceOf(a1, room.id, bob.id).length, 1, 'no presence while bob keeps a socket');
    assert.equal(await onlineIn(url, alice.token, room.id, bob.id), true);

    // Closing the last and coming back within the grace (a reload, a network change): no
    // change either.
    b2.close();
    await delay(300);
    const b3 = await connect(url, bob.token);
    open.push(b3);
    await delay(2_500);
    await settle([a1]);
    assert.equal(presenceOf(a1, room.id, bob.id).length, 1, 'no presence for a reconnect within the grace');
    assert.equal(await onlineIn(url, alice.token, room.id, bob.id), true);

    const closed = Date.now();
    b3.close();
    await waitFor(() => presenceOf(a1, room.id, bob.id).length === 2 && presenceOf(a1, second.id, bob.id).length === 2, { message: 'alice hears bob go offline' });
    const took = Date.now() - closed;
    assert.ok(took >= 1_900 && took < 5_000, `offline ${took} ms after the last socket closed (a grace of 2 s, swept each second)`);
    assertPresence(presenceOf(a1, room.id, bob.id)[1], room.id, bob.id, false);
    assertPresence(presenceOf(a1, second.id, bob.id)[1], second.id, bob.id, false);
    assert.equal(await onlineIn(url, alice.token, room.id, bob.id), false);
    assert.equal(c1.log.filter((e) => e.event === 'presence' && e.data.userId === bob.id && e.data.roomId === apart.id).length, 0, 'not a room bob is not in');
    assert.equal(presenceOf(c1, apart.id, bob.id).length, 0);
  } finally {
    closeAll(open);
    await server.cleanup();
  }
});

test('markers are in the export, survive a rebuild of the read tables and a restart, and go with an erasure', { timeout: 120_000 }, async () => {
  const server = await start();
  const open = [];
  try {
    const [alice, bob] = [await register(server.url), await register(server.url)];
    const room = await createRoom(server.url, alice.token);
    const other = await createRoom(server.url, alice.token);
    for (const r of [room, other]) await joinRoom(server.url, bob.token, r.room_hash_id);
    const sa = await watcher(server.url, alice, [room.id, other.id]);
    open.push(sa);
    for (let i = 0; i < 4; i += 1) await send(sa, room.id, `r${i}`);
    await send(sa, other.id, 'o0');
    assert.equal(await markReadRest(server.url, bob.token, room.id, 3), 3);
    assert.equal(await markReadRest(server.url, bob.token, other.id, 1), 1);

    const exported = async (token) => assertOk(await api(server.url, 'GET', '/api/user/export', { token }), 200, 'export').readMarkers;
    const sorted = (xs) => [...xs].sort((x, y) => String(x.roomId).localeCompare(String(y.roomId)));
    const want = sorted([{ roomId: room.id, lastReadSeq: 3 }, { roomId: other.id, lastReadSeq: 1 }]);
    assert.deepEqual(sorted(await exported(bob.token)), want);
    assert.deepEqual(await exported(alice.token), [], 'alice never marked');

    // The projections rebuilt from the log leave the markers as they were.
    const { stdout } = await run(BIN, ['projections', 'rebuild', '--data-dir', server.dataDir], { env: { ...process.env, RUST_LOG: 'warn' } });
    assert.match(stdout, /switched over/);
    let b = await listed(server.url, bob.token, room.id);
    assert.deepEqual([b.last_read_seq, b.unread], [3, 1]);
    closeAll(open);
    open.length = 0;
    await server.restart();
    b = await listed(server.url, bob.token, room.id);
    assert.deepEqual([b.last_read_seq, b.unread], [3, 1], 'after a restart');
    assert.deepEqual(sorted(await exported(bob.token)), want);

    // Erasure: bob's markers are deleted, and his socket's going tells the room he is offline.
    const a2 = await watcher(server.url, alice, [room.id]);
    const b1 = await connect(server.url, bob.token);
    open.push(a2, b1);
    await waitFor(() => presenceOf(a2, room.id, bob.id).length === 1, { message: 'bob online' });
    await okNull(api(server.url, 'DELETE', '/api/user', { token: bob.token, body: { password: bob.password } }), 'erase bob');
    await waitFor(() => presenceOf(a2, room.id, bob.id).some((p) => p.online === false), { message: 'bob goes offline with his erasure' });
    // Read where the markers are: read.db, or PostgreSQL when the suite runs on it.
    const query = `select count(*) from read_marker where user_id = '${bob.id}'`;
    const left = process.env.DATABASE_URL
      ? execFileSync('psql', [process.env.DATABASE_URL, '-qtA', '-c', query]).toString().trim()
      : execFileSync('sqlite3', [path.join(server.dataDir, 'read.db'), query]).toString().trim();
    assert.equal(left, '0', 'no marker of an erased user is left');
    assert.equal(await markReadRest(server.url, alice.token, room.id, 4), 4, 'others still mark');
  } finally {
    closeAll(open);
    await server.cleanup();
  }
});
