import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisKeys } from '@tokenwire/contracts';
import { LOGGER, REDIS_CLIENT, REDIS_KEYS, TOKENWIRE_CONFIG, TokenwireMetrics, type Logger, type TokenwireConfig } from '@tokenwire/core';
import {
  ProviderRegistry,
  UpstreamConnectError,
  UpstreamError,
  UpstreamHttpError,
  withStallTimeout,
  type ProviderChunk,
  type ProviderRequest,
  type ResolvedModel,
} from '@tokenwire/providers';
import { CircuitBreaker, type BreakerPermit, type BreakerState } from './circuit-breaker';
import { RoutedStream, type StartedUpstream } from './routed-stream';
import { ModelSemaphore } from './model-semaphore';
import { FleetExhaustedError } from './fleet/fleet-exhausted.error';
import { FleetRouterService, type RoutingHints } from './fleet/fleet-router.service';

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/**
 * Retries, fallback, stall timeout and circuit breaking around plain providers.
 * Before the first token: retryable failures are retried with exponential backoff
 * and jitter (Retry-After wins when larger), then the model's fallbacks are tried
 * in order. After the first token a failure ends the stream: no silent restart.
 */
@Injectable()
export class UpstreamRouterService {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly fallbacks = new Map<string, string[]>();
  private readonly caps = new Map<string, number>();
  private readonly semaphore: ModelSemaphore;

  constructor(
    private readonly registry: ProviderRegistry,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly metrics: TokenwireMetrics,
    private readonly fleets: FleetRouterService,
  ) {
    for (const model of config.models) {
      this.fallbacks.set(model.name, model.fallbacks);
      if (model.maxConcurrency) this.caps.set(model.name, model.maxConcurrency);
    }
    this.semaphore = new ModelSemaphore(redis);
  }

  /** `holder` identifies the caller's lease on a capped model (the generation id). */
  stream(modelName: string, request: Omit<ProviderRequest, 'model'>, signal: AbortSignal, log: Logger, holder: string, hints?: RoutingHints): AsyncIterable<ProviderChunk> {
    return new RoutedStream(() => this.connect(modelName, request, signal, log, holder, hints));
  }

  /**
   * Retries and fallbacks up to the first part, then hands the call over (undefined: it ended
   * without a part). The handed-over call keeps its breaker permit and model slot until
   * RoutedStream ends it.
   */
  private async connect(modelName: string, request: Omit<ProviderRequest, 'model'>, signal: AbortSignal, log: Logger, holder: string, hints?: RoutingHints): Promise<StartedUpstream | undefined> {
    const chain = [modelName, ...(this.fallbacks.get(modelName) ?? [])];
    let lastError: unknown;
    for (const name of chain) {
      if (this.fleets.serves(name)) {
        // A fleet routes, retries on other replicas and backs off busy ones itself (fleet-router.service.ts).
        const rest = this.fleets.stream(name, request, signal, log, hints)[Symbol.asyncIterator]();
        try {
          const first = await rest.next();
          if (first.done) return undefined;
          return { first: first.value, rest, failed: () => undefined, end: () => Promise.resolve() };
        } catch (error) {
          if (!(error instanceof FleetExhaustedError)) throw error;
          lastError = error.lastError ?? lastError;
          continue;
        }
      }
      const resolved = this.registry.resolve(name);
      if (!resolved) continue;
      const breaker = this.breaker(name);
      for (let attempt = 1; attempt <= this.config.upstream.maxAttempts; attempt++) {
        const permit = breaker.tryAcquire();
        if (!permit) {
          lastError ??= new UpstreamConnectError(`circuit breaker for "${name}" is open after repeated upstream failures`);
          log.warn({ upstreamModel: name }, 'circuit open; skipping upstream');
          break;
        }
        let handedOver = false;
        let retryDelay = 0;
        const cap = this.caps.get(name);
        let release: (() => Promise<void>) | undefined;
        try {
          // Inside the try: a call aborted while it waits for a slot still frees its breaker permit.
          release = cap ? await this.semaphore.acquire(this.keys.modelLeases(name), holder, cap, signal) : undefined;
          const rest = this.open(resolved, request, signal, log)[Symbol.asyncIterator]();
          const first = await rest.next();
          breaker.succeed(permit);
          if (first.done) return undefined;
          if (name !== modelName || attempt > 1) log.info({ answeredBy: name, attempt }, 'upstream connected after retry/fallback');
          handedOver = true;
          const slot = release;
          return {
            first: first.value,
            rest,
            failed: (error) => this.judgeAfterStart(error, name, breaker, permit, signal),
            end: () => this.endCall(breaker, permit, slot, log),
          };
        } catch (error) {
          if (signal.aborted) throw error;
          if (!(error instanceof UpstreamError)) throw error;
          this.metrics.upstreamErrors.inc({ model: name, code: error.code });
          // A non-retryable error (a 400, say) is the request's fault, not the upstream's health.
          if (error.retryable) breaker.fail(permit);
          else breaker.succeed(permit);
          if (!error.retryable) throw error;
          lastError = error;
          if (attempt === this.config.upstream.maxAttempts) break;
          retryDelay = this.retryDelay(attempt, error);
          log.warn({ upstreamModel: name, attempt, delayMs: retryDelay, code: error.code, status: error.status }, 'upstream failed before the first token; retrying');
        } finally {
          // Every exit before the hand-over (cancel, an unexpected error) ends the permit; after it, RoutedStream does.
          if (!handedOver) await this.endCall(breaker, permit, release, log);
        }
        await sleep(retryDelay, undefined, { signal }); // the slot is free while we wait
      }
      if (name !== chain[chain.length - 1]) log.warn({ upstreamModel: name }, 'upstream exhausted; falling back');
    }
    throw lastError ?? new UpstreamConnectError(`no provider is configured for model "${modelName}"`);
  }

