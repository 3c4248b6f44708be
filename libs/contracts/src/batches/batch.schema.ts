import { z } from 'zod';
import { chatCompletionRequestSchema } from '../chat/chat-request.schema';
import { errorCodeSchema } from '../errors/error.schema';
import { anthropicMessagesRequestSchema } from '../anthropic/messages-request.schema';
import { responsesRequestSchema } from '../responses/responses-request.schema';

/** The inbound APIs a batch line may speak; a batch's lines all speak its `endpoint`. */
export const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/responses', '/v1/messages'] as const;
export const batchEndpointSchema = z.enum(BATCH_ENDPOINTS, { message: `endpoint: one of ${BATCH_ENDPOINTS.map((e) => `"${e}"`).join(', ')}` });
export type BatchEndpoint = z.infer<typeof batchEndpointSchema>;

/** One line of a batch input (OpenAI's batch line: `method` and `url` optional, the chat request in `body`). */
export const batchInputLineSchema = z.object({
  custom_id: z.string().min(1).max(256),
  method: z.literal('POST').optional(),
  url: z.literal('/v1/chat/completions').optional(),
  body: chatCompletionRequestSchema.extend({ stream: z.literal(false).optional() }),
});
export type BatchInputLine = z.infer<typeof batchInputLineSchema>;

/** A line of a `/v1/responses` batch: one request, no streaming, background or conversation. */
export const responsesBatchLineSchema = z.object({
  custom_id: z.string().min(1).max(256),
  method: z.literal('POST').optional(),
  url: z.literal('/v1/responses'),
  body: responsesRequestSchema.extend({
    stream: z.literal(false, { message: 'batch lines do not stream' }).nullable().optional(),
    background: z.literal(false, { message: 'a batch line is background already' }).nullable().optional(),
    previous_response_id: z.null({ message: 'batch lines cannot continue a conversation (previous_response_id)' }).optional(),
  }),
});

/** A line of a `/v1/messages` batch (Anthropic Messages). */
export const messagesBatchLineSchema = z.object({
  custom_id: z.string().min(1).max(256),
  method: z.literal('POST').optional(),
  url: z.literal('/v1/messages'),
  body: anthropicMessagesRequestSchema.extend({ stream: z.literal(false, { message: 'batch lines do not stream' }).optional() }),
});

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

/** `POST /v1/batches` the SDK's way: a file uploaded to `/v1/files` with purpose `batch`. */
export const createBatchFromFileSchema = z.object({
  input_file_id: z.string().min(1),
  endpoint: batchEndpointSchema,
  completion_window: z.literal('24h', { message: 'completion_window: only "24h" is supported' }),
  metadata: z.record(z.string(), z.string().max(512)).nullable().optional(),
});
export type CreateBatchFromFile = z.infer<typeof createBatchFromFileSchema>;

/**
 * The batch as the API answers it: the stored state plus every field the `openai` SDK reads.
 * `output_file_id` / `error_file_id` are set once the batch has ended (the files are views of its results).
 */
export const batchObjectSchema = batchSchema.extend({
  endpoint: z.string(),
  input_file_id: z.string().nullable(),
  completion_window: z.string(),
  output_file_id: z.string().nullable(),
  error_file_id: z.string().nullable(),
  errors: z.null(),
  metadata: z.record(z.string(), z.string()).nullable(),
  in_progress_at: z.number().int().nullable(),
  expires_at: z.number().int().nullable(),
  finalizing_at: z.number().int().nullable(),
  completed_at: z.number().int().nullable(),
  failed_at: z.number().int().nullable(),
  expired_at: z.number().int().nullable(),
  cancelling_at: z.number().int().nullable(),
  cancelled_at: z.number().int().nullable(),
});
export type BatchObject = z.infer<typeof batchObjectSchema>;

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
