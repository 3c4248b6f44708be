import { z } from 'zod';

/** Stable error codes: they cross Redis, sockets and HTTP, so clients may switch on them. */
export const errorCodeSchema = z.enum([
  'invalid_request',
  'model_not_found',
  'not_found',
  'conflict',
  /** A cancel of a generation (or batch) that had already ended: HTTP 409, a socket ack error. */
  'already_ended',
  /** A socket event the server does not know (answered through its ack). */
  'unknown_event',
  /** A socket frame over the server's size limit (`api.socketMaxBytes`). */
  'payload_too_large',
  'rate_limited',
  'unauthorized',
  'upstream_connect_failed',
  'upstream_http_error',
  'upstream_error',
  'upstream_protocol_error',
  'upstream_stalled',
  'upstream_closed',
  'internal_error',
  /** A resume asked for events that were trimmed (`generations.maxEvents`) or expired (HTTP 410). */
  'stream_expired',
  /** A streaming client owed more than `api.maxBufferedBytes`, or read nothing of a replay page in time. */
  'slow_consumer',
  /** The generation's owner died (api or worker) before it ended; the reaper ended it. A batch item whose job ended without a result (its worker died twice under it). */
  'abandoned',
  /**
   * The generation's state is gone from Redis (meta and terminal marker both missing: a failover whose
   * promoted replica lacked the data, an eviction, a flush) before it ended: it cannot end or be resumed.
   * The api ends its live readers with it (an error event it makes for each); submit the request again.
   */
  'generation_lost',
  /** A batch item that had not started when its batch was cancelled. */
  'cancelled',
]);
export type ErrorCode = z.infer<typeof errorCodeSchema>;

/** The one JSON shape of an error, in Redis, on sockets and inside HTTP error bodies. */
export const gatewayErrorSchema = z.object({
  code: errorCodeSchema,
  message: z.string(),
  status: z.number().int().optional(),
  retryable: z.boolean().optional(),
  param: z.string().optional(),
  /** For upstream errors: the upstream's own error code and type (OpenAI's `error.code`, `error.type`), as it sent them. */
  upstreamCode: z.string().optional(),
  upstreamType: z.string().optional(),
});
export type GatewayError = z.infer<typeof gatewayErrorSchema>;

/** OpenAI's error body, used on the OpenAI-compatible routes. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}
