// Socket.IO contract of chatroom (docs/protocol.md), namespace /chatroom, run over both the
// websocket and the polling transport: authentication on connect, join_one_chat / join_all acks
// and join notices, user_send_message acks, seq order and delivery, membership, payload userId,
// text limits, exact (non-markup) delivery, idempotent retries, chat_error without ack,
// test_input, the per-user send rate limit, and disconnection on logout and token expiry.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  TRANSPORTS, startServer, api, assertOk, assertError, register, registerMany, login, createRoom,
  joinRoom, roomWith, history, connect, connectError, emitAck, ackError, joinOne, send, newMsgId,
  messagesIn, joinNoticesIn, waitFor, barrier, closeAll, assertMessage, assertTime,
  assertSeqRange, uniqueName, assertKeys, connectRaw, historyCaughtUp,
} from './helpers.mjs';

/** Part 1's view of a value: without the `version` and `lastVersion` that part 2 adds. */
function part1(x) {
  if (Array.isArray(x)) return x.map(part1);
  if (!x || typeof x !== 'object') return x;
  return Object.fromEntries(Object.entries(x).filter(([k]) => k !== 'version' && k !== 'lastVersion').map(([k, v]) => [k, part1(v)]));
}

let server;
let url;
const open = [];

/** connect and remember the socket so that afterEach closes it */
async function sock(token, transports) {
  const s = await connect(url, token, transports);
  open.push(s);
  return s;
}

before(async () => {
  server = await startServer();
  url = server.url;
});

after(async () => {
  closeAll(open);
  await server?.cleanup();
});

afterEach(() => {
  closeAll(open.splice(0));
});

