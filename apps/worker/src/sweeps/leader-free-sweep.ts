import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A periodic sweep that every worker schedules and one runs per interval: the first to take the
 * interval's lock (SET NX PX, which expires by itself) sweeps, so there is no leader to lose.
 */
export class LeaderFreeSweep {
  private timer?: NodeJS.Timeout;
  private readonly holder = randomUUID();

  /** Sweep twice per bound (`boundMs`: how late a stuck item may be found), between 100 ms and 10 s. */
  static intervalFor(boundMs: number): number {
    return Math.min(10_000, Math.max(100, Math.floor(boundMs / 2)));
  }

  constructor(
    private readonly redis: Redis,
    private readonly lockKey: string,
    readonly intervalMs: number,
    private readonly sweepOnce: () => Promise<number>,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.run().catch(this.onError);
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One sweep, if no other worker holds this interval's lock; what the sweep returned, else 0. */
  async run(): Promise<number> {
    if (!(await this.redis.set(this.lockKey, this.holder, 'PX', this.intervalMs, 'NX'))) return 0;
    return this.sweepOnce();
  }
}
