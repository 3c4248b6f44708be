import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { LOGGER, type Logger } from '@tokenwire/core';
import { ApiError, anthropicErrorBody, describeValue, echo, openAIErrorBody, speaksAnthropic } from './api-error';

/**
 * Every HTTP error leaves as one body shape, OpenAI's `{error: {message, type, param, code}}`,
 * except on the Anthropic Messages routes, which answer Anthropic's `{type: "error", error: {type, message}}`.
 * Client mistakes are 4xx with a message; anything unexpected is logged and is a 500 without internals.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return;
    const response = host.switchToHttp().getResponse<Response>();
    const request = host.switchToHttp().getRequest<Request>();
    const { status, body, headers } = this.describe(exception, request);
    if (response.headersSent) {
      response.end();
      return;
    }
    response
      .status(status)
      .set(headers)
      .json(speaksAnthropic(request.path) ? anthropicErrorBody(status, body.error.message) : body);
  }

  private describe(exception: unknown, request: Request) {
    if (exception instanceof ApiError) {
      return { status: exception.status, headers: exception.headers, body: openAIErrorBody(exception.status, exception.code, exception.message, exception.param) };
    }
    // Nest wraps body-parser's errors (bad JSON, too large, bad gzip) in an HttpException; the cause says which.
    const bodyError = (exception instanceof HttpException ? exception.cause : exception) as BodyParserError | undefined;
    if (bodyError?.type === 'entity.parse.failed') {
      return { status: 400, headers: {}, body: openAIErrorBody(400, 'invalid_request', unparsableBody(bodyError)) };
    }
    if (bodyError?.type === 'entity.too.large') {
      return { status: 413, headers: {}, body: openAIErrorBody(413, 'invalid_request', 'request body is too large') };
    }
    if (typeof bodyError?.code === 'string' && bodyError.code.startsWith('Z_')) {
      // zlib's own words ("incorrect header check") say nothing to a client.
      const encoding = request.header('content-encoding') ?? '';
      return { status: 400, headers: {}, body: openAIErrorBody(400, 'invalid_request', `request body could not be decompressed: it is not valid ${encoding} data (Content-Encoding: ${encoding})`) };
    }
    if (bodyError?.type === 'encoding.unsupported') {
      const message = `unsupported Content-Encoding '${String(bodyError.encoding).slice(0, 32)}': send gzip, deflate, br or none`;
      return { status: 415, headers: {}, body: openAIErrorBody(415, 'invalid_request', message) };
    }
    if (bodyError?.type === 'charset.unsupported') {
      return { status: 415, headers: {}, body: openAIErrorBody(415, 'invalid_request', 'unsupported charset: send utf-8 JSON') };
    }
    if (exception instanceof HttpException) {
      // Raised by Nest or Express themselves: an unknown route, a bad percent-encoding.
      const status = exception.getStatus();
      const code = status === 404 ? 'not_found' : status === 413 ? 'invalid_request' : status < 500 ? 'invalid_request' : 'internal_error';
      const message = status === 413 ? 'request body is too large' : status === 404 ? `no route ${request.method} ${echo(request.path)} (the routes are listed at /docs)` : exception.message;
      return { status, headers: {}, body: openAIErrorBody(status, code, message) };
    }
    if (isRedisFailure(exception)) {
      this.logger.error({ err: exception }, 'Redis failed during a request');
      return { status: 503, headers: { 'retry-after': '1' }, body: openAIErrorBody(503, 'internal_error', 'the gateway cannot reach its store (Redis) right now; try again shortly') };
    }
    this.logger.error({ err: exception }, 'unhandled error in a request');
    return { status: 500, headers: {}, body: openAIErrorBody(500, 'internal_error', 'internal error') };
  }
}

/** What body-parser attaches to its errors. */
interface BodyParserError {
  type?: string;
  code?: string;
  body?: string;
  encoding?: string;
  message?: string;
}

/** Valid JSON that is not an object (`null`, `"hello"`, `42`) is told apart from JSON that does not parse. */
function unparsableBody(error: BodyParserError): string {
  try {
    return `expected a JSON object, got ${describeValue(JSON.parse(error.body ?? ''))}`;
  } catch {
    return `request body is not valid JSON: ${(error.message ?? '').slice(0, 200)}`;
  }
}

/** An error raised by ioredis: a refused command, a closed connection, or retries given up during an outage. */
function isRedisFailure(exception: unknown): boolean {
  if (!(exception instanceof Error)) return false;
  return (
    ['ReplyError', 'AbortError', 'MaxRetriesPerRequestError', 'RedisError', 'ParserError'].includes(exception.name) ||
    /^Connection is closed|Stream isn't writeable|ECONNREFUSED/.test(exception.message)
  );
}
