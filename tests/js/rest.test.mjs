// REST contract of chatroom (docs/protocol.md): register/login/logout/user info, login throttle,
// rooms (create, avatar upload, list, join by code), message history (validation, paging,
// membership) and /media path traversal. Every error is checked for the envelope
// {status: <HTTP code>, message, data: null}. Runs against the real binary (see helpers.mjs).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  startServer, api, rawGet, assertError, assertOk, uniqueName, register, registerMany, login,
  createRoom, joinRoom, history, connect, sendMany, closeAll, assertUserInfo, assertRoom,
  assertMessage, assertSeqRange, assertKeys, historyCaughtUp, PNG_1X1, GIF_1X1, dataUrl, PASSWORD, joinOne,
} from './helpers.mjs';

let server;
let url;

before(async () => {
  server = await startServer({ args: ['--send-rate-limit', '0'] });
  url = server.url;
});

after(async () => {
  await server?.cleanup();
});

describe('register', () => {
  it('creates a user: 201, token and userInfo', async () => {
    const name = uniqueName('Reg');
    const res = await api(url, 'POST', '/api/register', { body: { username: name, password: PASSWORD } });
    const data = assertOk(res, 201, 'register');
    assertKeys(data, ['token', 'userInfo'], 'register data');
    assert.equal(typeof data.token, 'string');
    assert.ok(data.token.length >= 22, `token looks too short for 128 random bits: ${data.token}`);
    assertUserInfo(data.userInfo, name);
    assert.equal(data.userInfo.avatar_image, '');
    // the token works at once
    const info = assertOk(await api(url, 'GET', '/api/user/info', { token: data.token }), 200, 'user/info');
    assert.deepEqual(info.userInfo, data.userInfo);
  });

  it('gives every user a different id and token', async () => {
    const [a, b] = await registerMany(url, 2);
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.token, b.token);
  });

  it('refuses a duplicate name ignoring case with 409', async () => {
    const name = uniqueName('Dup');
    await register(url, { name });
    for (const variant of [name, name.toUpperCase(), name.toLowerCase()]) {
      const res = await api(url, 'POST', '/api/register', { body: { username: variant, password: PASSWORD } });
      assertError(res, 409, `duplicate ${variant}`);
    }
  });

  it('lets exactly one of concurrent registrations of one name (any case) win', async () => {
    const name = uniqueName('Race');
    const variants = [name, name.toUpperCase(), name.toLowerCase(), name, name.toUpperCase()];
    const results = await Promise.all(variants.map((username) => api(url, 'POST', '/api/register', { body: { username, password: PASSWORD } })));
    assert.equal(results.filter((r) => r.status === 201).length, 1, results.map((r) => r.status).join(','));
    for (const r of results.filter((x) => x.status !== 201)) assertError(r, 409, 'losing registration');
  });

  it('compares names ignoring case beyond ASCII', async () => {
    const base = uniqueName('x').toLowerCase();
    const name = `Élan_${base}`;
    await register(url, { name });
    assertError(await api(url, 'POST', '/api/register', { body: { username: `éLAN_${base.toUpperCase()}`, password: PASSWORD } }), 409, 'same name, other case');
    const res = await api(url, 'POST', '/api/login', { body: { username: `ÉLAN_${base.toUpperCase()}`, password: PASSWORD } });
    assert.equal(assertOk(res, 200, 'login with other case').userInfo.name, name);
  });

  it('accepts a 64-character name counted in characters, not bytes', async () => {
    const base = uniqueName('L');
    const name = base + 'ü'.repeat(64 - base.length);
    assert.equal([...name].length, 64);
    const res = await api(url, 'POST', '/api/register', { body: { username: name, password: PASSWORD } });
    const data = assertOk(res, 201, '64-char name');
    assert.equal(data.userInfo.name, name);
  });

  it('refuses bad user names with 400', async () => {
    const bad = {
      empty: '',
      spaces: '    ',
      tooLong: 'x'.repeat(65),
      nul: `a\u0000${uniqueName()}`,
      newline: `a\n${uniqueName()}`,
      tab: `a\t${uniqueName()}`,
      del: `a\u007f${uniqueName()}`,
      escape: `a\u001b[31m${uniqueName()}`,
      c1: `a\u0085${uniqueName()}`,
    };
    for (const [what, username] of Object.entries(bad)) {
      const res = await api(url, 'POST', '/api/register', { body: { username, password: PASSWORD } });
      assertError(res, 400, `username ${what}`);
    }
  });

  it('checks password length: 8..128', async () => {
    for (const [what, password] of Object.entries({ empty: '', seven: '1234567', long129: 'p'.repeat(129) })) {
      const res = await api(url, 'POST', '/api/register', { body: { username: uniqueName(), password } });
      assertError(res, 400, `password ${what}`);
    }
    for (const password of ['12345678', 'p'.repeat(128)]) {
      const name = uniqueName();
      const res = await api(url, 'POST', '/api/register', { body: { username: name, password } });
      assertOk(res, 201, `password of ${password.length}`);
      await login(url, name, password);
    }
  });

  it('keeps the password exactly as typed (no trimming)', async () => {
    const password = '  spaced password  ';
    const u = await register(url, { name: uniqueName('Pw'), password });
    assertError(await api(url, 'POST', '/api/login', { body: { username: u.name, password: password.trim() } }), 401, 'trimmed password');
    await login(url, u.name, password);
  });

  it('answers malformed JSON and wrong types with 400, never 500', async () => {
    const raws = ['{', 'not json', '', 'null', '[]', '"str"', '42', '{"username": "x", "password": }'];
    for (const raw of raws) {
      for (const p of ['/api/register', '/api/login']) {
        const res = await api(url, 'POST', p, { raw });
        assertError(res, 400, `${p} raw ${JSON.stringify(raw)}`);
      }
    }
    const bodies = [
      {},
      { username: uniqueName() },
      { password: PASSWORD },
      { username: 123, password: PASSWORD },
      { username: uniqueName(), password: 12345678 },
      { username: [uniqueName()], password: PASSWORD },
      { username: null, password: PASSWORD },
      { username: { a: 1 }, password: PASSWORD },
      { username: uniqueName(), password: [PASSWORD] },
    ];
    for (const body of bodies) {
      for (const p of ['/api/register', '/api/login']) {
        const res = await api(url, 'POST', p, { body });
        assertError(res, 400, `${p} body ${JSON.stringify(body)}`);
      }
    }
  });

  it('answers a JSON body without a JSON content type with a JSON error envelope (4xx)', async () => {
    const res = await api(url, 'POST', '/api/register', {
      raw: JSON.stringify({ username: uniqueName(), password: PASSWORD }),
      headers: { 'content-type': 'text/plain' },
    });
    if (res.status < 300) return; // a lenient server may accept it
    assert.ok(res.status >= 400 && res.status < 500, `got ${res.status}`);
    assertError(res, res.status, 'text/plain body');
  });
});

