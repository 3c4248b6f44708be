import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { createGenerationRequestSchema, SESSION_HEADER, type CreateGenerationRequest } from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { ApiError } from '../common/api-error';
import { ZodValidationPipe } from '../common/zod-validation.pipe';
import { TenantId } from '../auth/tenant.decorator';
import { SseStream, sseOptions } from '../sse/sse-stream';
import { GenerationStreamService } from '../streams/generation-stream.service';
import { GenerationsService } from './generations.service';

/** Job-style generations: enqueue, poll, stream with resume, cancel. */
@Controller('v1/generations')
export class GenerationsController {
  constructor(
    private readonly generations: GenerationsService,
    private readonly streams: GenerationStreamService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  @Post()
  @HttpCode(202)
  async create(
    @TenantId() tenantId: string,
    @Body(new ZodValidationPipe(createGenerationRequestSchema)) body: CreateGenerationRequest,
    @Res({ passthrough: true }) response: Response,
    @Headers(SESSION_HEADER) sessionKey?: string,
  ) {
    const { id, createdAt } = await this.generations.create(tenantId, body, { sessionKey: sessionKey?.slice(0, 256) || undefined, response });
    return { id, object: 'generation', status: 'queued', model: body.model, createdAt };
  }

  @Get(':id')
  view(@TenantId() tenantId: string, @Param('id') id: string) {
    return this.generations.view(tenantId, id);
  }

  /**
   * SSE: `id: <seq>` on every event; resumes after `Last-Event-ID` (header, or
   * `?lastEventId=` for clients that cannot set headers). Ends after the terminal event.
   * A client that disconnects does not cancel: it may come back and resume.
   * Resume rules (README, "Resume rules"): a seq past the end is a 400, trimmed or expired
   * events a 410 `stream_expired`, and a reader who already has the terminal event gets
   * 204 No Content, which also tells a browser's EventSource to stop reconnecting.
   */
  @Get(':id/events')
  async events(@TenantId() tenantId: string, @Param('id') id: string, @Req() request: Request, @Res() response: Response) {
    const header = request.header('last-event-id');
    const [field, raw] = header !== undefined ? ['Last-Event-ID', header] : ['lastEventId', request.query.lastEventId];
    const afterSeq = parseSeq(raw, field);
    await this.generations.requireOwned(tenantId, id);
    const subscription = await this.streams.open(id, afterSeq, field);
    if (subscription.isClosed) {
      response.status(204).end();
      return;
    }
    const sse = new SseStream(request, response, sseOptions(this.config));
    sse.onClose(() => subscription.close());
    subscription.onClosed(() => sse.end());
    subscription.start({
      write: (event, json, live) => sse.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${json}\n\n`, live),
      drained: () => sse.drained(),
    });
    if (sse.isClosed) subscription.close();
  }

  @Delete(':id')
  @HttpCode(202)
  async cancel(@TenantId() tenantId: string, @Param('id') id: string) {
    await this.generations.cancel(tenantId, id);
    return { id, object: 'generation', status: 'cancelling' };
  }
}

/** A resume position: a non-negative decimal integer, nothing else (no sign, exponent, hex or fraction). */
function parseSeq(value: unknown, field: string): number {
  if (value === undefined || value === '') return 0;
  const seq = typeof value === 'string' && /^[0-9]{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(seq)) {
    const shown = typeof value === 'string' ? `'${value.slice(0, 40)}'` : 'a list';
    throw new ApiError(400, 'invalid_request', `${field} must be a non-negative decimal integer seq, got ${shown}`, field);
  }
  return seq;
}
