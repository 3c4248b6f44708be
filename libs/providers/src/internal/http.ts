import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { pipeline, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { UpstreamClosedError, UpstreamConnectError, UpstreamHttpError, UpstreamProtocolError, parseRetryAfter } from '../errors';

// node:http rather than fetch: a token is one small read, and Node streams cost a fraction of
// WHATWG streams per read (bench/README.md, "What was changed"). Keep-alive pools like fetch's.
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: Infinity }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: Infinity }),
};

/**
 * POSTs JSON and returns the streaming response body (decoded when the upstream compressed it),
 * or throws the typed error: unreachable → UpstreamConnectError, non-2xx → UpstreamHttpError
 * (status, body, Retry-After), aborted → the signal's reason. Aborting later destroys the body,
 * closing the connection.
 *
 * `Accept-Encoding: identity` is sent unless `headers` sets it: a token stream gains little from
 * compression and each compressed read costs a decoder flush. An upstream may compress anyway
 * (RFC 9110 allows it), so gzip, deflate and br bodies are decoded.
 */
export function postForStream(url: string, body: unknown, headers: Record<string, string>, signal: AbortSignal): Promise<Readable> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  const payload = Buffer.from(JSON.stringify(body));
  const configured = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const request = client.request(
      target,
      {
        method: 'POST',
        agent: agents[target.protocol as keyof typeof agents],
        headers: { 'content-type': 'application/json', 'accept-encoding': 'identity', ...configured, 'content-length': payload.length },
        signal,
      },
      (response) => {
        const status = response.statusCode ?? 0;
        let decoded: Readable;
        try {
          decoded = decodedBody(response);
        } catch (error) {
          response.destroy();
          return reject(error);
        }
        if (status >= 200 && status < 300) return resolve(decoded);
        const retryAfter = parseRetryAfter(headerValue(response.headers['retry-after']));
        readAll(decoded).then(
          (text) => reject(new UpstreamHttpError(status, text, retryAfter)),
          () => reject(new UpstreamHttpError(status, '', retryAfter)),
        );
      },
    );
    request.on('error', (cause: NodeJS.ErrnoException) => {
      if (signal.aborted) return reject(signal.reason);
      reject(new UpstreamConnectError(`cannot reach upstream ${url}: ${cause.code ?? cause.message}`, { cause }));
    });
    request.end(payload);
  });
}