describe('password storage', () => {
  it('never writes a password in clear to the data dir or the log; stores argon2id hashes', async () => {
    const password = `Pw-${randomBytes(12).toString('hex')}`;
    const u = await register(url, { name: uniqueName('Hash'), password });
    await login(url, u.name, password);
    await api(url, 'POST', '/api/login', { body: { username: u.name, password: `${password}-wrong` } });
    const files = [];
    const walk = (dir) => {
      for (const e of readdirSync(dir)) {
        const p = path.join(dir, e);
        if (statSync(p).isDirectory()) walk(p); else files.push(p);
      }
    };
    walk(server.dataDir);
    let sawArgon = false;
    for (const f of files) {
      const bytes = readFileSync(f);
      assert.ok(!bytes.includes(Buffer.from(password)), `${f} contains the password in clear`);
      if (bytes.includes(Buffer.from('$argon2id$'))) sawArgon = true;
    }
    assert.ok(!server.stderr().includes(password), 'the log contains the password');
    const hasDb = files.some((f) => /\.(db|sqlite3?)(-wal)?$/.test(f) || readFileSync(f).subarray(0, 15).toString() === 'SQLite format 3');
    if (hasDb) assert.ok(sawArgon, 'an argon2id hash is stored in the data dir');
  });
});

describe('login', () => {
  let user;
  before(async () => {
    user = await register(url, { name: uniqueName('LogIn') });
  });

  it('matches the name ignoring case and returns it as registered', async () => {
    for (const typed of [user.name, user.name.toUpperCase(), user.name.toLowerCase()]) {
      const res = await api(url, 'POST', '/api/login', { body: { username: typed, password: PASSWORD } });
      const data = assertOk(res, 200, `login as ${typed}`);
      assertKeys(data, ['token', 'userInfo'], 'login data');
      assertUserInfo(data.userInfo, user.name);
      assert.equal(data.userInfo.userId, user.id);
      assert.notEqual(data.token, user.token, 'each login issues a fresh token');
      const info = assertOk(await api(url, 'GET', '/api/user/info', { token: data.token }), 200);
      assert.equal(info.userInfo.name, user.name);
    }
  });

  it('refuses a wrong password with 401 and an unknown user with 401/404', async () => {
    // a separate user so that the throttle of `user` is not touched
    const other = await register(url, { name: uniqueName('Wrong') });
    assertError(await api(url, 'POST', '/api/login', { body: { username: other.name, password: 'wrong password' } }), 401, 'wrong password');
    assertError(await api(url, 'POST', '/api/login', { body: { username: uniqueName('nobody'), password: PASSWORD } }), [401, 404], 'unknown user');
  });

  it('throttles a user name after 5 failures (429 even with the right password), not other users', async () => {
    const [victim, bystander] = await registerMany(url, 2, 'Thr');
    for (let i = 0; i < 5; i += 1) {
      const typed = i % 2 ? victim.name.toUpperCase() : victim.name;
      assertError(await api(url, 'POST', '/api/login', { body: { username: typed, password: `bad password ${i}` } }), 401, `failure ${i + 1}`);
    }
    assertError(await api(url, 'POST', '/api/login', { body: { username: victim.name, password: PASSWORD } }), 429, 'right password after 5 failures');
    assertError(await api(url, 'POST', '/api/login', { body: { username: victim.name.toLowerCase(), password: PASSWORD } }), 429, 'other case after 5 failures');
    assertError(await api(url, 'POST', '/api/login', { body: { username: victim.name, password: 'bad again' } }), 429, 'wrong password after 5 failures');
    // same client address, another user: unaffected
    await login(url, bystander.name);
    // the victim's existing token still works
    assertOk(await api(url, 'GET', '/api/user/info', { token: victim.token }), 200);
  });

  it('keeps the throttle under concurrent attempts (no more than 5 passwords tried)', async () => {
    const u = await register(url, { name: uniqueName('Par') });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => api(url, 'POST', '/api/login', { body: { username: u.name, password: `guess number ${i}` } })));
    const counts = {};
    for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
    for (const r of results) assertError(r, [401, 429], 'concurrent failure');
    assert.ok((counts[401] ?? 0) <= 5, `20 concurrent wrong passwords: ${JSON.stringify(counts)}; more than 5 were checked`);
    assertError(await api(url, 'POST', '/api/login', { body: { username: u.name, password: PASSWORD } }), 429, 'right password afterwards');
  });

  it('resets the failure count on a successful login', async () => {
    const u = await register(url, { name: uniqueName('Reset') });
    for (let round = 0; round < 2; round += 1) {
      for (let i = 0; i < 4; i += 1) {
        assertError(await api(url, 'POST', '/api/login', { body: { username: u.name, password: 'nope nope' } }), 401);
      }
      await login(url, u.name);
    }
  });
});

