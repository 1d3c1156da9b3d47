// The read tables on trial, and no stalled projection, through the real binary while the
// server runs: `chatroom verify --projections` passes on untouched tables and fails, naming
// the row, after a row of a read table is changed, deleted or added with the database's own
// tool (sqlite3, psql); a message the read tables refuse (a row put in its way) is parked
// while the projections go on, `/healthz` says degraded and `/metrics` counts it,
// `chatroom projections status` lists it, and `chatroom projections retry` applies it once
// the row is gone; and the audit commands (checkpoint, export, their verification) on the
// same store. Runs on the embedded store, on PostgreSQL when CHATROOM_TEST_DATABASE_URL
// is set, and with the log in EventStoreDB (read tables in the data folder) when
// EVENTSTORE_URL is set (a binary built with `--features eventstoredb`): those are not even
// registered without it, as tests/esdb.rs is exempt in ./scripts/test, which fails a part
// with a skipped test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, execSync } from 'node:child_process';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import {
  BIN, startServer, register, createRoom, joinRoom, connect, emitAck, send, history, waitFor,
  closeAll, api,
} from './helpers.mjs';
import { edit, del, react } from './messages.mjs';

const run = promisify(execFile);
const ADMIN = process.env.CHATROOM_TEST_DATABASE_URL;
const ESDB = process.env.EVENTSTORE_URL;

