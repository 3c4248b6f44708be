import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { UpstreamClosedError, UpstreamConnectError, UpstreamHttpError, UpstreamProtocolError, parseRetryAfter } from '../errors';

// node:http rather than fetch: a token is one small read, and Node streams cost a fraction of
// WHATWG streams per read (bench/README.md, "What was changed"). Keep-alive pools like fetch's.
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: Infinity }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: Infinity }),
};

/**
 * POSTs JSON and returns the streaming response, or throws the typed error:
 * unreachable → UpstreamConnectError, non-2xx → UpstreamHttpError (status, body, Retry-After),
 * aborted → the signal's reason. Aborting later destroys the response, closing the connection.
 */
export function postForStream(url: string, body: unknown, headers: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const request = client.request(
      target,
      {
        method: 'POST',
        agent: agents[target.protocol as keyof typeof agents],
        headers: { 'content-type': 'application/json', 'content-length': payload.length, ...headers },
        signal,
      },
      (response) => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(response);
        const retryAfter = parseRetryAfter(headerValue(response.headers['retry-after']));
        readAll(response).then(
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

async function readAll(response: IncomingMessage): Promise<string> {
  response.setEncoding('utf8');
  let text = '';
  for await (const chunk of response) text += chunk as string;
  return text;
}

/**
 * Decoded text chunks of a response body. Leaving early (abort, consumer stopped)
 * destroys the response, which closes the upstream connection; a broken connection is UpstreamClosedError.
 */
export async function* readText(body: IncomingMessage, signal: AbortSignal): AsyncGenerator<string> {
  body.setEncoding('utf8'); // a multi-byte character split across reads is kept whole
  let completed = false;
  try {
    for await (const text of body) yield text as string;
    completed = true;
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw new UpstreamClosedError(`upstream connection failed mid-stream: ${(error as Error).message}`);
  } finally {
    if (!completed) body.destroy();
  }
}

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

/** The SSE messages of a response body, in order, as they arrive (eventsource-parser; any chunk split). */
export async function* sseMessages(body: IncomingMessage, signal: AbortSignal): AsyncGenerator<EventSourceMessage> {
  const arrived: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => arrived.push(message) });
  for await (const text of readText(body, signal)) {
    parser.feed(text);
    yield* arrived.splice(0);
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
