import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, workerRunning, writeConfigFile, type AppProcess } from '../support/processes';
import { readSse } from '../support/sse-client';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';

const DEMO_OPTIONS = { tokenDelayMs: 40, tokens: 50 };
const expected = (prompt: string) => new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: prompt }]).join('');

function environment(prefix: string): Record<string, string> {
  return {
    REDIS_URL: testRedisUrl(),
    TOKENWIRE_REDIS_PREFIX: prefix,
    TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }] }),
    // Locks short enough that a killed worker's job is recovered within seconds, long enough that a
    // loaded machine's pauses do not lose a live worker's lock (that is test/reliability/lost-lock).
    TOKENWIRE_WORKER_LOCK_DURATION_MS: '4000',
    TOKENWIRE_WORKER_STALLED_INTERVAL_MS: '1000',
  };
}

async function createGeneration(apiUrl: string, content: string): Promise<string> {
  const response = await fetch(`${apiUrl}/v1/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content }] }),
  });
  assert.equal(response.status, 202);
  return ((await response.json()) as { id: string }).id;
}

const parse = (events: { data: string }[]) => events.map((e) => JSON.parse(e.data) as StreamEvent);

describe('process crashes', () => {
  const processes: AppProcess[] = [];
  const prefixes: string[] = [];
  after(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await Promise.all(prefixes.map((p) => deletePrefix(p)));
  });
  const start = async (name: 'api' | 'worker', env: Record<string, string>) => {
    const app = await spawnApp(name, env);
    processes.push(app);
    return app;
  };

  it('kill -9 of the worker mid-stream: another worker re-runs the job, the client sees restarted and one done', async () => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const env = environment(prefix);
    const [api, ...workers] = await Promise.all([start('api', env), start('worker', env), start('worker', env)]);
    const id = await createGeneration(api!.url!, 'crash the worker');

    const events: StreamEvent[] = [];
    const reading = readSse(`${api!.url}/v1/generations/${id}/events`);
    const firstPart = await readSse(`${api!.url}/v1/generations/${id}/events`, { until: (event) => event.id === '5' });
    assert.equal(firstPart.events.length, 5);
    const doomed = await workerRunning(workers, id);
    const survivor = workers.find((w) => w !== doomed)!;
    await doomed.stop('SIGKILL');

    events.push(...parse((await reading).events));
    assertCompleteStream(events);
    const restarted = events.find((e) => e.type === 'restarted');
    assert.ok(restarted, `the client was told the generation restarted: ${events.map((e) => e.type + e.seq).join(' ')}`);
    assert.equal(events.at(-1)?.type, 'done');
    assert.equal(visibleText(events), expected('crash the worker'), 'the text after the restart is the whole reply');
    assert.ok(survivor.logs.some((line) => line.msg === 'generation restarted after a previous attempt stopped' && line.jobId === id));
  });

  it('kill -9 of the api mid-stream: the client resumes on a second api with Last-Event-ID, no gap, no duplicate', async () => {
    const prefix = uniquePrefix();
    prefixes.push(prefix);
    const env = environment(prefix);
    const [first, second] = await Promise.all([start('api', env), start('api', env), start('worker', env)]);
    const id = await createGeneration(first!.url!, 'crash the api');

    const seen: StreamEvent[] = [];
    const broken = await readSse(`${first!.url}/v1/generations/${id}/events`, {
      until: (event) => {
        seen.push(JSON.parse(event.data) as StreamEvent);
        if (event.id === '7') void first!.stop('SIGKILL');
        return false;
      },
    }).then(
      () => false,
      () => true,
    );
    assert.ok(broken, 'the stream broke when the api died');
    assert.ok(seen.length >= 7 && seen.every((e) => e.type !== 'done'), `the first api died mid-stream (saw ${seen.length} events)`);
    const lastSeq = seen.at(-1)!.seq;

    const rest = await readSse(`${second!.url}/v1/generations/${id}/events`, { headers: { 'last-event-id': String(lastSeq) } });
    const events = [...seen, ...parse(rest.events)];
    assertCompleteStream(events);
    assert.equal(visibleText(events), expected('crash the api'));
  });
});
