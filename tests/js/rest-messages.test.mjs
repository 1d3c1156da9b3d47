// Messages over REST, for bots and scripts (docs/protocol.md part 2, "Messages: replies,
// edits, deletions, reactions" and its details): `POST /api/room/{roomId}/messages` with the
// socket's rules, ids and idempotency (201, a retry 200 with the first message as it is now),
// `PATCH` and `DELETE /api/room/{roomId}/messages/{seq}` answering the message as it is now,
// each delivered live to the room's sockets; every refusal with its status and `code`, and
// changing nothing; muted members, archived rooms, the send rate limit, the OpenAPI document.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  startServer, api, assertOk, assertError, assertKeys, register, registerMany, createRoom,
  joinRoom, connect, emitAck, messagesIn, waitFor, closeAll, newMsgId, history,
} from './helpers.mjs';
import { gov, memberData, assertP2Error, watcher } from './part2.mjs';
import {
  rest, assertMsg, post, edit, updates, updateAt, current, searchFor,
} from './messages.mjs';

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

async function watch(user, roomId, transports = ['websocket']) {
  const s = await watcher(url, user, [roomId], transports);
  open.push(s);
  return s;
}

async function community(prefix = 'Rm') {
  const [owner, admin, m1, m2, outsider] = await registerMany(url, 5, prefix);
  const room = await createRoom(url, owner.token);
  for (const u of [admin, m1, m2]) await joinRoom(url, u.token, room.room_hash_id);
  memberData(await gov.role(url, owner.token, room.id, admin.id, 'admin'), 'promote the admin', { user: admin, role: 'admin' });
  return { room, owner, admin, m1, m2, outsider };
}

/** `{"message"}` data of a message call answering `status`. */
function messageData(res, status, what, expect = {}) {
  const data = assertOk(res, status, what);
  assertKeys(data, ['message'], `${what} data`);
  return assertMsg(data.message, expect);
}

/** Post from the recording socket `w` and wait until it came back. */
async function fence(w, roomId) {
  const ack = await post(w, roomId, 'fence');
  await waitFor(() => messagesIn(w, roomId).some((m) => m.seq === ack.seq), { message: 'the fence comes back' });
  return ack;
}

/** Assert that refusals changed nothing: the same history, no message_updated on `w`. */
async function unchanged(w, user, roomId, before, what) {
  const seen = updates(w, roomId).length;
  assert.equal(JSON.stringify(await history(url, user.token, roomId)), before, `${what}: history changed`);
  await fence(w, roomId);
  assert.equal(updates(w, roomId).length, seen, `${what}: a message_updated was sent`);
}

