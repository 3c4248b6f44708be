import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { LOGGER, type Logger } from '@tokenwire/core';
import { ApiError, openAIErrorBody } from './api-error';

/**
 * Every HTTP error leaves as one body shape, OpenAI's `{error: {message, type, param, code}}`.
 * Client mistakes are 4xx with a message; anything unexpected is logged and is a 500 without internals.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return;
    const response = host.switchToHttp().getResponse<Response>();
    const { status, body, headers } = this.describe(exception);
    if (response.headersSent) {
      response.end();
      return;
    }
    response.status(status).set(headers).json(body);
  }

  private describe(exception: unknown) {
    if (exception instanceof ApiError) {
      return { status: exception.status, headers: exception.headers, body: openAIErrorBody(exception.status, exception.code, exception.message, exception.param) };
    }
    if (exception instanceof HttpException) {
      // Raised by Nest or Express themselves: malformed JSON, body too large, unknown route.
      const status = exception.getStatus();
      const code = status === 404 ? 'not_found' : status === 413 ? 'invalid_request' : status < 500 ? 'invalid_request' : 'internal_error';
      const message = status === 413 ? 'request body is too large' : status === 404 ? 'no such route' : exception.message;
      return { status, headers: {}, body: openAIErrorBody(status, code, message) };
    }
    const bodyParserError = exception as { type?: string; status?: number; message?: string };
    if (bodyParserError?.type === 'entity.parse.failed') {
      return { status: 400, headers: {}, body: openAIErrorBody(400, 'invalid_request', `request body is not valid JSON: ${bodyParserError.message}`) };
    }
    if (bodyParserError?.type === 'entity.too.large') {
      return { status: 413, headers: {}, body: openAIErrorBody(413, 'invalid_request', 'request body is too large') };
    }
    this.logger.error({ err: exception }, 'unhandled error in a request');
    return { status: 500, headers: {}, body: openAIErrorBody(500, 'internal_error', 'internal error') };
  }
}
