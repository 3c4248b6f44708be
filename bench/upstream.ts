/**
 * Bench upstream: a fake OpenAI-compatible SSE server in its own process.
 * - Streams BENCH_TOKENS tokens at BENCH_PACE_MS per token (0: unpaced, in bursts of 64).
 * - Each token's text is the wall-clock time it was written (`<epoch ms>|`), so a
 *   client anywhere on this machine measures delivery latency per token.
 * - A user message containing `delay=<ms>` waits that long before the first token;
 *   one containing `tokens=<n>` streams n tokens.
 * - GET /closes/<marker> answers, once the stream whose user message is <marker>
 *   ends, with the time its socket closed early (cancel latency), or 0 if it ran to the end.
 */
import http from 'node:http';

const now = () => performance.timeOrigin + performance.now();
const tokens = Number(process.env.BENCH_TOKENS ?? 100);
const paceMs = Number(process.env.BENCH_PACE_MS ?? 20);
const BURST = 64;

/** marker → close time (0: finished normally); and who waits for it. */
const ended = new Map<string, number>();
const waiters = new Map<string, Array<(closedAt: number) => void>>();

function settle(marker: string, closedAt: number): void {
  ended.set(marker, closedAt);
  for (const waiter of waiters.get(marker) ?? []) waiter(closedAt);
  waiters.delete(marker);
}

function awaitClose(marker: string, res: http.ServerResponse): void {
  const answer = (closedAt: number): void => void res.writeHead(200, { 'content-type': 'text/plain' }).end(String(closedAt));
  const known = ended.get(marker);
  if (known !== undefined) return answer(known);
  const timer = setTimeout(() => answer(0), 30_000);
  const list = waiters.get(marker) ?? [];
  list.push((closedAt) => {
    clearTimeout(timer);
    answer(closedAt);
  });
  waiters.set(marker, list);
}

const frame = (content: string) =>
  `data: {"id":"b","object":"chat.completion.chunk","created":0,"model":"bench","choices":[{"index":0,"delta":{"content":"${content}"},"finish_reason":null}]}\n\n`;
const LAST = 'data: {"id":"b","object":"chat.completion.chunk","created":0,"model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url?.startsWith('/closes/')) return awaitClose(decodeURIComponent(req.url.slice('/closes/'.length)), res);
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (raw += chunk));
  req.on('end', () => {
    const body = JSON.parse(raw) as { messages: Array<{ content: string }>; max_tokens?: number };
    const marker = body.messages.at(-1)?.content ?? '';
    const count = Number(/tokens=(\d+)/.exec(marker)?.[1] ?? body.max_tokens ?? tokens);
    const delayMs = Number(/delay=(\d+)/.exec(marker)?.[1] ?? 0);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.socket?.setNoDelay(true);
    let sent = 0;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    let interval: NodeJS.Timeout | undefined;
    res.on('close', () => {
      clearTimeout(timer);
      clearInterval(interval);
      settle(marker, finished ? 0 : now());
    });
    const tick = () => {
      if (res.destroyed) return;
      if (sent >= count) {
        finished = true;
        clearInterval(interval);
        res.end(LAST);
        return;
      }
      if (paceMs === 0) {
        // Unpaced: bursts of tokens, yielding to the event loop between bursts.
        let burst = '';
        for (let i = 0; i < BURST && sent < count; i++, sent++) burst += frame(`${now().toFixed(3)}|`);
        res.write(burst);
        timer = setTimeout(tick, 0);
      } else {
        sent++;
        res.write(frame(`${now().toFixed(3)}|`));
      }
    };
    // Paced: an interval, so the cadence does not drift with the time each write takes.
    const begin = () => {
      tick();
      if (paceMs > 0) interval = setInterval(tick, paceMs);
    };
    if (delayMs > 0) {
      res.write(': waiting\n\n');
      timer = setTimeout(begin, delayMs);
    } else begin();
  });
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 0;
server.requestTimeout = 0;
server.maxConnections = 100_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as { port: number }).port });
});
