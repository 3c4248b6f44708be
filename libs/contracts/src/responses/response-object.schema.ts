import { z } from 'zod';
import { responsesFunctionToolSchema, responsesToolChoiceSchema } from './responses-request.schema';

/** What the Responses API answers (the `response` object, its output items and stream events). */
export const responseStatusSchema = z.enum(['queued', 'in_progress', 'completed', 'failed', 'cancelled', 'incomplete']);
export type ResponseStatus = z.infer<typeof responseStatusSchema>;

const itemStatusSchema = z.enum(['in_progress', 'completed', 'incomplete']);
export const responseOutputTextSchema = z.object({ type: z.literal('output_text'), text: z.string(), annotations: z.array(z.unknown()), logprobs: z.array(z.unknown()) });
export const responseOutputMessageSchema = z.object({
  type: z.literal('message'),
  id: z.string(),
  status: itemStatusSchema,
  role: z.literal('assistant'),
  content: z.array(responseOutputTextSchema),
});
export const responseFunctionCallSchema = z.object({
  type: z.literal('function_call'),
  id: z.string(),
  call_id: z.string(),
  name: z.string(),
  arguments: z.string(),
  status: itemStatusSchema,
});
export const responseOutputItemSchema = z.discriminatedUnion('type', [responseOutputMessageSchema, responseFunctionCallSchema]);
export type ResponseOutputItem = z.infer<typeof responseOutputItemSchema>;

export const responseUsageSchema = z.object({
  input_tokens: z.number().int(),
  input_tokens_details: z.object({ cached_tokens: z.number().int() }),
  output_tokens: z.number().int(),
  output_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
  total_tokens: z.number().int(),
});

export const responseObjectSchema = z.object({
  id: z.string(),
  object: z.literal('response'),
  created_at: z.number().int(),
  status: responseStatusSchema,
  background: z.boolean(),
  store: z.boolean(),
  model: z.string(),
  instructions: z.string().nullable(),
  previous_response_id: z.string().nullable(),
  output: z.array(responseOutputItemSchema),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  incomplete_details: z.object({ reason: z.enum(['max_output_tokens', 'content_filter']) }).nullable(),
  usage: responseUsageSchema.nullable(),
  tools: z.array(responsesFunctionToolSchema),
  tool_choice: responsesToolChoiceSchema,
  parallel_tool_calls: z.boolean(),
  temperature: z.number().nullable(),
  top_p: z.number().nullable(),
  max_output_tokens: z.number().int().nullable(),
  metadata: z.record(z.string(), z.string()),
  text: z.object({ format: z.object({ type: z.literal('text') }) }),
  truncation: z.literal('disabled'),
});
export type ResponseObject = z.infer<typeof responseObjectSchema>;

const seq = { sequence_number: z.number().int().min(0) };
const at = { output_index: z.number().int(), item_id: z.string() };
const outputText = { ...at, content_index: z.number().int() };

/** The `data:` of each event of a Responses stream; the SSE `event:` name equals `type`. */
export const responseStreamEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('response.created'), response: responseObjectSchema, ...seq }),
  z.object({ type: z.literal('response.in_progress'), response: responseObjectSchema, ...seq }),
  z.object({ type: z.literal('response.output_item.added'), output_index: z.number().int(), item: responseOutputItemSchema, ...seq }),
  z.object({ type: z.literal('response.content_part.added'), ...outputText, part: responseOutputTextSchema, ...seq }),
  z.object({ type: z.literal('response.output_text.delta'), ...outputText, delta: z.string(), logprobs: z.array(z.unknown()), ...seq }),
  z.object({ type: z.literal('response.output_text.done'), ...outputText, text: z.string(), logprobs: z.array(z.unknown()), ...seq }),
  z.object({ type: z.literal('response.content_part.done'), ...outputText, part: responseOutputTextSchema, ...seq }),
  z.object({ type: z.literal('response.function_call_arguments.delta'), ...at, delta: z.string(), ...seq }),
  z.object({ type: z.literal('response.function_call_arguments.done'), ...at, name: z.string(), arguments: z.string(), ...seq }),
  z.object({ type: z.literal('response.output_item.done'), output_index: z.number().int(), item: responseOutputItemSchema, ...seq }),
  z.object({ type: z.literal('response.completed'), response: responseObjectSchema, ...seq }),
  z.object({ type: z.literal('response.incomplete'), response: responseObjectSchema, ...seq }),
  z.object({ type: z.literal('response.failed'), response: responseObjectSchema, ...seq }),
]);
export type ResponseStreamEvent = z.infer<typeof responseStreamEventSchema>;

/** `DELETE /v1/responses/{id}`. */
export const deletedResponseSchema = z.object({ id: z.string(), object: z.literal('response'), deleted: z.literal(true) });
