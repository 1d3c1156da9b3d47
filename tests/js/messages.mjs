// Helpers for the suites of messages that change (docs/protocol.md part 2, "Messages: replies,
// edits, deletions, reactions"): the part 2 shape of a message, the socket events that change
// one (each asserted to be acked ok, with the ack's fields), their REST twins, and the
// `message_updated` events a recording socket (part2.mjs `watcher`) got.

import assert from 'node:assert/strict';
import {
  api, assertKeys, assertMessage, assertTime, assertId, emitAck, waitFor, history, newMsgId,
} from './helpers.mjs';

const r = (roomId) => `/api/room/${encodeURIComponent(roomId)}`;

/** The REST calls of messages: send, edit, delete (the answers unchecked). */
export const rest = {
  send: (url, token, roomId, body) => api(url, 'POST', `${r(roomId)}/messages`, { token, body }),
  edit: (url, token, roomId, seq, body) => api(url, 'PATCH', `${r(roomId)}/messages/${encodeURIComponent(seq)}`, { token, body }),
  del: (url, token, roomId, seq) => api(url, 'DELETE', `${r(roomId)}/messages/${encodeURIComponent(seq)}`, { token }),
  search: (url, token, roomId, q) => api(url, 'GET', `${r(roomId)}/search?q=${encodeURIComponent(q)}`, { token }),
};

/** Code points, not UTF-16 units: what the contract's lengths count. */
export const codePoints = (s) => [...s].length;

/**
 * Assert a part 2 message: part 1's shape plus `version`, `replyTo`, `editedAt`, `deleted` and
 * `reactions`, each of its type, and a deleted message's placeholder fields. The expectations
 * given are checked exactly; `reactions` as a deep equality, the users in their order.
 */
export function assertMsg(m, expect = {}) {
  const { roomId, user, text, id, seq, version, replyTo, deleted, edited, reactions } = expect;
  assertMessage(m, { roomId, user, text, id, seq });
  assertKeys(m, ['version', 'replyTo', 'editedAt', 'deleted', 'reactions'], 'part 2 message');
  assert.ok(Number.isInteger(m.version) && m.version >= 1, `message.version: ${m.version}`);
  assert.ok(m.replyTo === null || (Number.isInteger(m.replyTo) && m.replyTo >= 1 && m.replyTo < m.seq), `message.replyTo: ${m.replyTo} (seq ${m.seq})`);
  if (m.editedAt !== null) assertTime(m.editedAt, 'message.editedAt');
  assert.equal(typeof m.deleted, 'boolean', 'message.deleted');
  assert.ok(m.reactions && typeof m.reactions === 'object' && !Array.isArray(m.reactions), `message.reactions: ${JSON.stringify(m.reactions)}`);
  for (const [emoji, users] of Object.entries(m.reactions)) {
    assert.ok(Array.isArray(users) && users.length > 0, `reactions[${emoji}] lists nobody: ${JSON.stringify(m.reactions)}`);
    for (const u of users) assertId(u, `a user of reactions[${emoji}]`);
    assert.equal(new Set(users).size, users.length, `reactions[${emoji}] lists a user twice: ${JSON.stringify(users)}`);
  }
  assert.ok(Object.keys(m.reactions).length <= 20, `more than 20 distinct emoji: ${Object.keys(m.reactions)}`);
  if (m.deleted) {
    assert.equal(m.message, '', 'a deleted message says ""');
    assert.equal(m.replyTo, null, 'a deleted message answers nothing');
    assert.deepEqual(m.reactions, {}, 'a deleted message has no reactions');
  }
  if (version !== undefined) assert.equal(m.version, version, `version of #${m.seq}`);
  if (replyTo !== undefined) assert.equal(m.replyTo, replyTo, `replyTo of #${m.seq}`);
  if (deleted !== undefined) assert.equal(m.deleted, deleted, `deleted of #${m.seq}`);
  if (edited === false) assert.equal(m.editedAt, null, `#${m.seq} was never edited`);
  else if (typeof edited === 'string') assert.equal(m.editedAt, edited, `editedAt of #${m.seq}`);
  if (reactions !== undefined) assert.deepEqual(m.reactions, reactions, `reactions of #${m.seq}`);
  return m;
}

