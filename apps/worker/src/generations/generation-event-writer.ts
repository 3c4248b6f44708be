import { setTimeout as sleep } from 'node:timers/promises';
import type { StreamEventBody } from '@tokenwire/contracts';
import type { AppendResult, EventLog, Logger } from '@tokenwire/core';

/** Appends in flight (written to Redis, not yet acknowledged) before reading more from the upstream. */
const MAX_IN_FLIGHT = 256;
/** Events queued while the writer recovers before the upstream is read no further (a fast upstream waits). */
const MAX_QUEUED_WHILE_RECOVERING = 16 * MAX_IN_FLIGHT;
/**
 * Acknowledged events kept to send again: a Cluster master that acknowledged an append and died before
 * its replica had it (replication is asynchronous) leaves the promoted replica without the last few.
 * A replica is normally milliseconds behind, so a few hundred events cover even a fast stream.
 */
const ACKNOWLEDGED_KEPT = 1024;
/** How long appends Redis cannot take (a failover: connection lost, MOVED, CLUSTERDOWN) are retried before the run fails. */
export const WRITE_RECOVERY_TIMEOUT_MS = 30_000;

/**
 * Largest text (UTF-16 units) one event carries. A huge upstream chunk (a 5 MB tool
 * argument) becomes several events, so no pub/sub message or socket frame is huge.
 */
export const MAX_EVENT_TEXT = 16 * 1024;

/** Why Redis refused this run's writes: the generation ended, or another run claimed it. */
export type WriteRefusal = 'ended' | 'lost';

interface PendingEvent {
  seq: number;
  body: StreamEventBody;
}

/**
 * Writes one generation's events in order without awaiting a Redis round trip per token.
 * Text deltas are coalesced by `coalesce`: `off`, one event per delta; `turn`, the deltas of
 * one event-loop turn (one upstream read) become one event; a number, those within that many ms.
 * The event log sends the appends of every generation of one turn in one call.
 *
 * Appends are pipelined. When one fails (a Cluster failover: the connection drops, the slot moves) or
 * finds the event before it missing (`gap`), the writer recovers: it lets the appends in flight settle,
 * then sends what is not yet acknowledged one at a time, in seq order, retrying for up to
 * WRITE_RECOVERY_TIMEOUT_MS, first re-sending acknowledged events the new master lacks. The append
 * script refuses any seq but the next, and takes an identical resend as a success, so the log never
 * gets a hole or a duplicate; then pipelining resumes.
 */
export class GenerationEventWriter {
  private seq: number;
  /** Appends sent and not yet settled; `whenSettled` waits for them all. Counted, not tracked: a token allocates nothing for it. */
  private inFlight = 0;
  private allSettled?: { promise: Promise<void>; resolve: () => void };
  private last: Promise<unknown> = Promise.resolve();
  /** Events written or queued and not yet acknowledged, by seq (in seq order). */
  private pending = new Map<number, PendingEvent>();
  /** At least the last ACKNOWLEDGED_KEPT acknowledged events, oldest first (trimmed by halves: no shift per token). */
  private acknowledged: PendingEvent[] = [];
  private recovery?: Promise<void>;
  private failure: unknown;
  private text = '';
  /** `turn`: a flush is registered for the end of this event-loop turn. */
  private turnFlushPending = false;
  /** A number: the window's timer. */
  private flushTimer?: NodeJS.Timeout;
  private readonly appendEvent: ReturnType<EventLog['appender']>;
  /** Set when Redis refused a write: this run no longer owns the generation and writes nothing more. */
  refused?: WriteRefusal;

  constructor(
    private readonly eventLog: EventLog,
    private readonly generationId: string,
    runToken: string,
    private readonly claimedSeq: number,
    private readonly coalesce: 'off' | 'turn' | number,
    private readonly onStop: () => void,
    private readonly log?: Logger,
  ) {
    this.seq = claimedSeq;
    this.appendEvent = eventLog.appender(generationId, runToken);
  }

