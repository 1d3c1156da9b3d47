// Accounts and personal data (docs/protocol.md part 2): rename, avatar, password, export and
// erasure, over the wire with the official socket.io-client against the real binary; and raw
// searches of the data folder (or, with DATABASE_URL, of a dump of the database) for a unique
// name and text: the log never holds them in clear, and after the erasure nothing does.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  BIN, startServer, api, assertOk, assertError, assertKeys, assertUserInfo, assertRoom,
  assertId, assertTime, register, login, roomWith, connect, emitAck, send, messagesIn,
  history, waitFor, closeAll, uniqueName, PASSWORD, PNG_1X1, GIF_1X1, dataUrl,
} from './helpers.mjs';

const run = promisify(execFile);
const DATABASE_URL = process.env.DATABASE_URL;
const NEW_PASSWORD = 'a new and better password';

async function info(url, token) {
  return assertOk(await api(url, 'GET', '/api/user/info', { token }), 200, 'user/info').userInfo;
}

function patchInfo(url, token, body) {
  return api(url, 'PATCH', '/api/user/info', { token, body });
}

async function search(url, token, roomId, q) {
  const res = await api(url, 'GET', `/api/room/${roomId}/search?q=${encodeURIComponent(q)}`, { token });
  return assertOk(res, 200, `search ${q}`).messages;
}

/** A socket of `user` subscribed to `roomId`. */
async function subscribed(url, user, roomId, transports = ['websocket']) {
  const s = await connect(url, user.token, transports);
  const ack = await emitAck(s, 'join_all', { roomList: [roomId] });
  assert.equal(ack?.ok, true, JSON.stringify(ack));
  return s;
}

