import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CloseTracker, sleep, type ProtocolScript, type ProtocolServer } from './protocol-server';

/** Shared HTTP plumbing: body reading, connection tracking, early-close detection. */
abstract class HttpProtocolServer implements ProtocolServer {
  abstract readonly providerType: string;
  abstract providerOptions(): Record<string, unknown>;
  script: ProtocolScript = { tokens: ['Hello', ',', ' world'] };
  requests = 0;
  protected readonly closes = new CloseTracker();
  private readonly sockets = new Set<Socket>();
  private readonly server = http.createServer((req, res) => void this.route(req, res));

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  lastEarlyClose(): Promise<number> {
    return this.closes.lastEarlyClose();
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
    const tracking = this.closes.opened();
    res.on('close', tracking.closed);
    const script = this.script;
    if (script.silent) return; // never answer: the client must give up
    await this.respond(JSON.parse(raw || '{}') as Record<string, unknown>, res, script);
    tracking.finished();
    res.end();
  }

  /** Routes other than the streaming one; true when handled. */
  protected async other(_req: http.IncomingMessage, _res: http.ServerResponse): Promise<boolean> {
    return false;
  }

  protected abstract respond(body: Record<string, unknown>, res: http.ServerResponse, script: ProtocolScript): Promise<void>;

  /** Writes each token with `write`, honouring the script's delay, error and malformed-frame points. */
  protected async tokens(res: http.ServerResponse, script: ProtocolScript, write: (token: string) => void, error: () => void, malformed: () => void): Promise<boolean> {
    for (let i = 0; i < script.tokens.length; i++) {
      if (script.errorAfter === i) {
        error();
        return false;
      }
      if (script.malformedAfter === i) {
        malformed();
        return false;
      }
      if (script.tokenDelayMs) await sleep(script.tokenDelayMs);
      if (res.destroyed) return false;
      write(script.tokens[i]!);
    }
    return true;
  }
}

/** OpenAI chat completions SSE (`/v1/chat/completions`). */
export class OpenAIProtocolServer extends HttpProtocolServer {
  readonly providerType = 'openai-compatible';
  providerOptions() {
    return { baseUrl: `${this.baseUrl}/v1` };
  }
  protected async respond(body: Record<string, unknown>, res: http.ServerResponse, script: ProtocolScript): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const data = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
    const ok = await this.tokens(
      res,
      script,
      (token) => data({ choices: [{ index: 0, delta: { content: token }, finish_reason: null }] }),
      () => data({ error: { message: 'the model crashed', type: 'server_error' } }),
      () => res.write('data: {"choices": [ not json\n\n'),
    );
    if (!ok) return;
    data({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage;
    if (script.usage && includeUsage) data({ choices: [], usage: { prompt_tokens: script.usage.prompt, completion_tokens: script.usage.completion } });
    res.write('data: [DONE]\n\n');
  }
}

/** Ollama's native NDJSON `/api/chat`, plus `/api/tags` and `/api/version`. */
export class OllamaProtocolServer extends HttpProtocolServer {
  readonly providerType = 'ollama';
  models = ['llama-test:8b', 'qwen-test:1b'];
  providerOptions() {
    return { baseUrl: this.baseUrl };
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
  protected async respond(body: Record<string, unknown>, res: http.ServerResponse, script: ProtocolScript): Promise<void> {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const line = (payload: unknown) => res.write(`${JSON.stringify(payload)}\n`);
    const ok = await this.tokens(
      res,
      script,
      (token) => line({ model: body.model, message: { role: 'assistant', content: token }, done: false }),
      () => line({ error: 'model runner crashed' }),
      () => res.write('{"message": {"content": oops\n'),
    );
    if (!ok) return;
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
  providerOptions() {
    return { baseUrl: this.baseUrl, apiKey: 'test-key' };
  }
  protected async respond(_body: Record<string, unknown>, res: http.ServerResponse, script: ProtocolScript): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const event = (type: string, payload: Record<string, unknown>) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`);
    event('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], usage: { input_tokens: script.usage?.prompt ?? 0, output_tokens: 1 } } });
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    event('ping', {});
    const ok = await this.tokens(
      res,
      script,
      (token) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: token } }),
      () => event('error', { error: { type: 'overloaded_error', message: 'Overloaded' } }),
      () => res.write('event: content_block_delta\ndata: {"type": broken\n\n'),
    );
    if (!ok) return;
    event('content_block_stop', { index: 0 });
    event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: script.usage?.completion ?? script.tokens.length } });
    event('message_stop', {});
  }
}

/** OpenAI's Responses API over HTTP SSE (`/v1/responses`), for openai-compatible with `api: responses`. */
export class ResponsesHttpProtocolServer extends HttpProtocolServer {
  readonly providerType = 'openai-compatible';
  providerOptions() {
    return { baseUrl: `${this.baseUrl}/v1`, api: 'responses' };
  }
  protected async respond(_body: Record<string, unknown>, res: http.ServerResponse, script: ProtocolScript): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const event = (type: string, payload: Record<string, unknown>) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`);
    event('response.created', { response: { id: 'resp_1', status: 'in_progress' } });
    const ok = await this.tokens(
      res,
      script,
      (token) => event('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: token }),
      () => event('response.failed', { response: { id: 'resp_1', status: 'failed', error: { code: 'server_error', message: 'the model crashed' } } }),
      () => res.write('event: response.output_text.delta\ndata: {"delta": nope\n\n'),
    );
    if (!ok) return;
    event('response.completed', {
      response: { id: 'resp_1', status: 'completed', ...(script.usage ? { usage: { input_tokens: script.usage.prompt, output_tokens: script.usage.completion } } : {}) },
    });
  }
}

/** Hugging Face TGI `POST /generate_stream` (SSE of token events, details on the last). */
export class TgiProtocolServer extends HttpProtocolServer {
  readonly providerType = 'tgi';
  readonly reportsUsage = 'completion' as const;
  providerOptions() {
    return { baseUrl: this.baseUrl };
  }
  protected async respond(_body: Record<string, unknown>, res: http.ServerResponse, script: ProtocolScript): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const data = (payload: unknown) => res.write(`data:${JSON.stringify(payload)}\n\n`);
    const ok = await this.tokens(
      res,
      script,
      (token) => data({ index: 1, token: { id: 1, text: token, logprob: -0.1, special: false }, generated_text: null, details: null }),
      () => data({ error: 'Request failed during generation: Server error: CUDA out of memory', error_type: 'generation' }),
      () => res.write('data:{"token": {broken\n\n'),
    );
    if (!ok) return;
    // TGI ends with the special end-of-sequence token, carrying the details.
    data({
      index: script.tokens.length + 1,
      token: { id: 2, text: '</s>', logprob: 0, special: true },
      generated_text: script.tokens.join(''),
      details: { finish_reason: 'eos_token', generated_tokens: script.usage?.completion ?? script.tokens.length, seed: null },
    });
  }
}
