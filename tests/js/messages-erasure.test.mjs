// Every version of a message in the log (docs/protocol.md part 2, "Messages" and "Accounts and
// personal data"): `chatroom audit --room ID --format json`, run on the stopped server's store,
// shows each edit with the text before and after and each deletion with what it removed; the
// log holds none of those texts in clear; and once their author is erased (`DELETE /api/user`)
// neither audit nor history shows any of them, old versions included, and no file of the data
// folder (nor, with DATABASE_URL, any table of the database) holds one readable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import {
  BIN, startServer, api, assertOk, register, createRoom, joinRoom, connect, emitAck,
  fullHistory, waitFor, closeAll, PASSWORD,
} from './helpers.mjs';
import { post, edit, del, react } from './messages.mjs';

const run = promisify(execFile);
const DATABASE_URL = process.env.DATABASE_URL;

async function chatroom(args, server) {
  const store = ['--data-dir', server.dataDir, ...(DATABASE_URL ? ['--database-url', DATABASE_URL] : [])];
  return run(BIN, [...args, ...store], { env: { ...process.env, RUST_LOG: 'warn' }, maxBuffer: 64 << 20 });
}

async function auditLines(server, roomId) {
  const { stdout } = await chatroom(['audit', '--room', roomId, '--format', 'json'], server);
  return { stdout, lines: stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.type) };
}

