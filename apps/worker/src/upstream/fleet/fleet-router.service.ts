import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisKeys } from '@tokenwire/contracts';
import { isFleetModel, LOGGER, REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, TokenwireMetrics, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { UpstreamError, UpstreamHttpError, withStallTimeout, type ProviderChunk, type ProviderRequest } from '@tokenwire/providers';
import { FleetDeployments, type Replica } from './fleet-deployments';
import { FleetExhaustedError } from './fleet-exhausted.error';
import { FleetStateRepository, type PickResult, type ReportOutcome } from './fleet-state.repository';
import { prefixChunkHashes, sessionHash } from './prefix-hasher';

/** What the router may use to keep a conversation on one replica. */
export interface RoutingHints {
  tenantId?: string;
  /** `X-Session-Id`, `prompt_cache_key`, a conversation id or `user`, as the api found it. */
  sessionKey?: string;
}

export interface Fleet {
  deployments: FleetDeployments;
  state: FleetStateRepository;
}

/**
 * Routes a fleet model's requests over its replicas with the shared view in Redis
 * (see fleet-routing.scripts.ts). Before the first token a failed attempt goes to a
 * *different* replica; 429/503 back that replica off, other failures count towards
 * its ejection; after the first token a failure ends the stream.
 */
@Injectable()
export class FleetRouterService {
  private readonly fleets = new Map<string, Fleet>();

  constructor(
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(REDIS_CLIENT) redis: Redis,
    @Inject(REDIS_KEYS) keys: RedisKeys,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly metrics: TokenwireMetrics,
  ) {
    for (const model of config.models.filter(isFleetModel)) {
      this.fleets.set(model.name, { deployments: new FleetDeployments(model), state: new FleetStateRepository(redis, keys, model.name) });
    }
  }

  serves(model: string): boolean {
    return this.fleets.has(model);
  }

  all(): Fleet[] {
    return [...this.fleets.values()];
  }

  /** Throws `FleetExhaustedError` when no replica produced a first token (so the caller can fall back). */
  async *stream(modelName: string, request: Omit<ProviderRequest, 'model'>, signal: AbortSignal, log: Logger, hints: RoutingHints = {}): AsyncIterable<ProviderChunk> {
    const { deployments, state } = this.fleets.get(modelName)!;
    const { routing, health } = deployments.model;
    const chunkHashes = routing.strategy === 'prefix-affinity' ? prefixChunkHashes(request.messages, routing.chunkChars, routing.maxChunks) : [];
    const session = routing.strategy === 'prefix-affinity' && hints.sessionKey ? sessionHash(hints.tenantId ?? '', hints.sessionKey) : undefined;
    const tried = new Set<string>();
    let lastError: unknown;
    for (let attempt = 1; attempt <= routing.maxAttempts; attempt++) {
      const leaseId = randomUUID();
      const pick = await this.pickWhenFree(modelName, tried, leaseId, chunkHashes, session, signal);
      if (pick.status !== 'picked') {
        lastError ??= new UpstreamHttpError(503, `no deployment of "${modelName}" can take the request: ${pick.reason}`);
        log.warn({ upstreamModel: modelName, attempt, reason: pick.reason }, 'fleet has no replica to try');
        break;
      }
      const replica = deployments.get(pick.replica);
      tried.add(pick.replica);
      log.debug(
        { upstreamModel: modelName, deployment: pick.replica, strategy: routing.strategy, why: pick.reason, matchedChunks: pick.matchedChunks, prefixChunks: chunkHashes.length, inFlight: pick.inFlight, fleetMin: pick.fleetMin, attempt },
        'routing decision',
      );
      if (!replica) {
        // Another worker's DNS view knows a replica this one has not seen yet; try again without it.
        await state.release(pick.replica, leaseId);
        continue;
      }
      if (pick.matchedChunks !== 0) this.metrics.deploymentPrefixHits.inc({ model: modelName, deployment: replica.id, kind: pick.matchedChunks < 0 ? 'session' : 'prefix' });
      let started = false;
      let completed = false;
      const labels = { model: modelName, deployment: replica.id };
      const sentAt = performance.now();
      const renew = setInterval(() => state.renew(replica.id, leaseId, routing.leaseMs).catch(() => undefined), routing.leaseMs / 3);
      renew.unref();
      this.metrics.deploymentInFlight.inc(labels);
      try {
        const { stallTimeoutMs, firstTokenTimeoutMs } = this.config.upstream;
        const provider = withStallTimeout(replica.provider, { idleMs: stallTimeoutMs, firstTokenMs: firstTokenTimeoutMs });
        for await (const chunk of provider.stream({ ...request, model: deployments.upstreamModel }, { signal })) {
          if (!started) {
            started = true;
            this.metrics.deploymentTtft.observe(labels, (performance.now() - sentAt) / 1000);
            this.report(state, replica, 'ok', log);
            if (attempt > 1) log.info({ upstreamModel: modelName, deployment: replica.id, attempt }, 'upstream connected on another replica');
          }
          yield chunk;
        }
        if (!started) this.report(state, replica, 'ok', log);
        this.metrics.deploymentRequests.inc({ ...labels, outcome: 'ok' });
        completed = true;
        return;
      } catch (error) {
        if (signal.aborted || !(error instanceof UpstreamError)) throw error;
        const outcome = this.outcomeOf(error);
        this.metrics.deploymentRequests.inc({ ...labels, outcome: outcome ?? 'error' });
        if (outcome) this.report(state, replica, outcome, log, outcome === 'failed' ? health.ejectMs : Math.max(health.busyBackoffMs, (error as UpstreamHttpError).retryAfterMs ?? 0));
        if (started || !error.retryable) throw error;
        lastError = error;
        log.warn({ upstreamModel: modelName, deployment: replica.id, attempt, code: error.code, status: error.status }, 'replica failed before the first token; trying another');
      } finally {
        clearInterval(renew);
        this.metrics.deploymentInFlight.dec(labels);
        // A completed turn's conversation keeps counting here until its next turn is routed (or turnGapMs).
        const betweenTurns = completed && chunkHashes.length ? { chunkHash: chunkHashes[chunkHashes.length - 1]!, turnGapMs: routing.turnGapMs } : undefined;
        await state.release(replica.id, leaseId, betweenTurns).catch((error: unknown) => log.warn({ err: error }, 'cannot release a replica slot; its lease will expire'));
      }
    }
    throw new FleetExhaustedError(modelName, lastError);
  }

  /** 429: busy; 503: draining (both back off, neither counts as a failure); other retryable errors count towards ejection. */
  private outcomeOf(error: UpstreamError): ReportOutcome | undefined {
    if (error.status === 429) return 'busy';
    if (error.status === 503) return 'draining';
    return error.retryable ? 'failed' : undefined;
  }

  /** Picks a replica; while every untried one is backing off or full, waits (bounded by `routing.queueTimeoutMs`). */
  private async pickWhenFree(
    modelName: string,
    tried: ReadonlySet<string>,
    leaseId: string,
    chunkHashes: string[],
    sessionHashValue: string | undefined,
    signal: AbortSignal,
  ): Promise<PickResult> {
    const { deployments, state } = this.fleets.get(modelName)!;
    const { routing, health } = deployments.model;
    const deadline = Date.now() + routing.queueTimeoutMs;
    for (let wait = 20; ; wait = Math.min(wait * 1.5, 500)) {
      const pick = await state.pick({
        strategy: routing.strategy,
        routing,
        trialMs: health.ejectMs,
        replicas: deployments.list(),
        exclude: tried,
        leaseId,
        sessionHash: sessionHashValue,
        chunkHashes,
      });
      if (pick.status !== 'wait' || Date.now() >= deadline) return pick;
      const delay = Math.min(deadline - Date.now(), pick.waitMs > 0 ? Math.min(pick.waitMs, 1_000) : wait * (0.5 + Math.random()));
      await sleep(Math.max(1, delay), undefined, { signal });
    }
  }

  private report(state: FleetStateRepository, replica: Replica, outcome: ReportOutcome, log: Logger, ms = 0): void {
    const { ejectAfterFailures } = this.fleets.get(state.model)!.deployments.model.health;
    state
      .report(replica.id, outcome, ms, ejectAfterFailures)
      .then(({ state: after, ejected }) => {
        if (ejected) {
          this.metrics.deploymentEjections.inc({ model: state.model, deployment: replica.id });
          this.logger.warn({ upstreamModel: state.model, deployment: replica.id, ejectMs: ms }, 'deployment ejected after consecutive failures');
        } else if (outcome === 'busy' || outcome === 'draining') {
          log.info({ upstreamModel: state.model, deployment: replica.id, state: after, backoffMs: ms }, 'deployment backing off');
        }
      })
      .catch((error: unknown) => log.warn({ err: error, deployment: replica.id }, 'cannot record deployment health'));
  }
}