describe('tokens, user info, logout', () => {
  let user;
  before(async () => {
    user = await register(url, { name: uniqueName('Tok') });
  });

  it('user/info returns the userInfo', async () => {
    const data = assertOk(await api(url, 'GET', '/api/user/info', { token: user.token }), 200);
    assertKeys(data, ['userInfo'], 'user/info data');
    assertUserInfo(data.userInfo, user.name);
    assert.equal(data.userInfo.userId, user.id);
  });

  it('refuses a missing or bad token with 401 on every authenticated call', async () => {
    const calls = [
      ['GET', '/api/user/info'],
      ['POST', '/api/logout'],
      ['POST', '/api/room/create', { name: 'r', description: '', avatarImage: '' }],
      ['GET', '/api/room/list'],
      ['POST', '/api/room/join', { roomIdHash: '0'.repeat(32) }],
      ['GET', `/api/room/${randomUUID()}/messages`],
    ];
    const auths = [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `Bearer ${randomBytes(16).toString('hex')}`,
      `Bearer ${user.token}x`,
      user.token, // no scheme
      `Basic ${Buffer.from(`${user.name}:${PASSWORD}`).toString('base64')}`,
    ];
    for (const [method, p, body] of calls) {
      for (const authHeader of auths) {
        const res = await api(url, method, p, { authHeader, body });
        assertError(res, 401, `${method} ${p} with ${JSON.stringify(authHeader)}`);
      }
    }
  });

  it('logout revokes only that token', async () => {
    const second = await login(url, user.name);
    const third = await login(url, user.name);
    const res = await api(url, 'POST', '/api/logout', { token: second.token });
    const data = assertOk(res, 200, 'logout');
    assert.equal(data, null);
    assertError(await api(url, 'GET', '/api/user/info', { token: second.token }), 401, 'after logout');
    assertError(await api(url, 'GET', '/api/room/list', { token: second.token }), 401, 'after logout');
    assertError(await api(url, 'POST', '/api/logout', { token: second.token }), 401, 'second logout');
    assertOk(await api(url, 'GET', '/api/user/info', { token: third.token }), 200, 'other token of the same user');
    assertOk(await api(url, 'GET', '/api/user/info', { token: user.token }), 200, 'register token of the same user');
  });
});