/** Send with an optional `replyTo`; asserts an ok ack with part 1's fields. */
export async function post(socket, roomId, message, extra = {}) {
  const payload = { roomId, id: extra.id ?? newMsgId(), message, type: 'input', ...extra };
  const ack = await emitAck(socket, 'user_send_message', payload);
  assert.equal(ack?.ok, true, `user_send_message ${JSON.stringify(payload).slice(0, 160)}: ${JSON.stringify(ack)}`);
  assert.ok(Number.isInteger(ack.seq), `ack.seq: ${JSON.stringify(ack)}`);
  assertTime(ack.time, 'ack.time');
  return { ...ack, id: payload.id };
}

/** `edit_message`, acked `{"ok": true, "version", "editedAt"}`. */
export async function edit(socket, roomId, seq, message) {
  const ack = await emitAck(socket, 'edit_message', { roomId, seq, message });
  assert.equal(ack?.ok, true, `edit_message #${seq}: ${JSON.stringify(ack)}`);
  assert.ok(Number.isInteger(ack.version) && ack.version >= 1, `edit ack version: ${JSON.stringify(ack)}`);
  assertTime(ack.editedAt, 'edit ack editedAt');
  return ack;
}

/** `delete_message`, acked `{"ok": true, "version"}`. */
export async function del(socket, roomId, seq) {
  const ack = await emitAck(socket, 'delete_message', { roomId, seq });
  assert.equal(ack?.ok, true, `delete_message #${seq}: ${JSON.stringify(ack)}`);
  assert.ok(Number.isInteger(ack.version) && ack.version >= 1, `delete ack version: ${JSON.stringify(ack)}`);
  return ack;
}

/** `react`, acked `{"ok": true, "version"}`. */
export async function react(socket, roomId, seq, emoji, on = true) {
  const ack = await emitAck(socket, 'react', { roomId, seq, emoji, on });
  assert.equal(ack?.ok, true, `react ${JSON.stringify(emoji)} ${on} on #${seq}: ${JSON.stringify(ack)}`);
  assert.ok(Number.isInteger(ack.version) && ack.version >= 1, `react ack version: ${JSON.stringify(ack)}`);
  return ack;
}

/** The `message_updated` events of the room a recording socket got, optionally of one seq. */
export function updates(socket, roomId, seq) {
  return socket.log
    .filter((e) => e.event === 'message_updated' && e.data && String(e.data.roomId) === String(roomId))
    .map((e) => e.data)
    .filter((m) => seq === undefined || m.seq === seq);
}

/** Wait for the socket's `message_updated` of the room with version `version`; returns it. */
export async function updateAt(socket, roomId, version, what = '') {
  return waitFor(() => updates(socket, roomId).find((m) => m.version === version), {
    message: `message_updated at version ${version} ${what} (got ${JSON.stringify(updates(socket, roomId).map((m) => [m.seq, m.version]))})`,
  });
}

/** One message of the room as `token` reads it in history now. */
export async function current(url, token, roomId, seq) {
  const [m] = await history(url, token, roomId, `?before=${seq + 1}&limit=1`);
  assert.ok(m && m.seq === seq, `history holds #${seq}: ${JSON.stringify(m)}`);
  return m;
}

/** The search's messages, asserted 200. */
export async function searchFor(url, token, roomId, q) {
  const res = await rest.search(url, token, roomId, q);
  assert.equal(res.status, 200, `search ${q}: ${res.text?.slice(0, 300)}`);
  return res.body.data.messages;
}

/** A message as history shows it, without its `version`: what a replay must show as well. */
export function content(m) {
  const { version: _, ...others } = m;
  return others;
}
