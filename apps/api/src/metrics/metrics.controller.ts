import { InjectQueue } from '@nestjs/bullmq';
import { Controller, Get, Header, Res } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Response } from 'express';
import { GENERATIONS_QUEUE } from '@tokenwire/contracts';
import { TokenwireMetrics } from '@tokenwire/core';
import { Public } from '../auth/public.decorator';

/** Prometheus scrape endpoint of this api process (workers serve their own on `worker.metricsPort`). */
@Public()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: TokenwireMetrics,
    @InjectQueue(GENERATIONS_QUEUE) private readonly queue: Queue,
  ) {}

  @Get()
  @Header('cache-control', 'no-store')
  async scrape(@Res() response: Response): Promise<void> {
    const counts = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
    for (const [state, count] of Object.entries(counts)) this.metrics.queueDepth.set({ state }, count);
    response.type(this.metrics.registry.contentType).send(await this.metrics.registry.metrics());
  }
}
