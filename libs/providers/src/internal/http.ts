import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { UpstreamClosedError, UpstreamConnectError, UpstreamHttpError, UpstreamProtocolError, parseRetryAfter } from '../errors';

/**
 * POSTs JSON and returns the streaming response, or throws the typed error:
 * unreachable → UpstreamConnectError, non-2xx → UpstreamHttpError (status, body, Retry-After),
 * aborted → the signal's reason.
 */
export async function postForStream(url: string, body: unknown, headers: Record<string, string>, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal });
  } catch (cause) {
    if (signal.aborted) throw signal.reason;
    const reason = (cause as { cause?: { code?: string } }).cause?.code ?? (cause as Error).message;
    throw new UpstreamConnectError(`cannot reach upstream ${url}: ${reason}`, { cause });
  }
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    throw new UpstreamHttpError(response.status, text, parseRetryAfter(response.headers.get('retry-after')));
  }
  if (!response.body) throw new UpstreamProtocolError('upstream answered without a body');
  return response.body;
}

/**
 * Decoded text chunks of a response body. Leaving early (abort, consumer stopped)
 * cancels the body, which closes the upstream connection; a broken connection is UpstreamClosedError.
 */
export async function* readText(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let completed = false;
  try {
    for await (const bytes of body as AsyncIterable<Uint8Array>) yield decoder.decode(bytes, { stream: true });
    completed = true;
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    throw new UpstreamClosedError(`upstream connection failed mid-stream: ${(error as Error).message}`);
  } finally {
    if (!completed) await body.cancel().catch(() => undefined);
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
export async function* sseMessages(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<EventSourceMessage> {
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
