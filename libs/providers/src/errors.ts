import type { ErrorCode } from '@tokenwire/contracts';

/** Upstream failures, each with a stable code and whether a retry may help. */
export abstract class UpstreamError extends Error {
  abstract readonly code: ErrorCode;
  abstract readonly retryable: boolean;
  readonly status?: number;
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
  readonly retryAfterMs?: number;
  readonly body: string;
  readonly retryable: boolean;
  constructor(status: number, body: string, retryAfterMs?: number) {
    super(`upstream answered HTTP ${status}${body ? `: ${body.slice(0, 300)}` : ''}`);
    this.name = 'UpstreamHttpError';
    this.status = status;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
    // As the AI SDK's APICallError.isRetryable: timeouts, conflicts, rate limits, server errors.
    this.retryable = status === 408 || status === 409 || status === 429 || status >= 500;
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

export class UpstreamStalledError extends UpstreamError {
  readonly code = 'upstream_stalled' as const;
  readonly retryable = true;
  constructor(idleMs: number) {
    super(`upstream sent nothing for ${idleMs} ms`);
    this.name = 'UpstreamStalledError';
  }
}

export class UpstreamClosedError extends UpstreamError {
  readonly code = 'upstream_closed' as const;
  readonly retryable = true;
  constructor(message = 'upstream closed the stream before it finished') {
    super(message);
    this.name = 'UpstreamClosedError';
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

/** The upstream reported an error inside an otherwise well-formed stream. */
export class UpstreamReportedError extends UpstreamError {
  readonly code = 'upstream_error' as const;
  readonly retryable = false;
  constructor(message: string) {
    super(`upstream reported an error: ${message}`);
    this.name = 'UpstreamReportedError';
  }
}
