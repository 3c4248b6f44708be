import { modelConfigSchema } from '@tokenwire/providers';
import { fleetModelConfigSchema } from '@tokenwire/contracts';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

/** `host:port,host:port` (env) or a list of {host, port} (YAML). */
const hostPortList = z.preprocess(
  (value) =>
    typeof value === 'string'
      ? value
          .split(',')
          .filter((entry) => entry.trim())
          .map((entry) => {
            const [host, port] = entry.trim().split(':');
            return { host, port };
          })
      : value,
  z.array(z.object({ host: z.string().min(1), port: z.coerce.number({ message: 'expected host:port' }).int().min(1).max(65535) })),
);

/** Models served when the config names none: the no-network demo, paced and unpaced. */
export const DEFAULT_MODELS = [
  { name: 'demo', provider: 'demo', options: { tokenDelayMs: 25 } },
  { name: 'demo-fast', provider: 'demo', options: { tokenDelayMs: 0, tokens: 200 } },
];

const limitsSchema = z.object({
  /** Unfinished generations (queued or running) a tenant may have. */
  maxConcurrent: positiveInt.default(100),
  /** Requests a tenant may make per minute (token bucket, shared by every api process). */
  requestsPerMinute: positiveInt.default(600),
  /** Prompt + completion tokens a tenant may use per minute; charged when a generation ends. */
  tokensPerMinute: positiveInt.default(1_000_000),
  /** Largest `max_tokens` a request may ask for. */
  maxOutputTokens: positiveInt.default(32_768),
});
export type TenantLimits = z.output<typeof limitsSchema>;