describe('POST /api/room/{roomId}/messages', () => {
  it('creates: 201 {message} delivered live; a retry of the id answers 200 with the first message as it is now', async () => {
    const { room, m1, m2 } = await community('RmPost');
    const w = await watch(m2, room.id, ['polling']);
    const s1 = await watch(m1, room.id);
    const id = `bot-${randomUUID()}`;
    const t0 = Date.now();
    const first = messageData(await rest.send(url, m1.token, room.id, { id, message: 'posted by a bot' }), 201, 'REST send', {
      roomId: room.id, user: m1, text: 'posted by a bot', id, seq: 1, replyTo: null, deleted: false, edited: false, reactions: {},
    });
    assert.ok(Math.abs(Date.parse(first.time) - t0) < 5_000, `time ${first.time}`);
    const live = await waitFor(() => messagesIn(w, room.id).find((m) => m.seq === 1), { message: 'the REST post is delivered live' });
    assert.deepEqual(live, first, 'delivered as answered');
    assertMsg(await current(url, m1.token, room.id, 1), { text: 'posted by a bot', version: first.version });

    const again = messageData(await rest.send(url, m1.token, room.id, { id, message: 'a different text' }), 200, 'REST retry', { seq: 1, id, text: 'posted by a bot' });
    assert.deepEqual(again, first, 'the retry answers the first message');
    const e = await edit(s1, room.id, 1, 'edited since');
    const later = messageData(await rest.send(url, m1.token, room.id, { id, message: 'posted by a bot' }), 200, 'REST retry after an edit', {
      seq: 1, id, text: 'edited since', edited: e.editedAt, version: e.version,
    });
    assert.equal(later.time, first.time);
    // The socket shares the ids: a socket retry of it is a duplicate, and the other way round.
    const sock = await emitAck(s1, 'user_send_message', { roomId: room.id, id, message: 'posted by a bot', type: 'input' });
    assert.deepEqual([sock.ok, sock.seq, sock.duplicate], [true, 1, true], JSON.stringify(sock));
    const viaSocket = await post(s1, room.id, 'sent on the socket');
    messageData(await rest.send(url, m1.token, room.id, { id: viaSocket.id, message: 'sent on the socket' }), 200, 'REST retry of a socket send', { seq: viaSocket.seq, id: viaSocket.id });
    await fence(w, room.id);
    assert.deepEqual(messagesIn(w, room.id).map((m) => m.seq), [1, 2, 3], 'no retry was delivered twice');
    assert.equal(messagesIn(w, room.id).filter((m) => m.seq === 1).length, 1);
  });

  it('takes a number id as its decimal text, and a replyTo', async () => {
    const { room, m1 } = await community('RmNum');
    const n = 4_000_000 + Math.floor(Math.random() * 1_000_000);
    const a = messageData(await rest.send(url, m1.token, room.id, { id: n, message: 'number id' }), 201, 'number id', { id: String(n) });
    messageData(await rest.send(url, m1.token, room.id, { id: String(n), message: 'number id' }), 200, 'the same id as text', { seq: a.seq, id: String(n) });
    messageData(await rest.send(url, m1.token, room.id, { id: newMsgId(), message: 'a reply', replyTo: a.seq }), 201, 'a reply', { replyTo: a.seq, seq: a.seq + 1 });
  });

  it('refuses with 400 a missing or bad id, text or replyTo; 403 outsiders; 404 unknown rooms; 401 without a token; stores nothing', async () => {
    const { room, owner, m1, outsider } = await community('RmBad');
    const w = await watch(owner, room.id);
    messageData(await rest.send(url, m1.token, room.id, { id: newMsgId(), message: 'the first' }), 201, 'a first message');
    const before = JSON.stringify(await history(url, owner.token, room.id));
    const bad = [
      { message: 'no id' }, { id: null, message: 'null id' }, { id: {}, message: 'object id' }, { id: [1], message: 'array id' },
      { id: true, message: 'bool id' }, { id: '', message: 'empty id' }, { id: 'x'.repeat(129), message: 'long id' },
      { id: newMsgId() }, { id: newMsgId(), message: '' }, { id: newMsgId(), message: '   ' }, { id: newMsgId(), message: '\u3000' },
      { id: newMsgId(), message: 42 }, { id: newMsgId(), message: null }, { id: newMsgId(), message: ['x'] },
      ...[0, -1, 1.5, '1', true, {}, 2, 99].map((replyTo) => ({ id: newMsgId(), message: `reply to ${JSON.stringify(replyTo)}`, replyTo })),
    ];
    for (const body of bad) {
      assertP2Error(await rest.send(url, m1.token, room.id, body), 400, 'bad_request', `POST ${JSON.stringify(body).slice(0, 60)}`);
    }
    for (const message of ['a'.repeat(4001), '😀'.repeat(4001)]) {
      const res = await rest.send(url, m1.token, room.id, { id: newMsgId(), message });
      assertP2Error(res, res.status === 413 ? 413 : 400, ['too_large', 'bad_request'], 'a text of 4,001 code points');
    }
    assertP2Error(await api(url, 'POST', `/api/room/${room.id}/messages`, { token: m1.token, raw: '{"id": "x", "message": ' }), 400, 'bad_request', 'malformed JSON');
    assertP2Error(await api(url, 'POST', `/api/room/${room.id}/messages`, { token: m1.token, raw: '"just a string"' }), 400, 'bad_request', 'not an object');
    assertP2Error(await rest.send(url, outsider.token, room.id, { id: newMsgId(), message: 'from outside' }), 403, ['not_member', 'forbidden'], 'an outsider');
    assertP2Error(await rest.send(url, m1.token, randomUUID(), { id: newMsgId(), message: 'nowhere' }), 404, 'not_found', 'an unknown room');
    assertError(await rest.send(url, undefined, room.id, { id: newMsgId(), message: 'anonymous' }), 401, 'no token');
    await unchanged(w, owner, room.id, before, 'refused REST posts');
    const next = messageData(await rest.send(url, m1.token, room.id, { id: newMsgId(), message: 'next' }), 201, 'after the refusals');
    assert.equal(next.seq, 3, 'refusals took no seq (one fence in between)');
  });
});

