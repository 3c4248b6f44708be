export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerSnapshot {
  state: BreakerState;
  consecutiveFailures: number;
  openedAt?: number;
}

/** One call the breaker let through. Ends with `succeed`, `fail`, or `release` (no verdict), whichever comes first. */
export interface BreakerPermit {
  /** Whether this call is the half-open trial. */
  readonly trial: boolean;
}

/**
 * Per-upstream breaker: `threshold` consecutive failures open it; after `resetMs`
 * one trial call is let through (half-open); its outcome closes or reopens it.
 * A trial that ends without a verdict (cancelled, aborted while waiting for a slot)
 * frees the trial slot for the next call: every exit of a call must reach `release`.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trial?: BreakerPermit;

  constructor(
    private readonly threshold: number,
    private readonly resetMs: number,
    private readonly onChange: (snapshot: BreakerSnapshot) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** A permit when a call may go upstream now (the half-open trial's, when it is one); undefined when open. */
  tryAcquire(): BreakerPermit | undefined {
    if (this.state === 'closed') return { trial: false };
    if (this.state === 'open' && this.now() - this.openedAt >= this.resetMs) this.transition('half-open');
    if (this.state === 'half-open' && !this.trial) {
      this.trial = { trial: true };
      return this.trial;
    }
    return undefined;
  }

  succeed(permit: BreakerPermit): void {
    this.release(permit);
    this.failures = 0;
    if (this.state !== 'closed') this.transition('closed');
  }

  fail(permit: BreakerPermit): void {
    this.release(permit);
    this.failures++;
    if (this.state === 'half-open' || (this.state === 'closed' && this.failures >= this.threshold)) {
      this.openedAt = this.now();
      this.transition('open');
    }
  }

  /** Ends a call without a verdict: frees the trial slot if this call held it, state unchanged. */
  release(permit: BreakerPermit): void {
    if (this.trial === permit) this.trial = undefined;
  }

  snapshot(): BreakerSnapshot {
    return { state: this.state, consecutiveFailures: this.failures, ...(this.state === 'closed' ? {} : { openedAt: this.openedAt }) };
  }

  private transition(state: BreakerState): void {
    this.state = state;
    this.onChange(this.snapshot());
  }
}
