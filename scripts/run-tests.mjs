#!/usr/bin/env node
// Runs every compiled test file (test/dist/**/*.spec.js and *.e2e-spec.js) with Node's test runner.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const testDist = path.join(root, 'test', 'dist');
const filter = process.argv[2];

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else if (/\.(e2e-)?spec\.js$/.test(entry.name) && (!filter || full.includes(filter))) yield full;
  }
}

const files = [...walk(testDist)].sort();
if (files.length === 0) {
  console.error(`no test files under ${testDist}${filter ? ` matching ${filter}` : ''}`);
  process.exit(1);
}
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=120000', ...files], {
  stdio: 'inherit',
  env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' },
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
