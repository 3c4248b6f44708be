import { z } from 'zod';
import { chatCompletionRequestSchema } from '../chat/chat-request.schema';
import { errorCodeSchema } from '../errors/error.schema';

/** One line of a batch input (OpenAI's batch line: `method` and `url` optional, the chat request in `body`). */
export const batchInputLineSchema = z.object({
  custom_id: z.string().min(1).max(256),
  method: z.literal('POST').optional(),
  url: z.literal('/v1/chat/completions').optional(),
  body: chatCompletionRequestSchema.extend({ stream: z.literal(false).optional() }),
});
export type BatchInputLine = z.infer<typeof batchInputLineSchema>;

export const batchStatusSchema = z.enum(['in_progress', 'cancelling', 'completed', 'cancelled']);
export type BatchStatus = z.infer<typeof batchStatusSchema>;

export const batchCountsSchema = z.object({
  total: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
});
export type BatchCounts = z.infer<typeof batchCountsSchema>;

/** `GET /v1/batches/:id`, and every progress event. */
export const batchSchema = z.object({
  id: z.string(),
  object: z.literal('batch'),
  status: batchStatusSchema,
  request_counts: batchCountsSchema,
  created_at: z.number().int(),
  finished_at: z.number().int().optional(),
});
export type Batch = z.infer<typeof batchSchema>;

/** One line of `GET /v1/batches/:id/output` (or `/errors`). */
export const batchOutputLineSchema = z.object({
  id: z.string(),
  custom_id: z.string(),
  response: z.object({ status_code: z.number().int(), body: z.record(z.string(), z.unknown()) }).nullable(),
  error: z.object({ code: errorCodeSchema, message: z.string() }).nullable(),
});
export type BatchOutputLine = z.infer<typeof batchOutputLineSchema>;

/** Payload of a `batch-item` job. */
export const batchItemJobSchema = z.object({
  batchId: z.string().min(1),
  index: z.number().int().min(0),
  tenantId: z.string().min(1),
});
export type BatchItemJob = z.infer<typeof batchItemJobSchema>;

export const subscribeBatchRequestSchema = z.object({ batchId: z.string().min(1) });
