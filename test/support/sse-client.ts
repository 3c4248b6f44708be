import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface SseReadResult {
  events: EventSourceMessage[];
  /** SSE comments (e.g. keep-alive pings). */
  comments: string[];
  status: number;
}

/**
 * Reads an SSE response with fetch until the server ends it, `until` returns true
 * (then the client disconnects), or `signal` aborts.
 */
export async function readSse(
  url: string,
  init: RequestInit & {
    until?: (event: EventSourceMessage, all: EventSourceMessage[]) => boolean;
    timeoutMs?: number;
    /** Called with the status once the response headers arrived (the server opened the stream, or refused it). */
    onResponse?: (status: number) => void;
  } = {},
): Promise<SseReadResult> {
  const controller = new AbortController();
  init.signal?.addEventListener('abort', () => controller.abort(init.signal?.reason));
  // A stream that never ends fails the test instead of hanging the suite.
  const timeoutMs = init.timeoutMs ?? 60_000;
  const timer = setTimeout(() => controller.abort(new Error(`SSE stream ${url} did not end within ${timeoutMs} ms`)), timeoutMs);
  const response = await fetch(url, { ...init, signal: controller.signal });
  init.onResponse?.(response.status);
  const result: SseReadResult = { events: [], comments: [], status: response.status };
  if (!response.ok || !response.body) {
    result.events.push({ event: 'http-error', data: await response.text(), id: undefined });
    return result;
  }
  let stop = false;
  const parser = createParser({
    onEvent: (event) => {
      if (stop) return;
      result.events.push(event);
      if (init.until?.(event, result.events)) stop = true;
    },
    onComment: (comment) => result.comments.push(comment),
  });
  const decoder = new TextDecoder();
  try {
    for await (const bytes of response.body as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(bytes, { stream: true }));
      if (stop) break;
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    if (controller.signal.reason instanceof Error && !init.signal?.aborted) throw controller.signal.reason;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return result;
}