/** The one typed configuration of both apps. Every key is documented in the README. */
export const tokenwireConfigSchema = z.object({
  redis: z
    .object({
      url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
      /** Prefix of every key, channel and BullMQ queue: lets deployments (and tests) share one Redis. */
      prefix: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only').default('tw'),
      /** Sentinels to ask for the master (`host:port,host:port` in the env); empty: connect to `url` directly. */
      sentinels: hostPortList.default([]),
      /** Redis Cluster nodes to start from (`host:port,host:port` in the env); when set, `url` supplies only credentials and TLS. */
      clusterNodes: hostPortList.default([]),
      /** Master name the sentinels monitor. */
      sentinelName: z.string().min(1).default('mymaster'),
      /**
       * Live channels of generations on a Cluster: `sharded` (SPUBLISH/SSUBSCRIBE, an event touches only the
       * shard that owns the generation) or `classic` (PUBLISH, which the cluster bus copies to every node; kept
       * for comparison). Standalone and Sentinel always use PUBLISH.
       */
      clusterPubSub: z.enum(['sharded', 'classic']).default('sharded'),
    })
    .refine((redis) => !(redis.sentinels.length && redis.clusterNodes.length), { message: 'set sentinels or clusterNodes, not both' })
    .prefault({}),
  api: z
    .object({
      host: z.string().default('0.0.0.0'),
      port: port.default(3000),
      /** Largest accepted request body (bytes, or a size like `1mb`). */
      bodyLimit: z.string().default('1mb'),
      /** How often an SSE response sends a `: ping` comment while waiting for events. */
      sseKeepAliveMs: positiveInt.default(15_000),
      /**
       * On the OpenAI route with `stream: true`, how long the response headers wait for the first
       * token or error, so an error before the first token still gets its own HTTP status; after
       * it, the stream starts with a `: ping`. 0: headers at once.
       */
      streamHeaderHoldMs: z.coerce.number().int().min(0).default(10_000),
      /**
       * Compress SSE (br or gzip, per Accept-Encoding), flushing every event. Off by default: a flushed
       * event costs 24–34 µs of zlib CPU, about the api's whole per-token cost (bench/sse-compression.ts).
       */
      sseCompression: z
        .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
        .transform((v) => v === true || v === 'true' || v === '1')
        .default(false),
      /** Socket.IO permessage-deflate (compresses frames above 1 KB). */
      socketCompression: z
        .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
        .transform((v) => v === true || v === 'true' || v === '1')
        .default(false),
      /** Bytes a slow streaming client may leave unsent before it is dropped (it may resume). */
      maxBufferedBytes: positiveInt.default(1024 * 1024),
      /** A replay page the client has not read within this time drops it (it may resume). */
      replayDrainTimeoutMs: positiveInt.default(60_000),
      /** On SIGTERM, how long open streams may run on before they are closed (clients resume elsewhere). */
      shutdownGraceMs: positiveInt.default(10_000),
      /** How long a `stream: false` request waits for its generation. */
      requestTimeoutMs: positiveInt.default(600_000),
      /** Largest Socket.IO message a client may send (Socket.IO's `maxHttpBufferSize`); a bigger one gets an `error` event naming the limit, then the connection closes. */
      socketMaxBytes: positiveInt.default(1_000_000),
      /** Port of the api's Prometheus `/metrics`, apart from the public port (0: any free port, logged at start). */
      metricsPort: port.default(9465),
    })
    .prefault({}),
  worker: z
    .object({
      /** Generations one worker process runs at once. */
      concurrency: positiveInt.default(50),
      /** A job whose worker stops renewing its lock for this long is taken over by another worker. */
      lockDurationMs: positiveInt.default(30_000),
      /** How often workers look for such stalled jobs. */
      stalledIntervalMs: positiveInt.default(15_000),
      /** On SIGTERM, how long running generations may take to finish before they are handed back to the queue. */
      shutdownGraceMs: positiveInt.default(25_000),
      /**
       * Coalescing of text deltas into events: `off` (one event per upstream delta), `turn` (the deltas
       * of one upstream read, i.e. one event-loop turn, become one event), or a window in ms.
       */
      coalesce: z
        .union([z.enum(['off', 'turn']), z.coerce.number().int().positive()], { message: 'expected off, turn or a positive number of ms' })
        .default('turn'),
      /** Port of the worker's Prometheus `/metrics` (0: any free port, logged at start). */
      metricsPort: port.default(9464),
    })
    .prefault({}),
  upstream: z
    .object({
      /**
       * No bytes from the upstream for this long aborts it with `upstream_stalled`. Keep-alives
       * (SSE comments, Anthropic `ping`, empty frames) are bytes: an upstream that sends them is alive.
       */
      stallTimeoutMs: positiveInt.default(60_000),
      /**
       * Optional bound on the wait for the first token (text, tool call, usage or finish), counted from
       * the call, even while keep-alives arrive: an upstream that only queues us ends with `upstream_stalled`
       * and is retried or falls back like any failure before the first token. Absent: no bound but the stall timeout.
       */
      firstTokenTimeoutMs: positiveInt.optional(),
      /** Attempts per provider before the first token (connect errors, 408/409/429/5xx). */
      maxAttempts: positiveInt.default(3),
      /** First retry delay; doubles per attempt, with ±50% jitter. `Retry-After` wins when larger. */
      retryBaseDelayMs: positiveInt.default(200),
      retryMaxDelayMs: positiveInt.default(10_000),
      /** Consecutive failures that open a model's circuit breaker. */
      breakerFailureThreshold: positiveInt.default(5),
      /** How long an open breaker rejects calls before one trial call is let through. */
      breakerResetMs: positiveInt.default(30_000),
    })
    .prefault({}),
  generations: z
    .object({
      /**
       * A running generation's event log expires this long after its latest event (renewed per event);
       * the default for `finishedTtlSeconds`. Its meta (status, tenant) does not expire before the
       * generation ends, however long it waits in the queue or runs.
       */
      ttlSeconds: positiveInt.default(3600),
      /**
       * How long a finished generation's event log, status and terminal marker stay readable and resumable
       * (set by the terminal event). Absent: `ttlSeconds`. The main knob of Redis memory: see README, "Sizing Redis".
       */
      finishedTtlSeconds: positiveInt.optional(),
      /** Cap on events kept per generation log (approximate, XADD MAXLEN ~). */
      maxEvents: positiveInt.default(100_000),
      /**
       * A generation that has neither a terminal event nor a live job (queued, running, retrying)
       * this long after it was created is ended by the reaper with `error {code: "abandoned"}`.
       */
      abandonAfterMs: positiveInt.default(30_000),
    })
    .prefault({}),
  auth: z
    .object({
      /** Off: every request is tenant `default` (a single-tenant or local setup). On: API keys are required. */
      enabled: z
        .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
        .transform((v) => v === true || v === 'true' || v === '1')
        .default(false),
      /** Operator token: manages the keys of every tenant through /v1/admin/keys. */
      adminToken: z.string().min(16, 'use at least 16 characters').optional(),
    })
    .prefault({}),
  limits: limitsSchema.prefault({}),
  /** Per-tenant overrides of `limits`, by tenant id. */
  tenants: z.record(z.string(), z.object({ limits: limitsSchema.partial().default({}) })).default({}),
  batches: z
    .object({
      /** Items of one batch running at once (the rest wait in Redis, not in the queue). */
      concurrency: positiveInt.default(8),
      /** Largest batch. */
      maxItems: positiveInt.default(50_000),
      /** Largest batch upload (bytes, or a size like `50mb`). */
      bodyLimit: z.string().default('50mb'),
      /** How long a batch's input and results stay in Redis. */
      ttlSeconds: positiveInt.default(86_400),
      /** Attempts per item (upstream failures before its first token are retried inside each attempt too). */
      itemAttempts: positiveInt.default(3),
      /**
       * An item handed to the queue this long ago whose job is missing (its feeder died) is queued again;
       * one whose job ended without a result is recorded as failed (`abandoned`). The sweep runs every half of it (at most 10 s).
       */
      recoverAfterMs: positiveInt.default(10_000),
    })
    .prefault({}),
  metrics: z
    .object({
      /**
       * Period of the event-loop delay sampler (`nodejs_eventloop_lag_*`). A delay sampler is a timer: at
       * prom-client's 10 ms it was almost every wake-up of an idle process. A block longer than this is
       * always seen; a shorter one with probability (its length / this).
       */
      eventLoopResolutionMs: positiveInt.default(100),
    })
    .prefault({}),
  log: z
    .object({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** `json`: one JSON object per line (for log shippers); `pretty`: readable lines; `auto`: pretty on a terminal, else json. */
      format: z.enum(['auto', 'json', 'pretty']).default('auto'),
    })
    .prefault({}),
  ollama: z
    .object({
      /** Ollama servers probed at start; the models their /api/tags lists are added (named as Ollama names them). `off` in the env: none. */
      discover: z
        .preprocess((v) => (v === 'off' ? [] : typeof v === 'string' ? v.split(',').map((u) => u.trim()).filter(Boolean) : v), z.array(z.url()))
        .default(['http://127.0.0.1:11434']),
    })
    .prefault({}),
  models: z
    .array(
      modelConfigSchema.extend({
        /** Models (by name) that answer, in order, when this one's upstream fails before its first token. */
        fallbacks: z.array(z.string().min(1)).default([]),
        /** Most calls to this model's upstream at once, across all workers (unset: no cap). */
        maxConcurrency: positiveInt.optional(),
      }).extend(fleetModelConfigSchema.shape),
    )
    .min(1)
    .prefault(DEFAULT_MODELS),
}).superRefine((config, ctx) => {
  const names = new Set(config.models.map((m) => m.name));
  config.models.forEach((model, index) => {
    if (model.deployments && model.discover) {
      ctx.addIssue({ code: 'custom', path: ['models', index, 'discover'], message: 'set deployments or discover, not both' });
    }
    model.fallbacks.forEach((fallback, f) => {
      if (!names.has(fallback) || fallback === model.name) {
        ctx.addIssue({
          code: 'custom',
          path: ['models', index, 'fallbacks', f],
          message: `"${fallback}" must name another configured model (known: ${[...names].join(', ')})`,
        });
      }
    });
  });
});
export type TokenwireConfig = z.output<typeof tokenwireConfigSchema>;
export type TokenwireConfigInput = z.input<typeof tokenwireConfigSchema>;

