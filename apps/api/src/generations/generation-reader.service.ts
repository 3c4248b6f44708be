import { Inject, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { isTerminalEvent, type StreamEvent } from '@tokenwire/contracts';
import { LOGGER, TOKENWIRE_CONFIG, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { ApiError } from '../common/api-error';
import { GenerationStreamService, type GenerationSubscription, type StreamListener } from '../streams/generation-stream.service';
import { GenerationsService } from './generations.service';

/**
 * How the inbound API views (OpenAI chat, Anthropic Messages, OpenAI Responses) read one
 * generation for one HTTP client: follow it live, or wait for its whole reply. The client
 * going away cancels it unless another client (any api process) still listens: these
 * clients cannot resume, so nobody else would read the rest.
 */
@Injectable()
export class GenerationReaderService {
  constructor(
    private readonly generations: GenerationsService,
    private readonly streams: GenerationStreamService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** A subscription to the generation's events after `afterSeq`, opened (live channel, resume check) but not yet delivering: hand it to `follow`. */
  open(id: string, afterSeq = 0): Promise<GenerationSubscription> {
    return this.streams.open(id, afterSeq);
  }

  /**
   * Streams the events after `afterSeq` to `listener`; with `cancelOnLeave`, the client leaving cancels.
   * `opened`: a subscription from `open` (of the same id and seq), begun while the generation was being queued.
   */
  async follow(
    id: string,
    afterSeq: number,
    listener: StreamListener,
    response: Response,
    { cancelOnLeave, opened }: { cancelOnLeave: boolean; opened?: Promise<GenerationSubscription> },
  ): Promise<GenerationSubscription> {
    const subscription = await (opened ?? this.streams.open(id, afterSeq));
    subscription.start({ write: listener, drained: () => Promise.resolve() });
    if (cancelOnLeave) this.cancelWhenAbandoned(id, subscription, response);
    else this.closeWhenGone(subscription, response);
    return subscription;
  }

  /**
   * Every event of the generation once it has ended, or undefined when the client left first
   * (which cancelled it). Past `api.requestTimeoutMs` it is cancelled and this throws a 504.
   */
  async collect(id: string, response: Response): Promise<StreamEvent[] | undefined> {
    const events: StreamEvent[] = [];
    let subscription: GenerationSubscription | undefined;
    const finished = new Promise<void>((resolve, reject) => {
      this.streams
        .subscribe(id, 0, (event) => events.push(event))
        .then(
          (opened) => {
            subscription = opened;
            // After the terminal event, or first when the client left or the api shuts down: never wait out the timeout for nobody.
            opened.onClosed(() => resolve());
            this.cancelWhenAbandoned(id, opened, response);
          },
          // Redis refused the subscription or the replay: an answer to this request (a 503), not an unhandled rejection.
          (error: unknown) => reject(error),
        );
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, this.config.api.requestTimeoutMs, 'timeout').unref()));
    try {
      const ended = await Promise.race([finished, timeout]).catch(async (error: unknown) => {
        // Nobody will read this generation: stop it if Redis lets us, and answer with the failure.
        await this.generations.requestCancel(id, 'the request failed').catch(() => undefined);
        throw error;
      });
      if (ended === 'timeout') {
        subscription?.close();
        await this.generations.requestCancel(id, 'request timed out');
        throw new ApiError(504, 'upstream_stalled', `the generation did not finish within ${this.config.api.requestTimeoutMs} ms`);
      }
    } finally {
      clearTimeout(timer);
    }
    if (response.destroyed) return undefined;
    const last = events[events.length - 1];
    if (!last || !isTerminalEvent(last)) {
      throw new ApiError(503, 'internal_error', 'the api closed this request before the generation ended (shutting down); retry', undefined, { 'retry-after': '1' });
    }
    return events;
  }

  /** The client left before the end: cancel, unless another listener (any api process) still reads. */
  private cancelWhenAbandoned(id: string, subscription: GenerationSubscription, response: Response): void {
    const onClose = () => {
      if (subscription.isClosed) return;
      subscription.close();
      void (async () => {
        if (this.streams.localListenerCount(id) > 0 || (await this.streams.otherProcessesListening(id)) > 0) return;
        await this.generations.requestCancel(id, 'client disconnected');
      })().catch((error: unknown) => this.logger.warn({ err: error, jobId: id }, 'cancel after disconnect failed'));
    };
    if (response.destroyed || response.socket?.destroyed) onClose();
    else response.on('close', onClose);
  }

  /** A client of a resumable view leaving only stops its delivery. */
  private closeWhenGone(subscription: GenerationSubscription, response: Response): void {
    if (response.destroyed || response.socket?.destroyed) subscription.close();
    else response.on('close', () => subscription.close());
  }
}