function headerValue(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

/** The body as sent, or through a decoder for its Content-Encoding; destroying the result destroys the response. */
function decodedBody(response: IncomingMessage): Readable {
  const encodings = (headerValue(response.headers['content-encoding']) ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e && e !== 'identity');
  if (encodings.length === 0) return response;
  const decoders = encodings.reverse().map((encoding) => {
    // Unzip takes gzip and zlib-wrapped deflate (what `deflate` means in HTTP).
    if (encoding === 'gzip' || encoding === 'x-gzip' || encoding === 'deflate') return zlib.createUnzip();
    if (encoding === 'br') return zlib.createBrotliDecompress();
    throw new UpstreamProtocolError(`upstream sent Content-Encoding "${encoding}", which the gateway cannot decode (gzip, deflate, br)`);
  });
  for (const decoder of decoders) decoder.once('error', (error) => decodeFailures.add(error));
  return pipeline([response, ...decoders] as unknown as [Readable, Readable], () => undefined) as unknown as Readable;
}

async function readAll(response: Readable): Promise<string> {
  response.setEncoding('utf8');
  let text = '';
  for await (const chunk of response) text += chunk as string;
  return stripBom(text);
}

const BOM = '\uFEFF';
const stripBom = (text: string) => (text.startsWith(BOM) ? text.slice(1) : text);

/**
 * Decoded text chunks of a response body, without one leading UTF-8 BOM (as the SSE spec
 * says; JSON and NDJSON parsers reject it). Leaving early (abort, consumer stopped)
 * destroys the body, which closes the upstream connection; a broken connection is
 * UpstreamClosedError, a body that does not decompress UpstreamProtocolError.
 * `heartbeat` is called for every read, keep-alive bytes included (StreamOptions.heartbeat).
 */
export async function* readText(body: Readable, signal: AbortSignal, heartbeat?: () => void): AsyncGenerator<string> {
  const reader = new BodyText(body, signal, heartbeat);
  try {
    for await (const chunk of body) {
      const text = reader.text(chunk as string);
      if (text) yield text;
    }
    reader.completed = true;
  } catch (error) {
    throw reader.failure(error);
  } finally {
    await reader.close();
  }
}

/**
 * The shared part of reading a body as text: the BOM, the heartbeat, the error mapping and the
 * destroy on an early exit. A class rather than a generator so that sseMessages can read the body
 * in its own loop: one async-generator hop less per token (bench/provider-chain.ts).
 */
class BodyText {
  completed = false;
  /** The protocol's last message was read: what may follow is the body's end, so the connection can be kept. */
  sawLast = false;
  private first = true;

  constructor(
    private readonly body: Readable,
    private readonly signal: AbortSignal,
    private readonly heartbeat: (() => void) | undefined,
  ) {
    body.setEncoding('utf8'); // a multi-byte character split across reads is kept whole
  }

  /** The text of one read ('' for nothing to pass on). */
  text(chunk: string): string {
    this.heartbeat?.();
    if (!this.first) return chunk;
    if (!chunk) return '';
    this.first = false;
    return stripBom(chunk);
  }

  /** The typed error for a read that failed. */
  failure(error: unknown): unknown {
    if (this.signal.aborted) return this.signal.reason;
    if (isDecompressionError(error)) return new UpstreamProtocolError(`upstream body does not decompress: ${(error as Error).message}`, { cause: error });
    return new UpstreamClosedError(`upstream connection failed mid-stream: ${(error as Error).message}`);
  }

  /**
   * Destroys the body (closing the upstream connection) when the reader left early, unless the
   * protocol's last message was read and nobody cancelled: then the rest (the body's end) is read,
   * for at most KEEP_ALIVE_DRAIN_MS, so the connection goes back to the keep-alive pool.
   */
  async close(): Promise<void> {
    if (this.completed || this.body.readableEnded) return;
    if (!this.sawLast || this.signal.aborted) {
      this.body.destroy();
      return;
    }
    const timer = setTimeout(() => this.body.destroy(), KEEP_ALIVE_DRAIN_MS);
    timer.unref();
    // Waits a moment for the end (it normally follows the last message at once), so the connection
    // is free when the caller's next call starts; past that, the drain goes on without the caller.
    await new Promise<void>((resolve) => {
      const settled = () => {
        clearTimeout(timer);
        clearTimeout(wait);
        resolve();
      };
      const wait = setTimeout(resolve, END_WAIT_MS);
      this.body.once('end', settled);
      this.body.once('close', settled);
      this.body.resume();
    });
  }
}

/** How long the end of a body may take after the protocol's last message before its connection is closed instead of kept. */
const KEEP_ALIVE_DRAIN_MS = 1000;
/** How long a caller waits for that end before it goes on (the drain continues without it). */
const END_WAIT_MS = 20;

/** Errors raised by a decoder (bad compressed data), as opposed to the connection failing. */
const decodeFailures = new WeakSet<object>();
const isDecompressionError = (error: unknown) => typeof error === 'object' && error !== null && decodeFailures.has(error);

/** Splits text chunks into lines (NDJSON), keeping partial lines across chunks. */
export async function* lines(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of chunks) {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) if (line.trim()) yield line;
  }
  if (rest.trim()) yield rest;
}

/**
 * The SSE messages of a response body, in order, as they arrive (eventsource-parser; any chunk split).
 * `isLast` names the protocol's last message (OpenAI's `[DONE]`): a consumer that stops there keeps
 * the connection for the next call; one that stops anywhere else closes it.
 */
export async function* sseMessages(body: Readable, signal: AbortSignal, heartbeat?: () => void, isLast?: (message: EventSourceMessage) => boolean): AsyncGenerator<EventSourceMessage> {
  const arrived: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => arrived.push(message) });
  const reader = new BodyText(body, signal, heartbeat);
  // The body is read here rather than through readText: one async generator per token instead
  // of two. Only the read's errors are mapped, as readText's are; the parser's and the consumer's pass as they are.
  const reads = body[Symbol.asyncIterator]();
  try {
    for (;;) {
      let read: IteratorResult<unknown>;
      try {
        read = await reads.next();
      } catch (error) {
        throw reader.failure(error);
      }
      if (read.done) break;
      const text = reader.text(read.value as string);
      if (!text) continue;
      parser.feed(text);
      if (isLast && arrived.length > 0 && isLast(arrived[arrived.length - 1]!)) reader.sawLast = true;
      if (arrived.length === 1) yield arrived.pop()!;
      else if (arrived.length > 1) yield* arrived.splice(0);
    }
    reader.completed = true;
  } finally {
    await reader.close();
  }
}

/** A frame's JSON, or UpstreamProtocolError naming what was malformed. */
export function parseJsonFrame(data: string, what = 'SSE frame'): unknown {
  try {
    return JSON.parse(data);
  } catch (cause) {
    throw new UpstreamProtocolError(`malformed ${what}: ${data.slice(0, 200)}`, { cause });
  }
}