  appendText(text: string): void {
    if (this.coalesce === 'off') {
      for (const piece of boundedPieces(text)) this.append({ type: 'chunk', delta: piece });
      return;
    }
    this.text += text;
    if (this.text.length >= MAX_EVENT_TEXT) this.flushText();
    else if (this.coalesce === 'turn') {
      // One end-of-turn hook for every generation of this process (the event log's batcher), not a setImmediate each.
      if (!this.turnFlushPending) {
        this.turnFlushPending = true;
        this.eventLog.atTurnEnd(this.flushAtTurnEnd);
      }
    } else if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flushText(), this.coalesce);
  }

  private readonly flushAtTurnEnd = (): void => {
    this.turnFlushPending = false;
    this.flushText();
  };

  append(body: StreamEventBody): void {
    this.flushText(); // keeps order: buffered text goes before any other event
    this.write(body);
  }

  /**
   * Undefined when the upstream may be read on; else a promise of Redis catching up (too many appends
   * in flight or queued: a fast upstream waits). Not a promise every time: awaiting one per token costs a hop.
   */
  backpressure(): Promise<unknown> | undefined {
    if (this.recovery && this.pending.size > MAX_QUEUED_WHILE_RECOVERING) return this.recovery;
    if (this.inFlight > MAX_IN_FLIGHT) return this.last;
    return undefined;
  }

  /** The highest seq Redis acknowledged from this writer (before any: the log's top seq at the claim). */
  get lastWrittenSeq(): number {
    return this.acknowledged.at(-1)?.seq ?? this.claimedSeq;
  }

  /** The first append Redis could not take, if any: the cause when the run stops. */
  get writeFailure(): unknown {
    return this.failure;
  }

  /** Waits for every append so far (through a recovery); throws the first write failure. */
  async flush(): Promise<void> {
    this.flushText();
    while (this.recovery || this.inFlight) await (this.recovery ?? this.whenSettled());
    if (this.failure) throw this.failure;
  }

  private flushText(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    if (!this.text) return;
    const text = this.text;
    this.text = '';
    for (const piece of boundedPieces(text)) this.write({ type: 'chunk', delta: piece });
  }

  private write(body: StreamEventBody): void {
    if (this.refused || this.failure) return;
    const event = { seq: ++this.seq, body };
    this.pending.set(event.seq, event);
    if (!this.recovery) this.send(event); // else the recovery sends it, in order
  }

  private send(event: PendingEvent): void {
    this.inFlight++;
    this.last = this.appendEvent(event.seq, event.body).then(
      (result) => {
        this.settledOne();
        this.settle(event, result);
      },
      (error: unknown) => {
        this.settledOne();
        this.startRecovery(error);
      },
    );
  }

  private settledOne(): void {
    if (--this.inFlight > 0 || !this.allSettled) return;
    this.allSettled.resolve();
    this.allSettled = undefined;
  }

  /** Resolves once every append sent so far has settled. */
  private whenSettled(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    if (!this.allSettled) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.allSettled = { promise, resolve };
    }
    return this.allSettled.promise;
  }

  private settle(event: PendingEvent, result: AppendResult): void {
    if (result === 'written') this.acknowledge(event);
    else if (result === 'gap') this.startRecovery(new Error(`the event log of ${this.generationId} lacks the events before seq ${event.seq}`));
    else this.refuse(result);
  }

  private acknowledge(event: PendingEvent): void {
    if (!this.pending.delete(event.seq)) return;
    if (event.seq <= (this.acknowledged.at(-1)?.seq ?? 0)) return; // a lost event sent again: already kept
    this.acknowledged.push(event);
    if (this.acknowledged.length >= 2 * ACKNOWLEDGED_KEPT) this.acknowledged = this.acknowledged.slice(ACKNOWLEDGED_KEPT);
  }

  private refuse(refusal: WriteRefusal): void {
    if (this.refused) return;
    this.refused = refusal;
    this.onStop();
  }

  private fail(error: unknown): void {
    this.failure ??= error;
    this.onStop();
  }

  private startRecovery(cause: unknown): void {
    if (this.recovery || this.refused || this.failure) return;
    this.recovery = this.recover(cause).catch((error: unknown) => {
      this.recovery = undefined;
      this.fail(error);
    });
  }

  /** Sends every unacknowledged event in seq order, one at a time, until all are written, refused, or the deadline passes. */
  private async recover(cause: unknown): Promise<void> {
    const deadline = Date.now() + WRITE_RECOVERY_TIMEOUT_MS;
    const startedAt = Date.now();
    this.log?.warn({ err: cause }, 'an append failed; sending the unacknowledged events again, in order');
    let lastError = cause;
    let delayMs = 50;
    // Every pipelined append settles first (ioredis retries some itself): their outcomes say where the log stands.
    await this.whenSettled();
    while (!this.refused && !this.failure) {
      const next = this.pending.values().next().value;
      if (!next) break;
      let result: AppendResult | undefined;
      try {
        result = await this.appendEvent(next.seq, next.body);
      } catch (error) {
        lastError = error;
      }
      if (result === 'written') {
        this.acknowledge(next);
        delayMs = 50;
        continue;
      }
      if (result === 'ended' || result === 'lost') {
        this.refuse(result);
        break;
      }
      if (result === 'gap') {
        let resent: boolean | undefined;
        try {
          resent = await this.resendLost(next.seq);
        } catch (error) {
          lastError = error; // the log could not be read yet: retried below
        }
        if (resent) continue;
        if (resent === false) {
          this.fail(new Error(`the event log of ${this.generationId} lost events before seq ${next.seq} that this writer no longer holds`));
          break;
        }
      }
      if (Date.now() >= deadline) {
        this.fail(lastError);
        break;
      }
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, 1000);
    }
    if (!this.failure && !this.refused) this.log?.warn({ recoveredInMs: Date.now() - startedAt, seq: this.seq }, 'appends recovered');
    this.recovery = undefined; // synchronously with the last send: a write from here on is pipelined again
  }

  /** Queues again, before `seq`, the acknowledged events the log lacks (a failover lost them); false when some are no longer kept. */
  private async resendLost(seq: number): Promise<boolean> {
    const top = await this.eventLog.lastSeq(this.generationId);
    const lost = this.acknowledged.filter((event) => event.seq > top && event.seq < seq);
    if (lost.length !== seq - top - 1) return false;
    this.pending = new Map([...lost, ...this.pending.values()].map((event) => [event.seq, event]));
    return true;
  }
}

/** `text` cut into pieces of at most MAX_EVENT_TEXT, never inside a surrogate pair; `['']` for ''. */
export function boundedPieces(text: string): string[] {
  if (text.length <= MAX_EVENT_TEXT) return [text];
  const pieces: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + MAX_EVENT_TEXT);
    const code = text.charCodeAt(end - 1);
    if (end < text.length && code >= 0xd800 && code <= 0xdbff) end--; // keep a high surrogate with its pair
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}
