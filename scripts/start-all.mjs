#!/usr/bin/env node
// `npm start`: one api and one worker process, their output prefixed, both stopped together.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const apps = { api: 'apps/api/dist/main.js', worker: 'apps/worker/dist/main.js' };
const children = [];
let stopping = false;

function stop(code) {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  setTimeout(() => process.exit(code), 5000).unref();
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once('exit', r))))).then(() => process.exit(code));
}

for (const [name, entry] of Object.entries(apps)) {
  const child = spawn(process.execPath, [path.join(root, entry)], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (data) => {
      const lines = (rest + data).split('\n');
      rest = lines.pop();
      for (const line of lines) process.stdout.write(`[${name}] ${line}\n`);
    });
  }
  child.on('exit', (code) => {
    if (!stopping) console.error(`[${name}] exited with code ${code}; stopping`);
    stop(code ?? 1);
  });
  children.push(child);
}
const port = process.env.PORT ?? '3000';
console.log(`Tokenwire: api on http://127.0.0.1:${port}, try:
  curl -N http://127.0.0.1:${port}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"hello"}]}'`);
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
