import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { io, type Socket } from 'socket.io-client';
import { GENERATIONS_NAMESPACE, type ClientToServerEvents, type ServerToClientEvents, type StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';
import { waitFor } from '../support/wait';

type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
const DEMO_OPTIONS = { tokenDelayMs: 15, tokens: 25 };

/** Records every stream event a socket receives, per job. */
function record(socket: ClientSocket): Map<string, StreamEvent[]> {
  const byJob = new Map<string, StreamEvent[]>();
  for (const type of ['chunk', 'usage', 'done', 'error', 'cancelled', 'restarted'] as const) {
    socket.on(type, (event: StreamEvent) => {
      const list = byJob.get(event.jobId) ?? [];
      list.push(event);
      byJob.set(event.jobId, list);
    });
  }
  return byJob;
}

describe('Socket.IO stream', () => {
  let gateway: TestGateway;
  const sockets: ClientSocket[] = [];
  const connect = async () => {
    const socket: ClientSocket = io(`${gateway.url}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return socket;
  };

  before(async () => {
    gateway = await startGateway({ models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }] });
  });
  after(async () => {
    for (const socket of sockets) socket.disconnect();
    await gateway.close();
  });

  it('delivers every chunk in order and exactly one done; a second subscriber gets the same chunks', async () => {
    const first = await connect();
    const second = await connect();
    const firstEvents = record(first);
    const secondEvents = record(second);

    const ack = await first.emitWithAck('generate', { model: 'demo', messages: [{ role: 'user', content: 'together' }] });
    assert.ok(ack.ok, JSON.stringify(ack));
    const jobId = ack.jobId;
    const subscribed = await second.emitWithAck('subscribe', { jobId, afterSeq: 0 });
    assert.ok(subscribed.ok, JSON.stringify(subscribed));

    const done = (events?: StreamEvent[]) => events?.some((e) => e.type === 'done');
    await waitFor('both sockets to receive done', () => done(firstEvents.get(jobId)) && done(secondEvents.get(jobId)));

    const expected = new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'together' }]);
    for (const events of [firstEvents.get(jobId)!, secondEvents.get(jobId)!]) {
      const seqs = events.map((e) => e.seq);
      assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'seqs are 1..n with no gap or duplicate');
      const chunks = events.filter((e) => e.type === 'chunk');
      // By content: the worker coalesces the deltas of one upstream read into one event, and a loaded machine can hand it two.
      assert.ok(chunks.every((e) => e.delta.length > 0), 'no empty chunk');
      assert.equal(chunks.map((e) => e.delta).join(''), expected.join(''));
      assert.equal(events.filter((e) => e.type === 'done').length, 1);
      assert.equal(events.at(-1)?.type, 'done');
    }
    assert.deepEqual(secondEvents.get(jobId), firstEvents.get(jobId));
  });

  it('a late subscriber with afterSeq gets only the events after it', async () => {
    const socket = await connect();
    const events = record(socket);
    const ack = await socket.emitWithAck('generate', { model: 'demo', messages: [{ role: 'user', content: 'late' }] });
    assert.ok(ack.ok);
    await waitFor('done', () => events.get(ack.jobId)?.some((e) => e.type === 'done'));

    const late = await connect();
    const lateEvents = record(late);
    assert.ok((await late.emitWithAck('subscribe', { jobId: ack.jobId, afterSeq: 10 })).ok);
    await waitFor('late done', () => lateEvents.get(ack.jobId)?.some((e) => e.type === 'done'));
    assert.deepEqual(lateEvents.get(ack.jobId), events.get(ack.jobId)!.filter((e) => e.seq > 10));
  });

  it('answers invalid payloads through the ack with a message naming the field', async () => {
    const socket = await connect();
    const bad = await socket.emitWithAck('generate', { model: 'demo', messages: 'not-a-list' } as never);
    assert.equal(bad.ok, false);
    assert.ok(!bad.ok && bad.error.code === 'invalid_request' && /messages/.test(bad.error.message), JSON.stringify(bad));
    const unknown = await socket.emitWithAck('subscribe', { jobId: 'no-such-job', afterSeq: 0 });
    assert.ok(!unknown.ok && unknown.error.code === 'not_found', JSON.stringify(unknown));
    assert.ok(socket.connected, 'bad input does not drop the connection');
  });

  it('cancel stops a running generation with one cancelled event', async () => {
    const socket = await connect();
    const events = record(socket);
    const ack = await socket.emitWithAck('generate', { model: 'demo', messages: [{ role: 'user', content: 'stop me' }] });
    assert.ok(ack.ok);
    await waitFor('first chunk', () => events.get(ack.jobId)?.some((e) => e.type === 'chunk'));
    const cancelled = await socket.emitWithAck('cancel', { jobId: ack.jobId });
    assert.ok(cancelled.ok && cancelled.cancelled);
    await waitFor('cancelled event', () => events.get(ack.jobId)?.some((e) => e.type === 'cancelled'));
    const list = events.get(ack.jobId)!;
    assert.ok(list.filter((e) => e.type === 'chunk').length < DEMO_OPTIONS.tokens, 'stopped before the end');
    assert.equal(list.filter((e) => e.type === 'cancelled' || e.type === 'done' || e.type === 'error').length, 1);
  });
});
