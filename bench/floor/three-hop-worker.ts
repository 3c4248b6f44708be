/**
 * The floor of Tokenwire's worker (bench/floor.ts): takes jobs off a Redis list one per round trip, calls
 * the upstream, takes each token's text out of its SSE frame, and appends every event of a turn with one
 * script call (XADD to the generation's stream and PUBLISH on its channel, per event), as Tokenwire's
 * turn-batched appends do. Nothing else (no claim, ownership, meta, metrics, retries, validation).
 * Env: REDIS_URL, FLOOR_PREFIX, FLOOR_UPSTREAM.
 */
import http from 'node:http';
import { Redis } from 'ioredis';

const prefix = process.env.FLOOR_PREFIX!;
const upstream = new URL(process.env.FLOOR_UPSTREAM!);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const APPEND = `for i = 1, #KEYS do
  local at = (i - 1) * 2
  redis.call('XADD', KEYS[i], '*', 'e', ARGV[at + 2])
  redis.call('PUBLISH', ARGV[at + 1], ARGV[at + 2])
end`;

const commands = new Redis(process.env.REDIS_URL!);
commands.defineCommand('appendEvents', { lua: APPEND });
const blocking = new Redis(process.env.REDIS_URL!);
const CONTENT = '"content":"';

let keys: string[] = [];
let args: string[] = [];
function append(id: string, event: string): void {
  if (keys.length === 0) setImmediate(flush);
  keys.push(`${prefix}:events:${id}`);
  args.push(`${prefix}:live:${id}`, event);
}
function flush(): void {
  const [k, a] = [keys, args];
  keys = [];
  args = [];
  void (commands as unknown as { appendEvents(n: number, ...rest: string[]): Promise<unknown> }).appendEvents(k.length, ...k, ...a);
}

function run(id: string, body: string): void {
  let seq = 0;
  const call = http.request({ host: upstream.hostname, port: upstream.port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (reply) => {
    reply.setEncoding('utf8');
    reply.on('data', (text: string) => {
      for (let at = text.indexOf(CONTENT); at !== -1; at = text.indexOf(CONTENT, at)) {
        at += CONTENT.length;
        const end = text.indexOf('"', at);
        append(id, `c{"seq":${++seq},"delta":"${text.slice(at, end)}"}`);
      }
    });
    reply.on('end', () => append(id, `d{"seq":${++seq},"type":"done"}`));
  });
  call.end(body);
}

async function loop(): Promise<void> {
  for (;;) {
    const popped = await blocking.brpop(`${prefix}:jobs`, 0);
    const job = JSON.parse(popped![1]) as { id: string; body: string };
    run(job.id, job.body);
  }
}
void loop();
process.send?.({ ready: true });
