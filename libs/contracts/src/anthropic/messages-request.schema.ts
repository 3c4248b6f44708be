import { z } from 'zod';
import { MAX_MESSAGES } from '../chat/chat-request.schema';

/**
 * Anthropic's Messages API request (`POST /v1/messages`), the shape Claude Code and
 * the Anthropic SDKs send. Unknown fields are stripped, as on the OpenAI route;
 * `cache_control` and `citations` on blocks are accepted and ignored.
 */
const cacheControl = { cache_control: z.unknown().optional() };

export const anthropicTextBlockSchema = z.object({ type: z.literal('text'), text: z.string(), ...cacheControl, citations: z.unknown().optional() });

export const anthropicImageBlockSchema = z.object({
  type: z.literal('image'),
  source: z.discriminatedUnion('type', [
    z.object({ type: z.literal('base64'), media_type: z.enum(['image/jpeg', 'image/png', 'image/gif', 'image/webp']), data: z.string().min(1) }),
    z.object({ type: z.literal('url'), url: z.string().url() }),
  ]),
  ...cacheControl,
});

export const anthropicToolUseBlockSchema = z.object({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
  ...cacheControl,
});

export const anthropicToolResultBlockSchema = z.object({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(z.discriminatedUnion('type', [anthropicTextBlockSchema, anthropicImageBlockSchema]))]).optional(),
  is_error: z.boolean().optional(),
  ...cacheControl,
});

export const anthropicContentBlockSchema = z.discriminatedUnion('type', [
  anthropicTextBlockSchema,
  anthropicImageBlockSchema,
  anthropicToolUseBlockSchema,
  anthropicToolResultBlockSchema,
]);
export type AnthropicContentBlock = z.infer<typeof anthropicContentBlockSchema>;

export const anthropicMessageSchema = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(anthropicContentBlockSchema)]),
});
export type AnthropicMessage = z.infer<typeof anthropicMessageSchema>;

export const anthropicToolSchema = z.object({
  name: z.string().min(1).max(128),
  description: z.string().optional(),
  input_schema: z.record(z.string(), z.unknown()),
  type: z.literal('custom').optional(),
  ...cacheControl,
});

export const anthropicToolChoiceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auto'), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal('any'), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal('tool'), name: z.string().min(1), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal('none') }),
]);

export const anthropicMessagesRequestSchema = z.object({
  model: z.string().min(1, 'model must be a non-empty string'),
  max_tokens: z.number({ message: 'Field required: the most tokens to generate, a positive integer' }).int().positive(),
  messages: z.array(anthropicMessageSchema).min(1, 'messages must contain at least one message').max(MAX_MESSAGES),
  system: z.union([z.string(), z.array(anthropicTextBlockSchema)]).optional(),
  stop_sequences: z.array(z.string()).optional(),
  stream: z.boolean().optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().positive().optional(),
  tools: z.array(anthropicToolSchema).optional(),
  tool_choice: anthropicToolChoiceSchema.optional(),
  metadata: z.object({ user_id: z.string().nullable().optional() }).optional(),
});
export type AnthropicMessagesRequest = z.infer<typeof anthropicMessagesRequestSchema>;

/** `POST /v1/messages/count_tokens`: the request without `max_tokens` and `stream`. */
export const anthropicCountTokensRequestSchema = anthropicMessagesRequestSchema.omit({ max_tokens: true, stream: true, stop_sequences: true, temperature: true, top_p: true, top_k: true, metadata: true });
export type AnthropicCountTokensRequest = z.infer<typeof anthropicCountTokensRequestSchema>;
