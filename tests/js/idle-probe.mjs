// Idle sockets as the official client makes them: the server's memory per socket
// (the idle scenario of docs/benchmarks.md). Not a test; run by hand:
//
//   node idle-probe.mjs <server url> <server pid> [sockets=10000] [users=400]
//                       [transports=polling,websocket] [opened at once=100]
//
// against a server started with `--send-rate-limit 0 --join-rate-limit 0
// --max-sockets-per-user 0` and `ulimit -n 20000` on both sides. It registers the users, opens
// the sockets (each sends `join_all` with no rooms and waits for its ack), and prints the
// growth of the server's RSS per socket from 500 sockets and from half of them to all.
import { io } from 'socket.io-client';
import { readFileSync } from 'node:fs';

const url = process.argv[2];
const pid = process.argv[3];
const n = Number(process.argv[4] ?? 10000);
const users = Number(process.argv[5] ?? 400);
const transports = (process.argv[6] ?? 'polling,websocket').split(',');
const atOnce = Number(process.argv[7] ?? 100);
if (!url || !pid) {
  console.error('usage: node idle-probe.mjs <server url> <server pid> [sockets] [users] [transports] [opened at once]');
  process.exit(2);
}

const rss = () => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function register(name) {
  const res = await fetch(`${url}/api/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: name, password: 'correct horse battery' }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`register ${name}: ${res.status} ${JSON.stringify(body)}`);
  return body.data.token;
}

const run = Date.now() % 1e6;
const tokens = [];
for (let i = 0; i < users; i += 8) {
  const names = Array.from({ length: Math.min(8, users - i) }, (_, j) => `idle${run}x${i + j}`);
  tokens.push(...(await Promise.all(names.map(register))));
}

const sockets = [];
async function openUpTo(total) {
  for (let i = sockets.length; i < total; i += atOnce) {
    await Promise.all(Array.from({ length: Math.min(atOnce, total - i) }, (_, j) => new Promise((resolve, reject) => {
      const s = io(`${url}/chatroom`, {
        transports, auth: { token: tokens[(i + j) % tokens.length] }, reconnection: false, forceNew: true,
      });
      s.on('connect', () => s.emit('join_all', { roomList: [] }, (ack) => (ack?.ok ? resolve() : reject(new Error(JSON.stringify(ack))))));
      s.on('connect_error', reject);
      sockets.push(s);
    })));
  }
}

// The registrations' argon2 memory is handed back by the allocator only on later activity:
// the first 500 sockets provide it, and the growth is counted from there.
await openUpTo(500);
await sleep(5000);
const first = rss();
await openUpTo(n / 2);
await sleep(2000);
const half = rss();
await openUpTo(n);
await sleep(5000);
const all = rss();
const upgraded = sockets.filter((s) => s.io.engine.transport.name === 'websocket').length;
const per = (from, count) => ((all - from) / (n - count)).toFixed(2);
console.log(`${n} sockets (${upgraded} on WebSocket); server RSS ${first} KiB with 500, ${half} with ${n / 2}, ${all} with ${n}`);
console.log(`${per(first, 500)} KiB a socket from 500 to ${n}; ${per(half, n / 2)} KiB a socket from ${n / 2} to ${n}`);
for (const s of sockets) s.close();
process.exit(0);