describe('PATCH and DELETE /api/room/{roomId}/messages/{seq}', () => {
  it('PATCH edits: 200 {message} as it is now, delivered as message_updated; search follows', async () => {
    const { room, m1, m2 } = await community('RmEdit');
    const w = await watch(m2, room.id);
    const old = `heron${randomUUID().slice(0, 8)}`;
    const fresh = `ibis${randomUUID().slice(0, 8)}`;
    const p = messageData(await rest.send(url, m1.token, room.id, { id: newMsgId(), message: `a ${old}` }), 201, 'post');
    const t0 = Date.now();
    const edited = messageData(await rest.edit(url, m1.token, room.id, p.seq, { message: `a ${fresh}` }), 200, 'PATCH', {
      seq: p.seq, id: p.id, user: m1, text: `a ${fresh}`, deleted: false,
    });
    assert.ok(edited.version > p.version);
    assert.ok(edited.editedAt && Math.abs(Date.parse(edited.editedAt) - t0) < 5_000, `editedAt ${edited.editedAt}`);
    assert.equal(edited.time, p.time);
    assert.deepEqual(await updateAt(w, room.id, edited.version), edited, 'message_updated carries the message as PATCH answered it');
    assert.deepEqual(await current(url, m1.token, room.id, p.seq), edited);
    assert.deepEqual((await searchFor(url, m1.token, room.id, fresh)).map((m) => m.seq), [p.seq]);
    assert.deepEqual(await searchFor(url, m1.token, room.id, old), []);
  });

  it('PATCH refuses: not the author 403, unknown seq 404, deleted 409, bad text or seq 400; nothing changes', async () => {
    const { room, owner, admin, m1, m2, outsider } = await community('RmEditBad');
    const w = await watch(m2, room.id);
    const p = messageData(await rest.send(url, m1.token, room.id, { id: newMsgId(), message: 'm1 wrote this' }), 201, 'post');
    const gone = messageData(await rest.send(url, m1.token, room.id, { id: newMsgId(), message: 'soon deleted' }), 201, 'post');
    messageData(await rest.del(url, m1.token, room.id, gone.seq), 200, 'delete', { deleted: true });
    const before = JSON.stringify(await history(url, owner.token, room.id));
    for (const u of [owner, admin, m2]) {
      assertP2Error(await rest.edit(url, u.token, room.id, p.seq, { message: 'not yours' }), 403, 'forbidden', `PATCH by ${u.name}`);
    }
    assertP2Error(await rest.edit(url, outsider.token, room.id, p.seq, { message: 'from outside' }), 403, ['not_member', 'forbidden'], 'an outsider');
    assertP2Error(await rest.edit(url, m1.token, randomUUID(), p.seq, { message: 'nowhere' }), 404, 'not_found', 'an unknown room');
    for (const seq of [gone.seq + 1, 1_000_000_000]) {
      assertP2Error(await rest.edit(url, m1.token, room.id, seq, { message: 'no such' }), 404, 'not_found', `PATCH #${seq}`);
    }
    assertP2Error(await rest.edit(url, m1.token, room.id, gone.seq, { message: 'revived' }), 409, 'conflict', 'PATCH of a deleted message');
    for (const body of [{}, { message: '' }, { message: '  ' }, { message: 7 }, { message: null }]) {
      assertP2Error(await rest.edit(url, m1.token, room.id, p.seq, body), 400, 'bad_request', `PATCH ${JSON.stringify(body)}`);
    }
    const long = await rest.edit(url, m1.token, room.id, p.seq, { message: 'a'.repeat(4001) });
    assertP2Error(long, long.status === 413 ? 413 : 400, ['too_large', 'bad_request'], 'PATCH of 4,001 code points');
    for (const seq of ['abc', '1.5', '-1', '0']) {
      const res = await rest.edit(url, m1.token, room.id, seq, { message: 'bad seq' });
      assertP2Error(res, ['abc', '1.5'].includes(seq) ? 400 : [400, 404], ['bad_request', 'not_found'], `PATCH /messages/${seq}`);
    }
    assertP2Error(await api(url, 'PATCH', `/api/room/${room.id}/messages/${p.seq}`, { token: m1.token, raw: '{"message": ' }), 400, 'bad_request', 'malformed JSON');
    assertError(await rest.edit(url, undefined, room.id, p.seq, { message: 'anonymous' }), 401, 'no token');
    await unchanged(w, owner, room.id, before, 'refused PATCHes');
  });

  it('DELETE: 200 the placeholder, live; twice 200 unchanged; an admin on members, the owner on anyone, not an admin on an admin', async () => {
    const { room, owner, admin, m1, m2, outsider } = await community('RmDel');
    const [admin2] = await registerMany(url, 1, 'RmDel2');
    await joinRoom(url, admin2.token, room.room_hash_id);
    memberData(await gov.role(url, owner.token, room.id, admin2.id, 'admin'), 'promote');
    const w = await watch(m2, room.id, ['polling']);
    const word = `tapir${randomUUID().slice(0, 8)}`;
    const say = async (u, text, extra = {}) => messageData(await rest.send(url, u.token, room.id, { id: newMsgId(), message: text, ...extra }), 201, `post by ${u.name}`);
    const byM1 = await say(m1, `m1 says ${word}`);
    const byM1b = await say(m1, 'm1 again', { replyTo: byM1.seq });
    const byAdmin2 = await say(admin2, 'the second admin');
    const byOwner = await say(owner, 'the owner');
    const before = JSON.stringify(await history(url, owner.token, room.id));
    assertP2Error(await rest.del(url, m2.token, room.id, byM1.seq), 403, 'forbidden', 'a member on a member');
    assertP2Error(await rest.del(url, admin.token, room.id, byAdmin2.seq), 403, 'forbidden', 'an admin on an admin');
    assertP2Error(await rest.del(url, admin.token, room.id, byOwner.seq), 403, 'forbidden', 'an admin on the owner');
    assertP2Error(await rest.del(url, outsider.token, room.id, byM1.seq), 403, ['not_member', 'forbidden'], 'an outsider');
    assertP2Error(await rest.del(url, owner.token, room.id, byOwner.seq + 1), 404, 'not_found', 'an unknown seq');
    assertP2Error(await rest.del(url, owner.token, randomUUID(), 1), 404, 'not_found', 'an unknown room');
    assertP2Error(await rest.del(url, owner.token, room.id, 'abc'), 400, 'bad_request', 'a seq that is no number');
    assertError(await rest.del(url, undefined, room.id, byM1.seq), 401, 'no token');
    await unchanged(w, owner, room.id, before, 'refused DELETEs');

    const placeholder = messageData(await rest.del(url, admin.token, room.id, byM1.seq), 200, 'an admin deletes a member\'s', {
      seq: byM1.seq, id: byM1.id, text: '', deleted: true, replyTo: null, reactions: {},
    });
    assert.equal(placeholder.user.id, m1.id);
    assert.deepEqual(await updateAt(w, room.id, placeholder.version), placeholder, 'delivered as answered');
    const twice = messageData(await rest.del(url, m1.token, room.id, byM1.seq), 200, 'deleting it again', { deleted: true });
    assert.deepEqual(twice, placeholder, 'a second deletion changes nothing');
    messageData(await rest.del(url, m1.token, room.id, byM1b.seq), 200, 'the author deletes a reply', { deleted: true, replyTo: null });
    messageData(await rest.del(url, owner.token, room.id, byAdmin2.seq), 200, 'the owner deletes an admin\'s', { deleted: true });
    messageData(await rest.del(url, owner.token, room.id, byOwner.seq), 200, 'the owner deletes their own', { deleted: true });
    await fence(w, room.id);
    assert.equal(updates(w, room.id).length, 4, 'one message_updated per deletion, none for the second one');
    assert.deepEqual(await searchFor(url, owner.token, room.id, word), []);
    assert.deepEqual((await history(url, owner.token, room.id)).slice(0, 4).map((m) => [m.seq, m.deleted, m.message]),
      [[byM1.seq, true, ''], [byM1b.seq, true, ''], [byAdmin2.seq, true, ''], [byOwner.seq, true, '']]);
  });
});

