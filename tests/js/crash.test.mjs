// Durability under SIGKILL (docs/protocol.md: "An acked message is durable: it survives a crash or
// a kill of the server right after the ack"). Several rounds, alternating transports: keep many
// sends in flight over two rooms, SIGKILL the server from inside an ack callback, restart it on
// the same data dir, and check that every acked message is in history exactly once with its acked
// seq, that seqs have no gaps or repeats, and that resending an acked (roomId, id) returns its
// first seq (and resending an unacked one stores it at most once). Moderation commands (kick,
// rejoin, mute, unmute, role changes) run alongside the messages; after each restart a replay
// with `sinceVersion: 0` must hold every acked change once, no two changes with one `version`,
// and every change a socket was shown before the kill with the version it was shown with.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  TRANSPORTS, startServer, registerMany, roomWith, connect, emitAck, fullHistory, closeAll,
  assertSeqRange, waitFor, createRoom, joinRoom, login, api, assertOk, assertError, dataUrl, PNG_1X1,
} from './helpers.mjs';
import { gov, recordAll, changes, assertIncreasing } from './part2.mjs';

const ROUNDS = Number(process.env.CHATROOM_CRASH_ROUNDS || 6);
const IN_FLIGHT = 24;
/** Moderation commands per round at most, so a replay from version 0 stays under the cap. */
const MODERATION_PER_ROUND = 30;

/** What a change is, independent of how it was delivered: a message by id, an event by kind. */
function identity(e) {
  if (e.event === 'received') return `message ${e.data.id}`;
  if (e.event === 'room_event') return `${e.data.type} ${e.data.user?.id ?? ''} ${e.data.role ?? ''}`;
  return `${e.event} ${e.data.seq}`;
}

