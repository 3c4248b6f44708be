import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Latency buckets (seconds) from sub-millisecond hops to minute-long model thinking. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Every Tokenwire metric, one registry per process (prom-client). Both apps create
 * it; each fills the metrics of its side. Labels stay low-cardinality: model, provider,
 * outcome, error code, and tenant only on the two per-tenant counters — never job id.
 */
export class TokenwireMetrics {
  readonly registry = new Registry();

  /** Worker: time to first token, `stage` = `upstream` (from pick-up) or `total` (from enqueue). */
  readonly ttft = new Histogram({
    name: 'tokenwire_ttft_seconds',
    help: 'Time to the first token',
    labelNames: ['model', 'stage'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly interToken = new Histogram({
    name: 'tokenwire_inter_token_seconds',
    help: 'Gap between consecutive tokens from the upstream',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly tokens = new Counter({ name: 'tokenwire_tokens_total', help: 'Text deltas streamed', labelNames: ['model'] as const, registers: [this.registry] });
  readonly generations = new Counter({
    name: 'tokenwire_generations_total',
    help: 'Runs of generations, by outcome (done, error, cancelled, handed_back, lost: another run took over, ended_elsewhere)',
    labelNames: ['model', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: 'tokenwire_upstream_errors_total',
    help: 'Upstream failures by error code (each attempt counts)',
    labelNames: ['model', 'code'] as const,
    registers: [this.registry],
  });
  readonly circuitState = new Gauge({
    name: 'tokenwire_circuit_state',
    help: 'Circuit breaker per model: 0 closed, 1 half-open, 2 open',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: 'tokenwire_queue_wait_seconds',
    help: 'Time a generation waited in the queue',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  /** Worker, fleets: per deployment (replica) of a model. Deployments per model are few, so the label stays small. */
  readonly deploymentRequests = new Counter({
    name: 'tokenwire_deployment_requests_total',
    help: 'Requests sent to a deployment, by outcome (ok, error, busy, draining, failed)',
    labelNames: ['model', 'deployment', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly deploymentInFlight = new Gauge({
    name: 'tokenwire_deployment_in_flight',
    help: 'Requests this worker runs on a deployment now (the fleet-wide count is in /readyz)',
    labelNames: ['model', 'deployment'] as const,
    registers: [this.registry],
  });
  readonly deploymentTtft = new Histogram({
    name: 'tokenwire_deployment_ttft_seconds',
    help: 'Time from sending a request to a deployment to its first chunk',
    labelNames: ['model', 'deployment'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly deploymentEjections = new Counter({
    name: 'tokenwire_deployment_ejections_total',
    help: 'Times a deployment was ejected after consecutive failures',
    labelNames: ['model', 'deployment'] as const,
    registers: [this.registry],
  });
  readonly deploymentPrefixHits = new Counter({
    name: 'tokenwire_deployment_prefix_hits_total',
    help: 'Requests routed to a deployment because it served their prefix (kind=prefix) or session (kind=session)',
    labelNames: ['model', 'deployment', 'kind'] as const,
    registers: [this.registry],
  });
  readonly runningGenerations = new Gauge({ name: 'tokenwire_running_generations', help: 'Generations this worker runs now', registers: [this.registry] });
  /** Api: open stream subscriptions (SSE responses and sockets) in this process. */
  readonly activeStreams = new Gauge({ name: 'tokenwire_active_streams', help: 'Open stream subscriptions in this api process', registers: [this.registry] });
  /** Api: jobs waiting in the queue, read at scrape time. */
  readonly queueDepth = new Gauge({ name: 'tokenwire_queue_depth', help: 'Generations waiting in the queue', labelNames: ['state'] as const, registers: [this.registry] });
  /** Api: audit events on keys (`created`, `revoked`, `tenant_deleted`). */
  readonly keyEvents = new Counter({ name: 'tokenwire_key_events_total', help: 'API keys created and revoked, tenants deleted', labelNames: ['event'] as const, registers: [this.registry] });
  /** Api: refused authentications, by `reason` (missing, unknown, revoked, operator_on_socket, operator_only) and `transport` (http, socket). */
  readonly authRefused = new Counter({
    name: 'tokenwire_auth_refused_total',
    help: 'Refused authentications',
    labelNames: ['reason', 'transport'] as const,
    registers: [this.registry],
  });

  /** Api: connected Socket.IO clients, counted at scrape time by the function the socket adapter installs. */
  countSockets: () => number = () => 0;
  readonly activeSockets: Gauge = new Gauge({
    name: 'tokenwire_active_sockets',
    help: 'Connected Socket.IO clients of this api process',
    registers: [this.registry],
    collect: (): void => this.activeSockets.set(this.countSockets()),
  });
  /**
   * Tokens booked per tenant (`kind` prompt or completion), where the generation ended. The one metric
   * labelled by tenant (with the refusals below): tenants are the operator's own short list, not per request.
   */
  readonly tenantTokens = new Counter({
    name: 'tokenwire_tenant_tokens_total',
    help: 'Tokens used per tenant',
    labelNames: ['tenant', 'kind'] as const,
    registers: [this.registry],
  });
  /** Api: requests refused by a tenant limit (`requests_per_minute`, `tokens_per_minute`, `max_concurrent`, `max_output_tokens`). */
  readonly limitRefusals = new Counter({
    name: 'tokenwire_limit_refusals_total',
    help: 'Requests refused by a tenant limit',
    labelNames: ['tenant', 'limit'] as const,
    registers: [this.registry],
  });
  /** Api: Redis memory (INFO memory), read at scrape time; `max` is 0 when Redis has no maxmemory. */
  readonly redisMemoryUsed = new Gauge({ name: 'tokenwire_redis_memory_used_bytes', help: 'Memory Redis uses', registers: [this.registry] });
  readonly redisMemoryMax = new Gauge({ name: 'tokenwire_redis_memory_max_bytes', help: 'Redis maxmemory (0: no limit)', registers: [this.registry] });

  /**
   * `eventLoopResolutionMs`: the period of the event-loop delay sampler behind `nodejs_eventloop_lag_*`.
   * prom-client's default, 10 ms, woke every process 100 times a second for that sampler alone
   * (bench/low-load.ts: 91 of 93 idle wake-ups per second, 0.3 % of a core per process when idle).
   */
  constructor(service: 'api' | 'worker', eventLoopResolutionMs = 100) {
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: eventLoopResolutionMs });
  }
}
