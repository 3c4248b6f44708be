#!/usr/bin/env node
// `npm start`: one api and one worker process per core (TOKENWIRE_WORKERS), stopped together. On a terminal
// their logs are shown as readable lines (pino-pretty) and a banner says where everything is once all are up;
// otherwise, or with LOG_FORMAT=json, their JSON lines pass through unchanged.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { prettyFactory } from 'pino-pretty';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
// A worker runs on one core; picking up a burst of jobs is CPU-bound (bench/README.md), so one per core.
const workerCount = Math.max(1, Number.parseInt(process.env.TOKENWIRE_WORKERS ?? '', 10) || availableParallelism());
const workerMetricsPort = Number(process.env.WORKER_METRICS_PORT ?? 9464);
const apiMetricsPort = Number(process.env.API_METRICS_PORT ?? 9465);
/** Each worker its own metrics port, counting up from WORKER_METRICS_PORT past the api's (9465 is the second worker's otherwise); 0 stays 0: any free port. */
function workerMetricsPorts() {
  const ports = [];
  for (let port = workerMetricsPort; ports.length < workerCount; port++) {
    if (workerMetricsPort === 0) ports.push(0);
    else if (port !== apiMetricsPort) ports.push(port);
  }
  return ports;
}
const apps = [
  { name: 'api', entry: 'apps/api/dist/main.js', env: {} },
  ...workerMetricsPorts().map((port, i) => ({
    name: workerCount === 1 ? 'worker' : `worker-${i + 1}`,
    entry: 'apps/worker/dist/main.js',
    env: { WORKER_METRICS_PORT: String(port) },
  })),
];
const format = process.env.LOG_FORMAT ?? 'auto';
const readable = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
const colors = process.stdout.isTTY === true;
const prettify = prettyFactory({ colorize: colors, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service,links', singleLine: true });
const children = [];
const ready = { workers: [] };
let stopping = false;

function stop(code) {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  setTimeout(() => process.exit(code), 5000).unref();
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once('exit', r))))).then(() => process.exit(code));
}

function onLogLine(name, line) {
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    process.stdout.write(`[${name}] ${line}\n`);
    return;
  }
  process.stdout.write(readable ? prettify(entry) : `${line}\n`);
  if (entry.msg === 'api listening') ready.api = entry;
  if (entry.msg === 'worker started') ready.workers.push(entry);
  if (readable && ready.api && ready.workers.length === workerCount && !ready.shown) {
    ready.shown = true;
    process.stdout.write(banner(ready.api, ready.workers));
  }
}

function banner(api, workers) {
  const bold = (text) => (colors ? `\x1b[1m${text}\x1b[22m` : text);
  const { links } = api;
  return [
    '',
    bold(`Tokenwire is up (api + ${workers.length === 1 ? 'worker' : `${workers.length} workers`}). Ctrl-C stops all.`),
    `  playground       ${bold(links.playground)}`,
    `  API docs         ${links.docs}`,
    `  metrics          ${links.metrics} (api), ${workers.map((w) => w.metricsUrl).join(', ')} (${workers.length === 1 ? 'worker' : 'workers'})`,
    `  queue dashboard  ${links.queueDashboard}${api.auth ? ' (operator token)' : ''}`,
    `  models           ${api.models.join(', ')}`,
    `  auth             ${api.auth ? 'on: requests need an API key' : 'off: every request is tenant "default"'}`,
    `  redis            ${api.redis}`,
    `  try              curl -N ${api.url}/v1/chat/completions -H 'content-type: application/json' \\`,
    `                     -d '{"model":"${api.models[0]}","stream":true,"messages":[{"role":"user","content":"hello"}]}'`,
    '',
    '',
  ].join('\n');
}

for (const { name, entry, env } of apps) {
  // The children always log JSON: this process reads their start-up lines and formats for the terminal.
  const child = spawn(process.execPath, [path.join(root, entry)], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, LOG_FORMAT: 'json' } });
  for (const [stream, handle] of [
    [child.stdout, (line) => onLogLine(name, line)],
    [child.stderr, (line) => process.stderr.write(`[${name}] ${line}\n`)],
  ]) {
    let rest = '';
    stream.on('data', (data) => {
      const lines = (rest + data).split('\n');
      rest = lines.pop();
      for (const line of lines) if (line) handle(line);
    });
  }
  child.on('exit', (code) => {
    if (!stopping) console.error(`[${name}] exited with code ${code}; stopping`);
    stop(code ?? 1);
  });
  children.push(child);
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
