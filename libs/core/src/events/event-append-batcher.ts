/** Where one writer's events go: the keys of its generation and the run it writes for. */
export interface AppendTarget {
  log: string;
  marker: string;
  meta: string;
  channel: string;
  /** The writing run's token ('' for a writer that claimed no run). */
  runToken: string;
}

interface PendingAppend {
  target: AppendTarget;
  id: string;
  json: string;
  /** Seconds of TTL to give the log with this event, or '' to leave it. */
  ttl: number | '';
  resolve: (code: number) => void;
  reject: (error: unknown) => void;
}

/** Sends one batch: every append of a turn, in order. Resolves with one code per append. */
export type SendAppends = (batch: ReadonlyArray<{ target: AppendTarget; id: string; json: string; ttl: number | '' }>) => Promise<number[]>;

/** Most appends in one call: bounds the script's size and the time Redis spends in it. */
const MAX_BATCH = 512;

/**
 * Collects the appends of one event-loop turn from every generation this process writes, and
 * sends them together at the end of the turn: one setImmediate and one Redis call per turn instead
 * of one of each per generation (bench/README.md, "What was changed"). Callbacks given to
 * `atTurnEnd` run first, so writers that coalesce a turn's text flush into the same call.
 * Batches go out in order on one connection, so each generation's events keep their order.
 */
export class EventAppendBatcher {
  private pending: PendingAppend[] = [];
  private turnEnd: Array<() => void> = [];
  private scheduled = false;

  constructor(private readonly send: SendAppends) {}

  /** Runs `callback` at the end of this turn, before the turn's appends are sent. */
  atTurnEnd(callback: () => void): void {
    this.turnEnd.push(callback);
    this.schedule();
  }

  append(target: AppendTarget, id: string, json: string, ttl: number | ''): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ target, id, json, ttl, resolve, reject });
      if (this.pending.length >= MAX_BATCH) this.flush();
      else this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.endTurn);
  }

  private readonly endTurn = (): void => {
    this.scheduled = false;
    const callbacks = this.turnEnd;
    this.turnEnd = [];
    for (const callback of callbacks) callback();
    this.flush();
  };

  private flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.send(batch).then(
      (codes) => {
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(codes[i]!);
      },
      (error: unknown) => {
        for (const append of batch) append.reject(error);
      },
    );
  }
}
