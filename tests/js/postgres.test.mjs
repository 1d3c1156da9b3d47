// Several chatroom processes on one PostgreSQL, PostgreSQL restarting under traffic, and the
// whole thing behind real nginx. Needs CHATROOM_TEST_DATABASE_URL (an admin URL of a server
// where databases may be created; ./scripts/test starts a throwaway one); the restart test
// also needs CHATROOM_TEST_PG_RESTART (a shell command that restarts that server) and the
// nginx test an `nginx` binary. Each part says plainly when it is skipped.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import {
  startServer, register, createRoom, joinRoom, connect, emitAck, messagesIn, send,
  fullHistory, waitFor, closeAll, newMsgId, delay, api,
} from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ADMIN = process.env.CHATROOM_TEST_DATABASE_URL;
const RESTART = process.env.CHATROOM_TEST_PG_RESTART;
const skipNoPg = ADMIN ? false : 'CHATROOM_TEST_DATABASE_URL is not set: no PostgreSQL to test on';

/** A fresh database on the test server; returns its URL. */
async function freshDatabase() {
  const name = `chatroom_e2e_${randomUUID().replaceAll('-', '')}`;
  execSync(`psql "${ADMIN}" -q -c "create database ${name}"`);
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  return u.toString();
}

async function cluster(n, extra = []) {
  const url = await freshDatabase();
  const nodes = [];
  for (let i = 0; i < n; i += 1) {
    nodes.push(await startServer({ args: ['--database-url', url, '--send-rate-limit', '0', ...extra] }));
  }
  return { url, nodes };
}

test('two processes on one database: every message reaches every subscriber once, in seq order, no seq twice', { skip: skipNoPg, timeout: 120_000 }, async () => {
  const { nodes } = await cluster(2);
  const [a, b] = nodes;
  try {
    const owner = await register(a.url);
    const room = await createRoom(a.url, owner.token);
    const members = [owner];
    for (let i = 0; i < 5; i += 1) {
      const via = i % 2 ? a : b;
      const m = await register(via.url);
      await joinRoom(via.url, m.token, room.room_hash_id);
      members.push(m);
    }
    // Clients spread over both processes and both transports.
    const sockets = [];
    for (const [i, m] of members.entries()) {
      const via = i % 2 ? a : b;
      const s = await connect(via.url, m.token, i % 3 ? ['websocket'] : ['polling']);
      const ack = await emitAck(s, 'join_all', { roomList: [room.id] });
      assert.equal(ack.rooms[0].ok, true, JSON.stringify(ack));
      sockets.push(s);
    }
    // Everyone posts at once, through both processes.
    const perSocket = 20;
    const acks = (await Promise.all(sockets.map(async (s, i) => {
      const out = [];
      const pending = [];
      for (let k = 0; k < perSocket; k += 1) pending.push(send(s, room.id, `from ${i} #${k}`));
      for (const p of pending) out.push(await p);
      // One socket's messages keep their emit order.
      for (let k = 1; k < out.length; k += 1) assert.ok(out[k].seq > out[k - 1].seq, 'emit order kept');
      return out;
    }))).flat();
    const total = sockets.length * perSocket;
    const seqs = acks.map((x) => x.seq).sort((x, y) => x - y);
    assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1), 'seq 1..N, no repeat, no gap');
    for (const s of sockets) {
      await waitFor(() => messagesIn(s, room.id).length >= total, { timeout: 20_000, message: 'all delivered' });
      const got = messagesIn(s, room.id).map((m) => m.seq);
      assert.deepEqual(got, seqs, 'each subscriber sees every message once, in seq order');
    }
    // Compared message by message with the history, read through the other process (its read
    // tables follow the log: wait for them to hold every message).
    await waitFor(async () => (await fullHistory(b.url, members[1].token, room.id)).length === total, { timeout: 20_000, message: 'history caught up' });
    const hist = await fullHistory(b.url, members[1].token, room.id);
    const byId = new Map(acks.map((x) => [x.id, x.seq]));
    assert.equal(hist.length, total);
    for (const m of hist) assert.equal(byId.get(m.id), m.seq, `message ${m.id}`);
    closeAll(sockets);
  } finally {
    for (const n of nodes) await n.cleanup();
  }
});

