import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import zlib from 'node:zlib';
import { CloseTracker, sleep, type ProtocolScript, type ProtocolServer, type ReceivedRequest } from './protocol-server';

/** Where a protocol writes its response: the socket, or a compressor in front of it. */
interface Out {
  head(headers: http.OutgoingHttpHeaders): void;
  write(text: string): void;
  readonly destroyed: boolean;
  /** Breaks the connection (after what was written is on its way). */
  drop(): Promise<void>;
}

interface TokenWriters {
  token(token: string): void;
  error(): void;
  malformed(): void;
  unknown(): void;
  /** The protocol's keep-alive frame (`script.keepAlive`); absent where the protocol has none. */
  keepAlive?(): void;
}

const base64Of = (url: string) => url.replace(/^data:[^,]*;base64,/, '');

/** Shared HTTP plumbing: body reading, connection tracking, early-close detection, compression, BOM, refusals. */
abstract class HttpProtocolServer implements ProtocolServer {
  abstract readonly providerType: string;
  abstract providerOptions(): Record<string, unknown>;
  readonly transport = 'http' as const;
  script: ProtocolScript = { tokens: ['Hello', ',', ' world'] };
  /** Scripts for the next requests, in order; `script` once they are used up. */
  readonly nextScripts: ProtocolScript[] = [];
  requests = 0;
  lastBody: Record<string, unknown> = {};
  lastHeaders: http.IncomingHttpHeaders = {};
  protected readonly closes = new CloseTracker();
  private readonly sockets = new Set<Socket>();
  private readonly server = http.createServer((req, res) => void this.route(req, res));

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  lastEarlyClose(): Promise<number> {
    return this.closes.lastEarlyClose();
  }

  abstract received(): ReceivedRequest;

  upstreamCodeFor(refuse: NonNullable<ProtocolScript['refuse']>): string | undefined {
    return refuse.code;
  }

