import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamEvent } from '@tokenwire/contracts';
import { TokenwireMetrics } from '@tokenwire/core';
import { startGateway, type TestGateway } from '../support/gateway';
import { chat, FakeFleet, readyDeployments, startGeneration } from '../support/fleet';
import { readSse } from '../support/sse-client';
import { assertCompleteStream, visibleText } from '../support/stream-assertions';
import { waitFor } from '../support/wait';
import type { FakeOpenAIScript } from '../support/fake-openai-server';

/** Busy, dead, drained and recovering replicas, seen by the client, by /readyz and by the metrics. */
describe('fleet deployment health', () => {
  const fleet = new FakeFleet();
  let gateway: TestGateway;
  /** Per replica: what it does to chat requests right now (undefined: answers with its name). */
  const misbehave: Array<FakeOpenAIScript | undefined> = [];
  const model = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    provider: 'openai-compatible',
    deployments: fleet.deployments(),
    routing: { strategy: 'round-robin' as const, maxAttempts: 2, queueTimeoutMs: 2_000 },
    ...extra,
  });
  const metric = async (name: string, model: string, deployment: string) => {
    const metrics = gateway.worker.get(TokenwireMetrics);
    const values = (await metrics.registry.getSingleMetric(name)!.get()).values;
    return values.filter((v) => v.labels.model === model && v.labels.deployment === deployment).reduce((sum, v) => sum + v.value, 0);
  };

  before(async () => {
    await fleet.start(2);
    fleet.behave = (replica) => misbehave[replica] ?? {};
    gateway = await startGateway({
      worker: { concurrency: 20 },
      models: [
        model('dead', { health: { ejectAfterFailures: 2, ejectMs: 60_000, probePath: null } }),
        model('recovering', { health: { ejectAfterFailures: 2, ejectMs: 300, probePath: null } }),
        model('busy-429', { health: { probePath: null } }),
        model('busy-503', { health: { probePath: null } }),
        model('probed', { routing: { strategy: 'least-outstanding' as const }, health: { probeIntervalMs: 100, probeTimeoutMs: 1_000 } }),
        model('midstream', { health: { probePath: null } }),
      ],
    });
  });
  after(async () => {
    await gateway.close();
    await fleet.stop();
  });

  it('retries a failed replica on a different one before the first token, and ejects it after consecutive failures', async () => {
    misbehave[0] = { status: 500 };
    try {
      const before = fleet.replicas[0]!.requests.length;
      const replies: string[] = [];
      for (let i = 0; i < 8; i++) replies.push(await chat(gateway.url, 'dead'));
      assert.deepEqual(new Set(replies), new Set(['r1']), 'every request is answered by the healthy replica');
      // maxAttempts 2 with a retry on the *same* replica would have failed requests; two failures eject r0.
      assert.equal(fleet.replicas[0]!.requests.length - before, 2, 'r0 gets two requests, then no more');
      const view = await readyDeployments(gateway.url, 'dead');
      assert.equal(view.r0?.state, 'ejected');
      assert.equal(view.r1?.state, 'up');
      assert.equal(await metric('tokenwire_deployment_ejections_total', 'dead', 'r0'), 1);
    } finally {
      misbehave[0] = undefined;
    }
  });

  it('re-admits an ejected replica after one successful trial request', async () => {
    misbehave[0] = { status: 502 };
    for (let i = 0; i < 4; i++) await chat(gateway.url, 'recovering');
    assert.equal((await readyDeployments(gateway.url, 'recovering')).r0?.state, 'ejected');
    misbehave[0] = undefined;
    await waitFor('r0 to serve again after its trial', async () => (await chat(gateway.url, 'recovering')) === 'r0');
    assert.equal((await readyDeployments(gateway.url, 'recovering')).r0?.state, 'up');
  });

  for (const [status, state] of [
    [429, 'busy'],
    [503, 'draining'],
  ] as const) {
    it(`treats ${status} as ${state}: backs the replica off for Retry-After, without counting a failure or opening a breaker`, async () => {
      const name = `busy-${status}`;
      misbehave[0] = { status, retryAfter: '30' };
      try {
        const before = fleet.replicas[0]!.requests.length;
        const replies: string[] = [];
        for (let i = 0; i < 6; i++) replies.push(await chat(gateway.url, name));
        assert.deepEqual(new Set(replies), new Set(['r1']));
        assert.equal(fleet.replicas[0]!.requests.length - before, 1, 'one request meets the answer, then the replica backs off');
        const view = await readyDeployments(gateway.url, name);
        assert.equal(view.r0?.state, state);
        assert.equal(view.r0?.failures, 0);
        assert.ok(view.r0!.until! - Date.now() > 20_000, `backs off for Retry-After (30 s), until ${view.r0?.until}`);
        assert.equal(await metric('tokenwire_deployment_ejections_total', name, 'r0'), 0);
        const readyz = (await (await fetch(`${gateway.url}/readyz`)).json()) as { upstreams: Record<string, unknown> };
        assert.equal(readyz.upstreams[name], undefined, 'no circuit breaker changed state');
      } finally {
        misbehave[0] = undefined;
      }
    });
  }

  it('drains a replica whose probe fails: no new requests, its running stream finishes', async () => {
    // Long enough to still run after the probe drained its replica, even on a loaded machine.
    misbehave[0] = misbehave[1] = { tokens: ['long', ' reply', ' that', ' takes', ' a', ' while'], tokenDelayMs: 1_000 };
    const id = await startGeneration(gateway.url, 'probed', 'a long one');
    const busy = await waitFor('the stream to reach a replica', () => {
      const index = fleet.replicas.findIndex((replica) => replica.active > 0);
      return index >= 0 ? { index } : undefined;
    });
    const other = 1 - busy.index;
    misbehave[0] = misbehave[1] = undefined;
    const stream = readSse(`${gateway.url}/v1/generations/${id}/events`);
    fleet.replicas[busy.index]!.healthStatus = 503;
    try {
      await waitFor(`r${busy.index} to be drained`, async () => (await readyDeployments(gateway.url, 'probed'))[`r${busy.index}`]?.state === 'drained');
      const view = await readyDeployments(gateway.url, 'probed');
      assert.equal(view[`r${busy.index}`]?.inFlight, 1, 'the running stream still counts on the drained replica');
      for (let i = 0; i < 4; i++) assert.equal(await chat(gateway.url, 'probed'), `r${other}`);
      const events = (await stream).events.map((event) => JSON.parse(event.data) as StreamEvent);
      assertCompleteStream(events);
      assert.equal(events.at(-1)?.type, 'done');
      assert.equal(visibleText(events), 'long reply that takes a while');
    } finally {
      fleet.replicas[busy.index]!.healthStatus = 200;
    }
    await waitFor(`r${busy.index} to be up again`, async () => (await readyDeployments(gateway.url, 'probed'))[`r${busy.index}`]?.state === 'up');
  });

  it('ends a stream whose replica dies after the first token with one error, without trying another replica', async () => {
    misbehave[0] = misbehave[1] = { tokens: ['partial', ' never'], dropAfter: 1 };
    try {
      const before = fleet.counts();
      const id = await startGeneration(gateway.url, 'midstream', 'hello');
      const events = (await readSse(`${gateway.url}/v1/generations/${id}/events`)).events.map((event) => JSON.parse(event.data) as StreamEvent);
      assertCompleteStream(events);
      assert.equal(events.at(-1)?.type, 'error');
      assert.equal(visibleText(events), 'partial');
      const sent = fleet.counts().map((count, index) => count - before[index]!);
      assert.equal(sent.reduce((a, b) => a + b), 1, `one replica was called, not a second after the first token: ${sent}`);
    } finally {
      misbehave[0] = misbehave[1] = undefined;
    }
  });

  it('lists every deployment with its state and in-flight count in /readyz', async () => {
    const view = await readyDeployments(gateway.url, 'midstream');
    assert.deepEqual(Object.keys(view).sort(), ['r0', 'r1']);
    for (const [id, deployment] of Object.entries(view)) {
      assert.equal(deployment.inFlight, 0, `${id} has nothing running`);
      assert.match(deployment.url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    }
  });
});
