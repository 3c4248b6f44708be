import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../support/gateway';
import { chat, conversation, FakeFleet } from '../support/fleet';
import { waitFor } from '../support/wait';

const SYSTEM_PROMPT = `You are the support assistant of an online shop. ${'Answer politely and briefly. '.repeat(8)}`;
const SLOW = 'SLOW:';

/**
 * Each strategy against four real HTTP replicas; a reply names the replica that served it.
 * Health probes are off: a probe that times out on a starved CI machine drains its replica for a
 * probe interval and moves its share elsewhere, which is the health rule (tested in its own file), not the strategy's.
 */
describe('fleet routing strategies', () => {
  const fleet = new FakeFleet();
  let gateway: TestGateway;
  const model = (name: string, routing: Record<string, unknown>, extra: (index: number) => Record<string, unknown> = () => ({})) => ({
    name,
    provider: 'openai-compatible',
    deployments: fleet.deployments(extra),
    routing,
    health: { probePath: null },
  });

  before(async () => {
    await fleet.start(4);
    // A request whose last message starts with SLOW: streams for a while (it holds an in-flight slot).
    fleet.behave = (replica, body) => {
      const messages = body.messages as Array<{ content: string }>;
      return messages[messages.length - 1]!.content.startsWith(SLOW) ? { tokens: [`r${replica}`, 'slowly'], tokenDelayMs: 1_000 } : {};
    };
    const affinity = { strategy: 'prefix-affinity', chunkChars: 64, minMatchChunks: 6 };
    gateway = await startGateway({
      worker: { concurrency: 50 },
      models: [
        model('rr', { strategy: 'round-robin' }),
        model('weighted', { strategy: 'weighted-random' }, (index) => ({ weight: index === 0 ? 6 : 1 })),
        model('least', { strategy: 'least-outstanding' }),
        model('affinity', affinity),
        // The same with a minimum match of one chunk: the shared system prompt alone decides (no load
        // rule moves anything: finished conversations do not count, no ratio cap).
        model('affinity-min1', { ...affinity, minMatchChunks: 1, turnGapMs: 0, loadRatio: 0 }),
        model('affinity-capped', { ...affinity, loadMargin: 1 }),
      ],
    });
  });
  after(async () => {
    await gateway.close();
    await fleet.stop();
  });

  const served = (replies: string[]) => [0, 1, 2, 3].map((index) => replies.filter((reply) => reply.startsWith(`r${index}`)).length);

  it('round robin gives each replica the same share', async () => {
    const replies: string[] = [];
    for (let i = 0; i < 12; i++) replies.push(await chat(gateway.url, 'rr'));
    assert.deepEqual(served(replies), [3, 3, 3, 3]);
  });

  it('weighted random follows the weights', async () => {
    const replies = await Promise.all(Array.from({ length: 30 }, () => chat(gateway.url, 'weighted')));
    const counts = served(replies);
    // Expected 20 : 3.3 : 3.3 : 3.3; the bounds leave room for chance (each holds with probability > 0.999).
    assert.ok(counts[0]! >= 12, `r0 (weight 6) served ${counts[0]} of 30: ${counts}`);
    assert.ok(counts.slice(1).every((count) => count <= 10), `weight-1 replicas served ${counts.slice(1)}`);
  });

  it('least outstanding sends nothing more to a replica that is still busy', async () => {
    // Four closed-loop clients; one request is slow. While it runs, its replica has one in flight and,
    // whenever a client picks, at least one other replica has none: least outstanding never sends it more.
    // (Round robin would hand it every fourth request.)
    const startedAt = performance.now();
    let slowSent = false;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 6; i++) {
          const slow = !slowSent;
          slowSent = true;
          await chat(gateway.url, 'least', { messages: [{ role: 'user', content: slow ? `${SLOW} hold` : `quick ${i}` }] });
        }
      }),
    );
    const ofThisTest = (replica: (typeof fleet.replicas)[number]) => replica.requests.filter((r) => r.startedAt >= startedAt);
    const busy = fleet.replicas.find((replica) => ofThisTest(replica).some((r) => JSON.stringify(r.body).includes(SLOW)))!;
    const slow = ofThisTest(busy).find((r) => JSON.stringify(r.body).includes(SLOW))!;
    const during = (r: { startedAt: number }) => r.startedAt > slow.startedAt && r.startedAt < slow.endedAt!;
    const elsewhere = fleet.replicas.filter((replica) => replica !== busy).flatMap(ofThisTest).filter(during).length;
    assert.ok(elsewhere >= 3, `the other replicas served ${elsewhere} requests while the slow one ran (the test needs some)`);
    assert.equal(ofThisTest(busy).filter(during).length, 0, 'the busy replica got a request while its slow one ran');
  });

  it('prefix affinity keeps each conversation on one replica and spreads conversations', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `c${i}`);
    const byConversation = new Map<string, Set<string>>(ids.map((id) => [id, new Set()]));
    for (let turn = 0; turn < 3; turn++) {
      for (const id of ids) {
        const reply = await chat(gateway.url, 'affinity', { messages: conversation(id, turn, SYSTEM_PROMPT) });
        byConversation.get(id)!.add(reply);
      }
    }
    for (const [id, replicas] of byConversation) assert.equal(replicas.size, 1, `conversation ${id} moved between ${[...replicas]}`);
    const used = new Set([...byConversation.values()].flatMap((replicas) => [...replicas]));
    assert.ok(used.size >= 3, `8 conversations landed on only ${[...used]}`);
  });

  it('the minimum match keeps a shared system prompt from pinning everything to one replica', async () => {
    // Control: with a one-chunk minimum, the system prompt's chunks send every new conversation to the same replica.
    const pinned = new Set<string>();
    const spread = new Set<string>();
    for (let i = 0; i < 6; i++) {
      pinned.add(await chat(gateway.url, 'affinity-min1', { messages: conversation(`min1-${i}`, 0, SYSTEM_PROMPT) }));
      spread.add(await chat(gateway.url, 'affinity', { messages: conversation(`min6-${i}`, 0, SYSTEM_PROMPT) }));
    }
    assert.equal(pinned.size, 1, `min match 1 should pin new conversations together, got ${[...pinned]}`);
    assert.ok(spread.size >= 3, `min match 6 should spread new conversations, got ${[...spread]}`);
  });

  it('prefix affinity passes over its replica when that one is over the load cap', async () => {
    const home = await chat(gateway.url, 'affinity-capped', { messages: conversation('capped', 0, SYSTEM_PROMPT) });
    // Three slow turns of the same conversation at once: margin 1 lets the home replica take two (1 ≤ 0+1), not three.
    const messages = conversation('capped', 1, SYSTEM_PROMPT);
    messages[messages.length - 1]!.content = `${SLOW} ${messages[messages.length - 1]!.content}`;
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) {
      const reply = chat(gateway.url, 'affinity-capped', { messages }).then((text) => replies.push(text));
      // Sequential picks: each request is routed before the next is sent.
      await waitFor(`request ${i + 1} to reach a replica`, () => fleet.replicas.reduce((sum, r) => sum + r.active, 0) >= i + 1);
      if (i === 2) await reply;
    }
    await waitFor('three replies', () => replies.length === 3);
    const atHome = replies.filter((reply) => reply === `${home}slowly`).length;
    assert.equal(atHome, 2, `home ${home} took ${atHome} of 3 (replies: ${replies})`);
  });

  it('an explicit session key (X-Session-Id, prompt_cache_key, user) keeps unrelated prompts on one replica', async () => {
    const sessions: Array<{ name: string; options: (i: number) => Parameters<typeof chat>[2] }> = [
      { name: 'header', options: (i) => ({ headers: { 'x-session-id': 'session-a' }, messages: [{ role: 'user', content: `unrelated prompt ${i}` }] }) },
      { name: 'prompt_cache_key', options: (i) => ({ body: { prompt_cache_key: 'cache-b' }, messages: [{ role: 'user', content: `other prompt ${i}` }] }) },
      { name: 'user', options: (i) => ({ body: { user: 'user-c' }, messages: [{ role: 'user', content: `third prompt ${i}` }] }) },
    ];
    for (const session of sessions) {
      const replies = new Set<string>();
      for (let i = 0; i < 5; i++) replies.add(await chat(gateway.url, 'affinity', session.options(i)));
      assert.equal(replies.size, 1, `${session.name}: the session moved between ${[...replies]}`);
    }
  });
});
