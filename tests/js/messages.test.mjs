// Messages that change (docs/protocol.md part 2, "Messages: replies, edits, deletions,
// reactions" and its details), as outside clients with the official socket.io-client see
// them against the real binary: replies, edits by their author only, deletions by the
// author, an admin (of members' messages) or the owner, reactions with their limits, each
// delivered live as `message_updated` carrying the whole message with the next version, each
// replayed by `sinceVersion` as the message is now; history, search and export as the
// messages are now; a muted member's and an archived room's refusals; the send rate limit.
// Every refusal is checked for its code and for changing nothing.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  TRANSPORTS, startServer, api, assertOk, register, registerMany, createRoom, joinRoom, connect,
  emitAck, ackError, messagesIn, waitFor, closeAll, newMsgId, history, historyCaughtUp, assertTime,
} from './helpers.mjs';
import {
  gov, memberData, recordAll, watcher, changes, assertIncreasing, assertContiguous,
} from './part2.mjs';
import {
  assertMsg, post, edit, del, react, updates, updateAt, current, searchFor, content,
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

async function watch(user, roomId, transports = ['websocket'], payload = {}) {
  const s = await watcher(url, user, [roomId], transports, payload);
  open.push(s);
  return s;
}

/** A room with its owner, an admin, two members, and an outsider who never joined. */
async function community(prefix = 'Msg') {
  const [owner, admin, m1, m2, outsider] = await registerMany(url, 5, prefix);
  const room = await createRoom(url, owner.token);
  for (const u of [admin, m1, m2]) await joinRoom(url, u.token, room.room_hash_id);
  memberData(await gov.role(url, owner.token, room.id, admin.id, 'admin'), 'promote the admin', { user: admin, role: 'admin' });
  return { room, owner, admin, m1, m2, outsider };
}

/**
 * Post from the recording socket `w` and wait until it came back. A room delivers in version
 * order, so whatever it sent `w` before has arrived by then. Returns the ack.
 */
async function fence(w, roomId) {
  const ack = await post(w, roomId, 'fence');
  await waitFor(() => messagesIn(w, roomId).some((m) => m.seq === ack.seq), { message: 'the fence comes back' });
  return ack;
}

/** The room's newest version, as a plain join acks it. */
async function lastVersion(user, roomId) {
  const s = await connect(url, user.token);
  try {
    const ack = await emitAck(s, 'join_one_chat', { roomId });
    assert.equal(ack?.ok, true, JSON.stringify(ack));
    return ack.rooms[0].lastVersion;
  } finally {
    closeAll(s);
  }
}

/** The whole history as one value, to show that a refusal changed nothing. */
async function snapshot(token, roomId) {
  return JSON.stringify(await history(url, token, roomId, '?limit=200'));
}

/**
 * Assert that each refusal changed nothing: the same history, the same room version, and no
 * `message_updated` on the watcher `w` (checked behind a fence).
 */
async function unchanged(w, user, roomId, before, what) {
  const updatesBefore = updates(w, roomId).length;
  assert.equal(await snapshot(user.token, roomId), before.history, `${what}: history changed`);
  assert.equal(await lastVersion(user, roomId), before.version, `${what}: the room's version moved`);
  await fence(w, roomId);
  assert.equal(updates(w, roomId).length, updatesBefore, `${what}: a message_updated was sent`);
}

/**
 * The room as `user` reads it, once their history has caught up with a fence posted from the
 * watcher `w` (another member's writes may reach history a moment after the live delivery).
 */
async function state(w, user, roomId, { fenced = true } = {}) {
  if (fenced) {
    const f = await fence(w, roomId);
    await historyCaughtUp(url, user.token, roomId, f.seq);
  }
  return { history: await snapshot(user.token, roomId), version: await lastVersion(user, roomId) };
}

describe('replies', () => {
  it('a reply carries replyTo live and in history; a reply to a deleted message is allowed', async () => {
    const { room, owner, m1, m2 } = await community('Rep');
    const w = await watch(m2, room.id, ['polling']);
    const so = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const q = await post(so, room.id, 'a question');
    const a = await post(s1, room.id, 'the answer', { replyTo: q.seq });
    await waitFor(() => messagesIn(w, room.id).length === 2, { message: 'both messages' });
    const [gq, ga] = messagesIn(w, room.id);
    assertMsg(gq, { seq: q.seq, user: owner, text: 'a question', replyTo: null, deleted: false, edited: false, reactions: {} });
    assertMsg(ga, { seq: a.seq, user: m1, text: 'the answer', replyTo: q.seq, deleted: false, edited: false, reactions: {} });
    assert.equal(ga.version, gq.version + 1, 'the reply is the next change');
    assertMsg(await current(url, m1.token, room.id, a.seq), { replyTo: q.seq, text: 'the answer', version: ga.version });

    // A retry of the reply answers its first seq and stores nothing.
    const again = await emitAck(s1, 'user_send_message', { roomId: room.id, id: a.id, message: 'the answer', type: 'input', replyTo: q.seq });
    assert.deepEqual([again.ok, again.seq, again.duplicate], [true, a.seq, true], JSON.stringify(again));

    await del(so, room.id, q.seq);
    const late = await post(s1, room.id, 'answering the deleted one', { replyTo: q.seq });
    const hist = await history(url, m1.token, room.id);
    assert.deepEqual(hist.map((m) => [m.seq, m.replyTo, m.deleted]), [[q.seq, null, true], [a.seq, q.seq, false], [late.seq, q.seq, false]]);
    for (const m of hist) assertMsg(m);
    const got = await waitFor(() => messagesIn(w, room.id).find((m) => m.seq === late.seq));
    assertMsg(got, { replyTo: q.seq, text: 'answering the deleted one' });
  });

  it('an invalid replyTo is bad_request and stores nothing: not a positive integer, or no such message of the room', async () => {
    const { room, owner, m1 } = await community('RepBad');
    const other = await createRoom(url, owner.token);
    const sx = await connect(url, owner.token);
    open.push(sx);
    for (let i = 0; i < 4; i += 1) await post(sx, other.id, `elsewhere ${i}`);
    const w = await watch(owner, room.id);
    const s1 = await watch(m1, room.id, ['polling']);
    const first = await post(s1, room.id, 'the only message');
    const before = await state(w, owner, room.id);
    const refusedId = newMsgId();
    // first.seq + 1 is the fence of state(); seq 3 exists in the other room only.
    for (const replyTo of [0, -1, 1.5, '1', true, {}, [1], first.seq + 2, 1_000_000_000]) {
      await ackError(s1, 'user_send_message', { roomId: room.id, id: refusedId, message: `replying to ${JSON.stringify(replyTo)}`, type: 'input', replyTo }, 'bad_request');
    }
    await unchanged(w, owner, room.id, before, 'invalid replyTo');
    // The refused id was not remembered: sent validly it is a new message.
    const ok = await post(s1, room.id, 'now a valid reply', { id: refusedId, replyTo: first.seq });
    assert.equal(ok.duplicate, false, JSON.stringify(ok));
    assert.equal(ok.seq, first.seq + 3, 'after the two fences, no seq was taken by a refusal');
  });
});

describe('replies pipelined', () => {
  it('a reply emitted right behind the message it answers, before that one is acked, is accepted', async () => {
    const { room, m1, m2 } = await community('RepPipe');
    const w = await watch(m2, room.id);
    const s1 = await watch(m1, room.id, ['polling']);
    const pending = [];
    for (let i = 1; i <= 20; i += 1) {
      pending.push(emitAck(s1, 'user_send_message', { roomId: room.id, id: newMsgId(), message: `chain ${i}`, type: 'input', ...(i > 1 ? { replyTo: i - 1 } : {}) }));
    }
    const acks = await Promise.all(pending);
    assert.deepEqual(acks.map((a) => [a.ok, a.seq]), acks.map((_, i) => [true, i + 1]), JSON.stringify(acks.find((a) => !a.ok)));
    await waitFor(() => messagesIn(w, room.id).length === 20);
    assert.deepEqual(messagesIn(w, room.id).map((m) => m.replyTo), [null, ...Array.from({ length: 19 }, (_, i) => i + 1)]);
  });
});

describe('edits', () => {
  for (const transports of TRANSPORTS) {
    it(`the author edits: acked version and editedAt, message_updated on every subscriber, history and search show the new text (${transports})`, async () => {
      const { room, owner, m1, m2 } = await community('Ed');
      const old = `zebra${randomUUID().slice(0, 8)}`;
      const fresh = `okapi${randomUUID().slice(0, 8)}`;
      const w1 = await watch(m2, room.id, transports);
      const w2 = await watch(owner, room.id, ['websocket']);
      const s1 = await watch(m1, room.id, transports);
      const posted = await post(s1, room.id, `the ${old} said`);
      const orig = await waitFor(() => messagesIn(w1, room.id).find((m) => m.seq === posted.seq));
      assert.equal((await searchFor(url, m1.token, room.id, old)).length, 1, 'search finds the text before the edit');

      const t0 = Date.now();
      const ack = await edit(s1, room.id, posted.seq, `  the ${fresh} <b>said</b>  `);
      const t1 = Date.now();
      const at = Date.parse(ack.editedAt);
      assert.ok(at >= t0 - 1_000 && at <= t1 + 1_000, `editedAt ${ack.editedAt} is the time of the edit`);
      assert.ok(ack.version > orig.version, `the edit's version ${ack.version} after the post's ${orig.version}`);
      for (const s of [w1, w2, s1]) {
        const u = await updateAt(s, room.id, ack.version, 'of the edit');
        assertMsg(u, {
          roomId: room.id, seq: posted.seq, id: posted.id, user: m1, text: `  the ${fresh} <b>said</b>  `,
          version: ack.version, edited: ack.editedAt, deleted: false, replyTo: null, reactions: {},
        });
        assert.equal(u.time, orig.time, 'an edit keeps the time of the post');
      }
      assert.deepEqual(updates(w1, room.id).map((m) => m.seq), [posted.seq], 'one message_updated per edit');

      // The author reads their own write at once, the others within a second.
      assertMsg(await current(url, m1.token, room.id, posted.seq), { text: `  the ${fresh} <b>said</b>  `, version: ack.version, edited: ack.editedAt });
      await waitFor(async () => (await current(url, m2.token, room.id, posted.seq)).version === ack.version, { timeout: 1_000, message: 'another member reads the edit within a second' });
      assert.deepEqual((await searchFor(url, m1.token, room.id, fresh)).map((m) => [m.seq, m.message]), [[posted.seq, `  the ${fresh} <b>said</b>  `]]);
      assert.deepEqual(await searchFor(url, m1.token, room.id, old), [], 'search no longer finds the old text');
      await waitFor(async () => (await searchFor(url, m2.token, room.id, old)).length === 0, { timeout: 1_000, message: "another member's search forgets the old text" });

      // A second edit: a later version and editedAt.
      const second = await edit(s1, room.id, posted.seq, 'third wording');
      assert.ok(second.version > ack.version);
      assert.ok(Date.parse(second.editedAt) >= at, `${second.editedAt} >= ${ack.editedAt}`);
      const u2 = await updateAt(w1, room.id, second.version);
      assertMsg(u2, { text: 'third wording', edited: second.editedAt, seq: posted.seq });
      assert.deepEqual(await searchFor(url, m1.token, room.id, fresh), []);
    });
  }

  it('only the author edits: the owner, an admin, another member and an outsider are refused; nothing changes', async () => {
    const { room, owner, admin, m1, m2, outsider } = await community('EdRight');
    const w = await watch(m2, room.id);
    const so = await watch(owner, room.id);
    const sa = await watch(admin, room.id);
    const s1 = await watch(m1, room.id);
    const s2 = await watch(m2, room.id, ['polling']);
    const byMember = await post(s1, room.id, 'written by m1');
    const byOwner = await post(so, room.id, 'written by the owner');
    const sx = await connect(url, outsider.token);
    open.push(sx);
    const before = await state(w, owner, room.id);
    for (const [s, who] of [[so, 'the owner'], [sa, 'an admin'], [s2, 'another member']]) {
      await ackError(s, 'edit_message', { roomId: room.id, seq: byMember.seq, message: `rewritten by ${who}` }, 'forbidden');
    }
    await ackError(sa, 'edit_message', { roomId: room.id, seq: byOwner.seq, message: 'an admin on the owner' }, 'forbidden');
    await ackError(s1, 'edit_message', { roomId: room.id, seq: byOwner.seq, message: 'a member on the owner' }, 'forbidden');
    await ackError(sx, 'edit_message', { roomId: room.id, seq: byMember.seq, message: 'from outside' }, ['not_member', 'forbidden']);
    await ackError(s1, 'edit_message', { roomId: randomUUID(), seq: 1, message: 'no such room' }, ['not_found', 'not_member']);
    await ackError(s1, 'edit_message', { roomId: room.id, seq: byMember.seq, message: 'as m2', userId: m2.id }, 'forbidden');
    for (const event of ['delete_message', 'react']) {
      await ackError(s1, event, { roomId: room.id, seq: byMember.seq, emoji: '👍', on: true, userId: m2.id }, 'forbidden');
    }
    // Without an ack, the refusal comes as chat_error.
    const errors = s1.chatErrors.length;
    s2.emit('edit_message', { roomId: room.id, seq: byMember.seq, message: 'no ack' });
    s1.emit('react', { roomId: room.id, seq: 1_000_000, emoji: '👍', on: true });
    await waitFor(() => s2.chatErrors.length >= 1 && s1.chatErrors.length > errors, { message: 'chat_error for events without an ack' });
    assert.equal(s2.chatErrors.at(-1).code, 'forbidden', JSON.stringify(s2.chatErrors));
    assert.equal(s1.chatErrors.at(-1).code, 'not_found', JSON.stringify(s1.chatErrors));
    await unchanged(w, owner, room.id, before, 'refused edits');
    assert.equal((await current(url, m1.token, room.id, byMember.seq)).message, 'written by m1');
    const own = await emitAck(s1, 'edit_message', { roomId: room.id, seq: byMember.seq, message: 'with my own userId', userId: m1.id });
    assert.equal(own?.ok, true, `the author's own userId is accepted: ${JSON.stringify(own)}`);
  });

  it('text rules as for sending; a bad seq or payload is bad_request; a seq that does not exist not_found', async () => {
    const { room, owner, m1 } = await community('EdText');
    const w = await watch(owner, room.id);
    const s1 = await watch(m1, room.id, ['polling']);
    const p = await post(s1, room.id, 'to be edited');
    const before = await state(w, owner, room.id);
    for (const message of ['a'.repeat(4001), '😀'.repeat(4001)]) {
      await ackError(s1, 'edit_message', { roomId: room.id, seq: p.seq, message }, ['too_large', 'bad_request']);
    }
    for (const message of ['', ' ', '  \n\t ', '\u3000', 42, null, true, ['x'], { text: 'x' }]) {
      await ackError(s1, 'edit_message', { roomId: room.id, seq: p.seq, message }, 'bad_request');
    }
    await ackError(s1, 'edit_message', { roomId: room.id, seq: p.seq }, 'bad_request');
    for (const seq of ['1', 1.5, null, {}, [1], true, 'x']) {
      await ackError(s1, 'edit_message', { roomId: room.id, seq, message: 'bad seq' }, 'bad_request');
    }
    await ackError(s1, 'edit_message', { roomId: room.id, message: 'no seq' }, 'bad_request');
    for (const seq of [0, -1]) await ackError(s1, 'edit_message', { roomId: room.id, seq, message: 'no such seq' }, ['bad_request', 'not_found']);
    // p.seq + 1 is the fence of state(): the room's newest message.
    for (const seq of [p.seq + 2, 1_000_000_000]) await ackError(s1, 'edit_message', { roomId: room.id, seq, message: 'no such seq' }, 'not_found');
    await ackError(s1, 'edit_message', { seq: p.seq, message: 'no room' }, 'bad_request');
    await ackError(s1, 'edit_message', 'just a string', 'bad_request');
    await unchanged(w, owner, room.id, before, 'refused edits');
    // The limits themselves are fine: code points, not UTF-16 units.
    for (const text of ['😀'.repeat(4000), 'x']) {
      const ack = await edit(s1, room.id, p.seq, text);
      assert.equal((await updateAt(w, room.id, ack.version)).message, text);
    }
  });

  it('a deleted message cannot be edited: conflict, and it stays a placeholder', async () => {
    const { room, owner, m1 } = await community('EdDel');
    const w = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const p = await post(s1, room.id, 'soon gone');
    await del(s1, room.id, p.seq);
    const before = await state(w, owner, room.id);
    await ackError(s1, 'edit_message', { roomId: room.id, seq: p.seq, message: 'back from the dead' }, 'conflict');
    await unchanged(w, owner, room.id, before, 'edit of a deleted message');
    assertMsg(await current(url, m1.token, room.id, p.seq), { deleted: true, text: '' });
  });
});

describe('deletions', () => {
  it('the author deletes: a placeholder live and in history with its seq, replyTo null, reactions {}; search never finds it; twice changes nothing', async () => {
    const { room, owner, m1, m2 } = await community('Del');
    const word = `gnu${randomUUID().slice(0, 8)}`;
    const w = await watch(m2, room.id, ['polling']);
    const so = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const q = await post(so, room.id, 'first');
    const p = await post(s1, room.id, `a ${word} that will go`, { replyTo: q.seq });
    await react(so, room.id, p.seq, '👍');
    await react(s1, room.id, p.seq, '🎉');
    const e = await edit(s1, room.id, p.seq, `a ${word} edited before it goes`);
    const orig = await waitFor(() => messagesIn(w, room.id).find((m) => m.seq === p.seq));
    assert.equal((await searchFor(url, m1.token, room.id, word)).length, 1);

    const ack = await del(s1, room.id, p.seq);
    assert.ok(ack.version > e.version);
    for (const s of [w, so, s1]) {
      const u = await updateAt(s, room.id, ack.version, 'of the deletion');
      assertMsg(u, { roomId: room.id, seq: p.seq, id: p.id, text: '', deleted: true, replyTo: null, reactions: {}, version: ack.version });
      assert.equal(u.user.id, m1.id, 'the placeholder keeps its author');
      assert.equal(u.time, orig.time, 'and its time');
    }
    const hist = await history(url, m1.token, room.id);
    assert.deepEqual(hist.map((m) => m.seq), [q.seq, p.seq], 'the seq stays, no gap');
    assertMsg(hist[1], { deleted: true, text: '', replyTo: null, reactions: {}, version: ack.version, id: p.id });
    assertMsg(hist[0], { deleted: false, text: 'first' });
    assert.ok(!JSON.stringify(hist).includes(word), 'history shows nothing of the deleted text');
    assert.deepEqual(await searchFor(url, m1.token, room.id, word), [], 'search never finds a deleted message');
    await waitFor(async () => (await searchFor(url, m2.token, room.id, word)).length === 0, { timeout: 1_000 });

    // Deleting it again is ok and changes nothing.
    const before = await state(w, owner, room.id);
    const again = await emitAck(s1, 'delete_message', { roomId: room.id, seq: p.seq });
    assert.equal(again?.ok, true, `deleting a deleted message: ${JSON.stringify(again)}`);
    assert.equal(again.version, ack.version, `acked with the message's current version: ${JSON.stringify(again)}`);
    const byOwner = await emitAck(so, 'delete_message', { roomId: room.id, seq: p.seq });
    assert.equal(byOwner?.ok, true, `the owner deleting a deleted message: ${JSON.stringify(byOwner)}`);
    await unchanged(w, owner, room.id, before, 'a second deletion');
    const next = await post(so, room.id, 'after the deletion');
    assert.equal(next.seq, p.seq + 3, 'the room goes on without a gap (two fences in between)');
  });

  it('rights: an admin deletes members\' messages, not an admin\'s or the owner\'s; the owner anyone\'s; a member only their own', async () => {
    const { room, owner, admin, m1, m2, outsider } = await community('DelRight');
    const [admin2] = await registerMany(url, 1, 'DelRight2');
    await joinRoom(url, admin2.token, room.room_hash_id);
    memberData(await gov.role(url, owner.token, room.id, admin2.id, 'admin'), 'promote the second admin');
    const w = await watch(m2, room.id, ['polling']);
    const so = await watch(owner, room.id);
    const sa = await watch(admin, room.id);
    const sa2 = await watch(admin2, room.id);
    const s1 = await watch(m1, room.id);
    const s2 = await watch(m2, room.id);
    const sx = await connect(url, outsider.token);
    open.push(sx);
    const byM1 = await post(s1, room.id, 'by m1');
    const byM1b = await post(s1, room.id, 'by m1, again');
    const byAdmin2 = await post(sa2, room.id, 'by the second admin');
    const byOwner = await post(so, room.id, 'by the owner');
    const byAdmin = await post(sa, room.id, 'by the admin');

    const before = await state(w, owner, room.id);
    await ackError(s2, 'delete_message', { roomId: room.id, seq: byM1.seq }, 'forbidden');
    await ackError(s1, 'delete_message', { roomId: room.id, seq: byAdmin.seq }, 'forbidden');
    await ackError(s1, 'delete_message', { roomId: room.id, seq: byOwner.seq }, 'forbidden');
    await ackError(sa, 'delete_message', { roomId: room.id, seq: byAdmin2.seq }, 'forbidden');
    await ackError(sa, 'delete_message', { roomId: room.id, seq: byOwner.seq }, 'forbidden');
    await ackError(sx, 'delete_message', { roomId: room.id, seq: byM1.seq }, ['not_member', 'forbidden']);
    for (const seq of [byAdmin.seq + 2, 1_000_000_000]) await ackError(sa, 'delete_message', { roomId: room.id, seq }, 'not_found');
    for (const seq of ['1', 1.5, null, 'x']) await ackError(sa, 'delete_message', { roomId: room.id, seq }, 'bad_request');
    await ackError(sa, 'delete_message', { roomId: room.id }, 'bad_request');
    await ackError(sa, 'delete_message', { roomId: randomUUID(), seq: 1 }, ['not_found', 'not_member']);
    await unchanged(w, owner, room.id, before, 'refused deletions');

    const allowed = [[sa, byM1, 'an admin, a member\'s'], [so, byAdmin2, 'the owner, an admin\'s'], [s1, byM1b, 'a member, their own'], [sa, byAdmin, 'an admin, their own']];
    for (const [s, p, who] of allowed) {
      const ack = await del(s, room.id, p.seq);
      assertMsg(await updateAt(w, room.id, ack.version, who), { seq: p.seq, deleted: true });
    }
    let hist = [];
    await waitFor(async () => {
      hist = await history(url, m2.token, room.id);
      return hist.filter((m) => m.deleted).length === 4;
    }, { timeout: 1_000, message: 'another member reads the deletions within a second' });
    assert.deepEqual(hist.map((m) => [m.seq, m.deleted]), [
      [byM1.seq, true], [byM1b.seq, true], [byAdmin2.seq, true], [byOwner.seq, false], [byAdmin.seq, true],
      ...hist.slice(5).map((m) => [m.seq, false]),
    ]);
  });
});

describe('reactions', () => {
  it('add and remove: users in the order they reacted; an emoji with nobody left disappears; live on every subscriber', async () => {
    const { room, owner, m1, m2 } = await community('Re');
    const w = await watch(m2, room.id, ['polling']);
    const so = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const s2 = await watch(m2, room.id);
    const p = await post(so, room.id, 'react to me');
    const steps = [
      [s1, '👍', true, { '👍': [m1.id] }],
      [s2, '👍', true, { '👍': [m1.id, m2.id] }],
      [so, '👍', true, { '👍': [m1.id, m2.id, owner.id] }],
      [so, ':party:', true, { '👍': [m1.id, m2.id, owner.id], ':party:': [owner.id] }],
      [s1, '👍', false, { '👍': [m2.id, owner.id], ':party:': [owner.id] }],
      [s1, '👍', true, { '👍': [m2.id, owner.id, m1.id], ':party:': [owner.id] }],
      [so, ':party:', false, { '👍': [m2.id, owner.id, m1.id] }],
      [s2, '👍', false, { '👍': [owner.id, m1.id] }],
      [so, '👍', false, { '👍': [m1.id] }],
      [s1, '👍', false, {}],
    ];
    let last = 0;
    for (const [s, emoji, on, expected] of steps) {
      const ack = await react(s, room.id, p.seq, emoji, on);
      assert.ok(ack.version > last, `each reaction change takes a later version (${ack.version} after ${last})`);
      last = ack.version;
      for (const x of [w, so]) {
        assertMsg(await updateAt(x, room.id, ack.version, `${emoji} ${on}`), { seq: p.seq, text: 'react to me', reactions: expected, version: ack.version, edited: false });
      }
      assertMsg(await current(url, s === so ? owner.token : s === s1 ? m1.token : m2.token, room.id, p.seq), { reactions: expected, version: ack.version });
    }
    assert.equal(updates(w, room.id, p.seq).length, steps.length, 'one message_updated per change');
  });

  it('symbols in the order they first came, live and in history (not sorted)', async () => {
    const { room, owner, m1 } = await community('ReOrd');
    const so = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const p = await post(so, room.id, 'order');
    const order = ['zebra', '👍', 'apple', ':b:'];
    let ack;
    for (const e of order) ack = await react(s1, room.id, p.seq, e);
    await react(so, room.id, p.seq, 'apple');
    assert.deepEqual(Object.keys((await updateAt(so, room.id, ack.version, 'last symbol')).reactions), order, 'live');
    assert.deepEqual(Object.keys((await current(url, owner.token, room.id, p.seq)).reactions), order, 'history');
  });

  it('idempotent both ways: acked with the message\'s current version, no event, nothing changes', async () => {
    const { room, owner, m1, m2 } = await community('ReIdem');
    const w = await watch(m2, room.id);
    const s1 = await watch(m1, room.id, ['polling']);
    const p = await post(s1, room.id, 'one');
    const on = await react(s1, room.id, p.seq, '👍');
    await post(s1, room.id, 'the room moves on');
    const before = await state(w, owner, room.id);
    const twice = await react(s1, room.id, p.seq, '👍', true);
    assert.equal(twice.version, on.version, 'reacting twice: the message\'s current version');
    const absent = await react(s1, room.id, p.seq, '🎉', false);
    assert.equal(absent.version, on.version, 'removing what is not there: the message\'s current version');
    const untouched = await react(s1, room.id, p.seq + 1, '🎉', false);
    assert.equal(untouched.version, (await current(url, m1.token, room.id, p.seq + 1)).version, 'a message never reacted to: its post\'s version');
    await unchanged(w, owner, room.id, before, 'reactions that change nothing');
    assertMsg(await current(url, m1.token, room.id, p.seq), { reactions: { '👍': [m1.id] }, version: on.version });
  });

  it('at most 20 distinct emoji: the 21st is conflict; those there still take more people; after a removal a new one fits', async () => {
    const { room, owner, m1, m2 } = await community('Re20');
    const w = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const s2 = await watch(m2, room.id, ['polling']);
    const p = await post(s1, room.id, 'popular');
    const emoji = Array.from({ length: 22 }, (_, i) => `:e${i + 1}:`);
    for (const e of emoji.slice(0, 20)) await react(s1, room.id, p.seq, e);
    const before = await state(w, owner, room.id);
    await ackError(s2, 'react', { roomId: room.id, seq: p.seq, emoji: emoji[20], on: true }, 'conflict');
    await ackError(s1, 'react', { roomId: room.id, seq: p.seq, emoji: '👍', on: true }, 'conflict');
    await unchanged(w, owner, room.id, before, 'a 21st emoji');
    await react(s2, room.id, p.seq, emoji[0]);
    // Removing one that is not there is fine at the limit too.
    await react(s2, room.id, p.seq, emoji[20], false);
    await react(s1, room.id, p.seq, emoji[4], false);
    await react(s2, room.id, p.seq, emoji[20]);
    await ackError(s2, 'react', { roomId: room.id, seq: p.seq, emoji: emoji[21], on: true }, 'conflict');
    const m = await current(url, m2.token, room.id, p.seq);
    assertMsg(m);
    const expected = [...emoji.slice(0, 4), ...emoji.slice(5, 21)].sort();
    assert.deepEqual(Object.keys(m.reactions).sort(), expected);
    assert.deepEqual(m.reactions[emoji[0]], [m1.id, m2.id]);
    assert.deepEqual(m.reactions[emoji[20]], [m2.id]);
  });

  it('an emoji is 1 to 32 code points without white space: shortcodes and sequences allowed, the rest bad_request', async () => {
    const { room, owner, m1 } = await community('ReEmoji');
    const w = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const p = await post(s1, room.id, 'emoji rules');
    const before = await state(w, owner, room.id);
    const bad = [
      '', ' ', 'a b', '👍 ', ' 👍', '\t', '\n👍', '\u00a0', '👍\u3000', '\u2028', '\u2003x',
      'x'.repeat(33), '😀'.repeat(33), 5, null, true, {}, ['👍'],
    ];
    for (const e of bad) {
      await ackError(s1, 'react', { roomId: room.id, seq: p.seq, emoji: e, on: true }, 'bad_request');
    }
    await ackError(s1, 'react', { roomId: room.id, seq: p.seq, on: true }, 'bad_request');
    for (const on of ['yes', 1, null, 'true']) {
      await ackError(s1, 'react', { roomId: room.id, seq: p.seq, emoji: '👍', on }, 'bad_request');
    }
    for (const seq of ['1', 1.5, null]) await ackError(s1, 'react', { roomId: room.id, seq, emoji: '👍', on: true }, 'bad_request');
    for (const seq of [p.seq + 2, 1_000_000_000]) await ackError(s1, 'react', { roomId: room.id, seq, emoji: '👍', on: true }, 'not_found');
    await unchanged(w, owner, room.id, before, 'refused reactions');

    const good = ['👍', ':thumbsup:', ':+1:', '+1', 'ok', '😀'.repeat(32), 'x'.repeat(32), '👍🏽', '👨‍👩‍👧', '🇫🇷', '❤️', '<b>'];
    for (const e of good) await react(s1, room.id, p.seq, e);
    const m = await current(url, m1.token, room.id, p.seq);
    assert.deepEqual(Object.keys(m.reactions).sort(), [...good].sort(), 'each emoji stored exactly as sent');
    for (const e of good) assert.deepEqual(m.reactions[e], [m1.id]);
  });

  it('a deleted message takes no reaction (conflict); an outsider none (not_member)', async () => {
    const { room, owner, m1, outsider } = await community('ReDel');
    const w = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const sx = await connect(url, outsider.token);
    open.push(sx);
    const p = await post(s1, room.id, 'going');
    await react(s1, room.id, p.seq, '👍');
    await del(s1, room.id, p.seq);
    const before = await state(w, owner, room.id);
    await ackError(s1, 'react', { roomId: room.id, seq: p.seq, emoji: '🎉', on: true }, 'conflict');
    await ackError(sx, 'react', { roomId: room.id, seq: p.seq, emoji: '🎉', on: true }, ['not_member', 'forbidden']);
    await ackError(s1, 'react', { roomId: randomUUID(), seq: 1, emoji: '🎉', on: true }, ['not_found', 'not_member']);
    await unchanged(w, owner, room.id, before, 'reactions to a deleted message');
  });
});

describe('muted members and archived rooms', () => {
  it('a muted member cannot edit or react (muted) but deletes their own; unmuted they edit again', async () => {
    const { room, owner, admin, m1 } = await community('Mute');
    const w = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const mine = await post(s1, room.id, 'before the mute');
    const kept = await post(s1, room.id, 'kept');
    const other = await post(w, room.id, 'by the owner');
    memberData(await gov.mute(url, admin.token, room.id, m1.id, { durationSecs: 600 }), 'mute', { user: m1 });
    const before = await state(w, owner, room.id);
    await ackError(s1, 'edit_message', { roomId: room.id, seq: mine.seq, message: 'while muted' }, 'muted');
    await ackError(s1, 'react', { roomId: room.id, seq: other.seq, emoji: '👍', on: true }, 'muted');
    await ackError(s1, 'react', { roomId: room.id, seq: mine.seq, emoji: '👍', on: true }, 'muted');
    await unchanged(w, owner, room.id, before, 'a muted member');
    const ack = await del(s1, room.id, mine.seq);
    assertMsg(await updateAt(w, room.id, ack.version), { seq: mine.seq, deleted: true });
    memberData(await gov.unmute(url, admin.token, room.id, m1.id), 'unmute', { user: m1 });
    await edit(s1, room.id, kept.seq, 'after the mute');
    await react(s1, room.id, other.seq, '👍');
  });

  it('an archived room refuses edits, deletions and reactions (archived), the owner\'s too; unarchived they work', async () => {
    const { room, owner, admin, m1 } = await community('Arch');
    const w = await watch(admin, room.id);
    const so = await watch(owner, room.id);
    const s1 = await watch(m1, room.id, ['polling']);
    const mine = await post(s1, room.id, 'in the archive');
    const ownerMsg = await post(so, room.id, 'the owner\'s');
    const f = await fence(w, room.id);
    await historyCaughtUp(url, owner.token, room.id, f.seq);
    assertOk(await gov.patch(url, owner.token, room.id, { archived: true }), 200, 'archive');
    const before = await state(w, owner, room.id, { fenced: false });
    await ackError(s1, 'edit_message', { roomId: room.id, seq: mine.seq, message: 'rewritten' }, 'archived');
    await ackError(s1, 'delete_message', { roomId: room.id, seq: mine.seq }, 'archived');
    await ackError(s1, 'react', { roomId: room.id, seq: mine.seq, emoji: '👍', on: true }, 'archived');
    await ackError(so, 'delete_message', { roomId: room.id, seq: mine.seq }, 'archived');
    await ackError(so, 'edit_message', { roomId: room.id, seq: ownerMsg.seq, message: 'the owner rewrites' }, 'archived');
    await ackError(so, 'react', { roomId: room.id, seq: ownerMsg.seq, emoji: '👍', on: true }, 'archived');
    assert.equal(await snapshot(owner.token, room.id), before.history, 'refusals in an archived room change nothing');
    assert.equal(await lastVersion(owner, room.id), before.version);
    assert.deepEqual(updates(w, room.id), []);
    assertOk(await gov.patch(url, owner.token, room.id, { archived: false }), 200, 'unarchive');
    await edit(s1, room.id, mine.seq, 'rewritten');
    await react(s1, room.id, mine.seq, '👍');
    await del(so, room.id, mine.seq);
  });
});

describe('versions and resume', () => {
  it('every change takes the next version; a message\'s version in history is that of its latest change', async () => {
    const { room, owner, m1, m2 } = await community('Ver');
    const w = await watch(m2, room.id, ['polling']);
    const so = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const a = await post(so, room.id, 'a');
    const b = await post(s1, room.id, 'b', { replyTo: a.seq });
    const e1 = await edit(so, room.id, a.seq, 'a, edited');
    const r1 = await react(s1, room.id, a.seq, '👍');
    const r2 = await react(so, room.id, b.seq, '🎉');
    const d = await del(s1, room.id, b.seq);
    const c = await post(so, room.id, 'c');
    await waitFor(() => messagesIn(w, room.id).some((m) => m.seq === c.seq));
    const got = changes(w, room.id);
    const versions = assertIncreasing(got, 'the watcher');
    assertContiguous(versions, versions[0], versions.at(-1), 'one more per change');
    assert.deepEqual(got.map((e) => `${e.event} ${e.data.seq}`), [
      `received ${a.seq}`, `received ${b.seq}`, `message_updated ${a.seq}`, `message_updated ${a.seq}`,
      `message_updated ${b.seq}`, `message_updated ${b.seq}`, `received ${c.seq}`,
    ]);
    assert.deepEqual(got.slice(2, 6).map((e) => e.data.version), [e1.version, r1.version, r2.version, d.version], 'the acks name the versions delivered');
    const hist = await history(url, owner.token, room.id);
    assert.deepEqual(hist.map((m) => [m.seq, m.version]), [[a.seq, r1.version], [b.seq, d.version], [c.seq, versions.at(-1)]]);
    // The owner's socket saw the same changes with the same versions.
    await waitFor(() => changes(so, room.id).length >= got.length);
    assert.deepEqual(changes(so, room.id).map((e) => `${e.data.version} ${e.event} ${e.data.seq}`), got.map((e) => `${e.data.version} ${e.event} ${e.data.seq}`));
  });

  for (const transports of TRANSPORTS) {
    it(`sinceVersion replays every edit, deletion and reaction as message_updated with its own version, showing the message as it is now (${transports})`, async () => {
      const { room, owner, m1, m2 } = await community('Rv');
      const so = await watch(owner, room.id);
      const s1 = await watch(m1, room.id);
      const b1 = await watch(m2, room.id, transports);
      await post(so, room.id, 'seen');
      await waitFor(() => messagesIn(b1, room.id).length === 1);
      const seen = changes(b1, room.id).at(-1).data.version;
      b1.close();
      await waitFor(() => !b1.connected);

      const secret = `lynx${randomUUID().slice(0, 8)}`;
      const a = await post(so, room.id, `A one ${secret}`);
      const b = await post(s1, room.id, `B ${secret}`, { replyTo: a.seq });
      await edit(so, room.id, a.seq, `A two ${secret}`);
      await react(s1, room.id, a.seq, '👍');
      await react(so, room.id, a.seq, '🎉');
      await react(s1, room.id, a.seq, '👍', false);
      await react(so, room.id, b.seq, '👀');
      await del(s1, room.id, b.seq);
      await edit(so, room.id, a.seq, 'A three');
      const c = await post(so, room.id, 'C', { replyTo: b.seq });
      await react(so, room.id, a.seq, '🎉'); // changes nothing: no version, nothing replayed
      const lastMissed = (await waitFor(() => messagesIn(so, room.id).find((m) => m.seq === c.seq))).version;

      const b2 = recordAll(await connect(url, m2.token, transports));
      open.push(b2);
      const ack = await emitAck(b2, 'join_one_chat', { roomId: room.id, sinceVersion: seen });
      assert.equal(ack?.ok, true, JSON.stringify(ack));
      assert.equal(ack.rooms[0].recovered, true);
      assert.equal(ack.rooms[0].lastVersion, lastMissed);
      await fence(so, room.id);
      await waitFor(() => changes(b2, room.id).some((e) => e.data.message === 'fence'), { message: 'the fence after the replay' });

      const got = changes(b2, room.id);
      const versions = assertIncreasing(got, 'replay');
      assertContiguous(versions, seen + 1, lastMissed + 1, 'every missed change once, in order, then the fence');
      assert.deepEqual(got.slice(0, -1).map((e) => `${e.event} ${e.data.seq}`), [
        `received ${a.seq}`, `received ${b.seq}`,
        `message_updated ${a.seq}`, `message_updated ${a.seq}`, `message_updated ${a.seq}`, `message_updated ${a.seq}`,
        `message_updated ${b.seq}`, `message_updated ${b.seq}`, `message_updated ${a.seq}`, `received ${c.seq}`,
      ]);
      // The live owner saw the same changes under the same versions.
      const live = new Map(changes(so, room.id).map((e) => [e.data.version, `${e.event} ${e.data.seq}`]));
      for (const e of got) assert.equal(`${e.event} ${e.data.seq}`, live.get(e.data.version), `version ${e.data.version}`);
      // Each replayed change shows its message as history shows it now.
      await historyCaughtUp(url, m2.token, room.id, got.at(-1).data.seq);
      const now = new Map((await history(url, m2.token, room.id)).map((m) => [m.seq, m]));
      for (const e of got) {
        assertMsg(e.data);
        assert.deepEqual(content(e.data), content(now.get(e.data.seq)), `replayed version ${e.data.version} of #${e.data.seq} is the message as it is now`);
      }
      assertMsg(now.get(a.seq), { text: 'A three', reactions: { '🎉': [owner.id] } });
      assertMsg(now.get(b.seq), { deleted: true });
      assertMsg(now.get(c.seq), { replyTo: b.seq });
      assert.ok(!JSON.stringify(b2.log).includes(secret), 'a replay never shows an old text or a deleted one');
    });
  }

  it('part 1 since replays by seq as the messages are now: edited text, deleted ones as placeholders', async () => {
    const { room, owner, m1, m2 } = await community('Since');
    const so = await watch(owner, room.id);
    const s1 = await watch(m1, room.id);
    const a = await post(so, room.id, 'one');
    const b = await post(s1, room.id, 'two, soon deleted');
    const c = await post(s1, room.id, 'three');
    await edit(s1, room.id, c.seq, 'three, edited');
    await react(so, room.id, c.seq, '👍');
    await del(s1, room.id, b.seq);
    const s = recordAll(await connect(url, m2.token, ['polling']));
    open.push(s);
    const ack = await emitAck(s, 'join_one_chat', { roomId: room.id, since: 0 });
    assert.equal(ack?.ok, true, JSON.stringify(ack));
    assert.equal(ack.rooms[0].recovered, true);
    await waitFor(() => messagesIn(s, room.id).length >= 3, { message: 'three messages replayed' });
    const got = messagesIn(s, room.id).slice(0, 3);
    assert.deepEqual(got.map((m) => m.seq), [a.seq, b.seq, c.seq]);
    await waitFor(async () => (await current(url, m2.token, room.id, b.seq)).deleted, { timeout: 1_000, message: 'the deletion in history' });
    const now = new Map((await history(url, m2.token, room.id)).map((m) => [m.seq, m]));
    for (const m of got) {
      assertMsg(m);
      assert.deepEqual(content(m), content(now.get(m.seq)), `#${m.seq} replayed as it is now`);
    }
    assertMsg(got[1], { deleted: true, text: '' });
    assertMsg(got[2], { text: 'three, edited', reactions: { '👍': [owner.id] } });
    assert.ok(!JSON.stringify(s.log).includes('soon deleted'));
  });
});

describe('erasure of an author', () => {
  it('each of their messages becomes a placeholder delivered live as message_updated; their reactions stay as ids', async () => {
    const [alice, bob] = await registerMany(url, 2, 'Er');
    const room = await createRoom(url, bob.token);
    await joinRoom(url, alice.token, room.room_hash_id);
    const sb = await watch(bob, room.id, ['polling']);
    const sa = await watch(alice, room.id);
    const word = `quokka${randomUUID().slice(0, 8)}`;
    const a1 = await post(sa, room.id, `first ${word}`);
    const a2 = await post(sa, room.id, `second ${word}`);
    await edit(sa, room.id, a2.seq, `second ${word}, edited`);
    const gone = await post(sa, room.id, 'deleted before the erasure');
    await del(sa, room.id, gone.seq);
    const b1 = await post(sb, room.id, 'bob stays', { replyTo: a1.seq });
    await react(sa, room.id, b1.seq, '👍');
    await react(sb, room.id, b1.seq, '👍');
    const from = changes(sb, room.id).at(-1).data.version;
    assert.equal(assertOk(await api(url, 'DELETE', '/api/user', { token: alice.token, body: { password: alice.password } }), 200, 'erasure'), null);
    const placeholders = await waitFor(() => {
      const got = updates(sb, room.id).filter((m) => m.version > from && [a1.seq, a2.seq].includes(m.seq));
      return got.length >= 2 && got;
    }, { message: 'the placeholders are delivered live' });
    assert.deepEqual(placeholders.map((m) => m.seq).sort((x, y) => x - y), [a1.seq, a2.seq]);
    for (const m of placeholders) {
      assertMsg(m, { deleted: true, text: '' });
      assert.deepEqual(m.user, { id: alice.id, name: 'Deleted user', avatarImage: '' });
    }
    assert.notEqual(placeholders[0].version, placeholders[1].version, 'each placeholder is a change of its own');
    assert.ok(!JSON.stringify(changes(sb, room.id).filter((e) => e.data.version > from)).includes(word), 'nothing after the erasure shows her texts');
    const hist = await history(url, bob.token, room.id);
    const b = hist.find((m) => m.seq === b1.seq);
    assert.deepEqual(b.reactions, { '👍': [alice.id, bob.id] }, 'her reaction stays as her id');
    assert.equal(b.replyTo, a1.seq);
    assert.deepEqual(await searchFor(url, bob.token, room.id, word), []);
  });
});

describe('export', () => {
  it('lists the caller\'s own messages with every version, oldest first, and whether each is deleted', async () => {
    const [alice, bob] = await registerMany(url, 2, 'Exp');
    const room = await createRoom(url, bob.token);
    await joinRoom(url, alice.token, room.room_hash_id);
    const sa = await watch(alice, room.id);
    const sb = await watch(bob, room.id);
    const x = await post(sa, room.id, 'x one');
    const e1 = await edit(sa, room.id, x.seq, 'x two');
    const e2 = await edit(sa, room.id, x.seq, 'x three');
    const y = await post(sa, room.id, 'y, deleted by the owner');
    await post(sb, room.id, 'bob\'s own');
    await del(sb, room.id, y.seq);
    const data = assertOk(await api(url, 'GET', '/api/user/export', { token: alice.token }), 200, 'export');
    const mine = data.messages.filter((m) => m.roomId === room.id).sort((p, q) => p.seq - q.seq);
    assert.deepEqual(mine.map((m) => [m.seq, m.id, m.deleted]), [[x.seq, x.id, false], [y.seq, y.id, true]]);
    const [ex] = mine;
    assert.deepEqual(ex.versions.map((v) => v.message), ['x one', 'x two', 'x three'], 'every version, oldest first');
    for (const v of ex.versions) assertTime(v.time, 'version time');
    assert.deepEqual(ex.versions.map((v) => v.time), [x.time, e1.editedAt, e2.editedAt], 'each version at its time');
    assert.ok(!JSON.stringify(data).includes('bob\'s own'), 'only the caller\'s messages');
  });
});

describe('send rate limit (--send-rate-limit 1, burst 100)', () => {
  let limited;
  before(async () => {
    limited = await startServer({ args: ['--send-rate-limit', '1'] });
  });
  after(async () => { await limited?.cleanup(); });

  it('edits, deletions and reactions draw from the sender\'s bucket, and reactions empty it for sends', async () => {
    const [u, v, other] = await Promise.all([register(limited.url), register(limited.url), register(limited.url)]);
    const room = await createRoom(limited.url, other.token);
    for (const x of [u, v]) await joinRoom(limited.url, x.token, room.room_hash_id);
    const su = await connect(limited.url, u.token);
    const sv = await connect(limited.url, v.token);
    const so = await connect(limited.url, other.token);
    open.push(su, sv, so);
    const targets = [];
    for (let i = 0; i < 4; i += 1) targets.push(await post(so, room.id, `target ${i}`));
    const mine = [];
    for (let i = 0; i < 6; i += 1) mine.push(await post(su, room.id, `mine ${i}`));
    // Empty u's bucket with sends.
    const drain = await Promise.all(Array.from({ length: 120 }, (_, i) => emitAck(su, 'user_send_message', { roomId: room.id, id: newMsgId(), message: `drain ${i}`, type: 'input' })));
    assert.ok(drain.some((a) => !a.ok && a.error.code === 'rate_limited'), 'the bucket is empty');
    const tries = await Promise.all([
      ...mine.slice(0, 3).map((m) => emitAck(su, 'edit_message', { roomId: room.id, seq: m.seq, message: 'edited' }).then((a) => ['edit', a])),
      ...mine.slice(3).map((m) => emitAck(su, 'delete_message', { roomId: room.id, seq: m.seq }).then((a) => ['delete', a])),
      ...targets.slice(0, 3).map((m) => emitAck(su, 'react', { roomId: room.id, seq: m.seq, emoji: '👍', on: true }).then((a) => ['react', a])),
    ]);
    for (const kind of ['edit', 'delete', 'react']) {
      const acks = tries.filter(([k]) => k === kind).map(([, a]) => a);
      assert.ok(acks.some((a) => a.ok === false && a.error?.code === 'rate_limited'), `${kind} past an empty bucket: ${JSON.stringify(acks)}`);
      for (const a of acks.filter((x) => !x.ok)) assert.equal(a.error.code, 'rate_limited', JSON.stringify(a));
    }
    // The other way round: reactions alone empty v's bucket, and v's next send is refused.
    const flips = await Promise.all(Array.from({ length: 120 }, (_, i) => emitAck(sv, 'react', { roomId: room.id, seq: targets[3].seq, emoji: '👍', on: i % 2 === 0 })));
    assert.ok(flips.some((a) => !a.ok && a.error.code === 'rate_limited'), `120 reactions at once hit the limit: ${JSON.stringify(flips.filter((a) => !a.ok).slice(0, 2))}`);
    const sends = await Promise.all([0, 1, 2].map((i) => emitAck(sv, 'user_send_message', { roomId: room.id, id: newMsgId(), message: `after the reactions ${i}`, type: 'input' })));
    assert.ok(sends.some((a) => !a.ok && a.error.code === 'rate_limited'), `sends after a reaction flood: ${JSON.stringify(sends)}`);
  });
});
