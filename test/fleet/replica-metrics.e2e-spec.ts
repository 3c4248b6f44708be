import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../support/gateway';
import { chat, conversation, FakeFleet } from '../support/fleet';
import { waitFor } from '../support/wait';

const SYSTEM_PROMPT = `You are the support assistant of an online shop. ${'Answer politely and briefly. '.repeat(8)}`;

/** vLLM's /metrics, as a replica serves it (the two series the router reads, among others it ignores). */
function vllmMetrics({ waiting = 0, kv = 0 }: { waiting?: number; kv?: number }): string {
  return [
    '# HELP vllm:num_requests_running Number of requests in model execution batches.',
    '# TYPE vllm:num_requests_running gauge',
    'vllm:num_requests_running{engine="0",model_name="m"} 2.0',
    '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
    '# TYPE vllm:num_requests_waiting gauge',
    `vllm:num_requests_waiting{engine="0",model_name="m"} ${waiting.toFixed(1)}`,
    '# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.',
    '# TYPE vllm:kv_cache_usage_perc gauge',
    `vllm:kv_cache_usage_perc{engine="0",model_name="m"} ${kv}`,
    '# HELP vllm:prompt_tokens_total Number of prefill tokens processed.',
    '# TYPE vllm:prompt_tokens_total counter',
    'vllm:prompt_tokens_total{engine="0",model_name="m"} 12345.0',
    '',
  ].join('\n');
}

/** A replica's own queue and KV-cache usage, scraped from its Prometheus endpoint, count in the routing score. */
describe('fleet routing reads replica metrics', () => {
  const fleet = new FakeFleet();
  let gateway: TestGateway;
  const health = { probePath: null, metricsPath: '/metrics', metricsIntervalMs: 100 };

  before(async () => {
    await fleet.start(2);
    gateway = await startGateway({
      models: [
        { name: 'scored', provider: 'openai-compatible', deployments: fleet.deployments(), routing: { strategy: 'least-outstanding', kvCacheWeight: 4 }, health },
        { name: 'scored-affinity', provider: 'openai-compatible', deployments: fleet.deployments(), routing: { strategy: 'prefix-affinity', chunkChars: 64, minMatchChunks: 4, loadMargin: 2 }, health },
        { name: 'unscored', provider: 'openai-compatible', deployments: fleet.deployments(), routing: { strategy: 'least-outstanding' }, health: { probePath: null } },
      ],
    });
  });
  after(async () => {
    await gateway.close();
    await fleet.stop();
  });

  /** Who serves `count` requests in a row (each ends before the next starts: the gateway's in-flight counts tie at 0). */
  const servedBy = async (model: string, count = 6) => {
    const replies: string[] = [];
    for (let i = 0; i < count; i++) replies.push(await chat(gateway.url, model));
    return replies;
  };
  /**
   * Waits until the router's view shows the metrics just set: the given replica serves two requests in a
   * row. One is not enough: equal loads rotate, so half the requests go there before any scrape counts.
   */
  const settle = (model: string, replica: string) =>
    waitFor(`${model} to route to ${replica} after a scrape`, async () => (await chat(gateway.url, model)) === replica && (await chat(gateway.url, model)) === replica, {
      timeoutMs: 10_000,
      intervalMs: 50,
    });

  it('least outstanding passes over a replica whose own queue is long (vllm:num_requests_waiting)', async () => {
    fleet.replicas[0]!.metricsText = vllmMetrics({ waiting: 5 });
    fleet.replicas[1]!.metricsText = vllmMetrics({ waiting: 0 });
    await settle('scored', 'r1');
    assert.deepEqual(await servedBy('scored'), Array(6).fill('r1'));
    assert.deepEqual(new Set(await servedBy('unscored')), new Set(['r0', 'r1']), 'without metricsPath the ties rotate');

    fleet.replicas[0]!.metricsText = vllmMetrics({ waiting: 0 });
    fleet.replicas[1]!.metricsText = vllmMetrics({ waiting: 5 });
    await settle('scored', 'r0');
    assert.deepEqual(await servedBy('scored'), Array(6).fill('r0'));
  });

  it('a fuller KV cache (vllm:kv_cache_usage_perc) weighs as kvCacheWeight more requests in flight', async () => {
    fleet.replicas[0]!.metricsText = vllmMetrics({ kv: 0.97 });
    fleet.replicas[1]!.metricsText = vllmMetrics({ kv: 0.1 });
    await settle('scored', 'r1');
    assert.deepEqual(await servedBy('scored'), Array(6).fill('r1'));
  });

  it('a replica whose metrics cannot be read is scored by in-flight counts alone', async () => {
    fleet.replicas[0]!.metricsText = undefined; // 404
    fleet.replicas[1]!.metricsText = undefined;
    await waitFor('both replicas to serve again', async () => new Set(await servedBy('scored', 4)).size === 2, { timeoutMs: 10_000, intervalMs: 50 });
  });

  it('prefix affinity leaves its replica when that replica\u2019s own queue puts it over the load cap', async () => {
    fleet.replicas[0]!.metricsText = vllmMetrics({});
    fleet.replicas[1]!.metricsText = vllmMetrics({});
    const pinned = await chat(gateway.url, 'scored-affinity', { messages: conversation('queued', 0, SYSTEM_PROMPT) });
    assert.equal(await chat(gateway.url, 'scored-affinity', { messages: conversation('queued', 1, SYSTEM_PROMPT) }), pinned);
    const index = Number(pinned.slice(1));
    fleet.replicas[index]!.metricsText = vllmMetrics({ waiting: 8 });
    const other = `r${1 - index}`;
    await waitFor(`turn 2 to leave the queued ${pinned}`, async () => (await chat(gateway.url, 'scored-affinity', { messages: conversation('queued', 2, SYSTEM_PROMPT) })) === other, { timeoutMs: 10_000, intervalMs: 50 });
  });
});
