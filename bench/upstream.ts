/**
 * Bench upstream: an OpenAI-compatible SSE server in its own process. Each token's
 * text carries the wall-clock time it was written (`<ms>|`), so a client anywhere
 * on this machine measures delivery latency per token. Early closes are recorded
 * (for cancel latency) and served at GET /closes.
 */
import http from 'node:http';

const now = () => performance.timeOrigin + performance.now();
const tokens = Number(process.env.BENCH_TOKENS ?? 100);
const paceMs = Number(process.env.BENCH_PACE_MS ?? 20);
const closes: Record<string, number> = {};

const server = http.createServer((req, res) => {
  if (req.url === '/closes') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(closes));
    return;
  }
  let raw = '';
  req.on('data', (chunk: Buffer) => (raw += chunk));
  req.on('end', () => {
    const body = JSON.parse(raw) as { messages: Array<{ content: string }>; max_tokens?: number };
    const marker = body.messages.at(-1)?.content ?? '';
    const count = body.max_tokens ?? tokens;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.socket?.setNoDelay(true);
    const frame = (content: string) => `data: {"id":"b","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"${content}"},"finish_reason":null}]}\n\n`;
    let sent = 0;
    let finished = false;
    res.on('close', () => {
      if (!finished) closes[marker] = now();
      clearInterval(timer);
    });
    const tick = () => {
      if (sent >= count) {
        finished = true;
        clearInterval(timer);
        res.end('data: {"id":"b","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n');
        return;
      }
      if (paceMs === 0) {
        // Unpaced: write in bursts, yielding to the event loop between them.
        let burst = '';
        for (let i = 0; i < 64 && sent < count; i++, sent++) burst += frame(`${now().toFixed(3)}|`);
        res.write(burst);
      } else {
        sent++;
        res.write(frame(`${now().toFixed(3)}|`));
      }
    };
    const timer = setInterval(tick, paceMs);
    tick();
  });
});
server.keepAliveTimeout = 60_000;
server.maxConnections = 100_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as { port: number }).port });
});
