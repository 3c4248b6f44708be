import { Body, Controller, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  anthropicCountTokensRequestSchema,
  anthropicMessagesRequestSchema,
  anthropicToChatRequest,
  estimatePromptTokens,
  isTerminalEvent,
  type GatewayError,
  type AnthropicCountTokensRequest,
  type AnthropicMessagesRequest,
} from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { TenantId } from '../auth/tenant.decorator';
import { anthropicErrorBody, httpStatusForError } from '../common/api-error';
import { ZodValidationPipe } from '../common/zod-validation.pipe';
import { GenerationReaderService } from '../generations/generation-reader.service';
import { endingError, summarizeEvents } from '../generations/generation-summary';
import { GenerationsService } from '../generations/generations.service';
import { SseStream, sseOptions } from '../sse/sse-stream';
import { AnthropicMessageFormatter } from './anthropic-message-formatter';

/**
 * Anthropic's Messages API (`POST /v1/messages`), a view over one generation like the OpenAI
 * route: the request becomes the provider-neutral chat request, runs on the same queue, worker
 * and provider, and its events are written back in Anthropic's shapes. `anthropic-version` and
 * `anthropic-beta` headers are accepted and do not change the answer. The client going away cancels.
 */
@Controller('v1/messages')
export class MessagesController {
  constructor(
    private readonly generations: GenerationsService,
    private readonly reader: GenerationReaderService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  @Post()
  @HttpCode(200)
  async create(
    @TenantId() tenantId: string,
    @Body(new ZodValidationPipe(anthropicMessagesRequestSchema)) body: AnthropicMessagesRequest,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    const { id } = await this.generations.create(tenantId, anthropicToChatRequest(body), { response });
    const format = new AnthropicMessageFormatter(`msg_${id}`, body.model);
    if (body.stream) await this.stream(id, format, request, response);
    else await this.complete(id, format, response);
  }

  /** An estimate, not the model's tokenizer: 4 characters of the messages, system and tools JSON per token. */
  @Post('count_tokens')
  @HttpCode(200)
  countTokens(@Body(new ZodValidationPipe(anthropicCountTokensRequestSchema)) body: AnthropicCountTokensRequest) {
    const { messages, tools } = anthropicToChatRequest(body);
    return { input_tokens: estimatePromptTokens(messages, tools ?? []) };
  }

  /**
   * Streams as Anthropic does, with the OpenAI route's rule for errors: headers wait (up to
   * `api.streamHeaderHoldMs`, at most one keep-alive interval) for the first token or error, so an
   * error before the first token is a plain HTTP error with its status (the SDK raises e.g.
   * RateLimitError); after that it is `event: error`.
   */
  private async stream(id: string, format: AnthropicMessageFormatter, request: Request, response: Response): Promise<void> {
    let sse: SseStream | undefined;
    const open = (): SseStream => {
      if (!sse) {
        clearTimeout(hold);
        sse = new SseStream(request, response, sseOptions(this.config), format.start());
      }
      return sse;
    };
    const failBeforeStart = (error: GatewayError) => {
      clearTimeout(hold);
      if (response.headersSent || response.destroyed) return;
      const status = httpStatusForError(error);
      response.status(status).json(anthropicErrorBody(status, error.message));
    };
    const holdMs = Math.min(this.config.api.streamHeaderHoldMs, this.config.api.sseKeepAliveMs);
    const hold = setTimeout(open, holdMs);
    hold.unref();
    if (holdMs === 0) open();
    // Registered before follow(): when it throws, the error is the answer and the hold must not start a stream after it.
    response.once('close', () => clearTimeout(hold));
    const subscription = await this.reader.follow(
      id,
      0,
      (event) => {
        if (!sse && (event.type === 'error' || event.type === 'cancelled')) {
          failBeforeStart(event.type === 'error' ? event : { code: 'conflict', status: 409, message: `the generation was cancelled: ${event.reason ?? ''}`.trim() });
          return;
        }
        if (!sse && event.type === 'restarted') return; // nothing sent yet: the re-run is all the client sees
        const stream = open();
        stream.write(format.event(event));
        if (isTerminalEvent(event) || event.type === 'restarted') stream.end();
      },
      response,
      { cancelOnLeave: true },
    );
    // After the terminal event, or when the api closes streams at shutdown (then, before the first token, a retryable error).
    subscription.onClosed(() => {
      if (sse) sse.end();
      else failBeforeStart({ code: 'internal_error', message: 'the api closed this stream before the first token; retry', retryable: true });
    });
  }

  private async complete(id: string, format: AnthropicMessageFormatter, response: Response): Promise<void> {
    const events = await this.reader.collect(id, response);
    if (!events) return;
    const summary = summarizeEvents(events);
    const error = endingError(events, summary);
    if (error) {
      const status = httpStatusForError(error);
      response.status(status).json(anthropicErrorBody(status, error.message));
    } else {
      response.json(format.message(summary));
    }
  }
}