  async start(): Promise<void> {
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    if (await this.other(req, res)) return;
    this.requests++;
    this.lastBody = JSON.parse(raw || '{}') as Record<string, unknown>;
    this.lastHeaders = req.headers;
    const tracking = this.closes.opened();
    res.on('close', tracking.closed);
    const script = this.nextScripts.shift() ?? this.script;
    if (script.silent) return; // never answer: the client must give up
    const refuse = script.refuse ?? this.validate(this.lastBody);
    if (refuse) {
      tracking.finished();
      const body = JSON.stringify(this.refusalBody(refuse));
      if (script.compress === 'gzip') res.writeHead(refuse.status, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(zlib.gzipSync(body));
      else res.writeHead(refuse.status, { 'content-type': 'application/json' }).end(body);
      return;
    }
    const out = this.out(res, script);
    await this.respond(this.lastBody, out, script);
    tracking.finished();
    out.end();
  }

  /** The body as sent, or through the script's compressor (flushed per write, as a streaming server does). */
  private out(res: http.ServerResponse, script: ProtocolScript): Out & { end(): void } {
    const compressor =
      script.compress === 'gzip' ? zlib.createGzip() : script.compress === 'deflate' ? zlib.createDeflate() : script.compress === 'br' ? zlib.createBrotliCompress() : undefined;
    compressor?.pipe(res);
    const flushKind = script.compress === 'br' ? zlib.constants.BROTLI_OPERATION_FLUSH : zlib.constants.Z_SYNC_FLUSH;
    let first = true;
    const write = (text: string) => {
      if (res.destroyed) return;
      const bytes = first && script.bom ? `\uFEFF${text}` : text;
      first = false;
      if (compressor) {
        compressor.write(bytes);
        compressor.flush(flushKind);
      } else res.write(bytes);
    };
    return {
      head: (headers) => res.writeHead(200, { ...headers, ...(script.compress ? { 'content-encoding': script.compress } : {}) }),
      write,
      get destroyed() {
        return res.destroyed;
      },
      drop: async () => {
        await sleep(50); // let the tokens already written be read first
        res.socket?.destroy();
      },
      end: () => (compressor ? compressor.end() : res.end()),
    };
  }

  /** The real server's own checks of a request: a refusal, or undefined when it is valid. */
  protected validate(_body: Record<string, unknown>): ProtocolScript['refuse'] {
    return undefined;
  }

  /** Routes other than the streaming one; true when handled. */
  protected async other(_req: http.IncomingMessage, _res: http.ServerResponse): Promise<boolean> {
    return false;
  }

  protected abstract respond(body: Record<string, unknown>, out: Out, script: ProtocolScript): Promise<void>;

  /** The protocol's error body for a refused request. */
  protected abstract refusalBody(refuse: NonNullable<ProtocolScript['refuse']>): unknown;

  /** Writes each token, honouring the script's delay, error, malformed, unknown-event and drop points. */
  protected async tokens(out: Out, script: ProtocolScript, writers: TokenWriters): Promise<boolean> {
    if (script.keepAlive) {
      if (!writers.keepAlive) throw new Error(`${this.providerType}: this fake upstream has no keep-alive frame`);
      for (const until = performance.now() + script.keepAlive.forMs; performance.now() < until; ) {
        writers.keepAlive();
        await sleep(script.keepAlive.everyMs);
        if (out.destroyed) return false;
      }
    }
    for (let i = 0; i < script.tokens.length; i++) {
      if (script.errorAfter === i) {
        writers.error();
        return false;
      }
      if (script.malformedAfter === i) {
        writers.malformed();
        return false;
      }
      if (script.dropAfter === i) {
        await out.drop();
        return false;
      }
      if (script.unknownEventAfter === i) writers.unknown();
      if (script.tokenDelayMs) await sleep(script.tokenDelayMs);
      if (out.destroyed) return false;
      writers.token(script.tokens[i]!);
    }
    return true;
  }
}

/** OpenAI's error body, which OpenAI-compatible servers (vLLM, llama.cpp) share. */
const openAIRefusal = (refuse: NonNullable<ProtocolScript['refuse']>) => ({
  error: { message: refuse.message, type: 'invalid_request_error', param: refuse.param ?? null, code: refuse.code },
});

/** OpenAI chat completions SSE (`/v1/chat/completions`). */
export class OpenAIProtocolServer extends HttpProtocolServer {
  readonly providerType = 'openai-compatible';
  readonly keepAliveForm = 'an SSE comment';
  providerOptions() {
    return { baseUrl: `${this.baseUrl}/v1` };
  }
  received(): ReceivedRequest {
    const b = this.lastBody;
    const user = (b.messages as Array<{ role: string; content: unknown }>).filter((m) => m.role === 'user').at(-1)!;
    const parts = typeof user.content === 'string' ? [{ type: 'text', text: user.content }] : (user.content as Array<{ type: string; text?: string; image_url?: { url: string } }>);
    return {
      tools: ((b.tools ?? []) as Array<{ function: { name: string } }>).map((t) => t.function.name),
      params: { temperature: b.temperature, topP: b.top_p, maxTokens: b.max_tokens, stop: b.stop, seed: b.seed, presencePenalty: b.presence_penalty, frequencyPenalty: b.frequency_penalty },
      userTexts: parts.filter((p) => p.type === 'text').map((p) => p.text!),
      userImages: parts.filter((p) => p.type === 'image_url').map((p) => base64Of(p.image_url!.url)),
    };
  }
  protected refusalBody = openAIRefusal;
  protected async respond(body: Record<string, unknown>, out: Out, script: ProtocolScript): Promise<void> {
    out.head({ 'content-type': 'text/event-stream' });
    const data = (payload: unknown) => out.write(`data: ${JSON.stringify(payload)}\n\n`);
    const ok = await this.tokens(out, script, {
      token: (token) => data({ choices: [{ index: 0, delta: { content: token }, finish_reason: null }] }),
      error: () => data({ error: { message: 'the model crashed', type: 'server_error' } }),
      malformed: () => out.write('data: {"choices": [ not json\n\n'),
      // A frame of a kind this client does not know: new top-level fields, no choices.
      unknown: () => data({ object: 'chat.completion.future_annotation', annotation: { kind: 'citation' } }),
      // What vLLM's and OpenRouter's servers send while a request waits: an SSE comment.
      keepAlive: () => out.write(': keep-alive\n\n'),
    });
    if (!ok) return;
    if (script.toolCall) {
      const { id, name, arguments: args } = script.toolCall;
      const json = JSON.stringify(args);
      const half = Math.floor(json.length / 2);
      data({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: '' } }] }, finish_reason: null }] });
      for (const piece of [json.slice(0, half), json.slice(half)]) data({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] }, finish_reason: null }] });
    }
    // vLLM adds `stop_reason` to the finishing choice: the matched stop string (a token id for stop_token_ids, null at EOS).
    const stopReason = script.stopSequence !== undefined ? { stop_reason: script.stopSequence } : {};
    data({ choices: [{ index: 0, delta: {}, finish_reason: script.toolCall ? 'tool_calls' : 'stop', ...stopReason }] });
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
    if (script.usage && includeUsage) data({ choices: [], usage: { prompt_tokens: script.usage.prompt, completion_tokens: script.usage.completion } });
    out.write('data: [DONE]\n\n');
  }
}

