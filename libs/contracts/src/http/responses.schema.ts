import { z } from 'zod';
import { deploymentStatusSchema } from '../routing/deployment-state.schema';
import { errorCodeSchema } from '../errors/error.schema';
import { generationStatusSchema } from '../generations/generation-job.schema';
import { finishReasonSchema, stopSequenceSchema } from '../stream/stream-event.schema';

/**
 * Response bodies of the HTTP api, as schemas: the OpenAPI document is generated
 * from them, and the client parses with them. The api's handlers return these shapes.
 */

/** OpenAI's error body, on every route. */
export const errorBodySchema = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }),
});

export const usageCountsSchema = z.object({
  promptTokens: z.number().int().optional(),
  completionTokens: z.number().int().optional(),
  totalTokens: z.number().int().optional(),
});

export const createdGenerationSchema = z.object({
  id: z.string(),
  object: z.literal('generation'),
  status: z.literal('queued'),
  model: z.string(),
  createdAt: z.number().int(),
});

export const generationViewSchema = z.object({
  id: z.string(),
  object: z.literal('generation'),
  model: z.string(),
  status: generationStatusSchema,
  createdAt: z.number().int(),
  startedAt: z.number().int().optional(),
  finishedAt: z.number().int().optional(),
  /** The display name sent with a Socket.IO `generate` in a conversation. */
  author: z.string().optional(),
  /** The last user message's text (its first 4,000 characters), for the conversation view. */
  prompt: z.string().optional(),
  text: z.string(),
  toolCalls: z.array(z.object({ id: z.string().optional(), type: z.literal('function'), function: z.object({ name: z.string(), arguments: z.string() }) })).optional(),
  finishReason: finishReasonSchema.optional(),
  /** The stop sequence that ended the reply, when the provider said which. */
  stopSequence: stopSequenceSchema.optional(),
  usage: usageCountsSchema.optional(),
  error: z.object({ code: errorCodeSchema, message: z.string(), status: z.number().int().optional(), retryable: z.boolean().optional() }).optional(),
  lastSeq: z.number().int(),
});
export type GenerationView = z.infer<typeof generationViewSchema>;

export const cancelledGenerationSchema = z.object({ id: z.string(), object: z.literal('generation'), status: z.literal('cancelling') });

/** OpenAI's model object (`GET /v1/models/{id}`, and each entry of the list). */
export const modelSchema = z.object({ id: z.string(), object: z.literal('model'), created: z.number().int(), owned_by: z.string() });

export const modelListSchema = z.object({
  object: z.literal('list'),
  data: z.array(modelSchema),
});

const openAIUsageSchema = z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() });

export const chatCompletionSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({
        role: z.literal('assistant'),
        content: z.string().nullable(),
        tool_calls: z.array(z.object({ id: z.string().optional(), type: z.literal('function'), function: z.object({ name: z.string(), arguments: z.string() }) })).optional(),
      }),
      finish_reason: z.string(),
      /** vLLM's extension, present when known: the stop sequence that ended the reply (finish_reason is then "stop"). */
      stop_reason: z.string().optional(),
      logprobs: z.null(),
    }),
  ),
  usage: openAIUsageSchema.optional(),
});

/** One `data:` frame of the OpenAI stream (before `data: [DONE]`). */
export const chatCompletionChunkSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion.chunk'),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(z.object({ index: z.number().int(), delta: z.record(z.string(), z.unknown()), finish_reason: z.string().nullable(), stop_reason: z.string().optional() })),
  usage: openAIUsageSchema.optional(),
});

export const healthSchema = z.object({ status: z.literal('ok') });
export const readinessSchema = z.object({
  status: z.enum(['ok', 'unavailable', 'draining']),
  redis: z.object({ ok: z.boolean(), latencyMs: z.number().optional(), error: z.string().optional() }).optional(),
  upstreams: z.record(z.string(), z.unknown()).optional(),
  /** Per fleet model: each deployment's state and fleet-wide in-flight count. */
  deployments: z.record(z.string(), z.record(z.string(), deploymentStatusSchema)).optional(),
});
