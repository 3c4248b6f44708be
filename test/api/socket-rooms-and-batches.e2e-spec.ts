import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { MAX_BATCH_WATCHES_PER_SOCKET, RoomBusService, SocketBatchWatchesService } from '@tokenwire/api';
import { redisKeys, type RoomGenerationEvent } from '@tokenwire/contracts';
import { REDIS_CLIENT } from '@tokenwire/core';
import { startGateway, type TestGateway } from '../support/gateway';
import { assertCompleteStream } from '../support/stream-assertions';
import { connectSocket, recordEvents, type ClientSocket } from '../support/tenants';
import { createGeneration } from '../support/long-replies';
import { waitFor } from '../support/wait';

/** Rooms across a Redis reconnect and a join race, and bounded batch watches (issue #16, 5 and 6). */
describe('socket rooms and batch watches', () => {
  let gateway: TestGateway;
  const sockets: ClientSocket[] = [];
  const socket = async () => {
    const s = await connectSocket(gateway.url);
    sockets.push(s);
    return s;
  };

  before(async () => {
    gateway = await startGateway({
      worker: { coalesce: 'off', shutdownGraceMs: 1_000 },
      models: [
        { name: 'demo', provider: 'demo', options: { tokenDelayMs: 30, tokens: 30 } },
        // Batches that stay running while the test watches them.
        { name: 'slow', provider: 'demo', options: { tokenDelayMs: 200, tokens: 300 } },
      ],
    });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await gateway.close();
  });

  const room = (conversationId: string) => ({ tenantId: 'default', conversationId });
  const redis = () => gateway.api.app.get<Redis>(REDIS_CLIENT);

  it('a generation announced while the room subscriber was disconnected is still followed after it reconnects', async () => {
    const member = await socket();
    const announced: RoomGenerationEvent[] = [];
    member.on('generation', (event) => announced.push(event));
    const received = recordEvents(member);
    assert.ok((await member.emitWithAck('join', { conversationId: 'outage' })).ok);

    const jobId = await createGeneration(gateway.url, 'demo', 'during the outage');
    // The room bus's own connection, found by its local port (other tests' gateways share this Redis).
    const bus = gateway.api.app.get(RoomBusService) as unknown as { subscriber: { stream: { localPort: number } } };
    const port = bus.subscriber.stream.localPort;
    const clients = (await redis().client('LIST')) as string;
    const id = /id=(\d+) addr=\S+:(\d+) /.exec(clients.split('\n').find((line) => line.includes(`:${port} `) && line.includes('tokenwire-api-rooms')) ?? '')?.[1];
    assert.ok(id, 'found the room subscriber connection');
    // Killed and announced in one transaction: the announcement cannot reach the subscriber.
    const k = redisKeys(gateway.prefix);
    await redis().multi().client('KILL', 'ID', id).set(k.roomGeneration('default', 'outage'), jobId).publish(k.roomChannel('default', 'outage'), jobId).exec();

    await waitFor('the generation after the reconnect', () => received.get(jobId)?.at(-1)?.type === 'done', { timeoutMs: 20_000 });
    assert.deepEqual(announced, [{ conversationId: 'outage', jobId }]);
    assertCompleteStream(received.get(jobId)!);
  });

  it('a generation that starts between listening and reading the room is followed once, not twice', async () => {
    const starter = await socket();
    assert.ok((await starter.emitWithAck('join', { conversationId: 'race' })).ok);
    const bus = gateway.api.app.get(RoomBusService);
    let jobId = '';
    const joiner = await socket();
    const announced: RoomGenerationEvent[] = [];
    joiner.on('generation', (event) => announced.push(event));
    const received = recordEvents(joiner);
    // Between the joiner's SUBSCRIBE and its read of the room, a generation starts there.
    bus.afterListen = async () => {
      bus.afterListen = undefined;
      const ack = await starter.emitWithAck('generate', { model: 'demo', conversationId: 'race', messages: [{ role: 'user', content: 'race' }] });
      assert.ok(ack.ok);
      jobId = ack.jobId;
    };
    // The room is already listened to by the starter's join; a new room name forces the subscribe.
    await bus.forget(room('race'));
    const joined = await joiner.emitWithAck('join', { conversationId: 'race' });
    assert.ok(joined.ok && jobId);
    await waitFor('the stream to end', () => received.get(jobId)?.some((e) => e.type === 'done'), { timeoutMs: 20_000 });
    assertCompleteStream(received.get(jobId)!);
    assert.deepEqual(announced, [{ conversationId: 'race', jobId }], 'announced once');
  });

  it('subscribe-batch is bounded per socket, one watch per batch, and stops when the socket disconnects', async () => {
    const line = (id: string) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'slow', messages: [{ role: 'user', content: id }] } });
    const batchIds: string[] = [];
    for (let i = 0; i <= MAX_BATCH_WATCHES_PER_SOCKET; i++) {
      const response = await fetch(`${gateway.url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/jsonl' }, body: line(`b${i}`) });
      batchIds.push(((await response.json()) as { id: string }).id);
    }
    const watcher = await socket();
    const watches = gateway.api.app.get(SocketBatchWatchesService);
    const before = watches.total();
    for (const batchId of batchIds.slice(0, MAX_BATCH_WATCHES_PER_SOCKET)) {
      assert.ok((await watcher.emitWithAck('subscribe-batch', { batchId })).ok);
      assert.ok((await watcher.emitWithAck('subscribe-batch', { batchId })).ok, 'the same batch again is fine');
    }
    const over = await watcher.emitWithAck('subscribe-batch', { batchId: batchIds.at(-1)! });
    assert.ok(!over.ok && over.error.code === 'rate_limited', JSON.stringify(over));
    assert.match(over.error.message, new RegExp(`at most ${MAX_BATCH_WATCHES_PER_SOCKET} batches`));
    assert.ok(watches.total() - before <= MAX_BATCH_WATCHES_PER_SOCKET, 'one poll per batch, not per subscribe');
    watcher.close();
    await waitFor('the polls to stop', () => watches.total() === before);
    for (const batchId of batchIds) await fetch(`${gateway.url}/v1/batches/${batchId}/cancel`, { method: 'POST' });
  });
});