  /** An error after the first part ends the stream (no silent restart); it still counts for the breaker. */
  private judgeAfterStart(error: unknown, name: string, breaker: CircuitBreaker, permit: BreakerPermit, signal: AbortSignal): void {
    if (signal.aborted || !(error instanceof UpstreamError)) return;
    this.metrics.upstreamErrors.inc({ model: name, code: error.code });
    if (error.retryable) breaker.fail(permit);
    else breaker.succeed(permit);
  }

  /** Every exit of a call (done, cancel, a consumer that stopped reading, an error) ends its permit and frees its slot. */
  private async endCall(breaker: CircuitBreaker, permit: BreakerPermit, release: (() => Promise<void>) | undefined, log: Logger): Promise<void> {
    breaker.release(permit);
    await release?.().catch((error: unknown) => log.warn({ err: error }, 'cannot release a model slot; its lease will expire'));
  }

  private open(resolved: ResolvedModel, request: Omit<ProviderRequest, 'model'>, signal: AbortSignal, log: Logger): AsyncIterable<ProviderChunk> {
    const { stallTimeoutMs, firstTokenTimeoutMs } = this.config.upstream;
    const provider = withStallTimeout(resolved.provider, { idleMs: stallTimeoutMs, firstTokenMs: firstTokenTimeoutMs });
    return provider.stream({ ...request, model: resolved.upstreamModel }, { signal, log });
  }

  private retryDelay(attempt: number, error: UpstreamError): number {
    const { retryBaseDelayMs, retryMaxDelayMs } = this.config.upstream;
    const backoff = Math.min(retryMaxDelayMs, retryBaseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random());
    const retryAfter = error instanceof UpstreamHttpError ? (error.retryAfterMs ?? 0) : 0;
    return Math.round(Math.min(retryMaxDelayMs, Math.max(backoff, retryAfter)));
  }

  private breaker(name: string): CircuitBreaker {
    let breaker = this.breakers.get(name);
    if (!breaker) {
      const { breakerFailureThreshold, breakerResetMs } = this.config.upstream;
      breaker = new CircuitBreaker(breakerFailureThreshold, breakerResetMs, (snapshot) => {
        this.logger.warn({ upstreamModel: name, ...snapshot }, 'circuit breaker changed state');
        this.metrics.circuitState.set({ model: name }, BREAKER_GAUGE[snapshot.state]);
        // Shared so /readyz on any api process can report it.
        this.redis
          .hset(this.keys.upstreamHealth(), name, JSON.stringify({ ...snapshot, updatedAt: Date.now() }))
          .catch((error: unknown) => this.logger.warn({ err: error }, 'cannot record breaker state'));
      });
      this.breakers.set(name, breaker);
    }
    return breaker;
  }
}
