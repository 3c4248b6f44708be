import { spawn, type ChildProcess } from 'node:child_process';
import { reapOnExit } from './child-reaper';
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { TokenwireConfigInput } from '@tokenwire/core';
import { waitFor } from './wait';

const root = path.resolve(__dirname, '..', '..', '..'); // from test/dist/support
const ENTRY = { api: 'apps/api/dist/main.js', worker: 'apps/worker/dist/main.js' } as const;

export interface AppProcess {
  child: ChildProcess;
  /** Every JSON log line the process printed. */
  logs: Array<Record<string, unknown>>;
  /** The api's base URL (api processes only). */
  url?: string;
  /** The Prometheus endpoint (`api.metricsPort` or `worker.metricsPort`). */
  metricsUrl?: string;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The worker (of `workers`) whose log shows it started streaming `jobId`. */
export function workerRunning(workers: AppProcess[], jobId: string): Promise<AppProcess> {
  return waitFor(`a worker to stream job ${jobId}`, () => workers.find((w) => w.logs.some((line) => line.msg === 'first token' && line.jobId === jobId)));
}

/** Writes a YAML config file for child processes (the way operators configure Tokenwire). */
export function writeConfigFile(config: TokenwireConfigInput): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'tokenwire-config-')), 'tokenwire.yaml');
  writeFileSync(file, toYaml(config));
  return file;
}

/** Starts `node apps/<name>/dist/main.js` as a real process and waits until it says it is ready. */
export async function spawnApp(name: keyof typeof ENTRY, env: Record<string, string>, { readyTimeoutMs = 60_000 } = {}): Promise<AppProcess> {
  const child = spawn(process.execPath, [path.join(root, ENTRY[name])], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', PORT: '0', HOST: '127.0.0.1', WORKER_METRICS_PORT: '0', API_METRICS_PORT: '0', OLLAMA_DISCOVER_URLS: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  reapOnExit(child);
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let rest = '';
  child.stdout!.on('data', (data: Buffer) => {
    const lines = (rest + data.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  child.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = name === 'api' ? 'api listening' : 'worker started';
  const line = await Promise.race([
    waitFor(`${name} process to log "${ready}"`, () => logs.find((entry) => entry.msg === ready), { timeoutMs: readyTimeoutMs }),
    exited.then(({ code }) => {
      throw new Error(`${name} exited with ${code} before it was ready: ${stderr}`);
    }),
  ]).catch((error: unknown) => {
    // A process that never got ready must not outlive the test.
    if (child.exitCode === null) child.kill('SIGKILL');
    throw error;
  });
  return {
    child,
    logs,
    url: line.url as string | undefined,
    metricsUrl: line.metricsUrl as string | undefined,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