/** Ollama's native NDJSON `/api/chat`, plus `/api/tags` and `/api/version`. */
export class OllamaProtocolServer extends HttpProtocolServer {
  readonly providerType = 'ollama';
  readonly sendsToolCallIds = false;
  readonly keepAliveForm = 'an empty line';
  models = ['llama-test:8b', 'qwen-test:1b'];
  providerOptions() {
    return { baseUrl: this.baseUrl };
  }
  received(): ReceivedRequest {
    const b = this.lastBody;
    const o = (b.options ?? {}) as Record<string, unknown>;
    const user = (b.messages as Array<{ role: string; content: string; images?: string[] }>).filter((m) => m.role === 'user').at(-1)!;
    return {
      tools: ((b.tools ?? []) as Array<{ function: { name: string } }>).map((t) => t.function.name),
      params: { temperature: o.temperature, topP: o.top_p, maxTokens: o.num_predict, stop: o.stop, seed: o.seed, presencePenalty: o.presence_penalty, frequencyPenalty: o.frequency_penalty },
      userTexts: [user.content],
      userImages: user.images ?? [],
    };
  }
  override upstreamCodeFor(): undefined {
    return undefined; // Ollama's errors are a message only
  }
  protected refusalBody(refuse: NonNullable<ProtocolScript['refuse']>) {
    return { error: refuse.message };
  }
  protected override async other(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
    if (req.url === '/api/tags') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ models: this.models.map((name) => ({ name, model: name })) }));
      return true;
    }
    if (req.url === '/api/version') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"version":"0.12.0"}');
      return true;
    }
    return false;
  }
  protected async respond(body: Record<string, unknown>, out: Out, script: ProtocolScript): Promise<void> {
    out.head({ 'content-type': 'application/x-ndjson' });
    const line = (payload: unknown) => out.write(`${JSON.stringify(payload)}\n`);
    const ok = await this.tokens(out, script, {
      token: (token) => line({ model: body.model, message: { role: 'assistant', content: token }, done: false }),
      error: () => line({ error: 'model runner crashed' }),
      malformed: () => out.write('{"message": {"content": oops\n'),
      unknown: () => line({ model: body.model, created_at: '2026-01-01T00:00:00Z', message: { role: 'assistant', content: '', thinking: 'hmm' }, future_field: { x: 1 }, done: false }),
      keepAlive: () => out.write('\n'),
    });
    if (!ok) return;
    // Ollama sends tool calls whole, arguments as an object, and no id.
    if (script.toolCall) line({ model: body.model, message: { role: 'assistant', content: '', tool_calls: [{ function: { name: script.toolCall.name, arguments: script.toolCall.arguments } }] }, done: false });
    line({
      model: body.model,
      message: { role: 'assistant', content: '' },
      done: true,
      done_reason: 'stop',
      ...(script.usage ? { prompt_eval_count: script.usage.prompt, eval_count: script.usage.completion } : {}),
    });
  }
}