describe('rooms', () => {
  let alice;
  let bob;
  let carol;
  before(async () => {
    [alice, bob, carol] = await registerMany(url, 3, 'Room');
  });

  it('create: 201 with the room shape, owner and member_count 1', async () => {
    const name = 'Lounge ✨';
    const res = await api(url, 'POST', '/api/room/create', { token: alice.token, body: { name, description: 'for testing', avatarImage: '' } });
    const data = assertOk(res, 201, 'room/create');
    assertKeys(data, ['room'], 'room/create data');
    const room = data.room;
    assertRoom(room);
    assert.equal(room.name, name);
    assert.equal(room.description, 'for testing');
    assert.equal(room.owner, alice.id);
    assert.equal(room.avatar_image, '');
    assert.equal(room.member_count, 1);
    assert.ok(!room.room_hash_id.includes(room.id.replace(/-/g, '')), 'join code must not be derived from the id');
  });

  it('gives every room a distinct, unrelated join code', async () => {
    const rooms = await Promise.all([1, 2, 3, 4].map(() => createRoom(url, alice.token)));
    const codes = new Set(rooms.map((r) => r.room_hash_id));
    assert.equal(codes.size, rooms.length);
    assert.equal(new Set(rooms.map((r) => r.id)).size, rooms.length);
    for (const r of rooms) assert.notEqual(r.room_hash_id, r.id.replace(/-/g, ''));
  });

  it('checks name (1..64) and description (<=256) lengths', async () => {
    const ok = [
      { name: 'n'.repeat(64), description: 'd'.repeat(256) },
      { name: '房'.repeat(64), description: '描'.repeat(256) },
      { name: 'x', description: '' },
    ];
    for (const body of ok) {
      const room = assertOk(await api(url, 'POST', '/api/room/create', { token: alice.token, body: { ...body, avatarImage: '' } }), 201, 'valid room').room;
      assert.equal(room.name, body.name);
      assert.equal(room.description, body.description);
    }
    const bad = [
      { name: '', description: '' },
      { name: '   ', description: '' },
      { name: 'n'.repeat(65), description: '' },
      { name: '房'.repeat(65), description: '' },
      { name: 'ok', description: 'd'.repeat(257) },
    ];
    for (const body of bad) {
      assertError(await api(url, 'POST', '/api/room/create', { token: alice.token, body: { ...body, avatarImage: '' } }), 400, `room ${JSON.stringify(body).slice(0, 60)}`);
    }
  });

  it('answers malformed room bodies with 400', async () => {
    for (const raw of ['{', '', 'null', '[]']) {
      assertError(await api(url, 'POST', '/api/room/create', { token: alice.token, raw }), 400, `raw ${raw}`);
      assertError(await api(url, 'POST', '/api/room/join', { token: alice.token, raw }), 400, `join raw ${raw}`);
    }
    for (const body of [
      { name: 5, description: '', avatarImage: '' },
      { name: 'x', description: 5, avatarImage: '' },
      { name: 'x', description: '', avatarImage: 5 },
      { name: ['x'], description: '', avatarImage: '' },
    ]) {
      assertError(await api(url, 'POST', '/api/room/create', { token: alice.token, body }), 400, JSON.stringify(body));
    }
    for (const body of [{}, { roomIdHash: 5 }, { roomIdHash: null }, { roomIdHash: ['a'] }]) {
      assertError(await api(url, 'POST', '/api/room/join', { token: alice.token, body }), 400, `join ${JSON.stringify(body)}`);
    }
  });

  it('stores a PNG avatar under /media and serves the same bytes', async () => {
    const room = await createRoom(url, alice.token, { avatarImage: dataUrl('image/png', PNG_1X1) });
    assert.match(room.avatar_image, /^\/media\/[^/]+$/);
    const res = await fetch(url + room.avatar_image);
    assert.equal(res.status, 200);
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.ok(bytes.equals(PNG_1X1), 'served bytes equal the upload');
    assert.match(res.headers.get('content-type') ?? '', /^image\/png/);
    // listed with the same avatar
    const list = assertOk(await api(url, 'GET', '/api/room/list', { token: alice.token }), 200).roomList;
    assert.equal(list.find((r) => r.id === room.id)?.avatar_image, room.avatar_image);
  });

  it('decides the image type from the bytes, not from the URL text', async () => {
    const room = await createRoom(url, alice.token, { avatarImage: dataUrl('image/jpeg', PNG_1X1) });
    assert.match(room.avatar_image, /^\/media\/[^/]+$/);
    const res = await fetch(url + room.avatar_image);
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(PNG_1X1));
    assert.doesNotMatch(res.headers.get('content-type') ?? '', /jpeg/, 'served as what it is, not what the URL said');
    const gif = await createRoom(url, alice.token, { avatarImage: dataUrl('image/gif', GIF_1X1) });
    assert.match(gif.avatar_image, /^\/media\/[^/]+$/);
    const g = await fetch(url + gif.avatar_image);
    assert.equal(g.status, 200);
    assert.ok(Buffer.from(await g.arrayBuffer()).equals(GIF_1X1));
  });

  it('refuses avatars that are not images (400) or too large (413/400)', async () => {
    const bad = {
      textAsPng: dataUrl('image/png', Buffer.from('hello, I am not a picture')),
      htmlAsPng: dataUrl('image/png', Buffer.from('<html><script>alert(1)</script></html>')),
      svg: dataUrl('image/svg+xml', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')),
      notDataUrl: 'http://example.com/a.png',
      path: '/etc/passwd',
      badBase64: 'data:image/png;base64,@@@not-base64@@@',
      noBase64Marker: `data:image/png,${PNG_1X1.toString('base64')}`,
      textType: dataUrl('text/plain', Buffer.from('hello')),
    };
    for (const [what, avatarImage] of Object.entries(bad)) {
      assertError(await api(url, 'POST', '/api/room/create', { token: alice.token, body: { name: 'r', description: '', avatarImage } }), 400, `avatar ${what}`);
    }
    const big = Buffer.alloc(1024 * 1024 + 1, 0);
    PNG_1X1.copy(big);
    const res = await api(url, 'POST', '/api/room/create', { token: alice.token, body: { name: 'r', description: '', avatarImage: dataUrl('image/png', big) } });
    assertError(res, [413, 400], 'avatar over 1 MiB');
  });

  it('lists created and joined rooms at once; join by code twice counts once', async () => {
    const room = await createRoom(url, alice.token);
    const aliceList = assertOk(await api(url, 'GET', '/api/room/list', { token: alice.token }), 200);
    assert.ok(Array.isArray(aliceList.roomList), 'roomList is an array');
    const mine = aliceList.roomList.find((r) => r.id === room.id);
    assert.ok(mine, 'created room is listed immediately');
    assertRoom(mine);
    assert.equal(mine.member_count, 1);

    const bobBefore = assertOk(await api(url, 'GET', '/api/room/list', { token: bob.token }), 200).roomList;
    assert.ok(!bobBefore.some((r) => r.id === room.id), 'not listed before joining');

    const joinRes = await api(url, 'POST', '/api/room/join', { token: bob.token, body: { roomIdHash: room.room_hash_id } });
    const joined = assertOk(joinRes, 200, 'join').room;
    assertRoom(joined);
    assert.equal(joined.id, room.id);
    assert.equal(joined.owner, alice.id);
    assert.equal(joined.member_count, 2);

    const bobList = assertOk(await api(url, 'GET', '/api/room/list', { token: bob.token }), 200).roomList;
    assert.equal(bobList.find((r) => r.id === room.id)?.member_count, 2, 'joined room listed immediately');

    const again = assertOk(await api(url, 'POST', '/api/room/join', { token: bob.token, body: { roomIdHash: room.room_hash_id } }), 200, 'join twice').room;
    assert.equal(again.member_count, 2, 'joining twice does not count twice');
    const owner = assertOk(await api(url, 'POST', '/api/room/join', { token: alice.token, body: { roomIdHash: room.room_hash_id } }), 200, 'owner joins own room').room;
    assert.equal(owner.member_count, 2);

    const list2 = assertOk(await api(url, 'GET', '/api/room/list', { token: bob.token }), 200).roomList;
    assert.equal(list2.filter((r) => r.id === room.id).length, 1, 'listed once');
    const aliceAfter = assertOk(await api(url, 'GET', '/api/room/list', { token: alice.token }), 200).roomList;
    assert.equal(aliceAfter.find((r) => r.id === room.id)?.member_count, 2);

    const carolList = assertOk(await api(url, 'GET', '/api/room/list', { token: carol.token }), 200).roomList;
    assert.ok(!carolList.some((r) => r.id === room.id), 'others do not see the room');
  });

  it('counts concurrent joins (also the same user twice) exactly and keeps serving', async () => {
    // own server: a failure here must not spoil the other tests
    const own = await startServer();
    try {
      const [owner, ...joiners] = await registerMany(own.url, 6, 'Cj');
      const room = await createRoom(own.url, owner.token);
      const results = await Promise.all(joiners.flatMap((u) => [u, u]).map((x) => api(own.url, 'POST', '/api/room/join', { token: x.token, body: { roomIdHash: room.room_hash_id } })));
      for (const r of results) assertOk(r, 200, 'concurrent join');
      const errors = () => own.stderr().split('\n').filter((l) => /ERROR|panick/.test(l)).slice(-2).join('\n');
      for (const u of joiners) {
        const t0 = Date.now();
        const mine = assertOk(await api(own.url, 'GET', '/api/room/list', { token: u.token }), 200).roomList.find((r) => r.id === room.id);
        const took = Date.now() - t0;
        assert.ok(mine, `room/list of a joiner lacks the room it joined (answered after ${took} ms); server log:\n${errors()}`);
        assert.equal(mine.member_count, joiners.length + 1, `member_count counts each member once; server log:\n${errors()}`);
        assert.ok(took < 2_000, `room/list took ${took} ms`);
      }
      // the server still reads its own writes afterwards
      const later = await createRoom(own.url, owner.token);
      const t0 = Date.now();
      const list = assertOk(await api(own.url, 'GET', '/api/room/list', { token: owner.token }), 200).roomList;
      assert.ok(list.some((r) => r.id === later.id), 'a room created afterwards is listed');
      assert.ok(Date.now() - t0 < 2_000, `room/list took ${Date.now() - t0} ms`);
    } finally {
      await own.cleanup();
    }
  });

  it('stores room names and descriptions exactly as sent (data, not markup)', async () => {
    const name = '<b>bold</b> & "q"';
    const description = '<script>alert(1)</script>\n  spaced  ';
    const room = await createRoom(url, alice.token, { name, description });
    assert.equal(room.name, name);
    assert.equal(room.description, description);
    const listed = assertOk(await api(url, 'GET', '/api/room/list', { token: alice.token }), 200).roomList.find((r) => r.id === room.id);
    assert.equal(listed.name, name);
    assert.equal(listed.description, description);
  });

  it('answers an unknown join code with 404', async () => {
    assertError(await api(url, 'POST', '/api/room/join', { token: bob.token, body: { roomIdHash: randomBytes(16).toString('hex') } }), 404, 'unknown code');
    assertError(await api(url, 'POST', '/api/room/join', { token: bob.token, body: { roomIdHash: 'nope' } }), [400, 404], 'malformed code');
    assertError(await api(url, 'POST', '/api/room/join', { token: bob.token, body: { roomIdHash: '' } }), [400, 404], 'empty code');
  });
});

