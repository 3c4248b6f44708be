import type { ProviderChunk } from '@tokenwire/providers';

/** An upstream call that has produced its first part, as the router hands it over. */
export interface StartedUpstream {
  first: ProviderChunk;
  /** The call's iterator, positioned after `first`. */
  rest: AsyncIterator<ProviderChunk>;
  /** Judges an error after the first part (metrics, breaker verdict); called at most once, before `end`. */
  failed(error: unknown): void;
  /** Frees what the call holds (breaker permit, model slot); called exactly once, on every exit. */
  end(): Promise<void>;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The router's stream: `connect` does the retries and fallbacks up to a first part, then every
 * later part goes from the upstream's next() straight to the consumer's, instead of through a
 * generator that re-yields it (one async-generator hop less per token, bench/provider-chain.ts).
 * Every ending reaches `StartedUpstream.end`: the upstream done or failing, and the consumer's
 * return() or throw(), which also close the upstream call.
 */
export class RoutedStream implements AsyncIterator<ProviderChunk>, AsyncIterable<ProviderChunk> {
  private started: StartedUpstream | undefined;
  private ended = false;
  private readonly onPart = (result: IteratorResult<ProviderChunk>): IteratorResult<ProviderChunk> | Promise<IteratorResult<ProviderChunk>> =>
    result.done ? this.end().then(() => DONE) : result;
  private readonly onFailure = (error: unknown): Promise<never> => {
    this.started?.failed(error);
    return this.end().then(() => Promise.reject(error as Error));
  };

  constructor(private readonly connect: () => Promise<StartedUpstream | undefined>) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ProviderChunk>> {
    if (this.ended) return Promise.resolve(DONE);
    if (!this.started) return this.first();
    return this.started.rest.next().then(this.onPart, this.onFailure);
  }

  async return(): Promise<IteratorResult<ProviderChunk>> {
    const started = this.started;
    if (this.ended || !started) {
      this.ended = true;
      return DONE;
    }
    try {
      await started.rest.return?.();
    } catch (error) {
      started.failed(error);
      throw error;
    } finally {
      await this.end();
    }
    return DONE;
  }

  async throw(error?: unknown): Promise<IteratorResult<ProviderChunk>> {
    const started = this.started;
    if (!this.ended && started) {
      // As a generator's for-await: the upstream is closed, and the error thrown in wins over one raised while closing.
      await started.rest.return?.().catch(() => undefined);
      started.failed(error);
      await this.end();
    }
    this.ended = true;
    throw error;
  }

  private async first(): Promise<IteratorResult<ProviderChunk>> {
    let started: StartedUpstream | undefined;
    try {
      started = await this.connect();
    } catch (error) {
      this.ended = true;
      throw error;
    }
    if (!started) {
      this.ended = true;
      return DONE;
    }
    this.started = started;
    return { done: false, value: started.first };
  }

  private end(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.ended = true;
    return this.started ? this.started.end() : Promise.resolve();
  }
}