/** Runs a chatroom command on the server's store: {code, stdout, stderr}. */
async function chatroom(args, server) {
  const store = [
    '--data-dir', server.dataDir,
    ...(server.databaseUrl ? ['--database-url', server.databaseUrl] : []),
    ...(server.eventstoreUrl ? ['--eventstore-url', server.eventstoreUrl] : []),
  ];
  try {
    const { stdout, stderr } = await run(BIN, [...args, ...store], { env: { ...process.env, RUST_LOG: 'warn' }, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function freshDatabase() {
  const name = `chatroom_trial_${randomUUID().replaceAll('-', '')}`;
  execSync(`psql "${ADMIN}" -q -c "create database ${name}"`);
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Runs SQL on the server's read tables with the database's own client. */
function sql(server, statement) {
  if (server.databaseUrl) {
    execFileSync('psql', [server.databaseUrl, '-q', '-v', 'ON_ERROR_STOP=1', '-c', statement]);
  } else {
    execFileSync('sqlite3', ['-cmd', '.timeout 10000', path.join(server.dataDir, 'read.db'), statement]);
  }
}

async function startOn(store) {
  const databaseUrl = store === 'pg' ? freshDatabase() : null;
  const eventstoreUrl = store === 'esdb' ? ESDB : null;
  const server = await startServer({
    args: [
      '--send-rate-limit', '0',
      ...(databaseUrl ? ['--database-url', databaseUrl] : []),
      ...(eventstoreUrl ? ['--eventstore-url', eventstoreUrl] : []),
    ],
  });
  server.databaseUrl = databaseUrl;
  server.eventstoreUrl = eventstoreUrl;
  return server;
}

async function healthz(server) {
  const res = await api(server.url, 'GET', '/healthz');
  assert.equal(res.status, 200, 'healthz answers 200 even when degraded');
  return res.body;
}

async function parkedMetric(server, projection) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`chatroom_projection_parked{projection="${projection}"} `));
  return line ? Number(line.split(' ')[1]) : undefined;
}

/** Two users in a room with a few messages, everything projected. */
async function chat(server) {
  const alice = await register(server.url);
  const bob = await register(server.url);
  const room = await createRoom(server.url, alice.token);
  await joinRoom(server.url, bob.token, room.room_hash_id);
  const socket = await connect(server.url, alice.token, ['websocket']);
  await emitAck(socket, 'join_all', { roomList: [room.id] });
  for (let i = 1; i <= 3; i += 1) await send(socket, room.id, `hello ${i}`);
  await waitFor(async () => (await history(server.url, alice.token, room.id)).length === 3);
  return { alice, bob, room, socket };
}

const stores = [
  ['embedded store', null, false],
  ['PostgreSQL', 'pg', ADMIN ? false : 'CHATROOM_TEST_DATABASE_URL is not set'],
  ...(ESDB ? [['EventStoreDB log', 'esdb', false]] : []),
];

for (const [label, pg, skip] of stores) {

  test(`verify --projections (${label}): untouched passes; a changed, deleted or added row fails, named`, { skip, timeout: 120_000 }, async () => {
    const server = await startOn(pg);
    let socket;
    try {
      const c = await chat(server);
      socket = c.socket;
      const { room, bob, alice } = c;
      // Rows that events change after writing them, and a person erased.
      await edit(socket, room.id, 1, 'hello 1, edited');
      await react(socket, room.id, 2, '👍');
      await del(socket, room.id, 3);
      const carol = await register(server.url);
      await joinRoom(server.url, carol.token, room.room_hash_id);
      const sc = await connect(server.url, carol.token, ['websocket']);
      await emitAck(sc, 'join_all', { roomList: [room.id] });
      await send(sc, room.id, 'from carol');
      await react(sc, room.id, 1, '🎉');
      closeAll(sc);
      const gone = await api(server.url, 'DELETE', '/api/user', { token: carol.token, body: { password: carol.password } });
      assert.equal(gone.status, 200, JSON.stringify(gone.body));
      await waitFor(async () => (await history(server.url, alice.token, room.id)).length === 4);
      let out = await chatroom(['verify', '--projections'], server);
      assert.equal(out.code, 0, `untouched tables verify: ${out.stdout}${out.stderr}`);
      assert.match(out.stdout, /^ok: \d+ tables, \d+ rows: the read tables are what the log gives/m);

      sql(server, `update room set name = 'tampered' where id = '${room.id}'`);
      out = await chatroom(['verify', '--projections'], server);
      assert.equal(out.code, 1, out.stdout);
      assert.match(out.stdout, /^DIFFERENT: 1 rows in 1 of \d+ tables/m);
      assert.ok(
        out.stdout.includes(`room [id = '${room.id}'] name: live 'tampered', rebuilt '${room.name}'`),
        out.stdout,
      );
      sql(server, `update room set name = '${room.name}' where id = '${room.id}'`);
      out = await chatroom(['verify', '--projections'], server);
      assert.equal(out.code, 0, `put back, it verifies again: ${out.stdout}`);

      sql(server, `delete from room_member where room_id = '${room.id}' and user_id = '${bob.id}'`);
      out = await chatroom(['verify', '--projections'], server);
      assert.equal(out.code, 1, out.stdout);
      assert.ok(
        out.stdout.includes(`room_member [room_id = '${room.id}', user_id = '${bob.id}'] missing from the live table`),
        out.stdout,
      );

      sql(server, `insert into user_block (blocker_id, blocked_id, blocked_at) values ('${bob.id}', 'nobody', 1)`);
      out = await chatroom(['verify', '--projections'], server);
      assert.equal(out.code, 1, out.stdout);
      assert.match(out.stdout, /^DIFFERENT: 2 rows in 2 of \d+ tables/m);
      assert.ok(
        out.stdout.includes(`user_block [blocker_id = '${bob.id}', blocked_id = 'nobody'] in the live table only`),
        out.stdout,
      );
      // The server kept serving, and the live tables are as the tampering left them.
      const res = await api(server.url, 'GET', '/readyz');
      assert.equal(res.status, 200);
    } finally {
      if (socket) closeAll(socket);
      await server.cleanup();
    }
  });

  test(`checkpoint, verify --checkpoint, export and verify-bundle (${label}): the audit commands on this store`, { skip, timeout: 120_000 }, async () => {
    const server = await startOn(pg);
    try {
      const { room, socket } = await chat(server);
      closeAll(socket);
      // The embedded store is one process's: its commands run with the server stopped.
      await server.stop();
      const cp = path.join(server.dataDir, 'audit-cp.json');
      let out = await chatroom(['checkpoint', '--out', cp], server);
      assert.equal(out.code, 0, out.stdout + out.stderr);
      out = await chatroom(['verify', '--checkpoint', cp], server);
      assert.equal(out.code, 0, out.stdout + out.stderr);
      assert.match(out.stdout, /^ok: /m, out.stdout);
      out = await chatroom(['public-key'], server);
      assert.equal(out.code, 0, out.stderr);
      const key = out.stdout.trim();
      const bundle = path.join(server.dataDir, 'audit-bundle.json');
      out = await chatroom(['export', '--room', room.id, '--out', bundle], server);
      assert.equal(out.code, 0, out.stdout + out.stderr);
      // Offline: no store at all.
      const checked = await run(BIN, ['verify-bundle', bundle, '--public-key', key], { maxBuffer: 64 << 20 });
      out = { stdout: checked.stdout };
      assert.match(out.stdout, /complete for the span/, out.stdout);
      assert.match(out.stdout, /"hello 3"/, out.stdout);
    } finally {
      await server.cleanup();
    }
  });

  test(`dead letters (${label}): a refused message is parked, listed, and retried once fixed`, { skip, timeout: 120_000 }, async () => {
    const server = await startOn(pg);
    let socket;
    try {
      const c = await chat(server);
      socket = c.socket;
      const { room, alice } = c;
      assert.deepEqual(
        { status: (await healthz(server)).status, parked: (await healthz(server)).parked_events },
        { status: 'ok', parked: 0 },
      );
      // A row where the next message goes: the read table refuses the message.
      const blob = server.databaseUrl ? `'\\x00'::bytea` : `X'00'`;
      sql(server, `insert into room_record (room_id, seq, message_id, user_id, message, time, event_id, position)
                   values ('${room.id}', 4, 'in-the-way', 'nobody', 'in the way', 0, ${blob}, 0)`);
      await send(socket, room.id, 'hello 4');
      await send(socket, room.id, 'hello 5');
      // The projections went on: the message after it is there.
      await waitFor(async () => (await history(server.url, alice.token, room.id)).some((m) => m.message === 'hello 5'));
      const health = await healthz(server);
      assert.equal(health.status, 'degraded');
      assert.equal(health.parked_events, 1);
      assert.equal(await parkedMetric(server, 'room_record'), 1);
      assert.equal(await parkedMetric(server, 'room'), 0);

      let out = await chatroom(['projections', 'status'], server);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /^parked events \(dead letters\): 1 /m);
      const line = out.stdout.split('\n').find((l) => l.startsWith('room_record ') && l.includes(`room-${room.id}`));
      assert.ok(line, out.stdout);
      assert.match(line, /unique|UNIQUE|23505/);

      out = await chatroom(['projections', 'retry'], server);
      assert.equal(out.code, 1, `still in the way: ${out.stdout}`);
      assert.match(out.stdout, /^0 applied, 1 still parked$/m);

      sql(server, `delete from room_record where room_id = '${room.id}' and message_id = 'in-the-way'`);
      out = await chatroom(['projections', 'retry'], server);
      assert.equal(out.code, 0, out.stdout + out.stderr);
      assert.match(out.stdout, /^1 applied, 0 still parked$/m);
      const texts = (await history(server.url, alice.token, room.id)).map((m) => m.message);
      assert.deepEqual(texts, ['hello 1', 'hello 2', 'hello 3', 'hello 4', 'hello 5']);
      assert.deepEqual((await healthz(server)).status, 'ok');
      assert.equal(await parkedMetric(server, 'room_record'), 0);
      out = await chatroom(['projections', 'status'], server);
      assert.match(out.stdout, /^parked events \(dead letters\): none$/m);
      out = await chatroom(['verify', '--projections'], server);
      assert.equal(out.code, 0, `retried, the tables are what the log gives: ${out.stdout}`);
    } finally {
      if (socket) closeAll(socket);
      await server.cleanup();
    }
  });
}
