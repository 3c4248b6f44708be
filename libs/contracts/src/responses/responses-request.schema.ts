import { z } from 'zod';
import { MAX_MESSAGES } from '../chat/chat-request.schema';

/**
 * OpenAI's Responses API request (`POST /v1/responses`), as the `openai` SDK and Codex send it.
 * Unknown fields are stripped; `reasoning`, `text`, `truncation`, `include` and
 * `stream_options` are accepted and do not change the answer.
 */
const inputTextSchema = z.object({ type: z.literal('input_text'), text: z.string() });
const inputImageSchema = z.object({
  type: z.literal('input_image'),
  image_url: z.string({ message: 'input_image needs image_url (file_id is not supported)' }),
  detail: z.enum(['auto', 'low', 'high']).optional(),
});
const outputTextSchema = z.object({ type: z.literal('output_text'), text: z.string(), annotations: z.array(z.unknown()).optional() });
const refusalSchema = z.object({ type: z.literal('refusal'), refusal: z.string() });
export const responsesContentPartSchema = z.discriminatedUnion('type', [inputTextSchema, inputImageSchema, outputTextSchema, refusalSchema]);

export const responsesMessageItemSchema = z.object({
  type: z.literal('message').optional(),
  id: z.string().optional(),
  status: z.string().optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([z.string(), z.array(responsesContentPartSchema)]),
});
export const responsesFunctionCallItemSchema = z.object({
  type: z.literal('function_call'),
  id: z.string().optional(),
  status: z.string().optional(),
  call_id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.string(),
});
export const responsesFunctionCallOutputItemSchema = z.object({
  type: z.literal('function_call_output'),
  id: z.string().optional(),
  status: z.string().optional(),
  call_id: z.string().min(1),
  output: z.union([z.string(), z.array(z.discriminatedUnion('type', [inputTextSchema, inputImageSchema]))]),
});
export const responsesInputItemSchema = z.union([responsesFunctionCallItemSchema, responsesFunctionCallOutputItemSchema, responsesMessageItemSchema], {
  message: 'each input item is a message {role, content}, a function_call {call_id, name, arguments} or a function_call_output {call_id, output}',
});
export type ResponsesInputItem = z.infer<typeof responsesInputItemSchema>;

export const responsesFunctionToolSchema = z.object({
  type: z.literal('function', { message: 'only function tools are supported' }),
  name: z.string().min(1),
  description: z.string().nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  strict: z.boolean().nullable().optional(),
});

export const responsesToolChoiceSchema = z.union([z.enum(['auto', 'none', 'required']), z.object({ type: z.literal('function'), name: z.string().min(1) })]);

export const responsesRequestSchema = z.object({
  model: z.string().min(1, 'model must be a non-empty string'),
  input: z.union([z.string(), z.array(responsesInputItemSchema).min(1, 'input must contain at least one item').max(MAX_MESSAGES)]),
  instructions: z.string().nullable().optional(),
  previous_response_id: z.string().min(1).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  background: z.boolean().nullable().optional(),
  store: z.boolean().nullable().optional(),
  tools: z.array(responsesFunctionToolSchema).optional(),
  tool_choice: responsesToolChoiceSchema.optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  max_output_tokens: z.number().int().positive().nullable().optional(),
  metadata: z.record(z.string(), z.string().max(512)).nullable().optional(),
  user: z.string().optional(),
});
export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;

/** `GET /v1/responses/{id}` query: `stream=true` replays the events, after `starting_after` when given. */
export const responsesRetrieveQuerySchema = z.object({
  stream: z.enum(['true', 'false']).optional(),
  starting_after: z.coerce.number().int().min(0).optional(),
});
