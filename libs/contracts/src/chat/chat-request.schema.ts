import { z } from 'zod';

/**
 * OpenAI chat-completions request, the shape every client speaks.
 * Unknown top-level fields are stripped (not rejected) so newer SDKs that add
 * optional fields keep working; every known field is validated.
 */
const textPartSchema = z.object({ type: z.literal('text'), text: z.string() });
const imagePartSchema = z.object({
  type: z.literal('image_url'),
  image_url: z.object({ url: z.string(), detail: z.enum(['auto', 'low', 'high']).optional() }),
});
export const contentPartSchema = z.discriminatedUnion('type', [textPartSchema, imagePartSchema], {
  error: 'expected {"type": "text", "text": "…"} or {"type": "image_url", "image_url": {"url": "…"}}',
});

export const toolCallSchema = z.object({
  id: z.string(),
  type: z.literal('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

/** Content of every role but `user`: the messages say which shapes are accepted, not just "Invalid input". */
const textContentSchema = z.union([z.string(), z.array(textPartSchema)], {
  error: 'expected a string or an array of text parts [{"type": "text", "text": "…"}]',
});
const userContentSchema = z.union([z.string(), z.array(contentPartSchema)], {
  error: 'expected a string or an array of content parts: {"type": "text", "text": "…"} or {"type": "image_url", "image_url": {"url": "…"}}',
});

export const chatMessageSchema = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: textContentSchema, name: z.string().optional() }),
  z.object({ role: z.literal('developer'), content: textContentSchema, name: z.string().optional() }),
  z.object({ role: z.literal('user'), content: userContentSchema, name: z.string().optional() }),
  z.object({
    role: z.literal('assistant'),
    content: textContentSchema.nullable().optional(),
    name: z.string().optional(),
    tool_calls: z.array(toolCallSchema).optional(),
  }),
  z.object({ role: z.literal('tool'), content: textContentSchema, tool_call_id: z.string() }),
]);
export type ChatMessage = z.infer<typeof chatMessageSchema>;

export const toolSchema = z.object({
  type: z.literal('function'),
  function: z.object({
    name: z.string().min(1),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

export const MAX_MESSAGES = 1000;

export const chatCompletionRequestSchema = z.object({
  model: z.string().min(1, 'model must be a non-empty string'),
  messages: z.array(chatMessageSchema).min(1, 'messages must contain at least one message').max(MAX_MESSAGES),
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  max_tokens: z.number().int().positive().nullable().optional(),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  stop: z.union([z.string(), z.array(z.string()).max(4)], { error: 'expected a string or an array of at most 4 strings' }).nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  seed: z.number().int().nullable().optional(),
  n: z.literal(1, { message: 'only n=1 is supported' }).nullable().optional(),
  user: z.string().optional(),
  /** Groups requests that share a prompt prefix; a fleet model routes them to one replica. */
  prompt_cache_key: z.string().max(256).optional(),
  tools: z.array(toolSchema).optional(),
  tool_choice: z.unknown().optional(),
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;
