// Hostile input: SQL and markup in every text field, impersonation on every event, malformed
// and oversized frames, join-code guessing. Nothing may crash the server, change what it
// should not, or let anyone in.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  startServer, register, createRoom, joinRoom, connect, emitAck, messagesIn, send, fullHistory,
  waitFor, closeAll, api, delay, login,
} from './helpers.mjs';

const NASTY = [
  "'; drop table room_record; --",
  "\" or 1=1 --",
  "Robert'); DELETE FROM event; --",
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '%00%27%22',
  '{{7*7}} ${7*7}',
  '\u202e reversed',
];

test('SQL and markup in every text field are stored and returned as data', { timeout: 60_000 }, async () => {
  const server = await startServer();
  try {
    for (const [i, nasty] of NASTY.entries()) {
      const name = `${nasty.slice(0, 40)} ${i}`;
      const u = await register(server.url, { name, password: `${nasty} pw ${i}` });
      assert.equal(u.userInfo.name, name.trim());
      const again = await login(server.url, name.toUpperCase(), `${nasty} pw ${i}`);
      assert.equal(again.userInfo.name, name.trim());
      const room = await createRoom(server.url, u.token, { name: nasty.slice(0, 64), description: nasty });
      assert.equal(room.name, nasty.slice(0, 64).trim());
      assert.equal(room.description, nasty);
      const s = await connect(server.url, u.token, ['websocket']);
      await emitAck(s, 'join_all', { roomList: [room.id] });
      const ack = await send(s, room.id, nasty, nasty.slice(0, 100));
      assert.equal(ack.seq, 1);
      await waitFor(() => messagesIn(s, room.id).length === 1);
      assert.equal(messagesIn(s, room.id)[0].message, nasty);
      const hist = await fullHistory(server.url, u.token, room.id);
      assert.equal(hist[0].message, nasty);
      assert.equal(hist[0].id, nasty.slice(0, 100));
      const found = await api(server.url, 'GET', `/api/room/${room.id}/search?q=${encodeURIComponent(nasty.slice(0, 20))}`, { token: u.token });
      assert.equal(found.status, 200);
      const bad = await api(server.url, 'GET', `/api/room/${encodeURIComponent(nasty)}/messages`, { token: u.token });
      assert.equal(bad.status, 404);
      closeAll(s);
    }
    const health = await api(server.url, 'GET', '/healthz', {});
    assert.equal(health.status, 200);
  } finally {
    await server.cleanup();
  }
});

test('a payload userId that is not the caller\'s is refused on every event', { timeout: 60_000 }, async () => {
  const server = await startServer();
  try {
    const alice = await register(server.url);
    const mallory = await register(server.url);
    const room = await createRoom(server.url, alice.token);
    const s = await connect(server.url, mallory.token, ['websocket']);
    for (const [event, payload] of [
      ['join_all', { roomList: [room.id], userId: alice.id }],
      ['join_one_chat', { roomId: room.id, userId: alice.id }],
      ['user_send_message', { roomId: room.id, id: 'x', message: 'I am alice', type: 'input', userId: alice.id }],
      ['test_input', { userId: alice.id }],
      ['user_send_message', { roomId: room.id, id: 'y', message: 'number id', type: 'input', userId: 12345 }],
    ]) {
      const ack = await emitAck(s, event, payload);
      assert.equal(ack.ok, false, `${event}: ${JSON.stringify(ack)}`);
      assert.equal(ack.error.code, 'forbidden');
    }
    // Nor can a non-member read or post by guessing the room id.
    const post = await emitAck(s, 'user_send_message', { roomId: room.id, id: 'z', message: 'hi', type: 'input' });
    assert.equal(post.error.code, 'not_member');
    assert.equal((await api(server.url, 'GET', `/api/room/${room.id}/messages`, { token: mallory.token })).status, 403);
    closeAll(s);
  } finally {
    await server.cleanup();
  }
});

