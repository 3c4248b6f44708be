import { Body, Controller, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { chatCompletionRequestSchema, SESSION_HEADER, type ChatCompletionRequest, type GatewayError, type StreamEvent } from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { ZodValidationPipe } from '../common/zod-validation.pipe';
import { TenantId } from '../auth/tenant.decorator';
import { SseStream, sseOptions } from '../sse/sse-stream';
import { GenerationsService } from '../generations/generations.service';
import { endingError, summarizeEvents } from '../generations/generation-summary';
import { GenerationReaderService } from '../generations/generation-reader.service';
import type { GenerationSubscription } from '../streams/generation-stream.service';
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
    private readonly reader: GenerationReaderService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  @Post()
  @HttpCode(200) // OpenAI answers 200, not Nest's default 201 for POST
  async create(
    @TenantId() tenantId: string,
    @Body(new ZodValidationPipe(chatCompletionRequestSchema)) body: ChatCompletionRequest,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    // A stream subscribes while its generation is being queued (after admission): the subscription is live
    // by the time the worker's first event comes, instead of three round trips after the enqueue.
    let opened: Promise<GenerationSubscription> | undefined;
    const openOnAdmission = (id: string) => {
      opened = this.reader.open(id);
      opened.catch(() => undefined); // awaited in follow; a failure answers there
    };
    let created: { id: string; createdAt: number };
    try {
      created = await this.generations.create(tenantId, body, {
        sessionKey: request.header(SESSION_HEADER)?.slice(0, 256) || undefined,
        onAdmitted: body.stream ? openOnAdmission : undefined,
        response,
      });
    } catch (error) {
      // Not queued: nothing will be published on it.
      opened?.then((subscription) => subscription.close(), () => undefined);
      throw error;
    }
    const { id, createdAt } = created;
    const format = new OpenAIChunkFormatter(`chatcmpl-${id}`, body.model, Math.floor(createdAt / 1000));
    if (body.stream) await this.stream(id, format, body.stream_options?.include_usage === true, request, response, opened);
    else await this.complete(id, format, response);
  }

  /**
   * Streams as OpenAI does, with one rule for errors: the response headers wait (up to
   * `api.streamHeaderHoldMs`, at most one keep-alive interval) for the first token or the first
   * error. An error before the first token is then a plain HTTP error with its own status, as
   * OpenAI answers, so SDKs raise the matching class. Once the hold expires the stream starts
   * with a `: ping` and a later error is an error frame.
   */
  private async stream(
    id: string,
    format: OpenAIChunkFormatter,
    includeUsage: boolean,
    request: Request,
    response: Response,
    opened?: Promise<GenerationSubscription>,
  ): Promise<void> {
    let sse: SseStream | undefined;
    const start = (): SseStream => {
      if (!sse) {
        clearTimeout(hold);
        sse = new SseStream(request, response, sseOptions(this.config), format.role());
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
    // Registered before follow(): when it throws, the error is the answer and the hold must not start a stream after it.
    response.once('close', () => clearTimeout(hold));
    let usage: StreamEvent | undefined;
    const subscription = await this.reader.follow(
      id,
      0,
      (event) => {
        switch (event.type) {
          case 'chunk':
            start().write(format.chunk(event));
            break;
          case 'usage':
            usage = event;
            break;
          case 'done': {
            const stream = start();
            stream.write(format.finish(event.finishReason, event.stopSequence));
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
      },
      response,
      { cancelOnLeave: true, opened },
    );
    // After a terminal event, or when the api closes streams at shutdown (then, before the first token, a retryable error).
    subscription.onClosed(() => {
      if (sse) sse.end();
      else fail({ code: 'internal_error', message: 'the api closed this stream before the first token; retry', retryable: true });
    });
  }

  private async complete(id: string, format: OpenAIChunkFormatter, response: Response): Promise<void> {
    const events = await this.reader.collect(id, response);
    if (!events) return;
    const summary = summarizeEvents(events);
    const error = endingError(events, summary);
    if (error) {
      const { status, body, headers } = openAIError(error);
      response.status(status).set(headers).json(body);
    } else {
      response.json(format.completion(summary));
    }
  }
}
