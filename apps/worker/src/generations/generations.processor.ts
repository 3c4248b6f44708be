import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, type OnApplicationBootstrap } from '@nestjs/common';
import { UnrecoverableError, type Job } from 'bullmq';
import { GENERATIONS_QUEUE, generationJobSchema } from '@tokenwire/contracts';
import { TOKENWIRE_CONFIG, type TokenwireConfig } from '@tokenwire/core';
import { GenerationRunnerService } from './generation-runner.service';

/** Consumes the generations queue: parse the job, run it, return. */
@Processor(GENERATIONS_QUEUE)
export class GenerationsProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly runner: GenerationRunnerService,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.worker.concurrency;
  }

  async process(job: Job, _token?: string, signal?: AbortSignal): Promise<void> {
    const parsed = generationJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`job ${job.id} has an invalid payload: ${parsed.error.message}`);
    await this.runner.run(parsed.data, signal ?? new AbortController().signal);
  }
}
