import type { Response } from 'express';

export interface SseOptions {
  /** Interval of `: ping` comments while nothing else is written (keeps proxies from cutting an idle stream). */
  keepAliveMs: number;
  /** Bytes a slow client may have unsent before it is dropped. */
  maxBufferedBytes: number;
}

/**
 * A text/event-stream response. Every write is flushed at once (no compression
 * buffering, Nagle off). A client that falls `maxBufferedBytes` behind is dropped:
 * it can reconnect with Last-Event-ID and resume from the log.
 */
export class SseStream {
  private keepAlive?: NodeJS.Timeout;
  private wroteSinceTick = false;
  private ended = false;

  constructor(
    private readonly response: Response,
    private readonly options: SseOptions,
  ) {
    response.status(200);
    response.set({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    response.flushHeaders();
    response.socket?.setNoDelay(true);
    this.keepAlive = setInterval(() => {
      if (!this.wroteSinceTick) this.write(': ping\n\n');
      this.wroteSinceTick = false;
    }, options.keepAliveMs);
    this.keepAlive.unref();
    response.on('close', () => this.stopTimers());
  }

  /** True once the response ended or the client went away. */
  get isClosed(): boolean {
    return this.ended || this.response.destroyed;
  }

  onClose(listener: () => void): void {
    this.response.on('close', listener);
  }

  write(frame: string): void {
    if (this.isClosed) return;
    this.wroteSinceTick = true;
    this.response.write(frame);
    if (this.response.writableLength > this.options.maxBufferedBytes) this.response.destroy();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.stopTimers();
    this.response.end();
  }

  private stopTimers(): void {
    clearInterval(this.keepAlive);
  }
}
