import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { io } from 'socket.io-client';
import { GENERATIONS_NAMESPACE, type StreamEvent } from '@tokenwire/contracts';
import { DemoProvider } from '@tokenwire/providers';
import { deletePrefix, testRedisUrl, uniquePrefix } from '../support/redis';
import { spawnApp, writeConfigFile, type AppProcess } from '../support/processes';
import { readSse } from '../support/sse-client';
import { assertCompleteStream } from '../support/stream-assertions';
import { hasTerminal, recordEvents, type ClientSocket } from '../support/tenants';
import { waitFor } from '../support/wait';

const DEMO_OPTIONS = { tokenDelayMs: 20, tokens: 40 };

/** Reads one sample value from a Prometheus text exposition. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe('two api processes and two workers', () => {
  const prefix = uniquePrefix();
  const processes: AppProcess[] = [];
  let apis: AppProcess[];
  let workers: AppProcess[];
  const sockets: ClientSocket[] = [];

  before(async () => {
    const env = {
      REDIS_URL: testRedisUrl(),
      TOKENWIRE_REDIS_PREFIX: prefix,
      TOKENWIRE_CONFIG: writeConfigFile({ models: [{ name: 'demo', provider: 'demo', options: DEMO_OPTIONS }] }),
    };
    // Api 1 opts in to SSE compression; api 2 keeps the default (off).
    processes.push(
      ...(await Promise.all([spawnApp('api', { ...env, TOKENWIRE_SSE_COMPRESSION: 'true' }), spawnApp('api', env), spawnApp('worker', env), spawnApp('worker', env)])),
    );
    apis = processes.slice(0, 2);
    workers = processes.slice(2);
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await deletePrefix(prefix);
  });

  it('clients on both api processes in one conversation get identical streams', async () => {
    const [first, second] = await Promise.all(
      apis.map(async (api) => {
        const socket: ClientSocket = io(`${api.url}${GENERATIONS_NAMESPACE}`, { transports: ['websocket'], forceNew: true });
        sockets.push(socket);
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        return socket;
      }),
    );
    const [eventsFirst, eventsSecond] = [recordEvents(first!), recordEvents(second!)];
    for (const socket of [first!, second!]) assert.ok((await socket.emitWithAck('join', { conversationId: 'shared' })).ok);
    const ack = await first!.emitWithAck('generate', { conversationId: 'shared', model: 'demo', messages: [{ role: 'user', content: 'both of you' }] });
    assert.ok(ack.ok);
    await waitFor('both clients to get the terminal event', () => hasTerminal(eventsFirst.get(ack.jobId)) && hasTerminal(eventsSecond.get(ack.jobId)));
    assertCompleteStream(eventsFirst.get(ack.jobId)!);
    assert.deepEqual(eventsSecond.get(ack.jobId), eventsFirst.get(ack.jobId));
    const text = eventsFirst.get(ack.jobId)!.map((e) => (e.type === 'chunk' ? e.delta : '')).join('');
    assert.equal(text, new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'both of you' }]).join(''));
  });

  it('/metrics on the api and the workers shows TTFT, tokens and generations moving', async () => {
    const scrapeWorkers = async () => Promise.all(workers.map(async (w) => (await fetch(w.metricsUrl!)).text()));
    const sum = (texts: string[], name: string, labels?: Record<string, string>) => texts.reduce((n, t) => n + sample(t, name, labels), 0);
    const before = await scrapeWorkers();
    const response = await fetch(`${apis[1]!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'count me' }] }),
    });
    assert.equal(response.status, 200);
    const after = await scrapeWorkers();
    assert.equal(sum(after, 'tokenwire_ttft_seconds_count', { stage: 'upstream' }) - sum(before, 'tokenwire_ttft_seconds_count', { stage: 'upstream' }), 1);
    assert.equal(sum(after, 'tokenwire_tokens_total', { model: 'demo' }) - sum(before, 'tokenwire_tokens_total', { model: 'demo' }), DEMO_OPTIONS.tokens);
    assert.equal(sum(after, 'tokenwire_inter_token_seconds_count') - sum(before, 'tokenwire_inter_token_seconds_count'), DEMO_OPTIONS.tokens - 1);
    // Counted once the terminal write returns, which can be just after the client has its answer.
    let doneCount = 0;
    await waitFor('the done generation to be counted', async () => {
      doneCount = sum(await scrapeWorkers(), 'tokenwire_generations_total', { outcome: 'done' }) - sum(before, 'tokenwire_generations_total', { outcome: 'done' });
      return doneCount >= 1;
    });
    assert.equal(doneCount, 1);

    const apiMetrics = await (await fetch(apis[0]!.metricsUrl!)).text();
    assert.match(apiMetrics, /tokenwire_queue_depth\{[^}]*state="waiting"/);
    assert.match(apiMetrics, /tokenwire_active_streams/);
    assert.match(apiMetrics, /process_resident_memory_bytes/);
  });

  it('logs carry the job id, tenant, model and the lifecycle lines', async () => {
    const lines = workers.flatMap((w) => w.logs).filter((line) => line.msg === 'stream completed');
    assert.ok(lines.length >= 1);
    for (const line of lines) {
      for (const key of ['jobId', 'tenantId', 'model', 'tokens', 'durationMs']) assert.ok(line[key] !== undefined, `"${key}" on ${JSON.stringify(line)}`);
    }
    assert.ok(workers.flatMap((w) => w.logs).some((line) => line.msg === 'first token' && typeof line.ttftMs === 'number'));
  });

  it('compressed SSE (opt-in) streams event by event and saves bytes; by default SSE is not compressed', async () => {
    const create = async () =>
      ((await (await fetch(`${apis[0]!.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'compress me' }] }),
      })).json()) as { id: string }).id;

    // A real client that decodes br (Node's fetch) sees each event as it is produced, not at the end.
    const id = await create();
    const arrivals: number[] = [];
    const started = performance.now();
    const { events } = await readSse(`${apis[0]!.url}/v1/generations/${id}/events`, {
      headers: { 'accept-encoding': 'br' },
      until: () => (arrivals.push(performance.now() - started), false),
    });
    assertCompleteStream(events.map((e) => JSON.parse(e.data) as StreamEvent));
    const spread = arrivals.at(-1)! - arrivals[0]!;
    assert.ok(spread > (DEMO_OPTIONS.tokens / 2) * DEMO_OPTIONS.tokenDelayMs, `events arrived over ${spread.toFixed(0)} ms, not in one burst`);

    // Raw bytes on the wire, compressed vs not, for the same finished generation.
    const wireBytes = (encoding: string) =>
      new Promise<{ bytes: number; contentEncoding?: string }>((resolve, reject) => {
        http
          .get(`${apis[0]!.url}/v1/generations/${id}/events`, { headers: { 'accept-encoding': encoding } }, (response) => {
            let bytes = 0;
            response.on('data', (chunk: Buffer) => (bytes += chunk.length));
            response.on('end', () => resolve({ bytes, contentEncoding: response.headers['content-encoding'] }));
          })
          .on('error', reject);
      });
    const [plain, brotli, gzip] = await Promise.all([wireBytes('identity'), wireBytes('br'), wireBytes('gzip')]);
    assert.equal(plain.contentEncoding, undefined);
    assert.equal(brotli.contentEncoding, 'br');
    assert.equal(gzip.contentEncoding, 'gzip');
    console.log(`# SSE bytes for ${DEMO_OPTIONS.tokens} tokens: identity ${plain.bytes}, br ${brotli.bytes}, gzip ${gzip.bytes}`);
    assert.ok(brotli.bytes < plain.bytes / 2, `br ${brotli.bytes} vs ${plain.bytes}`);
    assert.ok(gzip.bytes < plain.bytes / 2, `gzip ${gzip.bytes} vs ${plain.bytes}`);

    // The default: an SDK's Accept-Encoding gets identity, and the same bytes as asking for identity.
    const byDefault = await new Promise<{ bytes: number; contentEncoding?: string }>((resolve, reject) => {
      http
        .get(`${apis[1]!.url}/v1/generations/${id}/events`, { headers: { 'accept-encoding': 'gzip, deflate, br' } }, (response) => {
          let bytes = 0;
          response.on('data', (chunk: Buffer) => (bytes += chunk.length));
          response.on('end', () => resolve({ bytes, contentEncoding: response.headers['content-encoding'] }));
        })
        .on('error', reject);
    });
    assert.equal(byDefault.contentEncoding, undefined);
    assert.equal(byDefault.bytes, plain.bytes);
  });
});
