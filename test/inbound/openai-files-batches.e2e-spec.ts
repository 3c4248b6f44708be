import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { toFile } from 'openai';
import { DemoProvider } from '@tokenwire/providers';
import { startGateway, type TestGateway } from '../support/gateway';
import { OPERATOR_TOKEN, createKey } from '../support/tenants';
import { waitFor } from '../support/wait';

const DEMO_OPTIONS = { tokenDelayMs: 1, tokens: 6 };
const line = (customId: string, model = 'demo', content = `say ${customId}`) =>
  JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content }] } });
const jsonl = (...lines: string[]) => `${lines.join('\n')}\n`;

/** The `openai` SDK's batch flow: files.create, batches.create, batches.retrieve, files.content. */
describe('Files and Batches the SDK way', () => {
  let gateway: TestGateway;
  let client: OpenAI;

  before(async () => {
    gateway = await startGateway({
      auth: { enabled: true, adminToken: OPERATOR_TOKEN },
      upstream: { maxAttempts: 1, breakerFailureThreshold: 1000 },
      batches: { bodyLimit: '64kb', ttlSeconds: 7200, itemAttempts: 1 },
      models: [
        { name: 'demo', provider: 'demo', options: DEMO_OPTIONS },
        // Port 1 on loopback: nothing listens, so its items fail.
        { name: 'unreachable', provider: 'openai-compatible', options: { baseUrl: 'http://127.0.0.1:1/v1' } },
      ],
    });
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: await createKey(gateway.url, 'files-tenant'), maxRetries: 0 });
  });
  after(() => gateway.close());

  it('files.create stores a JSONL batch input; retrieve, list and content give it back', async () => {
    const text = jsonl(line('a'), line('b'));
    const file = await client.files.create({ file: await toFile(Buffer.from(text), 'input.jsonl'), purpose: 'batch' });
    assert.match(file.id, /^file-/);
    assert.equal(file.object, 'file');
    assert.equal(file.bytes, Buffer.byteLength(text));
    assert.equal(file.filename, 'input.jsonl');
    assert.equal(file.purpose, 'batch');
    assert.equal(file.expires_at, file.created_at + 7200, 'files live for batches.ttlSeconds');
    assert.deepEqual(await client.files.retrieve(file.id), file);
    const listed = await client.files.list();
    assert.ok(listed.data.some((f) => f.id === file.id));
    assert.equal(await (await client.files.content(file.id)).text(), text);
  });

  it('an invalid JSONL file is refused at upload, naming the line', async () => {
    const bad = jsonl(line('ok'), '{"custom_id": "x", "body": {"model": "demo"}}');
    await assert.rejects(client.files.create({ file: await toFile(Buffer.from(bad), 'bad.jsonl'), purpose: 'batch' }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.match(error.message, /^.*line 2: body\.messages/);
      return true;
    });
    await assert.rejects(client.files.create({ file: await toFile(Buffer.from(jsonl(line('a'), 'not json')), 'bad.jsonl'), purpose: 'batch' }), /line 2: not valid JSON/);
    await assert.rejects(client.files.create({ file: await toFile(Buffer.from(jsonl(line('a'))), 'x.jsonl'), purpose: 'assistants' }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.match(error.message, /only "batch"/);
      return true;
    });
  });

  it('a file over batches.bodyLimit is a 413', async () => {
    const big = jsonl(...Array.from({ length: 1000 }, (_, i) => line(`big-${i}`)));
    assert.ok(Buffer.byteLength(big) > 64 * 1024);
    await assert.rejects(client.files.create({ file: await toFile(Buffer.from(big), 'big.jsonl'), purpose: 'batch' }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 413);
      return true;
    });
  });

  it('batches.create from the file; batches.retrieve until completed; files.content of output_file_id and error_file_id', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(line('one'), line('two'), line('broken', 'unreachable'))), 'batch.jsonl'), purpose: 'batch' });
    const batch = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { run: 'nightly' } });
    assert.equal(batch.object, 'batch');
    assert.equal(batch.endpoint, '/v1/chat/completions');
    assert.equal(batch.input_file_id, file.id);
    assert.equal(batch.completion_window, '24h');
    assert.deepEqual(batch.metadata, { run: 'nightly' });
    assert.equal(batch.output_file_id, null);
    assert.equal(batch.expires_at, batch.created_at + 24 * 3600);
    const done = await waitFor('the batch to complete', async () => {
      const polled = await client.batches.retrieve(batch.id);
      return polled.status === 'completed' ? polled : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    assert.equal(done.request_counts?.total, 3);
    assert.equal(done.request_counts?.completed, 2);
    assert.equal(done.request_counts?.failed, 1);
    assert.ok(done.completed_at && done.completed_at >= done.created_at);
    assert.ok(done.output_file_id && done.error_file_id);

    const output = (await (await client.files.content(done.output_file_id)).text()).trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; body: OpenAI.ChatCompletion } });
    assert.deepEqual(output.map((o) => o.custom_id), ['one', 'two']);
    const expected = new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content: 'say one' }]).join('');
    assert.equal(output[0]?.response.body.choices[0]?.message.content, expected);
    const errors = (await (await client.files.content(done.error_file_id)).text()).trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; error: { code: string } });
    assert.deepEqual(errors.map((e) => e.custom_id), ['broken']);
    const outputFile = await client.files.retrieve(done.output_file_id);
    assert.equal(outputFile.purpose, 'batch_output');
    assert.equal(outputFile.bytes, Buffer.byteLength((await (await client.files.content(done.output_file_id)).text())));
  });

  it('the direct JSONL upload still works as a shortcut, and its batch has the SDK fields', async () => {
    const response = await fetch(`${gateway.url}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/jsonl', authorization: `Bearer ${client.apiKey}` },
      body: jsonl(line('direct')),
    });
    assert.equal(response.status, 200);
    const batch = (await response.json()) as OpenAI.Batch;
    assert.equal(batch.endpoint, '/v1/chat/completions');
    assert.equal(batch.input_file_id, null);
    assert.equal(batch.completion_window, '24h');
  });

  it('files and batches are the tenant\u2019s own; a deleted file is gone', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(line('mine'))), 'mine.jsonl'), purpose: 'batch' });
    const other = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: await createKey(gateway.url, 'other-files-tenant'), maxRetries: 0 });
    await assert.rejects(other.files.retrieve(file.id), OpenAI.NotFoundError);
    await assert.rejects(other.files.content(file.id), OpenAI.NotFoundError);
    assert.ok(!(await other.files.list()).data.some((f) => f.id === file.id));
    await assert.rejects(other.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }), OpenAI.NotFoundError);
    await assert.rejects(other.files.delete(file.id), OpenAI.NotFoundError);
    const deleted = await client.files.delete(file.id);
    assert.deepEqual(deleted, { id: file.id, object: 'file', deleted: true });
    await assert.rejects(client.files.retrieve(file.id), OpenAI.NotFoundError);
    await assert.rejects(client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }), OpenAI.NotFoundError);
  });

  it('batches.create says what it supports', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(line('x'))), 'x.jsonl'), purpose: 'batch' });
    await assert.rejects(client.batches.create({ input_file_id: file.id, endpoint: '/v1/embeddings', completion_window: '24h' }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.match(error.message, /endpoint: one of "\/v1\/chat\/completions", "\/v1\/responses", "\/v1\/messages"/);
      return true;
    });
    await assert.rejects(client.batches.create({ input_file_id: file.id, endpoint: '/v1/responses', completion_window: '24h' }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.match(error.message, /line 1: url: every line of this batch goes to \/v1\/responses/);
      return true;
    });
  });

  it('a /v1/messages batch and a /v1/responses batch answer each line in that API\u2019s shape', async () => {
    const expected = (content: string) => new DemoProvider(DEMO_OPTIONS).replyTokens([{ role: 'user', content }]).join('');
    const run = async (endpoint: '/v1/messages' | '/v1/responses', lines: object[]) => {
      const file = await client.files.create({ file: await toFile(Buffer.from(jsonl(...lines.map((l) => JSON.stringify(l)))), 'api.jsonl'), purpose: 'batch' });
      // The SDK's types do not list /v1/messages; the request is the same.
      const batch = await client.batches.create({ input_file_id: file.id, endpoint: endpoint as '/v1/responses', completion_window: '24h' });
      assert.equal(batch.endpoint, endpoint);
      const done = await waitFor(`the ${endpoint} batch to complete`, async () => {
        const polled = await client.batches.retrieve(batch.id);
        return polled.status === 'completed' ? polled : undefined;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      return (await (await client.files.content(done.output_file_id!)).text()).trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; response: { body: Record<string, unknown> } });
    };
    const messages = await run('/v1/messages', [
      { custom_id: 'm1', method: 'POST', url: '/v1/messages', body: { model: 'demo', max_tokens: 50, system: 'be kind', messages: [{ role: 'user', content: 'anthropic line' }] } },
    ]);
    const message = messages[0]!.response.body as { type: string; role: string; content: Array<{ type: string; text: string }>; stop_reason: string; usage: { output_tokens: number } };
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.equal(message.stop_reason, 'end_turn');
    assert.equal(message.content[0]?.text, expected('anthropic line'));
    assert.equal(message.usage.output_tokens, DEMO_OPTIONS.tokens);
    const responses = await run('/v1/responses', [{ custom_id: 'r1', method: 'POST', url: '/v1/responses', body: { model: 'demo', input: 'responses line' } }]);
    const response = responses[0]!.response.body as { object: string; status: string; output: Array<{ type: string; content: Array<{ text: string }> }>; usage: { output_tokens: number } };
    assert.equal(response.object, 'response');
    assert.equal(response.status, 'completed');
    assert.equal(response.output[0]?.type, 'message');
    assert.equal(response.output[0]?.content[0]?.text, expected('responses line'));
    assert.equal(response.usage.output_tokens, DEMO_OPTIONS.tokens);
    // A stop sequence that ends the reply is reported as the Messages route reports it (the demo model honours `stop`).
    const stopped = await run('/v1/messages', [
      { custom_id: 'm2', method: 'POST', url: '/v1/messages', body: { model: 'demo', max_tokens: 50, stop_sequences: ['here'], messages: [{ role: 'user', content: 'stop here' }] } },
    ]);
    const stoppedMessage = stopped[0]!.response.body as { content: Array<{ text: string }>; stop_reason: string; stop_sequence: string | null };
    assert.equal(stoppedMessage.stop_reason, 'stop_sequence');
    assert.equal(stoppedMessage.stop_sequence, 'here');
    assert.equal(stoppedMessage.content[0]?.text, 'You said: stop ');
    await assert.rejects(
      client.files.create({ file: await toFile(Buffer.from(jsonl(JSON.stringify({ custom_id: 'bad', url: '/v1/messages', body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } }))), 'bad.jsonl'), purpose: 'batch' }),
      /line 1: body\.max_tokens/,
    );
  });
});
