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
/** One item of a batch; runs on the generations queue at batch priority. */
export const BATCH_ITEM_JOB = 'batch-item';
/** BullMQ priority of batch items: after every interactive generation (whose priority is its tenant's backlog). */
export const BATCH_PRIORITY = 1_000_000;

/**
 * The Redis keys of one model's fleet (all share the hash tag `{<model>}`, so the routing
 * script touches them on one Cluster slot): `state` replica → deployment state, `until`
 * replica → end of a back-off/ejection (ms), `failures` replica → consecutive failures,
 * `inflight` replica → running requests, `leases` (sorted set) `<replica>\n<lease>` → expiry,
 * `prefix` chunk hash / session key → replica, `prefix-expiry` (sorted set) hash → expiry,
 * `cursor` the round-robin counter, `members` replica → registration (JSON),
 * `probe-lock` (suffixed `:<replica>`) who probes that replica this interval, `signals` replica →
 * `<extra load>:<expiry ms>` from its Prometheus metrics, `metrics-lock` (suffixed `:<replica>`)
 * who scrapes that replica this interval, `between-turns` chunk hash → replica of a conversation
 * whose turn just ended there, `between-turns-expiry` (sorted set) `<replica>\n<chunk hash>` →
 * expiry, `between-turns-count` replica → such conversations, `load-average` replica →
 * `<average load>:<ms>` (in flight + between turns, decaying).
 */
export type FleetKeyPart =
  | 'state'
  | 'until'
  | 'failures'
  | 'inflight'
  | 'leases'
  | 'prefix'
  | 'prefix-expiry'
  | 'cursor'
  | 'members'
  | 'probe-lock'
  | 'signals'
  | 'metrics-lock'
  | 'between-turns'
  | 'between-turns-expiry'
  | 'between-turns-count'
  | 'load-average';

export interface RedisKeys {
  /** Redis Stream: the event log of one generation (entry id = `<seq>-0`). */
  eventLog(generationId: string): string;
  /** Pub/sub channel: the live events of one generation. */
  liveChannel(generationId: string): string;
  /**
   * Sorted set: the api processes with a live listener of one generation (member: process id, score:
   * expiry in ms, renewed while it listens). Asked before the OpenAI route cancels a generation its
   * client left; in the generation's slot, so it is right on a Cluster too.
   */
  listeners(generationId: string): string;
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
  /** Hash: an API key's record, by the SHA-256 of the key. */
  apiKey(keyHash: string): string;
  /** Hash: key id → key hash, of one tenant (for listing and revoking). */
  tenantKeys(tenantId: string): string;
  /** Set: tenants that have keys (for the operator's listing). */
  tenants(): string;
  /** Hash: id and tenant of a revoked key, by its hash, kept a while so refused attempts with it can be audited by key id. */
  revokedApiKey(keyHash: string): string;
  /** Pub/sub channel: revocation notices (keys revoked, tenants deleted) for every api process. */
  authChannel(): string;
  /** Sorted set: a tenant's unfinished generations (score: enqueue time). */
  tenantActive(tenantId: string): string;
  /** Hash: a tenant's token bucket of one kind (`requests` or `tokens`). */
  rateBucket(tenantId: string, kind: 'requests' | 'tokens'): string;
  /** Hash: a tenant's usage counters, fields `<model>|requests|prompt|completion`. */
  usage(tenantId: string): string;
  /** String: the generation currently running in a conversation room. */
  roomGeneration(tenantId: string, conversationId: string): string;
  /** Pub/sub channel: announcements to the api processes with members in a room. */
  roomChannel(tenantId: string, conversationId: string): string;
  /** Sorted set: leases on a model's upstream slots (member: generation id, score: expiry). */
  modelLeases(model: string): string;
  /** Sorted set: generations not known to have ended (score: creation time), swept by the reaper. */
  unfinishedGenerations(): string;
  /** String: held by the worker sweeping abandoned generations this interval (expires by itself). */
  reaperLock(): string;
  /** One key of a model's fleet routing state (see `FleetKeyPart`). */
  fleet(model: string, part: FleetKeyPart): string;
  /** Hash: a batch's state and counters. Batch keys share the hash tag `{batch:<id>}`. */
  batch(batchId: string): string;
  /** Hash: index → input line JSON. */
  batchItems(batchId: string): string;
  /** List: indexes not yet handed to the queue. */
  batchPending(batchId: string): string;
  /** Sorted set: indexes handed to the queue and not yet recorded (score: when handed over, ms); its size is the batch's slots in use. */
  batchInflight(batchId: string): string;
  /** Hash: index → output line JSON (successes and failures). */
  batchResults(batchId: string): string;
  /** Sorted set: batches not known to have ended (score: when the recovery sweep last looked at one, ms; its creation before that). */
  unfinishedBatches(): string;
  /** String: held by the worker sweeping unfinished batches this interval (expires by itself). */
  batchRecoveryLock(): string;
  /** String: how a batch was created (JSON: endpoint, input file, completion window, metadata), beside its state. */
  batchInfo(batchId: string): string;
  /** Hash: an uploaded file's metadata (a tenant's files share the hash tag `{<tenant>}`). */
  file(tenantId: string, fileId: string): string;
  /** String: an uploaded file's bytes. */
  fileContent(tenantId: string, fileId: string): string;
  /** Sorted set: a tenant's file ids (score: creation time), for listing. */
  tenantFiles(tenantId: string): string;
  /** String: a stored Responses-API response (JSON: its request and conversation), under its tenant. */
  response(tenantId: string, responseId: string): string;
  /** Prefix handed to BullMQ for its own keys. */
  bullPrefix(): string;
}

