import type { ErrorCode, GatewayError } from '@tokenwire/contracts';

/** What an upstream said about its own failure, in its own terms (OpenAI's `error.code`, `type`, `param`). */
export interface UpstreamErrorDetails {
  code?: string;
  type?: string;
  param?: string;
  message?: string;
}

/** Upstream failures, each with a stable code and whether a retry may help. */
export abstract class UpstreamError extends Error {
  abstract readonly code: ErrorCode;
  abstract readonly retryable: boolean;
  readonly status?: number;
  /** The upstream's own error code, type and parameter, when it gave them. */
  readonly upstream?: UpstreamErrorDetails;

  /** The one serialised shape (contracts' GatewayError), as it crosses Redis and sockets. */
  toGatewayError(): GatewayError {
    const u = this.upstream;
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.status !== undefined ? { status: this.status } : {}),
      ...(u?.code ? { upstreamCode: u.code } : {}),
      ...(u?.type ? { upstreamType: u.type } : {}),
      ...(u?.param ? { param: u.param } : {}),
    };
  }
}

export class UpstreamConnectError extends UpstreamError {
  readonly code = 'upstream_connect_failed' as const;
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamConnectError';
  }
}

export class UpstreamHttpError extends UpstreamError {
  readonly code = 'upstream_http_error' as const;
  override readonly status: number;
  override readonly upstream?: UpstreamErrorDetails;
  readonly retryAfterMs?: number;
  readonly body: string;
  readonly retryable: boolean;
  /**
   * `status` is the upstream's HTTP status (for gRPC, the HTTP status gRPC maps its code to).
   * `retryable` defaults to the AI SDK's APICallError.isRetryable: timeouts, conflicts, rate limits, server errors.
   */
  constructor(status: number, body: string, retryAfterMs?: number, options: { retryable?: boolean; upstream?: UpstreamErrorDetails; cause?: unknown } = {}) {
    const upstream = options.upstream ?? upstreamErrorDetails(body);
    const detail = upstream?.message ?? body.slice(0, 300);
    super(`upstream answered HTTP ${status}${detail ? `: ${detail}` : ''}`, { cause: options.cause });
    this.name = 'UpstreamHttpError';
    this.status = status;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
    this.upstream = upstream;
    this.retryable = options.retryable ?? (status === 408 || status === 409 || status === 429 || status >= 500);
  }
}

export class UpstreamProtocolError extends UpstreamError {
  readonly code = 'upstream_protocol_error' as const;
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamProtocolError';
  }
}

/** The upstream went quiet (no bytes), or stayed alive without a token for longer than the first-token bound; the message says which. */
export class UpstreamStalledError extends UpstreamError {
  readonly code = 'upstream_stalled' as const;
  readonly retryable = true;
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamStalledError';
  }

  /** No bytes at all (not even a keep-alive) for `idleMs`; `before` says what came earlier. */
  static noBytes(idleMs: number, before: 'nothing' | 'keep-alives' | 'output'): UpstreamStalledError {
    const after = before === 'output' ? ' mid-reply' : before === 'keep-alives' ? ' after keep-alives' : '';
    return new UpstreamStalledError(`upstream sent no bytes for ${idleMs} ms${after}`);
  }

  /** No token within `firstTokenMs` of the call; `sawBytes`: keep-alives (or other non-token frames) kept arriving. */
  static noFirstToken(firstTokenMs: number, sawBytes: boolean): UpstreamStalledError {
    return new UpstreamStalledError(
      sawBytes ? `upstream sent keep-alives only, no token for ${firstTokenMs} ms (upstream.firstTokenTimeoutMs)` : `upstream sent no bytes and no token for ${firstTokenMs} ms (upstream.firstTokenTimeoutMs)`,
    );
  }
}

export class UpstreamClosedError extends UpstreamError {
  readonly code = 'upstream_closed' as const;
  readonly retryable: boolean;
  /** `afterOutput`: the upstream had already sent part of the reply, so a retry cannot continue it. */
  constructor(message = 'upstream closed the stream before it finished', options: { afterOutput?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'UpstreamClosedError';
    this.retryable = !options.afterOutput;
  }
}

/** Parses `Retry-After` (seconds or HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The upstream reported an error inside an otherwise well-formed stream. Not retryable unless the
 * provider knows the error's kind is (Anthropic's `overloaded_error`); `status` is then the HTTP
 * status the same error has when the upstream sends it as a response, so before the first token
 * it is retried, backed off and counted by the breaker exactly like that status.
 */
export class UpstreamReportedError extends UpstreamError {
  readonly code = 'upstream_error' as const;
  readonly retryable: boolean;
  override readonly status?: number;
  override readonly upstream?: UpstreamErrorDetails;
  constructor(message: string, upstream?: UpstreamErrorDetails, options: { retryable?: boolean; status?: number } = {}) {
    super(`upstream reported an error: ${message}`);
    this.name = 'UpstreamReportedError';
    this.upstream = upstream;
    this.retryable = options.retryable ?? false;
    this.status = options.status;
  }
}

/** The request asks for something this provider cannot carry (checked at admission too; this is the worker's guard). */
export class UnsupportedRequestError extends UpstreamError {
  readonly code = 'invalid_request' as const;
  readonly retryable = false;
  override readonly status = 400;
  override readonly upstream?: UpstreamErrorDetails;
  constructor(message: string, param?: string) {
    super(message);
    this.name = 'UnsupportedRequestError';
    this.upstream = param ? { param } : undefined;
  }
}

/**
 * The error details in an upstream's error body: OpenAI and vLLM `{error: {message, type, code, param}}`,
 * Anthropic `{type: "error", error: {type, message}}`, Ollama `{error: "…"}`, TGI `{error, error_type}`.
 */
export function upstreamErrorDetails(body: string): UpstreamErrorDetails | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const { error, error_type: errorType } = json as { error?: unknown; error_type?: unknown };
  const text = (value: unknown) => (typeof value === 'string' && value ? value : typeof value === 'number' ? String(value) : undefined);
  if (typeof error === 'string') return { message: error, code: text(errorType) };
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as Record<string, unknown>;
  return { message: text(e.message), type: text(e.type), code: text(e.code), param: text(e.param) };
}

/** A connection closed after part of the reply was sent is final: a retry could not continue that reply. */
export function finalAfterOutput(error: unknown, afterOutput: boolean): unknown {
  return afterOutput && error instanceof UpstreamClosedError && error.retryable ? new UpstreamClosedError(error.message, { afterOutput: true, cause: error }) : error;
}