for (const transports of TRANSPORTS) {
  const T = transports.join('+');

  describe(`socket over ${T}`, () => {
    let alice;
    let bob;
    let carol;

    before(async () => {
      [alice, bob, carol] = await registerMany(url, 3, `S${T[0]}`);
    });

    it('refuses connections without a valid token with connect_error "unauthorized"', async () => {
      const bad = [undefined, '', 'garbage', `${alice.token}x`, 12345, null];
      for (const token of bad) {
        const err = await connectError(url, token, transports);
        assert.equal(err.message, 'unauthorized', `token ${JSON.stringify(token)}`);
      }
      // an auth object without token at all
      const err = await connectError(url, undefined, transports, { auth: { user: alice.id } });
      assert.equal(err.message, 'unauthorized');
      // a valid token connects
      const s = await sock(alice.token, transports);
      assert.ok(s.connected);
    });

    it('handles an event emitted right after connect', async () => {
      // what every client does: connect, then at once join its rooms (sequential connections,
      // stopping at the first event that is not handled)
      // A user of its own: each join counts against the user's join limit (20 a second, bursts
      // of 200), and the other tests need alice's.
      const racer = await register(url);
      const room = await roomWith(url, alice, [racer]);
      const N = 190;
      for (let i = 0; i < N; i += 1) {
        const s = await connectRaw(url, racer.token, transports);
        open.push(s);
        let outcome;
        try {
          const ack = await s.timeout(3_000).emitWithAck('join_one_chat', { roomId: room.id });
          outcome = ack?.ok === true ? 'ok' : `bad ack ${JSON.stringify(ack)}`;
        } catch (e) {
          outcome = `no ack within 3 s and ${joinNoticesIn(s, room.id).length} join notices`;
        }
        s.close();
        assert.equal(outcome, 'ok', `connection ${i + 1}: join_one_chat emitted right after connect was not handled`);
      }
    });

    it('join_one_chat acks {ok, rooms:[{roomId, ok, lastSeq, recovered}]} and sends join notices', async () => {
      const room = await roomWith(url, alice, [bob]);
      const a1 = await sock(alice.token, transports);
      const ack = await emitAck(a1, 'join_one_chat', { roomId: room.id });
      assert.deepEqual(part1(ack), { ok: true, rooms: [{ roomId: room.id, ok: true, lastSeq: 0, recovered: false }] });
      await waitFor(() => joinNoticesIn(a1, room.id).length === 1, { message: 'own join notice' });
      assert.deepEqual(part1(joinNoticesIn(a1, room.id)[0]), {
        type: 'join', roomId: room.id, user: { id: alice.id, name: alice.name, avatarImage: '' },
      });

      const b1 = await sock(bob.token, transports);
      const bAck = await emitAck(b1, 'join_one_chat', { roomId: room.id });
      assert.deepEqual(part1(bAck), { ok: true, rooms: [{ roomId: room.id, ok: true, lastSeq: 0, recovered: false }] });
      const bobNotice = { type: 'join', roomId: room.id, user: { id: bob.id, name: bob.name, avatarImage: '' } };
      await waitFor(() => joinNoticesIn(a1, room.id).length === 2 && joinNoticesIn(b1, room.id).length === 1, { message: 'bob join notices' });
      assert.deepEqual(part1(joinNoticesIn(a1, room.id)[1]), bobNotice);
      assert.deepEqual(part1(joinNoticesIn(b1, room.id)[0]), bobNotice);

      // lastSeq follows the room
      await send(a1, room.id, 'one');
      await send(a1, room.id, 'two');
      const again = await joinOne(b1, room.id);
      assert.deepEqual(part1(again), { roomId: room.id, ok: true, lastSeq: 2, recovered: false });
      // joining again is harmless: still exactly one copy of each later message
      await send(a1, room.id, 'three');
      await waitFor(() => messagesIn(b1, room.id).some((m) => m.seq === 3));
      await barrier(a1, [b1]);
      assert.deepEqual(messagesIn(b1, room.id).map((m) => m.seq), [1, 2, 3]);
    });

    it('join_one_chat refuses non-members, unknown and malformed rooms', async () => {
      const room = await roomWith(url, alice, []);
      const c = await sock(carol.token, transports);
      await ackError(c, 'join_one_chat', { roomId: room.id }, 'not_member');
      await ackError(c, 'join_one_chat', { roomId: randomUUID() }, 'not_found');
      for (const roomId of ['junk', 42, null, '', { id: room.id }, [room.id]]) {
        await ackError(c, 'join_one_chat', { roomId }, ['bad_request', 'not_found']);
      }
      await ackError(c, 'join_one_chat', {}, 'bad_request');
      await ackError(c, 'join_one_chat', 'not an object', 'bad_request');
      // the refused socket sees nothing of the room
      const a = await sock(alice.token, transports);
      for (const since of ['abc', -1, 1.5, [1]]) {
        await ackError(a, 'join_one_chat', { roomId: room.id, since }, 'bad_request');
      }
      await joinOne(a, room.id);
      await send(a, room.id, 'secret');
      await waitFor(() => messagesIn(a, room.id).length === 1);
      await barrier(a, [c]);
      assert.deepEqual(c.received, [], 'non-member received nothing');
    });

    it('join_all joins allowed rooms and lists refused ones with ok:false', async () => {
      const r1 = await roomWith(url, alice, []);
      const r2 = await roomWith(url, alice, [bob]);
      const foreign = await roomWith(url, carol, []);
      const unknown = randomUUID();
      const a = await sock(alice.token, transports);
      const ack = await emitAck(a, 'join_all', { roomList: [r1.id, r2.id, foreign.id, unknown, 'junk'] });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assertKeys(ack, ['ok', 'rooms'], 'join_all ack');
      assert.equal(ack.rooms.length, 5);
      const byId = new Map(ack.rooms.map((e) => [String(e.roomId), e]));
      assert.deepEqual(part1(byId.get(r1.id)), { roomId: r1.id, ok: true, lastSeq: 0, recovered: false });
      assert.deepEqual(part1(byId.get(r2.id)), { roomId: r2.id, ok: true, lastSeq: 0, recovered: false });
      for (const [id, codes] of [[foreign.id, ['not_member']], [unknown, ['not_found']], ['junk', ['bad_request', 'not_found']]]) {
        const e = byId.get(id);
        assert.ok(e, `entry for ${id}: ${JSON.stringify(ack.rooms)}`);
        assertKeys(e, ['error', 'ok', 'roomId'], 'refused join_all entry');
        assert.equal(e.ok, false);
        assert.ok(codes.includes(e.error.code), `${id}: ${JSON.stringify(e.error)}`);
        assert.equal(typeof e.error.message, 'string');
      }
      await waitFor(() => joinNoticesIn(a, r1.id).length === 1 && joinNoticesIn(a, r2.id).length === 1);
      assert.equal(joinNoticesIn(a, foreign.id).length, 0);
      // subscribed: messages of r2 arrive
      const b = await sock(bob.token, transports);
      await send(b, r2.id, 'to r2');
      await waitFor(() => messagesIn(a, r2.id).length === 1);
      // an empty list is fine, a malformed payload is not
      assert.deepEqual(await emitAck(a, 'join_all', { roomList: [] }), { ok: true, rooms: [] });
      await ackError(a, 'join_all', {}, 'bad_request');
      await ackError(a, 'join_all', { roomList: r1.id }, 'bad_request');
      await ackError(a, 'join_all', { roomList: [r1.id], since: [1] }, 'bad_request');
      await ackError(a, 'join_all', 'junk', 'bad_request');
    });

    it('delivers each message once to every subscribed socket, sender included, in seq order', async () => {
      const room = await roomWith(url, alice, [bob]);
      const a1 = await sock(alice.token, transports);
      const a2 = await sock(alice.token, transports);
      const b1 = await sock(bob.token, transports);
      const bIdle = await sock(bob.token, transports); // member, not subscribed
      const c = await sock(carol.token, transports); // not a member
      for (const s of [a1, a2, b1]) await joinOne(s, room.id);

      const acks = [];
      for (const text of ['first', 'second', 'third']) {
        const id = newMsgId();
        const ack = await emitAck(a1, 'user_send_message', { roomId: room.id, id, message: text, type: 'input' });
        assertKeys(ack, ['ok', 'seq', 'time'], 'send ack');
        assert.equal(ack.ok, true);
        assertTime(ack.time, 'ack.time');
        acks.push({ ...ack, id, text });
      }
      assert.deepEqual(acks.map((a) => a.seq), [1, 2, 3]);
      const fromBob = await send(b1, room.id, 'fourth');
      assert.equal(fromBob.seq, 4);

      for (const s of [a1, a2, b1]) {
        await waitFor(() => messagesIn(s, room.id).length >= 4, { message: 'all four messages' });
      }
      await barrier(c, [a1, a2, b1, bIdle, c]);
      for (const s of [a1, a2, b1]) {
        const got = messagesIn(s, room.id);
        assert.deepEqual(got.map((m) => m.seq), [1, 2, 3, 4]);
        got.slice(0, 3).forEach((m, i) => {
          assertMessage(m, { roomId: room.id, user: alice, text: acks[i].text, id: acks[i].id, seq: acks[i].seq });
          assert.equal(m.time, acks[i].time, 'delivered time equals ack time');
          assert.equal(m.user.avatarImage, '');
        });
        assertMessage(got[3], { roomId: room.id, user: bob, text: 'fourth', id: fromBob.id, seq: 4 });
      }
      assert.equal(messagesIn(bIdle, room.id).length, 0, 'unsubscribed socket gets nothing');
      assert.deepEqual(c.received, [], 'non-member gets nothing');
      // history agrees
      await historyCaughtUp(url, bob.token, room.id, 4);
      const h = await history(url, bob.token, room.id);
      assert.deepEqual(part1(h), part1(messagesIn(b1, room.id)));
    });

    it('keeps the emit order of pipelined sends from one socket', async () => {
      const room = await roomWith(url, alice, [bob]);
      const a = await sock(alice.token, transports);
      const b = await sock(bob.token, transports);
      await joinOne(b, room.id);
      const N = 30;
      const ids = Array.from({ length: N }, () => newMsgId());
      const acks = await Promise.all(ids.map((id, i) => emitAck(a, 'user_send_message', { roomId: room.id, id, message: `p${i}`, type: 'input' })));
      assert.ok(acks.every((x) => x.ok), JSON.stringify(acks.find((x) => !x.ok)));
      assertSeqRange(acks.map((x) => x.seq), 1, N, 'acks in emit order');
      await waitFor(() => messagesIn(b, room.id).length >= N);
      const got = messagesIn(b, room.id);
      assertSeqRange(got.map((m) => m.seq), 1, N, 'delivered');
      assert.deepEqual(got.map((m) => m.id), ids);
      assert.deepEqual(got.map((m) => m.message), ids.map((_, i) => `p${i}`));
    });

    it('gives every subscriber the same gap-free order when several users post at once', async () => {
      const room = await roomWith(url, alice, [bob]);
      const a = await sock(alice.token, transports);
      const b = await sock(bob.token, transports);
      const watchers = [await sock(alice.token, transports), await sock(bob.token, transports)];
      for (const w of watchers) await joinOne(w, room.id);
      const N = 25;
      const [aAcks, bAcks] = await Promise.all([a, b].map((s, who) => Promise.all(
        Array.from({ length: N }, (_, i) => emitAck(s, 'user_send_message', { roomId: room.id, id: newMsgId(), message: `${who}:${i}`, type: 'input' })),
      )));
      for (const acks of [aAcks, bAcks]) {
        assert.ok(acks.every((x) => x.ok), JSON.stringify(acks.find((x) => !x.ok)));
        const seqs = acks.map((x) => x.seq);
        assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'each sender keeps its emit order');
      }
      assertSeqRange([...aAcks, ...bAcks].map((x) => x.seq).sort((x, y) => x - y), 1, 2 * N, 'all acks together');
      for (const w of watchers) await waitFor(() => messagesIn(w, room.id).length >= 2 * N);
      const [w1, w2] = watchers.map((w) => messagesIn(w, room.id));
      assertSeqRange(w1.map((m) => m.seq), 1, 2 * N, 'watcher 1');
      assert.deepEqual(w2.map((m) => m.id), w1.map((m) => m.id), 'both watchers see the same order');
      const bySeq = new Map(w1.map((m) => [m.seq, m.message]));
      aAcks.forEach((x, i) => assert.equal(bySeq.get(x.seq), `0:${i}`));
      bAcks.forEach((x, i) => assert.equal(bySeq.get(x.seq), `1:${i}`));
    });

    it('lets only members post (not_member) and keeps their rooms private', async () => {
      const room = await roomWith(url, alice, []);
      const c = await sock(carol.token, transports);
      await ackError(c, 'user_send_message', { roomId: room.id, id: newMsgId(), message: 'intrusion', type: 'input' }, 'not_member');
      await ackError(c, 'user_send_message', { roomId: randomUUID(), id: newMsgId(), message: 'nowhere', type: 'input' }, ['not_found', 'not_member']);
      await ackError(c, 'user_send_message', { roomId: 'junk', id: newMsgId(), message: 'nowhere', type: 'input' }, ['bad_request', 'not_found']);
      assert.deepEqual(await history(url, alice.token, room.id), []);
      // joining by code later, on the same open socket, lets carol subscribe and post
      await joinRoom(url, carol.token, room.room_hash_id);
      const entry = await joinOne(c, room.id);
      assert.equal(entry.ok, true);
      assert.equal((await send(c, room.id, 'now a member')).seq, 1);
      await waitFor(() => messagesIn(c, room.id).length === 1);
    });

    it('accepts the own userId in a payload and refuses another one with forbidden', async () => {
      const room = await roomWith(url, alice, [bob]);
      const a = await sock(alice.token, transports);
      await joinOne(a, room.id);
      await ackError(a, 'user_send_message', { roomId: room.id, id: newMsgId(), userId: bob.id, message: 'as bob', type: 'input' }, 'forbidden');
      await ackError(a, 'user_send_message', { roomId: room.id, id: newMsgId(), userId: alice.id.toUpperCase(), message: 'upper', type: 'input' }, 'forbidden');
      await ackError(a, 'user_send_message', { roomId: room.id, id: newMsgId(), userId: 1, message: 'number', type: 'input' }, 'forbidden');
      await ackError(a, 'join_one_chat', { roomId: room.id, userId: bob.id }, 'forbidden');
      await ackError(a, 'test_input', { userId: bob.id }, 'forbidden');
      const ok = await emitAck(a, 'user_send_message', { roomId: room.id, id: newMsgId(), userId: alice.id, message: 'as me', type: 'input' });
      assert.equal(ok.ok, true, JSON.stringify(ok));
      assert.equal(ok.seq, 1, 'refused sends took no seq');
      await waitFor(() => messagesIn(a, room.id).length === 1);
      assertMessage(messagesIn(a, room.id)[0], { user: alice, text: 'as me', seq: 1 });
      assert.deepEqual(await emitAck(a, 'join_one_chat', { roomId: room.id, userId: alice.id }).then((x) => x.ok), true);
    });

    it('checks the text: 1..4000 code points after trimming', async () => {
      const room = await roomWith(url, alice, []);
      const a = await sock(alice.token, transports);
      await joinOne(a, room.id);
      const tooLong = ['a'.repeat(4001), '😀'.repeat(4001), '中'.repeat(4001)];
      for (const message of tooLong) {
        await ackError(a, 'user_send_message', { roomId: room.id, id: newMsgId(), message, type: 'input' }, ['too_large', 'bad_request']);
      }
      for (const message of ['', ' ', '   \n\t  ', '\u3000']) {
        await ackError(a, 'user_send_message', { roomId: room.id, id: newMsgId(), message, type: 'input' }, 'bad_request');
      }
      for (const message of [42, null, ['x'], { text: 'x' }, true]) {
        await ackError(a, 'user_send_message', { roomId: room.id, id: newMsgId(), message, type: 'input' }, 'bad_request');
      }
      await ackError(a, 'user_send_message', { roomId: room.id, id: newMsgId(), type: 'input' }, 'bad_request');
      await ackError(a, 'user_send_message', { id: newMsgId(), message: 'no room', type: 'input' }, 'bad_request');
      await ackError(a, 'user_send_message', 'just a string', 'bad_request');
      // the limits themselves are fine: code points, not UTF-16 units or bytes
      const okTexts = ['😀'.repeat(4000), 'a'.repeat(4000), `  ${'b'.repeat(4000)}  `, 'x'];
      for (const message of okTexts) await send(a, room.id, message);
      await waitFor(() => messagesIn(a, room.id).length === okTexts.length);
      assert.deepEqual(messagesIn(a, room.id).map((m) => m.message), okTexts);
      assertSeqRange(messagesIn(a, room.id).map((m) => m.seq), 1, okTexts.length, 'refused texts took no seq');
    });

    it('stores and delivers markup and whitespace exactly as sent', async () => {
      const room = await roomWith(url, alice, [bob]);
      const a = await sock(alice.token, transports);
      const b = await sock(bob.token, transports);
      await joinOne(b, room.id);
      const texts = [
        '<script>alert("xss")</script>',
        '<img src=x onerror=alert(1)> &amp; &lt;b&gt; <b>bold</b>',
        '  leading and trailing  ',
        'line one\nline two\r\n\ttabbed',
        '"double" \'single\' `back` \\ backslash / slash',
        '😀 emoji, 中文, עברית, zero\u200bwidth, combining e\u0301',
        '{"json": [1, 2]}',
        '%s %d ${x} {{y}}',
      ];
      for (const t of texts) await send(a, room.id, t);
      await waitFor(() => messagesIn(b, room.id).length === texts.length);
      assert.deepEqual(messagesIn(b, room.id).map((m) => m.message), texts);
      await historyCaughtUp(url, bob.token, room.id, texts.length);
      assert.deepEqual((await history(url, bob.token, room.id)).map((m) => m.message), texts);
    });

    it('treats a resend of the same (roomId, id) as the first one', async () => {
      const room = await roomWith(url, alice, [bob]);
      const other = await roomWith(url, alice, []);
      const a = await sock(alice.token, transports);
      const b = await sock(bob.token, transports);
      await joinOne(b, room.id);
      const id = newMsgId();
      const first = await send(a, room.id, 'only once', id);
      assert.equal(first.seq, 1);
      const again = await send(a, room.id, 'only once', id);
      assert.equal(again.seq, first.seq);
      // concurrent duplicates
      const id2 = newMsgId();
      const [d1, d2, d3] = await Promise.all([1, 2, 3].map(() => send(a, room.id, 'dup burst', id2)));
      assert.equal(d1.seq, 2);
      assert.equal(d2.seq, 2);
      assert.equal(d3.seq, 2);
      // from another socket of the same user (a retry after a reconnect)
      const a2 = await sock(alice.token, transports);
      assert.equal((await send(a2, room.id, 'only once', id)).seq, 1);
      // the same id in another room is another message
      assert.equal((await send(a, other.id, 'only once', id)).seq, 1);
      const marker = await send(a, room.id, 'marker');
      assert.equal(marker.seq, 3);
      await waitFor(() => messagesIn(b, room.id).some((m) => m.id === marker.id));
      await barrier(a, [b]);
      const got = messagesIn(b, room.id);
      assert.deepEqual(got.map((m) => m.seq), [1, 2, 3]);
      assert.equal(got.filter((m) => m.id === id).length, 1);
      assert.equal(got.filter((m) => m.id === id2).length, 1);
      const h = await history(url, alice.token, room.id);
      assert.deepEqual(h.map((m) => m.id), [id, id2, marker.id]);
      assert.equal((await history(url, alice.token, other.id)).length, 1);
    });

    it('answers failing events without ack with chat_error {code, message, id}', async () => {
      const room = await roomWith(url, carol, []);
      const mine = await roomWith(url, alice, []);
      const a = await sock(alice.token, transports);
      a.emit('user_send_message', { roomId: room.id, id: 'err-not-member', message: 'hi', type: 'input' });
      a.emit('user_send_message', { roomId: mine.id, id: 'err-empty', message: '   ', type: 'input' });
      a.emit('user_send_message', { roomId: mine.id, id: 'err-forbidden', userId: carol.id, message: 'hi', type: 'input' });
      a.emit('join_one_chat', { roomId: randomUUID() });
      await waitFor(() => a.chatErrors.length >= 4, { message: () => `chat_errors: ${JSON.stringify(a.chatErrors)}` });
      for (const e of a.chatErrors) {
        assertKeys(e, ['code', 'id', 'message'], 'chat_error');
        assert.equal(typeof e.message, 'string');
      }
      const byId = new Map(a.chatErrors.map((e) => [e.id, e]));
      assert.equal(byId.get('err-not-member')?.code, 'not_member');
      assert.equal(byId.get('err-empty')?.code, 'bad_request');
      assert.equal(byId.get('err-forbidden')?.code, 'forbidden');
      assert.equal(byId.get(null)?.code, 'not_found');
      // a successful send without ack produces no chat_error
      await joinOne(a, mine.id);
      a.emit('user_send_message', { roomId: mine.id, id: 'fine', message: 'fine', type: 'input' });
      await waitFor(() => messagesIn(a, mine.id).length === 1);
      assert.equal(a.chatErrors.length, 4);
    });

    it('test_input sends test_received "收到啦" to every socket of the namespace', async () => {
      const a = await sock(alice.token, transports);
      const b = await sock(bob.token, transports);
      const c = await sock(carol.token, transports);
      const ack = await emitAck(c, 'test_input', { anything: [1, 2, 3] });
      assert.equal(ack?.ok, true, JSON.stringify(ack));
      await waitFor(() => [a, b, c].every((s) => s.testReceived.length >= 1));
      for (const s of [a, b, c]) assert.deepEqual(s.testReceived, ['收到啦']);
      a.emit('test_input', 'plain string');
      await waitFor(() => [a, b, c].every((s) => s.testReceived.length >= 2));
      for (const s of [a, b, c]) assert.deepEqual(s.testReceived, ['收到啦', '收到啦']);
    });

    it('logout disconnects the sockets of that token only', async () => {
      const t1 = await login(url, bob.name);
      const t2 = await login(url, bob.name);
      const s1 = await sock(t1.token, transports);
      const s1b = await sock(t1.token, transports);
      const s2 = await sock(t2.token, transports);
      assertOk(await api(url, 'POST', '/api/logout', { token: t1.token }), 200, 'logout');
      await waitFor(() => !s1.connected && !s1b.connected, { message: 'sockets of the revoked token disconnect' });
      assert.ok(s2.connected, 'socket of another token stays');
      const ack = await emitAck(s2, 'test_input', 'still here');
      assert.equal(ack.ok, true);
      const err = await connectError(url, t1.token, transports);
      assert.equal(err.message, 'unauthorized');
    });
  });
}