/** Anthropic Messages API SSE (`/v1/messages`). */
export class AnthropicProtocolServer extends HttpProtocolServer {
  readonly providerType = 'anthropic';
  readonly keepAliveForm = 'a ping event';
  providerOptions() {
    return { baseUrl: this.baseUrl, apiKey: 'test-key' };
  }
  received(): ReceivedRequest {
    const b = this.lastBody;
    const user = (b.messages as Array<{ role: string; content: unknown }>).filter((m) => m.role === 'user').at(-1)!;
    const blocks = typeof user.content === 'string' ? [{ type: 'text', text: user.content }] : (user.content as Array<{ type: string; text?: string; source?: { data?: string } }>);
    return {
      tools: ((b.tools ?? []) as Array<{ name: string }>).map((t) => t.name),
      params: { temperature: b.temperature, topP: b.top_p, maxTokens: b.max_tokens, stop: b.stop_sequences },
      userTexts: blocks.filter((p) => p.type === 'text').map((p) => p.text!),
      userImages: blocks.filter((p) => p.type === 'image').map((p) => p.source!.data!),
    };
  }
  override upstreamCodeFor(): undefined {
    return undefined; // Anthropic's error bodies carry a type, no code
  }
  protected refusalBody(refuse: NonNullable<ProtocolScript['refuse']>) {
    return { type: 'error', error: { type: 'invalid_request_error', message: refuse.message } };
  }
  protected async respond(_body: Record<string, unknown>, out: Out, script: ProtocolScript): Promise<void> {
    out.head({ 'content-type': 'text/event-stream' });
    const event = (type: string, payload: Record<string, unknown>) => out.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`);
    event('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], usage: { input_tokens: script.usage?.prompt ?? 0, output_tokens: 1 } } });
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    event('ping', {});
    const ok = await this.tokens(out, script, {
      token: (token) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: token } }),
      error: () => event('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }),
      malformed: () => out.write('event: content_block_delta\ndata: {"type": broken\n\n'),
      // "We may occasionally add new event types": one, and a delta type not known yet.
      unknown: () => {
        event('message_annotation', { annotation: { kind: 'future' } });
        event('content_block_delta', { index: 0, delta: { type: 'future_delta', payload: 1 } });
      },
      keepAlive: () => event('ping', {}),
    });
    if (!ok) return;
    event('content_block_stop', { index: 0 });
    if (script.toolCall) {
      const { id, name, arguments: args } = script.toolCall;
      const json = JSON.stringify(args);
      const half = Math.floor(json.length / 2);
      event('content_block_start', { index: 1, content_block: { type: 'tool_use', id, name, input: {} } });
      for (const piece of [json.slice(0, half), json.slice(half)]) event('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: piece } });
      event('content_block_stop', { index: 1 });
    }
    event('message_delta', {
      delta: script.stopSequence !== undefined
        ? { stop_reason: 'stop_sequence', stop_sequence: script.stopSequence }
        : { stop_reason: script.toolCall ? 'tool_use' : 'end_turn', stop_sequence: null },
      usage: { output_tokens: script.usage?.completion ?? script.tokens.length },
    });
    event('message_stop', {});
  }
}

/** Responses API events for one response, written with `send` (shared by the HTTP SSE and WebSocket servers). */
export async function writeResponsesEvents(
  send: (type: string, payload: Record<string, unknown>) => void,
  script: ProtocolScript,
  tokens: (writers: TokenWriters) => Promise<boolean>,
  malformed: () => void,
): Promise<boolean> {
  send('response.created', { response: { id: 'resp_1', status: 'in_progress' } });
  const ok = await tokens({
    token: (token) => send('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: token }),
    error: () => send('response.failed', { response: { id: 'resp_1', status: 'failed', error: { code: 'server_error', message: 'the model crashed' } } }),
    malformed,
    unknown: () => send('response.future_event.delta', { item_id: 'msg_1', delta: { kind: 'future' } }),
  });
  if (!ok) return false;
  if (script.toolCall) {
    const { id, name, arguments: args } = script.toolCall;
    const json = JSON.stringify(args);
    const half = Math.floor(json.length / 2);
    const item = { type: 'function_call', id: 'fc_1', call_id: id, name, status: 'in_progress' };
    send('response.output_item.added', { output_index: 1, item: { ...item, arguments: '' } });
    for (const piece of [json.slice(0, half), json.slice(half)]) send('response.function_call_arguments.delta', { item_id: 'fc_1', output_index: 1, delta: piece });
    send('response.function_call_arguments.done', { item_id: 'fc_1', output_index: 1, arguments: json });
    send('response.output_item.done', { output_index: 1, item: { ...item, arguments: json, status: 'completed' } });
  }
  send('response.completed', {
    response: { id: 'resp_1', status: 'completed', ...(script.usage ? { usage: { input_tokens: script.usage.prompt, output_tokens: script.usage.completion } } : {}) },
  });
  return true;
}

/** What a Responses API request carried. */
export function receivedResponsesRequest(b: Record<string, unknown>): ReceivedRequest {
  const user = (b.input as Array<{ role?: string; content?: unknown }>).filter((m) => m.role === 'user').at(-1)!;
  const parts = typeof user.content === 'string' ? [{ type: 'input_text', text: user.content }] : (user.content as Array<{ type: string; text?: string; image_url?: string }>);
  return {
    tools: ((b.tools ?? []) as Array<{ name: string }>).map((t) => t.name),
    params: { temperature: b.temperature, topP: b.top_p, maxTokens: b.max_output_tokens },
    userTexts: parts.filter((p) => p.type === 'input_text').map((p) => p.text!),
    userImages: parts.filter((p) => p.type === 'input_image').map((p) => base64Of(p.image_url!)),
  };
}

/** OpenAI's Responses API over HTTP SSE (`/v1/responses`), for openai-compatible with `api: responses`. */
export class ResponsesHttpProtocolServer extends HttpProtocolServer {
  readonly providerType = 'openai-compatible';
  readonly keepAliveForm = 'an SSE comment';
  providerOptions() {
    return { baseUrl: `${this.baseUrl}/v1`, api: 'responses' };
  }
  received(): ReceivedRequest {
    return receivedResponsesRequest(this.lastBody);
  }
  protected refusalBody = openAIRefusal;
  protected async respond(_body: Record<string, unknown>, out: Out, script: ProtocolScript): Promise<void> {
    out.head({ 'content-type': 'text/event-stream' });
    const event = (type: string, payload: Record<string, unknown>) => out.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`);
    const keepAlive = () => out.write(': keep-alive\n\n');
    await writeResponsesEvents(event, script, (writers) => this.tokens(out, script, { ...writers, keepAlive }), () => out.write('event: response.output_text.delta\ndata: {"delta": nope\n\n'));
  }
}

