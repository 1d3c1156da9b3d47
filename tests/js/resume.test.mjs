// Resume after a disconnect (docs/protocol.md, "Resume after a disconnect"), over both transports:
// a client that rejoins with `since` gets exactly the missed messages, in order, before live ones;
// `recovered` / `lastSeq` in the join acks; since == lastSeq, since beyond lastSeq, no since;
// the 1,000-message cap (more than 1,000 missed -> recovered:false and nothing replayed);
// and resuming after the server restarted (tokens and seqs survive).

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  TRANSPORTS, startServer, registerMany, roomWith, connect, emitAck, joinOne, send, sendMany,
  messagesIn, joinNoticesIn, waitFor, barrier, closeAll, assertSeqRange, assertMessage, history,
  fullHistory, historyCaughtUp,
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

async function sock(token, transports) {
  const s = await connect(url, token, transports);
  open.push(s);
  return s;
}

before(async () => {
  server = await startServer({ args: ['--send-rate-limit', '0'] });
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

  describe(`resume over ${T}`, () => {
    let alice;
    let bob;
    before(async () => {
      [alice, bob] = await registerMany(url, 2, `R${T[0]}`);
    });

    it('replays exactly the missed messages, in order, before live ones (recovered:true)', async () => {
      const room = await roomWith(url, alice, [bob]);
      const a = await sock(alice.token, transports);
      const b1 = await sock(bob.token, transports);
      await joinOne(b1, room.id);
      for (let i = 1; i <= 3; i += 1) await send(a, room.id, `before ${i}`);
      await waitFor(() => messagesIn(b1, room.id).length === 3);
      const lastSeen = messagesIn(b1, room.id).at(-1).seq;
      assert.equal(lastSeen, 3);
      b1.close();
      await waitFor(() => !b1.connected);

      for (let i = 4; i <= 8; i += 1) await send(a, room.id, `missed ${i}`);

      // keep posting live messages while bob rejoins
      const b2 = await sock(bob.token, transports);
      let stop = false;
      let lastAcked = 8;
      const live = (async () => {
        for (let i = 0; !stop && i < 200; i += 1) {
          lastAcked = (await send(a, room.id, `live ${i}`)).seq;
        }
      })();
      const entry = await joinOne(b2, room.id, lastSeen);
      const atJoin = lastAcked;
      await waitFor(() => lastAcked >= atJoin + 5, { message: 'live messages after the join' });
      stop = true;
      await live;
      await waitFor(() => messagesIn(b2, room.id).some((m) => m.seq === lastAcked), { message: 'all live messages' });
      await barrier(a, [b2]);

      assert.equal(entry.roomId, room.id);
      assert.equal(entry.ok, true);
      assert.equal(entry.recovered, true);
      assert.ok(entry.lastSeq >= 8 && entry.lastSeq <= lastAcked, `lastSeq ${entry.lastSeq}`);
      const got = messagesIn(b2, room.id);
      assertSeqRange(got.map((m) => m.seq), lastSeen + 1, lastAcked, 'replayed then live, no gap, no repeat');
      got.slice(0, 5).forEach((m, i) => assertMessage(m, { roomId: room.id, user: alice, text: `missed ${i + 4}` }));
      // the join notice comes after the replayed messages
      const idxNotice = b2.received.findIndex((m) => m.type === 'join' && m.roomId === room.id);
      const idxReplayEnd = b2.received.findIndex((m) => m.type === 'input' && m.seq === 8);
      assert.ok(idxNotice >= 0, 'join notice received');
      assert.ok(idxNotice > idxReplayEnd, 'join notice after the replayed messages');
      // and everything matches history
      await historyCaughtUp(url, bob.token, room.id, lastAcked);
      const h = await history(url, bob.token, room.id, '?limit=200');
      assert.deepEqual(part1(got), part1(h.filter((m) => m.seq > lastSeen)));
    });

    it('join_all resumes several rooms with since keyed by room id', async () => {
      const r1 = await roomWith(url, alice, [bob]);
      const r2 = await roomWith(url, alice, [bob]);
      const r3 = await roomWith(url, alice, [bob]);
      const a = await sock(alice.token, transports);
      for (let i = 1; i <= 5; i += 1) await send(a, r1.id, `r1 ${i}`);
      for (let i = 1; i <= 3; i += 1) await send(a, r2.id, `r2 ${i}`);
      for (let i = 1; i <= 2; i += 1) await send(a, r3.id, `r3 ${i}`);
      const b = await sock(bob.token, transports);
      const since = { [String(r1.id)]: 2, [String(r2.id)]: 0 };
      const ack = await emitAck(b, 'join_all', { roomList: [r1.id, r2.id, r3.id], since });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      const byId = new Map(ack.rooms.map((e) => [e.roomId, e]));
      assert.deepEqual(part1(byId.get(r1.id)), { roomId: r1.id, ok: true, lastSeq: 5, recovered: true });
      assert.deepEqual(part1(byId.get(r2.id)), { roomId: r2.id, ok: true, lastSeq: 3, recovered: true });
      assert.deepEqual(part1(byId.get(r3.id)), { roomId: r3.id, ok: true, lastSeq: 2, recovered: false });
      await waitFor(() => messagesIn(b, r1.id).length === 3 && messagesIn(b, r2.id).length === 3);
      await send(a, r3.id, 'r3 live');
      await waitFor(() => messagesIn(b, r3.id).length === 1);
      await barrier(a, [b]);
      assertSeqRange(messagesIn(b, r1.id).map((m) => m.seq), 3, 5, 'r1');
      assert.deepEqual(messagesIn(b, r1.id).map((m) => m.message), ['r1 3', 'r1 4', 'r1 5']);
      assertSeqRange(messagesIn(b, r2.id).map((m) => m.seq), 1, 3, 'r2');
      assert.deepEqual(messagesIn(b, r3.id).map((m) => m.seq), [3], 'no since: nothing replayed');
      for (const r of [r1, r2, r3]) assert.equal(joinNoticesIn(b, r.id).length, 1);
    });

    it('since == lastSeq recovers with nothing to replay; since beyond lastSeq does not', async () => {
      const room = await roomWith(url, alice, [bob]);
      const a = await sock(alice.token, transports);
      for (let i = 1; i <= 4; i += 1) await send(a, room.id, `m ${i}`);

      const b = await sock(bob.token, transports);
      assert.deepEqual(part1(await joinOne(b, room.id, 4)), { roomId: room.id, ok: true, lastSeq: 4, recovered: true });
      const c = await sock(bob.token, transports);
      assert.deepEqual(part1(await joinOne(c, room.id, 99)), { roomId: room.id, ok: true, lastSeq: 4, recovered: false });
      const d = await sock(bob.token, transports);
      assert.deepEqual(part1(await joinOne(d, room.id)), { roomId: room.id, ok: true, lastSeq: 4, recovered: false });
      const marker = await send(a, room.id, 'marker');
      for (const s of [b, c, d]) {
        await waitFor(() => messagesIn(s, room.id).some((m) => m.id === marker.id));
        await barrier(a, [s]);
        assert.deepEqual(messagesIn(s, room.id).map((m) => m.seq), [5], 'only the live message');
      }
      // since 0 replays everything
      const e = await sock(bob.token, transports);
      assert.deepEqual(part1(await joinOne(e, room.id, 0)), { roomId: room.id, ok: true, lastSeq: 5, recovered: true });
      await waitFor(() => messagesIn(e, room.id).length === 5);
      assertSeqRange(messagesIn(e, room.id).map((m) => m.seq), 1, 5);
    });

    it('rejoining a followed room with since replays again, live messages stay single', async () => {
      const room = await roomWith(url, alice, [bob]);
      const a = await sock(alice.token, transports);
      const b = await sock(bob.token, transports);
      await joinOne(b, room.id);
      for (let i = 1; i <= 4; i += 1) await send(a, room.id, `m ${i}`);
      await waitFor(() => messagesIn(b, room.id).length === 4);
      const entry = await joinOne(b, room.id, 2);
      assert.equal(entry.recovered, true);
      assert.equal(entry.lastSeq, 4);
      await waitFor(() => messagesIn(b, room.id).length === 6);
      assert.deepEqual(messagesIn(b, room.id).map((m) => m.seq), [1, 2, 3, 4, 3, 4]);
      const live = await send(a, room.id, 'live');
      await waitFor(() => messagesIn(b, room.id).some((m) => m.id === live.id));
      await barrier(a, [b]);
      assert.equal(messagesIn(b, room.id).filter((m) => m.id === live.id).length, 1);
    });
  });
}

describe('resume cap: more than 1,000 missed messages', () => {
  let alice;
  let bob;
  let room;
  let a;

  before(async () => {
    [alice, bob] = await registerMany(url, 2, 'Cap');
    room = await roomWith(url, alice, [bob]);
    a = await connect(url, alice.token, ['websocket']);
    const acks = await sendMany(a, room.id, 1005, 'bulk', 200);
    assertSeqRange(acks.map((x) => x.seq), 1, 1005);
  });

  after(() => closeAll(a));

  for (const transports of TRANSPORTS) {
    it(`reports recovered:false and replays nothing past the cap, replays exactly 1,000 at the cap (${transports})`, async () => {
      const last = (await history(url, alice.token, room.id, '?limit=1'))[0].seq; // alice wrote last

      const over = await sock(bob.token, transports);
      assert.deepEqual(part1(await joinOne(over, room.id, last - 1001)), { roomId: room.id, ok: true, lastSeq: last, recovered: false });
      const zero = await sock(bob.token, transports);
      assert.deepEqual(part1(await joinOne(zero, room.id, 0)), { roomId: room.id, ok: true, lastSeq: last, recovered: false });
      const viaAll = await sock(bob.token, transports);
      const allAck = await emitAck(viaAll, 'join_all', { roomList: [room.id], since: { [room.id]: 1 } });
      assert.deepEqual(part1(allAck), { ok: true, rooms: [{ roomId: room.id, ok: true, lastSeq: last, recovered: false }] });

      // the client is told to reload history over REST: it holds everything up to lastSeq
      const full = await fullHistory(url, bob.token, room.id);
      assertSeqRange(full.map((m) => m.seq), 1, last, 'REST history after recovered:false');
      // and a retry of a message sent long ago still answers its first seq
      const first = full[0];
      const retry = await send(a, room.id, first.message, first.id);
      assert.equal(retry.seq, 1, 'an old (roomId, id) is still recognised');

      const at = await sock(bob.token, transports);
      assert.deepEqual(part1(await joinOne(at, room.id, last - 1000)), { roomId: room.id, ok: true, lastSeq: last, recovered: true });

      const marker = await send(a, room.id, 'after the cap');
      for (const s of [over, zero, viaAll]) {
        await waitFor(() => messagesIn(s, room.id).some((m) => m.id === marker.id));
        await barrier(a, [s]);
        assert.deepEqual(messagesIn(s, room.id).map((m) => m.seq), [last + 1], 'nothing replayed past the cap');
      }
      await waitFor(() => messagesIn(at, room.id).some((m) => m.id === marker.id), { timeout: 20_000 });
      assertSeqRange(messagesIn(at, room.id).map((m) => m.seq), last - 999, last + 1, 'exactly 1,000 replayed, then live');
    });
  }
});

describe('resume after a server restart', () => {
  let srv;
  before(async () => {
    srv = await startServer({ args: ['--send-rate-limit', '0'] });
  });
  after(async () => {
    await srv?.cleanup();
  });

  it('keeps tokens, rooms and seqs; a rejoin with since gets what was missed', async () => {
    const [alice, bob] = await registerMany(srv.url, 2, 'Rst');
    const room = await roomWith(srv.url, alice, [bob]);
    let seen = 0;
    let expectedNext = 1;
    for (const transports of TRANSPORTS) {
      const a = await connect(srv.url, alice.token, transports);
      const b = await connect(srv.url, bob.token, transports);
      try {
        const entry = await joinOne(b, room.id, seen);
        assert.equal(entry.recovered, true);
        for (let i = 0; i < 3; i += 1) {
          const ack = await send(a, room.id, `${transports} ${i}`);
          assert.equal(ack.seq, expectedNext, 'seq continues after the restart');
          expectedNext += 1;
        }
        await waitFor(() => messagesIn(b, room.id).some((m) => m.seq === expectedNext - 1));
        assertSeqRange(messagesIn(b, room.id).map((m) => m.seq), seen + 1, expectedNext - 1);
        seen = expectedNext - 1;
      } finally {
        closeAll(a, b);
      }
      await srv.restart();
      // alice posts while bob is away
      const a2 = await connect(srv.url, alice.token, transports);
      try {
        for (let i = 0; i < 4; i += 1) {
          const ack = await send(a2, room.id, `away ${i}`);
          assert.equal(ack.seq, expectedNext);
          expectedNext += 1;
        }
      } finally {
        closeAll(a2);
      }
      const b2 = await connect(srv.url, bob.token, transports);
      try {
        const entry = await joinOne(b2, room.id, seen);
        assert.deepEqual(part1(entry), { roomId: room.id, ok: true, lastSeq: expectedNext - 1, recovered: true });
        await waitFor(() => messagesIn(b2, room.id).length === expectedNext - 1 - seen);
        assertSeqRange(messagesIn(b2, room.id).map((m) => m.seq), seen + 1, expectedNext - 1, 'missed across the restart');
        assert.deepEqual(messagesIn(b2, room.id).map((m) => m.message), [0, 1, 2, 3].map((i) => `away ${i}`));
        seen = expectedNext - 1;
      } finally {
        closeAll(b2);
      }
    }
  });
});
