import { Body, Controller, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { chatCompletionRequestSchema, type ChatCompletionRequest, type GatewayError, type StreamEvent } from '@tokenwire/contracts';
import { LOGGER, TOKENWIRE_CONFIG, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { ApiError, openAIErrorBody } from '../common/api-error';
import { ZodValidationPipe } from '../common/zod-validation.pipe';
import { TenantId } from '../auth/tenant.decorator';
import { SseStream, sseOptions } from '../sse/sse-stream';
import { GenerationStreamService, type GenerationSubscription } from '../streams/generation-stream.service';
import { GenerationsService } from '../generations/generations.service';
import { summarizeEvents } from '../generations/generation-summary';
import { OpenAIChunkFormatter, openAIError } from './openai-format';

/**
 * OpenAI-compatible `POST /v1/chat/completions`. The HTTP client going away
 * cancels the generation unless another client (any api process) still listens:
 * an OpenAI client cannot resume, so nobody else would read the rest.
 */
@Controller('v1/chat/completions')
export class ChatCompletionsController {
  constructor(
    private readonly generations: GenerationsService,
    private readonly streams: GenerationStreamService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @Post()
  @HttpCode(200) // OpenAI answers 200, not Nest's default 201 for POST
  async create(
    @TenantId() tenantId: string,
    @Body(new ZodValidationPipe(chatCompletionRequestSchema)) body: ChatCompletionRequest,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    const { id, createdAt } = await this.generations.create(tenantId, body);
    const format = new OpenAIChunkFormatter(`chatcmpl-${id}`, body.model, Math.floor(createdAt / 1000));
    if (body.stream) await this.stream(id, format, body.stream_options?.include_usage === true, request, response);
    else await this.complete(id, format, response);
  }

  /**
   * Streams as OpenAI does, with one rule for errors: the response headers wait (up to
   * `api.streamHeaderHoldMs`, at most one keep-alive interval) for the first token or the first error. An error before the first
   * token is then a plain HTTP error with its own status, as OpenAI answers, so SDKs raise the
   * matching class. Once the hold expires the stream starts with a `: ping` and a later error is
   * an error frame.
   */
  private async stream(id: string, format: OpenAIChunkFormatter, includeUsage: boolean, request: Request, response: Response): Promise<void> {
    let sse: SseStream | undefined;
    const start = (): SseStream => {
      if (!sse) {
        clearTimeout(hold);
        sse = new SseStream(request, response, sseOptions(this.config));
        sse.write(format.role());
      }
      return sse;
    };
    /** An error: as the HTTP response while nothing was sent, else as the last frame. */
    const fail = (error: GatewayError) => {
      if (sse) {
        // No [DONE] after an error: SDKs must raise, not return a truncated reply.
        sse.write(OpenAIChunkFormatter.error(error));
        sse.end();
        return;
      }
      clearTimeout(hold);
      if (response.headersSent || response.destroyed) return;
      const { status, body, headers } = openAIError(error);
      response.status(status).set(headers).json(body);
    };
    // Never idle longer than a keep-alive interval: clients and proxies with short read timeouts must not cut the wait.
    const holdMs = Math.min(this.config.api.streamHeaderHoldMs, this.config.api.sseKeepAliveMs);
    const hold = setTimeout(() => start().write(': ping\n\n'), holdMs);
    hold.unref();
    if (holdMs === 0) start();
    let usage: StreamEvent | undefined;
    const subscription = await this.streams.subscribe(id, 0, (event) => {
      switch (event.type) {
        case 'chunk':
          start().write(format.chunk(event));
          break;
        case 'usage':
          usage = event;
          break;
        case 'done': {
          const stream = start();
          stream.write(format.finish(event.finishReason));
          if (includeUsage && usage?.type === 'usage') stream.write(format.usage(usage));
          stream.write(OpenAIChunkFormatter.DONE);
          stream.end();
          break;
        }
        case 'error':
          fail(event);
          break;
        case 'cancelled':
          fail({ code: 'conflict', status: 409, message: `the generation was cancelled: ${event.reason ?? ''}`.trim() });
          break;
        case 'restarted':
          // An OpenAI client cannot take back text it already has: fail rather than send a spliced reply.
          if (sse) fail({ code: 'upstream_closed', status: 502, message: 'the worker running this generation failed mid-stream' });
          break;
      }
    });
    // After a terminal event, or when the api closes streams at shutdown (then, before the first token, a retryable error).
    subscription.onClosed(() => {
      if (sse) sse.end();
      else fail({ code: 'internal_error', message: 'the api closed this stream before the first token; retry', retryable: true });
    });
    response.once('close', () => clearTimeout(hold));
    this.cancelWhenAbandoned(id, subscription, response);
  }

  private async complete(id: string, format: OpenAIChunkFormatter, response: Response): Promise<void> {
    const events: StreamEvent[] = [];
    const finished = new Promise<void>((resolve) => {
      void this.streams
        .subscribe(id, 0, (event) => {
          events.push(event);
          if (event.type === 'done' || event.type === 'error' || event.type === 'cancelled') resolve();
        })
        .then((subscription) => this.cancelWhenAbandoned(id, subscription, response));
    });
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, this.config.api.requestTimeoutMs, 'timeout').unref());
    if ((await Promise.race([finished, timeout])) === 'timeout') {
      await this.generations.requestCancel(id, 'request timed out');
      throw new ApiError(504, 'upstream_stalled', `the generation did not finish within ${this.config.api.requestTimeoutMs} ms`);
    }
    if (response.destroyed) return;
    const summary = summarizeEvents(events);
    const last = events[events.length - 1]!;
    if (summary.error) {
      const { status, body, headers } = openAIError(summary.error);
      response.status(status).set(headers).json(body);
    } else if (last.type === 'cancelled') {
      response.status(409).json(openAIErrorBody(409, 'conflict', `the generation was cancelled: ${last.reason ?? ''}`.trim()));
    } else {
      response.json(format.completion(summary));
    }
  }

  /** The client left before the end: cancel, unless another listener (any api process) still reads. */
  private cancelWhenAbandoned(id: string, subscription: GenerationSubscription, response: Response): void {
    const onClose = () => {
      if (subscription.isClosed) return;
      subscription.close();
      void (async () => {
        if (this.streams.localListenerCount(id) > 0 || (await this.streams.subscriberProcessCount(id)) > 0) return;
        await this.generations.requestCancel(id, 'client disconnected');
      })().catch((error: unknown) => this.logger.warn({ err: error, jobId: id }, 'cancel after disconnect failed'));
    };
    if (response.destroyed || response.socket?.destroyed) onClose();
    else response.on('close', onClose);
  }
}