describe('send rate limit (--send-rate-limit 2, burst 100)', () => {
  let rl;
  before(async () => {
    rl = await startServer({ args: ['--send-rate-limit', '2'] });
  });
  after(async () => {
    await rl?.cleanup();
  });

  for (const transports of TRANSPORTS) {
    it(`refuses sends past the burst with rate_limited; a refused id can be retried (${transports})`, async () => {
      const [u, other] = await registerMany(rl.url, 2, 'Rate');
      const room = await roomWith(rl.url, u, [other]);
      const s = await connect(rl.url, u.token, transports);
      const o = await connect(rl.url, other.token, transports);
      try {
        const ids = Array.from({ length: 150 }, () => newMsgId());
        const acks = await Promise.all(ids.map((id, i) => emitAck(s, 'user_send_message', { roomId: room.id, id, message: `r${i}`, type: 'input' })));
        const ok = acks.filter((a) => a.ok);
        const refused = acks.map((a, i) => ({ a, i })).filter(({ a }) => !a.ok);
        assert.ok(ok.length >= 100, `burst of 100 allowed, got ${ok.length}`);
        assert.ok(refused.length > 0, 'some sends refused');
        assert.ok(ok.length <= 110, `at most burst + a few refills, got ${ok.length}`);
        for (const { a } of refused) assert.equal(a.error?.code, 'rate_limited', JSON.stringify(a));
        assertSeqRange(ok.map((a) => a.seq), 1, ok.length, 'accepted seqs');

        // other users are not limited by this user's bucket
        assert.equal((await send(o, room.id, 'not limited')).seq, ok.length + 1);

        // retry a refused id until the bucket refills
        const { i } = refused[0];
        let retried;
        await waitFor(async () => {
          retried = await emitAck(s, 'user_send_message', { roomId: room.id, id: ids[i], message: `r${i}`, type: 'input' });
          if (!retried.ok) assert.equal(retried.error?.code, 'rate_limited');
          return retried.ok;
        }, { interval: 250 });
        assert.equal(retried.seq, ok.length + 2);

        // test_input draws from the same bucket
        const tests = await Promise.all([1, 2, 3, 4, 5].map(() => emitAck(s, 'test_input', 'x')));
        assert.ok(tests.some((t) => t.ok === false && t.error?.code === 'rate_limited'), `test_input limited: ${JSON.stringify(tests)}`);
      } finally {
        closeAll(s, o);
      }
    });
  }

  it('a default server allows bursts of 100 sends', async () => {
    // `server` runs with the default limit (20/s, burst 100)
    const u = await register(url, { name: uniqueName('Burst') });
    const room = await createRoom(url, u.token);
    const s = await connect(url, u.token, ['websocket']);
    try {
      const acks = await Promise.all(Array.from({ length: 100 }, (_, i) => emitAck(s, 'user_send_message', { roomId: room.id, id: newMsgId(), message: `b${i}`, type: 'input' })));
      assert.ok(acks.every((a) => a.ok), JSON.stringify(acks.find((a) => !a.ok)));
    } finally {
      closeAll(s);
    }
  });
});