/** Hugging Face TGI `POST /generate_stream` (SSE of token events, details on the last). */
export class TgiProtocolServer extends HttpProtocolServer {
  readonly providerType = 'tgi';
  readonly keepAliveForm = 'an SSE comment';
  readonly reportsUsage = 'completion' as const;
  providerOptions() {
    return { baseUrl: this.baseUrl };
  }
  received(): ReceivedRequest {
    const p = (this.lastBody.parameters ?? {}) as Record<string, unknown>;
    return {
      tools: [],
      params: { temperature: p.temperature, topP: p.top_p, maxTokens: p.max_new_tokens, stop: p.stop, seed: p.seed, frequencyPenalty: p.frequency_penalty, doSample: p.do_sample },
      userTexts: [String(this.lastBody.inputs)],
      userImages: [],
    };
  }
  protected refusalBody(refuse: NonNullable<ProtocolScript['refuse']>) {
    return { error: refuse.message, error_type: refuse.code };
  }
  /** TGI's parameter validation, with its messages (router/src/validation.rs). */
  protected override validate(body: Record<string, unknown>): ProtocolScript['refuse'] {
    const p = (body.parameters ?? {}) as { temperature?: number; top_p?: number };
    const invalid = (message: string) => ({ status: 422, code: 'validation', message: `Input validation error: ${message}` });
    if (p.temperature !== undefined && p.temperature <= 0) return invalid('`temperature` must be strictly positive');
    if (p.top_p !== undefined && (p.top_p <= 0 || p.top_p >= 1)) return invalid('`top_p` must be > 0.0 and < 1.0');
    return undefined;
  }
  protected async respond(_body: Record<string, unknown>, out: Out, script: ProtocolScript): Promise<void> {
    out.head({ 'content-type': 'text/event-stream' });
    const data = (payload: unknown) => out.write(`data:${JSON.stringify(payload)}\n\n`);
    const token = (text: string, extra: Record<string, unknown> = {}) => data({ index: 1, token: { id: 1, text, logprob: -0.1, special: false }, generated_text: null, details: null, ...extra });
    const ok = await this.tokens(out, script, {
      token: (text) => token(text),
      error: () => data({ error: 'Request failed during generation: Server error: CUDA out of memory', error_type: 'generation' }),
      malformed: () => out.write('data:{"token": {broken\n\n'),
      // TGI's events grow fields (top_tokens came later); an empty token with one not known yet.
      unknown: () => token('', { top_tokens: [], future_field: { x: 1 } }),
      keepAlive: () => out.write(': keep-alive\n\n'),
    });
    if (!ok) return;
    if (script.stopSequence !== undefined) {
      // A stop sequence ends TGI's stream on the (non-special) token that completed it, kept in the text.
      data({
        index: script.tokens.length + 1,
        token: { id: 3, text: script.stopSequence, logprob: -0.1, special: false },
        generated_text: script.tokens.join('') + script.stopSequence,
        details: { finish_reason: 'stop_sequence', generated_tokens: script.usage?.completion ?? script.tokens.length + 1, seed: null },
      });
      return;
    }
    // TGI ends with the special end-of-sequence token, carrying the details.
    data({
      index: script.tokens.length + 1,
      token: { id: 2, text: '</s>', logprob: 0, special: true },
      generated_text: script.tokens.join(''),
      details: { finish_reason: 'eos_token', generated_tokens: script.usage?.completion ?? script.tokens.length, seed: null },
    });
  }
}
