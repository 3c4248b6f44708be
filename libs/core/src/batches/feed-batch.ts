import type { Queue } from 'bullmq';
import { BATCH_ITEM_JOB, BATCH_PRIORITY, type BatchItemJob } from '@tokenwire/contracts';
import type { BatchStore } from './batch-store';

/**
 * Moves up to `count` items of a batch from its pending list onto the generations queue,
 * at batch priority. Called with the batch's concurrency when it is created, and with 1
 * each time an item ends, so at most `concurrency` items of a batch are ever queued or running.
 */
export async function feedBatch(store: BatchStore, queue: Queue, batchId: string, tenantId: string, count: number, attempts: number): Promise<number> {
  const indexes = await store.takePending(batchId, count);
  if (!indexes.length) return 0;
  await queue.addBulk(
    indexes.map((index) => ({
      name: BATCH_ITEM_JOB,
      data: { batchId, index, tenantId } satisfies BatchItemJob,
      opts: { jobId: `${batchId}-${index}`, priority: BATCH_PRIORITY, attempts, backoff: { type: 'exponential', delay: 500 } },
    })),
  );
  return indexes.length;
}
