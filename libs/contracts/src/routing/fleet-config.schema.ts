import { z } from 'zod';

/** Request header naming the client's session; a fleet model with prefix-affinity keeps a session on one replica. */
export const SESSION_HEADER = 'x-session-id';

const positiveInt = z.coerce.number().int().positive();

/** One replica of a model: the provider options that differ from the model's (base URL, key, ...). */
export const deploymentConfigSchema = z.object({
  /** Name in logs, metrics and /readyz; defaults to the host:port of `options.baseUrl` / `options.url`, else `d<index>`. */
  id: z.string().regex(/^[A-Za-z0-9_.:\[\]-]{1,100}$/, 'letters, digits and _ . : [ ] - only').optional(),
  /** Merged over the model's `options` (so a shared API key is written once). */
  options: z.record(z.string(), z.unknown()).default({}),
  /** Share of traffic under `weighted-random` (relative to the other deployments). */
  weight: z.coerce.number().positive().default(1),
  /** Most requests this replica runs at once, across all workers (unset: no cap). */
  maxConcurrency: positiveInt.optional(),
  /** Health probe URL; defaults to the origin of the replica's URL option plus `health.probePath`. */
  probeUrl: z.url().optional(),
});
export type DeploymentConfig = z.output<typeof deploymentConfigSchema>;

/** A DNS name re-resolved to many addresses (a Kubernetes headless Service): one replica per address. */
export const deploymentDiscoveryConfigSchema = z.object({
  /** Host name to resolve (every A/AAAA record is a replica). */
  dns: z.string().min(1),
  /**
   * DNS servers to ask (`ip` or `ip:port`), e.g. the cluster's DNS service. Absent: the system
   * resolver (getaddrinfo: /etc/hosts, then the servers in /etc/resolv.conf).
   */
  nameservers: z.array(z.string().min(1)).min(1).optional(),
  /** URL of one replica, `{address}` replaced by each resolved address (IPv6 in brackets), e.g. `http://{address}:8000/v1`. */
  urlTemplate: z.string().includes('{address}', { message: 'must contain {address}' }),
  /** Provider option that receives the URL (`baseUrl` for HTTP providers, `url` for WebSocket ones). */
  urlOption: z.string().min(1).default('baseUrl'),
  /** How often the name is resolved again; replicas that appear join, those that vanish leave (and lose their routing entries). */
  refreshMs: positiveInt.default(10_000),
  /** Per-replica cap, as `deployments[].maxConcurrency`. */
  maxConcurrency: positiveInt.optional(),
});
export type DeploymentDiscoveryConfig = z.output<typeof deploymentDiscoveryConfigSchema>;

export const routingStrategySchema = z.enum(['round-robin', 'weighted-random', 'least-outstanding', 'prefix-affinity']);
export type RoutingStrategy = z.output<typeof routingStrategySchema>;

/** How a model's requests are spread over its deployments. */
export const routingConfigSchema = z.object({
  strategy: routingStrategySchema.default('prefix-affinity'),
  /** prefix-affinity: size (characters) of the chunks the conversation is hashed in; each chunk's hash chains the previous one. */
  chunkChars: positiveInt.default(512),
  /** prefix-affinity: most chunks hashed per request (longer prompts match on their first chunks only). */
  maxChunks: positiveInt.default(128),
  /** prefix-affinity: matches shorter than this many chunks are ignored, so a shared system prompt does not pin everything to one replica. */
  minMatchChunks: positiveInt.default(2),
  /** prefix-affinity: the best-matching replica is passed over when its in-flight count exceeds the fleet's least-loaded by more than this. */
  loadMargin: z.coerce.number().int().min(0).default(4),
  /**
   * prefix-affinity: the best-matching replica is also passed over when its load, with the request,
   * is above this many times the least loaded's and at least 2 more (so moving narrows the gap).
   * An absolute margin alone lets one replica run 3 while another idles; 0 turns this off.
   */
  loadRatio: z.coerce.number().refine((value) => value === 0 || value >= 1, 'must be 0 (off) or at least 1').default(1.5),
  /**
   * prefix-affinity: a conversation whose turn just ended keeps counting as load on its replica for
   * this long, or until its next turn is routed (chat clients and agent loops send it within
   * milliseconds), so a replica between turns does not look idle; 0 turns this off.
   */
  turnGapMs: z.coerce.number().int().min(0).default(1_000),
  /** prefix-affinity: how long a prefix (or session key) keeps pointing at the replica that served it. */
  prefixTtlSeconds: positiveInt.default(600),
  /** Replicas tried per request before the first token (each a different one), before the model's fallbacks. */
  maxAttempts: positiveInt.default(3),
  /** How long a request waits when every replica is busy, capped or backing off, before it fails over. */
  queueTimeoutMs: positiveInt.default(30_000),
  /** An in-flight count held by a worker that died is released after this long without renewal. */
  leaseMs: positiveInt.default(60_000),
  /**
   * With `health.metricsPath`: a replica whose KV cache is full counts as this many more requests
   * in flight (scaled by its usage, 0-1), on top of its own queue (`num_requests_waiting`).
   */
  kvCacheWeight: z.coerce.number().min(0).default(4),
});
export type RoutingConfig = z.output<typeof routingConfigSchema>;

/** Active probes and passive ejection of a model's deployments. */
export const deploymentHealthConfigSchema = z.object({
  /** Path probed on each replica's origin (vLLM, SGLang and TGI serve `/health`); `null` turns probes off. */
  probePath: z.string().startsWith('/').nullable().default('/health'),
  probeIntervalMs: positiveInt.default(5_000),
  probeTimeoutMs: positiveInt.default(2_000),
  /** Consecutive connect failures / 5xx (other than 503) that eject a replica. */
  ejectAfterFailures: positiveInt.default(3),
  /** How long an ejected replica gets no traffic before one trial request may re-admit it. */
  ejectMs: positiveInt.default(15_000),
  /** How long a replica that answered 429 (busy) or 503 (draining) gets no new requests; a longer `Retry-After` wins. */
  busyBackoffMs: positiveInt.default(1_000),
  /**
   * Path of each replica's Prometheus endpoint (vLLM, SGLang and TGI serve `/metrics`): its queue
   * length and KV-cache usage then count in least-outstanding and prefix-affinity scores. `null`: off.
   */
  metricsPath: z.string().startsWith('/').nullable().default(null),
  /** How often each replica's metrics are read (by one worker per interval); a reading older than 3 intervals is ignored. */
  metricsIntervalMs: positiveInt.default(2_000),
});
export type DeploymentHealthConfig = z.output<typeof deploymentHealthConfigSchema>;

/** What a model adds to serve a fleet: its deployments (or a DNS name), the routing and the health rules. */
export const fleetModelConfigSchema = z.object({
  /** Replicas of this model; absent: the model has one upstream (its own `options`), as before. */
  deployments: z.array(deploymentConfigSchema).min(1).optional(),
  /** Instead of `deployments`: one replica per address a DNS name resolves to. */
  discover: deploymentDiscoveryConfigSchema.optional(),
  routing: routingConfigSchema.prefault({}),
  health: deploymentHealthConfigSchema.prefault({}),
});
export type FleetModelConfig = z.output<typeof fleetModelConfigSchema>;
