import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { OPERATOR_TOKEN, connectSocket, createKeyWithId, type ClientSocket } from '../support/tenants';
import { waitFor } from '../support/wait';
import { Redis } from 'ioredis';
import { redisKeys } from '@tokenwire/contracts';
import { TokenwireClient, TokenwireError } from '@tokenwire/client';

const request = { model: 'demo', messages: [{ role: 'user' as const, content: 'hi' }] };

/** What a socket saw of its end: the connection-level `error` event and the disconnect, with times. */
function watchEnd(socket: ClientSocket) {
  const seen: { error?: { code: string; message: string }; errorAt?: number; reason?: string; disconnectAt?: number } = {};
  socket.on('error', (event) => {
    if (!('jobId' in event)) Object.assign(seen, { error: event, errorAt: Date.now() });
  });
  socket.on('disconnect', (reason) => Object.assign(seen, { reason, disconnectAt: Date.now() }));
  return seen;
}

/**
 * A revoked key (or a deleted tenant's) stops working everywhere at once: HTTP on its next
 * request, and sockets on every api process are refused on their next event and disconnected
 * with a reason within 1 s. Two real api processes share one Redis.
 */
describe('revocation reaches open sockets on every api process', () => {
  const prefix = uniquePrefix();
  let apis: AppProcess[] = [];
  const sockets: ClientSocket[] = [];

  before(async () => {
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_AUTH_ENABLED: 'true',
      TOKENWIRE_ADMIN_TOKEN: OPERATOR_TOKEN,
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'demo', provider: 'demo', options: {} }] }),
    };
    // Generous: on a loaded machine two api processes starting at once can take a while.
    apis = await Promise.all([spawnApp('api', env, { readyTimeoutMs: 60_000 }), spawnApp('api', env, { readyTimeoutMs: 60_000 })]);
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all(apis.map((p) => p.stop('SIGKILL')));
    await deletePrefix(prefix);
  });

  const connect = async (api: AppProcess, key: string) => {
    const socket = await connectSocket(api.url!, key);
    sockets.push(socket);
    return socket;
  };
  const http = (api: AppProcess, path: string, token: string, init: RequestInit = {}) =>
    fetch(`${api.url}${path}`, { ...init, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });

  it('a revoked key: refused on its next event and disconnected with a reason within 1 s on both processes; other keys go on', async () => {
    const [a, b] = apis as [AppProcess, AppProcess];
    const revoked = await createKeyWithId(a.url!, 'acme');
    const other = await createKeyWithId(a.url!, 'acme');
    const idleOnA = await connect(a, revoked.key);
    const idleOnB = await connect(b, revoked.key);
    const busyOnB = await connect(b, revoked.key);
    const otherOnB = await connect(b, other.key);
    const ends = [watchEnd(idleOnA), watchEnd(idleOnB), watchEnd(busyOnB)];
    const before = await busyOnB.emitWithAck('generate', request);
    assert.ok(before.ok, 'the key works before it is revoked');

    const response = await http(a, `/v1/admin/keys/${revoked.id}`, OPERATOR_TOKEN, { method: 'DELETE' });
    assert.equal(response.status, 200);
    const revokedAt = Date.now();

    // Its next event, on the other process, right after the 2xx: refused by its ack, or the
    // notice disconnected the socket first (which of the two wins is a race); never accepted.
    // Once disconnected the event cannot be sent: socket.io-client would buffer it, and its ack
    // wait, for a reconnect that never comes. Sent just before the disconnect, its ack is rejected.
    if (busyOnB.connected) {
      const refused = await busyOnB
        .timeout(5_000)
        .emitWithAck('generate', request)
        .catch((error: Error) => ({ ok: false as const, error: { code: 'disconnected', message: error.message } }));
      assert.ok(!refused.ok, 'generate on a revoked key must be refused');
      if (refused.error.code !== 'disconnected') assert.equal(refused.error.code, 'unauthorized');
    }

    for (const [index, end] of ends.entries()) {
      await waitFor(`socket ${index} to be disconnected`, () => end.disconnectAt, { timeoutMs: 5_000 });
      assert.equal(end.reason, 'io server disconnect', `socket ${index}: the server disconnected it`);
      assert.equal(end.error?.code, 'unauthorized', `socket ${index}: told why`);
      assert.match(end.error!.message, /revoked/);
      assert.ok(end.errorAt! <= end.disconnectAt!, `socket ${index}: the reason comes before the disconnect`);
      assert.ok(end.disconnectAt! - revokedAt < 1000, `socket ${index} disconnected ${end.disconnectAt! - revokedAt} ms after the revocation`);
    }

    // Everything else about the key is refused too; the tenant's other key is untouched.
    assert.equal((await http(b, '/v1/generations', revoked.key, { method: 'POST', body: JSON.stringify(request) })).status, 401);
    await assert.rejects(connectSocket(b.url!, revoked.key), /invalid or revoked/);
    assert.ok(otherOnB.connected);
    assert.ok((await otherOnB.emitWithAck('generate', request)).ok, 'another key of the tenant still works');
    assert.ok((await otherOnB.emitWithAck('subscribe', { jobId: before.ok ? before.jobId : '', afterSeq: 0 })).ok, "and may follow the tenant's generations");
  });

  it('the client library ends its open streams with the reason when its key is revoked', async () => {
    const [a, b] = apis as [AppProcess, AppProcess];
    const key = await createKeyWithId(a.url!, 'sdk-user');
    const client = new TokenwireClient({ baseUrl: b.url!, apiKey: key.key });
    try {
      const stream = await client.generate(request); // no worker runs: it stays queued, its stream open
      const ended = stream.done.then(
        () => assert.fail('the stream must not end normally'),
        (error: TokenwireError) => error,
      );
      assert.equal((await http(a, `/v1/admin/keys/${key.id}`, OPERATOR_TOKEN, { method: 'DELETE' })).status, 200);
      const error = await ended;
      assert.ok(error instanceof TokenwireError);
      assert.equal(error.code, 'unauthorized');
      assert.match(error.message, /revoked/);
    } finally {
      client.close();
    }
  });

  it('with the notice lost, the next event is still refused (every event checks the key) and the socket is dropped', async () => {
    const [, b] = apis as [AppProcess, AppProcess];
    const key = await createKeyWithId(b.url!, 'quiet');
    const socket = await connect(b, key.key);
    const end = watchEnd(socket);
    assert.ok((await socket.emitWithAck('generate', request)).ok);
    // Revoke behind the api's back: no notice is published, as if it were lost.
    const redis = new Redis(testRedisUrl());
    try {
      await redis.hdel(redisKeys(prefix).tenantKeys('quiet'), key.id);
    } finally {
      redis.disconnect();
    }
    const refused = await socket.emitWithAck('subscribe', { jobId: 'x', afterSeq: 0 });
    assert.ok(!refused.ok);
    assert.equal(refused.error.code, 'unauthorized');
    assert.match(refused.error.message, /revoked/);
    await waitFor('the socket to be disconnected', () => end.disconnectAt);
    assert.equal(end.reason, 'io server disconnect');
  });

  it("a deleted tenant: its keys' sockets on both processes are disconnected within 1 s; only the operator may delete", async () => {
    const [a, b] = apis as [AppProcess, AppProcess];
    const admin = await createKeyWithId(a.url!, 'gone');
    const member = await createKeyWithId(a.url!, 'gone');
    const survivor = await createKeyWithId(a.url!, 'stays');
    const onA = await connect(a, member.key);
    const onB = await connect(b, admin.key);
    const survivorOnB = await connect(b, survivor.key);
    const ends = [watchEnd(onA), watchEnd(onB)];

    assert.equal((await http(a, '/v1/admin/tenants/gone', admin.key, { method: 'DELETE' })).status, 403, 'a tenant admin cannot delete tenants');
    assert.equal((await http(a, '/v1/admin/tenants/nobody', OPERATOR_TOKEN, { method: 'DELETE' })).status, 404);
    const response = await http(b, '/v1/admin/tenants/gone', OPERATOR_TOKEN, { method: 'DELETE' });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { id: 'gone', deleted: true, revokedKeys: 2 });
    const deletedAt = Date.now();

    for (const [index, end] of ends.entries()) {
      await waitFor(`socket ${index} of the deleted tenant to be disconnected`, () => end.disconnectAt, { timeoutMs: 5_000 });
      assert.equal(end.reason, 'io server disconnect');
      assert.equal(end.error?.code, 'unauthorized');
      assert.ok(end.disconnectAt! - deletedAt < 1000, `socket ${index} disconnected ${end.disconnectAt! - deletedAt} ms after the deletion`);
    }
    for (const key of [admin.key, member.key]) assert.equal((await http(a, '/v1/usage', key)).status, 401);
    assert.ok((await survivorOnB.emitWithAck('generate', request)).ok, "another tenant's socket is untouched");
  });

  it('the audit trail: creation, revocation and refusals are logged with key id, tenant and source, never the secret, and counted', async () => {
    const [a, b] = apis as [AppProcess, AppProcess];
    const key = await createKeyWithId(a.url!, 'audited');
    assert.equal((await http(a, `/v1/admin/keys/${key.id}`, OPERATOR_TOKEN, { method: 'DELETE' })).status, 200);
    assert.equal((await http(b, '/v1/usage', key.key)).status, 401);
    await assert.rejects(connectSocket(b.url!, key.key));
    assert.equal((await fetch(`${b.url}/v1/usage`)).status, 401);

    const audit = (api: AppProcess, event: string) => api.logs.filter((line) => line.audit === event);
    const created = await waitFor('the key_created line', () => audit(a, 'key_created').find((line) => line.keyId === key.id));
    assert.equal(created.tenantId, 'audited');
    assert.equal(created.by, 'operator');
    assert.match(String(created.source), /127\.0\.0\.1/);
    const revoked = await waitFor('the key_revoked line', () => audit(a, 'key_revoked').find((line) => line.keyId === key.id));
    assert.equal(revoked.tenantId, 'audited');
    const refusedHttp = await waitFor('a refused HTTP line naming the revoked key', () =>
      audit(b, 'auth_refused').find((line) => line.keyId === key.id && line.transport === 'http'),
    );
    assert.equal(refusedHttp.reason, 'revoked');
    assert.equal(refusedHttp.tenantId, 'audited');
    assert.match(String(refusedHttp.source), /127\.0\.0\.1/);
    await waitFor('a refused socket line', () => audit(b, 'auth_refused').find((line) => line.keyId === key.id && line.transport === 'socket'));
    await waitFor('a refused line for a missing key', () => audit(b, 'auth_refused').find((line) => line.reason === 'missing'));

    const everything = JSON.stringify([...a.logs, ...b.logs]);
    assert.ok(!everything.includes(key.key), 'a secret appears in the logs');
    assert.ok(!everything.includes(OPERATOR_TOKEN), 'the operator token appears in the logs');

    const metricsA = await (await fetch(a.metricsUrl!)).text();
    const metricsB = await (await fetch(b.metricsUrl!)).text();
    assert.match(metricsA, /tokenwire_key_events_total\{[^}]*event="created"[^}]*\} [1-9]/);
    assert.match(metricsA, /tokenwire_key_events_total\{[^}]*event="revoked"[^}]*\} [1-9]/);
    assert.match(metricsB, /tokenwire_auth_refused_total\{[^}]*reason="revoked"[^}]*transport="http"[^}]*\} [1-9]/);
    assert.match(metricsB, /tokenwire_auth_refused_total\{[^}]*reason="revoked"[^}]*transport="socket"[^}]*\} [1-9]/);
    assert.match(metricsB, /tokenwire_auth_refused_total\{[^}]*reason="missing"[^}]*\} [1-9]/);
  });
});
