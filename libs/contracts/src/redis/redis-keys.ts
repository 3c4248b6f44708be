/**
 * Every Redis key, channel and queue name Tokenwire uses.
 * WARNING: renaming any of these breaks running deployments (in-flight jobs,
 * resumable streams and workers of the old version stop seeing each other).
 *
 * Per-generation keys share the hash tag `{<id>}` so they live on one Cluster
 * slot and a Lua script may touch them together.
 */
export const GENERATIONS_QUEUE = 'generations';
export const GENERATE_JOB = 'generate';

export interface RedisKeys {
  /** Redis Stream: the event log of one generation (entry id = `<seq>-0`). */
  eventLog(generationId: string): string;
  /** Pub/sub channel: the live events of one generation. */
  liveChannel(generationId: string): string;
  /** Hash: status, tenant, model, timestamps of one generation. */
  meta(generationId: string): string;
  /** String: set once by whoever writes the terminal event (exactly-once guard). */
  terminalMarker(generationId: string): string;
  /** String: present when a cancel was requested (checked when a worker picks the job up). */
  cancelRequest(generationId: string): string;
  /** Pub/sub channel every worker listens on for cancel requests. */
  controlChannel(): string;
  /** Hash: model name → circuit breaker snapshot (JSON), written by workers, read by /readyz. */
  upstreamHealth(): string;
  /** Prefix handed to BullMQ for its own keys. */
  bullPrefix(): string;
}

export function redisKeys(prefix: string): RedisKeys {
  const gen = (id: string) => `${prefix}:gen:{${id}}`;
  return {
    eventLog: (id) => `${gen(id)}:events`,
    liveChannel: (id) => `${gen(id)}:live`,
    meta: (id) => `${gen(id)}:meta`,
    terminalMarker: (id) => `${gen(id)}:terminal`,
    cancelRequest: (id) => `${gen(id)}:cancel`,
    controlChannel: () => `${prefix}:control`,
    upstreamHealth: () => `${prefix}:upstream-health`,
    bullPrefix: () => `${prefix}:bull`,
  };
}
