/**
 * The floor of a one-process proxy (bench/floor.ts): reads the upstream's SSE and writes each chunk to the
 * client as it came, with nothing else (no parsing, no auth, no metrics). No real proxy costs less per token.
 * Env: FLOOR_UPSTREAM (base URL). Tells its port to the parent.
 */
import http from 'node:http';

const upstream = new URL(process.env.FLOOR_UPSTREAM!);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

const server = http.createServer((req, res) => {
  const body: Buffer[] = [];
  req.on('data', (chunk: Buffer) => body.push(chunk));
  req.on('end', () => {
    const call = http.request(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (reply) => {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        reply.on('data', (chunk: Buffer) => res.write(chunk));
        reply.on('end', () => res.end());
      },
    );
    res.on('close', () => call.destroy());
    call.end(Buffer.concat(body));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
