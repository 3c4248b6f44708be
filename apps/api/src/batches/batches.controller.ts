import { Body, Controller, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { createBatchFromFileSchema } from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { parseOrThrow } from '../common/zod-validation.pipe';
import { TenantId } from '../auth/tenant.decorator';
import { SseStream, sseOptions } from '../sse/sse-stream';
import { BatchesService } from './batches.service';
import { writeJsonl } from './write-jsonl';

/**
 * OpenAI-Batch-shaped batches. Output is JSONL in the order of the input lines
 * (not completion order), streamed from Redis a page at a time.
 */
@Controller('v1/batches')
export class BatchesController {
  constructor(
    private readonly batches: BatchesService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {}

  /** The SDK's way, `{input_file_id, endpoint, completion_window, metadata}`; or the shortcut: the lines themselves (JSONL or a JSON array). */
  @Post()
  @HttpCode(200)
  create(@TenantId() tenantId: string, @Body() body: unknown) {
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) return this.batches.createFromFile(tenantId, parseOrThrow(createBatchFromFileSchema, body));
    const { endpoint, lines } = this.batches.parse(body);
    return this.batches.create(tenantId, lines, { endpoint });
  }

  @Get(':id')
  get(@TenantId() tenantId: string, @Param('id') id: string) {
    return this.batches.require(tenantId, id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  cancel(@TenantId() tenantId: string, @Param('id') id: string) {
    return this.batches.cancel(tenantId, id);
  }

  @Get(':id/output')
  output(@TenantId() tenantId: string, @Param('id') id: string, @Res() response: Response) {
    return this.download(tenantId, id, 'output', response);
  }

  @Get(':id/errors')
  errors(@TenantId() tenantId: string, @Param('id') id: string, @Res() response: Response) {
    return this.download(tenantId, id, 'errors', response);
  }

  /** SSE: `event: progress` with the batch (counts, status) whenever it changes; ends when the batch does. */
  @Get(':id/events')
  async events(@TenantId() tenantId: string, @Param('id') id: string, @Req() request: Request, @Res() response: Response) {
    await this.batches.require(tenantId, id);
    const sse = new SseStream(request, response, sseOptions(this.config));
    const stop = new AbortController();
    sse.onClose(() => stop.abort());
    await this.batches.watch(tenantId, id, (batch) => sse.write(`event: progress\ndata: ${JSON.stringify(batch)}\n\n`), stop.signal).catch(() => undefined);
    sse.end();
  }

  private async download(tenantId: string, id: string, which: 'output' | 'errors', response: Response): Promise<void> {
    await writeJsonl(response, this.batches.results(await this.batches.require(tenantId, id), which));
  }
}
