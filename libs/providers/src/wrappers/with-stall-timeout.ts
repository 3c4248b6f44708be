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
    async *stream(request: ProviderRequest, options: StreamOptions): AsyncIterable<ProviderChunk> {
      const { signal } = options;
      const stall = new AbortController();
      const startedAt = performance.now();
      let lifeAt = startedAt;
      let alive = false; // bytes or a part since the last check
      let sawBytes = false;
      let sawPart = false;
      const outer = options.heartbeat;
      const heartbeat = outer
        ? () => {
            alive = true;
            outer();
          }
        : () => {
            alive = true;
          };
      const check = setInterval(() => {
        const now = performance.now();
        if (alive) {
          alive = false;
          sawBytes = true;
          lifeAt = now;
        }
        if (now - lifeAt >= idleMs) stall.abort(UpstreamStalledError.noBytes(idleMs, sawPart ? 'output' : sawBytes ? 'keep-alives' : 'nothing'));
        else if (firstTokenMs !== undefined && !sawPart && now - startedAt >= firstTokenMs) stall.abort(UpstreamStalledError.noFirstToken(firstTokenMs, sawBytes));
      }, periodMs);
      // The upstream call stops on a cancel or on a stall: `stall` follows the caller's signal.
      const unfollow = followAbort(signal, stall);
      try {
        for await (const chunk of provider.stream(request, { ...options, signal: stall.signal, heartbeat })) {
          alive = true;
          sawPart = true;
          yield chunk;
          alive = true; // time spent downstream is not the upstream's idleness
        }
      } catch (error) {
        if (stall.signal.aborted && !signal.aborted) throw stall.signal.reason;
        throw error;
      } finally {
        clearInterval(check);
        unfollow();
      }
    },
  };
}
