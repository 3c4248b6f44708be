import { z } from 'zod';

/** What `POST /v1/messages` answers, in Anthropic's shapes (used for the OpenAPI document and its tests). */
const stopReasonSchema = z.enum(['end_turn', 'max_tokens', 'stop_sequence', 'tool_use', 'refusal']);

const responseTextBlockSchema = z.object({ type: z.literal('text'), text: z.string() });
const responseToolUseBlockSchema = z.object({ type: z.literal('tool_use'), id: z.string(), name: z.string(), input: z.record(z.string(), z.unknown()) });
const responseBlockSchema = z.discriminatedUnion('type', [responseTextBlockSchema, responseToolUseBlockSchema]);

export const anthropicUsageSchema = z.object({ input_tokens: z.number().int(), output_tokens: z.number().int() });

export const anthropicMessageResponseSchema = z.object({
  id: z.string(),
  type: z.literal('message'),
  role: z.literal('assistant'),
  model: z.string(),
  content: z.array(responseBlockSchema),
  stop_reason: stopReasonSchema.nullable(),
  stop_sequence: z.string().nullable(),
  usage: anthropicUsageSchema,
});
export type AnthropicMessageResponse = z.infer<typeof anthropicMessageResponseSchema>;

export const anthropicErrorTypeSchema = z.enum([
  'invalid_request_error',
  'authentication_error',
  'permission_error',
  'not_found_error',
  'request_too_large',
  'rate_limit_error',
  'api_error',
  'timeout_error',
  'overloaded_error',
]);

/** Anthropic's error body (also the `data` of a stream's `event: error`). */
export const anthropicErrorBodySchema = z.object({
  type: z.literal('error'),
  error: z.object({ type: anthropicErrorTypeSchema, message: z.string() }),
});
export type AnthropicErrorBody = z.infer<typeof anthropicErrorBodySchema>;

/** The `data:` of each event of a `stream: true` answer; the SSE `event:` name equals `type`. */
export const anthropicStreamEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message_start'), message: anthropicMessageResponseSchema.extend({ stop_reason: z.null() }) }),
  z.object({ type: z.literal('content_block_start'), index: z.number().int(), content_block: responseBlockSchema }),
  z.object({ type: z.literal('ping') }),
  z.object({
    type: z.literal('content_block_delta'),
    index: z.number().int(),
    delta: z.discriminatedUnion('type', [
      z.object({ type: z.literal('text_delta'), text: z.string() }),
      z.object({ type: z.literal('input_json_delta'), partial_json: z.string() }),
    ]),
  }),
  z.object({ type: z.literal('content_block_stop'), index: z.number().int() }),
  z.object({
    type: z.literal('message_delta'),
    delta: z.object({ stop_reason: stopReasonSchema, stop_sequence: z.string().nullable() }),
    usage: z.object({ output_tokens: z.number().int(), input_tokens: z.number().int().optional() }),
  }),
  z.object({ type: z.literal('message_stop') }),
  anthropicErrorBodySchema,
]);
export type AnthropicStreamEvent = z.infer<typeof anthropicStreamEventSchema>;

/** `POST /v1/messages/count_tokens`. */
export const anthropicTokenCountSchema = z.object({ input_tokens: z.number().int() });
