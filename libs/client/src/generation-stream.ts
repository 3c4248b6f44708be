import { TERMINAL_EVENT_TYPES, type StreamEvent, type TerminalEvent } from '@tokenwire/contracts';

/**
 * One generation as the client sees it: an async iterable of its events, each
 * exactly once and in seq order, ending after the terminal event. It remembers
 * the last seq, so the transport can resume after a disconnect.
 */
export class GenerationStream implements AsyncIterable<StreamEvent> {
  /** Highest seq received. */
  lastSeq: number;
  /** The reply as a user should see it (text before a `restarted` event is dropped). */
  text = '';
  readonly done: Promise<TerminalEvent>;
  private resolveDone!: (event: TerminalEvent) => void;
  private rejectDone!: (error: Error) => void;
  private readonly buffered: StreamEvent[] = [];
  private readonly listeners = new Set<(event: StreamEvent) => void>();
  private wake?: () => void;
  private failure?: Error;
  private finished = false;

  constructor(
    readonly jobId: string,
    afterSeq: number,
    private readonly canceller: (jobId: string) => Promise<boolean>,
    private readonly onFinish: (stream: GenerationStream) => void = () => undefined,
  ) {
    this.lastSeq = afterSeq;
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined); // a consumer may only iterate
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** Called by transports; drops duplicates (seq already seen), keeps order. */
  push(event: StreamEvent): void {
    if (this.finished || event.seq <= this.lastSeq) return;
    this.lastSeq = event.seq;
    if (event.type === 'restarted') this.text = '';
    if (event.type === 'chunk') this.text += event.delta;
    this.buffered.push(event);
    for (const listener of this.listeners) listener(event);
    if (TERMINAL_EVENT_TYPES.has(event.type)) {
      this.finished = true;
      this.resolveDone(event as TerminalEvent);
      this.onFinish(this);
    }
    this.wake?.();
  }

  /** Called by transports when the stream cannot continue (e.g. the generation no longer exists). */
  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    this.rejectDone(error);
    this.onFinish(this);
    this.wake?.();
  }

  /**
   * Called by transports when the api says there is nothing after `lastSeq`: the caller asked to
   * resume at the generation's terminal event. The iteration ends; `done` rejects with `error`,
   * as the terminal event itself was received earlier (by whoever chose that seq).
   */
  endBeforeStart(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.rejectDone(error);
    this.onFinish(this);
    this.wake?.();
  }

  /** Calls `listener` for every event from now on (the playground's way in). */
  onEvent(listener: (event: StreamEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the generation upstream (for every listener, on every api process). */
  cancel(): Promise<boolean> {
    return this.canceller(this.jobId);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    let index = 0;
    for (;;) {
      while (index < this.buffered.length) yield this.buffered[index++]!;
      if (this.failure) throw this.failure;
      if (this.finished) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
