// PostgreSQL failover under load: scripts/ha up (etcd, two Patroni members with a synchronous
// standby, two chatroom processes on the libpq multi-host URL), writers on both processes
// retrying with the same id until acked, and the primary's postmaster SIGKILLed several times.
// Checked from the clients' side: every acked message is in history once under its acked seq,
// seqs gap-free, no id twice, sends acked again within 10 s of each kill, and subscribers on both
// processes get every message live or on resume. Skipped when patroni is not installed
// (apt-get install patroni etcd-server etcd-client).
//
//   CHATROOM_HA_KILLS  how many kills (default 3)
//   CHATROOM_HA_KEEP   set to keep the folder of scripts/ha (data and logs) afterwards
//   HA_SYNC_STRICT     false: bootstrap non-strict (scripts/ha), report what it acks alone
//   HA_MEMBERS         3: three PostgreSQL members (scripts/ha)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  BIN, register, createRoom, joinRoom, connect, emitAck, fullHistory, waitFor, delay, closeAll,
  newMsgId,
} from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const HA = path.resolve(here, '../../scripts/ha');
const run = promisify(execFile);
const havePatroni = spawnSync('sh', ['-c', 'command -v patroni && command -v etcd'], { stdio: 'ignore' }).status === 0;
const skip = havePatroni ? false : 'patroni or etcd is not installed (apt-get install patroni etcd-server etcd-client)';

const KILLS = Number(process.env.CHATROOM_HA_KILLS ?? 3);
const KILL_EVERY_MS = 20_000;
const BOUND_MS = 10_000;
const ACK_TIMEOUT_MS = 4_000;
const WRITERS = 8;
// scripts/ha's HA_SYNC_STRICT=false (to measure the difference) acks commits with no standby.
const STRICT = process.env.HA_SYNC_STRICT !== 'false';

async function ha(...args) {
  const { stdout } = await run(HA, args, { env: { ...process.env, CHATROOM_BIN: BIN }, maxBuffer: 1 << 20, timeout: 240_000 });
  return stdout;
}

/** Resolves once the cluster has a running leader on a new timeline and a Sync Standby. */
async function healthy(dir, minTimeline) {
  await waitFor(async () => {
    const members = JSON.parse(await ha('status', dir));
    const leader = members.find((m) => m.Role === 'Leader' && m.State === 'running');
    const sync = members.find((m) => m.Role === 'Sync Standby' && ['running', 'streaming'].includes(m.State));
    return leader && sync && leader.TL >= minTimeline ? leader.TL : false;
  }, { timeout: 90_000, interval: 500, message: 'a leader and a Sync Standby' });
  const members = JSON.parse(await ha('status', dir));
  return members.find((m) => m.Role === 'Leader').TL;
}

/**
 * A socket that stays subscribed to `roomId`: after a disconnect it reconnects and resumes from
 * the last seq it got. `got` collects every delivered message over all its sockets.
 */
function subscriber(url, user, roomId) {
  const sub = { url, user, roomId, got: [], sockets: [], resumes: 0, closed: false };
  const attach = async (since) => {
    for (;;) {
      try {
        const s = await connect(url, user.token, ['websocket']);
        const payload = since === undefined ? { roomList: [roomId] } : { roomList: [roomId], since: { [roomId]: since } };
        const ack = await emitAck(s, 'join_all', payload, ACK_TIMEOUT_MS);
        if (!ack?.ok || !ack.rooms?.[0]?.ok) throw new Error(`join_all: ${JSON.stringify(ack)}`);
        sub.sockets.push(s);
        s.on('received', (m) => { if (m?.type === 'input' && m.roomId === roomId) sub.got.push(m); });
        s.on('disconnect', () => {
          if (sub.closed) return;
          sub.resumes += 1;
          attach(sub.got.at(-1)?.seq ?? 0);
        });
        return;
      } catch {
        if (sub.closed) return;
        await delay(250);
      }
    }
  };
  sub.ready = attach(undefined);
  return sub;
}

/**
 * Sends continuously to `roomId`; a send refused with `unavailable` or not acked within
 * ACK_TIMEOUT_MS is sent again with the same id until acked.
 */