test('resume after reconnecting to the other process', { skip: skipNoPg, timeout: 60_000 }, async () => {
  const { nodes } = await cluster(2);
  const [a, b] = nodes;
  try {
    const alice = await register(a.url);
    const room = await createRoom(a.url, alice.token);
    const bob = await register(b.url);
    await joinRoom(b.url, bob.token, room.room_hash_id);
    const sa = await connect(a.url, alice.token, ['websocket']);
    await emitAck(sa, 'join_all', { roomList: [room.id] });
    let sb = await connect(a.url, bob.token, ['polling']);
    await emitAck(sb, 'join_all', { roomList: [room.id] });
    for (let i = 0; i < 5; i += 1) await send(sa, room.id, `before ${i}`);
    await waitFor(() => messagesIn(sb, room.id).length === 5);
    const last = messagesIn(sb, room.id).at(-1).seq;
    sb.close();
    for (let i = 0; i < 7; i += 1) await send(sa, room.id, `missed ${i}`);
    sb = await connect(b.url, bob.token, ['websocket']);
    const ack = await emitAck(sb, 'join_all', { roomList: [room.id], since: { [room.id]: last } });
    assert.deepEqual({ ok: ack.rooms[0].ok, lastSeq: ack.rooms[0].lastSeq, recovered: ack.rooms[0].recovered }, { ok: true, lastSeq: 12, recovered: true });
    await send(sa, room.id, 'live');
    await waitFor(() => messagesIn(sb, room.id).length === 8);
    assert.deepEqual(messagesIn(sb, room.id).map((m) => m.seq), [6, 7, 8, 9, 10, 11, 12, 13]);
    closeAll(sa, sb);
  } finally {
    for (const n of nodes) await n.cleanup();
  }
});

test('a process killed mid-traffic: the other takes over the projections and nothing acked is lost', { skip: skipNoPg, timeout: 90_000 }, async () => {
  const { nodes } = await cluster(2);
  const [a, b] = nodes;
  try {
    const alice = await register(a.url);
    const room = await createRoom(a.url, alice.token);
    const sa = await connect(a.url, alice.token, ['websocket']);
    await emitAck(sa, 'join_all', { roomList: [room.id] });
    const acked = [];
    for (let i = 0; i < 30; i += 1) acked.push(await send(sa, room.id, `m ${i}`));
    await a.kill9();
    // Whichever process held the projections is gone or not; b's history must still catch up.
    const sb = await connect(b.url, alice.token, ['websocket']);
    await emitAck(sb, 'join_all', { roomList: [room.id] });
    for (let i = 30; i < 40; i += 1) acked.push(await send(sb, room.id, `m ${i}`));
    await waitFor(async () => (await fullHistory(b.url, alice.token, room.id)).length === 40, { timeout: 20_000, message: 'history complete on the survivor' });
    const hist = await fullHistory(b.url, alice.token, room.id);
    assert.deepEqual(hist.map((m) => m.seq), Array.from({ length: 40 }, (_, i) => i + 1));
    assert.deepEqual(hist.map((m) => m.id), acked.map((x) => x.id));
    closeAll(sb);
  } finally {
    for (const n of nodes) await n.cleanup();
  }
});

