// Helpers for the suites of read state, presence and typing (docs/protocol.md part 2, "Read
// state, presence, typing"): mark_read over a socket and REST, each asserted to answer the
// contract's shape, and the live events a recording socket (part2.mjs `watcher`) got.

import assert from 'node:assert/strict';
import { api, assertOk, emitAck } from './helpers.mjs';
import { roomList } from './part2.mjs';

const r = (roomId) => `/api/room/${encodeURIComponent(roomId)}`;

/** `POST /api/room/{roomId}/read`, unchecked. */
export const restRead = (url, token, roomId, body) => api(url, 'POST', `${r(roomId)}/read`, { token, body });

/** `mark_read` over a socket, acked `{"ok": true, "lastReadSeq"}`; returns the marker. */
export async function markRead(socket, roomId, seq) {
  const ack = await emitAck(socket, 'mark_read', { roomId, seq });
  assert.equal(ack?.ok, true, `mark_read ${roomId} ${seq}: ${JSON.stringify(ack)}`);
  assert.ok(Number.isInteger(ack.lastReadSeq), `ack.lastReadSeq: ${JSON.stringify(ack)}`);
  return ack.lastReadSeq;
}

/** `POST /api/room/{roomId}/read`, answered 200 `{"lastReadSeq"}`; returns the marker. */
export async function markReadRest(url, token, roomId, seq) {
  const data = assertOk(await restRead(url, token, roomId, { seq }), 200, `read ${seq}`);
  assert.deepEqual(Object.keys(data), ['lastReadSeq'], `read data: ${JSON.stringify(data)}`);
  return data.lastReadSeq;
}

/** The room as `token`'s room list shows it. */
export async function listed(url, token, roomId) {
  const room = (await roomList(url, token)).find((x) => String(x.id) === String(roomId));
  assert.ok(room, `room ${roomId} in the list`);
  assert.ok(Number.isInteger(room.last_read_seq), `room.last_read_seq: ${JSON.stringify(room)}`);
  assert.ok(Number.isInteger(room.unread), `room.unread: ${JSON.stringify(room)}`);
  return room;
}

/** The events named `event` a recording socket got, their data in order. */
export function got(socket, event, pred = () => true) {
  return socket.log.filter((e) => e.event === event && pred(e.data)).map((e) => e.data);
}

/** `presence` events of `userId` in `roomId` the socket got. */
export function presenceOf(socket, roomId, userId) {
  return got(socket, 'presence', (d) => String(d.roomId) === String(roomId) && String(d.userId) === String(userId));
}

/** `typing` of `roomId` the socket got. */
export function typingIn(socket, roomId) {
  return got(socket, 'typing', (d) => String(d.roomId) === String(roomId));
}

/** `read_updated` of `roomId` the socket got. */
export function readUpdates(socket, roomId) {
  return got(socket, 'read_updated', (d) => String(d.roomId) === String(roomId));
}

/** Whether `userId` is `online` in the members list `token` reads. */
export async function onlineIn(url, token, roomId, userId) {
  const data = assertOk(await api(url, 'GET', `${r(roomId)}/members`, { token }), 200, 'members');
  const m = data.members.find((x) => String(x.id) === String(userId));
  assert.ok(m, `${userId} is a member`);
  assert.equal(typeof m.online, 'boolean');
  return m.online;
}

/** Asserts a `presence` event's exact shape. */
export function assertPresence(p, roomId, userId, online) {
  assert.deepEqual(Object.keys(p).sort(), ['online', 'roomId', 'userId'], `presence: ${JSON.stringify(p)}`);
  assert.equal(p.roomId, roomId);
  assert.equal(p.userId, userId);
  assert.equal(p.online, online);
}

/** Asserts a `typing` event's exact shape, from `user` (as register() returned it). */
export function assertTyping(t, roomId, user) {
  assert.deepEqual(Object.keys(t).sort(), ['roomId', 'user'], `typing: ${JSON.stringify(t)}`);
  assert.equal(t.roomId, roomId);
  assert.deepEqual(Object.keys(t.user).sort(), ['avatarImage', 'id', 'name']);
  assert.equal(t.user.id, user.id);
  assert.equal(t.user.name, user.name);
  assert.equal(t.user.avatarImage, '');
}
