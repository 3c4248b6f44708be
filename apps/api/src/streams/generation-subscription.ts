import { isTerminalEvent, type StreamEvent, type TerminalEventBody } from '@tokenwire/contracts';
import type { LoggedEvent } from '@tokenwire/core';
import type { ApiError } from '../common/api-error';

/** Receives a generation's events in seq order, each exactly once, ending with the terminal event. */
export type StreamListener = (event: StreamEvent, json: string) => void;

/**
 * Where a subscription writes: a transport that can tell when the client has read what it was sent.
 * `live` is false for events of the api's own replay (read from the log, paced by `drained`), true for
 * events as they happen: only those may count against a slow client.
 */
export interface StreamSink {
  write(event: StreamEvent, json: string, live: boolean): void;
  /** Resolves once the client has read enough of what was written that the next replay page may follow. */
  drained(): Promise<void>;
}

/**
 * Live events buffered while a replay is being read. A generation that writes faster than this
 * while it is replayed does not grow the buffer: the replay reads the overflow from the log instead.
 */
const MAX_PENDING_EVENTS = 1024;

/** One listener's view of one generation: replay (in pages), then live, with no gap and no duplicate. */
export class GenerationSubscription {
  /** Live events that arrived while the replay was being read; null once live. */
  private pending: LoggedEvent[] | null = [];
  private overflowed = false;
  private sink?: StreamSink;
  private closed = false;
  /** The api's own terminal event, waiting for `start` (see `end`). */
  private ending?: LoggedEvent;
  private reason?: ApiError;
  private whenClosed?: Promise<void>;
  /** Wakes a replay that waits for the log to catch up with the live stream (see `liveOrTimeout`). */
  private wakeReplay?: () => void;
  private readonly closeHandlers: Array<(reason?: ApiError) => void> = [];

  constructor(
    readonly generationId: string,
    /** Highest seq delivered so far (starts at the client's `afterSeq`). */
    public lastSeq: number,
    private readonly onClose: (subscription: GenerationSubscription) => void,
    /** Reads the log after `lastSeq` page by page until it meets the live stream (GenerationStreamService.replay). */
    private readonly replay: (subscription: GenerationSubscription) => void,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Why the api closed it before its terminal event (e.g. the log was trimmed under a replay). */
  get closeReason(): ApiError | undefined {
    return this.reason;
  }

  /** Starts delivery to `sink`: the replay from `lastSeq`, then live. */
  start(sink: StreamSink): void {
    if (this.sink || this.closed) return;
    this.sink = sink;
    if (this.ending) this.deliver(this.ending, false);
    else this.replay(this);
  }

  /**
   * Ends the stream with a terminal event the api makes (the generation is gone from Redis, so none can
   * come from its log), as the seq after the last this listener received: still exactly one terminal event.
   */
  end(body: TerminalEventBody): void {
    if (this.closed || this.ending) return;
    const event = { jobId: this.generationId, seq: this.lastSeq + 1, ...body } as StreamEvent;
    const ending = { event, json: JSON.stringify(event) };
    if (this.sink) this.deliver(ending, false);
    else this.ending = ending;
  }

  /** Called for every live message of the channel. */
  receive(logged: LoggedEvent): void {
    if (this.pending) {
      if (this.pending.length < MAX_PENDING_EVENTS) this.pending.push(logged);
      else this.overflowed = true;
      this.wakeReplay?.();
    } else if (logged.event.seq > this.lastSeq + 1) {
      // A live message skipped some seq (lost during a Redis reconnect): re-read the log.
      this.pending = [logged];
      this.replay(this);
    } else this.deliver(logged, true);
  }

  /** Re-reads the log after a reconnect: messages published while disconnected never arrive live. */
  resync(): void {
    if (this.pending || this.closed || !this.sink) return;
    this.pending = [];
    this.replay(this);
  }

  /** Delivers one page read from the log. */
  deliverReplay(page: LoggedEvent[]): void {
    for (const logged of page) this.deliver(logged, false);
  }

  /**
   * After the replay reached the end of the log: delivers what arrived live meanwhile and goes live.
   * False when that buffer does not continue the replay (it overflowed, or starts after a gap):
   * then the replay reads on.
   */
  goLive(): boolean {
    if (this.closed) return true;
    if (this.overflowed) {
      this.overflowed = false;
      this.pending = [];
      return false;
    }
    const buffered = this.pending ?? [];
    this.pending = null;
    for (let i = 0; i < buffered.length; i++) {
      const { seq } = buffered[i]!.event;
      if (seq <= this.lastSeq) continue;
      if (seq > this.lastSeq + 1) {
        this.pending = buffered.slice(i);
        return false;
      }
      this.deliver(buffered[i]!, true);
    }
    return true;
  }

  /**
   * Resolves on the next live message, after `ms`, or when the subscription closes: a replay that found the
   * live stream ahead of the log (a failover's new master lacks events its writer has yet to re-send) waits
   * for the log to catch up here instead of re-reading it in a loop.
   */
  liveOrTimeout(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        if (this.wakeReplay === wake) this.wakeReplay = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakeReplay = wake;
    });
  }

  /** Resolves once the sink drained (or the subscription closed). */
  drained(): Promise<void> {
    if (this.closed || !this.sink) return Promise.resolve();
    this.whenClosed ??= new Promise<void>((resolve) => this.onClosed(() => resolve()));
    return Promise.race([this.sink.drained(), this.whenClosed]);
  }

  /** Runs `handler` once when the subscription closes (terminal event delivered, or closed by its owner or the api). */
  onClosed(handler: (reason?: ApiError) => void): void {
    if (this.closed) handler(this.reason);
    else this.closeHandlers.push(handler);
  }

  close(reason?: ApiError): void {
    if (this.closed) return;
    this.closed = true;
    this.reason = reason;
    this.pending = null;
    this.wakeReplay?.();
    this.onClose(this);
    for (const handler of this.closeHandlers.splice(0)) handler(reason);
  }

  private deliver({ event, json }: LoggedEvent, live: boolean): void {
    if (this.closed || event.seq <= this.lastSeq) return;
    this.lastSeq = event.seq;
    this.sink!.write(event, json, live);
    if (isTerminalEvent(event)) this.close();
  }
}