test('PostgreSQL restarting under traffic: unavailable while gone, back by itself, no acked message lost', {
  skip: skipNoPg || (RESTART ? false : 'CHATROOM_TEST_PG_RESTART is not set: cannot restart the database'),
  timeout: 120_000,
}, async () => {
  const { nodes } = await cluster(1);
  const [a] = nodes;
  try {
    const alice = await register(a.url);
    const room = await createRoom(a.url, alice.token);
    const s = await connect(a.url, alice.token, ['websocket']);
    await emitAck(s, 'join_all', { roomList: [room.id] });
    const acked = new Map();
    const refused = new Set();
    let stop = false;
    const traffic = (async () => {
      let i = 0;
      while (!stop) {
        const id = newMsgId();
        i += 1;
        try {
          const ack = await emitAck(s, 'user_send_message', { roomId: room.id, id, message: `t ${i}`, type: 'input' }, 15_000);
          if (ack.ok) acked.set(id, ack.seq);
          else {
            assert.equal(ack.error.code, 'unavailable', JSON.stringify(ack));
            refused.add(id);
          }
        } catch (e) {
          refused.add(id);
        }
        await delay(5);
      }
    })();
    await waitFor(() => acked.size >= 20, { timeout: 20_000 });
    execSync(RESTART, { stdio: 'ignore' });
    const afterRestart = acked.size;
    await waitFor(() => acked.size >= afterRestart + 20, { timeout: 60_000, message: 'writes resume after the restart' });
    stop = true;
    await traffic;
    // The server stayed up and answers REST again.
    const hist = await fullHistory(a.url, alice.token, room.id);
    const stored = new Map(hist.map((m) => [m.id, m.seq]));
    for (const [id, seq] of acked) assert.equal(stored.get(id), seq, `acked message ${id} is stored with its seq`);
    const seqs = hist.map((m) => m.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'no gap, no repeat');
    // A refused (or unanswered) send may be retried with its id: it lands once.
    for (const id of [...refused].slice(0, 5)) {
      const ack = await emitAck(s, 'user_send_message', { roomId: room.id, id, message: 'retry', type: 'input' });
      assert.equal(ack.ok, true, JSON.stringify(ack));
    }
    closeAll(s);
  } finally {
    for (const n of nodes) await n.cleanup();
  }
});

const STOP = process.env.CHATROOM_TEST_PG_STOP;
const START = process.env.CHATROOM_TEST_PG_START;
test('PostgreSQL stopped: /readyz and writes say unavailable, the server stays up, then recovers', {
  skip: skipNoPg || (STOP && START ? false : 'CHATROOM_TEST_PG_STOP / _START are not set: cannot stop the database'),
  timeout: 120_000,
}, async () => {
  const { nodes } = await cluster(1);
  const [a] = nodes;
  const stop = STOP;
  const start = START;
  try {
    const u = await register(a.url);
    const room = await createRoom(a.url, u.token);
    const s = await connect(a.url, u.token, ['websocket']);
    await emitAck(s, 'join_all', { roomList: [room.id] });
    const before = await send(s, room.id, 'before');
    assert.equal((await api(a.url, 'GET', '/readyz', {})).status, 200);
    execSync(stop, { stdio: 'ignore' });
    try {
      await waitFor(async () => (await api(a.url, 'GET', '/readyz', {})).status === 503, { timeout: 20_000, message: 'not ready while the database is down' });
      const ready = await api(a.url, 'GET', '/readyz', {});
      assert.equal(ready.body.ready, false);
      const ack = await emitAck(s, 'user_send_message', { roomId: room.id, id: 'during', message: 'during', type: 'input' }, 20_000);
      assert.deepEqual([ack.ok, ack.error?.code], [false, 'unavailable'], JSON.stringify(ack));
      const created = await api(a.url, 'POST', '/api/room/create', { token: u.token, body: { name: 'x' } });
      assert.equal(created.status, 503, JSON.stringify(created.body));
      assert.equal(created.body.status, 503);
      assert.equal((await api(a.url, 'GET', '/healthz', {})).status, 200, 'the process stays up');
    } finally {
      execSync(start, { stdio: 'ignore' });
    }
    await waitFor(async () => (await api(a.url, 'GET', '/readyz', {})).status === 200, { timeout: 30_000, message: 'ready again' });
    await waitFor(async () => (await emitAck(s, 'user_send_message', { roomId: room.id, id: 'during', message: 'during', type: 'input' })).ok, { timeout: 30_000, message: 'writes work again' });
    const hist = await fullHistory(a.url, u.token, room.id);
    assert.deepEqual(hist.map((m) => [m.id, m.seq]), [[before.id, 1], ['during', 2]]);
    closeAll(s);
  } finally {
    for (const n of nodes) await n.cleanup();
  }
});

