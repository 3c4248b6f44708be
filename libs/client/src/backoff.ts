/**
 * Delays between attempts: exponential from `baseMs`, capped at `maxMs`, with "equal jitter"
 * (half of each delay is random) so that many clients cut at once do not come back at once.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  /** The delay before the next attempt; each call doubles the next one, up to the cap. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt++, 30));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** After a success: the next failure starts from `baseMs` again. */
  reset(): void {
    this.attempt = 0;
  }
}