describe('every /api response is the JSON envelope', () => {
  it('answers unknown calls and wrong methods with a JSON error', async () => {
    const u = await register(url, { name: uniqueName('Env') });
    assertError(await api(url, 'GET', '/api/nope', { token: u.token }), 404, 'unknown call');
    assertError(await api(url, 'POST', '/api/room/nope/nope', { token: u.token, body: {} }), 404, 'unknown call');
    // `/api/room/{roomId}` is a resource (PATCH changes a room's settings): other methods are 405.
    for (const [method, p] of [['GET', '/api/register'], ['GET', '/api/login'], ['DELETE', '/api/room/list'], ['PUT', '/api/room/create'], ['GET', '/api/logout'], ['POST', '/api/room/nope']]) {
      const res = await api(url, method, p, { token: u.token });
      assert.ok([404, 405].includes(res.status), `${method} ${p} -> ${res.status}`);
      assertError(res, res.status, `${method} ${p}`);
    }
  });
});

describe('message history', () => {
  let alice;
  let bob;
  let carol;
  let room;
  const TOTAL = 205;
  let acks;

  before(async () => {
    [alice, bob, carol] = await registerMany(url, 3, 'Hist');
    room = await createRoom(url, alice.token);
    await joinRoom(url, bob.token, room.room_hash_id);
    const s = await connect(url, alice.token, ['websocket']);
    try {
      await joinOne(s, room.id);
      acks = await sendMany(s, room.id, TOTAL, 'hist');
    } finally {
      closeAll(s);
    }
    assertSeqRange(acks.map((a) => a.seq), 1, TOTAL, 'acked seqs');
    await historyCaughtUp(url, bob.token, room.id, TOTAL);
  });

  it('returns the newest 50 by default, oldest first, in the message shape', async () => {
    const msgs = await history(url, bob.token, room.id);
    assert.equal(msgs.length, 50);
    assertSeqRange(msgs.map((m) => m.seq), TOTAL - 49, TOTAL);
    for (const m of msgs) {
      assertMessage(m, { roomId: room.id, user: alice, text: `hist ${m.seq - 1}`, id: acks[m.seq - 1].id });
      assert.equal(m.time, acks[m.seq - 1].time, 'history time equals the ack time');
    }
  });

  it('honours limit and caps it at 200', async () => {
    assertSeqRange((await history(url, bob.token, room.id, '?limit=1')).map((m) => m.seq), TOTAL, TOTAL);
    assertSeqRange((await history(url, bob.token, room.id, '?limit=200')).map((m) => m.seq), TOTAL - 199, TOTAL);
    assertSeqRange((await history(url, bob.token, room.id, '?limit=500')).map((m) => m.seq), TOTAL - 199, TOTAL, 'limit 500 capped at 200');
  });

  it('pages backwards with before', async () => {
    assertSeqRange((await history(url, bob.token, room.id, '?before=10&limit=3')).map((m) => m.seq), 7, 9);
    assertSeqRange((await history(url, bob.token, room.id, '?before=4')).map((m) => m.seq), 1, 3);
    assert.deepEqual(await history(url, bob.token, room.id, '?before=1'), []);
    assertSeqRange((await history(url, bob.token, room.id, `?before=${TOTAL + 100}&limit=2`)).map((m) => m.seq), TOTAL - 1, TOTAL);
    // walk the whole room
    const seen = [];
    let before = null;
    for (;;) {
      const page = await history(url, bob.token, room.id, before ? `?limit=37&before=${before}` : '?limit=37');
      if (page.length === 0) break;
      seen.unshift(...page.map((m) => m.seq));
      before = page[0].seq;
    }
    assertSeqRange(seen, 1, TOTAL, 'paged walk');
  });

  it('refuses bad limit/before with 400', async () => {
    const bad = ['0', '-1', '1.5', 'abc', '', '0x10', '-0.5', 'NaN'];
    for (const v of bad) {
      for (const key of ['limit', 'before']) {
        const res = await api(url, 'GET', `/api/room/${room.id}/messages?${key}=${encodeURIComponent(v)}`, { token: bob.token });
        assertError(res, 400, `${key}=${JSON.stringify(v)}`);
      }
    }
  });

  it('is for members only: 403 for a non-member, 404 for an unknown room, 401 without token', async () => {
    assertError(await api(url, 'GET', `/api/room/${room.id}/messages`, { token: carol.token }), 403, 'non-member');
    assertError(await api(url, 'GET', `/api/room/${room.id}/messages?limit=5`, { token: carol.token }), 403, 'non-member with limit');
    assertError(await api(url, 'GET', `/api/room/${randomUUID()}/messages`, { token: carol.token }), 404, 'unknown room');
    assertError(await api(url, 'GET', '/api/room/not-a-room/messages', { token: carol.token }), [400, 404], 'malformed room id');
    assertError(await api(url, 'GET', `/api/room/${room.id}/messages`), 401, 'no token');
  });

  it('an empty room has an empty history', async () => {
    const empty = await createRoom(url, carol.token);
    assert.deepEqual(await history(url, carol.token, empty.id), []);
  });
});

