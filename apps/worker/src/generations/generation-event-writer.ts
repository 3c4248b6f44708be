import type { StreamEventBody } from '@tokenwire/contracts';
import type { AppendResult, EventLog } from '@tokenwire/core';

/** Appends in flight (written to Redis, not yet acknowledged) before reading more from the upstream. */
const MAX_IN_FLIGHT = 256;

/**
 * Largest text (UTF-16 units) one event carries. A huge upstream chunk (a 5 MB tool
 * argument) becomes several events, so no pub/sub message or socket frame is huge.
 */
export const MAX_EVENT_TEXT = 16 * 1024;

/** Why Redis refused this run's writes: the generation ended, or another run claimed it. */
export type WriteRefusal = Exclude<AppendResult, 'written'>;

/**
 * Writes one generation's events in order without awaiting a Redis round trip per token.
 * Text deltas are coalesced by `coalesce`: `off`, one event per delta; `turn`, the deltas of
 * one event-loop turn (one upstream read) become one event; a number, those within that many ms.
 */
export class GenerationEventWriter {
  private seq: number;
  private last: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  private failure: unknown;
  private text = '';
  private flushTimer?: NodeJS.Immediate | NodeJS.Timeout;
  private readonly appendEvent: ReturnType<EventLog['appender']>;
  /** Set when Redis refused a write: this run no longer owns the generation and writes nothing more. */
  refused?: WriteRefusal;

  constructor(
    eventLog: EventLog,
    generationId: string,
    runToken: string,
    lastSeq: number,
    private readonly coalesce: 'off' | 'turn' | number,
    private readonly onStop: () => void,
  ) {
    this.seq = lastSeq;
    this.appendEvent = eventLog.appender(generationId, runToken);
  }

  appendText(text: string): void {
    if (this.coalesce === 'off') {
      for (const piece of boundedPieces(text)) this.append({ type: 'chunk', delta: piece });
      return;
    }
    this.text += text;
    if (this.text.length >= MAX_EVENT_TEXT) this.flushText();
    else if (!this.flushTimer) {
      this.flushTimer = this.coalesce === 'turn' ? setImmediate(() => this.flushText()) : setTimeout(() => this.flushText(), this.coalesce);
    }
  }

  append(body: StreamEventBody): void {
    this.flushText(); // keeps order: buffered text goes before any other event
    this.write(body);
  }

  /** Resolves at once, or once Redis has caught up when too many appends are in flight (a fast upstream waits). */
  async backpressure(): Promise<void> {
    if (this.inFlight > MAX_IN_FLIGHT) await this.last;
  }

  /** The first append Redis could not take, if any: the cause when the run stops. */
  get writeFailure(): unknown {
    return this.failure;
  }

  /** Waits for every append so far; throws the first write failure. */
  async flush(): Promise<void> {
    this.flushText();
    await this.last;
    if (this.failure) throw this.failure;
  }

  private flushText(): void {
    if (this.flushTimer) {
      // Each kind with its own clear: clearImmediate on a Timeout corrupts Node's immediate
      // queue, after which setImmediate callbacks (ioredis auto-pipelining) never run.
      if (this.coalesce === 'turn') clearImmediate(this.flushTimer as NodeJS.Immediate);
      else clearTimeout(this.flushTimer as NodeJS.Timeout);
      this.flushTimer = undefined;
    }
    if (!this.text) return;
    const text = this.text;
    this.text = '';
    for (const piece of boundedPieces(text)) this.write({ type: 'chunk', delta: piece });
  }

  private write(body: StreamEventBody): void {
    if (this.refused || this.failure) return;
    this.inFlight++;
    this.last = this.appendEvent(++this.seq, body).then(
      (result) => {
        this.inFlight--;
        if (result !== 'written' && !this.refused) {
          this.refused = result;
          this.onStop();
        }
      },
      (error: unknown) => {
        this.inFlight--;
        this.failure ??= error;
        this.onStop();
      },
    );
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
