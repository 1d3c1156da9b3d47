// History, search and the export as messages are now (docs/protocol.md part 2, "Messages:
// replies, edits, deletions, reactions"), on the embedded store and, with
// CHATROOM_TEST_DATABASE_URL, on PostgreSQL: after answers, reactions (added, repeated, taken
// back), edits and a deletion through the socket, history shows each message's latest text,
// `editedAt`, `replyTo`, the users of each reaction in the order of reacting and the version of its latest
// change; search finds the latest texts only and never the deleted one; each author's export
// lists every text a message had.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  startServer, api, assertOk, register, roomWith, connect, emitAck, send, history, waitFor,
  closeAll, assertTime,
} from './helpers.mjs';

const ADMIN = process.env.CHATROOM_TEST_DATABASE_URL;

function postgresArgs() {
  const name = `chatroom_e2e_${randomUUID().replaceAll('-', '')}`;
  execSync(`psql "${ADMIN}" -q -c "create database ${name}"`);
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  return ['--database-url', u.toString()];
}

async function search(url, token, roomId, q) {
  const res = await api(url, 'GET', `/api/room/${roomId}/search?q=${encodeURIComponent(q)}`, { token });
  return assertOk(res, 200, `search ${q}`).messages.map((m) => m.seq);
}

async function ok(socket, event, payload) {
  const ack = await emitAck(socket, event, payload);
  assert.equal(ack?.ok, true, `${event} ${JSON.stringify(payload)}: ${JSON.stringify(ack)}`);
  return ack;
}

async function exported(url, token) {
  const data = assertOk(await api(url, 'GET', '/api/user/export', { token }), 200, 'export');
  return data.messages.map((m) => [m.seq, m.deleted, m.versions.map((v) => v.message)]);
}

for (const store of ['embedded', 'postgres']) {
  const skip = store === 'postgres' && !ADMIN ? 'CHATROOM_TEST_DATABASE_URL is not set' : false;
  describe(`messages as they are now (${store})`, { skip }, () => {
    let server;
    let url;
    const open = [];
    before(async () => {
      const args = ['--send-rate-limit', '0', ...(store === 'postgres' ? postgresArgs() : [])];
      server = await startServer({ args });
      url = server.url;
    });
    after(async () => {
      closeAll(open);
      await server?.cleanup();
    });

    it('history, search and the export after answers, reactions, edits and a deletion', async () => {
      const [alice, bob, carol] = [await register(url), await register(url), await register(url)];
      const room = await roomWith(url, alice, [bob, carol]);
      const sockets = {};
      for (const [name, user] of Object.entries({ alice, bob, carol })) {
        sockets[name] = await connect(url, user.token);
        open.push(sockets[name]);
        await ok(sockets[name], 'join_all', { roomList: [room.id] });
      }
      const { alice: sa, bob: sb, carol: sc } = sockets;
      const roomId = room.id;

      const m1 = await send(sa, roomId, 'Hello world');
      const m2 = await ok(sb, 'user_send_message', { roomId, id: randomUUID(), message: 'An answer', type: 'input', replyTo: m1.seq });
      const react = (s, emoji, on) => ok(s, 'react', { roomId, seq: m1.seq, emoji, on });
      const first = await react(sb, '👍', true);
      await react(sc, '👍', true);
      await react(sc, '🎉', true);
      await react(sb, '👍', true);
      await react(sc, '🎉', false);
      await react(sa, '🎉', true);
      const edit = await ok(sa, 'edit_message', { roomId, seq: m1.seq, message: '  Final\twords ' });
      assertTime(edit.editedAt, 'editedAt');
      const m3 = await send(sb, roomId, 'soon gone');
      await ok(sa, 'react', { roomId, seq: m3.seq, emoji: 'x', on: true });
      await ok(sb, 'edit_message', { roomId, seq: m3.seq, message: 'going, going' });
      const gone = await ok(sa, 'delete_message', { roomId, seq: m3.seq });

      let page;
      await waitFor(async () => {
        page = await history(url, carol.token, roomId);
        return page.length === 3 && page[2].deleted && page[0].editedAt !== null;
      }, { message: 'history shows the changes' });
      const [h1, h2, h3] = page;
      assert.equal(h1.message, '  Final\twords ');
      assert.equal(h1.editedAt, edit.editedAt);
      assert.equal(h1.version, edit.version, 'the version of its latest change');
      assert.equal(h1.replyTo, null);
      assert.deepEqual(h1.reactions, { '👍': [bob.id, carol.id], '🎉': [alice.id] });
      assert.equal(h2.replyTo, m1.seq);
      assert.equal(h2.editedAt, null);
      assert.deepEqual(h2.reactions, {});
      assert.equal(h2.seq, m2.seq);
      assert.ok(Number.isInteger(h2.version) && h2.version > 0 && h2.version < first.version, `never changed: the version of its post, ${h2.version}`);
      assert.deepEqual(
        [h3.seq, h3.deleted, h3.message, h3.replyTo, h3.reactions, h3.version],
        [m3.seq, true, '', null, {}, gone.version],
      );

      assert.deepEqual(await search(url, carol.token, roomId, 'final WORDS'), [m1.seq]);
      assert.deepEqual(await search(url, carol.token, roomId, 'hello'), [], 'the old text');
      assert.deepEqual(await search(url, carol.token, roomId, 'going'), [], 'deleted');
      assert.deepEqual(await search(url, carol.token, roomId, 'soon'), [], 'deleted');
      assert.deepEqual(await search(url, carol.token, roomId, 'an'), [m2.seq]);

      assert.deepEqual(await exported(url, alice.token), [[m1.seq, false, ['Hello world', '  Final\twords ']]]);
      assert.deepEqual(await exported(url, bob.token), [
        [m2.seq, false, ['An answer']],
        [m3.seq, true, ['soon gone', 'going, going']],
      ]);
      const times = assertOk(await api(url, 'GET', '/api/user/export', { token: alice.token }), 200).messages[0].versions.map((v) => v.time);
      assert.equal(times[1], edit.editedAt, 'each text with the time it was written');
      assert.ok(times[0] <= times[1]);
    });
  });
}
