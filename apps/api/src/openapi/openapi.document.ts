import { z } from 'zod';
import {
  deletedResponseSchema,
  responseObjectSchema,
  responseStreamEventSchema,
  responsesRequestSchema,
  anthropicCountTokensRequestSchema,
  anthropicErrorBodySchema,
  anthropicMessageResponseSchema,
  anthropicMessagesRequestSchema,
  anthropicStreamEventSchema,
  anthropicTokenCountSchema,
  apiKeyListSchema,
  batchInputLineSchema,
  batchOutputLineSchema,
  batchObjectSchema,
  createBatchFromFileSchema,
  deletedFileSchema,
  fileListSchema,
  fileObjectSchema,
  uploadFileFormSchema,
  cancelledGenerationSchema,
  chatCompletionChunkSchema,
  chatCompletionRequestSchema,
  chatCompletionSchema,
  createApiKeyRequestSchema,
  createGenerationRequestSchema,
  createdApiKeySchema,
  createdGenerationSchema,
  errorBodySchema,
  generationViewSchema,
  healthSchema,
  modelListSchema,
  modelSchema,
  readinessSchema,
  revokedApiKeySchema,
  deletedTenantSchema,
  streamEventSchema,
  usageReportSchema,
} from '@tokenwire/contracts';

interface Route {
  method: 'get' | 'post' | 'delete';
  path: string;
  summary: string;
  tag: string;
  public?: boolean;
  body?: z.ZodType;
  parameters?: Array<{ name: string; in: 'path' | 'query' | 'header'; description: string; schema?: Record<string, unknown> }>;
  /** A multipart/form-data body (file uploads). */
  multipart?: z.ZodType;
  /** Status → JSON schema, or `sse` with the schema of each event's data. */
  responses: Record<number, { description: string; json?: z.ZodType; sse?: z.ZodType; jsonl?: z.ZodType }>;
}

const id = { name: 'id', in: 'path' as const, description: 'Generation id', schema: { type: 'string' } };
const responseId = { name: 'response_id', in: 'path' as const, description: 'Response id (resp_…)', schema: { type: 'string' } };
const fileId = { name: 'file_id', in: 'path' as const, description: 'File id (file-…)', schema: { type: 'string' } };
const batchId = { name: 'id', in: 'path' as const, description: 'Batch id', schema: { type: 'string' } };
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, { description: ERROR_TEXT[status] ?? 'Error', json: errorBodySchema }]));
/** The same statuses with Anthropic's error body, for the Messages API routes. */
const anthropicErrors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, { description: ERROR_TEXT[status] ?? 'Error', json: anthropicErrorBodySchema }]));
const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid input; the message names the field',
  401: 'Missing, invalid or revoked API key',
  403: 'The key may not do this',
  404: 'Unknown model or id (or another tenant\u2019s)',
  409: 'Already ended',
  413: 'Body too large',
  429: 'Over a tenant limit (see Retry-After)',
  502: 'The upstream failed (the message names its status)',
  504: 'The upstream stalled',
};

