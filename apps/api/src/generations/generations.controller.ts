import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { createGenerationRequestSchema, type CreateGenerationRequest } from '@tokenwire/contracts';
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
  async create(@TenantId() tenantId: string, @Body(new ZodValidationPipe(createGenerationRequestSchema)) body: CreateGenerationRequest) {
    const { id, createdAt } = await this.generations.create(tenantId, body);
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
   */
  @Get(':id/events')
  async events(@TenantId() tenantId: string, @Param('id') id: string, @Req() request: Request, @Res() response: Response) {
    const afterSeq = parseLastEventId(request.header('last-event-id') ?? (request.query.lastEventId as string | undefined));
    await this.generations.requireOwned(tenantId, id);
    const sse = new SseStream(request, response, sseOptions(this.config));
    const subscription = await this.streams.subscribe(id, afterSeq, (event, json) => {
      sse.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${json}\n\n`);
      if (event.type === 'done' || event.type === 'error' || event.type === 'cancelled') sse.end();
    });
    sse.onClose(() => subscription.close());
    subscription.onClosed(() => sse.end());
    if (sse.isClosed) subscription.close();
  }

  @Delete(':id')
  @HttpCode(202)
  async cancel(@TenantId() tenantId: string, @Param('id') id: string) {
    await this.generations.cancel(tenantId, id);
    return { id, object: 'generation', status: 'cancelling' };
  }
}

function parseLastEventId(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const seq = Number(value);
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new ApiError(400, 'invalid_request', `Last-Event-ID must be a non-negative integer seq, got '${value.slice(0, 40)}'`, 'Last-Event-ID');
  }
  return seq;
}