function filesUnder(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

/** The files of the data folder, and with DATABASE_URL the tables, that hold `needle` in clear. */
function holders(dataDir, needle) {
  const bytes = Buffer.from(needle, 'utf8');
  const files = filesUnder(dataDir).filter((p) => existsSync(p) && readFileSync(p).includes(bytes)).map((p) => path.relative(dataDir, p));
  if (!DATABASE_URL) return files;
  const dump = execFileSync('pg_dump', ['--data-only', '--no-owner', DATABASE_URL], { maxBuffer: 1 << 30 }).toString('utf8');
  const hex = bytes.toString('hex');
  let table = null;
  const tables = new Set();
  for (const line of dump.split('\n')) {
    const copy = line.match(/^COPY (\S+) /);
    if (copy) { table = copy[1]; continue; }
    if (line.includes(needle) || line.toLowerCase().includes(hex)) tables.add(table ?? line.slice(0, 80));
  }
  return [...files, ...tables];
}

/** Whether `needle` is in the log itself: the embedded store's events.db files, or the event table. */
function inTheLog(dataDir, needle) {
  return holders(dataDir, needle).filter((h) => (DATABASE_URL ? /\bevent\b/.test(h) : h.startsWith('events.db')));
}

test('audit shows every edit and deletion with the texts before and after, until the author is erased; then nothing holds them', { timeout: 180_000 }, async () => {
  const server = await startServer({ args: ['--send-rate-limit', '0'] });
  try {
    const tag = randomUUID().slice(0, 8);
    const v1 = `Alpaca first ${tag}`;
    const v2 = `Alpaca second ${tag}`;
    const v3 = `Alpaca third ${tag}`;
    const gone = `Alpaca removed ${tag}`;
    const bobs = `Bison kept ${tag}`;
    const bobsEdit = `Bison edited ${tag}`;
    const alice = await register(server.url);
    const bob = await register(server.url);
    const room = await createRoom(server.url, bob.token);
    await joinRoom(server.url, alice.token, room.room_hash_id);
    const sa = await connect(server.url, alice.token);
    const sb = await connect(server.url, bob.token);
    for (const s of [sa, sb]) assert.equal((await emitAck(s, 'join_all', { roomList: [room.id] })).ok, true);
    const x = await post(sa, room.id, v1);
    await edit(sa, room.id, x.seq, v2);
    await edit(sa, room.id, x.seq, v3);
    const y = await post(sa, room.id, gone);
    await del(sa, room.id, y.seq);
    const b = await post(sb, room.id, bobs, { replyTo: x.seq });
    await edit(sb, room.id, b.seq, bobsEdit);
    await react(sa, room.id, b.seq, '👍');
    // Bob, the owner, deletes alice's edited message too: a deletion by someone else.
    const z = await post(sa, room.id, `Alpaca by the owner ${tag}`);
    await del(sb, room.id, z.seq);

    for (const t of [v1, v2, v3, gone, bobs, bobsEdit]) {
      assert.deepEqual(inTheLog(server.dataDir, t), [], `the log holds "${t}" in clear`);
    }
    closeAll(sa, sb);
    await server.stop();

    const { lines } = await auditLines(server, room.id);
    const edits = lines.filter((l) => l.type === 'MessageEdited' && l.seq === x.seq);
    assert.equal(edits.length, 2, `two edits of #${x.seq}: ${JSON.stringify(lines.map((l) => l.type))}`);
    for (const [l, before, after] of [[edits[0], v1, v2], [edits[1], v2, v3]]) {
      assert.equal(l.user_id, alice.id, 'who edited');
      assert.ok(l.time && !Number.isNaN(Date.parse(l.time)), 'when');
      assert.ok(l.text.includes(before) && l.text.includes(after), `the edit shows "${before}" and "${after}": ${l.text}`);
      assert.ok(l.text.indexOf(before) < l.text.indexOf(after), `before, then after: ${l.text}`);
    }
    const bobEdit = lines.find((l) => l.type === 'MessageEdited' && l.seq === b.seq);
    assert.ok(bobEdit?.text.includes(bobs) && bobEdit.text.includes(bobsEdit), JSON.stringify(bobEdit));
    const dels = lines.filter((l) => l.type === 'MessageDeleted');
    assert.deepEqual(dels.map((l) => [l.seq, l.user_id]), [[y.seq, alice.id], [z.seq, bob.id]], 'each deletion, with who deleted');
    assert.ok(dels[0].text.includes(gone), `the deletion shows what it removed: ${dels[0].text}`);
    const posted = lines.find((l) => l.type === 'MessagePosted' && l.seq === x.seq);
    assert.equal(posted.text, v1, 'the post shows the first version');
    assert.ok(lines.some((l) => l.type === 'ReactionAdded' && l.seq === b.seq && l.user_id === alice.id), 'the reaction');

    await server.restart();
    const res = await api(server.url, 'DELETE', '/api/user', { token: alice.token, body: { password: PASSWORD } });
    assert.equal(assertOk(res, 200, 'erasure'), null);
    let hist = [];
    await waitFor(async () => {
      hist = await fullHistory(server.url, bob.token, room.id);
      return hist.filter((m) => m.user.id === alice.id).every((m) => m.deleted);
    }, { message: 'alice\'s messages become placeholders' });
    const text = JSON.stringify(hist);
    for (const t of [v1, v2, v3, gone, 'Alpaca']) assert.ok(!text.includes(t), `history shows "${t}" after the erasure`);
    assert.equal(hist.find((m) => m.seq === b.seq).message, bobsEdit, 'bob\'s message stays');
    assert.equal(hist.find((m) => m.seq === b.seq).replyTo, x.seq, 'his reply still points at the placeholder');
    assert.deepEqual(hist.find((m) => m.seq === b.seq).reactions, { '👍': [alice.id] }, 'her reaction stays as her id');
    for (const t of [v1, v2, v3, gone]) {
      assert.deepEqual(holders(server.dataDir, t), [], `while the server runs, "${t}" is readable in`);
    }
    await server.stop();

    const { stdout, lines: after } = await auditLines(server, room.id);
    for (const t of [v1, v2, v3, gone]) assert.ok(!stdout.includes(t), `the audit shows "${t}" after the erasure`);
    assert.ok(!stdout.includes('Alpaca'), 'no version of any of her texts');
    assert.ok(stdout.includes(bobsEdit) && stdout.includes(bobs), 'bob\'s texts stay readable');
    assert.equal(after.filter((l) => l.type === 'MessageEdited' && l.seq === x.seq).length, 2, 'the edits stay in the log as events');
    for (const t of [v1, v2, v3, gone]) {
      assert.deepEqual(holders(server.dataDir, t), [], `after a stop, "${t}" is readable in`);
    }
    assert.match((await chatroom(['verify'], server)).stdout, /^ok: /);
  } finally {
    await server.cleanup();
  }
});
