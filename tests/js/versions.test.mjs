// Live updates and resume by version (docs/protocol.md part 2, "Live updates and resume" and
// its details), as sockets of the official client see them: every change a room delivers
// carries the room's `version`, one more per change; each kind of `room_event` with its
// fields; a removed user's sockets get their removal last and then nothing of the room; and
// `join_all` / `join_one_chat` with `sinceVersion` replaying exactly what was missed, in order,
// before live events, with the 1,000 cap, next to part 1's `since`, which is unchanged.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  TRANSPORTS, startServer, assertOk, registerMany, createRoom, joinRoom, connect,
  api, emitAck, send, sendMany, ackError, messagesIn, waitFor, barrier, delay, closeAll, newMsgId,
  assertSeqRange,
} from './helpers.mjs';
import {
  gov, okNull, roomList, memberData, assertRemoved, assertRoomEvent, recordAll, watcher,
  roomEvents, roomLog, changes, waitRoomEvent, assertIncreasing, assertContiguous,
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

async function watch(user, rooms, transports = ['websocket'], payload = {}) {
  const s = await watcher(url, user, rooms, transports, payload);
  open.push(s);
  return s;
}

/** A socket that joins one room with `payload` (since, sinceVersion) and records everything. */
async function resumeOne(user, roomId, payload, transports = ['websocket']) {
  const s = recordAll(await connect(url, user.token, transports));
  open.push(s);
  const ack = await emitAck(s, 'join_one_chat', { roomId, ...payload });
  assert.equal(ack?.ok, true, `join_one_chat ${JSON.stringify(payload)}: ${JSON.stringify(ack)}`);
  assert.equal(ack.rooms.length, 1);
  return { s, entry: ack.rooms[0] };
}

/** Assert a join ack entry of part 2: part 1's fields plus an integer `lastVersion`. */
function assertEntry(entry, { roomId, lastSeq, lastVersion, recovered }) {
  assert.deepEqual(Object.keys(entry).sort(), ['lastSeq', 'lastVersion', 'ok', 'recovered', 'roomId'], `entry ${JSON.stringify(entry)}`);
  assert.equal(entry.roomId, roomId);
  assert.equal(entry.ok, true);
  assert.ok(Number.isInteger(entry.lastVersion) && entry.lastVersion >= 1, `lastVersion ${entry.lastVersion}`);
  if (lastSeq !== undefined) assert.equal(entry.lastSeq, lastSeq, 'lastSeq');
  if (lastVersion !== undefined) assert.equal(entry.lastVersion, lastVersion, 'lastVersion');
  if (recovered !== undefined) assert.equal(entry.recovered, recovered, `recovered in ${JSON.stringify(entry)}`);
}

/** The room's newest version: what a plain join acks as lastVersion. */
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

/** Post from `via` (a member's socket) and wait until `sockets` got it: a version fence. */
async function fence(via, roomId, sockets) {
  const ack = await send(via, roomId, 'fence');
  await waitFor(() => sockets.every((s) => messagesIn(s, roomId).some((m) => m.seq === ack.seq)), { message: 'the fence arrives' });
  return ack;
}

/** A short name for a change, to compare what two sockets got. */
function label(e) {
  if (e.event === 'received') return `${e.data.version} received ${e.data.seq}`;
  if (e.event === 'room_event') return `${e.data.version} ${e.data.type} ${e.data.user?.id ?? ''}`;
  return `${e.data.version} ${e.event} ${e.data.seq}`;
}

describe('versions on live delivery', () => {
  it('every kind of change is delivered with its fields and the next version, no gaps', async () => {
    const [owner, m1, m2, m3, watcherUser] = await registerMany(url, 5, 'Ver');
    const room = await createRoom(url, owner.token);
    for (const u of [watcherUser, m1, m2]) await joinRoom(url, u.token, room.room_hash_id);
    const w = await watch(watcherUser, [room.id], ['polling']);
    const so = await watch(owner, [room.id]);
    const t = Date.now();

    await send(so, room.id, 'one');
    await joinRoom(url, m3.token, room.room_hash_id);
    memberData(await gov.role(url, owner.token, room.id, m1.id, 'admin'), 'promote');
    memberData(await gov.mute(url, m1.token, room.id, m2.id, { durationSecs: 60 }), 'mute');
    memberData(await gov.unmute(url, m1.token, room.id, m2.id), 'unmute');
    await okNull(gov.kick(url, m1.token, room.id, m3.id, { reason: 'kicked' }), 'kick');
    await okNull(gov.ban(url, owner.token, room.id, m3.id, { durationSecs: 600 }), 'ban');
    await okNull(gov.unban(url, owner.token, room.id, m3.id), 'unban');
    await okNull(gov.ban(url, m1.token, room.id, m3.id, {}), 'ban without end');
    await okNull(gov.leave(url, m2.token, room.id), 'leave');
    assertOk(await gov.patch(url, m1.token, room.id, { description: 'new' }), 200, 'patch');
    assertOk(await gov.patch(url, owner.token, room.id, { archived: true }), 200, 'archive');
    assertOk(await gov.patch(url, owner.token, room.id, { archived: false }), 200, 'unarchive');
    await send(so, room.id, 'two');

    await waitFor(() => messagesIn(w, room.id).length === 2, { message: 'both messages' });
    const got = changes(w, room.id);
    const versions = assertIncreasing(got, 'watcher');
    assertContiguous(versions, versions[0], versions.at(-1), 'one more per change');
    const kinds = got.map((e) => (e.event === 'room_event' ? e.data.type : e.event));
    assert.deepEqual(kinds, [
      'received', 'joined', 'role_changed', 'muted', 'unmuted', 'kicked', 'banned', 'unbanned', 'banned',
      'left', 'updated', 'archived', 'unarchived', 'received',
    ]);
    const ev = got.map((e) => e.data);
    const plus = (secs) => [t + secs * 1_000, Date.now() + secs * 1_000 + 1_000];
    assertRoomEvent(ev[1], { type: 'joined', roomId: room.id, user: m3 });
    assertRoomEvent(ev[2], { type: 'role_changed', user: m1, by: owner, role: 'admin' });
    assertRoomEvent(ev[3], { type: 'muted', user: m2, by: m1, until: plus(60) });
    assertRoomEvent(ev[4], { type: 'unmuted', user: m2, by: m1 });
    assertRoomEvent(ev[5], { type: 'kicked', user: m3, by: m1 });
    assertRoomEvent(ev[6], { type: 'banned', user: m3, by: owner, until: plus(600) });
    assertRoomEvent(ev[7], { type: 'unbanned', user: m3, by: owner });
    assertRoomEvent(ev[8], { type: 'banned', user: m3, by: m1, until: null });
    assertRoomEvent(ev[9], { type: 'left', user: m2 });
    assertRoomEvent(ev[10], { type: 'updated', by: m1 });
    assert.equal(ev[10].room.description, 'new');
    assertRoomEvent(ev[11], { type: 'archived', by: owner });
    assertRoomEvent(ev[12], { type: 'unarchived', by: owner });
    // The owner's socket saw the very same changes with the same versions.
    await waitFor(() => changes(so, room.id).length >= got.length);
    assert.deepEqual(changes(so, room.id).map(label), got.map(label));
  });

  it('a join is a room_event joined; the join notice carries the room\'s version at that join', async () => {
    const [owner, bob] = await registerMany(url, 2, 'Jn');
    const room = await createRoom(url, owner.token);
    const so = await watch(owner, [room.id]);
    const own = roomLog(so, room.id).find((e) => e.event === 'received' && e.data.type === 'join');
    assert.ok(own, 'the owner\'s own join notice');
    assert.equal(own.data.version, so.joinAck.rooms[0].lastVersion, 'join notice version = lastVersion at the join');
    await send(so, room.id, 'before bob');
    await joinRoom(url, bob.token, room.room_hash_id);
    const joined = assertRoomEvent(await waitRoomEvent(so, room.id, 'joined'), { type: 'joined', roomId: room.id, user: bob });
    const sb = await watch(bob, [room.id], ['polling']);
    const entry = sb.joinAck.rooms[0];
    assert.equal(entry.lastVersion, joined.version, 'nothing changed since bob joined');
    const notice = await waitFor(() => roomLog(so, room.id).filter((e) => e.event === 'received' && e.data.type === 'join').at(1));
    assert.equal(notice.data.user.id, bob.id);
    assert.equal(notice.data.version, joined.version, 'the notice carries the version of the room at that join');
    const bobs = roomLog(sb, room.id).find((e) => e.event === 'received' && e.data.type === 'join');
    assert.equal(bobs.data.version, joined.version);
    const after = await send(sb, room.id, 'after bob');
    await waitFor(() => messagesIn(so, room.id).some((m) => m.seq === after.seq));
    assert.equal(messagesIn(so, room.id).at(-1).version, joined.version + 1, 'the next change is the next version');
  });
});

describe('removal takes effect at once', () => {
  for (const how of ['kick', 'ban', 'leave']) {
    it(`${how}: the removed user's sockets get their removal last, then nothing of the room`, async () => {
      const [owner, admin, victim, other] = await registerMany(url, 4, `Rm${how}`);
      const room = await createRoom(url, owner.token);
      const elsewhere = await createRoom(url, owner.token);
      for (const u of [admin, victim, other]) await joinRoom(url, u.token, room.room_hash_id);
      await joinRoom(url, victim.token, elsewhere.room_hash_id);
      memberData(await gov.role(url, owner.token, room.id, admin.id, 'admin'), 'promote');
      const so = await watch(owner, [room.id, elsewhere.id]);
      const sw = await watch(other, [room.id], ['polling']);
      const v1 = await watch(victim, [room.id, elsewhere.id]);
      const v2 = await watch(victim, [room.id], ['polling']);
      await fence(so, room.id, [v1, v2, sw]);

      const type = { kick: 'kicked', ban: 'banned', leave: 'left' }[how];
      if (how === 'kick') await okNull(gov.kick(url, admin.token, room.id, victim.id, { reason: 'bye' }), 'kick');
      if (how === 'ban') await okNull(gov.ban(url, admin.token, room.id, victim.id, { reason: 'bye' }), 'ban');
      if (how === 'leave') await okNull(gov.leave(url, victim.token, room.id), 'leave');
      // The next messages and changes of the room, right after the removal.
      const next = [];
      for (let i = 0; i < 3; i += 1) next.push(await send(so, room.id, `after the ${how} ${i}`));
      memberData(await gov.role(url, owner.token, room.id, other.id, 'admin'), 'a later change');
      const elsewhereMsg = await send(so, elsewhere.id, 'the other room goes on');

      await waitFor(() => roomEvents(sw, room.id, 'role_changed').some((e) => e.user.id === other.id), { message: 'the others get the later change' });
      for (const v of [v1, v2]) {
        await waitFor(() => roomEvents(v, room.id, type).length === 1, { message: `${how}: the removed socket gets its removal` });
        await barrier(v, [v]);
        await delay(200);
        const last = roomLog(v, room.id).at(-1);
        assert.equal(last.event, 'room_event', `last event of the room: ${JSON.stringify(last)}`);
        assertRoomEvent(last.data, { type, roomId: room.id, user: victim, ...(how === 'leave' ? {} : { by: admin }) });
        assert.ok(!messagesIn(v, room.id).some((m) => next.some((n) => n.seq === m.seq)), `${how}: a removed socket got a later message`);
      }
      await waitFor(() => messagesIn(v1, elsewhere.id).some((m) => m.seq === elsewhereMsg.seq), { message: 'the other room still reaches the socket' });
      const removal = roomEvents(sw, room.id, type)[0];
      assert.equal(removal.version, roomEvents(v1, room.id, type)[0].version, 'one version for the removal');

      assertRemoved(await gov.history(url, victim.token, room.id), 'history');
      assertRemoved(await gov.search(url, victim.token, room.id, 'after'), 'search');
      assert.ok(!(await roomList(url, victim.token)).some((x) => x.id === room.id), 'the room leaves their list');
      assert.ok((await roomList(url, victim.token)).some((x) => x.id === elsewhere.id));
      await ackError(v1, 'user_send_message', { roomId: room.id, id: newMsgId(), message: 'still here?', type: 'input' }, ['not_member', 'banned', 'forbidden']);
      await ackError(v2, 'join_one_chat', { roomId: room.id }, ['not_member', 'banned', 'forbidden']);
      const s3 = recordAll(await connect(url, victim.token));
      open.push(s3);
      const all = await emitAck(s3, 'join_all', { roomList: [room.id], sinceVersion: { [room.id]: 0 } });
      assert.equal(all.rooms[0].ok, false, `join_all of the room after the ${how}: ${JSON.stringify(all)}`);
      await fence(so, room.id, [sw]);
      await barrier(s3, [s3]);
      assert.deepEqual(roomLog(s3, room.id), [], 'nothing replayed to a removed user');
    });
  }
});

describe('a removal racing the removed user\'s own posts', () => {
  it('every post acked ok comes before the kick; the rest are refused not_member', async () => {
    const [owner, victim, other] = await registerMany(url, 3, 'Race');
    const room = await createRoom(url, owner.token);
    for (const u of [victim, other]) await joinRoom(url, u.token, room.room_hash_id);
    const sw = await watch(other, [room.id]);
    const sv = await watch(victim, [room.id]);
    const pending = [];
    let kick;
    for (let i = 0; i < 300; i += 1) {
      pending.push(emitAck(sv, 'user_send_message', { roomId: room.id, id: newMsgId(), message: `race ${i}`, type: 'input' }));
      if (i === 100) kick = gov.kick(url, owner.token, room.id, victim.id, {});
    }
    await okNull(kick, 'kick');
    const acks = await Promise.all(pending);
    const kicked = await waitRoomEvent(sw, room.id, 'kicked');
    for (const ack of acks.filter((a) => !a.ok)) assert.equal(ack.error.code, 'not_member', JSON.stringify(ack));
    const okSeqs = new Set(acks.filter((a) => a.ok).map((a) => a.seq));
    await fence(sw, room.id, [sw]);
    const seen = messagesIn(sw, room.id).filter((m) => m.user.id === victim.id);
    assert.deepEqual(seen.map((m) => m.seq).sort((x, y) => x - y), [...okSeqs].sort((x, y) => x - y), 'exactly the acked posts were delivered');
    for (const m of seen) assert.ok(m.version < kicked.version, `post ${m.seq} (version ${m.version}) after the kick (version ${kicked.version})`);
    const last = roomLog(sv, room.id).at(-1);
    assert.equal(last.event, 'room_event', `the victim's last event: ${JSON.stringify(last)}`);
    assert.equal(last.data.type, 'kicked');
  });
});

describe('resume by sinceVersion', () => {
  for (const transports of TRANSPORTS) {
    it(`replays every missed change in order, before live events (${transports})`, async () => {
      const [owner, bob, carol, dave] = await registerMany(url, 4, 'Rv');
      const room = await createRoom(url, owner.token);
      for (const u of [bob, carol]) await joinRoom(url, u.token, room.room_hash_id);
      const so = await watch(owner, [room.id]);
      const b1 = await watch(bob, [room.id], transports);
      await send(so, room.id, 'seen');
      await waitFor(() => messagesIn(b1, room.id).length === 1);
      const seen = changes(b1, room.id).at(-1).data.version;
      b1.close();
      await waitFor(() => !b1.connected);

      // What bob misses: messages and every kind of change.
      await send(so, room.id, 'missed 1');
      await joinRoom(url, dave.token, room.room_hash_id);
      memberData(await gov.mute(url, owner.token, room.id, carol.id, { durationSecs: 60 }), 'mute');
      memberData(await gov.role(url, owner.token, room.id, carol.id, 'admin'), 'promote');
      assertOk(await gov.patch(url, owner.token, room.id, { name: 'renamed while away' }), 200, 'patch');
      await okNull(gov.kick(url, owner.token, room.id, dave.id, {}), 'kick');
      await send(so, room.id, 'missed 2');
      const missedUntil = (await waitFor(() => messagesIn(so, room.id).find((m) => m.message === 'missed 2'))).version;

      // Live traffic while bob resumes.
      let stop = false;
      const live = (async () => {
        for (let i = 0; !stop && i < 200; i += 1) await send(so, room.id, `live ${i}`);
      })();
      await waitFor(() => messagesIn(so, room.id).length >= 5);
      const { s: b2, entry } = await resumeOne(bob, room.id, { sinceVersion: seen }, transports);
      await delay(200);
      stop = true;
      await live;
      const end = await fence(so, room.id, [b2]);
      assertEntry(entry, { roomId: room.id, recovered: true });
      assert.ok(entry.lastVersion >= missedUntil, `lastVersion ${entry.lastVersion} >= ${missedUntil}`);

      const got = changes(b2, room.id);
      const versions = assertIncreasing(got, 'replay then live');
      const last = changes(so, room.id).find((e) => e.event === 'received' && e.data.seq === end.seq).data.version;
      assertContiguous(versions, seen + 1, last, 'every change after sinceVersion once, in order');
      const ownerView = new Map(changes(so, room.id).map((e) => [e.data.version, label(e)]));
      for (const e of got) assert.equal(label(e), ownerView.get(e.data.version), `version ${e.data.version} is the same change`);
      const kinds = got.filter((e) => e.data.version <= missedUntil).map((e) => (e.event === 'room_event' ? e.data.type : e.data.message));
      assert.deepEqual(kinds, ['missed 1', 'joined', 'muted', 'role_changed', 'updated', 'kicked', 'missed 2']);
      const upd = got.find((e) => e.data.type === 'updated');
      assert.equal(upd.data.room.name, 'renamed while away');
    });
  }

  it('the REST join answers the version of the join; a resume from it replays what came after', async () => {
    const [owner, bob] = await registerMany(url, 2, 'Rjv');
    const room = await createRoom(url, owner.token);
    const so = await watch(owner, [room.id]);
    const joined = assertOk(await api(url, 'POST', '/api/room/join', { token: bob.token, body: { roomIdHash: room.room_hash_id } }), 200, 'join');
    assert.deepEqual(Object.keys(joined).sort(), ['room', 'version']);
    const ev = await waitRoomEvent(so, room.id, 'joined', (e) => e.user.id === bob.id);
    assert.equal(joined.version, ev.version, 'the version of bob\'s joined event');
    const again = assertOk(await api(url, 'POST', '/api/room/join', { token: bob.token, body: { roomIdHash: room.room_hash_id } }), 200, 'join twice');
    assert.equal(again.version, joined.version, 'joining twice changes nothing');
    // bob's socket never joined: what came after his REST join reaches him by that version
    memberData(await gov.mute(url, owner.token, room.id, bob.id, { durationSecs: 60 }), 'mute');
    await send(so, room.id, 'after the join');
    const { s: b } = await resumeOne(bob, room.id, { sinceVersion: joined.version });
    await waitFor(() => messagesIn(b, room.id).length === 1);
    const kinds = changes(b, room.id).map((e) => (e.event === 'room_event' ? e.data.type : e.data.message));
    assert.deepEqual(kinds, ['muted', 'after the join']);
  });

  it('join_all takes sinceVersion keyed by room id; every entry carries lastVersion', async () => {
    const [owner, bob] = await registerMany(url, 2, 'Rall');
    const r1 = await createRoom(url, owner.token);
    const r2 = await createRoom(url, owner.token);
    const r3 = await createRoom(url, owner.token);
    for (const r of [r1, r2, r3]) await joinRoom(url, bob.token, r.room_hash_id);
    const so = await watch(owner, [r1.id, r2.id, r3.id]);
    for (const r of [r1, r2, r3]) await send(so, r.id, 'one');
    const v1 = await lastVersion(owner, r1.id);
    const v2 = await lastVersion(owner, r2.id);
    for (const r of [r1, r2, r3]) await send(so, r.id, 'two');
    memberData(await gov.mute(url, owner.token, r2.id, bob.id, { durationSecs: 5 }), 'mute bob in r2');

    const b = await watch(bob, [r1.id, r2.id, r3.id], ['websocket'], { sinceVersion: { [String(r1.id)]: v1, [String(r2.id)]: v2 } });
    const byId = new Map(b.joinAck.rooms.map((e) => [e.roomId, e]));
    assertEntry(byId.get(r1.id), { roomId: r1.id, lastSeq: 2, lastVersion: v1 + 1, recovered: true });
    assertEntry(byId.get(r2.id), { roomId: r2.id, lastSeq: 2, lastVersion: v2 + 2, recovered: true });
    assertEntry(byId.get(r3.id), { roomId: r3.id, lastSeq: 2, recovered: false });
    // Each room's replay is in order, so once its last missed change is there, all of it is.
    await waitFor(() => changes(b, r1.id).length >= 1 && changes(b, r2.id).length >= 2, { message: 'both replays' });
    await fence(so, r3.id, [b]);
    assert.deepEqual(changes(b, r1.id).map((e) => e.data.message), ['two']);
    assert.deepEqual(changes(b, r2.id).map((e) => e.data.message ?? e.data.type), ['two', 'muted']);
    assert.deepEqual(changes(b, r3.id).map((e) => e.data.message), ['fence'], 'no sinceVersion: nothing replayed');
  });

  it('sinceVersion 0 replays from creation; at lastVersion nothing (recovered); past it nothing (not recovered)', async () => {
    const [owner, bob] = await registerMany(url, 2, 'Rz');
    const room = await createRoom(url, owner.token);
    await joinRoom(url, bob.token, room.room_hash_id);
    const so = await watch(owner, [room.id]);
    const acks = await sendMany(so, room.id, 5, 'early');
    memberData(await gov.role(url, owner.token, room.id, bob.id, 'admin'), 'promote');
    const top = await lastVersion(bob, room.id);

    const { s: zero, entry: e0 } = await resumeOne(bob, room.id, { sinceVersion: 0 }, ['polling']);
    assertEntry(e0, { roomId: room.id, lastSeq: 5, lastVersion: top, recovered: true });
    const { s: at, entry: eAt } = await resumeOne(bob, room.id, { sinceVersion: top });
    assertEntry(eAt, { roomId: room.id, lastSeq: 5, lastVersion: top, recovered: true });
    const { s: past, entry: ePast } = await resumeOne(bob, room.id, { sinceVersion: top + 50 });
    assertEntry(ePast, { roomId: room.id, lastSeq: 5, lastVersion: top, recovered: false });
    const { s: plain, entry: ePlain } = await resumeOne(bob, room.id, {});
    assertEntry(ePlain, { roomId: room.id, lastSeq: 5, lastVersion: top, recovered: false });
    const f = await fence(so, room.id, [zero, at, past, plain]);

    const all = changes(zero, room.id);
    const versions = assertIncreasing(all, 'from creation');
    assert.equal(versions.at(-1), top + 1);
    assertContiguous(versions, versions[0], top + 1, 'every change once, in order');
    assert.ok(versions[0] <= 2, `the replay starts at the room's beginning, not at version ${versions[0]}`);
    assertSeqRange(messagesIn(zero, room.id).map((m) => m.seq), 1, f.seq, 'every message');
    assert.deepEqual(messagesIn(zero, room.id).slice(0, 5).map((m) => m.id), acks.map((x) => x.id));
    const kinds = all.filter((e) => e.event === 'room_event').map((e) => `${e.data.type} ${e.data.user?.id}`);
    assert.ok(kinds.includes(`joined ${bob.id}`), `bob's join is replayed: ${kinds}`);
    assert.ok(kinds.includes(`role_changed ${bob.id}`), `bob's promotion is replayed: ${kinds}`);
    for (const s of [at, past, plain]) {
      assert.deepEqual(changes(s, room.id).map((e) => e.data.message), ['fence'], 'only the live change');
    }
  });

  it('with both since and sinceVersion, sinceVersion wins', async () => {
    const [owner, bob] = await registerMany(url, 2, 'Rb');
    const room = await createRoom(url, owner.token);
    await joinRoom(url, bob.token, room.room_hash_id);
    const so = await watch(owner, [room.id]);
    await sendMany(so, room.id, 4, 'm');
    memberData(await gov.mute(url, owner.token, room.id, bob.id, { durationSecs: 30 }), 'mute');
    await send(so, room.id, 'last');
    const top = await lastVersion(bob, room.id);

    const { s: a, entry: ea } = await resumeOne(bob, room.id, { since: 0, sinceVersion: top - 2 });
    assertEntry(ea, { roomId: room.id, lastSeq: 5, lastVersion: top, recovered: true });
    const { s: b, entry: eb } = await resumeOne(bob, room.id, { since: 5, sinceVersion: 0 }, ['polling']);
    assertEntry(eb, { roomId: room.id, lastSeq: 5, lastVersion: top, recovered: true });
    const c = recordAll(await connect(url, bob.token));
    open.push(c);
    const all = await emitAck(c, 'join_all', {
      roomList: [room.id], since: { [room.id]: 0 }, sinceVersion: { [room.id]: top },
    });
    assertEntry(all.rooms[0], { roomId: room.id, lastVersion: top, recovered: true });
    await fence(so, room.id, [a, b]);
    assert.deepEqual(changes(a, room.id).map((e) => e.data.message ?? e.data.type), ['muted', 'last', 'fence']);
    assertSeqRange(messagesIn(b, room.id).map((m) => m.seq), 1, 6, 'sinceVersion 0 beats since 5');
  });

  it('part 1 since is unchanged: the messages after that seq, each with its version, recovered', async () => {
    const [owner, bob, carol] = await registerMany(url, 3, 'Rp');
    const room = await createRoom(url, owner.token);
    await joinRoom(url, bob.token, room.room_hash_id);
    const so = await watch(owner, [room.id]);
    await sendMany(so, room.id, 3, 'a');
    await joinRoom(url, carol.token, room.room_hash_id);
    await sendMany(so, room.id, 3, 'b');
    const { s, entry } = await resumeOne(bob, room.id, { since: 2 });
    assertEntry(entry, { roomId: room.id, lastSeq: 6, recovered: true });
    await fence(so, room.id, [s]);
    const got = messagesIn(s, room.id);
    assertSeqRange(got.map((m) => m.seq), 3, 7, 'messages 3..6 replayed, then live');
    assertIncreasing(got.map((m) => ({ event: 'received', data: m })), 'message versions');
    const ownerVersions = new Map(messagesIn(so, room.id).map((m) => [m.seq, m.version]));
    for (const m of got) assert.equal(m.version, ownerVersions.get(m.seq), `seq ${m.seq} replays with its own version`);
  });
});

describe('invites take versions that members are not sent', () => {
  it('creating and revoking invites reach no member, live or in a replay; a resume across them recovers', async () => {
    const [owner, admin, bob] = await registerMany(url, 3, 'Iv');
    const room = await createRoom(url, owner.token);
    for (const u of [admin, bob]) await joinRoom(url, u.token, room.room_hash_id);
    memberData(await gov.role(url, owner.token, room.id, admin.id, 'admin'), 'promote');
    const sb = await watch(bob, [room.id]);
    const before = await send(sb, room.id, 'before the invites');
    await waitFor(() => messagesIn(sb, room.id).some((m) => m.seq === before.seq));
    const seen = changes(sb, room.id).at(-1).data.version;
    const one = assertOk(await gov.createInvite(url, admin.token, room.id, { maxUses: 2 }), 201, 'invite').invite;
    const two = assertOk(await gov.createInvite(url, admin.token, room.id, {}), 201, 'invite').invite;
    await okNull(gov.revoke(url, admin.token, room.id, two.id), 'revoke');
    const after = await fence(sb, room.id, [sb]);

    const live = changes(sb, room.id);
    assert.deepEqual(live.map((e) => e.data.message ?? e.data.type), ['before the invites', 'fence']);
    const v = live.at(-1).data.version;
    assert.ok(v > seen + 1, `the invites took versions (${seen} then ${v})`);
    const { s: r0 } = await resumeOne(bob, room.id, { sinceVersion: 0 });
    const { s: rs, entry } = await resumeOne(bob, room.id, { sinceVersion: seen + 1 }, ['polling']);
    assertEntry(entry, { roomId: room.id, lastVersion: v, recovered: true });
    await fence(sb, room.id, [r0, rs]);
    assert.deepEqual(changes(rs, room.id).map((e) => e.data.message), ['fence', 'fence'], 'from inside the skipped versions: the next change on');
    assert.ok(changes(r0, room.id).some((e) => e.data.seq === after.seq));
    for (const s of [sb, r0, rs]) {
      const text = JSON.stringify(s.log);
      for (const code of [one.code, two.code]) assert.ok(!text.includes(code), 'an invite code reached a plain member');
    }
  });
});

describe('resume cap by version', () => {
  let owner;
  let bob;
  let room;
  let so;
  before(async () => {
    [owner, bob] = await registerMany(url, 2, 'Cv');
    room = await createRoom(url, owner.token);
    await joinRoom(url, bob.token, room.room_hash_id);
    so = await connect(url, owner.token);
    await sendMany(so, room.id, 1003, 'bulk', 200);
  });
  after(() => closeAll(so));

  it('more than 1,000 missed: recovered false, nothing replayed; exactly 1,000: all of them', async () => {
    const top = await lastVersion(bob, room.id);
    assert.ok(top >= 1004, `lastVersion ${top}`);
    const { s: over, entry: eo } = await resumeOne(bob, room.id, { sinceVersion: top - 1001 });
    assertEntry(eo, { roomId: room.id, lastVersion: top, recovered: false });
    const { s: zero, entry: ez } = await resumeOne(bob, room.id, { sinceVersion: 0 }, ['polling']);
    assertEntry(ez, { roomId: room.id, lastVersion: top, recovered: false });
    const { s: at, entry: ea } = await resumeOne(bob, room.id, { sinceVersion: top - 1000 });
    assertEntry(ea, { roomId: room.id, lastVersion: top, recovered: true });
    const watcherSocket = recordAll(await connect(url, owner.token));
    open.push(watcherSocket);
    await emitAck(watcherSocket, 'join_one_chat', { roomId: room.id });
    const f = await fence(watcherSocket, room.id, [over, zero, at]);
    for (const s of [over, zero]) assert.deepEqual(messagesIn(s, room.id).map((m) => m.seq), [f.seq], 'nothing replayed past the cap');
    const versions = assertIncreasing(changes(at, room.id), 'at the cap');
    assertContiguous(versions, top - 999, top + 1, 'exactly 1,000 replayed, then live');
  });
});

describe('sinceVersion validation', () => {
  it('a sinceVersion that is not a whole number of zero or more is bad_request', async () => {
    const [owner] = await registerMany(url, 1, 'Sv');
    const room = await createRoom(url, owner.token);
    const s = await connect(url, owner.token);
    open.push(s);
    for (const sinceVersion of [-1, 1.5, 'x', {}]) {
      await ackError(s, 'join_one_chat', { roomId: room.id, sinceVersion }, 'bad_request');
    }
    const all = await emitAck(s, 'join_all', { roomList: [room.id], sinceVersion: { [room.id]: -3 } });
    const entry = all.ok ? all.rooms[0] : all;
    assert.equal(entry.ok, false, `join_all with a bad sinceVersion: ${JSON.stringify(all)}`);
    assert.equal(entry.error.code, 'bad_request');
  });
});