export type ModelEntry = TokenwireConfig['models'][number];

/** A model served by several replicas (listed, or found through DNS) rather than by its one upstream. */
export function isFleetModel(model: ModelEntry): boolean {
  return Boolean(model.deployments || model.discover);
}

/**
 * A model as the ProviderRegistry builds it: a fleet model gets its first deployment's options
 * (or a resolved-address stand-in), since its provider and capabilities are the same on every
 * replica. The workers route fleet models through their deployments, never through this entry.
 */
export function asSingleUpstream(model: ModelEntry): ModelEntry {
  if (model.deployments) return { ...model, options: { ...model.options, ...model.deployments[0]!.options } };
  if (model.discover) {
    const { urlOption, urlTemplate } = model.discover;
    return { ...model, options: { ...model.options, [urlOption]: urlTemplate.replaceAll('{address}', '127.0.0.1') } };
  }
  return model;
}

/** A tenant's limits: the defaults with the tenant's own overrides. */
/** How long a finished generation's log, meta and terminal marker stay: `finishedTtlSeconds`, else `ttlSeconds`. */
export function finishedTtlSeconds(config: TokenwireConfig): number {
  return config.generations.finishedTtlSeconds ?? config.generations.ttlSeconds;
}

export function limitsFor(config: TokenwireConfig, tenantId: string): TenantLimits {
  return { ...config.limits, ...config.tenants[tenantId]?.limits };
}