describe('/media', () => {
  function filesUnder(dir) {
    const out = [];
    for (const entry of readdirSync(dir)) {
      const p = path.join(dir, entry);
      const st = statSync(p);
      if (st.isDirectory()) out.push(...filesUnder(p));
      else out.push(p);
    }
    return out;
  }

  it('never serves files outside the media directory', async () => {
    const u = await register(url, { name: uniqueName('Media') });
    const room = await createRoom(url, u.token, { avatarImage: dataUrl('image/png', PNG_1X1) });
    const mediaName = room.avatar_image.slice('/media/'.length);
    const files = filesUnder(server.dataDir);
    const mediaFile = files.find((f) => path.basename(f) === mediaName);
    const mediaDir = mediaFile ? path.dirname(mediaFile) : null;
    const secrets = files
      .filter((f) => !mediaDir || path.dirname(f) !== mediaDir)
      .map((f) => ({ f, bytes: readFileSync(f) }))
      .filter(({ bytes }) => bytes.length > 0);
    const rels = files.map((f) => path.relative(mediaDir ?? server.dataDir, f)).filter((r) => r.startsWith('..'));
    const probes = [
      '/media/../etc/passwd',
      '/media/../../../../../../etc/passwd',
      '/media/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd',
      '/media/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/media/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/media/%252e%252e/%252e%252e/etc/passwd',
      '/media/..%5c..%5c..%5c..%5c..%5c..%5cetc%5cpasswd',
      '/media/....//....//....//etc/passwd',
      '/media//etc/passwd',
      '/media/%2fetc%2fpasswd',
      '/media/',
      '/media/.',
      '/media/..',
      '/media/%2e%2e',
      '/media/../data',
      '/media/%2e%2e/data',
      `/media/${encodeURIComponent(server.dataDir)}`,
    ];
    for (const rel of rels) {
      const segs = rel.split(path.sep);
      probes.push(`/media/${segs.join('/')}`);
      probes.push(`/media/${segs.map((s) => (s === '..' ? '%2e%2e' : encodeURIComponent(s))).join('/')}`);
      probes.push(`/media/${segs.map((s) => (s === '..' ? '..' : encodeURIComponent(s))).join('%2f')}`);
    }
    for (const p of probes) {
      const res = await rawGet(url, p);
      assert.ok(res.status < 500, `${p} -> ${res.status}`);
      const text = res.bytes.toString('latin1');
      assert.ok(!text.includes('root:x:0:0') && !/root:.*:0:0:/.test(text), `${p} leaked /etc/passwd`);
      assert.ok(!text.startsWith('SQLite format 3'), `${p} leaked a database`);
      for (const { f, bytes } of secrets) {
        assert.ok(!(res.bytes.length === bytes.length && res.bytes.equals(bytes)), `${p} leaked ${f}`);
        if (bytes.length >= 64) assert.ok(!res.bytes.includes(bytes.subarray(0, 64)), `${p} leaked part of ${f}`);
      }
      if (res.status === 200 && (res.headers['content-type'] ?? '').includes('html')) {
        for (const f of files) assert.ok(!text.includes(path.basename(f)) || path.basename(f).length < 6, `${p} lists directory contents (${path.basename(f)})`);
      }
    }
    // the legitimate file still works, an unknown one is 404
    assert.equal((await rawGet(url, room.avatar_image)).status, 200);
    assert.equal((await rawGet(url, `/media/${randomBytes(8).toString('hex')}.png`)).status, 404);
  });
});
