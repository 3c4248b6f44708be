#!/usr/bin/env node
// Runs a command with REDIS_URL set: the caller's REDIS_URL when given, otherwise a
// private redis-server on a free port (no persistence) that is stopped on exit.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: with-redis.mjs <command> [args...]');
  process.exit(2);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForRedis(port, child) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('redis-server did not answer PING within 10 s');
}

let redis;
let redisDir;
const env = { ...process.env };
if (!env.REDIS_URL) {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error) {
    console.error(
      'redis-server was not found on PATH. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server; ' +
        'macOS: brew install redis) or point REDIS_URL at a running Redis (e.g. REDIS_URL=redis://127.0.0.1:6379).',
    );
    process.exit(1);
  }
  const port = await freePort();
  redisDir = mkdtempSync(path.join(os.tmpdir(), 'tokenwire-redis-'));
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir], {
    stdio: 'ignore',
  });
  await waitForRedis(port, redis);
  env.REDIS_URL = `redis://127.0.0.1:${port}`;
  console.error(`with-redis: private redis-server on ${env.REDIS_URL}`);
}

const stopRedis = () => {
  redis?.kill('SIGTERM');
  if (redisDir) rmSync(redisDir, { recursive: true, force: true });
};
const child = spawn(command, args, { stdio: 'inherit', env });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  stopRedis();
  process.exit(code ?? (signal ? 1 : 0));
});
