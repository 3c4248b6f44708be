/**
 * Files: Redis or a directory? Uploads JSONL batch files of growing size through
 * `POST /v1/files`, downloads them through `/content`, and records wall time, Redis memory and
 * the api process's peak RSS; then writes and reads the same bytes in a temporary directory,
 * the alternative store. Run: `npm run build && node scripts/with-redis.mjs node bench/dist/files-storage.js`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createApi } from '@tokenwire/api';

const SIZES_MB = [1, 10, 40];

function jsonl(megabytes: number): Buffer {
  const lines: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < megabytes * 1024 * 1024; i++) {
    const line = JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'demo', messages: [{ role: 'user', content: `question ${i}: ${'lorem ipsum '.repeat(20)}` }] } });
    lines.push(line);
    bytes += line.length + 1;
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

function peakRssMb(): number {
  return Number(/VmHWM:\s+(\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
}

async function main(): Promise<void> {
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `bench-files-${Date.now()}`;
  const api = await createApi(
    { redis: { url: redisUrl, prefix }, api: { host: '127.0.0.1', port: 0 }, batches: { bodyLimit: '64mb', maxItems: 1_000_000 }, models: [{ name: 'demo', provider: 'demo' }], log: { level: 'warn' } },
    {},
  );
  const redis = new Redis(redisUrl);
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tw-files-'));
  const rows: string[] = ['| file | upload (validate + store) | download | Redis: MEMORY USAGE of the file | Redis: used_memory added | peak RSS (api + this client) | directory write | directory read |', '|---|---|---|---|---|---|---|---|'];
  try {
    for (const mb of SIZES_MB) {
      const content = jsonl(mb);
      const before = await usedMemory();
      const form = new FormData();
      form.append('purpose', 'batch');
      form.append('file', new Blob([content]), 'bench.jsonl');
      let started = performance.now();
      const uploaded = await fetch(`${api.url}/v1/files`, { method: 'POST', body: form });
      if (uploaded.status !== 200) throw new Error(`upload answered ${uploaded.status}: ${await uploaded.text()}`);
      const { id } = (await uploaded.json()) as { id: string };
      const uploadMs = performance.now() - started;
      const added = (await usedMemory()) - before;
      const keyBytes = Number(await redis.memory('USAGE', `${prefix}:tenant:{default}:file:${id}:content`));
      started = performance.now();
      const downloaded = Buffer.from(await (await fetch(`${api.url}/v1/files/${id}/content`)).arrayBuffer());
      const downloadMs = performance.now() - started;
      if (!downloaded.equals(content)) throw new Error('downloaded bytes differ');
      const file = path.join(dir, id);
      started = performance.now();
      await writeFile(file, content);
      const writeMs = performance.now() - started;
      started = performance.now();
      await readFile(file);
      const readMs = performance.now() - started;
      const size = `${(content.length / 1024 / 1024).toFixed(1)} MB`;
      rows.push(`| ${size} | ${uploadMs.toFixed(0)} ms | ${downloadMs.toFixed(0)} ms | ${(keyBytes / 1024 / 1024).toFixed(1)} MB | ${(added / 1024 / 1024).toFixed(1)} MB | ${peakRssMb().toFixed(0)} MB | ${writeMs.toFixed(0)} ms | ${readMs.toFixed(0)} ms |`);
      await fetch(`${api.url}/v1/files/${id}`, { method: 'DELETE' });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await redis.quit();
    await api.close();
  }
  console.log(rows.join('\n'));
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
