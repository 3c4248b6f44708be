import type { JobState, Queue } from 'bullmq';
import { BATCH_ITEM_JOB, BATCH_PRIORITY, type BatchItemJob } from '@tokenwire/contracts';
import type { BatchStore } from './batch-store';

/** The job id of a batch item: adding it again while the job exists (or is kept after it ended) changes nothing. */
export const batchItemJobId = (batchId: string, index: number) => `${batchId}-${index}`;

/**
 * Hands a batch's items to the generations queue at batch priority. The store decides which items
 * (at most the batch's concurrency in flight); this adds their jobs. A process that dies between the
 * two leaves items in flight without a job, and the recovery sweep adds them again under the same id.
 */
export class BatchFeeder {
  constructor(
    private readonly store: BatchStore,
    private readonly queue: Queue,
    private readonly options: { attempts: number; keepFailedJobsSeconds: number },
  ) {}

  /** Fills the batch's free slots. Returns how many items were queued. */
  async feed(batchId: string, tenantId: string): Promise<number> {
    const indexes = await this.store.take(batchId);
    await this.enqueue(batchId, tenantId, indexes);
    return indexes.length;
  }

  /** Where the item's job is: a BullMQ state, or `unknown` when there is no such job. */
  async jobState(batchId: string, index: number): Promise<JobState | 'unknown'> {
    return this.queue.getJobState(batchItemJobId(batchId, index));
  }

  /** Adds the jobs of items already in flight (idempotent by job id). */
  async enqueue(batchId: string, tenantId: string, indexes: number[]): Promise<void> {
    if (!indexes.length) return;
    const { attempts, keepFailedJobsSeconds } = this.options;
    await this.queue.addBulk(
      indexes.map((index) => ({
        name: BATCH_ITEM_JOB,
        data: { batchId, index, tenantId } satisfies BatchItemJob,
        opts: {
          jobId: batchItemJobId(batchId, index),
          priority: BATCH_PRIORITY,
          attempts,
          backoff: { type: 'exponential', delay: 500 },
          // A completed item's result lives in the batch, so its job goes at once (a late re-add of it runs
          // and stops at the runner's "already recorded" check). A failed one stays a while: the recovery
          // sweep reads its state to record the item as abandoned.
          removeOnComplete: true,
          removeOnFail: { age: keepFailedJobsSeconds },
        },
      })),
    );
  }
}
