// Starts the real chatroom server binary and waits for the one line it prints on stdout once
// it accepts connections, `chatroom listening on URL`. Shared by the end-to-end suites
// (helpers.mjs) and the browser test (tests/browser), so it imports node's own modules only.
//
//   CHATROOM_BIN       the server binary (default ../../target/debug/chatroom from here)
//   CHATROOM_TEST_LOG  set to copy the server's stderr to the test output

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.CHATROOM_BIN
  ? path.resolve(process.env.CHATROOM_BIN)
  : path.resolve(here, '../../target/debug/chatroom');

const liveProcs = new Set();
process.on('exit', () => {
  for (const p of liveProcs) {
    try { p.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/**
 * Starts `chatroom serve --listen LISTEN --data-dir DATADIR ...args` with `env` added to this
 * process's environment. Returns {proc, ready, exited, stderr()}: `ready` resolves to the URL
 * the server printed (without a trailing slash) and rejects, with the end of its stderr, when
 * it exits first or says nothing for 30 s; `exited` resolves to {code, signal}.
 */
export function launch(dataDir, args = [], { listen = '127.0.0.1:0', env = {} } = {}) {
  if (!existsSync(BIN)) {
    throw new Error(`chatroom binary not found at ${BIN} (build it with cargo build, or set CHATROOM_BIN)`);
  }
  const proc = spawn(BIN, ['serve', '--listen', listen, '--data-dir', dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_BACKTRACE: '1', ...env },
  });
  liveProcs.add(proc);
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
    if (process.env.CHATROOM_TEST_LOG) process.stderr.write(d);
  });
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      liveProcs.delete(proc);
      resolve({ code, signal });
    });
  });
  const ready = new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      reject(new Error(`server did not print its address within 30 s; stderr:\n${stderr.slice(-4000)}`));
    }, 30_000);
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/chatroom listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}, signal ${signal}); stderr:\n${stderr.slice(-4000)}`));
    });
  });
  // eslint-disable-next-line no-control-regex
  return { proc, ready, exited, stderr: () => stderr.replace(/\x1b\[[0-9;]*m/g, '') };
}
