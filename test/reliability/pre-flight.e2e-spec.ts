import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { GENERATE_JOB, GENERATIONS_QUEUE, redisKeys, type StreamEvent } from '@tokenwire/contracts';
import { redisOptionsFromUrl } from '@tokenwire/core';
import { FakeOpenAIServer } from '../support/fake-openai-server';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { testRedisUrl } from '../support/redis';
import { waitFor } from '../support/wait';

/** Before a job reaches a provider, one script decides whether it may run at all. */
describe('the pre-flight check of a job', () => {
  const upstream = new FakeOpenAIServer();
  let gateway: TestGateway;
  let queue: Queue;

  before(async () => {
    const baseUrl = await upstream.start();
    gateway = await startGateway({ models: [{ name: 'm', provider: 'openai-compatible', options: { baseUrl } }] });
    queue = new Queue(GENERATIONS_QUEUE, { connection: redisOptionsFromUrl(testRedisUrl()), prefix: redisKeys(gateway.prefix).bullPrefix() });
  });
  after(async () => {
    await queue.close();
    await gateway.close();
    await upstream.stop();
  });

  it('a job handed out again after its generation ended never reaches the upstream, and the status stays done', async () => {
    upstream.script = () => ({ tokens: ['once', ' only'], firstByteDelayMs: 300 });
    const created = await fetch(`${gateway.url}/v1/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
    });
    const { id } = (await created.json()) as { id: string };
    // A completed job is removed (it holds the prompt): keep its data while it runs.
    const { data } = await waitFor('the job in the queue', () => queue.getJob(id));
    const first = (await readSse(`${gateway.url}/v1/generations/${id}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);
    assert.equal(first.at(-1)?.type, 'done');
    await waitFor('the completed job to be removed from the queue', async () => (await queue.getJobState(id)) === 'unknown');

    // The queue hands the same job out again (a re-delivery after the generation ended).
    await queue.add(GENERATE_JOB, data, { jobId: id });
    await waitFor('the re-delivered job to finish', async () => (await queue.getJobState(id)) === 'completed');

    assert.equal(upstream.requests.length, 1, 'the upstream was called once');
    const view = (await (await fetch(`${gateway.url}/v1/generations/${id}`)).json()) as { status: string };
    assert.equal(view.status, 'done');
    const again = (await readSse(`${gateway.url}/v1/generations/${id}/events`)).events.map((e) => JSON.parse(e.data) as StreamEvent);
    assert.deepEqual(again, first, 'the log is unchanged');
  });
});