describe('muted members and archived rooms over REST', () => {
  it('muted: POST and PATCH 403 muted, DELETE of their own 200; archived: POST, PATCH, DELETE 409 archived', async () => {
    const { room, owner, admin, m1, m2 } = await community('RmMute');
    const w = await watch(m2, room.id);
    const mine = messageData(await rest.send(url, m1.token, room.id, { id: newMsgId(), message: 'mine' }), 201, 'post');
    const kept = messageData(await rest.send(url, m1.token, room.id, { id: newMsgId(), message: 'kept' }), 201, 'post');
    memberData(await gov.mute(url, admin.token, room.id, m1.id, { durationSecs: 600 }), 'mute', { user: m1 });
    const before = JSON.stringify(await history(url, owner.token, room.id));
    assertP2Error(await rest.send(url, m1.token, room.id, { id: newMsgId(), message: 'while muted' }), 403, 'muted', 'POST while muted');
    assertP2Error(await rest.edit(url, m1.token, room.id, mine.seq, { message: 'while muted' }), 403, 'muted', 'PATCH while muted');
    await unchanged(w, owner, room.id, before, 'a muted member');
    messageData(await rest.del(url, m1.token, room.id, mine.seq), 200, 'DELETE of their own while muted', { deleted: true });
    memberData(await gov.unmute(url, admin.token, room.id, m1.id), 'unmute');

    assertOk(await gov.patch(url, owner.token, room.id, { archived: true }), 200, 'archive');
    const frozen = JSON.stringify(await history(url, owner.token, room.id));
    for (const u of [m1, owner]) {
      assertP2Error(await rest.send(url, u.token, room.id, { id: newMsgId(), message: 'archived' }), 409, 'archived', `POST by ${u.name}`);
      assertP2Error(await rest.del(url, u.token, room.id, kept.seq), 409, 'archived', `DELETE by ${u.name}`);
    }
    assertP2Error(await rest.edit(url, m1.token, room.id, kept.seq, { message: 'archived' }), 409, 'archived', 'PATCH in an archived room');
    assert.equal(JSON.stringify(await history(url, owner.token, room.id)), frozen, 'an archived room stays as it was');
    assertOk(await gov.patch(url, owner.token, room.id, { archived: false }), 200, 'unarchive');
    messageData(await rest.edit(url, m1.token, room.id, kept.seq, { message: 'open again' }), 200, 'PATCH after unarchiving', { text: 'open again' });
  });
});

