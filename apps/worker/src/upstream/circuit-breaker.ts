export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerSnapshot {
  state: BreakerState;
  consecutiveFailures: number;
  openedAt?: number;
}

/**
 * Per-upstream breaker: `threshold` consecutive failures open it; after `resetMs`
 * one trial call is let through (half-open); its outcome closes or reopens it.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trialInFlight = false;

  constructor(
    private readonly threshold: number,
    private readonly resetMs: number,
    private readonly onChange: (snapshot: BreakerSnapshot) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a call may go upstream now (claims the half-open trial when it does). */
  tryAcquire(): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open' && this.now() - this.openedAt >= this.resetMs) this.transition('half-open');
    if (this.state === 'half-open' && !this.trialInFlight) {
      this.trialInFlight = true;
      return true;
    }
    return false;
  }

  succeed(): void {
    this.trialInFlight = false;
    this.failures = 0;
    if (this.state !== 'closed') this.transition('closed');
  }

  fail(): void {
    this.trialInFlight = false;
    this.failures++;
    if (this.state === 'half-open' || (this.state === 'closed' && this.failures >= this.threshold)) {
      this.openedAt = this.now();
      this.transition('open');
    }
  }

  snapshot(): BreakerSnapshot {
    return { state: this.state, consecutiveFailures: this.failures, ...(this.state === 'closed' ? {} : { openedAt: this.openedAt }) };
  }

  private transition(state: BreakerState): void {
    this.state = state;
    this.onChange(this.snapshot());
  }
}