export function redisKeys(prefix: string): RedisKeys {
  const gen = (id: string) => `${prefix}:gen:{${id}}`;
  return {
    eventLog: (id) => `${gen(id)}:events`,
    liveChannel: (id) => `${gen(id)}:live`,
    listeners: (id) => `${gen(id)}:listeners`,
    meta: (id) => `${gen(id)}:meta`,
    terminalMarker: (id) => `${gen(id)}:terminal`,
    cancelRequest: (id) => `${gen(id)}:cancel`,
    controlChannel: () => `${prefix}:control`,
    upstreamHealth: () => `${prefix}:upstream-health`,
    apiKey: (hash) => `${prefix}:apikey:${hash}`,
    tenantKeys: (tenant) => `${prefix}:tenant:{${tenant}}:keys`,
    tenants: () => `${prefix}:tenants`,
    revokedApiKey: (hash) => `${prefix}:apikey-revoked:${hash}`,
    authChannel: () => `${prefix}:auth`,
    tenantActive: (tenant) => `${prefix}:tenant:{${tenant}}:active`,
    rateBucket: (tenant, kind) => `${prefix}:tenant:{${tenant}}:bucket:${kind}`,
    usage: (tenant) => `${prefix}:tenant:{${tenant}}:usage`,
    roomGeneration: (tenant, conversation) => `${prefix}:room:{${tenant}}:${conversation}:generation`,
    roomChannel: (tenant, conversation) => `${prefix}:room:{${tenant}}:${conversation}:live`,
    modelLeases: (model) => `${prefix}:model:{${model}}:leases`,
    unfinishedGenerations: () => `${prefix}:generations:unfinished`,
    reaperLock: () => `${prefix}:generations:reaper-lock`,
    fleet: (model, part) => `${prefix}:fleet:{${model}}:${part}`,
    batch: (id) => `${prefix}:{batch:${id}}`,
    batchItems: (id) => `${prefix}:{batch:${id}}:items`,
    batchPending: (id) => `${prefix}:{batch:${id}}:pending`,
    batchInflight: (id) => `${prefix}:{batch:${id}}:inflight`,
    batchResults: (id) => `${prefix}:{batch:${id}}:results`,
    unfinishedBatches: () => `${prefix}:batches:unfinished`,
    batchRecoveryLock: () => `${prefix}:batches:recovery-lock`,
    batchInfo: (id) => `${prefix}:{batch:${id}}:info`,
    file: (tenant, id) => `${prefix}:tenant:{${tenant}}:file:${id}`,
    fileContent: (tenant, id) => `${prefix}:tenant:{${tenant}}:file:${id}:content`,
    tenantFiles: (tenant) => `${prefix}:tenant:{${tenant}}:files`,
    response: (tenant, id) => `${prefix}:tenant:{${tenant}}:response:${id}`,
    // Hash-tagged: BullMQ's scripts touch many keys of a queue, which Redis Cluster needs on one slot.
    bullPrefix: () => `{${prefix}}:bull`,
  };
}
