import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { chat, chatReply, conversation, FakeFleet, readyDeployments } from '../support/fleet';
import { waitFor } from '../support/wait';

const SYSTEM_PROMPT = `You are the support assistant of an online shop. ${'Answer politely and briefly. '.repeat(8)}`;

/** One api and two worker processes: the workers route as one router through Redis. */
describe('fleet routing shared by two worker processes', () => {
  const prefix = uniquePrefix();
  const fleet = new FakeFleet();
  let api: AppProcess;
  let workers: AppProcess[] = [];

  before(async () => {
    await fleet.start(3);
    fleet.behave = (_replica, body) => {
      const messages = body.messages as Array<{ content: string }>;
      return messages[0]!.content === 'hold' ? { tokenDelayMs: 400 } : {};
    };
    const deployments = fleet.deployments(() => ({ maxConcurrency: 2 }));
    const port = new URL(fleet.replicas[0]!.baseUrl).port;
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      LOG_LEVEL: 'debug',
      TOKENWIRE_CONFIG: writeConfigFile({
        models: [
          { name: 'capped', provider: 'openai-compatible', deployments, routing: { strategy: 'least-outstanding' } },
          { name: 'affinity', provider: 'openai-compatible', deployments: fleet.deployments(), routing: { strategy: 'prefix-affinity', chunkChars: 64, minMatchChunks: 6 } },
          // localhost resolves to 127.0.0.1 (and ::1 on some hosts, where nothing listens: that replica fails and is retried elsewhere).
          { name: 'dns', provider: 'openai-compatible', discover: { dns: 'localhost', urlTemplate: `http://{address}:${port}/v1`, refreshMs: 500 }, routing: { strategy: 'round-robin' } },
        ],
      }),
    };
    // A Nest start-up takes 15-20 s on two cores shared with other test runs.
    const slowStart = { readyTimeoutMs: 60_000 };
    api = await spawnApp('api', env, slowStart);
    workers = await Promise.all([spawnApp('worker', env, slowStart), spawnApp('worker', env, slowStart)]);
  });
  after(async () => {
    await Promise.all([api?.stop(), ...(workers ?? []).map((worker) => worker.stop())]);
    await fleet.stop();
    await deletePrefix(prefix);
  });

  const decisions = (worker: AppProcess, model: string) => worker.logs.filter((line) => line.msg === 'routing decision' && line.upstreamModel === model);

  it('never puts more than a replica\'s maxConcurrency on it, whichever worker picks (one atomic script)', async () => {
    const replies = await Promise.all(Array.from({ length: 12 }, () => chat(api.url!, 'capped', { messages: [{ role: 'user', content: 'hold' }] })));
    assert.equal(replies.length, 12);
    for (const [index, replica] of fleet.replicas.entries()) assert.ok(replica.peakActive <= 2, `r${index} ran ${replica.peakActive} requests at once (cap 2)`);
    assert.equal(fleet.counts().reduce((a, b) => a + b), 12, 'no request needed a retry');
    for (const worker of workers) assert.ok(decisions(worker, 'capped').length > 0, 'both workers routed requests');
  });

  it('keeps every conversation on one replica although its turns are routed by different workers', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `c${i}`);
    const turns = new Map<string, Array<{ text: string; jobId: string }>>(ids.map((id) => [id, []]));
    await Promise.all(
      ids.map(async (id) => {
        for (let turn = 0; turn < 3; turn++) turns.get(id)!.push(await chatReply(api.url!, 'affinity', { messages: conversation(id, turn, SYSTEM_PROMPT) }));
      }),
    );
    for (const [id, replies] of turns) assert.equal(new Set(replies.map((r) => r.text)).size, 1, `conversation ${id} moved: ${replies.map((r) => r.text)}`);
    const routedBy = (jobId: string) =>
      waitFor(`the routing decision of job ${jobId}`, () => workers.findIndex((worker) => decisions(worker, 'affinity').some((line) => line.jobId === jobId)) + 1);
    const spanning = [];
    for (const replies of turns.values()) if (new Set(await Promise.all(replies.map((r) => routedBy(r.jobId)))).size > 1) spanning.push(replies);
    assert.ok(spanning.length > 0, 'some conversation had turns routed by both workers');
    const reasons = workers.flatMap((worker) => decisions(worker, 'affinity').map((line) => String(line.why)));
    assert.ok(reasons.some((why) => why.includes('longest prefix match')), 'the debug line says why');
  });

  it('routes to the addresses a DNS name resolves to, and lists them in /readyz', async () => {
    const port = new URL(fleet.replicas[0]!.baseUrl).port;
    for (let i = 0; i < 4; i++) assert.equal(await chat(api.url!, 'dns'), 'r0');
    const view = await waitFor('the DNS replica in /readyz', async () => (await readyDeployments(api.url!, 'dns'))[`127.0.0.1:${port}`]);
    assert.equal(view.url, `http://127.0.0.1:${port}/v1`);
  });
});
