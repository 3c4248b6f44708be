import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createApi, type RunningApi } from '@tokenwire/api';
import type { ConnectionErrorEvent } from '@tokenwire/contracts';
import { testConfig } from '../support/gateway';
import { deletePrefix } from '../support/redis';
import { OPERATOR_TOKEN, connectSocket, createKey, type ClientSocket } from '../support/tenants';
import { waitFor } from '../support/wait';

const SOCKET_MAX_BYTES = 10_000;
const request = (content = 'hi') => ({ model: 'demo', messages: [{ role: 'user' as const, content }] });

/** Every socket event gets an answer: unknown events, too-large frames, repeated cancels, the wrong credential. */
describe('socket events are always answered', () => {
  const config = testConfig({
    auth: { enabled: true, adminToken: OPERATOR_TOKEN },
    api: { socketMaxBytes: SOCKET_MAX_BYTES },
    models: [{ name: 'demo', provider: 'demo', options: {} }],
  });
  let api: RunningApi;
  let key: string;
  const sockets: ClientSocket[] = [];

  before(async () => {
    api = await createApi(config, {});
    key = await createKey(api.url, 'acme');
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await api.close();
    await deletePrefix(config.redis.prefix);
  });
  const connect = async () => {
    const socket = await connectSocket(api.url, key);
    sockets.push(socket);
    return socket;
  };

  it('an unknown event with an ack is answered unknown_event, naming the events there are', async () => {
    const socket = await connect();
    // A bounded wait: an unanswered event must fail the test, not hang it.
    const untyped = socket.timeout(5_000) as unknown as { emitWithAck(event: string, ...args: unknown[]): Promise<{ ok: boolean; error?: { code: string; message: string } }>; emit(event: string, ...args: unknown[]): void };
    const answer = await untyped.emitWithAck('genrate', request());
    assert.equal(answer.ok, false);
    assert.equal(answer.error?.code, 'unknown_event');
    assert.match(answer.error!.message, /unknown event 'genrate'.*generate, subscribe/);
    untyped.emit('no-ack-here', 1); // without an ack there is nobody to answer; the socket carries on
    assert.ok((await socket.emitWithAck('generate', request())).ok);
    assert.ok(socket.connected);
  });

  it('a message over the size limit gets an error event naming the limit, then the connection closes', async () => {
    const socket = await connect();
    assert.ok((await socket.emitWithAck('generate', request('x'.repeat(SOCKET_MAX_BYTES - 1000)))).ok, 'just under the limit is fine');
    let error: ConnectionErrorEvent | undefined;
    let disconnectedAfterError: boolean | undefined;
    socket.on('error', (event) => {
      if (!('jobId' in event)) error = event;
    });
    socket.on('disconnect', () => (disconnectedAfterError = error !== undefined));
    socket.emit('generate', request('x'.repeat(SOCKET_MAX_BYTES + 10)), () => undefined);
    await waitFor('the disconnect after the too-large message', () => disconnectedAfterError !== undefined);
    assert.ok(disconnectedAfterError, 'the error event arrives before the disconnect');
    assert.equal(error?.code, 'payload_too_large');
    assert.match(error!.message, new RegExp(`over ${SOCKET_MAX_BYTES} bytes.*api\\.socketMaxBytes`));
  });

  it('a second cancel answers already_ended on the socket, as HTTP answers 409 already_ended', async () => {
    const socket = await connect();
    const created = await socket.emitWithAck('generate', request());
    assert.ok(created.ok);
    const first = await socket.emitWithAck('cancel', { jobId: created.jobId });
    assert.ok(first.ok && first.cancelled);
    const second = await socket.emitWithAck('cancel', { jobId: created.jobId });
    assert.ok(!second.ok, 'a second cancel is not a success');
    assert.equal(second.error.code, 'already_ended');
    assert.equal(second.error.status, 409);
    const http = await fetch(`${api.url}/v1/generations/${created.jobId}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
    assert.equal(http.status, 409);
    assert.equal(((await http.json()) as { error: { code: string } }).error.code, 'already_ended');
  });

  it('the operator token on a socket is told that it cannot stream', async () => {
    await assert.rejects(connectSocket(api.url, OPERATOR_TOKEN), (error: Error & { data?: { code: string; status: number } }) => {
      assert.match(error.message, /operator token .*cannot stream.*tenant API key/);
      assert.equal(error.data?.status, 403);
      return true;
    });
  });
});
