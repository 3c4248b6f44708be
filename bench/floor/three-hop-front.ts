/**
 * The floor of Tokenwire's api (bench/floor.ts): takes a streamed chat request, subscribes to the
 * generation's channel, queues the job on a Redis list, and writes each published event to the client as
 * one SSE frame. Nothing else (no auth, admission, validation, resume, metrics, formatting).
 * Env: REDIS_URL, FLOOR_PREFIX. Tells its port to the parent.
 */
import http from 'node:http';
import { Redis } from 'ioredis';

const prefix = process.env.FLOOR_PREFIX!;
const commands = new Redis(process.env.REDIS_URL!);
const subscriber = new Redis(process.env.REDIS_URL!);
const open = new Map<string, http.ServerResponse>();
let next = 0;

subscriber.on('message', (channel: string, message: string) => {
  const res = open.get(channel);
  if (!res) return;
  // The worker marks the last event with a leading 'd' (done), the others with 'c' (chunk).
  if (message.charCodeAt(0) === 100) {
    open.delete(channel);
    void subscriber.unsubscribe(channel);
    res.end('data: [DONE]\n\n');
  } else res.write(`data: ${message.slice(1)}\n\n`);
});

const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', async () => {
    const id = `${process.pid}-${next++}`;
    const channel = `${prefix}:live:${id}`;
    open.set(channel, res);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    await subscriber.subscribe(channel);
    await commands.lpush(`${prefix}:jobs`, JSON.stringify({ id, body }));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