/** Every file under `dir`, with its path relative to it. */
function filesUnder(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** The files under `dir` whose bytes contain `needle` (UTF-8). */
function filesHolding(dir, needle) {
  const bytes = Buffer.from(needle, 'utf8');
  return filesUnder(dir)
    .filter((p) => existsSync(p) && readFileSync(p).includes(bytes))
    .map((p) => path.relative(dir, p));
}

/** The tables of a data-only dump of the database whose rows hold `needle` in clear (text,
 * or bytea as hex). */
function tablesHolding(databaseUrl, needle) {
  const dump = execFileSync('pg_dump', ['--data-only', '--no-owner', databaseUrl], { maxBuffer: 1 << 30 }).toString('utf8');
  const hex = Buffer.from(needle, 'utf8').toString('hex');
  const found = [];
  let table = null;
  for (const line of dump.split('\n')) {
    const copy = line.match(/^COPY (\S+) /);
    if (copy) { table = copy[1]; continue; }
    if (line.includes(needle) || line.toLowerCase().includes(hex)) found.push(table ?? line.slice(0, 80));
  }
  return [...new Set(found)];
}

describe('accounts', () => {
  let server;
  let url;
  before(async () => {
    server = await startServer({ args: ['--send-rate-limit', '0'] });
    url = server.url;
  });
  after(async () => { await server?.cleanup(); });

  it('PATCH /api/user/info renames: taken names 409 in any case, no known field 400, the new name everywhere', async () => {
    const alice = await register(url);
    const bob = await register(url);
    const room = await roomWith(url, alice, [bob]);
    const sa = await subscribed(url, alice, room.id);
    const sb = await subscribed(url, bob, room.id, ['polling']);
    try {
      const before = await send(sa, room.id, 'written under the old name');

      assertError(await patchInfo(url, alice.token, { name: bob.name.toUpperCase() }), 409, 'a taken name, other case');
      assertError(await patchInfo(url, alice.token, { name: bob.name }), 409, 'a taken name');
      assertError(await patchInfo(url, alice.token, {}), 400, 'no field');
      assertError(await patchInfo(url, alice.token, { nickname: 'x' }), 400, 'no known field');
      assertError(await patchInfo(url, alice.token, { name: '   ' }), 400, 'a blank name');
      assertError(await api(url, 'PATCH', '/api/user/info', { body: { name: uniqueName() } }), 401, 'no token');
      assert.equal((await info(url, alice.token)).name, alice.name, 'refusals change nothing');

      const renamed = uniqueName('renamed');
      const data = assertOk(await patchInfo(url, alice.token, { name: renamed }), 200, 'rename');
      assertKeys(data, ['userInfo'], 'PATCH data');
      assertUserInfo(data.userInfo, renamed);
      assert.equal(data.userInfo.userId, alice.id);
      assertUserInfo(await info(url, alice.token), renamed);

      // Messages show their author's current name, the one written before the rename too.
      const mine = (await history(url, alice.token, room.id)).find((m) => m.seq === before.seq);
      assert.equal(mine.user.name, renamed, 'history shows the current name');
      await waitFor(async () => (await history(url, bob.token, room.id)).find((m) => m.seq === before.seq)?.user.name === renamed, {
        timeout: 1_000, message: "another member's history shows the new name within a second",
      });

      // Other users' new deliveries carry the new name at once: this process forgets the
      // profile it cached once the read tables hold the change.
      const ack = await send(sa, room.id, 'written under the new name');
      await waitFor(() => messagesIn(sb, room.id).some((m) => m.seq === ack.seq), { message: 'bob gets the message' });
      assert.equal(messagesIn(sb, room.id).find((m) => m.seq === ack.seq).user.name, renamed);

      // The old name is free again, and the new one is not.
      const other = await register(url, { name: alice.name });
      assert.notEqual(other.id, alice.id);
      assertError(await api(url, 'POST', '/api/register', { body: { username: renamed.toUpperCase(), password: PASSWORD } }), 409, 'the new name is taken');
      assert.equal((await login(url, alice.name)).id, other.id, 'the old name logs in its new holder');
      assert.equal((await login(url, renamed)).id, alice.id);

      // The same name in another case is a rename of one's own.
      const upper = renamed.toUpperCase();
      assertUserInfo(assertOk(await patchInfo(url, alice.token, { name: upper }), 200, 'case change').userInfo, upper);
      assert.equal((await login(url, renamed)).id, alice.id);
    } finally {
      closeAll(sa, sb);
    }
  });

  it('PATCH /api/user/info changes the avatar: served under /media, the replaced file removed', async () => {
    const alice = await register(url);
    const png = assertOk(await patchInfo(url, alice.token, { avatarImage: dataUrl('image/png', PNG_1X1) }), 200, 'avatar').userInfo;
    assertUserInfo(png, alice.name);
    assert.match(png.avatar_image, /^\/media\/[^/]+$/);
    assert.equal((await info(url, alice.token)).avatar_image, png.avatar_image);
    const served = await fetch(url + png.avatar_image);
    assert.equal(served.status, 200);
    assert.match(served.headers.get('content-type') ?? '', /^image\//);
    const file = path.join(server.dataDir, 'media', path.basename(png.avatar_image));
    assert.ok(existsSync(file), `${file} holds the avatar`);

    assertError(await patchInfo(url, alice.token, { avatarImage: 'data:image/png;base64,bm90IGFuIGltYWdl' }), 400, 'not an image');
    assert.equal((await info(url, alice.token)).avatar_image, png.avatar_image, 'a refused avatar changes nothing');
    assert.ok(existsSync(file));

    const gif = assertOk(await patchInfo(url, alice.token, { avatarImage: dataUrl('image/gif', GIF_1X1) }), 200, 'second avatar').userInfo;
    assert.match(gif.avatar_image, /^\/media\/[^/]+$/);
    assert.notEqual(gif.avatar_image, png.avatar_image);
    assert.equal((await fetch(url + gif.avatar_image)).status, 200);
    assert.equal((await fetch(url + png.avatar_image)).status, 404, 'the replaced avatar is no longer served');
    assert.ok(!existsSync(file), 'the replaced file is removed');

    const none = assertOk(await patchInfo(url, alice.token, { avatarImage: '' }), 200, 'no avatar').userInfo;
    assert.equal(none.avatar_image, '');
    assert.equal((await fetch(url + gif.avatar_image)).status, 404);
    assert.ok(!existsSync(path.join(server.dataDir, 'media', path.basename(gif.avatar_image))));
  });

  it('POST /api/user/password: a wrong old password is 403; the right one revokes the other tokens and their sockets', async () => {
    const alice = await register(url);
    const other = await login(url, alice.name);
    const socket = await connect(url, other.token, ['websocket']);
    const mine = await connect(url, alice.token, ['polling']);
    try {
      const wrong = await api(url, 'POST', '/api/user/password', { token: alice.token, body: { oldPassword: 'not the password', newPassword: NEW_PASSWORD } });
      assertError(wrong, 403, 'wrong old password');
      await info(url, other.token);
      assert.equal((await login(url, alice.name, PASSWORD)).id, alice.id, 'a refusal changes nothing');
      assertError(await api(url, 'POST', '/api/user/password', { token: alice.token, body: { oldPassword: PASSWORD, newPassword: 'short' } }), 400, 'too short');
      assertError(await api(url, 'POST', '/api/user/password', { body: { oldPassword: PASSWORD, newPassword: NEW_PASSWORD } }), 401, 'no token');

      const res = await api(url, 'POST', '/api/user/password', { token: alice.token, body: { oldPassword: PASSWORD, newPassword: NEW_PASSWORD } });
      assert.equal(assertOk(res, 200, 'password change'), null);
      assertError(await api(url, 'GET', '/api/user/info', { token: other.token }), 401, 'the other token is revoked');
      await waitFor(() => !socket.connected, { message: "the other token's socket is disconnected" });
      assert.equal((await info(url, alice.token)).userId, alice.id, "the caller's token still works");
      assert.ok(mine.connected, "the caller's own socket stays");
      assert.equal((await emitAck(mine, 'join_all', { roomList: [] }))?.ok, true);
      assertError(await api(url, 'POST', '/api/login', { body: { username: alice.name, password: PASSWORD } }), 401, 'the old password');
      assert.equal((await login(url, alice.name, NEW_PASSWORD)).id, alice.id, 'the new password');
    } finally {
      closeAll(socket, mine);
    }
  });

  it('GET /api/user/export: exactly the shape of the contract, the caller\'s own messages only', async () => {
    const alice = await register(url);
    const bob = await register(url);
    const own = await roomWith(url, alice, [bob]);
    const joined = await roomWith(url, bob, [alice]);
    const sa = await subscribed(url, alice, own.id);
    const sb = await subscribed(url, bob, own.id);
    try {
      await emitAck(sa, 'join_all', { roomList: [own.id, joined.id] });
      const a1 = await send(sa, own.id, 'alice in her room');
      await send(sb, own.id, 'bob in alice\'s room');
      const a2 = await send(sa, joined.id, 'alice in bob\'s room');

      const data = assertOk(await api(url, 'GET', '/api/user/export', { token: alice.token }), 200, 'export');
      assert.deepEqual(Object.keys(data).sort(), ['blocks', 'messages', 'profile', 'readMarkers', 'rooms']);
      assertUserInfo(data.profile, alice.name);
      assert.equal(data.profile.userId, alice.id);

      assert.equal(data.rooms.length, 2);
      for (const r of data.rooms) {
        assert.deepEqual(Object.keys(r).sort(), ['role', 'room']);
        assertRoom(r.room);
      }
      const roles = Object.fromEntries(data.rooms.map((r) => [r.room.id, r.role]));
      assert.deepEqual(roles, { [own.id]: 'owner', [joined.id]: 'member' });

      const messages = [...data.messages].sort((x, y) => x.roomId.localeCompare(y.roomId) || x.seq - y.seq);
      const expected = [
        { roomId: own.id, seq: a1.seq, id: a1.id, text: 'alice in her room' },
        { roomId: joined.id, seq: a2.seq, id: a2.id, text: 'alice in bob\'s room' },
      ].sort((x, y) => x.roomId.localeCompare(y.roomId) || x.seq - y.seq);
      assert.equal(messages.length, expected.length, `only alice's messages: ${JSON.stringify(data.messages)}`);
      messages.forEach((m, i) => {
        assert.deepEqual(Object.keys(m).sort(), ['deleted', 'id', 'roomId', 'seq', 'versions']);
        assert.equal(m.roomId, expected[i].roomId);
        assert.equal(m.seq, expected[i].seq);
        assert.equal(m.id, expected[i].id);
        assert.equal(m.deleted, false);
        assert.ok(Array.isArray(m.versions) && m.versions.length === 1, JSON.stringify(m.versions));
        assert.deepEqual(Object.keys(m.versions[0]).sort(), ['message', 'time']);
        assert.equal(m.versions[0].message, expected[i].text);
        assertTime(m.versions[0].time, 'version time');
      });
      assert.ok(Array.isArray(data.readMarkers));
      for (const r of data.readMarkers) {
        assert.deepEqual(Object.keys(r).sort(), ['lastReadSeq', 'roomId']);
        assertId(r.roomId);
      }
      assert.ok(Array.isArray(data.blocks));
      for (const b of data.blocks) assertId(b, 'a blocked user id');
      assert.ok(!JSON.stringify(data).includes('bob in alice'), "bob's message is no part of alice's export");
      assertError(await api(url, 'GET', '/api/user/export'), 401, 'no token');
    } finally {
      closeAll(sa, sb);
    }
  });

  it('DELETE /api/user: a wrong password is 403 and changes nothing; the right one erases the account', async () => {
    const alice = await register(url);
    const bob = await register(url);
    const second = await login(url, alice.name);
    const room = await roomWith(url, bob, [alice]);
    const sa = await subscribed(url, alice, room.id);
    const sa2 = await subscribed(url, second, room.id, ['polling']);
    const sb = await subscribed(url, bob, room.id);
    try {
      const word = `erasable${Date.now().toString(36)}`;
      const a1 = await send(sa, room.id, `first ${word} of alice`);
      const b1 = await send(sb, room.id, `bob answers ${word}`);
      const a2 = await send(sa, room.id, `second ${word} of alice`);
      await waitFor(async () => (await search(url, bob.token, room.id, word)).length === 3, { message: 'search finds the three' });

      assertError(await api(url, 'DELETE', '/api/user', { token: alice.token, body: { password: 'not the password' } }), 403, 'wrong password');
      assertError(await api(url, 'DELETE', '/api/user', { body: { password: PASSWORD } }), 401, 'no token');
      assert.equal((await info(url, second.token)).name, alice.name, 'a refusal changes nothing');
      assert.ok(sa.connected && sa2.connected);
      assert.equal((await login(url, alice.name)).id, alice.id);
      const kept = await history(url, bob.token, room.id);
      assert.deepEqual(kept.map((m) => [m.seq, m.message]), [[a1.seq, `first ${word} of alice`], [b1.seq, `bob answers ${word}`], [a2.seq, `second ${word} of alice`]]);

      const res = await api(url, 'DELETE', '/api/user', { token: alice.token, body: { password: PASSWORD } });
      assert.equal(assertOk(res, 200, 'erasure'), null);
      for (const token of [alice.token, second.token]) {
        assertError(await api(url, 'GET', '/api/user/info', { token }), 401, 'tokens revoked');
      }
      await waitFor(() => !sa.connected && !sa2.connected, { message: 'sockets disconnected' });
      assertError(await api(url, 'POST', '/api/login', { body: { username: alice.name, password: PASSWORD } }), 401, 'no login');

      // Bob reads alice's messages as placeholders by "Deleted user", seq unchanged.
      await waitFor(async () => (await history(url, bob.token, room.id)).filter((m) => m.deleted).length === 2, { message: 'placeholders in history' });
      const after = await history(url, bob.token, room.id);
      assert.deepEqual(after.map((m) => m.seq), kept.map((m) => m.seq));
      for (const m of after.filter((x) => x.user.id === alice.id)) {
        assert.equal(m.deleted, true);
        assert.equal(m.message, '');
        assert.deepEqual(m.user, { id: alice.id, name: 'Deleted user', avatarImage: '' });
        assert.ok([a1.id, a2.id].includes(m.id));
      }
      const answer = after.find((m) => m.seq === b1.seq);
      assert.equal(answer.message, `bob answers ${word}`);
      assert.equal(answer.user.name, bob.name);
      assert.ok(!after.some((m) => m.user.id === alice.id && m.user.name !== 'Deleted user'));
      assert.deepEqual((await search(url, bob.token, room.id, word)).map((m) => m.seq), [b1.seq], 'search finds only bob\'s');
      assert.deepEqual(await search(url, bob.token, room.id, 'alice'), []);
      const list = assertOk(await api(url, 'GET', '/api/room/list', { token: bob.token }), 200).roomList;
      assert.equal(list.find((r) => r.id === room.id)?.member_count, 1, 'her membership ended');

      // The name is free again.
      const again = await register(url, { name: alice.name });
      assert.notEqual(again.id, alice.id);
      assert.equal((await login(url, alice.name)).id, again.id);
    } finally {
      closeAll(sa, sa2, sb);
    }
  });
});

describe('personal data in the stores', () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--send-rate-limit', '0'] });
  });
  after(async () => { await server?.cleanup(); });

  it('the log never holds a name or a text in clear; after the erasure nothing does; verify passes', async () => {
    const url = server.url;
    const name = uniqueName('Rawname');
    const text = `Rawtext ${uniqueName('t')} never in clear`;
    const alice = await register(url, { name });
    const bob = await register(url);
    const room = await roomWith(url, alice, [bob]);
    const sa = await subscribed(url, alice, room.id);
    try {
      const ack = await send(sa, room.id, text);
      await waitFor(async () => (await history(url, bob.token, room.id)).some((m) => m.seq === ack.seq && m.message === text));
      const avatar = assertOk(await patchInfo(url, alice.token, { avatarImage: dataUrl('image/png', PNG_1X1) }), 200).userInfo.avatar_image;

      const logFiles = (needle) => (DATABASE_URL
        ? tablesHolding(DATABASE_URL, needle).filter((t) => /\bevent\b/.test(t))
        : filesHolding(server.dataDir, needle).filter((f) => f.startsWith('events.db')));
      const anywhere = (needle) => (DATABASE_URL
        ? [...tablesHolding(DATABASE_URL, needle), ...filesHolding(server.dataDir, needle)]
        : filesHolding(server.dataDir, needle));
      // While the server runs (its write-ahead logs still full) and after it stopped.
      assert.ok(DATABASE_URL || readdirSync(server.dataDir).includes('events.db'), readdirSync(server.dataDir).join(' '));
      // Nor a join code (only its hash and a sealed copy) or a password hash (the credential
      // table holds those).
      for (const needle of [name, text, room.room_hash_id, '$argon2id']) {
        assert.deepEqual(logFiles(needle), [], `the log holds "${needle}"`);
      }
      // The read side does hold them while alice is a person (so the search below means something).
      assert.notDeepEqual(anywhere(text), [], 'the read tables hold the text before the erasure');

      assert.equal(assertOk(await api(url, 'DELETE', '/api/user', { token: alice.token, body: { password: PASSWORD } }), 200), null);
      await waitFor(async () => (await history(url, bob.token, room.id)).find((m) => m.seq === ack.seq)?.deleted === true);
      for (const needle of [name, text, avatar.replace('/media/', '')]) {
        assert.deepEqual(anywhere(needle), [], `after the erasure, "${needle}" is found in`);
      }
      await server.stop();
      for (const needle of [name, text]) {
        assert.deepEqual(anywhere(needle), [], `after the erasure and a stop, "${needle}" is found in`);
      }

      const store = ['--data-dir', server.dataDir, ...(DATABASE_URL ? ['--database-url', DATABASE_URL] : [])];
      const { stdout } = await run(BIN, ['verify', ...store], { env: { ...process.env, RUST_LOG: 'warn' }, maxBuffer: 64 << 20 });
      assert.match(stdout, /^ok: /, stdout);

      // A restart keeps her erased.
      await server.restart();
      const back = await history(server.url, bob.token, room.id);
      assert.equal(back.find((m) => m.seq === ack.seq)?.message, '');
      assertError(await api(server.url, 'POST', '/api/login', { body: { username: name, password: PASSWORD } }), 401);
    } finally {
      closeAll(sa);
    }
  });
});