describe('crash safety', () => {
  let server;
  let alice;
  let bob;
  let carol;
  let rooms;
  /** key `${roomId}|${id}` -> {roomId, id, text} for every message ever emitted */
  const sent = new Map();
  /** key -> seq for every ok ack received */
  const acked = new Map();
  /** room_event type -> how many moderation commands that make one were answered 200 */
  const modAcked = new Map();
  /** `${roomId}|${version}` -> identity of every change a socket was shown */
  const shown = new Map();

  before(async () => {
    server = await startServer({ args: ['--send-rate-limit', '0'] });
    [alice, bob, carol] = await registerMany(server.url, 3, 'Crash');
    rooms = [await roomWith(server.url, alice, [bob, carol]), await roomWith(server.url, alice, [bob])];
  });

  after(async () => {
    await server?.cleanup();
  });

  function record(key, ack) {
    assert.equal(ack?.ok, true, `send failed: ${JSON.stringify(ack)}`);
    const prev = acked.get(key);
    if (prev !== undefined) assert.equal(ack.seq, prev, `${key} acked with two different seqs`);
    acked.set(key, ack.seq);
  }

  /**
   * Check the stored state against everything that was acked. Durability is what counts, so a
   * history that is merely behind (read tables catching up after the restart) is retried for up
   * to 10 s; that it was behind at the first read is reported as a diagnostic.
   */
  async function verify(label, t) {
    let firstError = null;
    await waitFor(async () => {
      try {
        await check(label);
        return true;
      } catch (e) {
        firstError ??= e.message;
        throw e;
      }
    }, { interval: 100 });
    if (firstError) t?.diagnostic(`${label}: REST history was behind at the first read (${firstError}), complete later`);
  }

  async function check(label) {
    for (const room of rooms) {
      const msgs = await fullHistory(server.url, bob.token, room.id);
      assertSeqRange(msgs.map((m) => m.seq), 1, msgs.length, `${label}: seqs of room ${room.id}`);
      const ids = msgs.map((m) => m.id);
      assert.equal(new Set(ids).size, ids.length, `${label}: an id is stored twice`);
      const bySeqKey = new Map(msgs.map((m) => [`${room.id}|${m.id}`, m]));
      for (const m of msgs) {
        const s = sent.get(`${room.id}|${m.id}`);
        assert.ok(s, `${label}: stored message ${m.id} was never sent`);
        assert.equal(m.message, s.text);
        assert.equal(m.user.id, alice.id);
      }
      for (const [key, seq] of acked) {
        if (!key.startsWith(`${room.id}|`)) continue;
        const m = bySeqKey.get(key);
        assert.ok(m, `${label}: acked message ${key} (seq ${seq}) lost`);
        assert.equal(m.seq, seq, `${label}: acked message ${key} moved`);
      }
    }
  }

  /**
   * Alice moderates carol in the first room, one REST call after the other, until the server
   * dies under it or the round's budget is spent. Each round starts from a known state (carol a
   * plain, unmuted member), as a command cut off by the kill may or may not have taken effect.
   */
  async function moderate(round, isKilled, progress) {
    const room = rooms[0];
    await joinRoom(server.url, carol.token, room.room_hash_id);
    assertOk(await gov.unmute(server.url, alice.token, room.id, carol.id), 200, 'unmute carol');
    assertOk(await gov.role(server.url, alice.token, room.id, carol.id, 'member'), 200, 'carol a member');
    progress.ready();
    const cycle = [
      ['kicked', (u) => gov.kick(u, alice.token, room.id, carol.id, { reason: 'crash loop' })],
      ['joined', (u) => gov.join(u, carol.token, room.room_hash_id)],
      ['muted', (u) => gov.mute(u, alice.token, room.id, carol.id, { durationSecs: 3600 })],
      ['unmuted', (u) => gov.unmute(u, alice.token, room.id, carol.id)],
      ['role_changed', (u) => gov.role(u, alice.token, room.id, carol.id, 'admin')],
      ['role_changed', (u) => gov.role(u, alice.token, room.id, carol.id, 'member')],
    ];
    // Rounds start the cycle at a kick, a mute or a promotion in turn (each makes an event
    // from the plain-member state), so every kind of command meets a kill.
    const start = (round % 3) * 2;
    for (let i = 0; i < MODERATION_PER_ROUND && !isKilled(); i += 1) {
      const [type, fn] = cycle[(start + i) % cycle.length];
      let res;
      try {
        res = await fn(server.url);
      } catch {
        return; // cut off by the kill: it may or may not have happened
      }
      assert.equal(res.status, 200, `${type} during the crash loop: ${res.text}`);
      modAcked.set(type, (modAcked.get(type) ?? 0) + 1);
      progress.ops += 1;
    }
    progress.finished = true;
  }

  /** Remember what `socket` was shown, and check nothing it was shown got another version. */
  function remember(socket, label) {
    for (const room of rooms) {
      for (const e of changes(socket, room.id)) {
        const key = `${room.id}|${e.data.version}`;
        const prev = shown.get(key);
        if (prev !== undefined) assert.equal(identity(e), prev, `${label}: version ${e.data.version} of room ${room.id} is two changes`);
        shown.set(key, identity(e));
      }
    }
  }

  /** Replay both rooms from version 0 and check it against everything acked and shown. */
  async function verifyReplay(label, transports) {
    const s = recordAll(await connect(server.url, bob.token, transports));
    try {
      const ack = await emitAck(s, 'join_all', {
        roomList: rooms.map((r) => r.id),
        sinceVersion: Object.fromEntries(rooms.map((r) => [String(r.id), 0])),
      });
      assert.equal(ack?.ok, true, JSON.stringify(ack));
      for (const [i, room] of rooms.entries()) {
        const entry = ack.rooms.find((e) => e.roomId === room.id);
        assert.ok(entry?.ok && entry.recovered === true, `${label}: replay of room ${i} from version 0: ${JSON.stringify(entry)}`);
        await waitFor(() => changes(s, room.id).at(-1)?.data.version === entry.lastVersion, { message: `${label}: the replay of room ${i} reaches version ${entry.lastVersion}` });
        const got = changes(s, room.id);
        assertIncreasing(got, `${label}: replay of room ${i}`);
        const versions = got.map((e) => e.data.version);
        assert.equal(new Set(versions).size, versions.length, `${label}: two changes with one version in room ${i}`);
        const seqOf = new Map(got.filter((e) => e.event === 'received' && e.data.type === 'input').map((e) => [`${room.id}|${e.data.id}`, e.data.seq]));
        for (const [key, seq] of acked) {
          if (key.startsWith(`${room.id}|`)) assert.equal(seqOf.get(key), seq, `${label}: acked message ${key} replayed with its seq`);
        }
        if (i === 0) {
          for (const [type, n] of modAcked) {
            const seen = got.filter((e) => e.event === 'room_event' && e.data.type === type && e.data.user?.id === carol.id).length;
            assert.ok(seen >= n, `${label}: ${n} acked commands make ${type} events about carol, the replay holds ${seen}`);
          }
        }
      }
      remember(s, `${label} (replay)`);
    } finally {
      closeAll(s);
    }
  }

  for (let round = 0; round < ROUNDS; round += 1) {
    const transports = TRANSPORTS[round % TRANSPORTS.length];
    it(`round ${round + 1}: SIGKILL right after acks, restart, nothing acked is lost (${transports})`, async (t) => {
      const s = await connect(server.url, alice.token, transports);
      // bob watches both rooms: whatever he was shown must also survive (same seq, same id)
      const watcher = recordAll(await connect(server.url, bob.token, transports));
      const wAck = await emitAck(watcher, 'join_all', { roomList: rooms.map((r) => r.id) });
      assert.ok(wAck.ok && wAck.rooms.every((e) => e.ok), JSON.stringify(wAck));
      const target = 30 + round * 17; // acks before the kill
      let n = 0;
      let killed = false;
      let inflight = 0;
      let acksThisRound = 0;
      const errors = [];
      const proc = server.proc;
      const progress = { ops: 0, finished: false };
      const started = new Promise((resolve) => { progress.ready = resolve; });
      // Caught at once so that a failure waits for the kill instead of ending the process.
      const moderation = moderate(round, () => killed, progress).then(() => null, (e) => e);
      // The messages start once carol is a plain member again, and the kill waits for a few
      // moderation commands, so that every round mixes the two.
      const early = await Promise.race([started.then(() => null), moderation]);
      if (early) throw early;
      await new Promise((resolve) => {
        const pump = () => {
          while (!killed && inflight < IN_FLIGHT) {
            const room = rooms[n % rooms.length];
            const id = `r${round}-m${n}`;
            const text = `round ${round} message ${n}`;
            const key = `${room.id}|${id}`;
            n += 1;
            sent.set(key, { roomId: room.id, id, text });
            inflight += 1;
            s.emit('user_send_message', { roomId: room.id, id, message: text, type: 'input' }, (ack) => {
              inflight -= 1;
              try { record(key, ack); } catch (e) { errors.push(e); }
              acksThisRound += 1;
              if (!killed && acksThisRound >= target && (progress.ops >= 4 || progress.finished)) {
                killed = true;
                proc.kill('SIGKILL'); // right after the ack, before anything else
                resolve();
                return;
              }
              pump();
            });
          }
        };
        pump();
      });
      await server.kill9();
      const moderationError = await moderation;
      if (moderationError) throw moderationError;
      // acks already on the wire may still arrive until the socket notices the close
      await waitFor(() => !s.connected, { message: 'socket closes after the kill' });
      await waitFor(() => !watcher.connected, { message: 'watcher closes after the kill' });
      closeAll(s, watcher);
      if (errors.length) throw errors[0];
      assert.ok(acksThisRound >= target);

      remember(watcher, `round ${round + 1} (live)`);
      await server.restart(); // same data dir, new port
      await verify(`after kill ${round + 1}`, t);
      await verifyReplay(`after kill ${round + 1}`, transports);
      t.diagnostic(`round ${round + 1}: emitted ${n}, acked ${acksThisRound} before the kill; moderation acked so far ${JSON.stringify(Object.fromEntries(modAcked))}`);
      for (const room of rooms) {
        const stored = new Map((await fullHistory(server.url, bob.token, room.id)).map((m) => [m.seq, m.id]));
        for (const m of watcher.received.filter((x) => x.type === 'input' && x.roomId === room.id)) {
          assert.equal(stored.get(m.seq), m.id, `message ${m.id} was delivered as seq ${m.seq} before the kill but history has ${stored.get(m.seq)}`);
        }
      }

      // resend everything emitted so far: acked ones keep their seq, the rest land at most once
      const s2 = await connect(server.url, alice.token, transports);
      try {
        const all = [...sent.entries()];
        for (let i = 0; i < all.length; i += 100) {
          const batch = all.slice(i, i + 100);
          const acks = await Promise.all(batch.map(([, m]) => emitAck(s2, 'user_send_message', { roomId: m.roomId, id: m.id, message: m.text, type: 'input' })));
          batch.forEach(([key], j) => record(key, acks[j]));
        }
      } finally {
        closeAll(s2);
      }
      assert.equal(acked.size, sent.size, 'every sent message is now acked');
      await verify(`after resend ${round + 1}`, t);
    });
  }

  it('answered REST writes (register, create, join, login, logout) survive a SIGKILL', async () => {
    const [u, v] = await registerMany(server.url, 2, 'Kreg');
    const room = await createRoom(server.url, u.token, { avatarImage: dataUrl('image/png', PNG_1X1) });
    await joinRoom(server.url, v.token, room.room_hash_id);
    const second = await login(server.url, v.name);
    const revoked = await login(server.url, v.name);
    assertOk(await api(server.url, 'POST', '/api/logout', { token: revoked.token }), 200, 'logout');
    await server.kill9();
    await server.restart();
    for (const t of [u.token, v.token, second.token]) {
      assertOk(await api(server.url, 'GET', '/api/user/info', { token: t }), 200, 'token after SIGKILL');
    }
    assertError(await api(server.url, 'GET', '/api/user/info', { token: revoked.token }), 401, 'a logged-out token stays revoked');
    const list = assertOk(await api(server.url, 'GET', '/api/room/list', { token: v.token }), 200).roomList;
    const r = list.find((x) => x.id === room.id);
    assert.ok(r, 'joined room still listed');
    assert.equal(r.member_count, 2);
    assert.equal(r.room_hash_id, room.room_hash_id);
    const img = await fetch(server.url + room.avatar_image);
    assert.equal(img.status, 200);
    assert.ok(Buffer.from(await img.arrayBuffer()).equals(PNG_1X1), 'avatar survives');
  });

  it('a clean restart keeps everything exactly once', async (t) => {
    await server.restart();
    await verify('after clean restart', t);
    const total = (await Promise.all(rooms.map((r) => fullHistory(server.url, bob.token, r.id)))).reduce((x, h) => x + h.length, 0);
    assert.equal(total, sent.size);
  });
});
