import { AsyncLocalStorage } from 'node:async_hooks';
import type { RequestHandler, Response } from 'express';

const current = new AsyncLocalStorage<Response>();

/**
 * Express middleware (mounted after the body parsers): the response being handled stays reachable
 * from services the request calls, so a header every generating route must send (the rate-limit
 * headers) is set in one place instead of in each inbound API's controller.
 */
export const trackResponse: RequestHandler = (_request, response, next) => current.run(response, next);

/** Sets headers on the HTTP response being handled; nothing on sockets, or once headers are sent. */
export function setResponseHeaders(headers: Record<string, string>): void {
  const response = current.getStore();
  if (response && !response.headersSent) response.set(headers);
}