function writer(index, url, user, roomId, log) {
  const w = { index, url, roomId, stop: false, socket: null };
  w.done = (async () => {
    let n = 0;
    while (!w.stop) {
      const id = newMsgId();
      n += 1;
      const message = `w${index} #${n}`;
      let attempts = 0;
      let first;
      for (;;) {
        if (!w.socket?.connected) {
          try {
            w.socket = await connect(url, user.token, ['websocket']);
          } catch {
            await delay(250);
            continue;
          }
        }
        attempts += 1;
        const start = Date.now();
        first ??= start;
        let ack;
        try {
          ack = await w.socket.timeout(ACK_TIMEOUT_MS).emitWithAck('user_send_message', { roomId, id, message, type: 'input' });
        } catch {
          log.push({ kind: 'timeout', id, roomId, writer: index, url, start, at: Date.now() });
          continue;
        }
        if (ack?.ok) {
          log.push({ kind: 'ok', id, roomId, seq: ack.seq, writer: index, url, start, first, at: Date.now(), attempts });
          break;
        }
        log.push({ kind: 'refused', id, roomId, writer: index, url, start, at: Date.now(), code: ack?.error?.code, text: ack?.error?.message });
        await delay(200);
      }
      await delay(20);
    }
  })();
  return w;
}

/**
 * PostgreSQL's and Patroni's account, from each member's patroni.log (PostgreSQL's stderr goes
 * there too): when a primary became ready, when a standby became synchronous, when a member ran
 * pg_rewind; as epoch ms. PostgreSQL stamps its lines in UTC here, Patroni in local time.
 */
function postgresEvents(dir) {
  const events = [];
  for (const n of [1, 2, 3]) {
    const f = path.join(dir, `pg${n}`, 'patroni.log');
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      let m = line.match(/^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) UTC \[\d+\] LOG: {2}(database system is ready to accept connections|standby "(pg\d)" is now a synchronous standby)/);
      if (m) {
        const at = Date.parse(`${m[1]}T${m[2]}Z`);
        events.push(m[4] ? { at, member: m[4], what: 'sync' } : { at, member: `pg${n}`, what: 'primary' });
        continue;
      }
      m = line.match(/^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d),(\d{3}) INFO: running pg_rewind from/);
      if (m) events.push({ at: new Date(`${m[1]}T${m[2]}.${m[3]}`).getTime(), member: `pg${n}`, what: 'rewind' });
    }
  }
  // A standby that had WAL the new primary never got streams for a moment before it finds out,
  // then is rewound: that walsender's start says nothing.
  return events
    .filter((e) => e.what !== 'sync' || !events.some((r) => r.what === 'rewind' && r.member === e.member && r.at >= e.at && r.at - e.at < 10_000))
    .sort((x, y) => x.at - y.at);
}

/** The acked messages a subscriber lacks, as seq ranges with when and through which process they were acked. */
function missing(sub, mine, kills, t0) {
  const got = new Set(sub.got.map((m) => m.seq));
  const lacks = mine.filter((e) => !got.has(e.seq)).sort((a, b) => a.seq - b.seq);
  const ranges = [];
  for (const e of lacks) {
    const last = ranges.at(-1);
    if (last && e.seq === last.to + 1) { last.to = e.seq; last.until = e.at - t0; last.via.add(e.url); } else ranges.push({ from: e.seq, to: e.seq, since: e.at - t0, until: e.at - t0, via: new Set([e.url]) });
  }
  const k = kills.map((x) => x.at - t0);
  return `${lacks.length}: ${ranges.slice(0, 10).map((r) => `${r.from}..${r.to} acked at +${r.since}..+${r.until} ms via ${[...r.via].join(' ')}`).join('; ')} (kills at +${k.join(', +')} ms, subscriber resumes ${sub.resumes})`;
}