/** Every HTTP route, with the contract schemas of its input and output: the one source of the OpenAPI document. */
export const ROUTES: Route[] = [
  {
    method: 'post',
    path: '/v1/chat/completions',
    summary: 'OpenAI chat completions; `stream: true` answers text/event-stream ending with `data: [DONE]`',
    tag: 'OpenAI',
    body: chatCompletionRequestSchema,
    responses: { 200: { description: 'A chat.completion, or with stream: true an SSE of chat.completion.chunk frames', json: chatCompletionSchema, sse: chatCompletionChunkSchema }, ...errors(400, 401, 404, 413, 429, 502, 504) },
  },
  { method: 'get', path: '/v1/models', summary: 'The configured models', tag: 'OpenAI', responses: { 200: { description: 'Models', json: modelListSchema }, ...errors(401) } },
  {
    method: 'get',
    path: '/v1/models/{model}',
    summary: 'One configured model, as OpenAI answers it (ids may contain `/`)',
    tag: 'OpenAI',
    parameters: [{ name: 'model', in: 'path', description: 'Model name', schema: { type: 'string' } }],
    responses: { 200: { description: 'The model', json: modelSchema }, ...errors(401, 404) },
  },
  {
    method: 'post',
    path: '/v1/messages',
    summary: 'Anthropic Messages API; `stream: true` answers text/event-stream with Anthropic\u2019s events (`event:` equals `data.type`). Key as `x-api-key` or Bearer',
    tag: 'Anthropic',
    body: anthropicMessagesRequestSchema,
    parameters: [
      { name: 'anthropic-version', in: 'header', description: 'Accepted, does not change the answer', schema: { type: 'string' } },
      { name: 'anthropic-beta', in: 'header', description: 'Accepted, does not change the answer', schema: { type: 'string' } },
    ],
    responses: {
      200: { description: 'A message, or with stream: true an SSE of Anthropic stream events', json: anthropicMessageResponseSchema, sse: anthropicStreamEventSchema },
      ...anthropicErrors(400, 401, 404, 409, 413, 429, 502, 504),
    },
  },
  {
    method: 'post',
    path: '/v1/messages/count_tokens',
    summary: 'An estimate of the input tokens (4 characters of the messages, system and tools JSON per token), not the model\u2019s tokenizer',
    tag: 'Anthropic',
    body: anthropicCountTokensRequestSchema,
    responses: { 200: { description: 'The estimate', json: anthropicTokenCountSchema }, ...anthropicErrors(400, 401) },
  },
  {
    method: 'post',
    path: '/v1/responses',
    summary:
      'OpenAI Responses API; `stream: true` answers text/event-stream of Responses events numbered by `sequence_number`; `background: true` answers at once (poll, resume or cancel by id)',
    tag: 'OpenAI',
    body: responsesRequestSchema,
    responses: {
      200: { description: 'A response object, or with stream: true an SSE of Responses events', json: responseObjectSchema, sse: responseStreamEventSchema },
      ...errors(400, 401, 404, 409, 413, 429, 504),
    },
  },
  {
    method: 'get',
    path: '/v1/responses/{response_id}',
    summary: 'A stored response, folded from its generation\u2019s event log; `?stream=true` replays its events, after `starting_after` when given',
    tag: 'OpenAI',
    parameters: [
      responseId,
      { name: 'stream', in: 'query', description: '`true`: answer text/event-stream of the response\u2019s events (live until it ends)', schema: { type: 'string', enum: ['true', 'false'] } },
      { name: 'starting_after', in: 'query', description: 'With stream=true: only events with a larger sequence_number', schema: { type: 'integer', minimum: 0 } },
    ],
    responses: { 200: { description: 'The response, or its events', json: responseObjectSchema, sse: responseStreamEventSchema }, ...errors(400, 401, 404) },
  },
  {
    method: 'post',
    path: '/v1/responses/{response_id}/cancel',
    summary: 'Cancel a background response; answers it once it has ended (or after 5 s)',
    tag: 'OpenAI',
    parameters: [responseId],
    responses: { 200: { description: 'The response', json: responseObjectSchema }, ...errors(400, 401, 404) },
  },
  {
    method: 'delete',
    path: '/v1/responses/{response_id}',
    summary: 'Forget a stored response (its generation\u2019s log expires on its own)',
    tag: 'OpenAI',
    parameters: [responseId],
    responses: { 200: { description: 'Deleted', json: deletedResponseSchema }, ...errors(401, 404) },
  },
  {
    method: 'post',
    path: '/v1/generations',
    summary: 'Enqueue a generation',
    tag: 'Generations',
    body: createGenerationRequestSchema,
    responses: { 202: { description: 'Queued', json: createdGenerationSchema }, ...errors(400, 401, 404, 413, 429) },
  },
  { method: 'get', path: '/v1/generations/{id}', summary: 'Status, text so far, usage, error', tag: 'Generations', parameters: [id], responses: { 200: { description: 'The generation', json: generationViewSchema }, ...errors(401, 404) } },
  {
    method: 'get',
    path: '/v1/generations/{id}/events',
    summary: 'The generation\u2019s events as SSE (`id: <seq>`), resuming after Last-Event-ID',
    tag: 'Generations',
    parameters: [
      id,
      { name: 'Last-Event-ID', in: 'header', description: 'Resume after this seq', schema: { type: 'string' } },
      { name: 'lastEventId', in: 'query', description: 'Same, for clients that cannot set headers', schema: { type: 'string' } },
    ],
    responses: { 200: { description: 'SSE; `event:` is the type, `data:` the event', sse: streamEventSchema }, ...errors(400, 401, 404) },
  },
  { method: 'delete', path: '/v1/generations/{id}', summary: 'Cancel', tag: 'Generations', parameters: [id], responses: { 202: { description: 'Cancelling', json: cancelledGenerationSchema }, ...errors(401, 404, 409) } },
  {
    method: 'post',
    path: '/v1/batches',
    summary: 'Submit a batch: `{input_file_id, endpoint, completion_window, metadata}` (a file uploaded to /v1/files), or the lines themselves as JSONL (application/jsonl) or a JSON array',
    tag: 'Batches',
    body: z.union([createBatchFromFileSchema, z.array(batchInputLineSchema)]),
    responses: { 200: { description: 'The batch', json: batchObjectSchema }, ...errors(400, 401, 404, 413) },
  },
  {
    method: 'post',
    path: '/v1/files',
    summary: 'Upload a batch input file (multipart: `file`, `purpose=batch`); the JSONL is validated at upload and the error names the line',
    tag: 'Batches',
    multipart: uploadFileFormSchema,
    responses: { 200: { description: 'The file', json: fileObjectSchema }, ...errors(400, 401, 413) },
  },
  { method: 'get', path: '/v1/files', summary: 'The tenant\u2019s uploaded files, newest first', tag: 'Batches', responses: { 200: { description: 'Files', json: fileListSchema }, ...errors(401) } },
  { method: 'get', path: '/v1/files/{file_id}', summary: 'A file (an upload, or a batch\u2019s output or error file)', tag: 'Batches', parameters: [fileId], responses: { 200: { description: 'The file', json: fileObjectSchema }, ...errors(401, 404) } },
  {
    method: 'get',
    path: '/v1/files/{file_id}/content',
    summary: 'The file\u2019s bytes (for a batch\u2019s output or error file, its result lines in input order)',
    tag: 'Batches',
    parameters: [fileId],
    responses: { 200: { description: 'JSONL: the uploaded batch lines, or the result lines', jsonl: z.union([batchInputLineSchema, batchOutputLineSchema]) }, ...errors(401, 404) },
  },
  { method: 'delete', path: '/v1/files/{file_id}', summary: 'Delete an uploaded file', tag: 'Batches', parameters: [fileId], responses: { 200: { description: 'Deleted', json: deletedFileSchema }, ...errors(400, 401, 404) } },
  { method: 'get', path: '/v1/batches/{id}', summary: 'Status and counts', tag: 'Batches', parameters: [batchId], responses: { 200: { description: 'The batch', json: batchObjectSchema }, ...errors(401, 404) } },
  { method: 'post', path: '/v1/batches/{id}/cancel', summary: 'Cancel the items not yet started', tag: 'Batches', parameters: [batchId], responses: { 200: { description: 'The batch', json: batchObjectSchema }, ...errors(401, 404, 409) } },
  {
    method: 'get',
    path: '/v1/batches/{id}/output',
    summary: 'Successful results as JSONL (application/jsonl), in input order; the schema is that of one line',
    tag: 'Batches',
    parameters: [batchId],
    responses: { 200: { description: 'JSONL', jsonl: batchOutputLineSchema }, ...errors(401, 404) },
  },
  {
    method: 'get',
    path: '/v1/batches/{id}/errors',
    summary: 'Failed items as JSONL, in input order',
    tag: 'Batches',
    parameters: [batchId],
    responses: { 200: { description: 'JSONL', jsonl: batchOutputLineSchema }, ...errors(401, 404) },
  },
  { method: 'get', path: '/v1/batches/{id}/events', summary: 'SSE `event: progress` until the batch ends', tag: 'Batches', parameters: [batchId], responses: { 200: { description: 'SSE of the batch object', sse: batchObjectSchema }, ...errors(401, 404) } },
  { method: 'get', path: '/v1/usage', summary: 'The calling tenant\u2019s usage per model', tag: 'Tenants', responses: { 200: { description: 'Usage', json: usageReportSchema }, ...errors(401) } },
  {
    method: 'post',
    path: '/v1/admin/keys',
    summary: 'Create an API key (operator token, or a tenant admin key for its tenant)',
    tag: 'Tenants',
    body: createApiKeyRequestSchema,
    responses: { 201: { description: 'The key; the secret is shown only here', json: createdApiKeySchema }, ...errors(400, 401, 403, 404) },
  },
  {
    method: 'get',
    path: '/v1/admin/keys',
    summary: 'List keys (never secrets)',
    tag: 'Tenants',
    parameters: [{ name: 'tenantId', in: 'query', description: 'Operator token only: one tenant', schema: { type: 'string' } }],
    responses: { 200: { description: 'Keys', json: apiKeyListSchema }, ...errors(401, 403) },
  },
  {
    method: 'delete',
    path: '/v1/admin/keys/{id}',
    summary: 'Revoke a key',
    tag: 'Tenants',
    parameters: [{ name: 'id', in: 'path', description: 'Key id', schema: { type: 'string' } }],
    responses: { 200: { description: 'Revoked', json: revokedApiKeySchema }, ...errors(401, 403, 404) },
  },
  {
    method: 'delete',
    path: '/v1/admin/tenants/{id}',
    summary: "Delete a tenant (operator token): every key it has is revoked, its open sockets are disconnected",
    tag: 'Tenants',
    parameters: [{ name: 'id', in: 'path', description: 'Tenant id', schema: { type: 'string' } }],
    responses: { 200: { description: 'Deleted', json: deletedTenantSchema }, ...errors(400, 401, 403, 404) },
  },
  { method: 'get', path: '/healthz', summary: 'Liveness', tag: 'Operations', public: true, responses: { 200: { description: 'Alive', json: healthSchema } } },
  {
    method: 'get',
    path: '/readyz',
    summary: 'Readiness: Redis, draining, upstream breakers, fleet deployments',
    tag: 'Operations',
    public: true,
    responses: { 200: { description: 'Ready', json: readinessSchema }, 503: { description: 'Not ready', json: readinessSchema } },
  },
];

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any' });

