import { z } from 'zod';
import { chatMessageSchema, toolSchema } from '../chat/chat-request.schema';

/** Sampling parameters a provider may honour; absent means "upstream default". */
export const generationParamsSchema = z.object({
  temperature: z.number().optional(),
  topP: z.number().optional(),
  maxTokens: z.number().int().positive().optional(),
  stop: z.array(z.string()).optional(),
  presencePenalty: z.number().optional(),
  frequencyPenalty: z.number().optional(),
  seed: z.number().int().optional(),
  tools: z.array(toolSchema).optional(),
  toolChoice: z.unknown().optional(),
});
export type GenerationParams = z.infer<typeof generationParamsSchema>;

/** The payload of a `generate` job on the generations queue. */
export const generationJobSchema = z.object({
  generationId: z.string().min(1),
  tenantId: z.string().min(1),
  model: z.string().min(1),
  messages: z.array(chatMessageSchema).min(1),
  params: generationParamsSchema,
  createdAt: z.number().int(),
  /** The client's session (X-Session-Id, prompt_cache_key, conversation id or user): a fleet keeps it on one replica. */
  routingKey: z.string().max(256).optional(),
});
export type GenerationJob = z.infer<typeof generationJobSchema>;

export const generationStatusSchema = z.enum(['queued', 'running', 'done', 'error', 'cancelled']);
export type GenerationStatus = z.infer<typeof generationStatusSchema>;