describe('the OpenAPI document', () => {
  it('describes POST /api/room/{roomId}/messages, PATCH and DELETE /api/room/{roomId}/messages/{seq}', async () => {
    const res = await api(url, 'GET', '/api/openapi.json');
    assert.equal(res.status, 200);
    const paths = res.body.paths ?? {};
    assert.ok(paths['/api/room/{roomId}/messages']?.post, `POST messages: ${Object.keys(paths['/api/room/{roomId}/messages'] ?? {})}`);
    assert.ok(paths['/api/room/{roomId}/messages']?.get, 'history stays');
    const one = paths['/api/room/{roomId}/messages/{seq}'];
    assert.ok(one?.patch && one?.delete, `PATCH and DELETE messages/{seq}: ${Object.keys(paths).filter((p) => p.includes('messages'))}`);
    for (const [method, op] of [['post', paths['/api/room/{roomId}/messages'].post], ['patch', one.patch], ['delete', one.delete]]) {
      assert.ok(op.responses, `${method} has responses`);
      assert.ok(method === 'delete' || op.requestBody, `${method} has a request body`);
    }
  });
});

describe('REST sends, edits and deletions and the send rate limit (--send-rate-limit 1, burst 100)', () => {
  let limited;
  before(async () => {
    limited = await startServer({ args: ['--send-rate-limit', '1'] });
  });
  after(async () => { await limited?.cleanup(); });

  it('past an empty bucket POST, PATCH and DELETE are 429 rate_limited; REST posts empty it for the socket', async () => {
    const [u, v, owner] = await Promise.all([register(limited.url), register(limited.url), register(limited.url)]);
    const room = await createRoom(limited.url, owner.token);
    for (const x of [u, v]) await joinRoom(limited.url, x.token, room.room_hash_id);
    const su = await connect(limited.url, u.token);
    const sv = await connect(limited.url, v.token);
    open.push(su, sv);
    const mine = [];
    for (let i = 0; i < 4; i += 1) mine.push(await post(su, room.id, `mine ${i}`));
    const drain = await Promise.all(Array.from({ length: 120 }, (_, i) => emitAck(su, 'user_send_message', { roomId: room.id, id: newMsgId(), message: `drain ${i}`, type: 'input' })));
    assert.ok(drain.some((a) => !a.ok && a.error.code === 'rate_limited'), 'the bucket is empty');
    const tries = await Promise.all([
      ...[0, 1, 2].map(() => rest.send(limited.url, u.token, room.id, { id: newMsgId(), message: 'REST' }).then((r) => ['POST', r])),
      ...[0, 1].map((i) => rest.edit(limited.url, u.token, room.id, mine[i].seq, { message: 'edited' }).then((r) => ['PATCH', r])),
      ...[2, 3].map((i) => rest.del(limited.url, u.token, room.id, mine[i].seq).then((r) => ['DELETE', r])),
    ]);
    for (const kind of ['POST', 'PATCH', 'DELETE']) {
      const answers = tries.filter(([k]) => k === kind).map(([, r]) => r);
      const refused = answers.filter((r) => r.status === 429);
      assert.ok(refused.length > 0, `${kind} past an empty bucket: ${answers.map((r) => r.status)}`);
      for (const r of refused) assertP2Error(r, 429, 'rate_limited', kind);
    }
    const posts = await Promise.all(Array.from({ length: 120 }, (_, i) => rest.send(limited.url, v.token, room.id, { id: newMsgId(), message: `rest ${i}` })));
    assert.ok(posts.some((r) => r.status === 429), `120 REST posts at once hit the limit: ${[...new Set(posts.map((r) => r.status))]}`);
    const sends = await Promise.all([0, 1, 2].map((i) => emitAck(sv, 'user_send_message', { roomId: room.id, id: newMsgId(), message: `socket ${i}`, type: 'input' })));
    assert.ok(sends.some((a) => !a.ok && a.error.code === 'rate_limited'), `socket sends after the REST flood: ${JSON.stringify(sends)}`);
  });
});