describe('token expiry (--token-ttl-secs 2)', () => {
  let srv;
  before(async () => {
    srv = await startServer({ args: ['--token-ttl-secs', '2'] });
  });
  after(async () => {
    await srv?.cleanup();
  });

  it('disconnects sockets within a few seconds of expiry and refuses the token afterwards', async () => {
    const u = await register(srv.url, { name: uniqueName('Ttl') });
    const issued = Date.now();
    const sockets = await Promise.all(TRANSPORTS.map((t) => connect(srv.url, u.token, t)));
    try {
      await waitFor(() => sockets.every((s) => !s.connected), { timeout: 10_000, message: 'expired sockets disconnect' });
      const took = Date.now() - issued;
      assert.ok(took >= 1_000, `disconnected too early (${took} ms)`);
      assertError(await api(srv.url, 'GET', '/api/user/info', { token: u.token }), 401, 'expired token');
      for (const t of TRANSPORTS) {
        const err = await connectError(srv.url, u.token, t);
        assert.equal(err.message, 'unauthorized');
      }
      // a fresh login works again, and its lifetime is not extended by use
      const fresh = await login(srv.url, u.name);
      assertOk(await api(srv.url, 'GET', '/api/user/info', { token: fresh.token }), 200);
      await waitFor(async () => (await api(srv.url, 'GET', '/api/user/info', { token: fresh.token })).status === 401, { timeout: 10_000, interval: 200, message: 'fresh token expires although used' });
    } finally {
      closeAll(sockets);
    }
  });
});
