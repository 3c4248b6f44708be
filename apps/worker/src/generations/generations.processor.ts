import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { BATCH_ITEM_JOB, GENERATE_JOB, GENERATIONS_QUEUE, batchItemJobSchema, generationJobSchema, type GenerationJob, type RedisKeys } from '@tokenwire/contracts';
import { GenerationFinisher, LOGGER, REDIS_KEYS, TOKENWIRE_CONFIG, bullConnection, closeBullConnection, type Logger, type TokenwireConfig } from '@tokenwire/core';
import { GenerationRunnerService, HAND_BACK, LOST_LOCK } from './generation-runner.service';
import { BatchItemRunnerService } from '../batches/batch-item-runner.service';

/** Job name → handler. A job name without exactly one handler refuses to start. */
const HANDLED_JOBS = [GENERATE_JOB, BATCH_ITEM_JOB] as const;

/**
 * The generations queue consumer. It owns its BullMQ Worker (rather than
 * @nestjs/bullmq's @Processor) because lock, stall and shutdown settings come
 * from the runtime config, and SIGTERM needs a bounded drain followed by a hand-back.
 */
@Injectable()
export class GenerationsProcessor implements OnApplicationBootstrap, OnApplicationShutdown {
  private worker?: Worker;
  private connection!: ReturnType<typeof bullConnection>;

  constructor(
    private readonly runner: GenerationRunnerService,
    private readonly batchItems: BatchItemRunnerService,
    private readonly finisher: GenerationFinisher,
    @Inject(TOKENWIRE_CONFIG) private readonly config: TokenwireConfig,
    @Inject(REDIS_KEYS) private readonly keys: RedisKeys,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    if (new Set(HANDLED_JOBS).size !== HANDLED_JOBS.length) throw new Error('a job name has more than one handler');
    const { concurrency, lockDurationMs, stalledIntervalMs } = this.config.worker;
    this.connection = bullConnection(this.config.redis);
    this.worker = new Worker(GENERATIONS_QUEUE, (job, token, signal) => this.process(job, token, signal), {
      connection: this.connection,
      prefix: this.keys.bullPrefix(),
      concurrency,
      lockDuration: lockDurationMs,
      stalledInterval: stalledIntervalMs,
      // One recovery after a crash; a job that stalls twice fails (and gets its error event).
      maxStalledCount: 1,
    });
    this.worker.on('failed', (job, error) => {
      this.onFailed(job, error).catch((e: unknown) => this.logger.error({ err: e, jobId: job?.id }, 'cannot end a failed job'));
    });
    this.worker.on('error', (error) => this.logger.error({ err: error }, 'queue worker error'));
    // BullMQ keeps running a job whose lock it could not renew (a paused or overloaded process);
    // another worker may already have it, so this run stops its upstream call and writes nothing more.
    this.worker.on('lockRenewalFailed', (jobIds) => {
      for (const jobId of jobIds) {
        this.logger.warn({ jobId }, 'lost the lock of a running job; stopping it');
        this.worker?.cancelJob(jobId, LOST_LOCK);
      }
    });
  }

  /** Cancels the job if this worker runs it. */
  cancel(jobId: string, reason: string): boolean {
    return this.worker?.cancelJob(jobId, reason) ?? false;
  }

  async onApplicationShutdown(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    const drained = worker.close().then(() => true);
    const grace = sleep(this.config.worker.shutdownGraceMs, false, { ref: false });
    if (!(await Promise.race([drained, grace]))) {
      // Still running after the grace period: abort them and put them back on the queue for another worker.
      this.logger.warn('shutdown grace period over; handing running generations back to the queue');
      worker.cancelAllJobs(HAND_BACK);
      await drained;
    }
    await closeBullConnection(this.connection);
  }

  private async process(job: Job, token: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (job.name === BATCH_ITEM_JOB) {
      const item = batchItemJobSchema.safeParse(job.data);
      if (!item.success) throw new UnrecoverableError(`job ${job.id} has an invalid payload: ${item.error.message}`);
      return this.batchItems.run(job, item.data, signal ?? new AbortController().signal);
    }
    if (job.name !== GENERATE_JOB) throw new UnrecoverableError(`no handler for job name "${job.name}"`);
    const parsed = generationJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`job ${job.id} has an invalid payload: ${parsed.error.message}`);
    const outcome = await this.runner.run(parsed.data, signal ?? new AbortController().signal);
    if (outcome === 'handed-back') {
      await job.moveToWait(token);
      throw new WaitingError();
    }
  }

  /** A job that failed outside the runner (stalled twice, Redis trouble) still ends with one event. */
  private async onFailed(job: Job | undefined, error: Error): Promise<void> {
    // A batch item records its own failure; one that fails outside its runner is recorded by the batch recovery sweep.
    if (!job?.id || job.name !== GENERATE_JOB) return;
    this.logger.error({ jobId: job.id, err: error.message }, 'generation job failed');
    const data = job.data as Partial<GenerationJob>;
    await this.finisher
      .finish(
        { id: job.id, tenantId: data.tenantId ?? 'unknown', model: data.model ?? 'unknown' },
        { type: 'error', code: 'internal_error', message: `the generation failed: ${error.message}` },
      )
      .catch((e: unknown) => this.logger.error({ err: e, jobId: job.id }, 'cannot write the terminal event of a failed job'));
  }
}
