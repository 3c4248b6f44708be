import { UpstreamStalledError } from '../errors';
import { followAbort } from '../internal/follow-abort';
import type { LanguageModelProvider, ProviderChunk, ProviderRequest, StreamOptions } from '../provider';

/** Bounds on an upstream call's silence. */
export interface StallLimits {
  /** No bytes at all (parts, keep-alives, pings) for this long: UpstreamStalledError. */
  idleMs: number;
  /** No part (text, tool call, usage, finish) this long after the call, however many keep-alives arrived. */
  firstTokenMs?: number;
}

/**
 * Wraps a provider so that silence aborts the upstream call (closing its connection) and fails the
 * stream with UpstreamStalledError, whose message says what was seen. Silence is the absence of
 * bytes, not of parts: the provider reports keep-alives and other bytes through
 * `StreamOptions.heartbeat`, so an upstream that queues the request and pings stays alive until
 * `firstTokenMs`, if set.
 *
 * Hot path: a read or a part sets a flag; one interval per stream turns the flag into a time, so
 * nothing per token reads the clock or allocates. The price is resolution: a timeout fires up to
 * a check period (a quarter of the smallest limit, at most 1 s) late, never early.
 */
export function withStallTimeout(provider: LanguageModelProvider, limits: number | StallLimits): LanguageModelProvider {
  const { idleMs, firstTokenMs } = typeof limits === 'number' ? { idleMs: limits, firstTokenMs: undefined } : limits;
  const periodMs = Math.max(5, Math.min(idleMs / 4, (firstTokenMs ?? Infinity) / 4, 1000));
  return {
    specVersion: provider.specVersion,
    id: provider.id,
    capabilities: provider.capabilities,
    stream(request: ProviderRequest, options: StreamOptions): AsyncIterable<ProviderChunk> {
      return { [Symbol.asyncIterator]: () => new StallWatchedStream(provider, request, options, idleMs, firstTokenMs, periodMs) };
    },
  };
}

/**
 * One watched call. A hand-written iterator rather than an async generator: each part goes
 * straight from the provider's next() to the caller's, without a generator's own promise,
 * result object and resumption per token (bench/provider-chain.ts). It behaves as the generator
 * did: the call starts on the first next(), and every ending (done, error, stall, the caller's
 * return() or throw()) stops the interval and the abort follower.
 */
class StallWatchedStream implements AsyncIterator<ProviderChunk>, AsyncIterable<ProviderChunk> {
  private inner: AsyncIterator<ProviderChunk> | undefined;
  private ended = false;
  private readonly stall = new AbortController();
  private startedAt = 0;
  private lifeAt = 0;
  private alive = false; // bytes or a part since the last check
  private sawBytes = false;
  private sawPart = false;
  private check: ReturnType<typeof setInterval> | undefined;
  private unfollow: () => void = () => undefined;
  private readonly onPart = (result: IteratorResult<ProviderChunk>): IteratorResult<ProviderChunk> => {
    if (result.done) this.end();
    else {
      this.alive = true;
      this.sawPart = true;
    }
    return result;
  };
  private readonly onFailure = (error: unknown): never => {
    this.end();
    throw this.reason(error);
  };

  constructor(
    private readonly provider: LanguageModelProvider,
    private readonly request: ProviderRequest,
    private readonly options: StreamOptions,
    private readonly idleMs: number,
    private readonly firstTokenMs: number | undefined,
    private readonly periodMs: number,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ProviderChunk>> {
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    if (!this.inner) {
      try {
        this.inner = this.start();
      } catch (error) {
        return Promise.reject(this.onFailureSafe(error));
      }
    }
    this.alive = true; // time spent downstream since the last part is not the upstream's idleness
    return this.inner.next().then(this.onPart, this.onFailure);
  }

  async return(value?: unknown): Promise<IteratorResult<ProviderChunk>> {
    const inner = this.inner;
    if (this.ended || !inner) {
      this.end();
      return { done: true, value: undefined };
    }
    try {
      await inner.return?.(value);
    } catch (error) {
      throw this.reason(error);
    } finally {
      this.end();
    }
    return { done: true, value: undefined };
  }

  async throw(error?: unknown): Promise<IteratorResult<ProviderChunk>> {
    const inner = this.inner;
    if (!this.ended && inner) {
      try {
        await inner.return?.();
      } catch (closing) {
        // As a generator's for-await: the error thrown in wins over one raised while closing.
        this.options.log?.debug({ err: closing }, 'upstream stream failed while closing');
      }
    }
    this.end();
    throw this.reason(error);
  }

  private start(): AsyncIterator<ProviderChunk> {
    this.startedAt = this.lifeAt = performance.now();
    const outer = this.options.heartbeat;
    const heartbeat = outer
      ? () => {
          this.alive = true;
          outer();
        }
      : () => {
          this.alive = true;
        };
    this.check = setInterval(() => this.checkLife(), this.periodMs);
    // The upstream call stops on a cancel or on a stall: `stall` follows the caller's signal.
    this.unfollow = followAbort(this.options.signal, this.stall);
    return this.provider.stream(this.request, { ...this.options, signal: this.stall.signal, heartbeat })[Symbol.asyncIterator]();
  }

  private checkLife(): void {
    const now = performance.now();
    if (this.alive) {
      this.alive = false;
      this.sawBytes = true;
      this.lifeAt = now;
    }
    const { idleMs, firstTokenMs } = this;
    if (now - this.lifeAt >= idleMs) this.stall.abort(UpstreamStalledError.noBytes(idleMs, this.sawPart ? 'output' : this.sawBytes ? 'keep-alives' : 'nothing'));
    else if (firstTokenMs !== undefined && !this.sawPart && now - this.startedAt >= firstTokenMs) this.stall.abort(UpstreamStalledError.noFirstToken(firstTokenMs, this.sawBytes));
  }

  private onFailureSafe(error: unknown): unknown {
    this.end();
    return this.reason(error);
  }

  /** A stall shows as the upstream call's abort: the caller gets the stall's reason, unless it cancelled. */
  private reason(error: unknown): unknown {
    return this.stall.signal.aborted && !this.options.signal.aborted ? this.stall.signal.reason : error;
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.check);
    this.unfollow();
  }
}
