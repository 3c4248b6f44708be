import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../support/gateway';
import { chat, conversation, FakeFleet, readyDeployments } from '../support/fleet';
import { waitFor } from '../support/wait';

const SYSTEM_PROMPT = `You are the support assistant of an online shop. ${'Answer politely and briefly. '.repeat(8)}`;

/**
 * How prefix affinity keeps replicas evenly loaded: conversations between turns still count on
 * their replica, a first turn too short to match still brings its next turn back, and a replica
 * left idle gets a conversation back even when the absolute load margin would allow the gap.
 */
describe('fleet load balance under prefix affinity', () => {
  const fleet = new FakeFleet();
  let gateway: TestGateway;
  /** While true, r1 answers 429 (busy), so conversations settle on r0. */
  let r1Busy = false;
  /** Milliseconds before each token (a turn holds its slot that long). */
  let tokenDelayMs = 0;
  const affinity = { strategy: 'prefix-affinity' as const, chunkChars: 64, minMatchChunks: 6 };
  const model = (name: string, routing: Record<string, unknown>, health: Record<string, unknown> = {}) => ({
    name,
    provider: 'openai-compatible',
    deployments: fleet.deployments(),
    routing: { ...affinity, ...routing },
    health: { probePath: null, ...health },
  });

  before(async () => {
    await fleet.start(2);
    fleet.behave = (replica) => (replica === 1 && r1Busy ? { status: 429 } : { tokenDelayMs });
    gateway = await startGateway({
      worker: { concurrency: 50 },
      models: [
        // leaseMs 2 s: the workers sweep expired entries every second.
        model('gaps', { turnGapMs: 1_500, leaseMs: 2_000, loadRatio: 0 }),
        model('short-first', { minMatchChunks: 20, loadRatio: 0, turnGapMs: 10_000 }),
        model('rebalanced', { loadMargin: 2, loadRatio: 1.5, turnGapMs: 10_000, maxAttempts: 2 }, { busyBackoffMs: 2_000 }),
        model('margin-only', { loadMargin: 2, loadRatio: 0, turnGapMs: 10_000, maxAttempts: 2 }, { busyBackoffMs: 2_000 }),
      ],
    });
  });
  after(async () => {
    await gateway.close();
    await fleet.stop();
  });

  it('a conversation between turns counts once on its replica, until its next turn or turnGapMs', async () => {
    const home = await chat(gateway.url, 'gaps', { messages: conversation('gap', 0, SYSTEM_PROMPT) });
    const other = home === 'r0' ? 'r1' : 'r0';
    let view = await readyDeployments(gateway.url, 'gaps');
    assert.equal(view[home]?.betweenTurns, 1, `the ended turn counts on ${home}: ${JSON.stringify(view)}`);
    assert.equal(view[home]?.inFlight, 0, 'and is not in flight');

    assert.equal(await chat(gateway.url, 'gaps', { messages: conversation('gap', 1, SYSTEM_PROMPT) }), home, 'the next turn follows its prefix');
    view = await readyDeployments(gateway.url, 'gaps');
    assert.equal(view[home]?.betweenTurns, 1, `the next turn took the first one's place (not 2): ${JSON.stringify(view)}`);
    assert.equal(view[other]?.betweenTurns, 0);

    const endedAt = Date.now();
    await waitFor('the conversation to stop counting once no turn came', async () => (await readyDeployments(gateway.url, 'gaps'))[home]?.betweenTurns === 0, {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    // Not at once: the entry was made just before the reply (the slack is the reply's way to the client).
    assert.ok(Date.now() - endedAt >= 1_000, `it stopped counting after ${Date.now() - endedAt} ms, well before turnGapMs (1500)`);
  });

  it('a first turn shorter than the minimum match still brings its next turns to its replica', async () => {
    // Every prompt here is under 20 chunks, so no turn leaves a prefix entry; the ended turn is what links them.
    const served = new Map<string, Set<string>>();
    for (let turn = 0; turn < 3; turn++) {
      // Three (odd): round-robin tie rotation alone would move each conversation at every turn.
      for (const id of ['s0', 's1', 's2']) {
        const reply = await chat(gateway.url, 'short-first', { messages: conversation(id, turn, SYSTEM_PROMPT) });
        served.set(id, (served.get(id) ?? new Set()).add(reply));
      }
    }
    for (const [id, replicas] of served) assert.equal(replicas.size, 1, `conversation ${id} moved between ${[...replicas]}`);
    assert.equal(new Set([...served.values()].flatMap((replicas) => [...replicas])).size, 2, 'the three conversations use both replicas');
  });

  /** Three conversations settle on r0 while r1 is busy; then r1 is back and they run 6 more turns each, at once. */
  async function runAfterR1WasBusy(modelName: string): Promise<Map<string, string[]>> {
    const ids = ['b0', 'b1', 'b2'].map((id) => `${modelName}-${id}`);
    r1Busy = true;
    try {
      for (const id of ids) assert.equal(await chat(gateway.url, modelName, { messages: conversation(id, 0, SYSTEM_PROMPT) }), 'r0', 'r1 is busy: r0 serves the first turns');
    } finally {
      r1Busy = false;
    }
    await waitFor('r1 to be up again', async () => (await readyDeployments(gateway.url, modelName)).r1?.state === 'up', { timeoutMs: 10_000, intervalMs: 100 });
    tokenDelayMs = 150;
    try {
      const served = new Map<string, string[]>();
      await Promise.all(
        ids.map(async (id) => {
          const replies: string[] = [];
          for (let turn = 1; turn <= 6; turn++) replies.push(await chat(gateway.url, modelName, { messages: conversation(id, turn, SYSTEM_PROMPT) }));
          served.set(id, replies);
        }),
      );
      return served;
    } finally {
      tokenDelayMs = 0;
    }
  }

  it('with the load margin alone, three conversations stay on one replica while the other idles (the case loadRatio is for)', async () => {
    const served = await runAfterR1WasBusy('margin-only');
    for (const [id, replies] of served) assert.deepEqual(new Set(replies), new Set(['r0']), `${id}: ${replies}`);
  });

  it('loadRatio moves a conversation to the idle replica, where it stays, and moves no more than narrows the gap', async () => {
    const served = await runAfterR1WasBusy('rebalanced');
    const moved = [...served].filter(([, replies]) => replies.includes('r1'));
    assert.ok(moved.length >= 1, `no conversation moved to the idle r1: ${JSON.stringify([...served])}`);
    for (const [id, replies] of moved) {
      const from = replies.indexOf('r1');
      assert.deepEqual(new Set(replies.slice(from)), new Set(['r1']), `${id} went back after moving: ${replies}`);
    }
    assert.ok(moved.length < served.size, `every conversation left r0 (a herd): ${JSON.stringify([...served])}`);
  });
});
