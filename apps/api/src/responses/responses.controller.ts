import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { responsesRequestSchema, responsesRetrieveQuerySchema, type ResponsesRequest } from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG, type GenerationMeta, type TokenwireConfig } from '@tokenwire/core';
import { TenantId } from '../auth/tenant.decorator';
import { ApiError } from '../common/api-error';
import { ZodValidationPipe, parseOrThrow } from '../common/zod-validation.pipe';
import { GenerationReaderService } from '../generations/generation-reader.service';
import { SseStream, sseOptions } from '../sse/sse-stream';
import { ResponseEventFormatter, responseFrame } from './response-event-formatter';
import { ResponsesService } from './responses.service';
import type { StoredResponse } from './stored-response';

/**
 * OpenAI's Responses API (`/v1/responses`), a view over one generation. Background mode is the
 * job API in Responses' words: `background: true` answers at once, `GET` polls, `GET ?stream=true`
 * replays the event log (after `starting_after`), `POST …/cancel` cancels. A foreground client
 * that goes away cancels its generation (unless someone else reads it); a background one does not.
 */
@Controller('v1/responses')
export class ResponsesController {
  constructor(
    private readonly responses: ResponsesService,
    private readonly reader: GenerationReaderService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  @Post()
  @HttpCode(200)
  async create(
    @TenantId() tenantId: string,
    @Body(new ZodValidationPipe(responsesRequestSchema)) body: ResponsesRequest,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    const record = await this.responses.create(tenantId, body, response);
    if (body.stream) await this.stream(record, -1, request, response);
    else if (record.background) response.json(new ResponseEventFormatter(record, 'queued').snapshot());
    else await this.complete(record, response);
  }

  @Get(':id')
  async retrieve(@TenantId() tenantId: string, @Param('id') id: string, @Query() query: unknown, @Req() request: Request, @Res() response: Response): Promise<void> {
    const { stream, starting_after } = parseOrThrow(responsesRetrieveQuerySchema, query);
    const { record, meta } = await this.responses.require(tenantId, id);
    if (stream !== 'true') {
      response.json(await this.responses.view(record, meta));
      return;
    }
    const startingAfter = starting_after ?? -1;
    const lastSequence = await this.lastSequenceIfEnded(record, meta);
    if (lastSequence !== undefined && startingAfter > lastSequence) {
      throw new ApiError(400, 'invalid_request', `starting_after: this response's last event is ${lastSequence}`, 'starting_after');
    }
    await this.stream(record, startingAfter, request, response);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  cancel(@TenantId() tenantId: string, @Param('id') id: string) {
    return this.responses.cancel(tenantId, id);
  }

  @Delete(':id')
  delete(@TenantId() tenantId: string, @Param('id') id: string) {
    return this.responses.delete(tenantId, id);
  }

  /** Streams the response's events numbered above `startingAfter`, from the start of its generation's log. */
  private async stream(record: StoredResponse, startingAfter: number, request: Request, response: Response): Promise<void> {
    const sse = new SseStream(request, response, sseOptions(this.config));
    const format = new ResponseEventFormatter(record);
    const write = (events: ReturnType<ResponseEventFormatter['start']>) => {
      for (const event of events) if (event.sequence_number > startingAfter) sse.write(responseFrame(event));
    };
    write(format.start());
    const subscription = await this.reader.follow(
      record.generationId,
      0,
      (event) => {
        write(format.event(event));
        if (format.isEnded) sse.end();
      },
      response,
      { cancelOnLeave: !record.background },
    );
    subscription.onClosed(() => sse.end());
  }

  private async complete(record: StoredResponse, response: Response): Promise<void> {
    const events = await this.reader.collect(record.generationId, response);
    if (!events) return;
    const format = new ResponseEventFormatter(record);
    format.start();
    for (const event of events) format.event(event);
    response.json(format.snapshot());
  }

  /** The last sequence number of a response that has ended, else undefined. */
  private async lastSequenceIfEnded(record: StoredResponse, meta: GenerationMeta): Promise<number | undefined> {
    const view = await this.responses.view(record, meta);
    if (view.status === 'queued' || view.status === 'in_progress') return undefined;
    return this.responses.lastSequence(record);
  }
}
