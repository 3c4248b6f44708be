import type { AnthropicErrorBody, ErrorCode, GatewayError, OpenAIErrorBody } from '@tokenwire/contracts';

/** A client-facing error: an HTTP status plus the gateway's error shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly param?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toGatewayError(): GatewayError {
    return { code: this.code, message: this.message, status: this.status, ...(this.param ? { param: this.param } : {}) };
  }
}

const OPENAI_ERROR_TYPES: Partial<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'invalid_request_error',
  409: 'invalid_request_error',
  410: 'invalid_request_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
};

/** OpenAI's error body, so OpenAI SDKs raise their usual typed errors. */
export function openAIErrorBody(status: number, code: string, message: string, param?: string): OpenAIErrorBody {
  return {
    error: { message, type: OPENAI_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), param: param ?? null, code },
  };
}

/** Longest client-sent value echoed into an error message. */
const MAX_ECHO = 64;

/** A client-sent value for an error message, quoted and cut short: a 100 KB model name must not come back as a 100 KB error. */
export function echo(value: string): string {
  return value.length <= MAX_ECHO ? `'${value}'` : `'${value.slice(0, MAX_ECHO)}…' (${value.length} characters)`;
}

/** What a JSON value is, for "expected a JSON object, got …". */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The HTTP status a generation's error answers with, on every inbound API. */
export function httpStatusForError(error: GatewayError): number {
  switch (error.code) {
    case 'upstream_http_error':
      // The upstream's own status (for gRPC, the HTTP status of its code), so the SDK raises the same class.
      return error.status !== undefined && error.status >= 400 && error.status <= 599 ? error.status : 502;
    case 'invalid_request':
      return 400;
    case 'unauthorized':
      return 401;
    case 'not_found':
    case 'model_not_found':
      return 404;
    case 'conflict':
      return 409;
    case 'rate_limited':
      return 429;
    case 'upstream_stalled':
      return 504;
    default:
      return 502;
  }
}

const ANTHROPIC_ERROR_TYPES: Partial<Record<number, AnthropicErrorBody['error']['type']>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'invalid_request_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** Anthropic's error body, so Anthropic SDKs raise their usual typed errors (keyed on the status). */
export function anthropicErrorBody(status: number, message: string): AnthropicErrorBody {
  return { type: 'error', error: { type: ANTHROPIC_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'), message } };
}

/** The routes that answer errors in Anthropic's shape (the Messages API). */
export function speaksAnthropic(path: string): boolean {
  return path === '/v1/messages' || path.startsWith('/v1/messages/');
}