test('an unknown event is refused when an ack is asked for, ignored otherwise, and the socket goes on', { timeout: 60_000 }, async () => {
  const server = await startServer();
  try {
    const alice = await register(server.url);
    const room = await createRoom(server.url, alice.token);
    const s = await connect(server.url, alice.token, ['websocket']);
    const errors = [];
    s.on('chat_error', (e) => errors.push(e));
    for (const event of ['no_such_event', 'user_send_messages', 'JOIN_ALL', 'received']) {
      const ack = await emitAck(s, event, { roomId: room.id, id: 'u1', message: 'hi', type: 'input' });
      assert.equal(ack.ok, false, `${event}: ${JSON.stringify(ack)}`);
      assert.equal(ack.error.code, 'bad_request');
      assert.equal(ack.error.message, 'unknown event');
    }
    // Without an ack it is dropped: no chat_error comes before the answer to the next event
    // (a socket's events are handled in the order they arrive).
    s.emit('no_such_event', { roomId: room.id });
    const joined = await emitAck(s, 'join_all', { roomList: [room.id] });
    assert.equal(joined.ok, true, JSON.stringify(joined));
    const sent = await emitAck(s, 'user_send_message', { roomId: room.id, id: 'm1', message: 'still here', type: 'input' });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    assert.deepEqual(errors, []);
    closeAll(s);
  } finally {
    await server.cleanup();
  }
});

test('malformed and oversized frames close only their own connection', { timeout: 60_000 }, async () => {
  const server = await startServer();
  try {
    const u = await register(server.url);
    const room = await createRoom(server.url, u.token);
    const good = await connect(server.url, u.token, ['websocket']);
    await emitAck(good, 'join_all', { roomList: [room.id] });
    const frames = [
      'garbage',
      '4',
      '42/chatroom,["user_send_message"',
      '42/chatroom,{"not":"an array"}',
      '42/nowhere,["x"]',
      '40/chatroom,{"token":"' + 'A'.repeat(10_000) + '"}',
      `42/chatroom,1["user_send_message",{"roomId":"${room.id}","id":"big","message":"${'x'.repeat(200_000)}"}]`,
      Buffer.from([0xff, 0xfe, 0x00, 0x01]),
    ];
    for (const frame of frames) {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
      ws.on('error', () => {});
      await new Promise((resolve) => ws.once('message', resolve));
      ws.send(`40/chatroom,${JSON.stringify({ token: u.token })}`);
      await delay(50);
      ws.send(frame);
      await delay(100);
      ws.terminate();
    }
    // Oversized HTTP bodies are refused before being read whole.
    const huge = await api(server.url, 'POST', '/api/room/create', { token: u.token, raw: JSON.stringify({ name: 'x', avatarImage: `data:image/png;base64,${'A'.repeat(3 * 1024 * 1024)}` }) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.status, 413);
    const ack = await send(good, room.id, 'still fine');
    assert.equal(ack.seq, 1);
    closeAll(good);
  } finally {
    await server.cleanup();
  }
});

test('guessing join codes finds nothing and is slowed down', { timeout: 60_000 }, async () => {
  const server = await startServer({ args: ['--join-rate-limit', '2'] });
  try {
    const owner = await register(server.url);
    await createRoom(server.url, owner.token);
    const guesser = await register(server.url);
    let notFound = 0;
    let limited = 0;
    for (let i = 0; i < 120; i += 1) {
      const code = Array.from({ length: 32 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
      const r = await api(server.url, 'POST', '/api/room/join', { token: guesser.token, body: { roomIdHash: code } });
      if (r.status === 404) notFound += 1;
      else if (r.status === 429) limited += 1;
      else assert.fail(`unexpected ${r.status}`);
    }
    assert.ok(limited > 0, 'guessing is rate-limited');
    assert.ok(notFound > 0);
    const rooms = await api(server.url, 'GET', '/api/room/list', { token: guesser.token });
    assert.deepEqual(rooms.body.data.roomList, []);
  } finally {
    await server.cleanup();
  }
});
