import { z } from 'zod';

/** Anthropic Messages API stream events (`event:` name → `data:` JSON). */
export const anthropicEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message_start'), message: z.object({ usage: z.object({ input_tokens: z.number().int().optional(), output_tokens: z.number().int().optional() }).optional() }) }),
  z.object({
    type: z.literal('content_block_start'),
    index: z.number().int(),
    content_block: z.object({ type: z.string(), id: z.string().optional(), name: z.string().optional(), text: z.string().optional() }),
  }),
  z.object({
    type: z.literal('content_block_delta'),
    index: z.number().int(),
    delta: z.discriminatedUnion('type', [
      z.object({ type: z.literal('text_delta'), text: z.string() }),
      z.object({ type: z.literal('input_json_delta'), partial_json: z.string() }),
      z.object({ type: z.literal('thinking_delta'), thinking: z.string() }),
      z.object({ type: z.literal('signature_delta'), signature: z.string() }),
      z.object({ type: z.literal('citations_delta') }).loose(),
    ]),
  }),
  z.object({ type: z.literal('content_block_stop'), index: z.number().int() }),
  z.object({
    type: z.literal('message_delta'),
    delta: z.object({ stop_reason: z.string().nullish(), stop_sequence: z.string().nullish() }).loose(),
    usage: z.object({ output_tokens: z.number().int().optional(), input_tokens: z.number().int().nullish() }).optional(),
  }),
  z.object({ type: z.literal('message_stop') }),
  z.object({ type: z.literal('ping') }),
  z.object({ type: z.literal('error'), error: z.object({ type: z.string(), message: z.string() }) }),
]);
export type AnthropicEvent = z.infer<typeof anthropicEventSchema>;

/** Event and delta types the provider reads; Anthropic documents that it may add others, which are skipped. */
export const KNOWN_ANTHROPIC_EVENTS: ReadonlySet<string> = new Set(anthropicEventSchema.options.map((option) => option.shape.type.value));
export const KNOWN_ANTHROPIC_DELTAS: ReadonlySet<string> = new Set(['text_delta', 'input_json_delta', 'thinking_delta', 'signature_delta', 'citations_delta']);