/** Environment variables and the config keys they set (env wins over the YAML file). */
export const ENV_KEYS: Readonly<Record<string, readonly string[]>> = {
  REDIS_URL: ['redis', 'url'],
  TOKENWIRE_REDIS_PREFIX: ['redis', 'prefix'],
  REDIS_SENTINELS: ['redis', 'sentinels'],
  REDIS_SENTINEL_NAME: ['redis', 'sentinelName'],
  REDIS_CLUSTER_NODES: ['redis', 'clusterNodes'],
  REDIS_CLUSTER_PUBSUB: ['redis', 'clusterPubSub'],
  HOST: ['api', 'host'],
  PORT: ['api', 'port'],
  TOKENWIRE_BODY_LIMIT: ['api', 'bodyLimit'],
  TOKENWIRE_SSE_KEEPALIVE_MS: ['api', 'sseKeepAliveMs'],
  TOKENWIRE_STREAM_HEADER_HOLD_MS: ['api', 'streamHeaderHoldMs'],
  TOKENWIRE_MAX_BUFFERED_BYTES: ['api', 'maxBufferedBytes'],
  TOKENWIRE_REPLAY_DRAIN_TIMEOUT_MS: ['api', 'replayDrainTimeoutMs'],
  TOKENWIRE_SSE_COMPRESSION: ['api', 'sseCompression'],
  TOKENWIRE_SOCKET_COMPRESSION: ['api', 'socketCompression'],
  TOKENWIRE_API_SHUTDOWN_GRACE_MS: ['api', 'shutdownGraceMs'],
  TOKENWIRE_REQUEST_TIMEOUT_MS: ['api', 'requestTimeoutMs'],
  API_METRICS_PORT: ['api', 'metricsPort'],
  TOKENWIRE_SOCKET_MAX_BYTES: ['api', 'socketMaxBytes'],
  WORKER_CONCURRENCY: ['worker', 'concurrency'],
  TOKENWIRE_WORKER_LOCK_DURATION_MS: ['worker', 'lockDurationMs'],
  TOKENWIRE_WORKER_STALLED_INTERVAL_MS: ['worker', 'stalledIntervalMs'],
  TOKENWIRE_WORKER_SHUTDOWN_GRACE_MS: ['worker', 'shutdownGraceMs'],
  WORKER_METRICS_PORT: ['worker', 'metricsPort'],
  TOKENWIRE_COALESCE: ['worker', 'coalesce'],
  TOKENWIRE_UPSTREAM_STALL_TIMEOUT_MS: ['upstream', 'stallTimeoutMs'],
  TOKENWIRE_UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: ['upstream', 'firstTokenTimeoutMs'],
  TOKENWIRE_UPSTREAM_MAX_ATTEMPTS: ['upstream', 'maxAttempts'],
  TOKENWIRE_UPSTREAM_RETRY_BASE_DELAY_MS: ['upstream', 'retryBaseDelayMs'],
  TOKENWIRE_UPSTREAM_RETRY_MAX_DELAY_MS: ['upstream', 'retryMaxDelayMs'],
  TOKENWIRE_BREAKER_FAILURE_THRESHOLD: ['upstream', 'breakerFailureThreshold'],
  TOKENWIRE_BREAKER_RESET_MS: ['upstream', 'breakerResetMs'],
  TOKENWIRE_GENERATION_TTL_SECONDS: ['generations', 'ttlSeconds'],
  TOKENWIRE_GENERATION_FINISHED_TTL_SECONDS: ['generations', 'finishedTtlSeconds'],
  TOKENWIRE_GENERATION_ABANDON_AFTER_MS: ['generations', 'abandonAfterMs'],
  TOKENWIRE_MAX_EVENTS: ['generations', 'maxEvents'],
  TOKENWIRE_METRICS_EVENT_LOOP_RESOLUTION_MS: ['metrics', 'eventLoopResolutionMs'],
  LOG_LEVEL: ['log', 'level'],
  LOG_FORMAT: ['log', 'format'],
  TOKENWIRE_BATCH_CONCURRENCY: ['batches', 'concurrency'],
  TOKENWIRE_BATCH_MAX_ITEMS: ['batches', 'maxItems'],
  TOKENWIRE_BATCH_BODY_LIMIT: ['batches', 'bodyLimit'],
  TOKENWIRE_BATCH_TTL_SECONDS: ['batches', 'ttlSeconds'],
  TOKENWIRE_BATCH_RECOVER_AFTER_MS: ['batches', 'recoverAfterMs'],
  OLLAMA_DISCOVER_URLS: ['ollama', 'discover'],
  TOKENWIRE_AUTH_ENABLED: ['auth', 'enabled'],
  TOKENWIRE_ADMIN_TOKEN: ['auth', 'adminToken'],
  TOKENWIRE_MAX_CONCURRENT: ['limits', 'maxConcurrent'],
  TOKENWIRE_REQUESTS_PER_MINUTE: ['limits', 'requestsPerMinute'],
  TOKENWIRE_TOKENS_PER_MINUTE: ['limits', 'tokensPerMinute'],
  TOKENWIRE_MAX_OUTPUT_TOKENS: ['limits', 'maxOutputTokens'],
};
/** Path of the optional YAML config file. */
export const CONFIG_FILE_ENV = 'TOKENWIRE_CONFIG';
