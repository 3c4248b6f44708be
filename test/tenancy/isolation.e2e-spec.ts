import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';
import { readSse } from '../support/sse-client';
import { assertCompleteStream } from '../support/stream-assertions';
import { OPERATOR_TOKEN, connectSocket, createKey, hasTerminal, recordEvents, type ClientSocket } from '../support/tenants';
import { waitFor } from '../support/wait';

const DEMO_OPTIONS = { tokenDelayMs: 20, tokens: 40 };

describe('tenant isolation', () => {
  let gateway: TestGateway;
  let keyA: string;
  let keyB: string;
  const sockets: ClientSocket[] = [];

  before(async () => {
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }],
    });
    [keyA, keyB] = await Promise.all([createKey(gateway.url, 'tenant-a'), createKey(gateway.url, 'tenant-b')]);
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await gateway.close();
  });
  const socketFor = async (key: string) => {
    const socket = await connectSocket(gateway.url, key);
    sockets.push(socket);
    return socket;
  };
  const http = (path: string, key: string | undefined, init: RequestInit = {}) =>
    fetch(`${gateway.url}${path}`, {
      ...init,
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...init.headers },
    });

  it('HTTP needs a valid key: none or a wrong one is a 401 in OpenAI format', async () => {
    const body = JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'x' }] });
    for (const key of [undefined, 'tw_not-a-real-key', OPERATOR_TOKEN.replace('0', '1')]) {
      const response = await http('/v1/chat/completions', key, { method: 'POST', body });
      assert.equal(response.status, 401, `key ${key}`);
      const error = (await response.json()) as { error: { type: string; code: string } };
      assert.equal(error.error.type, 'authentication_error');
    }
    assert.equal((await http('/healthz', undefined)).status, 200, 'health probes are public');
  });

  it('a socket without a valid key is refused in the handshake, before any event', async () => {
    await assert.rejects(connectSocket(gateway.url), /missing API key/);
    await assert.rejects(connectSocket(gateway.url, 'tw_bogus'), /invalid or revoked/);
  });

  it("tenant B cannot read, stream, subscribe to or cancel tenant A's generation; A's stream is unaffected", async () => {
    const a = await socketFor(keyA);
    const eventsA = recordEvents(a);
    const ack = await a.emitWithAck('generate', { model: 'demo', messages: [{ role: 'user', content: 'private' }] });
    assert.ok(ack.ok);
    const jobId = ack.jobId;

    // HTTP and SSE as tenant B: as if the id did not exist.
    assert.equal((await http(`/v1/generations/${jobId}`, keyB)).status, 404);
    assert.equal((await http(`/v1/generations/${jobId}/events`, keyB)).status, 404);
    assert.equal((await http(`/v1/generations/${jobId}`, keyB, { method: 'DELETE' })).status, 404);
    // Socket.IO as tenant B.
    const b = await socketFor(keyB);
    const eventsB = recordEvents(b);
    const subscribed = await b.emitWithAck('subscribe', { jobId, afterSeq: 0 });
    assert.ok(!subscribed.ok && subscribed.error.code === 'not_found');
    const cancelled = await b.emitWithAck('cancel', { jobId });
    assert.ok(!cancelled.ok && cancelled.error.code === 'not_found');

    await waitFor("A's done", () => hasTerminal(eventsA.get(jobId)));
    const events = eventsA.get(jobId)!;
    assertCompleteStream(events);
    assert.equal(events.at(-1)?.type, 'done', "A's generation ran to the end");
    assert.equal(eventsB.size, 0, 'B received nothing');
    // A itself can read its own result.
    const view = (await (await http(`/v1/generations/${jobId}`, keyA)).json()) as { status: string };
    assert.equal(view.status, 'done');
  });

  it("rooms are per tenant: B joining A's conversation id lands in its own room and sees nothing of A's", async () => {
    const a1 = await socketFor(keyA);
    const a2 = await socketFor(keyA);
    const b = await socketFor(keyB);
    const [eventsA1, eventsA2, eventsB] = [recordEvents(a1), recordEvents(a2), recordEvents(b)];
    for (const socket of [a1, a2, b]) assert.ok((await socket.emitWithAck('join', { conversationId: 'team-room' })).ok);

    const ack = await a1.emitWithAck('generate', { conversationId: 'team-room', model: 'demo', messages: [{ role: 'user', content: 'room talk' }] });
    assert.ok(ack.ok);
    await waitFor('both A members to get done', () => hasTerminal(eventsA1.get(ack.jobId)) && hasTerminal(eventsA2.get(ack.jobId)));
    assert.deepEqual(eventsA2.get(ack.jobId), eventsA1.get(ack.jobId), 'every member of the room saw the same stream');
    assert.equal(eventsB.size, 0, "tenant B's member of the same-named room saw nothing");
  });

  it('a late joiner of a room gets the running generation from the start, then live', async () => {
    const first = await socketFor(keyA);
    const eventsFirst = recordEvents(first);
    assert.ok((await first.emitWithAck('join', { conversationId: 'late-room' })).ok);
    const ack = await first.emitWithAck('generate', { conversationId: 'late-room', model: 'demo', messages: [{ role: 'user', content: 'late' }] });
    assert.ok(ack.ok);
    await waitFor('some chunks', () => (eventsFirst.get(ack.jobId)?.length ?? 0) >= 10);

    const late = await socketFor(keyA);
    const eventsLate = recordEvents(late);
    const joined = await late.emitWithAck('join', { conversationId: 'late-room' });
    assert.ok(joined.ok && joined.jobId === ack.jobId, 'the join ack names the running generation');
    await waitFor('the late joiner to get done', () => hasTerminal(eventsLate.get(ack.jobId)));
    assertCompleteStream(eventsLate.get(ack.jobId)!);
    assert.deepEqual(eventsLate.get(ack.jobId), eventsFirst.get(ack.jobId));
    const text = eventsLate.get(ack.jobId)!.map((e) => (e.type === 'chunk' ? e.delta : '')).join('');
    assert.equal(text, new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'late' }]).join(''));
  });

  it('generating in a room needs membership', async () => {
    const socket = await socketFor(keyA);
    const ack = await socket.emitWithAck('generate', { conversationId: 'not-joined', model: 'demo', messages: [{ role: 'user', content: 'x' }] });
    assert.ok(!ack.ok && ack.error.param === 'conversationId' && /join/.test(ack.error.message));
  });

  it('usage is per tenant', async () => {
    const usageA = (await (await http('/v1/usage', keyA)).json()) as { tenantId: string; models: Record<string, { requests: number; completionTokens: number }> };
    const usageB = (await (await http('/v1/usage', keyB)).json()) as { tenantId: string; models: Record<string, unknown> };
    assert.equal(usageA.tenantId, 'tenant-a');
    assert.ok(usageA.models.demo!.requests >= 3);
    assert.ok(usageA.models.demo!.completionTokens >= 3 * DEMO_OPTIONS.tokens);
    assert.deepEqual(usageB.models, {}, 'B generated nothing and sees none of A');
  });

  it('keys: a tenant admin manages only its own keys; a revoked key stops working at once', async () => {
    const admin = await createKey(gateway.url, 'tenant-c', 'admin');
    const created = await http('/v1/admin/keys', admin, { method: 'POST', body: JSON.stringify({ name: 'ci' }) });
    assert.equal(created.status, 201);
    const { id, key, tenantId } = (await created.json()) as { id: string; key: string; tenantId: string };
    assert.equal(tenantId, 'tenant-c');
    assert.equal((await http('/v1/usage', key)).status, 200);

    const foreign = await http('/v1/admin/keys', admin, { method: 'POST', body: JSON.stringify({ tenantId: 'tenant-a' }) });
    assert.equal(foreign.status, 404, 'cannot create keys for another tenant');
    const list = (await (await http('/v1/admin/keys', admin)).json()) as { data: Array<{ tenantId: string; key?: string }> };
    assert.ok(list.data.every((k) => k.tenantId === 'tenant-c' && k.key === undefined), 'lists only its tenant, never secrets');
    assert.equal((await http('/v1/admin/keys', keyA)).status, 403, 'a member key cannot manage keys');

    assert.equal((await http(`/v1/admin/keys/${id}`, admin, { method: 'DELETE' })).status, 200);
    assert.equal((await http('/v1/usage', key)).status, 401);
  });
});

describe('queue dashboard', () => {
  let gateway: TestGateway;
  before(async () => {
    gateway = await startGateway({ auth: { enabled: true, adminToken: OPERATOR_TOKEN }, models: [{ name: 'demo', provider: 'demo', options: {} }] });
  });
  after(() => gateway.close());

  it('is only for the operator token (Bearer, or Basic with the token as password)', async () => {
    const key = await createKey(gateway.url, 'tenant-a', 'admin');
    assert.equal((await fetch(`${gateway.url}/admin/queues`)).status, 401);
    assert.equal((await fetch(`${gateway.url}/admin/queues`, { headers: { authorization: `Bearer ${key}` } })).status, 401, 'a tenant admin key is not enough');
    const page = await fetch(`${gateway.url}/admin/queues`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const basic = Buffer.from(`admin:${OPERATOR_TOKEN}`).toString('base64');
    const queues = await fetch(`${gateway.url}/admin/queues/api/queues`, { headers: { authorization: `Basic ${basic}` } });
    assert.equal(queues.status, 200);
    assert.match(await queues.text(), /generations/);
  });
});
