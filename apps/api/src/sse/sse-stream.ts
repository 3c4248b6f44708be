import type { Request, Response } from 'express';
import zlib from 'node:zlib';

export interface SseOptions {
  /** Interval of `: ping` comments while nothing else is written (keeps proxies from cutting an idle stream). */
  keepAliveMs: number;
  /** Bytes a slow client may have unsent before it is dropped. */
  maxBufferedBytes: number;
  /** Compress (br, then gzip) when the client accepts it; every event is still flushed at once. */
  compression: boolean;
}

type Encoding = 'br' | 'gzip';

/**
 * A text/event-stream response. Every write is flushed at once (Nagle off, and a
 * compressor flush per event when compressing). A client that falls
 * `maxBufferedBytes` behind the live stream is dropped: it can reconnect with
 * Last-Event-ID and resume. Replay writes (`live` false) are paced by `drained()`
 * instead and never count against it.
 */
export class SseStream {
  /** SSE responses of this process not yet closed (their last bytes may still be flushing). */
  static openCount = 0;
  private keepAlive?: NodeJS.Timeout;
  private wroteSinceTick = false;
  private ended = false;
  private readonly compressor?: zlib.Gzip | zlib.BrotliCompress;
  private readonly flushKind: number = 0;

  /**
   * `firstFrame`: written at once. Uncompressed, the headers then leave with it in one write (Node corks a
   * response's first write until the next tick) instead of in a write of their own: one syscall less per
   * stream, which on a busy api is most of what opening the stream costs.
   */
  constructor(
    request: Request,
    private readonly response: Response,
    private readonly options: SseOptions,
    firstFrame?: string,
  ) {
    const encoding = options.compression ? pickEncoding(request.header('accept-encoding')) : undefined;
    response.status(200);
    response.set({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...(encoding ? { 'content-encoding': encoding, vary: 'accept-encoding' } : {}),
    });
    if (encoding === 'br') {
      // Quality 5: most of brotli's gain on repetitive JSON events at a fraction of its top-quality CPU cost.
      this.compressor = zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } });
      this.flushKind = zlib.constants.BROTLI_OPERATION_FLUSH;
    } else if (encoding === 'gzip') {
      this.compressor = zlib.createGzip({ level: 6 });
      this.flushKind = zlib.constants.Z_SYNC_FLUSH;
    }
    this.compressor?.pipe(response);
    response.socket?.setNoDelay(true);
    if (firstFrame === undefined || this.compressor) response.flushHeaders();
    this.keepAlive = setInterval(() => {
      if (!this.wroteSinceTick) this.write(': ping\n\n');
      this.wroteSinceTick = false;
    }, options.keepAliveMs);
    this.keepAlive.unref();
    SseStream.openCount++;
    // 'close' comes once the response has been fully handed to the socket, or the client went away.
    response.once('close', () => {
      SseStream.openCount--;
      clearInterval(this.keepAlive);
      this.compressor?.destroy();
    });
    if (firstFrame !== undefined) this.write(firstFrame);
  }

  /** True once the response ended or the client went away. */
  get isClosed(): boolean {
    return this.ended || this.response.destroyed;
  }

  onClose(listener: () => void): void {
    this.response.on('close', listener);
  }

  write(frame: string, live = true): void {
    if (this.isClosed) return;
    this.wroteSinceTick = true;
    if (this.compressor) {
      this.compressor.write(frame);
      this.compressor.flush(this.flushKind);
    } else this.response.write(frame);
    if (live && this.owedBytes() > this.options.maxBufferedBytes) this.response.destroy();
  }

  /**
   * Bytes written but not yet handed to the client's connection. The compressor's output counts
   * always; its input queue only while the response is backpressured: otherwise that queue is this
   * process's own pending CPU work (a 5 MB chunk arrives as one burst), not what the client failed to read.
   */
  owedBytes(): number {
    let compressor = 0;
    if (this.compressor) {
      compressor = this.compressor.readableLength;
      if (this.response.writableNeedDrain) compressor += this.compressor.writableLength;
    }
    return compressor + this.response.writableLength;
  }

  /** Resolves once at most a quarter of `maxBufferedBytes` is owed, or the response closed. */
  async drained(): Promise<void> {
    const lowWater = this.options.maxBufferedBytes / 4;
    while (!this.isClosed && this.owedBytes() > lowWater) {
      // 'drain' comes when the socket took the response's buffer; the timer covers the compressor's share.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.response.off('drain', done).off('close', done);
          resolve();
        };
        const timer = setTimeout(done, 20);
        this.response.once('drain', done).once('close', done);
      });
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.keepAlive);
    if (this.compressor) this.compressor.end();
    else this.response.end();
  }
}

/** br when accepted, else gzip, else none (q=0 means "not acceptable"). */
function pickEncoding(header: string | undefined): Encoding | undefined {
  const accepted = new Set(
    (header ?? '')
      .split(',')
      .map((part) => part.trim().split(';'))
      .filter(([, q]) => !q || Number(q.trim().replace(/^q=/, '')) > 0)
      .map(([name]) => name!.toLowerCase()),
  );
  if (accepted.has('br')) return 'br';
  if (accepted.has('gzip')) return 'gzip';
  return undefined;
}

/** SSE settings from the config. */
export function sseOptions(config: { api: { sseKeepAliveMs: number; maxBufferedBytes: number; sseCompression: boolean } }): SseOptions {
  return { keepAliveMs: config.api.sseKeepAliveMs, maxBufferedBytes: config.api.maxBufferedBytes, compression: config.api.sseCompression };
}