function findNginx() {
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) if (existsSync(p)) return p;
  return null;
}
const NGINX = findNginx();

test('through nginx: REST, WebSocket and polling reach both processes, clients kept on theirs', {
  skip: skipNoPg || (NGINX ? false : 'nginx is not installed'),
  timeout: 120_000,
}, async () => {
  const { nodes } = await cluster(2);
  const [a, b] = nodes;
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'chatroom-nginx-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const portOf = (u) => new URL(u).port;
  // The shipped config, with this test's ports put in.
  let site = readFileSync(path.join(here, '../../deploy/nginx/chatroom.conf'), 'utf8');
  site = site.replace('server 127.0.0.1:4999;', `server 127.0.0.1:${portOf(a.url)};`)
    .replace('server 127.0.0.1:5000;', `server 127.0.0.1:${portOf(b.url)};`)
    .replace('listen 8080;', `listen 127.0.0.1:${port};`);
  writeFileSync(path.join(prefix, 'chatroom.conf'), site);
  writeFileSync(path.join(prefix, 'nginx.conf'), `
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  include ${prefix}/chatroom.conf;
}
`);
  const nginx = spawn(NGINX, ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'inherit' });
  const front = `http://127.0.0.1:${port}`;
  try {
    await waitFor(async () => { try { return (await fetch(`${front}/healthz`)).ok; } catch { return false; } }, { timeout: 10_000, message: 'nginx answers' });
    const owner = await register(front);
    const room = await createRoom(front, owner.token);
    const people = [owner];
    for (let i = 0; i < 7; i += 1) {
      const p = await register(front);
      await joinRoom(front, p.token, room.room_hash_id);
      people.push(p);
    }
    // Each client from its own loopback address, so the hash spreads them over both processes.
    const sockets = [];
    for (const [i, p] of people.entries()) {
      const s = await connect(front, p.token, i % 2 ? ['polling'] : ['websocket'], { localAddress: `127.0.0.${i + 2}` });
      const ack = await emitAck(s, 'join_all', { roomList: [room.id] });
      assert.equal(ack.rooms[0].ok, true);
      sockets.push(s);
    }
    // nginx's consistent hash places the two upstreams (random ports) on its ring anew each
    // run, so eight addresses may all land on one process: add clients from further addresses
    // until both processes hold some.
    const counts = () => Promise.all([a, b].map(async (n) => (await (await fetch(`${n.url}/healthz`)).json()).sockets));
    let health = await counts();
    for (let k = 0; k < 48 && !(health[0] > 0 && health[1] > 0); k += 1) {
      const p = people[k % people.length];
      const s = await connect(front, p.token, k % 2 ? ['polling'] : ['websocket'], { localAddress: `127.0.1.${k + 2}` });
      const ack = await emitAck(s, 'join_all', { roomList: [room.id] });
      assert.equal(ack.rooms[0].ok, true);
      sockets.push(s);
      health = await counts();
    }
    assert.ok(health[0] > 0 && health[1] > 0, `both processes hold sockets: ${health}`);
    const acks = await Promise.all(sockets.map((s, i) => send(s, room.id, `hello from ${i}`)));
    const seqs = acks.map((x) => x.seq).sort((x, y) => x - y);
    for (const s of sockets) {
      await waitFor(() => messagesIn(s, room.id).length === sockets.length, { timeout: 15_000 });
      assert.deepEqual(messagesIn(s, room.id).map((m) => m.seq), seqs);
    }
    // Polling sockets kept working for a while (each request reached the process that knows
    // the session): send again after a pause.
    await delay(1500);
    const again = await send(sockets[1], room.id, 'still here');
    await waitFor(() => messagesIn(sockets[0], room.id).some((m) => m.seq === again.seq));
    const page = await (await fetch(`${front}/`)).status;
    assert.ok(page === 200 || page === 404, `the web page path is proxied (${page})`);
    closeAll(sockets);
  } finally {
    nginx.kill('SIGTERM');
    for (const n of nodes) await n.cleanup();
  }
});