test('PostgreSQL primary SIGKILLed under load: nothing acked lost or doubled, sends back within 10 s', { skip, timeout: 280_000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chatroom-ha-'));
  const writers = [];
  const subs = [];
  try {
    const out = await ha('up', dir, '--send-rate-limit', '0');
    const lines = out.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 2, `scripts/ha up prints one line per chatroom process: ${JSON.stringify(out)}`);
    const urls = lines.map((l) => {
      const m = l.match(/^chatroom (http:\/\/127\.0\.0\.1:\d+)$/);
      assert.ok(m, `line ${JSON.stringify(l)}`);
      return m[1];
    });
    let timeline = await healthy(dir, 1);

    // Two rooms; each has writers and a subscriber on both processes.
    const owner = await register(urls[0]);
    const rooms = [await createRoom(urls[0], owner.token), await createRoom(urls[1], owner.token)];
    const log = [];
    const posters = [];
    for (let i = 0; i < WRITERS; i += 1) {
      const url = urls[i % 2];
      const room = rooms[Math.floor(i / 2) % 2];
      const u = await register(url);
      await joinRoom(url, u.token, room.room_hash_id);
      posters.push({ url, u, room });
    }
    for (const room of rooms) {
      for (const url of urls) {
        const u = await register(url);
        await joinRoom(url, u.token, room.room_hash_id);
        subs.push(subscriber(url, u, room.id));
      }
    }
    // Subscribed before the first message: each must get all of them.
    await Promise.all(subs.map((s) => s.ready));
    for (const [i, { url, u, room }] of posters.entries()) writers.push(writer(i, url, u, room.id, log));
    await waitFor(() => log.filter((e) => e.kind === 'ok').length >= 100, { timeout: 30_000, message: 'traffic flows' });

    const kills = [];
    const t0 = Date.now();
    for (let k = 0; k < KILLS; k += 1) {
      if (k > 0) {
        const since = Date.now() - kills.at(-1).at;
        if (since < KILL_EVERY_MS) await delay(KILL_EVERY_MS - since);
      }
      timeline = await healthy(dir, timeline);
      // Only a kill under traffic on both processes counts.
      const mark = log.length;
      await waitFor(() => urls.every((u) => log.slice(mark).some((e) => e.kind === 'ok' && e.url === u)), { timeout: 20_000, message: 'acks from both processes before the kill' });
      const pid = Number((await ha('primary', dir)).trim());
      assert.ok(pid > 0, 'primary pid');
      const at = Date.now();
      process.kill(pid, 'SIGKILL');
      kills.push({ pid, at, mark: log.length });
      // The outage starts at the first failed send after the kill (a killed postmaster's
      // backends may still answer for a moment) and ends at the first ack of a message first sent
      // after it: a retry of a message stored before the kill is answered from the log, with no
      // commit, so its ack says nothing about writes being back.
      await waitFor(() => {
        const after = log.slice(kills.at(-1).mark);
        const fail = after.find((e) => e.kind !== 'ok');
        return fail && urls.every((u) => after.some((e) => e.kind === 'ok' && e.url === u && e.first >= fail.at));
      }, { timeout: 60_000, interval: 50, message: `sends acked again on both processes after kill ${k + 1}` });
      timeline += 1;
    }
    for (const w of writers) w.stop = true;
    await Promise.all(writers.map((w) => w.done));

    // Figures per kill, from the clients' view and from PostgreSQL's logs.
    const pgEvents = postgresEvents(dir);
    const figures = kills.map((kill, k) => {
      const end = kills[k + 1]?.mark ?? log.length;
      const during = log.slice(kill.mark, end);
      const fail = during.find((e) => e.kind !== 'ok');
      const promoted = pgEvents.find((e) => e.what === 'primary' && e.at > kill.at);
      const standby = pgEvents.find((e) => e.what === 'sync' && promoted && e.at > promoted.at);
      // Messages first sent after the outage began cannot be on the dead primary: acked before
      // any standby was synchronous again, they were on one machine only when acked.
      const alone = during.filter((e) => e.kind === 'ok' && e.first >= fail.at && (!standby || e.at < standby.at));
      const firstOk = during.find((e) => e.kind === 'ok' && e.first >= fail.at);
      const firstRetryOk = during.find((e) => e.kind === 'ok' && e.attempts > 1);
      const perProcess = urls.map((u) => during.find((e) => e.kind === 'ok' && e.url === u && e.first >= fail.at).at - kill.at);
      return {
        kill: k + 1,
        firstErrorMs: fail.at - kill.at,
        firstRetryAckedMs: firstRetryOk ? firstRetryOk.at - kill.at : null,
        backMs: firstOk.at - kill.at,
        backPerProcessMs: perProcess,
        promotedMs: promoted ? promoted.at - kill.at : null,
        standbySyncMs: standby ? standby.at - kill.at : null,
        ackedWithoutStandby: alone.length,
        refused: during.filter((e) => e.kind === 'refused').length,
        timedOut: during.filter((e) => e.kind === 'timeout').length,
        retriedIds: new Set(during.filter((e) => e.kind !== 'ok').map((e) => e.id)).size,
        codes: [...new Set(during.filter((e) => e.kind === 'refused').map((e) => e.code))],
      };
    });
    const oks = log.filter((e) => e.kind === 'ok');
    const summary = {
      acked: oks.length,
      refused: log.filter((e) => e.kind === 'refused').length,
      timedOut: log.filter((e) => e.kind === 'timeout').length,
      retriedIds: new Set(log.filter((e) => e.kind !== 'ok').map((e) => e.id)).size,
      resumes: subs.map((s) => s.resumes),
      kills: figures,
    };
    console.log(`failover figures: ${JSON.stringify(summary)}`);
    t.diagnostic(`failover figures: ${JSON.stringify(summary)}`);

    // Refusals say unavailable, nothing else.
    const odd = log.filter((e) => e.kind === 'refused' && e.code !== 'unavailable');
    assert.deepEqual(odd, [], 'sends are refused only with unavailable');
    // Each id was acked once: a retry stops at its first ok.
    const ackedSeq = new Map();
    for (const e of oks) {
      assert.ok(!ackedSeq.has(e.id), `id ${e.id} acked twice`);
      ackedSeq.set(e.id, e);
    }

    const undelivered = [];
    for (const room of rooms) {
      const mine = oks.filter((e) => e.roomId === room.id);
      let served;
      // The history each process serves holds exactly the acked messages, each once, under
      // the seq its ack gave, seqs 1..N.
      for (const url of urls) {
        let hist = [];
        await waitFor(async () => {
          hist = await fullHistory(url, owner.token, room.id);
          return hist.length >= mine.length && hist.at(-1)?.seq >= Math.max(...mine.map((e) => e.seq));
        }, { timeout: 30_000, message: () => `history of ${room.id} on ${url} holds ${mine.length} messages (has ${hist.length})` });
        hist = await fullHistory(url, owner.token, room.id);
        const ids = hist.map((m) => m.id);
        const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
        assert.deepEqual(twice, [], `no id twice in the history of ${room.id} on ${url}`);
        assert.deepEqual(hist.map((m) => m.seq), Array.from({ length: hist.length }, (_, i) => i + 1), `seqs gap-free from 1 in ${room.id} on ${url}`);
        const bySeq = new Map(hist.map((m) => [m.seq, m.id]));
        for (const e of mine) assert.equal(bySeq.get(e.seq), e.id, `acked ${e.id} (writer ${e.writer}, after ${e.attempts} attempts) is in history under seq ${e.seq}`);
        assert.equal(hist.length, mine.length, `history of ${room.id} holds no message nobody got an ack for`);
        served = hist;
      }
      // Live delivery resumed on both processes: each subscriber got every message once, in
      // seq order, live or replayed on its resume.
      for (const sub of subs.filter((s) => s.roomId === room.id)) {
        try {
          await waitFor(() => sub.got.length >= mine.length, { timeout: 20_000 });
        } catch {
          undelivered.push(`subscriber on ${sub.url} got ${sub.got.length} of ${mine.length} in ${room.id}; missing ${missing(sub, mine, kills, t0)}`);
          continue;
        }
        assert.deepEqual(sub.got.map((m) => m.seq), Array.from({ length: mine.length }, (_, i) => i + 1), `subscriber on ${sub.url}: every message once, in seq order`);
        assert.deepEqual(sub.got.map((m) => m.id), served.map((m) => m.id), `subscriber on ${sub.url}: the messages of the history`);
      }
    }
    assert.deepEqual(undelivered, [], 'every acked message reaches a subscriber on each process');

    for (const f of figures) {
      if (STRICT) assert.notEqual(f.standbySyncMs, null, `kill ${f.kill}: no standby became synchronous in PostgreSQL's logs: ${JSON.stringify(f)}`);
      if (STRICT) assert.equal(f.ackedWithoutStandby, 0, `kill ${f.kill}: acked with no synchronous standby: ${JSON.stringify(f)}`);
      assert.ok(f.backMs <= BOUND_MS, `kill ${f.kill}: sends acked again after ${f.backMs} ms (bound ${BOUND_MS} ms)`);
    }
  } catch (e) {
    for (const n of [1, 2]) {
      const f = path.join(dir, `chatroom${n}.log`);
      if (existsSync(f)) console.log(`--- end of chatroom${n}.log:\n${readFileSync(f, 'utf8').split('\n').slice(-40).join('\n')}`);
    }
    throw e;
  } finally {
    for (const w of writers) w.stop = true;
    for (const s of subs) { s.closed = true; closeAll(s.sockets); }
    closeAll(writers.map((w) => w.socket));
    await ha('down', dir).catch((e) => console.log(`scripts/ha down: ${e.message}`));
    if (!process.env.CHATROOM_HA_KEEP) rmSync(dir, { recursive: true, force: true });
  }
});