/** The OpenAPI 3.1 document, generated from ROUTES and the zod contracts. */
export function buildOpenApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      const content: Record<string, unknown> = {};
      if (response.json) content['application/json'] = { schema: jsonSchema(response.json, 'output') };
      // OpenAPI has no event-stream schema: the schema is that of each event's `data:`.
      if (response.sse) content['text/event-stream'] = { schema: jsonSchema(response.sse, 'output') };
      if (response.jsonl) content['application/jsonl'] = { schema: jsonSchema(response.jsonl, 'output') };
      responses[status] = { description: response.description, content };
    }
    (paths[route.path] ??= {})[route.method] = {
      summary: route.summary,
      tags: [route.tag],
      ...(route.public ? { security: [] } : {}),
      ...(route.parameters ? { parameters: route.parameters.map((p) => ({ ...p, required: p.in === 'path' })) } : {}),
      ...(route.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body, 'input') } } } } : {}),
      ...(route.multipart ? { requestBody: { required: true, content: { 'multipart/form-data': { schema: jsonSchema(route.multipart, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tokenwire',
      version,
      description: 'Streaming gateway for LLM generation. Socket.IO (namespace /v1/stream) is described in the README; its typed event maps live in libs/contracts.',
    },
    servers: [{ url: '/' }],
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A Tokenwire API key (when auth is enabled)' } } },
    security: [{ apiKey: [] }],
    paths,
  };
}
