import { UpstreamStalledError } from '../errors';
import type { LanguageModelProvider, ProviderChunk, ProviderRequest, StreamOptions } from '../provider';

/**
 * Wraps a provider so that `idleMs` without a chunk aborts the upstream call
 * (closing its connection) and fails the stream with UpstreamStalledError.
 * One interval per stream checks the idle time, so a token costs a clock read, not a timer.
 */
export function withStallTimeout(provider: LanguageModelProvider, idleMs: number): LanguageModelProvider {
  return {
    specVersion: provider.specVersion,
    id: provider.id,
    capabilities: provider.capabilities,
    async *stream(request: ProviderRequest, options: StreamOptions): AsyncIterable<ProviderChunk> {
      const { signal } = options;
      const stall = new AbortController();
      const stalled = new UpstreamStalledError(idleMs);
      let lastChunkAt = performance.now();
      const check = setInterval(() => {
        if (performance.now() - lastChunkAt >= idleMs) stall.abort(stalled);
      }, Math.max(5, Math.min(idleMs / 4, 1000)));
      try {
        for await (const chunk of provider.stream(request, { ...options, signal: AbortSignal.any([signal, stall.signal]) })) {
          lastChunkAt = performance.now();
          yield chunk;
          lastChunkAt = performance.now(); // time spent downstream is not the upstream's idleness
        }
      } catch (error) {
        if (stall.signal.aborted && !signal.aborted) throw stalled;
        throw error;
      } finally {
        clearInterval(check);
      }
    },
  };
}
